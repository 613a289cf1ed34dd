//! Test harness: a running `kluis serve` on a random port with its own data directory.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const PASSWORD: &str = "Vlinder-Kast42!";

/// Which database a test server uses.
#[derive(Clone)]
pub enum Backend {
    Sqlite,
    Postgres { app_url: String, owner_url: String },
}

impl Backend {
    /// None (after printing "skipped") when PostgreSQL is not installed and not required.
    pub fn postgres() -> Option<Backend> {
        let db = kluis_testkit::pg_cluster()?.create_database();
        Some(Backend::Postgres {
            app_url: db.app_url,
            owner_url: db.owner_url,
        })
    }
}

/// The fixture of `on_both!`: a server's backend for each engine.
pub async fn backend(engine: kluis_testkit::Engine) -> Option<Backend> {
    match engine {
        kluis_testkit::Engine::Sqlite => Some(Backend::Sqlite),
        kluis_testkit::Engine::Postgres => Backend::postgres(),
    }
}

/// Runs each named test function on SQLite and on PostgreSQL.
macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        kluis_testkit::on_both!(fixture = crate::support::backend; $($name),+);
    };
}
pub(crate) use on_both;

pub struct Server {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub port: u16,
    child: Option<Child>,
    output: Arc<Mutex<String>>,
    pub client: reqwest::Client,
    env: Vec<(String, String)>,
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        Server::start_with(backend, &[]).await
    }

    /// `env`: extra `KLUIS_*` settings for this instance.
    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server {
            dir,
            backend,
            port: 0,
            child: None,
            output: Arc::new(Mutex::new(String::new())),
            client: reqwest::Client::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.spawn().await;
        s
    }

    fn base_args(&self) -> Vec<String> {
        let mut a = vec![
            "--data-dir".to_owned(),
            self.dir.path().display().to_string(),
        ];
        if let Backend::Postgres { app_url, owner_url } = &self.backend {
            a.extend([
                "--database-url".to_owned(),
                app_url.clone(),
                "--database-owner-url".to_owned(),
                owner_url.clone(),
            ]);
        }
        a
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kluis"));
        c.args(self.base_args())
            .env(
                "KLUIS_LOG",
                "debug,sqlx=warn,hyper=info,h2=info,rustls=info",
            )
            // Tests send bursts no person would; e2e/ratelimit.rs sets the real limits back.
            .env("KLUIS_RATE_LIMIT_BURST", "1000000")
            // CI containers run the suite as root; e2e/hardening.rs checks the refusal.
            .env("KLUIS_ALLOW_ROOT", "true");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Starts (or restarts) `kluis serve` and waits until it listens.
    pub async fn spawn(&mut self) {
        let (child, port) = self.launch(self.output.clone());
        self.port = port;
        self.child = Some(child);
        let cert = std::fs::read(self.dir.path().join("tls/cert.pem")).unwrap();
        self.client = client_with(&cert, self.port, false);
    }

    /// Starts one more `kluis serve` on the same data directory and database (two server
    /// processes sharing state), on its own port.
    pub async fn sibling(&self) -> Sibling {
        let output = Arc::new(Mutex::new(String::new()));
        let (child, port) = self.launch(output.clone());
        let cert = std::fs::read(self.dir.path().join("tls/cert.pem")).unwrap();
        Sibling {
            child,
            port,
            client: client_with(&cert, port, false),
            output,
        }
    }

    /// Spawns `kluis serve` on a free port, copying its output into `output`.
    fn launch(&self, output: Arc<Mutex<String>>) -> (Child, u16) {
        let mut child = self
            .command()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = output.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = line.strip_prefix("kluis: listening on https://") {
                        let _ = tx.send(addr.to_owned());
                    }
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start:\n{}", output.lock().unwrap());
            }
        };
        (child, addr.rsplit(':').next().unwrap().parse().unwrap())
    }

    /// Sets (or replaces) a `KLUIS_*` setting for the next `spawn` and CLI runs.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// SIGKILL: the process gets no chance to clean up (a crash, an OOM kill, power loss).
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server ignored SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server process's id (to read its memory use from /proc).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything the server process printed (stdout and stderr; CLI runs are not included).
    pub fn logs(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// Runs a CLI command against this instance's database; returns stdout (panics on failure).
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.cli_raw(args, stdin);
        assert!(ok, "kluis {args:?} failed: {err}");
        out
    }

    /// A new platform operator key (`kluis platform-key create`), as a bearer credential.
    pub fn platform_key(&self) -> Auth {
        Auth::Bearer(
            self.cli(&["platform-key", "create", "--name", "ops"], None)
                .trim()
                .to_owned(),
        )
    }

    pub fn cli_raw(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            pipe.write_all(s.as_bytes()).unwrap();
        }
        drop(pipe);
        let out = child.wait_with_output().unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        (out.status.success(), o, e)
    }

    /// The printed one-time setup token, if any.
    pub fn setup_token(&self) -> Option<String> {
        self.logs().lines().find_map(|l| {
            l.trim()
                .split_once("/setup#")
                .map(|(_, t)| t.trim().to_owned())
        })
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("kluis.db")
    }

    /// Everything the database holds, to grep: the raw SQLite files (WAL included), or on
    /// PostgreSQL every row of every table read by the superuser (which bypasses RLS).
    pub async fn database_dump(&self) -> Vec<u8> {
        match &self.backend {
            Backend::Sqlite => {
                let mut all = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    let p = PathBuf::from(format!("{}{suffix}", self.sqlite_path().display()));
                    if let Ok(b) = std::fs::read(&p) {
                        all.extend(b);
                    }
                }
                all
            }
            Backend::Postgres { .. } => {
                let cluster = kluis_testkit::pg_cluster().unwrap();
                let db = self.pg_database_name();
                let tables = cluster
                    .superuser_query(
                        &db,
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
                    )
                    .unwrap();
                let mut all = Vec::new();
                for t in tables.lines().filter(|l| !l.trim().is_empty()) {
                    let rows = cluster
                        .superuser_query(
                            &db,
                            &format!("SELECT row_to_json(x)::text FROM \"{}\" x", t.trim()),
                        )
                        .unwrap();
                    all.extend(rows.into_bytes());
                }
                all
            }
        }
    }

    pub fn pg_database_name(&self) -> String {
        match &self.backend {
            Backend::Postgres { app_url, .. } => app_url.rsplit('/').next().unwrap().to_owned(),
            Backend::Sqlite => panic!("not postgres"),
        }
    }

    // ---- HTTP helpers ---------------------------------------------------------------

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, v) = self.call_with(method, path, auth, &[], body).await;
        (status, v)
    }

    /// Like `call`, with extra request headers; also returns the response headers.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut rb = self.client.request(method, self.url(path));
        rb = auth.apply(rb);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let res = rb.send().await.unwrap();
        let status = res.status();
        let h = res.headers().clone();
        let text = res.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, h, v)
    }

    /// POSTs a raw body (a CSV file) and parses the JSON answer.
    pub async fn upload(
        &self,
        path: &str,
        auth: &Auth,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let rb = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        let res = auth.apply(rb).send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET path` answered as text (not JSON).
    pub async fn get_text(&self, path: &str, auth: &Auth) -> (StatusCode, String) {
        let res = auth
            .apply(self.client.get(self.url(path)))
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> (StatusCode, Value) {
        self.call(Method::GET, path, auth, None).await
    }

    pub async fn post(&self, path: &str, auth: &Auth, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, auth, Some(body)).await
    }

    pub async fn login(&self, tenant: &str, email: &str, password: &str) -> Auth {
        let res = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"tenant": tenant, "email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "login of {email} failed");
        let cookies: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let body: Value = res.json().await.unwrap();
        let session = cookies
            .iter()
            .find(|c| c.starts_with("__Host-kluis_session="))
            .expect("session cookie")
            .clone();
        assert!(
            session.contains("HttpOnly")
                && session.contains("Secure")
                && session.contains("SameSite=Strict")
                && session.contains("Path=/"),
            "{session}"
        );
        let value = session
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned();
        Auth::Session {
            cookie: value,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }
}

/// The session cookie a response sets, with the CSRF token of its body.
pub fn session_from(headers: &reqwest::header::HeaderMap, csrf: &Value) -> Option<Auth> {
    let cookie = headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("__Host-kluis_session="))?
        .split(';')
        .next()?
        .to_owned();
    Some(Auth::Session {
        cookie,
        csrf: csrf.as_str()?.to_owned(),
    })
}

/// A password sign-in that the server holds for second-factor enrolment (e.g. a break-glass
/// owner while SSO is required): checks that, enrols a TOTP authenticator with the pending
/// session and returns the full session it ends in, and the authenticator's secret.
pub async fn login_enrolling_totp(s: &Server, tenant: &str, email: &str) -> (Auth, String) {
    let (st, h, v) = s
        .call_with(
            Method::POST,
            "/api/v1/auth/login",
            &Auth::None,
            &[],
            Some(json!({"tenant": tenant, "email": email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "mfa_enrolment_required", "{v}");
    let pending = session_from(&h, &v["csrf_token"]).unwrap();
    let (st, e) = s.post("/api/v1/me/mfa/totp", &pending, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let secret = e["secret"].as_str().unwrap().to_owned();
    let key = kluis_crypto::totp::secret_from_base32(&secret).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = kluis_crypto::totp::code_at(&key, now).unwrap();
    let (st, h, v) = s
        .call_with(
            Method::POST,
            "/api/v1/me/mfa/totp/confirm",
            &pending,
            &[],
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let full = session_from(&h, &v["login"]["csrf_token"]).unwrap();
    (full, secret)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A second server process on a [`Server`]'s data directory and database.
pub struct Sibling {
    child: Child,
    pub port: u16,
    pub client: reqwest::Client,
    output: Arc<Mutex<String>>,
}

impl Sibling {
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn logs(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The status of `GET path` on this process.
    pub async fn get_status(&self, path: &str, auth: &Auth) -> StatusCode {
        auth.apply(self.client.get(self.url(path)))
            .send()
            .await
            .unwrap()
            .status()
    }
}

impl Drop for Sibling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client_with(cert_pem: &[u8], port: u16, cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).unwrap())
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .cookie_store(cookies)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// How a request authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Bearer(String),
    Session {
        cookie: String,
        csrf: String,
    },
    /// Session cookie without the CSRF header.
    SessionNoCsrf {
        cookie: String,
    },
}

impl Auth {
    pub fn apply(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => rb,
            Auth::Bearer(t) => rb.bearer_auth(t),
            Auth::Session { cookie, csrf } => rb
                .header("cookie", format!("__Host-kluis_session={cookie}"))
                .header("x-csrf-token", csrf),
            Auth::SessionNoCsrf { cookie } => {
                rb.header("cookie", format!("__Host-kluis_session={cookie}"))
            }
        }
    }

    pub fn without_csrf(&self) -> Auth {
        match self {
            Auth::Session { cookie, .. } => Auth::SessionNoCsrf {
                cookie: cookie.clone(),
            },
            other => other.clone(),
        }
    }
}

/// One tenant with an owner (signed in), a member, and an API key with every scope.
pub struct TenantFixture {
    pub id: String,
    pub owner_id: String,
    pub owner: Auth,
    pub member_id: String,
    pub member: Auth,
    pub key_id: String,
    pub key: Auth,
    pub key_secret: String,
}

pub async fn tenant_fixture(s: &Server, slug: &str) -> TenantFixture {
    let t: Value = serde_json::from_str(&s.cli(
        &[
            "tenant",
            "create",
            "--slug",
            slug,
            "--name",
            &format!("{slug} BV"),
            "--json",
        ],
        None,
    ))
    .unwrap();
    let owner_email = format!("owner@{slug}.test");
    let member_email = format!("member@{slug}.test");
    let o: Value = serde_json::from_str(&s.cli(
        &[
            "user",
            "create",
            "--tenant",
            slug,
            "--email",
            &owner_email,
            "--role",
            "owner",
            "--password-stdin",
            "--json",
        ],
        Some(PASSWORD),
    ))
    .unwrap();
    let m: Value = serde_json::from_str(&s.cli(
        &[
            "user",
            "create",
            "--tenant",
            slug,
            "--email",
            &member_email,
            "--role",
            "member",
            "--password-stdin",
            "--json",
        ],
        Some(PASSWORD),
    ))
    .unwrap();
    let k: Value = serde_json::from_str(&s.cli(
        &[
            "apikey",
            "create",
            "--tenant",
            slug,
            "--name",
            "all",
            "--scopes",
            "users:read,users:write,settings:read,settings:write,crm:read,crm:write",
            "--json",
        ],
        None,
    ))
    .unwrap();
    let owner = s.login(slug, &owner_email, PASSWORD).await;
    let member = s.login(slug, &member_email, PASSWORD).await;
    TenantFixture {
        id: t["id"].as_str().unwrap().to_owned(),
        owner_id: o["id"].as_str().unwrap().to_owned(),
        owner,
        member_id: m["id"].as_str().unwrap().to_owned(),
        member,
        key_id: k["id"].as_str().unwrap().to_owned(),
        key: Auth::Bearer(k["secret"].as_str().unwrap().to_owned()),
        key_secret: k["secret"].as_str().unwrap().to_owned(),
    }
}

pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}
