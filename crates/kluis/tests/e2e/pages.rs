//! The server-rendered pages, driven like a browser does (cookie jar, form posts, redirects
//! followed by hand so each step is checked): sign-in with a second factor, forced enrolment,
//! sign-out, the account and admin pages, the two languages, and the defences around forms.

use std::time::{SystemTime, UNIX_EPOCH};

use kluis_crypto::totp;
use reqwest::StatusCode;
use serde_json::json;

use crate::audit::events;
use crate::support::{Backend, PASSWORD, Server, client_with, on_both, tenant_fixture};

on_both!(
    sign_in_with_a_second_factor_and_sign_out,
    forced_enrolment_and_admin_pages,
);

/// Headless Chromium signs in with password + TOTP and signs out, through the real pages under
/// the real CSP (any CSP violation or script error fails the run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_with_totp_and_signs_out() {
    let Some(tools) = kluis_testkit::browser::browser_tools() else {
        return;
    };
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "chromium").await;
    let (_, e) = s.post("/api/v1/me/mfa/totp", &t.member, json!({})).await;
    let secret = e["secret"].as_str().unwrap().to_owned();
    let (st, v) = s
        .post(
            "/api/v1/me/mfa/totp/confirm",
            &t.member,
            json!({"code": totp_now(&secret)}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let input = json!({
        "base": format!("https://localhost:{}", s.port),
        "cert": s.dir.path().join("tls/cert.pem"),
        "organisation": "chromium",
        "email": "member@chromium.test",
        "password": PASSWORD,
        // The enrolment used this step's code; a code works once, so the next step's.
        "code": totp_step(&secret, 1),
        "chromium": tools.chromium,
    });
    let (ok, out, err) = tools.run("sign_in_totp.mjs", &input);
    eprintln!("{out}");
    assert!(ok, "browser run failed:\n{out}\n{err}");
    assert!(out.contains("\"mfa\":\"On\""), "{out}");
    assert!(out.contains("{\"ok\":true}"), "{out}");
    let e = events(&s, &t.owner, "&action=auth.logout").await;
    assert_eq!(e.len(), 1, "{e:?}");
}

/// Headless Chromium with a virtual authenticator adds a passkey on the account page and then
/// signs in with it, passwordless, through the pages and their one script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_adds_a_passkey_and_signs_in_with_it() {
    let Some(tools) = kluis_testkit::browser::browser_tools() else {
        return;
    };
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "sleutel").await;
    let input = json!({
        "base": format!("https://localhost:{}", s.port),
        "cert": s.dir.path().join("tls/cert.pem"),
        "organisation": "sleutel",
        "email": "member@sleutel.test",
        "password": PASSWORD,
        "chromium": tools.chromium,
    });
    let (ok, out, err) = tools.run("passkey.mjs", &input);
    eprintln!("{out}");
    assert!(ok, "browser run failed:\n{out}\n{err}");
    assert!(out.contains("{\"ok\":true}"), "{out}");
    let e = events(&s, &t.owner, "&action=passkey.register").await;
    assert_eq!(e.len(), 1, "{e:?}");
    let e = events(&s, &t.owner, "&action=auth.login").await;
    assert!(
        e.iter()
            .any(|e| e["details"]["method"] == "passkey" && e["outcome"] == "success"),
        "{e:?}"
    );
}

/// A browser: its own cookie jar, no automatic redirects.
pub fn browser(s: &Server) -> reqwest::Client {
    let cert = std::fs::read(s.dir.path().join("tls/cert.pem")).unwrap();
    client_with(&cert, s.port, true)
}

pub fn totp_now(secret_b32: &str) -> String {
    totp_step(secret_b32, 0)
}

/// The code `steps` time steps from now (the server accepts one step of skew; a code already
/// used, e.g. at enrolment, is refused, so a second sign-in uses the next step's code).
pub fn totp_step(secret_b32: &str, steps: u64) -> String {
    let secret = totp::secret_from_base32(secret_b32).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp::code_at(&secret, now + 30 * steps).unwrap()
}

