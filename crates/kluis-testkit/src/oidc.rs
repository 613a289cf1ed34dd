//! A real OpenID provider for the SSO tests: npm `oidc-provider` (OpenID certified), run by
//! Node.js from `tests/idp/oidc` over HTTPS on 127.0.0.1 with a fresh self-signed certificate.
//!
//! Each [`TestIdp`] is its own Node process on a random port; dropping it stops the process
//! (and the process also exits when its stdin closes, i.e. when the test process dies).
//! Needs `node` on PATH and `npm ci` run in `tests/idp/oidc`; without them [`TestIdp::start`]
//! prints `skipped: ...` and returns None, unless `KLUIS_REQUIRE_OIDC=1` is set.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// Environment variable that turns "Node.js or the IdP's packages are missing" from a skip
/// into a failure.
pub const REQUIRE_OIDC_ENV: &str = "KLUIS_REQUIRE_OIDC";

static SKIP_NOTICE: Once = Once::new();

/// Whether `KLUIS_REQUIRE_OIDC=1` is set.
pub fn require_oidc() -> bool {
    std::env::var(REQUIRE_OIDC_ENV).is_ok_and(|v| v.trim() == "1")
}

/// A running test OpenID provider.
pub struct TestIdp {
    /// `https://127.0.0.1:PORT`
    pub issuer: String,
    /// The provider's self-signed certificate (PEM): what a relying party must trust.
    pub ca_pem: Vec<u8>,
    /// Path of the same PEM (for `KLUIS_SSO_CA_FILE`).
    pub ca_file: PathBuf,
    /// Bearer token for the provider's registration endpoint and `/__test/*` switches.
    pub admin_token: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// Where the IdP's script and `package.json` live.
pub fn idp_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/idp/oidc");
    dir.canonicalize().unwrap_or(dir)
}

fn missing() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node (Node.js) is not on PATH".to_owned());
    }
    if !idp_dir()
        .join("node_modules/oidc-provider/package.json")
        .exists()
    {
        return Some(format!(
            "the test IdP's packages are not installed; run `npm ci` in {}",
            idp_dir().display()
        ));
    }
    None
}

impl TestIdp {
    /// Starts a provider, or returns None (after printing why) when Node.js or the packages
    /// are missing and `KLUIS_REQUIRE_OIDC` is not set. Panics if it is set, or if the
    /// provider fails to start although everything is installed.
    pub fn start() -> Option<TestIdp> {
        if let Some(why) = missing() {
            let msg = format!("skipped: OIDC SSO tests — {why}");
            if require_oidc() {
                panic!("{msg} ({REQUIRE_OIDC_ENV}=1 is set, so this is an error)");
            }
            SKIP_NOTICE.call_once(|| {
                let _ = writeln!(std::io::stderr(), "{msg}");
            });
            return None;
        }
        match TestIdp::try_start() {
            Ok(idp) => Some(idp),
            Err(e) => panic!("the test OpenID provider failed to start: {e:#}"),
        }
    }

    fn try_start() -> Result<TestIdp> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .context("self-signed certificate")?;
        let ca_file = dir.path().join("idp-cert.pem");
        let key_file = dir.path().join("idp-key.pem");
        let ca_pem = cert.cert.pem().into_bytes();
        std::fs::write(&ca_file, &ca_pem)?;
        std::fs::write(&key_file, cert.signing_key.serialize_pem())?;
        let admin_token = uuid::Uuid::new_v4().simple().to_string();
        let mut child = Command::new("node")
            .arg("idp.mjs")
            .current_dir(idp_dir())
            .env("IDP_CERT", &ca_file)
            .env("IDP_KEY", &key_file)
            .env("IDP_ADMIN_TOKEN", &admin_token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning node")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().context("stdout")?;
        let stderr = child.stderr.take().context("stderr")?;
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("kluis-test-idp: listening on ") {
                    let _ = tx.send(Ok(url.trim().to_owned()));
                }
            }
        });
        std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Node's warnings about its version and the in-memory adapter are expected.
                if !line.contains("oidc-provider WARNING") {
                    all.push_str(&line);
                    all.push('\n');
                }
            }
            let _ = tx2.send(Err(all));
        });
        let issuer = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(url)) => url,
            Ok(Err(stderr)) => {
                let _ = child.kill();
                bail!("node exited: {stderr}");
            }
            Err(_) => {
                let _ = child.kill();
                bail!("no `listening` line within 60 s");
            }
        };
        Ok(TestIdp {
            issuer,
            ca_pem,
            ca_file,
            admin_token,
            child,
            _dir: dir,
        })
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
