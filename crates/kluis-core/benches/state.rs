//! State verification next to audit verification (issue 26), and what the short checkpoint
//! timer costs writers. Prints, does not assert.
//!
//! `cargo bench -p kluis-core --bench state`
//!
//! 1. N contacts imported through `Kluis::import_records` (one audit event with a state digest
//!    each), then in the same run `verify_log` (events/s) and `verify_state` (records/s) over
//!    that tenant. Target: state verification at least 50 % of the audit verification rate.
//! 2. Sequential `create_record` for a fixed time without a checkpoint loop, then with one
//!    that signs every `idle` (as `kluis serve` does with `audit_checkpoint_idle_secs`), in
//!    alternating rounds. Target: under 2 % fewer writes/s.
//!
//! Environment: `KLUIS_BENCH_ROWS` (default 200,000; the figure is 1,000,000),
//! `KLUIS_BENCH_WRITE_SECS` (default 10 per round, 3 rounds each), `KLUIS_BENCH_IDLE_MS`
//! (default 2000), `KLUIS_BENCH_DIR` (where the SQLite files go).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use kluis_core::audit::AuditSigning;
use kluis_core::crm::import::{ImportMode, ImportOptions, OnDuplicate};
use kluis_core::crm::{ObjectType, RecordInput};
use kluis_core::keys::KeyEncryptionKeys;
use kluis_core::tenants::{NewTenantInput, PlatformActor};
use kluis_core::{Actor, CoreConfig, Kluis, RequestContext, Store, TenantId};
use kluis_crypto::checkpoint::CheckpointSigner;
use kluis_crypto::envelope::{Kek, LocalKms};
use serde_json::{Map, json};

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn open(dir: &std::path::Path, name: &str) -> Result<(Kluis, TenantId)> {
    let store = Store::open_sqlite(&dir.join(format!("{name}.db"))).await?;
    let cp_dir = dir.join(format!("{name}-checkpoints"));
    std::fs::create_dir_all(&cp_dir)?;
    let kluis = Kluis::new(
        store,
        CoreConfig::default(),
        KeyEncryptionKeys::new(Arc::new(LocalKms::new(Kek::generate()?))),
    )
    .with_audit_signing(AuditSigning {
        signer: CheckpointSigner::generate("kluis-audit")?,
        dir: cp_dir,
    });
    kluis.ensure_platform_keys().await?;
    let t = kluis
        .create_tenant(
            &PlatformActor::console(),
            &RequestContext::default(),
            NewTenantInput {
                slug: name.into(),
                name: name.into(),
            },
        )
        .await?
        .id;
    Ok((kluis, t))
}

fn contact(i: u64) -> RecordInput {
    let mut fields = Map::new();
    fields.insert("first_name".into(), json!(format!("Jan{i}")));
    fields.insert("last_name".into(), json!(format!("Janssen{i}")));
    fields.insert("email".into(), json!(format!("jan{i}@timer-bench.test")));
    fields.insert("city".into(), json!("Utrecht"));
    RecordInput {
        fields,
        ..Default::default()
    }
}

