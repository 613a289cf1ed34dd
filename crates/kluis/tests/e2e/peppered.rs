//! Password hashes at rest are sealed under the tenant's data key (KMS -> root key -> data
//! key): the database alone holds no argon2 hash to guess against. Plain hashes from before
//! still verify and are sealed at the next sign-in or by `kluis keys seal-passwords`; a data
//! key rotation re-seals them; state verification is unaffected.

use reqwest::StatusCode;
use serde_json::json;

use crate::audit::sql;
use crate::support::{Backend, PASSWORD, Server, on_both, tenant_fixture};

const SEALED: &str = "$kluis-sealed$";

/// `users.password_hash` of a user, read straight from the database.
fn stored_hash(s: &Server, user: &str) -> String {
    let hex = user.replace('-', "");
    match &s.backend {
        Backend::Sqlite => {
            let out = std::process::Command::new("python3")
                .args([
                    "-c",
                    "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(\"SELECT password_hash FROM users WHERE id = X'\" + sys.argv[2] + \"'\").fetchone()[0])",
                    s.sqlite_path().to_str().unwrap(),
                    &hex,
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        }
        Backend::Postgres { .. } => kluis_testkit::pg_cluster()
            .unwrap()
            .superuser_query(
                &s.pg_database_name(),
                &format!("SELECT password_hash FROM users WHERE id = '{user}'"),
            )
            .unwrap()
            .trim()
            .to_owned(),
    }
}

fn put_hash(s: &Server, user: &str, hash: &str) {
    let id = match &s.backend {
        Backend::Sqlite => format!("X'{}'", user.replace('-', "")),
        Backend::Postgres { .. } => format!("'{user}'"),
    };
    sql(
        s,
        &format!("UPDATE users SET password_hash = '{hash}' WHERE id = {id};"),
    );
}

async fn login_status(s: &Server, email: &str, password: &str) -> StatusCode {
    s.client
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"tenant": "peper", "email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

on_both!(password_hashes_are_sealed_at_rest);

async fn password_hashes_are_sealed_at_rest(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "peper").await;
    let (owner, member) = ("owner@peper.test", "member@peper.test");

    // Nothing in the whole database is an argon2 hash; each user's column is sealed.
    let dump = s.database_dump().await;
    let text = String::from_utf8_lossy(&dump);
    assert!(!text.contains("$argon2"), "a plain argon2 hash is stored");
    let stored = stored_hash(&s, &t.owner_id);
    assert!(stored.starts_with(SEALED), "{stored}");
    // The column alone does not verify the password: it is no hash a cracker can use.
    assert!(
        kluis_crypto::password::verify_password(PASSWORD, &stored).is_err(),
        "the stored value verifies without the key"
    );
    // Bound to its row: copied onto another user, it opens for nobody.
    let member_before = stored_hash(&s, &t.member_id);
    put_hash(&s, &t.member_id, &stored);
    assert_ne!(login_status(&s, member, PASSWORD).await, StatusCode::OK);
    put_hash(&s, &t.member_id, &member_before);
    assert_eq!(login_status(&s, member, PASSWORD).await, StatusCode::OK);
    assert_eq!(
        login_status(&s, owner, "Wrong-Password-99!").await,
        StatusCode::UNAUTHORIZED
    );

    // A plain hash from before sealing (existing users): still verifies, sealed at sign-in.
    let legacy = kluis_crypto::password::hash_password(PASSWORD).unwrap();
    put_hash(&s, &t.member_id, &legacy);
    assert_eq!(
        login_status(&s, member, "Wrong-Password-99!").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        stored_hash(&s, &t.member_id),
        legacy,
        "a failed sign-in changes nothing"
    );
    s.login("peper", member, PASSWORD).await;
    let resealed = stored_hash(&s, &t.member_id);
    assert!(
        resealed.starts_with(SEALED),
        "not sealed at sign-in: {resealed}"
    );
    s.login("peper", member, PASSWORD).await;
    assert_eq!(
        stored_hash(&s, &t.member_id),
        resealed,
        "a current hash is left alone"
    );

    // ... or all at once by the command.
    put_hash(&s, &t.member_id, &legacy);
    let out = s.cli(&["keys", "seal-passwords"], None);
    assert!(out.contains("sealed 1 password hashes"), "{out}");
    assert!(stored_hash(&s, &t.member_id).starts_with(SEALED));
    let out = s.cli(&["keys", "seal-passwords", "--tenant", "peper"], None);
    assert!(
        out.contains("sealed 0 password hashes"),
        "idempotent: {out}"
    );
    s.login("peper", member, PASSWORD).await;

    // Rotation: a new data key re-seals every hash; one still under the old key verifies and
    // is re-sealed at sign-in.
    let before = stored_hash(&s, &t.owner_id);
    s.cli(&["keys", "rotate-dek", "--tenant", "peper"], None);
    let after = stored_hash(&s, &t.owner_id);
    assert!(
        after.starts_with(SEALED) && after != before,
        "not re-sealed by the rotation"
    );
    put_hash(&s, &t.owner_id, &before);
    // Servers re-check their cached key ring every 2 s (keys::CACHE_REVALIDATE).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    s.login("peper", owner, PASSWORD).await;
    let again = stored_hash(&s, &t.owner_id);
    assert!(
        again != before && again.starts_with(SEALED),
        "old-key hash not re-sealed"
    );

    // None of this is a change the audit log does not vouch for.
    let (ok, out, err) = s.cli_raw(&["audit", "verify", "--tenant", "peper", "--state"], None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("users matches the log"), "{out}");
    let ev = s
        .get("/api/v1/audit/events?action=keys.seal_passwords", &t.owner)
        .await;
    assert_eq!(ev.0, StatusCode::OK, "{}", ev.1);
    assert!(
        ev.1["items"].as_array().is_some_and(|a| !a.is_empty()),
        "no keys.seal_passwords event: {}",
        ev.1
    );
}
