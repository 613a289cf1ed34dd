//! DEK re-encryption benchmark: how long the real re-encryption job (`Kluis::reencrypt_tenant`,
//! what `kluis keys rotate-dek` / `kluis keys reencrypt` run) takes to move 1,000,000 sealed
//! records to a new data key, while the tenant keeps being read and written.
//!
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench -p kluis-core --bench reencrypt`
//!
//! Target (from the envelope-encryption issue): re-encrypting 1 million sealed records online
//! takes at most 60 s. Prints figures and verifies the result; fails (non-zero exit) if the
//! data does not read back under the new key, not if the target is missed.
//!
//! Steps: a tenant gets `KLUIS_BENCH_RECORDS` users whose email and display name are sealed
//! under data key version 1, exactly as the server seals them (`bench_support::
//! insert_sealed_users`, large transactions); `Kluis::rotate_data_key` makes version 2
//! current; `Kluis::reencrypt_tenant` runs to completion and is timed, while a reader
//! (`Kluis::get_user`) and a writer (a small write transaction) run against the same tenant to
//! show it stays online; then every row's key versions are counted and a sample of users is
//! opened through `Kluis::get_user` and compared with what was written. Finally the job runs a
//! second time (a resumed or repeated run): it must find nothing left to do.
//!
//! Environment:
//! - `KLUIS_BENCH_RECORDS` (default 1,000,000): users to re-encrypt (2 sealed values each).
//! - `KLUIS_BENCH_BATCH` (default 2000, the CLI's `--batch` default): rows per transaction.
//! - `KLUIS_BENCH_DIR`: where the SQLite file goes (default: a temporary directory under
//!   `$TMPDIR`). Every batch commits with fsync, so the file system matters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use kluis_core::audit::AuditSigning;
use kluis_core::bench_support as bs;
use kluis_core::keys::KeyEncryptionKeys;
use kluis_core::tenants::{NewTenantInput, PlatformActor};
use kluis_core::{Actor, CoreConfig, Kluis, RequestContext, Store, TenantId, UserId};
use kluis_crypto::checkpoint::CheckpointSigner;
use kluis_crypto::envelope::{Kek, LocalKms};

const TARGET: Duration = Duration::from_secs(60);
/// Users opened and compared after the job.
const SAMPLE: usize = 1000;
/// Users per transaction while building the table.
const SETUP_PER_TX: u64 = 20_000;

fn main() -> Result<()> {
    // Like the server: a multi-threaded runtime (this machine has 2 cores).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn open(dir: &Path) -> Result<Kluis> {
    let store = Store::open_sqlite(&dir.join("reencrypt.db")).await?;
    let cp_dir = dir.join("checkpoints");
    std::fs::create_dir_all(&cp_dir)?;
    let kluis = Kluis::new(
        store,
        CoreConfig::default(),
        KeyEncryptionKeys::new(Arc::new(LocalKms::new(Kek::generate()?))),
    )
    .with_audit_signing(AuditSigning {
        signer: CheckpointSigner::generate("bench")?,
        dir: cp_dir,
    });
    kluis.ensure_platform_keys().await?;
    Ok(kluis)
}

fn percentile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    let n = v.len();
    if n == 0 {
        return Duration::ZERO;
    }
    v[((n as f64 * q) as usize).min(n - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:>8.2} ms", d.as_secs_f64() * 1e3)
}

/// Latencies of one kind of request made while the job ran.
#[derive(Default)]
struct Probe {
    ok: Vec<Duration>,
    errors: u64,
}

impl Probe {
    fn print(mut self, what: &str) {
        let n = self.ok.len();
        let p50 = percentile(&mut self.ok, 0.50);
        let p99 = percentile(&mut self.ok, 0.99);
        let max = self.ok.last().copied().unwrap_or_default();
        println!(
            "   {what:<40} {n:>6} ok {:>4} failed   p50 {} p99 {} max {}",
            self.errors,
            ms(p50),
            ms(p99),
            ms(max)
        );
    }
}

