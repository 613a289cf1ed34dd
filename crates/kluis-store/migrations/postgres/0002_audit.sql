-- Tamper-evident audit trail (PostgreSQL). Lockstep with ../sqlite/0002_audit.sql.
CREATE TABLE audit_heads (
    tenant_id  UUID NOT NULL,
    size       BIGINT NOT NULL,
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
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END $$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
