//! Tenant-scoped transaction. Every method binds `self.tenant` as `$1`: the tenant filter is
//! part of each statement, not something a caller supplies.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use crate::direct::ReadConn;
use crate::engine::Tx;
use crate::ids::{ApiKeyId, SessionId, TenantId, UserId};
use crate::rows::{
    ApiKeyMatch, ApiKeyRow, AuditCheckpointRow, AuditEventRef, AuditEventRow, AuditFilter,
    NewApiKey, NewAuditEvent, NewSession, NewUser, Reseal, SessionAuthRow, SessionRow,
    TenantKeyRow, UserPatch, UserRow,
};
use crate::{Result, on_conn};

/// Receives stored audit events one by one (see [`TenantTx::scan_audit_events`]); returns
/// false to stop.
pub trait AuditVisitor: Send + 'static {
    fn visit(&mut self, e: AuditEventRef<'_>) -> bool;
}

/// The audit log heads this process committed last, per tenant (SQLite only). A hint: the
/// insert trigger refuses an event whose seq is not the head, so a stale entry (another
/// process appended) costs a retry, never a wrong sequence number.
#[derive(Default)]
pub(crate) struct HeadCache(Mutex<HashMap<TenantId, i64>>);

impl HeadCache {
    fn get(&self, t: TenantId) -> Option<i64> {
        self.0.lock().ok().and_then(|m| m.get(&t).copied())
    }
    fn set(&self, t: TenantId, head: i64) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(t, head);
        }
    }
    fn forget(&self, t: TenantId) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&t);
        }
    }
}

/// Seal counts already written to `tenant_keys` but not yet used, per (tenant, data-key
/// version). Counting is conservative: a transaction that has to write a count reserves
/// [`SEAL_RESERVE`] more, and once it commits, later transactions of this process use the
/// reservation without touching `tenant_keys` (one dirty page less at each commit). The count
/// in the database is therefore never below the seals made; a crash or a rolled-back
/// transaction only leaves it higher, which makes the key rotate (before 2^31 of the 2^32
/// random-nonce limit) a little early at worst.
#[derive(Default)]
pub(crate) struct SealBudget(Mutex<HashMap<(TenantId, i64), i64>>);

/// Seals reserved with each count written.
pub const SEAL_RESERVE: i64 = 1024;

impl SealBudget {
    fn take(&self, t: TenantId, version: i64, n: i64) -> bool {
        let Ok(mut m) = self.0.lock() else {
            return false;
        };
        match m.get_mut(&(t, version)) {
            Some(left) if *left >= n => {
                *left -= n;
                true
            }
            _ => false,
        }
    }
    fn add(&self, t: TenantId, version: i64, n: i64) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry((t, version)).or_default() += n;
        }
    }
}

pub struct TenantTx {
    pub(crate) tx: Tx,
    pub(crate) tenant: TenantId,
    /// SQLite: the store's head cache, and this transaction's next sequence number once known
    /// (it holds the write lock, so nobody else appends meanwhile).
    heads: Option<Arc<HeadCache>>,
    audit_next: Option<i64>,
    /// Heads to publish to the cache at commit: (tenant, next seq).
    committed_heads: Vec<(TenantId, i64)>,
    /// The store's seal budget, and what this transaction reserved and has left of it:
    /// (tenant, version, left), published to the budget at commit.
    seals: Option<Arc<SealBudget>>,
    reserved: Vec<(TenantId, i64, i64)>,
    /// Seal counts per data-key version, written once at commit (one statement per
    /// transaction instead of one per sealing call).
    pending_sealed: Vec<(i64, i64)>,
}

const USER_COLS: &str =
    "tenant_id, id, email, display_name, role, status, password_hash, created_at, updated_at";
const SESSION_COLS: &str = "tenant_id, id, user_id, csrf_hash, ip, user_agent, created_at, last_seen_at, expires_at, revoked_at, stage";
const KEY_COLS: &str = "tenant_id, id, name, scopes, previous_valid_until, created_by, created_at, rotated_at, last_used_at, revoked_at";

/// The keyset condition on `id` after the cursor `$2`. Without a cursor it must not mention
/// `id`: `($2 IS NULL OR id > $2)` stops SQLite from seeking the primary key, so every page
/// scanned the tenant's rows from the start (quadratic over a full walk).
pub(crate) fn keyset(has_cursor: bool) -> &'static str {
    if has_cursor { "id > $2" } else { "$2 IS NULL" }
}

/// `cond` when its parameter `$n` is set, else `$n IS NULL` (still bound, so the numbering
/// stays). The form `($n IS NULL OR cond)` hides `cond` from SQLite's planner: no index seek on
/// it, whatever the bound value.
pub(crate) fn when_set(set: bool, cond: &str, n: u8) -> String {
    if set {
        cond.to_owned()
    } else {
        format!("${n} IS NULL")
    }
}

pub(crate) fn users_page_sql(has_cursor: bool) -> String {
    format!(
        "SELECT {USER_COLS} FROM users WHERE tenant_id = $1 AND {} ORDER BY id LIMIT $3",
        keyset(has_cursor)
    )
}

pub(crate) fn sessions_page_sql(has_cursor: bool) -> String {
    format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE tenant_id = $1 AND {} ORDER BY id LIMIT $3",
        keyset(has_cursor)
    )
}

pub(crate) fn api_keys_page_sql(has_cursor: bool) -> String {
    format!(
        "SELECT {KEY_COLS} FROM api_keys WHERE tenant_id = $1 AND {} ORDER BY id LIMIT $3",
        keyset(has_cursor)
    )
}

