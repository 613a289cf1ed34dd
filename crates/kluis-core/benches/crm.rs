//! CRM read-path benchmark: list pages and lookup-by-email with a large tenant, and export rate
//! and memory. Prints, does not assert.
//!
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench -p kluis-core --bench crm`
//!
//! Environment: `KLUIS_BENCH_CONTACTS` (default 200,000; the figure is 1,000,000),
//! `KLUIS_BENCH_DIR` (where the SQLite file goes). Targets (issue 5): list page p99 < 20 ms and
//! lookup-by-email p99 < 2 ms at 1,000,000 contacts; export >= 100,000 rows/s with peak memory
//! under 100 MB whatever the row count. Every list and lookup call is the real
//! `Kluis::list_records`, which also writes its audit event (a count) in its own transaction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use kluis_core::bench_support as bs;
use kluis_core::crm::{ObjectType, RecordQuery};
use kluis_core::keys::KeyEncryptionKeys;
use kluis_core::tenants::{NewTenantInput, PlatformActor};
use kluis_core::users::NewUserInput;
use kluis_core::{Actor, CoreConfig, Kluis, RequestContext, Role, Store};
use kluis_crypto::envelope::{Kek, LocalKms};

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

fn pcts(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let n = v.len().max(1);
    let pick = |q: f64| v[((n as f64 * q) as usize).min(n - 1)];
    (pick(0.50), pick(0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Resident set size of this process (kB), from /proc.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn run() -> Result<()> {
    let n = kluis_core::bench_support::env_u64("KLUIS_BENCH_CONTACTS", 200_000);
    let tmp = match std::env::var_os("KLUIS_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    println!(
        "CRM benchmark: {n} contacts (SQLite in {})",
        tmp.path().display()
    );
    let store = Store::open_sqlite(&tmp.path().join("crm.db")).await?;
    let kluis = Kluis::new(
        store,
        CoreConfig::default(),
        KeyEncryptionKeys::new(Arc::new(LocalKms::new(Kek::generate()?))),
    );
    kluis.ensure_platform_keys().await?;
    let ctx = RequestContext::default();
    let t = kluis
        .create_tenant(
            &PlatformActor::console(),
            &ctx,
            NewTenantInput {
                slug: "crm-bench".into(),
                name: "CRM bench".into(),
            },
        )
        .await?
        .id;
    let console = Actor::console(t);
    let mut owners = Vec::new();
    for i in 0..5 {
        let u = kluis
            .create_user(
                &console,
                &ctx,
                NewUserInput {
                    email: format!("owner{i}@crm-bench.test"),
                    display_name: format!("Owner {i}"),
                    role: Role::Member,
                    password: None,
                },
            )
            .await?;
        owners.push(u.id);
    }
    let start = Instant::now();
    bs::insert_contacts(&kluis, t, &owners, n, 20_000).await?;
    let setup = start.elapsed();
    println!(
        "1. setup: {n} contacts sealed and indexed in {:.1} s ({:.0}/s; no audit events, setup only)",
        setup.as_secs_f64(),
        n as f64 / setup.as_secs_f64()
    );

    // List pages: 50 per page, by owner, newest or oldest first, first and deeper pages.
    let mut lat = Vec::new();
    for i in 0..300u64 {
        let q = RecordQuery {
            owner_id: (i % 2 == 0).then(|| owners[(i % 5) as usize]),
            newest_first: i % 3 == 0,
            ..Default::default()
        };
        let t0 = Instant::now();
        let page = kluis
            .list_records(
                &console,
                &ctx,
                ObjectType::Contact,
                q.clone(),
                None,
                Some(50),
            )
            .await?;
        let cursor = page.next_cursor.clone();
        lat.push(t0.elapsed());
        assert_eq!(page.items.len(), 50);
        let t0 = Instant::now();
        kluis
            .list_records(
                &console,
                &ctx,
                ObjectType::Contact,
                q,
                cursor.as_deref(),
                Some(50),
            )
            .await?;
        lat.push(t0.elapsed());
    }
    let (p50, p99) = pcts(lat);
    println!(
        "2. list page (50 contacts, owner filter, first and next pages, incl. its audit event): p50 {} p99 {}  target p99 < 20 ms: {}",
        ms(p50),
        ms(p99),
        if p99 < Duration::from_millis(20) {
            "meets"
        } else {
            "MISSES"
        }
    );

    // Lookup by email on the sealed field (blind index).
    let mut lat = Vec::new();
    for k in 0..1000u64 {
        let i = (k * 7919) % n;
        let q = RecordQuery {
            email: Some(bs::bench_contact_email(i).to_uppercase()),
            ..Default::default()
        };
        let t0 = Instant::now();
        let page = kluis
            .list_records(&console, &ctx, ObjectType::Contact, q, None, Some(10))
            .await?;
        lat.push(t0.elapsed());
        assert_eq!(page.items.len(), 1);
    }
    let (p50, p99) = pcts(lat);
    println!(
        "3. lookup by email (sealed, blind index, incl. its audit event): p50 {} p99 {}  target p99 < 2 ms: {}",
        ms(p50),
        ms(p99),
        if p99 < Duration::from_millis(2) {
            "meets"
        } else {
            "MISSES"
        }
    );

    // Export everything, sampling resident memory meanwhile.
    let base = rss_kb();
    let peak = Arc::new(AtomicU64::new(base));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kb(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let t0 = Instant::now();
    let mut export = kluis
        .export_records(
            &console,
            &ctx,
            ObjectType::Contact,
            RecordQuery::default(),
            "jsonl",
        )
        .await?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    while let Some(items) = kluis.export_records_next(&mut export).await? {
        for r in &items {
            bytes += serde_json::to_vec(r)?.len() as u64 + 1;
        }
        rows += items.len() as u64;
    }
    let took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.join().ok();
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "4. export (JSON Lines, pages of 500): {rows} rows, {:.1} MB in {:.1} s = {:.0} rows/s  target >= 100,000 rows/s: {}",
        bytes as f64 / 1e6,
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64(),
        if rows as f64 / took.as_secs_f64() >= 100_000.0 {
            "meets"
        } else {
            "MISSES"
        }
    );
    println!(
        "   resident memory: {:.1} MB before, peak {:.1} MB during the export (+{:.1} MB)  target peak < 100 MB: {}",
        base as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak.saturating_sub(base)) as f64 / 1024.0,
        if peak < 100 * 1024 { "meets" } else { "MISSES" }
    );
    Ok(())
}
