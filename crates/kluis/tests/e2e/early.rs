//! Answers given before the request body was read (401, 415, a bad If-Match, 413) reach the
//! client over HTTP/2 as well, checked with the system curl (7.88 with nghttp2 dropped such
//! answers with "Stream error in the HTTP/2 framing layer"); oversized header blocks and
//! request targets get the API's JSON error on both protocols.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Backend, Server, on_both, tenant_fixture};

/// The system curl, or None after printing "skipped"; `KLUIS_REQUIRE_CURL=1` makes a missing
/// curl a failure.
fn curl() -> Option<&'static str> {
    let found = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("HTTP2"));
    if found {
        return Some("curl");
    }
    let msg = "skipped: early-answer tests need the system curl with HTTP/2 (Debian `curl`)";
    if std::env::var("KLUIS_REQUIRE_CURL").is_ok_and(|v| v == "1") {
        panic!("{msg} (KLUIS_REQUIRE_CURL=1 is set, so this is an error)");
    }
    eprintln!("{msg}");
    None
}

/// One request with curl; returns (exit ok, stderr, HTTP version, status, parsed body).
fn send(
    s: &Server,
    http: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&std::path::Path>,
) -> (bool, String, String, u16, Value) {
    let cert = s.dir.path().join("tls/cert.pem");
    let mut c = Command::new("curl");
    c.args(["-sS", http, "--max-time", "20", "--cacert"])
        .arg(&cert)
        .args([
            "-X",
            method,
            "-o",
            "-",
            "-w",
            "\n%{http_version} %{http_code}",
        ]);
    for (k, v) in headers {
        c.args(["-H", &format!("{k}: {v}")]);
    }
    if let Some(b) = body {
        c.arg("--data-binary").arg(format!("@{}", b.display()));
    }
    c.arg(s.url(path));
    let o = c.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (text, tail) = out.rsplit_once('\n').unwrap_or(("", &out));
    let (version, status) = tail.split_once(' ').unwrap_or(("", "0"));
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        version.to_owned(),
        status.parse().unwrap_or(0),
        serde_json::from_str(text).unwrap_or(Value::String(text.to_owned())),
    )
}

/// A JSON document of about `n` bytes.
fn json_body(dir: &std::path::Path, name: &str, n: usize) -> std::path::PathBuf {
    let p = dir.join(name);
    let v = json!({"fields": {"name": "x".repeat(n)}});
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

on_both!(early_answers_reach_http2_clients);

async fn early_answers_reach_http2_clients(b: Backend) {
    let Some(_) = curl() else { return };
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "early").await;
    let key = match &t.key {
        crate::support::Auth::Bearer(k) => k.clone(),
        _ => unreachable!(),
    };
    let work = tempfile::tempdir().unwrap();
    let sizes = [1024, 16 * 1024, 64 * 1024, 256 * 1024];
    let bodies: Vec<_> = sizes
        .iter()
        .map(|n| json_body(work.path(), &format!("b{n}.json"), *n))
        .collect();
    let mut failures = Vec::new();
    let mut check = |what: &str, r: (bool, String, String, u16, Value), status: u16, code: &str| {
        let (ok, err, version, got, v) = r;
        if !ok || version != "2" || got != status || v["error"]["code"] != code {
            failures.push(format!(
                "{what}: curl ok={ok} HTTP/{version} {got} {v} {}",
                err.trim()
            ));
        }
    };
    // 40 unauthenticated POSTs with bodies: every one gets its 401 and the JSON error.
    for i in 0..40 {
        let r = send(
            &s,
            "--http2",
            "POST",
            "/api/v1/contacts",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer kluis_not-a-real-key"),
            ],
            Some(&bodies[i % bodies.len()]),
        );
        check(&format!("401 #{i}"), r, 401, "unauthenticated");
    }
    for (i, body) in bodies.iter().enumerate() {
        // 415: the content type is refused before the body is read.
        let r = send(
            &s,
            "--http2",
            "POST",
            "/api/v1/auth/login",
            &[("content-type", "text/plain")],
            Some(body),
        );
        check(&format!("415 #{i}"), r, 415, "unsupported_media_type");
        // 400: a malformed If-Match, refused before the body is read.
        let r = send(
            &s,
            "--http2",
            "PATCH",
            "/api/v1/contacts/00000000-0000-7000-8000-000000000000",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {key}")),
                ("if-match", "not an etag"),
            ],
            Some(body),
        );
        check(&format!("400 If-Match #{i}"), r, 400, "invalid_if_match");
    }
    // 413: a body over the 1 MiB limit, refused part-way.
    let big = json_body(work.path(), "big.json", 3 * 1024 * 1024 / 2);
    for i in 0..4 {
        let r = send(
            &s,
            "--http2",
            "POST",
            "/api/v1/contacts",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {key}")),
            ],
            Some(&big),
        );
        check(&format!("413 #{i}"), r, 413, "payload_too_large");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The connection-level story is in the log too: no stream was reset with an error.
    assert!(
        !s.logs().contains("panicked"),
        "server panicked:\n{}",
        s.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_and_targets_get_the_json_error() {
    let Some(_) = curl() else { return };
    let s = Server::start(Backend::Sqlite).await;
    let big_header = "a".repeat(40 * 1024);
    let long_path = format!("/api/v1/contacts?q={}", "b".repeat(9 * 1024));
    let work = tempfile::tempdir().unwrap();
    let body = json_body(work.path(), "b.json", 32 * 1024);
    for http in ["--http2", "--http1.1"] {
        let want = if http == "--http2" { "2" } else { "1.1" };
        for with_body in [None, Some(body.as_path())] {
            let method = if with_body.is_some() { "POST" } else { "GET" };
            let (ok, err, version, status, v) = send(
                &s,
                http,
                method,
                "/api/v1/contacts",
                &[
                    ("x-filler", &big_header),
                    ("content-type", "application/json"),
                ],
                with_body,
            );
            assert!(ok, "{http} {method} big header: {err}");
            assert_eq!(
                (version.as_str(), status, v["error"]["code"].as_str()),
                (want, 431, Some("headers_too_large")),
                "{http} {method}: {v}"
            );
            let (ok, err, version, status, v) = send(
                &s,
                http,
                method,
                &long_path,
                &[("content-type", "application/json")],
                with_body,
            );
            assert!(ok, "{http} {method} long target: {err}");
            assert_eq!(
                (version.as_str(), status, v["error"]["code"].as_str()),
                (want, 414, Some("uri_too_long")),
                "{http} {method}: {v}"
            );
        }
    }
    // Under the limits nothing changes: the same request with a modest header is an ordinary 401.
    let (ok, _, _, status, v) = send(
        &s,
        "--http2",
        "GET",
        "/api/v1/contacts",
        &[("x-filler", &"a".repeat(8 * 1024))],
        None,
    );
    assert!(ok);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
}
