//! A dedicated PostgreSQL cluster with WAL archiving through pgBackRest, for backup tests.
//!
//! Separate from the shared cluster of [`crate::pg_cluster`] (which runs with `fsync=off` and no
//! archiving, and which other tests keep writing to): each backup test owns one of these, so a
//! restore to a point in time compares against a database nobody else touches.
//!
//! The cluster runs with `wal_level=replica`, `archive_mode=on` and
//! `archive_command = pgbackrest --config=<config_file> --stanza=<stanza> archive-push %p`.
//! The config file does not exist yet when the cluster starts: the code under test (Kluis's
//! `kluis_backup::pgbackrest`) writes it. Until then archiving fails and PostgreSQL keeps the
//! WAL and retries, which is exactly what it does in production.
//!
//! When the test runs as root (containers, CI), PostgreSQL and pgBackRest run as the `postgres`
//! OS user, like the shared cluster; [`ArchivingCluster::run_as`] says which user to use.
//!
//! pgBackRest or PostgreSQL missing: [`archiving_cluster`] prints "skipped: <why>" and returns
//! `None`, or panics when `KLUIS_REQUIRE_PGBACKREST=1` is set.

use std::fs;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, Result};

use crate::{
    APP_ROLE, Binaries, OWNER_ROLE, SUPERUSER, TestDatabase, chown_to_postgres, find_in_path,
    free_port, init_cluster, is_executable, log_tail, run, running_as_root, runuser_path,
    server_command, shell_quote,
};

/// Environment variable that turns "pgBackRest not installed" into a failure.
pub const REQUIRE_PGBACKREST_ENV: &str = "KLUIS_REQUIRE_PGBACKREST";

/// The stanza name the archiving clusters use.
pub const STANZA: &str = "kluis";

/// Whether `KLUIS_REQUIRE_PGBACKREST=1` is set.
pub fn require_pgbackrest() -> bool {
    std::env::var(REQUIRE_PGBACKREST_ENV).is_ok_and(|v| v.trim() == "1")
}

/// A running PostgreSQL cluster archiving its WAL through pgBackRest. Stopped (immediate) and
/// its directory removed on drop; a watchdog does the same if the test process dies.
#[derive(Debug)]
pub struct ArchivingCluster {
    bins: Binaries,
    pgbackrest: PathBuf,
    as_postgres_user: bool,
    root_dir: PathBuf,
    server: Server,
    config_dir: PathBuf,
    owner_password: String,
    app_password: String,
    _watchdog: Child,
}

/// One postmaster on a data directory (the archiving one, or one started on a restored copy).
#[derive(Debug)]
struct Server {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
}

/// A postmaster started on a restored data directory (archiving off). Stopped on drop.
#[derive(Debug)]
pub struct RestoredServer<'a> {
    cluster: &'a ArchivingCluster,
    server: Server,
}

/// The cluster for one backup test, or `None` after printing "skipped: <why>".
///
/// Panics when the binaries are missing and [`require_pgbackrest`] is set, or when they exist
/// but the cluster cannot be started.
pub fn archiving_cluster() -> Option<ArchivingCluster> {
    let missing = |why: &str| -> Option<ArchivingCluster> {
        let msg = format!("skipped: pgBackRest backup tests — {why}");
        if require_pgbackrest() {
            panic!("{msg} ({REQUIRE_PGBACKREST_ENV}=1 is set, so this is an error)");
        }
        // The real stderr, so the skip shows even when the run passes.
        let _ = writeln!(std::io::stderr(), "{msg}");
        None
    };
    let Some(bins) = Binaries::find() else {
        return missing(
            "initdb/postgres not found (looked in /usr/lib/postgresql/*/bin and PATH); install the `postgresql` package",
        );
    };
    let Some(pgbackrest) = pgbackrest_path() else {
        return missing("`pgbackrest` not found in PATH; install the `pgbackrest` package");
    };
    match ArchivingCluster::start(bins, pgbackrest) {
        Ok(c) => Some(c),
        Err(e) => panic!("archiving PostgreSQL cluster failed to start: {e:#}"),
    }
}

fn pgbackrest_path() -> Option<PathBuf> {
    find_in_path("pgbackrest").or_else(|| {
        let p = PathBuf::from("/usr/bin/pgbackrest");
        is_executable(&p).then_some(p)
    })
}

