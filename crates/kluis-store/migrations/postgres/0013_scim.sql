-- SCIM 2.0 provisioning (issue 6). Lockstep with ../sqlite/0013_scim.sql.

-- The tenant's SCIM bearer token: SHA-256 of the secret only (like API keys). Rotation revokes
-- the live token and adds a new one.
CREATE TABLE scim_tokens (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    secret_hash BYTEA NOT NULL,
    created_by  UUID,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX scim_tokens_secret ON scim_tokens (tenant_id, secret_hash);

-- Group-to-role mapping set by the tenant's admins: a JSON array of {group, role}, and the role
-- of a provisioned user in no mapped group.
CREATE TABLE scim_settings (
    tenant_id     UUID NOT NULL REFERENCES tenants (id),
    default_role  TEXT NOT NULL CHECK (default_role IN ('admin', 'manager', 'member', 'read_only')),
    role_mappings TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id)
);

-- The SCIM attributes of a user that Kluis itself has no column for (userName, externalId,
-- name, emails), sealed as one JSON document (table scim_users, column attrs, record = user
-- id). Exact-match lookups use blind indexes of the lower-cased userName and the externalId.
CREATE TABLE scim_users (
    tenant_id        UUID NOT NULL,
    id               UUID NOT NULL,
    user_name_bidx   BYTEA NOT NULL,
    external_id_bidx BYTEA,
    attrs            BYTEA NOT NULL,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, user_name_bidx),
    FOREIGN KEY (tenant_id, id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX scim_users_external ON scim_users (tenant_id, external_id_bidx);

-- Groups are the organisation's own names for roles (configuration, not personal data):
-- stored plain.
CREATE TABLE scim_groups (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    id           UUID NOT NULL,
    display_name TEXT NOT NULL,
    external_id  TEXT,
    version      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, display_name)
);

CREATE TABLE scim_group_members (
    tenant_id UUID NOT NULL,
    group_id  UUID NOT NULL,
    user_id   UUID NOT NULL,
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES scim_groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX scim_group_members_user ON scim_group_members (tenant_id, user_id);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['scim_tokens', 'scim_settings', 'scim_users', 'scim_groups', 'scim_group_members'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END $$;
