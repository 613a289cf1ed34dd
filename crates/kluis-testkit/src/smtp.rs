//! A real SMTP server for tests: `aiosmtpd` (PyPI) started on a loopback port, optionally
//! with STARTTLS (self-signed certificate for `localhost`, which the test trusts as an extra
//! CA). Each received message is written as JSON into a directory that tests read.
//!
//! Recipients whose address starts with `weiger` are refused with a permanent `550`.
//!
//! Without `aiosmtpd` the tests that need it print `skipped: ...` and pass, unless
//! `KLUIS_REQUIRE_SMTP=1` is set (CI), which makes that a failure.

use std::io::{BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

pub const REQUIRE_SMTP_ENV: &str = "KLUIS_REQUIRE_SMTP";
const SCRIPT: &str = include_str!("smtp_server.py");

pub fn require_smtp() -> bool {
    std::env::var(REQUIRE_SMTP_ENV).is_ok_and(|v| v.trim() == "1")
}

/// Whether `python3 -c 'import aiosmtpd'` works; None when it does, else why not.
fn missing() -> Option<String> {
    match Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        Ok(_) => Some("the Python package aiosmtpd is not installed (pip install aiosmtpd)".into()),
        Err(_) => Some("python3 is not installed".into()),
    }
}

/// A free loopback port (bound and released; a server can be started on it later).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// One received message.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub from: String,
    pub to: String,
    pub subject: String,
    /// Decoded text/plain part.
    pub text: String,
    /// Decoded text/html part.
    pub html: String,
    /// Whether the SMTP session was encrypted (STARTTLS).
    pub tls: bool,
    /// Whether the client logged in (servers started with [`SmtpServer::start_with_login`]).
    pub authenticated: bool,
    /// The message as received.
    pub raw: String,
}

pub struct SmtpServer {
    pub port: u16,
    dir: tempfile::TempDir,
    tls: bool,
    /// Required login (user name; the password is in `password_file`).
    login: Option<String>,
    child: Option<Child>,
}

impl SmtpServer {
    /// Starts a server on a random port; `tls`: offer and require STARTTLS. None (after a
    /// loud skip notice) when aiosmtpd is missing and not required.
    pub fn start(tls: bool) -> Option<SmtpServer> {
        SmtpServer::start_on(free_port(), tls)
    }

    /// STARTTLS plus a required login (`AUTH` only after STARTTLS); the password is in
    /// [`SmtpServer::password_file`].
    pub fn start_with_login(user: &str, password: &str) -> Option<SmtpServer> {
        SmtpServer::start_opts(free_port(), true, Some((user, password)))
    }

    pub fn start_on(port: u16, tls: bool) -> Option<SmtpServer> {
        SmtpServer::start_opts(port, tls, None)
    }

    fn start_opts(port: u16, tls: bool, login: Option<(&str, &str)>) -> Option<SmtpServer> {
        if let Some(why) = missing() {
            let msg = format!("skipped: SMTP tests — {why}");
            if require_smtp() {
                panic!("{msg} ({REQUIRE_SMTP_ENV}=1 is set, so this is an error)");
            }
            let _ = writeln!(std::io::stderr(), "{msg}");
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let mut s = SmtpServer {
            port,
            dir,
            tls,
            login: login.map(|(u, _)| u.to_owned()),
            child: None,
        };
        if let Some((_, password)) = login
            && let Err(e) = std::fs::write(s.password_file(), password)
        {
            panic!("writing the SMTP password file: {e}");
        }
        if let Err(e) = s.spawn() {
            panic!("aiosmtpd did not start: {e:#}");
        }
        Some(s)
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// The relay password, in a file (for `KLUIS_SMTP_PASSWORD_FILE`).
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("smtp-password")
    }

    /// PEM of the self-signed certificate the server uses with STARTTLS (trust it as a CA).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// `smtp://localhost:PORT` (STARTTLS) or `smtp+plain://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        if self.tls {
            format!("smtp://localhost:{}", self.port)
        } else {
            format!("smtp+plain://127.0.0.1:{}", self.port)
        }
    }

    fn spawn(&mut self) -> Result<()> {
        let script = self.dir.path().join("smtp_server.py");
        std::fs::write(&script, SCRIPT)?;
        std::fs::create_dir_all(self.mail_dir())?;
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .args(["--port", &self.port.to_string()])
            .arg("--dir")
            .arg(self.mail_dir());
        if self.tls {
            let cert = self.ca_file();
            let key = self.dir.path().join("key.pem");
            if !cert.exists() {
                let ck = rcgen::generate_simple_self_signed(vec![
                    "localhost".to_owned(),
                    "127.0.0.1".to_owned(),
                ])
                .context("certificate")?;
                std::fs::write(&cert, ck.cert.pem())?;
                std::fs::write(&key, ck.signing_key.serialize_pem())?;
            }
            cmd.arg("--cert").arg(&cert).arg("--key").arg(&key);
        }
        if let Some(user) = &self.login {
            cmd.args(["--user", user])
                .arg("--password-file")
                .arg(self.password_file());
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting python3")?;
        let out = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        if line.trim() != "READY" {
            let _ = child.kill();
            let _ = child.wait();
            bail!("aiosmtpd printed {line:?} instead of READY");
        }
        self.child = Some(child);
        Ok(())
    }

    /// Stops the server (messages received so far stay readable).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        read_dir(&self.mail_dir())
    }

    /// Waits until at least `n` messages arrived (panics after `timeout`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            if Instant::now() > deadline {
                panic!("expected {n} email(s) within {timeout:?}, got {}", m.len());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_dir(dir: &Path) -> Vec<ReceivedMail> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            ReceivedMail {
                mail_from: s("mail_from"),
                rcpt_tos: v["rcpt_tos"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                from: s("from"),
                to: s("to"),
                subject: s("subject"),
                text: s("text"),
                html: s("html"),
                tls: v["tls"].as_bool().unwrap_or(false),
                authenticated: v["authenticated"].as_bool().unwrap_or(false),
                raw: s("raw"),
            }
        })
        .collect()
}
