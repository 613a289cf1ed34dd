//! `kluis backup create | list | verify | restore | prune | drill`, and the backup schedule
//! inside `kluis serve` (WAL shipping every second, a snapshot daily, prune, restore drills).
//!
//! The engine lives in `kluis-backup` (files, objects, keys); this module glues it to the
//! installation: the KEK and audit signing key from the configuration, the tenant key
//! directory (key ledger), audit events, and audit verification after a restore.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kluis_backup::sqlite::{self, Shipper, ShipperConfig};
use kluis_backup::{Backups, RetentionPolicy};
use kluis_core::keys::{FileRootKeyStore, RootKeyStore};
use kluis_core::{Kluis, TenantId};
use kluis_crypto::envelope::{Kms, LocalKms};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::Config;
use crate::serve;

#[derive(Args, Debug, Clone)]
pub struct RepoArgs {
    /// Backup repository: a directory or s3://bucket/prefix. Default: `backup_repo` from the
    /// configuration.
    #[arg(long)]
    repo: Option<String>,
    /// Machine-readable output (JSON).
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Take a backup now (online: the server keeps running), as a new generation.
    Create(RepoArgs),
    /// List the backups, what each can restore, and why retention keeps it.
    List(RepoArgs),
    /// Read every byte of a backup back and check it against its signed manifest.
    Verify {
        #[command(flatten)]
        r: RepoArgs,
        /// One backup (default: every complete backup).
        #[arg(long)]
        id: Option<String>,
    },
    /// Restore into a NEW data directory (the global --data-dir), to the latest state or
    /// --at a moment; then verify every audit log.
    Restore {
        #[command(flatten)]
        r: RepoArgs,
        /// RFC 3339 moment, e.g. 2026-12-07T10:15:00Z.
        #[arg(long)]
        at: Option<String>,
        /// The KEK of the installation that wrote the backup (copied into the new data
        /// directory unless `kek_file` is configured). Default: the configured KEK path.
        #[arg(long)]
        kek_file: Option<PathBuf>,
    },
    /// Delete the backups retention no longer keeps (recorded as an audit event).
    Prune(RepoArgs),
    /// Restore the latest backup into scratch space and check it (row counts, integrity,
    /// audit verification, manifest); the result is recorded as an audit event.
    Drill(RepoArgs),
}

/// Tenant root keys with tombstones: destroying a key (shredding) leaves `<tenant>.shredded`
/// so the key ledger in the backup repository forgets the tenant too.
pub struct TombstoningRootKeyStore {
    inner: FileRootKeyStore,
    dir: PathBuf,
}

impl TombstoningRootKeyStore {
    pub fn new(inner: FileRootKeyStore, dir: PathBuf) -> Self {
        TombstoningRootKeyStore { inner, dir }
    }
}

impl RootKeyStore for TombstoningRootKeyStore {
    fn load(&self, tenant: TenantId) -> kluis_core::Result<Option<Vec<u8>>> {
        self.inner.load(tenant)
    }
    fn store(&self, tenant: TenantId, blob: &[u8]) -> kluis_core::Result<()> {
        self.inner.store(tenant, blob)
    }
    fn destroy(&self, tenant: TenantId) -> kluis_core::Result<bool> {
        // Tombstone first: if destroying then fails, the ledger forgets a key that still
        // exists here (recoverable: the next backup copies it again), never the reverse.
        if let Err(e) = kluis_backup::ledger::tombstone(&self.dir, &tenant.0.to_string()) {
            tracing::error!(error = %e, "could not record a shredded tenant for the backup ledger");
        }
        self.inner.destroy(tenant)
    }
}

fn tenants_dir(cfg: &Config) -> PathBuf {
    cfg.kek_path()
        .parent()
        .unwrap_or(&cfg.data_dir)
        .join("tenants")
}

fn signing_key_path(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("keys").join("audit-signing.key")
}

fn kms_for(cfg: &Config, kek_file: Option<&Path>) -> anyhow::Result<Arc<dyn Kms>> {
    if cfg.kms == "pkcs11" {
        return serve::open_pkcs11(cfg);
    }
    let path = kek_file.map_or_else(|| cfg.kek_path(), Path::to_path_buf);
    Ok(Arc::new(LocalKms::load(&path).with_context(|| {
        format!("key-encryption key {}", path.display())
    })?))
}

