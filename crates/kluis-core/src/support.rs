//! Support access ("just-in-time access"): platform operators reach a tenant only through a
//! grant its owner or admin approved, for at most 24 hours, read or read-write.
//!
//! - **Operators** are platform accounts, separate from every tenant's users: created at the
//!   console, signing in with a password *and* a TOTP code every time (no operator without a
//!   second factor), holding an 8-hour session token (`kluiso_...`).
//! - **Grants** live in the tenant they open (its RLS covers them). An operator asks with a
//!   reason, access and hours; an owner or admin approves or refuses, or grants on their own
//!   initiative; revoking ends it at the next request in every process (the grant is read from
//!   the database on every request, never cached).
//! - **Under a grant** every request is recorded (`support.access`), every change carries the
//!   grant in its actor label (`support:<operator>:<grant>`), the high-risk actions are refused
//!   whatever the access (`403 support_action_blocked`, see [`crate::authz`]), and contact
//!   details are masked unless unmasked one value at a time (audited).
//! - **Watching**: many grants per operator per day, one operator in many tenants, use outside
//!   office hours, bursts of requests under one grant; a hit is a `support.alert` audit event,
//!   an email to the owners and a metric.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use crate::audit::{Event, actor_label};
use crate::authz::Principal;
use crate::db::TenantTx;
use crate::db::support::{OperatorRow, SupportGrantRow};
use crate::keys::TenantKeys;
use crate::mail::templates::{self, Recipient};
use crate::tenants::PlatformActor;
use crate::users::rfc3339;
use crate::{
    Actor, Error, ErrorKind, Kluis, Permission, RequestContext, Result, Role, TenantId, blocking,
    validate,
};
use kluis_crypto::{password, token, totp};
pub use kluis_types::ids::{OperatorId, SupportGrantId};

/// Operator session tokens start with this, so they are told apart from API keys.
pub const OPERATOR_TOKEN_PREFIX: &str = "kluiso_";
/// The request header naming the grant an operator's request uses.
pub const GRANT_HEADER: &str = "kluis-support-grant";
/// The longest grant (seed 000: "max 24 h").
pub const MAX_GRANT_HOURS: i64 = 24;
const OPERATOR_SESSION_MS: i64 = 8 * 3600 * 1000;
const HOUR_MS: i64 = 3600 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Thresholds of the watching rules.
#[derive(Debug, Clone)]
pub struct SupportWatch {
    /// More grants than this asked for or received by one operator in 24 hours.
    pub grants_per_day: i64,
    /// More tenants than this reached by one operator in 24 hours.
    pub tenants_per_day: i64,
    /// More requests than this under one grant within one minute (a bulk read).
    pub requests_per_minute: u32,
    /// Office hours, Europe/Amsterdam local time, Monday to Friday: `[start, end)` hours.
    pub office_hours: (u8, u8),
}

impl Default for SupportWatch {
    fn default() -> Self {
        SupportWatch {
            grants_per_day: 5,
            tenants_per_day: 3,
            requests_per_minute: 120,
            office_hours: (7, 19),
        }
    }
}

/// Read, or read and write (create and change; deleting is blocked either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SupportAccessLevel {
    Read,
    Write,
}

impl SupportAccessLevel {
    fn as_str(self) -> &'static str {
        match self {
            SupportAccessLevel::Read => "read",
            SupportAccessLevel::Write => "write",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(SupportAccessLevel::Read),
            "write" => Some(SupportAccessLevel::Write),
            _ => None,
        }
    }
}

/// A signed-in operator (from an operator session token).
#[derive(Debug, Clone)]
pub struct Operator {
    pub id: OperatorId,
    pub email: String,
    pub name: String,
}

impl Operator {
    fn label(&self) -> String {
        format!("operator:{}", self.id)
    }
}

/// What the console prints once when it creates an operator.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorCreated {
    pub id: OperatorId,
    pub email: String,
    pub password: String,
    /// Base32 TOTP secret for the operator's authenticator app.
    pub totp_secret: String,
    pub otpauth_uri: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OperatorSession {
    /// Bearer token for the support-access routes (8 hours).
    pub token: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorSignIn {
    pub email: String,
    pub password: String,
    pub code: String,
}

/// An operator's request for access to one tenant.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupportRequestInput {
    /// The tenant's slug or id.
    pub tenant: String,
    pub reason: String,
    pub access: SupportAccessLevel,
    /// 1 to 24.
    pub hours: i64,
}

