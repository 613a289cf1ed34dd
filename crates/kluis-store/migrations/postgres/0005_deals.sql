-- Deals and tickets: pipelines with ordered stages, amounts, close dates; associations between records;
-- the sensitive-data guard's flags and setting.
-- Lockstep with ../sqlite/0005_deals.sql, which explains the design.
CREATE TABLE crm_pipelines (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    object_type TEXT NOT NULL CHECK (object_type IN ('deal', 'ticket')),
    name        TEXT NOT NULL,
    position    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE crm_stages (
    tenant_id   UUID NOT NULL,
    id          UUID NOT NULL,
    pipeline_id UUID NOT NULL,
    name        TEXT NOT NULL,
    position    BIGINT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('open', 'won', 'lost', 'closed')),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES crm_pipelines (tenant_id, id)
);
CREATE INDEX crm_stages_pipeline ON crm_stages (tenant_id, pipeline_id, position);

ALTER TABLE crm_records ADD COLUMN pipeline_id UUID;
ALTER TABLE crm_records ADD COLUMN stage_id UUID;
ALTER TABLE crm_records ADD COLUMN amount_minor BIGINT;
ALTER TABLE crm_records ADD COLUMN currency TEXT;
ALTER TABLE crm_records ADD COLUMN close_date TEXT;
ALTER TABLE crm_records ADD COLUMN priority TEXT;
-- Tasks: due date (YYYY-MM-DD) and when it was done.
ALTER TABLE crm_records ADD COLUMN due_date TEXT;
ALTER TABLE crm_records ADD COLUMN done_at BIGINT;
-- Kinds of forbidden data (payment_card, iban, ...) a record holds because the organisation
-- allows such values with a flag instead of refusing them; comma-separated, never the values.
ALTER TABLE crm_records ADD COLUMN sensitive TEXT;
-- What to do with them: 'block' (default when NULL) or 'flag'.
ALTER TABLE tenant_settings ADD COLUMN sensitive_data TEXT CHECK (sensitive_data IN ('block', 'flag'));
CREATE INDEX crm_records_stage ON crm_records (tenant_id, object_type, stage_id, id);

CREATE TABLE crm_associations (
    tenant_id UUID NOT NULL,
    record_id UUID NOT NULL,
    other_id  UUID NOT NULL,
    PRIMARY KEY (tenant_id, record_id, other_id)
);
CREATE INDEX crm_associations_other ON crm_associations (tenant_id, other_id);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['crm_pipelines', 'crm_stages', 'crm_associations'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;
