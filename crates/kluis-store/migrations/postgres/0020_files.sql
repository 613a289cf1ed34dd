-- Files on records (issue 23). Lockstep with ../sqlite/0020_files.sql (comments there).
CREATE TABLE crm_files (
    tenant_id       UUID NOT NULL REFERENCES tenants (id),
    id              UUID NOT NULL,
    record_id       UUID NOT NULL,
    object_type     TEXT NOT NULL,
    name            BYTEA NOT NULL,
    current_version BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_at      BIGINT NOT NULL,
    deleted_at      BIGINT,
    deleted_by      TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX crm_files_record ON crm_files (tenant_id, record_id, id);
CREATE INDEX crm_files_deleted ON crm_files (tenant_id, deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE crm_file_versions (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    file_id      UUID NOT NULL,
    version      BIGINT NOT NULL,
    blob_id      UUID NOT NULL,
    size         BIGINT NOT NULL,
    stored_size  BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    wrapped_key  BYTEA NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'clean', 'infected', 'unscanned')),
    scan_result  TEXT,
    scanned_at   BIGINT,
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, file_id, version),
    FOREIGN KEY (tenant_id, file_id) REFERENCES crm_files (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX crm_file_versions_pending ON crm_file_versions (tenant_id, status) WHERE status = 'pending';

ALTER TABLE crm_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_files FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm_files
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
ALTER TABLE crm_file_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_file_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm_file_versions
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
