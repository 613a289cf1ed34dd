//! kluis-bench: starts the release `kluis` binary against a throwaway data
//! directory and reports throughput, latency and memory figures.
//!
//! Scenarios: `GET /healthz` (no auth) and an API-key authenticated
//! `GET /api/v1/users/{id}`, each at 1 and 64 keep-alive connections.
//! Targets are informational: the exit code only reflects harness failures
//! and request errors.
//!
//! Run from the workspace root: `cargo run --release -p kluis-bench -- --help`.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

mod files;
mod pages;

const PASSWORD: &str = "Bench-Passw0rd!x";
const TENANT_SLUG: &str = "bench";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const TARGET_AUTH_RATIO: f64 = 0.60;
const TARGET_P99_MS: f64 = 5.0;
const TARGET_IDLE_RSS_MB: f64 = 100.0;
const TARGET_CONNECTIONS: usize = 64;

const USAGE: &str = "\
usage: cargo run --release -p kluis-bench -- [options]
       kluis-bench [--bin PATH] [--duration SECS] [--warmup SECS]
                   [--rounds N] [--connections N[,N...]] [--json]

  --bin PATH         kluis binary (default: <target dir>/release/kluis; built
                     with `cargo build --release -p kluis` if missing)
  --duration SECS    measured seconds per run (default 10)
  --warmup SECS      warm-up seconds per run, not measured (default 2)
  --rounds N         split each run into N rounds, the scenarios taking turns
                     (default 3): a slow drift of the machine then hits every
                     scenario alike instead of whichever ran during it
  --connections LIST concurrency levels (default 1,64)
  --json             print machine-readable results on stdout

  --pages            instead: the web pages next to the JSON API for the same
                     data (contacts table, record page, deals board, search),
                     p50/p99 of each, one connection
  --contacts N       --pages: contacts to import (default 10000)
  --deals N          --pages: deals to create (default 200)
  --requests N       --pages: timed requests per page and per API call
                     (default 200)

  --files MIB        instead: upload and download of a MIB MiB file on a
                     contact, next to `cp` of the same file, with malware
                     scanning off and on (a private clamd); --rounds N runs
                     each N times and reports the best
";

#[derive(Debug)]
struct Args {
    bin: Option<PathBuf>,
    duration: Duration,
    warmup: Duration,
    rounds: u32,
    connections: Vec<usize>,
    json: bool,
    pages: Option<pages::PagesArgs>,
    files: Option<files::FilesArgs>,
}

impl Args {
    fn parse() -> Result<Option<Self>> {
        let mut args = Args {
            bin: None,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            rounds: 3,
            connections: vec![1, TARGET_CONNECTIONS],
            json: false,
            pages: None,
            files: None,
        };
        let mut page_args = pages::PagesArgs {
            contacts: 10_000,
            deals: 200,
            requests: 200,
            rounds: 0,
        };
        let mut want_pages = false;
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .with_context(|| format!("{name} needs a value\n\n{USAGE}"))
            };
            match arg.as_str() {
                "--bin" => args.bin = Some(PathBuf::from(value("--bin")?)),
                "--duration" => args.duration = parse_secs(&value("--duration")?)?,
                "--warmup" => args.warmup = parse_secs(&value("--warmup")?)?,
                "--rounds" => {
                    args.rounds = match value("--rounds")?.parse::<u32>() {
                        Ok(n) if n > 0 => n,
                        _ => bail!("--rounds must be a positive integer"),
                    };
                }
                "--connections" => {
                    args.connections = value("--connections")?
                        .split(',')
                        .map(|n| match n.trim().parse::<usize>() {
                            Ok(n) if n > 0 => Ok(n),
                            _ => bail!("bad connection count {n:?}"),
                        })
                        .collect::<Result<_>>()?;
                }
                "--json" => args.json = true,
                "--pages" => want_pages = true,
                "--files" => {
                    let mib: u64 = value("--files")?
                        .parse()
                        .context("--files needs a size in MiB")?;
                    args.files = Some(files::FilesArgs {
                        mib: mib.max(1),
                        rounds: 1,
                    });
                }
                "--contacts" | "--deals" | "--requests" => {
                    let n: usize = value(&arg)?
                        .parse()
                        .with_context(|| format!("{arg} needs a whole number"))?;
                    match arg.as_str() {
                        "--contacts" => page_args.contacts = n,
                        "--deals" => page_args.deals = n,
                        _ => page_args.requests = n.max(1),
                    }
                }
                "-h" | "--help" => {
                    print!("{USAGE}");
                    return Ok(None);
                }
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        if args.duration.is_zero() {
            bail!("--duration must be positive");
        }
        if let Some(f) = args.files.as_mut() {
            f.rounds = args.rounds as usize;
        }
        if want_pages {
            page_args.rounds = args.rounds as usize;
            args.pages = Some(page_args);
        }
        Ok(Some(args))
    }
}

