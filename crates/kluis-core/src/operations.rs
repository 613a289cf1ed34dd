//! The installation's operational state across every organisation, for `/metrics`: audit
//! checkpoint lag, key ages, lockouts, undelivered email. Aggregates only (sums and maxima),
//! so the series count does not grow with the number of organisations, and no names or
//! contents, only counts.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::tenants::PlatformActor;
use crate::{Kluis, Result, TenantId};

/// How long a snapshot is reused: a scrape every few seconds must not turn into a query per
/// organisation every few seconds.
const SNAPSHOT_TTL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpsSnapshot {
    /// Organisations (the platform log not counted).
    pub tenants: u64,
    /// Audit events not yet covered by a signed checkpoint, over all logs.
    pub audit_unsigned_events: i64,
    /// The oldest latest-checkpoint among logs with unsigned events, in seconds (0: none).
    pub audit_checkpoint_age_secs: f64,
    /// Logs with events and no checkpoint at all.
    pub audit_logs_without_checkpoint: u64,
    /// The oldest active data key, in seconds.
    pub data_key_age_secs_max: f64,
    /// Logs without an active data key (shredded or never provisioned).
    pub logs_without_data_key: u64,
    pub locked_accounts: i64,
    pub mail_pending: i64,
    pub mail_failed: i64,
    pub pool_connections: u32,
    pub pool_idle: u32,
}

#[derive(Default)]
pub struct OpsCache(Mutex<Option<(Instant, OpsSnapshot)>>);

impl Kluis {
    /// The operational snapshot (at most [`SNAPSHOT_TTL`] old). Platform operators only.
    pub async fn ops_snapshot(&self, _by: &PlatformActor) -> Result<OpsSnapshot> {
        if let Some((at, s)) = self
            .ops_cache
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && at.elapsed() < SNAPSHOT_TTL
        {
            return Ok(s.clone());
        }
        let s = self.collect_ops().await?;
        *self.ops_cache.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), s.clone()));
        Ok(s)
    }

    async fn collect_ops(&self) -> Result<OpsSnapshot> {
        let console = PlatformActor::console();
        let mut logs = vec![TenantId::PLATFORM];
        let mut cursor = None;
        loop {
            let page = self
                .list_tenants(&console, cursor.as_deref(), Some(200))
                .await?;
            logs.extend(page.items.iter().map(|t| t.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let now = self.now();
        let pool = self.store.pool_stats();
        let mut s = OpsSnapshot {
            tenants: (logs.len() - 1) as u64,
            pool_connections: pool.size,
            pool_idle: pool.idle,
            ..OpsSnapshot::default()
        };
        let mut oldest_checkpoint: Option<i64> = None;
        for id in logs {
            let mut tx = self.store.tenant(id).begin_read().await?;
            let c = tx.ops_counts(now).await?;
            tx.commit().await?;
            let signed = c.checkpoint_size.unwrap_or(0);
            if c.audit_size > signed {
                s.audit_unsigned_events += c.audit_size - signed;
                match c.checkpoint_at {
                    Some(at) => {
                        oldest_checkpoint = Some(oldest_checkpoint.map_or(at, |o| o.min(at)))
                    }
                    None => s.audit_logs_without_checkpoint += 1,
                }
            }
            s.locked_accounts += c.locked_accounts;
            s.mail_pending += c.outbox_pending;
            s.mail_failed += c.outbox_failed;
            match self.data_key_age(id).await? {
                Some(age) => {
                    let secs = (now - age.created_at_ms).max(0) as f64 / 1000.0;
                    s.data_key_age_secs_max = s.data_key_age_secs_max.max(secs);
                }
                None => s.logs_without_data_key += 1,
            }
        }
        s.audit_checkpoint_age_secs =
            oldest_checkpoint.map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0);
        Ok(s)
    }
}
