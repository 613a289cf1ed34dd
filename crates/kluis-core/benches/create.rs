//! Contact create: the time of one `Kluis::create_record` (what `POST /api/v1/contacts` runs
//! below HTTP), sequentially, on a tenant that already holds contacts. Prints, does not assert.
//!
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench -p kluis-core --bench create`
//!
//! Environment: `KLUIS_BENCH_CREATES` (default 3,000 measured creates after 300 warm-up ones),
//! `KLUIS_BENCH_DIR` (where the SQLite file goes). Issue 22 asks that this fall when a create
//! computes its blind indexes once and answers from what it prepared instead of reading the
//! row back and decrypting it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use kluis_core::crm::{ObjectType, RecordInput};
use kluis_core::keys::KeyEncryptionKeys;
use kluis_core::tenants::{NewTenantInput, PlatformActor};
use kluis_core::{Actor, CoreConfig, Kluis, RequestContext, Store};
use kluis_crypto::envelope::{Kek, LocalKms};
use serde_json::{Map, json};

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

fn pct(v: &[Duration], q: f64) -> Duration {
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn contact(i: u64) -> RecordInput {
    let mut fields = Map::new();
    for (k, v) in [
        ("first_name", json!(format!("Jan{i}"))),
        ("last_name", json!(format!("Janssen{i}"))),
        ("email", json!(format!("jan.janssen{i}@example.nl"))),
        ("phone", json!(format!("+3120{:07}", i % 10_000_000))),
        ("city", json!("Utrecht")),
    ] {
        fields.insert(k.to_owned(), v);
    }
    RecordInput {
        fields,
        ..Default::default()
    }
}

async fn run() -> Result<()> {
    let n: u64 = std::env::var("KLUIS_BENCH_CREATES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(3_000);
    let tmp = match std::env::var_os("KLUIS_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let store = Store::open_sqlite(&tmp.path().join("create.db")).await?;
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
                slug: "create-bench".into(),
                name: "Create bench".into(),
            },
        )
        .await?
        .id;
    let console = Actor::console(t);
    // The console actor: no session or user lookup, so the figure is the create itself.
    let actor = console;
    let warm = 300;
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..warm + n {
        let t0 = Instant::now();
        kluis
            .create_record(&actor, &ctx, ObjectType::Contact, contact(i), None)
            .await?;
        if i >= warm {
            lat.push(t0.elapsed());
        }
    }
    let total = start.elapsed();
    lat.sort();
    println!(
        "contact create (Kluis::create_record, SQLite, 5 fields, 2 blind indexes, 1 audit event): {n} creates after {warm} warm-up: p50 {} p99 {} ({:.0} creates/s sequential, {:.1} s in all)",
        ms(pct(&lat, 0.50)),
        ms(pct(&lat, 0.99)),
        n as f64 / lat.iter().sum::<Duration>().as_secs_f64(),
        total.as_secs_f64()
    );
    Ok(())
}