fn sqlite_path(cfg: &Config) -> anyhow::Result<PathBuf> {
    let url = cfg.database_url();
    if url.starts_with("postgres") {
        bail!(
            "this installation uses PostgreSQL: `kluis backup` drives SQLite installations only so far; \
             back PostgreSQL up with pgBackRest (see the README, \"Backups\")"
        );
    }
    Ok(PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(&url)))
}

pub fn policy(cfg: &Config) -> RetentionPolicy {
    RetentionPolicy {
        daily: cfg.backup_keep_daily,
        pitr_days: cfg.backup_keep_pitr_days,
        monthly: cfg.backup_keep_monthly,
        yearly: cfg.backup_keep_yearly,
    }
}

async fn open_backups(
    cfg: &Config,
    repo: Option<&str>,
    kms: Arc<dyn Kms>,
    create: bool,
) -> anyhow::Result<Backups> {
    let location = repo
        .map(str::to_owned)
        .or_else(|| cfg.backup_repo.clone())
        .context("no backup repository: give --repo DIR|s3://... or set backup_repo")?;
    let signer_path = signing_key_path(cfg);
    let signer = if signer_path.exists() {
        Some(Arc::new(serve::load_audit_signer(&signer_path)?))
    } else {
        None
    };
    let mut b = Backups::open(&location, kms, signer, create)
        .await
        .with_context(|| format!("backup repository {location}"))?;
    b.policy = policy(cfg);
    Ok(b)
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run(cfg: &Config, cmd: BackupCmd) -> anyhow::Result<()> {
    match cmd {
        BackupCmd::Create(r) => create(cfg, &r).await,
        BackupCmd::List(r) => {
            let b = open_backups(cfg, r.repo.as_deref(), kms_for(cfg, None)?, false).await?;
            let l = sqlite::list(&b, OffsetDateTime::now_utc()).await?;
            if r.json {
                return print_json(&l);
            }
            for s in &l {
                println!(
                    "{}  {:<10} {} .. {}  {:>8.1} MB stored  {:>8.1} MB db  kept for: {}  locked until {}",
                    s.id,
                    s.kind,
                    s.restorable_from.map(ts).unwrap_or_else(|| "-".into()),
                    s.restorable_until.map(ts).unwrap_or_else(|| "-".into()),
                    s.stored_bytes as f64 / 1e6,
                    s.database_bytes as f64 / 1e6,
                    if s.kept_for.is_empty() {
                        "(due)".to_owned()
                    } else {
                        s.kept_for.join(",")
                    },
                    s.retain_until.map(ts).unwrap_or_else(|| "-".into()),
                );
            }
            Ok(())
        }
        BackupCmd::Verify { r, id } => {
            let b = open_backups(cfg, r.repo.as_deref(), kms_for(cfg, None)?, false).await?;
            let gens = sqlite::generations(&b).await?;
            let ids: Vec<String> = match id {
                Some(id) => vec![id],
                None => gens
                    .iter()
                    .filter(|g| g.complete)
                    .map(|g| g.id.clone())
                    .collect(),
            };
            let mut reports = Vec::new();
            for id in &ids {
                reports.push(sqlite::verify(&b, id).await?);
            }
            let failed = reports.iter().filter(|r| !r.ok).count();
            if r.json {
                print_json(&reports)?;
            } else {
                for rep in &reports {
                    if rep.ok {
                        println!(
                            "ok      {}: {} objects, {} bytes read back and authenticated",
                            rep.backup_id, rep.objects_checked, rep.bytes_read
                        );
                    } else {
                        println!("FAILED  {}:", rep.backup_id);
                        for p in &rep.problems {
                            println!("        {p}");
                        }
                    }
                }
                for g in gens.iter().filter(|g| !g.complete) {
                    println!(
                        "skipped {}: incomplete (interrupted while taking its snapshot)",
                        g.id
                    );
                }
            }
            if failed > 0 {
                bail!("{failed} backup(s) failed verification");
            }
            Ok(())
        }
        BackupCmd::Restore { r, at, kek_file } => {
            let at = at
                .map(|s| OffsetDateTime::parse(&s, &Rfc3339))
                .transpose()
                .context("--at must be an RFC 3339 moment, e.g. 2026-12-07T10:15:00Z")?;
            let report = restore_into(cfg, r.repo.as_deref(), at, kek_file.as_deref()).await?;
            if r.json {
                print_json(&report)?;
            } else {
                print_restore(&report);
            }
            if !report.audit_ok {
                bail!("the restored audit log does not verify");
            }
            Ok(())
        }
        BackupCmd::Prune(r) => {
            let kluis = serve::open(cfg).await?;
            let b = open_backups(cfg, r.repo.as_deref(), kms_for(cfg, None)?, false).await?;
            let out = sqlite::prune(&b, OffsetDateTime::now_utc()).await?;
            record_prune(&kluis, &out).await?;
            crate::commands::finish(&kluis).await;
            if r.json {
                return print_json(&out);
            }
            for id in &out.deleted {
                println!("deleted {id}");
            }
            for id in &out.refused {
                println!("kept    {id}: still under its retention lock");
            }
            if out.deleted.is_empty() {
                println!("nothing due");
            }
            Ok(())
        }
        BackupCmd::Drill(r) => {
            let kluis = serve::open(cfg).await?;
            let b = open_backups(cfg, r.repo.as_deref(), kms_for(cfg, None)?, false).await?;
            let report = drill(cfg, &b, r.repo.as_deref()).await;
            record_drill(&kluis, &report).await?;
            crate::commands::finish(&kluis).await;
            if r.json {
                print_json(&report)?;
            } else {
                print_drill(&report);
            }
            if !report.ok {
                bail!("restore drill failed");
            }
            Ok(())
        }
    }
}

async fn create(cfg: &Config, r: &RepoArgs) -> anyhow::Result<()> {
    let kluis = serve::open(cfg).await?;
    let b = open_backups(cfg, r.repo.as_deref(), kms_for(cfg, None)?, true).await?;
    let db = sqlite_path(cfg)?;
    let started = std::time::Instant::now();
    let id = sqlite::create_snapshot(&b, &db).await?;
    // After the snapshot: every tenant in it has its key file by now.
    let ledger = kluis_backup::ledger::sync(&b.repo, &tenants_dir(cfg)).await?;
    let summary = sqlite::list(&b, OffsetDateTime::now_utc())
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .context("the new backup is not listed")?;
    kluis
        .record_platform_event(
            "console",
            "backup.create",
            true,
            "backup",
            &id,
            json!({"stored_bytes": summary.stored_bytes, "database_bytes": summary.database_bytes,
                   "ledger_copied": ledger.copied.len(), "ledger_forgotten": ledger.forgotten.len()}),
        )
        .await?;
    crate::commands::finish(&kluis).await;
    if r.json {
        return print_json(&summary);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "created {id}: {:.1} MB database, {:.1} MB stored in {secs:.1} s ({:.1} MB/s); kept for {}",
        summary.database_bytes as f64 / 1e6,
        summary.stored_bytes as f64 / 1e6,
        summary.database_bytes as f64 / 1e6 / secs.max(1e-9),
        summary.kept_for.join(", ")
    );
    Ok(())
}

/// The outcome of a restore (or of a drill's restore).
#[derive(Debug, serde::Serialize)]
pub struct RestoreReport {
    pub data_dir: PathBuf,
    pub restore: sqlite::RestoreOutcome,
    pub tenant_keys_restored: usize,
    /// Tenants shredded after the backup was taken, shredded again in the restored copy.
    pub tenants_reshredded: Vec<String>,
    pub audit_ok: bool,
    /// One line per log: `ok platform: 12 events, 2 checkpoints` / `BROKEN ...` /
    /// `unreadable ...` (a shredded tenant: its key is gone for good).
    pub audit: Vec<String>,
    pub row_counts: std::collections::BTreeMap<String, i64>,
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Restores into `cfg.data_dir` (which must not hold a database yet): database, audit signing
/// key, tenant root keys from the ledger (never one the ledger no longer has); then opens the
/// restored installation and verifies every audit log.
pub async fn restore_into(
    cfg: &Config,
    repo: Option<&str>,
    at: Option<OffsetDateTime>,
    kek_file: Option<&Path>,
) -> anyhow::Result<RestoreReport> {
    restore_generation_into(cfg, repo, None, at, kek_file).await
}

async fn restore_generation_into(
    cfg: &Config,
    repo: Option<&str>,
    generation: Option<&str>,
    at: Option<OffsetDateTime>,
    kek_file: Option<&Path>,
) -> anyhow::Result<RestoreReport> {
    use base64::Engine;
    let db = sqlite_path(cfg)?;
    if db.exists() {
        bail!(
            "{} exists: restore into a new data directory (--data-dir NEW)",
            db.display()
        );
    }
    serve::create_private_dir(&cfg.data_dir)?;
    let kms = kms_for(cfg, kek_file)?;
    let b = open_backups(cfg, repo, kms, false).await?;
    let restore = match generation {
        Some(id) => sqlite::restore_generation(&b, id, at, &db).await?,
        None => sqlite::restore(&b, at, &db).await?,
    };
    if let Some(k) = kek_file
        && cfg.kek_file.is_none()
        && cfg.kms != "pkcs11"
        && !cfg.kek_path().exists()
    {
        // The new installation keeps its KEK where it looks for it (only once the restore
        // has succeeded: a refused restore leaves no key behind).
        write_private(&cfg.kek_path(), &std::fs::read(k)?)?;
    }
    let signer_path = signing_key_path(cfg);
    if !signer_path.exists() {
        let seed = sqlite::signing_seed(&b, &restore.generation).await?;
        let line = format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(seed.as_slice())
        );
        write_private(&signer_path, line.as_bytes())?;
    }
    let keys = kluis_backup::ledger::restore_keys(&b.repo, &tenants_dir(cfg)).await?;
    let row_counts = {
        let c = rusqlite::Connection::open(&db)?;
        sqlite::row_counts(&c)?
    };
    // The restored installation must not start shipping into the repository by itself here.
    let mut plain = cfg.clone();
    plain.backup_repo = None;
    let kluis = serve::open(&plain).await?;
    // Tenants shredded after this backup was taken: shred them here too (their keys were not
    // restored; this makes the restored database say so, with an audit event).
    let shredded = kluis_backup::ledger::shredded(&b.repo).await?;
    let mut reshredded = Vec::new();
    for t in &shredded {
        let Ok(id) = t.parse::<uuid::Uuid>() else {
            continue;
        };
        let id = TenantId(id);
        let op = kluis_core::tenants::PlatformActor::console();
        let ctx = kluis_core::RequestContext {
            ip: "console".into(),
            user_agent: "kluis-backup-restore".into(),
            request_id: String::new(),
        };
        match kluis.shred_tenant(&op, &ctx, id).await {
            Ok(()) => reshredded.push(t.clone()),
            // Not in this backup, or shredded in it already.
            Err(e) if e.kind == kluis_core::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(tenant = %t, error = %e, "re-applying a shred"),
        }
    }
    let (audit_ok, audit) = verify_audit(&kluis, &shredded).await?;
    crate::commands::finish(&kluis).await;
    Ok(RestoreReport {
        data_dir: cfg.data_dir.clone(),
        restore,
        tenant_keys_restored: keys.len(),
        tenants_reshredded: reshredded,
        audit_ok,
        audit,
        row_counts,
    })
}

async fn verify_audit(kluis: &Kluis, shredded: &[String]) -> anyhow::Result<(bool, Vec<String>)> {
    let op = kluis_core::tenants::PlatformActor::console();
    let mut logs = vec![("platform".to_owned(), TenantId::PLATFORM, true)];
    let mut cursor = None;
    loop {
        let page = kluis
            .list_tenants(&op, cursor.as_deref(), Some(200))
            .await?;
        logs.extend(
            page.items
                .iter()
                .map(|t| (t.slug.clone(), t.id, t.status == kluis_core::Status::Active)),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut ok = true;
    let mut lines = Vec::new();
    for (name, id, active) in logs {
        match kluis.verify_log(id).await {
            Ok(r) => match r.first_broken {
                None => lines.push(format!(
                    "ok      {name}: {} events, {} checkpoints verified",
                    r.events, r.checkpoints_checked
                )),
                Some((seq, why)) => {
                    ok = false;
                    lines.push(format!("BROKEN  {name}: first broken event {seq}: {why}"));
                }
            },
            // A shredded tenant (keys destroyed) cannot be read, by design.
            Err(e)
                if e.kind == kluis_core::ErrorKind::Unavailable
                    && (!active || shredded.contains(&id.0.to_string())) =>
            {
                lines.push(format!("unreadable {name}: {e} (shredded)"));
            }
            Err(e) => {
                ok = false;
                lines.push(format!("FAILED  {name}: {e}"));
            }
        }
    }
    Ok((ok, lines))
}

fn print_restore(r: &RestoreReport) {
    println!(
        "restored {} into {}: snapshot {} + {} transactions, state as of {}",
        r.restore.generation,
        r.data_dir.display(),
        ts(r.restore.snapshot_at),
        r.restore.transactions_applied,
        ts(r.restore.restored_to),
    );
    println!(
        "{} objects verified, {} tenant keys restored from the ledger",
        r.restore.objects_checked, r.tenant_keys_restored
    );
    for l in &r.audit {
        println!("{l}");
    }
}

/// A restore drill's result.
#[derive(Debug, serde::Serialize)]
pub struct DrillReport {
    pub ok: bool,
    pub generation: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub problems: Vec<String>,
    pub checks: Vec<String>,
    pub seconds: f64,
}

/// Restores the latest backup into scratch space (twice: as of its snapshot, to compare row
/// counts with the manifest; and to the latest shipped state, to verify the audit logs), and
/// removes the scratch space again.
pub async fn drill(cfg: &Config, b: &Backups, repo: Option<&str>) -> DrillReport {
    let started = std::time::Instant::now();
    let mut report = DrillReport {
        ok: false,
        generation: None,
        at: OffsetDateTime::now_utc(),
        problems: Vec::new(),
        checks: Vec::new(),
        seconds: 0.0,
    };
    let scratch = cfg
        .data_dir
        .join(format!("drill-{}", uuid::Uuid::new_v4().simple()));
    if let Err(e) = drill_in(cfg, b, repo, &scratch, &mut report).await {
        report.problems.push(format!("{e:#}"));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    report.ok = report.problems.is_empty();
    report.seconds = started.elapsed().as_secs_f64();
    report
}

async fn drill_in(
    cfg: &Config,
    b: &Backups,
    repo: Option<&str>,
    scratch: &Path,
    report: &mut DrillReport,
) -> anyhow::Result<()> {
    let gens = sqlite::generations(b).await?;
    // The generation a restore of the latest state uses.
    let latest = *sqlite::candidates(&gens, None)
        .first()
        .context("no complete backup to drill")?;
    report.generation = Some(latest.id.clone());
    let v = sqlite::verify(b, &latest.id).await?;
    if !v.ok {
        report.problems.extend(v.problems);
        return Ok(());
    }
    report.checks.push(format!(
        "manifest: {} objects, {} bytes read back",
        v.objects_checked, v.bytes_read
    ));
    let info = sqlite::snapshot_info(b, &latest.id).await?;
    let scratch_cfg = |sub: &str| {
        let mut c = cfg.clone();
        c.data_dir = scratch.join(sub);
        c.database_url = None;
        c.kek_file = None;
        c.backup_repo = None;
        c
    };
    let kek = (cfg.kms != "pkcs11").then(|| cfg.kek_path());
    let repo = repo.map(str::to_owned).or_else(|| cfg.backup_repo.clone());
    // 1. As of the snapshot: row counts must equal those recorded in the signed manifest.
    let c1 = scratch_cfg("snapshot");
    let r1 = restore_generation_into(
        &c1,
        repo.as_deref(),
        Some(&latest.id),
        Some(info.snapshot_at),
        kek.as_deref(),
    )
    .await?;
    if r1.restore.generation != latest.id {
        report.problems.push(format!(
            "restore as of the snapshot used {} instead of {}",
            r1.restore.generation, latest.id
        ));
    }
    if r1.row_counts != info.row_counts {
        report.problems.push(format!(
            "row counts differ from the manifest: restored {:?}, recorded {:?}",
            r1.row_counts, info.row_counts
        ));
    } else {
        report.checks.push(format!(
            "row counts: {} tables match the manifest ({} rows)",
            info.row_counts.len(),
            info.row_counts.values().sum::<i64>()
        ));
    }
    // 2. The latest state: integrity check (inside restore) and audit verification.
    let c2 = scratch_cfg("latest");
    let r2 = restore_into(&c2, repo.as_deref(), None, kek.as_deref()).await?;
    report.checks.push(format!(
        "latest: {} transactions after the snapshot, state as of {}",
        r2.restore.transactions_applied,
        ts(r2.restore.restored_to)
    ));
    for r in [&r1, &r2] {
        if !r.audit_ok {
            report
                .problems
                .extend(r.audit.iter().filter(|l| !l.starts_with("ok")).cloned());
        }
    }
    report.checks.push(format!(
        "audit: {} logs verified",
        r2.audit.iter().filter(|l| l.starts_with("ok")).count()
    ));
    Ok(())
}

fn print_drill(r: &DrillReport) {
    println!(
        "drill {} of {} in {:.1} s",
        if r.ok { "PASSED" } else { "FAILED" },
        r.generation.as_deref().unwrap_or("-"),
        r.seconds
    );
    for c in &r.checks {
        println!("  ok  {c}");
    }
    for p in &r.problems {
        println!("  !!  {p}");
    }
}

async fn record_drill(kluis: &Kluis, r: &DrillReport) -> anyhow::Result<()> {
    kluis
        .record_platform_event(
            "system",
            "backup.drill",
            r.ok,
            "backup",
            r.generation.as_deref().unwrap_or("-"),
            json!({"checks": r.checks, "problems": r.problems, "seconds": r.seconds}),
        )
        .await?;
    Ok(())
}

async fn record_prune(kluis: &Kluis, out: &sqlite::PruneOutcome) -> anyhow::Result<()> {
    if out.deleted.is_empty() && out.refused.is_empty() {
        return Ok(());
    }
    kluis
        .record_platform_event(
            "system",
            "backup.prune",
            true,
            "backup",
            &out.deleted.join(","),
            json!({"deleted": out.deleted, "objects_deleted": out.objects_deleted, "kept_locked": out.refused}),
        )
        .await?;
    Ok(())
}

/// After `kluis tenant shred`: make the ledger forget the tenant now (the server's shipper
/// would within seconds; the CLI may run while the server is down).
pub async fn after_shred(cfg: &Config) -> anyhow::Result<()> {
    if cfg.backup_repo.is_none() {
        return Ok(());
    }
    let b = open_backups(cfg, None, kms_for(cfg, None)?, true).await?;
    let s = kluis_backup::ledger::sync(&b.repo, &tenants_dir(cfg)).await?;
    for t in &s.forgotten {
        println!("backup key ledger: forgot tenant {t}");
    }
    Ok(())
}

/// The backup schedule inside `kluis serve`: a thread of its own (the shipper does blocking
/// file IO) ships the WAL every second, starts a new generation daily, syncs the key ledger,
/// and prunes hourly; drills run on another thread. Results that belong in the audit log are
/// sent back to the server's runtime.
pub struct Schedule {
    stop: Arc<AtomicBool>,
    shipper: Option<std::thread::JoinHandle<()>>,
}

enum Note {
    Pruned(sqlite::PruneOutcome),
    Drilled(DrillReport),
}

impl Schedule {
    pub async fn start(cfg: &Config, kluis: &Kluis) -> anyhow::Result<Option<Schedule>> {
        if cfg.backup_repo.is_none() {
            return Ok(None);
        }
        let db = sqlite_path(cfg)?;
        let b = open_backups(cfg, None, kms_for(cfg, None)?, true).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Note>();
        kluis.update_backup_status(|s| {
            s.configured = true;
            s.repository = cfg.backup_repo.clone();
        });
        let shipper = {
            let (stop, tx, cfg, b, k) = (
                stop.clone(),
                tx.clone(),
                cfg.clone(),
                b.clone(),
                kluis.clone(),
            );
            std::thread::Builder::new()
                .name("backup-shipper".into())
                .spawn(move || ship_loop(&cfg, b, &db, &stop, &tx, &k))?
        };
        let k = kluis.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                let r = match &n {
                    Note::Pruned(out) => record_prune(&k, out).await,
                    Note::Drilled(d) => {
                        k.update_backup_status(|s| {
                            s.last_drill = Some(ts(d.at));
                            s.last_drill_backup = d.generation.clone();
                            s.last_drill_ok = Some(d.ok);
                        });
                        if !d.ok {
                            tracing::error!(problems = ?d.problems, "ALERT: backup restore drill failed");
                        }
                        record_drill(&k, d).await
                    }
                };
                if let Err(e) = r {
                    tracing::error!(error = %e, "recording a backup event");
                }
            }
        });
        if cfg.backup_drill_interval_hours > 0 {
            let (stop, cfg) = (stop.clone(), cfg.clone());
            std::thread::Builder::new()
                .name("backup-drill".into())
                .spawn(move || drill_loop(&cfg, b, &stop, &tx))?;
        }
        Ok(Some(Schedule {
            stop,
            shipper: Some(shipper),
        }))
    }

    /// Ships the tail, closes the generation, stops.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.shipper.take() {
            let _ = h.join();
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| tracing::error!(error = %e, "backup runtime"))
        .ok()
}

