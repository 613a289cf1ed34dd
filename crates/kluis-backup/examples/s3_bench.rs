//! Throughput of the S3 repository against the loopback test server (Ceph radosgw on a one-node
//! memstore cluster, started by kluis-testkit): put_locked, put_mutable and get in MB/s, one
//! request at a time and four at a time, plus listings of many small objects. A benchmark, not
//! a test.
//!
//! `cargo run --release -p kluis-backup --example s3_bench [-- OBJECT_MIB COUNT SMALL]`
//! (defaults 8, 16 and 2000 small objects for the listing); figures from this machine are in
//! the backup section of ARCHITECTURE.md.

use std::time::Instant;

use futures_util::StreamExt as _;
use kluis_backup::s3::{S3Config, S3Repo};
use time::OffsetDateTime;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let mib = args.first().copied().unwrap_or(8);
    let count = args.get(1).copied().unwrap_or(16);
    let small = args.get(2).copied().unwrap_or(2000);
    let Some(s) = kluis_testkit::s3::s3_server() else {
        return Ok(());
    };
    let bucket = s.unique_bucket("kluis-bench");
    s.create_bucket(&bucket, true).await?;
    let cfg = S3Config {
        endpoint: s.endpoint.clone(),
        region: s.region.clone(),
        access_key_id: s.access_key.clone(),
        secret_access_key: s.secret_key.clone(),
        session_token: None,
        ca_file: None,
    };
    let repo = S3Repo::open(cfg, &bucket, "bench").await?;
    // Incompressible bytes, as sealed objects are.
    let object: Vec<u8> = (0..mib << 20)
        .map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let total_mb = (mib * count) as f64 * 1.048_576;
    let until = OffsetDateTime::now_utc() + time::Duration::hours(1);
    println!(
        "S3 repository -> {} (Ceph radosgw 16.2, memstore OSD), {count} objects of {mib} MiB",
        s.endpoint
    );

    let t = Instant::now();
    for i in 0..count {
        repo.put_locked(&format!("locked/{i:05}"), object.clone(), until)
            .await?;
    }
    report("put_locked, 1 at a time", total_mb, t);

    let t = Instant::now();
    for i in 0..count {
        repo.put_mutable(&format!("mutable/{i:05}"), object.clone())
            .await?;
    }
    report("put_mutable, 1 at a time", total_mb, t);

    let t = Instant::now();
    let results: Vec<_> = futures_util::stream::iter((0..count).map(|i| {
        let (repo, object) = (&repo, object.clone());
        async move {
            repo.put_locked(&format!("locked4/{i:05}"), object, until)
                .await
        }
    }))
    .buffer_unordered(4)
    .collect()
    .await;
    results.into_iter().collect::<Result<Vec<_>, _>>()?;
    report("put_locked, 4 at a time", total_mb, t);

    let t = Instant::now();
    for i in 0..count {
        let got = repo.get(&format!("locked/{i:05}")).await?;
        anyhow::ensure!(got.len() == object.len(), "short read");
    }
    report("get, 1 at a time", total_mb, t);

    let t = Instant::now();
    let results: Vec<_> = futures_util::stream::iter((0..count).map(|i| {
        let repo = &repo;
        async move { repo.get(&format!("locked/{i:05}")).await }
    }))
    .buffer_unordered(4)
    .collect()
    .await;
    for r in results {
        anyhow::ensure!(r?.len() == object.len(), "short read");
    }
    report("get, 4 at a time", total_mb, t);

    // Listing cost: many small objects (WAL segments are many and small).
    let t = Instant::now();
    let results: Vec<_> = futures_util::stream::iter((0..small).map(|i| {
        let repo = &repo;
        async move {
            repo.put_mutable(&format!("small/{i:06}"), vec![7u8; 1024])
                .await
        }
    }))
    .buffer_unordered(16)
    .collect()
    .await;
    results.into_iter().collect::<Result<Vec<_>, _>>()?;
    println!(
        "{:<28} {:>8} objects in {:>7.1} ms",
        "put_mutable 1 KiB, 16 at a time",
        small,
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let listed = repo.list("small/").await?;
    println!(
        "{:<28} {:>8} objects in {:>7.1} ms",
        "list (HEAD each: retention)",
        listed.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let names = repo.list_names("small/").await?;
    println!(
        "{:<28} {:>8} objects in {:>7.1} ms",
        "list_names (pages only)",
        names.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

fn report(what: &str, mb: f64, t: Instant) {
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{what:<28} {mb:>8.1} MB in {secs:>6.2} s = {:>7.1} MB/s",
        mb / secs
    );
}
