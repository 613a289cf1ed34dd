//! Configuration: defaults -> TOML file -> `KLUIS_*` environment -> command-line flags.
//! Validated once at start; a bad value stops the server with a message naming the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Everything the embedded default keeps: database, keys, certificate.
    pub data_dir: PathBuf,
    /// HTTPS listen address.
    pub listen: SocketAddr,
    /// Base URL printed in the setup link (default: https://localhost:<port>).
    pub public_url: Option<String>,
    /// `postgres://...` for PostgreSQL (the application role); default: SQLite in data_dir.
    pub database_url: Option<Secret>,
    /// PostgreSQL owner role used for migrations (the application role must not own tables).
    pub database_owner_url: Option<Secret>,
    pub database_max_connections: u32,
    /// Let `kluis serve` run as root (uid 0). Off: it refuses, since a compromise of a root
    /// process is a compromise of the machine; run it as its own user (deploy/systemd).
    pub allow_root: bool,
    /// Where security researchers report vulnerabilities (`mailto:`, `https://` or `tel:` URIs),
    /// published in `/.well-known/security.txt` (RFC 9116); none: that path answers 404.
    pub security_contact: Vec<String>,
    /// The disclosure policy's URL for security.txt (e.g. where SECURITY.md is published).
    pub security_policy_url: Option<String>,
    /// PEM certificate chain and key; default: a self-signed certificate in data_dir/tls.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Optional plain-HTTP listener that only redirects to HTTPS.
    pub http_redirect_listen: Option<SocketAddr>,
    /// Where the key-encryption key lives: `local` (a key file) or `pkcs11` (an HSM token).
    pub kms: String,
    /// Data keys older than this make the server warn and `kluis doctor` fail.
    pub key_max_age_days: u64,
    /// Key-encryption key file (256-bit, mode 0600); default data_dir/keys/kek.key.
    pub kek_file: Option<PathBuf>,
    /// PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
    pub pkcs11_module: Option<PathBuf>,
    pub pkcs11_token_label: Option<String>,
    /// Label of the AES-256 KEK in the token; created (non-extractable) on first start if absent.
    pub pkcs11_key_label: Option<String>,
    /// The token's user PIN (prefer KLUIS_PKCS11_PIN_FILE). Never logged.
    #[serde(skip_serializing)]
    pub pkcs11_pin: Option<Secret>,
    /// PKCS#11 modules tenants may use for customer-managed keys (BYOK), as absolute paths.
    /// Empty (the default): customer-managed keys are not offered. Loading a module runs its
    /// code in the server, so only the operator chooses them.
    pub byok_pkcs11_modules: Vec<PathBuf>,
    /// How long unwrapped tenant keys are cached: also the longest a revoked customer key keeps
    /// working.
    pub key_cache_ttl_secs: u64,
    pub session_idle_timeout_secs: u64,
    pub session_absolute_timeout_secs: u64,
    pub api_key_rotation_overlap_secs: u64,
    /// How long a verified API key is remembered (0: not at all). Revoking a key, suspending
    /// a tenant and the like wait this long before they return, so that they take effect in
    /// every server process sharing the database by then.
    pub api_key_cache_ms: u64,
    /// Failed sign-ins after which an account is locked, and for how long (also the window
    /// the failures are counted in).
    pub login_max_failures: u32,
    pub login_lockout_secs: u64,
    /// Delay before checking a password after one failure; doubles per further failure (max
    /// 2 s). 0 turns it off.
    pub login_delay_ms: u64,
    /// Sign-in attempts per client address and window without a success (password spraying).
    pub login_ip_max_failures: u32,
    pub login_ip_window_secs: u64,
    pub login_daily_max_failures: u32,
    /// API requests per 10-second window per API key or signed-in user (0: no limit). The
    /// tenant as a whole gets five times this; operators override per tenant.
    pub rate_limit_burst: u32,
    pub rate_limit_window_secs: u32,
    /// API requests per UTC day per tenant (0: no limit).
    pub rate_limit_daily: u32,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    /// Largest CSV import upload.
    pub import_max_bytes: u64,
    /// Deadline of an import request (upload and import).
    pub import_timeout_secs: u64,
    pub header_read_timeout_secs: u64,
    /// `json` (default, for log collectors) or `pretty`.
    pub log_format: String,
    /// How often the server signs a checkpoint of every audit log that grew.
    pub audit_checkpoint_interval_secs: u64,
    /// ... or as soon as a log has grown by this many events.
    pub audit_checkpoint_every_events: u64,
    /// A log this process appended to is signed this many seconds after its oldest unsigned
    /// event (and at once after a bulk operation and at shutdown): the worst-case unsigned
    /// window after a crash.
    pub audit_checkpoint_idle_secs: u64,
    /// Witnesses checkpoints are pushed to, each `<URL> <witness verifier key>` (see
    /// `kluis witness serve`); their cosignatures are kept next to the checkpoint files.
    pub audit_witnesses: Vec<String>,
    /// `kluis doctor`'s state verification: `full`, `sample` (up to
    /// doctor_state_sample records per log) or `off`.
    pub doctor_state_check: String,
    pub doctor_state_sample: u64,
    /// Audit events older than this are removed (with a signed truncation marker). Default 6 years.
    pub audit_retention_days: u64,
    /// Deleted CRM records stay restorable in the trash this long, then are purged for good.
    pub trash_retention_days: u64,
    /// Extra CA certificates (PEM) trusted for tenants' OpenID providers, e.g. a company CA
    /// in front of an on-premises IdP. The system's web PKI roots are always trusted.
    pub sso_ca_file: Option<PathBuf>,
    /// Let tenants use OpenID providers on loopback, private or link-local addresses. Off by
    /// default: the issuer URL is tenant input, and the server would fetch it (SSRF).
    pub sso_allow_private_networks: bool,
    /// Outgoing email relay: `smtp://host[:port]` (STARTTLS required, default port 587),
    /// `smtps://host[:port]` (implicit TLS, 465) or `smtp+plain://127.0.0.1:port` (loopback
    /// relays only). Unset: no email (password reset and invitation emails are off).
    pub smtp_url: Option<String>,
    pub smtp_username: Option<String>,
    /// The relay password (prefer KLUIS_SMTP_PASSWORD_FILE). Never logged or printed.
    #[serde(skip_serializing)]
    pub smtp_password: Option<Secret>,
    /// Extra CA certificates (PEM) trusted for the relay, e.g. a private CA.
    pub smtp_ca_file: Option<PathBuf>,
    pub smtp_timeout_secs: u64,
    /// Sender of every email, e.g. `Kluis <no-reply@example.nl>`; required with smtp_url.
    pub mail_from: Option<String>,
    /// First retry of an undelivered email after this long; doubles each time (at most 1 h).
    pub mail_retry_initial_secs: u64,
    /// Attempts before an email is marked failed.
    pub mail_max_attempts: u32,
    /// How often the sender looks at every organisation's outbox (besides wake-ups).
    pub mail_sweep_interval_secs: u64,
    /// Lifetime of an invitation link.
    pub invitation_ttl_hours: u64,
    /// Backup repository: a directory or `s3://bucket/prefix`. Set: `kluis serve` ships the
    /// SQLite WAL there every second, takes a snapshot daily, prunes and runs a restore drill.
    pub backup_repo: Option<String>,
    /// Retention (see `kluis backup prune`): first backup of each of the last N days...
    pub backup_keep_daily: u32,
    /// ... every moment of the last N days restorable ...
    pub backup_keep_pitr_days: u32,
    /// ... first backup of each of the last N months ...
    pub backup_keep_monthly: u32,
    /// ... and of each of the last N years.
    pub backup_keep_yearly: u32,
    /// How often `kluis serve` runs a restore drill of the latest backup (0: never).
    pub backup_drill_interval_hours: u64,
    /// Files on records: where their sealed bytes are kept (default `<data_dir>/files`).
    pub files_dir: Option<PathBuf>,
    /// Largest file accepted (default 100 MiB).
    pub files_max_bytes: u64,
    /// Stored file bytes per organisation, every version and the file trash included
    /// (default 10 GiB).
    pub files_tenant_quota_bytes: u64,
    /// Deleted files stay restorable this long (unless the organisation set its own trash
    /// retention), then are purged. Default 90.
    pub files_trash_retention_days: u32,
    /// Scan every uploaded file with ClamAV's clamd before it can be downloaded (default on).
    /// Off is an operator's explicit choice: files are then served unscanned.
    pub files_scan: bool,
    /// clamd's unix socket (Debian's clamav-daemon: /run/clamav/clamd.ctl).
    pub clamav_socket: PathBuf,
    /// How long to wait for clamd (connect, each write, the verdict).
    pub clamav_timeout_secs: u64,
    /// How often files left pending (scanner unavailable) are scanned again.
    pub files_rescan_interval_secs: u64,
}

