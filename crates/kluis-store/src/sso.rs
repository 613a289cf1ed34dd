//! Single sign-on (OpenID Connect): the tenant's provider configuration, linked IdP accounts,
//! sign-ins in flight and break-glass accounts. Same rule as the rest of [`TenantTx`]: every
//! statement binds `self.tenant` as `$1`.

use sqlx::FromRow;

use crate::ids::UserId;
use crate::{Result, TenantTx, on_conn};

/// A tenant's OIDC provider.
#[derive(Debug, Clone, FromRow)]
pub struct SsoConfigRow {
    /// `entra`, `google` or `oidc`.
    pub provider: String,
    pub issuer: String,
    pub client_id: String,
    /// Sealed (`sso_configs.client_secret`, record = the tenant id).
    pub client_secret: Vec<u8>,
    /// Google Workspace `hd` restriction.
    pub hosted_domain: Option<String>,
    /// JSON array of lower-case domains.
    pub allowed_domains: String,
    pub jit_enabled: bool,
    pub jit_role: kluis_types::Role,
    pub sso_required: bool,
    pub updated_at: i64,
}

/// A sign-in in flight (hashes only).
#[derive(Debug, Clone, FromRow)]
pub struct SsoPendingRow {
    pub binding_hash: Vec<u8>,
    pub nonce_hash: Vec<u8>,
    pub issuer: String,
    pub expires_at: i64,
}

const CONFIG_COLS: &str = "provider, issuer, client_id, client_secret, hosted_domain, allowed_domains, \
                           jit_enabled, jit_role, sso_required, updated_at";

