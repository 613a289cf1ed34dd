//! `kluis serve`: open the store, make sure keys and certificate exist, print the setup link
//! on first start, serve HTTPS (and optionally a redirect-only HTTP listener), stop gracefully
//! on SIGTERM / Ctrl-C.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use std::sync::Arc;

use kluis_core::Kluis;
use kluis_core::audit::AuditSigning;
use kluis_core::keys::{FileRootKeyStore, KeyEncryptionKeys};
use kluis_crypto::checkpoint::CheckpointSigner;
use kluis_crypto::envelope::{Kms, LocalKms};
use kluis_store::{Store, StoreOptions};

use crate::config::Config;

/// Opens everything a command needs: data directory, key-encryption key, database.
pub async fn open(cfg: &Config) -> anyhow::Result<Kluis> {
    let kluis = open_with(cfg, false).await?;
    with_mail(kluis, cfg, cfg.listen.port())
}

/// Attaches the mailer when email is configured (links in emails use `port` unless
/// `public_url` is set).
pub fn with_mail(kluis: Kluis, cfg: &Config, port: u16) -> anyhow::Result<Kluis> {
    Ok(match cfg.mail(port)? {
        Some(m) => kluis.with_mailer(
            kluis_core::mail::Mailer::new(m).map_err(|e| anyhow::anyhow!("email settings: {e}"))?,
        ),
        None => kluis,
    })
}

pub async fn open_with(cfg: &Config, rotating_kek: bool) -> anyhow::Result<Kluis> {
    create_private_dir(&cfg.data_dir)?;
    // The local KEK: created with mode 0600 on first start; a looser mode refuses to start.
    let kek_path = cfg.kek_path();
    if let Some(dir) = kek_path.parent() {
        create_private_dir(dir)?;
    }
    let keks = if cfg.kms == "pkcs11" {
        if rotating_kek {
            anyhow::bail!(
                "rotate-kek rotates the local key file; with kms = \"pkcs11\" rotate the key in the HSM and re-wrap with a new key label"
            );
        }
        KeyEncryptionKeys::new(open_pkcs11(cfg)?)
    } else {
        load_keks(&kek_path, rotating_kek)?
    };
    let store = Store::open(&store_options(cfg))
        .await
        .context("opening the database")?;
    let audit_dir = cfg.data_dir.join("audit");
    create_private_dir(&audit_dir)?;
    let signing = AuditSigning {
        signer: load_audit_signer(&cfg.data_dir.join("keys").join("audit-signing.key"))?,
        dir: audit_dir,
    };
    // Tenant root keys live next to the KEK, outside the database (and its backups).
    let root_dir = kek_path.parent().unwrap_or(&cfg.data_dir).join("tenants");
    create_private_dir(&root_dir)?;
    let kluis = Kluis::new(store, cfg.core(), keks)
        .with_audit_signing(signing)
        .with_root_key_store(Arc::new(crate::backup::TombstoningRootKeyStore::new(
            FileRootKeyStore::new(&root_dir),
            root_dir.clone(),
        )))
        .with_files(cfg.files())
        .context("file storage")?;
    kluis.set_checkpoint_every(cfg.audit_checkpoint_every_events);
    kluis
        .ensure_platform_keys()
        .await
        .context("platform audit keys")?;
    Ok(kluis)
}

/// The Ed25519 key that signs audit checkpoints: a 32-byte seed, base64, in a file with mode
/// 0600 (created on first start; a looser mode refuses to start).
pub(crate) fn load_audit_signer(path: &Path) -> anyhow::Result<CheckpointSigner> {
    use base64::Engine;
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let b64 = base64::engine::general_purpose::STANDARD;
    const NAME: &str = "kluis-audit";
    if !path.exists() {
        let signer = CheckpointSigner::generate(NAME)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        writeln!(f, "{}", b64.encode(signer.to_bytes().as_slice()))?;
        f.sync_all()?;
        return Ok(signer);
    }
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "{} has mode {mode:o}; it must be readable by its owner only (chmod 600)",
            path.display()
        );
    }
    let seed = b64
        .decode(std::fs::read_to_string(path)?.trim())
        .map_err(|_| anyhow::anyhow!("{} is not a base64 key", path.display()))?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()))?;
    Ok(CheckpointSigner::from_bytes(NAME, &seed)?)
}

