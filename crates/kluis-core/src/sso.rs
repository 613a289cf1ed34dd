//! Per-tenant single sign-on with OpenID Connect.
//!
//! - Configuration (owners and admins, signed-in people only, audited): one provider per
//!   tenant, from a preset (Microsoft Entra ID, Google Workspace) or any issuer; the client
//!   secret is sealed under the tenant's data key and never returned; allowed email domains;
//!   just-in-time user creation with a default role; "SSO required", which turns password
//!   sign-in off for everyone but break-glass owners ([`Kluis::sign_in_without_sso_allowed`]).
//! - Sign-in: [`Kluis::sso_start`] stores SHA-256 hashes of `state`, of a browser-binding
//!   secret (an HttpOnly cookie) and of the nonce, for 10 minutes, single use; PKCE verifier
//!   and nonce are derived from the binding secret, so nothing secret is stored.
//!   [`Kluis::sso_callback`] consumes the state first (a replay finds nothing), checks the
//!   browser binding, lets `kluis-oidc` exchange the code and verify the ID token and userinfo,
//!   then links the IdP account to a user (by issuer + subject, or on first sign-in by a
//!   verified email in an allowed domain), creates one just in time if allowed, and starts an
//!   ordinary session. Every outcome is audited (`auth.login`, method `oidc`) with a reason;
//!   codes, tokens and secrets never are.
//! - `state` is `<tenant hex>.<secret>`, like session cookies: the callback opens the right
//!   tenant transaction before looking anything up.

use std::sync::Arc;

use crate::db::rows::UserRow;
use crate::db::sso::SsoConfigRow;
use kluis_crypto::token;
use kluis_oidc::{ClientSettings, FlowSecrets, OidcError, RelyingParty};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit::{Event, actor_label};
use crate::sessions::LoginOutcome;
use crate::users::{NewUserInput, insert_user};
use crate::{
    Actor, Error, ErrorKind, Kluis, Permission, RequestContext, Result, Role, TenantId, UserId,
    validate,
};

/// How long a started sign-in may take.
pub const PENDING_TTL_MS: i64 = 10 * 60 * 1000;
/// Sign-ins in flight per tenant; beyond this `start` refuses (anonymous callers cannot fill
/// the table).
const MAX_PENDING: i64 = 10_000;
/// Path of the callback under the public URL; register `<public_url>` + this at the IdP.
pub const CALLBACK_PATH: &str = "/sso/oidc/callback";

/// The relying party and where the IdP sends browsers back to.
pub struct SsoRuntime {
    rp: RelyingParty,
    redirect_uri: String,
    /// The server's external base URL, without a trailing slash (SAML builds its per-tenant
    /// entity id and ACS URL from it).
    #[cfg_attr(not(feature = "saml"), allow(dead_code))]
    pub(crate) public_url: String,
}

impl Kluis {
    /// Enables SSO sign-in: `public_url` is the server's external base URL.
    pub fn with_sso(mut self, rp: RelyingParty, public_url: &str) -> Self {
        self.sso = Some(Arc::new(SsoRuntime {
            rp,
            redirect_uri: format!("{}{CALLBACK_PATH}", public_url.trim_end_matches('/')),
            public_url: public_url.trim_end_matches('/').to_owned(),
        }));
        self
    }

    pub(crate) fn sso_runtime(&self) -> Result<&SsoRuntime> {
        self.sso.as_deref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "sso_unavailable",
                "single sign-on is not enabled on this server",
            )
        })
    }
}

// ---- configuration ------------------------------------------------------------------------

/// Which kind of provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SsoProvider {
    /// Microsoft Entra ID (one directory): issuer `https://login.microsoftonline.com/{tenant}/v2.0`.
    Entra,
    /// Google Workspace: issuer `https://accounts.google.com`, optional `hd` restriction.
    Google,
    /// Any OpenID Connect provider, by issuer URL.
    Oidc,
    /// SAML 2.0 (configured through `/api/v1/settings/sso/saml`; `issuer` is the IdP's
    /// entity id).
    Saml,
}

