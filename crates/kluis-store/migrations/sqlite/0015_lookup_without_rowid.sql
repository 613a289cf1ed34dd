-- crm_lookup as a WITHOUT ROWID table (SQLite). Lockstep with ../postgres/0015_lookup_without_rowid.sql.
--
-- Its primary key covers every column, so the rowid table only duplicated the key's b-tree:
-- each blind-index entry was written twice (table and key index). Clustered on the key, an
-- entry is one b-tree insert; the lookup by (type, field, bidx) reads the same b-tree.
CREATE TABLE crm_lookup_v2 (
    tenant_id   BLOB NOT NULL,
    object_type TEXT NOT NULL,
    field       TEXT NOT NULL,
    bidx        BLOB NOT NULL,
    record_id   BLOB NOT NULL,
    PRIMARY KEY (tenant_id, object_type, field, bidx, record_id)
) STRICT, WITHOUT ROWID;
INSERT INTO crm_lookup_v2 (tenant_id, object_type, field, bidx, record_id)
SELECT tenant_id, object_type, field, bidx, record_id FROM crm_lookup;
DROP TABLE crm_lookup;
ALTER TABLE crm_lookup_v2 RENAME TO crm_lookup;
CREATE INDEX crm_lookup_record ON crm_lookup (tenant_id, record_id);
