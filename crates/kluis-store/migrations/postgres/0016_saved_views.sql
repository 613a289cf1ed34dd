-- Saved views of the record tables (personal or shared with the organisation).
-- Lockstep with ../sqlite/0016_saved_views.sql (comments there).

CREATE TABLE crm_saved_views (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    object_type TEXT NOT NULL,
    user_id     UUID NOT NULL,
    shared      BOOLEAN NOT NULL,
    view        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX crm_saved_views_type ON crm_saved_views (tenant_id, object_type);
CREATE INDEX crm_saved_views_user ON crm_saved_views (tenant_id, user_id);

ALTER TABLE crm_saved_views ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_saved_views FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm_saved_views
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
