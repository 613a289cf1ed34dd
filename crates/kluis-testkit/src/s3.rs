//! A real S3-compatible server for tests: Ceph's RADOS Gateway (Debian `radosgw`), the S3 server
//! of production Ceph clusters, which enforces Object Lock in COMPLIANCE mode (a locked version
//! cannot be deleted, not even by version id, nor its retention shortened, nor the bucket's
//! versioning suspended). It runs on a one-node Ceph cluster started here: one monitor and one
//! OSD keeping objects in memory (memstore), loopback ports, no cephx between the daemons,
//! all under a temporary directory (see `s3_server.sh`). One cluster per test process, started
//! on first use (about 10 s); every test makes its own bucket.
//!
//! Without the Ceph binaries the tests that need it print `skipped: ...` and pass, unless
//! `KLUIS_REQUIRE_S3=1` is set (CI), which makes that a failure.
//!
//! Statics are never dropped, so a detached watchdog shell stops the daemons and removes the
//! directory about a second after the test process exits.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use anyhow::{Context as _, Result, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;

pub const REQUIRE_S3_ENV: &str = "KLUIS_REQUIRE_S3";
const SCRIPT: &str = include_str!("s3_server.sh");
const BINARIES: [&str; 7] = [
    "ceph-mon",
    "ceph-osd",
    "radosgw",
    "radosgw-admin",
    "ceph",
    "monmaptool",
    "ceph-authtool",
];
pub const REGION: &str = "us-east-1";

pub fn require_s3() -> bool {
    std::env::var(REQUIRE_S3_ENV).is_ok_and(|v| v.trim() == "1")
}

/// None when every Ceph binary is on PATH, else which one is missing.
fn missing() -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    BINARIES
        .iter()
        .find(|b| !std::env::split_paths(&path).any(|d| d.join(b).is_file()))
        .map(|b| {
            format!(
                "{b} is not installed (Debian packages: radosgw ceph-mon ceph-osd; \
                 `apt-get install --no-install-recommends radosgw ceph-mon ceph-osd`)"
            )
        })
}

/// The running gateway and the credentials of its one user.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// `https://localhost:PORT`, the same gateway over TLS with the certificate in `ca_file`.
    pub tls_endpoint: String,
    /// PEM of the gateway's self-signed certificate (trust it as a private CA).
    pub ca_file: PathBuf,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    dir: PathBuf,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("endpoint", &self.endpoint)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A raw reply, for tests that check the server directly.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

static SERVER: OnceLock<Result<Option<S3Server>, String>> = OnceLock::new();
static BUCKETS: AtomicU64 = AtomicU64::new(0);

/// The gateway for this test process, started on first use. None (after a loud skip notice)
/// when Ceph is not installed and [`require_s3`] is not set; panics when it is set, or when
/// Ceph is installed but does not start.
pub fn s3_server() -> Option<&'static S3Server> {
    let state = SERVER.get_or_init(|| {
        if missing().is_some() {
            return Ok(None);
        }
        // A second attempt (fresh directory and ports) if a loaded machine upset the first.
        S3Server::start()
            .or_else(|e| {
                let _ = writeln!(
                    std::io::stderr(),
                    "the test S3 server did not start ({e:#}); trying once more"
                );
                S3Server::start()
            })
            .map(Some)
            .map_err(|e| format!("{e:#}"))
    });
    match state {
        Ok(Some(s)) => Some(s),
        Ok(None) => {
            let why = missing().unwrap_or_default();
            let msg = format!("skipped: S3 tests — {why}");
            if require_s3() {
                panic!("{msg} ({REQUIRE_S3_ENV}=1 is set, so this is an error)");
            }
            let _ = writeln!(std::io::stderr(), "{msg}");
            None
        }
        Err(e) => panic!("the test S3 server (Ceph radosgw) did not start: {e}"),
    }
}

