//! API rate limits (issue 18): the 191st request in a 10-second window is refused with the
//! IETF RateLimit headers, per caller and per tenant, across two server processes, and an
//! operator override takes effect.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Auth, Backend, Server, code, on_both, tenant_fixture};

on_both!(
    the_191st_request_is_refused_per_caller_and_tenant,
    two_processes_never_pass_the_quota_together
);

/// Waits until a 10-second window has just begun, so a burst falls inside one window.
async fn fresh_window() {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let into = ms % 10_000;
    if into > 300 {
        tokio::time::sleep(Duration::from_millis(10_000 - into + 50)).await;
    }
}

/// Sends `n` GETs with `bearer` to `urls` (round robin), 8 at a time; the answers' statuses
/// and the last OK answer's headers.
async fn burst(
    client: &[reqwest::Client],
    urls: &[String],
    bearer: &str,
    n: usize,
) -> Vec<(StatusCode, reqwest::header::HeaderMap)> {
    let mut out = Vec::with_capacity(n);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        if set.len() >= 8
            && let Some(r) = set.join_next().await
        {
            out.push(r.unwrap());
        }
        let c = client[i % client.len()].clone();
        let url = urls[i % urls.len()].clone();
        let bearer = bearer.to_owned();
        set.spawn(async move {
            let r = c.get(url).bearer_auth(bearer).send().await.unwrap();
            (r.status(), r.headers().clone())
        });
    }
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn the_191st_request_is_refused_per_caller_and_tenant(b: Backend) {
    let s = Server::start_with(b, &[("KLUIS_RATE_LIMIT_BURST", "190")]).await;
    let a = tenant_fixture(&s, "haastig").await;
    let other = tenant_fixture(&s, "rustig").await;
    let Auth::Bearer(key) = &a.key else {
        unreachable!()
    };
    let url = s.url("/api/v1/contacts");

    fresh_window().await;
    let answers = burst(
        std::slice::from_ref(&s.client),
        std::slice::from_ref(&url),
        key,
        190,
    )
    .await;
    let ok = answers
        .iter()
        .filter(|(st, _)| *st == StatusCode::OK)
        .count();
    assert_eq!(ok, 190, "all of the first 190 requests pass");
    for (_, h) in &answers {
        assert!(
            header(h, "ratelimit-policy").contains("\"burst\";q=190;w=10"),
            "policy header on every answer: {h:?}"
        );
        assert!(header(h, "ratelimit").starts_with('"'), "{h:?}");
    }
    let (st, h, v) = s
        .call_with(reqwest::Method::GET, "/api/v1/contacts", &a.key, &[], None)
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let retry: u64 = header(&h, "retry-after").parse().unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    assert!(
        header(&h, "ratelimit").starts_with("\"burst\";r=0;t="),
        "{h:?}"
    );
    // The limit is this key's: another caller of the same tenant and another tenant go on.
    assert_eq!(s.get("/api/v1/contacts", &a.owner).await.0, StatusCode::OK);
    assert_eq!(
        s.get("/api/v1/contacts", &other.key).await.0,
        StatusCode::OK
    );

    // The next window lets the key in again.
    fresh_window().await;
    assert_eq!(s.get("/api/v1/contacts", &a.key).await.0, StatusCode::OK);

    // An operator lowers the other tenant's limit to 5 per window; audited.
    let ops = s.platform_key();
    let path = format!("/api/v1/platform/tenants/{}/rate-limits", other.id);
    let (st, v) = s
        .call(
            reqwest::Method::PUT,
            &path,
            &ops,
            Some(json!({"burst": 5, "daily": null})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .call(reqwest::Method::PUT, &path, &ops, Some(json!({"burst": 0})))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_rate_limit")
    );
    // The tenant's own key cannot reach the platform route.
    assert_eq!(s.get(&path, &other.key).await.0, StatusCode::UNAUTHORIZED);
    let Auth::Bearer(other_key) = &other.key else {
        unreachable!()
    };
    fresh_window().await;
    let answers = burst(
        std::slice::from_ref(&s.client),
        std::slice::from_ref(&url),
        other_key,
        8,
    )
    .await;
    let ok = answers
        .iter()
        .filter(|(st, _)| *st == StatusCode::OK)
        .count();
    assert_eq!(ok, 5, "the override holds: {answers:?}");
    let log = s.cli(&["audit", "events", "--tenant", "platform"], None);
    assert!(
        log.contains("tenant.rate_limits.update"),
        "the override is in the platform audit log"
    );
}

async fn two_processes_never_pass_the_quota_together(b: Backend) {
    let s = Server::start_with(b, &[("KLUIS_RATE_LIMIT_BURST", "190")]).await;
    let sib = s.sibling().await;
    let t = tenant_fixture(&s, "tweeling").await;
    let Auth::Bearer(key) = &t.key else {
        unreachable!()
    };
    let clients = [s.client.clone(), sib.client.clone()];
    let urls = [s.url("/api/v1/contacts"), sib.url("/api/v1/contacts")];
    fresh_window().await;
    let answers = burst(&clients, &urls, key, 400).await;
    let ok = answers
        .iter()
        .filter(|(st, _)| *st == StatusCode::OK)
        .count();
    let refused = answers
        .iter()
        .filter(|(st, _)| *st == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(ok + refused, 400, "only 200 and 429: {answers:?}");
    // The stated bound: never more than the quota. Below it, each process may be left holding
    // at most lease - 1 = 18 requests it leased and was not asked for again.
    eprintln!("two processes, quota 190: {ok} passed, {refused} refused");
    assert!(ok <= 190, "{ok} requests passed a quota of 190");
    assert!(ok >= 190 - 2 * 18, "only {ok} of 190 passed");
}
