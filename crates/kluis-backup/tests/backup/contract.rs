//! The repository contract (src/repo.rs), exercised against any `Repo`: every kind of
//! repository must pass [`repo_contract`]. Spelled out, beyond the doc comment of repo.rs:
//! - bad names (empty, absolute, `..`/`.` segments, empty segments, characters outside
//!   `[A-Za-z0-9._-]`) give `BadName` from every method; `list` of a bad prefix gives `BadName`
//!   or nothing;
//! - `get`/`delete` of a missing name give `NotFound`;
//! - `put_locked` of an existing name gives `Exists`; `put_mutable` over a locked object gives
//!   `Retained` or `Exists`; neither changes the bytes; `put_locked` with a date in the past is
//!   refused and writes nothing (S3), or writes an object that can be deleted at once (local);
//! - `delete` before the retention date gives `Retained` with that date (to the second), and
//!   succeeds after it;
//! - `list(prefix)` matches names by string prefix (`many/obj-01` finds `obj-010`..`obj-019`),
//!   returns them sorted, with sizes, and `retain_until` for locked objects only.

use std::time::Duration;

use kluis_backup::{Repo, RepoError};
use time::OffsetDateTime;

/// Objects written to show that listing spans several pages (the S3 test opens its repository
/// with a page size of 10).
pub const MANY: usize = 25;

/// Runs the whole contract under a fresh name prefix, so one repository can host several runs.
pub async fn repo_contract(repo: &Repo) {
    let run = format!("contract-{}", uuid::Uuid::new_v4().simple());
    names_are_validated(repo, &run).await;
    missing_objects(repo, &run).await;
    locked_objects_stay(repo, &run).await;
    mutable_objects_change(repo, &run).await;
    listing(repo, &run).await;
    retention_ends(repo, &run).await;
}

fn hour_from_now() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::hours(1)
}

async fn names_are_validated(repo: &Repo, run: &str) {
    let bad = [
        String::new(),
        "/abs".into(),
        format!("{run}/"),
        format!("{run}//x"),
        format!("{run}/../x"),
        "../escape".into(),
        format!("{run}/./x"),
        format!("{run}/sp ace"),
        format!("{run}/q?x"),
        format!("{run}/pct%2e"),
        format!("{run}/back\\slash"),
        format!("{run}/ünï"),
    ];
    for name in &bad {
        let put = repo.put_locked(name, b"x".to_vec(), hour_from_now()).await;
        assert!(
            matches!(put, Err(RepoError::BadName(_))),
            "put_locked {name:?}: {put:?}"
        );
        let put = repo.put_mutable(name, b"x".to_vec()).await;
        assert!(
            matches!(put, Err(RepoError::BadName(_))),
            "put_mutable {name:?}: {put:?}"
        );
        let get = repo.get(name).await;
        assert!(
            matches!(get, Err(RepoError::BadName(_))),
            "get {name:?}: {get:?}"
        );
        let del = repo.delete(name).await;
        assert!(
            matches!(del, Err(RepoError::BadName(_))),
            "delete {name:?}: {del:?}"
        );
    }
    // A bad listing prefix can match no name: refused (S3) or an empty listing (local).
    for prefix in ["../", "/", "a//", "x y"] {
        let l = repo.list(prefix).await;
        assert!(
            matches!(&l, Err(RepoError::BadName(_))) || l.as_ref().is_ok_and(|v| v.is_empty()),
            "list {prefix:?}: {l:?}"
        );
    }
    // None of them left anything behind.
    assert_eq!(repo.list(run).await.map(|l| l.len()).ok(), Some(0));
}

async fn missing_objects(repo: &Repo, run: &str) {
    let name = format!("{run}/missing/nothing.seg");
    assert!(matches!(repo.get(&name).await, Err(RepoError::NotFound(n)) if n == name));
    assert!(matches!(
        repo.delete(&name).await,
        Err(RepoError::NotFound(_))
    ));
    assert_eq!(
        repo.list(&format!("{run}/missing/"))
            .await
            .map(|l| l.len())
            .ok(),
        Some(0)
    );
}

async fn locked_objects_stay(repo: &Repo, run: &str) {
    let name = format!("{run}/locked/000001.seg");
    let until = hour_from_now();
    let first = b"first version of a locked object".to_vec();
    repo.put_locked(&name, first.clone(), until)
        .await
        .unwrap_or_else(|e| panic!("put_locked {name}: {e}"));
    repo.flush().await.unwrap_or_else(|e| panic!("flush: {e}"));
    assert_eq!(repo.get(&name).await.ok().as_deref(), Some(&first[..]));

    // Create-only: the same name again is refused, locked or not.
    let again = repo.put_locked(&name, b"evil".to_vec(), until).await;
    assert!(
        matches!(again, Err(RepoError::Exists(ref n)) if *n == name),
        "{again:?}"
    );
    let over = repo.put_mutable(&name, b"evil".to_vec()).await;
    assert!(
        matches!(over, Err(RepoError::Retained { .. } | RepoError::Exists(_))),
        "put_mutable over a locked object: {over:?}"
    );

    // Not deletable before its retention ends; the error says until when.
    match repo.delete(&name).await {
        Err(RepoError::Retained { name: n, until: u }) => {
            assert_eq!(n, name);
            assert!(
                (u - until).abs() <= time::Duration::seconds(1),
                "retained until {u}, asked {until}"
            );
        }
        other => panic!("delete of a locked object: {other:?}"),
    }
    assert_eq!(
        repo.get(&name).await.ok().as_deref(),
        Some(&first[..]),
        "the locked object changed"
    );

    // A retention date in the past is no retention: refused (S3 itself refuses it), or taken
    // as already expired (local, where tests write with a synthetic clock): never a lock.
    let past_name = format!("{run}/locked/past.seg");
    let past = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    match repo.put_locked(&past_name, b"x".to_vec(), past).await {
        Err(RepoError::BadName(_) | RepoError::Exists(_) | RepoError::NotFound(_)) => {
            panic!("put_locked with a past date: wrong error")
        }
        Err(_) => assert!(matches!(
            repo.get(&past_name).await,
            Err(RepoError::NotFound(_))
        )),
        Ok(()) => repo
            .delete(&past_name)
            .await
            .unwrap_or_else(|e| panic!("an object whose retention is over must go: {e}")),
    }
}

