//! Passkeys (WebAuthn) against the real server on both engines, with a real software
//! authenticator (PyPI soft-webauthn, kluis-testkit::webauthn): registration, passwordless
//! sign-in, passkey as second factor, enforced 2FA, and the refusals (replay, wrong origin,
//! foreign key, unknown credential, other tenant, cloned authenticator, deleted passkey,
//! lockout).

use kluis_testkit::webauthn::Authenticator;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::audit::events;
use crate::support::{
    Auth, Backend, PASSWORD, Server, code, on_both, session_from, tenant_fixture,
};

on_both!(
    passkey_registration_and_passwordless_sign_in,
    passkey_as_second_factor_and_enforced_2fa,
    passkey_failures_lock_the_account,
    passkey_ceremony_spans_processes,
    sso_required_refuses_passkeys_except_break_glass,
);

fn origin(s: &Server) -> String {
    s.url("")
}

/// Registers a passkey for the session `auth`; returns the response body.
async fn register(s: &Server, auth: &Auth, dev: &Authenticator, name: &str) -> (StatusCode, Value) {
    let (st, start) = s
        .post("/api/v1/me/passkeys/register/start", auth, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{start}");
    let cred = dev.create(&start["options"], &origin(s)).unwrap();
    s.post(
        "/api/v1/me/passkeys/register/finish",
        auth,
        json!({"ceremony": start["ceremony"], "name": name, "credential": cred}),
    )
    .await
}

/// A passwordless sign-in at `origin`: status, body, session.
async fn passwordless(
    s: &Server,
    slug: &str,
    dev: &Authenticator,
    at: &str,
) -> (StatusCode, Value, Option<Auth>, Value) {
    let (st, start) = s
        .post(
            "/api/v1/auth/passkey/start",
            &Auth::None,
            json!({"tenant": slug}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{start}");
    let cred = dev.get(&start["options"], at).unwrap();
    let body = json!({"ceremony": start["ceremony"], "credential": cred});
    let (st, h, v) = s
        .call_with(
            Method::POST,
            "/api/v1/auth/passkey/finish",
            &Auth::None,
            &[],
            Some(body.clone()),
        )
        .await;
    (st, v.clone(), session_from(&h, &v["csrf_token"]), body)
}

async fn finish_raw(s: &Server, body: &Value) -> (StatusCode, Value) {
    s.post("/api/v1/auth/passkey/finish", &Auth::None, body.clone())
        .await
}

/// Reasons of failed passkey sign-ins in the audit trail, in order.
async fn passkey_failures(s: &Server, owner: &Auth) -> Vec<String> {
    events(s, owner, "&action=auth.login")
        .await
        .iter()
        .filter(|e| e["outcome"] == "failure" && e["details"]["method"] == "passkey")
        .map(|e| e["details"]["reason"].as_str().unwrap().to_owned())
        .collect()
}

async fn passkey_registration_and_passwordless_sign_in(b: Backend) {
    let Some(dev) = Authenticator::new() else {
        return;
    };
    let s = Server::start_with(
        b,
        &[
            ("KLUIS_LOGIN_DELAY_MS", "0"),
            ("KLUIS_LOGIN_MAX_FAILURES", "1000"),
            ("KLUIS_LOGIN_DAILY_MAX_FAILURES", "1000"),
        ],
    )
    .await;
    let t = tenant_fixture(&s, "sleutel").await;
    let other = tenant_fixture(&s, "ander").await;

    // The creation options: attestation none, user verification and a discoverable key required.
    let (st, start) = s
        .post("/api/v1/me/passkeys/register/start", &t.member, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{start}");
    let pk = &start["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost", "{start}");
    assert_eq!(pk["attestation"], "none", "{start}");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    // API keys cannot register passkeys for anyone.
    let (st, _) = s
        .post("/api/v1/me/passkeys/register/start", &t.key, json!({}))
        .await;
    assert!(st == StatusCode::FORBIDDEN || st == StatusCode::UNAUTHORIZED);
    // A registration ceremony belongs to the session that started it.
    let cred = dev.create(&start["options"], &origin(&s)).unwrap();
    let (st, v) = s
        .post(
            "/api/v1/me/passkeys/register/finish",
            &t.owner,
            json!({"ceremony": start["ceremony"], "name": "gestolen", "credential": cred}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "passkey_ceremony_invalid")
    );
    // ... and was used up by that attempt.
    let (st, v) = s
        .post(
            "/api/v1/me/passkeys/register/finish",
            &t.member,
            json!({"ceremony": start["ceremony"], "name": "laptop", "credential": cred}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "passkey_ceremony_invalid")
    );

    // Registration made for another origin is refused.
    let (st, start) = s
        .post("/api/v1/me/passkeys/register/start", &t.member, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let evil = Authenticator::new().unwrap();
    let cred = evil
        .create(&start["options"], "https://evil.example")
        .unwrap();
    let (st, v) = s
        .post(
            "/api/v1/me/passkeys/register/finish",
            &t.member,
            json!({"ceremony": start["ceremony"], "name": "phish", "credential": cred}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "passkey_rejected"),
        "{v}"
    );

    // A real registration.
    let (st, reg) = register(&s, &t.member, &dev, "Laptop").await;
    assert_eq!(st, StatusCode::OK, "{reg}");
    let passkey_id = reg["passkey"]["id"].as_str().unwrap().to_owned();
    assert_eq!(reg["passkey"]["name"], "Laptop");
    let (_, list) = s.get("/api/v1/me/passkeys", &t.member).await;
    let list = list["items"].clone();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(list[0]["last_used_at"].is_null());
    let (_, st_mfa) = s.get("/api/v1/me/mfa", &t.member).await;
    assert_eq!(st_mfa["passkeys"], 1, "{st_mfa}");

    // Passwordless sign-in: a full session whose stage counts as two factors.
    let (st, v, session, used) = passwordless(&s, "sleutel", &dev, &origin(&s)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "complete");
    assert_eq!(v["session"]["stage"], "mfa");
    assert_eq!(v["user"]["email"], "member@sleutel.test");
    let session = session.expect("session cookie");
    let (st, me) = s.get("/api/v1/me", &session).await;
    assert_eq!(
        (st, me["email"].as_str()),
        (StatusCode::OK, Some("member@sleutel.test"))
    );
    let (_, list) = s.get("/api/v1/me/passkeys", &t.member).await;
    let list = list["items"].clone();
    assert!(list[0]["last_used_at"].is_string(), "{list}");

    // Replays: the same answer again (its ceremony is used up), and the same signed
    // assertion on a fresh ceremony (wrong challenge).
    let (st, v) = finish_raw(&s, &used).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));
    let (_, fresh) = s
        .post(
            "/api/v1/auth/passkey/start",
            &Auth::None,
            json!({"tenant": "sleutel"}),
        )
        .await;
    let replay = json!({"ceremony": fresh["ceremony"], "credential": used["credential"]});
    let (st, v) = finish_raw(&s, &replay).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));

    // An assertion made for another origin (a phishing site relaying the challenge).
    let (st, v, _, _) = passwordless(&s, "sleutel", &dev, "https://evil.example").await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));
    let port_origin = format!("https://localhost:{}", s.port + 1);
    let (st, _, _, _) = passwordless(&s, "sleutel", &dev, &port_origin).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // The registered credential id, signed by a key the server never saw.
    let impostor = dev.clone_device().unwrap();
    impostor.rekey().unwrap();
    let (st, v, _, _) = passwordless(&s, "sleutel", &impostor, &origin(&s)).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));

    // A cloned authenticator: after the original signs in, the clone's counter is behind.
    let clone = dev.clone_device().unwrap();
    let (st, v, _, _) = passwordless(&s, "sleutel", &dev, &origin(&s)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v, _, _) = passwordless(&s, "sleutel", &clone, &origin(&s)).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));

    // A credential that was created but never registered.
    let stranger = Authenticator::new().unwrap();
    let (_, start) = s
        .post("/api/v1/me/passkeys/register/start", &t.owner, json!({}))
        .await;
    stranger.create(&start["options"], &origin(&s)).unwrap();
    let (st, v, _, _) = passwordless(&s, "sleutel", &stranger, &origin(&s)).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));

    // Tenant A's passkey does not open tenant B; an unknown organisation looks the same.
    let (st, v, _, _) = passwordless(&s, "ander", &dev, &origin(&s)).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));
    let (st, v, _, _) = passwordless(&s, "bestaat-niet", &dev, &origin(&s)).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));

    // The audit trail says why each attempt failed (the client never learns it).
    let reasons = passkey_failures(&s, &t.owner).await;
    for want in [
        "ceremony_invalid",
        "wrong_challenge",
        "wrong_origin",
        "bad_signature",
        "sign_counter_regressed",
        "unknown_credential",
    ] {
        assert!(reasons.iter().any(|r| r == want), "{want} in {reasons:?}");
    }
    assert!(
        passkey_failures(&s, &other.owner)
            .await
            .contains(&"unknown_credential".to_owned())
    );
    let ok = events(&s, &t.owner, "&action=auth.login")
        .await
        .into_iter()
        .filter(|e| e["outcome"] == "success" && e["details"]["method"] == "passkey")
        .count();
    assert_eq!(ok, 2);
    let regs = events(&s, &t.owner, "&action=passkey.register").await;
    assert!(
        regs.iter()
            .any(|e| e["outcome"] == "success" && e["object_id"] == passkey_id.as_str())
    );
    assert!(
        regs.iter()
            .any(|e| e["outcome"] == "failure" && e["details"]["reason"] == "wrong_origin")
    );

    // Removing a passkey needs proof of presence; a removed passkey no longer signs in.
    let path = format!("/api/v1/me/passkeys/{passkey_id}");
    let (st, v) = s
        .call(Method::DELETE, &path, &t.member, Some(json!({})))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (st, _) = s
        .call(
            Method::DELETE,
            &path,
            &t.member,
            Some(json!({"password": "fout"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    // Not someone else's passkey.
    let (st, _) = s
        .call(
            Method::DELETE,
            &path,
            &t.owner,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = s
        .call(
            Method::DELETE,
            &path,
            &t.member,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, v, _, _) = passwordless(&s, "sleutel", &dev, &origin(&s)).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));
    let del = events(&s, &t.owner, "&action=passkey.delete").await;
    assert_eq!(del.last().unwrap()["object_id"], passkey_id.as_str());
    assert_eq!(del.last().unwrap()["details"]["method"], "password");
}

async fn passkey_as_second_factor_and_enforced_2fa(b: Backend) {
    let Some(dev) = Authenticator::new() else {
        return;
    };
    let s = Server::start_with(b, &[("KLUIS_LOGIN_DELAY_MS", "0")]).await;
    let t = tenant_fixture(&s, "verplicht-sleutel").await;
    let slug = "verplicht-sleutel";
    let email = "member@verplicht-sleutel.test";
    // An admin may require a second factor of their own role once they have one: a passkey.
    let policy = json!({"required_roles": ["owner", "member"]});
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/mfa",
            &t.owner,
            Some(policy.clone()),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "mfa_enrol_first"));
    let owner_dev = Authenticator::new().unwrap();
    let (st, v) = register(&s, &t.owner, &owner_dev, "Eigenaar").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .call(Method::PUT, "/api/v1/settings/mfa", &t.owner, Some(policy))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The owner's session showed a user-verified passkey: it still opens the API.
    let (st, _) = s.get("/api/v1/me", &t.owner).await;
    assert_eq!(st, StatusCode::OK);

    // Enforced 2FA: the password alone yields a must-enrol session; registering a passkey
    // satisfies it and completes the sign-in.
    let (st, h, v) = s
        .call_with(
            Method::POST,
            "/api/v1/auth/login",
            &Auth::None,
            &[],
            Some(json!({"tenant": slug, "email": email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("mfa_enrolment_required"))
    );
    let pending = session_from(&h, &v["csrf_token"]).unwrap();
    let (st, v) = s.get("/api/v1/me", &pending).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNAUTHORIZED, "mfa_enrolment_required")
    );
    let (st, start) = s
        .post("/api/v1/me/passkeys/register/start", &pending, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{start}");
    let cred = dev.create(&start["options"], &origin(&s)).unwrap();
    let (st, h, v) = s
        .call_with(
            Method::POST,
            "/api/v1/me/passkeys/register/finish",
            &pending,
            &[],
            Some(json!({"ceremony": start["ceremony"], "name": "Telefoon", "credential": cred})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["login"]["status"], "complete", "{v}");
    let full = session_from(&h, &v["login"]["csrf_token"]).unwrap();
    let (st, _) = s.get("/api/v1/me", &full).await;
    assert_eq!(st, StatusCode::OK);
    // The pending session ended.
    let (st, _) = s
        .post("/api/v1/me/passkeys/register/start", &pending, json!({}))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Next sign-in: password, then the passkey as second factor.
    let (st, h, v) = s
        .call_with(
            Method::POST,
            "/api/v1/auth/login",
            &Auth::None,
            &[],
            Some(json!({"tenant": slug, "email": email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("mfa_required"))
    );
    let pending = session_from(&h, &v["csrf_token"]).unwrap();
    let (st, v) = s.get("/api/v1/me/passkeys", &pending).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "mfa_required"));
    // A TOTP code does not help a user without TOTP.
    let (st, _) = s
        .post("/api/v1/auth/mfa", &pending, json!({"code": "123456"}))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // An assertion for another origin is refused and counted.
    let (_, start) = s
        .post("/api/v1/auth/mfa/passkey/start", &pending, json!({}))
        .await;
    let cred = dev.get(&start["options"], "https://evil.example").unwrap();
    let (st, v) = s
        .post(
            "/api/v1/auth/mfa/passkey/finish",
            &pending,
            json!({"ceremony": start["ceremony"], "credential": cred}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNAUTHORIZED, "passkey_rejected")
    );
    let (st, start) = s
        .post("/api/v1/auth/mfa/passkey/start", &pending, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{start}");
    assert_eq!(
        start["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{start}"
    );
    let cred = dev.get(&start["options"], &origin(&s)).unwrap();
    let body = json!({"ceremony": start["ceremony"], "credential": cred});
    let (st, h, v) = s
        .call_with(
            Method::POST,
            "/api/v1/auth/mfa/passkey/finish",
            &pending,
            &[],
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("complete")),
        "{v}"
    );
    assert_eq!(v["session"]["stage"], "mfa");
    let second = session_from(&h, &v["csrf_token"]).unwrap();
    let (st, _) = s.get("/api/v1/me", &second).await;
    assert_eq!(st, StatusCode::OK);
    // The pending session is gone, and the answer cannot be replayed.
    let (st, _) = s
        .post("/api/v1/auth/mfa/passkey/finish", &pending, body)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let mfa = events(&s, &t.owner, "&action=auth.mfa").await;
    assert!(
        mfa.iter().any(
            |e| e["details"]["method"] == "passkey" && e["details"]["reason"] == "wrong_origin"
        ),
        "{mfa:?}"
    );
    let logins = events(&s, &t.owner, "&action=auth.login").await;
    assert!(
        logins
            .iter()
            .any(|e| e["details"]["method"] == "password+passkey")
    );
    assert!(
        logins
            .iter()
            .any(|e| e["details"]["method"] == "password+passkey_enrolment")
    );

    // With a passkey left, TOTP can be turned off although the policy requires a factor.
    let (st, e) = s.post("/api/v1/me/mfa/totp", &second, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let secret = kluis_crypto::totp::secret_from_base32(e["secret"].as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code_now = kluis_crypto::totp::code_at(&secret, now).unwrap();
    let (st, v) = s
        .post(
            "/api/v1/me/mfa/totp/confirm",
            &second,
            json!({"code": code_now}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .post(
            "/api/v1/me/mfa/disable",
            &second,
            json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");

    // The last second factor cannot be removed while the policy requires one.
    let (_, list) = s.get("/api/v1/me/passkeys", &second).await;
    let list = list["items"].clone();
    let pid = list[0]["id"].as_str().unwrap().to_owned();
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/me/passkeys/{pid}"),
            &second,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "mfa_required_by_policy")
    );

    // Admins see and remove a user's passkeys (lost device); the user's sessions end.
    let member_passkeys = format!("/api/v1/users/{}/passkeys", t.member_id);
    let (st, v) = s.get(&member_passkeys, &t.member).await;
    assert!(
        st == StatusCode::FORBIDDEN || st == StatusCode::UNAUTHORIZED,
        "{v}"
    );
    let (st, v) = s.get(&member_passkeys, &t.owner).await;
    let v = v["items"].clone();
    assert_eq!(
        (st, v.as_array().map(Vec::len)),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("{member_passkeys}/{pid}"),
            &t.owner,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.get("/api/v1/me", &second).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let del = events(&s, &t.owner, "&action=passkey.delete").await;
    assert_eq!(del.last().unwrap()["details"]["by_admin"], true);
    // Without a factor, the member must enrol again.
    let (_, _, v) = s
        .call_with(
            Method::POST,
            "/api/v1/auth/login",
            &Auth::None,
            &[],
            Some(json!({"tenant": slug, "email": email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(v["status"], "mfa_enrolment_required");
}

async fn passkey_failures_lock_the_account(b: Backend) {
    let Some(dev) = Authenticator::new() else {
        return;
    };
    let s = Server::start_with(
        b,
        &[
            ("KLUIS_LOGIN_DELAY_MS", "0"),
            ("KLUIS_LOGIN_MAX_FAILURES", "3"),
        ],
    )
    .await;
    let t = tenant_fixture(&s, "slot").await;
    let (st, v) = register(&s, &t.member, &dev, "Sleutel").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Three refused assertions lock the account (the counter it shares with the password).
    for _ in 0..3 {
        let (st, _, _, _) = passwordless(&s, "slot", &dev, "https://evil.example").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, v, _, _) = passwordless(&s, "slot", &dev, &origin(&s)).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));
    let (st, _, _) = s
        .call_with(
            Method::POST,
            "/api/v1/auth/login",
            &Auth::None,
            &[],
            Some(json!({"tenant": "slot", "email": "member@slot.test", "password": PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let lock = events(&s, &t.owner, "&action=auth.lockout").await;
    assert_eq!(lock.len(), 1, "{lock:?}");
    assert_eq!(lock[0]["object_id"], t.member_id.as_str());
    // An admin unlocks; the passkey works again.
    let (st, _) = s
        .post(
            &format!("/api/v1/users/{}/unlock", t.member_id),
            &t.owner,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v, _, _) = passwordless(&s, "slot", &dev, &origin(&s)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // A disabled user's passkey no longer signs in; a deleted user's is gone with the user.
    let user = format!("/api/v1/users/{}", t.member_id);
    let (st, v) = s
        .call(
            Method::PATCH,
            &user,
            &t.owner,
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v, _, _) = passwordless(&s, "slot", &dev, &origin(&s)).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));
    let (st, _) = s.call(Method::DELETE, &user, &t.owner, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v, _, _) = passwordless(&s, "slot", &dev, &origin(&s)).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));
    let reasons = passkey_failures(&s, &t.owner).await;
    assert_eq!(
        reasons[reasons.len() - 2..],
        ["user_disabled".to_owned(), "unknown_credential".to_owned()],
        "{reasons:?}"
    );
}

/// Two server processes on one database and one public URL: a ceremony started on one is
/// finished on the other (its state is in the database), once.
async fn passkey_ceremony_spans_processes(b: Backend) {
    let Some(dev) = Authenticator::new() else {
        return;
    };
    let public = "https://localhost";
    let s = Server::start_with(b, &[("KLUIS_PUBLIC_URL", public)]).await;
    let t = tenant_fixture(&s, "tweeling-sleutel").await;
    let other = s.sibling().await;
    let post_other = |path: &str, auth: Option<&Auth>, body: Value| {
        let mut rb = other.client.post(other.url(path)).json(&body);
        if let Some(Auth::Session { cookie, csrf }) = auth {
            rb = rb
                .header("cookie", format!("__Host-kluis_session={cookie}"))
                .header("x-csrf-token", csrf);
        }
        async move {
            let res = rb.send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    // Registration started here, finished there.
    let (st, start) = s
        .post("/api/v1/me/passkeys/register/start", &t.member, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(start["options"]["publicKey"]["rp"]["id"], "localhost");
    let cred = dev.create(&start["options"], public).unwrap();
    let (st, v) = post_other(
        "/api/v1/me/passkeys/register/finish",
        Some(&t.member),
        json!({"ceremony": start["ceremony"], "name": "Gedeeld", "credential": cred}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Passwordless sign-in started there, finished here; the used ceremony fails there too.
    let (st, start) = post_other(
        "/api/v1/auth/passkey/start",
        None,
        json!({"tenant": "tweeling-sleutel"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{start}");
    let cred = dev.get(&start["options"], public).unwrap();
    let body = json!({"ceremony": start["ceremony"], "credential": cred});
    let (st, v) = finish_raw(&s, &body).await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("complete")),
        "{v}"
    );
    let (st, v) = post_other("/api/v1/auth/passkey/finish", None, body).await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "passkey_failed"));
}

/// "SSO required" turns passkey sign-in off like password sign-in, except for break-glass
/// owners (checked after the passkey, so the refusal tells nothing without it).
async fn sso_required_refuses_passkeys_except_break_glass(b: Backend) {
    let Some(dev) = Authenticator::new() else {
        return;
    };
    let Some(idp) = crate::sso::Idp::start() else {
        return;
    };
    let s = crate::sso::server(b, &idp).await;
    let t = tenant_fixture(&s, "streng").await;
    let owner_dev = Authenticator::new().unwrap();
    assert_eq!(register(&s, &t.member, &dev, "Lid").await.0, StatusCode::OK);
    assert_eq!(
        register(&s, &t.owner, &owner_dev, "Eigenaar").await.0,
        StatusCode::OK
    );
    let (st, _) = s
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/break-glass", t.owner_id),
            &t.owner,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    crate::sso::configure(
        &s,
        &idp,
        &t,
        json!({"allowed_domains": ["streng.test"], "sso_required": true}),
    )
    .await;
    let (st, v, _, _) = passwordless(&s, "streng", &dev, &origin(&s)).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "sso_required"),
        "{v}"
    );
    assert!(
        passkey_failures(&s, &t.owner)
            .await
            .contains(&"sso_required".to_owned())
    );
    let (st, v, _, _) = passwordless(&s, "streng", &owner_dev, &origin(&s)).await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("complete")),
        "{v}"
    );
}
