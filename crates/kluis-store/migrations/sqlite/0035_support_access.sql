-- Support access (issue 17): platform operators with their own sign-in (password and TOTP, both
-- always), and just-in-time grants a tenant's owner or admin approves. Operators are platform
-- data; a grant lives in the tenant it opens, so the tenant's RLS covers it.
CREATE TABLE operators (
    id            BLOB PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret   BLOB NOT NULL,     -- sealed under the platform's data key
    last_totp_step INTEGER NOT NULL DEFAULT 0,  -- a code is accepted once
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
) STRICT;

CREATE TABLE operator_sessions (
    token_hash  BLOB PRIMARY KEY,
    operator_id BLOB NOT NULL REFERENCES operators (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended_at    INTEGER
) STRICT;

-- One row per grant any operator asked for or received, across tenants: what the watching
-- rules count (grants per operator per day, tenants per operator per day).
CREATE TABLE operator_grant_log (
    grant_id    BLOB PRIMARY KEY,
    operator_id BLOB NOT NULL REFERENCES operators (id),
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    at          INTEGER NOT NULL
) STRICT;
CREATE INDEX operator_grant_log_by_operator ON operator_grant_log (operator_id, at);

CREATE TABLE support_grants (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    id            BLOB NOT NULL,
    operator_id   BLOB NOT NULL,
    operator_name TEXT NOT NULL,
    reason        TEXT NOT NULL,
    access        TEXT NOT NULL CHECK (access IN ('read', 'write')),
    hours         INTEGER NOT NULL CHECK (hours BETWEEN 1 AND 24),
    status        TEXT NOT NULL CHECK (status IN ('requested', 'active', 'refused', 'revoked')),
    requested_at  INTEGER NOT NULL,
    decided_at    INTEGER,
    decided_by    TEXT,
    expires_at    INTEGER,           -- set when granted: at most 24 h after the grant
    first_used_at INTEGER,
    revoked_at    INTEGER,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX support_grants_by_operator ON support_grants (tenant_id, operator_id, id);
