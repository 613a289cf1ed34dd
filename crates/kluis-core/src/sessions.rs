//! Sign-in with a password, server-side sessions, CSRF tokens, sign-out.
//!
//! The session token and the CSRF token are 256-bit random secrets; only their SHA-256 hashes
//! are stored. A session ends after the idle timeout, the absolute timeout, logout, "sign out
//! everywhere", a password change (other sessions), or when its user is disabled or deleted.

use crate::db::rows::{NewSession, SessionRow, UserPatch};
use kluis_crypto::{password, token};
use serde::{Deserialize, Serialize};

use crate::UserId;
use crate::audit::{Event, actor_label};
use crate::keys::TenantKeys;
use crate::lockout::{AccountKey, Gate};
use crate::settings::{check_password, effective_policy};
use crate::users::{User, rfc3339, user_from_row};
use crate::{
    Actor, AuthStage, Error, ErrorKind, Kluis, Permission, Principal, RequestContext, Result, Role,
    SessionId, TenantId, blocking, ms, tokens, validate,
};
use serde_json::json;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    /// The tenant's slug (organisation name in the sign-in form).
    pub tenant: String,
    pub email: String,
    pub password: String,
}

/// What a correct password leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginStatus {
    /// Signed in.
    Complete,
    /// The session cookie is pending: answer `POST /api/v1/auth/mfa` within 5 minutes.
    MfaRequired,
    /// The session cookie is pending: enrol (`POST /api/v1/me/mfa/totp`, then `.../confirm`)
    /// within 5 minutes; the organisation requires a second factor.
    MfaEnrolmentRequired,
}

/// Result of a sign-in step. `session_token` goes into the HttpOnly cookie only. A pending
/// outcome carries no user or session details.
pub struct LoginOutcome {
    pub status: LoginStatus,
    pub session_token: String,
    pub csrf_token: String,
    pub session: Option<SessionInfo>,
    pub user: Option<User>,
    /// Seconds the cookie is valid for.
    pub max_age_secs: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    #[schema(value_type = uuid::Uuid)]
    pub id: SessionId,
    pub ip: String,
    pub user_agent: String,
    /// Browser and operating system read from the user agent, e.g. "Firefox on Linux".
    pub device: String,
    /// `password`, `mfa` (second factor verified), `pending_mfa` or `pending_enrol`.
    pub stage: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    /// True for the session this request was made with.
    pub current: bool,
}

/// IP address and user agent are personal data: sealed at rest.
pub(crate) fn info(
    keys: &TenantKeys,
    r: &SessionRow,
    current: Option<SessionId>,
) -> Result<SessionInfo> {
    let user_agent = keys.open_str("sessions", "user_agent", r.id.0, &r.user_agent)?;
    Ok(SessionInfo {
        id: r.id,
        ip: keys.open_str("sessions", "ip", r.id.0, &r.ip)?,
        device: device(&user_agent),
        user_agent,
        stage: r.stage.clone(),
        created_at: rfc3339(r.created_at),
        last_seen_at: rfc3339(r.last_seen_at),
        expires_at: rfc3339(r.expires_at),
        current: Some(r.id) == current,
    })
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// One answer for every kind of failed sign-in, so responses never reveal whether a tenant or
/// account exists.
fn invalid_credentials() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "invalid_credentials",
        "wrong organisation, email or password",
    )
}

/// Touching `last_seen_at` is a write; do it at most this often per session.
const TOUCH_EVERY_MS: i64 = 30_000;

