//! One-time account links (`user_tokens`), the mail outbox and locale settings. Same rule as
//! the rest of [`TenantTx`]: every statement binds `self.tenant` as `$1`.

use sqlx::FromRow;
use uuid::Uuid;

use crate::ids::UserId;
use crate::{Result, TenantTx, on_conn};

/// A message waiting in (or done with) the outbox.
#[derive(Debug, Clone, FromRow)]
pub struct OutboxRow {
    pub id: Uuid,
    pub kind: String,
    /// Sealed; empty once the message is sent or has failed for good.
    pub message: Vec<u8>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
}

impl TenantTx {
    // ---- locale -----------------------------------------------------------------------

    /// The tenant's default language for emails (`en` when never set).
    pub async fn tenant_locale(&mut self) -> Result<Option<String>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT locale FROM tenant_settings WHERE tenant_id = $1"
        )
        .bind(t)
        .fetch_optional(c)
        .await?))
    }

    /// Sets the tenant's default language; `policy_json` is stored if the tenant has no
    /// settings row yet.
    pub async fn put_tenant_locale(
        &mut self,
        locale: &str,
        policy_json: &str,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO tenant_settings (tenant_id, password_policy, locale, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id) DO UPDATE SET locale = excluded.locale, updated_at = excluded.updated_at",
            )
            .bind(t)
            .bind(policy_json)
            .bind(locale)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// The user's own language, if they chose one.
    pub async fn user_locale(&mut self, user: UserId) -> Result<Option<String>> {
        let t = self.tenant;
        Ok(
            on_conn!(&mut self.tx, |c| sqlx::query_scalar::<_, Option<String>>(
                "SELECT locale FROM users WHERE tenant_id = $1 AND id = $2"
            )
            .bind(t)
            .bind(user)
            .fetch_optional(c)
            .await?)
            .flatten(),
        )
    }

    pub async fn set_user_locale(&mut self, user: UserId, locale: Option<&str>) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query("UPDATE users SET locale = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(t)
                .bind(user)
                .bind(locale)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    // ---- one-time links ---------------------------------------------------------------

    pub async fn insert_user_token(
        &mut self,
        hash: &[u8],
        user: UserId,
        kind: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO user_tokens (tenant_id, token_hash, user_id, kind, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(t)
            .bind(hash)
            .bind(user)
            .bind(kind)
            .bind(now)
            .bind(expires_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Links of one kind a user could still use.
    pub async fn count_live_user_tokens(
        &mut self,
        user: UserId,
        kind: &str,
        now: i64,
    ) -> Result<i64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM user_tokens WHERE tenant_id = $1 AND user_id = $2 AND kind = $3 \
             AND used_at IS NULL AND expires_at > $4"
        )
        .bind(t)
        .bind(user)
        .bind(kind)
        .bind(now)
        .fetch_one(c)
        .await?))
    }

    /// Marks a live link used and returns its user; None if unknown, expired, used or of
    /// another kind. One statement, so two concurrent uses cannot both succeed.
    pub async fn consume_user_token(
        &mut self,
        hash: &[u8],
        kind: &str,
        now: i64,
    ) -> Result<Option<UserId>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_scalar(
            "UPDATE user_tokens SET used_at = $4 WHERE tenant_id = $1 AND token_hash = $2 AND kind = $3 \
             AND used_at IS NULL AND expires_at > $4 RETURNING user_id"
        )
        .bind(t)
        .bind(hash)
        .bind(kind)
        .bind(now)
        .fetch_optional(c)
        .await?
        }))
    }

    /// Deletes a user's links (of one kind, or all): after a password change, or when an
    /// invitation is sent again. Returns how many were deleted.
    pub async fn delete_user_tokens(&mut self, user: UserId, kind: Option<&str>) -> Result<u64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "DELETE FROM user_tokens WHERE tenant_id = $1 AND user_id = $2 AND ($3 IS NULL OR kind = $3)"
        )
        .bind(t)
        .bind(user)
        .bind(kind)
        .execute(c)
        .await?
        .rows_affected()
        }))
    }

    /// Removes links that expired before `before` (housekeeping).
    pub async fn purge_user_tokens(&mut self, before: i64) -> Result<u64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM user_tokens WHERE tenant_id = $1 AND expires_at < $2"
        )
        .bind(t)
        .bind(before)
        .execute(c)
        .await?
        .rows_affected()))
    }

    // ---- outbox -----------------------------------------------------------------------

    pub async fn insert_outbox(
        &mut self,
        id: Uuid,
        kind: &str,
        sealed_message: &[u8],
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO mail_outbox (tenant_id, id, kind, message, status, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
            )
            .bind(t)
            .bind(id)
            .bind(kind)
            .bind(sealed_message)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Pending messages due at `now`, oldest first.
    pub async fn due_outbox(&mut self, now: i64, limit: i64) -> Result<Vec<OutboxRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT id, kind, message, status, attempts, next_attempt_at FROM mail_outbox \
             WHERE tenant_id = $1 AND status = 'pending' AND next_attempt_at <= $2 \
             ORDER BY next_attempt_at, id LIMIT $3"
        )
        .bind(t)
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await?))
    }

    /// When the next pending message falls due, if any.
    pub async fn next_outbox_due(&mut self) -> Result<Option<i64>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM mail_outbox WHERE tenant_id = $1 AND status = 'pending'"
        )
        .bind(t)
        .fetch_one(c)
        .await?
        }))
    }

    /// Claims a due message for one delivery attempt: counts the attempt and moves its next
    /// attempt to `lease_until`, so another sender (or this one after a crash) retries only
    /// once the lease ran out. False if someone else claimed it first.
    pub async fn claim_outbox(&mut self, id: Uuid, now: i64, lease_until: i64) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $4 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND next_attempt_at <= $3"
        )
        .bind(t)
        .bind(id)
        .bind(now)
        .bind(lease_until)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Final state: `sent` or `failed`. The sealed message is emptied (it may hold a link
    /// secret and holds personal data; nothing needs it any more).
    pub async fn finish_outbox(
        &mut self,
        id: Uuid,
        status: &str,
        error: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "UPDATE mail_outbox SET status = $3, last_error = $4, finished_at = $5, message = $6 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(t)
            .bind(id)
            .bind(status)
            .bind(error)
            .bind(now)
            .bind(Vec::<u8>::new())
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// A failed attempt that will be retried at `next_attempt_at`.
    pub async fn retry_outbox(
        &mut self,
        id: Uuid,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "UPDATE mail_outbox SET last_error = $3, next_attempt_at = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
            )
            .bind(t)
            .bind(id)
            .bind(error)
            .bind(next_attempt_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Deletes messages that reached a final state before `before` (their content is gone
    /// already; this removes the bookkeeping).
    pub async fn purge_outbox(&mut self, before: i64) -> Result<u64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "DELETE FROM mail_outbox WHERE tenant_id = $1 AND status <> 'pending' AND finished_at < $2"
        )
        .bind(t)
        .bind(before)
        .execute(c)
        .await?
        .rows_affected()
        }))
    }

    /// Every outbox row as (status, attempts, bytes of sealed message left), oldest first.
    pub async fn outbox_status(&mut self) -> Result<Vec<(String, i64, i64)>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT status, attempts, CAST(length(message) AS BIGINT) FROM mail_outbox \
             WHERE tenant_id = $1 ORDER BY created_at, id"
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }
}
