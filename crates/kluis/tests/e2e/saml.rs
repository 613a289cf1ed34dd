//! Single sign-on with SAML 2.0 against a real IdP (PyPI pysaml2's `saml2.server.Server`,
//! started by kluis-testkit): AuthnRequest redirect, the IdP's auto-submitting HTTP-POST form,
//! the ACS, on SQLite and PostgreSQL. Hostile cases use the IdP's variants (unsigned, wrong
//! audience, wrong recipient, expired, foreign key, unsolicited), replays, cross-browser
//! responses and every file of testdata/saml; each asserts the specific audit
//! reason, so removing a check makes its test fail.
//!
//! Built without the `saml` feature, or without python3 + pysaml2 + xmlsec1, the tests print
//! `skipped: ...` and pass, unless KLUIS_REQUIRE_SAML=1 (CI sets it).

use base64::Engine as _;
use kluis_testkit::saml::{TestSamlIdp, skip};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::support::{
    Auth, Backend, PASSWORD, Server, TenantFixture, code, on_both, tenant_fixture,
};

fn idp() -> Option<TestSamlIdp> {
    if !cfg!(feature = "saml") {
        skip("built without the saml feature");
        return None;
    }
    TestSamlIdp::start()
}

/// A browser: a cookie jar, Kluis's certificate, no automatic redirects.
fn browser(s: &Server) -> reqwest::Client {
    let kluis_cert = std::fs::read(s.dir.path().join("tls/cert.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&kluis_cert).unwrap())
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What the IdP's auto-submitting form would post.
struct Posted {
    action: String,
    response: String,
    relay_state: String,
}

/// `/sso/saml/start` in `browser`: the IdP URL with the AuthnRequest.
async fn start(s: &Server, browser: &reqwest::Client, org: &str) -> Url {
    let res = browser
        .get(s.url(&format!("/sso/saml/start?organisation={org}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FOUND,
        "start: {}",
        res.text().await.unwrap()
    );
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-kluis_saml="))
        .expect("binding cookie");
    // The ACS is reached by a cross-site POST: only a SameSite=None cookie comes along.
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("Secure")
            && cookie.contains("SameSite=None"),
        "{cookie}"
    );
    let url = Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(q.iter().any(|(k, _)| k == "SAMLRequest"), "{url}");
    assert!(q.iter().any(|(k, _)| k == "RelayState"), "{url}");
    url
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let i = page
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {page}"))
        + marker.len();
    page[i..i + page[i..].find('"').unwrap()].to_owned()
}

/// The IdP signs in `email` (the NameID too) and answers with its form; `variant` picks what
/// it gets wrong.
async fn at_idp(idp_url: &Url, email: &str, variant: &str) -> Posted {
    let mut url = idp_url.clone();
    url.query_pairs_mut()
        .append_pair("email", email)
        .append_pair("name", "SAML Person")
        .append_pair("variant", variant);
    let res = reqwest::get(url).await.unwrap();
    let status = res.status();
    let page = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "IdP: {page}");
    Posted {
        action: hidden_action(&page),
        response: hidden(&page, "SAMLResponse"),
        relay_state: hidden(&page, "RelayState"),
    }
}

fn hidden_action(page: &str) -> String {
    let i = page.find("action=\"").unwrap() + 8;
    page[i..i + page[i..].find('"').unwrap()].to_owned()
}

/// Posts the form like the browser would: (status, body, session when signed in).
async fn post(browser: &reqwest::Client, p: &Posted) -> (StatusCode, Value, Option<Auth>) {
    let res = browser
        .post(&p.action)
        .form(&[
            ("SAMLResponse", p.response.as_str()),
            ("RelayState", p.relay_state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-kluis_session="));
    let body: Value = res.json().await.unwrap();
    let auth = session.map(|c| Auth::Session {
        cookie: c
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned(),
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    });
    (status, body, auth)
}

/// One whole sign-in in a fresh browser.
async fn login(
    s: &Server,
    org: &str,
    email: &str,
    variant: &str,
) -> (StatusCode, Value, Option<Auth>) {
    let b = browser(s);
    let url = start(s, &b, org).await;
    let p = at_idp(&url, email, variant).await;
    post(&b, &p).await
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

/// Asserts the newest `auth.login` event is a failed SAML sign-in for `reason`.
async fn assert_failure(s: &Server, t: &TenantFixture, reason: &str) {
    let e = last_event(s, &t.owner, "auth.login").await;
    assert_eq!(e["outcome"], "failure", "{e}");
    assert_eq!(e["details"]["method"], "saml", "{e}");
    assert_eq!(e["details"]["reason"], reason, "{e}");
}

async fn configure(s: &Server, t: &TenantFixture, idp: &TestSamlIdp, extra: Value) -> Value {
    let mut body = json!({
        "idp_entity_id": idp.entity_id, "idp_sso_url": idp.sso_url,
        "idp_certificate_pem": idp.cert_pem, "allowed_domains": ["saml.test"],
        "jit_enabled": false, "sso_required": false
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/sso/saml",
            &t.owner,
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

async fn saml_login_links_and_creates_users(b: Backend) {
    let Some(idp) = idp() else { return };
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "saml").await;

    // Changing SSO is privileged: not members, not API keys.
    let body = json!({"idp_entity_id": idp.entity_id, "idp_sso_url": idp.sso_url,
        "idp_certificate_pem": idp.cert_pem, "allowed_domains": ["saml.test"],
        "jit_enabled": true, "sso_required": false});
    for who in [&t.member, &t.key] {
        let (st, v) = s
            .call(
                Method::PUT,
                "/api/v1/settings/sso/saml",
                who,
                Some(body.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    }
    // Bad input: clear 422s.
    for (k, bad, want) in [
        (
            "idp_certificate_pem",
            json!("not a certificate"),
            "invalid_certificate",
        ),
        (
            "idp_sso_url",
            json!("http://idp.example/sso"),
            "invalid_sso_url",
        ),
        ("allowed_domains", json!([]), "invalid_domains"),
    ] {
        let mut b2 = body.clone();
        b2[k] = bad;
        let (st, v) = s
            .call(Method::PUT, "/api/v1/settings/sso/saml", &t.owner, Some(b2))
            .await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, want),
            "{v}"
        );
    }

    let doc = configure(&s, &t, &idp, json!({})).await;
    let sp_entity = s.url(&format!("/sso/saml/{}/metadata", t.id));
    let acs = s.url(&format!("/sso/saml/{}/acs", t.id));
    assert_eq!(doc["sp_entity_id"], sp_entity.as_str(), "{doc}");
    assert_eq!(doc["acs_url"], acs.as_str());
    let e = last_event(&s, &t.owner, "settings.sso.update").await;
    assert_eq!(e["outcome"], "success", "{e}");
    assert_eq!(e["details"]["new"]["provider"], "saml", "{e}");
    assert_eq!(e["details"]["new"]["issuer"], idp.entity_id.as_str(), "{e}");
    // The shared SSO settings show the SAML provider.
    let (st, v) = s.get("/api/v1/settings/sso", &t.owner).await;
    assert_eq!(
        (st, v["provider"].as_str()),
        (StatusCode::OK, Some("saml")),
        "{v}"
    );
    // OpenID Connect sign-in is not the way in for this tenant.
    let (st, v) = s
        .get("/sso/oidc/start?organisation=saml", &Auth::None)
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "sso_use_saml"),
        "{v}"
    );
    // Public SP metadata (the IdP fetches it too).
    let res = s.client.get(&sp_entity).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let md = res.text().await.unwrap();
    assert!(md.contains(&acs) && md.contains("EntityDescriptor"), "{md}");

    // An existing user, first sign-in: linked by email in an allowed domain.
    let (_, u) = s
        .post(
            "/api/v1/users",
            &t.owner,
            json!({"email": "Anna@SAML.test", "display_name": "Anna", "role": "manager"}),
        )
        .await;
    let anna = u["id"].as_str().unwrap().to_owned();
    let (st, v, auth) = login(&s, "saml", "anna@saml.test", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let auth = auth.expect("session cookie");
    let (st, me) = s.get("/api/v1/me", &auth).await;
    assert_eq!(
        (st, me["id"].as_str()),
        (StatusCode::OK, Some(anna.as_str()))
    );
    let e = last_event(&s, &t.owner, "auth.login").await;
    assert_eq!(e["outcome"], "success", "{e}");
    assert_eq!(e["details"]["method"], "saml", "{e}");
    assert_eq!(e["object_id"], anna.as_str());
    let link = last_event(&s, &t.owner, "user.sso_link").await;
    assert_eq!(link["details"]["via"], "email", "{link}");
    // A signed Response (with or without a signed Assertion inside) works as well.
    for variant in ["sign_response", "sign_both"] {
        let (st, v, _) = login(&s, "saml", "anna@saml.test", variant).await;
        assert_eq!(st, StatusCode::OK, "{variant}: {v}");
    }

    // Unknown person, JIT off: refused. Another domain: refused.
    let (st, v, auth) = login(&s, "saml", "bob@saml.test", "").await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "sso_no_account"),
        "{v}"
    );
    assert!(auth.is_none());
    assert_failure(&s, &t, "no_account").await;
    let (st, v, _) = login(&s, "saml", "eve@elsewhere.test", "").await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "sso_domain_not_allowed"),
        "{v}"
    );
    assert_failure(&s, &t, "domain_not_allowed").await;

    // JIT on: created with the default role at first sign-in.
    configure(&s, &t, &idp, json!({"jit_enabled": true})).await;
    let (st, v, auth) = login(&s, "saml", "bob@saml.test", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, me) = s.get("/api/v1/me", &auth.unwrap()).await;
    assert_eq!(me["email"], "bob@saml.test", "{me}");
    assert_eq!(me["role"], "member", "{me}");
    let created = last_event(&s, &t.owner, "user.create").await;
    assert_eq!(created["details"]["via"], "sso_jit", "{created}");

    // The sign-in page's SSO button finds SAML; a browser posting the IdP's form gets a page
    // that moves on to /account, where its new session works.
    let b = browser(&s);
    let res = b
        .get(s.url("/sign-in/sso?organisation=saml"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let url = Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(url.as_str().starts_with(idp.sso_url.as_str()), "{url}");
    let p = at_idp(&url, "bob@saml.test", "").await;
    let res = b
        .post(&p.action)
        .header("accept", "text/html,application/xhtml+xml")
        .form(&[
            ("SAMLResponse", p.response.as_str()),
            ("RelayState", p.relay_state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("content=\"0; url=/account\""), "{page}");
    let res = b.get(s.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("bob@saml.test"));
}

async fn saml_rejects_hostile_responses(b: Backend) {
    let Some(idp) = idp() else { return };
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "saml").await;
    configure(&s, &t, &idp, json!({})).await;
    s.post(
        "/api/v1/users",
        &t.owner,
        json!({"email": "anna@saml.test", "display_name": "Anna", "role": "member"}),
    )
    .await;

    // What the IdP gets wrong, and the reason Kluis records.
    for (variant, reason) in [
        ("unsigned", "unsigned"),
        ("wrong_audience", "wrong_audience"),
        ("wrong_recipient", "wrong_recipient"),
        ("wrong_destination", "wrong_destination"),
        ("expired", "expired"),
        ("other_key", "signature_invalid"),
        ("unsolicited", "in_response_to_mismatch"),
    ] {
        let (st, v, auth) = login(&s, "saml", "anna@saml.test", variant).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNAUTHORIZED, "sso_failed"),
            "{variant}: {v}"
        );
        assert!(auth.is_none(), "{variant}");
        assert_failure(&s, &t, reason).await;
    }

    // Replay: the same response again (same RelayState) finds no pending sign-in ...
    let a = browser(&s);
    let pa = at_idp(&start(&s, &a, "saml").await, "anna@saml.test", "").await;
    let (st, v, _) = post(&a, &pa).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v, _) = post(&a, &pa).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "sso_state_invalid"),
        "{v}"
    );
    assert_failure(&s, &t, "state_unknown").await;
    // ... and inside a fresh sign-in of another browser the replay cache refuses it.
    let c = browser(&s);
    let pc = at_idp(&start(&s, &c, "saml").await, "anna@saml.test", "").await;
    let replay = Posted {
        action: pc.action.clone(),
        response: pa.response.clone(),
        relay_state: pc.relay_state.clone(),
    };
    let (st, v, _) = post(&c, &replay).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNAUTHORIZED, "sso_failed"),
        "{v}"
    );
    assert_failure(&s, &t, "assertion_replayed").await;

    // A response to another browser's request (never used yet) does not sign this one in.
    let d = browser(&s);
    let e = browser(&s);
    let pd = at_idp(&start(&s, &d, "saml").await, "anna@saml.test", "").await;
    let pe = at_idp(&start(&s, &e, "saml").await, "anna@saml.test", "").await;
    let crossed = Posted {
        action: pe.action.clone(),
        response: pd.response.clone(),
        relay_state: pe.relay_state.clone(),
    };
    let (st, v, _) = post(&e, &crossed).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNAUTHORIZED, "sso_failed"),
        "{v}"
    );
    assert_failure(&s, &t, "in_response_to_mismatch").await;
    // A browser without the binding cookie cannot finish someone else's sign-in.
    let (st, v, _) = post(&browser(&s), &pd).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "sso_state_invalid"),
        "{v}"
    );
    assert_failure(&s, &t, "browser_mismatch").await;

    // Wrong issuer: the tenant trusts another entity id (same certificate).
    configure(
        &s,
        &t,
        &idp,
        json!({"idp_entity_id": "https://other-idp.example/idp"}),
    )
    .await;
    let (st, _, _) = login(&s, "saml", "anna@saml.test", "").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_failure(&s, &t, "wrong_issuer").await;

    // The hostile files: the tenant trusts exactly the IdP they were signed for (its
    // certificate and entity id, SHA-1 allowed as they use it), so the attack itself is the only
    // reason to refuse them. Signature and shape are checked before audience, destination,
    // time or InResponseTo, so those differences never decide.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/saml");
    assert!(
        dir.join("idp-cert.pem").exists(),
        "{} is missing",
        dir.display()
    );
    let file_cert = std::fs::read_to_string(dir.join("idp-cert.pem")).unwrap();
    let hostile = [
        ("saml_unsigned.xml", "unsigned"),
        (
            "signed-assertion-with-hmac.xml",
            "signature_algorithm_not_allowed",
        ),
        (
            "signed-response-with-hmac.xml",
            "signature_algorithm_not_allowed",
        ),
        ("signed-xsw-assertion-assertion.xml", "ambiguous_document"),
        ("signed-xsw-assertion-extensions.xml", "ambiguous_document"),
        (
            "signed-xsw-assertion-in-assertion-first-sig.xml",
            "ambiguous_document",
        ),
        ("signed-xsw-assertion-wrapper.xml", "ambiguous_document"),
        (
            "signed-xsw-response-in-response-first-sig.xml",
            "ambiguous_document",
        ),
    ];
    // Every file of the directory is covered (the embedded-certificate one below).
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    files.sort();
    let mut covered: Vec<String> = hostile.iter().map(|(f, _)| (*f).to_owned()).collect();
    covered.push("signed-assertion-random-embedded-cert.xml".into());
    covered.sort();
    assert_eq!(files, covered, "a hostile file is not tested");

    let acs = s.url(&format!("/sso/saml/{}/acs", t.id));
    let post_file = |file: &'static str| {
        let s = &s;
        let action = acs.clone();
        let xml = std::fs::read(dir.join(file)).unwrap();
        async move {
            let br = browser(s);
            let idp_url = start(s, &br, "saml").await;
            let relay = idp_url
                .query_pairs()
                .find(|(k, _)| k == "RelayState")
                .unwrap()
                .1
                .into_owned();
            let p = Posted {
                action,
                response: base64::engine::general_purpose::STANDARD.encode(&xml),
                relay_state: relay,
            };
            post(&br, &p).await
        }
    };
    let file_idp = json!({"idp_entity_id": "urn:mace:example.com:saml:roland:idp",
        "idp_certificate_pem": file_cert, "allow_sha1": true});
    configure(&s, &t, &idp, file_idp.clone()).await;
    for (file, reason) in hostile {
        let (st, v, auth) = post_file(file).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNAUTHORIZED, "sso_failed"),
            "{file}: {v}"
        );
        assert!(auth.is_none());
        let e = last_event(&s, &t.owner, "auth.login").await;
        assert_eq!(e["details"]["reason"], reason, "{file}: {e}");
    }
    // Genuinely signed by the IdP, with some other certificate in KeyInfo: that certificate
    // is ignored. Trusting the IdP's certificate, the signature verifies (the file is from
    // 2020, so it is then refused as expired); trusting the embedded one, it does not.
    let embedded = "signed-assertion-random-embedded-cert.xml";
    let (st, _, _) = post_file(embedded).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_failure(&s, &t, "expired").await;
    let xml = std::fs::read_to_string(dir.join(embedded)).unwrap();
    let start_tag = "<ds:X509Certificate>";
    let i = xml.find(start_tag).unwrap() + start_tag.len();
    let b64: String = xml[i..i + xml[i..].find('<').unwrap()]
        .split_whitespace()
        .collect();
    let foreign = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
    let mut foreign_idp = file_idp.clone();
    foreign_idp["idp_certificate_pem"] = json!(foreign);
    configure(&s, &t, &idp, foreign_idp).await;
    let (st, _, _) = post_file(embedded).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_failure(&s, &t, "signature_invalid").await;
}

