//! SQLite snapshots + WAL shipping: point-in-time restore reproduces the exact state; verify
//! and restore catch changed, missing and reordered objects and a wrong KEK; a backup killed
//! half-way leaves the previous one restorable.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kluis_backup::sqlite::{self, Shipper, ShipperConfig};
use kluis_backup::{BackupError, Backups, RetentionPolicy};
use kluis_crypto::checkpoint::CheckpointSigner;
use kluis_crypto::envelope::{Kek, Kms, LocalKms};
use rusqlite::Connection;
use time::OffsetDateTime;

struct Fixture {
    dir: tempfile::TempDir,
    db: PathBuf,
    app: Connection,
    b: Backups,
}

/// The application's connection, opened as the store opens it with shipping on.
fn app_conn(db: &Path) -> Connection {
    let c = Connection::open(db).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

async fn backups_at(repo: &Path, kms: Arc<dyn Kms>, signer: Arc<CheckpointSigner>) -> Backups {
    Backups::open(repo.to_str().unwrap(), kms, Some(signer), true)
        .await
        .unwrap()
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kluis.db");
    let app = app_conn(&db);
    app.execute_batch(
        "CREATE TABLE contacts(id INTEGER PRIMARY KEY, name TEXT NOT NULL, blob BLOB);
         CREATE INDEX contacts_name ON contacts(name);
         CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);",
    )
    .unwrap();
    let kms: Arc<dyn Kms> = Arc::new(LocalKms::create_or_load(dir.path().join("kek.key")).unwrap());
    let signer = Arc::new(CheckpointSigner::generate("kluis-audit").unwrap());
    let b = backups_at(&dir.path().join("repo"), kms, signer).await;
    Fixture { dir, db, app, b }
}

/// Every row of every table, in rowid order, plus the schema: a full export to compare.
fn dump(db: &Path) -> Vec<String> {
    let c = Connection::open(db).unwrap();
    let mut out = Vec::new();
    let tables: Vec<(String, String)> = c
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type IN ('table','index') ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (name, sql) in &tables {
        out.push(format!("schema {name}: {sql}"));
        if !sql.starts_with("CREATE TABLE") {
            continue;
        }
        let mut st = c
            .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY rowid"))
            .unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let mut s = String::new();
                for i in 0..n {
                    s.push_str(&format!("{:?}|", r.get_ref(i)?));
                }
                Ok(s)
            })
            .unwrap();
        for row in rows {
            out.push(format!("{name}: {}", row.unwrap()));
        }
    }
    out
}

fn write_batch(app: &Connection, tag: &str, n: usize, big: usize) {
    let tx = app.unchecked_transaction().unwrap();
    for i in 0..n {
        let blob: Vec<u8> = (0..big).map(|j| (i * 31 + j * 7) as u8).collect();
        tx.execute(
            "INSERT INTO contacts(name, blob) VALUES (?1, ?2)",
            rusqlite::params![format!("{tag}-{i}"), blob],
        )
        .unwrap();
    }
    tx.execute(
        "UPDATE contacts SET name = name || '*' WHERE id % 7 = 0",
        [],
    )
    .unwrap();
    tx.execute("DELETE FROM contacts WHERE id % 11 = 0", [])
        .unwrap();
    tx.execute("INSERT INTO notes(body) VALUES (?1)", [tag])
        .unwrap();
    tx.commit().unwrap();
}

