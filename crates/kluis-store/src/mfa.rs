//! Second factors (TOTP enrolments, recovery codes), sign-in attempt counters and session
//! stages. Same rule as the rest of [`TenantTx`]: every statement binds `self.tenant` as `$1`.
//!
//! The statements that decide security questions are single atomic statements on both engines:
//! counting a sign-in attempt is one upsert returning the new count (so concurrent attempts get
//! distinct counts), accepting a TOTP step and spending a recovery code are conditional updates
//! whose row count says whether this caller won.

use crate::ids::{SessionId, UserId};
use crate::rows::{ThrottleRow, UserMfaRow};
use crate::{Result, TenantTx, on_conn};

/// Bucket of [`TenantTx::count_login_attempt`]: per account (email typed) or per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleBucket {
    Account,
    Ip,
}

impl ThrottleBucket {
    fn as_str(self) -> &'static str {
        match self {
            ThrottleBucket::Account => "account",
            ThrottleBucket::Ip => "ip",
        }
    }
}

impl TenantTx {
    // ---- enforced 2FA setting ---------------------------------------------------------

    /// Roles that must use a second factor, comma-separated; None when never set.
    pub async fn mfa_required_roles(&mut self) -> Result<Option<String>> {
        let t = self.tenant;
        Ok(
            on_conn!(&mut self.tx, |c| sqlx::query_scalar::<_, Option<String>>(
                "SELECT mfa_required_roles FROM tenant_settings WHERE tenant_id = $1"
            )
            .bind(t)
            .fetch_optional(c)
            .await?)
            .flatten(),
        )
    }

    /// Sets the roles; `policy_json` is the password policy to store if the tenant has no
    /// settings row yet.
    pub async fn put_mfa_required_roles(
        &mut self,
        roles: &str,
        policy_json: &str,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO tenant_settings (tenant_id, password_policy, mfa_required_roles, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id) DO UPDATE SET mfa_required_roles = excluded.mfa_required_roles, updated_at = excluded.updated_at",
            )
            .bind(t)
            .bind(policy_json)
            .bind(roles)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    // ---- TOTP enrolments --------------------------------------------------------------