/// A secret setting: Debug never shows it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

/// For command-line flags (clap parses into it).
impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./kluis-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            public_url: None,
            database_url: None,
            database_owner_url: None,
            database_max_connections: 16,
            allow_root: false,
            security_contact: Vec::new(),
            security_policy_url: None,
            tls_cert: None,
            tls_key: None,
            http_redirect_listen: None,
            kms: "local".into(),
            key_max_age_days: 90,
            kek_file: None,
            pkcs11_module: None,
            pkcs11_token_label: None,
            pkcs11_key_label: None,
            pkcs11_pin: None,
            byok_pkcs11_modules: Vec::new(),
            key_cache_ttl_secs: 60,
            session_idle_timeout_secs: 30 * 60,
            session_absolute_timeout_secs: 12 * 3600,
            api_key_rotation_overlap_secs: 0,
            api_key_cache_ms: 250,
            login_max_failures: 5,
            login_lockout_secs: 15 * 60,
            login_delay_ms: 250,
            login_ip_max_failures: 100,
            login_ip_window_secs: 15 * 60,
            login_daily_max_failures: 50,
            rate_limit_burst: 190,
            rate_limit_window_secs: 10,
            rate_limit_daily: 1_000_000,
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            import_max_bytes: 512 * 1024 * 1024,
            import_timeout_secs: 3600,
            header_read_timeout_secs: 10,
            log_format: "json".into(),
            audit_checkpoint_interval_secs: 60,
            audit_checkpoint_every_events: 1000,
            audit_checkpoint_idle_secs: 2,
            audit_witnesses: Vec::new(),
            doctor_state_check: "full".into(),
            doctor_state_sample: 10_000,
            audit_retention_days: 6 * 365,
            trash_retention_days: 30,
            sso_ca_file: None,
            sso_allow_private_networks: false,
            smtp_url: None,
            smtp_username: None,
            smtp_password: None,
            smtp_ca_file: None,
            smtp_timeout_secs: 30,
            mail_from: None,
            mail_retry_initial_secs: 30,
            mail_max_attempts: 10,
            mail_sweep_interval_secs: 60,
            invitation_ttl_hours: 72,
            backup_repo: None,
            backup_keep_daily: 7,
            backup_keep_pitr_days: 30,
            backup_keep_monthly: 12,
            backup_keep_yearly: 10,
            backup_drill_interval_hours: 24,
            files_dir: None,
            files_max_bytes: 100 * 1024 * 1024,
            files_tenant_quota_bytes: 10 * 1024 * 1024 * 1024,
            files_trash_retention_days: 90,
            files_scan: true,
            clamav_socket: PathBuf::from("/run/clamav/clamd.ctl"),
            clamav_timeout_secs: 60,
            files_rescan_interval_secs: 30,
        }
    }
}

