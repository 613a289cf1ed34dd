//! Connection pools, migrations and transaction start for both engines.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::direct::{DirectPool, ReadConn};
use crate::tenant::{HeadCache, SealBudget};
use crate::{PlatformTx, Result, StoreError, TenantId, TenantTx};

pub(crate) struct ReadTx {
    pub(crate) direct: Option<ReadConn>,
    sqlx: Option<PoolConnection<Sqlite>>,
    pool: SqlitePool,
}

impl ReadTx {
    pub(crate) async fn sqlx(&mut self) -> Result<&mut sqlx::SqliteConnection> {
        let conn = match self.sqlx.take() {
            Some(c) => c,
            None => Box::pin(self.pool.acquire()).await?,
        };
        Ok(&mut **self.sqlx.insert(conn))
    }
}

/// Tables that hold tenant data. Each has `tenant_id` as the first primary-key column and, on
/// PostgreSQL, a forced row-level-security policy. Tests check both properties against the
/// live catalog, so a table added to a migration but not here (or vice versa) fails CI.
pub const TENANT_TABLES: &[&str] = &[
    "tenant_settings",
    "users",
    "sessions",
    "api_keys",
    "tenant_keys",
    "audit_heads",
    "audit_events",
    "audit_checkpoints",
    "crm_records",
    "crm_lookup",
    "crm_versions",
    "idempotency_keys",
    "crm_pipelines",
    "crm_stages",
    "crm_associations",
    "crm_custom_fields",
    "crm_custom_values",
    "crm_tags",
    "crm_record_tags",
    "crm_saved_views",
    "user_mfa",
    "mfa_recovery_codes",
    "login_throttle",
    "sso_configs",
    "sso_identities",
    "sso_pending",
    "sso_break_glass",
    "user_tokens",
    "mail_outbox",
    "passkeys",
    "webauthn_ceremonies",
    "scim_tokens",
    "scim_settings",
    "scim_users",
    "scim_groups",
    "scim_group_members",
    "saml_configs",
    "saml_seen_assertions",
    "rate_windows",
    "roles",
    "user_custom_roles",
    "teams",
    "team_members",
    "crm_files",
    "crm_file_versions",
    "support_grants",
    "privacy_requests",
    "audit_redactions",
    "retention_policies",
];

/// Platform tables: not tenant data, never reachable through a [`TenantTx`].
pub const PLATFORM_TABLES: &[&str] = &[
    "tenants",
    "setup_tokens",
    "platform_keys",
    "status_notices",
    "operators",
    "operator_sessions",
    "operator_grant_log",
    "incidents",
    "incident_tenants",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Debug leaves the URLs out: they may carry the database passwords.
#[derive(Clone)]
pub struct StoreOptions {
    /// `sqlite://path` / a plain file path, or `postgres://...` (the application role).
    pub database_url: String,
    /// PostgreSQL only: the owner role used to run migrations. The application role must
    /// not own the tables (ownership would let it disable RLS).
    pub owner_url: Option<String>,
    pub max_connections: u32,
    /// SQLite only: a backup shipper runs beside the store (kluis-backup). Every connection
    /// is then opened with `PRAGMA wal_autocheckpoint=0`, so that only the shipper
    /// checkpoints: the WAL never restarts before the shipper has shipped all of it.
    pub sqlite_wal_shipping: bool,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let engine = |u: &str| {
            if u.starts_with("postgres") {
                "postgres"
            } else {
                "sqlite"
            }
        };
        f.debug_struct("StoreOptions")
            .field(
                "database_url",
                &format_args!("{}://[redacted]", engine(&self.database_url)),
            )
            .field("owner_url", &self.owner_url.as_ref().map(|_| "[redacted]"))
            .field("max_connections", &self.max_connections)
            .field("sqlite_wal_shipping", &self.sqlite_wal_shipping)
            .finish()
    }
}

