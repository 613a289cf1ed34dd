-- Two-factor sign-in (TOTP), enforced 2FA, lockout and throttling, session stages.
-- Lockstep with ../postgres/0009_mfa_lockout.sql.

-- A session is `password` (signed in with a password only) or `mfa` (second factor verified),
-- or pending: `pending_mfa` (password right, code still due) and `pending_enrol` (password
-- right, the user must enrol a second factor first). Pending sessions live 5 minutes and open
-- only the challenge and enrolment endpoints; `mfa_attempts` counts codes tried with one.
ALTER TABLE sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'password'
    CHECK (stage IN ('password', 'mfa', 'sso', 'pending_mfa', 'pending_enrol'));
ALTER TABLE sessions ADD COLUMN mfa_attempts INTEGER NOT NULL DEFAULT 0;

-- Roles that must use a second factor, comma-separated (NULL or empty: none).
ALTER TABLE tenant_settings ADD COLUMN mfa_required_roles TEXT;

-- A user's TOTP secret (sealed), unconfirmed until a first code proves the app has it.
-- last_step: the last RFC 6238 time step accepted, so a code works once.
CREATE TABLE user_mfa (
    tenant_id     BLOB NOT NULL,
    user_id       BLOB NOT NULL,
    secret        BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    confirmed_at  INTEGER,
    last_step     INTEGER,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;

-- Single-use recovery codes: keyed HMAC (the tenant's blind-index key) of the code, never
-- the code itself.
CREATE TABLE mfa_recovery_codes (
    tenant_id   BLOB NOT NULL,
    user_id     BLOB NOT NULL,
    code_hash   BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (tenant_id, user_id, code_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;

-- Sign-in attempt counters. bucket 'account': per tenant and blind index of the email typed
-- (unknown accounts are counted the same way, so a lockout reveals nothing); bucket 'ip': per
-- blind index of the client address, under the nil (platform) tenant, across organisations.
-- No FK to tenants for that reason. An attempt is counted before its password is checked.
CREATE TABLE login_throttle (
    tenant_id     BLOB NOT NULL,
    bucket        TEXT NOT NULL CHECK (bucket IN ('account', 'ip')),
    subject       BLOB NOT NULL,
    failures      INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    locked_until  INTEGER,
    PRIMARY KEY (tenant_id, bucket, subject)
) STRICT;