/// Keeps every log's unsigned tail small: signs a log this process appended to
/// `idle` after its oldest unsigned event, at once when it reaches `every_events` or a bulk
/// operation asks, and pushes each new checkpoint to the witnesses. Every `interval`, it also
/// sweeps all logs (events other processes wrote: CLI commands, other servers).
async fn checkpoint_loop(
    kluis: Kluis,
    interval: Duration,
    idle: Duration,
    every_events: u64,
    mut pusher: crate::witness::Pusher,
) {
    let max_age_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    let every = i64::try_from(every_events).unwrap_or(i64::MAX);
    // On start: sign what an earlier process left unsigned (a crash, a killed CLI command),
    // and bring the witnesses up to the latest checkpoint (they may have been down).
    for id in all_log_ids(&kluis).await {
        if let Err(e) = kluis.checkpoint_log(id).await {
            tracing::error!(tenant = %id, error = %e, "audit checkpoint failed");
        }
        if !pusher.is_empty()
            && let Ok(l) = kluis.latest_checkpoint_of(id).await
        {
            pusher.push(&kluis, id, &l.checkpoint).await;
        }
    }
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        // Wake at least twice per idle period so no pending log waits much over `idle`.
        kluis.wait_checkpoint_due(idle / 2).await;
        for s in kluis.sign_pending_checkpoints(idle).await {
            pusher.push(&kluis, s.tenant, &s.note).await;
        }
        if last_sweep.elapsed() < interval.min(Duration::from_secs(60)) {
            continue;
        }
        last_sweep = tokio::time::Instant::now();
        for id in all_log_ids(&kluis).await {
            match kluis.checkpoint_log_when(id, every, max_age_ms).await {
                Ok(Some(note)) => pusher.push(&kluis, id, &note).await,
                Ok(None) => {}
                Err(e) => tracing::error!(tenant = %id, error = %e, "audit checkpoint failed"),
            }
        }
    }
}

/// The platform log and every tenant's.
pub(crate) async fn all_log_ids(kluis: &Kluis) -> Vec<kluis_core::TenantId> {
    let mut ids = vec![kluis_core::TenantId::PLATFORM];
    let mut cursor = None;
    loop {
        match kluis
            .list_tenants(
                &kluis_core::tenants::PlatformActor::console(),
                cursor.as_deref(),
                Some(200),
            )
            .await
        {
            Ok(page) => {
                ids.extend(page.items.iter().map(|t| t.id));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "listing tenants for checkpoints");
                break;
            }
        }
    }
    ids
}

/// How to reach the database, from the configuration.
pub(crate) fn store_options(cfg: &Config) -> StoreOptions {
    StoreOptions {
        database_url: cfg.database_url(),
        owner_url: cfg.database_owner_url.as_ref().map(|s| s.0.clone()),
        max_connections: cfg.database_max_connections,
        sqlite_wal_shipping: cfg.backup_repo.is_some(),
    }
}

/// The KEK inside a PKCS#11 token: wrapping and unwrapping happen in the token, the key never
/// leaves it. Created (non-extractable, sensitive) on first start if the label is free.
pub(crate) fn open_pkcs11(cfg: &Config) -> anyhow::Result<Arc<dyn Kms>> {
    use kluis_crypto::envelope::Pkcs11Kms;
    let (Some(module), Some(token), Some(label), Some(pin)) = (
        &cfg.pkcs11_module,
        &cfg.pkcs11_token_label,
        &cfg.pkcs11_key_label,
        &cfg.pkcs11_pin,
    ) else {
        anyhow::bail!("incomplete PKCS#11 settings");
    };
    let pin = || secrecy::SecretString::from(pin.0.clone());
    let kms = match Pkcs11Kms::open(module, token, pin(), label) {
        Ok(k) => k,
        Err(open_err) => {
            tracing::warn!(error = %open_err, "no usable KEK with this label in the token; creating one");
            Pkcs11Kms::generate_key(module, token, pin(), label).with_context(|| {
                format!("PKCS#11 token `{token}`: cannot open ({open_err}) or create key `{label}`")
            })?
        }
    };
    Ok(Arc::new(kms))
}