impl SsoProvider {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SsoProvider::Entra => "entra",
            SsoProvider::Google => "google",
            SsoProvider::Oidc => "oidc",
            SsoProvider::Saml => "saml",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        [
            SsoProvider::Entra,
            SsoProvider::Google,
            SsoProvider::Oidc,
            SsoProvider::Saml,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// What an owner or admin sends to configure SSO.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoSettingsInput {
    pub provider: SsoProvider,
    /// Entra ID only: the directory (tenant) id or its verified domain.
    pub entra_tenant_id: Option<String>,
    /// Generic OIDC only: the issuer URL (https).
    pub issuer: Option<String>,
    /// Google only: the Workspace domain; the ID token's `hd` claim must equal it.
    pub hosted_domain: Option<String>,
    pub client_id: String,
    /// Write-only. Required the first time; leave out to keep the stored one.
    pub client_secret: Option<String>,
    /// Email domains whose (verified) addresses may sign in. At least one.
    pub allowed_domains: Vec<String>,
    /// Create unknown users at their first sign-in.
    pub jit_enabled: bool,
    /// Role of users created just in time (not `owner`). Default `member`.
    pub jit_role: Option<Role>,
    /// Refuse password sign-in except for break-glass owners.
    pub sso_required: bool,
}

/// The stored configuration as the API shows it: never the client secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SsoSettingsDoc {
    pub provider: SsoProvider,
    pub issuer: String,
    pub hosted_domain: Option<String>,
    pub client_id: String,
    /// Always true: a secret is stored (it is never shown).
    pub client_secret_set: bool,
    pub allowed_domains: Vec<String>,
    pub jit_enabled: bool,
    pub jit_role: Role,
    pub sso_required: bool,
    /// Register this redirect URI at the provider.
    pub redirect_uri: String,
    /// Owners who may still sign in with a password when SSO is required.
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub break_glass_user_ids: Vec<UserId>,
    pub updated_at: String,
}

pub(crate) fn domains_of(row: &SsoConfigRow) -> Result<Vec<String>> {
    serde_json::from_str(&row.allowed_domains)
        .map_err(|_| Error::internal("stored SSO domains are unreadable"))
}

fn doc(row: &SsoConfigRow, redirect_uri: &str, break_glass: Vec<UserId>) -> Result<SsoSettingsDoc> {
    Ok(SsoSettingsDoc {
        provider: SsoProvider::parse(&row.provider)
            .ok_or_else(|| Error::internal("unknown SSO provider stored"))?,
        issuer: row.issuer.clone(),
        hosted_domain: row.hosted_domain.clone(),
        client_id: row.client_id.clone(),
        client_secret_set: true,
        allowed_domains: domains_of(row)?,
        jit_enabled: row.jit_enabled,
        jit_role: row.jit_role,
        sso_required: row.sso_required,
        redirect_uri: redirect_uri.to_owned(),
        break_glass_user_ids: break_glass,
        updated_at: crate::users::rfc3339(row.updated_at),
    })
}

/// A DNS domain: lower-case labels of [a-z0-9-], at least two labels.
pub(crate) fn domain(field: &str, raw: &str) -> Result<String> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if d.len() > 253 || d.split('.').count() < 2 || !d.split('.').all(label_ok) {
        return Err(Error::validation(
            field,
            "invalid_domain",
            "must be a domain name such as example.com",
        ));
    }
    Ok(d)
}

