//! Per-tenant keys and sealing of personal data.
//!
//! Each tenant has versioned data keys (AES-256-GCM, purpose `data`) and a blind-index key
//! (HMAC-SHA256, purpose `index`), created when the tenant is provisioned and stored only
//! wrapped by a key-encryption key (KEK) held by a [`Kms`]. Sealed values are bound to tenant,
//! table, column and record id, so a ciphertext copied elsewhere fails to open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kluis_crypto::blind_index::{BlindIndexKey, blind_index};
use kluis_crypto::envelope::{self, DataKey, KeyRing, Kms, SealContext, tenant_wrap_aad};
use kluis_store::TenantTx;
use uuid::Uuid;

use crate::{Error, ErrorKind, Kluis, Result, TenantId};

/// Random 96-bit nonces: NIST SP 800-38D caps one key at 2^32 messages. Rotate well before.
pub const DEK_ROTATE_AFTER: i64 = 1 << 31;

/// Unwrapped keys are cached this long, so KEK use stays rare but a change made by another
/// node (rotation, shredding) is picked up within minutes.
const CACHE_TTL: Duration = Duration::from_secs(300);

/// The KEKs this process can use: the primary wraps, any of them unwraps (by `kek_id`), so a
/// KEK rotation can proceed tenant by tenant and resume after a crash.
pub struct KeyEncryptionKeys {
    primary: Arc<dyn Kms>,
    others: Vec<Arc<dyn Kms>>,
}

impl KeyEncryptionKeys {
    pub fn new(primary: Arc<dyn Kms>) -> Self {
        KeyEncryptionKeys {
            primary,
            others: Vec::new(),
        }
    }

    /// Adds a KEK that may still wrap some keys (the previous one during rotation).
    pub fn with_secondary(mut self, kms: Arc<dyn Kms>) -> Self {
        self.others.push(kms);
        self
    }

    pub fn primary_id(&self) -> String {
        self.primary.key_id()
    }

    fn by_id(&self, id: &str) -> Option<&Arc<dyn Kms>> {
        std::iter::once(&self.primary)
            .chain(&self.others)
            .find(|k| k.key_id() == id)
    }
}

/// One tenant's unwrapped keys.
pub(crate) struct TenantKeys {
    tenant: TenantId,
    ring: KeyRing,
    index: BlindIndexKey,
    current_sealed: i64,
}

fn wrap_aad(tenant: TenantId, purpose: &str) -> Vec<u8> {
    // Bind the purpose too: a data key row cannot be swapped in as the index key.
    let mut aad = tenant_wrap_aad(tenant.0.as_bytes());
    aad.extend_from_slice(purpose.as_bytes());
    aad
}

fn unreadable() -> Error {
    Error::new(
        ErrorKind::Internal,
        "data_unreadable",
        "stored data could not be decrypted",
    )
}

impl TenantKeys {
    fn ctx<'a>(&self, table: &'a str, column: &'a str, record: Uuid) -> SealContext<'a> {
        SealContext {
            tenant: *self.tenant.0.as_bytes(),
            table,
            column,
            record: *record.as_bytes(),
        }
    }

    pub(crate) fn seal(
        &self,
        table: &str,
        column: &str,
        record: Uuid,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        Ok(envelope::seal(
            self.ring.current(),
            &self.ctx(table, column, record),
            plaintext,
        )?)
    }

    pub(crate) fn seal_str(
        &self,
        table: &str,
        column: &str,
        record: Uuid,
        s: &str,
    ) -> Result<Vec<u8>> {
        self.seal(table, column, record, s.as_bytes())
    }

    /// Decryption failures are errors, never empty values.
    pub(crate) fn open_str(
        &self,
        table: &str,
        column: &str,
        record: Uuid,
        sealed: &[u8],
    ) -> Result<String> {
        let plain =
            envelope::open(&self.ring, &self.ctx(table, column, record), sealed).map_err(|e| {
                tracing::error!(error = %e, table, column, "sealed value failed to open");
                unreadable()
            })?;
        String::from_utf8(plain).map_err(|_| unreadable())
    }

    pub(crate) fn open(
        &self,
        table: &str,
        column: &str,
        record: Uuid,
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        envelope::open(&self.ring, &self.ctx(table, column, record), sealed)
            .map_err(|_| unreadable())
    }

    /// Blind index of a normalised value in a domain (e.g. `audit_events.ip`).
    pub(crate) fn blind(&self, domain: &str, normalised: &str) -> [u8; 32] {
        blind_index(&self.index, domain, normalised)
    }

    pub(crate) fn email_index(&self, normalised_email: &str) -> [u8; 32] {
        blind_index(&self.index, "users.email", normalised_email)
    }

    pub(crate) fn current_version(&self) -> i64 {
        i64::from(self.ring.current().version())
    }
}

#[derive(Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<TenantId, (Instant, Arc<TenantKeys>)>>,
}

impl KeyCache {
    fn get(&self, t: TenantId) -> Option<Arc<TenantKeys>> {
        let map = self.entries.lock().ok()?;
        map.get(&t)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, k)| k.clone())
    }
    fn put(&self, t: TenantId, k: Arc<TenantKeys>) {
        if let Ok(mut map) = self.entries.lock() {
            map.insert(t, (Instant::now(), k));
        }
    }
    pub(crate) fn evict(&self, t: TenantId) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(&t);
        }
    }
}

