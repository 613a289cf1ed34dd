-- Cheaper audit appends (SQLite). Lockstep with ../postgres/0008_audit_write_path.sql.
--
-- 1. audit_events becomes a WITHOUT ROWID table clustered on (tenant_id, seq): an append
--    touches one b-tree instead of the rowid table plus the primary-key index, and the
--    verification scan reads rows in sequence order from that one b-tree.
-- 2. The (tenant_id, at) and (tenant_id, object_id) indexes are dropped: the only query
--    filtering on those columns (`TenantTx::audit_events`) tests `($n IS NULL OR col = $n)`,
--    which SQLite cannot answer from an index; its plan walks the primary key. They cost two
--    more dirty pages per event at commit and were never read.
-- 3. The head counter is advanced by a trigger in the same statement as the insert, and the
--    trigger refuses an event whose seq is not the current head. The writer therefore needs
--    no separate upsert statement per event: it may know the head already (SQLite writers
--    hold the database write lock, and the store caches the head it committed last), and a
--    stale guess is refused here, never stored. Sequence numbers stay gapless and unique.
CREATE TABLE audit_events_v2 (
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
) STRICT, WITHOUT ROWID;
INSERT INTO audit_events_v2 (tenant_id, seq, at, actor, action, outcome, object_type, object_id, ip_bidx, details, leaf_hash)
SELECT tenant_id, seq, at, actor, action, outcome, object_type, object_id, ip_bidx, details, leaf_hash FROM audit_events;
-- Drops the old table's indexes and triggers too (DROP TABLE fires no DELETE trigger).
DROP TABLE audit_events;
ALTER TABLE audit_events_v2 RENAME TO audit_events;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.seq >= COALESCE((SELECT truncated_before FROM audit_heads WHERE tenant_id = OLD.tenant_id), 0)
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

CREATE TRIGGER audit_events_advance_head BEFORE INSERT ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit sequence is not the log head')
    WHERE NEW.seq IS NOT COALESCE((SELECT size FROM audit_heads WHERE tenant_id = NEW.tenant_id), 0);
    INSERT INTO audit_heads (tenant_id, size) VALUES (NEW.tenant_id, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET size = size + 1;
END;