impl ArchivingCluster {
    /// The pgBackRest binary found.
    pub fn pgbackrest(&self) -> &Path {
        &self.pgbackrest
    }

    /// The OS user pgBackRest must run as (the cluster's), or `None` to run as ourselves.
    pub fn run_as(&self) -> Option<&'static str> {
        self.as_postgres_user.then_some(SUPERUSER)
    }

    /// Where the cluster's `archive_command` expects pgBackRest's configuration:
    /// `<config_dir>/pgbackrest.conf`. Private to the cluster's OS user.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// The cluster's data directory (pgBackRest's `pg1-path`).
    pub fn data_dir(&self) -> &Path {
        &self.server.data_dir
    }

    /// The unix socket directory (pgBackRest's `pg1-socket-path`; superuser, trust).
    pub fn socket_dir(&self) -> &Path {
        &self.server.socket_dir
    }

    /// TCP port on 127.0.0.1 (and of the socket).
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The superuser pgBackRest connects as.
    pub fn superuser(&self) -> &'static str {
        SUPERUSER
    }

    /// A scratch directory owned by the cluster's OS user, for restores and repositories (the
    /// user pgBackRest runs as must be able to write there). Removed with the cluster.
    pub fn scratch_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.root_dir.join(name);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if self.as_postgres_user {
            chown_to_postgres(&dir)?;
        }
        Ok(dir)
    }

    /// Runs `sql` as the superuser in `database`; psql's unaligned, tuples-only output.
    pub fn query(&self, database: &str, sql: &str) -> Result<String> {
        self.server.psql(&self.bins, database, &[sql])
    }

    /// `pg_dump` of `database` as plain SQL (deterministic for an unchanged database).
    pub fn dump(&self, database: &str) -> Result<String> {
        self.server.dump(&self.bins, database)
    }

    /// A database owned by `kluis_owner` with `CONNECT` for `kluis_app` (as the shared cluster's
    /// [`crate::PgCluster::create_database`]).
    pub fn create_database(&self, name: &str) -> Result<TestDatabase> {
        self.server.psql(
            &self.bins,
            "postgres",
            &[
                &format!("CREATE DATABASE {name} OWNER {OWNER_ROLE}"),
                &format!("REVOKE ALL ON DATABASE {name} FROM PUBLIC"),
                &format!("GRANT CONNECT ON DATABASE {name} TO {APP_ROLE}"),
            ],
        )?;
        self.server.psql(
            &self.bins,
            name,
            &[
                &format!("ALTER SCHEMA public OWNER TO {OWNER_ROLE}"),
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            ],
        )?;
        let url = |role: &str, pw: &str| {
            format!(
                "postgres://{role}:{pw}@127.0.0.1:{}/{name}",
                self.server.port
            )
        };
        Ok(TestDatabase {
            name: name.to_owned(),
            owner_url: url(OWNER_ROLE, &self.owner_password),
            app_url: url(APP_ROLE, &self.app_password),
        })
    }

    /// Starts a postmaster on a restored data directory (a copy of this cluster), on a new port
    /// and socket, with archiving off so it never pushes into the repository it came from.
    /// Returns once recovery has finished and the server accepts writes.
    pub fn start_restored(&self, data_dir: &Path) -> Result<RestoredServer<'_>> {
        // Tests restore into `<scratch>/data`: name the socket and log after the scratch dir.
        let named = if data_dir.file_name().is_some_and(|n| n == "data") {
            data_dir.parent().and_then(Path::file_name)
        } else {
            data_dir.file_name()
        };
        let name = named
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "restored".into());
        let socket_dir = self.scratch_dir(&format!("{name}.sock"))?;
        let log_file = self.root_dir.join(format!("{name}.log"));
        let server = Server::start(
            &self.bins,
            self.as_postgres_user,
            &self.root_dir,
            data_dir,
            socket_dir,
            log_file,
            "-c archive_mode=off",
        )?;
        let restored = RestoredServer {
            cluster: self,
            server,
        };
        // pg_ctl -w returns once connections are accepted; recovery (replaying archived WAL
        // up to the target, then promoting) may still be running.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let in_recovery = restored.query("postgres", "SELECT pg_is_in_recovery()")?;
            if in_recovery.trim() == "f" {
                return Ok(restored);
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "restored server still in recovery after 60 s\n{}",
                    log_tail(&restored.server.log_file)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The server log's last lines, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.server.log_file)
    }

    /// Stops the server like a crash (`pg_ctl -m immediate`: no shutdown checkpoint and no
    /// final archiving), e.g. to measure what the repository alone holds.
    pub fn crash(&self) -> Result<()> {
        let mut stop = server_command(&self.bins.pg_ctl, self.as_postgres_user, &self.root_dir);
        stop.arg("-D")
            .arg(&self.server.data_dir)
            .args(["-m", "immediate", "stop"]);
        run(&mut stop).map(|_| ())
    }

    fn start(bins: Binaries, pgbackrest: PathBuf) -> Result<Self> {
        let as_postgres_user = running_as_root();
        if as_postgres_user {
            run(Command::new("id").args(["-u", SUPERUSER])).context(
                "running as root, so PostgreSQL must run as the `postgres` OS user, which does not exist",
            )?;
        }
        // Under /tmp so the postgres user can reach it and socket paths stay short.
        let root_dir = tempfile::Builder::new()
            .prefix("kluis-pgbr-")
            .tempdir_in("/tmp")
            .context("creating cluster directory")?
            .keep();
        let data_dir = root_dir.join("data");
        let socket_dir = root_dir.join("sock");
        let config_dir = root_dir.join("pgbackrest-conf");
        let log_file = root_dir.join("postgres.log");
        fs::create_dir(&socket_dir).context("creating socket directory")?;
        fs::create_dir(&config_dir).context("creating config directory")?;
        let watchdog = spawn_watchdog(&bins, as_postgres_user, &root_dir)?;
        if as_postgres_user {
            chown_to_postgres(&root_dir)?;
        }

        init_cluster(&bins, as_postgres_user, &root_dir, &data_dir)?;

        let config_file = config_dir.join("pgbackrest.conf");
        let archive_command = format!(
            "{} --config={} --stanza={STANZA} archive-push %p",
            pgbackrest.display(),
            config_file.display()
        );
        // fsync stays on (the default) here: this cluster's durability is what is under test.
        // Nothing else is set on the command line, which would override `ALTER SYSTEM` (a test
        // may tune archive_timeout that way).
        let extra = format!(
            "-c wal_level=replica -c archive_mode=on -c archive_command={} \
             -c max_wal_senders=3",
            shell_quote(&archive_command)
        );
        let server = Server::start(
            &bins,
            as_postgres_user,
            &root_dir,
            &data_dir,
            socket_dir,
            log_file,
            &extra,
        )?;
        let cluster = ArchivingCluster {
            bins,
            pgbackrest,
            as_postgres_user,
            root_dir,
            server,
            config_dir,
            owner_password: uuid::Uuid::new_v4().simple().to_string(),
            app_password: uuid::Uuid::new_v4().simple().to_string(),
            _watchdog: watchdog,
        };
        cluster
            .server
            .psql(
                &cluster.bins,
                "postgres",
                &[
                    &format!(
                        "CREATE ROLE {OWNER_ROLE} LOGIN PASSWORD '{}' \
                         NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION",
                        cluster.owner_password
                    ),
                    &format!(
                        "CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{}' \
                         NOSUPERUSER NOBYPASSRLS NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION",
                        cluster.app_password
                    ),
                ],
            )
            .with_context(|| format!("creating roles\n{}", cluster.log_tail()))?;
        Ok(cluster)
    }

    fn stop(&self, server: &Server) {
        let mut stop = server_command(&self.bins.pg_ctl, self.as_postgres_user, &self.root_dir);
        stop.arg("-D")
            .arg(&server.data_dir)
            .args(["-m", "immediate", "stop"]);
        let _ = run(&mut stop);
    }
}

