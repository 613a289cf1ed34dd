-- Outgoing email and one-time account links (password reset, invitation).
-- Lockstep with ../sqlite/0011_mail.sql.

-- Language of the emails and pages a user gets: the user's own choice, else the tenant's.
ALTER TABLE users ADD COLUMN locale TEXT CHECK (locale IN ('en', 'nl'));
ALTER TABLE tenant_settings ADD COLUMN locale TEXT NOT NULL DEFAULT 'en' CHECK (locale IN ('en', 'nl'));

-- One-time links mailed to a user. Only the SHA-256 of the 256-bit secret is stored; a row is
-- used at most once (used_at), expires, and goes when the user's password changes.
CREATE TABLE user_tokens (
    tenant_id   UUID NOT NULL,
    token_hash  BYTEA NOT NULL,
    user_id     UUID NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('reset', 'invite')),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_tokens_user ON user_tokens (tenant_id, user_id, kind);

-- Outbox: written in the transaction of the change that causes the email, sent afterwards by
-- the background sender. `message` (recipient, subject, bodies, which may hold a link secret)
-- is sealed, and emptied once the message is sent or has failed for good.
CREATE TABLE mail_outbox (
    tenant_id        UUID NOT NULL,
    id               UUID NOT NULL,
    kind             TEXT NOT NULL,
    message          BYTEA NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX mail_outbox_due ON mail_outbox (tenant_id, status, next_attempt_at);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['user_tokens', 'mail_outbox'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;