/// One page of audit events after the cursor `$2`; binds in [`TenantTx::audit_events`] order.
pub(crate) fn audit_page_sql(has_cursor: bool, f: &AuditFilter) -> String {
    format!(
        "SELECT seq, at, actor, action, outcome, object_type, object_id, details, leaf_hash FROM audit_events \
         WHERE tenant_id = $1 AND {} AND {} AND {} AND {} AND {} AND {} AND {} ORDER BY seq LIMIT $9",
        when_set(has_cursor, "seq > $2", 2),
        when_set(f.from.is_some(), "at >= $3", 3),
        when_set(f.to.is_some(), "at < $4", 4),
        when_set(f.actor.is_some(), "actor = $5", 5),
        when_set(f.action.is_some(), "action = $6", 6),
        when_set(f.object_id.is_some(), "object_id = $7", 7),
        when_set(f.ip_bidx.is_some(), "ip_bidx = $8", 8),
    )
}

/// The parameters of [`audit_page_sql`], in order (shared with the plan test).
macro_rules! bind_audit_page {
    ($q:expr, $t:expr, $after:expr, $f:expr, $limit:expr) => {{
        let f: &$crate::rows::AuditFilter = $f;
        $q.bind($t)
            .bind($after)
            .bind(f.from)
            .bind(f.to)
            .bind(f.actor.as_deref())
            .bind(f.action.as_deref())
            .bind(f.object_id.as_deref())
            .bind(f.ip_bidx.as_deref())
            .bind($limit)
    }};
}
#[cfg(feature = "testing")]
pub(crate) use bind_audit_page;

pub(crate) const AUDIT_LEAF_HASHES: &str = "SELECT seq, leaf_hash FROM audit_events WHERE tenant_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3";

// Statements run by both the sqlx path and the direct SQLite path (`direct.rs`): one text each.
// The direct path decodes columns by position, in the order of the column lists above.
static USER_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {USER_COLS} FROM users WHERE tenant_id = $1 AND id = $2"));
static SESSION_FOR_AUTH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, u.role AS user_role, u.status AS user_status, t.status AS tenant_status, \
         ts.mfa_required_roles AS mfa_required_roles \
         FROM sessions s JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id \
         JOIN tenants t ON t.id = s.tenant_id \
         LEFT JOIN tenant_settings ts ON ts.tenant_id = s.tenant_id \
         WHERE s.tenant_id = $1 AND s.token_hash = $2 AND s.revoked_at IS NULL",
        prefixed("s", SESSION_COLS)
    )
});
// Two index probes, current secret first. Written as `secret_hash = $2 OR
// previous_secret_hash = $2`, SQLite's planner walked all of the tenant's keys.
static API_KEY_BY_SECRET_HASH: LazyLock<String> = LazyLock::new(|| {
    let probe = |column: &str, via_previous: &str| {
        format!(
            "SELECT {}, {via_previous} AS via_previous, t.status AS tenant_status \
             FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.tenant_id = $1 AND k.{column} = $2 AND k.revoked_at IS NULL",
            prefixed("k", KEY_COLS)
        )
    };
    format!(
        "{} UNION ALL {} LIMIT 1",
        probe("secret_hash", "FALSE"),
        probe("previous_secret_hash", "TRUE")
    )
});
const TENANT_KEYS: &str = "SELECT purpose, version, wrapped, kek_id, state, sealed_count, created_at FROM tenant_keys \
     WHERE tenant_id = $1 ORDER BY purpose, version";
const DATA_KEY_MAX_VERSION: &str =
    "SELECT COALESCE(MAX(version), 0) FROM tenant_keys WHERE tenant_id = $1 AND purpose = 'data'";
const DATA_KEY_MIN_ENABLED: &str = "SELECT COALESCE(MIN(version), 0) FROM tenant_keys \
     WHERE tenant_id = $1 AND purpose = 'data' AND state <> 'disabled'";
const AUDIT_SIZE: &str = "SELECT COALESCE((SELECT size FROM audit_heads WHERE tenant_id = $1), 0)";
const AUDIT_TRUNCATION: &str = "SELECT truncated_before, truncation_range, truncation_note FROM audit_heads WHERE tenant_id = $1";
/// Every stored event from `$2` on, in sequence order (the verification scan).
const AUDIT_SCAN: &str = "SELECT seq, at, actor, action, outcome, object_type, object_id, details, leaf_hash FROM audit_events \
     WHERE tenant_id = $1 AND seq >= $2 ORDER BY seq";

const INSERT_AUDIT_EVENT: &str = "INSERT INTO audit_events (tenant_id, seq, at, actor, action, outcome, object_type, object_id, ip_bidx, details, leaf_hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const ADD_SEALED_COUNT: &str = "UPDATE tenant_keys SET sealed_count = sealed_count + $3 WHERE tenant_id = $1 AND purpose = 'data' AND version = $2";
/// SQLite: the event and the transaction's seal count in one round trip (two statements; the
/// update runs only if the insert succeeded).
static INSERT_AUDIT_EVENT_AND_SEAL_COUNT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{INSERT_AUDIT_EVENT}; {}",
        ADD_SEALED_COUNT.replace("$3", "$13").replace("$2", "$12")
    )
});

/// The SQLite insert trigger's refusal of a sequence number that is not the log head.
fn is_head_moved(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.message().contains("audit sequence is not the log head"))
}

/// `a, b` -> `r.a, r.b` with `prefix` `r.` (or unchanged with an empty prefix).
pub(crate) fn prefixed_cols(prefix: &str, cols: &str) -> String {
    if prefix.is_empty() {
        return cols.to_owned();
    }
    prefixed(prefix.trim_end_matches('.'), cols)
}