/// The path of the next KEK while a rotation is in progress.
pub fn next_kek_path(kek_path: &Path) -> std::path::PathBuf {
    kek_path.with_extension("key.next")
}

/// The local KEK (created with mode 0600 on first start; a looser mode refuses to start).
/// If a rotation was interrupted, the next KEK is loaded as well so every key stays readable;
/// `rotating` makes the next KEK the primary (creating it if needed).
pub fn load_keks(kek_path: &Path, rotating: bool) -> anyhow::Result<KeyEncryptionKeys> {
    let load = |p: &Path| -> anyhow::Result<Arc<dyn Kms>> {
        Ok(Arc::new(LocalKms::create_or_load(p).with_context(
            || format!("key-encryption key {}", p.display()),
        )?))
    };
    let current = load(kek_path)?;
    let next = next_kek_path(kek_path);
    Ok(if rotating {
        KeyEncryptionKeys::new(load(&next)?).with_secondary(current)
    } else if next.exists() {
        tracing::warn!("a KEK rotation was interrupted; run `kluis keys rotate-kek` to finish it");
        KeyEncryptionKeys::new(current).with_secondary(load(&next)?)
    } else {
        KeyEncryptionKeys::new(current)
    })
}

pub(crate) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KLUIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "pretty" {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}

pub async fn run(cfg: Config) -> anyhow::Result<()> {
    // Signal handlers first: from here on SIGTERM/SIGINT mean a clean shutdown (final
    // checkpoint), never the default kill, however early they come.
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut http = cfg.http();
    // One recorder per process, before any background job records; `/metrics` (platform key)
    // renders it.
    http.metrics = match kluis_http::metrics::install() {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "metrics are off");
            None
        }
    };
    init_logging(&cfg.log_format);
    let kluis = open(&cfg).await?;

    let generated = cfg.tls_cert.is_none() || cfg.tls_key.is_none();
    let (cert, key) = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => ensure_generated_cert(&cfg)?,
    };
    let tls = kluis_http::tls::server_config(&cert, &key).context("TLS configuration")?;

    let listener = std::net::TcpListener::bind(cfg.listen)
        .with_context(|| format!("binding {}", cfg.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let kluis = with_mail(kluis, &cfg, addr.port())?;
    if !kluis.mail_configured() {
        tracing::warn!(
            "no email relay configured (smtp_url): password reset and invitation emails are off; users who forget their password must ask an administrator"
        );
    }
    let base = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| format!("https://localhost:{}", addr.port()));

    let kluis = kluis.with_sso(sso_relying_party(&cfg)?, &base);
    let kluis = kluis.with_webauthn(&base).map_err(|e| anyhow::anyhow!(e))?;

    // The link's secret is kept in the data directory (mode 0600, beside the key files that
    // matter far more) so that a restart before setup is finished prints the same link; the
    // file goes once a tenant exists.
    let link_file = cfg.data_dir.join("setup-link");
    let previous = std::fs::read_to_string(&link_file).ok();
    match kluis
        .issue_setup_token_if_unconfigured(previous.as_deref().map(str::trim))
        .await?
    {
        Some(token) => {
            if previous.as_deref().map(str::trim) != Some(token.as_str()) {
                write_private_file(&link_file, token.as_bytes())?;
            }
            // Printed to the console only, never logged: it is a one-time secret.
            println!(
                "\n  Kluis is not set up yet. Open this one-time link (valid 1 hour; it survives a restart until used) to create the first organisation:\n\n    {base}/setup#{token}\n"
            );
        }
        None => {
            if previous.is_some() {
                let _ = std::fs::remove_file(&link_file);
            }
        }
    }
    tracing::info!(%addr, engine = ?kluis.store().engine(), "listening");
    println!("kluis: listening on https://{addr}");

    tokio::spawn(key_use_loop(kluis.clone()));
    if kluis.mail_configured() {
        let k = kluis.clone();
        tokio::spawn(async move { k.run_mail_sender().await });
    }
    let pusher = crate::witness::Pusher::new(crate::witness::parse_peers(&cfg.audit_witnesses)?)?;
    let checkpoints = tokio::spawn(checkpoint_loop(
        kluis.clone(),
        Duration::from_secs(cfg.audit_checkpoint_interval_secs),
        Duration::from_secs(cfg.audit_checkpoint_idle_secs),
        cfg.audit_checkpoint_every_events,
        pusher,
    ));
    if cfg.files_scan {
        tokio::spawn(rescan_loop(
            kluis.clone(),
            Duration::from_secs(cfg.files_rescan_interval_secs),
        ));
    } else {
        tracing::warn!("files_scan = false: uploaded files are served without a malware scan");
    }
    tokio::spawn(daily_maintenance(
        kluis.clone(),
        cfg.key_max_age_days,
        cfg.audit_retention_days,
        cfg.trash_retention_days,
    ));
    let backups = crate::backup::Schedule::start(&cfg, &kluis)
        .await
        .context("starting the backup schedule")?;
    let app = kluis_http::app(kluis.clone(), &http);
    let handle: Handle<SocketAddr> = Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone(), term, int));

    if let Some(redirect) = cfg.http_redirect_listen {
        tokio::spawn(redirect_listener(redirect, addr.port(), handle.clone()));
    }

    let rustls_config = RustlsConfig::from_config(tls);
    if generated {
        tokio::spawn(renew_generated_cert(cfg.clone(), rustls_config.clone()));
    }
    let acceptor = RustlsAcceptor::new(rustls_config).handshake_timeout(Duration::from_secs(10));
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .handle(handle)
        .first_request_timeout(Duration::from_secs(cfg.header_read_timeout_secs));
    server
        .http_builder()
        .http1()
        .header_read_timeout(Duration::from_secs(cfg.header_read_timeout_secs));
    // Above the application's own limits (kluis_http::early), which answer with the JSON error;
    // these bare transport refusals are the backstop.
    server
        .http_builder()
        .http2()
        .max_header_list_size(64 * 1024);
    server
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await?;
    if let Some(b) = backups {
        // Ships the last frames and closes the generation before the database closes.
        tokio::task::spawn_blocking(move || b.stop()).await?;
    }
    // Clean shutdown: every event this process wrote gets a signed checkpoint, and the
    // witnesses a copy, before the database closes.
    checkpoints.abort();
    let mut pusher =
        crate::witness::Pusher::new(crate::witness::parse_peers(&cfg.audit_witnesses)?)?;
    for s in kluis.sign_pending_checkpoints(Duration::ZERO).await {
        pusher.push(&kluis, s.tenant, &s.note).await;
    }
    crate::commands::finish(&kluis).await;
    tracing::info!("stopped");
    Ok(())
}

