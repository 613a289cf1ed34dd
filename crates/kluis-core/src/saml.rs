//! Per-tenant single sign-on with SAML 2.0 (service provider), the second kind of the tenant's
//! one SSO configuration (see [`crate::sso`]).
//!
//! - Configuration (owners and admins, signed-in people only, audited as
//!   `settings.sso.update`): the IdP's entity id, SSO URL and signing certificate(s), plus the
//!   shared part (allowed email domains, just-in-time creation, "SSO required") stored in
//!   `sso_configs` with provider `saml`.
//! - Per tenant, the SP entity id is `<public_url>/sso/saml/<tenant id>/metadata` (which serves
//!   the SP metadata) and the ACS URL `<public_url>/sso/saml/<tenant id>/acs`.
//! - Sign-in: [`Kluis::saml_start`] stores a pending sign-in exactly like OpenID Connect
//!   (hashes of the RelayState, of the browser-binding cookie and of the AuthnRequest ID,
//!   which is derived from the binding secret) and redirects to the IdP.
//!   [`Kluis::saml_acs`] consumes the pending sign-in (single use), checks the browser
//!   binding, lets `kluis-saml` verify the response (signature by the configured certificate
//!   only, signed-subtree parsing, wrapping defence, audience, recipient, destination, issuer,
//!   time), records the assertion ID in the replay cache, checks `InResponseTo` against this
//!   browser's request, then links or creates the user through the same code as OIDC and
//!   starts an ordinary session (`auth.login`, method `saml`).
//!
//! Built without the `saml` cargo feature, configuring or using SAML answers
//! `400 saml_not_built`.

use serde::{Deserialize, Serialize};

use crate::{Actor, Error, ErrorKind, Kluis, RequestContext, Result, Role, TenantId, UserId};

/// Path prefix of the per-tenant SAML endpoints under the public URL.
pub const SAML_PATH: &str = "/sso/saml";

/// What an owner or admin sends to configure SAML sign-in.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamlSettingsInput {
    /// The IdP's entity id: the Issuer of its responses.
    pub idp_entity_id: String,
    /// The IdP's single sign-on URL (HTTP-Redirect binding); https (http only for loopback).
    pub idp_sso_url: String,
    /// The IdP's signing certificate(s), PEM (at most 4, for rollover). Signatures by any other
    /// key, including certificates embedded in a response, are refused.
    pub idp_certificate_pem: String,
    /// Accept RSA-SHA1 signatures (old IdPs). Default false.
    pub allow_sha1: Option<bool>,
    /// Email domains whose addresses may sign in. At least one.
    pub allowed_domains: Vec<String>,
    /// Create unknown users at their first sign-in.
    pub jit_enabled: bool,
    /// Role of users created just in time (not `owner`). Default `member`.
    pub jit_role: Option<Role>,
    /// Refuse password sign-in except for break-glass owners.
    pub sso_required: bool,
}

/// The stored SAML configuration as the API shows it, with what to give the IdP.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SamlSettingsDoc {
    pub idp_entity_id: String,
    pub idp_sso_url: String,
    pub idp_certificate_pem: String,
    pub allow_sha1: bool,
    pub allowed_domains: Vec<String>,
    pub jit_enabled: bool,
    pub jit_role: Role,
    pub sso_required: bool,
    /// Our entity id (the audience); also the URL of our SP metadata.
    pub sp_entity_id: String,
    /// Our assertion consumer service (HTTP-POST binding).
    pub acs_url: String,
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub break_glass_user_ids: Vec<UserId>,
    pub updated_at: String,
}

/// The ACS form fields (HTTP-POST binding), as received.
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
pub struct SamlAcsForm {
    #[serde(rename = "SAMLResponse")]
    pub saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    pub relay_state: Option<String>,
}

/// Whether this build supports SAML (the `saml` cargo feature); pages hide SAML without it.
pub const SAML_BUILT: bool = cfg!(feature = "saml");

#[cfg(not(feature = "saml"))]
fn not_built() -> Error {
    Error::new(
        ErrorKind::BadRequest,
        "saml_not_built",
        "this server was built without SAML support (cargo feature `saml`)",
    )
}

/// The tenant of a `/sso/saml/{tenant}/...` path: its id (32 hex or hyphenated).
fn tenant_of_path(raw: &str) -> Option<TenantId> {
    uuid::Uuid::try_parse(raw.trim()).ok().map(TenantId)
}

