//! The local repository keeps the contract: write once, refuse early deletes, mutable ledger.

use std::os::unix::fs::PermissionsExt;

use kluis_backup::{Repo, RepoError};
use time::{Duration, OffsetDateTime};

async fn repo() -> (tempfile::TempDir, Repo) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open(dir.path().join("repo").to_str().unwrap())
        .await
        .unwrap();
    (dir, repo)
}

#[tokio::test]
async fn locked_objects_are_write_once_and_kept_until_their_retention() {
    let (dir, repo) = repo().await;
    let until = OffsetDateTime::now_utc() + Duration::days(1);
    repo.put_locked("g/a/1", b"one".to_vec(), until)
        .await
        .unwrap();
    assert_eq!(repo.get("g/a/1").await.unwrap(), b"one");
    // No overwrite, no delete before retention ends.
    assert!(matches!(
        repo.put_locked("g/a/1", b"two".to_vec(), until).await,
        Err(RepoError::Exists(_))
    ));
    assert!(matches!(
        repo.put_mutable("g/a/1", b"two".to_vec()).await,
        Err(RepoError::Exists(_))
    ));
    match repo.delete("g/a/1").await {
        Err(RepoError::Retained { until: u, .. }) => {
            assert_eq!(u.unix_timestamp(), until.unix_timestamp())
        }
        other => panic!("expected Retained, got {other:?}"),
    }
    assert_eq!(repo.get("g/a/1").await.unwrap(), b"one");
    // Read-only on disk.
    let mode = std::fs::metadata(dir.path().join("repo/objects/g/a/1"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o444);
    // Listing reports size and retention.
    let l = repo.list("g/").await.unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].name, "g/a/1");
    assert_eq!(l[0].size, 3);
    assert_eq!(
        l[0].retain_until.map(|t| t.unix_timestamp()),
        Some(until.unix_timestamp())
    );
    // Once retention has passed, delete works.
    let past = OffsetDateTime::now_utc() - Duration::seconds(1);
    repo.put_locked("g/old", b"x".to_vec(), past).await.unwrap();
    repo.delete("g/old").await.unwrap();
    assert!(matches!(
        repo.get("g/old").await,
        Err(RepoError::NotFound(_))
    ));
}

#[tokio::test]
async fn mutable_objects_can_be_replaced_and_deleted() {
    let (_dir, repo) = repo().await;
    repo.put_mutable("ledger/t.key", b"k1".to_vec())
        .await
        .unwrap();
    repo.put_mutable("ledger/t.key", b"k2".to_vec())
        .await
        .unwrap();
    assert_eq!(repo.get("ledger/t.key").await.unwrap(), b"k2");
    let l = repo.list("ledger/").await.unwrap();
    assert_eq!(l[0].retain_until, None);
    repo.delete("ledger/t.key").await.unwrap();
    assert!(matches!(
        repo.delete("ledger/t.key").await,
        Err(RepoError::NotFound(_))
    ));
}

#[tokio::test]
async fn names_outside_the_contract_are_refused() {
    let (_dir, repo) = repo().await;
    for bad in [
        "", "/abs", "a//b", "a/../b", "..", "a/./b", "sp ace", "a\\b", "é",
    ] {
        assert!(
            matches!(
                repo.put_mutable(bad, b"x".to_vec()).await,
                Err(RepoError::BadName(_))
            ),
            "{bad:?} accepted"
        );
    }
}

#[tokio::test]
async fn ledger_forgets_shredded_tenants_and_restore_never_recreates_them() {
    let (dir, repo) = repo().await;
    let keys = dir.path().join("tenants");
    std::fs::create_dir(&keys).unwrap();
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    std::fs::write(keys.join(format!("{a}.key")), b"wrapped-a").unwrap();
    std::fs::write(keys.join(format!("{b}.key")), b"wrapped-b").unwrap();
    let s = kluis_backup::ledger::sync(&repo, &keys).await.unwrap();
    assert_eq!(s.copied.len(), 2);
    // Shred b: its key file goes, a tombstone marks it.
    std::fs::remove_file(keys.join(format!("{b}.key"))).unwrap();
    kluis_backup::ledger::tombstone(&keys, &b.to_string()).unwrap();
    let s = kluis_backup::ledger::sync(&repo, &keys).await.unwrap();
    assert_eq!(s.forgotten, vec![b.to_string()]);
    // A key that is merely missing locally is NOT forgotten.
    std::fs::remove_file(keys.join(format!("{a}.key"))).unwrap();
    let s = kluis_backup::ledger::sync(&repo, &keys).await.unwrap();
    assert!(s.forgotten.is_empty());
    // Restore into a fresh directory: a comes back, b does not.
    let fresh = dir.path().join("restored-tenants");
    let written = kluis_backup::ledger::restore_keys(&repo, &fresh)
        .await
        .unwrap();
    assert_eq!(written, vec![a.to_string()]);
    assert_eq!(
        std::fs::read(fresh.join(format!("{a}.key"))).unwrap(),
        b"wrapped-a"
    );
    assert!(!fresh.join(format!("{b}.key")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_repository_keeps_the_contract() {
    let (_dir, repo) = repo().await;
    crate::contract::repo_contract(&repo).await;
}
