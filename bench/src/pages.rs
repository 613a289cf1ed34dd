//! `--pages`: the web pages next to the JSON API for the same data. Seeds one tenant with
//! `--contacts N` contacts (CSV import), `--deals N` deals, signs in once, and
//! then times, on one keep-alive connection, each page and its API counterpart in turns:
//! the contacts table, a contact's record page, the deals board and a search. Same session
//! cookie for both sides, so authentication costs the same; the difference is the page's own
//! work (its extra service calls and the template). Latency is measured by the client on
//! localhost: it is the server's time plus one loopback round trip.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::{
    Cli, PASSWORD, Server, TENANT_SLUG, free_port, json_str, ms, percentile, progress,
    wait_until_ready,
};

#[derive(Debug)]
pub struct PagesArgs {
    pub contacts: usize,
    pub deals: usize,
    pub requests: usize,
    pub rounds: usize,
}

struct Pair {
    name: &'static str,
    page: String,
    api: String,
    /// Both answers must contain this, so we never time an empty or wrong page.
    expect: &'static str,
}

struct Timings {
    page: Vec<u64>,
    api: Vec<u64>,
    page_bytes: usize,
    api_bytes: usize,
}

pub async fn run(bin: &std::path::Path, args: &PagesArgs) -> Result<String> {
    let scratch = tempfile::Builder::new()
        .prefix("kluis-bench-pages-")
        .tempdir()
        .context("creating scratch directory")?;
    let data_dir = scratch.path().join("data");
    std::fs::create_dir(&data_dir).context("creating data directory")?;
    let log_path = scratch.path().join("server.log");
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
    let port = free_port()?;
    let mut server = Server::start(bin, &data_dir, &log_path, port)?;
    let tls = wait_until_ready(&mut server, &data_dir, port).await?;
    let client = tls.client()?;
    let base = format!("https://localhost:{port}");

    // Sign in once; both sides use this session.
    let res = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"tenant": TENANT_SLUG, "email": "owner@bench.test", "password": PASSWORD}))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("sign-in: {}", res.status());
    }
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

    // Seed: contacts by CSV import (in chunks), companies and deals one by one.
    let started = Instant::now();
    let chunk = 20_000;
    let mut done = 0;
    while done < args.contacts {
        let n = chunk.min(args.contacts - done);
        let mut csv = String::from("first_name,last_name,email,city\n");
        for i in done..done + n {
            let _ = writeln!(
                csv,
                "Jan{i},Janssen{},jan{i}@bench.test,Stad{}",
                i % 997,
                i % 50
            );
        }
        let res = client
            .post(format!(
                "{base}/api/v1/imports?object_type=contact&mode=all_or_nothing"
            ))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await?;
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("import: {status} {v}");
        }
        // A large import may still be running: wait for it.
        let id = json_str(&v, "id", "import")?;
        let mut state = v["status"].as_str().unwrap_or_default().to_owned();
        while state == "running" {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let v: Value = client
                .get(format!("{base}/api/v1/imports/{id}"))
                .header("cookie", &cookie)
                .send()
                .await?
                .json()
                .await?;
            state = v["status"].as_str().unwrap_or_default().to_owned();
        }
        if state != "committed" {
            bail!("import ended {state}");
        }
        done += n;
    }
    let mut first_contact = None;
    for i in 0..args.deals {
        post(
            &client,
            &base,
            &cookie,
            &csrf,
            "/api/v1/deals",
            json!({"fields": {"name": format!("Deal {i}")}, "amount_minor": 1000 * (i as i64 + 1), "currency": "EUR"}),
        )
        .await?;
    }
    let v: Value = client
        .get(format!("{base}/api/v1/contacts?limit=1&q=janssen12"))
        .header("cookie", &cookie)
        .send()
        .await?
        .json()
        .await?;
    if let Some(id) = v["items"][0]["id"].as_str() {
        first_contact = Some(id.to_owned());
    }
    let contact = first_contact.context("no contact found to open")?;
    let seeded = started.elapsed();
    progress(format!(
        "seeded {} contacts, {} deals in {:.1}s",
        args.contacts,
        args.deals,
        seeded.as_secs_f64()
    ));

    let pairs = [
        Pair {
            name: "contacts table (50 rows)",
            page: "/contacts?limit=50".into(),
            api: "/api/v1/contacts?limit=50".into(),
            expect: "Janssen",
        },
        Pair {
            name: "contact record page",
            page: format!("/contacts/{contact}"),
            api: format!("/api/v1/contacts/{contact}"),
            expect: "Janssen12",
        },
        Pair {
            name: "deals board",
            page: "/deals/board".into(),
            api: "/api/v1/deals?limit=200".into(),
            expect: "Deal 0",
        },
        Pair {
            name: "search \"janssen12\"",
            page: "/search?q=janssen12".into(),
            api: "/api/v1/contacts?q=janssen12&limit=25".into(),
            expect: "Janssen12",
        },
    ];
    let mut timings: Vec<Timings> = pairs
        .iter()
        .map(|_| Timings {
            page: Vec::new(),
            api: Vec::new(),
            page_bytes: 0,
            api_bytes: 0,
        })
        .collect();
    for p in &pairs {
        for (path, html) in [(&p.page, true), (&p.api, false)] {
            let body = client
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .header(
                    "accept",
                    if html {
                        "text/html"
                    } else {
                        "application/json"
                    },
                )
                .send()
                .await?
                .text()
                .await?;
            if !body.contains(p.expect) {
                bail!("{path} does not show {:?}: {body:.300}", p.expect);
            }
        }
    }
    let per_round = args.requests.div_ceil(args.rounds.max(1));
    for round in 1..=args.rounds {
        progress(format!("round {round}/{}", args.rounds));
        for (p, t) in pairs.iter().zip(timings.iter_mut()) {
            // Warm the path (and its caches) once per round, unmeasured.
            timed(&client, &base, &p.page, &cookie, true).await?;
            timed(&client, &base, &p.api, &cookie, false).await?;
            for _ in 0..per_round {
                let (ns, n) = timed(&client, &base, &p.page, &cookie, true).await?;
                t.page.push(ns);
                t.page_bytes = n;
                let (ns, n) = timed(&client, &base, &p.api, &cookie, false).await?;
                t.api.push(ns);
                t.api_bytes = n;
            }
        }
    }
    drop(server);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "kluis-bench --pages: {} contacts, {} deals (seeded in {:.1}s); {} requests per side in {} rounds, one keep-alive connection\n",
        args.contacts,
        args.deals,
        seeded.as_secs_f64(),
        per_round * args.rounds,
        args.rounds
    );
    let _ = writeln!(
        out,
        "{:<26} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>6}",
        "", "page p50", "page p99", "bytes", "API p50", "API p99", "bytes", "p50 ×"
    );
    for (p, t) in pairs.iter().zip(timings.iter_mut()) {
        t.page.sort_unstable();
        t.api.sort_unstable();
        let (pp50, pp99) = (percentile(&t.page, 0.5), percentile(&t.page, 0.99));
        let (ap50, ap99) = (percentile(&t.api, 0.5), percentile(&t.api, 0.99));
        let ratio = if ap50.is_zero() {
            0.0
        } else {
            pp50.as_secs_f64() / ap50.as_secs_f64()
        };
        let _ = writeln!(
            out,
            "{:<26} {:>7.2}ms {:>7.2}ms {:>9} | {:>7.2}ms {:>7.2}ms {:>9} | {:>6.2}",
            p.name,
            ms(pp50),
            ms(pp99),
            t.page_bytes,
            ms(ap50),
            ms(ap99),
            t.api_bytes,
            ratio
        );
        let _ = writeln!(out, "{:<26} page {}  API {}", "", p.page, p.api);
    }
    Ok(out)
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    csrf: &str,
    path: &str,
    body: Value,
) -> Result<Value> {
    let res = client
        .post(format!("{base}{path}"))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await?;
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path}: {status} {v}");
    }
    Ok(v)
}

/// One GET; nanoseconds until the whole body is read, and its length.
async fn timed(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: &str,
    html: bool,
) -> Result<(u64, usize)> {
    let accept = if html {
        "text/html"
    } else {
        "application/json"
    };
    let start = Instant::now();
    let res = client
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .header("accept", accept)
        .send()
        .await?;
    let status = res.status();
    let body = res.bytes().await?;
    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    if !status.is_success() {
        bail!("GET {path}: {status}");
    }
    Ok((ns, body.len()))
}
