-- Saved views of the record tables (personal or shared with the organisation).
-- Lockstep with ../postgres/0016_saved_views.sql.
-- A view's name and its query string (which may hold a search text) can say something about a
-- person, so both are sealed together in `view`; what is plain is only which table it is for,
-- who made it and whether it is shared.
CREATE TABLE crm_saved_views (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    object_type TEXT NOT NULL,
    user_id     BLOB NOT NULL,
    shared      INTEGER NOT NULL CHECK (shared IN (0, 1)),
    view        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX crm_saved_views_type ON crm_saved_views (tenant_id, object_type);
CREATE INDEX crm_saved_views_user ON crm_saved_views (tenant_id, user_id);
