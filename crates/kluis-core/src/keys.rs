//! Per-tenant keys and sealing of personal data.
//!
//! Key hierarchy: KEK (held by a [`Kms`]: local key file or PKCS#11) -> tenant root key (one per
//! tenant, wrapped by the KEK, kept in a [`RootKeyStore`] OUTSIDE the database) -> versioned data
//! keys (AES-256-GCM, purpose `data`) and a blind-index key (HMAC-SHA256, purpose `index`),
//! stored in the database wrapped by the tenant root key.
//!
//! Because the root key never enters the database, destroying it (crypto-shredding) makes the
//! tenant's data unreadable in the database AND in every database backup, and rotating the KEK
//! only re-wraps one small blob per tenant. Sealed values are bound to tenant,
//! table, column and record id, so a ciphertext copied elsewhere fails to open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::db::TenantTx;
use crate::db::rows::Reseal;
use kluis_crypto::blind_index::{BlindIndexKey, blind_index, state_digest};
use kluis_crypto::envelope::{
    self, DataKey, Kek, KeyRing, Kms, LocalKms, SealContext, tenant_wrap_aad,
};
use uuid::Uuid;

use crate::customer_key::{CustomerKeyRef, customer_key_unavailable};
use crate::{Error, ErrorKind, Kluis, Result, TenantId};

/// Random 96-bit nonces: NIST SP 800-38D caps one key at 2^32 messages. Rotate well before.
pub const DEK_ROTATE_AFTER: i64 = 1 << 31;

/// Unwrapped keys are cached this long by default (`CoreConfig::key_cache_ttl`), so KEK use
/// stays rare but a change made by another node (rotation, shredding) or a revoked customer key
/// is picked up within a minute.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

/// Within this window a cached entry is used as is; after it, one cheap query checks that no
/// newer data-key version exists. A data-key rotation waits longer than this before writing
/// values under the new version, so every server can read them by then.
pub const CACHE_REVALIDATE: Duration = Duration::from_secs(2);

/// The KEKs this process can use: the primary wraps, any of them unwraps (by `kek_id`), so a
/// KEK rotation can proceed tenant by tenant and resume after a crash.
pub struct KeyEncryptionKeys {
    pub(crate) primary: Arc<dyn Kms>,
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

    pub(crate) fn by_id(&self, id: &str) -> Option<&Arc<dyn Kms>> {
        std::iter::once(&self.primary)
            .chain(&self.others)
            .find(|k| k.key_id() == id)
    }
}

/// One tenant's unwrapped keys.
pub(crate) struct TenantKeys {
    /// The tenant root key, which wraps this tenant's data and index keys.
    root: Arc<dyn Kms>,
    tenant: TenantId,
    ring: KeyRing,
    index: BlindIndexKey,
    current_sealed: i64,
    /// Highest data-key version in the ring (for cache validation).
    max_version: i64,
    /// Records sealed under an older version do not open (min decryption version); audit
    /// payloads, append-only, still do.
    min_record_version: i64,
}

