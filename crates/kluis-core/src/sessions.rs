//! Sign-in with a password, server-side sessions, CSRF tokens, sign-out.
//!
//! The session token and the CSRF token are 256-bit random secrets; only their SHA-256 hashes
//! are stored. A session ends after the idle timeout, the absolute timeout, logout, "sign out
//! everywhere", a password change (other sessions), or when its user is disabled or deleted.

use kluis_crypto::{password, token};
use kluis_store::rows::{NewSession, SessionRow, UserPatch};
use serde::{Deserialize, Serialize};

use crate::UserId;
use crate::audit::{Event, actor_label};
use crate::keys::TenantKeys;
use crate::settings::{check_password, effective_policy};
use crate::users::{User, rfc3339, user_from_row};
use crate::{
    Actor, Error, ErrorKind, Kluis, Principal, RequestContext, Result, Role, SessionId, TenantId,
    blocking, ms, tokens, validate,
};
use kluis_crypto::blind_index::normalise_email;
use serde_json::json;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    /// The tenant's slug (organisation name in the sign-in form).
    pub tenant: String,
    pub email: String,
    pub password: String,
}

/// Result of a successful sign-in. `session_token` goes into the HttpOnly cookie only.
pub struct LoginOutcome {
    pub session_token: String,
    pub csrf_token: String,
    pub session: SessionInfo,
    pub user: User,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    #[schema(value_type = uuid::Uuid)]
    pub id: SessionId,
    pub ip: String,
    pub user_agent: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    /// True for the session this request was made with.
    pub current: bool,
}