/// `a, b` -> `p.a, p.b` for joins.
fn prefixed(p: &str, cols: &str) -> String {
    cols.split(',')
        .map(|c| format!("{p}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TenantTx {
    pub(crate) async fn start(mut tx: Tx, tenant: TenantId) -> Result<Self> {
        if let Tx::Pg(t) = &mut tx {
            // Transaction-local (is_local = true): gone at COMMIT/ROLLBACK, so a pooled
            // connection never carries this tenant into the next request.
            Box::pin(
                sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
                    .bind(tenant.0.to_string())
                    .execute(&mut **t),
            )
            .await?;
        }
        Ok(TenantTx {
            tx,
            tenant,
            heads: None,
            audit_next: None,
            committed_heads: Vec::new(),
            seals: None,
            reserved: Vec::new(),
            pending_sealed: Vec::new(),
        })
    }

    pub(crate) fn with_caches(
        mut self,
        heads: Option<Arc<HeadCache>>,
        seals: Option<Arc<SealBudget>>,
    ) -> Self {
        self.heads = heads;
        self.seals = seals;
        self
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        !matches!(self.tx, Tx::Pg(_))
    }

    /// The direct SQLite read connection, when this is an SQLite read transaction.
    fn direct(&self) -> Option<&ReadConn> {
        match &self.tx {
            Tx::SqliteRead(r) => r.direct.as_ref(),
            _ => None,
        }
    }

    /// Moves this transaction to the platform audit log (the nil tenant) so that a platform
    /// change and its audit event commit together. The only tenant switch there is: it can
    /// never reach another customer's tenant.
    pub async fn into_platform_log(mut self) -> Result<TenantTx> {
        self.flush_sealed_counts().await?;
        let mut heads = std::mem::take(&mut self.committed_heads);
        heads.extend(self.audit_next.map(|n| (self.tenant, n)));
        let mut next = TenantTx::start(self.tx, TenantId::PLATFORM)
            .await?
            .with_caches(self.heads, self.seals);
        next.committed_heads = heads;
        next.reserved = self.reserved;
        Ok(next)
    }

    pub async fn commit(mut self) -> Result<()> {
        self.flush_sealed_counts().await?;
        self.tx.commit().await?;
        if let Some(budget) = &self.seals {
            for (t, version, left) in &self.reserved {
                budget.add(*t, *version, *left);
            }
        }
        if let Some(cache) = &self.heads {
            for (t, n) in self
                .committed_heads
                .iter()
                .chain(self.audit_next.map(|n| (self.tenant, n)).as_ref())
            {
                cache.set(*t, *n);
            }
        }
        Ok(())
    }

    async fn flush_sealed_counts(&mut self) -> Result<()> {
        let t = self.tenant;
        for (version, n) in std::mem::take(&mut self.pending_sealed) {
            on_conn!(&mut self.tx, |c| {
                sqlx::query(ADD_SEALED_COUNT)
                    .bind(t)
                    .bind(version)
                    .bind(n)
                    .execute(c)
                    .await?
                    .rows_affected()
            });
        }
        Ok(())
    }

    // ---- settings ---------------------------------------------------------------------

    pub async fn password_policy(&mut self) -> Result<Option<String>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT password_policy FROM tenant_settings WHERE tenant_id = $1"
        )
        .bind(t)
        .fetch_optional(c)
        .await?))
    }

    /// `block` or `flag`; None when never set.
    pub async fn sensitive_data_mode(&mut self) -> Result<Option<String>> {
        let t = self.tenant;
        Ok(
            on_conn!(&mut self.tx, |c| sqlx::query_scalar::<_, Option<String>>(
                "SELECT sensitive_data FROM tenant_settings WHERE tenant_id = $1"
            )
            .bind(t)
            .fetch_optional(c)
            .await?)
            .flatten(),
        )
    }

    /// Sets the sensitive-data mode; `policy_json` is the password policy to store if the
    /// tenant has no settings row yet.
    pub async fn put_sensitive_data_mode(
        &mut self,
        mode: &str,
        policy_json: &str,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, password_policy, sensitive_data, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE SET sensitive_data = excluded.sensitive_data, updated_at = excluded.updated_at"
        )
        .bind(t)
        .bind(policy_json)
        .bind(mode)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// The tenant's own trash retention in days; None when never set (the server's default).
    pub async fn trash_retention_days(&mut self) -> Result<Option<i64>> {
        let t = self.tenant;
        Ok(
            on_conn!(&mut self.tx, |c| sqlx::query_scalar::<_, Option<i64>>(
                "SELECT trash_retention_days FROM tenant_settings WHERE tenant_id = $1"
            )
            .bind(t)
            .fetch_optional(c)
            .await?)
            .flatten(),
        )
    }

    /// Sets (or with None, clears) the tenant's trash retention; `policy_json` is the password
    /// policy to store if the tenant has no settings row yet.
    pub async fn put_trash_retention_days(
        &mut self,
        days: Option<i64>,
        policy_json: &str,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, password_policy, trash_retention_days, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE SET trash_retention_days = excluded.trash_retention_days, updated_at = excluded.updated_at"
        )
        .bind(t)
        .bind(policy_json)
        .bind(days)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn put_password_policy(&mut self, policy_json: &str, now: i64) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, password_policy, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET password_policy = excluded.password_policy, updated_at = excluded.updated_at"
        )
        .bind(t)
        .bind(policy_json)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    // ---- users ------------------------------------------------------------------------

    pub async fn insert_user(&mut self, u: &NewUser<'_>) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO users (tenant_id, id, email_bidx, email, display_name, role, status, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $8, $3, $4, $5, 'active', $6, $7, $7)"
        )
        .bind(t)
        .bind(u.id)
        .bind(u.email)
        .bind(u.display_name)
        .bind(u.role)
        .bind(u.password_hash)
        .bind(u.now)
        .bind(u.email_bidx)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn user(&mut self, id: UserId) -> Result<Option<UserRow>> {
        let t = self.tenant;
        if let Some(d) = self.direct() {
            return d.user(&USER_BY_ID, t, id);
        }
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(USER_BY_ID.as_str())
        )
        .bind(t)
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    /// Looks a user up by the blind index of their normalised email.
    pub async fn user_by_email_index(&mut self, email_bidx: &[u8]) -> Result<Option<UserRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {USER_COLS} FROM users WHERE tenant_id = $1 AND email_bidx = $2");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(email_bidx)
        .fetch_optional(c)
        .await?))
    }

    /// Keyset pagination in id order (ids are time-ordered UUIDv7).
    pub async fn list_users(&mut self, after: Option<UserId>, limit: i64) -> Result<Vec<UserRow>> {
        let t = self.tenant;
        let sql = users_page_sql(after.is_some());
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    pub async fn count_active_users_with_role(&mut self, role: kluis_types::Role) -> Result<i64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT count(*) FROM users WHERE tenant_id = $1 AND role = $2 AND status = 'active'"
        )
        .bind(t)
        .bind(role)
        .fetch_one(c)
        .await?))
    }

    /// Returns false when no such user exists in this tenant.
    pub async fn update_user(&mut self, id: UserId, p: &UserPatch<'_>, now: i64) -> Result<bool> {
        let t = self.tenant;
        let r = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE users SET display_name = COALESCE($3, display_name), role = COALESCE($4, role), \
             status = COALESCE($5, status), password_hash = COALESCE($6, password_hash), updated_at = $7 \
             WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(p.display_name)
        .bind(p.role)
        .bind(p.status)
        .bind(p.password_hash)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(r == 1)
    }

    pub async fn delete_user(&mut self, id: UserId) -> Result<bool> {
        let t = self.tenant;
        let r = on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM users WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(r == 1)
    }

    // ---- sessions ---------------------------------------------------------------------

    pub async fn insert_session(&mut self, s: &NewSession<'_>) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO sessions (tenant_id, id, user_id, token_hash, csrf_hash, ip, user_agent, created_at, last_seen_at, expires_at, stage) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)"
        )
        .bind(t)
        .bind(s.id)
        .bind(s.user_id)
        .bind(s.token_hash)
        .bind(s.csrf_hash)
        .bind(s.ip)
        .bind(s.user_agent)
        .bind(s.now)
        .bind(s.expires_at)
        .bind(s.stage)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// A live (not revoked) session by token hash. Timeouts are policy and checked by the caller.
    pub async fn session_by_token_hash(&mut self, hash: &[u8]) -> Result<Option<SessionRow>> {
        let t = self.tenant;
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE tenant_id = $1 AND token_hash = $2 AND revoked_at IS NULL"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(hash)
        .fetch_optional(c)
        .await?))
    }

    /// A live session by token hash, joined with its user's role/status and the tenant's status.
    pub async fn session_for_auth(&mut self, hash: &[u8]) -> Result<Option<SessionAuthRow>> {
        let t = self.tenant;
        if let Some(d) = self.direct() {
            return d.session_for_auth(&SESSION_FOR_AUTH, t, hash);
        }
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(SESSION_FOR_AUTH.as_str())
        )
        .bind(t)
        .bind(hash)
        .fetch_optional(c)
        .await?))
    }

    pub async fn touch_session(&mut self, id: SessionId, now: i64) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE sessions SET last_seen_at = $3 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn revoke_session(&mut self, id: SessionId, now: i64) -> Result<bool> {
        let t = self.tenant;
        let r = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE sessions SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL"
        )
        .bind(t)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(r == 1)
    }

    /// Revokes every live session of a user, optionally keeping one (the caller's own).
    pub async fn revoke_user_sessions(
        &mut self,
        user: UserId,
        keep: Option<SessionId>,
        now: i64,
    ) -> Result<u64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE sessions SET revoked_at = $4 WHERE tenant_id = $1 AND user_id = $2 \
             AND revoked_at IS NULL AND ($3 IS NULL OR id <> $3)"
        )
        .bind(t)
        .bind(user)
        .bind(keep)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()))
    }

    pub async fn list_user_sessions(&mut self, user: UserId, now: i64) -> Result<Vec<SessionRow>> {
        let t = self.tenant;
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE tenant_id = $1 AND user_id = $2 \
             AND revoked_at IS NULL AND expires_at > $3 ORDER BY id"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(user)
        .bind(now)
        .fetch_all(c)
        .await?))
    }

    // ---- API keys ---------------------------------------------------------------------

    pub async fn insert_api_key(&mut self, k: &NewApiKey<'_>) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO api_keys (tenant_id, id, name, scopes, secret_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(t)
        .bind(k.id)
        .bind(k.name)
        .bind(k.scopes)
        .bind(k.secret_hash)
        .bind(k.created_by)
        .bind(k.now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// A non-revoked key whose current or previous (pre-rotation) secret has this hash.
    pub async fn api_key_by_secret_hash(&mut self, hash: &[u8]) -> Result<Option<ApiKeyMatch>> {
        let t = self.tenant;
        if let Some(d) = self.direct() {
            return d.api_key_by_secret_hash(&API_KEY_BY_SECRET_HASH, t, hash);
        }
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(API_KEY_BY_SECRET_HASH.as_str())
        )
        .bind(t)
        .bind(hash)
        .fetch_optional(c)
        .await?))
    }

    pub async fn api_key(&mut self, id: ApiKeyId) -> Result<Option<ApiKeyRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE tenant_id = $1 AND id = $2");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    pub async fn list_api_keys(
        &mut self,
        after: Option<ApiKeyId>,
        limit: i64,
    ) -> Result<Vec<ApiKeyRow>> {
        let t = self.tenant;
        let sql = api_keys_page_sql(after.is_some());
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    /// Replaces the secret; the old one stays valid until `previous_valid_until` (may be `now`).
    pub async fn rotate_api_key(
        &mut self,
        id: ApiKeyId,
        new_hash: &[u8],
        previous_valid_until: i64,
        now: i64,
    ) -> Result<bool> {
        let t = self.tenant;
        let r = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE api_keys SET previous_secret_hash = secret_hash, previous_valid_until = $4, \
             secret_hash = $3, rotated_at = $5 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL"
        )
        .bind(t)
        .bind(id)
        .bind(new_hash)
        .bind(previous_valid_until)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(r == 1)
    }

    pub async fn revoke_api_key(&mut self, id: ApiKeyId, now: i64) -> Result<bool> {
        let t = self.tenant;
        let r = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL"
        )
        .bind(t)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(r == 1)
    }

    pub async fn touch_api_key(&mut self, id: ApiKeyId, now: i64) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(t)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    // ---- keys -------------------------------------------------------------------------

    pub async fn tenant_keys(&mut self) -> Result<Vec<TenantKeyRow>> {
        let t = self.tenant;
        if let Some(d) = self.direct() {
            return d.tenant_keys(TENANT_KEYS, t);
        }
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_as(TENANT_KEYS).bind(t).fetch_all(c).await?
        }))
    }

    /// Adds a key version and retires the previous active one of the same purpose.
    pub async fn insert_tenant_key(
        &mut self,
        purpose: &str,
        version: i64,
        wrapped: &[u8],
        kek_id: &str,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE tenant_keys SET state = 'retired' WHERE tenant_id = $1 AND purpose = $2 AND state = 'active'"
        )
        .bind(t)
        .bind(purpose)
        .execute(&mut *c)
        .await?
        .rows_affected()
        });
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO tenant_keys (tenant_id, purpose, version, wrapped, kek_id, state, sealed_count, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'active', 0, $6)"
        )
        .bind(t)
        .bind(purpose)
        .bind(version)
        .bind(wrapped)
        .bind(kek_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Replaces a key's wrapping (KEK rotation); the key itself is unchanged.
    pub async fn rewrap_tenant_key(
        &mut self,
        purpose: &str,
        version: i64,
        wrapped: &[u8],
        kek_id: &str,
    ) -> Result<bool> {
        let t = self.tenant;
        let r = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE tenant_keys SET wrapped = $4, kek_id = $5 WHERE tenant_id = $1 AND purpose = $2 AND version = $3"
        )
        .bind(t)
        .bind(purpose)
        .bind(version)
        .bind(wrapped)
        .bind(kek_id)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(r == 1)
    }

    /// Counts values sealed under a data key version (random 96-bit nonces: rotate before 2^32).
    /// Accumulated in memory and written once, at commit; nothing is counted if the transaction
    /// rolls back (nothing was stored either).
    /// With the store's seal budget (see [`SealBudget`]) the count is conservative: uses are
    /// taken from a committed reservation where possible, otherwise counted together with a
    /// reservation of [`SEAL_RESERVE`] more.
    pub async fn add_sealed_count(&mut self, version: i64, n: i64) -> Result<()> {
        let t = self.tenant;
        let n = match &self.seals {
            None => n,
            Some(budget) => {
                if let Some(r) = self
                    .reserved
                    .iter_mut()
                    .find(|r| r.0 == t && r.1 == version && r.2 >= n)
                {
                    r.2 -= n;
                    return Ok(());
                }
                if budget.take(t, version, n) {
                    return Ok(());
                }
                self.reserved.push((t, version, SEAL_RESERVE));
                n + SEAL_RESERVE
            }
        };
        match self.pending_sealed.iter_mut().find(|(v, _)| *v == version) {
            Some((_, count)) => *count += n,
            None => self.pending_sealed.push((version, n)),
        }
        Ok(())
    }

    // ---- audit trail ------------------------------------------------------------------

    /// Reserves the next sequence number of this tenant's log; [`TenantTx::insert_audit_event`]
    /// must follow with that number.
    ///
    /// PostgreSQL: the `audit_heads` upsert takes a row lock, so concurrent appenders (other
    /// connections, other nodes) serialise on it. SQLite: the write transaction holds the
    /// database write lock, so the head cannot move under it; the head is known from this
    /// transaction's previous append, from the head this process committed last, or else read.
    /// The insert trigger advances the head and refuses any other number
    /// ([`crate::StoreError::AuditHeadMoved`]: ask again and rebuild the event).
    pub async fn audit_next_seq(&mut self) -> Result<i64> {
        let t = self.tenant;
        if let Tx::Sqlite(_) = &self.tx {
            if let Some(n) = self.audit_next {
                return Ok(n);
            }
            let n = match self.heads.as_ref().and_then(|h| h.get(t)) {
                Some(n) => n,
                None => on_conn!(&mut self.tx, |c| sqlx::query_scalar(AUDIT_SIZE)
                    .bind(t)
                    .fetch_one(c)
                    .await?),
            };
            self.audit_next = Some(n);
            return Ok(n);
        }
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "INSERT INTO audit_heads (tenant_id, size) VALUES ($1, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET size = audit_heads.size + 1 RETURNING size - 1"
        )
        .bind(t)
        .fetch_one(c)
        .await?))
    }

    /// Number of events appended so far (the head counter, independent of the rows).
    pub async fn audit_size(&mut self) -> Result<i64> {
        let t = self.tenant;
        if let Some(d) = self.direct() {
            return d.scalar_i64(AUDIT_SIZE, t);
        }
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(AUDIT_SIZE)
            .bind(t)
            .fetch_one(c)
            .await?))
    }

    /// Appends an event with the number [`TenantTx::audit_next_seq`] gave. On SQLite the seal
    /// count of this transaction goes to the database in the same round trip.
    pub async fn insert_audit_event(&mut self, e: &NewAuditEvent<'_>) -> Result<()> {
        let t = self.tenant;
        if let Tx::Sqlite(c) = &mut self.tx {
            let flush = self.pending_sealed.first().copied();
            let sql = match flush {
                Some(_) => INSERT_AUDIT_EVENT_AND_SEAL_COUNT.as_str(),
                None => INSERT_AUDIT_EVENT,
            };
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(t)
                .bind(e.seq)
                .bind(e.at)
                .bind(e.actor)
                .bind(e.action)
                .bind(e.outcome)
                .bind(e.object_type)
                .bind(e.object_id)
                .bind(e.ip_bidx)
                .bind(e.details)
                .bind(e.leaf_hash);
            if let Some((version, n)) = flush {
                q = q.bind(version).bind(n);
            }
            return match q.execute(&mut **c).await {
                Ok(_) => {
                    if flush.is_some() {
                        self.pending_sealed.remove(0);
                    }
                    self.audit_next = Some(e.seq + 1);
                    Ok(())
                }
                Err(err) if is_head_moved(&err) => {
                    self.audit_next = None;
                    if let Some(h) = &self.heads {
                        h.forget(t);
                    }
                    Err(crate::StoreError::AuditHeadMoved)
                }
                Err(err) => Err(err.into()),
            };
        }
        on_conn!(&mut self.tx, |c| {
            sqlx::query(INSERT_AUDIT_EVENT)
                .bind(t)
                .bind(e.seq)
                .bind(e.at)
                .bind(e.actor)
                .bind(e.action)
                .bind(e.outcome)
                .bind(e.object_type)
                .bind(e.object_id)
                .bind(e.ip_bidx)
                .bind(e.details)
                .bind(e.leaf_hash)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Reserves `n` consecutive sequence numbers of this tenant's log and returns the first;
    /// [`TenantTx::insert_audit_events`] must follow with exactly those.
    pub async fn audit_reserve(&mut self, n: i64) -> Result<i64> {
        let t = self.tenant;
        if let Tx::Sqlite(_) = &self.tx {
            // The insert trigger advances the head row by row.
            return self.audit_next_seq().await;
        }
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "INSERT INTO audit_heads (tenant_id, size) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET size = audit_heads.size + $2 RETURNING size - $2"
        )
        .bind(t)
        .bind(n)
        .fetch_one(c)
        .await?))
    }

    /// Appends consecutive events (numbers from [`TenantTx::audit_reserve`]), many per
    /// statement.
    pub async fn insert_audit_events(&mut self, es: &[NewAuditEvent<'_>]) -> Result<()> {
        let t = self.tenant;
        for chunk in es.chunks(crate::crm::BULK_ROWS) {
            let sql = format!(
                "INSERT INTO audit_events (tenant_id, seq, at, actor, action, outcome, object_type, object_id, ip_bidx, details, leaf_hash) VALUES {}",
                crate::crm::placeholders(self.is_sqlite(), chunk.len(), 11)
            );
            let res: std::result::Result<(), sqlx::Error> = on_conn!(&mut self.tx, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for e in chunk {
                    q = q
                        .bind(t)
                        .bind(e.seq)
                        .bind(e.at)
                        .bind(e.actor)
                        .bind(e.action)
                        .bind(e.outcome)
                        .bind(e.object_type)
                        .bind(e.object_id)
                        .bind(e.ip_bidx)
                        .bind(e.details)
                        .bind(e.leaf_hash);
                }
                q.execute(c).await.map(|_| ())
            });
            match res {
                Ok(()) => {
                    if let (Tx::Sqlite(_), Some(last)) = (&self.tx, chunk.last()) {
                        self.audit_next = Some(last.seq + 1);
                    }
                }
                Err(err) if is_head_moved(&err) => {
                    self.audit_next = None;
                    if let Some(h) = &self.heads {
                        h.forget(t);
                    }
                    return Err(crate::StoreError::AuditHeadMoved);
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Events in sequence order after `after` (exclusive), filtered.
    pub async fn audit_events(
        &mut self,
        after: Option<i64>,
        limit: i64,
        f: &AuditFilter,
    ) -> Result<Vec<AuditEventRow>> {
        let t = self.tenant;
        let sql = audit_page_sql(after.is_some(), f);
        Ok(on_conn!(&mut self.tx, |c| bind_audit_page!(
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())),
            t,
            after,
            f,
            limit
        )
        .fetch_all(c)
        .await?))
    }

    /// Visits every stored event with `seq >= from`, in sequence order, until `f` returns
    /// false; returns `f` (with whatever state it gathered). On an SQLite read transaction the
    /// scan is one statement on the direct connection, run on a blocking thread (it may take
    /// seconds; one statement, so one snapshot, shared with the other hot reads of a
    /// [`crate::TenantScope::begin_snapshot`] transaction); elsewhere it pages through
    /// [`TenantTx::audit_events`].
    pub async fn scan_audit_events<V: AuditVisitor>(&mut self, from: i64, mut v: V) -> Result<V> {
        let t = self.tenant;
        if let Tx::SqliteRead(r) = &mut self.tx
            && let Some(conn) = r.direct.take()
        {
            let (conn, v, res) = tokio::task::spawn_blocking(move || {
                let res = conn.scan_audit_events(AUDIT_SCAN, t, from, &mut |e| v.visit(e));
                (conn, v, res)
            })
            .await
            .map_err(|_| crate::StoreError::Corrupt("audit scan thread failed"))?;
            r.direct = Some(conn);
            res?;
            return Ok(v);
        }
        let mut after = from.checked_sub(1).filter(|a| *a >= 0);
        loop {
            let batch = self
                .audit_events(after, 5000, &AuditFilter::default())
                .await?;
            let Some(last) = batch.last() else {
                return Ok(v);
            };
            after = Some(last.seq);
            for r in &batch {
                if !v.visit(r.as_ref()) {
                    return Ok(v);
                }
            }
        }
    }

    pub async fn insert_audit_checkpoint(
        &mut self,
        size: i64,
        root: &[u8],
        note: &str,
        at: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO audit_checkpoints (tenant_id, size, root, note, at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, size) DO NOTHING"
        )
        .bind(t)
        .bind(size)
        .bind(root)
        .bind(note)
        .bind(at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// The newest event about `object_id` (state verification samples records this way).
    /// `seq + 0` keeps SQLite from walking the primary key backwards over the whole log
    /// instead of using the object index.
    pub async fn latest_audit_event_for(
        &mut self,
        object_id: &str,
    ) -> Result<Option<AuditEventRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_as(
            "SELECT seq, at, actor, action, outcome, object_type, object_id, details, leaf_hash FROM audit_events \
             WHERE tenant_id = $1 AND object_id = $2 AND outcome = 'success' ORDER BY seq + 0 DESC LIMIT 1"
        )
        .bind(t)
        .bind(object_id)
        .fetch_optional(c)
        .await?
        }))
    }

    /// The newest checkpoint only (the checkpoint timer asks often; the full list grows).
    pub async fn last_audit_checkpoint(&mut self) -> Result<Option<AuditCheckpointRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_as(
            "SELECT size, root, note, at FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1"
        )
        .bind(t)
        .fetch_optional(c)
        .await?
        }))
    }

    /// `(seq, leaf_hash)` of up to `limit` events from `from` on, in order: only what a root
    /// needs, without the sealed details.
    pub async fn audit_leaf_hashes(
        &mut self,
        from: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_as(AUDIT_LEAF_HASHES)
                .bind(t)
                .bind(from)
                .bind(limit)
                .fetch_all(c)
                .await?
        }))
    }

    pub async fn audit_checkpoints(&mut self) -> Result<Vec<AuditCheckpointRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT size, root, note, at FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY size"
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }

    // ---- test support -----------------------------------------------------------------

    /// Counts rows of a table WITHOUT the tenant filter. Exists only so tests can prove that
    /// PostgreSQL row-level security hides other tenants' rows even from an unfiltered query.
    #[cfg(feature = "testing")]
    pub async fn count_rows_unfiltered(&mut self, table: &str) -> Result<i64> {
        self.tx.count_rows_unfiltered(table).await
    }

    /// The `app.tenant_id` setting as this connection sees it (PostgreSQL; None on SQLite).
    #[cfg(feature = "testing")]
    pub async fn current_tenant_setting(&mut self) -> Result<Option<String>> {
        self.tx.current_tenant_setting().await
    }
}

