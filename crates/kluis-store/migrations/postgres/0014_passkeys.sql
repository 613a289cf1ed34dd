-- Passkeys (WebAuthn): a second factor and passwordless sign-in.
-- Lockstep with ../sqlite/0014_passkeys.sql (comments there).

CREATE TABLE passkeys (
    tenant_id     UUID NOT NULL,
    id            UUID NOT NULL,
    user_id       UUID NOT NULL,
    cred_hash     BYTEA NOT NULL,
    name          TEXT NOT NULL,
    passkey       TEXT NOT NULL,
    sign_count    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, cred_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX passkeys_user ON passkeys (tenant_id, user_id);

CREATE TABLE webauthn_ceremonies (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id_hash     BYTEA NOT NULL,
    purpose     TEXT NOT NULL CHECK (purpose IN ('register', 'second_factor', 'passwordless')),
    user_id     UUID,
    session_id  UUID,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id_hash)
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['passkeys', 'webauthn_ceremonies'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;
