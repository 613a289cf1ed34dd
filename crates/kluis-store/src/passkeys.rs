//! Passkeys (WebAuthn credentials) and WebAuthn ceremonies in flight. Same rule as the rest of
//! [`TenantTx`]: every statement binds `self.tenant` as `$1`.
//!
//! Taking a ceremony is one `DELETE ... RETURNING` (used at most once, even when two finishes
//! race), and recording a passkey's use is one conditional update on the sign counter (of two
//! assertions with the same counter, only one wins).

use sqlx::FromRow;
use uuid::Uuid;

use crate::ids::{SessionId, UserId};
use crate::{Result, TenantTx, on_conn};

/// A registered passkey.
#[derive(Debug, Clone, FromRow)]
pub struct PasskeyRow {
    pub id: Uuid,
    pub user_id: UserId,
    pub cred_hash: Vec<u8>,
    pub name: String,
    /// The webauthn-rs `Passkey`, JSON.
    pub passkey: String,
    pub sign_count: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A ceremony in flight.
#[derive(Debug, Clone, FromRow)]
pub struct CeremonyRow {
    pub purpose: String,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    /// webauthn-rs state, JSON.
    pub state: String,
    pub expires_at: i64,
}

/// A ceremony to store.
pub struct NewCeremony<'a> {
    pub id_hash: &'a [u8],
    /// `register`, `second_factor` or `passwordless`.
    pub purpose: &'a str,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub state: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

const COLS: &str = "id, user_id, cred_hash, name, passkey, sign_count, created_at, last_used_at";

impl TenantTx {
    /// Stores a ceremony and drops this tenant's expired ones. Returns how many are in flight
    /// now (a bound on what anonymous callers can make the server store).
    pub async fn insert_webauthn_ceremony(&mut self, c: &NewCeremony<'_>) -> Result<i64> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |conn| {
            sqlx::query("DELETE FROM webauthn_ceremonies WHERE tenant_id = $1 AND expires_at <= $2")
                .bind(t)
                .bind(c.now)
                .execute(conn)
                .await?
                .rows_affected()
        });
        on_conn!(&mut self.tx, |conn| {
            sqlx::query(
                "INSERT INTO webauthn_ceremonies (tenant_id, id_hash, purpose, user_id, session_id, \
                 state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(t)
            .bind(c.id_hash)
            .bind(c.purpose)
            .bind(c.user_id)
            .bind(c.session_id)
            .bind(c.state)
            .bind(c.now)
            .bind(c.expires_at)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(on_conn!(&mut self.tx, |conn| sqlx::query_scalar(
            "SELECT count(*) FROM webauthn_ceremonies WHERE tenant_id = $1"
        )
        .bind(t)
        .fetch_one(conn)
        .await?))
    }

    /// Removes and returns a ceremony in one statement: it is used at most once, whatever the
    /// outcome of its finish.
    pub async fn take_webauthn_ceremony(&mut self, id_hash: &[u8]) -> Result<Option<CeremonyRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "DELETE FROM webauthn_ceremonies WHERE tenant_id = $1 AND id_hash = $2 \
             RETURNING purpose, user_id, session_id, state, expires_at"
        )
        .bind(t)
        .bind(id_hash)
        .fetch_optional(c)
        .await?))
    }

    /// Stores a new passkey; false (nothing stored) when its credential id is registered
    /// already in this tenant.
    #[expect(
        clippy::too_many_arguments,
        reason = "the columns of one row; a struct would only rename them"
    )]
    pub async fn insert_passkey(
        &mut self,
        id: Uuid,
        user: UserId,
        cred_hash: &[u8],
        name: &str,
        passkey: &str,
        sign_count: i64,
        now: i64,
    ) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO passkeys (tenant_id, id, user_id, cred_hash, name, passkey, sign_count, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant_id, cred_hash) DO NOTHING"
        )
        .bind(t)
        .bind(id)
        .bind(user)
        .bind(cred_hash)
        .bind(name)
        .bind(passkey)
        .bind(sign_count)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(n == 1)
    }

    /// A user's passkeys, oldest first.
    pub async fn user_passkeys(&mut self, user: UserId) -> Result<Vec<PasskeyRow>> {
        let t = self.tenant;
        let sql = format!(
            "SELECT {COLS} FROM passkeys WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, id"
        );
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(t)
        .bind(user)
        .fetch_all(c)
        .await?))
    }

    pub async fn count_user_passkeys(&mut self, user: UserId) -> Result<i64> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT count(*) FROM passkeys WHERE tenant_id = $1 AND user_id = $2"
        )
        .bind(t)
        .bind(user)
        .fetch_one(c)
        .await?))
    }

    pub async fn passkey_by_cred(&mut self, cred_hash: &[u8]) -> Result<Option<PasskeyRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {COLS} FROM passkeys WHERE tenant_id = $1 AND cred_hash = $2");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(t)
        .bind(cred_hash)
        .fetch_optional(c)
        .await?))
    }

    /// Records a use: the updated passkey and its counter, only if the stored counter is still
    /// `seen_count` (no other use was recorded in between). False when another use won.
    pub async fn record_passkey_use(
        &mut self,
        id: Uuid,
        seen_count: i64,
        passkey: &str,
        sign_count: i64,
        now: i64,
    ) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "UPDATE passkeys SET passkey = $4, sign_count = $5, last_used_at = $6 \
             WHERE tenant_id = $1 AND id = $2 AND sign_count = $3"
        )
        .bind(t)
        .bind(id)
        .bind(seen_count)
        .bind(passkey)
        .bind(sign_count)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Deletes one of `user`'s passkeys; false when there is no such passkey of theirs.
    pub async fn delete_passkey(&mut self, user: UserId, id: Uuid) -> Result<bool> {
        let t = self.tenant;
        let n = on_conn!(&mut self.tx, |c| sqlx::query(
            "DELETE FROM passkeys WHERE tenant_id = $1 AND user_id = $2 AND id = $3"
        )
        .bind(t)
        .bind(user)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }
}