impl Kluis {
    /// Password sign-in. The attempt is counted (per address and per account) before the
    /// password is checked; every failure, lockouts included, gets the same answer and costs
    /// the same work. A correct password leads to a full session, or to a pending one when a
    /// second factor is due (`mfa::second_step_due`).
    pub async fn login(&self, input: LoginInput, ctx: &RequestContext) -> Result<LoginOutcome> {
        let (mut lookup, account) = self.find_login_user(&input).await?;
        // The sealed hash is opened now, before the attempt gate below holds a connection
        // (a second one per sign-in would starve the pool under a burst of guesses).
        let mut stale_hash = None;
        if let Lookup::Found(t, u) = &mut lookup
            && let Some(stored) = u.password_hash.take()
        {
            let (phc, stale) = self.open_password_hash(*t, u.id, &stored).await?;
            u.password_hash = Some(phc);
            if stale {
                stale_hash = Some(stored);
            }
        }
        let gate = self.count_attempt(&account, ctx).await?;
        // From outside the organisation's allowlist the password is not even checked: no
        // guessing from elsewhere, and the answer says nothing about the password.
        if let (Some(tenant), user) = lookup.ids()
            && let Err(e) = self.check_network(tenant, &ctx.ip).await
        {
            if e.code == "ip_not_allowed" {
                self.login_failed(
                    Some(tenant),
                    user,
                    "ip_not_allowed",
                    &account,
                    &gate,
                    &input,
                    ctx,
                )
                .await?;
            }
            return Err(e);
        }
        self.attempt_delay(gate.account_failures).await;
        let hash = match (&gate.refused, &lookup) {
            (None, Lookup::Found(_, u)) => u.password_hash.clone(),
            _ => None,
        };
        let ok = match hash {
            Some(h) => {
                let pw = input.password.clone();
                blocking(move || password::verify_password(&pw, &h)).await??
            }
            None => {
                // Same work as a real check: unknown and locked accounts cost one argon2
                // verification too.
                let pw = input.password.clone();
                blocking(move || password::burn_verify(&pw)).await?;
                false
            }
        };
        let (tenant, user_row) = match lookup {
            Lookup::Found(t, u) if ok => (t, u),
            other => {
                let (tenant, user, reason) = match (gate.refused, other) {
                    (Some(refused), other) => {
                        let (t, u) = other.ids();
                        (t, u, refused)
                    }
                    (None, Lookup::Found(t, u)) if u.password_hash.is_none() => {
                        (Some(t), Some(u.id), "no_password_set")
                    }
                    (None, Lookup::Found(t, u)) => (Some(t), Some(u.id), "wrong_password"),
                    (
                        None,
                        Lookup::Failed {
                            tenant,
                            user,
                            reason,
                        },
                    ) => (tenant, user, reason),
                };
                self.login_failed(tenant, user, reason, &account, &gate, &input, ctx)
                    .await?;
                return Err(invalid_credentials());
            }
        };
        // The password is right; may this user sign in with a password at all ("SSO
        // required")? Asked only now, so the answer is no oracle without the password.
        self.sign_in_without_sso_allowed(tenant, &user_row, "password", ctx)
            .await?;
        let second_step = self.second_step_due(tenant, &user_row).await?;
        self.attempt_succeeded(&account, &gate, second_step.is_none())
            .await?;
        if let Some(stored) = stale_hash {
            self.reseal_after_sign_in(tenant, user_row.id, &stored)
                .await;
        }
        match second_step {
            None => {
                self.start_session(tenant, user_row.id, SessionStage::Password, "password", ctx)
                    .await
            }
            Some(stage) => {
                self.start_pending_session(tenant, user_row.id, stage, ctx)
                    .await
            }
        }
    }

