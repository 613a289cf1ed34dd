//! Starts the throwaway cluster and checks the role/ownership setup that the
//! store's row-level-security tests rely on.

// Test code: a failed unwrap is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use kluis_testkit::{PgCluster, TestDatabase, pg_cluster};

/// Runs `sql` through psql with a TCP URL (password auth), as sqlx would connect.
fn psql_url(cluster: &PgCluster, url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new(cluster.psql_path())
        .args([
            "-X",
            "-w",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn check_database(cluster: &PgCluster, db: &TestDatabase) {
    let owner = cluster
        .superuser_query(
            "postgres",
            &format!(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{}'",
                db.name
            ),
        )
        .unwrap();
    assert_eq!(owner, "kluis_owner", "database {} owner", db.name);

    let schema_owner = cluster
        .superuser_query(
            &db.name,
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'",
        )
        .unwrap();
    assert_eq!(schema_owner, "kluis_owner");

    // Both URLs authenticate over TCP with SCRAM and land as the right role.
    assert_eq!(
        psql_url(cluster, &db.owner_url, "SELECT current_user").unwrap(),
        "kluis_owner"
    );
    assert_eq!(
        psql_url(cluster, &db.app_url, "SELECT current_user").unwrap(),
        "kluis_app"
    );

    // The owner can create tables; the app role cannot (CONNECT only).
    psql_url(cluster, &db.owner_url, "CREATE TABLE t (id int)").unwrap();
    let err = psql_url(cluster, &db.app_url, "CREATE TABLE u (id int)").unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    let err = psql_url(cluster, &db.app_url, "SELECT * FROM t").unwrap_err();
    assert!(err.contains("permission denied"), "{err}");

    // A wrong password is rejected (pg_hba really requires SCRAM on TCP).
    let bad = db.app_url.replacen("kluis_app:", "kluis_app:x", 1);
    assert!(psql_url(cluster, &bad, "SELECT 1").is_err());
}

#[test]
fn cluster_roles_and_databases() {
    let Some(cluster) = pg_cluster() else {
        return;
    };
    let a = cluster.create_database();
    let b = cluster.create_database();
    assert_ne!(a.name, b.name);
    assert!(a.owner_url.starts_with("postgres://kluis_owner:"));
    assert!(a.app_url.starts_with("postgres://kluis_app:"));

    let roles = cluster
        .superuser_query(
            "postgres",
            "SELECT rolname, rolsuper, rolbypassrls, rolinherit, rolcreatedb, rolcreaterole \
             FROM pg_roles WHERE rolname IN ('kluis_app', 'kluis_owner') ORDER BY rolname",
        )
        .unwrap();
    assert_eq!(roles, "kluis_app|f|f|f|f|f\nkluis_owner|f|f|t|f|f");

    check_database(cluster, &a);
    check_database(cluster, &b);

    // The superuser is not reachable over TCP without a password.
    let su = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port());
    assert!(psql_url(cluster, &su, "SELECT 1").is_err());
}

#[test]
fn cluster_is_shared_within_the_process() {
    let (Some(a), Some(b)) = (pg_cluster(), pg_cluster()) else {
        return;
    };
    assert!(std::ptr::eq(a, b));
    let db = a.create_database();
    assert!(db.name.starts_with("kluis_t"));
}

#[test]
fn databases_can_be_created_concurrently() {
    let Some(cluster) = pg_cluster() else {
        return;
    };
    // Test binaries create databases from many threads at once.
    let names: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| cluster.create_database().name))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
}
