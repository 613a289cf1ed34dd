//! Custom roles, their assignment to users, and teams. Same rule as the rest of [`TenantTx`]:
//! every statement binds `self.tenant` as `$1`.

use sqlx::FromRow;

use crate::ids::{ApiKeyId, RoleId, TeamId, UserId};
use crate::{Result, TenantTx, on_conn};

/// A custom role; `rules` is the JSON the core parses (rights and scope per object type).
#[derive(Debug, Clone, FromRow)]
pub struct RoleRow {
    pub id: RoleId,
    pub name: String,
    pub description: String,
    pub rules: String,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct TeamRow {
    pub id: TeamId,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Who made an API key, and that person's built-in role now (None: made at the console, or
/// the person is gone).
#[derive(Debug, Clone, FromRow)]
pub struct KeyCreatorRow {
    pub created_by: Option<UserId>,
    pub role: Option<kluis_types::Role>,
}

const ROLE_COLS: &str = "id, name, description, rules, revision, created_at, updated_at";

impl TenantTx {
    // ---- roles ----------------------------------------------------------------------------

    pub async fn roles(&mut self) -> Result<Vec<RoleRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {ROLE_COLS} FROM roles WHERE tenant_id = $1 ORDER BY name, id");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }

    pub async fn role(&mut self, id: RoleId) -> Result<Option<RoleRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {ROLE_COLS} FROM roles WHERE tenant_id = $1 AND id = $2");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    pub async fn insert_role(&mut self, r: &RoleRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO roles (tenant_id, id, name, description, rules, revision, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(t)
        .bind(r.id)
        .bind(&r.name)
        .bind(&r.description)
        .bind(&r.rules)
        .bind(r.revision)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Writes `r` (its revision already the new one) if the stored revision is still
    /// `expected`; false when another writer won.
    pub async fn update_role(&mut self, r: &RoleRow, expected: i64) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE roles SET name = $3, description = $4, rules = $5, revision = $6, updated_at = $7 \
             WHERE tenant_id = $1 AND id = $2 AND revision = $8"
        )
        .bind(t)
        .bind(r.id)
        .bind(&r.name)
        .bind(&r.description)
        .bind(&r.rules)
        .bind(r.revision)
        .bind(r.updated_at)
        .bind(expected)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn delete_role(&mut self, id: RoleId) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM roles WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// How many users hold a custom role.
    pub async fn role_holders(&mut self, id: RoleId) -> Result<i64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT count(*) FROM user_custom_roles WHERE tenant_id = $1 AND role_id = $2"
        )
        .bind(t)
        .bind(id)
        .fetch_one(c)
        .await?))
    }

    /// The custom role a user holds, if any.
    pub async fn user_custom_role(&mut self, user: UserId) -> Result<Option<RoleRow>> {
        let t = self.tenant;
        let sql = format!(
            "SELECT {} FROM user_custom_roles u JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id \
             WHERE u.tenant_id = $1 AND u.user_id = $2",
            crate::tenant::prefixed_cols("r.", ROLE_COLS)
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(user)
        .fetch_optional(c)
        .await?))
    }

    /// Every (user, custom role) assignment of the tenant.
    pub async fn custom_role_assignments(&mut self) -> Result<Vec<(UserId, RoleId)>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT user_id, role_id FROM user_custom_roles WHERE tenant_id = $1 ORDER BY user_id"
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }

    /// Gives a user a custom role, or (None) takes it away. Returns the previous one.
    pub async fn set_user_custom_role(
        &mut self,
        user: UserId,
        role: Option<RoleId>,
    ) -> Result<Option<RoleId>> {
        let t = self.tenant;
        let before: Option<RoleId> = on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT role_id FROM user_custom_roles WHERE tenant_id = $1 AND user_id = $2"
        )
        .bind(t)
        .bind(user)
        .fetch_optional(c)
        .await?);
        on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM user_custom_roles WHERE tenant_id = $1 AND user_id = $2"
        )
        .bind(t)
        .bind(user)
        .execute(c)
        .await?
        .rows_affected());
        if let Some(role) = role {
            on_conn!(&mut self.tx, |c| sqlx::query(
                "INSERT INTO user_custom_roles (tenant_id, user_id, role_id) VALUES ($1, $2, $3)"
            )
            .bind(t)
            .bind(user)
            .bind(role)
            .execute(c)
            .await?
            .rows_affected());
        }
        Ok(before)
    }

    /// Who made an API key and their built-in role.
    pub async fn api_key_creator(&mut self, key: ApiKeyId) -> Result<Option<KeyCreatorRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT k.created_by, u.role FROM api_keys k \
             LEFT JOIN users u ON u.tenant_id = k.tenant_id AND u.id = k.created_by \
             WHERE k.tenant_id = $1 AND k.id = $2"
        )
        .bind(t)
        .bind(key)
        .fetch_optional(c)
        .await?))
    }

    // ---- teams ----------------------------------------------------------------------------

    pub async fn teams(&mut self) -> Result<Vec<TeamRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_as(
            "SELECT id, name, created_at, updated_at FROM teams WHERE tenant_id = $1 ORDER BY name, id"
        )
        .bind(t)
        .fetch_all(c)
        .await?
        }))
    }

    pub async fn team(&mut self, id: TeamId) -> Result<Option<TeamRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT id, name, created_at, updated_at FROM teams WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    pub async fn upsert_team(&mut self, r: &TeamRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO teams (tenant_id, id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET name = $3, updated_at = $5"
        )
        .bind(t)
        .bind(r.id)
        .bind(&r.name)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn delete_team(&mut self, id: TeamId) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM teams WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Every (team, member) pair of the tenant, by team.
    pub async fn team_memberships(&mut self) -> Result<Vec<(TeamId, UserId)>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_as(
            "SELECT team_id, user_id FROM team_members WHERE tenant_id = $1 ORDER BY team_id, user_id"
        )
        .bind(t)
        .fetch_all(c)
        .await?
        }))
    }

    /// Adds a member; false when they already were one.
    pub async fn add_team_member(&mut self, team: TeamId, user: UserId) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO team_members (tenant_id, team_id, user_id) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING"
        )
        .bind(t)
        .bind(team)
        .bind(user)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    pub async fn remove_team_member(&mut self, team: TeamId, user: UserId) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM team_members WHERE tenant_id = $1 AND team_id = $2 AND user_id = $3"
        )
        .bind(t)
        .bind(team)
        .bind(user)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Everyone who shares a team with `user`, `user` included (the owners whose records
    /// record scope "team" shows).
    pub async fn team_mates(&mut self, user: UserId) -> Result<Vec<UserId>> {
        let t = self.tenant;
        let mut ids: Vec<UserId> = on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT DISTINCT m2.user_id FROM team_members m1 \
             JOIN team_members m2 ON m2.tenant_id = m1.tenant_id AND m2.team_id = m1.team_id \
             WHERE m1.tenant_id = $1 AND m1.user_id = $2"
        )
        .bind(t)
        .bind(user)
        .fetch_all(c)
        .await?);
        if !ids.contains(&user) {
            ids.push(user);
        }
        Ok(ids)
    }
}