pub(crate) fn wrap_aad(tenant: TenantId, purpose: &str) -> Vec<u8> {
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

    /// Refuses values sealed under a version disabled for records.
    fn check_record_version(&self, table: &str, column: &str, sealed: &[u8]) -> Result<()> {
        match envelope::sealed_key_version(sealed) {
            Ok(v) if i64::from(v) >= self.min_record_version => Ok(()),
            _ => {
                tracing::error!(table, column, "sealed value under a disabled key version");
                Err(Error::new(
                    ErrorKind::Internal,
                    "key_version_disabled",
                    "stored data is sealed under a key version that is disabled for decryption",
                ))
            }
        }
    }

    /// Decryption failures are errors, never empty values.
    pub(crate) fn open_str(
        &self,
        table: &str,
        column: &str,
        record: Uuid,
        sealed: &[u8],
    ) -> Result<String> {
        self.check_record_version(table, column, sealed)?;
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
        self.check_record_version(table, column, sealed)?;
        self.open_retained(table, column, record, sealed)
    }

    /// Opens an append-only value (audit payloads) under any version, disabled ones included:
    /// such values cannot be re-encrypted and keep the version they were written with.
    pub(crate) fn open_retained(
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

    /// Keyed digest of a stored state (see `crate::state`).
    pub(crate) fn state_digest(&self, domain: &str, parts: &[&[u8]]) -> [u8; 32] {
        state_digest(&self.index, domain, parts)
    }

    pub(crate) fn email_index(&self, email: &kluis_types::Email) -> [u8; 32] {
        blind_index(&self.index, "users.email", email.as_str())
    }

    pub(crate) fn current_version(&self) -> i64 {
        i64::from(self.ring.current().version())
    }
}

pub(crate) struct KeyCache {
    entries: Mutex<HashMap<TenantId, CacheEntry>>,
    ttl: Duration,
}

/// (loaded at, last validated at, keys)
type CacheEntry = (Instant, Instant, Arc<TenantKeys>);

enum Cached {
    Fresh(Arc<TenantKeys>),
    Validate(Arc<TenantKeys>),
    Miss,
}

impl KeyCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        KeyCache {
            entries: Mutex::default(),
            ttl,
        }
    }
    fn get(&self, t: TenantId) -> Cached {
        let Ok(map) = self.entries.lock() else {
            return Cached::Miss;
        };
        match map.get(&t) {
            Some((loaded, _, _)) if loaded.elapsed() >= self.ttl => Cached::Miss,
            Some((_, validated, k)) if validated.elapsed() < CACHE_REVALIDATE => {
                Cached::Fresh(k.clone())
            }
            Some((_, _, k)) => Cached::Validate(k.clone()),
            None => Cached::Miss,
        }
    }
    fn validated(&self, t: TenantId) {
        if let Ok(mut map) = self.entries.lock()
            && let Some(e) = map.get_mut(&t)
        {
            e.1 = Instant::now();
        }
    }
    fn put(&self, t: TenantId, k: Arc<TenantKeys>) {
        if let Ok(mut map) = self.entries.lock() {
            map.insert(t, (Instant::now(), Instant::now(), k));
        }
    }
    pub(crate) fn evict(&self, t: TenantId) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(&t);
        }
    }
}

/// Where tenant root keys live: outside the database, so that database backups never contain
/// them. Values are opaque (already wrapped by a KEK).
pub trait RootKeyStore: Send + Sync {
    fn load(&self, tenant: TenantId) -> Result<Option<Vec<u8>>>;
    fn store(&self, tenant: TenantId, blob: &[u8]) -> Result<()>;
    /// Destroys the key for good. Returns false if there was none.
    fn destroy(&self, tenant: TenantId) -> Result<bool>;
}

/// Root keys as files `<dir>/<tenant>.key`, mode 0600, written atomically.
pub struct FileRootKeyStore {
    dir: std::path::PathBuf,
}

impl FileRootKeyStore {
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        FileRootKeyStore { dir: dir.into() }
    }
    fn path(&self, tenant: TenantId) -> std::path::PathBuf {
        self.dir.join(format!("{}.key", tenant.0))
    }
}

fn io_err(what: &str, e: std::io::Error) -> Error {
    tracing::error!(error = %e, what, "root key store");
    Error::new(
        ErrorKind::Unavailable,
        "key_unavailable",
        "the key store is not available",
    )
}

impl RootKeyStore for FileRootKeyStore {
    fn load(&self, tenant: TenantId) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(tenant)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", e)),
        }
    }
    fn store(&self, tenant: TenantId, blob: &[u8]) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.dir.join(format!(".{}.tmp", tenant.0));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_err("create", e))?;
        f.write_all(blob)
            .and_then(|_| f.sync_all())
            .map_err(|e| io_err("write", e))?;
        std::fs::rename(&tmp, self.path(tenant)).map_err(|e| io_err("rename", e))?;
        // Make the rename itself durable.
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("sync", e))
    }
    fn destroy(&self, tenant: TenantId) -> Result<bool> {
        match std::fs::remove_file(self.path(tenant)) {
            Ok(()) => {
                std::fs::File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io_err("sync", e))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", e)),
        }
    }
}

