//! Per-organisation IP allowlist (issue 18): requests from a second loopback address
//! (127.0.0.2, which Linux routes to the same server) are refused for every credential type
//! and at sign-in, without the password being checked; other organisations are not affected;
//! a list that leaves out the saver's own address is refused.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, PASSWORD, Server, code, on_both, tenant_fixture};

on_both!(the_allowlist_refuses_other_addresses_for_every_credential);

/// A client whose connections come from 127.0.0.2.
fn outside_client(s: &Server) -> reqwest::Client {
    let cert = std::fs::read(s.dir.path().join("tls/cert.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], s.port)))
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn send(
    c: &reqwest::Client,
    s: &Server,
    method: Method,
    path: &str,
    auth: &Auth,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = c.request(method, s.url(path));
    rb = match auth {
        Auth::Bearer(t) => rb.bearer_auth(t),
        Auth::Session { cookie, csrf } => rb
            .header("cookie", format!("__Host-kluis_session={cookie}"))
            .header("x-csrf-token", csrf),
        _ => rb,
    };
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let res = rb.send().await.unwrap();
    let st = res.status();
    let text = res.text().await.unwrap();
    (
        st,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn the_allowlist_refuses_other_addresses_for_every_credential(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "omheind").await;
    let other = tenant_fixture(&s, "open").await;
    let out = outside_client(&s);
    let path = "/api/v1/settings/ip-allowlist";

    // Before a list exists, the second address works like the first.
    let (st, _) = send(&out, &s, Method::GET, "/api/v1/contacts", &t.key, None).await;
    assert_eq!(st, StatusCode::OK);

    // The lock-out guard: the saver (on 127.0.0.1) must be inside the list.
    let (st, v) = s
        .call(
            Method::PUT,
            path,
            &t.owner,
            Some(json!({"cidrs": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "allowlist_excludes_you"),
        "{v}"
    );
    let (st, v) = s
        .call(
            Method::PUT,
            path,
            &t.owner,
            Some(json!({"cidrs": ["not-an-address"]})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_cidr"),
        "{v}"
    );
    // Members may not change it.
    let (st, _) = s
        .call(Method::PUT, path, &t.member, Some(json!({"cidrs": []})))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = s
        .call(
            Method::PUT,
            path,
            &t.owner,
            Some(json!({"cidrs": ["127.0.0.1/32", "2001:db8:5::1/48"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["cidrs"],
        json!(["127.0.0.1/32", "2001:db8:5::/48"]),
        "normalised"
    );

    // From 127.0.0.2: API key, session (read and write), and sign-in are all refused.
    for auth in [&t.key, &t.owner, &t.member] {
        let (st, v) = send(&out, &s, Method::GET, "/api/v1/contacts", auth, None).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::FORBIDDEN, "ip_not_allowed"),
            "{v}"
        );
    }
    let (st, v) = send(
        &out,
        &s,
        Method::POST,
        "/api/v1/contacts",
        &t.owner,
        Some(json!({"fields": {"first_name": "Buiten"}})),
    )
    .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "ip_not_allowed"),
        "{v}"
    );
    for password in [PASSWORD, "wrong-password-1"] {
        let (st, v) = send(
            &out,
            &s,
            Method::POST,
            "/api/v1/auth/login",
            &Auth::None,
            Some(json!({"tenant": "omheind", "email": "owner@omheind.test", "password": password})),
        )
        .await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::FORBIDDEN, "ip_not_allowed"),
            "the same answer whatever the password: {v}"
        );
    }
    // The pages too: the session cookie leads back to the sign-in page.
    let res = out
        .get(s.url("/contacts"))
        .header(
            "cookie",
            match &t.owner {
                Auth::Session { cookie, .. } => format!("__Host-kluis_session={cookie}"),
                _ => unreachable!(),
            },
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(res.headers()["location"], "/sign-in");

    // Inside the list everything works; another organisation is not affected.
    assert_eq!(s.get("/api/v1/contacts", &t.key).await.0, StatusCode::OK);
    assert_eq!(s.get("/api/v1/contacts", &t.owner).await.0, StatusCode::OK);
    let (st, _) = send(&out, &s, Method::GET, "/api/v1/contacts", &other.key, None).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "another organisation's keys still work from 127.0.0.2"
    );

    // Audited: the change and the refused sign-in.
    let log = s.cli(&["audit", "events", "--tenant", "omheind"], None);
    assert!(log.contains("settings.ip_allowlist.update"), "{log}");
    assert!(log.contains("ip_not_allowed"), "{log}");

    // Emptying the list opens every address again (within the 250 ms cache).
    let (st, _) = s
        .call(Method::PUT, path, &t.owner, Some(json!({"cidrs": []})))
        .await;
    assert_eq!(st, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (st, _) = send(&out, &s, Method::GET, "/api/v1/contacts", &t.key, None).await;
    assert_eq!(st, StatusCode::OK);
}
