//! Test support: a throwaway PostgreSQL cluster per test process.
//!
//! The store and server test suites run against SQLite and against a real
//! PostgreSQL started here: `initdb` into a fresh directory under `/tmp`,
//! `postgres` on a random 127.0.0.1 port plus a unix socket in that directory.
//! Every test gets its own database via [`PgCluster::create_database`].
//!
//! Roles mirror production: `kluis_owner` owns each database (runs migrations),
//! `kluis_app` only gets `CONNECT` and whatever the application grants it, and
//! neither is superuser nor has `BYPASSRLS`, so row-level security is really
//! exercised. The superuser (`postgres`) is only reachable through the unix
//! socket, whose directory is private to the cluster's OS user.
//!
//! Statics are never dropped, so a detached watchdog shell stops the cluster
//! and removes its directory about a second after the test process exits.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result, bail};

pub mod browser;
pub mod clamav;

/// The two database engines every suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Runs each named async test function on SQLite and on PostgreSQL.
///
/// `fixture` is an `async fn(Engine) -> Option<F>` of the calling suite; each test function
/// takes the `F` by value (so whatever it holds, a temporary directory say, lives as long as
/// the test). `None` skips that engine: fixtures return it only after printing
/// "skipped: <why>" (see [`pg_cluster`]), which `KLUIS_REQUIRE_POSTGRES=1` turns into a failure.
///
/// ```text
/// kluis_testkit::on_both!(fixture = crate::support::backend; sign_in_works, sign_out_works);
/// ```
#[macro_export]
macro_rules! on_both {
    (fixture = $fixture:path; $($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let Some(f) = $fixture($crate::Engine::Sqlite).await else { return };
                super::$name(f).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(f) = $fixture($crate::Engine::Postgres).await else { return };
                super::$name(f).await;
            }
        }
    )+};
}
pub mod layering;
pub mod oidc;
pub mod pgbackrest;
pub mod s3;
pub mod saml;
pub mod smtp;
pub mod webauthn;

/// Environment variable that turns "PostgreSQL not installed" from a skip into
/// a failure, so CI cannot pass silently without the server.
pub const REQUIRE_POSTGRES_ENV: &str = "KLUIS_REQUIRE_POSTGRES";

const SKIP_MESSAGE: &str = "skipped: PostgreSQL tests — initdb/postgres not found (looked in /usr/lib/postgresql/*/bin and PATH); install the `postgresql` package";

/// Role that owns every test database and runs migrations.
pub const OWNER_ROLE: &str = "kluis_owner";
/// Role the application connects as at runtime.
pub const APP_ROLE: &str = "kluis_app";

const SUPERUSER: &str = "postgres";
const START_ATTEMPTS: usize = 5;

/// Whether `KLUIS_REQUIRE_POSTGRES=1` is set.
pub fn require_postgres() -> bool {
    std::env::var(REQUIRE_POSTGRES_ENV).is_ok_and(|v| v.trim() == "1")
}

/// A running throwaway cluster, shared by all tests of one test binary.
#[derive(Debug)]
pub struct PgCluster {
    bins: Binaries,
    /// Tests commonly run as root (containers, CI); PostgreSQL refuses that,
    /// so server-side tools then run as the `postgres` OS user.
    as_postgres_user: bool,
    root_dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    owner_password: String,
    app_password: String,
    // Kept only so the handle is owned; the watchdog outlives this process.
    _watchdog: Child,
}

/// A fresh, uniquely named database in the shared cluster.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    /// `postgres://kluis_owner:…@127.0.0.1:PORT/NAME` — owns the database.
    pub owner_url: String,
    /// `postgres://kluis_app:…@127.0.0.1:PORT/NAME` — `CONNECT` only.
    pub app_url: String,
}