pub(crate) fn bounded(field: &str, raw: &str, max: usize) -> Result<String> {
    let v = raw.trim();
    if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
        return Err(Error::validation(
            field,
            "invalid_value",
            format!("must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(v.to_owned())
}

/// Issuer and hosted domain from the preset.
fn issuer_for(input: &SsoSettingsInput) -> Result<(String, Option<String>)> {
    let refuse = |field: &str, msg: &str| Error::validation(field, "invalid_sso_settings", msg);
    match input.provider {
        SsoProvider::Entra => {
            if input.issuer.is_some() || input.hosted_domain.is_some() {
                return Err(refuse(
                    "issuer",
                    "Entra ID takes entra_tenant_id, not issuer or hosted_domain",
                ));
            }
            let tid = input
                .entra_tenant_id
                .as_deref()
                .map(str::trim)
                .unwrap_or_default()
                .to_ascii_lowercase();
            let ok = !tid.is_empty()
                && tid.len() <= 64
                && tid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                // The multi-tenant endpoints have no single issuer to verify.
                && !matches!(tid.as_str(), "common" | "organizations" | "consumers");
            if !ok {
                return Err(refuse(
                    "entra_tenant_id",
                    "must be the directory (tenant) id or its domain, not common/organizations/consumers",
                ));
            }
            Ok((
                format!("https://login.microsoftonline.com/{tid}/v2.0"),
                None,
            ))
        }
        SsoProvider::Google => {
            if input.issuer.is_some() || input.entra_tenant_id.is_some() {
                return Err(refuse(
                    "issuer",
                    "Google Workspace takes hosted_domain only",
                ));
            }
            let hd = input
                .hosted_domain
                .as_deref()
                .map(|d| domain("hosted_domain", d))
                .transpose()?;
            Ok((GOOGLE_ISSUER.to_owned(), hd))
        }
        SsoProvider::Oidc => {
            if input.entra_tenant_id.is_some() || input.hosted_domain.is_some() {
                return Err(refuse("issuer", "generic OIDC takes issuer only"));
            }
            let issuer = input
                .issuer
                .as_deref()
                .map(|i| bounded("issuer", i, 512))
                .transpose()?
                .ok_or_else(|| refuse("issuer", "issuer is required"))?;
            Ok((issuer, None))
        }
        SsoProvider::Saml => Err(refuse(
            "provider",
            "configure SAML with PUT /api/v1/settings/sso/saml",
        )),
    }
}

fn issuer_error(e: &OidcError) -> Error {
    match e {
        OidcError::InsecureUrl => Error::validation(
            "issuer",
            "sso_issuer_insecure",
            "the issuer must be an https URL without query or fragment",
        ),
        OidcError::AddressNotAllowed => Error::validation(
            "issuer",
            "sso_issuer_not_allowed",
            "the issuer's address is not public; this server does not allow private networks",
        ),
        other => Error::validation(
            "issuer",
            "sso_discovery_failed",
            format!(
                "the provider's discovery document could not be used ({})",
                other.reason()
            ),
        ),
    }
}

impl Kluis {
    /// Only a signed-in owner or admin (never an API key) may see or change SSO: it decides
    /// who can enter the tenant.
    pub(crate) fn require_sso_admin(actor: &Actor) -> Result<()> {
        actor.require_user()?;
        actor.require(Permission::SsoManage)
    }

    pub async fn sso_settings(&self, actor: &Actor) -> Result<SsoSettingsDoc> {
        Self::require_sso_admin(actor)?;
        let rt = self.sso_runtime()?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let row = tx.sso_config().await?.ok_or_else(not_configured)?;
        let bg = tx.break_glass_users().await?;
        doc(&row, &rt.redirect_uri, bg)
    }

    pub async fn put_sso_settings(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: SsoSettingsInput,
    ) -> Result<SsoSettingsDoc> {
        Self::require_sso_admin(actor)?;
        let rt = self.sso_runtime()?;
        let (issuer, hosted_domain) = issuer_for(&input)?;
        let client_id = bounded("client_id", &input.client_id, 256)?;
        let secret = input
            .client_secret
            .as_deref()
            .map(|s| bounded("client_secret", s, 1024))
            .transpose()?;
        let (domains, jit_role) = shared_settings(actor, &input.allowed_domains, input.jit_role)?;
        // Outside the transaction: a network round trip must not hold the write lock.
        rt.rp.check_issuer(&issuer).map_err(|e| issuer_error(&e))?;
        rt.rp
            .discover(&issuer)
            .await
            .map_err(|e| issuer_error(&e))?;

        let now = self.now();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let before = tx.sso_config().await?;
        let sealed = match (&secret, &before) {
            (Some(s), _) => {
                let sealed = keys.seal_str("sso_configs", "client_secret", actor.tenant().0, s)?;
                self.count_sealed(&mut tx, &keys, 1).await?;
                sealed
            }
            (None, Some(b))
                if b.provider != SsoProvider::Saml.as_str()
                    && b.issuer == issuer
                    && b.client_id == client_id =>
            {
                b.client_secret.clone()
            }
            (None, _) => {
                return Err(Error::validation(
                    "client_secret",
                    "client_secret_required",
                    "give the client secret (required when the issuer or client id changes)",
                ));
            }
        };
        if input.sso_required {
            require_break_glass_owner(&mut tx, None).await?;
        }
        let row = SsoConfigRow {
            provider: input.provider.as_str().to_owned(),
            issuer,
            client_id,
            client_secret: sealed,
            hosted_domain,
            allowed_domains: serde_json::to_string(&domains)
                .map_err(|_| Error::internal("serialise domains"))?,
            jit_enabled: input.jit_enabled,
            jit_role,
            sso_required: input.sso_required,
            updated_at: now,
        };
        tx.put_sso_config(&row).await?;
        // One SSO configuration per tenant: switching from SAML drops its half.
        tx.delete_saml_config().await?;
        let bg = tx.break_glass_users().await?;
        let out = doc(&row, &rt.redirect_uri, bg)?;
        let summary = |d: &SsoSettingsDoc| {
            json!({"provider": d.provider, "issuer": d.issuer, "hosted_domain": d.hosted_domain,
                   "client_id": d.client_id, "allowed_domains": d.allowed_domains,
                   "jit_enabled": d.jit_enabled, "jit_role": d.jit_role, "sso_required": d.sso_required})
        };
        let old = before
            .as_ref()
            .map(|b| doc(b, &rt.redirect_uri, Vec::new()))
            .transpose()?;
        let ev = Event {
            action: "settings.sso.update",
            success: true,
            object_type: Some("settings"),
            object_id: Some("sso".into()),
            details: json!({"old": old.as_ref().map(summary), "new": summary(&out),
                            "client_secret_changed": secret.is_some()}),
        };
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn delete_sso_settings(&self, actor: &Actor, ctx: &RequestContext) -> Result<()> {
        Self::require_sso_admin(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        if !tx.delete_sso_config().await? {
            return Err(not_configured());
        }
        let keys = self.keys(&mut tx).await?;
        let ev = Event {
            action: "settings.sso.delete",
            success: true,
            object_type: Some("settings"),
            object_id: Some("sso".into()),
            details: json!({}),
        };
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks (or unmarks) an owner as break-glass: may sign in with a password when the tenant
    /// requires SSO. Owners only.
    pub async fn set_break_glass(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        user: UserId,
        on: bool,
    ) -> Result<()> {
        Self::require_sso_admin(actor)?;
        actor.require(Permission::OwnersManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let row = tx.user(user).await?.ok_or_else(Error::not_found)?;
        if on && (row.role != Role::Owner || !row.status.is_active()) {
            return Err(Error::validation(
                "user",
                "break_glass_owner_only",
                "only an active owner can be a break-glass account",
            ));
        }
        if !on && tx.sso_config().await?.is_some_and(|c| c.sso_required) {
            require_break_glass_owner(&mut tx, Some(user)).await?;
        }
        tx.set_break_glass(user, on, self.now()).await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok("user.break_glass", "user", user).with(json!({"break_glass": on}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether `user` may sign in with a password: yes, unless the tenant requires SSO and
    /// the user is not a break-glass owner. A refusal is audited and answered with
    /// `403 sso_required`. Called by `login()` once the password has been verified, so the
    /// answer tells nothing to someone who does not know the password.
    pub async fn sign_in_without_sso_allowed(
        &self,
        tenant: TenantId,
        user: &UserRow,
        method: &'static str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let required = tx.sso_config().await?.is_some_and(|c| c.sso_required);
        if !required {
            return Ok(());
        }
        let break_glass = user.role == Role::Owner && tx.is_break_glass(user.id).await?;
        drop(tx);
        if break_glass {
            return Ok(());
        }
        let mut w = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut w).await?;
        let ev = Event {
            action: "auth.login",
            success: false,
            object_type: Some("user"),
            object_id: Some(user.id.to_string()),
            details: json!({"method": method, "reason": "sso_required"}),
        };
        self.audit(&mut w, &keys, "anonymous", ctx, ev).await?;
        w.commit().await?;
        Err(Error::new(
            ErrorKind::Forbidden,
            "sso_required",
            "this organisation signs in with single sign-on",
        ))
    }
}

/// Allowed email domains and the just-in-time role, shared by OIDC and SAML settings.
pub(crate) fn shared_settings(
    actor: &Actor,
    allowed_domains: &[String],
    jit_role: Option<Role>,
) -> Result<(Vec<String>, Role)> {
    if allowed_domains.is_empty() || allowed_domains.len() > 50 {
        return Err(Error::validation(
            "allowed_domains",
            "invalid_domains",
            "give 1 to 50 email domains",
        ));
    }
    let mut domains = allowed_domains
        .iter()
        .map(|d| domain("allowed_domains", d))
        .collect::<Result<Vec<_>>>()?;
    domains.sort();
    domains.dedup();
    let jit_role = jit_role.unwrap_or(Role::Member);
    if jit_role == Role::Owner {
        return Err(Error::validation(
            "jit_role",
            "invalid_jit_role",
            "users created at sign-in cannot be owners",
        ));
    }
    if jit_role == Role::Admin {
        actor.require(Permission::OwnersManage)?;
    }
    Ok((domains, jit_role))
}

/// SSO required needs an active break-glass owner other than `except`, or the tenant could
/// lock itself out when its IdP fails.
pub(crate) async fn require_break_glass_owner(
    tx: &mut crate::db::TenantTx,
    except: Option<UserId>,
) -> Result<()> {
    for id in tx.break_glass_users().await? {
        if Some(id) == except {
            continue;
        }
        if let Some(u) = tx.user(id).await?
            && u.role == Role::Owner
            && u.status.is_active()
        {
            return Ok(());
        }
    }
    Err(Error::new(
        ErrorKind::Conflict,
        "break_glass_required",
        "requiring SSO needs at least one active break-glass owner",
    ))
}

pub(crate) fn not_configured() -> Error {
    Error::new(
        ErrorKind::NotFound,
        "sso_not_configured",
        "this organisation has no single sign-on",
    )
}

// ---- sign-in ------------------------------------------------------------------------------

/// Where to send the browser, and the binding secret for its `__Host-kluis_sso` cookie.
pub struct SsoStart {
    pub redirect_url: String,
    pub binding: String,
}

/// The callback's query parameters, as received.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SsoCallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    /// Set by the provider when the user or the provider refused.
    pub error: Option<String>,
    /// RFC 9207: the issuer of this response.
    pub iss: Option<String>,
}

pub(crate) fn derive(binding: &str, purpose: &str) -> String {
    use base64::Engine as _;
    let mut h = Sha256::new();
    h.update(b"kluis-sso\0");
    h.update(purpose.as_bytes());
    h.update(b"\0");
    h.update(binding.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

pub(crate) fn state_failed() -> Error {
    Error::new(
        ErrorKind::BadRequest,
        "sso_state_invalid",
        "this sign-in link is unknown, used, expired or from another browser; start again",
    )
}

pub(crate) fn sso_failed() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "sso_failed",
        "single sign-on failed; see the organisation's audit trail",
    )
}

/// A failed callback: the reason for the audit trail, and the error for the browser.
pub(crate) struct Failure {
    pub(crate) reason: &'static str,
    pub(crate) error: Error,
}

impl Failure {
    pub(crate) fn new(reason: &'static str, error: Error) -> Self {
        Failure { reason, error }
    }
}

impl From<crate::db::StoreError> for Failure {
    fn from(e: crate::db::StoreError) -> Self {
        Failure::from(Error::from(e))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure {
            reason: "internal_error",
            error: e,
        }
    }
}

impl Kluis {
    /// The first steps of every SSO return (OIDC callback, SAML ACS): consumes the pending
    /// sign-in named by `state` (single use: the row is deleted before anything else, whatever
    /// happens next), refuses it once expired, and refuses it without the binding cookie of the
    /// browser that started it (a stolen callback URL is useless, and the attempt burns the
    /// state). Returns the row and the verified binding secret.
    pub(crate) async fn take_pending_sign_in<'b>(
        &self,
        tenant: TenantId,
        state: &str,
        binding: Option<&'b str>,
    ) -> Result<(crate::db::sso::SsoPendingRow, &'b str), Failure> {
        let pending = async {
            let mut tx = self.store.tenant(tenant).begin().await?;
            let p = tx.take_sso_pending(&token::hash_secret(state)).await?;
            tx.commit().await?;
            Ok::<_, Error>(p)
        }
        .await?;
        let Some(pending) = pending else {
            return Err(Failure::new("state_unknown", state_failed()));
        };
        if self.now() >= pending.expires_at {
            return Err(Failure::new("state_expired", state_failed()));
        }
        let bound = binding.is_some_and(|b| {
            token::constant_time_eq(&token::hash_secret(b), &pending.binding_hash)
        });
        let Some(binding) = binding.filter(|_| bound) else {
            return Err(Failure::new("browser_mismatch", state_failed()));
        };
        Ok((pending, binding))
    }

    /// Starts a sign-in for the organisation with this slug.
    pub async fn sso_start(&self, organisation: &str, ctx: &RequestContext) -> Result<SsoStart> {
        let rt = self.sso_runtime()?;
        let mut p = self.store.platform_read().await?;
        let t = p
            .tenant_by_slug(organisation.trim())
            .await?
            .filter(|t| t.status.is_active())
            .ok_or_else(not_configured)?;
        drop(p);
        let mut tx = self.store.tenant(t.id).begin_read().await?;
        let cfg = tx.sso_config().await?.ok_or_else(not_configured)?;
        if cfg.provider == SsoProvider::Saml.as_str() {
            return Err(Error::new(
                ErrorKind::BadRequest,
                "sso_use_saml",
                "this organisation signs in with SAML: use /sso/saml/start",
            ));
        }
        let keys = self.keys(&mut tx).await?;
        let client_secret =
            keys.open_str("sso_configs", "client_secret", t.id.0, &cfg.client_secret)?;
        drop(tx);

        let binding = token::generate_secret();
        let state = format!("{}.{}", t.id.0.simple(), token::generate_secret());
        let nonce = derive(&binding, "nonce");
        let pkce = derive(&binding, "pkce");
        let client = ClientSettings {
            issuer: cfg.issuer.clone(),
            client_id: cfg.client_id.clone(),
            client_secret,
            redirect_uri: rt.redirect_uri.clone(),
        };
        let extra: Vec<(&str, &str)> = cfg
            .hosted_domain
            .as_deref()
            .map(|hd| vec![("hd", hd)])
            .unwrap_or_default();
        let url = rt
            .rp
            .authorization_url(
                &client,
                &FlowSecrets {
                    state: &state,
                    nonce: &nonce,
                    pkce_verifier: &pkce,
                },
                &extra,
            )
            .await;
        let url = match url {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(tenant = %t.id, reason = e.reason(), "SSO discovery failed");
                self.audit_sso_failure(t.id, None, e.reason(), ctx).await?;
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "sso_provider_unavailable",
                    "the organisation's identity provider cannot be reached",
                ));
            }
        };
        self.record_pending_sign_in(t.id, &state, binding, &nonce, &cfg.issuer, url)
            .await
    }

    /// Stores a sign-in in flight (hashes of the state, the browser binding and the nonce or
    /// SAML request id; single use, 10 minutes), shared by OpenID Connect and SAML.
    pub(crate) async fn record_pending_sign_in(
        &self,
        tenant: TenantId,
        state: &str,
        binding: String,
        nonce: &str,
        issuer: &str,
        redirect_url: String,
    ) -> Result<SsoStart> {
        let now = self.now();
        let mut w = self.store.tenant(tenant).begin().await?;
        let pending = w
            .insert_sso_pending(
                &token::hash_secret(state),
                &token::hash_secret(&binding),
                &token::hash_secret(nonce),
                issuer,
                now,
                now + PENDING_TTL_MS,
            )
            .await?;
        if pending > MAX_PENDING {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "sso_busy",
                "too many sign-ins in progress; try again in a few minutes",
            ));
        }
        w.commit().await?;
        Ok(SsoStart {
            redirect_url,
            binding,
        })
    }

    /// Completes a sign-in: see the module documentation for the checks.
    pub async fn sso_callback(
        &self,
        params: &SsoCallbackParams,
        binding: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome> {
        let rt = self.sso_runtime()?;
        let tenant = params
            .state
            .as_deref()
            .and_then(crate::tokens::parse_session_token)
            .map(|(t, _)| t);
        let Some(tenant) = tenant else {
            self.audit_sso_failure(TenantId::PLATFORM, None, "state_malformed", ctx)
                .await?;
            return Err(state_failed());
        };
        match self.callback_inner(rt, tenant, params, binding, ctx).await {
            Ok(out) => Ok(out),
            Err((user, f)) => {
                if f.error.kind == ErrorKind::Internal || f.error.kind == ErrorKind::Unavailable {
                    tracing::error!(tenant = %tenant, reason = f.reason, error = %f.error, "SSO callback failed");
                }
                self.audit_sso_failure(tenant, user, f.reason, ctx).await?;
                Err(f.error)
            }
        }
    }

    async fn callback_inner(
        &self,
        rt: &SsoRuntime,
        tenant: TenantId,
        params: &SsoCallbackParams,
        binding: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, (Option<UserId>, Failure)> {
        let fail = |reason, error| (None, Failure::new(reason, error));
        let state = params.state.as_deref().unwrap_or_default();
        let (pending, binding) = self
            .take_pending_sign_in(tenant, state, binding)
            .await
            .map_err(|f| (None, f))?;
        if params.error.is_some() {
            return Err(fail("idp_error", sso_failed()));
        }
        let Some(code) = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
        else {
            return Err(fail("code_missing", sso_failed()));
        };

        let (cfg, client_secret) = async {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            let cfg = tx.sso_config().await?.ok_or_else(not_configured)?;
            let keys = self.keys(&mut tx).await?;
            let secret =
                keys.open_str("sso_configs", "client_secret", tenant.0, &cfg.client_secret)?;
            Ok::<_, Error>((cfg, secret))
        }
        .await
        .map_err(|e| (None, Failure::from(e)))?;
        if cfg.issuer != pending.issuer || cfg.provider == SsoProvider::Saml.as_str() {
            return Err(fail("configuration_changed", sso_failed()));
        }
        // RFC 9207: a response that names another issuer is a mix-up.
        if params.iss.as_deref().is_some_and(|i| i != cfg.issuer) {
            return Err(fail("wrong_issuer", sso_failed()));
        }
        let client = ClientSettings {
            issuer: cfg.issuer.clone(),
            client_id: cfg.client_id.clone(),
            client_secret,
            redirect_uri: rt.redirect_uri.clone(),
        };
        let nonce_hash = pending.nonce_hash.clone();
        let nonce_ok = move |n: &str| token::constant_time_eq(&token::hash_secret(n), &nonce_hash);
        let identity = rt
            .rp
            .complete(&client, code, &derive(binding, "pkce"), &nonce_ok)
            .await
            .map_err(|e| fail(e.reason(), sso_failed()))?;
        if let Some(hd) = &cfg.hosted_domain
            && identity.hosted_domain.as_deref() != Some(hd.as_str())
        {
            return Err(fail(
                "hosted_domain_mismatch",
                Error::new(
                    ErrorKind::Forbidden,
                    "sso_domain_not_allowed",
                    "your account's domain may not sign in to this organisation",
                ),
            ));
        }
        let user = self
            .sso_user(tenant, &cfg, &identity, ctx)
            .await
            .map_err(|f| (None, f))?;
        let user_id = user.id;
        self.start_session(
            tenant,
            user.id,
            crate::sessions::SessionStage::Sso,
            "oidc",
            ctx,
        )
        .await
        .map_err(|e| (Some(user_id), Failure::from(e)))
    }

    /// The user an IdP account signs in as: linked before, or linked now by verified email,
    /// or created just in time.
    pub(crate) async fn sso_user(
        &self,
        tenant: TenantId,
        cfg: &SsoConfigRow,
        id: &kluis_oidc::Identity,
        ctx: &RequestContext,
    ) -> Result<UserRow, Failure> {
        let forbidden = |code, msg: &str| Error::new(ErrorKind::Forbidden, code, msg);
        // Every sign-in, linked or not, must come with a verified address in an allowed
        // domain: removing a domain locks its people out.
        let email = match (&id.email, id.email_verified) {
            (Some(e), true) => validate::email("email", e).map_err(|_| {
                Failure::new(
                    "email_invalid",
                    forbidden(
                        "sso_email_not_verified",
                        "the provider sent no usable email address",
                    ),
                )
            })?,
            _ => {
                return Err(Failure::new(
                    "email_not_verified",
                    forbidden(
                        "sso_email_not_verified",
                        "the identity provider did not assert a verified email address",
                    ),
                ));
            }
        };
        let domain = email.domain();
        if !domains_of(cfg)?.iter().any(|d| d == domain) {
            return Err(Failure::new(
                "domain_not_allowed",
                forbidden(
                    "sso_domain_not_allowed",
                    "your account's domain may not sign in to this organisation",
                ),
            ));
        }

        let now = self.now();
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let subject = keys.blind("sso.subject", &format!("{}\n{}", id.issuer, id.subject));
        let (user, how) = match tx.sso_identity_user(&subject).await? {
            Some(uid) => (tx.user(uid).await?, "linked"),
            None => match tx.user_by_email_index(&keys.email_index(&email)).await? {
                Some(u) => (Some(u), "email"),
                None if cfg.jit_enabled => {
                    let role = cfg.jit_role;
                    let name = id
                        .name
                        .as_deref()
                        .and_then(|n| validate::name("display_name", n).ok())
                        .unwrap_or_else(|| {
                            email
                                .as_str()
                                .split('@')
                                .next()
                                .unwrap_or_default()
                                .to_owned()
                        });
                    let created = insert_user(
                        self,
                        &mut tx,
                        &NewUserInput {
                            email: email.as_str().to_owned(),
                            display_name: name,
                            role,
                            password: None,
                        },
                        now,
                    )
                    .await?;
                    let ev = Event::ok("user.create", "user", created.id).with(json!({
                        "email": created.email, "role": created.role, "invited": false,
                        "via": "sso_jit"
                    }));
                    self.audit(&mut tx, &keys, "sso", ctx, ev).await?;
                    (tx.user(created.id).await?, "jit")
                }
                None => {
                    return Err(Failure::new(
                        "no_account",
                        forbidden(
                            "sso_no_account",
                            "there is no account for you in this organisation; ask an administrator",
                        ),
                    ));
                }
            },
        };
        let Some(user) = user else {
            return Err(Failure::new("no_account", Error::unauthenticated()));
        };
        if !user.status.is_active() {
            return Err(Failure::new(
                "user_disabled",
                forbidden(
                    "sso_user_disabled",
                    "your account in this organisation is disabled",
                ),
            ));
        }
        tx.link_sso_identity(&subject, user.id, now).await?;
        if how != "linked" {
            let ev = Event::ok("user.sso_link", "user", user.id)
                .with(json!({"issuer": id.issuer, "via": how}));
            self.audit(&mut tx, &keys, "sso", ctx, ev).await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    async fn audit_sso_failure(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        self.audit_sso_failure_as(tenant, user, "oidc", reason, ctx)
            .await
    }

    /// `auth.login` failed, by `method` (`oidc` or `saml`), with a reason code.
    pub(crate) async fn audit_sso_failure_as(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        method: &str,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let ev = Event {
            action: "auth.login",
            success: false,
            object_type: Some("user"),
            object_id: user.map(|u| u.to_string()),
            details: json!({"method": method, "reason": reason}),
        };
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        self.audit(&mut tx, &keys, "anonymous", ctx, ev).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(provider: SsoProvider) -> SsoSettingsInput {
        SsoSettingsInput {
            provider,
            entra_tenant_id: None,
            issuer: None,
            hosted_domain: None,
            client_id: "c".into(),
            client_secret: None,
            allowed_domains: vec!["acme.nl".into()],
            jit_enabled: false,
            jit_role: None,
            sso_required: false,
        }
    }

    #[test]
    fn presets_pick_the_issuer() {
        let mut i = input(SsoProvider::Entra);
        i.entra_tenant_id = Some("0D2F1C4E-8A7B-4F7C-9E7A-1B2C3D4E5F60".into());
        assert_eq!(
            issuer_for(&i).unwrap(),
            (
                "https://login.microsoftonline.com/0d2f1c4e-8a7b-4f7c-9e7a-1b2c3d4e5f60/v2.0"
                    .into(),
                None
            )
        );
        for bad in ["common", "organizations", "consumers", "a/b", ""] {
            i.entra_tenant_id = Some(bad.into());
            assert!(issuer_for(&i).is_err(), "{bad}");
        }
        let mut g = input(SsoProvider::Google);
        g.hosted_domain = Some("Acme.NL".into());
        assert_eq!(
            issuer_for(&g).unwrap(),
            ("https://accounts.google.com".into(), Some("acme.nl".into()))
        );
        g.issuer = Some("https://evil.example".into());
        assert!(issuer_for(&g).is_err());
        let mut o = input(SsoProvider::Oidc);
        assert!(issuer_for(&o).is_err(), "generic OIDC needs an issuer");
        o.issuer = Some("https://idp.acme.nl".into());
        assert_eq!(issuer_for(&o).unwrap().0, "https://idp.acme.nl");
    }

    #[test]
    fn domains_are_validated() {
        assert_eq!(domain("d", " Acme.NL. ").unwrap(), "acme.nl");
        for bad in [
            "acme",
            "-acme.nl",
            "acme..nl",
            "ac me.nl",
            "acme.nl/x",
            "*.acme.nl",
        ] {
            assert!(domain("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flow_secrets_are_derived_per_purpose() {
        let b = "binding";
        assert_ne!(derive(b, "pkce"), derive(b, "nonce"));
        assert_ne!(derive(b, "pkce"), derive("other", "pkce"));
        // A valid PKCE verifier: 43 characters of the unreserved set.
        let v = derive(b, "pkce");
        assert_eq!(v.len(), 43);
        assert!(
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
