//! PostgreSQL backups through the real pgBackRest, against a dedicated archiving cluster
//! (kluis-testkit's `pgbackrest` harness). Skipped loudly without pgBackRest or PostgreSQL;
//! `KLUIS_REQUIRE_PGBACKREST=1` makes that a failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kluis_backup::pgbackrest::{
    Archiving, BackupKind, CIPHER_OBJECT, Pg, PgConfig, PgError, RestoreTarget,
};
use kluis_crypto::envelope::{Kek, LocalKms};
use kluis_testkit::pgbackrest::{ArchivingCluster, STANZA, archiving_cluster};
use time::OffsetDateTime;

struct Setup {
    cluster: ArchivingCluster,
    repo: PathBuf,
    kms: LocalKms,
    pg: Pg,
}

fn config(cluster: &ArchivingCluster, repo: &Path) -> PgConfig {
    let mut cfg = PgConfig::new(
        repo.to_path_buf(),
        cluster.config_dir().to_path_buf(),
        cluster.data_dir().to_path_buf(),
    );
    cfg.stanza = STANZA.into();
    cfg.pg_port = cluster.port();
    cfg.pg_socket_dir = Some(cluster.socket_dir().to_path_buf());
    cfg.pg_user = cluster.superuser().into();
    cfg.run_as = cluster.run_as().map(str::to_owned);
    cfg.pgbackrest = cluster.pgbackrest().to_path_buf();
    cfg
}

/// A cluster archiving into a fresh Kluis repository, stanza created and archiving checked.
async fn setup() -> Option<Setup> {
    let cluster = archiving_cluster()?;
    let repo = cluster.scratch_dir("repo").unwrap();
    let kms = LocalKms::new(Kek::generate().unwrap());
    let pg = Pg::open(config(&cluster, &repo), &kms).await.unwrap();
    pg.stanza_create().await.unwrap();
    pg.check().await.unwrap();
    Some(Setup {
        cluster,
        repo,
        kms,
        pg,
    })
}