fn ship_loop(
    cfg: &Config,
    b: Backups,
    db: &Path,
    stop: &AtomicBool,
    tx: &tokio::sync::mpsc::UnboundedSender<Note>,
    kluis: &Kluis,
) {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let mut shipper = match Shipper::open(b.clone(), db, ShipperConfig::default()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "ALERT: backup shipper cannot start");
                return;
            }
        };
        let keys = tenants_dir(cfg);
        let mut cache = std::collections::HashMap::new();
        let mut last_sync = std::time::Instant::now() - Duration::from_secs(3600);
        let mut last_prune = std::time::Instant::now();
        let mut failing = false;
        let mut last_ok = std::time::Instant::now();
        let mut last_alert = std::time::Instant::now() - Duration::from_secs(7200);
        while !stop.load(Ordering::SeqCst) {
            let began = std::time::Instant::now();
            match shipper.tick().await {
                Ok(t) => {
                    if let Some(g) = t.new_generation {
                        tracing::info!(generation = %g, "backup: new snapshot stored");
                    }
                    if failing {
                        tracing::info!("backup shipping recovered");
                    }
                    failing = false;
                    // Everything committed before this tick is in the repository now.
                    let now = OffsetDateTime::now_utc();
                    last_ok = std::time::Instant::now();
                    kluis.update_backup_status(|s| {
                        s.generation = shipper.generation().map(str::to_owned);
                        s.last_backup = Some(ts(now));
                        s.last_backup_unix = Some(now.unix_timestamp());
                        s.shipping_error = None;
                    });
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, "ALERT: backup shipping failed");
                    }
                    failing = true;
                    kluis.update_backup_status(|s| s.shipping_error = Some(e.to_string()));
                    if last_ok.elapsed() > Duration::from_secs(26 * 3600)
                        && last_alert.elapsed() > Duration::from_secs(3600)
                    {
                        last_alert = std::time::Instant::now();
                        tracing::error!("ALERT: the latest backup is older than 26 hours");
                    }
                }
            }
            if last_sync.elapsed() >= Duration::from_secs(5) {
                last_sync = std::time::Instant::now();
                match kluis_backup::ledger::sync_cached(&b.repo, &keys, &mut cache).await {
                    Ok(s) => {
                        for t in s.forgotten {
                            tracing::info!(tenant = %t, "backup key ledger: shredded tenant forgotten");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "backup key ledger sync failed"),
                }
            }
            if last_prune.elapsed() >= Duration::from_secs(3600) {
                last_prune = std::time::Instant::now();
                match sqlite::prune(&b, OffsetDateTime::now_utc()).await {
                    Ok(out) => {
                        let _ = tx.send(Note::Pruned(out));
                    }
                    Err(e) => tracing::error!(error = %e, "backup prune failed"),
                }
            }
            let spent = began.elapsed();
            if let Some(rest) = shipper.cfg.tick.checked_sub(spent) {
                std::thread::sleep(rest);
            }
        }
        if let Err(e) = shipper.close().await {
            tracing::error!(error = %e, "backup: closing the generation failed");
        }
    });
}

fn drill_loop(
    cfg: &Config,
    b: Backups,
    stop: &AtomicBool,
    tx: &tokio::sync::mpsc::UnboundedSender<Note>,
) {
    let Some(rt) = runtime() else { return };
    let every = Duration::from_secs(cfg.backup_drill_interval_hours * 3600);
    // First drill an hour after start-up (the first snapshot is in by then), then on schedule.
    let mut next = std::time::Instant::now() + Duration::from_secs(3600).min(every);
    while !stop.load(Ordering::SeqCst) {
        if std::time::Instant::now() >= next {
            next = std::time::Instant::now() + every;
            let report = rt.block_on(drill(cfg, &b, None));
            let _ = tx.send(Note::Drilled(report));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