fn parse_secs(s: &str) -> Result<Duration> {
    let secs: f64 = s.parse().with_context(|| format!("bad seconds {s:?}"))?;
    if !secs.is_finite() || secs < 0.0 {
        bail!("bad seconds {s:?}");
    }
    Ok(Duration::from_secs_f64(secs))
}

// One thread, like `wrk -t1`: the generator takes at most one core, so it cannot crowd the
// server out of both cores of a small machine (it kept up: /healthz rates were the same).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kluis-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kluis-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode> {
    if cfg!(debug_assertions) {
        progress(
            "WARNING: this is a debug build of the load generator; it may be the \
             bottleneck — use `cargo run --release -p kluis-bench`"
                .into(),
        );
    }
    let bin = locate_binary(args.bin.as_deref())?;
    progress(format!("binary: {}", bin.display()));
    if let Some(f) = &args.files {
        print!("{}", files::run(&bin, f).await?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(p) = &args.pages {
        print!("{}", pages::run(&bin, p).await?);
        return Ok(ExitCode::SUCCESS);
    }

    // Removed on drop, after the server guard below has stopped the server.
    let scratch = tempfile::Builder::new()
        .prefix("kluis-bench-")
        .tempdir()
        .context("creating scratch directory")?;
    let data_dir = scratch.path().join("data");
    std::fs::create_dir(&data_dir).context("creating data directory")?;
    let log_path = scratch.path().join("server.log");

    let cli = Cli {
        bin: &bin,
        data_dir: &data_dir,
    };
    cli.run(
        &[
            "tenant",
            "create",
            "--slug",
            TENANT_SLUG,
            "--name",
            "Bench",
            "--json",
        ],
        None,
    )?;
    let user = cli.run(
        &[
            "user",
            "create",
            "--tenant",
            TENANT_SLUG,
            "--email",
            "owner@bench.test",
            "--role",
            "owner",
            "--password-stdin",
            "--json",
        ],
        Some(PASSWORD),
    )?;
    let user_id = json_str(&user, "id", "user create")?;
    let key = cli.run(
        &[
            "apikey",
            "create",
            "--tenant",
            TENANT_SLUG,
            "--name",
            "bench",
            "--scopes",
            "users:read",
            "--json",
        ],
        None,
    )?;
    let secret = json_str(&key, "secret", "apikey create")?;
    progress(format!("provisioned tenant, user {user_id} and an API key"));

    let port = free_port()?;
    let mut server = Server::start(&bin, &data_dir, &log_path, port)?;
    progress(format!(
        "server pid {} on https://localhost:{port}",
        server.pid
    ));

    let tls = wait_until_ready(&mut server, &data_dir, port).await?;
    if let TlsMode::Insecure(reason) = &tls.mode {
        progress(format!(
            "WARNING: certificate verification disabled — the server's \
             DIR/tls/cert.pem was not accepted as a root CA ({reason})"
        ));
    }

    let endpoints = [
        Endpoint {
            scenario: "healthz",
            url: format!("https://localhost:{port}/healthz"),
            bearer: None,
        },
        Endpoint {
            scenario: "user_get_auth",
            url: format!("https://localhost:{port}/api/v1/users/{user_id}"),
            bearer: Some(secret.clone()),
        },
    ];

    // Sanity check: the authenticated endpoint really returns our user, so
    // we never benchmark a fast 401/404.
    {
        let probe = tls.client()?;
        let raw = endpoints[1]
            .send(&probe)
            .await
            .context("authenticated GET of the user")?;
        let body: Value = serde_json::from_slice(&raw).context("user response is not JSON")?;
        if body.get("id").and_then(Value::as_str) != Some(user_id.as_str()) {
            bail!("GET /api/v1/users/{user_id} returned an unexpected body: {body}");
        }
    }

    // Let startup allocations settle before calling it idle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kb = read_rss_kb(server.pid)?;
    progress(format!("idle RSS {:.1} MB", kb_to_mb(idle_rss_kb)));

    // Scenarios take turns, round by round; each round measures duration/rounds.
    let slice = args.duration / args.rounds;
    let mut results: Vec<RunResult> = Vec::new();
    for round in 1..=args.rounds {
        for endpoint in &endpoints {
            for &connections in &args.connections {
                progress(format!(
                    "round {round}/{}: {} with {connections} connection(s): {:.1}s warm-up + {:.1}s",
                    args.rounds,
                    endpoint.scenario,
                    args.warmup.as_secs_f64(),
                    slice.as_secs_f64()
                ));
                let r =
                    run_load(endpoint, &tls, connections, args.warmup, slice, server.pid).await?;
                if let Some(status) = server.child.try_wait()? {
                    bail!(
                        "server exited ({status}) during the {} run\n{}",
                        endpoint.scenario,
                        log_tail(&log_path)
                    );
                }
                match results
                    .iter_mut()
                    .find(|x| x.scenario == r.scenario && x.connections == r.connections)
                {
                    Some(total) => total.absorb(r),
                    None => results.push(r),
                }
            }
        }
    }

    let exit = server.stop()?;
    progress(format!("server stopped ({exit})"));

    let report = Report {
        binary: bin,
        args: &args,
        tls_verified: matches!(tls.mode, TlsMode::Verified),
        idle_rss_kb,
        results,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }

    let errors: u64 = report.results.iter().map(|r| r.errors).sum();
    if errors > 0 {
        eprintln!("kluis-bench: {errors} request(s) failed; figures are not trustworthy");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn progress(msg: String) {
    eprintln!("kluis-bench: {msg}");
}

fn workspace_root() -> PathBuf {
    // bench/ sits directly under the workspace root.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn locate_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--bin {} does not exist", path.display());
        }
        return Ok(path.to_path_buf());
    }
    let root = workspace_root();
    // Same place `cargo build --release` would put it for this environment.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target_dir = if target_dir.is_relative() {
        root.join(target_dir)
    } else {
        target_dir
    };
    let bin = target_dir.join("release").join("kluis");
    if !bin.is_file() {
        progress(format!(
            "{} missing; running `cargo build --release -p kluis`",
            bin.display()
        ));
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "-p", "kluis"])
            .current_dir(&root)
            .stdin(Stdio::null())
            .status()
            .context("running cargo build")?;
        if !status.success() {
            bail!("cargo build --release -p kluis failed ({status})");
        }
        if !bin.is_file() {
            bail!(
                "cargo build succeeded but {} is still missing",
                bin.display()
            );
        }
    }
    Ok(bin)
}

