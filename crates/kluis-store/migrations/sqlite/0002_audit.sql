-- Tamper-evident audit trail (SQLite). Lockstep with ../postgres/0002_audit.sql.
-- One append-only log per tenant; the platform log uses the nil tenant id.
-- leaf_hash = RFC 6962 leaf hash of the event's canonical encoding (plaintext), so the
-- Merkle tree is over what happened, not over one particular encryption of it.
CREATE TABLE audit_heads (
    tenant_id  BLOB NOT NULL,
    size       INTEGER NOT NULL,
    -- Retention: events with seq < truncated_before have expired and were removed. The compact
    -- range (perfect-subtree roots of the removed prefix) lets the tree continue; the signed note
    -- proves it was the server's signing key, not someone with database access, that truncated.
    truncated_before  INTEGER NOT NULL DEFAULT 0,
    truncation_range  TEXT,
    truncation_note   TEXT,
    PRIMARY KEY (tenant_id)
) STRICT;

CREATE TABLE audit_events (
    tenant_id    BLOB NOT NULL,
    seq          INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    object_type  TEXT,
    object_id    TEXT,
    ip_bidx      BLOB,
    details      BLOB NOT NULL,   -- sealed JSON: ip, user agent, changed fields, reason
    leaf_hash    BLOB NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) STRICT;
CREATE INDEX audit_events_at ON audit_events (tenant_id, at);
CREATE INDEX audit_events_object ON audit_events (tenant_id, object_id);

-- Signed checkpoints (also appended to a file outside the database).
CREATE TABLE audit_checkpoints (
    tenant_id  BLOB NOT NULL,
    size       INTEGER NOT NULL,
    root       BLOB NOT NULL,
    note       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, size)
) STRICT;

-- Append-only inside the database too: updates and deletes are refused by triggers.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
-- Deleting is allowed only below the recorded (signed) truncation point: retention expiry.
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.seq >= COALESCE((SELECT truncated_before FROM audit_heads WHERE tenant_id = OLD.tenant_id), 0)
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
