-- Lockstep with ../sqlite/0015_lookup_without_rowid.sql, which makes crm_lookup a WITHOUT
-- ROWID table. PostgreSQL tables have no rowid b-tree to drop: nothing changes here.
SELECT 1;
