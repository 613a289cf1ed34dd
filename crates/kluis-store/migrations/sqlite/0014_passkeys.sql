-- Passkeys (WebAuthn): a second factor and passwordless sign-in.
-- Lockstep with ../postgres/0014_passkeys.sql.

-- A registered credential. cred_hash: SHA-256 of the WebAuthn credential id, the lookup key of
-- a passwordless sign-in (unique per tenant). passkey: the webauthn-rs `Passkey` as JSON
-- (credential id, public key, algorithm, sign counter): public material, nothing secret.
-- sign_count mirrors the counter so a use can be recorded with one conditional update.
CREATE TABLE passkeys (
    tenant_id     BLOB NOT NULL,
    id            BLOB NOT NULL,
    user_id       BLOB NOT NULL,
    cred_hash     BLOB NOT NULL,
    name          TEXT NOT NULL,
    passkey       TEXT NOT NULL,
    sign_count    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, cred_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX passkeys_user ON passkeys (tenant_id, user_id);

-- A WebAuthn ceremony between its start and finish (any server process may finish it): the
-- webauthn-rs state (challenge, allowed credentials, policy; no secret) under the SHA-256 of a
-- random ceremony id the client holds. Single use (taken with DELETE ... RETURNING), 5 minutes.
-- user_id/session_id bind registration and second-factor ceremonies to who started them.
CREATE TABLE webauthn_ceremonies (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id_hash     BLOB NOT NULL,
    purpose     TEXT NOT NULL CHECK (purpose IN ('register', 'second_factor', 'passwordless')),
    user_id     BLOB,
    session_id  BLOB,
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id_hash)
) STRICT;
