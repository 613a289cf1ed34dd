//! Witnesses: `kluis witness serve` (a small C2SP `tlog-witness` server with its own key and
//! state directory) and the client side the server uses to push checkpoints and that
//! `kluis audit verify --witness` uses to compare the log with what a witness holds.
//!
//! The witness keeps the latest checkpoint it cosigned per log (origin) and cosigns a new one
//! only if it is signed by a log key it was configured with and is a consistent extension of
//! that one (RFC 6962 consistency proof): a log that rolled back or forked cannot get a
//! cosignature, and a verifier holding the cosigned checkpoint detects either.
//!
//! Protocol (C2SP tlog-witness): `POST /add-checkpoint` with the body
//! `old <size>\n` + one base64 consistency-proof hash per line + `\n` + the signed note.
//! 200: the cosignature line (C2SP `cosignature/v1`). 400: malformed, or old size larger than
//! the checkpoint. 403: no configured log key signed it. 409 `text/x.tlog.size`: the old size
//! is not the witness's latest (body: that size). 409 (plain): same size, another root (a
//! fork). 422: the consistency proof does not verify. `GET /<hex sha256(origin)>/checkpoint`
//! returns the latest cosigned checkpoint (404 if none), as the monitoring endpoint of the
//! C2SP drafts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kluis_crypto::checkpoint::{
    self, CheckpointVerifier, CosignatureVerifier, Cosigner, parse_unverified,
};
use kluis_crypto::merkle::{self, Hash};
use sha2::{Digest, Sha256};

/// Largest request body (as the Go witness): a note and at most 63 proof lines fit easily.
const MAX_BODY: usize = 16 * 1024;
const MAX_PROOF_LINES: usize = 63;
const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

#[derive(clap::Subcommand)]
pub enum WitnessCmd {
    /// Run a witness: cosigns checkpoints of the configured logs that consistently extend the
    /// last one it cosigned; refuses rollbacks and forks.
    Serve {
        /// State directory (its key and the latest cosigned checkpoint per log); created 0700.
        #[arg(long)]
        state_dir: PathBuf,
        /// Listen address. Plain HTTP: loopback only unless --allow-remote (then put TLS in
        /// front; cosignatures are signed, but the protocol expects HTTPS across hosts).
        #[arg(long, default_value = "127.0.0.1:7380")]
        listen: SocketAddr,
        /// Verifier key (C2SP vkey) of a log this witness accepts (`kluis audit verifier-key`);
        /// repeat for several. Every origin signed by one of these keys is accepted.
        #[arg(long = "log-key", required = true)]
        log_keys: Vec<String>,
        /// The witness's key name (in its cosignature lines).
        #[arg(long, default_value = "kluis-witness")]
        name: String,
        /// Allow a non-loopback listen address.
        #[arg(long)]
        allow_remote: bool,
    },
    /// Print the witness's verifier key (C2SP vkey, cosignature/v1), creating the key if needed.
    Key {
        /// State directory of the witness.
        #[arg(long)]
        state_dir: PathBuf,
        /// The witness's key name.
        #[arg(long, default_value = "kluis-witness")]
        name: String,
    },
}