async fn saml_required_blocks_passwords(b: Backend) {
    let Some(idp) = idp() else { return };
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "saml").await;
    configure(&s, &t, &idp, json!({})).await;
    let mut body = json!({"idp_entity_id": idp.entity_id, "idp_sso_url": idp.sso_url,
        "idp_certificate_pem": idp.cert_pem, "allowed_domains": ["saml.test"],
        "jit_enabled": false, "sso_required": true});
    // Requiring SSO without a break-glass owner would risk a lock-out.
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/sso/saml",
            &t.owner,
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "break_glass_required"),
        "{v}"
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
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/sso/saml",
            &t.owner,
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["sso_required"], true);
    let e = last_event(&s, &t.owner, "settings.sso.update").await;
    assert_eq!(e["details"]["new"]["sso_required"], true, "{e}");

    // The member's password no longer signs in; the break-glass owner's does.
    let (st, v) = s
        .post(
            "/api/v1/auth/login",
            &Auth::None,
            json!({"tenant": "saml", "email": "member@saml.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "sso_required"),
        "{v}"
    );
    // (An emergency account needs a second factor: enrolment at this first sign-in.)
    crate::support::login_enrolling_totp(&s, "saml", "owner@saml.test").await;
    // The member signs in through the IdP instead.
    let (st, v, auth) = login(&s, "saml", "member@saml.test", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, me) = s.get("/api/v1/me", &auth.unwrap()).await;
    assert_eq!(me["id"], t.member_id.as_str());

    // Lifting the requirement restores passwords.
    body["sso_required"] = json!(false);
    let (st, _) = s
        .call(
            Method::PUT,
            "/api/v1/settings/sso/saml",
            &t.owner,
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    s.login("saml", "member@saml.test", PASSWORD).await;
}

on_both!(
    saml_login_links_and_creates_users,
    saml_rejects_hostile_responses,
    saml_required_blocks_passwords
);

/// Built without the feature, configuring SAML is a clear 4xx.
#[cfg(not(feature = "saml"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_not_built_is_a_clear_error() {
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "nosaml").await;
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/sso/saml",
            &t.owner,
            Some(
                json!({"idp_entity_id": "x", "idp_sso_url": "https://idp.example/sso",
                "idp_certificate_pem": "x", "allowed_domains": ["nosaml.test"],
                "jit_enabled": false, "sso_required": false}),
            ),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "saml_not_built"),
        "{v}"
    );
    let (st, v) = s
        .get("/sso/saml/start?organisation=nosaml", &Auth::None)
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "saml_not_built"),
        "{v}"
    );
}
