//! Support access: operators and their sessions (platform tables, [`PlatformTx`]) and the
//! grants that open one tenant to one operator ([`TenantTx`]: every statement binds
//! `self.tenant` as `$1`).

use sqlx::FromRow;

use crate::ids::{OperatorId, SupportGrantId, TenantId};
use crate::{PlatformTx, Result, TenantTx, on_conn};

#[derive(Debug, Clone, FromRow)]
pub struct OperatorRow {
    pub id: OperatorId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub totp_secret: Vec<u8>,
    pub last_totp_step: i64,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct SupportGrantRow {
    pub id: SupportGrantId,
    pub operator_id: OperatorId,
    pub operator_name: String,
    pub reason: String,
    pub access: String,
    pub hours: i64,
    pub status: String,
    pub requested_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub expires_at: Option<i64>,
    pub first_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// What the watching rules count for one operator since a moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct OperatorActivity {
    pub grants: i64,
    pub tenants: i64,
}

const OPERATOR_COLS: &str =
    "id, email, name, password_hash, totp_secret, last_totp_step, created_at, disabled_at";
const GRANT_COLS: &str = "id, operator_id, operator_name, reason, access, hours, status, \
                          requested_at, decided_at, decided_by, expires_at, first_used_at, revoked_at";

impl PlatformTx {
    pub async fn insert_operator(&mut self, o: &OperatorRow) -> Result<()> {
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO operators (id, email, name, password_hash, totp_secret, last_totp_step, \
                 created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(o.id)
            .bind(&o.email)
            .bind(&o.name)
            .bind(&o.password_hash)
            .bind(&o.totp_secret)
            .bind(o.last_totp_step)
            .bind(o.created_at)
            .bind(o.disabled_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn operator_by_email(&mut self, email: &str) -> Result<Option<OperatorRow>> {
        let sql = format!("SELECT {OPERATOR_COLS} FROM operators WHERE email = $1");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(email)
        .fetch_optional(c)
        .await?))
    }

    pub async fn operator(&mut self, id: OperatorId) -> Result<Option<OperatorRow>> {
        let sql = format!("SELECT {OPERATOR_COLS} FROM operators WHERE id = $1");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    pub async fn operators(&mut self) -> Result<Vec<OperatorRow>> {
        let sql = format!("SELECT {OPERATOR_COLS} FROM operators ORDER BY email");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .fetch_all(c)
        .await?))
    }

    /// Records that a TOTP step was used; false when it (or a later one) already was, so a
    /// code is accepted once.
    pub async fn use_operator_totp_step(&mut self, id: OperatorId, step: i64) -> Result<bool> {
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE operators SET last_totp_step = $2 WHERE id = $1 AND last_totp_step < $2"
        )
        .bind(id)
        .bind(step)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    pub async fn disable_operator(&mut self, id: OperatorId, now: i64) -> Result<bool> {
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE operators SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL"
        )
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        if n == 1 {
            on_conn!(&mut self.tx, |c| {
                sqlx::query(
                "UPDATE operator_sessions SET ended_at = $2 WHERE operator_id = $1 AND ended_at IS NULL"
            )
            .bind(id)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
            });
        }
        Ok(n == 1)
    }

    pub async fn insert_operator_session(
        &mut self,
        token_hash: &[u8],
        operator: OperatorId,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        on_conn!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO operator_sessions (token_hash, operator_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)"
        )
        .bind(token_hash)
        .bind(operator)
        .bind(now)
        .bind(expires_at)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The operator of a live session (not ended, not expired, operator not disabled).
    pub async fn operator_by_session(
        &mut self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<OperatorRow>> {
        let cols = OPERATOR_COLS
            .split(", ")
            .map(|c| format!("o.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols} FROM operator_sessions s JOIN operators o ON o.id = s.operator_id \
             WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2 \
             AND o.disabled_at IS NULL"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(c)
        .await?))
    }

    pub async fn end_operator_session(&mut self, token_hash: &[u8], now: i64) -> Result<bool> {
        let n = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE operator_sessions SET ended_at = $2 WHERE token_hash = $1 AND ended_at IS NULL"
        )
        .bind(token_hash)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn log_operator_grant(
        &mut self,
        grant: SupportGrantId,
        operator: OperatorId,
        tenant: TenantId,
        now: i64,
    ) -> Result<()> {
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO operator_grant_log (grant_id, operator_id, tenant_id, at) VALUES ($1, $2, $3, $4)"
        )
        .bind(grant)
        .bind(operator)
        .bind(tenant)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// The tenant a grant opens (from the grant log, which every grant is entered in).
    pub async fn grant_tenant(&mut self, grant: SupportGrantId) -> Result<Option<TenantId>> {
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT tenant_id FROM operator_grant_log WHERE grant_id = $1"
        )
        .bind(grant)
        .fetch_optional(c)
        .await?))
    }

    /// Grants asked for or received by `operator` since `since`, and in how many tenants.
    pub async fn operator_activity(
        &mut self,
        operator: OperatorId,
        since: i64,
    ) -> Result<OperatorActivity> {
        let (grants, tenants): (i64, i64) = on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT count(*), count(DISTINCT tenant_id) FROM operator_grant_log \
             WHERE operator_id = $1 AND at >= $2"
        )
        .bind(operator)
        .bind(since)
        .fetch_one(c)
        .await?);
        Ok(OperatorActivity { grants, tenants })
    }
}

impl TenantTx {
    pub async fn insert_support_grant(&mut self, g: &SupportGrantRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO support_grants (tenant_id, id, operator_id, operator_name, reason, access, \
                 hours, status, requested_at, decided_at, decided_by, expires_at, first_used_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(t)
            .bind(g.id)
            .bind(g.operator_id)
            .bind(&g.operator_name)
            .bind(&g.reason)
            .bind(&g.access)
            .bind(g.hours)
            .bind(&g.status)
            .bind(g.requested_at)
            .bind(g.decided_at)
            .bind(&g.decided_by)
            .bind(g.expires_at)
            .bind(g.first_used_at)
            .bind(g.revoked_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn support_grant(&mut self, id: SupportGrantId) -> Result<Option<SupportGrantRow>> {
        let t = self.tenant;
        let sql =
            format!("SELECT {GRANT_COLS} FROM support_grants WHERE tenant_id = $1 AND id = $2");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(id)
        .fetch_optional(c)
        .await?))
    }

    /// Newest first.
    pub async fn support_grants(&mut self, limit: i64) -> Result<Vec<SupportGrantRow>> {
        let t = self.tenant;
        let sql = format!(
            "SELECT {GRANT_COLS} FROM support_grants WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    /// Moves a grant from `from` to `to` (approve, refuse, revoke); false when it is not in
    /// `from` any more (a decision already taken, by someone else or by time).
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_support_grant(
        &mut self,
        id: SupportGrantId,
        from: &str,
        to: &str,
        by: &str,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE support_grants SET status = $4, \
               decided_at = CASE WHEN $3 = 'requested' THEN $6 ELSE decided_at END, \
               decided_by = CASE WHEN $3 = 'requested' THEN $5 ELSE decided_by END, \
               expires_at = COALESCE($7, expires_at), \
               revoked_at = CASE WHEN $4 = 'revoked' THEN $6 ELSE revoked_at END \
             WHERE tenant_id = $1 AND id = $2 AND status = $3"
        )
        .bind(t)
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(by)
        .bind(now)
        .bind(expires_at)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Stamps the first use; true only for the request that did it.
    pub async fn mark_support_grant_used(&mut self, id: SupportGrantId, now: i64) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE support_grants SET first_used_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND first_used_at IS NULL"
        )
        .bind(t)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }
}