/// In-memory root keys: for tests and benchmarks only (lost at exit).
#[derive(Default)]
pub struct MemoryRootKeyStore(Mutex<HashMap<TenantId, Vec<u8>>>);

impl RootKeyStore for MemoryRootKeyStore {
    fn load(&self, tenant: TenantId) -> Result<Option<Vec<u8>>> {
        Ok(self
            .0
            .lock()
            .map_err(|_| Error::internal("lock"))?
            .get(&tenant)
            .cloned())
    }
    fn store(&self, tenant: TenantId, blob: &[u8]) -> Result<()> {
        self.0
            .lock()
            .map_err(|_| Error::internal("lock"))?
            .insert(tenant, blob.to_vec());
        Ok(())
    }
    fn destroy(&self, tenant: TenantId) -> Result<bool> {
        Ok(self
            .0
            .lock()
            .map_err(|_| Error::internal("lock"))?
            .remove(&tenant)
            .is_some())
    }
}

/// A root key as stored: which KEK wraps it, and the wrapped bytes. With a customer-managed
/// key, `wrapped` is wrapped by the tenant's own key and `customer` says where that key is.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredRootKey {
    pub(crate) kek_id: String,
    pub(crate) wrapped: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) customer: Option<CustomerKeyRef>,
}

/// The `kek_id` recorded for data and index keys: they are wrapped by the tenant root key.
const ROOT_WRAPPED: &str = "tenant-root";

fn key_unavailable(why: &str) -> Error {
    tracing::error!(why, "tenant keys unavailable");
    Error::new(
        ErrorKind::Unavailable,
        "key_unavailable",
        "the key protecting this organisation's data is not available",
    )
}

fn root_kms(root: &DataKey) -> Arc<dyn Kms> {
    Arc::new(LocalKms::new(Kek::from_bytes(*root.expose_secret())))
}

impl Kluis {
    pub(crate) fn encode_root(&self, tenant: TenantId, root: &DataKey) -> Result<Vec<u8>> {
        use base64::Engine;
        let kms = &self.keks.primary;
        let wrapped = kms.wrap(root, &wrap_aad(tenant, "root"))?;
        serde_json::to_vec(&StoredRootKey {
            kek_id: kms.key_id(),
            wrapped: base64::engine::general_purpose::STANDARD.encode(wrapped),
            customer: None,
        })
        .map_err(|_| Error::internal("root key encoding"))
    }

    /// The tenant's root key record as stored (still wrapped).
    pub(crate) fn stored_root(&self, tenant: TenantId) -> Result<StoredRootKey> {
        let blob = self
            .root_keys
            .load(tenant)?
            .ok_or_else(|| key_unavailable("no root key: shredded or never provisioned"))?;
        serde_json::from_slice(&blob).map_err(|_| key_unavailable("root key file unreadable"))
    }

    pub(crate) fn put_stored_root(&self, tenant: TenantId, stored: &StoredRootKey) -> Result<()> {
        let blob = serde_json::to_vec(stored).map_err(|_| Error::internal("root key encoding"))?;
        self.root_keys.store(tenant, &blob)
    }

    /// Unwraps the tenant's root key (see [`Kluis::unwrap_root`]) and queues the key use for the
    /// audit trail: every unwrap, and failed customer-key unwraps.
    pub(crate) fn load_root(&self, tenant: TenantId) -> Result<(DataKey, String)> {
        match self.unwrap_root(tenant) {
            Ok((root, kek_id)) => {
                let provider = if kek_id.starts_with("customer:") {
                    "customer"
                } else if kek_id.starts_with("pkcs11:") {
                    "pkcs11"
                } else {
                    "local"
                };
                self.key_uses.unwrapped(tenant, provider, &kek_id);
                Ok((root, kek_id))
            }
            Err(e) => {
                if e.kind == ErrorKind::Locked {
                    self.key_uses
                        .failed(tenant, e.code, self.config.key_cache_ttl);
                }
                Err(e)
            }
        }
    }