/// A grant an owner or admin gives on their own initiative.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupportGrantInput {
    /// The operator's email address.
    pub operator: String,
    pub reason: String,
    pub access: SupportAccessLevel,
    pub hours: i64,
}

/// A grant as tenants and operators see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SupportGrant {
    #[schema(value_type = uuid::Uuid)]
    pub id: SupportGrantId,
    #[schema(value_type = uuid::Uuid)]
    pub tenant: TenantId,
    #[schema(value_type = uuid::Uuid)]
    pub operator_id: OperatorId,
    pub operator: String,
    pub reason: String,
    pub access: SupportAccessLevel,
    pub hours: i64,
    /// `requested`, `active`, `expired`, `refused` or `revoked`.
    pub status: String,
    pub requested_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub expires_at: Option<String>,
    pub first_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The label every audit event made under this grant carries.
    pub actor: String,
}

fn seal_operator_hash(keys: &TenantKeys, id: OperatorId, phc: &str) -> Result<String> {
    use base64::Engine;
    let sealed = keys.seal_str("operators", "password_hash", id.0, phc)?;
    Ok(format!(
        "{}{}",
        crate::passwords::SEALED_PREFIX,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
    ))
}

fn open_operator_hash(keys: &TenantKeys, id: OperatorId, stored: &str) -> Result<String> {
    use base64::Engine;
    let b64 = stored
        .strip_prefix(crate::passwords::SEALED_PREFIX)
        .ok_or_else(|| Error::internal("an operator's password hash is not sealed"))?;
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| Error::internal("an operator's password hash is malformed"))?;
    keys.open_str("operators", "password_hash", id.0, &sealed)
}

fn grant_label(operator: OperatorId, grant: SupportGrantId) -> String {
    format!("support:{operator}:{grant}")
}

fn grant_view(tenant: TenantId, g: &SupportGrantRow, now: i64) -> SupportGrant {
    let status = match (g.status.as_str(), g.expires_at) {
        ("active", Some(e)) if e <= now => "expired",
        (s, _) => s,
    };
    SupportGrant {
        id: g.id,
        tenant,
        operator_id: g.operator_id,
        operator: g.operator_name.clone(),
        reason: g.reason.clone(),
        access: SupportAccessLevel::parse(&g.access).unwrap_or(SupportAccessLevel::Read),
        hours: g.hours,
        status: status.to_owned(),
        requested_at: rfc3339(g.requested_at),
        decided_at: g.decided_at.map(rfc3339),
        decided_by: g.decided_by.clone(),
        expires_at: g.expires_at.map(rfc3339),
        first_used_at: g.first_used_at.map(rfc3339),
        revoked_at: g.revoked_at.map(rfc3339),
        actor: grant_label(g.operator_id, g.id),
    }
}

fn blocked() -> Error {
    Error::new(
        ErrorKind::Forbidden,
        "support_action_blocked",
        "this action is not available under support access",
    )
}

/// The error for a high-risk action under a grant (see [`crate::authz`]).
pub fn support_action_blocked() -> Error {
    blocked()
}

fn check_hours(hours: i64) -> Result<i64> {
    if (1..=MAX_GRANT_HOURS).contains(&hours) {
        Ok(hours)
    } else {
        Err(Error::validation(
            "hours",
            "out_of_range",
            "support access lasts 1 to 24 hours",
        ))
    }
}

fn check_reason(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.len() < 10 || r.chars().count() > 500 {
        return Err(Error::validation(
            "reason",
            "invalid",
            "give a reason of 10 to 500 characters (what the customer asked, a ticket number)",
        ));
    }
    Ok(r.to_owned())
}

/// Who decides about support access in a tenant: a signed-in owner or admin (never a key, never
/// an operator).
fn require_decider(actor: &Actor) -> Result<String> {
    match actor.principal() {
        Principal::User { .. } | Principal::Console => {
            actor.require(Permission::SettingsManage)?;
            Ok(actor_label(actor))
        }
        Principal::Support { .. } => Err(blocked()),
        Principal::ApiKey { .. } | Principal::Scim { .. } => Err(Error::forbidden(
            "support access is decided by a signed-in owner or admin, not with a key",
        )),
    }
}

