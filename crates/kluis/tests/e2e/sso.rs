//! Single sign-on with OpenID Connect against a real, certified OpenID provider (npm
//! `oidc-provider`, started by kluis-testkit): the whole browser flow over HTTPS, driven by an
//! HTTP client with a cookie jar, on SQLite and PostgreSQL. Hostile cases use the test IdP's
//! switches to forge the next ID token or userinfo response; each asserts the specific error
//! code and the audit reason, so removing a check makes its test fail.
//!
//! Without Node.js or `npm ci` in tests/idp/oidc the tests print `skipped: ...` and pass,
//! unless KLUIS_REQUIRE_OIDC=1 (CI sets it).

use std::time::{SystemTime, UNIX_EPOCH};

use kluis_testkit::oidc::TestIdp;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::support::{
    Auth, Backend, PASSWORD, Server, TenantFixture, code, on_both, tenant_fixture,
};

pub(crate) struct Idp {
    inner: TestIdp,
    http: reqwest::Client,
}

impl Idp {
    pub(crate) fn start() -> Option<Idp> {
        let inner = TestIdp::start()?;
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&inner.ca_pem).unwrap())
            .build()
            .unwrap();
        Some(Idp { inner, http })
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        let res = self
            .http
            .post(format!("{}{path}", self.inner.issuer))
            .bearer_auth(&self.inner.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "IdP {path}: {}", res.status());
        let text = res.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Registers a client (OpenID Connect Dynamic Client Registration): (id, secret).
    async fn register(&self, redirect_uri: &str) -> (String, String) {
        let v = self
            .admin(
                "/reg",
                json!({"redirect_uris": [redirect_uri], "grant_types": ["authorization_code"],
                       "response_types": ["code"], "token_endpoint_auth_method": "client_secret_basic"}),
            )
            .await;
        (
            v["client_id"].as_str().unwrap().to_owned(),
            v["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The account that signs in at the next authorization request.
    async fn next_login(&self, sub: &str, email: &str, verified: bool) {
        self.admin(
            "/__test/next-login",
            json!({"sub": sub, "email": email, "email_verified": verified, "name": format!("SSO {sub}")}),
        )
        .await;
    }

    async fn mutate(&self, m: Value) {
        self.admin("/__test/mutate", m).await;
    }
}

/// A Kluis server that trusts the test IdP's certificate and may reach it on 127.0.0.1.
pub(crate) async fn server(b: Backend, idp: &Idp) -> Server {
    let ca = idp.inner.ca_file.display().to_string();
    Server::start_with(
        b,
        &[
            ("KLUIS_SSO_CA_FILE", ca.as_str()),
            ("KLUIS_SSO_ALLOW_PRIVATE_NETWORKS", "true"),
        ],
    )
    .await
}

/// A browser: a cookie jar, both servers' certificates, no automatic redirects.
fn browser(s: &Server, idp: &Idp) -> reqwest::Client {
    let kluis_cert = std::fs::read(s.dir.path().join("tls/cert.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&kluis_cert).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(&idp.inner.ca_pem).unwrap())
        .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Runs the browser from `/sso/oidc/start` through the IdP (automatic login) up to the
/// redirect back to Kluis; returns the callback URL without requesting it.
async fn to_callback(s: &Server, browser: &reqwest::Client, org: &str) -> Url {
    let start = s.url(&format!("/sso/oidc/start?organisation={org}"));
    let res = browser.get(&start).send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FOUND,
        "start: {}",
        res.text().await.unwrap()
    );
    let sso_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-kluis_sso="))
        .expect("binding cookie");
    assert!(
        sso_cookie.contains("HttpOnly")
            && sso_cookie.contains("Secure")
            && sso_cookie.contains("SameSite=Lax"),
        "{sso_cookie}"
    );
    let mut url = Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let param = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(param("response_type").as_deref(), Some("code"));
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert!(param("code_challenge").is_some() && param("nonce").is_some());
    assert!(param("state").is_some());
    for _ in 0..10 {
        let res = browser.get(url.clone()).send().await.unwrap();
        assert!(
            res.status().is_redirection(),
            "IdP {}: {} {}",
            url.path(),
            res.status(),
            res.text().await.unwrap()
        );
        let next = url
            .join(res.headers()["location"].to_str().unwrap())
            .unwrap();
        if next.path() == "/sso/oidc/callback" {
            return next;
        }
        url = next;
    }
    panic!("the IdP never redirected back");
}

/// Delivers the callback with `browser`: (status, body, session when signed in).
async fn callback(browser: &reqwest::Client, url: &Url) -> (StatusCode, Value, Option<Auth>) {
    let res = browser.get(url.clone()).send().await.unwrap();
    let status = res.status();
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-kluis_session="));
    let body: Value = res.json().await.unwrap();
    let auth = session.map(|c| {
        assert!(
            c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Strict"),
            "{c}"
        );
        Auth::Session {
            cookie: c
                .split(';')
                .next()
                .unwrap()
                .split_once('=')
                .unwrap()
                .1
                .to_owned(),
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    });
    (status, body, auth)
}

/// One whole sign-in in a fresh browser.
async fn sso_login(s: &Server, idp: &Idp, org: &str) -> (StatusCode, Value, Option<Auth>) {
    let b = browser(s, idp);
    let url = to_callback(s, &b, org).await;
    callback(&b, &url).await
}

async fn last_event(s: &Server, auth: &Auth, action: &str) -> Value {
    let (st, v) = s
        .get(
            &format!("/api/v1/audit/events?limit=200&action={action}"),
            auth,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap_or(Value::Null)
}

/// Asserts the newest `auth.login` event is a failed OIDC sign-in for `reason`.
async fn assert_failure(s: &Server, t: &TenantFixture, reason: &str) {
    let e = last_event(s, &t.owner, "auth.login").await;
    assert_eq!(e["outcome"], "failure", "{e}");
    assert_eq!(e["details"]["method"], "oidc", "{e}");
    assert_eq!(e["details"]["reason"], reason, "{e}");
}

pub(crate) async fn configure(
    s: &Server,
    idp: &Idp,
    t: &TenantFixture,
    extra: Value,
) -> (String, String) {
    let (id, secret) = idp.register(&s.url("/sso/oidc/callback")).await;
    let mut body = json!({
        "provider": "oidc", "issuer": idp.inner.issuer, "client_id": id, "client_secret": secret,
        "allowed_domains": ["sso.test"], "jit_enabled": false, "sso_required": false
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (st, v) = s
        .call(Method::PUT, "/api/v1/settings/sso", &t.owner, Some(body))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    (id, secret)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn sso_login_links_and_creates_users(b: Backend) {
    let Some(idp) = Idp::start() else { return };
    let s = server(b, &idp).await;
    let t = tenant_fixture(&s, "sso").await;

    // Only signed-in owners and admins configure SSO; the secret is write-only.
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/sso",
            &t.member,
            Some(json!({
            "provider": "oidc", "issuer": idp.inner.issuer, "client_id": "x", "client_secret": "y",
            "allowed_domains": ["sso.test"], "jit_enabled": true, "sso_required": false})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
    let (st, _) = s.get("/api/v1/settings/sso", &t.key).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "an API key must not read SSO settings"
    );
    let (_, secret) = configure(&s, &idp, &t, json!({})).await;
    let (st, doc) = s.get("/api/v1/settings/sso", &t.owner).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(doc["client_secret_set"], true);
    assert_eq!(doc["redirect_uri"], s.url("/sso/oidc/callback"));
    assert!(!doc.to_string().contains(&secret), "secret returned: {doc}");
    let e = last_event(&s, &t.owner, "settings.sso.update").await;
    assert_eq!(e["outcome"], "success");
    assert!(!e.to_string().contains(&secret), "secret audited: {e}");
    assert_eq!(e["details"]["client_secret_changed"], true);
    assert!(
        !String::from_utf8_lossy(&s.database_dump().await).contains(&secret),
        "the client secret is stored in the clear"
    );
    // JIT needs an owner to hand out admin; owners are never created at sign-in.
    let (st, v) = s
        .call(Method::PUT, "/api/v1/settings/sso", &t.owner, Some(json!({
            "provider": "oidc", "issuer": idp.inner.issuer, "client_id": doc["client_id"],
            "allowed_domains": ["sso.test"], "jit_enabled": true, "jit_role": "owner", "sso_required": false})))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_jit_role")
    );

    // An existing user, first sign-in: linked by verified email in an allowed domain.
    let (_, u) = s
        .post(
            "/api/v1/users",
            &t.owner,
            json!({"email": "Anna@SSO.test", "display_name": "Anna", "role": "manager"}),
        )
        .await;
    let anna = u["id"].as_str().unwrap().to_owned();
    idp.next_login("anna-sub", "anna@sso.test", true).await;
    let (st, v, auth) = sso_login(&s, &idp, "sso").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let auth = auth.expect("session cookie");
    let (st, me) = s.get("/api/v1/me", &auth).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["id"], anna.as_str());
    // The session is a normal one: state changes need its CSRF token.
    let (st, _) = s
        .post("/api/v1/auth/logout", &auth.without_csrf(), json!({}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let e = last_event(&s, &t.owner, "auth.login").await;
    assert_eq!(e["outcome"], "success", "{e}");
    assert_eq!(e["details"]["method"], "oidc");
    assert_eq!(e["object_id"], anna.as_str());
    let link = last_event(&s, &t.owner, "user.sso_link").await;
    assert_eq!(link["details"]["via"], "email", "{link}");

    // Data-key rotation re-encrypts the client secret, so old key versions can be disabled and
    // sign-in keeps working (after the server's key cache revalidates).
    s.cli(&["keys", "rotate-dek", "--tenant", "sso"], None);
    s.cli(
        &[
            "keys",
            "min-decryption-version",
            "--tenant",
            "sso",
            "--version",
            "2",
        ],
        None,
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    // Later sign-ins match the IdP account (issuer + subject), whatever email it sends now.
    idp.next_login("anna-sub", "anna.renamed@sso.test", true)
        .await;
    let (st, v, auth) = sso_login(&s, &idp, "sso").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        s.get("/api/v1/me", &auth.unwrap()).await.1["id"],
        anna.as_str()
    );

    // JIT off: an unknown person with a good address is refused.
    idp.next_login("bob-sub", "bob@sso.test", true).await;
    let (st, v, auth) = sso_login(&s, &idp, "sso").await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "sso_no_account"),
        "{v}"
    );
    assert!(auth.is_none());
    assert_failure(&s, &t, "no_account").await;

    // Domain restriction, for new and linked accounts alike.
    idp.next_login("eve-sub", "eve@elders.test", true).await;
    let (st, v, _) = sso_login(&s, &idp, "sso").await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "sso_domain_not_allowed"),
        "{v}"
    );
    assert_failure(&s, &t, "domain_not_allowed").await;
    idp.next_login("anna-sub", "anna@elders.test", true).await;
    let (st, v, _) = sso_login(&s, &idp, "sso").await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "sso_domain_not_allowed"),
        "{v}"
    );
    // An address the IdP does not vouch for never links to an account.
    idp.next_login("mallory-sub", "anna@sso.test", false).await;
    let (st, v, _) = sso_login(&s, &idp, "sso").await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "sso_email_not_verified"),
        "{v}"
    );
    assert_failure(&s, &t, "email_not_verified").await;

    // JIT on (the stored secret is kept when none is sent): Bob is created with the default role.
    let (st, v) = s
        .call(Method::PUT, "/api/v1/settings/sso", &t.owner, Some(json!({
            "provider": "oidc", "issuer": idp.inner.issuer, "client_id": doc["client_id"],
            "allowed_domains": ["sso.test"], "jit_enabled": true, "jit_role": "read_only", "sso_required": false})))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        last_event(&s, &t.owner, "settings.sso.update").await["details"]["client_secret_changed"],
        false
    );
    idp.next_login("bob-sub", "bob@sso.test", true).await;
    let (st, v, auth) = sso_login(&s, &idp, "sso").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, me) = s.get("/api/v1/me", &auth.unwrap()).await;
    assert_eq!(me["email"], "bob@sso.test");
    assert_eq!(me["role"], "read_only");
    assert_eq!(me["has_password"], false);
    let created = last_event(&s, &t.owner, "user.create").await;
    assert_eq!(created["details"]["via"], "sso_jit", "{created}");
    assert_eq!(created["actor"], "sso");

    // A browser arriving from the IdP gets a page that moves on to /account by itself: the
    // Strict session cookie would not travel on a redirect that started at another site.
    idp.next_login("bob-sub", "bob@sso.test", true).await;
    let b = browser(&s, &idp);
    let url = to_callback(&s, &b, "sso").await;
    let res = b
        .get(url)
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-kluis_session="))
    );
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<meta http-equiv=\"refresh\" content=\"0; url=/account\">"),
        "{page}"
    );

    // A disabled user stays out.
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{anna}"),
            &t.owner,
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    idp.next_login("anna-sub", "anna@sso.test", true).await;
    let (st, v, _) = sso_login(&s, &idp, "sso").await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "sso_user_disabled"),
        "{v}"
    );
    assert_failure(&s, &t, "user_disabled").await;

    // A server that does not allow private networks refuses a loopback issuer before fetching it.
    let strict = Server::start_with(
        match &s.backend {
            Backend::Sqlite => Backend::Sqlite,
            Backend::Postgres { .. } => Backend::postgres().unwrap(),
        },
        &[],
    )
    .await;
    let t2 = tenant_fixture(&strict, "sso").await;
    let (st, v) = strict
        .call(
            Method::PUT,
            "/api/v1/settings/sso",
            &t2.owner,
            Some(json!({
            "provider": "oidc", "issuer": idp.inner.issuer, "client_id": "x", "client_secret": "y",
            "allowed_domains": ["sso.test"], "jit_enabled": false, "sso_required": false})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "sso_issuer_not_allowed"),
        "{v}"
    );
    let (st, v) = strict
        .call(Method::PUT, "/api/v1/settings/sso", &t2.owner, Some(json!({
            "provider": "oidc", "issuer": "http://idp.sso.test", "client_id": "x", "client_secret": "y",
            "allowed_domains": ["sso.test"], "jit_enabled": false, "sso_required": false})))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "sso_issuer_insecure"),
        "{v}"
    );

    // Unknown organisations and organisations without SSO look the same.
    let (st, v) = s
        .get("/sso/oidc/start?organisation=nope", &Auth::None)
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::NOT_FOUND, "sso_not_configured")
    );

    // The sign-in page's SSO button: on to the IdP, or back to the page with the reason.
    let b = browser(&s, &idp);
    let res = b
        .get(s.url("/sign-in/sso?organisation=sso"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let to = res.headers()["location"].to_str().unwrap();
    assert!(to.starts_with(&idp.inner.issuer), "{to}");
    let res = b
        .get(s.url("/sign-in/sso?organisation=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let page = res.text().await.unwrap();
    assert!(page.contains("class=\"notice error\""), "{page}");
}

async fn sso_rejects_forged_responses(b: Backend) {
    let Some(idp) = Idp::start() else { return };
    let s = server(b, &idp).await;
    let t = tenant_fixture(&s, "forge").await;
    configure(&s, &idp, &t, json!({"allowed_domains": ["forge.test"]})).await;
    idp.next_login("member-sub", "member@forge.test", true)
        .await;
    let (st, v, _) = sso_login(&s, &idp, "forge").await;
    assert_eq!(st, StatusCode::OK, "baseline sign-in: {v}");

    let cases = [
        (
            json!({"claims": {"iss": "https://evil.example"}}),
            "wrong_issuer",
        ),
        (json!({"claims": {"aud": "someone-else"}}), "wrong_audience"),
        (json!({"claims": {"nonce": "not-the-nonce"}}), "wrong_nonce"),
        (
            json!({"claims": {"exp": now() - 120, "iat": now() - 600}}),
            "id_token_expired",
        ),
        (json!({"sign": "other_key_same_kid"}), "bad_signature"),
        (json!({"sign": "none"}), "unsigned_id_token"),
        (
            json!({"userinfo_sub": "someone-else"}),
            "userinfo_sub_mismatch",
        ),
    ];
    for (mutation, reason) in cases {
        idp.next_login("member-sub", "member@forge.test", true)
            .await;
        idp.mutate(mutation.clone()).await;
        let (st, v, auth) = sso_login(&s, &idp, "forge").await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNAUTHORIZED, "sso_failed"),
            "{mutation} was accepted: {v}"
        );
        assert!(auth.is_none(), "{mutation}: a session was set");
        assert_failure(&s, &t, reason).await;
    }

    // State: single use, bound to the browser that started the sign-in.
    idp.next_login("member-sub", "member@forge.test", true)
        .await;
    let b1 = browser(&s, &idp);
    let url = to_callback(&s, &b1, "forge").await;
    let (st, _, _) = callback(&b1, &url).await;
    assert_eq!(st, StatusCode::OK);
    let (st, v, _) = callback(&b1, &url).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "sso_state_invalid"),
        "replay: {v}"
    );
    assert_failure(&s, &t, "state_unknown").await;
    // A state (and code) stolen from one browser does not work in another.
    idp.next_login("member-sub", "member@forge.test", true)
        .await;
    let victim = browser(&s, &idp);
    let url = to_callback(&s, &victim, "forge").await;
    let attacker = browser(&s, &idp);
    let (st, v, auth) = callback(&attacker, &url).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "sso_state_invalid"),
        "{v}"
    );
    assert!(auth.is_none());
    assert_failure(&s, &t, "browser_mismatch").await;
    // ... and the attempt used the state up.
    let (st, _, _) = callback(&victim, &url).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_failure(&s, &t, "state_unknown").await;
    // A state naming another tenant, or none at all.
    let mut forged = url.clone();
    forged.set_query(Some("state=00000000000000000000000000000000.x&code=y"));
    let (st, _, _) = callback(&victim, &forged).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // The IdP rotates its signing key: the new key is fetched on the unknown `kid`.
    idp.admin("/__test/rotate", json!({})).await;
    idp.next_login("member-sub", "member@forge.test", true)
        .await;
    let (st, v, auth) = sso_login(&s, &idp, "forge").await;
    assert_eq!(st, StatusCode::OK, "after key rotation: {v}");
    assert_eq!(
        s.get("/api/v1/me", &auth.unwrap()).await.1["id"],
        t.member_id.as_str()
    );
    // ... and tokens signed with a key it never published are still refused.
    idp.next_login("member-sub", "member@forge.test", true)
        .await;
    idp.mutate(json!({"sign": "other_key_same_kid"})).await;
    let (st, _, _) = sso_login(&s, &idp, "forge").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_failure(&s, &t, "bad_signature").await;

    // Nothing secret in the audit trail or the logs.
    let (_, all) = s.get("/api/v1/audit/events?limit=200", &t.owner).await;
    let text = all.to_string();
    assert!(
        !text.contains("code=") && !text.contains("eyJ"),
        "token material audited"
    );
    assert!(!s.logs().contains("eyJ"), "token material logged");
}

