//! Kluis application services.
//!
//! One async function per use case. Each takes an [`Actor`] (who is asking, already
//! authenticated, bound to exactly one tenant) and a [`RequestContext`] (where from), checks the
//! permission table (deny by default), validates input, and does its work in one transaction
//! opened for the actor's tenant. Handlers in `kluis-http` only parse, call and render.

pub mod account_links;
pub mod apikeys;
pub mod audit;
pub mod authz;
pub mod backup_status;
// Benchmark hooks into crate-private write paths; compiled only for the benches and tests
// (the `bench` feature, which only the dev-dependency on this crate turns on), never into
// the server.
#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod bench_support;
pub mod checkpoints;
mod clock;
pub mod crm;
pub mod customer_key;
pub mod db;
mod error;
pub mod files;
pub mod incidents;
mod key_uses;
pub mod keys;
pub mod lockout;
pub mod mail;
pub mod mfa;
pub mod network;
pub mod operations;
pub mod passkeys;
pub mod passwords;
pub mod ratelimit;
pub mod roles;
pub mod saml;
pub mod scim;
pub mod sensitive;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod sso;
pub mod state;
pub mod status;
pub mod support;
pub mod tenants;
pub mod tokens;
pub mod users;
mod validate;

use std::sync::Arc;
use std::time::Duration;

pub use authz::{Actor, AuthStage, Permission, Principal, Role, Scope};
pub use clock::{Clock, ManualClock, SystemClock};
pub use db::Store;
pub use error::{Error, ErrorKind};
pub use kluis_types::ids::{RoleId, TeamId};
pub use kluis_types::{ApiKeyId, Email, Phone, RecordId, SessionId, Status, TenantId, UserId};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Settings the services need (validated by the binary's config loader).
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// A session ends after this long without a request.
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    pub session_absolute_timeout: Duration,
    /// How long a rotated API key's old secret keeps working (default 0: not at all).
    pub api_key_rotation_overlap: Duration,
    /// Lifetime of the one-time setup link.
    pub setup_token_ttl: Duration,
    /// How long unwrapped tenant keys stay cached; also the longest a revoked customer-managed
    /// key keeps working.
    pub key_cache_ttl: Duration,
    /// How long a verified API key is remembered (zero: not at all). Changes that end keys
    /// wait this long before they return, so revocation stays immediate in every process.
    pub api_key_cache_ttl: Duration,
    /// PKCS#11 modules tenants may use for customer-managed keys (operator's allowlist).
    pub byok_pkcs11_modules: Vec<std::path::PathBuf>,
    /// Account lockout and per-address throttling of sign-in attempts.
    pub login: lockout::LoginLimits,
    /// Lifetime of a password reset link.
    pub password_reset_ttl: Duration,
    /// Lifetime of an invitation link.
    pub invitation_ttl: Duration,
    /// API rate limits (see [`ratelimit`]).
    pub rate_limits: ratelimit::RateLimits,
    /// Thresholds of the support-access watching rules.
    pub support: support::SupportWatch,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_absolute_timeout: Duration::from_secs(12 * 3600),
            api_key_rotation_overlap: Duration::ZERO,
            setup_token_ttl: Duration::from_secs(3600),
            key_cache_ttl: keys::DEFAULT_CACHE_TTL,
            api_key_cache_ttl: Duration::from_millis(250),
            byok_pkcs11_modules: Vec::new(),
            login: lockout::LoginLimits::default(),
            password_reset_ttl: Duration::from_secs(30 * 60),
            invitation_ttl: Duration::from_secs(72 * 3600),
            rate_limits: ratelimit::RateLimits::default(),
            support: support::SupportWatch::default(),
        }
    }
}