/// A browser signed in through the sign-in page (which answers with a redirect), and its
/// session's CSRF token as the pages carry it. The page tests share it.
pub async fn signed_in(s: &Server, org: &str, email: &str) -> (reqwest::Client, String) {
    let c = browser(s);
    let (_, _, html) = get(&c, s, "/sign-in").await;
    let ft = field(&html, "form_token");
    let (st, loc, body) = post(
        &c,
        s,
        "/sign-in",
        &[
            ("form_token", &ft),
            ("organisation", org),
            ("email", email),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/account"),
        "{body}"
    );
    let (st, _, html) = get(&c, s, "/account").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let csrf = field(&html, "csrf");
    (c, csrf)
}

/// The value of `<input ... name="NAME" value="...">` in a page.
pub fn field(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no field {name} in page:\n{html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

pub async fn get(c: &reqwest::Client, s: &Server, path: &str) -> (StatusCode, String, String) {
    let r = c.get(s.url(path)).send().await.unwrap();
    let st = r.status();
    let loc = location(&r);
    (st, loc, r.text().await.unwrap())
}

pub async fn post(
    c: &reqwest::Client,
    s: &Server,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let r = c.post(s.url(path)).form(form).send().await.unwrap();
    let st = r.status();
    let loc = location(&r);
    (st, loc, r.text().await.unwrap())
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// No inline script, inline style or event-handler attribute: the CSP (`script-src 'self'`,
/// `style-src 'self'`) would block them, and their absence is what makes that CSP possible.
pub fn assert_no_inline_code(html: &str) {
    let lower = html.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("<script") {
        let tag_end = rest[i..].find('>').unwrap() + i;
        assert!(rest[i..tag_end].contains(" src="), "inline script: {html}");
        rest = &rest[tag_end..];
    }
    assert!(!lower.contains(" style="), "inline style attribute");
    assert!(!lower.contains("<style"), "inline style element");
    for attr in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onerror=",
        " ondrop=",
        "javascript:",
    ] {
        assert!(!lower.contains(attr), "inline handler {attr}");
    }
}

async fn sign_in_with_a_second_factor_and_sign_out(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "pagina").await;
    let email = "member@pagina.test";
    // The member enrols TOTP through the API.
    let (_, e) = s.post("/api/v1/me/mfa/totp", &t.member, json!({})).await;
    let secret = e["secret"].as_str().unwrap().to_owned();
    let (st, v) = s
        .post(
            "/api/v1/me/mfa/totp/confirm",
            &t.member,
            json!({"code": totp_now(&secret)}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let c = browser(&s);
    let r = c.get(s.url("/sign-in")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.starts_with("__Host-kluis_form=")
            && set_cookie.contains("HttpOnly")
            && set_cookie.contains("Secure")
            && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let html = r.text().await.unwrap();
    assert_no_inline_code(&html);
    let form_token = field(&html, "form_token");

    // A form post without the browser's form cookie (another site's form) is refused.
    let stranger = browser(&s);
    let (st, _, _) = post(
        &stranger,
        &s,
        "/sign-in",
        &[
            ("form_token", &form_token),
            ("organisation", "pagina"),
            ("email", email),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // And so is one the browser marks as cross-site, even with the right token.
    let r = c
        .post(s.url("/sign-in"))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("form_token", form_token.as_str()),
            ("organisation", "pagina"),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A wrong password: the page again, the generic message, the password not echoed.
    let (st, _, html) = post(
        &c,
        &s,
        "/sign-in",
        &[
            ("form_token", &form_token),
            ("organisation", "pagina"),
            ("email", email),
            ("password", "Wrong-Password-99!"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(html.contains("Sign-in failed"), "{html}");
    assert!(!html.contains("Wrong-Password-99!"));
    assert!(html.contains(email), "the email stays filled in");

    // The right password leads to the second step; nothing else is reachable meanwhile.
    let (st, loc, _) = post(
        &c,
        &s,
        "/sign-in",
        &[
            ("form_token", &form_token),
            ("organisation", "pagina"),
            ("email", email),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!((st, loc.as_str()), (StatusCode::SEE_OTHER, "/sign-in/2fa"));
    for page in [
        "/account",
        "/admin/security",
        "/",
        "/contacts",
        "/search?q=x",
    ] {
        let (st, loc, _) = get(&c, &s, page).await;
        assert!(st.is_redirection(), "{page}: {st}");
        assert!(
            loc == "/sign-in/2fa" || loc == "/account" || loc == "/contacts",
            "{page} -> {loc}"
        );
        if loc == "/account" || loc == "/contacts" {
            let (_, loc, _) = get(&c, &s, &loc).await;
            assert_eq!(loc, "/sign-in/2fa");
        }
    }
    let (st, _, html) = get(&c, &s, "/sign-in/2fa").await;
    assert_eq!(st, StatusCode::OK);
    assert_no_inline_code(&html);
    let csrf = field(&html, "csrf");
    // No form of a signed-in page acts for a session still waiting for its second factor,
    // even with that session's own CSRF token: each sends the browser to the second step.
    // (Every field any of these forms takes, so each form parses and reaches the check.)
    let all_fields = [
        ("csrf", csrf.as_str()),
        ("current_password", PASSWORD),
        ("new_password", "Nieuw-Wachtwoord-77!"),
        ("code", "123456"),
        ("password", PASSWORD),
        ("session", "00000000-0000-0000-0000-000000000000"),
        ("passkey", "00000000-0000-0000-0000-000000000000"),
        ("user", &t.owner_id),
        ("action", "reset_mfa"),
        ("member", "on"),
        ("min_length", "20"),
        ("provider", "oidc"),
        ("issuer", "https://idp.example"),
        ("client_id", "x"),
        ("allowed_domains", "pagina.test"),
        ("jit_role", "member"),
        ("idp_entity_id", "https://idp.example"),
        ("idp_sso_url", "https://idp.example/sso"),
        ("idp_certificate_pem", "x"),
        ("default_role", "member"),
        ("mappings", "A = admin"),
    ];
    for form in [
        "/account/password",
        "/account/mfa/disable",
        "/account/mfa/recovery-codes",
        "/account/sessions/revoke",
        "/account/sessions/revoke-all",
        "/account/passkeys/delete",
        "/admin/security/mfa-policy",
        "/admin/security/password-policy",
        "/admin/security/sso",
        "/admin/security/sso/remove",
        "/admin/security/saml",
        "/admin/security/scim/token",
        "/admin/security/scim/revoke",
        "/admin/security/scim/mapping",
        "/admin/security/users/action",
        "/sign-out",
    ] {
        let (st, loc, body) = post(&c, &s, form, &all_fields).await;
        assert_eq!(
            (st, loc.as_str()),
            (StatusCode::SEE_OTHER, "/sign-in/2fa"),
            "{form}: {body}"
        );
    }
    let (_, v) = s.get("/api/v1/settings/mfa", &t.owner).await;
    assert_eq!(v["required_roles"], json!([]), "nothing was changed: {v}");
    let wrong = if totp_step(&secret, 1) == "000000" || totp_now(&secret) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (st, _, html) = post(&c, &s, "/sign-in/2fa", &[("csrf", &csrf), ("code", wrong)]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(html.contains("wrong, expired or already used"), "{html}");
    // Without the CSRF token the post is refused outright.
    let (st, _, _) = post(&c, &s, "/sign-in/2fa", &[("csrf", "x"), ("code", "123456")]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let code = totp_step(&secret, 1);
    let (st, loc, _) = post(&c, &s, "/sign-in/2fa", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!((st, loc.as_str()), (StatusCode::SEE_OTHER, "/account"));

    let (st, _, html) = get(&c, &s, "/account").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_no_inline_code(&html);
    assert!(html.contains(email));
    assert!(html.contains("id=\"mfa-state\">On<"), "{html}");
    // A member is no administrator.
    assert!(!html.contains("/admin/security"));
    let (st, _, _) = get(&c, &s, "/admin/security").await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // The page's sign-in is the same audited event as the API's.
    let e = events(&s, &t.owner, "&action=auth.login").await;
    assert!(
        e.iter()
            .any(|e| e["details"]["method"] == "password+totp" && e["outcome"] == "success"),
        "{e:?}"
    );

    // Sign out: a forged form is refused, the real one ends the session.
    let csrf = field(&html, "csrf");
    let (st, _, _) = post(&c, &s, "/sign-out", &[("csrf", "forged")]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, loc, _) = post(&c, &s, "/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((st, loc.as_str()), (StatusCode::SEE_OTHER, "/sign-in"));
    let (st, loc, _) = get(&c, &s, "/account").await;
    assert_eq!((st, loc.as_str()), (StatusCode::SEE_OTHER, "/sign-in"));

    // Dutch for a Dutch browser, English after choosing it; the switch is no open redirect.
    let nl = browser(&s);
    let r = nl
        .get(s.url("/sign-in"))
        .header("accept-language", "nl-NL,nl;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("<html lang=\"nl\">") && html.contains("Wachtwoord vergeten?"));
    let (st, loc, _) = get(&nl, &s, "/lang/en?next=/sign-in").await;
    assert_eq!((st, loc.as_str()), (StatusCode::SEE_OTHER, "/sign-in"));
    let html = nl
        .get(s.url("/sign-in"))
        .header("accept-language", "nl")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Forgot your password?"));
    let (_, loc, _) = get(&nl, &s, "/lang/nl?next=//evil.example/").await;
    assert_eq!(loc, "/sign-in");

    // Forgotten password: the same answer for a known and an unknown address (this server
    // sends no email, so the answer says so rather than promising a link).
    let (_, _, html) = get(&nl, &s, "/sign-in").await;
    let ft = field(&html, "form_token");
    let mut answers = Vec::new();
    for who in [email, "nobody@pagina.test"] {
        let (st, _, html) = post(
            &nl,
            &s,
            "/forgot-password",
            &[
                ("form_token", &ft),
                ("organisation", "pagina"),
                ("email", who),
            ],
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        answers.push(html);
    }
    assert_eq!(answers[0], answers[1]);
    assert!(
        answers[0].contains("cannot send email") || answers[0].contains("geen e-mail versturen"),
        "{}",
        answers[0]
    );
}

async fn forced_enrolment_and_admin_pages(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "beheer").await;

    // The owner signs in (no second factor required of owners yet) and opens the admin page.
    let owner = browser(&s);
    let (_, _, html) = get(&owner, &s, "/sign-in").await;
    let ft = field(&html, "form_token");
    let (st, loc, _) = post(
        &owner,
        &s,
        "/sign-in",
        &[
            ("form_token", &ft),
            ("organisation", "beheer"),
            ("email", "owner@beheer.test"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!((st, loc.as_str()), (StatusCode::SEE_OTHER, "/account"));
    let (st, _, html) = get(&owner, &s, "/admin/security").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_no_inline_code(&html);
    assert!(html.contains("member@beheer.test"));
    let csrf = field(&html, "csrf");

    // Require a second factor of members.
    let (st, loc, _) = post(
        &owner,
        &s,
        "/admin/security/mfa-policy",
        &[("csrf", &csrf), ("member", "on")],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/admin/security?done=saved")
    );
    let (_, v) = s.get("/api/v1/settings/mfa", &t.owner).await;
    assert_eq!(v["required_roles"], json!(["member"]), "{v}");

    // A weaker password policy is refused with the rule named; a stricter one is saved.
    let (st, _, html) = post(
        &owner,
        &s,
        "/admin/security/password-policy",
        &[("csrf", &csrf), ("min_length", "4")],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("class=\"notice error\""));
    let (st, _, _) = post(
        &owner,
        &s,
        "/admin/security/password-policy",
        &[
            ("csrf", &csrf),
            ("min_length", "14"),
            ("require_upper", "on"),
            ("require_lower", "on"),
            ("require_digit", "on"),
            ("require_special", "on"),
            ("reject_common", "on"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get("/api/v1/settings/password-policy", &t.owner).await;
    assert_eq!(v["min_length"], 14, "{v}");

    // The member now signs in and is held at enrolment until a second factor exists.
    let m = browser(&s);
    let (_, _, html) = get(&m, &s, "/sign-in").await;
    let ft = field(&html, "form_token");
    let (st, loc, _) = post(
        &m,
        &s,
        "/sign-in",
        &[
            ("form_token", &ft),
            ("organisation", "beheer"),
            ("email", "member@beheer.test"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/sign-in/enrol")
    );
    let (st, loc, _) = get(&m, &s, "/account").await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/sign-in/enrol")
    );
    let (st, _, html) = get(&m, &s, "/sign-in/enrol").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("requires two-step verification"));
    let csrf_m = field(&html, "csrf");
    let (st, _, html) = post(&m, &s, "/sign-in/enrol/start", &[("csrf", &csrf_m)]).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(html.contains("src=\"data:image/svg+xml;base64,"));
    assert_no_inline_code(&html);
    let secret = {
        let at = html.find("<code id=\"secret\">").unwrap() + 18;
        html[at..at + html[at..].find('<').unwrap()].to_owned()
    };
    let (st, _, html) = post(
        &m,
        &s,
        "/sign-in/enrol/confirm",
        &[("csrf", &csrf_m), ("code", &totp_now(&secret))],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_eq!(html.matches("<li><code>").count(), 10, "{html}");
    let (st, _, html) = get(&m, &s, "/account").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(html.contains("Required by your organisation"));

    // The admin's user actions: sign out all of the member's sessions.
    let member_id = t.member_id.clone();
    let (st, loc, _) = post(
        &owner,
        &s,
        "/admin/security/users/action",
        &[
            ("csrf", &csrf),
            ("user", &member_id),
            ("action", "end_sessions"),
        ],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/admin/security?done=revoked")
    );
    let (st, loc, _) = get(&m, &s, "/account").await;
    assert_eq!((st, loc.as_str()), (StatusCode::SEE_OTHER, "/sign-in"));
    let (st, _) = s.get("/api/v1/me", &t.member).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Reset the member's second factor: audited like the API's.
    let (st, _, _) = post(
        &owner,
        &s,
        "/admin/security/users/action",
        &[
            ("csrf", &csrf),
            ("user", &member_id),
            ("action", "reset_mfa"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let e = events(&s, &t.owner, "&action=mfa.reset").await;
    assert_eq!(e.len(), 1, "{e:?}");

    // SSO settings: a bad issuer is refused with the reason on the page; nothing stored.
    let (st, _, html) = post(
        &owner,
        &s,
        "/admin/security/sso",
        &[
            ("csrf", &csrf),
            ("provider", "oidc"),
            ("issuer", "http://not-https.example"),
            ("client_id", "kluis"),
            ("client_secret", "s3cret-value"),
            ("allowed_domains", "beheer.test"),
            ("jit_role", "member"),
        ],
    )
    .await;
    assert!(st.is_client_error(), "{st}: {html}");
    assert!(html.contains("class=\"notice error\""));
    assert!(!html.contains("s3cret-value"));
    let (st, _) = s.get("/api/v1/settings/sso", &t.owner).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // SAML through the admin page: a bad certificate is refused with the reason...
    let saml_form = |cert: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("idp_entity_id", "https://idp.beheer.test".to_owned()),
            ("idp_sso_url", "https://idp.beheer.test/sso".to_owned()),
            ("idp_certificate_pem", cert.to_owned()),
            ("allowed_domains", "beheer.test".to_owned()),
            ("jit_role", "member".to_owned()),
        ]
    };
    let r = owner
        .post(s.url("/admin/security/saml"))
        .form(&saml_form("not a certificate"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(r.text().await.unwrap().contains("class=\"notice error\""));
    // ... and a real one (any X.509 certificate will do: here the server's own) is saved.
    #[cfg(feature = "saml")]
    {
        let cert = std::fs::read_to_string(s.dir.path().join("tls/cert.pem")).unwrap();
        let r = owner
            .post(s.url("/admin/security/saml"))
            .form(&saml_form(&cert))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let (_, v) = s.get("/api/v1/settings/sso/saml", &t.owner).await;
        assert_eq!(v["idp_entity_id"], "https://idp.beheer.test", "{v}");
        let (_, _, html) = get(&owner, &s, "/admin/security").await;
        assert!(html.contains("id=\"sp-entity-id\""), "{html}");
    }

    // SCIM from the admin page: a token shown once that the SCIM endpoint accepts, and the
    // group-to-role mapping (a line that does not parse is named).
    let (st, _, html) = post(&owner, &s, "/admin/security/scim/token", &[("csrf", &csrf)]).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let token = {
        let at = html.find("<code id=\"scim-token\">").unwrap() + 22;
        html[at..at + html[at..].find('<').unwrap()].to_owned()
    };
    let r = s
        .client
        .get(s.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, _, html) = get(&owner, &s, "/admin/security").await;
    assert!(!html.contains(&token), "the token is shown once only");
    let (st, _, html) = post(
        &owner,
        &s,
        "/admin/security/scim/mapping",
        &[
            ("csrf", &csrf),
            ("mappings", "Kluis Admins = admin\nnonsense"),
            ("default_role", "member"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("line 2"), "{html}");
    let (st, _, _) = post(
        &owner,
        &s,
        "/admin/security/scim/mapping",
        &[
            ("csrf", &csrf),
            ("mappings", "Kluis Admins = admin"),
            ("default_role", "read_only"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get("/api/v1/scim/settings", &t.owner).await;
    assert_eq!(
        v["mappings"],
        json!([{"group": "Kluis Admins", "role": "admin"}]),
        "{v}"
    );
    assert_eq!(v["default_role"], "read_only");
    // Break-glass (emergency password sign-in) for the owner, from the users table.
    let (st, _, _) = post(
        &owner,
        &s,
        "/admin/security/users/action",
        &[
            ("csrf", &csrf),
            ("user", &t.owner_id),
            ("action", "break_glass_on"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let e = events(&s, &t.owner, "&action=user.break_glass").await;
    assert_eq!(e.len(), 1, "{e:?}");

    // An API key can never drive the pages (they take the session cookie only).
    let r = s
        .client
        .get(s.url("/account"))
        .bearer_auth(&t.key_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
