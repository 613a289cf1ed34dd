//! The public status page and maintenance notices (issue 18): maintenance 23 hours away is
//! announced on the sign-in page in English and Dutch and in the `Kluis-Notice` header, 25
//! hours away it is not; incidents change component states until resolved; only platform
//! operators post, and each post is audited.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, Server, code, on_both, tenant_fixture};

on_both!(maintenance_is_announced_a_day_ahead_and_incidents_show_on_status);

fn at(hours_from_now: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::hours(hours_from_now);
    t.replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn page(s: &Server, path: &str, lang: &str) -> String {
    let res = s
        .client
        .get(s.url(path))
        .header("accept-language", lang)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.text().await.unwrap()
}

async fn maintenance_is_announced_a_day_ahead_and_incidents_show_on_status(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "statusbv").await;
    let ops = s.platform_key();
    let post = "/api/v1/platform/status/notices";

    // Only operators post; bad input is refused with a field.
    let window = json!({"kind": "maintenance", "components": ["api", "web"],
        "title_en": "Database upgrade", "title_nl": "Database-upgrade",
        "starts_at": at(25), "ends_at": at(27)});
    assert_eq!(
        s.call(Method::POST, post, &t.key, Some(window.clone()))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (st, v) = s
        .call(
            Method::POST,
            post,
            &ops,
            Some(json!({"kind": "maintenance", "components": ["api"], "title_en": "x", "title_nl": "x", "starts_at": at(1)})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_time"),
        "{v}"
    );

    // 25 hours away: not yet announced.
    let (st, v) = s.call(Method::POST, post, &ops, Some(window)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["state"], "scheduled");
    for lang in ["en", "nl"] {
        let html = page(&s, "/sign-in", lang).await;
        assert!(!html.contains("Database"), "announced 25 h ahead ({lang})");
    }
    let (_, h, _) = s
        .call_with(Method::GET, "/api/v1/contacts", &t.key, &[], None)
        .await;
    assert!(h.get("kluis-notice").is_none());

    // 23 hours away: on the sign-in page in both languages, and in the API's header.
    let (st, v) = s
        .call(
            Method::POST,
            post,
            &ops,
            Some(json!({"kind": "maintenance", "components": ["sign_in"],
                "title_en": "Certificate change", "title_nl": "Certificaatwissel",
                "starts_at": at(23), "ends_at": at(24)})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let en = page(&s, "/sign-in", "en").await;
    assert!(
        en.contains("Planned maintenance: Certificate change"),
        "{en}"
    );
    let nl = page(&s, "/sign-in", "nl").await;
    assert!(nl.contains("Gepland onderhoud: Certificaatwissel"), "{nl}");
    assert!(
        !en.contains("Database upgrade"),
        "only the one within 24 hours"
    );
    let (_, h, _) = s
        .call_with(Method::GET, "/api/v1/contacts", &t.key, &[], None)
        .await;
    let notice = h["kluis-notice"].to_str().unwrap();
    assert!(notice.starts_with("maintenance; starts=\""), "{notice}");

    // Scheduled maintenance leaves every component operational.
    let (_, doc) = s.get("/api/v1/status", &crate::support::Auth::None).await;
    assert_eq!(doc["overall"], "operational", "{doc}");

    // An incident: the API is down until it is resolved.
    let (st, inc) = s
        .call(
            Method::POST,
            post,
            &ops,
            Some(
                json!({"kind": "incident", "impact": "outage", "components": ["api"],
                "title_en": "API unreachable", "title_nl": "API onbereikbaar",
                "body_en": "We are investigating.", "body_nl": "We zoeken het uit."}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{inc}");
    let (_, doc) = s.get("/api/v1/status", &crate::support::Auth::None).await;
    assert_eq!(doc["overall"], "outage");
    let state_of = |doc: &Value, c: &str| {
        doc["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["component"] == c)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state_of(&doc, "api"), "outage");
    assert_eq!(state_of(&doc, "email"), "operational");
    let nl = page(&s, "/status", "nl").await;
    assert!(
        nl.contains("API onbereikbaar") && nl.contains("Storing"),
        "{nl}"
    );
    let en = page(&s, "/status", "en").await;
    assert!(
        en.contains("API unreachable") && en.contains("Outage"),
        "{en}"
    );

    let id = inc["id"].as_str().unwrap();
    let path = format!("/api/v1/platform/status/notices/{id}/resolve");
    assert_eq!(
        s.call(Method::POST, &path, &ops, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.call(Method::POST, &path, &ops, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, doc) = s.get("/api/v1/status", &crate::support::Auth::None).await;
    assert_eq!(doc["overall"], "operational", "{doc}");
    let nl = page(&s, "/status", "nl").await;
    assert!(
        nl.contains("Opgelost"),
        "a resolved incident stays listed: {nl}"
    );

    let log = s.cli(&["audit", "events", "--tenant", "platform"], None);
    assert_eq!(log.matches("status.notice.post").count(), 3, "{log}");
    assert!(log.contains("status.notice.resolve"));
}