/// The application: store, configuration and clock. Cheap to clone.
#[derive(Clone)]
pub struct Kluis {
    pub(crate) store: Store,
    pub(crate) config: Arc<CoreConfig>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) keks: Arc<keys::KeyEncryptionKeys>,
    pub(crate) key_cache: Arc<keys::KeyCache>,
    pub(crate) api_key_cache: Arc<apikeys::cache::ApiKeyCache>,
    pub(crate) key_uses: Arc<key_uses::KeyUses>,
    pub(crate) audit_signing: Option<Arc<audit::AuditSigning>>,
    /// Logs with events no checkpoint covers yet (see `checkpoints`).
    pub(crate) audit_pending: Arc<checkpoints::Pending>,
    pub(crate) root_keys: Arc<dyn keys::RootKeyStore>,
    /// CSV imports running in this process (progress reports).
    pub(crate) imports: Arc<crm::import::Imports>,
    /// Search indexes of record text, per tenant, in memory only (see [`crm::search`]).
    pub(crate) search: Arc<crm::search::SearchIndexes>,
    /// OIDC single sign-on (relying party and redirect URI); None where the server does not
    /// offer it (CLI, unit tests).
    pub(crate) sso: Option<Arc<sso::SsoRuntime>>,
    /// Outgoing email; None when no SMTP relay is configured.
    pub(crate) mail: Option<Arc<mail::MailRuntime>>,
    /// Passkeys (WebAuthn relying party); None where the server does not offer them.
    pub(crate) webauthn: Option<Arc<passkeys::WebauthnRuntime>>,
    /// Backups as the running server's schedule reports them (`GET /api/v1/platform/backups`).
    pub(crate) backup_status: Arc<std::sync::RwLock<backup_status::BackupStatus>>,
    /// This process's shares of the rate-limit windows.
    pub(crate) rate_limiter: Arc<ratelimit::RateLimiter>,
    /// The last operational snapshot (`/metrics`).
    pub(crate) ops_cache: Arc<operations::OpsCache>,
    /// Organisations' IP allowlists as recently read.
    pub(crate) allowlists: Arc<network::AllowlistCache>,
    /// The maintenance announced at sign-in, as recently read.
    pub(crate) announcement: Arc<status::AnnouncementCache>,
    /// Files on records; None where the server does not offer them (CLI, unit tests).
    pub(crate) files: Option<Arc<files::FilesRuntime>>,
}

impl Kluis {
    pub fn new(store: Store, config: CoreConfig, keks: keys::KeyEncryptionKeys) -> Self {
        Kluis::with_clock(store, config, keks, Arc::new(SystemClock))
    }

    pub fn with_clock(
        store: Store,
        config: CoreConfig,
        keks: keys::KeyEncryptionKeys,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Kluis {
            store,
            key_cache: Arc::new(keys::KeyCache::new(config.key_cache_ttl)),
            api_key_cache: Arc::new(apikeys::cache::ApiKeyCache::new(config.api_key_cache_ttl)),
            key_uses: Arc::default(),
            config: Arc::new(config),
            clock,
            keks: Arc::new(keks),
            audit_signing: None,
            audit_pending: Arc::default(),
            root_keys: Arc::new(keys::MemoryRootKeyStore::default()),
            imports: Arc::default(),
            search: Arc::default(),
            sso: None,
            mail: None,
            webauthn: None,
            backup_status: Arc::default(),
            rate_limiter: Arc::default(),
            ops_cache: Arc::default(),
            allowlists: Arc::default(),
            announcement: Arc::default(),
            files: None,
        }
    }

    /// Where tenant root keys are kept (outside the database). The default keeps them in
    /// memory, which is only right for tests and benchmarks.
    pub fn with_root_key_store(mut self, store: Arc<dyn keys::RootKeyStore>) -> Self {
        self.root_keys = store;
        self
    }

    /// Enables signed audit checkpoints.
    pub fn with_audit_signing(mut self, signing: audit::AuditSigning) -> Self {
        self.audit_signing = Some(Arc::new(signing));
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Readiness: the database answers.
    pub async fn ready(&self) -> Result<()> {
        self.store.ping().await?;
        Ok(())
    }
}

/// Where a request came from; recorded with sessions and (later) audit events.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

/// One page of a keyset-paginated list.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A list that is never long (pipelines, tags, one user's sessions): one page, no cursor,
    /// in the same `{items, next_cursor}` shape as every other list.
    pub fn all(items: Vec<T>) -> Page<T> {
        Page {
            items,
            next_cursor: None,
        }
    }
}

/// Page size: default 50; 1 to 200 when given. A value outside is refused and named, never
/// clamped silently (a client asking for 1,000,000 rows must learn it gets at most 200).
pub fn page_limit(requested: Option<u32>) -> Result<i64> {
    match requested {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(i64::from(n)),
        Some(_) => Err(Error::validation(
            "limit",
            "invalid_limit",
            "limit must be between 1 and 200",
        )),
    }
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Argon2id is deliberately slow: run it off the async worker threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::internal("blocking task failed"))
}
