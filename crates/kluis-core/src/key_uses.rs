//! Key uses for the audit trail: every unwrap of a tenant root key (a KMS or customer-key
//! operation) and every failed customer-key unwrap is queued here and written to the platform
//! log by [`Kluis::flush_key_uses`] (the server flushes every few seconds, the CLI before it
//! exits).
//!
//! Why a queue: unwraps happen inside tenant transactions (on a key-cache miss); writing to the
//! platform log there would need a second write transaction while the first holds the SQLite
//! write lock. Failed unwraps are queued at most once per tenant per key-cache lifetime, so a
//! revoked key does not flood the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::json;

use crate::audit::Event;
use crate::{Kluis, RequestContext, Result, TenantId};

/// More than this many queued uses are counted, not kept (the count is logged).
const MAX_QUEUED: usize = 10_000;

#[derive(Debug, Clone)]
pub(crate) struct KeyUse {
    tenant: TenantId,
    action: &'static str,
    details: serde_json::Value,
}

#[derive(Default)]
pub(crate) struct KeyUses {
    queue: Mutex<Vec<KeyUse>>,
    dropped: Mutex<u64>,
    /// When a tenant's last failed unwrap was queued.
    failures: Mutex<HashMap<TenantId, Instant>>,
}

impl KeyUses {
    fn push(&self, u: KeyUse) {
        let Ok(mut q) = self.queue.lock() else { return };
        if q.len() >= MAX_QUEUED {
            if let Ok(mut d) = self.dropped.lock() {
                *d += 1;
            }
            return;
        }
        q.push(u);
    }

    pub(crate) fn unwrapped(&self, tenant: TenantId, provider: &str, kek_id: &str) {
        self.push(KeyUse {
            tenant,
            action: "keys.unwrap",
            details: json!({"provider": provider, "key_id": kek_id}),
        });
    }

    /// A failed unwrap (customer key revoked or unreachable), at most once per `quiet`.
    pub(crate) fn failed(&self, tenant: TenantId, reason: &str, quiet: std::time::Duration) {
        if let Ok(mut f) = self.failures.lock() {
            if f.get(&tenant).is_some_and(|t| t.elapsed() < quiet) {
                return;
            }
            f.insert(tenant, Instant::now());
        }
        self.push(KeyUse {
            tenant,
            action: "keys.customer_key_unavailable",
            details: json!({"reason": reason}),
        });
    }

    fn take(&self) -> Vec<KeyUse> {
        self.queue
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default()
    }
}

impl Kluis {
    /// Writes the queued key uses to the platform log, in one transaction. Returns how many.
    pub async fn flush_key_uses(&self) -> Result<usize> {
        let uses = self.key_uses.take();
        if let Ok(mut d) = self.key_uses.dropped.lock()
            && *d > 0
        {
            tracing::warn!(dropped = *d, "key uses not recorded: queue full");
            *d = 0;
        }
        if uses.is_empty() {
            return Ok(0);
        }
        let n = uses.len();
        let mut tx = self.store.tenant(TenantId::PLATFORM).begin().await?;
        let keys = self.keys(&mut tx).await?;
        for u in uses {
            let ev = Event::ok(u.action, "tenant", u.tenant).with(u.details);
            self.audit(&mut tx, &keys, "system", &RequestContext::default(), ev)
                .await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}