async fn sso_required_blocks_passwords(b: Backend) {
    let Some(idp) = Idp::start() else { return };
    let s = server(b, &idp).await;
    let t = tenant_fixture(&s, "strict").await;
    configure(&s, &idp, &t, json!({"allowed_domains": ["strict.test"]})).await;
    let settings = |required: bool| {
        Some(json!({"provider": "oidc", "issuer": idp.inner.issuer,
            "client_id": "unchanged", "allowed_domains": ["strict.test"],
            "jit_enabled": false, "sso_required": required}))
    };
    let (_, doc) = s.get("/api/v1/settings/sso", &t.owner).await;
    let client_id = doc["client_id"].as_str().unwrap().to_owned();
    let with_id = |required: bool| {
        let mut v = settings(required).unwrap();
        v["client_id"] = json!(client_id);
        Some(v)
    };

    // Requiring SSO without a break-glass owner would risk a lock-out.
    let (st, v) = s
        .call(Method::PUT, "/api/v1/settings/sso", &t.owner, with_id(true))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "break_glass_required"),
        "{v}"
    );
    // Break-glass: owners only, set by owners only.
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/break-glass", t.member_id),
            &t.owner,
            None,
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "break_glass_owner_only")
    );
    let (st, _) = s
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/break-glass", t.owner_id),
            &t.key,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/break-glass", t.owner_id),
            &t.owner,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let e = last_event(&s, &t.owner, "user.break_glass").await;
    assert_eq!(e["details"]["break_glass"], true, "{e}");
    let (st, v) = s
        .call(Method::PUT, "/api/v1/settings/sso", &t.owner, with_id(true))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["break_glass_user_ids"], json!([t.owner_id]));
    // An unchanged client id keeps the secret; a new one needs a new secret.
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/sso",
            &t.owner,
            settings(true),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "client_secret_required")
    );

    // Password sign-in: refused for the member (after the password was checked) ...
    let res = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"tenant": "strict", "email": "member@strict.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get("set-cookie").is_none());
    let v: Value = res.json().await.unwrap();
    assert_eq!(code(&v), "sso_required");
    let e = last_event(&s, &t.owner, "auth.login").await;
    assert_eq!(e["outcome"], "failure");
    assert_eq!(e["details"]["reason"], "sso_required");
    assert_eq!(e["object_id"], t.member_id.as_str());
    // ... a wrong password still gets the usual answer (no oracle for who exists) ...
    let (st, v) = s
        .post("/api/v1/auth/login", &Auth::None,
            json!({"tenant": "strict", "email": "member@strict.test", "password": "wrong-Passw0rd!"}))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    // ... refused for an owner who is not break-glass ...
    let (st, _) = s
        .post("/api/v1/users", &t.owner,
            json!({"email": "owner2@strict.test", "display_name": "O2", "role": "owner", "password": PASSWORD}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s
        .post(
            "/api/v1/auth/login",
            &Auth::None,
            json!({"tenant": "strict", "email": "owner2@strict.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "sso_required"));
    // ... and allowed for the break-glass owner, who must have a second factor (held for
    // enrolment at the first such sign-in).
    let (owner, _) = crate::support::login_enrolling_totp(&s, "strict", "owner@strict.test").await;
    // The member signs in with SSO instead.
    idp.next_login("member-sub", "member@strict.test", true)
        .await;
    let (st, v, _) = sso_login(&s, &idp, "strict").await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // The last break-glass owner cannot be unmarked while SSO is required.
    let path = format!("/api/v1/users/{}/break-glass", t.owner_id);
    let (st, v) = s.call(Method::DELETE, &path, &owner, None).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "break_glass_required")
    );
    // Removing SSO lifts the restriction.
    let (st, _) = s
        .call(Method::DELETE, "/api/v1/settings/sso", &owner, None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        last_event(&s, &owner, "settings.sso.delete").await["outcome"],
        "success"
    );
    let (st, _) = s.call(Method::DELETE, &path, &owner, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        last_event(&s, &owner, "user.break_glass").await["details"]["break_glass"],
        false
    );
    s.login("strict", "member@strict.test", PASSWORD).await;
}

on_both!(
    sso_login_links_and_creates_users,
    sso_rejects_forged_responses,
    sso_required_blocks_passwords
);
