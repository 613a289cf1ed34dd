-- Data-key versions can be disabled for decrypting records (min decryption version).
-- Lockstep with ../sqlite/0003_key_states.sql.
-- active: seals new values; retired: opens old values; disabled: opens audit payloads only
-- (they are append-only and keep the version they were written with), never records.
ALTER TABLE tenant_keys DROP CONSTRAINT tenant_keys_state_check;
ALTER TABLE tenant_keys ADD CONSTRAINT tenant_keys_state_check
    CHECK (state IN ('active', 'retired', 'disabled'));
