//! Least privilege and disclosure: the systemd unit's sandbox as `systemd-analyze security`
//! scores it, `kluis serve` refusing root, `/.well-known/security.txt`.

use std::path::PathBuf;
use std::process::Command;

use reqwest::StatusCode;

use crate::support::{Auth, Backend, Server, code};

/// Highest acceptable overall exposure (systemd's scale: 0 = locked down, 10 = unprotected;
/// below 2 is rated "OK"). The unit scores 1.1 with systemd 252.
const EXPOSURE_TARGET: f64 = 1.5;

fn unit_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd/kluis.service")
}

#[test]
fn systemd_unit_is_sandboxed() {
    let probe = Command::new("systemd-analyze").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        let msg = "skipped: systemd-analyze not found (Debian `systemd`); the unit's sandbox was not scored";
        if std::env::var("KLUIS_REQUIRE_SYSTEMD_ANALYZE").is_ok_and(|v| v == "1") {
            panic!("{msg} (KLUIS_REQUIRE_SYSTEMD_ANALYZE=1 is set, so this is an error)");
        }
        eprintln!("{msg}");
        return;
    }
    let unit = unit_path();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let score: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for kluis.service:"))
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{text}"));
    assert!(
        score <= EXPOSURE_TARGET,
        "exposure {score} over the target {EXPOSURE_TARGET}:\n{text}"
    );
    // The settings the design names, each as systemd itself reads them.
    let json = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--json=short"])
        .arg(&unit)
        .output()
        .unwrap();
    let entries: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    for field in [
        "UserOrDynamicUser",
        "NoNewPrivileges",
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "MemoryDenyWriteExecute",
        "SystemCallFilter_privileged",
        "SystemCallFilter_mount",
        "SystemCallArchitectures",
        "CapabilityBoundingSet_CAP_SYS_ADMIN",
        "RestrictAddressFamilies_AF_PACKET",
        "RestrictNamespaces_user",
    ] {
        let e = entries
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["json_field"] == field)
            .unwrap_or_else(|| panic!("systemd-analyze reports no {field}"));
        assert_eq!(e["set"], true, "{field} is not set: {e}");
    }
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        unit_text.contains("SystemCallFilter=@system-service")
            && unit_text.lines().any(|l| l == "User=kluis"),
        "the unit must run as the kluis user with the @system-service filter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_root_unless_told() {
    let euid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().nth(1).map(str::to_owned))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |allow: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kluis"));
        c.args(["--data-dir"])
            .arg(dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("KLUIS_ALLOW_ROOT");
        if let Some(v) = allow {
            c.env("KLUIS_ALLOW_ROOT", v);
        }
        c.output().unwrap()
    };
    if euid != "0" {
        eprintln!("skipped: the refusal applies to root and this test runs as uid {euid}");
        return;
    }
    for allow in [None, Some("false")] {
        let o = run(allow);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "served as root with KLUIS_ALLOW_ROOT={allow:?}"
        );
        assert!(err.contains("refusing to run as root"), "{err}");
        // Refused before anything was created.
        assert!(
            !dir.path().join("data").exists(),
            "data directory created before the refusal"
        );
    }
    // Told: it starts (the harness runs every other test this way).
    let s = Server::start(Backend::Sqlite).await;
    assert!(s.logs().contains("running as root"), "{}", s.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_txt_follows_rfc_9116() {
    // None configured: not served (Contact is mandatory).
    let s = Server::start(Backend::Sqlite).await;
    let (st, v) = s.get("/.well-known/security.txt", &Auth::None).await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    drop(s);

    let s = Server::start_with(
        Backend::Sqlite,
        &[
            (
                "KLUIS_SECURITY_CONTACT",
                "[\"mailto:security@example.test\", \"https://example.test/report\"]",
            ),
            (
                "KLUIS_SECURITY_POLICY_URL",
                "https://example.test/SECURITY.md",
            ),
            ("KLUIS_PUBLIC_URL", "https://crm.example.test"),
        ],
    )
    .await;
    let res = s
        .client
        .get(s.url("/.well-known/security.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/plain; charset=utf-8"
    );
    assert!(res.headers().contains_key("strict-transport-security"));
    let body = res.text().await.unwrap();
    let field = |name: &str| -> Vec<String> {
        body.lines()
            .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        field("Contact"),
        [
            "mailto:security@example.test",
            "https://example.test/report"
        ]
    );
    assert_eq!(field("Policy"), ["https://example.test/SECURITY.md"]);
    assert_eq!(
        field("Canonical"),
        ["https://crm.example.test/.well-known/security.txt"]
    );
    // Expires: once, RFC 3339, in the future and less than a year ahead (RFC 9116 2.5.5).
    let expires = field("Expires");
    assert_eq!(expires.len(), 1, "{body}");
    let at =
        time::OffsetDateTime::parse(&expires[0], &time::format_description::well_known::Rfc3339)
            .unwrap();
    let ahead = at - time::OffsetDateTime::now_utc();
    assert!(
        ahead > time::Duration::days(170) && ahead < time::Duration::days(365),
        "Expires {} is {ahead} ahead",
        expires[0]
    );
    // Every line is a known field (or a comment): no stray output.
    for l in body.lines() {
        let name = l.split(':').next().unwrap();
        assert!(
            [
                "Contact",
                "Expires",
                "Policy",
                "Canonical",
                "Preferred-Languages"
            ]
            .contains(&name),
            "unexpected line {l:?}"
        );
    }

    // A contact that is not a URI is refused at start.
    let (ok, _, err) = {
        let o = Command::new(env!("CARGO_BIN_EXE_kluis"))
            .args(["--data-dir"])
            .arg(s.dir.path())
            .args(["tenant", "list"])
            .env("KLUIS_SECURITY_CONTACT", "[\"security@example.test\"]")
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert!(!ok && err.contains("security_contact"), "{err}");
}