#[derive(Clone)]
pub(crate) enum Pool {
    /// Writers go through `write`; reads through `read`, whose connections SQLite opens
    /// read-only, so a read path cannot write even by mistake.
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
        /// Read-only rusqlite connections for the hot reads (see `direct.rs`).
        direct: DirectPool,
        heads: Arc<HeadCache>,
        /// The writers' options, for a bulk write's own connection (`begin_bulk`).
        options: Box<SqliteConnectOptions>,
    },
    Pg(PgPool),
}

pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    /// A read on SQLite: a direct (rusqlite) read-only connection in one deferred read
    /// transaction for the hot reads, and a read-only sqlx connection, acquired on first use,
    /// for the others (autocommit: each of those statements sees the latest committed state).
    SqliteRead(ReadTx),
    Pg(Transaction<'static, Postgres>),
}

/// The store: a pool for one engine. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    seals: Arc<SealBudget>,
}

impl Store {
    /// Opens (creating if needed) an SQLite database file and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        Store::open_sqlite_with(path, false).await
    }

    /// Like [`Store::open_sqlite`]; with `wal_shipping`, no connection ever checkpoints on its
    /// own (see [`StoreOptions::sqlite_wal_shipping`]). The direct read-only connections need
    /// nothing: SQLite checkpoints automatically only after a write commits.
    pub async fn open_sqlite_with(path: &Path, wal_shipping: bool) -> Result<Store> {
        create_private_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed change (and, later, its audit event) survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // 8 MiB of page cache per connection (SQLite's default is 2 MiB): blind-index
            // entries are random keys, so a large write (an import) touches index pages all
            // over; with the default cache most of them are evicted and re-read from the WAL.
            // Not more: a cache fills up to its size on any long scan (an export) and stays
            // allocated, and there are up to eight of these connections (32 MiB each put a
            // process that had imported and exported 1M contacts at 200 MB).
            .pragma("cache_size", "-8192")
            // Statement journals and temporary b-trees in memory: a multi-row insert inside
            // a transaction keeps a statement journal (page copies, so it can undo just that
            // statement); as a temp file it cost a write syscall per page (15 % of an import)
            // and put copies of sealed pages and blind indexes in an unlinked file on disk.
            .pragma("temp_store", "MEMORY")
            .busy_timeout(Duration::from_secs(10));
        // 1000 is SQLite's default; 0 turns automatic checkpoints off (the bulk-write
        // connection of `begin_bulk` clones these options, so it inherits the setting).
        let options = options.pragma(
            "wal_autocheckpoint",
            if wal_shipping { "0" } else { "1000" },
        );
        // No liveness ping before each acquire: a local file cannot drop the connection, and
        // every ping is a round trip to the connection's worker thread (measured: the largest
        // cost of a simple authenticated GET).
        let write = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        // Opened after the writer so the WAL index exists; read-only at the SQLite level.
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.clone().read_only(true).create_if_missing(false))
            .await?;
        Ok(Store {
            pool: Pool::Sqlite {
                write,
                read,
                direct: DirectPool::new(path),
                heads: Arc::default(),
                options: Box::new(options),
            },
            seals: Arc::default(),
        })
    }

    /// Connects to PostgreSQL, runs migrations as the owner role, grants the application
    /// role what it needs, and refuses to start if the application role could bypass RLS.
    pub async fn open_postgres(app_url: &str, owner_url: Option<&str>, max: u32) -> Result<Store> {
        let app_opts = PgConnectOptions::from_str(app_url)?;
        let app = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(app_opts)
            .await?;
        let app_role: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(&app)
            .await?;
        if let Some(owner_url) = owner_url {
            let owner = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(PgConnectOptions::from_str(owner_url)?)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&owner).await?;
            let role = quote_ident(&app_role);
            let mut conn = owner.acquire().await?;
            for stmt in [
                format!("GRANT USAGE ON SCHEMA public TO {role}"),
                format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
                ),
                format!("REVOKE ALL ON _sqlx_migrations FROM {role}"),
                // The audit trail is append-only for the application: no UPDATE or TRUNCATE at all, and the
                // trigger allows DELETE only below the signed truncation point (retention).
                format!("REVOKE UPDATE, TRUNCATE ON audit_events FROM {role}"),
                // ... except the sealed details, which an erasure replaces (data-subject
                // requests); the trigger allows that only for events in audit_redactions.
                format!("GRANT UPDATE (details) ON audit_events TO {role}"),
                format!("REVOKE UPDATE, DELETE, TRUNCATE ON audit_redactions FROM {role}"),
                format!("REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoints FROM {role}"),
                format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(stmt))
                    .execute(&mut *conn)
                    .await?;
            }
            // close() waits for every checked-out connection: give ours back first.
            drop(conn);
            owner.close().await;
        }
        check_app_role(&app).await?;
        Ok(Store {
            pool: Pool::Pg(app),
            seals: Arc::default(),
        })
    }

    /// Opens whatever `options.database_url` names.
    pub async fn open(options: &StoreOptions) -> Result<Store> {
        let url = options.database_url.as_str();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Store::open_postgres(url, options.owner_url.as_deref(), options.max_connections).await
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Store::open_sqlite_with(Path::new(path), options.sqlite_wal_shipping).await
        }
    }

    pub fn engine(&self) -> Engine {
        match self.pool {
            Pool::Sqlite { .. } => Engine::Sqlite,
            Pool::Pg(_) => Engine::Postgres,
        }
    }

    /// A handle for one tenant's data. Nothing else gives access to tenant tables.
    pub fn tenant(&self, tenant: TenantId) -> TenantScope<'_> {
        TenantScope {
            store: self,
            tenant,
        }
    }

    /// A transaction over platform tables only.
    pub async fn platform(&self) -> Result<PlatformTx> {
        Ok(PlatformTx::new(self.begin_tx(true).await?))
    }

    /// A read-only platform transaction (no write lock on SQLite).
    pub async fn platform_read(&self) -> Result<PlatformTx> {
        Ok(PlatformTx::new(self.begin_tx(false).await?))
    }

    /// Readiness probe: one round trip to the database.
    pub async fn ping(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite { read, .. } => {
                sqlx::query("SELECT 1").execute(read).await?.rows_affected()
            }
            Pool::Pg(p) => sqlx::query("SELECT 1").execute(p).await?.rows_affected(),
        };
        Ok(())
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { write, read, .. } => {
                read.close().await;
                write.close().await;
            }
            Pool::Pg(p) => p.close().await,
        }
    }

    /// `write`: SQLite takes the write lock up front (BEGIN IMMEDIATE) so two writers queue on
    /// the busy timeout instead of failing when a read lock is upgraded.
    pub(crate) async fn begin_tx(&self, write: bool) -> Result<Tx> {
        self.begin_tx_with(write, false).await
    }

    /// `snapshot` (SQLite reads): the direct connection's statements share one snapshot.
    /// The awaited sqlx futures are boxed: their state would otherwise be part of every
    /// caller's future, SQLite reads included (which await nothing here), and request futures
    /// are moved around whole.
    async fn begin_tx_with(&self, write: bool, snapshot: bool) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite { write: w, .. } if write => {
                Tx::Sqlite(Box::pin(w.begin_with("BEGIN IMMEDIATE")).await?)
            }
            Pool::Sqlite { read, direct, .. } => Tx::SqliteRead(ReadTx {
                direct: Some(direct.get(snapshot)?),
                sqlx: None,
                pool: read.clone(),
            }),
            Pool::Pg(p) => Tx::Pg(Box::pin(p.begin()).await?),
        })
    }
}