impl TenantTx {
    /// Deletes every wrapped key of this tenant (crypto-shredding).
    pub async fn delete_tenant_keys(&mut self) -> Result<u64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM tenant_keys WHERE tenant_id = $1"
        )
        .bind(t)
        .execute(c)
        .await?
        .rows_affected()))
    }
}

/// Rows per `UPDATE` on PostgreSQL in [`TenantTx::reseal_users`] /
/// [`TenantTx::reseal_sessions`]: 5 parameters a row stays far below its limit of 65535.
const RESEAL_CHUNK: usize = 1000;

/// (id, old values, new values) of one row for `TenantTx::reseal`.
type ResealRow<'a> = (uuid::Uuid, [&'a [u8]; 2], [&'a [u8]; 2]);

impl TenantTx {
    /// Replaces users' sealed email and display name (data-key rotation re-encrypts them).
    /// Compare-and-swap: a row is written only if it still holds the `old` values, so a change
    /// made since they were read is never overwritten. Returns the rows written; fewer than
    /// given means some changed (or were deleted).
    pub async fn reseal_users(&mut self, rows: &[Reseal<'_, UserId>]) -> Result<u64> {
        let rows: Vec<_> = rows.iter().map(|r| (r.id.0, r.old, r.new)).collect();
        self.reseal("users", ["email", "display_name"], &rows).await
    }

    /// Sessions in id order after `after`, including ended ones (for re-encryption).
    pub async fn sessions_batch(
        &mut self,
        after: Option<SessionId>,
        limit: i64,
    ) -> Result<Vec<SessionRow>> {
        let t = self.tenant;
        let sql = sessions_page_sql(after.is_some());
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    /// Like [`TenantTx::reseal_users`] for sessions' sealed ip and user agent.
    pub async fn reseal_sessions(&mut self, rows: &[Reseal<'_, SessionId>]) -> Result<u64> {
        let rows: Vec<_> = rows.iter().map(|r| (r.id.0, r.old, r.new)).collect();
        self.reseal("sessions", ["ip", "user_agent"], &rows).await
    }

    /// The compare-and-swap of [`TenantTx::reseal_users`]. `table` and the column names are
    /// literals from this file, never input.
    ///
    /// PostgreSQL: one statement per [`RESEAL_CHUNK`] rows (`UPDATE .. FROM (VALUES ..)`),
    /// since every statement is a network round trip. SQLite: one prepared statement per row;
    /// in-process a statement costs no round trip, and SQLite 3.51 plans the `VALUES` join as a
    /// scan of the tenant's rows (measured 1.5-3x slower than per-row statements at 500 rows
    /// and 50,000 users, growing with the table).
    async fn reseal(
        &mut self,
        table: &'static str,
        [a, b]: [&'static str; 2],
        rows: &[ResealRow<'_>],
    ) -> Result<u64> {
        let t = self.tenant;
        let mut written = 0;
        if let Tx::Pg(c) = &mut self.tx {
            for chunk in rows.chunks(RESEAL_CHUNK) {
                let values = (0..chunk.len())
                    .map(|i| {
                        let p = 2 + 5 * i;
                        format!("(${}, ${}, ${}, ${}, ${})", p, p + 1, p + 2, p + 3, p + 4)
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "UPDATE {table} SET {a} = v.column4, {b} = v.column5 FROM (VALUES {values}) AS v \
                     WHERE {table}.tenant_id = $1 AND {table}.id = v.column1 \
                     AND {table}.{a} = v.column2 AND {table}.{b} = v.column3"
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(t);
                for (id, old, new) in chunk {
                    q = q
                        .bind(id)
                        .bind(old[0])
                        .bind(old[1])
                        .bind(new[0])
                        .bind(new[1]);
                }
                written += q.execute(&mut **c).await?.rows_affected();
            }
            return Ok(written);
        }
        let sql = format!(
            "UPDATE {table} SET {a} = $5, {b} = $6 \
             WHERE tenant_id = $1 AND id = $2 AND {a} = $3 AND {b} = $4"
        );
        for (id, old, new) in rows {
            written += on_conn!(&mut self.tx, |c| sqlx::query(sqlx::AssertSqlSafe(
                sql.clone()
            ))
            .bind(t)
            .bind(id)
            .bind(old[0])
            .bind(old[1])
            .bind(new[0])
            .bind(new[1])
            .execute(c)
            .await?
            .rows_affected());
        }
        Ok(written)
    }
}

impl TenantTx {
    /// Disables data-key versions below `min` for decrypting records (and re-enables retired
    /// versions at or above it). The active version is never touched.
    pub async fn set_min_decryption_version(&mut self, min: i64) -> Result<u64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE tenant_keys SET state = CASE WHEN version < $2 THEN 'disabled' ELSE 'retired' END \
             WHERE tenant_id = $1 AND purpose = 'data' AND state <> 'active'"
        )
        .bind(t)
        .bind(min)
        .execute(c)
        .await?
        .rows_affected()
        }))
    }

    /// Records with a sealed value NOT under data-key `version` (sealed format: byte 0 is the
    /// format, bytes 1..5 the key version, big-endian). Covers the same columns as the
    /// re-encryption job (`Kluis::reencrypt_tenant`); keep the two in step.
    pub async fn count_records_not_under(&mut self, version: u32) -> Result<i64> {
        let t = self.tenant;
        let v = version.to_be_bytes().to_vec();
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM users WHERE tenant_id = $1 \
                       AND (substr(email, 2, 4) <> $2 OR substr(display_name, 2, 4) <> $2)) \
                  + (SELECT COUNT(*) FROM sessions WHERE tenant_id = $1 \
                       AND (substr(ip, 2, 4) <> $2 OR substr(user_agent, 2, 4) <> $2)) \
                  + (SELECT COUNT(*) FROM crm_records WHERE tenant_id = $1 AND substr(fields, 2, 4) <> $2) \
                  + (SELECT COUNT(*) FROM crm_versions WHERE tenant_id = $1 AND substr(fields, 2, 4) <> $2) \
                  + (SELECT COUNT(*) FROM idempotency_keys WHERE tenant_id = $1 AND substr(response, 2, 4) <> $2) \
                  + (SELECT COUNT(*) FROM crm_custom_values WHERE tenant_id = $1 AND substr(value, 2, 4) <> $2) \
                  + (SELECT COUNT(*) FROM crm_tags WHERE tenant_id = $1 AND substr(name, 2, 4) <> $2) \
                  + (SELECT COUNT(*) FROM user_mfa WHERE tenant_id = $1 AND substr(secret, 2, 4) <> $2) \
                  + (SELECT COUNT(*) FROM sso_configs WHERE tenant_id = $1 AND substr(client_secret, 2, 4) <> $2) \
                  + (SELECT COUNT(*) FROM mail_outbox WHERE tenant_id = $1 AND status = 'pending' \
                       AND substr(message, 2, 4) <> $2) \
                  + (SELECT COUNT(*) FROM scim_users WHERE tenant_id = $1 AND substr(attrs, 2, 4) <> $2)",
            )
            .bind(t)
            .bind(v.clone())
            .fetch_one(c)
            .await?
        }))
    }

    /// (highest data-key version, lowest version not disabled for records): what a cached key
    /// ring is checked against.
    pub async fn data_key_versions(&mut self) -> Result<(i64, i64)> {
        let t = self.tenant;
        if let Some(d) = self.direct() {
            return Ok((
                d.scalar_i64(DATA_KEY_MAX_VERSION, t)?,
                d.scalar_i64(DATA_KEY_MIN_ENABLED, t)?,
            ));
        }
        let max = on_conn!(&mut self.tx, |c| {
            sqlx::query_scalar(DATA_KEY_MAX_VERSION)
                .bind(t)
                .fetch_one(c)
                .await?
        });
        let min = on_conn!(&mut self.tx, |c| {
            sqlx::query_scalar(DATA_KEY_MIN_ENABLED)
                .bind(t)
                .fetch_one(c)
                .await?
        });
        Ok((max, min))
    }
}

