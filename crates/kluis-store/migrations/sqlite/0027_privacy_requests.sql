-- Data-subject requests (issue 19, GDPR art. 15-20). Lockstep with ../postgres/0027_privacy_requests.sql.
CREATE TABLE privacy_requests (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          BLOB NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('access', 'erasure')),
    status      TEXT NOT NULL CHECK (status IN ('open', 'exported', 'erased')),
    subject     BLOB NOT NULL,  -- sealed JSON of the identifiers; a sealed {} once erased
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    exported_at INTEGER,
    erased_at   INTEGER,
    PRIMARY KEY (tenant_id, id)
) STRICT;

-- Audit events whose details an erasure replaced, and the erasure event that lists them.
CREATE TABLE audit_redactions (
    tenant_id  BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    by_seq     INTEGER NOT NULL CHECK (by_seq > seq),
    PRIMARY KEY (tenant_id, seq)
) STRICT;

-- Still append-only, with one exception: an UPDATE that changes `details` and nothing else, of
-- an event recorded in audit_redactions (in the same transaction as the erasure).
DROP TRIGGER audit_events_no_update;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NOT (NEW.tenant_id = OLD.tenant_id AND NEW.seq = OLD.seq AND NEW.at = OLD.at
    AND NEW.actor = OLD.actor AND NEW.action = OLD.action AND NEW.outcome = OLD.outcome
    AND NEW.object_type IS OLD.object_type AND NEW.object_id IS OLD.object_id
    AND NEW.ip_bidx IS OLD.ip_bidx AND NEW.leaf_hash = OLD.leaf_hash
    AND EXISTS (SELECT 1 FROM audit_redactions r WHERE r.tenant_id = OLD.tenant_id AND r.seq = OLD.seq))
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