    /// Unwraps the tenant's root key with the platform KEK that wrapped it or, for a
    /// customer-managed key, inside the tenant's own token (the key id is then prefixed
    /// `customer:`).
    fn unwrap_root(&self, tenant: TenantId) -> Result<(DataKey, String)> {
        use base64::Engine;
        let stored = self.stored_root(tenant)?;
        let wrapped = base64::engine::general_purpose::STANDARD
            .decode(&stored.wrapped)
            .map_err(|_| key_unavailable("root key file unreadable"))?;
        let aad = wrap_aad(tenant, "root");
        let root = match &stored.customer {
            Some(c) => {
                let root = self
                    .customer_kms(tenant, c)?
                    .unwrap(&wrapped, &aad)
                    .map_err(|e| customer_key_unavailable(&e.to_string()))?;
                return Ok((root, format!("customer:{}", stored.kek_id)));
            }
            None => self
                .keks
                .by_id(&stored.kek_id)
                .ok_or_else(|| key_unavailable("root key wrapped by an unknown KEK"))?
                .unwrap(&wrapped, &aad)
                .map_err(|_| key_unavailable("root key does not unwrap"))?,
        };
        Ok((root, stored.kek_id))
    }

    /// Creates a new tenant's root key (outside the database) and its first data and index keys
    /// (inside `tx`, wrapped by the root key).
    pub(crate) async fn provision_keys(&self, tx: &mut TenantTx) -> Result<()> {
        let tenant = tx.tenant();
        let now = self.now();
        let root = DataKey::generate(1)?;
        self.root_keys
            .store(tenant, &self.encode_root(tenant, &root)?)?;
        let kms = root_kms(&root);
        let data = DataKey::generate(1)?;
        tx.insert_tenant_key(
            "data",
            1,
            &kms.wrap(&data, &wrap_aad(tenant, "data"))?,
            ROOT_WRAPPED,
            now,
        )
        .await?;
        let index = DataKey::generate(1)?;
        tx.insert_tenant_key(
            "index",
            1,
            &kms.wrap(&index, &wrap_aad(tenant, "index"))?,
            ROOT_WRAPPED,
            now,
        )
        .await?;
        Ok(())
    }

    /// The tenant's keys, unwrapped (cached briefly).
    pub(crate) async fn keys(&self, tx: &mut TenantTx) -> Result<Arc<TenantKeys>> {
        match self.key_cache.get(tx.tenant()) {
            Cached::Fresh(k) => Ok(k),
            // Boxed: the slower paths' state would otherwise make every caller's future (and
            // so every request handler's) kilobytes larger, copied on each request.
            other => Box::pin(self.keys_slow(tx, other)).await,
        }
    }