/// Entry point for one tenant's transactions.
pub struct TenantScope<'s> {
    store: &'s Store,
    tenant: TenantId,
}

impl TenantScope<'_> {
    /// A read-write transaction scoped to this tenant.
    pub async fn begin(self) -> Result<TenantTx> {
        let heads = match &self.store.pool {
            Pool::Sqlite { heads, .. } => Some(heads.clone()),
            Pool::Pg(_) => None,
        };
        Ok(
            TenantTx::start(self.store.begin_tx(true).await?, self.tenant)
                .await?
                .with_caches(heads, Some(self.store.seals.clone())),
        )
    }

    /// A read-write transaction for a bulk write (an import). On SQLite it runs on a
    /// connection of its own with a 64 MiB page cache, closed (and its cache freed) when the
    /// transaction ends, however it ends. Blind-index entries are random keys, so a large
    /// write touches index pages all over; with the pool's 8 MiB cache most are evicted and
    /// read back from the WAL (measured: the 1M-contact import ran a quarter slower).
    pub async fn begin_bulk(self) -> Result<TenantTx> {
        let Pool::Sqlite { heads, options, .. } = &self.store.pool else {
            return self.begin().await;
        };
        let own = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .test_before_acquire(false)
            .connect_with((**options).clone().pragma("cache_size", "-65536"))
            .await?;
        let tx = Tx::Sqlite(own.begin_with("BEGIN IMMEDIATE").await?);
        // The transaction holds the pool's only connection; with this handle gone, the
        // connection closes when the transaction returns it.
        drop(own);
        Ok(TenantTx::start(tx, self.tenant)
            .await?
            .with_caches(Some(heads.clone()), Some(self.store.seals.clone())))
    }

    /// A read-only transaction scoped to this tenant (no write lock on SQLite).
    pub async fn begin_read(self) -> Result<TenantTx> {
        TenantTx::start(self.store.begin_tx(false).await?, self.tenant).await
    }

    /// A read-only transaction whose hot reads (see `direct.rs`) all see one snapshot on
    /// SQLite, e.g. the audit head and the events of a verification. Plain `begin_read`
    /// runs each SQLite statement on its own (no BEGIN/ROLLBACK for a point read).
    pub async fn begin_snapshot(self) -> Result<TenantTx> {
        TenantTx::start(self.store.begin_tx_with(false, true).await?, self.tenant).await
    }
}

