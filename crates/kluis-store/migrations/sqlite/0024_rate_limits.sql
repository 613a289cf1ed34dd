-- API rate limits (issue 18). One row per (subject, policy, window): how many requests of that
-- window the server processes have taken between them. A process takes a share ("lease") of the
-- quota at a time and spends it locally, so the total can never pass the quota, however many
-- processes share the database.
CREATE TABLE rate_windows (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subject       TEXT NOT NULL,   -- 'key:<uuid>', 'user:<uuid>' or 'tenant'
    policy        TEXT NOT NULL,   -- 'burst' or 'daily'
    window_start  INTEGER NOT NULL, -- unix seconds
    used          INTEGER NOT NULL CHECK (used >= 0),
    granted       INTEGER NOT NULL CHECK (granted >= 0), -- the last lease's size
    PRIMARY KEY (tenant_id, subject, policy, window_start)
) STRICT;

-- Operator overrides of the installation's defaults, per tenant (NULL: the default).
ALTER TABLE tenant_settings ADD COLUMN rate_limit_burst INTEGER CHECK (rate_limit_burst > 0);
ALTER TABLE tenant_settings ADD COLUMN rate_limit_daily INTEGER CHECK (rate_limit_daily > 0);