    pub async fn user_mfa(&mut self, user: UserId) -> Result<Option<UserMfaRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT user_id, secret, created_at, confirmed_at, last_step FROM user_mfa \
             WHERE tenant_id = $1 AND user_id = $2"
        )
        .bind(t)
        .bind(user)
        .fetch_optional(c)
        .await?))
    }

    /// Stores a new, unconfirmed secret (replacing an earlier unconfirmed one). Returns false,
    /// changing nothing, when the user already has a confirmed enrolment.
    pub async fn put_unconfirmed_mfa(
        &mut self,
        user: UserId,
        sealed_secret: &[u8],
        now: i64,
    ) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO user_mfa (tenant_id, user_id, secret, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET secret = excluded.secret, \
                 created_at = excluded.created_at, confirmed_at = NULL, last_step = NULL \
                 WHERE user_mfa.confirmed_at IS NULL",
            )
            .bind(t)
            .bind(user)
            .bind(sealed_secret)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Confirms an unconfirmed enrolment, recording the step of the code that confirmed it.
    pub async fn confirm_mfa(&mut self, user: UserId, step: i64, now: i64) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE user_mfa SET confirmed_at = $4, last_step = $3 \
             WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NULL"
        )
        .bind(t)
        .bind(user)
        .bind(step)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Accepts TOTP `step` for a confirmed enrolment only if it is later than the last step
    /// accepted: of two requests with the same code, exactly one gets true.
    pub async fn accept_totp_step(&mut self, user: UserId, step: i64) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE user_mfa SET last_step = $3 WHERE tenant_id = $1 AND user_id = $2 \
             AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $3)"
        )
        .bind(t)
        .bind(user)
        .bind(step)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Removes a user's second factor and recovery codes. Returns whether one was confirmed.
    pub async fn delete_user_mfa(&mut self, user: UserId) -> Result<bool> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2"
        )
        .bind(t)
        .bind(user)
        .execute(c)
        .await?
        .rows_affected());
        let n = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "DELETE FROM user_mfa WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NOT NULL"
        )
        .bind(t)
        .bind(user)
        .execute(c)
        .await?
        .rows_affected()
        });
        on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM user_mfa WHERE tenant_id = $1 AND user_id = $2"
        )
        .bind(t)
        .bind(user)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Every enrolment's sealed secret (data-key rotation re-encrypts them; few rows).
    pub async fn mfa_secrets(&mut self) -> Result<Vec<(UserId, Vec<u8>)>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT user_id, secret FROM user_mfa WHERE tenant_id = $1 ORDER BY user_id"
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }

    /// Compare-and-swap of a sealed secret (see `reseal_users`).
    pub async fn reseal_mfa_secret(
        &mut self,
        user: UserId,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE user_mfa SET secret = $4 WHERE tenant_id = $1 AND user_id = $2 AND secret = $3"
        )
        .bind(t)
        .bind(user)
        .bind(old)
        .bind(new)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    // ---- recovery codes ---------------------------------------------------------------

    /// Replaces a user's recovery codes with these (keyed hashes).
    pub async fn replace_recovery_codes(
        &mut self,
        user: UserId,
        hashes: &[[u8; 32]],
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2"
        )
        .bind(t)
        .bind(user)
        .execute(c)
        .await?
        .rows_affected());
        for h in hashes {
            on_conn!(&mut self.tx, |c| {
                sqlx::query(
                "INSERT INTO mfa_recovery_codes (tenant_id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)"
            )
            .bind(t)
            .bind(user)
            .bind(h.as_slice())
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
            });
        }
        Ok(())
    }

    /// Spends a recovery code: true for exactly one caller, once.
    pub async fn use_recovery_code(&mut self, user: UserId, hash: &[u8], now: i64) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE mfa_recovery_codes SET used_at = $4 WHERE tenant_id = $1 AND user_id = $2 \
             AND code_hash = $3 AND used_at IS NULL"
        )
        .bind(t)
        .bind(user)
        .bind(hash)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    pub async fn recovery_codes_left(&mut self, user: UserId) -> Result<i64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query_scalar(
            "SELECT count(*) FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL"
        )
        .bind(t)
        .bind(user)
        .fetch_one(c)
        .await?
        }))
    }

    // ---- sign-in attempt counters -----------------------------------------------------

    /// Counts one more attempt for `subject` and returns the counter afterwards, in one
    /// statement: concurrent attempts each see a distinct count. A counter starts again at 1
    /// when its lock has ended, or (never locked) when its window began at or before
    /// `stale_before`.
    pub async fn count_login_attempt(
        &mut self,
        bucket: ThrottleBucket,
        subject: &[u8],
        now: i64,
        stale_before: i64,
    ) -> Result<ThrottleRow> {
        let t = self.tenant;
        const STALE: &str = "((login_throttle.locked_until IS NULL AND login_throttle.window_start <= $5) \
                             OR login_throttle.locked_until <= $4)";
        let sql = format!(
            "INSERT INTO login_throttle (tenant_id, bucket, subject, failures, window_start) \
             VALUES ($1, $2, $3, 1, $4) \
             ON CONFLICT (tenant_id, bucket, subject) DO UPDATE SET \
             failures = CASE WHEN {STALE} THEN 1 ELSE login_throttle.failures + 1 END, \
             window_start = CASE WHEN {STALE} THEN $4 ELSE login_throttle.window_start END, \
             locked_until = CASE WHEN {STALE} THEN NULL ELSE login_throttle.locked_until END \
             RETURNING failures, window_start, locked_until"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .bind(bucket.as_str())
        .bind(subject)
        .bind(now)
        .bind(stale_before)
        .fetch_one(c)
        .await?))
    }

    /// Locks `subject` until `until` unless it is locked already. True for the caller that
    /// locked it (who audits the lockout), false for everyone else.
    pub async fn lock_login(
        &mut self,
        bucket: ThrottleBucket,
        subject: &[u8],
        until: i64,
        now: i64,
    ) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE login_throttle SET locked_until = $4 WHERE tenant_id = $1 AND bucket = $2 \
             AND subject = $3 AND (locked_until IS NULL OR locked_until <= $5)"
        )
        .bind(t)
        .bind(bucket.as_str())
        .bind(subject)
        .bind(until)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Forgets `subject`'s counter (a successful sign-in, an admin unlock). Returns the counter
    /// as it was.
    pub async fn clear_login_attempts(
        &mut self,
        bucket: ThrottleBucket,
        subject: &[u8],
    ) -> Result<Option<ThrottleRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "DELETE FROM login_throttle WHERE tenant_id = $1 AND bucket = $2 AND subject = $3 \
             RETURNING failures, window_start, locked_until"
        )
        .bind(t)
        .bind(bucket.as_str())
        .bind(subject)
        .fetch_optional(c)
        .await?))
    }

    /// Takes back one counted attempt that turned out to be a success.
    pub async fn release_login_attempt(
        &mut self,
        bucket: ThrottleBucket,
        subject: &[u8],
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE login_throttle SET failures = failures - 1 WHERE tenant_id = $1 AND bucket = $2 \
             AND subject = $3 AND failures > 0"
        )
        .bind(t)
        .bind(bucket.as_str())
        .bind(subject)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    // ---- session stages ---------------------------------------------------------------

    /// Counts one code tried with a pending session; None (nothing counted) when the session
    /// is gone or has used `max` attempts.
    pub async fn count_session_mfa_attempt(
        &mut self,
        session: SessionId,
        max: i64,
    ) -> Result<Option<i64>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "UPDATE sessions SET mfa_attempts = mfa_attempts + 1 WHERE tenant_id = $1 AND id = $2 \
             AND revoked_at IS NULL AND mfa_attempts < $3 RETURNING mfa_attempts"
        )
        .bind(t)
        .bind(session)
        .bind(max)
        .fetch_optional(c)
        .await?))
    }

    pub async fn set_session_stage(&mut self, session: SessionId, stage: &str) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE sessions SET stage = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL"
        )
        .bind(t)
        .bind(session)
        .bind(stage)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    /// Revokes one live session of one user; false if the user has no such live session.
    pub async fn revoke_user_session(
        &mut self,
        user: UserId,
        session: SessionId,
        now: i64,
    ) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "UPDATE sessions SET revoked_at = $4 WHERE tenant_id = $1 AND id = $2 AND user_id = $3 \
             AND revoked_at IS NULL"
        )
        .bind(t)
        .bind(session)
        .bind(user)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }
}