pub async fn run(cmd: WitnessCmd) -> anyhow::Result<()> {
    match cmd {
        WitnessCmd::Key { state_dir, name } => {
            crate::serve::create_private_dir(&state_dir)?;
            println!("{}", load_key(&state_dir, &name)?.vkey());
            Ok(())
        }
        WitnessCmd::Serve {
            state_dir,
            listen,
            log_keys,
            name,
            allow_remote,
        } => {
            if !listen.ip().is_loopback() && !allow_remote {
                bail!(
                    "{listen} is not a loopback address; the witness speaks plain HTTP (pass --allow-remote behind a TLS proxy)"
                );
            }
            crate::serve::create_private_dir(&state_dir)?;
            crate::serve::create_private_dir(&state_dir.join("logs"))?;
            let cosigner = load_key(&state_dir, &name)?;
            let logs = log_keys
                .iter()
                .map(|k| CheckpointVerifier::from_vkey(k.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| anyhow::anyhow!("--log-key: not a C2SP verifier key"))?;
            let vkey = cosigner.vkey();
            let state = Arc::new(Witness {
                cosigner,
                logs,
                dir: state_dir,
                lock: tokio::sync::Mutex::new(()),
            });
            let app = axum::Router::new()
                .route("/add-checkpoint", post(add_checkpoint))
                .route("/{origin}/checkpoint", get(latest))
                .layer(DefaultBodyLimit::max(MAX_BODY))
                .with_state(state);
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            println!(
                "kluis witness: listening on http://{}\nkluis witness: key {vkey}",
                listener.local_addr()?
            );
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            Ok(())
        }
    }
}

fn load_key(dir: &Path, name: &str) -> anyhow::Result<Cosigner> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = dir.join("witness.key");
    if !path.exists() {
        let c = Cosigner::generate(name)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        writeln!(f, "{}", STANDARD.encode(c.to_bytes().as_slice()))?;
        f.sync_all()?;
        return Ok(c);
    }
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!("{} has mode {mode:o}; it must be 0600", path.display());
    }
    let seed = zeroize::Zeroizing::new(
        STANDARD
            .decode(std::fs::read_to_string(&path)?.trim())
            .map_err(|_| anyhow::anyhow!("{} is not a base64 key", path.display()))?,
    );
    let seed: [u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()))?;
    Ok(Cosigner::from_bytes(name, &seed)?)
}

struct Witness {
    cosigner: Cosigner,
    logs: Vec<CheckpointVerifier>,
    dir: PathBuf,
    /// One add-checkpoint at a time: check-then-store must not interleave.
    lock: tokio::sync::Mutex<()>,
}

pub fn origin_hash(origin: &str) -> String {
    hex::encode(Sha256::digest(origin.as_bytes()))
}

impl Witness {
    fn state_path(&self, origin: &str) -> PathBuf {
        self.dir.join("logs").join(origin_hash(origin))
    }

    fn stored(&self, origin: &str) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(self.state_path(origin)) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the stored checkpoint atomically and durably (temp file, fsync, rename).
    fn store(&self, origin: &str, note: &str) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.state_path(origin);
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(note.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(self.dir.join("logs"))?.sync_all()
    }
}

fn plain(status: StatusCode, msg: &str) -> Response {
    (status, format!("{msg}\n")).into_response()
}

