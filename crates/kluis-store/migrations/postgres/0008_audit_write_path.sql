-- Lockstep with ../sqlite/0008_audit_write_path.sql, which changes the SQLite append path only.
-- PostgreSQL keeps its schema: sequence numbers come from the `audit_heads` upsert, whose row
-- lock serialises concurrent appenders across connections and nodes, and the planner can use
-- the `at` / `object_id` indexes with custom plans. Nothing to change here.
SELECT 1;