static CLUSTER: OnceLock<Result<Option<PgCluster>, String>> = OnceLock::new();
static SKIP_NOTICE: std::sync::Once = std::sync::Once::new();
static DB_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The cluster for this test process, started on first use.
///
/// Returns `None` (after printing a skip notice) when the PostgreSQL binaries
/// are not installed, unless [`require_postgres`] is set, in which case it
/// panics. Panics if the binaries exist but the cluster cannot be started.
pub fn pg_cluster() -> Option<&'static PgCluster> {
    // The outcome is memoised, including failures, so a broken setup fails
    // every test quickly instead of re-running initdb each time.
    let state = CLUSTER.get_or_init(|| match Binaries::find() {
        None => Ok(None),
        Some(bins) => PgCluster::start(bins)
            .map(Some)
            .map_err(|e| format!("{e:#}")),
    });
    match state {
        Ok(Some(cluster)) => Some(cluster),
        Ok(None) => {
            if require_postgres() {
                panic!("{SKIP_MESSAGE} ({REQUIRE_POSTGRES_ENV}=1 is set, so this is an error)");
            }
            // Written to the real stderr (not the captured test output) so
            // the skip is visible even when all tests pass.
            SKIP_NOTICE.call_once(|| {
                let _ = writeln!(std::io::stderr(), "{SKIP_MESSAGE}");
            });
            None
        }
        Err(msg) => panic!("throwaway PostgreSQL cluster failed to start: {msg}"),
    }
}

impl PgCluster {
    /// Creates a fresh database owned by `kluis_owner`, with `CONNECT` granted
    /// to `kluis_app`. Panics on failure (this is test support).
    pub fn create_database(&self) -> TestDatabase {
        match self.try_create_database() {
            Ok(db) => db,
            Err(e) => panic!("creating a test database failed: {e:#}"),
        }
    }

    /// Fallible form of [`PgCluster::create_database`].
    pub fn try_create_database(&self) -> Result<TestDatabase> {
        let n = DB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        // Counter for readability in logs, random part so names never repeat
        // even if a cluster directory were reused.
        let name = format!("kluis_t{n}_{}", &suffix[..12]);

        // Separate -c flags: CREATE DATABASE cannot run in the implicit
        // transaction a multi-statement string would get.
        self.psql_commands(
            "postgres",
            &[
                &format!("CREATE DATABASE {name} OWNER {OWNER_ROLE}"),
                &format!("REVOKE ALL ON DATABASE {name} FROM PUBLIC"),
                &format!("GRANT CONNECT ON DATABASE {name} TO {APP_ROLE}"),
            ],
        )?;
        // The owner must be able to create objects in `public` on every
        // version; PUBLIC keeps USAGE (stock PG15 default) but never CREATE.
        self.psql_commands(
            &name,
            &[
                &format!("ALTER SCHEMA public OWNER TO {OWNER_ROLE}"),
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            ],
        )?;

        Ok(TestDatabase {
            owner_url: self.url(OWNER_ROLE, &self.owner_password, &name),
            app_url: self.url(APP_ROLE, &self.app_password, &name),
            name,
        })
    }

    /// TCP port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory holding the unix socket (superuser access, trust auth).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Server log file, useful when a test wants to show what happened.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// Runs `sql` as the superuser in `database` and returns psql's unaligned,
    /// tuples-only output (`|`-separated columns, one row per line).
    pub fn superuser_query(&self, database: &str, sql: &str) -> Result<String> {
        self.psql_commands(database, &[sql])
    }

    /// Path of the `psql` binary used by the harness.
    pub fn psql_path(&self) -> &Path {
        &self.bins.psql
    }