async fn restore_dump(
    b: &Backups,
    at: Option<OffsetDateTime>,
    dir: &Path,
    name: &str,
) -> Vec<String> {
    let target = dir.join(name);
    sqlite::restore(b, at, &target).await.unwrap();
    dump(&target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_a_moment_reproduces_exactly_the_state_then() {
    let f = fixture().await;
    let cfg = ShipperConfig {
        // Small, so the test crosses several checkpoints and WAL restarts.
        checkpoint_bytes: 256 << 10,
        manifest_every: Duration::ZERO,
        ..ShipperConfig::default()
    };
    let mut s = Shipper::open(f.b.clone(), &f.db, cfg).unwrap();
    write_batch(&f.app, "before", 50, 300);
    let first = s.tick().await.unwrap();
    let generation = first.new_generation.clone().unwrap();
    let mut points = Vec::new();
    let mut checkpoints = 0;
    for round in 0..8 {
        write_batch(
            &f.app,
            &format!("r{round}"),
            40 + round * 10,
            500 + round * 100,
        );
        if round % 3 == 0 {
            // Several commits in one tick.
            write_batch(&f.app, &format!("r{round}b"), 5, 50);
        }
        let t = s.tick().await.unwrap();
        assert_eq!(t.new_generation, None, "continuity lost in round {round}");
        assert!(t.frames > 0);
        checkpoints += usize::from(t.checkpointed);
        // Shipped: note T, then wait so the next change is stamped after T.
        let at = OffsetDateTime::now_utc();
        points.push((at, dump(&f.db)));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(checkpoints >= 2, "only {checkpoints} checkpoints");
    assert_eq!(s.generation(), Some(generation.as_str()));
    write_batch(&f.app, "after", 10, 10);
    s.tick().await.unwrap();
    let latest = dump(&f.db);

    let out = tempfile::tempdir().unwrap();
    for (i, (at, expected)) in points.iter().enumerate() {
        let got = restore_dump(&f.b, Some(*at), out.path(), &format!("at{i}.db")).await;
        assert_eq!(&got, expected, "state at point {i} differs");
        assert_ne!(&got, &latest);
    }
    assert_eq!(
        restore_dump(&f.b, None, out.path(), "latest.db").await,
        latest
    );
    // The generation (open: its tail not yet in a manifest) verifies.
    let r = sqlite::verify(&f.b, &generation).await.unwrap();
    assert!(r.ok, "{:?}", r.problems);
    s.close().await.unwrap();
    let r = sqlite::verify(&f.b, &generation).await.unwrap();
    assert!(r.ok, "{:?}", r.problems);
    drop(f.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_by_someone_else_starts_a_new_generation() {
    let f = fixture().await;
    let mut s = Shipper::open(f.b.clone(), &f.db, ShipperConfig::default()).unwrap();
    write_batch(&f.app, "a", 30, 100);
    let g1 = s.tick().await.unwrap().new_generation.unwrap();
    write_batch(&f.app, "b", 30, 100);
    s.tick().await.unwrap();
    // An outside checkpoint + restart: the shipper cannot prove nothing was missed.
    f.app
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    write_batch(&f.app, "c", 30, 100);
    let t = s.tick().await.unwrap();
    let g2 = t.new_generation.expect("a new generation");
    assert_ne!(g1, g2);
    write_batch(&f.app, "d", 30, 100);
    s.tick().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(
        restore_dump(&f.b, None, out.path(), "x.db").await,
        dump(&f.db)
    );
    for g in [g1, g2] {
        let r = sqlite::verify(&f.b, &g).await.unwrap();
        assert!(r.ok, "{g}: {:?}", r.problems);
    }
}

/// A closed generation with a snapshot of several chunks and several segments, and a copy of
/// the repository per tampering case.
async fn tamper_fixture() -> (Fixture, String) {
    let f = fixture().await;
    write_batch(&f.app, "base", 2000, 3000); // ~6 MB: two snapshot chunks
    let cfg = ShipperConfig {
        manifest_every: Duration::ZERO,
        ..ShipperConfig::default()
    };
    let mut s = Shipper::open(f.b.clone(), &f.db, cfg).unwrap();
    let g = s.tick().await.unwrap().new_generation.unwrap();
    for i in 0..3 {
        write_batch(&f.app, &format!("seg{i}"), 20, 100);
        s.tick().await.unwrap();
    }
    s.close().await.unwrap();
    (f, g)
}

fn copy_repo(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn writable(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_missing_and_reordered_objects_are_detected_and_refused() {
    let (f, g) = tamper_fixture().await;
    let r = sqlite::verify(&f.b, &g).await.unwrap();
    assert!(r.ok, "{:?}", r.problems);
    assert!(r.objects_checked >= 8, "{r:?}");
    let kms = f.b.kms.clone();
    let signer = f.b.signer.clone().unwrap();
    let seg = |dir: &Path, i: usize| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v[i].clone()
    };
    type Tamper = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, &str, Tamper)> = vec![
        (
            "changed segment",
            "changed",
            Box::new(move |d: &Path| {
                let p = seg(d, 1);
                writable(&p);
                let mut bytes = std::fs::read(&p).unwrap();
                let mid = bytes.len() / 2;
                bytes[mid] ^= 1;
                std::fs::write(&p, bytes).unwrap();
            }),
        ),
        (
            "missing snapshot chunk",
            "missing",
            Box::new(|d: &Path| std::fs::remove_file(d.join("snap/000001")).unwrap()),
        ),
        (
            "missing segment",
            "missing",
            Box::new(move |d: &Path| std::fs::remove_file(seg(d, 1)).unwrap()),
        ),
        (
            "reordered segments",
            "changed",
            Box::new(move |d: &Path| {
                let (a, b) = (seg(d, 0), seg(d, 1));
                let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
                writable(&a);
                writable(&b);
                std::fs::write(&a, bb).unwrap();
                std::fs::write(&b, ba).unwrap();
            }),
        ),
        (
            "reordered manifest parts",
            "manifest",
            Box::new(|d: &Path| {
                let (a, b) = (d.join("manifest/00000001"), d.join("manifest/00000002"));
                let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
                writable(&a);
                writable(&b);
                std::fs::write(&a, bb).unwrap();
                std::fs::write(&b, ba).unwrap();
            }),
        ),
        (
            "extra object",
            "not in any manifest",
            Box::new(|d: &Path| std::fs::write(d.join("snap/000009"), b"planted").unwrap()),
        ),
    ];
    for (what, expect, tamper) in cases {
        let copy = tempfile::tempdir().unwrap();
        let repo = copy.path().join("repo");
        copy_repo(&f.dir.path().join("repo"), &repo);
        tamper(&repo.join("objects/sqlite").join(&g));
        let b = backups_at(&repo, kms.clone(), signer.clone()).await;
        let r = sqlite::verify(&b, &g).await.unwrap();
        assert!(!r.ok, "{what}: verify passed");
        assert!(
            r.problems.iter().any(|p| p.contains(expect)),
            "{what}: {:?}",
            r.problems
        );
        let target = copy.path().join("restored.db");
        match sqlite::restore(&b, None, &target).await {
            Err(BackupError::Invalid(_)) => {}
            other => panic!("{what}: restore not refused: {other:?}"),
        }
        assert!(!target.exists(), "{what}: a database was written");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_kek_is_refused() {
    let (f, g) = tamper_fixture().await;
    let other: Arc<dyn Kms> = Arc::new(LocalKms::new(Kek::generate().unwrap()));
    let b = Backups {
        kms: other,
        ..f.b.clone()
    };
    let e = sqlite::verify(&b, &g).await.unwrap_err();
    assert!(e.to_string().contains("key-encryption key"), "{e}");
    let target = f.dir.path().join("r.db");
    let e = sqlite::restore(&b, None, &target).await.unwrap_err();
    assert!(e.to_string().contains("key-encryption key"), "{e}");
    assert!(!target.exists());
    // A manifest signed by another key is refused when the installation's key is required.
    let b = Backups {
        trusted: Some(
            CheckpointSigner::generate("kluis-audit")
                .unwrap()
                .verifier(),
        ),
        ..f.b.clone()
    };
    let r = sqlite::verify(&b, &g).await.unwrap();
    assert!(
        !r.ok && r.problems.iter().any(|p| p.contains("another key")),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_only_what_is_due() {
    let f = fixture().await;
    // Locks that expire at once, so what is due can really go.
    let b = Backups {
        policy: RetentionPolicy {
            daily: 0,
            pitr_days: 0,
            monthly: 0,
            yearly: 0,
        },
        ..f.b.clone()
    };
    write_batch(&f.app, "a", 10, 10);
    let g1 = sqlite::create_snapshot(&b, &f.db).await.unwrap();
    write_batch(&f.app, "b", 10, 10);
    let g2 = sqlite::create_snapshot(&b, &f.db).await.unwrap();
    let out = sqlite::prune(&b, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(out.deleted, vec![g1.clone()]);
    let left: Vec<String> = sqlite::generations(&b)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(left, vec![g2.clone()]);
    tokio::time::sleep(Duration::from_millis(5)).await;
    // A backup taken under the default policy is locked for (at least) 30 days. Even a
    // prune whose clock says its lock is over (400 days on) cannot delete it: the
    // repository checks the real time.
    write_batch(&f.app, "c", 10, 10);
    let g3 = sqlite::create_snapshot(&f.b, &f.db).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    write_batch(&f.app, "d", 10, 10);
    let g4 = sqlite::create_snapshot(&b, &f.db).await.unwrap();
    let later = OffsetDateTime::now_utc() + time::Duration::days(400);
    let out = sqlite::prune(&b, later).await.unwrap();
    assert_eq!(out.refused, vec![g3.clone()], "{out:?}");
    assert_eq!(out.deleted, vec![g2], "{out:?}");
    for g in [g3, g4] {
        let r = sqlite::verify(&f.b, &g).await.unwrap();
        assert!(r.ok, "{g}: {:?}", r.problems);
    }
}

const CHILD_ENV: &str = "KLUIS_BACKUP_TEST_CHILD_DIR";

/// Run by `a_backup_killed_half_way_leaves_the_previous_one_restorable` in a child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_takes_a_backup() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // only meaningful as the child
    };
    let dir = PathBuf::from(dir);
    let kms: Arc<dyn Kms> = Arc::new(LocalKms::load(dir.join("kek.key")).unwrap());
    let seed: [u8; 32] = std::fs::read(dir.join("seed")).unwrap().try_into().unwrap();
    let signer = Arc::new(CheckpointSigner::from_bytes("kluis-audit", &seed).unwrap());
    let b = backups_at(&dir.join("repo"), kms, signer).await;
    sqlite::create_snapshot(&b, &dir.join("kluis.db"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_half_way_leaves_the_previous_one_restorable() {
    let f = fixture().await;
    for i in 0..8 {
        write_batch(&f.app, &format!("bulk{i}"), 2000, 4000); // ~64 MB: 16 chunks
    }
    let g1 = sqlite::create_snapshot(&f.b, &f.db).await.unwrap();
    let state1 = dump(&f.db);
    write_batch(&f.app, "later", 10, 10);
    let seed = f.b.signer.as_ref().unwrap().to_bytes();
    std::fs::write(f.dir.path().join("seed"), seed.as_slice()).unwrap();

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sqlite::child_takes_a_backup", "--nocapture"])
        .env(CHILD_ENV, f.dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill -9 once the child has stored part of its snapshot.
    let snap_dir = f.dir.path().join("repo/objects/sqlite");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let killed_mid_way = loop {
        let partial = std::fs::read_dir(&snap_dir).unwrap().any(|e| {
            let p = e.unwrap().path();
            !p.ends_with(&g1) && p.join("snap/000002").exists()
        });
        if partial {
            child.kill().unwrap(); // SIGKILL
            break true;
        }
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    child.wait().unwrap();
    assert!(
        killed_mid_way,
        "the child finished before it could be killed"
    );
    let gens = sqlite::generations(&f.b).await.unwrap();
    assert_eq!(gens.len(), 2);
    let partial = gens.iter().find(|g| g.id != g1).unwrap();
    assert!(!partial.complete, "the killed backup looks complete");
    // The previous backup restores, exactly.
    let out = tempfile::tempdir().unwrap();
    assert_eq!(restore_dump(&f.b, None, out.path(), "r.db").await, state1);
    // The next run completes.
    let g3 = sqlite::create_snapshot(&f.b, &f.db).await.unwrap();
    let r = sqlite::verify(&f.b, &g3).await.unwrap();
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!(
        restore_dump(&f.b, None, out.path(), "r3.db").await,
        dump(&f.db)
    );
    let listed = sqlite::list(&f.b, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(listed.iter().filter(|s| s.kind == "incomplete").count(), 1);
}
