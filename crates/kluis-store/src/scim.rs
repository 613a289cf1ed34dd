//! SCIM 2.0 provisioning: the tenant's SCIM token (hash only), the group-to-role mapping, the
//! sealed SCIM attributes of users, groups and their members. Same rule as the rest of
//! [`TenantTx`]: every statement binds `self.tenant` as `$1`.

use sqlx::FromRow;
use uuid::Uuid;

use crate::ids::{ApiKeyId, UserId};
use crate::{Result, TenantTx, on_conn};

/// A live SCIM token matched by its secret's hash, with its tenant's status.
#[derive(Debug, Clone, FromRow)]
pub struct ScimTokenMatch {
    pub id: Uuid,
    pub tenant_status: kluis_types::Status,
}

#[derive(Debug, Clone, FromRow)]
pub struct ScimTokenRow {
    pub id: Uuid,
    pub created_by: Option<UserId>,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ScimSettingsRow {
    pub default_role: kluis_types::Role,
    /// JSON array of `{"group": .., "role": ..}`.
    pub role_mappings: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ScimUserRow {
    pub id: UserId,
    /// Sealed JSON (`scim_users.attrs`, record = the user id).
    pub attrs: Vec<u8>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The SCIM attributes of a user to store.
pub struct PutScimUser<'a> {
    pub id: UserId,
    pub user_name_bidx: &'a [u8],
    pub external_id_bidx: Option<&'a [u8]>,
    pub attrs: &'a [u8],
    pub now: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ScimGroupRow {
    pub id: Uuid,
    pub display_name: String,
    pub external_id: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ScimMemberRow {
    pub group_id: Uuid,
    pub user_id: UserId,
}

const USER_COLS: &str = "id, attrs, version, created_at, updated_at";
const GROUP_COLS: &str = "id, display_name, external_id, version, created_at, updated_at";

impl TenantTx {
    // ---- token ------------------------------------------------------------------------

    pub async fn insert_scim_token(
        &mut self,
        id: Uuid,
        secret_hash: &[u8],
        created_by: Option<UserId>,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO scim_tokens (tenant_id, id, secret_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(t)
        .bind(id)
        .bind(secret_hash)
        .bind(created_by)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Revokes every live SCIM token of the tenant; returns how many.
    pub async fn revoke_scim_tokens(&mut self, now: i64) -> Result<u64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE scim_tokens SET revoked_at = $2 WHERE tenant_id = $1 AND revoked_at IS NULL"
        )
        .bind(t)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()))
    }

    pub async fn live_scim_token(&mut self) -> Result<Option<ScimTokenRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT id, created_by, created_at FROM scim_tokens \
             WHERE tenant_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1"
        )
        .bind(t)
        .fetch_optional(c)
        .await?))
    }

    pub async fn scim_token_by_hash(&mut self, hash: &[u8]) -> Result<Option<ScimTokenMatch>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT s.id AS id, t.status AS tenant_status FROM scim_tokens s \
             JOIN tenants t ON t.id = s.tenant_id \
             WHERE s.tenant_id = $1 AND s.secret_hash = $2 AND s.revoked_at IS NULL"
        )
        .bind(t)
        .bind(hash)
        .fetch_optional(c)
        .await?))
    }

    // ---- settings ---------------------------------------------------------------------

    pub async fn scim_settings(&mut self) -> Result<Option<ScimSettingsRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT default_role, role_mappings, updated_at FROM scim_settings WHERE tenant_id = $1"
        )
        .bind(t)
        .fetch_optional(c)
        .await?))
    }

    pub async fn put_scim_settings(
        &mut self,
        default_role: kluis_types::Role,
        role_mappings: &str,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO scim_settings (tenant_id, default_role, role_mappings, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET \
             default_role = excluded.default_role, role_mappings = excluded.role_mappings, \
             updated_at = excluded.updated_at"
        )
        .bind(t)
        .bind(default_role)
        .bind(role_mappings)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    // ---- users ------------------------------------------------------------------------

    pub async fn scim_user(&mut self, id: UserId) -> Result<Option<ScimUserRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {USER_COLS} FROM scim_users WHERE tenant_id = $1 AND id = $2");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    /// Every user's SCIM attributes (the SCIM list is evaluated over the opened values).
    pub async fn scim_users(&mut self) -> Result<Vec<ScimUserRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {USER_COLS} FROM scim_users WHERE tenant_id = $1 ORDER BY id");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }

    pub async fn scim_user_by_name_index(&mut self, bidx: &[u8]) -> Result<Option<UserId>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT id FROM scim_users WHERE tenant_id = $1 AND user_name_bidx = $2"
        )
        .bind(t)
        .bind(bidx)
        .fetch_optional(c)
        .await?))
    }

    pub async fn scim_users_by_external_index(&mut self, bidx: &[u8]) -> Result<Vec<UserId>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT id FROM scim_users WHERE tenant_id = $1 AND external_id_bidx = $2 ORDER BY id"
        )
        .bind(t)
        .bind(bidx)
        .fetch_all(c)
        .await?))
    }

    /// Inserts or replaces a user's SCIM attributes; the version counts every change.
    pub async fn put_scim_user(&mut self, u: &PutScimUser<'_>) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO scim_users (tenant_id, id, user_name_bidx, external_id_bidx, attrs, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6) ON CONFLICT (tenant_id, id) DO UPDATE SET \
             user_name_bidx = excluded.user_name_bidx, external_id_bidx = excluded.external_id_bidx, \
             attrs = excluded.attrs, version = scim_users.version + 1, updated_at = excluded.updated_at"
        )
        .bind(t)
        .bind(u.id)
        .bind(u.user_name_bidx)
        .bind(u.external_id_bidx)
        .bind(u.attrs)
        .bind(u.now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Compare-and-swap of a user's sealed SCIM attributes (data-key re-encryption; see
    /// `reseal_users`).
    pub async fn reseal_scim_attrs(&mut self, id: UserId, old: &[u8], new: &[u8]) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE scim_users SET attrs = $4 WHERE tenant_id = $1 AND id = $2 AND attrs = $3"
        )
        .bind(t)
        .bind(id)
        .bind(old)
        .bind(new)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Replaces a user's sealed email and its blind index (the IdP changed the address).
    pub async fn update_user_email(
        &mut self,
        id: UserId,
        email_bidx: &[u8],
        email: &[u8],
        now: i64,
    ) -> Result<bool> {
        let t = self.tenant;
        let r = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE users SET email_bidx = $3, email = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(email_bidx)
        .bind(email)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(r == 1)
    }

    /// Revokes every live API key a user created (deprovisioning); returns their ids.
    pub async fn revoke_api_keys_created_by(
        &mut self,
        user: UserId,
        now: i64,
    ) -> Result<Vec<ApiKeyId>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND created_by = $2 \
             AND revoked_at IS NULL RETURNING id"
        )
        .bind(t)
        .bind(user)
        .bind(now)
        .fetch_all(c)
        .await?))
    }

    // ---- groups -----------------------------------------------------------------------

    pub async fn insert_scim_group(
        &mut self,
        id: Uuid,
        display_name: &str,
        external_id: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO scim_groups (tenant_id, id, display_name, external_id, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $5)"
        )
        .bind(t)
        .bind(id)
        .bind(display_name)
        .bind(external_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Sets name and external id and counts a new version (members changed or not).
    pub async fn update_scim_group(
        &mut self,
        id: Uuid,
        display_name: &str,
        external_id: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let t = self.tenant;
        let r = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE scim_groups SET display_name = $3, external_id = $4, version = version + 1, \
             updated_at = $5 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(display_name)
        .bind(external_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(r == 1)
    }

    pub async fn scim_group(&mut self, id: Uuid) -> Result<Option<ScimGroupRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {GROUP_COLS} FROM scim_groups WHERE tenant_id = $1 AND id = $2");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    pub async fn scim_groups(&mut self) -> Result<Vec<ScimGroupRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {GROUP_COLS} FROM scim_groups WHERE tenant_id = $1 ORDER BY id");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }

    pub async fn delete_scim_group(&mut self, id: Uuid) -> Result<bool> {
        let t = self.tenant;
        let r = on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM scim_groups WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(r == 1)
    }

    /// Every membership of the tenant, or of one group.
    pub async fn scim_members(&mut self, group: Option<Uuid>) -> Result<Vec<ScimMemberRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT group_id, user_id FROM scim_group_members WHERE tenant_id = $1 \
             AND ($2 IS NULL OR group_id = $2) ORDER BY group_id, user_id"
        )
        .bind(t)
        .bind(group)
        .fetch_all(c)
        .await?))
    }

    pub async fn add_scim_member(&mut self, group: Uuid, user: UserId) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO scim_group_members (tenant_id, group_id, user_id) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING"
        )
        .bind(t)
        .bind(group)
        .bind(user)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn remove_scim_member(&mut self, group: Uuid, user: UserId) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM scim_group_members WHERE tenant_id = $1 AND group_id = $2 AND user_id = $3"
        )
        .bind(t)
        .bind(group)
        .bind(user)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Display names of the groups a user is a member of.
    pub async fn scim_groups_of(&mut self, user: UserId) -> Result<Vec<String>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT g.display_name FROM scim_group_members m JOIN scim_groups g \
             ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
             WHERE m.tenant_id = $1 AND m.user_id = $2 ORDER BY g.display_name"
        )
        .bind(t)
        .bind(user)
        .fetch_all(c)
        .await?))
    }
}
