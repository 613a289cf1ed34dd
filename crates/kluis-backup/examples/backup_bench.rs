//! Benchmark (not a test): backup throughput next to a plain `cp` of the same database file,
//! restore time, and the RPO of WAL shipping under a steady write load.
//!
//! `cargo run -p kluis-backup --example backup_bench -- [MB]` (default 256 MB of database).
//! The dev profile builds ring, sha2 and SQLite at opt-level 3 (workspace Cargo.toml), which
//! is where the time goes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kluis_backup::Backups;
use kluis_backup::sqlite::{self, Shipper, ShipperConfig};
use kluis_crypto::checkpoint::CheckpointSigner;
use kluis_crypto::envelope::{Kms, LocalKms};
use rusqlite::Connection;

fn app(db: &Path) -> Connection {
    let c = Connection::open(db).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    c.busy_timeout(Duration::from_secs(30)).unwrap();
    c
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let target_mb: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let dir =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into())).unwrap();
    let db = dir.path().join("kluis.db");
    let c = app(&db);
    c.execute_batch(
        "CREATE TABLE contacts(id INTEGER PRIMARY KEY, name TEXT, email TEXT, sealed BLOB);
         CREATE INDEX contacts_email ON contacts(email);",
    )
    .unwrap();
    // Sealed values look random: use pseudo-random bytes so nothing compresses.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rows = 0u64;
    while std::fs::metadata(&db).unwrap().len()
        + std::fs::metadata(dir.path().join("kluis.db-wal")).map_or(0, |m| m.len())
        < target_mb * 1_000_000
    {
        let tx = c.unchecked_transaction().unwrap();
        for _ in 0..10_000 {
            let blob: Vec<u8> = (0..200)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            tx.execute(
                "INSERT INTO contacts(name, email, sealed) VALUES (?1, ?2, ?3)",
                rusqlite::params![format!("name {rows}"), format!("{x:x}@example.nl"), blob],
            )
            .unwrap();
            rows += 1;
        }
        tx.commit().unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let db_bytes = std::fs::metadata(&db).unwrap().len();
    println!("database: {:.1} MB, {rows} rows", mb(db_bytes));
    if let Ok(keep) = std::env::var("BENCH_KEEP_DB") {
        std::fs::copy(&db, &keep).unwrap();
    }

    // Plain cp of the database file (same run, same disk), with and without a sync.
    let t = Instant::now();
    let st = std::process::Command::new("cp")
        .arg(&db)
        .arg(dir.path().join("cp.db"))
        .status()
        .unwrap();
    assert!(st.success());
    let cp_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    std::process::Command::new("sync")
        .arg(dir.path().join("cp.db"))
        .status()
        .unwrap();
    let cp_sync_secs = cp_secs + t.elapsed().as_secs_f64();
    std::fs::remove_file(dir.path().join("cp.db")).unwrap();

    let kms: Arc<dyn Kms> = Arc::new(LocalKms::create_or_load(dir.path().join("kek.key")).unwrap());
    let signer = Arc::new(CheckpointSigner::generate("kluis-audit").unwrap());
    let repo = dir.path().join("repo");
    let b = Backups::open(repo.to_str().unwrap(), kms, Some(signer), true)
        .await
        .unwrap();
    let t = Instant::now();
    let id = sqlite::create_snapshot(&b, &db).await.unwrap();
    let backup_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = sqlite::verify(&b, &id).await.unwrap();
    let verify_secs = t.elapsed().as_secs_f64();
    assert!(report.ok);
    let t = Instant::now();
    sqlite::restore(&b, None, &dir.path().join("restored.db"))
        .await
        .unwrap();
    let restore_secs = t.elapsed().as_secs_f64();
    std::fs::remove_file(dir.path().join("restored.db")).unwrap();
    println!(
        "cp:               {cp_secs:6.2} s  {:8.1} MB/s   (cp + sync: {cp_sync_secs:.2} s, {:.1} MB/s)",
        mb(db_bytes) / cp_secs,
        mb(db_bytes) / cp_sync_secs
    );
    println!(
        "backup create:    {backup_secs:6.2} s  {:8.1} MB/s   = {:.0} % of cp, {:.0} % of cp + sync (snapshot via the online backup API, AES-256-GCM, SHA-256, batched fsync)",
        mb(db_bytes) / backup_secs,
        100.0 * cp_secs / backup_secs,
        100.0 * cp_sync_secs / backup_secs
    );
    println!(
        "backup verify:    {verify_secs:6.2} s  {:8.1} MB/s   ({} objects read back)",
        mb(report.bytes_read) / verify_secs,
        report.objects_checked
    );
    println!(
        "backup restore:   {restore_secs:6.2} s  {:8.1} MB/s   (verify + write + integrity_check)",
        mb(db_bytes) / restore_secs
    );

    // RPO: a steady writer (one acknowledged commit every 5 ms) while the shipper ticks every
    // second; then a crash of both at once (the shipper gets no chance to ship its tail).
    let stop = Arc::new(AtomicBool::new(false));
    let acks: Arc<std::sync::Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let writer = {
        let (stop, acks, db) = (stop.clone(), acks.clone(), db.clone());
        std::thread::spawn(move || {
            let c = app(&db);
            let mut i = 0i64;
            while !stop.load(Ordering::SeqCst) {
                c.execute(
                    "INSERT INTO contacts(name, email, sealed) VALUES (?1, 'rpo', x'00')",
                    [format!("rpo {i}")],
                )
                .unwrap();
                acks.lock()
                    .unwrap()
                    .push((c.last_insert_rowid(), Instant::now()));
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut shipper = Shipper::open(b.clone(), &db, ShipperConfig::default()).unwrap();
    shipper.tick().await.unwrap(); // new generation (snapshot)
    let run = Duration::from_millis(10_300);
    let began = Instant::now();
    let mut lags = Vec::new();
    while began.elapsed() < run {
        let t0 = Instant::now();
        shipper.tick().await.unwrap();
        // What is acknowledged but not yet shipped right after this tick.
        lags.push(t0.elapsed());
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(t0.elapsed())).await;
    }
    let crash = Instant::now();
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    drop(shipper); // kill: no final ship, no closing manifest
    let restored = dir.path().join("rpo.db");
    sqlite::restore(&b, None, &restored).await.unwrap();
    let max_id: i64 = Connection::open(&restored)
        .unwrap()
        .query_row("SELECT max(id) FROM contacts", [], |r| r.get(0))
        .unwrap();
    let acks = acks.lock().unwrap();
    let missing: Vec<&(i64, Instant)> = acks.iter().filter(|(id, _)| *id > max_id).collect();
    let oldest_missing = missing.first().map(|(_, at)| crash.duration_since(*at));
    println!(
        "RPO:              {} acknowledged writes in {:.1} s; after a crash, {} missing from the restore, the oldest acknowledged {:.2} s before the crash (shipping every 1 s; tick took at most {} ms)",
        acks.len(),
        run.as_secs_f64(),
        missing.len(),
        oldest_missing.map_or(0.0, |d| d.as_secs_f64()),
        lags.iter().max().map_or(0, |d| d.as_millis())
    );
}