/// The process's effective user id, read from /proc (a libc call would need `unsafe`, which
/// the workspace forbids). None where /proc is not mounted.
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    // "Uid:\treal\teffective\tsaved\tfs"
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `kluis serve` as root only when told (`--allow-root`, `allow_root = true`).
pub fn refuse_root(euid: Option<u32>, allowed: bool) -> anyhow::Result<()> {
    match euid {
        Some(0) if !allowed => anyhow::bail!(
            "refusing to run as root: run kluis as its own unprivileged user (see deploy/systemd/kluis.service), or pass --allow-root (KLUIS_ALLOW_ROOT=true) if you really mean it"
        ),
        Some(0) => {
            eprintln!("kluis: warning: running as root (--allow-root)");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The host a generated certificate is named for: the host of `public_url`, if set.
fn public_host(cfg: &Config) -> Option<String> {
    let url = cfg.public_url.as_deref()?;
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then(|| host.to_owned())
}

/// The generated certificate (data_dir/tls), created or renewed as needed.
fn ensure_generated_cert(cfg: &Config) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    use kluis_http::tls::Generated;
    let (cert, key, what) = kluis_http::tls::ensure_self_signed(
        &cfg.data_dir.join("tls"),
        public_host(cfg).as_deref(),
        time::OffsetDateTime::now_utc(),
    )
    .context("self-signed certificate")?;
    match what {
        Generated::Kept => {}
        Generated::Created => {
            tracing::info!(cert = %cert.display(), "generated a self-signed certificate (90 days)")
        }
        Generated::Renewed(why) => {
            tracing::warn!(cert = %cert.display(), reason = why, "renewed the self-signed certificate")
        }
    }
    Ok((cert, key))
}

/// A server that runs for months would outlive its generated certificate: check twice a day
/// and swap a renewed one in without a restart.
async fn renew_generated_cert(cfg: Config, tls: RustlsConfig) {
    let mut tick = tokio::time::interval(Duration::from_secs(12 * 3600));
    tick.tick().await;
    loop {
        tick.tick().await;
        let (cert, key) = match ensure_generated_cert(&cfg) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "certificate renewal");
                continue;
            }
        };
        match kluis_http::tls::server_config(&cert, &key) {
            Ok(c) => tls.reload_from_config(c),
            Err(e) => tracing::error!(error = %e, "certificate renewal"),
        }
    }
}