    fn url(&self, role: &str, password: &str, database: &str) -> String {
        // Passwords are hex, so they need no percent-encoding.
        format!(
            "postgres://{role}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    fn psql_commands(&self, database: &str, commands: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.bins.psql);
        cmd.arg("-X") // ignore any ~/.psqlrc
            .arg("-w") // never prompt for a password
            .args(["-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                database,
            ]);
        for c in commands {
            cmd.arg("-c").arg(c);
        }
        let out = run(&mut cmd).with_context(|| format!("psql on database {database}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    }

    fn start(bins: Binaries) -> Result<Self> {
        let as_postgres_user = running_as_root();
        if as_postgres_user {
            run(Command::new("id").args(["-u", SUPERUSER])).context(
                "running as root, so PostgreSQL must run as the `postgres` OS user, which does not exist",
            )?;
        }

        // Under /tmp (not $TMPDIR) so the postgres user can reach it and the
        // socket path stays short (unix socket paths are limited to ~107 bytes).
        let base = Path::new("/tmp");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let root_dir = tempfile::Builder::new()
            .prefix("kluis-pg-")
            .tempdir_in(&base)
            .context("creating cluster directory")?
            .keep();
        let data_dir = root_dir.join("data");
        let socket_dir = root_dir.join("sock");
        let log_file = root_dir.join("postgres.log");
        fs::create_dir(&socket_dir).context("creating socket directory")?;

        // Started first so the directory is removed even if setup fails.
        let watchdog = spawn_watchdog(&bins, as_postgres_user, &root_dir, &data_dir)?;

        if as_postgres_user {
            chown_to_postgres(&root_dir)?;
        }

        init_cluster(&bins, as_postgres_user, &root_dir, &data_dir)?;

        let port = start_server(
            &bins,
            as_postgres_user,
            &root_dir,
            &data_dir,
            &socket_dir,
            &log_file,
        )?;

        let cluster = PgCluster {
            bins,
            as_postgres_user,
            root_dir,
            data_dir,
            socket_dir,
            log_file,
            port,
            owner_password: uuid::Uuid::new_v4().simple().to_string(),
            app_password: uuid::Uuid::new_v4().simple().to_string(),
            _watchdog: watchdog,
        };
        cluster
            .psql_commands(
                "postgres",
                &[
                    &format!(
                        "CREATE ROLE {OWNER_ROLE} LOGIN PASSWORD '{}' \
                         NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION",
                        cluster.owner_password
                    ),
                    // NOINHERIT: the app role never silently gains privileges
                    // through memberships.
                    &format!(
                        "CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{}' \
                         NOSUPERUSER NOBYPASSRLS NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION",
                        cluster.app_password
                    ),
                ],
            )
            .with_context(|| format!("creating roles\n{}", log_tail(&cluster.log_file)))?;
        Ok(cluster)
    }
}

impl Drop for PgCluster {
    // Only reached if a cluster is built outside the static (e.g. a failed
    // start path); the static one relies on the watchdog.
    fn drop(&mut self) {
        let mut stop = server_command(&self.bins.pg_ctl, self.as_postgres_user, &self.root_dir);
        stop.arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "stop"]);
        let _ = run(&mut stop);
    }
}

#[derive(Debug, Clone)]
struct Binaries {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    psql: PathBuf,
}

impl Binaries {
    fn find() -> Option<Self> {
        Self::from_versioned_dirs().or_else(Self::from_path)
    }

    /// Debian/Ubuntu layout: `/usr/lib/postgresql/<version>/bin`, highest wins.
    fn from_versioned_dirs() -> Option<Self> {
        let mut dirs: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let version = e
                    .file_name()
                    .to_str()?
                    .split('.')
                    .map(|p| p.parse::<u32>().ok())
                    .collect::<Option<Vec<u32>>>()?;
                Some((version, e.path().join("bin")))
            })
            .collect();
        dirs.sort();
        dirs.into_iter().rev().find_map(|(_, bin)| {
            let has = |name: &str| is_executable(&bin.join(name));
            if !(has("initdb") && has("pg_ctl") && has("postgres")) {
                return None;
            }
            let psql = if has("psql") {
                bin.join("psql")
            } else {
                find_in_path("psql")?
            };
            Some(Self {
                initdb: bin.join("initdb"),
                pg_ctl: bin.join("pg_ctl"),
                psql,
            })
        })
    }

