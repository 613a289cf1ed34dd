//! The settings pages (issue 15, slice "settings"), driven like a browser (cookie jar, form
//! posts, redirects checked by hand), with the JSON API read afterwards to check what was
//! stored: users (invite, role, disable), API keys (secret shown once, works, revoked),
//! custom fields, pipelines and stages, tags, the sensitive-data mode, the audit log viewer
//! (filters, export, verified checkpoint), a member's 403 page and refused forged posts; and
//! the fixes to today's pages (enrolment wrong code, forgot password without email, SAML
//! hidden without SAML, localized dates and statuses).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::pages::{browser, get, post, totp_now};
use crate::support::{Auth, Backend, Server, on_both, tenant_fixture};

on_both!(
    settings_pages_change_what_the_api_sees,
    members_get_the_403_page
);

async fn sign_in(s: &Server, org: &str, email: &str) -> (reqwest::Client, String) {
    crate::pages::signed_in(s, org, email).await
}

fn user_by_email(list: &Value, email: &str) -> Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("no user {email} in {list}"))
        .clone()
}

/// The text of `<... id="ID" ...>TEXT<`.
fn text_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    rest[start..end].to_owned()
}

async fn settings_pages_change_what_the_api_sees(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "instel").await;
    let (c, csrf) = sign_in(&s, "instel", "owner@instel.test").await;

    let (st, _, html) = get(&c, &s, "/settings").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    for link in [
        "/settings/users",
        "/settings/api-keys",
        "/settings/fields",
        "/settings/pipelines",
        "/settings/tags",
        "/settings/audit",
        "/admin/security",
    ] {
        assert!(html.contains(&format!("href=\"{link}\"")), "{link}");
    }
    // This server has no email relay: the page says so.
    assert!(html.contains("id=\"mail-off\""), "{html}");
    assert!(!html.contains(" style="));

    // Invite a user: without email the page says no invitation went out.
    let (st, loc, body) = post(
        &c,
        &s,
        "/settings/users/invite",
        &[
            ("csrf", &csrf),
            ("email", "nieuw@instel.test"),
            ("display_name", "Nieuwe Collega"),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (
            StatusCode::SEE_OTHER,
            "/settings/users?done=invited_no_mail"
        ),
        "{body}"
    );
    let (_, list) = s.get("/api/v1/users?limit=200", &t.owner).await;
    let u = user_by_email(&list, "nieuw@instel.test");
    assert_eq!(u["has_password"], false, "{u}");
    assert_eq!(u["role"], "member");
    let uid = u["id"].as_str().unwrap().to_owned();
    let (_, _, html) = get(&c, &s, &loc).await;
    assert!(
        html.contains("Nieuwe Collega") && html.contains(">Invited<"),
        "{html}"
    );
    // A bad address is refused with the page again.
    let (st, _, html) = post(
        &c,
        &s,
        "/settings/users/invite",
        &[
            ("csrf", &csrf),
            ("email", "not-an-address"),
            ("display_name", "X"),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("class=\"notice error\""), "{html}");

    // Change the role, then disable and enable.
    let (st, loc, _) = post(
        &c,
        &s,
        "/settings/users/update",
        &[("csrf", &csrf), ("user", &uid), ("role", "manager")],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/settings/users?done=user_saved")
    );
    let (_, v) = s.get(&format!("/api/v1/users/{uid}"), &t.owner).await;
    assert_eq!(v["role"], "manager", "{v}");
    let (st, _, _) = post(
        &c,
        &s,
        "/settings/users/update",
        &[
            ("csrf", &csrf),
            ("user", &t.member_id),
            ("status", "disabled"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s
        .get(&format!("/api/v1/users/{}", t.member_id), &t.owner)
        .await;
    assert_eq!(v["status"], "disabled", "{v}");
    // Disabling signed the member out everywhere.
    let (st, _) = s.get("/api/v1/me", &t.member).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (_, _, html) = get(&c, &s, "/settings/users").await;
    assert!(html.contains(">Disabled<"), "{html}");
    let (st, _, _) = post(
        &c,
        &s,
        "/settings/users/update",
        &[
            ("csrf", &csrf),
            ("user", &t.member_id),
            ("status", "active"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s
        .get(&format!("/api/v1/users/{}", t.member_id), &t.owner)
        .await;
    assert_eq!(v["status"], "active", "{v}");

    // An API key with two scopes: the secret is shown once and works against the API.
    let (st, _, html) = post(
        &c,
        &s,
        "/settings/api-keys/create",
        &[
            ("csrf", &csrf),
            ("name", "Boekhouding"),
            ("scope", "users:read"),
            ("scope", "crm:read"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let secret = text_of(&html, "api-key-secret");
    assert!(secret.starts_with("kluis_"), "{secret}");
    let key = Auth::Bearer(secret.clone());
    let (st, _) = s.get("/api/v1/users", &key).await;
    assert_eq!(st, StatusCode::OK);
    // Scopes are what was ticked: no settings writes.
    let (st, _) = s
        .call(
            reqwest::Method::PUT,
            "/api/v1/settings/sensitive-data",
            &key,
            Some(json!({"mode": "flag"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, keys) = s.get("/api/v1/apikeys", &t.owner).await;
    let k = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "Boekhouding")
        .unwrap()
        .clone();
    assert_eq!(k["scopes"], json!(["users:read", "crm:read"]), "{k}");
    let (_, _, html) = get(&c, &s, "/settings/api-keys").await;
    assert!(html.contains("Boekhouding"));
    assert!(!html.contains(&secret), "the secret is shown once only");
    let kid = k["id"].as_str().unwrap();
    let (st, loc, _) = post(
        &c,
        &s,
        "/settings/api-keys/revoke",
        &[("csrf", &csrf), ("key", kid)],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/settings/api-keys?done=revoked")
    );
    let (st, _) = s.get("/api/v1/users", &key).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // A custom field, a pipeline with stages, a tag, the sensitive-data mode.
    let (st, loc, body) = post(
        &c,
        &s,
        "/settings/fields/create",
        &[
            ("csrf", &csrf),
            ("object_type", "contact"),
            ("key", "klantnummer"),
            ("label", "Klantnummer"),
            ("kind", "text"),
            ("unique", "on"),
        ],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/settings/fields?done=created"),
        "{body}"
    );
    let (_, v) = s
        .get("/api/v1/custom-fields?object_type=contact", &t.owner)
        .await;
    let v = v["items"].clone();
    let f = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "klantnummer")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(
        (f["label"].as_str(), f["unique"].as_bool()),
        (Some("Klantnummer"), Some(true))
    );
    let fid = f["id"].as_str().unwrap();
    let (st, _, _) = post(
        &c,
        &s,
        "/settings/fields/update",
        &[("csrf", &csrf), ("field", fid), ("label", "Klantnr.")],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, _, _) = post(
        &c,
        &s,
        "/settings/fields/delete",
        &[("csrf", &csrf), ("id", fid), ("action", "delete")],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s
        .get("/api/v1/custom-fields?object_type=contact", &t.owner)
        .await;
    let v = v["items"].clone();
    let f = &v.as_array().unwrap()[0];
    assert_eq!(f["label"], "Klantnr.");
    assert!(f["deleted_at"].is_string(), "{f}");

    let (st, loc, body) = post(
        &c,
        &s,
        "/settings/pipelines/create",
        &[
            ("csrf", &csrf),
            ("object_type", "deal"),
            ("name", "Partners"),
            (
                "stages",
                "Lead\r\nOfferte\r\nGewonnen = won\r\nVerloren = lost\r\n",
            ),
        ],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/settings/pipelines?done=created"),
        "{body}"
    );
    let (_, v) = s.get("/api/v1/pipelines?object_type=deal", &t.owner).await;
    let v = v["items"].clone();
    let p = v
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Partners")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    let stages: Vec<(String, String)> = p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        stages,
        [
            ("Lead", "open"),
            ("Offerte", "open"),
            ("Gewonnen", "won"),
            ("Verloren", "lost")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    // Adding a stage keeps the others' ids.
    let lead_id = p["stages"][0]["id"].clone();
    let pid = p["id"].as_str().unwrap();
    let (st, _, body) = post(
        &c,
        &s,
        "/settings/pipelines/update",
        &[
            ("csrf", &csrf),
            ("pipeline", pid),
            ("name", "Partners"),
            (
                "stages",
                "Lead\nOfferte\nOnderhandeling\nGewonnen = won\nVerloren = lost",
            ),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let (_, v) = s.get("/api/v1/pipelines?object_type=deal", &t.owner).await;
    let v = v["items"].clone();
    let p = v
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Partners")
        .unwrap()
        .clone();
    assert_eq!(p["stages"].as_array().unwrap().len(), 5, "{p}");
    assert_eq!(p["stages"][2]["name"], "Onderhandeling");
    assert_eq!(p["stages"][0]["id"], lead_id);

    let (st, loc, _) = post(
        &c,
        &s,
        "/settings/tags/create",
        &[("csrf", &csrf), ("name", "VIP"), ("color", "#aa0000")],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/settings/tags?done=created")
    );
    let (_, v) = s.get("/api/v1/tags", &t.owner).await;
    let v = v["items"].clone();
    let tag = v
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "VIP")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(tag["color"], "#aa0000");

    let (st, loc, _) = post(
        &c,
        &s,
        "/settings/sensitive-data",
        &[("csrf", &csrf), ("mode", "flag")],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/settings?done=saved")
    );
    let (_, v) = s.get("/api/v1/settings/sensitive-data", &t.owner).await;
    assert_eq!(v["mode"], "flag");
    let (st, _, _) = post(
        &c,
        &s,
        "/settings/sensitive-data",
        &[("csrf", &csrf), ("mode", "nonsense")],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

    // The audit log viewer: the page's actions are the API's audit events.
    s.cli(&["audit", "checkpoint"], None);
    let (st, _, html) = get(&c, &s, "/settings/audit?action=user.update").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(
        !html.contains("data-result="),
        "verification runs on request: {html}"
    );
    let (st, _, html) = get(&c, &s, "/settings/audit?action=user.update&verify=1").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(html.contains("data-result=\"ok\""), "{html}");
    assert!(html.contains("id=\"checkpoint\""), "{html}");
    assert!(text_of(&html, "checkpoint").contains("kluis"), "{html}");
    assert!(html.contains("<code>user.update</code>"), "{html}");
    assert!(!html.contains("<code>tag.create</code>"), "{html}");
    // By record: the invited user's creation and role change.
    let (_, _, html) = get(&c, &s, &format!("/settings/audit?record={uid}")).await;
    assert!(html.contains("<code>user.create</code>"), "{html}");
    assert!(!html.contains("<code>tag.create</code>"), "{html}");
    // By user: the member did none of this.
    let (_, _, html) = get(
        &c,
        &s,
        &format!("/settings/audit?user={}&action=tag.create", t.member_id),
    )
    .await;
    assert!(html.contains("No events match."), "{html}");
    let (_, _, html) = get(
        &c,
        &s,
        &format!("/settings/audit?user={}&action=tag.create", t.owner_id),
    )
    .await;
    assert!(html.contains("<code>tag.create</code>"), "{html}");
    // By date: nothing in the future, everything today.
    let (_, _, html) = get(&c, &s, "/settings/audit?from=2999-01-01").await;
    assert!(html.contains("No events match."), "{html}");
    let (_, v) = s
        .get("/api/v1/audit/events?action=tag.create", &t.owner)
        .await;
    let today = v["items"][0]["at"].as_str().unwrap()[..10].to_owned();
    let (_, _, html) = get(
        &c,
        &s,
        &format!("/settings/audit?from={today}&to={today}&action=tag.create"),
    )
    .await;
    assert!(html.contains("<code>tag.create</code>"), "{html}");
    // Export of the filtered view, as CSV and JSON Lines.
    let r = c
        .get(s.url("/settings/audit/export?action=tag.create&format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = r.text().await.unwrap();
    assert!(body.starts_with("seq,at,actor,action"), "{body}");
    assert_eq!(body.lines().count(), 2, "{body}");
    let r = c
        .get(s.url("/settings/audit/export?action=tag.create&format=jsonl"))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    let line: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert_eq!(line["action"], "tag.create");
    // Reading and exporting were recorded, as through the API.
    let (_, v) = s
        .get("/api/v1/audit/events?action=audit.export", &t.owner)
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");
}

async fn members_get_the_403_page(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "verbod").await;
    let (c, csrf) = sign_in(&s, "verbod", "member@verbod.test").await;
    for page in [
        "/settings",
        "/settings/users",
        "/settings/audit",
        "/settings/api-keys",
    ] {
        let (st, _, html) = get(&c, &s, page).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{page}");
        assert!(
            html.contains("<html lang=\"en\">") && html.contains("id=\"forbidden\""),
            "{page}: a styled page, not a bare line: {html}"
        );
    }
    // Forged posts, with the member's own valid CSRF token, are refused.
    for (path, form) in [
        (
            "/settings/tags/create",
            vec![("csrf", csrf.as_str()), ("name", "Vervalst")],
        ),
        (
            "/settings/users/invite",
            vec![
                ("csrf", csrf.as_str()),
                ("email", "x@verbod.test"),
                ("display_name", "X"),
                ("role", "owner"),
            ],
        ),
        (
            "/settings/users/update",
            vec![
                ("csrf", csrf.as_str()),
                ("user", t.member_id.as_str()),
                ("role", "owner"),
            ],
        ),
        (
            "/settings/sensitive-data",
            vec![("csrf", csrf.as_str()), ("mode", "flag")],
        ),
    ] {
        let (st, _, _) = post(&c, &s, path, &form).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path}");
    }
    // And an owner's form with a wrong token is refused too.
    let (owner, _) = sign_in(&s, "verbod", "owner@verbod.test").await;
    let (st, _, _) = post(
        &owner,
        &s,
        "/settings/tags/create",
        &[("csrf", "forged"), ("name", "Vervalst")],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, v) = s.get("/api/v1/tags", &t.owner).await;
    let v = v["items"].clone();
    assert_eq!(v, json!([]), "nothing was created");
    let (_, v) = s.get("/api/v1/users?limit=200", &t.owner).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = s.get("/api/v1/settings/sensitive-data", &t.owner).await;
    assert_eq!(v["mode"], "block");
    let (_, v) = s
        .get(&format!("/api/v1/users/{}", t.member_id), &t.owner)
        .await;
    assert_eq!(v["role"], "member");
}

/// A wrong code during authenticator enrolment shows the same key and QR code again (the
/// one just scanned keeps working), and the next right code completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_wrong_code_keeps_the_same_secret() {
    let s = Server::start(Backend::Sqlite).await;
    let _t = tenant_fixture(&s, "inschrijf").await;
    let (c, csrf) = sign_in(&s, "inschrijf", "member@inschrijf.test").await;
    let (st, _, html) = post(&c, &s, "/sign-in/enrol/start", &[("csrf", &csrf)]).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let secret = text_of(&html, "secret");
    assert!(secret.len() >= 16, "{secret}");
    assert!(html.contains("src=\"data:image/svg+xml;base64,"));
    let right = totp_now(&secret);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (st, _, html) = post(
        &c,
        &s,
        "/sign-in/enrol/confirm",
        &[("csrf", &csrf), ("code", wrong)],
    )
    .await;
    assert!(st.is_client_error(), "{st}");
    assert!(html.contains("class=\"notice error\""), "{html}");
    assert_eq!(text_of(&html, "secret"), secret, "the same key again");
    assert!(
        html.contains("src=\"data:image/svg+xml;base64,"),
        "the QR code again"
    );
    assert!(html.contains("id=\"enrol-confirm\""), "{html}");
    let (st, _, html) = post(
        &c,
        &s,
        "/sign-in/enrol/confirm",
        &[("csrf", &csrf), ("code", &right)],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let (_, _, html) = get(&c, &s, "/account").await;
    assert!(html.contains("id=\"mfa-state\">On<"), "{html}");
}

/// Without an email relay: "forgot password" says so instead of promising a link, the
/// operator is warned at start and on the admin page; the SAML section is absent from a
/// build without SAML; dates and statuses are localized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_pages_without_email_or_saml() {
    let s = Server::start(Backend::Sqlite).await;
    let _t = tenant_fixture(&s, "eerlijk").await;
    assert!(
        s.logs().contains("no email relay configured"),
        "{}",
        s.logs()
    );
    let c = browser(&s);
    let (st, _, html) = get(&c, &s, "/forgot-password").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("cannot send email"), "{html}");
    assert!(
        !html.contains("id=\"forgot\""),
        "no form that promises a link"
    );
    let r = c
        .post(s.url("/forgot-password"))
        .header("accept-language", "nl")
        .form(&[
            ("form_token", "x"),
            ("organisation", "eerlijk"),
            ("email", "member@eerlijk.test"),
        ])
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("geen e-mail versturen"), "{html}");
    assert!(!html.contains("onderweg"), "{html}");

    let (c, _) = sign_in(&s, "eerlijk", "owner@eerlijk.test").await;
    let (_, _, html) = get(&c, &s, "/admin/security").await;
    assert!(html.contains("id=\"mail-off\""), "{html}");
    assert!(html.contains("href=\"/settings\""), "{html}");
    if cfg!(feature = "saml") {
        assert!(html.contains("id=\"saml-settings\""));
    } else {
        assert!(
            !html.contains("saml-settings") && !html.contains("SAML"),
            "{html}"
        );
    }
    // Dutch: dates as dd-mm-jjjj uu:mm and statuses translated.
    let (st, _, _) = get(&c, &s, "/lang/nl?next=/account").await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, _, html) = get(&c, &s, "/account").await;
    let shown = {
        let at = html.find("<time datetime=").expect("a last-seen time");
        let rest = &html[at..];
        let start = rest.find('>').unwrap() + 1;
        rest[start..start + rest[start..].find('<').unwrap()].to_owned()
    };
    let b = shown.as_bytes();
    assert!(
        shown.len() == 16 && b[2] == b'-' && b[5] == b'-' && b[10] == b' ' && b[13] == b':',
        "{shown}"
    );
    let (_, _, html) = get(&c, &s, "/admin/security").await;
    assert!(html.contains("<td>Actief</td>"), "{html}");
    assert!(!html.contains("<td>active</td>"), "{html}");
}

/// A log edited behind the server's back: the viewer's verification names the broken event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_viewer_shows_a_broken_log() {
    let mut s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "knoeier").await;
    s.cli(&["audit", "checkpoint"], None);
    let (c, _) = sign_in(&s, "knoeier", "owner@knoeier.test").await;
    let (_, _, html) = get(&c, &s, "/settings/audit?verify=1").await;
    assert!(html.contains("data-result=\"ok\""), "{html}");
    assert!(s.stop().success());
    let tid = format!("x'{}'", t.id.replace('-', ""));
    let stmt = format!(
        "DROP TRIGGER IF EXISTS audit_events_no_update; UPDATE audit_events SET action = 'user.view' WHERE tenant_id = {tid} AND seq = 3;"
    );
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
            s.sqlite_path().to_str().unwrap(),
            &stmt,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.spawn().await;
    let (c, _) = sign_in(&s, "knoeier", "owner@knoeier.test").await;
    let (st, _, html) = get(&c, &s, "/settings/audit?verify=1").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("data-result=\"broken\""), "{html}");
    assert!(text_of(&html, "verify-result").contains(" 3:"), "{html}");
}
