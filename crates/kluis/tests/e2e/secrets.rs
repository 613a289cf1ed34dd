//! Secrets (API key secrets, session tokens, CSRF tokens, passwords) never appear in the
//! database, the logs or error bodies; stored passwords are argon2id with OWASP parameters.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Auth, Backend, PASSWORD, Server, code, on_both, tenant_fixture};

on_both!(
    secrets_never_in_database_logs_or_errors,
    password_hashes_are_argon2id_owasp
);

async fn secrets_never_in_database_logs_or_errors(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "geheim").await;
    let mut secrets: Vec<String> = vec![t.key_secret.clone(), PASSWORD.to_owned()];
    // The secret part alone, too (the stored form must not be the plain secret in any encoding).
    secrets.push(t.key_secret.rsplit('_').next().unwrap().to_owned());
    if let Auth::Session { cookie, csrf } = &t.owner {
        secrets.push(cookie.clone());
        secrets.push(cookie.split('.').nth(1).unwrap().to_owned());
        secrets.push(csrf.clone());
    }
    // A rotated key's new secret.
    let (st, v) = s
        .post(
            &format!("/api/v1/apikeys/{}/rotate", t.key_id),
            &t.owner,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let rotated = v["secret"].as_str().unwrap().to_owned();
    secrets.push(rotated.clone());
    // Listing and viewing keys never shows a secret.
    for path in [
        "/api/v1/apikeys".to_owned(),
        format!("/api/v1/apikeys/{}", t.key_id),
    ] {
        let (_, v) = s.get(&path, &t.owner).await;
        assert!(!v.to_string().contains(&rotated), "{path} shows the secret");
        assert!(
            v.to_string().contains(&t.key_id) && !v.to_string().contains("\"secret\""),
            "{path}: {v}"
        );
    }

    // Error bodies do not echo what was sent.
    let wrong_key = format!("{}x", rotated);
    let (st, v) = s
        .get("/api/v1/users", &Auth::Bearer(wrong_key.clone()))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(!v.to_string().contains(&wrong_key[10..]), "{v}");
    let bad_pw = "Wrong-Secret-Pw-123!";
    let (st, v) = s
        .post(
            "/api/v1/auth/login",
            &Auth::None,
            json!({"tenant": "geheim", "email": "owner@geheim.test", "password": bad_pw}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    assert!(!v.to_string().contains(bad_pw));
    // A password of the wrong JSON type: the error names the field, not the value.
    let (st, v) = s
        .post(
            "/api/v1/auth/login",
            &Auth::None,
            json!({"tenant": "geheim", "email": "owner@geheim.test", "password": 987654321}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "password");
    assert!(!v.to_string().contains("987654321"), "{v}");
    secrets.push(bad_pw.to_owned());
    secrets.push("987654321".to_owned());
    // A weak password rejected by policy is not echoed either.
    let weak = "Password1!";
    let (st, v) = s.post("/api/v1/users", &t.owner, json!({"email": "w@geheim.test", "display_name": "W", "role": "member", "password": weak})).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "password_common")
    );
    assert!(!v.to_string().contains(weak));

    let dump = s.database_dump().await;
    // Only the server's own output (the CLI printed the key secret on purpose, once).
    let server_logs = s.logs();
    assert!(
        server_logs.len() > 200,
        "expected JSON log lines from the server:\n{server_logs}"
    );
    for secret in &secrets {
        assert!(
            !contains(&dump, secret.as_bytes()),
            "database holds a secret ({} chars)",
            secret.len()
        );
        assert!(
            !server_logs.contains(secret.as_str()),
            "server log holds a secret ({} chars)",
            secret.len()
        );
    }
    // And the dump is real: it does hold things we know are there.
    assert!(contains(&dump, b"geheim"), "database dump looks empty");
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Password hashes at rest are argon2id PHC strings sealed under the tenant's data key
/// (`passwords.rs`): the database holds one sealed hash per user and no bare PHC string to
/// guess against offline. The argon2id parameters (OWASP: m=19 MiB, t=2, p=1) of what is sealed
/// are asserted where the hash is made (kluis-crypto `password::hashing` tests).
async fn password_hashes_are_argon2id_owasp(b: Backend) {
    let s = Server::start(b).await;
    tenant_fixture(&s, "hash").await;
    let dump = s.database_dump().await;
    assert!(
        !contains(&dump, b"$argon2"),
        "a bare argon2 PHC string is stored: a copy of the database could be guessed against"
    );
    let sealed = String::from_utf8_lossy(&dump)
        .matches("$kluis-sealed$")
        .count();
    assert!(
        sealed >= 2,
        "expected a sealed hash per user, found {sealed}"
    );
}