/// IP address and user agent are personal data: sealed at rest.
fn info(keys: &TenantKeys, r: &SessionRow, current: Option<SessionId>) -> Result<SessionInfo> {
    Ok(SessionInfo {
        id: r.id,
        ip: keys.open_str("sessions", "ip", r.id.0, &r.ip)?,
        user_agent: keys.open_str("sessions", "user_agent", r.id.0, &r.user_agent)?,
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
    pub async fn login(&self, input: LoginInput, ctx: &RequestContext) -> Result<LoginOutcome> {
        let (tenant, user_row) = match self.find_login_user(&input).await? {
            Lookup::Found(t, u) => (t, u),
            Lookup::Failed {
                tenant,
                user,
                reason,
            } => {
                // Same work as a real check: unknown accounts cost one argon2 verification too.
                let pw = input.password.clone();
                blocking(move || password::burn_verify(&pw)).await?;
                self.audit_login_failure(tenant, user, reason, &input, ctx)
                    .await?;
                return Err(invalid_credentials());
            }
        };
        let Some(hash) = user_row.password_hash.clone() else {
            let pw = input.password.clone();
            blocking(move || password::burn_verify(&pw)).await?;
            self.audit_login_failure(
                Some(tenant),
                Some(user_row.id),
                "no_password_set",
                &input,
                ctx,
            )
            .await?;
            return Err(invalid_credentials());
        };
        let pw = input.password.clone();
        let ok = blocking(move || password::verify_password(&pw, &hash)).await??;
        if !ok {
            self.audit_login_failure(
                Some(tenant),
                Some(user_row.id),
                "wrong_password",
                &input,
                ctx,
            )
            .await?;
            return Err(invalid_credentials());
        }

        let secret = token::generate_secret();
        let csrf = token::generate_secret();
        let now = self.now();
        let id = SessionId::new();
        let expires_at = now + ms(self.config.session_absolute_timeout);
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        tx.insert_session(&NewSession {
            id,
            user_id: user_row.id,
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
        })
        .await?;
        self.count_sealed(&mut tx, &keys, 2).await?;
        let ev = Event::ok("auth.login", "user", user_row.id)
            .with(json!({"method": "password", "session": id}));
        self.audit(&mut tx, &keys, &format!("user:{}", user_row.id), ctx, ev)
            .await?;
        let row = tx
            .list_user_sessions(user_row.id, now)
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| Error::internal("session vanished"))?;
        tx.commit().await?;
        Ok(LoginOutcome {
            session_token: tokens::session_token(tenant, &secret),
            csrf_token: csrf,
            session: info(&keys, &row, Some(id))?,
            user: user_from_row(&keys, user_row)?,
        })
    }

    /// The active tenant and active user for a sign-in attempt, or why not (for the audit
    /// trail only: the caller answers every failure the same way).
    async fn find_login_user(&self, input: &LoginInput) -> Result<Lookup> {
        let mut p = self.store.platform_read().await?;
        let Some(t) = p.tenant_by_slug(input.tenant.trim()).await? else {
            return Ok(Lookup::Failed {
                tenant: None,
                user: None,
                reason: "unknown_organisation",
            });
        };
        drop(p);
        if t.status != "active" {
            return Ok(Lookup::Failed {
                tenant: Some(t.id),
                user: None,
                reason: "organisation_suspended",
            });
        }
        let Ok(email) = validate::email("email", &input.email) else {
            return Ok(Lookup::Failed {
                tenant: Some(t.id),
                user: None,
                reason: "unknown_user",
            });
        };
        let mut tx = self.store.tenant(t.id).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        Ok(
            match tx
                .user_by_email_index(&keys.email_index(&normalise_email(&email)))
                .await?
            {
                None => Lookup::Failed {
                    tenant: Some(t.id),
                    user: None,
                    reason: "unknown_user",
                },
                Some(u) if u.status != "active" => Lookup::Failed {
                    tenant: Some(t.id),
                    user: Some(u.id),
                    reason: "user_disabled",
                },
                Some(u) => Lookup::Found(t.id, u),
            },
        )
    }

    /// Records a failed sign-in (never the attempted password) in the tenant's log, or in the
    /// platform log when the organisation is unknown.
    async fn audit_login_failure(
        &self,
        tenant: Option<TenantId>,
        user: Option<UserId>,
        reason: &str,
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
        tx.commit().await?;
        Ok(())
    }

    /// Resolves a session cookie. `csrf` must be given (and match) for state-changing requests.
    pub async fn authenticate_session(
        &self,
        cookie: &str,
        csrf: Option<&str>,
        state_changing: bool,
    ) -> Result<Actor> {
        let (tenant, secret) =
            tokens::parse_session_token(cookie).ok_or_else(Error::unauthenticated)?;
        let now = self.now();
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        // One statement: session, its user's role and status, and the tenant's status.
        let row = tx
            .session_for_auth(&token::hash_secret(secret))
            .await?
            .ok_or_else(Error::unauthenticated)?;
        drop(tx);
        let s = row.session;
        if row.tenant_status != "active" {
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
        if row.user_status != "active" {
            return Err(Error::unauthenticated());
        }
        let role =
            Role::parse(&row.user_role).ok_or_else(|| Error::internal("unknown role stored"))?;
        if now - s.last_seen_at >= TOUCH_EVERY_MS {
            let mut w = self.store.tenant(tenant).begin().await?;
            w.touch_session(s.id, now).await?;
            w.commit().await?;
        }
        Ok(Actor::new(
            tenant,
            Principal::User {
                id: s.user_id,
                role,
                session: Some(s.id),
            },
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
        let current_ok = match row.password_hash.clone() {
            Some(h) => {
                let pw = input.current_password.clone();
                blocking(move || password::verify_password(&pw, &h)).await??
            }
            None => false,
        };
        if !current_ok {
            return Err(Error::validation(
                "current_password",
                "wrong_password",
                "the current password is wrong",
            ));
        }
        let policy = effective_policy(&mut tx).await?;
        check_password(&policy, &input.new_password).map_err(|e| e.with_field("new_password"))?;
        let pw = input.new_password;
        let hash = blocking(move || password::hash_password(&pw)).await??;
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
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok("auth.password_change", "user", user)
            .with(json!({"other_sessions_revoked": n}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(())
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
    Found(TenantId, kluis_store::rows::UserRow),
    Failed {
        tenant: Option<TenantId>,
        user: Option<UserId>,
        reason: &'static str,
    },
}
