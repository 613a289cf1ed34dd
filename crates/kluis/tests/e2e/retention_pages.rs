//! Trash retention on /settings: an owner sets it by form (CSRF), the JSON API sees it, the
//! change is audited; out-of-range values are refused and store nothing; a member gets the 403
//! page and the API refuses a key without the settings scope; the Dutch page is Dutch.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Auth, Backend, Server, on_both, tenant_fixture};

on_both!(trash_retention_is_set_on_the_settings_page);

fn cookie(a: &Auth) -> (String, String) {
    match a {
        Auth::Session { cookie, csrf } => (format!("__Host-kluis_session={cookie}"), csrf.clone()),
        other => panic!("not a session: {other:?}"),
    }
}

async fn post(
    s: &Server,
    a: &Auth,
    days: &str,
    csrf: Option<&str>,
) -> (StatusCode, String, String) {
    let (c, token) = cookie(a);
    let r = s
        .client
        .post(s.url("/settings/trash-retention"))
        .header("cookie", c)
        .header("accept", "text/html")
        .form(&[("csrf", csrf.unwrap_or(&token)), ("days", days)])
        .send()
        .await
        .unwrap();
    let st = r.status();
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (st, loc, r.text().await.unwrap())
}

async fn page(s: &Server, a: &Auth, lang: &str) -> (StatusCode, String) {
    let (c, _) = cookie(a);
    let r = s
        .client
        .get(s.url("/settings"))
        .header("cookie", format!("{c}; __Host-kluis_lang={lang}"))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn trash_retention_is_set_on_the_settings_page(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "bewaar").await;
    let api = "/api/v1/settings/trash-retention";
    let (st, v) = s.get(api, &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"days": null}), "the server's default until set");

    let (st, html) = page(&s, &t.owner, "en").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("id=\"trash-retention-form\""), "{html}");
    assert!(html.contains("<label for=\"trash-days\">"), "{html}");
    assert!(html.contains("id=\"trash-days\" name=\"days\""), "{html}");

    let (st, loc, body) = post(&s, &t.owner, "7", None).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(loc, "/settings?done=saved");
    let (_, v) = s.get(api, &t.owner).await;
    assert_eq!(v, json!({"days": 7}));
    let (_, html) = page(&s, &t.owner, "en").await;
    assert!(html.contains("value=\"7\""), "{html}");

    // Out of range or not a number: a 422 page with the error, nothing stored.
    for bad in ["0", "366", "abc", "-1", "99999999"] {
        let (st, _, html) = post(&s, &t.owner, bad, None).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {html}");
        assert!(html.contains("class=\"notice error\""), "{bad}: {html}");
    }
    let (_, v) = s.get(api, &t.owner).await;
    assert_eq!(v, json!({"days": 7}));

    // Without the session's CSRF token, or as a member: refused, nothing stored.
    let (st, _, _) = post(&s, &t.owner, "9", Some("forged")).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, html) = post(&s, &t.member, "9", None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{html}");
    let (st, _) = page(&s, &t.member, "en").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = s
        .call(
            reqwest::Method::PUT,
            api,
            &t.member,
            Some(json!({"days": 9})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (_, v) = s.get(api, &t.owner).await;
    assert_eq!(v, json!({"days": 7}));

    // Empty: back to the server's default. Both changes are in the audit log.
    let (st, _, _) = post(&s, &t.owner, "", None).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get(api, &t.owner).await;
    assert_eq!(v, json!({"days": null}));
    let (st, v) = s
        .get(
            "/api/v1/audit/events?action=settings.trash_retention.update",
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let details: Vec<_> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!({"old": e["details"]["old"], "new": e["details"]["new"]}))
        .collect();
    assert_eq!(details.len(), 2, "{v}");
    assert!(details.contains(&json!({"old": null, "new": 7})), "{v}");
    assert!(details.contains(&json!({"old": 7, "new": null})), "{v}");

    // Dutch.
    let (_, html) = page(&s, &t.owner, "nl").await;
    assert!(
        html.contains("Dagen dat verwijderde records in de prullenbak blijven"),
        "{html}"
    );
}
