-- A tenant's own trash retention, in days (1..=365); NULL: the server's trash_retention_days.
-- Lockstep with ../postgres/0017_trash_retention.sql.
ALTER TABLE tenant_settings ADD COLUMN trash_retention_days INTEGER CHECK (trash_retention_days BETWEEN 1 AND 365);