/// pg_dump output minus the per-run `\restrict` key lines (PostgreSQL 15.14+).
fn normalise(dump: &str) -> String {
    dump.lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn server_now(cluster: &ArchivingCluster) -> OffsetDateTime {
    let micros: i128 = cluster
        .query(
            "postgres",
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    OffsetDateTime::from_unix_timestamp_nanos(micros * 1000).unwrap()
}

fn insert_batch(cluster: &ArchivingCluster, batch: &str, from: u32, rows: u32) {
    cluster
        .query(
            "crm",
            &format!(
                "INSERT INTO contacts (id, batch, payload) \
                 SELECT i, '{batch}', md5(i::text) || ' kluis-plaintext-marker' \
                 FROM generate_series({from}, {}) i",
                from + rows - 1
            ),
        )
        .unwrap();
}

fn count(rows: &str) -> u64 {
    rows.trim().parse().unwrap()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64()
}

/// Full backup, batch A, moment T, batch B, incremental backup; a restore to T holds exactly
/// the state at T (full dump compared), an immediate restore of the incremental holds A and B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_restore_reproduces_the_state_at_t() {
    let Some(s) = setup().await else { return };
    let c = &s.cluster;
    c.query("postgres", "CREATE DATABASE crm").unwrap();
    c.query(
        "crm",
        "CREATE TABLE contacts (id int PRIMARY KEY, batch text NOT NULL, payload text NOT NULL)",
    )
    .unwrap();
    insert_batch(c, "base", 1, 1000);

    let t0 = Instant::now();
    let full = s.pg.create(BackupKind::Full).await.unwrap();
    let full_took = t0.elapsed();
    assert_eq!(full.engine, "postgres");
    assert_eq!(full.kind, "full");
    assert!(full.database_bytes > 0 && full.stored_bytes > 0);
    assert!(full.finished >= full.started);
    assert_eq!(
        full.restorable_from,
        Some(full.finished + time::Duration::seconds(1))
    );

    // pgBackRest records a backup's stop time in whole seconds and picks, for a time target, a
    // backup that stopped strictly before it: T must fall in a later second than the stop.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Batch A in four steps (inserts, an update, a delete), a candidate moment after each; T is
    // one of them at random, and everything after T (the later steps, batch B) must be absent.
    let mut moments = Vec::new();
    for step in 0..4u32 {
        insert_batch(c, "A", 10_001 + step * 250, 250);
        match step {
            1 => c.query(
                "crm",
                "UPDATE contacts SET payload = 'updated' WHERE id % 7 = 0",
            ),
            2 => c.query(
                "crm",
                "DELETE FROM contacts WHERE batch = 'base' AND id % 5 = 0",
            ),
            _ => Ok(String::new()),
        }
        .unwrap();
        let dump = normalise(&c.dump("crm").unwrap());
        moments.push((server_now(c), dump, 250 * u64::from(step + 1)));
        // The next commit must fall strictly after this moment.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pick = usize::from(uuid::Uuid::new_v4().as_bytes()[0]) % moments.len();
    let (t, state_at_t, a_rows_at_t) = moments.swap_remove(pick);
    eprintln!("pitr: restoring to moment {pick} of 4 ({t})");
    insert_batch(c, "B", 20_001, 1000);
    let state_after_b = normalise(&c.dump("crm").unwrap());
    assert_ne!(state_at_t, state_after_b);
    // Forces a WAL switch and waits until B's commit is in the repository.
    s.pg.check().await.unwrap();

    let incr = s.pg.create(BackupKind::Incr).await.unwrap();
    assert_eq!(incr.kind, "incr");
    let list = s.pg.list().await.unwrap();
    assert_eq!(
        list.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        [full.id.as_str(), incr.id.as_str()]
    );
    assert!(list[1].kept_for.iter().any(|k| k == "latest"), "{list:?}");
    assert!(list[0].kept_for.iter().any(|k| k == "base" || k == "pitr"));
    let reach = list[0].restorable_until.unwrap();
    assert!(
        reach >= list[1].finished - time::Duration::seconds(1),
        "{list:?}"
    );

    let t0 = Instant::now();
    let reports = s.pg.verify().await.unwrap();
    let verify_took = t0.elapsed();
    assert!(reports.iter().all(|r| r.ok), "{reports:?}");
    assert!(
        reports
            .iter()
            .any(|r| r.backup_id == full.id && r.objects_checked > 100)
    );
    assert!(
        reports
            .iter()
            .any(|r| r.backup_id.starts_with("wal:") && r.objects_checked > 0)
    );
    let verified: u64 = reports.iter().map(|r| r.bytes_read).sum();
    assert!(verified > 0);

    // Nothing in the repository is readable without the passphrase.
    for f in files_under(&s.pg.repo_path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(22).any(|w| w == b"kluis-plaintext-marker"),
            "plaintext in {}",
            f.display()
        );
    }

    // Restore to T into a new data directory.
    let pitr_dir = c.scratch_dir("restore-pitr").unwrap().join("data");
    let t0 = Instant::now();
    s.pg.restore(&pitr_dir, &RestoreTarget::Time(t), Archiving::Off)
        .await
        .unwrap();
    let restore_took = t0.elapsed();
    let t1 = Instant::now();
    {
        let r = c.start_restored(&pitr_dir).unwrap();
        let recover_took = t1.elapsed();
        assert_eq!(
            count(
                &r.query("crm", "SELECT count(*) FROM contacts WHERE batch = 'B'")
                    .unwrap()
            ),
            0,
            "{}",
            r.log_tail()
        );
        assert_eq!(
            count(
                &r.query("crm", "SELECT count(*) FROM contacts WHERE batch = 'A'")
                    .unwrap()
            ),
            a_rows_at_t
        );
        assert_eq!(normalise(&r.dump("crm").unwrap()), state_at_t);
        eprintln!(
            "pg backup figures: database {:.1} MB; full backup {:.2} s ({:.1} MB/s, {:.1} MB stored); \
             verify {:.2} s ({:.1} MB read); restore (files) {:.2} s ({:.1} MB/s); recovery to T and start {:.2} s",
            full.database_bytes as f64 / 1e6,
            full_took.as_secs_f64(),
            mb_per_s(full.database_bytes, full_took),
            full.stored_bytes as f64 / 1e6,
            verify_took.as_secs_f64(),
            verified as f64 / 1e6,
            restore_took.as_secs_f64(),
            mb_per_s(full.database_bytes, restore_took),
            recover_took.as_secs_f64(),
        );
    }

    // The end of the incremental backup, no further WAL: A and B.
    let imm_dir = c.scratch_dir("restore-immediate").unwrap().join("data");
    s.pg.restore(&imm_dir, &RestoreTarget::Immediate, Archiving::Off)
        .await
        .unwrap();
    let r = c.start_restored(&imm_dir).unwrap();
    assert_eq!(normalise(&r.dump("crm").unwrap()), state_after_b);
}

/// A changed or a missing file in pgBackRest's repository is found by verify and refused by
/// restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_tampering_and_restore_refuses_it() {
    let Some(s) = setup().await else { return };
    let c = &s.cluster;
    c.query("postgres", "CREATE DATABASE crm").unwrap();
    c.query(
        "crm",
        "CREATE TABLE contacts (id int PRIMARY KEY, batch text NOT NULL, payload text NOT NULL)",
    )
    .unwrap();
    insert_batch(c, "base", 1, 5000);
    let full = s.pg.create(BackupKind::Full).await.unwrap();
    assert!(s.pg.verify().await.unwrap().iter().all(|r| r.ok));

    // The biggest data file of the backup: the contacts table.
    let set_dir = s.pg.repo_path().join("backup").join(STANZA).join(&full.id);
    let mut files: Vec<(u64, PathBuf)> = files_under(&set_dir.join("pg_data/base"))
        .into_iter()
        .map(|p| (std::fs::metadata(&p).unwrap().len(), p))
        .collect();
    files.sort();
    let (_, victim) = files.pop().unwrap();
    let (_, missing) = files.pop().unwrap();
    let original = std::fs::read(&victim).unwrap();
    let mut changed = original.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 0x01;
    std::fs::write(&victim, &changed).unwrap();
    let moved = missing.with_extension("moved-away");
    std::fs::rename(&missing, &moved).unwrap();

    let reports = s.pg.verify().await.unwrap();
    let report = reports.iter().find(|r| r.backup_id == full.id).unwrap();
    assert!(!report.ok, "{reports:?}");
    let rel = |p: &Path| {
        p.strip_prefix(&set_dir)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert!(
        report.problems.iter().any(|p| p.contains(&rel(&victim))),
        "the changed file is named: {report:?}"
    );
    assert!(
        report.problems.iter().any(|p| p.contains(&rel(&missing))),
        "the missing file is named: {report:?}"
    );

    let dir = c.scratch_dir("restore-tampered").unwrap().join("data");
    let err =
        s.pg.restore(&dir, &RestoreTarget::Immediate, Archiving::Off)
            .await
            .unwrap_err();
    assert!(matches!(err, PgError::Command { .. }), "{err}");

    // Put everything back: verify passes again (the check above was about these files).
    std::fs::write(&victim, &original).unwrap();
    std::fs::rename(&moved, &missing).unwrap();
    assert!(s.pg.verify().await.unwrap().iter().all(|r| r.ok));
}

/// A wrong KEK is refused before pgBackRest runs; a passphrase that does not fit the repository
/// is refused by pgBackRest; the passphrase is in no error, no argv, and only in a 0600 file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_or_passphrase_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(s) = setup().await else { return };
    let c = &s.cluster;
    let full = s.pg.create(BackupKind::Full).await.unwrap();

    let conf = s.pg.config().config_file();
    let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "config file mode");
    let conf_text = std::fs::read_to_string(&conf).unwrap();
    let pass = conf_text
        .lines()
        .find_map(|l| l.strip_prefix("repo1-cipher-pass="))
        .unwrap()
        .to_owned();
    assert_eq!(pass.len(), 64, "256 random bits, hex");
    let wrapped = std::fs::read_to_string(s.repo.join(CIPHER_OBJECT)).unwrap();
    assert!(
        !wrapped.contains(&pass),
        "the repository holds it wrapped only"
    );

    // Another KEK: refused with a clear error, pgBackRest never runs.
    let other = LocalKms::new(Kek::generate().unwrap());
    let err = Pg::open(config(c, &s.repo), &other).await.unwrap_err();
    assert!(matches!(err, PgError::WrongKey(_)), "{err}");
    assert!(err.to_string().contains("wrong key"), "{err}");

    // The right KEK but another passphrase (the wrapped object replaced by one from another
    // repository): pgBackRest cannot decrypt the repository and Kluis refuses it.
    let elsewhere = c.scratch_dir("repo-elsewhere").unwrap();
    let mut other_cfg = config(c, &elsewhere);
    other_cfg.config_dir = c.scratch_dir("conf-elsewhere").unwrap();
    Pg::open(other_cfg, &s.kms).await.unwrap();
    std::fs::copy(elsewhere.join(CIPHER_OBJECT), s.repo.join(CIPHER_OBJECT)).unwrap();
    let wrong = Pg::open(config(c, &s.repo), &s.kms).await.unwrap();
    let err = wrong.list().await.unwrap_err();
    assert!(matches!(err, PgError::Repository(_)), "{err}");
    let reports = wrong.verify().await.unwrap();
    assert!(reports.iter().any(|r| !r.ok), "{reports:?}");
    let dir = c.scratch_dir("restore-wrong").unwrap().join("data");
    let err = wrong
        .restore(&dir, &RestoreTarget::Immediate, Archiving::Off)
        .await
        .unwrap_err();
    let wrong_pass = std::fs::read_to_string(&conf)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("repo1-cipher-pass="))
        .unwrap()
        .to_owned();
    assert!(!err.to_string().contains(&wrong_pass) && !err.to_string().contains(&pass));

    // Restoring the right object makes the repository readable again.
    std::fs::write(s.repo.join(CIPHER_OBJECT), wrapped).unwrap();
    let right = Pg::open(config(c, &s.repo), &s.kms).await.unwrap();
    assert_eq!(right.list().await.unwrap()[0].id, full.id);
}

