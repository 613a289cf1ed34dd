-- Per-tenant single sign-on with OpenID Connect (issue 6).
-- Lockstep with ../sqlite/0010_sso.sql.

-- One OIDC provider per tenant. The client secret is sealed (AES-256-GCM under the tenant's
-- data key; table sso_configs, column client_secret, record = the tenant id) and never leaves
-- the server again. Issuer, client id and domains are configuration, stored plain.
CREATE TABLE sso_configs (
    tenant_id       UUID NOT NULL REFERENCES tenants (id),
    provider        TEXT NOT NULL,
    issuer          TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    client_secret   BYTEA NOT NULL,
    hosted_domain   TEXT,
    allowed_domains TEXT NOT NULL,
    jit_enabled     BOOLEAN NOT NULL,
    jit_role        TEXT NOT NULL,
    sso_required    BOOLEAN NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id)
);

-- Which user an IdP account is: blind index (HMAC with the tenant's index key) of issuer and
-- subject, so the IdP's identifier is not stored in the clear.
CREATE TABLE sso_identities (
    tenant_id     UUID NOT NULL,
    subject_bidx  BYTEA NOT NULL,
    user_id       UUID NOT NULL,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, subject_bidx),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sso_identities_user ON sso_identities (tenant_id, user_id);

-- Sign-ins in flight: SHA-256 of the state, of the browser-binding cookie and of the nonce;
-- single use (deleted when the callback arrives), expire after 10 minutes.
CREATE TABLE sso_pending (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    state_hash   BYTEA NOT NULL,
    binding_hash BYTEA NOT NULL,
    nonce_hash   BYTEA NOT NULL,
    issuer       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, state_hash)
);

-- Owners who may still sign in with a password when the tenant requires SSO.
CREATE TABLE sso_break_glass (
    tenant_id  UUID NOT NULL,
    user_id    UUID NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['sso_configs', 'sso_identities', 'sso_pending', 'sso_break_glass'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;
