//! SQLite hot reads without a thread hop.
//!
//! sqlx-sqlite runs every statement on a per-connection worker thread: each statement is a
//! channel send, a futex wake-up and a wait for the answer, which costs 20-40 µs of CPU and
//! latency while SQLite itself needs a few µs for a point read from its page cache. For the
//! reads on every authenticated request (API key / session lookup, tenant keys, user by id)
//! and for the audit verification scan, [`ReadConn`] runs the statement on the calling thread
//! through `rusqlite`, which links the same `libsqlite3-sys` (one SQLite in the binary).
//!
//! Trade-off: the statement runs on the async runtime's thread. A WAL reader never waits for
//! the writer, so a point read is bounded by SQLite's own work (µs from the page cache, a disk
//! read on a cold page); only WAL recovery can make it wait (busy timeout). Long scans (the
//! audit verification) are moved to a blocking thread by the caller.
//!
//! Tenant scoping is unchanged: these functions are private to the store and only called from
//! [`crate::TenantTx`] methods, which pass the transaction's own tenant as `$1`. The SQL text is
//! shared with the sqlx path (constants in `tenant.rs`). Connections are opened read-only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Row, ToSql};

use crate::Result;
use crate::StoreError;
use crate::ids::{ApiKeyId, SessionId, TenantId, UserId};
use crate::rows::{
    ApiKeyMatch, ApiKeyRow, AuditEventRef, SessionAuthRow, SessionRow, TenantKeyRow, UserRow,
};

/// `audit_heads` retention columns: (truncated_before, compact range, signed note).
pub(crate) type Truncation = (i64, Option<String>, Option<String>);

/// Idle read-only connections kept for reuse.
const KEEP_IDLE: usize = 8;

/// A small pool of read-only rusqlite connections to one database file.
#[derive(Clone)]
pub(crate) struct DirectPool {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl DirectPool {
    pub(crate) fn new(path: &Path) -> Self {
        DirectPool {
            path: Arc::new(path.to_path_buf()),
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn open(&self) -> Result<Connection> {
        let c = Connection::open_with_flags(
            self.path.as_path(),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(Duration::from_secs(10))?;
        c.set_prepared_statement_cache_capacity(32);
        Ok(c)
    }

    /// A connection; with `snapshot`, inside a deferred read transaction, so that every
    /// statement run through it sees one snapshot (taken at its first read) until it is
    /// returned. Without, each statement reads the latest committed state on its own.
    pub(crate) fn get(&self, snapshot: bool) -> Result<ReadConn> {
        let reused = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match reused {
            Some(c) => c,
            None => self.open()?,
        };
        if snapshot {
            // Cached: parsed anew, BEGIN and ROLLBACK cost as much as a point read.
            conn.prepare_cached("BEGIN")?.execute([])?;
        }
        Ok(ReadConn {
            conn: Some(conn),
            pool: self.clone(),
        })
    }
}

pub(crate) struct ReadConn {
    conn: Option<Connection>,
    pool: DirectPool,
}

impl Drop for ReadConn {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take()
            // A connection that cannot end its transaction is not reused.
            && (c.is_autocommit() || c.prepare_cached("ROLLBACK").and_then(|mut st| st.execute([])).is_ok())
            && let Ok(mut idle) = self.pool.idle.lock()
            && idle.len() < KEEP_IDLE
        {
            idle.push(c);
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Direct(e)
    }
}

fn corrupt(what: &'static str) -> impl Fn(rusqlite::types::FromSqlError) -> StoreError {
    move |_| StoreError::Corrupt(what)
}

fn uuid_at(row: &Row<'_>, i: usize, what: &'static str) -> Result<uuid::Uuid> {
    let b = row.get_ref(i)?.as_blob().map_err(corrupt(what))?;
    uuid::Uuid::from_slice(b).map_err(|_| StoreError::Corrupt(what))
}

fn opt_uuid_at(row: &Row<'_>, i: usize, what: &'static str) -> Result<Option<uuid::Uuid>> {
    match row.get_ref(i)?.as_blob_or_null().map_err(corrupt(what))? {
        None => Ok(None),
        Some(b) => uuid::Uuid::from_slice(b)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(what)),
    }
}

fn i64_at(row: &Row<'_>, i: usize, what: &'static str) -> Result<i64> {
    row.get_ref(i)?.as_i64().map_err(corrupt(what))
}

fn opt_i64_at(row: &Row<'_>, i: usize, what: &'static str) -> Result<Option<i64>> {
    row.get_ref(i)?.as_i64_or_null().map_err(corrupt(what))
}

fn str_at<'r>(row: &'r Row<'_>, i: usize, what: &'static str) -> Result<&'r str> {
    row.get_ref(i)?.as_str().map_err(corrupt(what))
}

/// A text column holding one of a fixed set (role, status): a value outside it is corruption.
fn parsed_at<T: std::str::FromStr>(row: &Row<'_>, i: usize, what: &'static str) -> Result<T> {
    str_at(row, i, what)?
        .parse()
        .map_err(|_| StoreError::Corrupt(what))
}

fn opt_str_at<'r>(row: &'r Row<'_>, i: usize, what: &'static str) -> Result<Option<&'r str>> {
    row.get_ref(i)?.as_str_or_null().map_err(corrupt(what))
}

