//! Verified API keys, remembered for a fraction of a second.
//!
//! Verifying `Authorization: Bearer kluis_...` is a database read (the key and its tenant's
//! status); on SQLite that read alone costs as much CPU as a whole `/healthz` response, most
//! of it the WAL read lock that keeps several processes on one database file consistent.
//! A key that verified recently is taken from here instead.
//!
//! Revocation stays exact, in every process:
//! - In this process, every change that can end a key (revoke, rotate, deprovisioning a
//!   user, suspending or shredding a tenant) evicts the tenant's entries before it returns.
//! - An entry lives `ttl` from the moment *before* the read that verified it, and each such
//!   change then waits `ttl` before it returns. So once a revoke has returned, no process
//!   (another server on the same database, the CLI) still holds an entry that predates it:
//!   that entry's read began before the revoke committed, and it expired before the wait ended.
//! - A verification that raced an eviction in this process is not stored (generation check).
//!
//! Only successful verifications are stored, so guessing keys cannot fill the map; entries are
//! keyed by the SHA-256 of the secret (as in the database), never the secret.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{ApiKeyId, Scope, TenantId};

/// At most this many keys are remembered; beyond it, verifications are simply not stored.
const MAX_ENTRIES: usize = 10_000;

/// What a request needs from a verified key.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedKey {
    pub tenant: TenantId,
    pub id: ApiKeyId,
    pub scopes: Vec<Scope>,
    /// Set when the secret is a rotated key's previous one: it stops working then.
    pub valid_until: Option<i64>,
    pub last_used_at: Option<i64>,
}

struct Entry {
    key: VerifiedKey,
    /// When the read that verified it began.
    read_at: Instant,
}

/// A ticket taken before the verifying read; see [`ApiKeyCache::store`].
pub(crate) struct Ticket {
    read_at: Instant,
    generation: u64,
}

pub(crate) struct ApiKeyCache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<[u8; 32], Entry>,
    /// Bumped by every eviction.
    generation: u64,
}

impl ApiKeyCache {
    /// `ttl` zero turns the cache off (and the waits with it).
    pub(crate) fn new(ttl: Duration) -> Self {
        ApiKeyCache {
            ttl,
            inner: Mutex::default(),
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A key verified less than `ttl` ago.
    pub(crate) fn get(&self, secret_hash: &[u8; 32]) -> Option<VerifiedKey> {
        if self.ttl.is_zero() {
            return None;
        }
        let inner = self.inner.lock().ok()?;
        let e = inner.entries.get(secret_hash)?;
        (e.read_at.elapsed() < self.ttl).then(|| e.key.clone())
    }

    /// Taken before the read whose result may be stored.
    pub(crate) fn ticket(&self) -> Ticket {
        let generation = self.inner.lock().map_or(u64::MAX, |i| i.generation);
        Ticket {
            read_at: Instant::now(),
            generation,
        }
    }

    /// Stores a verification, unless an eviction happened since its ticket was taken.
    pub(crate) fn store(&self, ticket: Ticket, secret_hash: [u8; 32], key: VerifiedKey) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.generation != ticket.generation {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            inner.entries.retain(|_, e| e.read_at.elapsed() < ttl);
            if inner.entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        inner.entries.insert(
            secret_hash,
            Entry {
                key,
                read_at: ticket.read_at,
            },
        );
    }

    /// Records that a key was just marked used (so the next touch is a minute away).
    pub(crate) fn touched(&self, secret_hash: &[u8; 32], at: i64) {
        if let Ok(mut inner) = self.inner.lock()
            && let Some(e) = inner.entries.get_mut(secret_hash)
        {
            e.key.last_used_at = Some(at);
        }
    }

    /// Forgets every key of `tenant` in this process, and any verification still in flight.
    pub(crate) fn evict_tenant(&self, tenant: TenantId) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            inner.entries.retain(|_, e| e.key.tenant != tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tenant: TenantId) -> VerifiedKey {
        VerifiedKey {
            tenant,
            id: ApiKeyId(uuid::Uuid::now_v7()),
            scopes: vec![Scope::UsersRead],
            valid_until: None,
            last_used_at: None,
        }
    }

    #[test]
    fn remembers_a_verified_key_for_its_lifetime_only() {
        let c = ApiKeyCache::new(Duration::from_millis(50));
        let t = TenantId(uuid::Uuid::now_v7());
        let k = key(t);
        c.store(c.ticket(), [1; 32], k.clone());
        assert_eq!(c.get(&[1; 32]).map(|v| v.id), Some(k.id));
        assert!(c.get(&[2; 32]).is_none(), "another secret");
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get(&[1; 32]).is_none(), "expired");
    }

    #[test]
    fn lifetime_counts_from_before_the_read() {
        let c = ApiKeyCache::new(Duration::from_millis(50));
        let ticket = c.ticket();
        // The verifying read took longer than the lifetime: nothing usable is stored.
        std::thread::sleep(Duration::from_millis(60));
        c.store(ticket, [1; 32], key(TenantId(uuid::Uuid::now_v7())));
        assert!(c.get(&[1; 32]).is_none());
    }

    #[test]
    fn eviction_is_per_tenant_and_beats_a_verification_in_flight() {
        let c = ApiKeyCache::new(Duration::from_secs(60));
        let (a, b) = (
            TenantId(uuid::Uuid::now_v7()),
            TenantId(uuid::Uuid::now_v7()),
        );
        c.store(c.ticket(), [1; 32], key(a));
        c.store(c.ticket(), [2; 32], key(b));
        // A read began, then the key was revoked (eviction), then the read finished with
        // the old answer: it must not be stored.
        let in_flight = c.ticket();
        c.evict_tenant(a);
        c.store(in_flight, [3; 32], key(a));
        assert!(c.get(&[1; 32]).is_none(), "evicted");
        assert!(c.get(&[3; 32]).is_none(), "stale verification stored");
        assert!(c.get(&[2; 32]).is_some(), "other tenant untouched");
        // A read that starts after the eviction is stored again.
        c.store(c.ticket(), [1; 32], key(a));
        assert!(c.get(&[1; 32]).is_some());
    }

    #[test]
    fn zero_lifetime_turns_it_off() {
        let c = ApiKeyCache::new(Duration::ZERO);
        c.store(c.ticket(), [1; 32], key(TenantId(uuid::Uuid::now_v7())));
        assert!(c.get(&[1; 32]).is_none());
    }

    #[test]
    fn a_full_cache_stores_nothing_more() {
        let c = ApiKeyCache::new(Duration::from_secs(60));
        let t = TenantId(uuid::Uuid::now_v7());
        for i in 0..MAX_ENTRIES as u32 {
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&i.to_le_bytes());
            c.store(c.ticket(), h, key(t));
        }
        c.store(c.ticket(), [0xff; 32], key(t));
        assert!(c.get(&[0xff; 32]).is_none());
    }
}
