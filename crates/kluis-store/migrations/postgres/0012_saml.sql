-- SAML 2.0 as a second kind of per-tenant single sign-on (issue 6).
-- Lockstep with ../sqlite/0012_saml.sql.

-- The SAML half of a tenant's SSO configuration. The shared half (allowed domains, just-in-time
-- creation, "SSO required", break-glass owners) stays in sso_configs with provider 'saml' and
-- issuer = the IdP's entity id; this row goes with it. Certificates are public: stored plain.
CREATE TABLE saml_configs (
    tenant_id     UUID NOT NULL,
    idp_entity_id TEXT NOT NULL,
    idp_sso_url   TEXT NOT NULL,
    idp_certs_pem TEXT NOT NULL,
    allow_sha1    BOOLEAN NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id),
    FOREIGN KEY (tenant_id) REFERENCES sso_configs (tenant_id) ON DELETE CASCADE
);

-- Replay cache: SHA-256 of (IdP entity id, assertion ID) of every accepted assertion, kept until
-- the assertion could no longer be used anyway (its NotOnOrAfter plus skew).
CREATE TABLE saml_seen_assertions (
    tenant_id         UUID NOT NULL REFERENCES tenants (id),
    assertion_id_hash BYTEA NOT NULL,
    expires_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, assertion_id_hash)
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['saml_configs', 'saml_seen_assertions'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;