/// The Kluis schema (kluis-store migrations, row-level security policies, roles' grants)
/// survives a backup and restore; row counts match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kluis_database_survives_backup_and_restore() {
    use kluis_store::rows::NewUser;
    use kluis_store::{Store, TenantId, UserId};
    let Some(s) = setup().await else { return };
    let c = &s.cluster;
    let db = c.create_database("kluis").unwrap();
    let store = Store::open_postgres(&db.app_url, Some(&db.owner_url), 2)
        .await
        .unwrap();
    for t in 0..3 {
        let tenant = TenantId::new();
        let slug = format!("tenant{t}");
        let mut p = store.platform().await.unwrap();
        p.insert_tenant(tenant, &slug, &slug, 1).await.unwrap();
        p.commit().await.unwrap();
        let mut tx = store.tenant(tenant).begin().await.unwrap();
        for u in 0..=t {
            let email = format!("u{u}@{slug}.test");
            tx.insert_user(&NewUser {
                id: UserId::new(),
                email_bidx: email.as_bytes(),
                email: email.as_bytes(),
                display_name: b"X",
                role: kluis_types::Role::Member,
                password_hash: None,
                now: 1,
            })
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    drop(store);
    let counts = "SELECT (SELECT count(*) FROM tenants) || ',' || (SELECT count(*) FROM users)";
    let policies = "SELECT count(*) FROM pg_policies";
    let rls = "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class \
               WHERE relrowsecurity";
    let before = (
        c.query("kluis", counts).unwrap(),
        c.query("kluis", policies).unwrap(),
        c.query("kluis", rls).unwrap(),
        normalise(&c.dump("kluis").unwrap()),
    );
    assert_eq!(before.0, "3,6");
    assert!(count(&before.1) > 0, "the migrations create RLS policies");

    s.pg.create(BackupKind::Full).await.unwrap();
    let dir = c.scratch_dir("restore-kluis").unwrap().join("data");
    s.pg.restore(&dir, &RestoreTarget::Immediate, Archiving::Off)
        .await
        .unwrap();
    let r = c.start_restored(&dir).unwrap();
    let after = (
        r.query("kluis", counts).unwrap(),
        r.query("kluis", policies).unwrap(),
        r.query("kluis", rls).unwrap(),
        normalise(&r.dump("kluis").unwrap()),
    );
    assert_eq!(after.0, before.0);
    assert_eq!(after.1, before.1);
    assert_eq!(after.2, before.2);
    assert!(
        after.3 == before.3,
        "full dump of the Kluis database differs after restore"
    );
    drop(r);

    // The drill path the CLI uses: a scratch cluster on a private socket, checked over the
    // URL it hands out (sqlx, as kluis-core connects) and by row counts.
    let scratch = c.scratch_dir("drill").unwrap();
    let drill =
        s.pg.start_scratch(&scratch, &RestoreTarget::Latest)
            .await
            .unwrap();
    let counts = drill
        .row_counts("kluis", &["tenants", "users"])
        .await
        .unwrap();
    assert_eq!(counts, [("tenants".to_owned(), 3), ("users".to_owned(), 6)]);
    let pool = sqlx::PgPool::connect(&drill.url("kluis")).await.unwrap();
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 6);
    pool.close().await;
    assert!(
        drill
            .row_counts("kluis", &["users; DROP TABLE users"])
            .await
            .is_err()
    );
    drill.stop().await.unwrap();
    assert!(!scratch.exists(), "stop removes the scratch directory");
}