impl Kluis {
    /// Creates a new tenant's first data key and index key inside its provisioning transaction.
    pub(crate) async fn provision_keys(&self, tx: &mut TenantTx) -> Result<()> {
        let tenant = tx.tenant();
        let now = self.now();
        let kms = &self.keks.primary;
        let data = DataKey::generate(1)?;
        tx.insert_tenant_key(
            "data",
            1,
            &kms.wrap(&data, &wrap_aad(tenant, "data"))?,
            &kms.key_id(),
            now,
        )
        .await?;
        let index = DataKey::generate(1)?;
        tx.insert_tenant_key(
            "index",
            1,
            &kms.wrap(&index, &wrap_aad(tenant, "index"))?,
            &kms.key_id(),
            now,
        )
        .await?;
        Ok(())
    }

    /// The tenant's keys, unwrapped (cached briefly).
    pub(crate) async fn keys(&self, tx: &mut TenantTx) -> Result<Arc<TenantKeys>> {
        let tenant = tx.tenant();
        if let Some(k) = self.key_cache.get(tenant) {
            return Ok(k);
        }
        let rows = tx.tenant_keys().await?;
        let mut ring: Option<KeyRing> = None;
        let mut index = None;
        let mut current_sealed = 0;
        // Active versions last, so the ring's current key is the active one.
        let mut rows = rows;
        rows.sort_by_key(|r| (r.state == "active", r.version));
        for r in rows {
            let kms = self.keks.by_id(&r.kek_id).ok_or_else(|| {
                tracing::error!(kek_id = %r.kek_id, "no key-encryption key with this id is configured");
                Error::new(ErrorKind::Unavailable, "key_unavailable", "the key protecting this organisation's data is not available")
            })?;
            let key = kms
                .unwrap(&r.wrapped, &wrap_aad(tenant, &r.purpose))
                .map_err(|e| {
                    tracing::error!(error = %e, "unwrapping a tenant key failed");
                    Error::new(
                        ErrorKind::Unavailable,
                        "key_unavailable",
                        "the key protecting this organisation's data is not available",
                    )
                })?;
            match r.purpose.as_str() {
                "data" => {
                    if r.state == "active" {
                        current_sealed = r.sealed_count;
                    }
                    match &mut ring {
                        None => ring = Some(KeyRing::new(key)),
                        Some(ring) if r.state == "active" => ring.rotate_to(key),
                        Some(ring) => ring.insert(key),
                    }
                }
                _ => index = Some(BlindIndexKey::from_bytes(*key.expose_secret())),
            }
        }
        let (Some(ring), Some(index)) = (ring, index) else {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "key_unavailable",
                "this organisation has no keys (shredded or never provisioned)",
            ));
        };
        let keys = Arc::new(TenantKeys {
            tenant,
            ring,
            index,
            current_sealed,
        });
        self.key_cache.put(tenant, keys.clone());
        Ok(keys)
    }

    /// Records `n` values sealed under the current data key in this write transaction, and
    /// rotates to a new data key version when the key has sealed [`DEK_ROTATE_AFTER`] values.
    pub(crate) async fn count_sealed(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        n: i64,
    ) -> Result<()> {
        tx.add_sealed_count(keys.current_version(), n).await?;
        if keys.current_sealed + n >= DEK_ROTATE_AFTER {
            self.add_data_key_version(tx, keys.current_version() + 1)
                .await?;
        }
        Ok(())
    }

    async fn add_data_key_version(&self, tx: &mut TenantTx, version: i64) -> Result<()> {
        let tenant = tx.tenant();
        let v = u32::try_from(version).map_err(|_| Error::internal("key version overflow"))?;
        let dek = DataKey::generate(v)?;
        let kms = &self.keks.primary;
        tx.insert_tenant_key(
            "data",
            version,
            &kms.wrap(&dek, &wrap_aad(tenant, "data"))?,
            &kms.key_id(),
            self.now(),
        )
        .await?;
        self.key_cache.evict(tenant);
        tracing::info!(%tenant, version, "data key rotated");
        Ok(())
    }

    /// KEK rotation for one tenant: re-wraps every key not yet under the primary KEK. The keys
    /// themselves do not change, so no data is re-encrypted. Returns how many were re-wrapped.
    pub async fn rewrap_tenant_keys(&self, tenant: TenantId) -> Result<u64> {
        let mut tx = self.store.tenant(tenant).begin().await?;
        let primary = self.keks.primary_id();
        let mut n = 0;
        for r in tx.tenant_keys().await? {
            if r.kek_id == primary {
                continue;
            }
            let old = self.keks.by_id(&r.kek_id).ok_or_else(|| {
                Error::new(
                    ErrorKind::Unavailable,
                    "key_unavailable",
                    format!("KEK {} is not configured", r.kek_id),
                )
            })?;
            let aad = wrap_aad(tenant, &r.purpose);
            let key = old.unwrap(&r.wrapped, &aad)?;
            tx.rewrap_tenant_key(
                &r.purpose,
                r.version,
                &self.keks.primary.wrap(&key, &aad)?,
                &primary,
            )
            .await?;
            n += 1;
        }
        if n > 0 {
            let keys = self.keys(&mut tx).await?;
            let ev = crate::audit::Event::ok("keys.rewrap", "tenant_keys", tenant)
                .with(serde_json::json!({"keys": n, "kek": primary}));
            self.audit(
                &mut tx,
                &keys,
                "console",
                &crate::RequestContext::default(),
                ev,
            )
            .await?;
        }
        tx.commit().await?;
        self.key_cache.evict(tenant);
        Ok(n)
    }
}
