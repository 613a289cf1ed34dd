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
    assert!(out.contains("3 keys of 2 tenants re-wrapped"), "{out}");
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
    assert!(out.contains("3 keys of 2 tenants re-wrapped"), "{out}");
}

/// Crypto-shredding: after a tenant's keys are destroyed, an old copy of the database (a
/// backup taken before) no longer yields that tenant's data, while other tenants are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shredding_makes_old_backups_unreadable() {
    let mut s = Server::start(Backend::Sqlite).await;
    let a = tenant_fixture(&s, "weg").await;
    let b = tenant_fixture(&s, "blijft").await;
    // Root keys live outside the database, one private file per tenant.
    let root = s
        .dir
        .path()
        .join("keys/tenants")
        .join(format!("{}.key", a.id));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&root).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(s.stop().success());

    // A backup of the database, taken before the shredding.
    let backup = tempfile::tempdir().unwrap();
    for f in ["kluis.db", "kluis.db-wal", "kluis.db-shm"] {
        let from = s.dir.path().join(f);
        if from.exists() {
            std::fs::copy(&from, backup.path().join(f)).unwrap();
        }
    }
    let (ok, _, err) = s.cli_raw(
        &["tenant", "shred", "--tenant", "weg", "--confirm", "wrong"],
        None,
    );
    assert!(!ok && err.contains("confirm"), "{err}");
    let out = s.cli(
        &["tenant", "shred", "--tenant", "weg", "--confirm", "weg"],
        None,
    );
    assert!(out.contains("shredded"), "{out}");
    assert!(!root.exists(), "the root key file must be gone");
    // The platform log records it (the tenant's own log is unreadable from now on).
    let log = s.cli(
        &[
            "audit",
            "events",
            "--tenant",
            "platform",
            "--action",
            "tenant.shred",
        ],
        None,
    );
    assert!(log.contains(&a.id), "{log}");

    s.spawn().await;
    let (st, v) = s.get("/api/v1/users", &a.key).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "tenant_suspended"));
    assert_eq!(s.get("/api/v1/users", &b.key).await.0, StatusCode::OK);
    assert!(s.stop().success());

    // Restore the old database next to today's key store: the shredded tenant stays dark.
    for f in ["kluis.db", "kluis.db-wal", "kluis.db-shm"] {
        let _ = std::fs::remove_file(s.dir.path().join(f));
        let from = backup.path().join(f);
        if from.exists() {
            std::fs::copy(&from, s.dir.path().join(f)).unwrap();
        }
    }
    s.spawn().await;
    let (st, v) = s.get("/api/v1/users", &a.key).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::SERVICE_UNAVAILABLE, "key_unavailable"),
        "{v}"
    );
    assert!(!v.to_string().contains("weg.test"));
    let (st, _) = s
        .post(
            "/api/v1/auth/login",
            &Auth::None,
            json!({"tenant": "weg", "email": "owner@weg.test", "password": PASSWORD}),
        )
        .await;
    assert!(
        st.is_server_error() || st == StatusCode::UNAUTHORIZED,
        "no sign-in into a shredded tenant: {st}"
    );
    let (st, v) = s.get("/api/v1/users", &b.key).await;
    assert_eq!(st, StatusCode::OK, "other tenants unaffected: {v}");
    assert!(v.to_string().contains("member@blijft.test"));
}

/// The KEK inside a real PKCS#11 token (SoftHSM2): the server creates a non-extractable key on
/// first start, every tenant key is wrapped inside the token, and no KEK file exists on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsm_kek_end_to_end() {
    let module = "/usr/lib/softhsm/libsofthsm2.so";
    let util_ok = std::process::Command::new("softhsm2-util")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !std::path::Path::new(module).exists() || !util_ok {
        let msg = "skipped: PKCS#11 end-to-end test — SoftHSM2 not found (/usr/lib/softhsm/libsofthsm2.so); install the softhsm2 package";
        assert!(
            std::env::var("KLUIS_REQUIRE_SOFTHSM").as_deref() != Ok("1"),
            "{msg}"
        );
        eprintln!("{msg}");
        return;
    }
    let hsm = tempfile::tempdir().unwrap();
    std::fs::create_dir(hsm.path().join("tokens")).unwrap();
    let conf = hsm.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            hsm.path().join("tokens").display()
        ),
    )
    .unwrap();
    let pin = "kluis-pin-7391";
    let out = std::process::Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "kluis-e2e",
            "--pin",
            pin,
            "--so-pin",
            "so-pin-5678",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pin_file = hsm.path().join("pin");
    std::fs::write(&pin_file, pin).unwrap();
    let conf_s = conf.display().to_string();
    let pin_s = pin_file.display().to_string();
    let env = [
        ("SOFTHSM2_CONF", conf_s.as_str()),
        ("KLUIS_KMS", "pkcs11"),
        ("KLUIS_PKCS11_MODULE", module),
        ("KLUIS_PKCS11_TOKEN_LABEL", "kluis-e2e"),
        ("KLUIS_PKCS11_KEY_LABEL", "kluis-kek"),
        ("KLUIS_PKCS11_PIN_FILE", pin_s.as_str()),
    ];
    let mut s = Server::start_with(Backend::Sqlite, &env).await;
    let t = tenant_fixture(&s, "hsm").await;
    assert!(
        !s.dir.path().join("keys/kek.key").exists(),
        "no KEK on disk with kms = pkcs11"
    );
    let root = std::fs::read_to_string(
        s.dir
            .path()
            .join("keys/tenants")
            .join(format!("{}.key", t.id)),
    )
    .unwrap();
    assert!(
        root.contains("pkcs11:kluis-e2e/kluis-kek"),
        "root key wrapped by the token: {root}"
    );
    // Restart: the key persists in the token and everything reads back.
    assert!(s.stop().success());
    s.spawn().await;
    let (st, v) = s.get("/api/v1/users", &t.key).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.to_string().contains("member@hsm.test"));
    assert!(!s.logs().contains(pin), "the PIN must never be logged");
    // A wrong PIN: refused, and the error does not echo it.
    let wrong = hsm.path().join("wrong-pin");
    std::fs::write(&wrong, "not-the-pin-4242").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kluis"))
        .args([
            "--data-dir",
            s.dir.path().to_str().unwrap(),
            "tenant",
            "list",
        ])
        .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .env("KLUIS_PKCS11_PIN_FILE", &wrong)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a wrong PIN must stop the CLI");
    assert!(
        !err.contains("not-the-pin-4242") && !err.contains(pin),
        "{err}"
    );
}