async fn latest(State(w): State<Arc<Witness>>, UrlPath(hash): UrlPath<String>) -> Response {
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return plain(
            StatusCode::BAD_REQUEST,
            "expected hex SHA-256 of the origin",
        );
    }
    match std::fs::read_to_string(w.dir.join("logs").join(hash.to_ascii_lowercase())) {
        Ok(note) => note.into_response(),
        Err(_) => plain(StatusCode::NOT_FOUND, "no checkpoint of this log"),
    }
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    let Ok(body) = std::str::from_utf8(&body) else {
        return plain(StatusCode::BAD_REQUEST, "body is not UTF-8");
    };
    let Some((head, note)) = body.split_once("\n\n") else {
        return plain(
            StatusCode::BAD_REQUEST,
            "expected old size, proof, blank line, checkpoint",
        );
    };
    let mut lines = head.split('\n');
    let old = match lines.next().and_then(|l| l.strip_prefix("old ")) {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => match n.parse::<u64>()
        {
            Ok(v) => v,
            Err(_) => return plain(StatusCode::BAD_REQUEST, "bad old size"),
        },
        _ => return plain(StatusCode::BAD_REQUEST, "first line must be `old <size>`"),
    };
    let mut proof: Vec<Hash> = Vec::new();
    for l in lines {
        let Some(h) = STANDARD
            .decode(l)
            .ok()
            .and_then(|b| <Hash>::try_from(b.as_slice()).ok())
        else {
            return plain(StatusCode::BAD_REQUEST, "proof lines must be base64 hashes");
        };
        proof.push(h);
        if proof.len() > MAX_PROOF_LINES {
            return plain(StatusCode::BAD_REQUEST, "too many proof lines");
        }
    }
    if parse_unverified(note).is_err() {
        return plain(StatusCode::BAD_REQUEST, "not a checkpoint");
    }
    // Only logs whose key this witness was given.
    let Some(cp) = w.logs.iter().find_map(|v| checkpoint::verify(note, v).ok()) else {
        return plain(
            StatusCode::FORBIDDEN,
            "no known log key signed this checkpoint",
        );
    };
    if old > cp.size {
        return plain(
            StatusCode::BAD_REQUEST,
            "old size is larger than the checkpoint",
        );
    }
    let _guard = w.lock.lock().await;
    let stored = match w.stored(&cp.origin) {
        Ok(s) => s,
        Err(_) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "witness state unreadable",
            );
        }
    };
    let (latest_size, latest_root) = match stored.as_deref().map(parse_unverified) {
        None => (0, merkle::empty_root()),
        Some(Ok(c)) => (c.size, c.root),
        Some(Err(_)) => {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "witness state corrupt");
        }
    };
    if old != latest_size {
        return (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
            format!("{latest_size}\n"),
        )
            .into_response();
    }
    if old == cp.size && latest_root != cp.root {
        tracing::error!(origin = %cp.origin, size = cp.size, "fork: same size, different root");
        return plain(
            StatusCode::CONFLICT,
            "a different checkpoint of this size was cosigned: the log forked",
        );
    }
    if merkle::verify_consistency(old, cp.size, &latest_root, &cp.root, &proof).is_err() {
        return plain(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the consistency proof does not verify: not an extension of the cosigned checkpoint",
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let Ok(line) = w.cosigner.cosign(note, now) else {
        return plain(StatusCode::BAD_REQUEST, "not a signed note");
    };
    let mut cosigned = note.to_owned();
    if !cosigned.ends_with('\n') {
        cosigned.push('\n');
    }
    cosigned.push_str(&line);
    if w.store(&cp.origin, &cosigned).is_err() {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "witness state not written",
        );
    }
    line.into_response()
}

// ---- client side ----------------------------------------------------------------------

/// A configured witness: where it listens and the key its cosignatures must verify with.
#[derive(Clone, Debug)]
pub struct WitnessPeer {
    pub url: String,
    pub key: CosignatureVerifier,
}

/// Parses `audit_witnesses` entries: `<URL> <witness vkey>`.
pub fn parse_peers(entries: &[String]) -> anyhow::Result<Vec<WitnessPeer>> {
    entries
        .iter()
        .map(|e| {
            let (url, key) = e
                .trim()
                .split_once(char::is_whitespace)
                .context("audit_witnesses: each entry is `<URL> <witness verifier key>`")?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("audit_witnesses: {url} is not an http(s) URL");
            }
            let key = CosignatureVerifier::from_vkey(key.trim()).map_err(|_| {
                anyhow::anyhow!("audit_witnesses: not a witness key (cosignature/v1) for {url}")
            })?;
            Ok(WitnessPeer {
                url: url.trim_end_matches('/').to_owned(),
                key,
            })
        })
        .collect()
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Pushes signed checkpoints to the configured witnesses and records their cosignatures.
pub struct Pusher {
    peers: Vec<WitnessPeer>,
    client: reqwest::Client,
    /// (witness index, tenant) -> size the witness last cosigned, as far as we know.
    known: HashMap<(usize, kluis_core::TenantId), u64>,
}

