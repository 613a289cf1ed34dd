-- Per-tenant retention (issue 19). Lockstep with ../sqlite/0028_retention_policies.sql.
--
-- Contacts inactive for `contact_inactive_years` (no change to them or to a record linked to
-- them) are deleted or anonymised by the server's daily job; audit events are kept
-- `audit_years`. A changed policy clears `dry_run_at`: the job's next pass then only reports
-- (`dry_run_report`, ids and counts, no personal data) and changes nothing, so the first real
-- run always follows a report of exactly what it will do.
CREATE TABLE retention_policies (
    tenant_id              UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    contact_inactive_years INTEGER CHECK (contact_inactive_years BETWEEN 1 AND 50),
    contact_action         TEXT NOT NULL CHECK (contact_action IN ('delete', 'anonymise')),
    audit_years            INTEGER NOT NULL CHECK (audit_years BETWEEN 1 AND 50),
    updated_at             BIGINT NOT NULL,
    dry_run_at             BIGINT,
    dry_run_report         TEXT,
    last_run_at            BIGINT,
    last_run_report        TEXT,
    PRIMARY KEY (tenant_id)
);
ALTER TABLE retention_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE retention_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON retention_policies
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