impl S3Server {
    fn start() -> Result<S3Server> {
        let dir = tempfile::Builder::new()
            .prefix("kluis-s3-")
            .tempdir()
            .context("temporary directory")?
            .keep();
        spawn_watchdog(&dir)?;
        let script = dir.join("s3_server.sh");
        std::fs::write(&script, SCRIPT)?;
        let (mon_port, rgw_port, tls_port) = (
            crate::smtp::free_port(),
            crate::smtp::free_port(),
            crate::smtp::free_port(),
        );
        let data = dir.join("ceph");
        // HTTPS too, with a self-signed certificate that tests trust as a private CA.
        let ca_file = dir.join("s3-cert.pem");
        let key_file = dir.join("s3-key.pem");
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .context("certificate")?;
        std::fs::write(&ca_file, ck.cert.pem())?;
        std::fs::write(&key_file, ck.signing_key.serialize_pem())?;
        let mut child = Command::new("bash")
            .arg(&script)
            .arg(&data)
            .arg(mon_port.to_string())
            .arg(rgw_port.to_string())
            .arg(tls_port.to_string())
            .arg(&ca_file)
            .arg(&key_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting bash s3_server.sh")?;
        let out = child.stdout.take().context("stdout")?;
        let mut lines = String::new();
        let mut reader = BufReader::new(out);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            lines.push_str(&line);
        }
        let status = child.wait()?;
        if !status.success() || !lines.contains("READY") {
            stop_daemons(&data);
            let log = std::fs::read_to_string(data.join("log/setup.log")).unwrap_or_default();
            bail!("s3_server.sh exited with {status}; output: {lines}; setup log: {log}");
        }
        let user: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data.join("user.json"))?)
                .context("radosgw-admin user create output")?;
        let key = &user["keys"][0];
        let (Some(access_key), Some(secret_key)) =
            (key["access_key"].as_str(), key["secret_key"].as_str())
        else {
            bail!("radosgw-admin printed no keys");
        };
        Ok(S3Server {
            endpoint: format!("http://127.0.0.1:{rgw_port}"),
            tls_endpoint: format!("https://localhost:{tls_port}"),
            ca_file,
            region: REGION.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            dir,
        })
    }

    /// A bucket name not used before in this process.
    pub fn unique_bucket(&self, stem: &str) -> String {
        let n = BUCKETS.fetch_add(1, Ordering::Relaxed);
        format!("{stem}-{}-{n}", std::process::id())
    }

    /// Creates a bucket, with Object Lock (and so versioning) when `object_lock`.
    pub async fn create_bucket(&self, name: &str, object_lock: bool) -> Result<()> {
        let headers: &[(&str, &str)] = if object_lock {
            &[("x-amz-bucket-object-lock-enabled", "true")]
        } else {
            &[]
        };
        let r = self
            .request("PUT", &format!("/{name}"), headers, Vec::new())
            .await?;
        if r.status != 200 {
            bail!("creating bucket {name}: HTTP {} {}", r.status, r.text());
        }
        Ok(())
    }

    /// Environment variables that point `kluis_backup::Repo::open("s3://...")` at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KLUIS_S3_ENDPOINT", self.endpoint.clone()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
        ]
    }

    /// One SigV4-signed request, straight to the server (independent of the code under test).
    /// `path_and_query` is already encoded, e.g. `/bucket/key?versionId=...`.
    pub async fn request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<RawReply> {
        let url = format!("{}{path_and_query}", self.endpoint);
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let identity = Credentials::new(
            self.access_key.clone(),
            self.secret_key.clone(),
            None,
            None,
            "kluis-testkit",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        let client = reqwest::Client::new();
        let mut rb = client.request(reqwest::Method::from_bytes(method.as_bytes())?, &url);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        for (k, v) in instructions.headers() {
            rb = rb.header(k, v);
        }
        let resp = rb
            .header(reqwest::header::CONTENT_LENGTH, body.len())
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let body = resp.bytes().await?.to_vec();
        Ok(RawReply {
            status,
            headers,
            body,
        })
    }
}

/// Kills whatever daemons a failed start left running (their pid files are in `run/`).
fn stop_daemons(data: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(data.join("run")) else {
        return;
    };
    for e in entries.flatten() {
        if e.path().extension().is_some_and(|x| x == "pid")
            && let Ok(pid) = std::fs::read_to_string(e.path())
        {
            let _ = Command::new("kill")
                .args(["-9", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Kills the daemons (pid files) and removes the directory once this process is gone.
fn spawn_watchdog(dir: &std::path::Path) -> Result<()> {
    let d = shell_quote(&dir.to_string_lossy());
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         for p in {d}/ceph/run/*.pid; do [ -f \"$p\" ] && kill -9 \"$(cat \"$p\")\" 2>/dev/null; done; \
         sleep 1; cd /; rm -rf {d}",
        pid = std::process::id(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Survives Ctrl-C / the test runner's process group going away.
        .process_group(0)
        .spawn()
        .context("spawning the S3 server watchdog")?;
    Ok(())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