impl Kluis {
    /// `(sp_entity_id, acs_url)` of a tenant.
    #[cfg_attr(not(feature = "saml"), allow(dead_code))]
    fn saml_sp_urls(&self, tenant: TenantId) -> Result<(String, String)> {
        let base = format!(
            "{}{SAML_PATH}/{}",
            self.sso_runtime()?.public_url,
            tenant.0.hyphenated()
        );
        Ok((format!("{base}/metadata"), format!("{base}/acs")))
    }

    /// An active tenant by the id in a SAML path, or `404 sso_not_configured`.
    async fn saml_tenant(&self, raw: &str) -> Result<TenantId> {
        let id = tenant_of_path(raw).ok_or_else(crate::sso::not_configured)?;
        let mut p = self.store.platform_read().await?;
        let t = p
            .tenant(id)
            .await?
            .filter(|t| t.status.is_active())
            .ok_or_else(crate::sso::not_configured)?;
        Ok(t.id)
    }
}

#[cfg(not(feature = "saml"))]
impl Kluis {
    pub async fn saml_settings(&self, actor: &Actor) -> Result<SamlSettingsDoc> {
        Self::require_sso_admin(actor)?;
        Err(not_built())
    }
    pub async fn put_saml_settings(
        &self,
        actor: &Actor,
        _ctx: &RequestContext,
        _input: SamlSettingsInput,
    ) -> Result<SamlSettingsDoc> {
        Self::require_sso_admin(actor)?;
        Err(not_built())
    }
    pub async fn saml_metadata(&self, tenant: &str) -> Result<String> {
        self.saml_tenant(tenant).await?;
        Err(not_built())
    }
    pub async fn saml_start(
        &self,
        _organisation: &str,
        _ctx: &RequestContext,
    ) -> Result<crate::sso::SsoStart> {
        Err(not_built())
    }
    pub async fn saml_acs(
        &self,
        _tenant: &str,
        _form: &SamlAcsForm,
        _binding: Option<&str>,
        _ctx: &RequestContext,
    ) -> Result<crate::sessions::LoginOutcome> {
        Err(not_built())
    }
}

#[cfg(feature = "saml")]
mod enabled {
    use crate::db::saml::SamlConfigRow;
    use crate::db::sso::SsoConfigRow;
    use kluis_crypto::token;
    use serde_json::json;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::audit::{Event, actor_label};
    use crate::sessions::LoginOutcome;
    use crate::sso::{
        Failure, SsoProvider, SsoStart, bounded, derive, domains_of, not_configured,
        require_break_glass_owner, shared_settings, sso_failed, state_failed,
    };

    const PROVIDER: &str = "saml";

    fn certs_of(pem: &str) -> Result<Vec<kluis_saml::Certificate>> {
        kluis_saml::Certificate::parse_pem_bundle(pem).map_err(|_| {
            Error::validation(
                "idp_certificate_pem",
                "invalid_certificate",
                "give the IdP's signing certificate(s) as PEM (BEGIN CERTIFICATE), at most 4",
            )
        })
    }

    /// https, or http to a loopback address (a local test IdP). The server never fetches it;
    /// browsers are sent there.
    fn sso_url(raw: &str) -> Result<String> {
        let v = bounded("idp_sso_url", raw, 1024)?;
        let bad = || {
            Error::validation(
                "idp_sso_url",
                "invalid_sso_url",
                "must be an https URL without fragment (http only for 127.0.0.1 or localhost)",
            )
        };
        let u = url::Url::parse(&v).map_err(|_| bad())?;
        let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        let ok = (u.scheme() == "https" || (u.scheme() == "http" && loopback))
            && u.fragment().is_none()
            && u.username().is_empty()
            && u.password().is_none()
            && u.host_str().is_some();
        if !ok {
            return Err(bad());
        }
        Ok(v)
    }

    fn request_id(binding: &str) -> String {
        // xs:ID must not start with a digit; base64url's alphabet is otherwise NCName-safe.
        format!("_{}", derive(binding, "saml_request"))
    }