async fn run() -> Result<()> {
    let n = kluis_core::bench_support::env_u64("KLUIS_BENCH_ROWS", 200_000);
    let tmp = match std::env::var_os("KLUIS_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };

    // 1. Verification rates over one imported tenant.
    let csv_path = tmp.path().join("contacts.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
        writeln!(f, "first_name,last_name,email,phone,city")?;
        for i in 0..n {
            writeln!(
                f,
                "Voornaam{i},Achternaam{},contact{i}@state-bench.test,+31 6 {:08},Utrecht",
                i % 9973,
                i % 100_000_000
            )?;
        }
    }
    let (kluis, t) = open(tmp.path(), "state").await?;
    let ctx = RequestContext::default();
    let t0 = Instant::now();
    let report = kluis
        .import_records(
            &Actor::console(t),
            &ctx,
            ImportOptions {
                object_type: ObjectType::Contact,
                mode: ImportMode::AllOrNothing,
                on_duplicate: OnDuplicate::Skip,
                dry_run: false,
                delimiter: None,
                encoding: Default::default(),
                mapping: None,
            },
            Box::new(std::io::BufReader::new(std::fs::File::open(&csv_path)?)),
        )
        .await?;
    assert_eq!(report.committed, n);
    println!(
        "State verification benchmark: {n} contacts imported in {:.1} s (SQLite in {})",
        t0.elapsed().as_secs_f64(),
        tmp.path().display()
    );
    kluis.sign_pending_checkpoints(Duration::ZERO).await;
    let t0 = Instant::now();
    let log = kluis.verify_log(t).await?;
    let audit = t0.elapsed();
    assert!(log.first_broken.is_none(), "{:?}", log.first_broken);
    let audit_rate = log.events as f64 / audit.as_secs_f64();
    println!(
        "1a. verify_log: {} events in {:.2} s = {audit_rate:.0} events/s",
        log.events,
        audit.as_secs_f64()
    );
    let t0 = Instant::now();
    let state = kluis.verify_state(t, None).await?;
    let took = t0.elapsed();
    assert!(state.problems.is_empty(), "{:?}", state.problems.first());
    let rate = state.records as f64 / took.as_secs_f64();
    let ratio = rate / audit_rate * 100.0;
    println!(
        "1b. verify_state (full): {} records, {} users, {} events replayed in {:.2} s = {rate:.0} records/s = {ratio:.1} % of the audit rate  target >= 50 %: {}",
        state.records,
        state.users,
        state.events,
        took.as_secs_f64(),
        if ratio >= 50.0 { "meets" } else { "MISSES" }
    );
    let t0 = Instant::now();
    let sample = kluis.verify_state(t, Some(100)).await?;
    println!(
        "1c. verify_state (sample of {} records): {:.2} s",
        sample.records,
        t0.elapsed().as_secs_f64()
    );
    drop(kluis);

    // 2. Write throughput with and without the short checkpoint timer.
    let secs = kluis_core::bench_support::env_u64("KLUIS_BENCH_WRITE_SECS", 10);
    let idle = Duration::from_millis(kluis_core::bench_support::env_u64(
        "KLUIS_BENCH_IDLE_MS",
        2000,
    ));
    let (kluis, t) = open(tmp.path(), "timer").await?;
    let actor = Actor::console(t);
    let mut i = 0u64;
    // Warm-up.
    for _ in 0..300 {
        kluis
            .create_record(&actor, &ctx, ObjectType::Contact, contact(i), None)
            .await?;
        i += 1;
    }
    let (mut without, mut with, mut signed) = (Vec::new(), Vec::new(), 0usize);
    for round in 0..6 {
        let timer = round % 2 == 1;
        let stop = Arc::new(AtomicBool::new(false));
        let loop_task = timer.then(|| {
            let (k, stop) = (kluis.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    k.wait_checkpoint_due(idle / 2).await;
                    n += k.sign_pending_checkpoints(idle).await.len();
                }
                n
            })
        });
        let t0 = Instant::now();
        let mut writes = 0u64;
        while t0.elapsed() < Duration::from_secs(secs) {
            kluis
                .create_record(&actor, &ctx, ObjectType::Contact, contact(i), None)
                .await?;
            i += 1;
            writes += 1;
        }
        let rate = writes as f64 / t0.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        if let Some(task) = loop_task {
            signed += task.await?;
            with.push(rate);
        } else {
            // Sign what accumulated so the next round starts alike.
            kluis.sign_pending_checkpoints(Duration::ZERO).await;
            without.push(rate);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let cost = (1.0 - mean(&with) / mean(&without)) * 100.0;
    println!(
        "2. sequential contact creates, {secs} s rounds x3 each: without timer {:.0}/s, with a checkpoint every {} ms while writing {:.0}/s ({signed} checkpoints signed) => cost {cost:.2} %  target < 2 %: {}",
        mean(&without),
        idle.as_millis(),
        mean(&with),
        if cost < 2.0 { "meets" } else { "MISSES" }
    );
    Ok(())
}
