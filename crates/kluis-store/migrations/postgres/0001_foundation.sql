-- Foundation schema (PostgreSQL). Kept in lockstep with ../sqlite/0001_foundation.sql.
-- Runs as the owner role. The application role gets DML rights afterwards (granted by the
-- store at start-up) and is neither owner, superuser nor BYPASSRLS, so the row-level
-- security policies below always apply to it.

CREATE TABLE tenants (
    id          UUID PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE setup_tokens (
    token_hash  BYTEA PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE platform_keys (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE tenant_settings (
    tenant_id        UUID NOT NULL REFERENCES tenants(id),
    password_policy  TEXT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id)
);

CREATE TABLE users (
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    id             UUID NOT NULL,
    -- Personal data is sealed (AES-256-GCM, per-tenant data key, bound to tenant/table/column/row).
    -- email_bidx: HMAC-SHA256 blind index of the normalised email, for lookup and uniqueness.
    email_bidx     BYTEA NOT NULL,
    email          BYTEA NOT NULL,
    display_name   BYTEA NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'member', 'read_only')),
    status         TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    password_hash  TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email_bidx)
);

CREATE TABLE sessions (
    tenant_id     UUID NOT NULL,
    id            UUID NOT NULL,
    user_id       UUID NOT NULL,
    token_hash    BYTEA NOT NULL,
    csrf_hash     BYTEA NOT NULL,
    ip            BYTEA NOT NULL,    -- sealed
    user_agent    BYTEA NOT NULL,    -- sealed
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE api_keys (
    tenant_id             UUID NOT NULL,
    id                    UUID NOT NULL,
    name                  TEXT NOT NULL,
    scopes                TEXT NOT NULL,
    secret_hash           BYTEA NOT NULL,
    previous_secret_hash  BYTEA,
    previous_valid_until  BIGINT,
    created_by            UUID,
    created_at            BIGINT NOT NULL,
    rotated_at            BIGINT,
    last_used_at          BIGINT,
    revoked_at            BIGINT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, secret_hash)
);
CREATE INDEX api_keys_previous_secret ON api_keys (tenant_id, previous_secret_hash);

-- Per-tenant data keys (purpose 'data', versioned) and blind-index keys (purpose 'index'),
-- stored only wrapped by the key-encryption key named in kek_id.
CREATE TABLE tenant_keys (
    tenant_id     UUID NOT NULL,  -- no FK: the platform audit log keys live under the nil tenant id
    purpose       TEXT NOT NULL CHECK (purpose IN ('data', 'index')),
    version       BIGINT NOT NULL,
    wrapped       BYTEA NOT NULL,
    kek_id        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    sealed_count  BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, purpose, version)
);

-- Row-level security: the tenant of the current transaction is set with
-- set_config('app.tenant_id', ..., true) (transaction-local). No setting -> NULL -> no rows.
DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_settings', 'users', 'sessions', 'api_keys', 'tenant_keys'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;
