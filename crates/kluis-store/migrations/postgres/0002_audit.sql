-- Tamper-evident audit trail (PostgreSQL). Lockstep with ../sqlite/0002_audit.sql.
CREATE TABLE audit_heads (
    tenant_id  UUID NOT NULL,
    size       BIGINT NOT NULL,
    -- Retention: events with seq < truncated_before have expired and were removed. The compact
    -- range (perfect-subtree roots of the removed prefix) lets the tree continue; the signed note
    -- proves it was the server's signing key, not someone with database access, that truncated.
    truncated_before  BIGINT NOT NULL DEFAULT 0,
    truncation_range  TEXT,
    truncation_note   TEXT,
    PRIMARY KEY (tenant_id)
);

CREATE TABLE audit_events (
    tenant_id    UUID NOT NULL,
    seq          BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    object_type  TEXT,
    object_id    TEXT,
    ip_bidx      BYTEA,
    details      BYTEA NOT NULL,
    leaf_hash    BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_events_at ON audit_events (tenant_id, at);
CREATE INDEX audit_events_object ON audit_events (tenant_id, object_id);

CREATE TABLE audit_checkpoints (
    tenant_id  UUID NOT NULL,
    size       BIGINT NOT NULL,
    root       BYTEA NOT NULL,
    note       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, size)
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_heads', 'audit_events', 'audit_checkpoints'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;

-- Append-only: even with the application's own credentials, no UPDATE or DELETE.
-- Deleting is allowed only below the recorded (signed) truncation point: retention expiry.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq < COALESCE(
        (SELECT truncated_before FROM audit_heads WHERE tenant_id = OLD.tenant_id), 0) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END $$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
