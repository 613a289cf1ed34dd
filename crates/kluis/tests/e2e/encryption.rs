//! Encryption at rest: personal data is sealed in the database, sealed values are bound to
//! their row and column, and the key-encryption key can be rotated without re-encrypting data.

use reqwest::StatusCode;
use serde_json::json;

use crate::secrets::contains;
use crate::support::{Auth, Backend, PASSWORD, Server, code, on_both, tenant_fixture};

on_both!(
    personal_data_is_sealed_at_rest,
    kek_rotation_rewraps_every_key
);

async fn personal_data_is_sealed_at_rest(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "zegel").await;
    let email = "Marieke.de.Vries@voorbeeld-herkenbaar.nl";
    let name = "Marieke de Vries-Herkenbaar";
    let agent = "Herkenbare-Browser/7.3 (Kluis test)";
    let (st, v) = s
        .post(
            "/api/v1/users",
            &t.owner,
            json!({"email": email, "display_name": name, "role": "member", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["email"], email.to_lowercase());
    assert_eq!(v["display_name"], name);
    // Sign in with a recognisable user agent: IP and user agent are stored with the session.
    let res = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .header("user-agent", agent)
        .json(&json!({"tenant": "zegel", "email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Lookup by email still works on the sealed column (blind index), case-insensitively.
    let (st, _) = s
        .post(
            "/api/v1/users",
            &t.owner,
            json!({"email": email.to_uppercase(), "display_name": "Dup", "role": "member"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    // The API reads it all back.
    let (_, list) = s.get("/api/v1/users", &t.key).await;
    assert!(list.to_string().contains(name));

    let dump = s.database_dump().await;
    assert!(contains(&dump, b"zegel"), "dump looks empty");
    for needle in [
        email,
        &email.to_lowercase(),
        name,
        agent,
        "owner@zegel.test",
        "member@zegel.test",
        "voorbeeld-herkenbaar",
        "Herkenbare-Browser",
    ] {
        assert!(
            !contains(&dump, needle.as_bytes()),
            "plaintext personal data in the database: {needle}"
        );
    }
}

/// A sealed value copied to another row (or column) does not open: the API answers with a
/// clear error instead of showing someone else's data or an empty value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_value_moved_to_another_row_or_column_fails() {
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "verplaatst").await;
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", s.sqlite_path().display()))
        .await
        .unwrap();
    let owner = uuid::Uuid::parse_str(&t.owner_id).unwrap();
    let member = uuid::Uuid::parse_str(&t.member_id).unwrap();
    sqlx::query("UPDATE users SET email = (SELECT email FROM users WHERE id = $1) WHERE id = $2")
        .bind(owner)
        .bind(member)
        .execute(&db)
        .await
        .unwrap();
    let (st, v) = s
        .get(&format!("/api/v1/users/{}", t.member_id), &t.key)
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::INTERNAL_SERVER_ERROR, "data_unreadable"),
        "{v}"
    );
    assert!(!v.to_string().contains("owner@verplaatst.test"));
    // Same row, other column: the name ciphertext in the email column.
    sqlx::query("UPDATE users SET email = display_name WHERE id = $1")
        .bind(owner)
        .execute(&db)
        .await
        .unwrap();
    let (st, v) = s
        .get(&format!("/api/v1/users/{}", t.owner_id), &t.key)
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::INTERNAL_SERVER_ERROR, "data_unreadable"),
        "{v}"
    );
    // Sessions: the IP ciphertext swapped into the user-agent column.
    let (st, _) = s.get("/api/v1/apikeys", &t.owner).await;
    assert_eq!(st, StatusCode::OK, "other data unaffected");
    sqlx::query("UPDATE sessions SET user_agent = ip")
        .execute(&db)
        .await
        .unwrap();
    let (st, v) = s.get("/api/v1/me/sessions", &t.owner).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::INTERNAL_SERVER_ERROR, "data_unreadable"),
        "{v}"
    );
    assert!(
        !s.logs().contains("owner@verplaatst.test"),
        "log must not hold the plaintext"
    );
}

async fn kek_rotation_rewraps_every_key(b: Backend) {
    let mut s = Server::start(b).await;
    let a = tenant_fixture(&s, "rotatie-a").await;
    let _b = tenant_fixture(&s, "rotatie-b").await;
    assert!(s.stop().success());
    let kek = s.dir.path().join("keys/kek.key");
    let before = std::fs::read(&kek).unwrap();
    let out = s.cli(&["keys", "rotate-kek"], None);
    assert!(out.contains("4 keys of 2 tenants re-wrapped"), "{out}");
    let after = std::fs::read(&kek).unwrap();
    assert_ne!(before, after, "the KEK file must hold a new key");
    assert!(!s.dir.path().join("keys/kek.key.next").exists());
    let retired: Vec<_> = std::fs::read_dir(s.dir.path().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("retired"))
        .collect();
    assert_eq!(retired.len(), 1);
    assert_eq!(std::fs::read(&retired[0]).unwrap(), before);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&retired[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Move the old KEK away: the server holds only the new one and must still read everything.
    std::fs::remove_file(&retired[0]).unwrap();
    s.spawn().await;
    let owner = s.login("rotatie-a", "owner@rotatie-a.test", PASSWORD).await;
    let (st, v) = s.get("/api/v1/users", &owner).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.to_string().contains("member@rotatie-a.test"));
    let (st, _) = s
        .get(
            &format!("/api/v1/users/{}", a.member_id),
            &Auth::Bearer(a.key_secret.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // A second rotation right after has nothing left under the old KEK but still works.
    assert!(s.stop().success());
    let out = s.cli(&["keys", "rotate-kek"], None);
    assert!(out.contains("4 keys of 2 tenants re-wrapped"), "{out}");
}
