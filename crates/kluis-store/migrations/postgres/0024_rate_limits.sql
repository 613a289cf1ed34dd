-- API rate limits (issue 18). One row per (subject, policy, window): how many requests of that
-- window the server processes have taken between them. A process takes a share ("lease") of the
-- quota at a time and spends it locally, so the total can never pass the quota, however many
-- processes share the database.
CREATE TABLE rate_windows (
    tenant_id     UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subject       TEXT NOT NULL,
    policy        TEXT NOT NULL,
    window_start  BIGINT NOT NULL,
    used          BIGINT NOT NULL CHECK (used >= 0),
    granted       BIGINT NOT NULL CHECK (granted >= 0),
    PRIMARY KEY (tenant_id, subject, policy, window_start)
);
ALTER TABLE rate_windows ENABLE ROW LEVEL SECURITY;
ALTER TABLE rate_windows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON rate_windows
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE tenant_settings ADD COLUMN rate_limit_burst BIGINT CHECK (rate_limit_burst > 0);
ALTER TABLE tenant_settings ADD COLUMN rate_limit_daily BIGINT CHECK (rate_limit_daily > 0);