async fn mutable_objects_change(repo: &Repo, run: &str) {
    let name = format!("{run}/ledger/tenant-1.key");
    repo.put_mutable(&name, b"v1".to_vec())
        .await
        .unwrap_or_else(|e| panic!("put_mutable {name}: {e}"));
    assert_eq!(repo.get(&name).await.ok().as_deref(), Some(&b"v1"[..]));
    repo.put_mutable(&name, b"v2, longer".to_vec())
        .await
        .unwrap_or_else(|e| panic!("replacing {name}: {e}"));
    assert_eq!(
        repo.get(&name).await.ok().as_deref(),
        Some(&b"v2, longer"[..])
    );
    let listed = repo
        .list(&format!("{run}/ledger/"))
        .await
        .unwrap_or_default();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].size, 10);
    assert_eq!(listed[0].retain_until, None);
    repo.delete(&name)
        .await
        .unwrap_or_else(|e| panic!("deleting {name}: {e}"));
    assert!(matches!(repo.get(&name).await, Err(RepoError::NotFound(_))));
    assert!(matches!(
        repo.delete(&name).await,
        Err(RepoError::NotFound(_))
    ));
    // A deleted name can be written again.
    repo.put_mutable(&name, b"v3".to_vec())
        .await
        .unwrap_or_else(|e| panic!("rewriting {name}: {e}"));
    assert_eq!(repo.get(&name).await.ok().as_deref(), Some(&b"v3"[..]));
}

async fn listing(repo: &Repo, run: &str) {
    let dir = format!("{run}/many");
    for i in 0..MANY {
        repo.put_mutable(&format!("{dir}/obj-{i:03}"), vec![b'x'; i])
            .await
            .unwrap_or_else(|e| panic!("put {i}: {e}"));
    }
    let until = hour_from_now();
    repo.put_locked(&format!("{dir}/z-locked"), b"locked".to_vec(), until)
        .await
        .unwrap_or_else(|e| panic!("put_locked: {e}"));

    let all = repo
        .list(&format!("{dir}/"))
        .await
        .unwrap_or_else(|e| panic!("list: {e}"));
    let mut want: Vec<String> = (0..MANY).map(|i| format!("{dir}/obj-{i:03}")).collect();
    want.push(format!("{dir}/z-locked"));
    assert_eq!(all.iter().map(|o| o.name.clone()).collect::<Vec<_>>(), want);
    for (i, o) in all.iter().take(MANY).enumerate() {
        assert_eq!(o.size, i as u64, "{o:?}");
        assert_eq!(o.retain_until, None, "{o:?}");
    }
    let locked = &all[MANY];
    assert_eq!(locked.size, 6);
    let r = locked.retain_until.unwrap_or(OffsetDateTime::UNIX_EPOCH);
    assert!(
        r >= until - time::Duration::seconds(1) && r <= until + time::Duration::seconds(1),
        "retain_until {r} vs {until}"
    );

    // A prefix that ends mid-segment.
    let some = repo
        .list(&format!("{dir}/obj-01"))
        .await
        .unwrap_or_default();
    assert_eq!(some.len(), 10, "{some:?}");
    // The whole run, the locked objects of the other steps included.
    let run_all = repo.list(&format!("{run}/")).await.unwrap_or_default();
    assert!(run_all.len() > MANY + 2, "{}", run_all.len());
    assert!(
        run_all.windows(2).all(|w| w[0].name < w[1].name),
        "not sorted"
    );
}

async fn retention_ends(repo: &Repo, run: &str) {
    let name = format!("{run}/short/000001.seg");
    let until = OffsetDateTime::now_utc() + time::Duration::seconds(3);
    repo.put_locked(&name, b"short-lived".to_vec(), until)
        .await
        .unwrap_or_else(|e| panic!("put_locked {name}: {e}"));
    assert!(matches!(
        repo.delete(&name).await,
        Err(RepoError::Retained { .. })
    ));
    // Past the date (rounded up to whole seconds, plus slack) the object may go.
    let wait = (until - OffsetDateTime::now_utc())
        .whole_milliseconds()
        .max(0) as u64
        + 2500;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    repo.delete(&name)
        .await
        .unwrap_or_else(|e| panic!("delete after retention: {e}"));
    assert!(matches!(repo.get(&name).await, Err(RepoError::NotFound(_))));
    assert!(
        repo.list(&format!("{run}/short/"))
            .await
            .is_ok_and(|l| l.is_empty())
    );
}
