//! Platform transaction: the tenant directory, setup tokens and platform keys. It offers no
//! access to tenant tables; creating a tenant's first rows goes through a [`TenantTx`].

use crate::engine::Tx;
use crate::ids::{PlatformKeyId, TenantId};
use crate::rows::{PlatformKeyRow, TenantRow};
use crate::{Result, on_conn};

pub struct PlatformTx {
    pub(crate) tx: Tx,
}

const TENANT_COLS: &str = "id, slug, name, status, created_at, updated_at";

/// Tenants after the cursor `$1`, as a plain comparison so the primary key is sought.
pub(crate) fn tenants_page_sql(has_cursor: bool) -> String {
    format!(
        "SELECT {TENANT_COLS} FROM tenants WHERE {} ORDER BY id LIMIT $2",
        crate::tenant::when_set(has_cursor, "id > $1", 1)
    )
}

impl PlatformTx {
    pub(crate) fn new(tx: Tx) -> Self {
        PlatformTx { tx }
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await
    }

    pub async fn insert_tenant(
        &mut self,
        id: TenantId,
        slug: &str,
        name: &str,
        now: i64,
    ) -> Result<()> {
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO tenants (id, slug, name, status, created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $4)"
        )
        .bind(id)
        .bind(slug)
        .bind(name)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn tenant(&mut self, id: TenantId) -> Result<Option<TenantRow>> {
        let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE id = $1");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    pub async fn tenant_by_slug(&mut self, slug: &str) -> Result<Option<TenantRow>> {
        let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE slug = $1");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(slug)
        .fetch_optional(c)
        .await?))
    }

    pub async fn list_tenants(
        &mut self,
        after: Option<TenantId>,
        limit: i64,
    ) -> Result<Vec<TenantRow>> {
        let sql = tenants_page_sql(after.is_some());
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    pub async fn count_tenants(&mut self) -> Result<i64> {
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT count(*) FROM tenants"
        )
        .fetch_one(c)
        .await?))
    }

    pub async fn set_tenant_status(
        &mut self,
        id: TenantId,
        status: kluis_types::Status,
        now: i64,
    ) -> Result<bool> {
        let r = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE tenants SET status = $2, updated_at = $3 WHERE id = $1"
        )
        .bind(id)
        .bind(status)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(r == 1)
    }

    // ---- setup tokens -----------------------------------------------------------------

    /// Stores a new setup token hash and invalidates every older unused one, so at most one
    /// setup link is ever live.
    pub async fn replace_setup_token(
        &mut self,
        hash: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE setup_tokens SET used_at = $1 WHERE used_at IS NULL"
        )
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected());
        on_conn!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)"
        )
        .bind(hash)
        .bind(now)
        .bind(expires_at)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The expiry of an unused, unexpired token with this hash (a setup link still good).
    pub async fn live_setup_token(&mut self, hash: &[u8], now: i64) -> Result<Option<i64>> {
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_scalar(
                "SELECT expires_at FROM setup_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(hash)
            .bind(now)
            .fetch_optional(c)
            .await?
        }))
    }

    /// Marks the token used if it is unused and unexpired. Single use is enforced by the
    /// conditional UPDATE: of two concurrent callers only one sees a row affected.
    pub async fn consume_setup_token(&mut self, hash: &[u8], now: i64) -> Result<bool> {
        let r = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE setup_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2"
        )
        .bind(hash)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(r == 1)
    }

    // ---- platform keys ----------------------------------------------------------------

    pub async fn insert_platform_key(
        &mut self,
        id: PlatformKeyId,
        name: &str,
        hash: &[u8],
        now: i64,
    ) -> Result<()> {
        on_conn!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO platform_keys (id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(id)
        .bind(name)
        .bind(hash)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn platform_key_by_hash(&mut self, hash: &[u8]) -> Result<Option<PlatformKeyRow>> {
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_as(
            "SELECT id, name, created_at, revoked_at FROM platform_keys WHERE secret_hash = $1 AND revoked_at IS NULL"
        )
        .bind(hash)
        .fetch_optional(c)
        .await?
        }))
    }
}

#[cfg(feature = "testing")]
impl PlatformTx {
    /// The `app.tenant_id` setting this connection carries (PostgreSQL; None on SQLite).
    pub async fn current_tenant_setting(&mut self) -> Result<Option<String>> {
        self.tx.current_tenant_setting().await
    }

    /// Unfiltered row count of a tenant table from the platform side (sees nothing under RLS).
    pub async fn count_rows_unfiltered(&mut self, table: &str) -> Result<i64> {
        self.tx.count_rows_unfiltered(table).await
    }
}

impl PlatformTx {
    /// Turns this transaction into one scoped to `tenant`, so provisioning a tenant (directory
    /// row + settings + first owner) commits or fails as one unit.
    pub async fn enter_tenant(self, tenant: TenantId) -> Result<crate::TenantTx> {
        crate::TenantTx::start(self.tx, tenant).await
    }
}