/// Hour and weekday (0 = Monday) in Europe/Amsterdam: CET, or CEST from 01:00 UTC on the last
/// Sunday of March to 01:00 UTC on the last Sunday of October (the EU rule).
fn amsterdam_hour_and_weekday(now_ms: i64) -> (u8, u8) {
    use time::{Date, Month, OffsetDateTime, Time, Weekday};
    let utc = OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let last_sunday = |month: Month| {
        let mut d = Date::from_calendar_date(utc.year(), month, 31).unwrap_or(utc.date());
        while d.weekday() != Weekday::Sunday {
            d = d.previous_day().unwrap_or(d);
        }
        d.with_time(Time::from_hms(1, 0, 0).unwrap_or(Time::MIDNIGHT))
            .assume_utc()
    };
    let summer = utc >= last_sunday(Month::March) && utc < last_sunday(Month::October);
    let local = utc + time::Duration::hours(if summer { 2 } else { 1 });
    (local.hour(), local.weekday().number_days_from_monday())
}

/// Alerts already raised, so a rule fires once per grant (per process).
static ALERTED: Mutex<Option<HashSet<(SupportGrantId, &'static str)>>> = Mutex::new(None);
/// Requests per grant in the current minute (per process).
static MINUTE: Mutex<Option<HashMap<SupportGrantId, (i64, u32)>>> = Mutex::new(None);

fn first_alert(grant: SupportGrantId, rule: &'static str) -> bool {
    let mut g = ALERTED.lock().unwrap_or_else(|e| e.into_inner());
    let set = g.get_or_insert_with(HashSet::new);
    if set.len() > 100_000 {
        set.clear();
    }
    set.insert((grant, rule))
}

fn count_request(grant: SupportGrantId, now: i64) -> u32 {
    let minute = now.div_euclid(60_000);
    let mut g = MINUTE.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    map.retain(|_, (m, _)| *m >= minute - 1);
    let e = map.entry(grant).or_insert((minute, 0));
    if e.0 != minute {
        *e = (minute, 0);
    }
    e.1 += 1;
    e.1
}

/// What an owner's email says happened.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SupportNotice {
    Requested,
    Granted,
    FirstUse,
    Alert(&'static str),
}

impl Kluis {
    // ---- operators ------------------------------------------------------------------------

    /// Creates an operator (console only). The password and TOTP secret are generated and
    /// returned once; both are needed at every sign-in.
    pub async fn create_operator(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        email: &str,
        name: &str,
    ) -> Result<OperatorCreated> {
        let email = validate::email("email", email)?.as_str().to_owned();
        let name = validate::name("name", name)?;
        let password = token::generate_secret();
        let pw = Zeroizing::new(password.clone());
        let hash = blocking(move || password::hash_password(&pw)).await??;
        let secret = totp::generate_secret()?;
        let id = OperatorId::new();
        let mut keys_tx = self.store.tenant(TenantId::PLATFORM).begin_read().await?;
        let keys = self.keys(&mut keys_tx).await?;
        drop(keys_tx);
        let sealed = keys.seal("operators", "totp_secret", id.0, &secret)?;
        // The hash is sealed under the platform's data key like tenant users' hashes (see
        // `passwords.rs`): a copy of the database alone gives nothing to guess against.
        let hash = seal_operator_hash(&keys, id, &hash)?;
        let mut p = self.store.platform().await?;
        if p.operator_by_email(&email).await?.is_some() {
            return Err(Error::new(
                ErrorKind::Conflict,
                "operator_exists",
                "an operator with this email exists",
            ));
        }
        p.insert_operator(&OperatorRow {
            id,
            email: email.clone(),
            name: name.clone(),
            password_hash: hash,
            totp_secret: sealed,
            last_totp_step: 0,
            created_at: self.now(),
            disabled_at: None,
        })
        .await?;
        let tx = p.enter_tenant(TenantId::PLATFORM).await?;
        let ev = Event::ok("operator.create", "operator", id.0).with(json!({"name": name}));
        self.audit_platform(tx, by.label(), ctx, ev)
            .await?
            .commit()
            .await?;
        let uri = totp::otpauth_uri(&secret, "Kluis operators", &email)?;
        Ok(OperatorCreated {
            id,
            email,
            password,
            totp_secret: totp::secret_base32(&secret),
            otpauth_uri: uri,
        })
    }

    /// Disables an operator and ends their sessions (console only).
    pub async fn disable_operator(
        &self,
        by: &PlatformActor,
        ctx: &RequestContext,
        email: &str,
    ) -> Result<()> {
        let mut p = self.store.platform().await?;
        let o = p
            .operator_by_email(email.trim())
            .await?
            .ok_or_else(Error::not_found)?;
        p.disable_operator(o.id, self.now()).await?;
        let tx = p.enter_tenant(TenantId::PLATFORM).await?;
        let ev = Event::ok("operator.disable", "operator", o.id.0);
        self.audit_platform(tx, by.label(), ctx, ev)
            .await?
            .commit()
            .await?;
        Ok(())
    }

    /// Password and TOTP code, both required; a code is accepted once. Every attempt is in the
    /// platform audit log. Failures say only "unauthenticated".
    pub async fn operator_sign_in(
        &self,
        ctx: &RequestContext,
        input: &OperatorSignIn,
    ) -> Result<OperatorSession> {
        let email = input.email.trim().to_lowercase();
        let row = self
            .store
            .platform_read()
            .await?
            .operator_by_email(&email)
            .await?;
        let pw = Zeroizing::new(input.password.clone());
        let (ok_password, row) = match row {
            Some(r) if r.disabled_at.is_none() => {
                let mut keys_tx = self.store.tenant(TenantId::PLATFORM).begin_read().await?;
                let keys = self.keys(&mut keys_tx).await?;
                drop(keys_tx);
                let h = open_operator_hash(&keys, r.id, &r.password_hash)?;
                (
                    blocking(move || password::verify_password(&pw, &h)).await??,
                    Some(r),
                )
            }
            _ => {
                blocking(move || password::burn_verify(&pw)).await?;
                (false, None)
            }
        };
        let step = match (&row, ok_password) {
            (Some(r), true) => {
                let mut keys_tx = self.store.tenant(TenantId::PLATFORM).begin_read().await?;
                let keys = self.keys(&mut keys_tx).await?;
                drop(keys_tx);
                let secret = Zeroizing::new(keys.open(
                    "operators",
                    "totp_secret",
                    r.id.0,
                    &r.totp_secret,
                )?);
                totp::verify(&secret, input.code.trim(), self.now_secs())
            }
            _ => None,
        };
        let mut p = self.store.platform().await?;
        let accepted = match (&row, step) {
            (Some(r), Some(step)) => {
                p.use_operator_totp_step(r.id, i64::try_from(step).unwrap_or(i64::MAX))
                    .await?
            }
            _ => false,
        };
        let now = self.now();
        let session = if let (true, Some(r)) = (accepted, &row) {
            let secret = token::generate_secret();
            let expires_at = now + OPERATOR_SESSION_MS;
            p.insert_operator_session(&token::hash_secret(&secret), r.id, now, expires_at)
                .await?;
            Some(OperatorSession {
                token: format!("{OPERATOR_TOKEN_PREFIX}{secret}"),
                expires_at: rfc3339(expires_at),
            })
        } else {
            None
        };
        let tx = p.enter_tenant(TenantId::PLATFORM).await?;
        let (label, ev) = match &row {
            Some(r) => (
                format!("operator:{}", r.id),
                Event {
                    action: "operator.sign_in",
                    success: session.is_some(),
                    object_type: Some("operator"),
                    object_id: Some(r.id.to_string()),
                    details: json!({}),
                },
            ),
            None => (
                "anonymous".to_owned(),
                Event {
                    action: "operator.sign_in",
                    success: false,
                    object_type: Some("operator"),
                    object_id: None,
                    details: json!({"reason": "unknown_operator"}),
                },
            ),
        };
        self.audit_platform(tx, &label, ctx, ev)
            .await?
            .commit()
            .await?;
        session.ok_or_else(Error::unauthenticated)
    }

    /// The operator holding a live session token.
    pub async fn authenticate_operator(&self, presented: &str) -> Result<Operator> {
        let secret = presented
            .strip_prefix(OPERATOR_TOKEN_PREFIX)
            .ok_or_else(Error::unauthenticated)?;
        let mut p = self.store.platform_read().await?;
        let r = p
            .operator_by_session(&token::hash_secret(secret), self.now())
            .await?
            .ok_or_else(Error::unauthenticated)?;
        Ok(Operator {
            id: r.id,
            email: r.email,
            name: r.name,
        })
    }

    pub async fn operator_sign_out(
        &self,
        op: &Operator,
        ctx: &RequestContext,
        presented: &str,
    ) -> Result<()> {
        let secret = presented
            .strip_prefix(OPERATOR_TOKEN_PREFIX)
            .ok_or_else(Error::unauthenticated)?;
        let mut p = self.store.platform().await?;
        p.end_operator_session(&token::hash_secret(secret), self.now())
            .await?;
        let tx = p.enter_tenant(TenantId::PLATFORM).await?;
        let ev = Event::ok("operator.sign_out", "operator", op.id.0);
        self.audit_platform(tx, &op.label(), ctx, ev)
            .await?
            .commit()
            .await?;
        Ok(())
    }

    // ---- grants: operators ask ------------------------------------------------------------

    /// An operator asks for access to a tenant; its owners are emailed.
    pub async fn request_support_access(
        &self,
        op: &Operator,
        ctx: &RequestContext,
        input: &SupportRequestInput,
    ) -> Result<SupportGrant> {
        let reason = check_reason(&input.reason)?;
        let hours = check_hours(input.hours)?;
        let tenant = self.tenant_by_ref(&input.tenant).await?;
        let g = SupportGrantRow {
            id: SupportGrantId::new(),
            operator_id: op.id,
            operator_name: format!("{} <{}>", op.name, op.email),
            reason,
            access: input.access.as_str().to_owned(),
            hours,
            status: "requested".into(),
            requested_at: self.now(),
            decided_at: None,
            decided_by: None,
            expires_at: None,
            first_used_at: None,
            revoked_at: None,
        };
        self.store_new_grant(tenant, &g, &op.label(), ctx, SupportNotice::Requested)
            .await?;
        Ok(grant_view(tenant, &g, self.now()))
    }

    /// One of the operator's own requests or grants (to see whether it was approved).
    pub async fn operator_grant(&self, op: &Operator, id: SupportGrantId) -> Result<SupportGrant> {
        let tenant = self
            .store
            .platform_read()
            .await?
            .grant_tenant(id)
            .await?
            .ok_or_else(Error::not_found)?;
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let g = tx
            .support_grant(id)
            .await?
            .filter(|g| g.operator_id == op.id)
            .ok_or_else(Error::not_found)?;
        Ok(grant_view(tenant, &g, self.now()))
    }

    async fn tenant_by_ref(&self, r: &str) -> Result<TenantId> {
        let mut p = self.store.platform_read().await?;
        let found = match r.parse::<TenantId>() {
            Ok(id) => p.tenant(id).await?,
            Err(_) => p.tenant_by_slug(r.trim()).await?,
        };
        found
            .filter(|t| t.id != TenantId::PLATFORM)
            .map(|t| t.id)
            .ok_or_else(Error::not_found)
    }

    /// Inserts a grant (asked for or given), logs it for the watching rules, audits it in the
    /// tenant's log and emails the owners, in one transaction per store.
    async fn store_new_grant(
        &self,
        tenant: TenantId,
        g: &SupportGrantRow,
        actor: &str,
        ctx: &RequestContext,
        notice: SupportNotice,
    ) -> Result<()> {
        let now = self.now();
        let activity = {
            let mut p = self.store.platform().await?;
            p.log_operator_grant(g.id, g.operator_id, tenant, now)
                .await?;
            let a = p.operator_activity(g.operator_id, now - DAY_MS).await?;
            p.commit().await?;
            a
        };
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        tx.insert_support_grant(g).await?;
        let action = match notice {
            SupportNotice::Requested => "support.request",
            _ => "support.grant",
        };
        let ev = Event::ok(action, "support_grant", g.id.0).with(json!({
            "operator": g.operator_id.to_string(),
            "reason": g.reason,
            "access": g.access,
            "hours": g.hours,
        }));
        self.audit(&mut tx, &keys, actor, ctx, ev).await?;
        self.queue_support_notice(&mut tx, &keys, g, notice).await?;
        let w = &self.config.support;
        let mut alerts = Vec::new();
        if activity.grants > w.grants_per_day {
            alerts.push(("many_grants", json!({"grants_24h": activity.grants})));
        }
        if activity.tenants > w.tenants_per_day {
            alerts.push(("many_tenants", json!({"tenants_24h": activity.tenants})));
        }
        for (rule, details) in alerts {
            if first_alert(g.id, rule) {
                self.raise_support_alert(&mut tx, &keys, g, rule, details, ctx)
                    .await?;
            }
        }
        tx.commit().await?;
        self.wake_mailer(tenant);
        Ok(())
    }

    // ---- grants: the tenant decides -------------------------------------------------------

    /// Every grant and request of the tenant, newest first (owners and admins).
    pub async fn list_support_grants(&self, actor: &Actor) -> Result<Vec<SupportGrant>> {
        require_decider(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let now = self.now();
        Ok(tx
            .support_grants(500)
            .await?
            .iter()
            .map(|g| grant_view(actor.tenant(), g, now))
            .collect())
    }

    pub async fn get_support_grant(
        &self,
        actor: &Actor,
        id: SupportGrantId,
    ) -> Result<SupportGrant> {
        require_decider(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let g = tx.support_grant(id).await?.ok_or_else(Error::not_found)?;
        Ok(grant_view(actor.tenant(), &g, self.now()))
    }

    /// Approves a pending request: access starts now and ends `hours` later.
    pub async fn approve_support_request(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: SupportGrantId,
    ) -> Result<SupportGrant> {
        self.decide(actor, ctx, id, "requested", "active", "support.approve")
            .await
    }

    pub async fn refuse_support_request(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: SupportGrantId,
    ) -> Result<SupportGrant> {
        self.decide(actor, ctx, id, "requested", "refused", "support.refuse")
            .await
    }

    /// Ends an active grant at once (or withdraws a pending request).
    pub async fn revoke_support_grant(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: SupportGrantId,
    ) -> Result<SupportGrant> {
        let by = require_decider(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let g = tx.support_grant(id).await?.ok_or_else(Error::not_found)?;
        let now = self.now();
        let from = g.status.clone();
        if !matches!(from.as_str(), "active" | "requested")
            || !tx
                .decide_support_grant(id, &from, "revoked", &by, now, None)
                .await?
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                "support_grant_closed",
                "this grant is already refused or revoked",
            ));
        }
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok("support.revoke", "support_grant", id.0);
        self.audit(&mut tx, &keys, &by, ctx, ev).await?;
        let g = tx.support_grant(id).await?.ok_or_else(Error::not_found)?;
        tx.commit().await?;
        Ok(grant_view(actor.tenant(), &g, now))
    }

    async fn decide(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: SupportGrantId,
        from: &str,
        to: &str,
        action: &str,
    ) -> Result<SupportGrant> {
        let by = require_decider(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let g = tx.support_grant(id).await?.ok_or_else(Error::not_found)?;
        let now = self.now();
        let expires = (to == "active").then_some(now + g.hours * HOUR_MS);
        if !tx
            .decide_support_grant(id, from, to, &by, now, expires)
            .await?
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                "support_grant_decided",
                "this request was already decided",
            ));
        }
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok(action, "support_grant", id.0);
        self.audit(&mut tx, &keys, &by, ctx, ev).await?;
        let g = tx.support_grant(id).await?.ok_or_else(Error::not_found)?;
        if to == "active" {
            self.queue_support_notice(&mut tx, &keys, &g, SupportNotice::Granted)
                .await?;
        }
        tx.commit().await?;
        self.wake_mailer(actor.tenant());
        Ok(grant_view(actor.tenant(), &g, now))
    }

    /// An owner or admin opens the tenant to a named operator without being asked.
    pub async fn grant_support_access(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: &SupportGrantInput,
    ) -> Result<SupportGrant> {
        let by = require_decider(actor)?;
        let reason = check_reason(&input.reason)?;
        let hours = check_hours(input.hours)?;
        let op = self
            .store
            .platform_read()
            .await?
            .operator_by_email(&input.operator.trim().to_lowercase())
            .await?
            .filter(|o| o.disabled_at.is_none())
            .ok_or_else(|| Error::validation("operator", "unknown_operator", "no such operator"))?;
        let now = self.now();
        let g = SupportGrantRow {
            id: SupportGrantId::new(),
            operator_id: op.id,
            operator_name: format!("{} <{}>", op.name, op.email),
            reason,
            access: input.access.as_str().to_owned(),
            hours,
            status: "active".into(),
            requested_at: now,
            decided_at: Some(now),
            decided_by: Some(by.clone()),
            expires_at: Some(now + hours * HOUR_MS),
            first_used_at: None,
            revoked_at: None,
        };
        self.store_new_grant(actor.tenant(), &g, &by, ctx, SupportNotice::Granted)
            .await?;
        Ok(grant_view(actor.tenant(), &g, now))
    }

    /// Everything done under one grant: its requests (`support.access`), its changes and
    /// unmaskings, its alerts, from the tamper-evident log (access transparency).
    pub async fn support_grant_activity(
        &self,
        actor: &Actor,
        id: SupportGrantId,
    ) -> Result<Vec<crate::audit::AuditEvent>> {
        require_decider(actor)?;
        let g = {
            let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
            tx.support_grant(id).await?.ok_or_else(Error::not_found)?
        };
        let mut q = crate::audit::AuditQuery {
            actor: Some(grant_label(g.operator_id, g.id)),
            limit: Some(200),
            ..Default::default()
        };
        let mut out = Vec::new();
        loop {
            let page = self.audit_log_page(actor.tenant(), &q).await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) if out.len() < 10_000 => q.cursor = Some(c),
                _ => break,
            }
        }
        Ok(out)
    }

    // ---- using a grant ----------------------------------------------------------------------

    /// The actor of an operator's request under a grant: the operator's session must be live,
    /// the grant theirs, approved and not expired or revoked. Every request is recorded.
    pub async fn authenticate_support(
        &self,
        presented: &str,
        grant: &str,
        ctx: &RequestContext,
        method: &str,
        path: &str,
    ) -> Result<Actor> {
        let op = self.authenticate_operator(presented).await?;
        let grant: SupportGrantId = grant.trim().parse().map_err(|_| {
            Error::new(
                ErrorKind::Forbidden,
                "support_grant_invalid",
                "name an active support grant in the Kluis-Support-Grant header",
            )
        })?;
        let invalid = || {
            Error::new(
                ErrorKind::Forbidden,
                "support_grant_invalid",
                "this support grant is not active (not approved, expired or revoked)",
            )
        };
        let tenant = {
            let mut p = self.store.platform_read().await?;
            p.grant_tenant(grant).await?.ok_or_else(invalid)?
        };
        let now = self.now();
        let mut tx = self.store.tenant(tenant).begin().await?;
        let g = tx
            .support_grant(grant)
            .await?
            .filter(|g| g.operator_id == op.id)
            .ok_or_else(invalid)?;
        if g.status != "active" || g.expires_at.is_none_or(|e| e <= now) {
            return Err(invalid());
        }
        let keys = self.keys(&mut tx).await?;
        let label = grant_label(op.id, grant);
        let ev = Event {
            action: "support.access",
            success: true,
            object_type: Some("support_grant"),
            object_id: Some(grant.to_string()),
            details: json!({"method": method, "path": path}),
        };
        self.audit(&mut tx, &keys, &label, ctx, ev).await?;
        if tx.mark_support_grant_used(grant, now).await? {
            self.queue_support_notice(&mut tx, &keys, &g, SupportNotice::FirstUse)
                .await?;
        }
        let w = &self.config.support;
        let (hour, weekday) = amsterdam_hour_and_weekday(now);
        if (weekday >= 5 || hour < w.office_hours.0 || hour >= w.office_hours.1)
            && first_alert(grant, "outside_office_hours")
        {
            let d = json!({"local_hour": hour, "weekday": weekday});
            self.raise_support_alert(&mut tx, &keys, &g, "outside_office_hours", d, ctx)
                .await?;
        }
        let n = count_request(grant, now);
        if n > w.requests_per_minute && first_alert(grant, "bulk_reads") {
            let d = json!({"requests_in_minute": n});
            self.raise_support_alert(&mut tx, &keys, &g, "bulk_reads", d, ctx)
                .await?;
        }
        tx.commit().await?;
        self.wake_mailer(tenant);
        let write = g.access == "write";
        Ok(Actor::new(
            tenant,
            Principal::Support {
                operator: op.id,
                grant,
                write,
            },
        ))
    }

    async fn raise_support_alert(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        g: &SupportGrantRow,
        rule: &'static str,
        details: serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<()> {
        metrics::counter!("kluis_support_alerts_total", "rule" => rule).increment(1);
        tracing::warn!(grant = %g.id, operator = %g.operator_id, rule, "support access alert");
        let mut d = details;
        d["rule"] = json!(rule);
        d["operator"] = json!(g.operator_id.to_string());
        let ev = Event::ok("support.alert", "support_grant", g.id.0).with(d);
        self.audit(tx, keys, "system", ctx, ev).await?;
        self.queue_support_notice(tx, keys, g, SupportNotice::Alert(rule))
            .await
    }

    /// Emails every active owner (nothing without a mailer).
    async fn queue_support_notice(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        g: &SupportGrantRow,
        notice: SupportNotice,
    ) -> Result<()> {
        let Some(m) = &self.mail else {
            return Ok(());
        };
        let organisation = self.organisation_name(tx.tenant()).await?;
        let link = format!("{}/settings/support-access", m.mailer.config.public_url);
        let mut owners = Vec::new();
        let mut after = None;
        loop {
            let page = tx.list_users(after, 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            owners.extend(
                page.into_iter()
                    .filter(|u| u.role == Role::Owner && u.status == crate::Status::Active),
            );
        }
        let expires = g.expires_at.map(utc_minutes).unwrap_or_default();
        for u in owners {
            let (email, name) = self.recipient_of(keys, &u).await?;
            let locale = self.locale_for(tx, u.id).await?;
            let mail = templates::support_access(
                locale,
                &Recipient {
                    email: &email,
                    name: &name,
                    organisation: &organisation,
                },
                notice,
                &g.operator_name,
                &g.reason,
                &expires,
                &link,
            );
            self.queue_mail(tx, keys, "support_access", &mail).await?;
        }
        Ok(())
    }
}

fn utc_minutes(ms: i64) -> String {
    let s = rfc3339(ms);
    // 2026-12-07T16:00:00Z -> 2026-12-07 16:00
    s.get(..16).map(|p| p.replace('T', " ")).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amsterdam_time_follows_the_eu_summer_time_rule() {
        // 2026-03-29 is the last Sunday of March: 00:59 UTC is 01:59 CET, 01:00 UTC 03:00 CEST.
        assert_eq!(amsterdam_hour_and_weekday(1_774_745_940_000).0, 1);
        assert_eq!(amsterdam_hour_and_weekday(1_774_746_000_000).0, 3);
        // 2026-10-25 (last Sunday of October) 00:30 UTC is 02:30 CEST; 01:30 UTC is 02:30 CET.
        assert_eq!(amsterdam_hour_and_weekday(1_792_888_200_000).0, 2);
        assert_eq!(amsterdam_hour_and_weekday(1_792_891_800_000).0, 2);
        // Monday 2026-12-07 16:13 UTC is 17:13 in Amsterdam, a Monday.
        assert_eq!(amsterdam_hour_and_weekday(1_796_660_000_000), (17, 0));
    }

    #[test]
    fn hours_and_reasons_are_bounded() {
        assert!(check_hours(0).is_err());
        assert!(check_hours(25).is_err());
        assert_eq!(check_hours(24).unwrap(), 24);
        assert!(check_reason("help").is_err());
        assert!(check_reason("ticket 4711: export fails").is_ok());
    }

    #[test]
    fn a_bulk_read_counts_within_one_minute() {
        let g = SupportGrantId::new();
        for _ in 0..5 {
            count_request(g, 60_000);
        }
        assert_eq!(count_request(g, 60_001), 6);
        assert_eq!(count_request(g, 120_000), 1);
    }
}
