-- Custom roles, their assignment to users, and teams (issue 17, permissions).
-- Lockstep with ../postgres/0018_roles_teams.sql.
-- A role's rules (per object type: rights and record scope) are configuration, not personal
-- data, so they are plain JSON; so are role and team names.
CREATE TABLE roles (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    rules       TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
) STRICT;

-- At most one custom role per user; without a row the user's built-in role applies. A role
-- that is assigned cannot be deleted (no cascade): that would silently change people's rights.
CREATE TABLE user_custom_roles (
    tenant_id BLOB NOT NULL,
    user_id   BLOB NOT NULL,
    role_id   BLOB NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id)
) STRICT;
CREATE INDEX user_custom_roles_role ON user_custom_roles (tenant_id, role_id);

CREATE TABLE teams (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    id         BLOB NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
) STRICT;

CREATE TABLE team_members (
    tenant_id BLOB NOT NULL,
    team_id   BLOB NOT NULL,
    user_id   BLOB NOT NULL,
    PRIMARY KEY (tenant_id, team_id, user_id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
-- Record scope "team" asks "whose records may this user see": from the user to their teams.
CREATE INDEX team_members_user ON team_members (tenant_id, user_id, team_id);