#[cfg(feature = "testing")]
impl Tx {
    pub(crate) async fn count_rows_unfiltered(&mut self, table: &str) -> Result<i64> {
        assert!(TENANT_TABLES.contains(&table), "not a tenant table");
        let sql = format!("SELECT count(*) FROM {table}");
        Ok(crate::on_conn!(self, |c| sqlx::query_scalar(
            sqlx::AssertSqlSafe(sql)
        )
        .fetch_one(c)
        .await?))
    }

    pub(crate) async fn current_tenant_setting(&mut self) -> Result<Option<String>> {
        Ok(match self {
            Tx::Pg(t) => {
                sqlx::query_scalar("SELECT current_setting('app.tenant_id', true)")
                    .fetch_one(&mut **t)
                    .await?
            }
            Tx::Sqlite(_) | Tx::SqliteRead(_) => None,
        })
    }
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::SqliteRead(_) => {}
            Tx::Pg(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// The application role must be subject to RLS: not a superuser, no BYPASSRLS, and not the
/// owner of any tenant table (owners can ALTER TABLE ... DISABLE ROW LEVEL SECURITY).
async fn check_app_role(pool: &PgPool) -> Result<()> {
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(pool)
            .await?;
    if superuser || bypass {
        return Err(StoreError::UnsafeConfig(
            "the database_url role is a superuser or has BYPASSRLS; connect as an ordinary role"
                .into(),
        ));
    }
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user",
    )
    .fetch_one(pool)
    .await?;
    if owned > 0 {
        return Err(StoreError::UnsafeConfig(
            "the database_url role owns Kluis tables; set database_owner_url to a separate owner role for migrations".into(),
        ));
    }
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY($1)",
    )
    .bind(TENANT_TABLES)
    .fetch_one(pool)
    .await?;
    if missing != TENANT_TABLES.len() as i64 {
        return Err(StoreError::UnsafeConfig(
            "schema is not migrated; run once with database_owner_url set".into(),
        ));
    }
    Ok(())
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The database holds everything; create it readable by the server's user only. SQLite gives
/// its -wal and -shm files the same mode.
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::UnsafeConfig(format!("cannot create {}: {e}", path.display())))
}