/// Benchmark, not a test: `KLUIS_PG_BENCH_MB=512 cargo test -p kluis-backup --test backup
/// pg::bench -- --ignored --nocapture`. Full backup, verify and restore of a database of that
/// size next to a plain `cp -a` of its data directory in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn bench_backup_and_restore_throughput() {
    let Some(mut s) = setup().await else { return };
    // Variants: KLUIS_PG_BENCH_PROCESS_MAX=2, KLUIS_PG_BENCH_COMPRESS=lz4 | zst:3 | none,
    // KLUIS_PG_BENCH_BUNDLE=1.
    let mut cfg = config(&s.cluster, &s.repo);
    if let Some(n) = std::env::var("KLUIS_PG_BENCH_PROCESS_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.process_max = n;
    }
    if let Ok(v) = std::env::var("KLUIS_PG_BENCH_COMPRESS") {
        let (kind, level) = v.split_once(':').unwrap_or((&v, ""));
        cfg.compress_type = kind.into();
        cfg.compress_level = level.parse().ok();
    }
    cfg.bundle = std::env::var("KLUIS_PG_BENCH_BUNDLE").is_ok_and(|v| v == "1");
    eprintln!(
        "pg bench: process-max {}, compress {} level {:?}, bundle {}",
        cfg.process_max, cfg.compress_type, cfg.compress_level, cfg.bundle
    );
    s.pg = Pg::open(cfg, &s.kms).await.unwrap();
    let c = &s.cluster;
    let mb: u64 = std::env::var("KLUIS_PG_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    c.query("postgres", "CREATE DATABASE crm").unwrap();
    c.query(
        "crm",
        "CREATE TABLE contacts (id bigint PRIMARY KEY, payload bytea NOT NULL)",
    )
    .unwrap();
    // Kluis stores sealed (AES-GCM) values: random, incompressible bytes, 192 per row here;
    // about 260 bytes per row on disk with the tuple header and the primary key.
    let rows = mb * 1_000_000 / 260;
    let random_hex = ["md5(random()::text)"; 12].join(" || ");
    c.query(
        "crm",
        &format!(
            "ALTER TABLE contacts ALTER payload SET STORAGE EXTERNAL; \
             INSERT INTO contacts SELECT i, decode({random_hex}, 'hex') \
             FROM generate_series(1, {rows}) i"
        ),
    )
    .unwrap();
    c.query("crm", "CHECKPOINT").unwrap();
    s.pg.check().await.unwrap();

    let copy_dir = c.scratch_dir("cp-copy").unwrap();
    let t0 = Instant::now();
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(c.data_dir())
        .arg(&copy_dir)
        .status()
        .unwrap();
    assert!(st.success());
    let cp_took = t0.elapsed();

    let t0 = Instant::now();
    let full = s.pg.create(BackupKind::Full).await.unwrap();
    let full_took = t0.elapsed();
    c.query(
        "crm",
        "UPDATE contacts SET payload = 'changed' WHERE id % 1000 = 0",
    )
    .unwrap();
    let t0 = Instant::now();
    let incr = s.pg.create(BackupKind::Incr).await.unwrap();
    let incr_took = t0.elapsed();
    let t0 = Instant::now();
    let reports = s.pg.verify().await.unwrap();
    let verify_took = t0.elapsed();
    assert!(reports.iter().all(|r| r.ok), "{reports:?}");
    let read: u64 = reports.iter().map(|r| r.bytes_read).sum();
    let dir = c.scratch_dir("restore-bench").unwrap().join("data");
    let t0 = Instant::now();
    s.pg.restore(&dir, &RestoreTarget::Immediate, Archiving::Off)
        .await
        .unwrap();
    let restore_took = t0.elapsed();
    let t0 = Instant::now();
    let r = c.start_restored(&dir).unwrap();
    let start_took = t0.elapsed();
    assert_eq!(
        count(&r.query("crm", "SELECT count(*) FROM contacts").unwrap()),
        rows
    );
    let db = full.database_bytes;
    eprintln!(
        "pg bench: cluster {:.0} MB; cp -a {:.2} s ({:.0} MB/s); full backup {:.2} s ({:.0} MB/s, {:.0}% of cp, {:.0} MB stored); \
         incr {:.2} s ({:.1} MB stored); verify {:.2} s ({:.0} MB read); restore {:.2} s ({:.0} MB/s); start+recovery {:.2} s",
        db as f64 / 1e6,
        cp_took.as_secs_f64(),
        mb_per_s(db, cp_took),
        full_took.as_secs_f64(),
        mb_per_s(db, full_took),
        100.0 * cp_took.as_secs_f64() / full_took.as_secs_f64(),
        full.stored_bytes as f64 / 1e6,
        incr_took.as_secs_f64(),
        incr.stored_bytes as f64 / 1e6,
        verify_took.as_secs_f64(),
        read as f64 / 1e6,
        restore_took.as_secs_f64(),
        mb_per_s(db, restore_took),
        start_took.as_secs_f64(),
    );
}

