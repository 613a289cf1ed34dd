-- Support access (issue 17). Lockstep with ../sqlite/0035_support_access.sql (comments there).
CREATE TABLE operators (
    id             UUID PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    totp_secret    BYTEA NOT NULL,
    last_totp_step BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    disabled_at    BIGINT
);

CREATE TABLE operator_sessions (
    token_hash  BYTEA PRIMARY KEY,
    operator_id UUID NOT NULL REFERENCES operators (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT
);

CREATE TABLE operator_grant_log (
    grant_id    UUID PRIMARY KEY,
    operator_id UUID NOT NULL REFERENCES operators (id),
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    at          BIGINT NOT NULL
);
CREATE INDEX operator_grant_log_by_operator ON operator_grant_log (operator_id, at);

CREATE TABLE support_grants (
    tenant_id     UUID NOT NULL REFERENCES tenants (id),
    id            UUID NOT NULL,
    operator_id   UUID NOT NULL,
    operator_name TEXT NOT NULL,
    reason        TEXT NOT NULL,
    access        TEXT NOT NULL CHECK (access IN ('read', 'write')),
    hours         BIGINT NOT NULL CHECK (hours BETWEEN 1 AND 24),
    status        TEXT NOT NULL CHECK (status IN ('requested', 'active', 'refused', 'revoked')),
    requested_at  BIGINT NOT NULL,
    decided_at    BIGINT,
    decided_by    TEXT,
    expires_at    BIGINT,
    first_used_at BIGINT,
    revoked_at    BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX support_grants_by_operator ON support_grants (tenant_id, operator_id, id);

ALTER TABLE support_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE support_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON support_grants
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
