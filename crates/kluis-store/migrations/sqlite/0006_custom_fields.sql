-- Custom fields per object type, defined by tenant admins, and tenant-wide custom values.
-- Lockstep with ../postgres/0006_custom_fields.sql.
--
-- Definitions are configuration (plain); the values live in the records' sealed field JSON under
-- `custom.<key>`, so versions, trash, audit and the sensitive-data guard cover them unchanged.
CREATE TABLE crm_custom_fields (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    object_type TEXT NOT NULL CHECK (object_type IN ('contact', 'company', 'deal', 'ticket', 'note', 'task')),
    key         TEXT NOT NULL,
    label       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    required    INTEGER NOT NULL CHECK (required IN (0, 1)),
    is_unique   INTEGER NOT NULL CHECK (is_unique IN (0, 1)),
    options     TEXT NOT NULL,  -- JSON: select options, currency
    position    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,        -- in the trash since
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX crm_custom_fields_key ON crm_custom_fields (tenant_id, object_type, key);

-- Named values for templates ("company_slogan"), sealed: they may name people.
CREATE TABLE crm_custom_values (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    deleted_at INTEGER,        -- in the trash since
    PRIMARY KEY (tenant_id, key)
) STRICT;
