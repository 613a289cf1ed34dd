//! Audit trail benchmark: what the audit event adds to a write, append throughput, and
//! verification speed of a large log, next to `openssl speed sha256`.
//!
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench -p kluis-core --bench audit`
//!
//! Prints, does not assert. Targets: the audit event adds at most what the same row adds in raw
//! SQLite (the anchor printed next to it, issue 24; the 10 % of the audit trail issue is printed
//! too); verification runs at 1,000,000 events/s or more.
//!
//! Environment:
//! - `KLUIS_BENCH_EVENTS` (default 1,000,000): size of the log that is verified.
//! - `KLUIS_BENCH_CHECKPOINT_EVERY` (default 1000, the server's `audit_checkpoint_every_events`
//!   default): a signed checkpoint every this many events, as the server would have written.
//! - `KLUIS_BENCH_WRITES` (default 2000): writes per variant in the latency comparison.
//! - `KLUIS_BENCH_DIR`: where the SQLite files go (default: a temporary directory under
//!   `$TMPDIR`). Latency is dominated by fsync, so the file system matters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use kluis_core::audit::AuditSigning;
use kluis_core::bench_support as bs;
use kluis_core::keys::KeyEncryptionKeys;
use kluis_core::settings::PasswordPolicyDoc;
use kluis_core::tenants::{NewTenantInput, PlatformActor};
use kluis_core::users::NewUserInput;
use kluis_core::{Actor, CoreConfig, Kluis, RequestContext, Role, Store, TenantId};
use kluis_crypto::checkpoint::CheckpointSigner;
use kluis_crypto::envelope::{Kek, LocalKms};
use kluis_crypto::merkle;

const WRITE_TARGET: f64 = 0.10;
const VERIFY_TARGET: f64 = 1_000_000.0;

fn main() -> Result<()> {
    // Like the server: a multi-threaded runtime (this machine has 2 cores).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn open(dir: &Path, name: &str) -> Result<Kluis> {
    let store = Store::open_sqlite(&dir.join(format!("{name}.db"))).await?;
    let cp_dir = dir.join(format!("{name}-checkpoints"));
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

async fn tenant(kluis: &Kluis, slug: &str) -> Result<TenantId> {
    Ok(kluis
        .create_tenant(
            &PlatformActor::console(),
            &RequestContext::default(),
            NewTenantInput {
                slug: slug.into(),
                name: format!("Bench {slug}"),
            },
        )
        .await?
        .id)
}

struct Stats {
    mean: Duration,
    p50: Duration,
    p99: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let n = v.len().max(1);
    let pick = |q: f64| v.get(((n as f64 * q) as usize).min(n - 1)).copied();
    Stats {
        mean: v.iter().sum::<Duration>() / n as u32,
        p50: pick(0.50).unwrap_or_default(),
        p99: pick(0.99).unwrap_or_default(),
    }
}

fn us(d: Duration) -> String {
    format!("{:>9.1} µs", d.as_secs_f64() * 1e6)
}

fn pct(with: Duration, without: Duration) -> f64 {
    (with.as_secs_f64() / without.as_secs_f64() - 1.0) * 100.0
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k", r / 1e3)
    } else {
        format!("{r:.0} ")
    }
}

async fn run() -> Result<()> {
    let tmp = match std::env::var_os("KLUIS_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    println!(
        "audit trail benchmark (SQLite files in {})",
        tmp.path().display()
    );
    println!();
    write_latency(tmp.path()).await?;
    append_throughput(tmp.path()).await?;
    verification(tmp.path()).await?;
    openssl_sha256();
    Ok(())
}

/// 1. The same small write (password-policy upsert, one transaction, fsync at commit) without
///    and with its audit event, interleaved in blocks so drift hits both equally.
async fn write_latency(dir: &Path) -> Result<()> {
    let kluis = open(dir, "latency").await?;
    let t = tenant(&kluis, "latency").await?;
    let actor = Actor::console(t);
    let ctx = bs::bench_context();
    let json = bs::baseline_policy_json()?;
    let doc = kluis.password_policy(&actor).await?;
    let writes = kluis_core::bench_support::env_u64("KLUIS_BENCH_WRITES", 2000) as usize;
    // Warm-up: keys cached, pages in cache, WAL grown.
    for _ in 0..100 {
        bs::write_without_audit(&kluis, t, &json).await?;
        bs::write_with_audit(&kluis, &actor, &ctx, &json).await?;
    }
    let (mut without, mut with, mut full) = (Vec::new(), Vec::new(), Vec::new());
    const BLOCK: usize = 50;
    while without.len() < writes {
        for _ in 0..BLOCK {
            let s = Instant::now();
            bs::write_without_audit(&kluis, t, &json).await?;
            without.push(s.elapsed());
        }
        for _ in 0..BLOCK {
            let s = Instant::now();
            bs::write_with_audit(&kluis, &actor, &ctx, &json).await?;
            with.push(s.elapsed());
        }
        for _ in 0..BLOCK {
            let s = Instant::now();
            kluis
                .set_password_policy(&actor, &ctx, PasswordPolicyDoc::clone(&doc))
                .await?;
            full.push(s.elapsed());
        }
    }
    let (a, b, c) = (stats(without), stats(with), stats(full));
    let anchor = raw_anchor(dir, t, &json, writes).await?;
    println!(
        "1. write latency (password-policy upsert, own transaction, synchronous=FULL), {writes} writes each"
    );
    println!("   {:<44} {:>12} {:>12} {:>12}", "", "mean", "p50", "p99");
    println!(
        "   {:<44} {} {} {}",
        "write without audit event",
        us(a.mean),
        us(a.p50),
        us(a.p99)
    );
    println!(
        "   {:<44} {} {} {}",
        "same write + audit event (same tx)",
        us(b.mean),
        us(b.p50),
        us(b.p99)
    );
    println!(
        "   {:<44} {} {} {}",
        "set_password_policy (whole use case)",
        us(c.mean),
        us(c.p50),
        us(c.p99)
    );
    let (om, op) = (pct(b.mean, a.mean), pct(b.p50, a.p50));
    let verdict = |o: f64| {
        if o <= WRITE_TARGET * 100.0 {
            "meets"
        } else {
            "MISSES"
        }
    };
    println!(
        "   audit overhead: mean {om:+.1} % ({}), p50 {op:+.1} % ({}); target <= {:.0} %; absolute p50 {:+.1} µs",
        verdict(om),
        verdict(op),
        WRITE_TARGET * 100.0,
        (b.p50.as_secs_f64() - a.p50.as_secs_f64()) * 1e6
    );

    let (rm, rp) = (
        pct(anchor.with.mean, anchor.without.mean),
        pct(anchor.with.p50, anchor.without.p50),
    );
    println!(
        "   raw SQLite anchor (rusqlite, same SQLite, same migrations, same row: {} bytes)",
        anchor.row_bytes
    );
    println!(
        "   {:<44} {} {} {}",
        "  raw write without audit row",
        us(anchor.without.mean),
        us(anchor.without.p50),
        us(anchor.without.p99)
    );
    println!(
        "   {:<44} {} {} {}",
        "  raw write + audit row (same tx)",
        us(anchor.with.mean),
        us(anchor.with.p50),
        us(anchor.with.p99)
    );
    println!(
        "   raw audit overhead: mean {rm:+.1} %, p50 {rp:+.1} %; Kluis over raw: mean {:+.1} points ({}), p50 {:+.1} points ({}); target: Kluis overhead <= raw overhead",
        om - rm,
        if om <= rm { "meets" } else { "MISSES" },
        op - rp,
        if op <= rp { "meets" } else { "MISSES" },
    );

    // Where the audit's share goes: the same writes, each step timed (mean per write).
    let rounds = (writes / 2).max(1);
    let (mut pa, mut pb) = (bs::WriteProfile::default(), bs::WriteProfile::default());
    for _ in 0..rounds {
        pa += bs::profile_write(&kluis, &actor, &ctx, &json, false).await?;
        pb += bs::profile_write(&kluis, &actor, &ctx, &json, true).await?;
    }
    let m = |d: Duration| us(d / rounds as u32);
    println!("   step by step (mean of {rounds} each)              without          with");
    for (what, x, y) in [
        ("BEGIN IMMEDIATE", pa.begin, pb.begin),
        ("policy upsert (the write)", pa.write, pb.write),
        ("keys (cached) + details", pa.prepare, pb.prepare),
        (
            "audit_next_seq (head: cache under write lock)",
            pa.next_seq,
            pb.next_seq,
        ),
        ("leaf JSON+SHA-256, seal, blind index", pa.crypto, pb.crypto),
        (
            "insert_audit_event (+head trigger, +seal count)",
            pa.insert,
            pb.insert,
        ),
        (
            "add_sealed_count (in memory, before insert)",
            pa.sealed_count,
            pb.sealed_count,
        ),
        ("COMMIT (WAL + fsync)", pa.commit, pb.commit),
    ] {
        println!("     {what:<42} {} {}", m(x), m(y));
    }
    println!();
    Ok(())
}

struct Anchor {
    without: Stats,
    with: Stats,
    row_bytes: usize,
}

/// The physical price of an audit row: the same write and the same audit row as Kluis's (the
/// last event `latency` stored, its columns at their sizes) through rusqlite, with the same
/// bundled SQLite, the same migrations (head trigger included) and the same pragmas, in
/// interleaved blocks; no sealing, no hashing, no thread hop.
async fn raw_anchor(
    dir: &Path,
    kluis_tenant: TenantId,
    json: &str,
    writes: usize,
) -> Result<Anchor> {
    use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
    type Sample = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<Vec<u8>>,
        Vec<u8>,
        Vec<u8>,
    );
    let sample: Sample = Connection::open_with_flags(
        dir.join("latency.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?
    .query_row(
        "SELECT actor, action, outcome, object_type, object_id, ip_bidx, details, leaf_hash \
         FROM audit_events WHERE tenant_id = ?1 ORDER BY seq DESC LIMIT 1",
        [kluis_tenant.0.as_bytes().as_slice()],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        },
    )?;
    let (actor, action, outcome, otype, oid, ip, details, leaf) = sample;
    let row_bytes = 16
        + 8
        + 8
        + actor.len()
        + action.len()
        + outcome.len()
        + otype.as_ref().map_or(0, String::len)
        + oid.as_ref().map_or(0, String::len)
        + ip.as_ref().map_or(0, Vec::len)
        + details.len()
        + leaf.len();
    let path = dir.join("anchor.db");
    // Kluis's migrations, applied by the store itself.
    drop(Store::open_sqlite(&path).await?);
    let db = Connection::open(&path)?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY; PRAGMA busy_timeout = 10000;",
    )?;
    let tenant = uuid::Uuid::now_v7();
    let t = tenant.as_bytes().as_slice();
    db.execute(
        "INSERT INTO tenants (id, slug, name, status, created_at, updated_at) VALUES (?1, 'anchor', 'Anchor', 'active', 1, 1)",
        [t],
    )?;
    let mut seq: i64 = db
        .query_row(
            "SELECT size FROM audit_heads WHERE tenant_id = ?1",
            [t],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let upsert = "INSERT INTO tenant_settings (tenant_id, password_policy, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (tenant_id) DO UPDATE SET password_policy = excluded.password_policy, updated_at = excluded.updated_at";
    let insert = "INSERT INTO audit_events (tenant_id, seq, at, actor, action, outcome, object_type, object_id, ip_bidx, details, leaf_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    let mut one = |audit: bool, now: i64| -> Result<Duration> {
        let s = Instant::now();
        db.execute_batch("BEGIN IMMEDIATE")?;
        db.prepare_cached(upsert)?.execute(params![t, json, now])?;
        if audit {
            db.prepare_cached(insert)?.execute(params![
                t, seq, now, actor, action, outcome, otype, oid, ip, details, leaf
            ])?;
            seq += 1;
        }
        db.execute_batch("COMMIT")?;
        Ok(s.elapsed())
    };
    for i in 0..100 {
        one(false, i)?;
        one(true, i)?;
    }
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let mut now = 1000;
    while without.len() < writes {
        for _ in 0..50 {
            now += 1;
            without.push(one(false, now)?);
        }
        for _ in 0..50 {
            now += 1;
            with.push(one(true, now)?);
        }
    }
    Ok(Anchor {
        without: stats(without),
        with: stats(with),
        row_bytes,
    })
}

/// 2. Events/s through the normal write path (one write + one event per transaction) and bulk.
async fn append_throughput(dir: &Path) -> Result<()> {
    let kluis = open(dir, "append").await?;
    let t = tenant(&kluis, "append").await?;
    let actor = Actor::console(t);
    let ctx = bs::bench_context();
    let doc = kluis.password_policy(&actor).await?;
    println!("2. append throughput (one client, sequential)");

    const N: u64 = 1000;
    let s = Instant::now();
    for _ in 0..N {
        kluis
            .set_password_policy(&actor, &ctx, PasswordPolicyDoc::clone(&doc))
            .await?;
    }
    let d = s.elapsed();
    println!(
        "   {:<52} {:>10} events/s",
        "set_password_policy, 1 event per tx",
        fmt_rate(rate(N, d))
    );

    let s = Instant::now();
    for i in 0..N {
        kluis
            .create_user(
                &actor,
                &ctx,
                NewUserInput {
                    email: format!("bench{i}@example.org"),
                    display_name: format!("Bench User {i}"),
                    role: Role::Member,
                    password: None,
                },
            )
            .await?;
    }
    let d = s.elapsed();
    println!(
        "   {:<52} {:>10} events/s",
        "create_user (no password), 1 event per tx",
        fmt_rate(rate(N, d))
    );

    let bulk = 100_000;
    let s = Instant::now();
    bs::append_events(&kluis, t, bulk, 1000).await?;
    let d = s.elapsed();
    println!(
        "   {:<52} {:>10} events/s",
        "synthetic events via Kluis::audit, 1000 per tx",
        fmt_rate(rate(bulk, d))
    );
    println!();
    Ok(())
}

/// 3. Verification of a large log, and where the time goes.
async fn verification(dir: &Path) -> Result<()> {
    let n = kluis_core::bench_support::env_u64("KLUIS_BENCH_EVENTS", 1_000_000);
    let every = kluis_core::bench_support::env_u64("KLUIS_BENCH_CHECKPOINT_EVERY", 1000);
    let kluis = open(dir, "verify").await?;
    let t = tenant(&kluis, "verify").await?;
    println!("3. verification of a {n}-event log (checkpoint every {every} events)");
    let step = 100_000.min(n.max(1));
    let s = Instant::now();
    let mut done = 0;
    while done < n {
        let m = step.min(n - done);
        // 1000 per tx: larger transactions outgrow SQLite's page cache and get slower.
        bs::append_events(&kluis, t, m, 1000).await?;
        done += m;
        println!(
            "   building: {done:>9} events, {:>6.1} s, {} events/s",
            s.elapsed().as_secs_f64(),
            fmt_rate(rate(done, s.elapsed()))
        );
    }
    let s = Instant::now();
    let cps = bs::sign_checkpoints_every(&kluis, t, every).await?;
    println!(
        "   signed {cps} checkpoints in {:.1} s",
        s.elapsed().as_secs_f64()
    );

    let s = Instant::now();
    let report = kluis.verify_log(t).await?;
    let d = s.elapsed();
    let r = rate(report.events as u64, d);
    println!(
        "   verify_log: {} events, {} checkpoints, {:.2} s => {} events/s ({}; target >= {} events/s){}",
        report.events,
        report.checkpoints_checked,
        d.as_secs_f64(),
        fmt_rate(r),
        if r >= VERIFY_TARGET {
            "meets"
        } else {
            "MISSES"
        },
        fmt_rate(VERIFY_TARGET),
        match &report.first_broken {
            None => String::new(),
            Some((seq, why)) => format!(" BROKEN at {seq}: {why}"),
        }
    );

    let b = bs::verify_breakdown(&kluis, t).await?;
    let ev = b.events.max(1) as f64;
    let line = |what: &str, d: Duration| {
        println!(
            "     {what:<58} {:>8.3} s {:>9.2} µs/event {:>10} events/s",
            d.as_secs_f64(),
            d.as_secs_f64() * 1e6 / ev,
            fmt_rate(ev / d.as_secs_f64().max(1e-12))
        );
    };
    println!(
        "   breakdown (each stage alone over the same {} events):",
        b.events
    );
    line(
        &format!("fetch rows via sqlx ({} queries of 5000)", b.batches),
        b.fetch,
    );
    println!(
        "       first batch {:.1} ms, last full batch {:.1} ms",
        b.first_batch.as_secs_f64() * 1e3,
        b.last_full_batch.as_secs_f64() * 1e3
    );
    line(
        "scan rows, direct SQLite connection, in place (verify_log)",
        b.scan_direct,
    );
    line(
        "same scan + leaf prefix encoding (verify_log stage 1)",
        b.scan_prefix,
    );
    line("decrypt details (AES-256-GCM open)", b.decrypt);
    line("parse details JSON (serde_json::Value)", b.parse);
    line(
        &format!(
            "encode canonical leaf JSON (avg {} B)",
            b.leaf_bytes / b.events.max(1)
        ),
        b.encode,
    );
    line(
        &format!(
            "alt: encode, details spliced from plaintext ({} bad)",
            b.spliced_mismatches
        ),
        b.encode_spliced,
    );
    line("SHA-256 leaf hashes", b.leaf_hash);
    line("merkle::root over all leaf hashes, once", b.root_once);
    line(
        &format!("checkpoint signatures ({})", b.checkpoints),
        b.signatures,
    );
    line(
        &format!(
            "merkle::root x{} checkpoints, one per checkpoint (est. from {})",
            b.checkpoints, b.checkpoint_roots_sampled
        ),
        b.checkpoint_roots,
    );
    line(
        "same roots, one incremental pass (verify_log)",
        b.checkpoint_roots_incremental,
    );
    let hashing = b.leaf_hash + b.root_once;
    line("=> pure hashing (leaf hashes + one root)", hashing);
    line(
        "=> decrypt + JSON (decrypt, parse, encode)",
        b.decrypt + b.parse + b.encode,
    );
    if b.mismatches > 0 {
        println!(
            "     WARNING: {} recomputed hashes/roots differ from the stored ones",
            b.mismatches
        );
    }

    // In-process SHA-256 at the sizes that matter, for comparison with openssl below.
    let leaf = vec![0x5a_u8; b.leaf_bytes / b.events.max(1)];
    let node = [0x11_u8; 64];
    for (what, data) in [("64 B (node input)", &node[..]), ("avg leaf", &leaf[..])] {
        let iters = 1_000_000u32;
        let s = Instant::now();
        for _ in 0..iters {
            std::hint::black_box(merkle::leaf_hash(std::hint::black_box(data)));
        }
        let d = s.elapsed();
        println!(
            "   kluis SHA-256 (sha2 crate) {what:<18} {:>10} hashes/s, {:>7.0} MB/s",
            fmt_rate(rate(u64::from(iters), d)),
            f64::from(iters) * data.len() as f64 / d.as_secs_f64() / 1e6
        );
    }
    println!();
    Ok(())
}

/// 4. `openssl speed -seconds 2 sha256`: the last line has kB/s (1000 bytes) per block size.
fn openssl_sha256() {
    println!("4. openssl speed -seconds 2 sha256");
    let out = match Command::new("openssl")
        .args(["speed", "-seconds", "2", "sha256"])
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => {
            println!("   openssl not found");
            return;
        }
    };
    let header = out.lines().find(|l| l.starts_with("type"));
    let row = out.lines().rfind(|l| l.starts_with("sha256"));
    let (Some(header), Some(row)) = (header, row) else {
        println!("   could not parse openssl output");
        return;
    };
    let sizes: Vec<usize> = header
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let speeds: Vec<f64> = row
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.trim_end_matches('k').parse::<f64>().ok())
        .collect();
    for (size, kbs) in sizes.iter().zip(&speeds) {
        let bps = kbs * 1000.0;
        println!(
            "   {size:>6} B blocks: {:>8.0} MB/s, {:>10} hashes/s",
            bps / 1e6,
            fmt_rate(bps / *size as f64)
        );
    }
}