impl TenantTx {
    pub async fn sso_config(&mut self) -> Result<Option<SsoConfigRow>> {
        let t = self.tenant;
        let sql = format!("SELECT {CONFIG_COLS} FROM sso_configs WHERE tenant_id = $1");
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(t)
        .fetch_optional(c)
        .await?))
    }

    pub async fn put_sso_config(&mut self, r: &SsoConfigRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO sso_configs (tenant_id, provider, issuer, client_id, client_secret, \
                 hosted_domain, allowed_domains, jit_enabled, jit_role, sso_required, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (tenant_id) DO UPDATE SET provider = excluded.provider, \
                 issuer = excluded.issuer, client_id = excluded.client_id, \
                 client_secret = excluded.client_secret, hosted_domain = excluded.hosted_domain, \
                 allowed_domains = excluded.allowed_domains, jit_enabled = excluded.jit_enabled, \
                 jit_role = excluded.jit_role, sso_required = excluded.sso_required, \
                 updated_at = excluded.updated_at",
            )
            .bind(t)
            .bind(&r.provider)
            .bind(&r.issuer)
            .bind(&r.client_id)
            .bind(&r.client_secret)
            .bind(r.hosted_domain.as_deref())
            .bind(&r.allowed_domains)
            .bind(r.jit_enabled)
            .bind(r.jit_role)
            .bind(r.sso_required)
            .bind(r.updated_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Removes the configuration and every sign-in in flight; linked identities stay (they
    /// only ever match the same issuer and subject again).
    pub async fn delete_sso_config(&mut self) -> Result<bool> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query("DELETE FROM sso_pending WHERE tenant_id = $1")
                .bind(t)
                .execute(c)
                .await?
                .rows_affected()
        });
        // The SAML half goes with it (also a cascading foreign key; explicit for clarity).
        on_conn!(&mut self.tx, |c| {
            sqlx::query("DELETE FROM saml_configs WHERE tenant_id = $1")
                .bind(t)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query("DELETE FROM sso_configs WHERE tenant_id = $1")
                .bind(t)
                .execute(c)
                .await?
                .rows_affected()
        }) > 0)
    }

    /// Data-key rotation: replaces the sealed client secret if it still is `old`.
    pub async fn reseal_sso_client_secret(&mut self, old: &[u8], new: &[u8]) -> Result<bool> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "UPDATE sso_configs SET client_secret = $3 WHERE tenant_id = $1 AND client_secret = $2",
            )
            .bind(t)
            .bind(old)
            .bind(new)
            .execute(c)
            .await?
            .rows_affected()
        }) > 0)
    }

    // ---- sign-ins in flight ------------------------------------------------------------

    /// Stores a sign-in in flight and drops this tenant's expired ones. Returns how many are
    /// in flight now (a bound on what an anonymous caller can make the server store).
    pub async fn insert_sso_pending(
        &mut self,
        state_hash: &[u8],
        binding_hash: &[u8],
        nonce_hash: &[u8],
        issuer: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<i64> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query("DELETE FROM sso_pending WHERE tenant_id = $1 AND expires_at <= $2")
                .bind(t)
                .bind(now)
                .execute(c)
                .await?
                .rows_affected()
        });
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO sso_pending (tenant_id, state_hash, binding_hash, nonce_hash, issuer, \
                 created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(t)
            .bind(state_hash)
            .bind(binding_hash)
            .bind(nonce_hash)
            .bind(issuer)
            .bind(now)
            .bind(expires_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT count(*) FROM sso_pending WHERE tenant_id = $1"
        )
        .bind(t)
        .fetch_one(c)
        .await?))
    }

    /// Removes and returns a sign-in in flight in one statement: a state is used at most once,
    /// whatever the outcome of the callback, even when two callbacks race.
    pub async fn take_sso_pending(&mut self, state_hash: &[u8]) -> Result<Option<SsoPendingRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "DELETE FROM sso_pending WHERE tenant_id = $1 AND state_hash = $2 \
             RETURNING binding_hash, nonce_hash, issuer, expires_at"
        )
        .bind(t)
        .bind(state_hash)
        .fetch_optional(c)
        .await?))
    }

    // ---- linked identities ------------------------------------------------------------

    pub async fn sso_identity_user(&mut self, subject_bidx: &[u8]) -> Result<Option<UserId>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT user_id FROM sso_identities WHERE tenant_id = $1 AND subject_bidx = $2"
        )
        .bind(t)
        .bind(subject_bidx)
        .fetch_optional(c)
        .await?))
    }

    /// Links an IdP account to a user, or records a sign-in of a linked one.
    pub async fn link_sso_identity(
        &mut self,
        subject_bidx: &[u8],
        user: UserId,
        now: i64,
    ) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO sso_identities (tenant_id, subject_bidx, user_id, created_at, last_login_at) \
                 VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (tenant_id, subject_bidx) DO UPDATE SET last_login_at = excluded.last_login_at",
            )
            .bind(t)
            .bind(subject_bidx)
            .bind(user)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    // ---- break-glass accounts ---------------------------------------------------------

    pub async fn is_break_glass(&mut self, user: UserId) -> Result<bool> {
        let t = self.tenant;
        let n: i64 = on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT count(*) FROM sso_break_glass WHERE tenant_id = $1 AND user_id = $2"
        )
        .bind(t)
        .bind(user)
        .fetch_one(c)
        .await?);
        Ok(n > 0)
    }

    pub async fn set_break_glass(&mut self, user: UserId, on: bool, now: i64) -> Result<bool> {
        let t = self.tenant;
        let changed = if on {
            on_conn!(&mut self.tx, |c| {
                sqlx::query(
                    "INSERT INTO sso_break_glass (tenant_id, user_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id, user_id) DO NOTHING",
                )
                .bind(t)
                .bind(user)
                .bind(now)
                .execute(c)
                .await?
                .rows_affected()
            })
        } else {
            on_conn!(&mut self.tx, |c| {
                sqlx::query("DELETE FROM sso_break_glass WHERE tenant_id = $1 AND user_id = $2")
                    .bind(t)
                    .bind(user)
                    .execute(c)
                    .await?
                    .rows_affected()
            })
        };
        Ok(changed > 0)
    }

    pub async fn break_glass_users(&mut self) -> Result<Vec<UserId>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT user_id FROM sso_break_glass WHERE tenant_id = $1 ORDER BY user_id"
        )
        .bind(t)
        .fetch_all(c)
        .await?))
    }
}