fn blob_at<'r>(row: &'r Row<'_>, i: usize, what: &'static str) -> Result<&'r [u8]> {
    row.get_ref(i)?.as_blob().map_err(corrupt(what))
}

/// Columns in `KEY_COLS` order, starting at `at`.
fn api_key_row(row: &Row<'_>, at: usize) -> Result<ApiKeyRow> {
    const W: &str = "api_keys";
    Ok(ApiKeyRow {
        tenant_id: TenantId(uuid_at(row, at, W)?),
        id: ApiKeyId(uuid_at(row, at + 1, W)?),
        name: str_at(row, at + 2, W)?.to_owned(),
        scopes: str_at(row, at + 3, W)?.to_owned(),
        previous_valid_until: opt_i64_at(row, at + 4, W)?,
        created_by: opt_uuid_at(row, at + 5, W)?.map(UserId),
        created_at: i64_at(row, at + 6, W)?,
        rotated_at: opt_i64_at(row, at + 7, W)?,
        last_used_at: opt_i64_at(row, at + 8, W)?,
        revoked_at: opt_i64_at(row, at + 9, W)?,
    })
}

/// Columns in `SESSION_COLS` order, starting at `at`.
fn session_row(row: &Row<'_>, at: usize) -> Result<SessionRow> {
    const W: &str = "sessions";
    Ok(SessionRow {
        tenant_id: TenantId(uuid_at(row, at, W)?),
        id: SessionId(uuid_at(row, at + 1, W)?),
        user_id: UserId(uuid_at(row, at + 2, W)?),
        csrf_hash: blob_at(row, at + 3, W)?.to_vec(),
        ip: blob_at(row, at + 4, W)?.to_vec(),
        user_agent: blob_at(row, at + 5, W)?.to_vec(),
        created_at: i64_at(row, at + 6, W)?,
        last_seen_at: i64_at(row, at + 7, W)?,
        expires_at: i64_at(row, at + 8, W)?,
        revoked_at: opt_i64_at(row, at + 9, W)?,
        stage: str_at(row, at + 10, W)?.to_owned(),
    })
}

/// Columns in `USER_COLS` order.
fn user_row(row: &Row<'_>) -> Result<UserRow> {
    const W: &str = "users";
    Ok(UserRow {
        tenant_id: TenantId(uuid_at(row, 0, W)?),
        id: UserId(uuid_at(row, 1, W)?),
        email: blob_at(row, 2, W)?.to_vec(),
        display_name: blob_at(row, 3, W)?.to_vec(),
        role: parsed_at(row, 4, W)?,
        status: parsed_at(row, 5, W)?,
        password_hash: opt_str_at(row, 6, W)?.map(str::to_owned),
        created_at: i64_at(row, 7, W)?,
        updated_at: i64_at(row, 8, W)?,
    })
}

impl ReadConn {
    fn conn(&self) -> Result<&Connection> {
        self.conn
            .as_ref()
            .ok_or(StoreError::Corrupt("direct connection already returned"))
    }