async fn key_versions(s: &Server, sql: &str) -> Vec<u32> {
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", s.sqlite_path().display()))
        .await
        .unwrap();
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&db)
        .await
        .unwrap();
    db.close().await;
    // Sealed format: byte 0 = format, bytes 1..5 = key version (big-endian).
    rows.iter()
        .map(|b| u32::from_be_bytes(b[1..5].try_into().unwrap()))
        .collect()
}

/// Data-key rotation re-encrypts online in batches; a run that dies half way is resumed and
/// then every record reads back under the new key, while the server keeps serving throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dek_rotation_is_online_and_resumable() {
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "draai").await;
    for i in 0..6 {
        s.post("/api/v1/users", &t.owner, json!({"email": format!("d{i}@draai.test"), "display_name": format!("Draai {i}"), "role": "member"})).await;
    }
    assert!(
        key_versions(&s, "SELECT email FROM users")
            .await
            .iter()
            .all(|v| *v == 1)
    );

    // A rotation that crashes after its first batch of 2 rows.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kluis"))
        .args([
            "--data-dir",
            s.dir.path().to_str().unwrap(),
            "keys",
            "rotate-dek",
            "--tenant",
            "draai",
            "--batch",
            "2",
        ])
        .env("KLUIS_FAILPOINT", "reencrypt-abort")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the failpoint must abort the run");
    let mixed = key_versions(&s, "SELECT email FROM users").await;
    assert!(
        mixed.contains(&1) && mixed.contains(&2),
        "half way: {mixed:?}"
    );
    // Reads keep working with mixed versions.
    let (st, v) = s.get("/api/v1/users?limit=200", &t.key).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.to_string().contains("Draai 5"));
    // Resume.
    let out = s.cli(
        &["keys", "reencrypt", "--tenant", "draai", "--batch", "2"],
        None,
    );
    assert!(out.contains("under data key version 2"), "{out}");
    for sql in [
        "SELECT email FROM users",
        "SELECT display_name FROM users",
        "SELECT ip FROM sessions",
        "SELECT user_agent FROM sessions",
    ] {
        let v = key_versions(&s, sql).await;
        assert!(!v.is_empty() && v.iter().all(|v| *v == 2), "{sql}: {v:?}");
    }
    let (st, v) = s.get("/api/v1/users?limit=200", &t.key).await;
    assert_eq!(st, StatusCode::OK);
    for i in 0..6 {
        assert!(v.to_string().contains(&format!("d{i}@draai.test")));
    }
    // The rotation is in the tenant's audit trail.
    let (_, ev) = s
        .get("/api/v1/audit/events?action=keys.rotate_dek", &t.owner)
        .await;
    assert_eq!(ev["items"].as_array().unwrap().len(), 1);
}

/// `kluis doctor` fails when a data key is older than the rotation policy, and passes again
/// after a rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_enforces_the_key_age_policy() {
    let s = Server::start(Backend::Sqlite).await;
    tenant_fixture(&s, "oud").await;
    let out = s.cli(&["doctor"], None);
    assert!(
        out.contains("PASS  oud: data key v1 is 0 days old"),
        "{out}"
    );
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", s.sqlite_path().display()))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE tenant_keys SET created_at = created_at - 91 * 86400000 WHERE purpose = 'data'",
    )
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    let (ok, out, err) = s.cli_raw(&["doctor"], None);
    assert!(
        !ok && out.contains("FAIL  oud: data key v1 is 91 days old") && err.contains("failed"),
        "{out}{err}"
    );
    s.cli(&["keys", "rotate-dek", "--tenant", "oud"], None);
    s.cli(&["keys", "rotate-dek", "--tenant", "platform"], None);
    let out = s.cli(&["doctor"], None);
    assert!(
        out.contains("PASS  oud: data key v2 is 0 days old"),
        "{out}"
    );
}