    /// A failed attempt: audited in the tenant's log (the platform's for unknown
    /// organisations), and the account is locked when it has had too many.
    #[expect(
        clippy::too_many_arguments,
        reason = "the failed attempt's facts, all needed for its audit event"
    )]
    async fn login_failed(
        &self,
        tenant: Option<TenantId>,
        user: Option<UserId>,
        reason: &str,
        account: &AccountKey,
        gate: &Gate,
        input: &LoginInput,
        ctx: &RequestContext,
    ) -> Result<()> {
        let ev = Event {
            action: "auth.login",
            success: false,
            object_type: Some("user"),
            object_id: user.map(|u| u.to_string()),
            details: json!({"method": "password", "reason": reason, "email": input.email.trim(), "organisation": input.tenant.trim()}),
        };
        let mut tx = self
            .store
            .tenant(tenant.unwrap_or(TenantId::PLATFORM))
            .begin()
            .await?;
        let keys = self.keys(&mut tx).await?;
        self.audit(&mut tx, &keys, "anonymous", ctx, ev).await?;
        let locked = if account.scope == tx.tenant() {
            self.lock_if_due(
                &mut tx,
                &keys,
                account,
                gate.account_failures,
                user,
                &input.email,
                ctx,
            )
            .await?
        } else {
            None
        };
        tx.commit().await?;
        if let Some(until) = locked {
            self.after_lockout(tenant.unwrap_or(TenantId::PLATFORM), user, until);
        }
        Ok(())
    }

    /// Creates a full session for `user` (after every factor the sign-in needs) and audits
    /// `auth.login` with `method`. The one place sessions are started, for every sign-in method.
    pub async fn start_session(
        &self,
        tenant: TenantId,
        user: UserId,
        stage: SessionStage,
        method: &str,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome> {
        if stage.is_pending() {
            return Err(Error::internal("start_session with a pending stage"));
        }
        let ev = json!({"method": method});
        self.open_session(tenant, user, stage, "auth.login", ev, ctx)
            .await
    }

    /// A pending session: opens only the second-factor challenge or enrolment, for 5 minutes.
    pub(crate) async fn start_pending_session(
        &self,
        tenant: TenantId,
        user: UserId,
        stage: SessionStage,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome> {
        let ev = json!({"method": "password", "stage": stage.as_str()});
        self.open_session(tenant, user, stage, "auth.login_pending", ev, ctx)
            .await
    }

    async fn open_session(
        &self,
        tenant: TenantId,
        user: UserId,
        stage: SessionStage,
        action: &str,
        details: serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome> {
        let secret = token::generate_secret();
        let csrf = token::generate_secret();
        let now = self.now();
        let id = SessionId::new();
        let lifetime = if stage.is_pending() {
            PENDING_LIFETIME_MS
        } else {
            ms(self.config.session_absolute_timeout)
        };
        let expires_at = now + lifetime;
        // Every sign-in method (password, second factor, passkey, OIDC, SAML) ends here.
        self.check_network(tenant, &ctx.ip).await?;
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let user_row = tx.user(user).await?.ok_or_else(Error::unauthenticated)?;
        if !user_row.status.is_active() {
            return Err(invalid_credentials());
        }
        tx.insert_session(&NewSession {
            id,
            user_id: user,
            token_hash: &token::hash_secret(&secret),
            csrf_hash: &token::hash_secret(&csrf),
            ip: &keys.seal_str("sessions", "ip", id.0, &truncate(&ctx.ip, 64))?,
            user_agent: &keys.seal_str(
                "sessions",
                "user_agent",
                id.0,
                &truncate(&ctx.user_agent, 256),
            )?,
            now,
            expires_at,
            stage: stage.as_str(),
        })
        .await?;
        self.count_sealed(&mut tx, &keys, 2).await?;
        let mut details = details;
        if let serde_json::Value::Object(m) = &mut details {
            m.insert("session".into(), json!(id));
        }
        let ev = Event::ok(action, "user", user).with(details);
        self.audit(&mut tx, &keys, &format!("user:{user}"), ctx, ev)
            .await?;
        let row = tx
            .list_user_sessions(user, now)
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| Error::internal("session vanished"))?;
        tx.commit().await?;
        let (status, session, user) = match stage {
            SessionStage::PendingMfa => (LoginStatus::MfaRequired, None, None),
            SessionStage::PendingEnrol => (LoginStatus::MfaEnrolmentRequired, None, None),
            SessionStage::Password | SessionStage::Mfa | SessionStage::Sso => (
                LoginStatus::Complete,
                Some(info(&keys, &row, Some(id))?),
                Some(user_from_row(&keys, user_row)?),
            ),
        };
        Ok(LoginOutcome {
            status,
            session_token: tokens::session_token(tenant, &secret),
            csrf_token: csrf,
            session,
            user,
            max_age_secs: lifetime / 1000,
        })
    }

    /// The active tenant and active user for a sign-in attempt, or why not (for the audit
    /// trail only: the caller answers every failure the same way).
    async fn find_login_user(&self, input: &LoginInput) -> Result<(Lookup, AccountKey)> {
        let slug = input.tenant.trim();
        let mut p = self.store.platform_read().await?;
        let tenant = p.tenant_by_slug(slug).await?;
        drop(p);
        let account = self
            .account_key(tenant.as_ref().map(|t| t.id), slug, &input.email)
            .await?;
        let Some(t) = tenant else {
            return Ok((
                Lookup::Failed {
                    tenant: None,
                    user: None,
                    reason: "unknown_organisation",
                },
                account,
            ));
        };
        if !t.status.is_active() {
            return Ok((
                Lookup::Failed {
                    tenant: Some(t.id),
                    user: None,
                    reason: "organisation_suspended",
                },
                account,
            ));
        }
        let Ok(email) = validate::email("email", &input.email) else {
            return Ok((
                Lookup::Failed {
                    tenant: Some(t.id),
                    user: None,
                    reason: "unknown_user",
                },
                account,
            ));
        };
        let mut tx = self.store.tenant(t.id).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let lookup = match tx.user_by_email_index(&keys.email_index(&email)).await? {
            None => Lookup::Failed {
                tenant: Some(t.id),
                user: None,
                reason: "unknown_user",
            },
            Some(u) if !u.status.is_active() => Lookup::Failed {
                tenant: Some(t.id),
                user: Some(u.id),
                reason: "user_disabled",
            },
            Some(u) => Lookup::Found(t.id, u),
        };
        Ok((lookup, account))
    }

    /// Resolves a session cookie for an API route. `csrf` must be given (and match) for
    /// state-changing requests. Pending sessions (second factor still due) and sessions
    /// without a second factor whose user's role must have one are refused here, so no route
    /// that authenticates can forget it: 401 `mfa_required` / `mfa_enrolment_required`.
    pub async fn authenticate_session(
        &self,
        cookie: &str,
        csrf: Option<&str>,
        state_changing: bool,
    ) -> Result<Actor> {
        self.authenticate_session_for(cookie, csrf, state_changing, SessionUse::Api)
            .await
    }

    /// Like [`Kluis::authenticate_session`], for the second-step endpoints: `Challenge` accepts
    /// only a session waiting for its code, `Enrolment` a session that must enrol or a signed-in
    /// one (which may enrol voluntarily, or must because its role now requires it).
    pub async fn authenticate_session_for(
        &self,
        cookie: &str,
        csrf: Option<&str>,
        state_changing: bool,
        usage: SessionUse,
    ) -> Result<Actor> {
        let (tenant, secret) =
            tokens::parse_session_token(cookie).ok_or_else(Error::unauthenticated)?;
        let now = self.now();
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        // One statement: session, its user's role and status, the tenant's status and which
        // roles it requires a second factor of.
        let row = tx
            .session_for_auth(&token::hash_secret(secret))
            .await?
            .ok_or_else(Error::unauthenticated)?;
        drop(tx);
        let s = row.session;
        if !row.tenant_status.is_active() {
            return Err(suspended_or_unknown());
        }
        if now >= s.expires_at || now - s.last_seen_at >= ms(self.config.session_idle_timeout) {
            return Err(Error::unauthenticated());
        }
        if state_changing {
            let ok =
                csrf.is_some_and(|c| token::constant_time_eq(&token::hash_secret(c), &s.csrf_hash));
            if !ok {
                return Err(Error::new(
                    ErrorKind::Forbidden,
                    "csrf_failed",
                    "missing or wrong X-CSRF-Token header",
                ));
            }
        }
        if !row.user_status.is_active() {
            return Err(Error::unauthenticated());
        }
        let role = row.user_role;
        let stage = SessionStage::parse(&s.stage)?;
        let required = crate::mfa::required_for(row.mfa_required_roles.as_deref(), role);
        let auth_stage = match (usage, stage) {
            (SessionUse::Api, SessionStage::Mfa | SessionStage::Sso) => AuthStage::Full,
            (SessionUse::Api, SessionStage::Password) if !required => AuthStage::Full,
            (SessionUse::Api, SessionStage::Password | SessionStage::PendingMfa) => {
                return Err(mfa_required());
            }
            (SessionUse::Api, SessionStage::PendingEnrol) => {
                return Err(mfa_enrolment_required());
            }
            (SessionUse::Challenge, SessionStage::PendingMfa) => AuthStage::PendingMfa,
            (SessionUse::Challenge, _) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "no_pending_sign_in",
                    "this session is not waiting for a second factor",
                ));
            }
            (SessionUse::Enrolment, SessionStage::PendingEnrol) => AuthStage::PendingEnrol,
            (
                SessionUse::Enrolment,
                SessionStage::Password | SessionStage::Mfa | SessionStage::Sso,
            ) => AuthStage::Full,
            (SessionUse::Enrolment, SessionStage::PendingMfa) => return Err(mfa_required()),
        };
        if now - s.last_seen_at >= TOUCH_EVERY_MS {
            let mut w = self.store.tenant(tenant).begin().await?;
            w.touch_session(s.id, now).await?;
            w.commit().await?;
        }
        Ok(Actor::pending(
            tenant,
            Principal::User {
                id: s.user_id,
                role,
                session: Some(s.id),
            },
            auth_stage,
        ))
    }

    pub async fn logout(&self, actor: &Actor, ctx: &RequestContext) -> Result<()> {
        if let Principal::User {
            session: Some(s), ..
        } = actor.principal()
        {
            let mut tx = self.store.tenant(actor.tenant()).begin().await?;
            tx.revoke_session(*s, self.now()).await?;
            let keys = self.keys(&mut tx).await?;
            let ev = Event::ok("auth.logout", "session", s);
            self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// "Sign out all my sessions", this one included. Returns how many were ended.
    pub async fn logout_everywhere(&self, actor: &Actor, ctx: &RequestContext) -> Result<u64> {
        let user = actor.require_user()?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let n = tx.revoke_user_sessions(user, None, self.now()).await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok("auth.logout_all", "user", user).with(json!({"sessions_revoked": n}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    pub async fn my_sessions(&self, actor: &Actor) -> Result<Vec<SessionInfo>> {
        let user = actor.require_user()?;
        let current = match actor.principal() {
            Principal::User { session, .. } => *session,
            _ => None,
        };
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let rows = tx.list_user_sessions(user, self.now()).await?;
        rows.iter().map(|r| info(&keys, r, current)).collect()
    }

    /// Ends one of the caller's own sessions (e.g. a lost laptop). 404 for any other.
    pub async fn revoke_my_session(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        session: SessionId,
    ) -> Result<()> {
        let user = actor.require_user()?;
        self.revoke_one_session(actor, ctx, user, session).await
    }

    /// A user's live sessions, for an admin (privileged; audited as a read of personal data).
    pub async fn user_sessions(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<Vec<SessionInfo>> {
        actor.require(Permission::UsersManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        tx.user(user).await?.ok_or_else(Error::not_found)?;
        let keys = self.keys(&mut tx).await?;
        let rows = tx.list_user_sessions(user, self.now()).await?;
        let own = match actor.principal() {
            Principal::User { session, .. } => *session,
            _ => None,
        };
        let list = rows
            .iter()
            .map(|r| info(&keys, r, own))
            .collect::<Result<Vec<_>>>()?;
        let ev = Event::ok("user.sessions.view", "user", user).with(json!({"count": list.len()}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(list)
    }

    /// An admin ends one session of a user in their tenant (owners' sessions need the
    /// owner permission).
    pub async fn revoke_user_session(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        user: UserId,
        session: SessionId,
    ) -> Result<()> {
        actor.require(Permission::UsersManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let row = tx.user(user).await?.ok_or_else(Error::not_found)?;
        drop(tx);
        if row.role == Role::Owner {
            actor.require(Permission::OwnersManage)?;
        }
        self.revoke_one_session(actor, ctx, user, session).await
    }

    async fn revoke_one_session(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        user: UserId,
        session: SessionId,
    ) -> Result<()> {
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        if !tx.revoke_user_session(user, session, self.now()).await? {
            return Err(Error::not_found());
        }
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok("auth.session_revoke", "session", session).with(json!({"user": user}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        Ok(tx.commit().await?)
    }

    pub async fn me(&self, actor: &Actor) -> Result<User> {
        let user = actor.require_user()?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        user_from_row(
            &keys,
            tx.user(user).await?.ok_or_else(Error::unauthenticated)?,
        )
    }

    /// Changes the caller's own password and ends their other sessions.
    pub async fn change_password(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: PasswordChange,
    ) -> Result<()> {
        let user = actor.require_user()?;
        let keep = match actor.principal() {
            Principal::User { session, .. } => *session,
            _ => None,
        };
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let row = tx.user(user).await?.ok_or_else(Error::unauthenticated)?;
        let keys = self.keys(&mut tx).await?;
        let current_ok = crate::passwords::verify_with(
            &keys,
            user.0,
            row.password_hash.as_deref(),
            input.current_password.clone(),
        )
        .await?;
        if !current_ok {
            return Err(Error::validation(
                "current_password",
                "wrong_password",
                "the current password is wrong",
            ));
        }
        let policy = effective_policy(&mut tx).await?;
        check_password(&policy, &input.new_password).map_err(|e| e.with_field("new_password"))?;
        let hash = self
            .new_password_hash(&mut tx, user, input.new_password)
            .await?;
        let now = self.now();
        tx.update_user(
            user,
            &UserPatch {
                password_hash: Some(&hash),
                ..Default::default()
            },
            now,
        )
        .await?;
        let n = tx.revoke_user_sessions(user, keep, now).await?;
        // Reset links mailed earlier stop working with the password they were meant to replace.
        tx.delete_user_tokens(user, None).await?;

        let ev = Event::ok("auth.password_change", "user", user)
            .with(json!({"other_sessions_revoked": n}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// What a session cookie is presented for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionUse {
    /// Any API route: only a signed-in session.
    Api,
    /// `POST /api/v1/auth/mfa`.
    Challenge,
    /// The TOTP enrolment endpoints.
    Enrolment,
}

/// A session's stage (`sessions.stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// Signed in with a password alone.
    Password,
    /// Signed in, second factor verified.
    Mfa,
    /// Signed in through the organisation's identity provider (OIDC), which is responsible for
    /// its second factor: Kluis's "2FA required" applies to password sign-ins.
    Sso,
    PendingMfa,
    PendingEnrol,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStage::Password => "password",
            SessionStage::Mfa => "mfa",
            SessionStage::Sso => "sso",
            SessionStage::PendingMfa => "pending_mfa",
            SessionStage::PendingEnrol => "pending_enrol",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "password" => SessionStage::Password,
            "mfa" => SessionStage::Mfa,
            "sso" => SessionStage::Sso,
            "pending_mfa" => SessionStage::PendingMfa,
            "pending_enrol" => SessionStage::PendingEnrol,
            _ => return Err(Error::internal("unknown session stage stored")),
        })
    }

    pub fn is_pending(self) -> bool {
        matches!(self, SessionStage::PendingMfa | SessionStage::PendingEnrol)
    }
}

/// A pending session (second factor due) lives this long.
pub const PENDING_LIFETIME_MS: i64 = 5 * 60 * 1000;

pub(crate) fn mfa_required() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "mfa_required",
        "a second factor is required: answer POST /api/v1/auth/mfa, or sign in again",
    )
}

pub(crate) fn mfa_enrolment_required() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "mfa_enrolment_required",
        "your organisation requires a second factor: enrol with POST /api/v1/me/mfa/totp",
    )
}

/// "Firefox on Linux" from a user agent: the browser and system a person recognises in a
/// list of their sessions. Unknown parts stay generic; the full user agent is listed too.
pub(crate) fn device(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map_or_else(
        || {
            ua.split(['/', ' '])
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown browser")
                .chars()
                .take(40)
                .collect()
        },
        |(_, name)| name.to_owned(),
    );
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name);
    match system {
        Some(os) => format!("{browser} on {os}"),
        None => browser,
    }
}

pub(crate) fn suspended_or_unknown() -> Error {
    Error::new(
        ErrorKind::Forbidden,
        "tenant_suspended",
        "this organisation is suspended or does not exist",
    )
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

enum Lookup {
    Found(TenantId, crate::db::rows::UserRow),
    Failed {
        tenant: Option<TenantId>,
        user: Option<UserId>,
        reason: &'static str,
    },
}

impl Lookup {
    fn ids(&self) -> (Option<TenantId>, Option<UserId>) {
        match self {
            Lookup::Found(t, u) => (Some(*t), Some(u.id)),
            Lookup::Failed { tenant, user, .. } => (*tenant, *user),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::device;

    #[test]
    fn devices_from_user_agents() {
        for (ua, want) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            ("curl/8.5.0", "curl"),
            ("", "unknown browser"),
        ] {
            assert_eq!(device(ua), want, "{ua}");
        }
    }
}
