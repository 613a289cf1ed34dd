-- Tags: a tenant's catalogue of labels, and which records carry which.
-- Lockstep with ../sqlite/0007_tags.sql.
-- A tag name may say something about a person ("VIP", "klaagt vaak"), so it is sealed; its
-- blind index keeps names unique per tenant without decrypting the catalogue.
CREATE TABLE crm_tags (
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    id         UUID NOT NULL,
    name       BYTEA NOT NULL,
    name_bidx  BYTEA NOT NULL,
    color      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX crm_tags_name ON crm_tags (tenant_id, name_bidx);

CREATE TABLE crm_record_tags (
    tenant_id UUID NOT NULL,
    record_id UUID NOT NULL,
    tag_id    UUID NOT NULL,
    PRIMARY KEY (tenant_id, record_id, tag_id)
);
CREATE INDEX crm_record_tags_tag ON crm_record_tags (tenant_id, tag_id);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['crm_tags', 'crm_record_tags'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;