impl TenantTx {
    /// The retention truncation point of this log: (truncated_before, compact range, signed note).
    pub async fn audit_truncation(&mut self) -> Result<(i64, Option<String>, Option<String>)> {
        let t = self.tenant;
        if let Some(d) = self.direct() {
            return Ok(d
                .audit_truncation(AUDIT_TRUNCATION, t)?
                .unwrap_or((0, None, None)));
        }
        let row: Option<(i64, Option<String>, Option<String>)> = on_conn!(&mut self.tx, |c| {
            sqlx::query_as(AUDIT_TRUNCATION)
                .bind(t)
                .fetch_optional(c)
                .await?
        });
        Ok(row.unwrap_or((0, None, None)))
    }

    /// Records a new truncation point and removes the expired events below it (the database
    /// trigger refuses deletes at or above the recorded point).
    pub async fn truncate_audit_log(
        &mut self,
        before: i64,
        range: &str,
        note: &str,
    ) -> Result<u64> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE audit_heads SET truncated_before = $2, truncation_range = $3, truncation_note = $4 WHERE tenant_id = $1"
        )
        .bind(t)
        .bind(before)
        .bind(range)
        .bind(note)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM audit_events WHERE tenant_id = $1 AND seq < $2"
        )
        .bind(t)
        .bind(before)
        .execute(c)
        .await?
        .rows_affected()))
    }
}
