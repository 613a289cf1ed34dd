//! Figures for operations (Prometheus metrics): counts only, never contents.

use crate::engine::Pool;
use crate::{Result, Store, TenantTx, on_conn};

/// One tenant's (or the platform log's) operational state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpsCounts {
    /// Events in the audit log.
    pub audit_size: i64,
    /// Size and time (unix ms) of the latest signed checkpoint.
    pub checkpoint_size: Option<i64>,
    pub checkpoint_at: Option<i64>,
    /// Accounts locked out at `now`.
    pub locked_accounts: i64,
    pub outbox_pending: i64,
    pub outbox_failed: i64,
}

/// Connections of the store's pools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

impl Store {
    /// Open and idle connections over the store's sqlx pools.
    pub fn pool_stats(&self) -> PoolStats {
        match &self.pool {
            Pool::Sqlite { write, read, .. } => PoolStats {
                size: write.size() + read.size(),
                idle: u32::try_from(write.num_idle() + read.num_idle()).unwrap_or(u32::MAX),
            },
            Pool::Pg(p) => PoolStats {
                size: p.size(),
                idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
            },
        }
    }
}

impl TenantTx {
    pub async fn ops_counts(&mut self, now: i64) -> Result<OpsCounts> {
        let t = self.tenant;
        let audit_size: Option<i64> = on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT size FROM audit_heads WHERE tenant_id = $1"
        )
        .bind(t)
        .fetch_optional(c)
        .await?);
        let checkpoint: Option<(i64, i64)> = on_conn!(&mut self.tx, |c| {
            sqlx::query_as(
            "SELECT size, at FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1"
        )
        .bind(t)
        .fetch_optional(c)
        .await?
        });
        let locked_accounts: i64 = on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT count(*) FROM login_throttle WHERE tenant_id = $1 AND bucket = 'account' \
             AND locked_until > $2"
        )
        .bind(t)
        .bind(now)
        .fetch_one(c)
        .await?);
        let outbox: Vec<(String, i64)> = on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT status, count(*) FROM mail_outbox WHERE tenant_id = $1 \
             AND status IN ('pending', 'failed') GROUP BY status"
        )
        .bind(t)
        .fetch_all(c)
        .await?);
        let count = |s: &str| outbox.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
        Ok(OpsCounts {
            audit_size: audit_size.unwrap_or(0),
            checkpoint_size: checkpoint.map(|c| c.0),
            checkpoint_at: checkpoint.map(|c| c.1),
            locked_accounts,
            outbox_pending: count("pending"),
            outbox_failed: count("failed"),
        })
    }
}
