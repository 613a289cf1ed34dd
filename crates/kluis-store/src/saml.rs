//! SAML 2.0 single sign-on: the SAML half of a tenant's SSO configuration (the shared half is
//! [`crate::sso::SsoConfigRow`] with provider `saml`) and the assertion replay cache. Every
//! statement binds `self.tenant` as `$1`.

use sqlx::FromRow;

use crate::{Result, TenantTx, on_conn};

/// The IdP a tenant trusts for SAML sign-in.
#[derive(Debug, Clone, FromRow)]
pub struct SamlConfigRow {
    pub idp_entity_id: String,
    /// Where browsers are sent with the AuthnRequest (HTTP-Redirect binding).
    pub idp_sso_url: String,
    /// One or more PEM certificates: the only keys an assertion signature may verify with.
    pub idp_certs_pem: String,
    /// Accept RSA-SHA1 signatures (old IdPs).
    pub allow_sha1: bool,
    pub updated_at: i64,
}

impl TenantTx {
    pub async fn saml_config(&mut self) -> Result<Option<SamlConfigRow>> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| sqlx::query_as(
            "SELECT idp_entity_id, idp_sso_url, idp_certs_pem, allow_sha1, updated_at \
             FROM saml_configs WHERE tenant_id = $1"
        )
        .bind(t)
        .fetch_optional(c)
        .await?))
    }

    /// Stores the SAML half; the `sso_configs` row (provider `saml`) must exist first.
    pub async fn put_saml_config(&mut self, r: &SamlConfigRow) -> Result<()> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO saml_configs (tenant_id, idp_entity_id, idp_sso_url, idp_certs_pem, \
                 allow_sha1, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant_id) DO UPDATE SET idp_entity_id = excluded.idp_entity_id, \
                 idp_sso_url = excluded.idp_sso_url, idp_certs_pem = excluded.idp_certs_pem, \
                 allow_sha1 = excluded.allow_sha1, updated_at = excluded.updated_at",
            )
            .bind(t)
            .bind(&r.idp_entity_id)
            .bind(&r.idp_sso_url)
            .bind(&r.idp_certs_pem)
            .bind(r.allow_sha1)
            .bind(r.updated_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Removes the SAML half (when the tenant switches to OpenID Connect).
    pub async fn delete_saml_config(&mut self) -> Result<bool> {
        let t = self.tenant;
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query("DELETE FROM saml_configs WHERE tenant_id = $1")
                .bind(t)
                .execute(c)
                .await?
                .rows_affected()
        }) > 0)
    }

    /// Records an accepted assertion; false if it was seen before (a replay). Drops this
    /// tenant's expired entries first.
    pub async fn remember_saml_assertion(
        &mut self,
        assertion_id_hash: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        let t = self.tenant;
        on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "DELETE FROM saml_seen_assertions WHERE tenant_id = $1 AND expires_at <= $2",
            )
            .bind(t)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(on_conn!(&mut self.tx, |c| {
            sqlx::query(
                "INSERT INTO saml_seen_assertions (tenant_id, assertion_id_hash, expires_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (tenant_id, assertion_id_hash) DO NOTHING",
            )
            .bind(t)
            .bind(assertion_id_hash)
            .bind(expires_at)
            .execute(c)
            .await?
            .rows_affected()
        }) == 1)
    }
}