    fn from_path() -> Option<Self> {
        find_in_path("postgres")?;
        Some(Self {
            initdb: find_in_path("initdb")?,
            pg_ctl: find_in_path("pg_ctl")?,
            psql: find_in_path("psql")?,
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `runuser` lives in sbin, which is often missing from a non-login PATH.
fn runuser_path() -> PathBuf {
    find_in_path("runuser")
        .or_else(|| {
            ["/usr/sbin/runuser", "/sbin/runuser"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| is_executable(p))
        })
        .unwrap_or_else(|| PathBuf::from("runuser"))
}

/// A command for a server-side tool, run as `postgres` when we are root.
fn server_command(program: &Path, as_postgres_user: bool, cwd: &Path) -> Command {
    let mut cmd = if as_postgres_user {
        let mut c = Command::new(runuser_path());
        c.args(["-u", SUPERUSER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    // The caller's cwd may be unreadable for the postgres user.
    cmd.current_dir(cwd);
    cmd
}

fn chown_to_postgres(path: &Path) -> Result<()> {
    run(Command::new("chown")
        .arg("-R")
        .arg(format!("{SUPERUSER}:{SUPERUSER}"))
        .arg(path))
    .map(|_| ())
}

/// Runs a command to completion; a non-zero exit becomes an error carrying
/// its output.
fn run(cmd: &mut Command) -> Result<Output> {
    let program = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(OsStr::to_string_lossy)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not run `{program}`"))?;
    if !out.status.success() {
        bail!(
            "`{program}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// `initdb` of a new cluster in `data_dir`, and its access rules: the superuser only via the
/// socket (its directory is 0700, owned by the cluster user); everything else over TCP with a
/// password, like production. Shared by the test cluster and the archiving clusters.
fn init_cluster(
    bins: &Binaries,
    as_postgres_user: bool,
    root_dir: &Path,
    data_dir: &Path,
) -> Result<()> {
    let mut initdb = server_command(&bins.initdb, as_postgres_user, root_dir);
    initdb.arg("-D").arg(data_dir).args([
        "-U",
        SUPERUSER,
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
    ]);
    run(&mut initdb).context("initdb")?;
    fs::write(
        data_dir.join("pg_hba.conf"),
        "# written by kluis-testkit\n\
         local all postgres trust\n\
         host  all all 127.0.0.1/32 scram-sha-256\n",
    )
    .context("writing pg_hba.conf")?;
    if as_postgres_user {
        chown_to_postgres(&data_dir.join("pg_hba.conf"))?;
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a probe port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts the postmaster, retrying with a new port if another process took
/// the probed one in the meantime.
fn start_server(
    bins: &Binaries,
    as_postgres_user: bool,
    root_dir: &Path,
    data_dir: &Path,
    socket_dir: &Path,
    log_file: &Path,
) -> Result<u16> {
    let mut last_error = None;
    for _ in 0..START_ATTEMPTS {
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {sock} -c listen_addresses=127.0.0.1 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c shared_buffers=16MB -c max_connections=200 \
             -c unix_socket_permissions=0700",
            sock = shell_quote(&socket_dir.to_string_lossy()),
        );
        let mut cmd = server_command(&bins.pg_ctl, as_postgres_user, root_dir);
        cmd.arg("-D")
            .arg(data_dir)
            .args(["-w", "-t", "60", "-l"])
            .arg(log_file)
            .arg("-o")
            .arg(options)
            .arg("start")
            // Own process group: a Ctrl-C on the test run must not kill the
            // server before the watchdog can remove its directory.
            .process_group(0);
        match run(&mut cmd) {
            Ok(_) => return Ok(port),
            Err(e) => {
                let log = fs::read_to_string(log_file).unwrap_or_default();
                let port_taken = log.contains("could not bind") || log.contains("already in use");
                last_error = Some(e);
                if !port_taken {
                    break;
                }
            }
        }
    }
    let e = last_error.unwrap_or_else(|| anyhow::anyhow!("no start attempt was made"));
    Err(e.context(format!(
        "starting postgres (data dir {})\nserver log tail:\n{}",
        data_dir.display(),
        log_tail(log_file)
    )))
}

/// Detached shell that stops the cluster and removes its directory once this
/// process is gone (statics are never dropped).
fn spawn_watchdog(
    bins: &Binaries,
    as_postgres_user: bool,
    root_dir: &Path,
    data_dir: &Path,
) -> Result<Child> {
    let runuser = if as_postgres_user {
        format!(
            "{} -u {SUPERUSER} -- ",
            shell_quote(&runuser_path().to_string_lossy())
        )
    } else {
        String::new()
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         cd /; {runuser}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; \
         rm -rf {root}",
        pid = std::process::id(),
        pg_ctl = shell_quote(&bins.pg_ctl.to_string_lossy()),
        data = shell_quote(&data_dir.to_string_lossy()),
        root = shell_quote(&root_dir.to_string_lossy()),
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
        .context("spawning the cluster watchdog")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn log_tail(log_file: &Path) -> String {
    match fs::read_to_string(log_file) {
        Ok(log) => {
            let lines: Vec<&str> = log.lines().collect();
            let start = lines.len().saturating_sub(40);
            lines[start..].iter().fold(String::new(), |mut acc, l| {
                let _ = writeln!(acc, "    {l}");
                acc
            })
        }
        Err(e) => format!("    (no log at {}: {e})", log_file.display()),
    }
}