/// The OpenID Connect relying party tenants' single sign-on uses.
fn sso_relying_party(cfg: &Config) -> anyhow::Result<kluis_oidc::RelyingParty> {
    let extra_ca_pem = cfg
        .sso_ca_file
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("sso_ca_file {}", p.display())))
        .transpose()?;
    kluis_oidc::RelyingParty::new(&kluis_oidc::RpConfig {
        extra_ca_pem,
        allow_private_networks: cfg.sso_allow_private_networks,
    })
    .map_err(|e| anyhow::anyhow!("sso_ca_file: {e}"))
}

/// Writes queued key uses (unwraps, failed customer-key unwraps) to the platform log.
async fn key_use_loop(kluis: Kluis) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        if let Err(e) = kluis.flush_key_uses().await {
            tracing::error!(error = %e, "recording key uses failed");
        }
    }
}

/// SIGTERM or Ctrl-C: stop accepting, let in-flight requests finish (up to 30 s).
/// The handlers are installed by the caller before the server listens: a SIGTERM that came
/// between "listening" and this task's first poll would otherwise kill the process outright,
/// skipping the clean shutdown (the final checkpoint).
async fn shutdown_on_signal(
    handle: Handle<SocketAddr>,
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
) {
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(Duration::from_secs(30)));
}

/// Plain HTTP that only redirects to HTTPS (same host, same path; the query is dropped so
/// nothing sent in clear by mistake travels on).
async fn redirect_listener(addr: SocketAddr, https_port: u16, handle: Handle<SocketAddr>) {
    use axum::http::{StatusCode, Uri, header};
    use axum::response::IntoResponse;
    let app =
        axum::Router::new().fallback(move |headers: axum::http::HeaderMap, uri: Uri| async move {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.split(':').next())
                .filter(|h| {
                    h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                })
                .unwrap_or("localhost")
                .to_owned();
            let location = format!("https://{host}:{https_port}{}", uri.path());
            (
                StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response()
        });
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => {
            println!("kluis: redirecting http://{addr} to https");
            let shutdown = async move {
                while handle.listening().await.is_some() {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
            };
            let _ = axum::serve(l, app).with_graceful_shutdown(shutdown).await;
        }
        Err(e) => tracing::error!(%addr, error = %e, "cannot bind redirect listener"),
    }
}