/// Settings that may come from `KLUIS_<NAME>` (and `KLUIS_<NAME>_FILE` for secrets).
const ENV_KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "public_url",
    "database_url",
    "database_owner_url",
    "database_max_connections",
    "tls_cert",
    "tls_key",
    "allow_root",
    "security_contact",
    "security_policy_url",
    "http_redirect_listen",
    "kek_file",
    "session_idle_timeout_secs",
    "session_absolute_timeout_secs",
    "api_key_rotation_overlap_secs",
    "api_key_cache_ms",
    "login_max_failures",
    "login_lockout_secs",
    "login_delay_ms",
    "login_ip_max_failures",
    "login_ip_window_secs",
    "login_daily_max_failures",
    "rate_limit_burst",
    "rate_limit_window_secs",
    "rate_limit_daily",
    "body_limit_bytes",
    "request_timeout_secs",
    "import_max_bytes",
    "import_timeout_secs",
    "header_read_timeout_secs",
    "log_format",
    "audit_checkpoint_interval_secs",
    "audit_checkpoint_every_events",
    "audit_checkpoint_idle_secs",
    "audit_witnesses",
    "doctor_state_check",
    "doctor_state_sample",
    "audit_retention_days",
    "trash_retention_days",
    "files_dir",
    "files_max_bytes",
    "files_tenant_quota_bytes",
    "files_trash_retention_days",
    "files_scan",
    "clamav_socket",
    "clamav_timeout_secs",
    "files_rescan_interval_secs",
    "kms",
    "key_max_age_days",
    "pkcs11_module",
    "pkcs11_token_label",
    "pkcs11_key_label",
    "pkcs11_pin",
    "byok_pkcs11_modules",
    "key_cache_ttl_secs",
    "sso_ca_file",
    "sso_allow_private_networks",
    "smtp_url",
    "smtp_username",
    "smtp_password",
    "smtp_ca_file",
    "smtp_timeout_secs",
    "mail_from",
    "mail_retry_initial_secs",
    "mail_max_attempts",
    "mail_sweep_interval_secs",
    "invitation_ttl_hours",
    "backup_repo",
    "backup_keep_daily",
    "backup_keep_pitr_days",
    "backup_keep_monthly",
    "backup_keep_yearly",
    "backup_drill_interval_hours",
];

