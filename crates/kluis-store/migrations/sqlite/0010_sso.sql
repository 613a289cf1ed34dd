-- Per-tenant single sign-on with OpenID Connect (issue 6).
-- Lockstep with ../postgres/0010_sso.sql.

-- One OIDC provider per tenant. The client secret is sealed (AES-256-GCM under the tenant's
-- data key; table sso_configs, column client_secret, record = the tenant id) and never leaves
-- the server again. Issuer, client id and domains are configuration, stored plain.
CREATE TABLE sso_configs (
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    provider        TEXT NOT NULL,
    issuer          TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    client_secret   BLOB NOT NULL,
    hosted_domain   TEXT,
    allowed_domains TEXT NOT NULL,
    jit_enabled     INTEGER NOT NULL,
    jit_role        TEXT NOT NULL,
    sso_required    INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id)
) STRICT;

-- Which user an IdP account is: blind index (HMAC with the tenant's index key) of issuer and
-- subject, so the IdP's identifier is not stored in the clear.
CREATE TABLE sso_identities (
    tenant_id     BLOB NOT NULL,
    subject_bidx  BLOB NOT NULL,
    user_id       BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, subject_bidx),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX sso_identities_user ON sso_identities (tenant_id, user_id);

-- Sign-ins in flight: SHA-256 of the state, of the browser-binding cookie and of the nonce;
-- single use (deleted when the callback arrives), expire after 10 minutes.
CREATE TABLE sso_pending (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    state_hash   BLOB NOT NULL,
    binding_hash BLOB NOT NULL,
    nonce_hash   BLOB NOT NULL,
    issuer       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, state_hash)
) STRICT;

-- Owners who may still sign in with a password when the tenant requires SSO.
CREATE TABLE sso_break_glass (
    tenant_id  BLOB NOT NULL,
    user_id    BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
