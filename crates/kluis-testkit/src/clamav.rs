//! A real ClamAV daemon for tests: Debian's `clamd` (package `clamav-daemon`) started with a
//! private configuration, its socket in a temporary directory and a private signature
//! database. There is no network for `freshclam` and Debian ships no signatures, so the
//! database is one body signature (`.ndb`) that detects the EICAR test file, which is what the
//! tests upload.
//!
//! Without clamd the tests that need it print `skipped: ...` and pass, unless
//! `KLUIS_REQUIRE_CLAMAV=1` is set (CI), which makes that a failure.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

pub const REQUIRE_CLAMAV_ENV: &str = "KLUIS_REQUIRE_CLAMAV";

/// The EICAR anti-virus test file (harmless; every scanner detects it by convention).
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// What clamd reports for [`EICAR`] with this database (`.UNOFFICIAL`: not a ClamAV-signed
/// database).
pub const EICAR_SIGNATURE: &str = "Kluis.Test.EICAR.UNOFFICIAL";

const CLAMD: &str = "/usr/sbin/clamd";

pub fn require_clamav() -> bool {
    std::env::var(REQUIRE_CLAMAV_ENV).is_ok_and(|v| v.trim() == "1")
}

/// A running clamd; stopped on drop.
pub struct Clamd {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Clamd {
    /// Starts clamd, or None (after printing why) when it is not installed and not required.
    pub fn start() -> Option<Clamd> {
        if !Path::new(CLAMD).exists() {
            let why = "skipped: ClamAV tests — /usr/sbin/clamd not found; install the `clamav-daemon` package";
            assert!(
                !require_clamav(),
                "{why} ({REQUIRE_CLAMAV_ENV}=1 is set, so this is a failure)"
            );
            eprintln!("{why}");
            return None;
        }
        match Self::try_start() {
            Ok(c) => Some(c),
            // Installed but broken: a failure whether required or not.
            Err(e) => panic!("clamd is installed but did not start: {e:#}"),
        }
    }

    fn try_start() -> Result<Clamd> {
        let dir = tempfile::tempdir()?;
        let mut c = Clamd { dir, child: None };
        c.write_config()?;
        c.run()?;
        Ok(c)
    }

    /// The socket path clients connect to (also while stopped: a server can be configured
    /// with it before clamd runs).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("clamd.sock")
    }

    fn write_config(&self) -> Result<()> {
        let d = self.dir.path();
        std::fs::create_dir_all(d.join("db"))?;
        std::fs::create_dir_all(d.join("tmp"))?;
        let hex: String = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE"
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // Name:TargetType(0 = any file):Offset(* = anywhere):HexSignature
        std::fs::write(
            d.join("db/kluis-test.ndb"),
            format!("Kluis.Test.EICAR:0:*:{hex}\n"),
        )?;
        std::fs::write(
            d.join("clamd.conf"),
            format!(
                "LocalSocket {sock}\nDatabaseDirectory {db}\nTemporaryDirectory {tmp}\n\
                 Foreground yes\nLogFile {log}\nStreamMaxLength 2000M\nMaxScanSize 2000M\n\
                 MaxFileSize 2000M\n",
                sock = self.socket().display(),
                db = d.join("db").display(),
                tmp = d.join("tmp").display(),
                log = d.join("clamd.log").display(),
            ),
        )?;
        Ok(())
    }

    /// Starts (or restarts) the daemon and waits until it answers PING.
    pub fn run(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new(CLAMD)
            .arg("-c")
            .arg(self.dir.path().join("clamd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning clamd")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("clamd did not answer within 60 s: {}", self.log())
    }

    /// Stops the daemon (a scanner outage); [`Clamd::run`] starts it again.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    pub fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(self.socket()) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut out = Vec::new();
        s.write_all(b"zPING\0").is_ok()
            && s.read_to_end(&mut out).is_ok()
            && out.starts_with(b"PONG")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("clamd.log")).unwrap_or_default()
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.stop();
    }
}