    fn assertion_key(issuer: &str, assertion_id: &str) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(b"kluis-saml-assertion\0");
        h.update(issuer.as_bytes());
        h.update(b"\0");
        h.update(assertion_id.as_bytes());
        h.finalize().to_vec()
    }

    impl Kluis {
        fn saml_doc(
            &self,
            tenant: TenantId,
            cfg: &SsoConfigRow,
            saml: &SamlConfigRow,
            break_glass: Vec<UserId>,
        ) -> Result<SamlSettingsDoc> {
            let (sp_entity_id, acs_url) = self.saml_sp_urls(tenant)?;
            Ok(SamlSettingsDoc {
                idp_entity_id: saml.idp_entity_id.clone(),
                idp_sso_url: saml.idp_sso_url.clone(),
                idp_certificate_pem: saml.idp_certs_pem.clone(),
                allow_sha1: saml.allow_sha1,
                allowed_domains: domains_of(cfg)?,
                jit_enabled: cfg.jit_enabled,
                jit_role: cfg.jit_role,
                sso_required: cfg.sso_required,
                sp_entity_id,
                acs_url,
                break_glass_user_ids: break_glass,
                updated_at: crate::users::rfc3339(saml.updated_at),
            })
        }

        pub async fn saml_settings(&self, actor: &Actor) -> Result<SamlSettingsDoc> {
            Self::require_sso_admin(actor)?;
            let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
            let cfg = tx
                .sso_config()
                .await?
                .filter(|c| c.provider == PROVIDER)
                .ok_or_else(not_configured)?;
            let saml = tx.saml_config().await?.ok_or_else(not_configured)?;
            let bg = tx.break_glass_users().await?;
            self.saml_doc(actor.tenant(), &cfg, &saml, bg)
        }

        /// Configures SAML (replacing any OpenID Connect configuration). Privileged and
        /// audited like the OIDC settings.
        pub async fn put_saml_settings(
            &self,
            actor: &Actor,
            ctx: &RequestContext,
            input: SamlSettingsInput,
        ) -> Result<SamlSettingsDoc> {
            Self::require_sso_admin(actor)?;
            let tenant = actor.tenant();
            let (sp_entity_id, _) = self.saml_sp_urls(tenant)?;
            let idp_entity_id = bounded("idp_entity_id", &input.idp_entity_id, 1024)?;
            let idp_sso_url = sso_url(&input.idp_sso_url)?;
            let pem = input.idp_certificate_pem.trim().to_owned();
            if pem.len() > 64 * 1024 {
                return Err(Error::validation(
                    "idp_certificate_pem",
                    "invalid_certificate",
                    "at most 64 KiB of PEM",
                ));
            }
            let certs = certs_of(&pem)?;
            let (domains, jit_role) =
                shared_settings(actor, &input.allowed_domains, input.jit_role)?;
            let allow_sha1 = input.allow_sha1.unwrap_or(false);

            let now = self.now();
            let mut tx = self.store.tenant(tenant).begin().await?;
            let keys = self.keys(&mut tx).await?;
            let before = tx.sso_config().await?;
            let before_saml = tx.saml_config().await?;
            if input.sso_required {
                require_break_glass_owner(&mut tx, None).await?;
            }
            // The shared row keeps its sealed client-secret column filled (with nothing
            // secret): SAML has no client secret.
            let sealed = keys.seal_str("sso_configs", "client_secret", tenant.0, "")?;
            self.count_sealed(&mut tx, &keys, 1).await?;
            let row = SsoConfigRow {
                provider: SsoProvider::Saml.as_str().to_owned(),
                issuer: idp_entity_id.clone(),
                client_id: sp_entity_id,
                client_secret: sealed,
                hosted_domain: None,
                allowed_domains: serde_json::to_string(&domains)
                    .map_err(|_| Error::internal("serialise domains"))?,
                jit_enabled: input.jit_enabled,
                jit_role,
                sso_required: input.sso_required,
                updated_at: now,
            };
            tx.put_sso_config(&row).await?;
            let saml = SamlConfigRow {
                idp_entity_id,
                idp_sso_url,
                idp_certs_pem: pem,
                allow_sha1,
                updated_at: now,
            };
            tx.put_saml_config(&saml).await?;
            let bg = tx.break_glass_users().await?;
            let out = self.saml_doc(tenant, &row, &saml, bg)?;
            let fingerprints: Vec<String> = certs
                .iter()
                .map(|c| hex::encode(Sha256::digest(c.der())))
                .collect();
            let old = before.as_ref().map(|b| {
                json!({"provider": b.provider, "issuer": b.issuer,
                       "idp_sso_url": before_saml.as_ref().map(|s| s.idp_sso_url.clone()),
                       "allowed_domains": domains_of(b).unwrap_or_default(),
                       "jit_enabled": b.jit_enabled, "jit_role": b.jit_role,
                       "sso_required": b.sso_required})
            });
            let ev = Event {
                action: "settings.sso.update",
                success: true,
                object_type: Some("settings"),
                object_id: Some("sso".into()),
                details: json!({"old": old, "new": {
                    "provider": PROVIDER, "issuer": out.idp_entity_id,
                    "idp_sso_url": out.idp_sso_url, "idp_cert_sha256": fingerprints,
                    "allow_sha1": out.allow_sha1, "allowed_domains": out.allowed_domains,
                    "jit_enabled": out.jit_enabled, "jit_role": out.jit_role,
                    "sso_required": out.sso_required}}),
            };
            self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
                .await?;
            tx.commit().await?;
            Ok(out)
        }

        /// The SP metadata of a tenant (public: the IdP's administrator needs it before SAML
        /// is configured).
        pub async fn saml_metadata(&self, tenant: &str) -> Result<String> {
            let t = self.saml_tenant(tenant).await?;
            let (entity, acs) = self.saml_sp_urls(t)?;
            kluis_saml::sp_metadata(&entity, &acs)
                .map_err(|_| Error::internal("SAML metadata could not be built"))
        }

        /// Starts a SAML sign-in for the organisation with this slug.
        pub async fn saml_start(
            &self,
            organisation: &str,
            ctx: &RequestContext,
        ) -> Result<SsoStart> {
            let _ = ctx;
            let mut p = self.store.platform_read().await?;
            let t = p
                .tenant_by_slug(organisation.trim())
                .await?
                .filter(|t| t.status.is_active())
                .ok_or_else(not_configured)?;
            drop(p);
            let mut tx = self.store.tenant(t.id).begin_read().await?;
            let cfg = tx
                .sso_config()
                .await?
                .filter(|c| c.provider == PROVIDER)
                .ok_or_else(not_configured)?;
            let saml = tx.saml_config().await?.ok_or_else(not_configured)?;
            drop(tx);
            let (sp_entity_id, acs_url) = self.saml_sp_urls(t.id)?;

            let binding = token::generate_secret();
            let state = format!("{}.{}", t.id.0.simple(), token::generate_secret());
            let request_id = request_id(&binding);
            let now = self.now();
            let issued =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
                    .map_err(|_| Error::internal("clock"))?;
            let url = kluis_saml::authn_request_url(
                &saml.idp_sso_url,
                &sp_entity_id,
                &acs_url,
                &request_id,
                &state,
                issued,
            )
            .map_err(|_| Error::internal("SAML request could not be built"))?;
            self.record_pending_sign_in(t.id, &state, binding, &request_id, &cfg.issuer, url)
                .await
        }

        /// The assertion consumer service: see the module documentation for the checks.
        pub async fn saml_acs(
            &self,
            tenant: &str,
            form: &SamlAcsForm,
            binding: Option<&str>,
            ctx: &RequestContext,
        ) -> Result<LoginOutcome> {
            let t = self.saml_tenant(tenant).await?;
            // The RelayState names the tenant too; it must be this one.
            let relay_tenant = form
                .relay_state
                .as_deref()
                .and_then(crate::tokens::parse_session_token)
                .map(|(t, _)| t);
            if relay_tenant != Some(t) {
                self.audit_sso_failure_as(t, None, PROVIDER, "state_malformed", ctx)
                    .await?;
                return Err(state_failed());
            }
            match self.acs_inner(t, form, binding, ctx).await {
                Ok(out) => Ok(out),
                Err((user, f)) => {
                    if f.error.kind == ErrorKind::Internal {
                        tracing::error!(tenant = %t, reason = f.reason, error = %f.error, "SAML ACS failed");
                    }
                    self.audit_sso_failure_as(t, user, PROVIDER, f.reason, ctx)
                        .await?;
                    Err(f.error)
                }
            }
        }

        async fn acs_inner(
            &self,
            tenant: TenantId,
            form: &SamlAcsForm,
            binding: Option<&str>,
            ctx: &RequestContext,
        ) -> Result<LoginOutcome, (Option<UserId>, Failure)> {
            let fail = |reason, error| (None, Failure::new(reason, error));
            let state = form.relay_state.as_deref().unwrap_or_default();
            let (pending, binding) = self
                .take_pending_sign_in(tenant, state, binding)
                .await
                .map_err(|f| (None, f))?;
            let now = self.now();
            let request_id = request_id(binding);
            // An OpenID Connect sign-in's pending row has another nonce.
            if !token::constant_time_eq(&token::hash_secret(&request_id), &pending.nonce_hash) {
                return Err(fail("configuration_changed", sso_failed()));
            }
            let Some(response) = form.saml_response.as_deref().filter(|r| !r.is_empty()) else {
                return Err(fail("response_missing", sso_failed()));
            };

            let (cfg, saml) = async {
                let mut tx = self.store.tenant(tenant).begin_read().await?;
                let cfg = tx.sso_config().await?.ok_or_else(not_configured)?;
                let saml = tx.saml_config().await?.ok_or_else(not_configured)?;
                Ok::<_, Error>((cfg, saml))
            }
            .await
            .map_err(|e| (None, Failure::from(e)))?;
            if cfg.provider != PROVIDER
                || cfg.issuer != pending.issuer
                || saml.idp_entity_id != cfg.issuer
            {
                return Err(fail("configuration_changed", sso_failed()));
            }
            let certs = certs_of(&saml.idp_certs_pem).map_err(|e| (None, Failure::from(e)))?;
            let (sp_entity_id, acs_url) = self
                .saml_sp_urls(tenant)
                .map_err(|e| (None, Failure::from(e)))?;
            let sp = kluis_saml::SpSettings {
                sp_entity_id: &sp_entity_id,
                acs_url: &acs_url,
                idp_entity_id: &saml.idp_entity_id,
                idp_certs: &certs,
                allow_sha1: saml.allow_sha1,
            };
            let clock =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
                    .map_err(|_| (None, Failure::from(Error::internal("clock"))))?;
            let verified = kluis_saml::verify_response(response, &sp, clock)
                .map_err(|e| fail(e.reason(), sso_failed()))?;

            // Replay cache: an assertion is accepted once, whichever sign-in it is posted to.
            let expires =
                i64::try_from(verified.replay_expires_at().unix_timestamp_nanos() / 1_000_000)
                    .unwrap_or(i64::MAX);
            let fresh = async {
                let mut tx = self.store.tenant(tenant).begin().await?;
                let fresh = tx
                    .remember_saml_assertion(
                        &assertion_key(&saml.idp_entity_id, verified.assertion_id()),
                        now,
                        expires.max(now + 1),
                    )
                    .await?;
                tx.commit().await?;
                Ok::<_, Error>(fresh)
            }
            .await
            .map_err(|e| (None, Failure::from(e)))?;
            if !fresh {
                return Err(fail("assertion_replayed", sso_failed()));
            }
            let identity = verified
                .finish(&request_id)
                .map_err(|e| fail(e.reason(), sso_failed()))?;

            let id = kluis_oidc::Identity {
                issuer: identity.issuer,
                subject: identity.name_id,
                email_verified: identity.email.is_some(),
                email: identity.email,
                name: identity.display_name,
                hosted_domain: None,
            };
            let user = self
                .sso_user(tenant, &cfg, &id, ctx)
                .await
                .map_err(|f| (None, f))?;
            let user_id = user.id;
            self.start_session(
                tenant,
                user.id,
                crate::sessions::SessionStage::Sso,
                PROVIDER,
                ctx,
            )
            .await
            .map_err(|e| (Some(user_id), Failure::from(e)))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn sso_urls_are_https_or_loopback_http() {
            for ok in [
                "https://idp.acme.nl/sso",
                "https://idp.acme.nl/sso?tenant=1",
                "http://127.0.0.1:8080/sso",
                "http://localhost/sso",
            ] {
                assert!(sso_url(ok).is_ok(), "{ok}");
            }
            for bad in [
                "http://idp.acme.nl/sso",
                "javascript:alert(1)",
                "https://idp.acme.nl/sso#x",
                "https://user:pw@idp.acme.nl/sso",
                "ftp://idp.acme.nl/",
                "",
            ] {
                assert!(sso_url(bad).is_err(), "{bad}");
            }
        }

        #[test]
        fn request_ids_are_xml_ids_bound_to_the_browser() {
            let a = request_id("binding-a");
            assert!(a.starts_with('_') && a.len() == 44, "{a}");
            assert!(
                a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            );
            assert_ne!(a, request_id("binding-b"));
            assert_ne!(a, format!("_{}", derive("binding-a", "nonce")));
            assert_ne!(
                assertion_key("idp-1", "id-1"),
                assertion_key("idp-2", "id-1")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_paths_parse() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            tenant_of_path(&id.hyphenated().to_string()),
            Some(TenantId(id))
        );
        assert_eq!(tenant_of_path(&id.simple().to_string()), Some(TenantId(id)));
        assert_eq!(tenant_of_path("acme"), None);
    }
}
