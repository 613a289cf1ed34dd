-- Data-key versions can be disabled for decrypting records (min decryption version).
-- Lockstep with ../postgres/0003_key_states.sql. SQLite cannot alter a CHECK constraint, so
-- the table is rebuilt; it has no triggers, indexes or foreign keys of its own.
CREATE TABLE tenant_keys_new (
    tenant_id     BLOB NOT NULL,  -- no FK: the platform audit log keys live under the nil tenant id
    purpose       TEXT NOT NULL CHECK (purpose IN ('data', 'index')),
    version       INTEGER NOT NULL,
    wrapped       BLOB NOT NULL,
    kek_id        TEXT NOT NULL,
    -- active: seals new values; retired: opens old values; disabled: opens audit payloads
    -- only (they are append-only and keep the version they were written with), never records.
    state         TEXT NOT NULL CHECK (state IN ('active', 'retired', 'disabled')),
    sealed_count  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, purpose, version)
) STRICT;
INSERT INTO tenant_keys_new
    SELECT tenant_id, purpose, version, wrapped, kek_id, state, sealed_count, created_at FROM tenant_keys;
DROP TABLE tenant_keys;
ALTER TABLE tenant_keys_new RENAME TO tenant_keys;