    /// One row (or none) of `sql`, decoded by `f`.
    fn one<T>(
        &self,
        sql: &str,
        params: &[(&str, &dyn ToSql)],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut stmt = self.conn()?.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        match rows.next()? {
            Some(r) => f(r).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn api_key_by_secret_hash(
        &self,
        sql: &str,
        t: TenantId,
        hash: &[u8],
    ) -> Result<Option<ApiKeyMatch>> {
        let tb = t.0.as_bytes().as_slice();
        self.one(sql, &[("$1", &tb), ("$2", &hash)], |r| {
            let key = api_key_row(r, 0)?;
            Ok(ApiKeyMatch {
                key,
                via_previous: i64_at(r, 10, "api_keys")? != 0,
                tenant_status: parsed_at(r, 11, "tenants")?,
            })
        })
    }

    pub(crate) fn session_for_auth(
        &self,
        sql: &str,
        t: TenantId,
        hash: &[u8],
    ) -> Result<Option<SessionAuthRow>> {
        let tb = t.0.as_bytes().as_slice();
        self.one(sql, &[("$1", &tb), ("$2", &hash)], |r| {
            Ok(SessionAuthRow {
                session: session_row(r, 0)?,
                user_role: parsed_at(r, 11, "users")?,
                user_status: parsed_at(r, 12, "users")?,
                tenant_status: parsed_at(r, 13, "tenants")?,
                mfa_required_roles: opt_str_at(r, 14, "tenant_settings")?.map(str::to_owned),
            })
        })
    }

    pub(crate) fn user(&self, sql: &str, t: TenantId, id: UserId) -> Result<Option<UserRow>> {
        let (tb, ib) = (t.0.as_bytes().as_slice(), id.0.as_bytes().as_slice());
        self.one(sql, &[("$1", &tb), ("$2", &ib)], user_row)
    }

    pub(crate) fn tenant_keys(&self, sql: &str, t: TenantId) -> Result<Vec<TenantKeyRow>> {
        const W: &str = "tenant_keys";
        let tb = t.0.as_bytes().as_slice();
        let mut stmt = self.conn()?.prepare_cached(sql)?;
        let mut rows = stmt.query(&[("$1", &tb as &dyn ToSql)][..])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(TenantKeyRow {
                purpose: str_at(r, 0, W)?.to_owned(),
                version: i64_at(r, 1, W)?,
                wrapped: blob_at(r, 2, W)?.to_vec(),
                kek_id: str_at(r, 3, W)?.to_owned(),
                state: str_at(r, 4, W)?.to_owned(),
                sealed_count: i64_at(r, 5, W)?,
                created_at: i64_at(r, 6, W)?,
            });
        }
        Ok(out)
    }

    /// A single integer (`SELECT COALESCE(...)` style statements that always return a row).
    pub(crate) fn scalar_i64(&self, sql: &str, t: TenantId) -> Result<i64> {
        let tb = t.0.as_bytes().as_slice();
        self.one(sql, &[("$1", &tb)], |r| i64_at(r, 0, "scalar"))?
            .ok_or(StoreError::Corrupt("scalar query returned no row"))
    }

    pub(crate) fn audit_truncation(&self, sql: &str, t: TenantId) -> Result<Option<Truncation>> {
        const W: &str = "audit_heads";
        let tb = t.0.as_bytes().as_slice();
        self.one(sql, &[("$1", &tb)], |r| {
            Ok((
                i64_at(r, 0, W)?,
                opt_str_at(r, 1, W)?.map(str::to_owned),
                opt_str_at(r, 2, W)?.map(str::to_owned),
            ))
        })
    }

    /// Streams events with `seq >= from` in sequence order to `f` (borrowed, no allocation per
    /// row) until `f` returns false. One statement, so one snapshot.
    pub(crate) fn scan_audit_events(
        &self,
        sql: &str,
        t: TenantId,
        from: i64,
        f: &mut dyn FnMut(AuditEventRef<'_>) -> bool,
    ) -> Result<()> {
        const W: &str = "audit_events";
        let tb = t.0.as_bytes().as_slice();
        let mut stmt = self.conn()?.prepare_cached(sql)?;
        let mut rows = stmt.query(&[("$1", &tb as &dyn ToSql), ("$2", &from)][..])?;
        while let Some(r) = rows.next()? {
            let ev = AuditEventRef {
                seq: i64_at(r, 0, W)?,
                at: i64_at(r, 1, W)?,
                actor: str_at(r, 2, W)?,
                action: str_at(r, 3, W)?,
                outcome: str_at(r, 4, W)?,
                object_type: opt_str_at(r, 5, W)?,
                object_id: opt_str_at(r, 6, W)?,
                details: blob_at(r, 7, W)?,
                leaf_hash: blob_at(r, 8, W)?,
            };
            if !f(ev) {
                break;
            }
        }
        Ok(())
    }
}