/// Command-line overrides (highest precedence).
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_owner_url: Option<Secret>,
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        // The config file: given explicitly, else kluis.toml in the data dir if present.
        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| std::env::var_os("KLUIS_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| Config::default().data_dir);
        match file {
            Some(f) => {
                if !f.exists() {
                    bail!("config file {} does not exist", f.display());
                }
                fig = fig.merge(Toml::file(f));
            }
            None => fig = fig.merge(Toml::file(data_dir.join("kluis.toml"))),
        }
        fig = fig.merge(
            Env::prefixed("KLUIS_")
                .filter(|k| ENV_KEYS.iter().any(|e| k.as_str().eq_ignore_ascii_case(e))),
        );
        // `*_FILE` variants for secrets (container secrets mounted as files).
        for key in [
            "database_url",
            "database_owner_url",
            "pkcs11_pin",
            "smtp_password",
        ] {
            let var = format!("KLUIS_{}_FILE", key.to_uppercase());
            if let Some(path) = std::env::var_os(&var) {
                let v = std::fs::read_to_string(&path).with_context(|| format!("reading {var}"))?;
                fig = fig.merge(Serialized::default(key, v.trim().to_owned()));
            }
        }
        fig = fig.merge(Serialized::defaults(overrides));
        let cfg: Config = fig.extract().context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.session_idle_timeout_secs == 0 || self.session_absolute_timeout_secs == 0 {
            bail!("session timeouts must be positive");
        }
        if self.session_idle_timeout_secs > self.session_absolute_timeout_secs {
            bail!("session_idle_timeout_secs must not exceed session_absolute_timeout_secs");
        }
        if self.login_max_failures == 0 || self.login_ip_max_failures == 0 {
            bail!("login_max_failures and login_ip_max_failures must be positive");
        }
        if self.login_daily_max_failures < self.login_max_failures {
            bail!("login_daily_max_failures must be at least login_max_failures");
        }
        if !(1..=86_400).contains(&self.rate_limit_window_secs) {
            bail!("rate_limit_window_secs must be between 1 and 86400");
        }
        if self.login_lockout_secs == 0 || self.login_ip_window_secs == 0 {
            bail!("login_lockout_secs and login_ip_window_secs must be positive");
        }
        for u in self
            .security_contact
            .iter()
            .chain(&self.security_policy_url)
        {
            let scheme_ok = ["mailto:", "https://", "tel:"]
                .iter()
                .any(|p| u.starts_with(p));
            if !scheme_ok || u.chars().any(char::is_control) {
                bail!(
                    "security_contact / security_policy_url: `{u}` must be a mailto:, https:// or tel: URI"
                );
            }
        }
        if self
            .security_policy_url
            .as_deref()
            .is_some_and(|u| !u.starts_with("https://"))
        {
            bail!("security_policy_url must be an https:// URL");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("set both tls_cert and tls_key, or neither");
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.body_limit_bytes) {
            bail!("body_limit_bytes must be between 1 KiB and 64 MiB");
        }
        match self.kms.as_str() {
            "local" => {}
            "pkcs11" => {
                if self.pkcs11_module.is_none()
                    || self.pkcs11_token_label.is_none()
                    || self.pkcs11_key_label.is_none()
                    || self.pkcs11_pin.is_none()
                {
                    bail!(
                        "kms = \"pkcs11\" needs pkcs11_module, pkcs11_token_label, pkcs11_key_label and pkcs11_pin (or KLUIS_PKCS11_PIN_FILE)"
                    );
                }
            }
            other => bail!("kms must be `local` or `pkcs11`, not `{other}`"),
        }
        if let Some(m) = self.byok_pkcs11_modules.iter().find(|m| !m.is_absolute()) {
            bail!(
                "byok_pkcs11_modules: {} is not an absolute path",
                m.display()
            );
        }
        if !(1..=3650).contains(&self.trash_retention_days) {
            bail!("trash_retention_days must be between 1 and 3650");
        }
        if self.files_max_bytes == 0 || self.files_tenant_quota_bytes == 0 {
            bail!("files_max_bytes and files_tenant_quota_bytes must be positive");
        }
        if !(1..=3650).contains(&self.files_trash_retention_days) {
            bail!("files_trash_retention_days must be between 1 and 3650");
        }
        if self.clamav_timeout_secs == 0 || self.files_rescan_interval_secs == 0 {
            bail!("clamav_timeout_secs and files_rescan_interval_secs must be positive");
        }
        if self.api_key_cache_ms > 5000 {
            bail!("api_key_cache_ms must be between 0 and 5000");
        }
        if !(1..=3600).contains(&self.key_cache_ttl_secs) {
            bail!("key_cache_ttl_secs must be between 1 and 3600");
        }
        if self.import_max_bytes == 0 || self.import_timeout_secs == 0 {
            anyhow::bail!("import_max_bytes and import_timeout_secs must be positive");
        }
        if !(1..=60).contains(&self.audit_checkpoint_idle_secs) {
            bail!("audit_checkpoint_idle_secs must be between 1 and 60");
        }
        crate::witness::parse_peers(&self.audit_witnesses)?;
        if !matches!(self.doctor_state_check.as_str(), "full" | "sample" | "off") {
            bail!("doctor_state_check must be `full`, `sample` or `off`");
        }
        if self.audit_checkpoint_interval_secs == 0 {
            bail!("audit_checkpoint_interval_secs must be positive");
        }
        if !matches!(self.log_format.as_str(), "json" | "pretty") {
            bail!("log_format must be `json` or `pretty`");
        }
        if let Some(url) = &self.smtp_url {
            kluis_core::mail::parse_smtp_url(url).map_err(|e| anyhow::anyhow!(e))?;
            if self.mail_from.is_none() {
                bail!("smtp_url needs mail_from (the sender address)");
            }
            if self.smtp_username.is_some() != self.smtp_password.is_some() {
                bail!(
                    "set both smtp_username and smtp_password (or KLUIS_SMTP_PASSWORD_FILE), or neither"
                );
            }
        }
        if self.mail_max_attempts == 0 || self.mail_retry_initial_secs == 0 {
            bail!("mail_max_attempts and mail_retry_initial_secs must be positive");
        }
        if self.mail_sweep_interval_secs == 0 || self.smtp_timeout_secs == 0 {
            bail!("mail_sweep_interval_secs and smtp_timeout_secs must be positive");
        }
        if !(1..=24 * 30).contains(&self.invitation_ttl_hours) {
            bail!("invitation_ttl_hours must be between 1 and 720");
        }
        if let Some(Secret(url)) = &self.database_url {
            let pg = url.starts_with("postgres://") || url.starts_with("postgresql://");
            if !pg && !url.starts_with("sqlite://") {
                bail!("database_url must start with postgres:// or sqlite://");
            }
        }
        Ok(())
    }

    /// Files on records, as the core takes them.
    pub fn files(&self) -> kluis_core::files::FilesConfig {
        let mut c = kluis_core::files::FilesConfig::new(
            self.files_dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("files")),
        );
        c.max_file_bytes = self.files_max_bytes;
        c.tenant_quota_bytes = self.files_tenant_quota_bytes;
        c.trash_retention_days = self.files_trash_retention_days;
        c.clamd = self.files_scan.then(|| kluis_core::files::Clamd {
            socket: self.clamav_socket.clone(),
            timeout: std::time::Duration::from_secs(self.clamav_timeout_secs),
        });
        c
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .as_ref()
            .map(|s| s.0.clone())
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("kluis.db").display()))
    }

    pub fn kek_path(&self) -> PathBuf {
        self.kek_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys").join("kek.key"))
    }

    pub fn core(&self) -> kluis_core::CoreConfig {
        kluis_core::CoreConfig {
            session_idle_timeout: Duration::from_secs(self.session_idle_timeout_secs),
            session_absolute_timeout: Duration::from_secs(self.session_absolute_timeout_secs),
            api_key_rotation_overlap: Duration::from_secs(self.api_key_rotation_overlap_secs),
            key_cache_ttl: Duration::from_secs(self.key_cache_ttl_secs),
            api_key_cache_ttl: Duration::from_millis(self.api_key_cache_ms),
            byok_pkcs11_modules: self.byok_pkcs11_modules.clone(),
            login: kluis_core::lockout::LoginLimits {
                max_failures: i64::from(self.login_max_failures),
                lockout: Duration::from_secs(self.login_lockout_secs),
                delay_base: Duration::from_millis(self.login_delay_ms),
                ip_max_failures: i64::from(self.login_ip_max_failures),
                ip_window: Duration::from_secs(self.login_ip_window_secs),
                daily_max_failures: i64::from(self.login_daily_max_failures),
            },
            invitation_ttl: Duration::from_secs(self.invitation_ttl_hours * 3600),
            rate_limits: kluis_core::ratelimit::RateLimits {
                burst: i64::from(self.rate_limit_burst),
                tenant_burst: i64::from(self.rate_limit_burst) * 5,
                window_secs: i64::from(self.rate_limit_window_secs),
                daily: i64::from(self.rate_limit_daily),
            },
            ..Default::default()
        }
    }

    /// The mail settings, if email is configured. `port` builds the default public URL.
    pub fn mail(&self, port: u16) -> anyhow::Result<Option<kluis_core::mail::MailConfig>> {
        let Some(url) = &self.smtp_url else {
            return Ok(None);
        };
        let extra_ca_pem = match &self.smtp_ca_file {
            Some(p) => Some(
                std::fs::read(p)
                    .with_context(|| format!("reading smtp_ca_file {}", p.display()))?,
            ),
            None => None,
        };
        Ok(Some(kluis_core::mail::MailConfig {
            smtp_url: url.clone(),
            username: self.smtp_username.clone(),
            password: self
                .smtp_password
                .as_ref()
                .map(|s| secrecy::SecretString::from(s.0.clone())),
            from: self.mail_from.clone().unwrap_or_default(),
            public_url: self
                .public_url
                .clone()
                .unwrap_or_else(|| format!("https://localhost:{port}")),
            extra_ca_pem,
            retry_initial: Duration::from_secs(self.mail_retry_initial_secs),
            max_attempts: self.mail_max_attempts,
            timeout: Duration::from_secs(self.smtp_timeout_secs),
            sweep_interval: Duration::from_secs(self.mail_sweep_interval_secs),
        }))
    }

    pub fn http(&self) -> kluis_http::HttpConfig {
        kluis_http::HttpConfig {
            body_limit: self.body_limit_bytes,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            import_max_bytes: self.import_max_bytes,
            import_timeout: Duration::from_secs(self.import_timeout_secs),
            metrics: None,
            security_txt: kluis_http::SecurityTxt {
                contact: self.security_contact.clone(),
                policy: self.security_policy_url.clone(),
                canonical: self
                    .public_url
                    .as_deref()
                    .map(|u| format!("{}/.well-known/security.txt", u.trim_end_matches('/'))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every secret-bearing setting, set to a marker, stays out of Debug output (which is
    /// what error reports and `{:?}` in logs print): the config, the command-line overrides,
    /// the store options built from it, and the mail settings.
    #[test]
    fn debug_hides_every_secret_setting() {
        let url = "postgres://kluis_app:pg-geheim-1@db.example.nl/kluis";
        let owner = "postgres://kluis_owner:pg-geheim-2@db.example.nl/kluis";
        let c = Config {
            database_url: Some(Secret(url.into())),
            database_owner_url: Some(Secret(owner.into())),
            pkcs11_pin: Some(Secret("hsm-geheim-3".into())),
            smtp_url: Some("smtp://mail.example.nl".into()),
            smtp_password: Some(Secret("zeer-geheim-42".into())),
            mail_from: Some("no-reply@example.nl".into()),
            ..Config::default()
        };
        let o = Overrides {
            database_url: Some(Secret(url.into())),
            database_owner_url: Some(Secret(owner.into())),
            ..Overrides::default()
        };
        let store = kluis_store_options(&c);
        let flags = crate::GlobalArgs {
            config: None,
            data_dir: None,
            database_url: Some(Secret(url.into())),
            database_owner_url: Some(Secret(owner.into())),
        };
        let shown = format!(
            "{c:?} {o:?} {store:?} {flags:?} {:?}",
            c.mail(8443).unwrap()
        );
        for secret in [
            "pg-geheim-1",
            "pg-geheim-2",
            "hsm-geheim-3",
            "zeer-geheim-42",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        // The settings are still there for whoever needs them.
        assert_eq!(c.database_url(), url);
    }

    fn kluis_store_options(c: &Config) -> kluis_store::StoreOptions {
        crate::serve::store_options(c)
    }

    #[test]
    fn debug_hides_the_smtp_password() {
        let c = Config {
            smtp_url: Some("smtp://mail.example.nl".into()),
            smtp_username: Some("kluis".into()),
            smtp_password: Some(Secret("zeer-geheim-42".into())),
            mail_from: Some("no-reply@example.nl".into()),
            ..Config::default()
        };
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("zeer-geheim"));
        let m = c.mail(8443).unwrap().unwrap();
        assert!(!format!("{m:?}").contains("zeer-geheim"));
        assert_eq!(m.public_url, "https://localhost:8443");
    }

    #[test]
    fn plain_smtp_only_to_loopback_and_needs_a_sender() {
        let c = |url: &str| Config {
            smtp_url: Some(url.into()),
            mail_from: Some("no-reply@example.nl".into()),
            ..Config::default()
        };
        assert!(c("smtp+plain://127.0.0.1:2525").validate().is_ok());
        assert!(c("smtp+plain://mail.example.nl:25").validate().is_err());
        assert!(c("ftp://mail.example.nl").validate().is_err());
        let no_from = Config {
            mail_from: None,
            ..c("smtp://mail.example.nl")
        };
        assert!(no_from.validate().is_err());
    }
}
