-- Two-factor sign-in (TOTP), enforced 2FA, lockout and throttling, session stages.
-- Lockstep with ../sqlite/0009_mfa_lockout.sql (comments there).

ALTER TABLE sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'password'
    CHECK (stage IN ('password', 'mfa', 'sso', 'pending_mfa', 'pending_enrol'));
ALTER TABLE sessions ADD COLUMN mfa_attempts BIGINT NOT NULL DEFAULT 0;

ALTER TABLE tenant_settings ADD COLUMN mfa_required_roles TEXT;

CREATE TABLE user_mfa (
    tenant_id     UUID NOT NULL,
    user_id       UUID NOT NULL,
    secret        BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE mfa_recovery_codes (
    tenant_id   UUID NOT NULL,
    user_id     UUID NOT NULL,
    code_hash   BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (tenant_id, user_id, code_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE login_throttle (
    tenant_id     UUID NOT NULL,  -- no FK: per-IP counters live under the nil tenant id
    bucket        TEXT NOT NULL CHECK (bucket IN ('account', 'ip')),
    subject       BYTEA NOT NULL,
    failures      BIGINT NOT NULL,
    window_start  BIGINT NOT NULL,
    locked_until  BIGINT,
    PRIMARY KEY (tenant_id, bucket, subject)
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['user_mfa', 'mfa_recovery_codes', 'login_throttle'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;
