//! Server behaviour: setup link, security headers, graceful shutdown, redirect listener,
//! configuration from the environment, side-by-side instances.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Auth, Backend, PASSWORD, Server, code, on_both, tenant_fixture};

on_both!(setup_link_works_once);

async fn setup_link_works_once(b: Backend) {
    let mut s = Server::start(b).await;
    let token = s.setup_token().expect("setup link printed at first start");
    // The setup page itself is served, and the link carries the token in the fragment.
    assert!(
        s.logs()
            .contains(&format!("https://localhost:{}/setup#", s.port))
    );
    let (st, _) = s.get("/setup", &Auth::None).await;
    assert_eq!(st, StatusCode::OK);
    // A restart before setup is finished prints the same link, which keeps working: someone
    // who restarts with the setup page open does not lose it. Its secret waits in a 0600 file.
    let link_file = s.dir.path().join("setup-link");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&link_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(s.stop().success(), "graceful exit on SIGTERM");
    s.spawn().await;
    let printed: Vec<String> = s
        .logs()
        .lines()
        .filter_map(|l| l.split_once("/setup#").map(|(_, t)| t.trim().to_owned()))
        .collect();
    assert_eq!(
        printed,
        vec![token.clone(), token.clone()],
        "same link after restart"
    );

    let body = |token: &str, slug: &str, pw: &str| {
        json!({"token": token, "tenant_slug": slug, "tenant_name": "Acme BV", "owner_email": "jan@acme.test",
               "owner_name": "Jan", "owner_password": pw})
    };
    // Wrong token: refused, nothing created.
    let (st, v) = s
        .post(
            "/api/v1/setup",
            &Auth::None,
            body("not-the-token", "acme", PASSWORD),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::GONE, "setup_link_invalid"));
    // Valid token but a weak password: refused, and the token is NOT used up.
    let (st, v) = s
        .post(
            "/api/v1/setup",
            &Auth::None,
            body(&token, "acme", "password"),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "owner_password");
    // Valid: tenant and owner created; the owner can sign in.
    let (st, v) = s
        .post("/api/v1/setup", &Auth::None, body(&token, "acme", PASSWORD))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["owner"]["role"], "owner");
    s.login("acme", "jan@acme.test", PASSWORD).await;
    // Second use: refused, no second tenant.
    let (st, v) = s
        .post(
            "/api/v1/setup",
            &Auth::None,
            body(&token, "other", PASSWORD),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::GONE, "setup_link_invalid"));
    let tenants = s.cli(&["tenant", "list", "--json"], None);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&tenants)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A restart prints no new link once a tenant exists.
    assert!(s.stop().success(), "graceful exit on SIGTERM");
    let before = s.logs().matches("/setup#").count();
    s.spawn().await;
    assert_eq!(
        s.logs().matches("/setup#").count(),
        before,
        "no new setup link after setup"
    );
    assert!(!link_file.exists(), "the link's secret is gone once set up");
    let (st, v) = s
        .post(
            "/api/v1/setup",
            &Auth::None,
            body(&token, "other", PASSWORD),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::GONE, "setup_link_invalid"));
}

on_both!(security_headers_on_every_response);

async fn security_headers_on_every_response(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "hdr").await;
    let cases: Vec<(Method, &str, Auth)> = vec![
        (Method::GET, "/healthz", Auth::None),
        (Method::GET, "/readyz", Auth::None),
        (Method::GET, "/api/v1/openapi.json", Auth::None),
        (Method::GET, "/setup", Auth::None),
        (Method::GET, "/assets/setup.js", Auth::None),
        (Method::GET, "/api/v1/users", Auth::None), // 401
        (Method::GET, "/api/v1/users", t.key.clone()), // 200
        (Method::GET, "/api/v1/apikeys", t.key.clone()), // 403
        (Method::GET, "/no/such/route", Auth::None), // 404
        (Method::PUT, "/healthz", Auth::None),      // 405
        (Method::POST, "/api/v1/auth/login", Auth::None), // 415
    ];
    for (m, path, auth) in cases {
        let res = s
            .client
            .request(m.clone(), s.url(path))
            .header("cookie", "x=y");
        let res = match &auth {
            Auth::Bearer(k) => res.bearer_auth(k),
            _ => res,
        };
        let res = res.send().await.unwrap();
        let h = res.headers();
        let want = [
            (
                "strict-transport-security",
                "max-age=63072000; includeSubDomains",
            ),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
        ];
        for (name, value) in want {
            assert_eq!(
                h.get(name).map(|v| v.to_str().unwrap()),
                Some(value),
                "{m} {path} ({}) lacks {name}",
                res.status()
            );
        }
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{m} {path}: {csp}"
        );
        assert!(
            h.contains_key("x-request-id"),
            "{m} {path} lacks x-request-id"
        );
        if res.status().is_client_error() {
            let st = res.status();
            let v: serde_json::Value = res.json().await.unwrap();
            assert!(
                v["error"]["code"].is_string(),
                "{m} {path} ({st}): error without a stable code: {v}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_listener_and_env_config() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let redirect = format!("127.0.0.1:{port}");
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("KLUIS_HTTP_REDIRECT_LISTEN", &redirect),
            ("KLUIS_SESSION_IDLE_TIMEOUT_SECS", "60"),
        ],
    )
    .await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut tries = 0;
    let res = loop {
        match plain
            .get(format!("http://127.0.0.1:{port}/api/v1/users?secret=x"))
            .header("host", "localhost")
            .send()
            .await
        {
            Ok(r) => break r,
            Err(_) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    let loc = res.headers().get("location").unwrap().to_str().unwrap();
    assert_eq!(
        loc,
        format!("https://localhost:{}/api/v1/users", s.port),
        "query must be dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_refused_with_a_clear_message() {
    let s = Server::start(Backend::Sqlite).await;
    let (ok, _, err) = {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kluis"));
        c.args([
            "--data-dir",
            s.dir.path().to_str().unwrap(),
            "tenant",
            "list",
        ])
        .env("KLUIS_SESSION_IDLE_TIMEOUT_SECS", "999999");
        let o = c.output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert!(!ok);
    assert!(err.contains("session_idle_timeout_secs"), "{err}");
    // The key file must be private: loosen it and the server refuses to start.
    let kek = s.dir.path().join("keys/kek.key");
    let mut perms = std::fs::metadata(&kek).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&kek, perms).unwrap();
    let (ok, _, err) = s.cli_raw(&["tenant", "list"], None);
    assert!(!ok && err.contains("kek.key"), "{err}");
    assert_eq!(
        std::fs::metadata(s.sqlite_path())
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap(),
        0o600
    );
}