impl Pusher {
    pub fn new(peers: Vec<WitnessPeer>) -> anyhow::Result<Self> {
        Ok(Pusher {
            peers,
            client: client()?,
            known: HashMap::new(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Sends `note` (of `tenant`'s log, `size` events) to every witness; on a 409 with the
    /// witness's size, retries once from there. Failures are logged, never fatal: the log
    /// keeps working without its witnesses, and the next checkpoint catches up.
    pub async fn push(
        &mut self,
        kluis: &kluis_core::Kluis,
        tenant: kluis_core::TenantId,
        note: &str,
    ) {
        let Ok(cp) = parse_unverified(note) else {
            return;
        };
        for i in 0..self.peers.len() {
            let mut old = self.known.get(&(i, tenant)).copied().unwrap_or(0);
            for _attempt in 0..2 {
                match self.add(kluis, i, tenant, old, cp.size, note).await {
                    Ok(Added::Cosigned) => {
                        self.known.insert((i, tenant), cp.size);
                        break;
                    }
                    Ok(Added::Conflict(size)) if size != old => old = size,
                    Ok(Added::Conflict(size)) => {
                        tracing::error!(witness = %self.peers[i].url, tenant = %tenant, size, "witness refused the checkpoint (conflict)");
                        break;
                    }
                    Err(e) => {
                        tracing::error!(witness = %self.peers[i].url, tenant = %tenant, error = %e, "pushing a checkpoint to a witness failed");
                        break;
                    }
                }
            }
        }
    }

    async fn add(
        &self,
        kluis: &kluis_core::Kluis,
        i: usize,
        tenant: kluis_core::TenantId,
        old: u64,
        size: u64,
        note: &str,
    ) -> anyhow::Result<Added> {
        let peer = &self.peers[i];
        let mut body = format!("old {old}\n");
        if old > 0 && old < size {
            let proof = kluis
                .prove_consistency(tenant, old as i64, size as i64)
                .await?;
            for h in proof["proof"].as_array().into_iter().flatten() {
                let h = hex::decode(h.as_str().unwrap_or_default())?;
                body.push_str(&STANDARD.encode(h));
                body.push('\n');
            }
        }
        body.push('\n');
        body.push_str(note);
        let resp = self
            .client
            .post(format!("{}/add-checkpoint", peer.url))
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let is_size = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == SIZE_CONTENT_TYPE.as_bytes());
        let text = resp.text().await?;
        if status == StatusCode::CONFLICT && is_size {
            let n = text
                .strip_suffix('\n')
                .and_then(|t| t.parse().ok())
                .context("malformed size in the witness's 409")?;
            return Ok(Added::Conflict(n));
        }
        if status != StatusCode::OK {
            bail!("witness answered {status}: {}", text.trim());
        }
        let mut cosigned = note.to_owned();
        cosigned.push_str(&text);
        kluis.record_cosignature(tenant, &peer.key, &cosigned)?;
        Ok(Added::Cosigned)
    }
}

enum Added {
    Cosigned,
    Conflict(u64),
}

/// What a witness holds for `origin` (None: nothing yet), from `URL` or a saved note `FILE`.
pub async fn fetch_held(source: &str, origin: &str) -> anyhow::Result<Option<String>> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let url = format!(
            "{}/{}/checkpoint",
            source.trim_end_matches('/'),
            origin_hash(origin)
        );
        let resp = client()?.get(&url).send().await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            bail!("witness {source} answered {}", resp.status());
        }
        return Ok(Some(resp.text().await?));
    }
    let text = std::fs::read_to_string(source).with_context(|| format!("reading {source}"))?;
    // A saved note, or the JSON of GET /api/v1/audit/checkpoint.
    let note = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => v["checkpoint"]
            .as_str()
            .context("expected a signed note or {\"checkpoint\": ...}")?
            .to_owned(),
        Err(_) => text,
    };
    match parse_unverified(&note) {
        Ok(cp) if cp.origin == origin => Ok(Some(note)),
        Ok(_) => Ok(None),
        Err(_) => bail!("{source} is not a checkpoint"),
    }
}
