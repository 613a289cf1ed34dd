-- SCIM 2.0 provisioning (issue 6). Lockstep with ../postgres/0013_scim.sql.

-- The tenant's SCIM bearer token: SHA-256 of the secret only (like API keys). Rotation revokes
-- the live token and adds a new one.
CREATE TABLE scim_tokens (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    secret_hash BLOB NOT NULL,
    created_by  BLOB,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX scim_tokens_secret ON scim_tokens (tenant_id, secret_hash);

-- Group-to-role mapping set by the tenant's admins: a JSON array of {group, role}, and the role
-- of a provisioned user in no mapped group.
CREATE TABLE scim_settings (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    default_role  TEXT NOT NULL CHECK (default_role IN ('admin', 'manager', 'member', 'read_only')),
    role_mappings TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id)
) STRICT;

-- The SCIM attributes of a user that Kluis itself has no column for (userName, externalId,
-- name, emails), sealed as one JSON document (table scim_users, column attrs, record = user
-- id). Exact-match lookups use blind indexes of the lower-cased userName and the externalId.
CREATE TABLE scim_users (
    tenant_id        BLOB NOT NULL,
    id               BLOB NOT NULL,
    user_name_bidx   BLOB NOT NULL,
    external_id_bidx BLOB,
    attrs            BLOB NOT NULL,
    version          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, user_name_bidx),
    FOREIGN KEY (tenant_id, id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX scim_users_external ON scim_users (tenant_id, external_id_bidx);

-- Groups are the organisation's own names for roles (configuration, not personal data):
-- stored plain.
CREATE TABLE scim_groups (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    display_name TEXT NOT NULL,
    external_id  TEXT,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, display_name)
) STRICT;

CREATE TABLE scim_group_members (
    tenant_id BLOB NOT NULL,
    group_id  BLOB NOT NULL,
    user_id   BLOB NOT NULL,
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES scim_groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX scim_group_members_user ON scim_group_members (tenant_id, user_id);
