-- Deals and tickets: pipelines with ordered stages, amounts, close dates; associations between records;
-- the sensitive-data guard's flags and setting.
-- Lockstep with ../postgres/0005_deals.sql.
--
-- Pipeline and stage names are the organisation's configuration, not personal data, so they are
-- plain. A deal's name and description are fields (sealed); what boards and forecasts filter and
-- sum on (pipeline, stage, amount, currency, close date) are plain columns of crm_records.
CREATE TABLE crm_pipelines (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    object_type TEXT NOT NULL CHECK (object_type IN ('deal', 'ticket')),
    name        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE TABLE crm_stages (
    tenant_id   BLOB NOT NULL,
    id          BLOB NOT NULL,
    pipeline_id BLOB NOT NULL,
    name        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    -- open stages are in progress; a deal in a won or lost stage is closed with that outcome,
    -- a ticket in a closed stage is done
    outcome     TEXT NOT NULL CHECK (outcome IN ('open', 'won', 'lost', 'closed')),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES crm_pipelines (tenant_id, id)
) STRICT;
CREATE INDEX crm_stages_pipeline ON crm_stages (tenant_id, pipeline_id, position);

ALTER TABLE crm_records ADD COLUMN pipeline_id BLOB;
ALTER TABLE crm_records ADD COLUMN stage_id BLOB;
ALTER TABLE crm_records ADD COLUMN amount_minor INTEGER;  -- in the currency's minor unit (cents)
ALTER TABLE crm_records ADD COLUMN currency TEXT;         -- ISO 4217
ALTER TABLE crm_records ADD COLUMN close_date TEXT;
ALTER TABLE crm_records ADD COLUMN priority TEXT;       -- YYYY-MM-DD
-- Tasks: due date (YYYY-MM-DD) and when it was done.
ALTER TABLE crm_records ADD COLUMN due_date TEXT;
ALTER TABLE crm_records ADD COLUMN done_at INTEGER;
-- Kinds of forbidden data (payment_card, iban, ...) a record holds because the organisation
-- allows such values with a flag instead of refusing them; comma-separated, never the values.
ALTER TABLE crm_records ADD COLUMN sensitive TEXT;
-- What to do with them: 'block' (default when NULL) or 'flag'.
ALTER TABLE tenant_settings ADD COLUMN sensitive_data TEXT CHECK (sensitive_data IN ('block', 'flag'));
CREATE INDEX crm_records_stage ON crm_records (tenant_id, object_type, stage_id, id);

-- Which records a deal (and later tickets, notes, tasks) is about: its contacts.
CREATE TABLE crm_associations (
    tenant_id BLOB NOT NULL,
    record_id BLOB NOT NULL,
    other_id  BLOB NOT NULL,
    PRIMARY KEY (tenant_id, record_id, other_id)
) STRICT;
CREATE INDEX crm_associations_other ON crm_associations (tenant_id, other_id);