impl Drop for ArchivingCluster {
    fn drop(&mut self) {
        self.stop(&self.server);
        let _ = fs::remove_dir_all(&self.root_dir);
    }
}

impl RestoredServer<'_> {
    /// Runs `sql` as the superuser in `database`.
    pub fn query(&self, database: &str, sql: &str) -> Result<String> {
        self.server.psql(&self.cluster.bins, database, &[sql])
    }

    /// `pg_dump` of `database` as plain SQL.
    pub fn dump(&self, database: &str) -> Result<String> {
        self.server.dump(&self.cluster.bins, database)
    }

    /// The server log's last lines.
    pub fn log_tail(&self) -> String {
        log_tail(&self.server.log_file)
    }
}

impl Drop for RestoredServer<'_> {
    fn drop(&mut self) {
        self.cluster.stop(&self.server);
    }
}

impl Server {
    fn start(
        bins: &Binaries,
        as_postgres_user: bool,
        root_dir: &Path,
        data_dir: &Path,
        socket_dir: PathBuf,
        log_file: PathBuf,
        extra: &str,
    ) -> Result<Self> {
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            let options = format!(
                "-p {port} -k {sock} -c listen_addresses=127.0.0.1 \
                 -c shared_buffers=16MB -c max_connections=50 \
                 -c unix_socket_permissions=0700 {extra}",
                sock = shell_quote(&socket_dir.to_string_lossy()),
            );
            let mut cmd = server_command(&bins.pg_ctl, as_postgres_user, root_dir);
            cmd.arg("-D")
                .arg(data_dir)
                .args(["-w", "-t", "120", "-l"])
                .arg(&log_file)
                .arg("-o")
                .arg(options)
                .arg("start")
                .process_group(0);
            match run(&mut cmd) {
                Ok(_) => {
                    return Ok(Server {
                        data_dir: data_dir.to_path_buf(),
                        socket_dir,
                        log_file,
                        port,
                    });
                }
                Err(e) => {
                    let log = fs::read_to_string(&log_file).unwrap_or_default();
                    let port_taken =
                        log.contains("could not bind") || log.contains("already in use");
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
            log_tail(&log_file)
        )))
    }

    fn client(&self, program: &Path, database: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.arg("-h").arg(&self.socket_dir).args([
            "-p",
            &self.port.to_string(),
            "-U",
            SUPERUSER,
            "-d",
            database,
        ]);
        cmd
    }

    fn psql(&self, bins: &Binaries, database: &str, commands: &[&str]) -> Result<String> {
        let mut cmd = self.client(&bins.psql, database);
        cmd.args(["-X", "-w", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]);
        for c in commands {
            cmd.arg("-c").arg(c);
        }
        let out = run(&mut cmd).with_context(|| format!("psql on database {database}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    }

    fn dump(&self, bins: &Binaries, database: &str) -> Result<String> {
        // pg_dump must match the server's major version: take it from the server's bin dir.
        let pg_dump = bins
            .initdb
            .parent()
            .map(|d| d.join("pg_dump"))
            .filter(|p| is_executable(p))
            .or_else(|| find_in_path("pg_dump"))
            .context("pg_dump not found")?;
        let mut cmd = self.client(&pg_dump, database);
        cmd.args(["-w", "--no-sync"]);
        let out = run(&mut cmd).with_context(|| format!("pg_dump of {database}"))?;
        String::from_utf8(out.stdout).context("pg_dump output is not UTF-8")
    }
}

/// Detached shell that, once this test process is gone, stops every postmaster under
/// `root_dir` (the archiving one in `data`, restored ones in `<name>/data`) and removes the
/// directory. Unlike the shared cluster's watchdog it cannot know the restored data
/// directories in advance, hence the glob.
fn spawn_watchdog(bins: &Binaries, as_postgres_user: bool, root_dir: &Path) -> Result<Child> {
    let runuser = if as_postgres_user {
        format!(
            "{} -u {SUPERUSER} -- ",
            shell_quote(&runuser_path().to_string_lossy())
        )
    } else {
        String::new()
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; cd /; \
         for d in {root}/data {root}/*/data; do \
           [ -f \"$d/postmaster.pid\" ] && {runuser}{pg_ctl} -D \"$d\" -m immediate stop >/dev/null 2>&1; \
         done; rm -rf {root}",
        pid = std::process::id(),
        pg_ctl = shell_quote(&bins.pg_ctl.to_string_lossy()),
        root = shell_quote(&root_dir.to_string_lossy()),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("spawning the cluster watchdog")
}
