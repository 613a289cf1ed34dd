//! A real SAML 2.0 identity provider for the SAML tests: PyPI `pysaml2`'s `saml2.server.Server`,
//! run by Python from `tests/idp/saml/idp.py` on 127.0.0.1 with freshly generated signing keys.
//!
//! Each [`TestSamlIdp`] is its own Python process on a random port; dropping it stops the
//! process (which also exits when its stdin closes, i.e. when the test process dies). Needs
//! `python3` with `pysaml2` importable and the `xmlsec1` command (pysaml2 signs with it);
//! without them [`TestSamlIdp::start`] prints `skipped: ...` and returns None, unless
//! `KLUIS_REQUIRE_SAML=1` is set.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// Environment variable that turns "pysaml2, xmlsec1 or the `saml` feature is missing" from a
/// skip into a failure.
pub const REQUIRE_SAML_ENV: &str = "KLUIS_REQUIRE_SAML";

static SKIP_NOTICE: Once = Once::new();

/// Whether `KLUIS_REQUIRE_SAML=1` is set.
pub fn require_saml() -> bool {
    std::env::var(REQUIRE_SAML_ENV).is_ok_and(|v| v.trim() == "1")
}

/// Prints `skipped: SAML tests — {why}` once, or panics under `KLUIS_REQUIRE_SAML=1`.
pub fn skip(why: &str) {
    let msg = format!("skipped: SAML tests — {why}");
    if require_saml() {
        panic!("{msg} ({REQUIRE_SAML_ENV}=1 is set, so this is an error)");
    }
    SKIP_NOTICE.call_once(|| {
        let _ = writeln!(std::io::stderr(), "{msg}");
    });
}

/// A running test SAML IdP.
pub struct TestSamlIdp {
    /// The IdP's entity id (the Issuer of its responses).
    pub entity_id: String,
    /// Its single sign-on URL (HTTP-Redirect binding).
    pub sso_url: String,
    /// The IdP's signing certificate (PEM).
    pub cert_pem: String,
    /// The certificate of the other key the IdP signs with in the `other_key` variant.
    pub other_cert_pem: String,
    child: Child,
}

/// Where the IdP's script lives.
pub fn idp_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/idp/saml");
    dir.canonicalize().unwrap_or(dir)
}

fn missing() -> Option<String> {
    let py = Command::new("python3")
        .args(["-c", "import saml2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !py.is_ok_and(|s| s.success()) {
        return Some("python3 with pysaml2 is not available (pip install pysaml2)".to_owned());
    }
    let xmlsec = Command::new("xmlsec1")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !xmlsec.is_ok_and(|s| s.success()) {
        return Some("the xmlsec1 command is not on PATH (apt-get install xmlsec1)".to_owned());
    }
    None
}

impl TestSamlIdp {
    /// Starts an IdP, or returns None (after printing why) when Python, pysaml2 or xmlsec1 are
    /// missing and `KLUIS_REQUIRE_SAML` is not set. Panics if it is set, or if the IdP fails
    /// to start although everything is installed.
    pub fn start() -> Option<TestSamlIdp> {
        if let Some(why) = missing() {
            skip(&why);
            return None;
        }
        match TestSamlIdp::try_start() {
            Ok(idp) => Some(idp),
            Err(e) => panic!("the test SAML IdP failed to start: {e:#}"),
        }
    }

    fn try_start() -> Result<TestSamlIdp> {
        let mut child = Command::new("python3")
            .arg("-W")
            .arg("ignore")
            .arg("idp.py")
            .current_dir(idp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning python3")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().context("stdout")?;
        let stderr = child.stderr.take().context("stderr")?;
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(json) = line.strip_prefix("kluis-test-saml-idp: ready ") {
                    let _ = tx.send(Ok(json.trim().to_owned()));
                }
            }
        });
        std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
            }
            let _ = tx2.send(Err(all));
        });
        let info = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(json)) => json,
            Ok(Err(stderr)) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("python3 exited: {stderr}");
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("no `ready` line within 60 s");
            }
        };
        let v: serde_json::Value = serde_json::from_str(&info).context("ready line")?;
        let s = |k: &str| -> Result<String> {
            Ok(v[k]
                .as_str()
                .with_context(|| format!("{k} missing"))?
                .to_owned())
        };
        Ok(TestSamlIdp {
            entity_id: s("entity_id")?,
            sso_url: s("sso_url")?,
            cert_pem: s("cert_pem")?,
            other_cert_pem: s("other_cert_pem")?,
            child,
        })
    }
}

impl Drop for TestSamlIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
