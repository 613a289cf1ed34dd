//! Backups end to end with the real binary: a server ships its WAL into a repository while
//! the API writes; `kluis backup create`, `verify`, a shredded tenant; then a restore into a
//! new data directory, a server started on it, and the data read back over the API.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Auth, Backend, Server, tenant_fixture};

async fn add_contact(s: &Server, auth: &Auth, first: &str) {
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            auth,
            json!({"fields": {"first_name": first, "last_name": "Backup", "email": format!("{first}@example.nl")}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

async fn contact_names(s: &Server, auth: &Auth) -> Vec<String> {
    let (st, v) = s.get("/api/v1/contacts?limit=200", auth).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let mut names: Vec<String> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fields"]["first_name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn time_now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%NZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A fresh installation directory (a server started once for its certificate, then stopped
/// and emptied of database and keys), restored from `repo`.
async fn restored_server(repo: &str, kek: &str, at: Option<&str>) -> (Server, Value) {
    let mut s = Server::start(Backend::Sqlite).await;
    s.stop();
    for name in ["kluis.db", "kluis.db-wal", "kluis.db-shm"] {
        let _ = std::fs::remove_file(s.dir.path().join(name));
    }
    std::fs::remove_dir_all(s.dir.path().join("keys")).unwrap();
    let mut args = vec![
        "backup",
        "restore",
        "--repo",
        repo,
        "--kek-file",
        kek,
        "--json",
    ];
    if let Some(at) = at {
        args.extend(["--at", at]);
    }
    let (ok, out, err) = s.cli_raw(&args, None);
    assert!(ok, "restore failed: {err}\n{out}");
    (s, serde_json::from_str(&out).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_into_a_new_data_dir_and_serve_it() {
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path().join("repo").display().to_string();
    let mut a = Server::start_with(
        Backend::Sqlite,
        &[
            ("KLUIS_BACKUP_REPO", &repo),
            ("KLUIS_BACKUP_DRILL_INTERVAL_HOURS", "0"),
        ],
    )
    .await;
    let acme = tenant_fixture(&a, "acme").await;
    let gone = tenant_fixture(&a, "gone").await;
    for n in ["anna", "bram", "cees"] {
        add_contact(&a, &acme.key, n).await;
    }
    add_contact(&a, &gone.key, "geheim").await;

    // An explicit backup while the server runs, then more writes (only in shipped WAL).
    let created: Value =
        serde_json::from_str(&a.cli(&["backup", "create", "--json"], None)).unwrap();
    assert_eq!(created["engine"], "sqlite");
    for n in ["dirk", "eva"] {
        add_contact(&a, &acme.key, n).await;
    }
    let expected = contact_names(&a, &acme.key).await;
    // A moment before the shred, once everything so far is shipped.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before_shred = time_now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Shredding reaches the key ledger.
    a.cli(
        &["tenant", "shred", "--tenant", "gone", "--confirm", "gone"],
        None,
    );
    assert_eq!(expected, vec!["anna", "bram", "cees", "dirk", "eva"]);
    // Shipped within the second; leave it three.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let verified = a.cli(&["backup", "verify"], None);
    assert!(verified.contains("ok "), "{verified}");
    let listed: Value = serde_json::from_str(&a.cli(&["backup", "list", "--json"], None)).unwrap();
    assert!(listed.as_array().unwrap().len() >= 2, "{listed}");
    // The server's own generation (started at start-up) ships continuously.
    assert!(a.logs().contains("new snapshot stored"), "{}", a.logs());
    let ops = a.platform_key();
    let (st, status) = a.get("/api/v1/platform/backups", &ops).await;
    assert_eq!(st, StatusCode::OK, "{status}");
    assert_eq!(status["configured"], true, "{status}");
    assert!(
        status["last_backup_age_secs"].as_i64().unwrap() <= 5,
        "{status}"
    );
    assert_eq!(status["alerts"], json!([]), "{status}");
    let (st, _) = a.get("/api/v1/platform/backups", &acme.key).await;
    assert!(
        st == StatusCode::UNAUTHORIZED || st == StatusCode::FORBIDDEN,
        "{st}"
    );
    a.stop();

    // A new installation directory: restore into it (KEK from the old one), then serve it.
    let kek = a.dir.path().join("keys/kek.key").display().to_string();
    let (mut b, report) = restored_server(&repo, &kek, None).await;
    assert_eq!(report["audit_ok"], true, "{report}");
    let audit = report["audit"].to_string();
    assert!(audit.contains("ok      platform"), "{audit}");
    assert!(audit.contains("ok      acme"), "{audit}");
    assert!(audit.contains("unreadable gone"), "{audit}");
    b.spawn().await;
    assert_eq!(contact_names(&b, &acme.key).await, expected);
    // The restored database is what its audit log says: records and users match the state
    // digests their events carry (issue 26).
    let state = b.cli(&["audit", "verify", "--tenant", "acme", "--state"], None);
    assert!(
        state.contains("ok      acme: state of 5 records"),
        "{state}"
    );
    // The shredded tenant stays unreadable: its key was never restored.
    let (st, v) = b.get("/api/v1/contacts", &gone.key).await;
    assert_ne!(st, StatusCode::OK, "{v}");
    assert!(
        !b.dir
            .path()
            .join(format!("keys/tenants/{}.key", gone.id))
            .exists()
    );
    b.stop();

    // Restoring the moment before the shred: the tenant is in that database, but its key
    // is not in the ledger any more; the restore shreds it again and it stays unreadable.
    let (mut c, report) = restored_server(&repo, &kek, Some(&before_shred)).await;
    assert_eq!(report["tenants_reshredded"], json!([gone.id]), "{report}");
    assert!(
        report["audit"].to_string().contains("unreadable gone"),
        "{report}"
    );
    c.spawn().await;
    assert_eq!(contact_names(&c, &acme.key).await, expected);
    let (st, v) = c.get("/api/v1/contacts", &gone.key).await;
    assert_ne!(st, StatusCode::OK, "{v}");
    c.stop();

    // A drill on the original installation passes and is recorded.
    let (ok, out, err) = a.cli_raw(&["backup", "drill", "--json"], None);
    assert!(ok, "drill failed: {err}\n{out}");
    let drill: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(drill["ok"], true, "{drill}");
}
