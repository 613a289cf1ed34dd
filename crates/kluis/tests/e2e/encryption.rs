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
    // CRM records: every field sealed, lookups through blind indexes; a change keeps the old
    // version (sealed too) and writes an audit event with old and new values (sealed too).
    let (st, c) = s
        .post(
            "/api/v1/contacts",
            &t.owner,
            json!({"fields": {"first_name": "Herkenbaarvoornaam", "last_name": "Achternaamuniek", "email": "klant.herkenbaar@adres-uniek.nl", "phone": "+31 6 9876 5432", "street": "Herkenbaarstraat 12", "description": "Notitie-die-niemand-mag-lezen"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let (st, _, _) = s
        .call_with(
            reqwest::Method::PATCH,
            &format!("/api/v1/contacts/{}", c["id"].as_str().unwrap()),
            &t.owner,
            &[("if-match", "\"1\"")],
            Some(json!({"fields": {"city": "Stadherkenbaar"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, found) = s.get("/api/v1/contacts?phone=0698765432", &t.key).await;
    assert_eq!(found["items"][0]["fields"]["last_name"], "Achternaamuniek");

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
        "Herkenbaarvoornaam",
        "Achternaamuniek",
        "adres-uniek",
        "98765432",
        "Herkenbaarstraat",
        "Notitie-die-niemand",
        "Stadherkenbaar",
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
    let (st, v) = s
        .post(
            "/api/v1/auth/login",
            &Auth::None,
            json!({"tenant": "weg", "email": "owner@weg.test", "password": PASSWORD}),
        )
        .await;
    // The email's blind index needs the tenant's keys: the refusal names the missing key.
    assert_eq!(
        (st, code(&v)),
        (StatusCode::SERVICE_UNAVAILABLE, "key_unavailable"),
        "no sign-in into a shredded tenant: {v}"
    );
    let (st, v) = s.get("/api/v1/users", &b.key).await;
    assert_eq!(st, StatusCode::OK, "other tenants unaffected: {v}");
    assert!(v.to_string().contains("member@blijft.test"));
}

const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A throwaway SoftHSM2 token directory with its own config file.
struct SoftHsm {
    dir: tempfile::TempDir,
}

impl SoftHsm {
    /// None (after saying "skipped" loudly) when SoftHSM2 is not installed; a failure instead
    /// when KLUIS_REQUIRE_SOFTHSM=1 (CI).
    fn new(test: &str) -> Option<SoftHsm> {
        let util_ok = std::process::Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !std::path::Path::new(SOFTHSM_MODULE).exists() || !util_ok {
            let msg = format!(
                "skipped: {test} — SoftHSM2 not found ({SOFTHSM_MODULE}); install the softhsm2 package"
            );
            assert!(
                std::env::var("KLUIS_REQUIRE_SOFTHSM").as_deref() != Ok("1"),
                "{msg}"
            );
            eprintln!("{msg}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        Some(SoftHsm { dir })
    }

    fn conf(&self) -> std::path::PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// Initialises a token; returns the path of a file holding its user PIN.
    fn init_token(&self, label: &str, pin: &str) -> std::path::PathBuf {
        let out = std::process::Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", self.conf())
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
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
        let pin_file = self.dir.path().join(format!("{label}.pin"));
        std::fs::write(&pin_file, pin).unwrap();
        pin_file
    }
}

/// The KEK inside a real PKCS#11 token (SoftHSM2): the server creates a non-extractable key on
/// first start, every tenant key is wrapped inside the token, and no KEK file exists on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsm_kek_end_to_end() {
    let Some(hsm) = SoftHsm::new("PKCS#11 end-to-end test") else {
        return;
    };
    let pin = "kluis-pin-7391";
    let pin_file = hsm.init_token("kluis-e2e", pin);
    let conf = hsm.conf();
    let conf_s = conf.display().to_string();
    let pin_s = pin_file.display().to_string();
    let env = [
        ("SOFTHSM2_CONF", conf_s.as_str()),
        ("KLUIS_KMS", "pkcs11"),
        ("KLUIS_PKCS11_MODULE", SOFTHSM_MODULE),
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
    let wrong = hsm.dir.path().join("wrong-pin");
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
    // CRM data of every sealed kind: a record with a version, an Idempotency-Key response and
    // a custom value.
    let (_, h, c) = s
        .call_with(
            reqwest::Method::POST,
            "/api/v1/contacts",
            &t.owner,
            &[("idempotency-key", "draai-1")],
            Some(json!({"fields": {"first_name": "Roteer", "email": "roteer@draai.test"}})),
        )
        .await;
    assert_eq!(h["etag"], "\"1\"", "{c}");
    let contact = format!("/api/v1/contacts/{}", c["id"].as_str().unwrap());
    let (st, _, _) = s
        .call_with(
            reqwest::Method::PATCH,
            &contact,
            &t.owner,
            &[("if-match", "\"1\"")],
            Some(json!({"fields": {"city": "Draaiburg"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s
        .post(
            "/api/v1/custom-values",
            &t.owner,
            json!({"key": "motto", "value": "Draaien"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // A second factor being enrolled: its sealed TOTP secret moves to the new key too.
    let (st, enrolment) = s.post("/api/v1/me/mfa/totp", &t.member, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{enrolment}");
    // A copy of one record's value under version 1, for the min-decryption-version check.
    let (old_rowid, old_email) = sealed_email(&s).await;

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
    // Old versions cannot be disabled before re-encryption has finished.
    let min = [
        "keys",
        "min-decryption-version",
        "--tenant",
        "draai",
        "--version",
    ];
    let (ok, _, err) = s.cli_raw(&[&min[..], &["2"]].concat(), None);
    assert!(!ok && err.contains("reencryption_unfinished"), "{err}");
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
        "SELECT fields FROM crm_records",
        "SELECT fields FROM crm_versions",
        "SELECT response FROM idempotency_keys",
        "SELECT value FROM crm_custom_values",
        "SELECT secret FROM user_mfa",
    ] {
        let v = key_versions(&s, sql).await;
        assert!(!v.is_empty() && v.iter().all(|v| *v == 2), "{sql}: {v:?}");
    }
    let (st, v) = s.get("/api/v1/users?limit=200", &t.key).await;
    assert_eq!(st, StatusCode::OK);
    for i in 0..6 {
        assert!(v.to_string().contains(&format!("d{i}@draai.test")));
    }
    // CRM data reads back under the new key: record, version, replayed create, custom value.
    let (_, v) = s.get(&format!("{contact}/versions"), &t.owner).await;
    let v = v["items"].clone();
    assert_eq!(v[0]["fields"]["city"], "Draaiburg");
    assert_eq!(v[1]["fields"]["first_name"], "Roteer");
    let (st, _, again) = s
        .call_with(
            reqwest::Method::POST,
            "/api/v1/contacts",
            &t.owner,
            &[("idempotency-key", "draai-1")],
            Some(json!({"fields": {"first_name": "Roteer", "email": "roteer@draai.test"}})),
        )
        .await;
    assert_eq!((st, &again), (StatusCode::CREATED, &c));
    let (_, v) = s.get("/api/v1/custom-values", &t.owner).await;
    let v = v["items"].clone();
    assert_eq!(v[0]["value"], "Draaien");
    // The re-sealed TOTP secret still opens: a code from the app confirms the enrolment.
    let secret =
        kluis_crypto::totp::secret_from_base32(enrolment["secret"].as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (st, v) = s
        .post(
            "/api/v1/me/mfa/totp/confirm",
            &t.member,
            json!({"code": kluis_crypto::totp::code_at(&secret, now).unwrap()}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The rotation is in the tenant's audit trail.
    let (_, ev) = s
        .get("/api/v1/audit/events?action=keys.rotate_dek", &t.owner)
        .await;
    assert_eq!(ev["items"].as_array().unwrap().len(), 1);

    // Min decryption version 2: records under version 1 no longer open...
    let out = s.cli(&[&min[..], &["2"]].concat(), None);
    assert!(out.contains("\"versions_changed\":1"), "{out}");
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", s.sqlite_path().display()))
        .await
        .unwrap();
    let (_, current_email) = sealed_email(&s).await;
    let put_email = async |email: &[u8]| {
        sqlx::query("UPDATE users SET email = ? WHERE rowid = ?")
            .bind(email.to_vec())
            .bind(old_rowid)
            .execute(&db)
            .await
            .unwrap();
    };
    put_email(&old_email).await;
    // Servers re-check their cached key ring every 2 s (keys::CACHE_REVALIDATE).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (st, v) = s.get("/api/v1/users?limit=200", &t.key).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::INTERNAL_SERVER_ERROR, "key_version_disabled"),
        "a restored version-1 value must not open: {v}"
    );
    // ... while audit payloads written under version 1 (append-only) still do.
    let (st, v) = s
        .get("/api/v1/audit/events?action=user.create", &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.to_string().contains("\"ip\""), "{v}");
    // Lowering it re-enables version 1.
    let out = s.cli(&[&min[..], &["1"]].concat(), None);
    assert!(out.contains("\"min_decryption_version\":1"), "{out}");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (st, v) = s.get("/api/v1/users?limit=200", &t.key).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    put_email(&current_email).await;
    db.close().await;
    let (_, ev) = s
        .get(
            "/api/v1/audit/events?action=keys.min_decryption_version",
            &t.owner,
        )
        .await;
    assert_eq!(ev["items"].as_array().unwrap().len(), 2, "{ev}");
}

/// The first user's rowid and sealed email, read straight from the SQLite file.
async fn sealed_email(s: &Server) -> (i64, Vec<u8>) {
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", s.sqlite_path().display()))
        .await
        .unwrap();
    let row: (i64, Vec<u8>) =
        sqlx::query_as("SELECT rowid, email FROM users ORDER BY rowid LIMIT 1")
            .fetch_one(&db)
            .await
            .unwrap();
    db.close().await;
    row
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

/// The key objects of the only token in `hsm` (every `*.object` file but the token's own).
fn token_objects(hsm: &SoftHsm) -> Vec<std::path::PathBuf> {
    let tokens = hsm.dir.path().join("tokens");
    let mut out = Vec::new();
    for token in std::fs::read_dir(tokens).unwrap() {
        for f in std::fs::read_dir(token.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".object") && name != "token.object" {
                out.push(p);
            }
        }
    }
    out
}

/// SoftHSM2 re-reads a token's object list only when the token's generation counter moves, as
/// it does when the token itself deletes or restores a key; moving object files must say so.
fn bump_generation(object: &std::path::Path) {
    let generation = object.parent().unwrap().join("generation");
    let g = u64::from_be_bytes(std::fs::read(&generation).unwrap()[..8].try_into().unwrap());
    std::fs::write(&generation, (g + 1).to_be_bytes()).unwrap();
}

/// BYOK / hold-your-own-key: a tenant moves its root key under an AES key in its OWN token.
/// Revoking that key (here: the key object disappears from the tenant's token, as when the
/// tenant deletes or withdraws it) locks exactly that tenant's data with a clear error; other
/// tenants are untouched; restoring the key restores access; nothing is re-encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_key_revoke_and_regrant() {
    let Some(hsm) = SoftHsm::new("BYOK end-to-end test") else {
        return;
    };
    let pin = "klant-pin-8264";
    let pin_file = hsm.init_token("klant-token", pin);
    let conf = hsm.conf().display().to_string();
    let modules = format!("[\"{SOFTHSM_MODULE}\"]");
    let env = [
        ("SOFTHSM2_CONF", conf.as_str()),
        ("KLUIS_BYOK_PKCS11_MODULES", modules.as_str()),
        ("KLUIS_KEY_CACHE_TTL_SECS", "1"),
    ];
    let s = Server::start_with(Backend::Sqlite, &env).await;
    let a = tenant_fixture(&s, "eigen").await;
    let b = tenant_fixture(&s, "ander").await;

    // The tenant creates its key in its own token (non-extractable, sensitive).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kluis"))
        .args(["keys", "hsm-create-key", "--module", SOFTHSM_MODULE])
        .args([
            "--token-label",
            "klant-token",
            "--key-label",
            "klant-sleutel",
        ])
        .arg("--pin-file")
        .arg(&pin_file)
        .env("SOFTHSM2_CONF", hsm.conf())
        .output()
        .unwrap();
    let created = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{created}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(created.contains("\"extractable\":false"), "{created}");

    let path = "/api/v1/keys/customer-key";
    let body = |module: &str, key: &str, pin: &str| json!({"module": module, "token_label": "klant-token", "key_label": key, "pin": pin});
    let (st, v) = s.get(path, &a.owner).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["mode"], "platform");
    // Only owners, never API keys or admins' keys; only allowed modules; bad keys refused
    // without echoing the PIN.
    let put = async |auth: &Auth, b: serde_json::Value| {
        s.call(reqwest::Method::PUT, path, auth, Some(b)).await
    };
    let (st, _) = put(&a.key, body(SOFTHSM_MODULE, "klant-sleutel", pin)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = put(&a.member, body(SOFTHSM_MODULE, "klant-sleutel", pin)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = put(&a.owner, body("/tmp/evil.so", "klant-sleutel", pin)).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "module_not_allowed")
    );
    let (st, v) = put(
        &a.owner,
        body(SOFTHSM_MODULE, "klant-sleutel", "fout-pin-1937"),
    )
    .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "customer_key_rejected")
    );
    assert!(!v.to_string().contains("fout-pin-1937"));
    let (st, v) = put(&a.owner, body(SOFTHSM_MODULE, "bestaat-niet", pin)).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "customer_key_rejected")
    );
    let (st, v) = put(&a.owner, body(SOFTHSM_MODULE, "klant-sleutel", pin)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["mode"].as_str(), v["available"].as_bool()),
        (Some("customer"), Some(true))
    );

    // The root key is now wrapped inside the tenant's token; the granted PIN is stored sealed.
    let root_file = s
        .dir
        .path()
        .join("keys/tenants")
        .join(format!("{}.key", a.id));
    let root = std::fs::read_to_string(&root_file).unwrap();
    assert!(root.contains("pkcs11:klant-token/klant-sleutel"), "{root}");
    assert!(!root.contains(pin), "PIN stored in plaintext");
    assert!(!s.logs().contains(pin), "PIN logged");
    let (st, v) = s.get("/api/v1/users", &a.owner).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.to_string().contains("member@eigen.test"));

    // Revoke: the key leaves the tenant's token.
    let parked = hsm.dir.path().join("parked");
    std::fs::create_dir(&parked).unwrap();
    let objects = token_objects(&hsm);
    assert_eq!(objects.len(), 1, "one key in the tenant's token");
    for o in &objects {
        std::fs::rename(o, parked.join(o.file_name().unwrap())).unwrap();
    }
    bump_generation(&objects[0]);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    for auth in [&a.owner, &a.key] {
        let (st, v) = s.get("/api/v1/users", auth).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::LOCKED, "customer_key_unavailable"),
            "{v}"
        );
        assert!(!v.to_string().contains("member@eigen.test"));
    }
    let (st, v) = s.get(path, &a.owner).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["available"], false);
    // The failed unwrap is in the platform log (once, not once per request), and so are the
    // unwraps inside the tenant's token before it.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let platform = |action: &str| {
        s.cli(
            &[
                "audit", "events", "--tenant", "platform", "--action", action,
            ],
            None,
        )
    };
    let failed = platform("keys.customer_key_unavailable");
    assert_eq!(failed.matches(&a.id).count(), 1, "{failed}");
    let unwraps = platform("keys.unwrap");
    assert!(
        unwraps.contains("\"provider\":\"customer\"") && unwraps.contains(&a.id),
        "{unwraps}"
    );
    let (st, v) = s.get("/api/v1/users", &b.key).await;
    assert_eq!(st, StatusCode::OK, "other tenants unaffected: {v}");
    assert!(v.to_string().contains("member@ander.test"));

    // Re-grant: the key is back, and so is the data.
    for o in &objects {
        std::fs::rename(parked.join(o.file_name().unwrap()), o).unwrap();
    }
    bump_generation(&objects[0]);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let (st, v) = s.get("/api/v1/users", &a.key).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.to_string().contains("member@eigen.test"));

    // Back to the platform key: from now on the tenant's token no longer matters.
    let (st, v) = s.call(reqwest::Method::DELETE, path, &a.owner, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["mode"], "platform");
    let (st, v) = s.call(reqwest::Method::DELETE, path, &a.owner, None).await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "no_customer_key"));
    for o in &objects {
        std::fs::remove_file(o).unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let (st, v) = s.get("/api/v1/users", &a.owner).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Both changes are in the tenant's audit trail, without the PIN.
    let (st, v) = s
        .get(
            "/api/v1/audit/events?action=keys.customer_key.set",
            &a.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["items"][0]["details"]["key_label"], "klant-sleutel");
    assert!(!v.to_string().contains(pin));
    let (_, v) = s
        .get(
            "/api/v1/audit/events?action=keys.customer_key.remove",
            &a.owner,
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
}