    async fn keys_slow(&self, tx: &mut TenantTx, cached: Cached) -> Result<Arc<TenantKeys>> {
        let tenant = tx.tenant();
        if let Cached::Validate(k) = cached
            && tx.data_key_versions().await? == (k.max_version, k.min_record_version)
        {
            self.key_cache.validated(tenant);
            return Ok(k);
        }
        let (root, _) = self.load_root(tenant)?;
        let root = root_kms(&root);
        let mut rows = tx.tenant_keys().await?;
        // Active versions last, so the ring's current key is the active one.
        rows.sort_by_key(|r| (r.state == "active", r.version));
        let (mut ring, mut index, mut current_sealed): (Option<KeyRing>, _, _) = (None, None, 0);
        let mut min_record_version = i64::MAX;
        for r in rows {
            let key = root
                .unwrap(&r.wrapped, &wrap_aad(tenant, &r.purpose))
                .map_err(|_| key_unavailable("a data key does not unwrap"))?;
            match r.purpose.as_str() {
                "data" => {
                    if r.state == "active" {
                        current_sealed = r.sealed_count;
                    }
                    if r.state != "disabled" {
                        min_record_version = min_record_version.min(r.version);
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
            return Err(key_unavailable(
                "no data keys: shredded or never provisioned",
            ));
        };
        let max_version = ring.versions().into_iter().max().map_or(0, i64::from);
        let keys = Arc::new(TenantKeys {
            root,
            tenant,
            ring,
            index,
            current_sealed,
            max_version,
            min_record_version,
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
            let version = self.add_data_key_version(tx, keys).await?;
            tracing::info!(tenant = %tx.tenant(), version, "data key rotated after its usage limit");
        }
        Ok(())
    }

    /// A new data-key version, wrapped by the tenant root key, current from now on (the old
    /// one is retired, still opening what it sealed). Returns the version.
    async fn add_data_key_version(&self, tx: &mut TenantTx, keys: &TenantKeys) -> Result<i64> {
        let tenant = tx.tenant();
        let version = keys.current_version() + 1;
        let v = u32::try_from(version).map_err(|_| Error::internal("key version overflow"))?;
        let dek = DataKey::generate(v)?;
        tx.insert_tenant_key(
            "data",
            version,
            &keys.root.wrap(&dek, &wrap_aad(tenant, "data"))?,
            ROOT_WRAPPED,
            self.now(),
        )
        .await?;
        self.key_cache.evict(tenant);
        Ok(version)
    }

    /// KEK rotation for one tenant (or the platform log): re-wraps its root key under the
    /// primary KEK. Data and data keys are untouched. Returns 1 if re-wrapped, 0 if already done.
    pub async fn rewrap_tenant_keys(&self, tenant: TenantId) -> Result<u64> {
        let mut stored = self.stored_root(tenant)?;
        let primary = self.keks.primary_id();
        let kek_id = match &mut stored.customer {
            // Customer-managed: the root key is the tenant's business; only the PIN it granted
            // us is under the platform KEK.
            Some(c) => {
                let old = c.pin_kek_id().to_owned();
                if !self.reseal_customer_pin(tenant, c)? {
                    return Ok(0);
                }
                self.put_stored_root(tenant, &stored)?;
                // The tenant's own log may be locked (its key revoked): record it in the
                // platform log, which never depends on a customer key.
                let tx = self.store.tenant(TenantId::PLATFORM).begin().await?;
                let ev = crate::audit::Event::ok("keys.rewrap_customer_pin", "tenant", tenant)
                    .with(serde_json::json!({"old_kek": old, "new_kek": primary}));
                let tx = self
                    .audit_platform(tx, "console", &crate::RequestContext::default(), ev)
                    .await?;
                tx.commit().await?;
                return Ok(1);
            }
            None => {
                let (root, kek_id) = self.load_root(tenant)?;
                if kek_id == primary {
                    return Ok(0);
                }
                self.root_keys
                    .store(tenant, &self.encode_root(tenant, &root)?)?;
                kek_id
            }
        };
        self.key_cache.evict(tenant);
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let ev = crate::audit::Event::ok("keys.rewrap", "tenant_keys", tenant)
            .with(serde_json::json!({"old_kek": kek_id, "new_kek": primary}));
        self.audit(
            &mut tx,
            &keys,
            "console",
            &crate::RequestContext::default(),
            ev,
        )
        .await?;
        tx.commit().await?;
        Ok(1)
    }

    /// Crypto-shredding, the final step of deleting a tenant: destroys the tenant's root key
    /// (outside the database) and its wrapped data keys, and suspends the tenant. Everything the
    /// tenant stored, in this database and in every backup of it, becomes unreadable.
    pub async fn shred_tenant(
        &self,
        by: &crate::tenants::PlatformActor,
        ctx: &crate::RequestContext,
        tenant: TenantId,
    ) -> Result<()> {
        if tenant == TenantId::PLATFORM {
            return Err(Error::forbidden("the platform log cannot be shredded"));
        }
        let mut p = self.store.platform().await?;
        if !p
            .set_tenant_status(tenant, kluis_types::Status::Suspended, self.now())
            .await?
        {
            return Err(Error::not_found());
        }
        let mut tx = p.enter_tenant(tenant).await?;
        tx.delete_tenant_keys().await?;
        let ev = crate::audit::Event::ok("tenant.shred", "tenant", tenant);
        let tx = self.audit_platform(tx, by.label(), ctx, ev).await?;
        // Destroy the root key first: if the commit then fails, the data is already unreadable
        // (the intended outcome), never the other way round.
        self.root_keys.destroy(tenant)?;
        self.key_cache.evict(tenant);
        tx.commit().await?;
        self.api_keys_changed(tenant).await;
        Ok(())
    }
}

/// Progress of a data-key re-encryption.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReencryptProgress {
    pub current_version: i64,
    pub rows_seen: u64,
    pub values_resealed: u64,
}

impl TenantKeys {
    /// True if `sealed` is not under the current data key version.
    pub(crate) fn stale(&self, sealed: &[u8]) -> bool {
        envelope::sealed_key_version(sealed)
            .map_or(true, |v| i64::from(v) != self.current_version())
    }

    pub(crate) fn reseal(
        &self,
        table: &str,
        column: &str,
        record: Uuid,
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        let plain = self.open(table, column, record, sealed)?;
        self.seal(table, column, record, &plain)
    }
}

impl Kluis {
    /// Starts a data-key rotation: a new version becomes current for every new value. Returns
    /// the new version. Follow with [`Kluis::reencrypt_tenant`].
    pub async fn rotate_data_key(&self, tenant: TenantId) -> Result<i64> {
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let version = self.add_data_key_version(&mut tx, &keys).await?;
        let keys = self.keys(&mut tx).await?;
        let ev = crate::audit::Event::ok("keys.rotate_dek", "tenant_keys", tenant)
            .with(serde_json::json!({"version": version}));
        self.audit(
            &mut tx,
            &keys,
            "console",
            &crate::RequestContext::default(),
            ev,
        )
        .await?;
        tx.commit().await?;
        self.checkpoint_soon(tenant);
        Ok(version)
    }

    /// Re-encrypts every sealed user and session value not yet under the current data key, in
    /// batches of `batch` rows, while the server keeps serving (reads use every key version;
    /// each batch commits on its own). Idempotent, so an interrupted run is resumed by running it
    /// again. Audit events keep the key version they were written with (they are append-only);
    /// retired versions stay available for reading them.
    ///
    /// Per batch: the rows are read and re-sealed in a read transaction (no write lock, so
    /// other writers get the lock between batches), then written in a short write transaction
    /// as a compare-and-swap (`TenantTx::reseal_users`): a row changed since it was read is not
    /// overwritten, and the batch is read again. Batches with nothing stale write nothing.
    pub async fn reencrypt_tenant(
        &self,
        tenant: TenantId,
        batch: i64,
        mut progress: impl FnMut(&ReencryptProgress),
    ) -> Result<ReencryptProgress> {
        self.key_cache.evict(tenant);
        let mut p = ReencryptProgress::default();
        for source in [PairSource::Users, PairSource::Sessions] {
            self.reencrypt_pairs(tenant, batch, source, &mut p, &mut progress)
                .await?;
        }
        self.reencrypt_mfa(tenant, &mut p).await?;
        self.reencrypt_scim(tenant, &mut p).await?;
        p.values_resealed += self.seal_password_hashes(tenant).await?;
        progress(&p);
        self.reencrypt_crm(tenant, batch, &mut p, &mut progress)
            .await?;
        self.checkpoint_soon(tenant);
        Ok(p)
    }
}

/// Outcome of [`Kluis::set_min_decryption_version`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct MinDecryption {
    pub min_decryption_version: i64,
    pub current_version: i64,
    /// Key rows whose state changed (disabled, or re-enabled when lowering).
    pub versions_changed: u64,
}

impl Kluis {
    /// Like Vault's `min_decryption_version`: records sealed under an older data-key version no
    /// longer open (a restored old ciphertext or a forgotten copy is refused). Allowed only once
    /// re-encryption has finished, i.e. no record holds a value under another version than the
    /// current one. Lowering it again re-enables versions. Audit payloads are append-only and keep
    /// opening under the version they were written with.
    pub async fn set_min_decryption_version(
        &self,
        tenant: TenantId,
        min: i64,
    ) -> Result<MinDecryption> {
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let current = keys.current_version();
        if !(1..=current).contains(&min) {
            return Err(Error::validation(
                "version",
                "version_out_of_range",
                format!("the minimum decryption version must be between 1 and {current}"),
            ));
        }
        let v = u32::try_from(current).map_err(|_| Error::internal("key version overflow"))?;
        let pending = tx.count_records_not_under(v).await?;
        if min > 1 && pending > 0 {
            return Err(Error::new(
                ErrorKind::Conflict,
                "reencryption_unfinished",
                format!(
                    "{pending} records still hold values under older key versions; run `kluis keys \
                     reencrypt` first"
                ),
            ));
        }
        let changed = tx.set_min_decryption_version(min).await?;
        let ev = crate::audit::Event::ok("keys.min_decryption_version", "tenant_keys", tenant)
            .with(serde_json::json!({"min_decryption_version": min, "current_version": current}));
        self.audit(
            &mut tx,
            &keys,
            "console",
            &crate::RequestContext::default(),
            ev,
        )
        .await?;
        tx.commit().await?;
        self.key_cache.evict(tenant);
        Ok(MinDecryption {
            min_decryption_version: min,
            current_version: current,
            versions_changed: changed,
        })
    }
}

/// The tables whose rows carry two sealed values, re-encrypted by [`Kluis::reencrypt_pairs`].
#[derive(Clone, Copy)]
enum PairSource {
    /// email, display_name
    Users,
    /// ip, user_agent
    Sessions,
}

/// A row of a [`PairSource`]: its id and its two sealed values.
struct PairRow {
    id: Uuid,
    sealed: [Vec<u8>; 2],
}

impl PairSource {
    fn table(self) -> &'static str {
        match self {
            PairSource::Users => "users",
            PairSource::Sessions => "sessions",
        }
    }

    fn columns(self) -> [&'static str; 2] {
        match self {
            PairSource::Users => ["email", "display_name"],
            PairSource::Sessions => ["ip", "user_agent"],
        }
    }

    async fn fetch(
        self,
        tx: &mut TenantTx,
        after: Option<Uuid>,
        batch: i64,
    ) -> Result<Vec<PairRow>> {
        Ok(match self {
            PairSource::Users => tx
                .list_users(after.map(kluis_types::UserId), batch)
                .await?
                .into_iter()
                .map(|r| PairRow {
                    id: r.id.0,
                    sealed: [r.email, r.display_name],
                })
                .collect(),
            PairSource::Sessions => tx
                .sessions_batch(after.map(kluis_types::SessionId), batch)
                .await?
                .into_iter()
                .map(|r| PairRow {
                    id: r.id.0,
                    sealed: [r.ip, r.user_agent],
                })
                .collect(),
        })
    }

    /// The compare-and-swap write; returns the rows written.
    async fn write(self, tx: &mut TenantTx, rows: &[Reseal<'_, Uuid>]) -> Result<u64> {
        Ok(match self {
            PairSource::Users => {
                let r: Vec<_> = rows
                    .iter()
                    .map(|r| Reseal {
                        id: kluis_types::UserId(r.id),
                        old: r.old,
                        new: r.new,
                    })
                    .collect();
                tx.reseal_users(&r).await?
            }
            PairSource::Sessions => {
                let r: Vec<_> = rows
                    .iter()
                    .map(|r| Reseal {
                        id: kluis_types::SessionId(r.id),
                        old: r.old,
                        new: r.new,
                    })
                    .collect();
                tx.reseal_sessions(&r).await?
            }
        })
    }
}

impl Kluis {
    /// The re-encryption loop of one [`PairSource`] (see [`Kluis::reencrypt_tenant`]).
    async fn reencrypt_pairs(
        &self,
        tenant: TenantId,
        batch: i64,
        source: PairSource,
        p: &mut ReencryptProgress,
        progress: &mut impl FnMut(&ReencryptProgress),
    ) -> Result<()> {
        let (table, [c0, c1]) = (source.table(), source.columns());
        let mut after = None;
        let mut retries = 0;
        loop {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            let keys = self.keys(&mut tx).await?;
            p.current_version = keys.current_version();
            let rows = source.fetch(&mut tx, after, batch).await?;
            drop(tx);
            let Some(last) = rows.last() else { break };
            let mut sealed = Vec::new();
            for r in rows
                .iter()
                .filter(|r| keys.stale(&r.sealed[0]) || keys.stale(&r.sealed[1]))
            {
                let a = keys.reseal(table, c0, r.id, &r.sealed[0])?;
                let b = keys.reseal(table, c1, r.id, &r.sealed[1])?;
                sealed.push((r, a, b));
            }
            let reseals: Vec<_> = sealed
                .iter()
                .map(|(r, a, b)| Reseal {
                    id: r.id,
                    old: [&r.sealed[0][..], &r.sealed[1][..]],
                    new: [&a[..], &b[..]],
                })
                .collect();
            let mut written = 0;
            if !reseals.is_empty() {
                let mut tx = self.store.tenant(tenant).begin().await?;
                written = source.write(&mut tx, &reseals).await?;
                self.count_sealed(&mut tx, &keys, sealed_values(written)?)
                    .await?;
                tx.commit().await?;
                p.values_resealed += 2 * written;
            }
            if written == reseals.len() as u64 {
                after = Some(last.id);
                p.rows_seen += rows.len() as u64;
                retries = 0;
            } else {
                retries = next_retry(retries)?;
            }
            progress(p);
            crate::audit::failpoint_after_batch()?;
        }
        Ok(())
    }
}

/// Values (two per row) written by a re-encryption batch, for the seal count.
fn sealed_values(rows: u64) -> Result<i64> {
    rows.checked_mul(2)
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| Error::internal("count overflow"))
}

/// Batches read again in a row because rows changed under the re-encryption, before it gives
/// up (the run can simply be repeated).
const REENCRYPT_RETRIES: u32 = 10;

fn next_retry(retries: u32) -> Result<u32> {
    if retries >= REENCRYPT_RETRIES {
        return Err(Error::new(
            ErrorKind::Conflict,
            "reencrypt_contended",
            "rows kept changing during re-encryption; run it again",
        ));
    }
    Ok(retries + 1)
}

/// The age of a tenant's current data key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyAge {
    pub tenant: TenantId,
    pub version: i64,
    pub created_at_ms: i64,
    pub age_days: i64,
    pub sealed_count: i64,
}

impl Kluis {
    /// Current data-key age of one log (tenant or platform).
    pub async fn data_key_age(&self, tenant: TenantId) -> Result<Option<KeyAge>> {
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let rows = tx.tenant_keys().await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.purpose == "data" && r.state == "active")
            .max_by_key(|r| r.version)
            .map(|r| KeyAge {
                tenant,
                version: r.version,
                created_at_ms: r.created_at,
                age_days: (self.now() - r.created_at) / 86_400_000,
                sealed_count: r.sealed_count,
            }))
    }
}
