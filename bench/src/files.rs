//! `--files MIB`: upload and download throughput of files on records next to `cp` of the same
//! file in the same run, with malware scanning off and on (a private clamd from
//! kluis-testkit). One connection, streamed both ways; the upload is read from a file on disk
//! and the download written to one, as a client would.
//!
//! `cp` is timed as `cp` plus an fsync of the copy (the server syncs every upload before it
//! answers), so both sides end with the bytes on disk.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::{Cli, PASSWORD, Server, TENANT_SLUG, free_port, json_str, progress, wait_until_ready};

#[derive(Debug)]
pub struct FilesArgs {
    pub mib: u64,
    pub rounds: usize,
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

/// Writes `mib` MiB of incompressible-looking bytes.
fn make_file(path: &Path, mib: u64) -> Result<()> {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for b in buf.chunks_mut(8) {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
        }
        f.write_all(&buf)?;
    }
    f.flush()?;
    f.get_ref().sync_all()?;
    Ok(())
}

fn time_cp(src: &Path, dst: &Path) -> Result<f64> {
    let _ = std::fs::remove_file(dst);
    let started = Instant::now();
    let st = std::process::Command::new("cp")
        .arg(src)
        .arg(dst)
        .status()?;
    if !st.success() {
        bail!("cp failed");
    }
    std::fs::File::open(dst)?.sync_all()?;
    Ok(started.elapsed().as_secs_f64())
}

struct Measured {
    up: f64,
    down: f64,
}

async fn one_server(
    bin: &Path,
    scratch: &Path,
    src: &Path,
    args: &FilesArgs,
    clamd: Option<&kluis_testkit::clamav::Clamd>,
) -> Result<Vec<Measured>> {
    let data_dir = scratch.join(if clamd.is_some() { "data-scan" } else { "data" });
    std::fs::create_dir_all(&data_dir)?;
    let cli = Cli {
        bin,
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
    cli.run(
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
    let size = args.mib * 1024 * 1024;
    let limit = (size * 2 * args.rounds as u64 + 1).to_string();
    let sock = clamd.map(|c| c.socket().display().to_string());
    let mut env = vec![
        ("KLUIS_FILES_MAX_BYTES", limit.clone()),
        ("KLUIS_FILES_TENANT_QUOTA_BYTES", limit.clone()),
        ("KLUIS_CLAMAV_TIMEOUT_SECS", "600".to_owned()),
    ];
    match &sock {
        Some(s) => env.push(("KLUIS_CLAMAV_SOCKET", s.clone())),
        None => env.push(("KLUIS_FILES_SCAN", "false".to_owned())),
    }
    let port = free_port()?;
    let log_path = scratch.join("files-server.log");
    let mut server = Server::start_with_env(bin, &data_dir, &log_path, port, &env)?;
    let tls = wait_until_ready(&mut server, &data_dir, port).await?;
    // No request timeout: a transfer takes as long as it takes.
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .resolve("localhost", SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .http1_only();
    for c in &tls.roots {
        builder = builder.add_root_certificate(c.clone());
    }
    if matches!(tls.mode, super::TlsMode::Insecure(_)) {
        builder = builder.danger_accept_invalid_certs(true);
    }
    let client = builder.build()?;
    let base = format!("https://localhost:{port}");
    let res = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"tenant": TENANT_SLUG, "email": "owner@bench.test", "password": PASSWORD}))
        .send()
        .await?;
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("__Host-kluis_session="))
        .and_then(|c| c.split(';').next())
        .context("no session cookie")?
        .to_owned();
    let body: Value = res.json().await?;
    let csrf = json_str(&body, "csrf_token", "sign-in")?;
    let cookie = format!("__Host-kluis_session={cookie}");
    let res = client
        .post(format!("{base}/api/v1/contacts"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"fields": {"email": "bestand@bench.test"}}))
        .send()
        .await?;
    let contact: Value = res.json().await?;
    let cid = json_str(&contact, "id", "create contact")?;

    let mut out = Vec::new();
    for _ in 0..args.rounds {
        let file = tokio::fs::File::open(src).await?;
        // Read in 1 MiB pieces, as a client like curl writes large bodies (reqwest's own file
        // body reads 8 KiB at a time).
        let body = futures_util::stream::unfold(file, |mut f| async move {
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0;
            while n < buf.len() {
                match tokio::io::AsyncReadExt::read(&mut f, &mut buf[n..]).await {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) => return Some((Err(e), f)),
                }
            }
            if n == 0 {
                return None;
            }
            buf.truncate(n);
            Some((Ok::<_, std::io::Error>(buf), f))
        });
        let started = Instant::now();
        let res = client
            .post(format!("{base}/api/v1/contacts/{cid}/files?name=bench.bin"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/octet-stream")
            .header("content-length", size.to_string())
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await?;
        let status = res.status();
        let v: Value = res.json().await?;
        let up = started.elapsed().as_secs_f64();
        if !status.is_success() || v["status"] == "pending" {
            bail!("upload: {status} {v}");
        }
        let id = json_str(&v, "id", "upload")?;
        let started = Instant::now();
        let mut res = client
            .get(format!("{base}/api/v1/files/{id}/content"))
            .header("cookie", &cookie)
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("download: {}", res.status());
        }
        let dst = scratch.join("download.bin");
        let mut f = tokio::fs::File::create(&dst).await?;
        let mut n = 0u64;
        while let Some(chunk) = res.chunk().await? {
            tokio::io::AsyncWriteExt::write_all(&mut f, &chunk).await?;
            n += chunk.len() as u64;
        }
        f.sync_all().await?;
        let down = started.elapsed().as_secs_f64();
        if n != size {
            bail!("download returned {n} of {size} bytes");
        }
        out.push(Measured { up, down });
    }
    server.stop()?;
    Ok(out)
}

