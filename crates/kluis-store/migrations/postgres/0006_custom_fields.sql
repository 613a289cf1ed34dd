-- Custom fields per object type, and tenant-wide custom values.
-- Lockstep with ../sqlite/0006_custom_fields.sql, which explains the design.
CREATE TABLE crm_custom_fields (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    object_type TEXT NOT NULL CHECK (object_type IN ('contact', 'company', 'deal', 'ticket', 'note', 'task')),
    key         TEXT NOT NULL,
    label       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    required    BOOLEAN NOT NULL,
    is_unique   BOOLEAN NOT NULL,
    options     TEXT NOT NULL,
    position    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX crm_custom_fields_key ON crm_custom_fields (tenant_id, object_type, key);

CREATE TABLE crm_custom_values (
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    key        TEXT NOT NULL,
    value      BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    deleted_at BIGINT,
    PRIMARY KEY (tenant_id, key)
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['crm_custom_fields', 'crm_custom_values'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;
