-- CRM records (SQLite). Lockstep with ../postgres/0004_crm.sql.
--
-- One table for every CRM object type: what differs per type is the sealed field set, validated
-- by the service layer. Personal data lives only in `fields` (sealed JSON, bound to tenant,
-- table, column and record id); the plain columns are what lists filter and sort on and hold
-- no personal data (ids, owner, times, revision).
CREATE TABLE crm_records (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    object_type TEXT NOT NULL CHECK (object_type IN ('contact', 'company', 'deal', 'ticket', 'note', 'task')),
    owner_id    BLOB,           -- a user of the tenant, or none
    company_id  BLOB,           -- contact -> company association
    revision    INTEGER NOT NULL CHECK (revision >= 1),
    fields      BLOB NOT NULL,  -- sealed JSON object
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    deleted_at  INTEGER,        -- in the trash since
    deleted_by  TEXT,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX crm_records_list ON crm_records (tenant_id, object_type, deleted_at, id);
CREATE INDEX crm_records_owner ON crm_records (tenant_id, object_type, owner_id, id);
CREATE INDEX crm_records_company ON crm_records (tenant_id, company_id);
CREATE INDEX crm_records_trash ON crm_records (tenant_id, deleted_at) WHERE deleted_at IS NOT NULL;

-- Exact-match lookup on sealed fields: blind indexes (HMAC with the tenant's index key) of the
-- normalised value, e.g. a lower-cased email or an E.164 phone number.
CREATE TABLE crm_lookup (
    tenant_id   BLOB NOT NULL,
    object_type TEXT NOT NULL,
    field       TEXT NOT NULL,
    bidx        BLOB NOT NULL,
    record_id   BLOB NOT NULL,
    PRIMARY KEY (tenant_id, object_type, field, bidx, record_id)
) STRICT;
CREATE INDEX crm_lookup_record ON crm_lookup (tenant_id, record_id);

-- Earlier versions of a record (the current one is in crm_records), sealed like the record.
CREATE TABLE crm_versions (
    tenant_id   BLOB NOT NULL,
    record_id   BLOB NOT NULL,
    revision    INTEGER NOT NULL,
    fields      BLOB NOT NULL,  -- sealed JSON: revision, fields, owner and company
    changed_at  INTEGER NOT NULL,
    changed_by  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, record_id, revision)
) STRICT;

-- Idempotency-Key on creates: a retried request returns the first response.
CREATE TABLE idempotency_keys (
    tenant_id    BLOB NOT NULL,
    key_hash     BLOB NOT NULL,  -- SHA-256 over caller and key
    request_hash BLOB NOT NULL,  -- SHA-256 over method, path and body: a reused key with another request is refused
    status       INTEGER NOT NULL,
    response     BLOB NOT NULL,  -- sealed response body
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key_hash)
) STRICT;
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
