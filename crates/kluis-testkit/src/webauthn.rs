//! A real software WebAuthn authenticator for the passkey tests: PyPI `soft-webauthn`, driven
//! by `tests/idp/webauthn/authenticator.py` (one process per call, JSON on stdin/stdout; the
//! device's credential and private key live in a state file in a temp dir between calls).
//!
//! Python: `$KLUIS_WEBAUTHN_PYTHON`, else the virtualenv `tests/idp/webauthn/.venv` (which
//! `.ci/run` creates from the pinned `requirements.txt`), else `python3`. Without
//! `soft_webauthn` importable there, [`Authenticator::new`] prints `skipped: ...` and returns
//! None, unless `KLUIS_REQUIRE_WEBAUTHN=1` is set (CI), which makes that a failure.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

pub const REQUIRE_WEBAUTHN_ENV: &str = "KLUIS_REQUIRE_WEBAUTHN";

pub fn require_webauthn() -> bool {
    std::env::var(REQUIRE_WEBAUTHN_ENV).is_ok_and(|v| v.trim() == "1")
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/idp/webauthn")
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("KLUIS_WEBAUTHN_PYTHON") {
        return p.into();
    }
    let venv = dir().join(".venv/bin/python");
    if venv.exists() {
        return venv;
    }
    "python3".into()
}

/// None when `soft_webauthn` can be imported, else why not.
fn missing() -> Option<String> {
    let py = python();
    match Command::new(&py)
        .args(["-c", "import soft_webauthn, fido2, cryptography"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        Ok(_) => Some(format!(
            "{} cannot import soft_webauthn (python3 -m venv tests/idp/webauthn/.venv && tests/idp/webauthn/.venv/bin/pip install -r tests/idp/webauthn/requirements.txt)",
            py.display()
        )),
        Err(_) => Some(format!("{} is not installed", py.display())),
    }
}

/// One software authenticator holding (at most) one credential.
pub struct Authenticator {
    _dir: tempfile::TempDir,
    state: PathBuf,
}

impl Authenticator {
    /// A fresh authenticator; None (after a loud skip notice) when soft-webauthn is missing
    /// and not required.
    pub fn new() -> Option<Authenticator> {
        if let Some(why) = missing() {
            let msg = format!("skipped: passkey tests — {why}");
            if require_webauthn() {
                panic!("{msg} ({REQUIRE_WEBAUTHN_ENV}=1 is set, so this is an error)");
            }
            let _ = writeln!(std::io::stderr(), "{msg}");
            return None;
        }
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("temp dir for the authenticator: {e}"),
        };
        let state = dir.path().join("device.json");
        Some(Authenticator { _dir: dir, state })
    }

    /// Another authenticator with a copy of this one's credential and counter (a clone).
    pub fn clone_device(&self) -> Result<Authenticator> {
        let dir = tempfile::tempdir()?;
        let state = dir.path().join("device.json");
        std::fs::copy(&self.state, &state).context("copy authenticator state")?;
        Ok(Authenticator { _dir: dir, state })
    }

    fn run(&self, req: Value) -> Result<Value> {
        let mut child = Command::new(python())
            .arg(dir().join("authenticator.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the authenticator")?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(req.to_string().as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "authenticator failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// `navigator.credentials.create(options)` at `origin`: the credential JSON.
    pub fn create(&self, options: &Value, origin: &str) -> Result<Value> {
        self.run(json!({"op": "create", "state": self.state, "origin": origin, "options": options}))
    }

    /// `navigator.credentials.get(options)` at `origin`: the credential JSON.
    pub fn get(&self, options: &Value, origin: &str) -> Result<Value> {
        self.run(json!({"op": "get", "state": self.state, "origin": origin, "options": options}))
    }

    /// Replaces the private key, keeping the credential id: assertions are then signed by a
    /// key the server never registered.
    pub fn rekey(&self) -> Result<()> {
        self.run(json!({"op": "rekey", "state": self.state}))
            .map(|_| ())
    }
}
