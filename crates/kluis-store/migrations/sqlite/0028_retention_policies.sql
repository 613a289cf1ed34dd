-- Per-tenant retention (issue 19). Lockstep with ../postgres/0028_retention_policies.sql.
CREATE TABLE retention_policies (
    tenant_id              BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    contact_inactive_years INTEGER CHECK (contact_inactive_years BETWEEN 1 AND 50),
    contact_action         TEXT NOT NULL CHECK (contact_action IN ('delete', 'anonymise')),
    audit_years            INTEGER NOT NULL CHECK (audit_years BETWEEN 1 AND 50),
    updated_at             INTEGER NOT NULL,
    dry_run_at             INTEGER,   -- the report of the current policy was made then
    dry_run_report         TEXT,      -- JSON: ids and counts, no personal data
    last_run_at            INTEGER,
    last_run_report        TEXT,
    PRIMARY KEY (tenant_id)
) STRICT;