/// Scans files left pending while the malware scanner was unavailable, for every tenant.
async fn rescan_loop(kluis: Kluis, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let mut cursor = None;
        loop {
            let Ok(page) = kluis
                .list_tenants(
                    &kluis_core::tenants::PlatformActor::console(),
                    cursor.as_deref(),
                    Some(200),
                )
                .await
            else {
                break;
            };
            for t in &page.items {
                match kluis.rescan_pending_files(t.id).await {
                    Ok((0, _)) => {}
                    Ok((n, left)) => {
                        tracing::info!(tenant = %t.slug, scanned = n, pending = left, "file rescan")
                    }
                    Err(e) => tracing::error!(tenant = %t.slug, error = %e, "file rescan"),
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
}

/// Daily (and at start): applies each tenant's retention policy (audit retention and inactive
/// contacts, see `kluis_core::crm::retention`) to every log, purges trash entries older than
/// the trash retention, and warns about tenants whose current data key is older than the
/// rotation policy.
async fn daily_maintenance(kluis: Kluis, max_days: u64, retention_days: u64, trash_days: u64) {
    let trash_ms = i64::try_from(trash_days)
        .unwrap_or(i64::MAX)
        .saturating_mul(86_400_000);
    let max = i64::try_from(max_days).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(Duration::from_secs(86_400));
    loop {
        tick.tick().await;
        metrics::counter!("kluis_job_runs_total", "job" => "daily_maintenance").increment(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        metrics::gauge!("kluis_job_last_run_timestamp_seconds", "job" => "daily_maintenance")
            .set(now.as_secs_f64());
        let cutoff = i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
            - i64::try_from(retention_days)
                .unwrap_or(i64::MAX)
                .saturating_mul(86_400_000);
        if let Err(e) = kluis
            .expire_log(kluis_core::TenantId::PLATFORM, cutoff)
            .await
        {
            tracing::error!(error = %e, "audit retention (platform log)");
        }
        let mut cursor = None;
        loop {
            let Ok(page) = kluis
                .list_tenants(
                    &kluis_core::tenants::PlatformActor::console(),
                    cursor.as_deref(),
                    Some(200),
                )
                .await
            else {
                break;
            };
            for t in &page.items {
                // The tenant's retention policy (contacts, audit years), or the server's
                // audit retention when it has none.
                match kluis.run_retention(t.id, cutoff).await {
                    Ok(r) => {
                        tracing::info!(tenant = %t.slug, dry_run = r.dry_run, contacts = r.contacts.len(), action = %r.contact_action, audit_events = r.audit_events, "retention")
                    }
                    Err(e) => tracing::error!(tenant = %t.slug, error = %e, "retention"),
                }
                if let Err(e) = kluis
                    .purge_mail_leftovers(t.id, Duration::from_secs(30 * 86_400))
                    .await
                {
                    tracing::error!(tenant = %t.slug, error = %e, "mail housekeeping");
                }
                match kluis.purge_expired_files(t.id).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(tenant = %t.slug, purged = n, "file trash retention"),
                    Err(e) => tracing::error!(tenant = %t.slug, error = %e, "file trash retention"),
                }
                match kluis.purge_expired_trash(t.id, trash_ms).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(tenant = %t.slug, purged = n, "trash retention"),
                    Err(e) => tracing::error!(tenant = %t.slug, error = %e, "trash retention"),
                }
                if let Ok(Some(age)) = kluis.data_key_age(t.id).await
                    && age.age_days > max
                {
                    tracing::warn!(tenant = %t.slug, version = age.version, age_days = age.age_days, max_days, "data key older than the rotation policy; run `kluis keys rotate-dek`");
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
}

/// Writes a secret to `path` with mode 0600 (replacing what was there), through a temporary
/// file so that a crash leaves the old content or the new, never half of either.
fn write_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_only_when_allowed() {
        assert!(super::refuse_root(Some(0), false).is_err());
        assert!(super::refuse_root(Some(0), true).is_ok());
        assert!(super::refuse_root(Some(1000), false).is_ok());
        // This process's own uid is readable.
        assert!(super::effective_uid().is_some());
    }

    #[test]
    fn public_host_is_the_host_of_public_url() {
        let mut cfg = crate::config::Config::default();
        assert_eq!(super::public_host(&cfg), None);
        for (url, host) in [
            ("https://crm.example.test", "crm.example.test"),
            ("https://crm.example.test:8443/base?x#y", "crm.example.test"),
            ("https://[2001:db8::1]:8443/", "2001:db8::1"),
            ("crm.example.test:443", "crm.example.test"),
        ] {
            cfg.public_url = Some(url.to_owned());
            assert_eq!(super::public_host(&cfg).as_deref(), Some(host), "{url}");
        }
    }
}
