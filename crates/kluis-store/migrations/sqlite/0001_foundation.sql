-- Foundation schema (SQLite). Kept in lockstep with ../postgres/0001_foundation.sql:
-- same tables, same columns, same meaning. Ids are UUIDs stored as 16-byte blobs,
-- times are unix milliseconds, JSON is TEXT.

-- Platform tables (not tenant data).
CREATE TABLE tenants (
    id          BLOB PRIMARY KEY NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE setup_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;

CREATE TABLE platform_keys (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    secret_hash BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

-- Tenant tables: primary key starts with tenant_id.
CREATE TABLE tenant_settings (
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    password_policy  TEXT NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id)
) STRICT;

CREATE TABLE users (
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    id             BLOB NOT NULL,
    -- Personal data is sealed (AES-256-GCM, per-tenant data key, bound to tenant/table/column/row).
    -- email_bidx: HMAC-SHA256 blind index of the normalised email, for lookup and uniqueness.
    email_bidx     BLOB NOT NULL,
    email          BLOB NOT NULL,
    display_name   BLOB NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'member', 'read_only')),
    status         TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    password_hash  TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email_bidx)
) STRICT;

CREATE TABLE sessions (
    tenant_id     BLOB NOT NULL,
    id            BLOB NOT NULL,
    user_id       BLOB NOT NULL,
    token_hash    BLOB NOT NULL,
    csrf_hash     BLOB NOT NULL,
    ip            BLOB NOT NULL,    -- sealed
    user_agent    BLOB NOT NULL,    -- sealed
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE TABLE api_keys (
    tenant_id             BLOB NOT NULL,
    id                    BLOB NOT NULL,
    name                  TEXT NOT NULL,
    scopes                TEXT NOT NULL,
    secret_hash           BLOB NOT NULL,
    previous_secret_hash  BLOB,
    previous_valid_until  INTEGER,
    created_by            BLOB,
    created_at            INTEGER NOT NULL,
    rotated_at            INTEGER,
    last_used_at          INTEGER,
    revoked_at            INTEGER,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, secret_hash)
) STRICT;
CREATE INDEX api_keys_previous_secret ON api_keys (tenant_id, previous_secret_hash);

-- Per-tenant data keys (purpose 'data', versioned) and blind-index keys (purpose 'index'),
-- stored only wrapped by the key-encryption key named in kek_id.
CREATE TABLE tenant_keys (
    tenant_id     BLOB NOT NULL,  -- no FK: the platform audit log keys live under the nil tenant id
    purpose       TEXT NOT NULL CHECK (purpose IN ('data', 'index')),
    version       INTEGER NOT NULL,
    wrapped       BLOB NOT NULL,
    kek_id        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    sealed_count  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, purpose, version)
) STRICT;