/// pgBackRest processes running `command` for this test's stanza (their command line names its
/// private config file), by pid.
fn pgbackrest_pids(config_file: &Path, command: &str) -> Vec<u32> {
    let needle = format!("--config={}", config_file.display());
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_pgbackrest = args.first().is_some_and(|a| a.ends_with("pgbackrest"));
        // The main process (`backup`) and its workers (`backup:local`), which inherit its lock.
        let for_command = args
            .iter()
            .any(|a| a == command || a.starts_with(&format!("{command}:")));
        if is_pgbackrest && args.contains(&needle) && for_command {
            pids.push(pid);
        }
    }
    pids
}

/// `kill -9` of pgBackRest in the middle of a backup leaves the previous backup verified and
/// restorable; a cancelled run stops pgBackRest; the next backup completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_backup_keeps_the_previous_backup() {
    let Some(s) = setup().await else { return };
    let c = &s.cluster;
    c.query("postgres", "CREATE DATABASE crm").unwrap();
    c.query(
        "crm",
        "CREATE TABLE contacts (id int PRIMARY KEY, batch text NOT NULL, payload text NOT NULL)",
    )
    .unwrap();
    insert_batch(c, "A", 1, 1000);
    let first = s.pg.create(BackupKind::Full).await.unwrap();
    let state = normalise(&c.dump("crm").unwrap());
    // Enough incompressible data that level-19 zstd takes seconds.
    c.query(
        "crm",
        "CREATE TABLE blobs AS SELECT i, decode(string_agg(md5(random()::text), ''), 'hex') AS b \
         FROM generate_series(1, 5000) i, generate_series(1, 100) j GROUP BY i",
    )
    .unwrap();
    let state_with_blobs = normalise(&c.dump("crm").unwrap());

    // Slow compression so the backup is surely still running when it is killed.
    let mut slow = config(c, &s.repo);
    slow.compress_level = Some(19);
    let pg = std::sync::Arc::new(Pg::open(slow, &s.kms).await.unwrap());
    let running = tokio::spawn({
        let pg = pg.clone();
        async move { pg.create(BackupKind::Full).await }
    });
    // Wait until pgBackRest is writing the new backup's files, then kill -9 it.
    let backup_dir = pg.repo_path().join("backup").join(STANZA);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let partial = std::fs::read_dir(&backup_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .any(|n| n.ends_with('F') && n != first.id);
        if partial {
            break;
        }
        assert!(Instant::now() < deadline, "the second backup never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pids = pgbackrest_pids(&pg.config().config_file(), "backup");
    assert!(!pids.is_empty(), "pgBackRest backup is running");
    for pid in &pids {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let err = running.await.unwrap().unwrap_err();
    assert!(matches!(err, PgError::Command { .. }), "{err}");

    // The partial backup is not listed; the previous one verifies and restores.
    let list = pg.list().await.unwrap();
    assert_eq!(
        list.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        [first.id.as_str()]
    );
    let reports = pg.verify().await.unwrap();
    let first_report = reports.iter().find(|r| r.backup_id == first.id).unwrap();
    assert!(first_report.ok, "{reports:?}");
    let dir = c.scratch_dir("restore-after-kill").unwrap().join("data");
    pg.restore(&dir, &RestoreTarget::Immediate, Archiving::Off)
        .await
        .unwrap();
    {
        let r = c.start_restored(&dir).unwrap();
        assert_eq!(normalise(&r.dump("crm").unwrap()), state);
    }

    // A run whose caller gives up (the future dropped) stops pgBackRest as a whole, workers
    // behind `runuser` included, instead of leaving it running.
    let cancelled = tokio::time::timeout(Duration::from_millis(1500), pg.create(BackupKind::Full));
    assert!(
        cancelled.await.is_err(),
        "the slow backup outlived the timeout"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pgbackrest_pids(&pg.config().config_file(), "backup").is_empty() {
        assert!(
            Instant::now() < deadline,
            "pgBackRest still running after cancellation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The next run completes (pgBackRest resumes or replaces the partial backup).
    let pg = Pg::open(config(c, &s.repo), &s.kms).await.unwrap();
    let next = pg.create(BackupKind::Full).await.unwrap();
    assert!(pg.verify().await.unwrap().iter().all(|r| r.ok));
    let dir = c.scratch_dir("restore-next").unwrap().join("data");
    pg.restore(&dir, &RestoreTarget::Immediate, Archiving::Off)
        .await
        .unwrap();
    let r = c.start_restored(&dir).unwrap();
    assert_eq!(normalise(&r.dump("crm").unwrap()), state_with_blobs);
    assert_eq!(pg.list().await.unwrap().last().unwrap().id, next.id);
}

/// Pruning with the real pgBackRest: what the calendar no longer keeps is expired, the rest
/// stays listed and restorable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_expires_what_retention_no_longer_keeps() {
    use kluis_backup::pgbackrest::PgRetention;
    let Some(mut s) = setup().await else { return };
    let mut cfg = config(&s.cluster, &s.repo);
    // One day of everything: of three backups taken today, only the newest is "daily".
    cfg.retention = PgRetention {
        daily: 1,
        monthly: 0,
        yearly: 0,
        pitr_days: 0,
    };
    s.pg = Pg::open(cfg, &s.kms).await.unwrap();
    let c = &s.cluster;
    c.query("postgres", "CREATE DATABASE crm").unwrap();
    c.query(
        "crm",
        "CREATE TABLE contacts (id int PRIMARY KEY, batch text NOT NULL, payload text NOT NULL)",
    )
    .unwrap();
    let mut ids = Vec::new();
    for (i, kind) in [BackupKind::Full, BackupKind::Full, BackupKind::Diff]
        .into_iter()
        .enumerate()
    {
        insert_batch(c, "A", 1 + 1000 * i as u32, 1000);
        ids.push(s.pg.create(kind).await.unwrap().id);
    }
    let state = normalise(&c.dump("crm").unwrap());
    let now = OffsetDateTime::now_utc();
    let before = s.pg.list_at(now).await.unwrap();
    // The diff is daily+latest, its full is its base; the first full is due.
    assert_eq!(before[0].kept_for, Vec::<String>::new(), "{before:?}");
    assert_eq!(before[1].kept_for, ["base"]);
    assert!(before[2].kept_for.contains(&"latest".to_owned()));

    let expired = s.pg.prune(now).await.unwrap();
    assert_eq!(expired, [ids[0].clone()]);
    let after = s.pg.list_at(now).await.unwrap();
    assert_eq!(
        after.iter().map(|b| b.id.clone()).collect::<Vec<_>>(),
        ids[1..]
    );
    assert!(s.pg.verify().await.unwrap().iter().all(|r| r.ok));
    // Pruning again finds nothing due.
    assert!(s.pg.prune(now).await.unwrap().is_empty());

    let dir = c.scratch_dir("restore-pruned").unwrap().join("data");
    s.pg.restore(&dir, &RestoreTarget::Latest, Archiving::Off)
        .await
        .unwrap();
    let r = c.start_restored(&dir).unwrap();
    assert_eq!(normalise(&r.dump("crm").unwrap()), state);
}

/// Benchmark, not a test: RPO of PostgreSQL backups. `KLUIS_PG_ARCHIVE_TIMEOUT=1 cargo test -p
/// kluis-backup --test backup pg::bench_rpo -- --ignored --nocapture`. Autocommitted inserts
/// for 10 s under `archive_timeout`, then the server crashes (`-m immediate`, nothing more is
/// archived); a restore from the repository alone is compared with what was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn bench_rpo_after_crash() {
    let Some(s) = setup().await else { return };
    let c = &s.cluster;
    let timeout: u32 = std::env::var("KLUIS_PG_ARCHIVE_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    c.query("postgres", "CREATE DATABASE crm").unwrap();
    c.query(
        "crm",
        "CREATE TABLE writes (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())",
    )
    .unwrap();
    c.query(
        "postgres",
        &format!("ALTER SYSTEM SET archive_timeout = '{timeout}s'"),
    )
    .unwrap();
    c.query("postgres", "SELECT pg_reload_conf()").unwrap();
    s.pg.create(BackupKind::Full).await.unwrap();

    let url = format!(
        "postgres://{}@localhost/crm?host={}&port={}",
        c.superuser(),
        c.socket_dir().display(),
        c.port()
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let start = Instant::now();
    let mut acked = 0i32;
    while start.elapsed() < Duration::from_secs(10) {
        sqlx::query("INSERT INTO writes (id) VALUES ($1)")
            .bind(acked + 1)
            .execute(&pool)
            .await
            .unwrap();
        acked += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let crashed_at = server_now(c);
    pool.close().await;
    c.crash().unwrap();

    let dir = c.scratch_dir("restore-rpo").unwrap().join("data");
    s.pg.restore(&dir, &RestoreTarget::Latest, Archiving::Off)
        .await
        .unwrap();
    let r = c.start_restored(&dir).unwrap();
    let row = r
        .query(
            "crm",
            "SELECT coalesce(max(id), 0) || '|' || coalesce((extract(epoch FROM max(at)) * 1000000)::bigint, 0) FROM writes",
        )
        .unwrap();
    let (max_id, max_at) = row.split_once('|').unwrap();
    let max_id: i32 = max_id.parse().unwrap();
    let last_at =
        OffsetDateTime::from_unix_timestamp_nanos(max_at.parse::<i128>().unwrap() * 1000).unwrap();
    let missing = acked - max_id;
    eprintln!(
        "pg rpo: archive_timeout {timeout} s; {acked} writes acknowledged in 10 s ({:.0}/s); \
         {missing} missing after restore from the repository, covering the last {:.2} s before the crash",
        f64::from(acked) / 10.0,
        (crashed_at - last_at).as_seconds_f64()
    );
    assert!(
        missing >= 0,
        "the restore holds writes that were never acknowledged?"
    );
}
