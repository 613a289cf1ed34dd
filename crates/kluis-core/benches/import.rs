//! CSV import benchmark: a contacts CSV imported through `Kluis::import_records` (parsing,
//! validation, sealing, blind indexes, duplicate check, one audit event per record, one
//! transaction), next to a raw SQLite bulk insert of the same rows into an equivalent plain
//! table (same columns in the clear, unique index on email, one transaction, one prepared
//! statement) on the same machine. Prints, does not assert.
//!
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench -p kluis-core --bench import`
//!
//! Environment: `KLUIS_BENCH_ROWS` (default 200,000; the issue's figure is 1,000,000),
//! `KLUIS_BENCH_DIR` (where the SQLite files go). Target (issue 5): import at least 50 % of the
//! raw insert rate measured in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use kluis_core::crm::ObjectType;
use kluis_core::crm::import::{ImportMode, ImportOptions, OnDuplicate};
use kluis_core::keys::KeyEncryptionKeys;
use kluis_core::tenants::{NewTenantInput, PlatformActor};
use kluis_core::{Actor, CoreConfig, Kluis, RequestContext, Store};
use kluis_crypto::envelope::{Kek, LocalKms};

const CITIES: [&str; 5] = ["Amsterdam", "Rotterdam", "Den Haag", "Utrecht", "Eindhoven"];

fn row(i: u64) -> [String; 5] {
    [
        format!("Voornaam{i}"),
        format!("Achternaam{}", i % 9973),
        format!("contact{i}@import-bench.test"),
        format!("+31 6 {:08}", i % 100_000_000),
        CITIES[(i % 5) as usize].to_owned(),
    ]
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> Result<()> {
    let n = kluis_core::bench_support::env_u64("KLUIS_BENCH_ROWS", 200_000);
    let tmp = match std::env::var_os("KLUIS_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    // The CSV file, as Dutch Excel would write it ("CSV UTF-8": BOM, semicolons, CRLF).
    let csv_path = tmp.path().join("contacts.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
        f.write_all("\u{feff}Voornaam;Achternaam;E-mailadres;Telefoon;Plaats\r\n".as_bytes())?;
        for i in 0..n {
            writeln!(f, "{}\r", row(i).join(";"))?;
        }
    }
    let size = std::fs::metadata(&csv_path)?.len();
    println!(
        "Import benchmark: {n} contacts, {:.1} MB CSV (SQLite in {})",
        size as f64 / 1e6,
        tmp.path().display()
    );

    // 1. Raw SQLite bulk insert of the same rows into a plain table.
    let raw_path = tmp.path().join("raw.db");
    let t0 = Instant::now();
    {
        let mut db = rusqlite::Connection::open(&raw_path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE contacts (id BLOB PRIMARY KEY, first_name TEXT, last_name TEXT,
               email TEXT NOT NULL, phone TEXT, city TEXT, created_at INTEGER) STRICT;
             CREATE UNIQUE INDEX contacts_email ON contacts (email);",
        )?;
        let tx = db.transaction()?;
        {
            let mut st = tx.prepare(
                "INSERT INTO contacts (id, first_name, last_name, email, phone, city, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for i in 0..n {
                let [a, b, c, d, e] = row(i);
                st.execute(rusqlite::params![
                    uuid::Uuid::now_v7().as_bytes().as_slice(),
                    a,
                    b,
                    c,
                    d,
                    e,
                    i as i64
                ])?;
            }
        }
        tx.commit()?;
    }
    let raw = t0.elapsed();
    let raw_rate = n as f64 / raw.as_secs_f64();
    println!(
        "1. raw SQLite bulk insert (plain table, unique email index, one transaction): {:.1} s = {raw_rate:.0} rows/s",
        raw.as_secs_f64()
    );

    // 1b. The same rows, plaintext, into the b-trees Kluis's data model writes per contact:
    //     the record table with its list/owner/company/stage indexes, two lookup entries
    //     (email, phone) with their record index, and one audit row. No crypto, no checks:
    //     the ceiling for any implementation that keeps those lookups, list filters and a
    //     per-record audit event.
    let same_path = tmp.path().join("same-btrees.db");
    let t0 = Instant::now();
    {
        let mut db = rusqlite::Connection::open(&same_path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE records (tenant_id BLOB NOT NULL, id BLOB NOT NULL, object_type TEXT NOT NULL,
               owner_id BLOB, company_id BLOB, stage_id BLOB, deleted_at INTEGER, fields TEXT NOT NULL,
               created_at INTEGER NOT NULL, PRIMARY KEY (tenant_id, id)) STRICT;
             CREATE INDEX records_list ON records (tenant_id, object_type, deleted_at, id);
             CREATE INDEX records_owner ON records (tenant_id, object_type, owner_id, id);
             CREATE INDEX records_company ON records (tenant_id, company_id);
             CREATE INDEX records_stage ON records (tenant_id, object_type, stage_id, id);
             CREATE TABLE lookup (tenant_id BLOB NOT NULL, object_type TEXT NOT NULL, field TEXT NOT NULL,
               value TEXT NOT NULL, record_id BLOB NOT NULL,
               PRIMARY KEY (tenant_id, object_type, field, value, record_id)) STRICT, WITHOUT ROWID;
             CREATE INDEX lookup_record ON lookup (tenant_id, record_id);
             CREATE TABLE audit (tenant_id BLOB NOT NULL, seq INTEGER NOT NULL, action TEXT NOT NULL,
               object_id TEXT, details TEXT NOT NULL, PRIMARY KEY (tenant_id, seq)) STRICT, WITHOUT ROWID;",
        )?;
        let tenant = uuid::Uuid::now_v7();
        let tx = db.transaction()?;
        {
            let mut rec = tx.prepare(
                "INSERT INTO records (tenant_id, id, object_type, fields, created_at) VALUES (?1, ?2, 'contact', ?3, ?4)",
            )?;
            let mut look = tx.prepare(
                "INSERT INTO lookup (tenant_id, object_type, field, value, record_id) VALUES (?1, 'contact', ?2, ?3, ?4)",
            )?;
            let mut audit = tx.prepare(
                "INSERT INTO audit (tenant_id, seq, action, object_id, details) VALUES (?1, ?2, 'contact.create', ?3, ?4)",
            )?;
            for i in 0..n {
                let [a, b, c, d, e] = row(i);
                let id = uuid::Uuid::now_v7();
                let fields = format!(
                    r#"{{"first_name":"{a}","last_name":"{b}","email":"{c}","phone":"{d}","city":"{e}"}}"#
                );
                rec.execute(rusqlite::params![
                    tenant.as_bytes().as_slice(),
                    id.as_bytes().as_slice(),
                    fields,
                    i as i64
                ])?;
                for (field, value) in [("email", &c), ("phone", &d)] {
                    look.execute(rusqlite::params![
                        tenant.as_bytes().as_slice(),
                        field,
                        value,
                        id.as_bytes().as_slice()
                    ])?;
                }
                audit.execute(rusqlite::params![
                    tenant.as_bytes().as_slice(),
                    i as i64,
                    id.to_string(),
                    fields
                ])?;
            }
        }
        tx.commit()?;
    }
    let same = t0.elapsed();
    let same_rate = n as f64 / same.as_secs_f64();
    println!(
        "1b. raw SQLite, same b-trees as Kluis (record + 4 indexes, 2 lookup entries, 1 audit row; plaintext, no checks): {:.1} s = {same_rate:.0} rows/s",
        same.as_secs_f64()
    );

    // 2. The real import.
    let store = Store::open_sqlite(&tmp.path().join("kluis.db")).await?;
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
                slug: "import-bench".into(),
                name: "Import bench".into(),
            },
        )
        .await?
        .id;
    let console = Actor::console(t);
    let opts = ImportOptions {
        object_type: ObjectType::Contact,
        mode: ImportMode::AllOrNothing,
        on_duplicate: OnDuplicate::Skip,
        dry_run: false,
        delimiter: None,
        encoding: Default::default(),
        mapping: None,
    };
    let file = std::io::BufReader::new(std::fs::File::open(&csv_path)?);
    let t0 = Instant::now();
    let report = kluis
        .import_records(&console, &ctx, opts, Box::new(file))
        .await?;
    let took = t0.elapsed();
    assert_eq!(report.committed, n, "{:?}", report.errors.first());
    let rate = n as f64 / took.as_secs_f64();
    let ratio = rate / raw_rate * 100.0;
    println!(
        "2. Kluis import (sealed fields, blind indexes on email and phone, duplicate check, one audit event per record, all-or-nothing): {:.1} s = {rate:.0} rows/s = {ratio:.1} % of raw  target >= 50 %: {}",
        took.as_secs_f64(),
        if ratio >= 50.0 { "meets" } else { "MISSES" }
    );
    println!(
        "   = {:.1} % of 1b (what sealing, blind indexes, checks and the import logic cost over plaintext writes of the same b-trees)",
        rate / same_rate * 100.0
    );
    // Sizes after a checkpoint, so the WAL does not count twice.
    drop(kluis);
    for name in ["raw.db", "same-btrees.db", "kluis.db"] {
        rusqlite::Connection::open(tmp.path().join(name))?.query_row(
            "PRAGMA wal_checkpoint(TRUNCATE)",
            [],
            |_| Ok(()),
        )?;
    }
    let size_of = |name: &str| {
        ["", "-wal"]
            .iter()
            .filter_map(|suffix| std::fs::metadata(tmp.path().join(format!("{name}{suffix}"))).ok())
            .map(|m| m.len())
            .sum::<u64>()
    };
    println!(
        "   bytes stored per row: raw {:.0}, same b-trees {:.0}, Kluis {:.0} (sealed fields, two blind indexes, the audit event with old/new values)",
        size_of("raw.db") as f64 / n as f64,
        size_of("same-btrees.db") as f64 / n as f64,
        size_of("kluis.db") as f64 / n as f64
    );
    Ok(())
}
