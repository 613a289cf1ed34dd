-- CRM records (PostgreSQL). Lockstep with ../sqlite/0004_crm.sql, which explains the design.
CREATE TABLE crm_records (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    object_type TEXT NOT NULL CHECK (object_type IN ('contact', 'company', 'deal', 'ticket', 'note', 'task')),
    owner_id    UUID,
    company_id  UUID,
    revision    BIGINT NOT NULL CHECK (revision >= 1),
    fields      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    deleted_at  BIGINT,
    deleted_by  TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX crm_records_list ON crm_records (tenant_id, object_type, deleted_at, id);
CREATE INDEX crm_records_owner ON crm_records (tenant_id, object_type, owner_id, id);
CREATE INDEX crm_records_company ON crm_records (tenant_id, company_id);
CREATE INDEX crm_records_trash ON crm_records (tenant_id, deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE crm_lookup (
    tenant_id   UUID NOT NULL,
    object_type TEXT NOT NULL,
    field       TEXT NOT NULL,
    bidx        BYTEA NOT NULL,
    record_id   UUID NOT NULL,
    PRIMARY KEY (tenant_id, object_type, field, bidx, record_id)
);
CREATE INDEX crm_lookup_record ON crm_lookup (tenant_id, record_id);

CREATE TABLE crm_versions (
    tenant_id   UUID NOT NULL,
    record_id   UUID NOT NULL,
    revision    BIGINT NOT NULL,
    fields      BYTEA NOT NULL,
    changed_at  BIGINT NOT NULL,
    changed_by  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, record_id, revision)
);

CREATE TABLE idempotency_keys (
    tenant_id    UUID NOT NULL,
    key_hash     BYTEA NOT NULL,
    request_hash BYTEA NOT NULL,
    status       INTEGER NOT NULL,
    response     BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key_hash)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['crm_records', 'crm_lookup', 'crm_versions', 'idempotency_keys'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;