async fn run() -> Result<()> {
    let records = kluis_core::bench_support::env_u64("KLUIS_BENCH_RECORDS", 1_000_000);
    let batch = i64::try_from(kluis_core::bench_support::env_u64(
        "KLUIS_BENCH_BATCH",
        2000,
    ))?;
    let tmp = match std::env::var_os("KLUIS_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    println!(
        "DEK re-encryption benchmark: {records} users (2 sealed values each), batch {batch}, SQLite in {}",
        tmp.path().display()
    );
    let kluis = Arc::new(open(tmp.path()).await?);
    let tenant: TenantId = kluis
        .create_tenant(
            &PlatformActor::console(),
            &RequestContext::default(),
            NewTenantInput {
                slug: "reencrypt".into(),
                name: "Bench re-encryption".into(),
            },
        )
        .await?
        .id;

    // 1. Setup: sealed users under the current data key.
    let t = Instant::now();
    let ids = bs::insert_sealed_users(&kluis, tenant, 0, records, SETUP_PER_TX).await?;
    let setup = t.elapsed();
    let (rows, before) = bs::user_sealed_versions(&kluis, tenant).await?;
    println!(
        "1. setup: {rows} users inserted in {:.1} s ({:.0} users/s); sealed values per key version: {before:?}",
        setup.as_secs_f64(),
        records as f64 / setup.as_secs_f64()
    );
    let old_versions: Vec<u32> = before.keys().copied().collect();

    // 2. Rotation: a new data key version becomes current.
    let version = kluis.rotate_data_key(tenant).await?;
    println!("2. rotate_data_key: version {version} is current");

    // 3. The job, timed, with a reader and a writer on the same tenant.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_probe(
        kluis.clone(),
        tenant,
        sample_ids(&ids),
        stop.clone(),
    ));
    let writer = tokio::spawn(write_probe(kluis.clone(), tenant, stop.clone()));
    let step = (records / 10).max(1);
    let mut next_report = step;
    let start = Instant::now();
    let progress = kluis
        .reencrypt_tenant(tenant, batch, |p| {
            if p.rows_seen >= next_report {
                println!(
                    "   {:>8} rows checked, {:>8} values re-encrypted, {:>6.1} s",
                    p.rows_seen,
                    p.values_resealed,
                    start.elapsed().as_secs_f64()
                );
                next_report += step;
            }
        })
        .await?;
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (reads, writes) = (reader.await?, writer.await?);
    let rate = progress.rows_seen as f64 / took.as_secs_f64();
    println!(
        "3. reencrypt_tenant (batch {batch}): {} rows, {} values re-encrypted in {:.2} s",
        progress.rows_seen,
        progress.values_resealed,
        took.as_secs_f64()
    );
    println!(
        "   {:.0} records/s, {:.0} values/s; 1,000,000 records at this rate: {:.1} s",
        rate,
        progress.values_resealed as f64 / took.as_secs_f64(),
        1e6 / rate
    );
    let verdict = if took.as_secs_f64() * 1e6 / records as f64 <= TARGET.as_secs_f64() {
        "meets"
    } else {
        "MISSES"
    };
    println!(
        "   target: 1,000,000 records in <= {} s: {verdict}",
        TARGET.as_secs()
    );
    println!("   while the job ran (same tenant):");
    reads.print("get_user (read, opens 2 values)");
    writes.print("small write (own write transaction)");

    // 4. Verification.
    let (rows, after) = bs::user_sealed_versions(&kluis, tenant).await?;
    let current = u32::try_from(version)?;
    println!("4. after: {rows} users; sealed values per key version: {after:?}");
    if rows != records {
        bail!("expected {records} users, found {rows}");
    }
    if after.get(&current).copied() != Some(2 * records) || after.len() != 1 {
        bail!("not every value is under version {current}: {after:?}");
    }
    if progress.values_resealed != 2 * records || progress.rows_seen != records {
        bail!("job reported {progress:?}");
    }
    let actor = Actor::console(tenant);
    let mut checked = 0;
    for (i, id) in sampled(&ids) {
        let u = kluis.get_user(&actor, id).await?;
        if u.email != bs::bench_user_email(i) || u.display_name != bs::bench_user_name(i) {
            bail!(
                "user {i} reads back wrong: {} / {}",
                u.email,
                u.display_name
            );
        }
        checked += 1;
    }
    println!(
        "   {checked} sampled users open under version {current} with the values written (old versions {old_versions:?} no longer used)"
    );

    // 5. A repeated (or resumed) run finds nothing to do.
    let t = Instant::now();
    let again = kluis.reencrypt_tenant(tenant, batch, |_| {}).await?;
    println!(
        "5. second run: {} rows checked, {} values re-encrypted in {:.2} s",
        again.rows_seen,
        again.values_resealed,
        t.elapsed().as_secs_f64()
    );
    if again.values_resealed != 0 {
        bail!("second run re-encrypted {} values", again.values_resealed);
    }
    Ok(())
}

/// Evenly spaced (index, id) pairs, at most [`SAMPLE`], including the first and last user.
fn sampled(ids: &[UserId]) -> Vec<(u64, UserId)> {
    if ids.is_empty() {
        return Vec::new();
    }
    let stride = (ids.len() / SAMPLE).max(1);
    let mut out: Vec<(u64, UserId)> = ids
        .iter()
        .enumerate()
        .step_by(stride)
        .map(|(i, id)| (i as u64, *id))
        .collect();
    let last = ids.len() - 1;
    if out.last().map(|(i, _)| *i) != Some(last as u64) {
        out.push((last as u64, ids[last]));
    }
    out
}

fn sample_ids(ids: &[UserId]) -> Vec<UserId> {
    sampled(ids).into_iter().map(|(_, id)| id).collect()
}

/// Reads users (spread over the table, so some are already re-encrypted and some not) every
/// 2 ms until stopped.
async fn read_probe(
    kluis: Arc<Kluis>,
    tenant: TenantId,
    ids: Vec<UserId>,
    stop: Arc<AtomicBool>,
) -> Probe {
    let actor = Actor::console(tenant);
    let mut probe = Probe::default();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) && !ids.is_empty() {
        let id = ids[i % ids.len()];
        i += 7;
        let t = Instant::now();
        match kluis.get_user(&actor, id).await {
            Ok(_) => probe.ok.push(t.elapsed()),
            Err(_) => probe.errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    probe
}

/// A small write transaction (password-policy upsert, fsync at commit) every 20 ms until
/// stopped: it queues behind each re-encryption batch for the write lock.
async fn write_probe(kluis: Arc<Kluis>, tenant: TenantId, stop: Arc<AtomicBool>) -> Probe {
    let mut probe = Probe::default();
    let Ok(json) = bs::baseline_policy_json() else {
        probe.errors += 1;
        return probe;
    };
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        match bs::write_without_audit(&kluis, tenant, &json).await {
            Ok(()) => probe.ok.push(t.elapsed()),
            Err(_) => probe.errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    probe
}
