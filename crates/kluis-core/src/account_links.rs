//! Password reset by email and invitation acceptance: one-time links mailed to a user.
//!
//! A link is `<public_url>/reset#<token>` or `<public_url>/invite#<token>`; the token sits in
//! the URL fragment, which browsers never send to a server, so it cannot land in access logs
//! or Referer headers. Token: `<tenant hex>.<256-bit secret>` (the tenant part is not secret:
//! it lets the server open that tenant's transaction). Only SHA-256 of the secret is stored;
//! a token works once, expires (reset 30 minutes, invitation `invitation_ttl`), and every
//! link of a user goes when their password changes.

use std::sync::Arc;

use crate::db::TenantTx;
use crate::db::rows::{UserPatch, UserRow};
use kluis_crypto::token;
use serde::Deserialize;
use serde_json::json;

use crate::audit::{Event, actor_label};
use crate::keys::TenantKeys;
use crate::mail::templates::{self, Recipient};
use crate::settings::{check_password, effective_policy};
use crate::{
    Actor, Error, ErrorKind, Kluis, Permission, RequestContext, Result, Role, TenantId, UserId, ms,
    tokens, validate,
};

/// Live reset links a user may have at once; further requests send nothing.
pub const MAX_LIVE_RESET_LINKS: i64 = 3;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    /// The organisation's short name (as at sign-in).
    pub organisation: String,
    pub email: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetCompletion {
    /// The token from the link's fragment.
    pub token: String,
    pub new_password: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationAcceptance {
    /// The token from the link's fragment.
    pub token: String,
    pub password: String,
}

/// What happened to a reset request; recorded in the audit trail, never shown to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetRequestOutcome {
    Sent,
    Refused(&'static str),
}

fn link_invalid(kind: &str) -> Error {
    if kind == "invite" {
        Error::new(
            ErrorKind::Gone,
            "invitation_link_invalid",
            "this invitation link is unknown, expired or already used; ask an administrator to send a new one",
        )
    } else {
        Error::new(
            ErrorKind::Gone,
            "reset_link_invalid",
            "this password reset link is unknown, expired or already used; request a new one",
        )
    }
}

/// Bounds the reset requests handled in the background at once.
static RESET_WORKERS: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(16)));

impl Kluis {
    /// Accepts a reset request and handles it in the background, so the answer (always the
    /// same) and its timing say nothing about whether the account exists. Requests beyond
    /// the concurrency bound are dropped (and logged).
    pub fn request_password_reset(&self, input: PasswordResetRequest, ctx: RequestContext) {
        let Ok(permit) = RESET_WORKERS.clone().try_acquire_owned() else {
            tracing::warn!("too many password reset requests in flight; one dropped");
            return;
        };
        let kluis = self.clone();
        tokio::spawn(async move {
            if let Err(e) = kluis.handle_password_reset_request(&input, &ctx).await {
                tracing::error!(error = %e, "password reset request failed");
            }
            drop(permit);
        });
    }