struct Cli<'a> {
    bin: &'a Path,
    data_dir: &'a Path,
}

impl Cli<'_> {
    /// Runs one admin CLI command and returns its JSON output.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<Value> {
        use std::io::Write as _;
        let what = args.iter().take(2).copied().collect::<Vec<_>>().join(" ");
        let mut child = Command::new(self.bin)
            .arg("--data-dir")
            .arg(self.data_dir)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running `kluis {what}`"))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .with_context(|| format!("writing stdin of `kluis {what}`"))?;
            // Dropping the pipe closes it so the CLI sees EOF.
        }
        let out = child
            .wait_with_output()
            .with_context(|| format!("waiting for `kluis {what}`"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!(
                "`kluis {}` failed ({}):\n{stdout}{stderr}",
                args.join(" "),
                out.status
            );
        }
        // Accept either a single JSON document or JSON on the last line, in
        // case the CLI also prints human-readable notes.
        serde_json::from_str(stdout.trim())
            .ok()
            .or_else(|| {
                stdout
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .and_then(|l| serde_json::from_str(l).ok())
            })
            .with_context(|| format!("`kluis {what}` printed no JSON:\n{stdout}{stderr}"))
    }
}

fn json_str(v: &Value, field: &str, what: &str) -> Result<String> {
    v.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("`kluis {what}` output lacks string field {field:?}: {v}"))
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a probe port")?;
    Ok(listener.local_addr()?.port())
}

