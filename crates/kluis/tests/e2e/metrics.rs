//! `/metrics` (issue 18): behind a platform key, parsed and linted by Prometheus's own
//! `promtool`, with the series the alert rules use; the alert rules pass `promtool check rules`
//! and their unit tests (`promtool test rules`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Auth, Backend, Server, on_both, tenant_fixture};

on_both!(metrics_are_private_bounded_and_promtool_accepts_them);

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus")
}

/// Runs promtool; None when it is not installed (Debian package `prometheus`).
fn promtool(args: &[&str], stdin: Option<&str>) -> Option<(bool, String)> {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(rules_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

/// The value of the first sample line starting with `prefix`.
fn sample(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn metrics_are_private_bounded_and_promtool_accepts_them(b: Backend) {
    if promtool(&["--version"], None).is_none() {
        let msg =
            "skipped: metrics test — `promtool` is not installed (apt-get install prometheus)";
        if std::env::var("KLUIS_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1") {
            panic!("{msg} (KLUIS_REQUIRE_PROMTOOL=1 is set, so this is an error)");
        }
        eprintln!("{msg}");
        return;
    }
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "meters").await;
    let (st, c) = s
        .post(
            "/api/v1/contacts",
            &t.key,
            json!({"fields": {"first_name": "Meta", "email": "meta@meters.test"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        assert_eq!(
            s.get(&format!("/api/v1/contacts/{id}"), &t.key).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(s.get("/api/v1/nope", &t.key).await.0, StatusCode::NOT_FOUND);

    // Private: no credentials, a tenant's own key and a session are all refused.
    for who in [&Auth::None, &t.key, &t.owner] {
        assert_eq!(
            s.get_text("/metrics", who).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let ops = s.platform_key();
    let (st, body) = s.get_text("/metrics", &ops).await;
    assert_eq!(st, StatusCode::OK, "{body}");

    // Prometheus's own parser and linter accept the exposition.
    let (ok, out) = promtool(&["check", "metrics"], Some(&body)).unwrap();
    assert!(ok, "promtool check metrics:\n{out}\n---\n{body}");

    // Routes are templates, never raw paths: the contact id and unknown paths stay out.
    assert!(!body.contains(&id), "a record id leaked into the labels");
    assert!(
        !body.contains("/api/v1/nope"),
        "an unmatched path became a label"
    );
    assert!(!body.contains("meters"), "an organisation's slug leaked");
    let reads = sample(
        &body,
        r#"kluis_http_requests_total{method="GET",route="/api/v1/contacts/{id}",status="200"}"#,
    );
    assert_eq!(reads, Some(5.0), "{body}");
    assert_eq!(
        sample(
            &body,
            r#"kluis_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0),
        "{body}"
    );
    assert!(
        body.contains(r#"kluis_http_request_duration_seconds_bucket{method="POST",route="/api/v1/contacts",le="0.005"}"#),
        "latency histogram per route: {body}"
    );
    assert_eq!(sample(&body, "kluis_tenants "), Some(1.0), "{body}");
    // Every event so far is either signed or counted as unsigned; no log lacks a data key.
    assert!(sample(&body, "kluis_audit_unsigned_events ").is_some());
    assert_eq!(sample(&body, "kluis_logs_without_data_key "), Some(0.0));

    // Every series the alert rules use is exported (backup series appear only with a backup
    // repository configured).
    let rules = std::fs::read_to_string(rules_dir().join("kluis-alerts.yml")).unwrap();
    let mut names: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("kluis_"))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        if matches!(name, "kluis_backup_age_seconds" | "kluis_backup_drill_ok") {
            continue;
        }
        let series = name.strip_suffix("_bucket").unwrap_or(name);
        assert!(
            body.lines().any(|l| l.starts_with(series)),
            "alert rules use {name}, which /metrics does not export"
        );
    }
    let (ok, out) = promtool(&["check", "rules", "kluis-alerts.yml"], None).unwrap();
    assert!(ok, "{out}");
    let (ok, out) = promtool(&["test", "rules", "kluis-alerts.test.yml"], None).unwrap();
    assert!(ok, "{out}");
}