    /// The work behind [`Kluis::request_password_reset`], awaited (tests use it directly).
    pub async fn handle_password_reset_request(
        &self,
        input: &PasswordResetRequest,
        ctx: &RequestContext,
    ) -> Result<ResetRequestOutcome> {
        let org = input.organisation.trim();
        // Ok(tenant, user) or Err(tenant, user, reason): the reason is for the audit trail only.
        let target: std::result::Result<_, (Option<TenantId>, Option<UserId>, &'static str)> = 'find: {
            let mut p = self.store.platform_read().await?;
            let Some(t) = p.tenant_by_slug(org).await? else {
                break 'find Err((None, None, "unknown_organisation"));
            };
            drop(p);
            if !t.status.is_active() {
                break 'find Err((Some(t.id), None, "organisation_suspended"));
            }
            let Ok(email) = validate::email("email", &input.email) else {
                break 'find Err((Some(t.id), None, "unknown_user"));
            };
            let mut r = self.store.tenant(t.id).begin_read().await?;
            let keys = self.keys(&mut r).await?;
            match r.user_by_email_index(&keys.email_index(&email)).await? {
                None => Err((Some(t.id), None, "unknown_user")),
                Some(u) if !u.status.is_active() => Err((Some(t.id), Some(u.id), "user_disabled")),
                Some(u) if u.password_hash.is_none() => {
                    Err((Some(t.id), Some(u.id), "no_password_set"))
                }
                Some(u) if self.mail.is_none() => {
                    Err((Some(t.id), Some(u.id), "mail_not_configured"))
                }
                Some(u) => Ok((t.id, u.id)),
            }
        };
        let details = json!({"email": input.email.trim(), "organisation": org});
        let (tenant, user) = match target {
            Ok(found) => found,
            Err((tenant, user, reason)) => {
                self.audit_reset_refusal(tenant, user, reason, details, ctx)
                    .await?;
                return Ok(ResetRequestOutcome::Refused(reason));
            }
        };
        let now = self.now();
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.user(user).await?.ok_or_else(Error::not_found)?;
        if tx.count_live_user_tokens(user, "reset", now).await? >= MAX_LIVE_RESET_LINKS {
            drop(tx);
            let reason = "too_many_live_links";
            self.audit_reset_refusal(Some(tenant), Some(user), reason, details, ctx)
                .await?;
            return Ok(ResetRequestOutcome::Refused(reason));
        }
        let ttl = self.config.password_reset_ttl;
        self.issue_link(&mut tx, &keys, &row, "reset", ms(ttl), now)
            .await?;
        let ev = Event::ok("auth.password_reset.request", "user", user).with(details);
        self.audit(&mut tx, &keys, "anonymous", ctx, ev).await?;
        tx.commit().await?;
        self.wake_mailer(tenant);
        Ok(ResetRequestOutcome::Sent)
    }

    async fn audit_reset_refusal(
        &self,
        tenant: Option<TenantId>,
        user: Option<UserId>,
        reason: &str,
        mut details: serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<()> {
        details["reason"] = json!(reason);
        let ev = Event {
            action: "auth.password_reset.request",
            success: false,
            object_type: Some("user"),
            object_id: user.map(|u| u.to_string()),
            details,
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

    /// Stores a new link of `kind` for `user` and queues its email in `tx`. The link exists
    /// only inside the sealed message: it is never returned, logged or stored in the clear.
    async fn issue_link(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        user: &UserRow,
        kind: &str,
        ttl_ms: i64,
        now: i64,
    ) -> Result<()> {
        let m = self.mail_runtime()?;
        let secret = token::generate_secret();
        tx.insert_user_token(
            &token::hash_secret(&secret),
            user.id,
            kind,
            now,
            now + ttl_ms,
        )
        .await?;
        let (email, name) = self.recipient_of(keys, user).await?;
        let organisation = self.organisation_name(tx.tenant()).await?;
        let locale = self.locale_for(tx, user.id).await?;
        let to = Recipient {
            email: &email,
            name: &name,
            organisation: &organisation,
        };
        let page = if kind == "invite" { "invite" } else { "reset" };
        let link = format!(
            "{}/{page}#{}",
            m.mailer.config.public_url,
            tokens::link_token(tx.tenant(), &secret)
        );
        let minutes = u64::try_from(ttl_ms / 60_000).unwrap_or(0);
        let mail = if kind == "invite" {
            templates::invitation(locale, &to, &link, minutes / 60)
        } else {
            templates::password_reset(locale, &to, &link, minutes)
        };
        let mail_kind = if kind == "invite" {
            "invitation"
        } else {
            "password_reset"
        };
        self.queue_mail(tx, keys, mail_kind, &mail).await?;
        Ok(())
    }

    /// Sends an invitation for a user created without a password, inside the creating
    /// transaction. Does nothing (returns false) without a mailer.
    pub(crate) async fn queue_invitation(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        user: UserId,
    ) -> Result<bool> {
        if self.mail.is_none() {
            return Ok(false);
        }
        let row = tx.user(user).await?.ok_or_else(Error::not_found)?;
        let now = self.now();
        let ttl = ms(self.config.invitation_ttl);
        self.issue_link(tx, keys, &row, "invite", ttl, now).await?;
        Ok(true)
    }

    /// Sends a new invitation email; earlier invitation links stop working.
    pub async fn resend_invitation(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: UserId,
    ) -> Result<()> {
        actor.require(Permission::UsersManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.user(id).await?.ok_or_else(Error::not_found)?;
        if row.role == Role::Owner {
            actor.require(Permission::OwnersManage)?;
        }
        if row.password_hash.is_some() {
            return Err(Error::new(
                ErrorKind::Conflict,
                "invitation_accepted",
                "this user has already set a password",
            ));
        }
        if !row.status.is_active() {
            return Err(Error::new(
                ErrorKind::Conflict,
                "user_disabled",
                "this user is disabled",
            ));
        }
        self.mail_runtime()?;
        let revoked = tx.delete_user_tokens(id, Some("invite")).await?;
        self.queue_invitation(&mut tx, &keys, id).await?;
        let ev = Event::ok("user.invite.resend", "user", id)
            .with(json!({"previous_links_revoked": revoked}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        self.wake_mailer(actor.tenant());
        Ok(())
    }

    /// Sets a new password with a reset link; every session of the user ends.
    pub async fn complete_password_reset(
        &self,
        input: PasswordResetCompletion,
        ctx: &RequestContext,
    ) -> Result<()> {
        self.use_link(
            "reset",
            &input.token,
            &input.new_password,
            "new_password",
            ctx,
        )
        .await
    }

    /// Sets the first password with an invitation link; the user can sign in from then on.
    pub async fn accept_invitation(
        &self,
        input: InvitationAcceptance,
        ctx: &RequestContext,
    ) -> Result<()> {
        self.use_link("invite", &input.token, &input.password, "password", ctx)
            .await
    }

    async fn use_link(
        &self,
        kind: &'static str,
        link_token: &str,
        new_password: &str,
        field: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let (tenant, secret) =
            tokens::parse_link_token(link_token.trim()).ok_or_else(|| link_invalid(kind))?;
        let mut p = self.store.platform_read().await?;
        let active = p
            .tenant(tenant)
            .await?
            .is_some_and(|t| t.status.is_active());
        drop(p);
        if !active {
            return Err(link_invalid(kind));
        }
        let action = if kind == "invite" {
            "user.invite.accept"
        } else {
            "auth.password_reset.complete"
        };
        let now = self.now();
        let mut tx = self.store.tenant(tenant).begin().await?;
        // Marks the link used; any error below rolls that back, so a refused password can be
        // retried with the same link.
        let Some(user) = tx
            .consume_user_token(&token::hash_secret(secret), kind, now)
            .await?
        else {
            drop(tx);
            self.audit_link_refusal(tenant, action, "invalid_link", ctx)
                .await?;
            return Err(link_invalid(kind));
        };
        let row = tx.user(user).await?.ok_or_else(|| link_invalid(kind))?;
        let eligible = row.status.is_active()
            && match kind {
                "invite" => row.password_hash.is_none(),
                _ => row.password_hash.is_some(),
            };
        if !eligible {
            return Err(link_invalid(kind));
        }
        let policy = effective_policy(&mut tx).await?;
        check_password(&policy, new_password).map_err(|e| e.with_field(field))?;
        let hash = self
            .new_password_hash(&mut tx, user, new_password.to_owned())
            .await?;
        tx.update_user(
            user,
            &UserPatch {
                password_hash: Some(&hash),
                ..Default::default()
            },
            now,
        )
        .await?;
        let links = tx.delete_user_tokens(user, None).await?;
        let sessions = tx.revoke_user_sessions(user, None, now).await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok(action, "user", user)
            .with(json!({"sessions_revoked": sessions, "links_revoked": links}));
        self.audit(&mut tx, &keys, &format!("user:{user}"), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_link_refusal(
        &self,
        tenant: TenantId,
        action: &'static str,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event {
            action,
            success: false,
            object_type: Some("user"),
            object_id: None,
            details: json!({"reason": reason}),
        };
        self.audit(&mut tx, &keys, "anonymous", ctx, ev).await?;
        tx.commit().await?;
        Ok(())
    }
}