/// The running server; stopped on drop so early returns never leak it.
struct Server {
    child: Child,
    pid: u32,
    log_path: PathBuf,
    stopped: bool,
}

impl Server {
    fn start(bin: &Path, data_dir: &Path, log_path: &Path, port: u16) -> Result<Self> {
        Self::start_with_env(bin, data_dir, log_path, port, &[])
    }

    /// `env`: extra `KLUIS_*` settings for this server.
    fn start_with_env(
        bin: &Path,
        data_dir: &Path,
        log_path: &Path,
        port: u16,
        env: &[(&str, String)],
    ) -> Result<Self> {
        // Output goes to a file: a full pipe would stall the server.
        let log = std::fs::File::create(log_path).context("creating server log")?;
        let child = Command::new(bin)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            // Rate limits stay on (every request is counted) with quotas no load here reaches,
            // so the figures include the limiter's cost and no refusals.
            .env("KLUIS_RATE_LIMIT_BURST", "4000000000")
            .env("KLUIS_RATE_LIMIT_DAILY", "4000000000")
            // Bench machines are often containers running as root.
            .env("KLUIS_ALLOW_ROOT", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating log handle")?)
            .stderr(log)
            .spawn()
            .context("starting `kluis serve`")?;
        let pid = child.id();
        Ok(Self {
            child,
            pid,
            log_path: log_path.to_path_buf(),
            stopped: false,
        })
    }

    /// SIGTERM, then wait; SIGKILL only if it does not exit in time.
    fn stop(&mut self) -> Result<String> {
        self.stopped = true;
        if let Some(status) = self.child.try_wait()? {
            return Ok(format!("had already exited: {status}"));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdin(Stdio::null())
            .status();
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.to_string());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().context("killing server")?;
        let status = self.child.wait()?;
        Ok(format!(
            "did not exit within {}s of SIGTERM, killed: {status}",
            SHUTDOWN_TIMEOUT.as_secs()
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            match self.stop() {
                Ok(how) => progress(format!("server stopped ({how})")),
                Err(e) => progress(format!("stopping server failed: {e:#}")),
            }
        }
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(30);
    let mut out = format!("server log tail ({}):\n", path.display());
    for l in &lines[start..] {
        let _ = writeln!(out, "    {l}");
    }
    out
}

enum TlsMode {
    /// The server's self-signed certificate is trusted as a root CA.
    Verified,
    /// Fallback when that did not work; the reason is reported.
    Insecure(String),
}

struct Tls {
    mode: TlsMode,
    roots: Vec<reqwest::Certificate>,
    port: u16,
}

impl Tls {
    /// One client per connection: reqwest pools per client, so this pins
    /// each task to its own keep-alive connection.
    fn client(&self) -> Result<reqwest::Client> {
        build_client(&self.roots, self.port, &self.mode)
    }
}

fn build_client(
    roots: &[reqwest::Certificate],
    port: u16,
    mode: &TlsMode,
) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        // The certificate is issued for `localhost`; pin it to our port.
        .resolve("localhost", SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .http1_only()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT);
    for cert in roots {
        builder = builder.add_root_certificate(cert.clone());
    }
    if matches!(mode, TlsMode::Insecure(_)) {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build().context("building HTTP client")
}

/// Waits for the certificate file and a 200 from /healthz.
async fn wait_until_ready(server: &mut Server, data_dir: &Path, port: u16) -> Result<Tls> {
    let cert_path = data_dir.join("tls").join("cert.pem");
    let healthz = format!("https://localhost:{port}/healthz");
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut last_error = String::from("no attempt yet");
    let mut insecure_only = 0u32;
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!(
                "server exited during startup ({status})\n{}",
                log_tail(&server.log_path)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "server not ready after {}s: {last_error}\n{}",
                STARTUP_TIMEOUT.as_secs(),
                log_tail(&server.log_path)
            );
        }
        // The file may appear before it is completely written; just retry.
        let roots = std::fs::read(&cert_path)
            .ok()
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).ok())
            .filter(|c| !c.is_empty());
        if let Some(roots) = roots {
            let verified = get_ok(&build_client(&roots, port, &TlsMode::Verified)?, &healthz).await;
            match verified {
                Ok(()) => {
                    return Ok(Tls {
                        mode: TlsMode::Verified,
                        roots,
                        port,
                    });
                }
                Err(e) => last_error = format!("{e:#}"),
            }
            // Only fall back if the server clearly works and the failure is
            // about trusting its certificate, seen several times in a row.
            let lenient = TlsMode::Insecure(last_error.clone());
            if get_ok(&build_client(&roots, port, &lenient)?, &healthz)
                .await
                .is_ok()
            {
                insecure_only += 1;
                if insecure_only >= 3 {
                    return Ok(Tls {
                        mode: lenient,
                        roots,
                        port,
                    });
                }
            } else {
                insecure_only = 0;
            }
        } else {
            last_error = format!("{} not (yet) readable", cert_path.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_ok(client: &reqwest::Client, url: &str) -> Result<()> {
    let resp = client.get(url).send().await?;
    let status = resp.status();
    resp.bytes().await?;
    if !status.is_success() {
        bail!("GET {url} returned {status}");
    }
    Ok(())
}

struct Endpoint {
    scenario: &'static str,
    url: String,
    bearer: Option<String>,
}

impl Endpoint {
    /// One request; the body is read fully so the connection can be reused.
    async fn send(&self, client: &reqwest::Client) -> Result<impl std::ops::Deref<Target = [u8]>> {
        let mut req = client.get(&self.url);
        if let Some(secret) = &self.bearer {
            req = req.bearer_auth(secret);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !status.is_success() {
            bail!(
                "{status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
        }
        Ok(body)
    }
}

struct RunResult {
    scenario: &'static str,
    connections: usize,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// Sorted, in nanoseconds.
    latencies_ns: Vec<u64>,
    peak_rss_kb: u64,
    /// Requests/s of each round.
    round_rps: Vec<f64>,
}

impl RunResult {
    fn rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    fn p50(&self) -> Duration {
        percentile(&self.latencies_ns, 0.50)
    }

    fn p99(&self) -> Duration {
        percentile(&self.latencies_ns, 0.99)
    }

    /// Adds a later round of the same scenario.
    fn absorb(&mut self, r: RunResult) {
        self.requests += r.requests;
        self.errors += r.errors;
        if self.first_error.is_none() {
            self.first_error = r.first_error;
        }
        self.elapsed += r.elapsed;
        self.latencies_ns.extend(r.latencies_ns);
        self.latencies_ns.sort_unstable();
        self.peak_rss_kb = self.peak_rss_kb.max(r.peak_rss_kb);
        self.round_rps.extend(r.round_rps);
    }
}

struct TaskOutcome {
    latencies_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    last_done: Instant,
}

async fn run_load(
    endpoint: &Endpoint,
    tls: &Tls,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    server_pid: u32,
) -> Result<RunResult> {
    let peak = Arc::new(AtomicU64::new(read_rss_kb(server_pid)?));
    let sampler = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RSS_SAMPLE_INTERVAL);
            loop {
                tick.tick().await;
                if let Ok(kb) = read_rss_kb(server_pid) {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
            }
        })
    };

    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let endpoint = Arc::new(Endpoint {
        scenario: endpoint.scenario,
        url: endpoint.url.clone(),
        bearer: endpoint.bearer.clone(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let client = tls.client()?;
        let endpoint = Arc::clone(&endpoint);
        tasks.spawn(async move {
            let mut out = TaskOutcome {
                latencies_ns: Vec::with_capacity(16 * 1024),
                errors: 0,
                first_error: None,
                last_done: measure_from,
            };
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let result = endpoint.send(&client).await;
                let done = Instant::now();
                let measured = t0 >= measure_from;
                match result {
                    Ok(_) if measured => {
                        let ns = u64::try_from((done - t0).as_nanos()).unwrap_or(u64::MAX);
                        out.latencies_ns.push(ns);
                        out.last_done = done;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if measured {
                            out.errors += 1;
                            out.last_done = done;
                            out.first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                        // Avoid a hot loop against a failing server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            out
        });
    }

    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut last_done = measure_from;
    while let Some(joined) = tasks.join_next().await {
        let out = joined.context("load task panicked")?;
        latencies.extend(out.latencies_ns);
        errors += out.errors;
        if first_error.is_none() {
            first_error = out.first_error;
        }
        last_done = last_done.max(out.last_done);
    }
    sampler.abort();
    latencies.sort_unstable();

    // Requests started before `end` still count; the window stretches to
    // the last completion so the rate is not inflated.
    let elapsed = (last_done - measure_from).max(duration);
    let requests = latencies.len() as u64;
    Ok(RunResult {
        scenario: endpoint.scenario,
        connections,
        requests,
        errors,
        first_error,
        elapsed,
        latencies_ns: latencies,
        peak_rss_kb: peak.load(Ordering::Relaxed),
        round_rps: vec![requests as f64 / elapsed.as_secs_f64()],
    })
}

/// Nearest-rank percentile of sorted nanosecond latencies.
fn percentile(sorted_ns: &[u64], q: f64) -> Duration {
    if sorted_ns.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted_ns.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted_ns.len()) - 1;
    Duration::from_nanos(sorted_ns[idx])
}

fn read_rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Microsecond resolution is all the figures carry; keeps the JSON tidy.
fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Report<'a> {
    binary: PathBuf,
    args: &'a Args,
    tls_verified: bool,
    idle_rss_kb: u64,
    results: Vec<RunResult>,
}

struct TargetCheck {
    name: String,
    value: Option<f64>,
    unit: &'static str,
    target: String,
    pass: Option<bool>,
}

impl Report<'_> {
    fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }

    fn caveat() -> String {
        let mut c = format!(
            "load generator (one thread) and server share this machine's {} core(s); \
             figures understate what the server does on its own hardware",
            Self::cores()
        );
        if cfg!(debug_assertions) {
            c.push_str("; the load generator is a debug build");
        }
        c
    }

    fn peak_rss_kb(&self) -> u64 {
        self.results
            .iter()
            .map(|r| r.peak_rss_kb)
            .max()
            .unwrap_or(self.idle_rss_kb)
    }

    fn find(&self, scenario: &str, connections: usize) -> Option<&RunResult> {
        self.results
            .iter()
            .find(|r| r.scenario == scenario && r.connections == connections)
    }

    fn targets(&self) -> Vec<TargetCheck> {
        let health = self.find("healthz", TARGET_CONNECTIONS);
        let auth = self.find("user_get_auth", TARGET_CONNECTIONS);
        let ratio = match (health, auth) {
            (Some(h), Some(a)) if h.rps() > 0.0 => Some(a.rps() / h.rps() * 100.0),
            _ => None,
        };
        let mut checks = vec![TargetCheck {
            name: format!("authenticated/healthz requests/s at {TARGET_CONNECTIONS} connections"),
            value: ratio,
            unit: "%",
            target: format!(">= {:.0} %", TARGET_AUTH_RATIO * 100.0),
            pass: ratio.map(|r| r >= TARGET_AUTH_RATIO * 100.0),
        }];
        for (label, run) in [("authenticated", auth), ("healthz", health)] {
            let p99 = run.map(|r| ms(r.p99()));
            checks.push(TargetCheck {
                name: format!("p99 {label} at {TARGET_CONNECTIONS} connections"),
                value: p99,
                unit: "ms",
                target: format!("< {TARGET_P99_MS} ms"),
                pass: p99.map(|v| v < TARGET_P99_MS),
            });
        }
        let idle = kb_to_mb(self.idle_rss_kb);
        checks.push(TargetCheck {
            name: "idle RSS".into(),
            value: Some(idle),
            unit: "MB",
            target: format!("< {TARGET_IDLE_RSS_MB} MB"),
            pass: Some(idle < TARGET_IDLE_RSS_MB),
        });
        checks
    }

    fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nkluis-bench — {} ({:.1}s measured per run in {} round(s), each after {:.1}s warm-up, TLS {}, HTTP/1.1 keep-alive)",
            self.binary.display(),
            self.args.duration.as_secs_f64(),
            self.args.rounds,
            self.args.warmup.as_secs_f64(),
            if self.tls_verified {
                "verified against DIR/tls/cert.pem"
            } else {
                "NOT verified (danger_accept_invalid_certs fallback)"
            }
        );
        let _ = writeln!(
            s,
            "\n{:<15} {:>11} {:>12} {:>10} {:>10} {:>8}",
            "scenario", "connections", "requests/s", "p50 ms", "p99 ms", "errors"
        );
        for r in &self.results {
            let _ = writeln!(
                s,
                "{:<15} {:>11} {:>12.1} {:>10.3} {:>10.3} {:>8}",
                r.scenario,
                r.connections,
                r.rps(),
                ms(r.p50()),
                ms(r.p99()),
                r.errors
            );
        }
        for r in self.results.iter().filter(|r| r.errors > 0) {
            let _ = writeln!(
                s,
                "  first error in {} x{}: {}",
                r.scenario,
                r.connections,
                r.first_error.as_deref().unwrap_or("?")
            );
        }
        if let (Some(h), Some(a)) = (
            self.find("healthz", TARGET_CONNECTIONS),
            self.find("user_get_auth", TARGET_CONNECTIONS),
        ) && h.round_rps.len() > 1
        {
            let per_round: Vec<String> = h
                .round_rps
                .iter()
                .zip(&a.round_rps)
                .map(|(h, a)| format!("{:.1} %", a / h * 100.0))
                .collect();
            let _ = writeln!(
                s,
                "\nauthenticated/healthz at {TARGET_CONNECTIONS} connections, round by round: {}",
                per_round.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "\nserver RSS: idle {:.1} MB, peak during load {:.1} MB",
            kb_to_mb(self.idle_rss_kb),
            kb_to_mb(self.peak_rss_kb())
        );
        let _ = writeln!(s, "\ntargets (informational):");
        for t in self.targets() {
            let verdict = match t.pass {
                Some(true) => "PASS",
                Some(false) => "MISS",
                None => "n/a ",
            };
            let value = t.value.map_or_else(
                || "not measured".to_owned(),
                |v| format!("{v:.3} {}", t.unit),
            );
            let _ = writeln!(s, "  {verdict} {}: {value} (target {})", t.name, t.target);
        }
        let _ = writeln!(s, "\nnote: {}", Self::caveat());
        s
    }

    fn to_json(&self) -> Value {
        let runs: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                json!({
                    "scenario": r.scenario,
                    "connections": r.connections,
                    "requests": r.requests,
                    "elapsed_s": r.elapsed.as_secs_f64(),
                    "requests_per_sec": round3(r.rps()),
                    "p50_ms": round3(ms(r.p50())),
                    "p99_ms": round3(ms(r.p99())),
                    "round_requests_per_sec": r.round_rps.iter().map(|v| round3(*v)).collect::<Vec<_>>(),
                    "errors": r.errors,
                    "first_error": r.first_error,
                    "peak_rss_kb": r.peak_rss_kb,
                })
            })
            .collect();
        let targets: Vec<Value> = self
            .targets()
            .into_iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "value": t.value.map(round3),
                    "unit": t.unit,
                    "target": t.target,
                    "pass": t.pass,
                })
            })
            .collect();
        json!({
            "binary": self.binary.display().to_string(),
            "warmup_s": self.args.warmup.as_secs_f64(),
            "duration_s": self.args.duration.as_secs_f64(),
            "rounds": self.args.rounds,
            "cores": Self::cores(),
            "tls_verified": self.tls_verified,
            "rss": {
                "idle_kb": self.idle_rss_kb,
                "peak_kb": self.peak_rss_kb(),
            },
            "runs": runs,
            "targets": targets,
            "caveat": Self::caveat(),
        })
    }
}
