//! Headless Chromium for the page tests, driven by npm `playwright-core` scripts in
//! `tests/browser` (run with the machine's Node.js).
//!
//! Needs `chromium` (Debian package) and `node` on PATH and `npm ci` run in `tests/browser`;
//! without them [`browser_tools`] prints `skipped: ...` and returns None, unless
//! `KLUIS_REQUIRE_BROWSER=1` is set (CI), which makes that a failure.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;

/// Environment variable that turns "Chromium, Node.js or playwright-core is missing" from a
/// skip into a failure.
pub const REQUIRE_BROWSER_ENV: &str = "KLUIS_REQUIRE_BROWSER";

static SKIP_NOTICE: Once = Once::new();

pub fn require_browser() -> bool {
    std::env::var(REQUIRE_BROWSER_ENV).is_ok_and(|v| v.trim() == "1")
}

/// Where the browser scripts and their `package.json` live.
pub fn scripts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    dir.canonicalize().unwrap_or(dir)
}

/// What a browser test needs.
pub struct BrowserTools {
    pub chromium: PathBuf,
    pub scripts: PathBuf,
}

fn runs(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn find() -> Result<BrowserTools, String> {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| runs(c, "--version"))
        .ok_or("chromium is not on PATH (apt-get install chromium)")?;
    if !runs("node", "--version") {
        return Err("node (Node.js) is not on PATH".to_owned());
    }
    let scripts = scripts_dir();
    if !scripts
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return Err(format!(
            "playwright-core is not installed; run `npm ci` in {}",
            scripts.display()
        ));
    }
    let path = Command::new("sh")
        .args(["-c", &format!("command -v {chromium}")])
        .output()
        .map_err(|e| e.to_string())?;
    Ok(BrowserTools {
        chromium: PathBuf::from(String::from_utf8_lossy(&path.stdout).trim()),
        scripts,
    })
}

/// The tools, or None after printing `skipped: ...` (a panic under `KLUIS_REQUIRE_BROWSER=1`).
pub fn browser_tools() -> Option<BrowserTools> {
    match find() {
        Ok(t) => Some(t),
        Err(why) => {
            let msg = format!("skipped: browser tests — {why}");
            if require_browser() {
                panic!("{msg} ({REQUIRE_BROWSER_ENV}=1 is set, so this is an error)");
            }
            SKIP_NOTICE.call_once(|| {
                let _ = writeln!(std::io::stderr(), "{msg}");
            });
            None
        }
    }
}

impl BrowserTools {
    /// Runs `script` (in `tests/browser`) with one JSON argument; returns (success, stdout,
    /// stderr).
    pub fn run(&self, script: &str, input: &serde_json::Value) -> (bool, String, String) {
        match Command::new("node")
            .arg(self.scripts.join(script))
            .arg(input.to_string())
            .current_dir(&self.scripts)
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) => (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ),
            Err(e) => (false, String::new(), format!("could not run node: {e}")),
        }
    }
}