pub async fn run(bin: &Path, args: &FilesArgs) -> Result<String> {
    let scratch = tempfile::Builder::new()
        .prefix("kluis-bench-files-")
        .tempdir()
        .context("creating scratch directory")?;
    let src = scratch.path().join("source.bin");
    progress(format!("writing a {} MiB test file", args.mib));
    make_file(&src, args.mib)?;
    let size = args.mib * 1024 * 1024;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "files: {} MiB, {} round(s) each; MB/s (10^6 bytes per second), best of the rounds",
        args.mib, args.rounds
    );
    let mut cp = f64::MAX;
    for _ in 0..args.rounds {
        cp = cp.min(time_cp(&src, &scratch.path().join("copy.bin"))?);
    }
    let cp_mbps = mbps(size, cp);
    let _ = writeln!(report, "  cp + fsync                {cp_mbps:8.0} MB/s");
    progress("scanning off".into());
    let off = one_server(bin, scratch.path(), &src, args, None).await?;
    let clamd = kluis_testkit::clamav::Clamd::start();
    progress("scanning on".into());
    let on = match &clamd {
        Some(c) => Some(one_server(bin, scratch.path(), &src, args, Some(c)).await?),
        None => None,
    };
    let best = |m: &[Measured], f: fn(&Measured) -> f64| m.iter().map(f).fold(f64::MAX, f64::min);
    for (label, m) in [("scan off", Some(off)), ("scan on (clamd)", on)] {
        let Some(m) = m else {
            let _ = writeln!(report, "  {label}: skipped (clamd not installed)");
            continue;
        };
        let up = mbps(size, best(&m, |x| x.up));
        let down = mbps(size, best(&m, |x| x.down));
        let _ = writeln!(
            report,
            "  upload   {label:<16} {up:8.0} MB/s  ({:3.0} % of cp)",
            up / cp_mbps * 100.0
        );
        let _ = writeln!(
            report,
            "  download {label:<16} {down:8.0} MB/s  ({:3.0} % of cp)",
            down / cp_mbps * 100.0
        );
    }
    Ok(report)
}
