-- Files on records (issue 23). Lockstep with ../postgres/0020_files.sql.
-- A file's name is personal data (a contract named after a person), so it is sealed; its
-- bytes live outside the database, sealed chunk by chunk under a per-version key, which is
-- stored here sealed under the tenant's data key (`wrapped_key`). What is plain: sizes, the
-- content type, the scan status and the times, all needed for quotas, lists and rescans.
CREATE TABLE crm_files (
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    id              BLOB NOT NULL,
    record_id       BLOB NOT NULL,
    object_type     TEXT NOT NULL,
    name            BLOB NOT NULL,
    current_version INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER,
    deleted_by      TEXT,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX crm_files_record ON crm_files (tenant_id, record_id, id);
CREATE INDEX crm_files_deleted ON crm_files (tenant_id, deleted_at) WHERE deleted_at IS NOT NULL;

-- One row per stored version. status: 'pending' (not scanned yet: never served), 'clean',
-- 'infected' (quarantined: kept sealed, never served), 'unscanned' (scanning switched off by
-- the operator).
CREATE TABLE crm_file_versions (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    file_id      BLOB NOT NULL,
    version      INTEGER NOT NULL,
    blob_id      BLOB NOT NULL,
    size         INTEGER NOT NULL,
    stored_size  INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    wrapped_key  BLOB NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'clean', 'infected', 'unscanned')),
    scan_result  TEXT,
    scanned_at   INTEGER,
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, file_id, version),
    FOREIGN KEY (tenant_id, file_id) REFERENCES crm_files (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX crm_file_versions_pending ON crm_file_versions (tenant_id, status) WHERE status = 'pending';
