//! Two-factor sign-in with TOTP (RFC 6238): enrolment (secret sealed at rest, confirmed by a
//! first code), the sign-in challenge, single-use recovery codes, disabling, an admin reset,
//! and the tenant setting that requires a second factor for chosen roles.
//!
//! Sign-in with a second factor is two steps. A correct password yields a *pending* session
//! (`sessions::SessionStage::PendingMfa`, or `PendingEnrol` when the role requires a factor the
//! user has not enrolled) that lives 5 minutes, allows [`MAX_CODE_ATTEMPTS`] codes, and opens
//! nothing but the challenge and the enrolment endpoints: `authenticate_session` refuses it for
//! every other route. Passing the step revokes the pending session and starts a new one
//! (`start_session`), so the cookie that saw only a password never becomes a full session.
//!
//! A code works once: the last accepted time step is stored per user and a step at or below it
//! is refused (`TenantTx::accept_totp_step`, one conditional update). Failed codes count
//! towards the account lockout like failed passwords (`lockout.rs`).

use crate::db::TenantTx;
use kluis_crypto::totp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{Event, actor_label};
use crate::keys::TenantKeys;
use crate::lockout::AccountKey;
use crate::sessions::{LoginOutcome, SessionStage, mfa_required};
use crate::settings::effective_policy;
use crate::users::user_from_row;
use crate::{
    Actor, AuthStage, Error, ErrorKind, Kluis, Permission, Principal, RequestContext, Result, Role,
    SessionId, TenantId, UserId,
};

/// Codes a pending session may try before it is revoked.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// Recovery codes issued at a time.
pub const RECOVERY_CODES: usize = 10;
/// Issuer shown in authenticator apps.
const ISSUER: &str = "Kluis";

/// Whether the stored setting (comma-separated roles) requires a second factor of `role`.
pub(crate) fn required_for(roles: Option<&str>, role: Role) -> bool {
    roles.is_some_and(|r| r.split(',').any(|x| x.trim() == role.as_str()))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MfaStatus {
    /// A confirmed TOTP enrolment exists.
    pub enabled: bool,
    /// The organisation requires a second factor for this user's role.
    pub required: bool,
    pub recovery_codes_left: i64,
    /// Passkeys registered (each is a second factor too).
    pub passkeys: i64,
}

/// Shown once, when enrolment starts. The secret is in the URI and the QR code too.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    /// Base32, for typing into an app that cannot scan.
    pub secret: String,
    pub otpauth_uri: String,
    /// The `otpauth_uri` as a QR code, an SVG document.
    pub qr_svg: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// The 6-digit code the app shows now.
    pub code: String,
}

/// The second sign-in step: a TOTP code, or one of the recovery codes.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaChallenge {
    pub code: Option<String>,
    pub recovery_code: Option<String>,
}

/// Turning the second factor off proves presence with a current code or the password.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaDisable {
    pub code: Option<String>,
    pub password: Option<String>,
}

/// Recovery codes, shown once; each works once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

pub struct EnrolmentOutcome {
    pub recovery_codes: Vec<String>,
    /// When enrolment completed a pending sign-in: the new, full session.
    pub login: Option<LoginOutcome>,
}

/// Which roles must use a second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaPolicyDoc {
    pub required_roles: Vec<Role>,
}

/// The facts of a failed second factor (see `Kluis::second_factor_failed`).
pub(crate) struct SecondFactorFailure<'a> {
    pub user: UserId,
    pub email: &'a str,
    pub account: &'a crate::lockout::AccountKey,
    /// The account's failures counted so far, this one included.
    pub failures: i64,
    /// The audit event's details: the reason, the session, the method.
    pub details: serde_json::Value,
}

fn invalid_code() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "invalid_code",
        "the code is wrong, expired or already used",
    )
}

/// The person behind a session at any stage (the second-step services run before the actor
/// is fully signed in, so `require_user` would refuse them).
pub(crate) fn person(actor: &Actor) -> Result<(UserId, Option<SessionId>)> {
    match actor.principal() {
        Principal::User { id, session, .. } => Ok((*id, *session)),
        _ => Err(Error::forbidden(
            "this action requires a signed-in user, not an API key",
        )),
    }
}

fn recovery_hash(keys: &TenantKeys, user: UserId, normalised: &str) -> [u8; 32] {
    keys.blind("mfa.recovery_code", &format!("{user}:{normalised}"))
}

/// Ten new recovery codes for `user`, stored hashed; returns them for showing once.
async fn new_recovery_codes(
    tx: &mut TenantTx,
    keys: &TenantKeys,
    user: UserId,
    now: i64,
) -> Result<Vec<String>> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let c = totp::generate_recovery_code()?;
        let n = totp::normalise_recovery_code(&c)
            .ok_or_else(|| Error::internal("recovery code format"))?;
        hashes.push(recovery_hash(keys, user, &n));
        codes.push(c);
    }
    tx.replace_recovery_codes(user, &hashes, now).await?;
    Ok(codes)
}

impl Kluis {
    pub(crate) fn now_secs(&self) -> u64 {
        u64::try_from(self.now() / 1000).unwrap_or(0)
    }

    /// What a correct password leads to for this user: nothing more (None), the code
    /// challenge, or enrolment (their role requires a factor they do not have).
    pub(crate) async fn second_step_due(
        &self,
        tenant: TenantId,
        user: &crate::db::rows::UserRow,
    ) -> Result<Option<SessionStage>> {
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        if tx
            .user_mfa(user.id)
            .await?
            .is_some_and(|m| m.confirmed_at.is_some())
            || crate::passkeys::has_passkey(&mut tx, user.id).await?
        {
            return Ok(Some(SessionStage::PendingMfa));
        }
        let role = user.role;
        let roles = tx.mfa_required_roles().await?;
        // When the organisation requires SSO, only break-glass owners get this far with a
        // password, and such an emergency account must have a second factor.
        let sso_required = tx.sso_config().await?.is_some_and(|c| c.sso_required);
        Ok((required_for(roles.as_deref(), role) || sso_required)
            .then_some(SessionStage::PendingEnrol))
    }

    /// A wrong second factor (code, recovery code or passkey): audited as `auth.mfa`, counted
    /// towards the account's lockout (locking it when due), committed.
    pub(crate) async fn second_factor_failed(
        &self,
        mut tx: TenantTx,
        keys: &TenantKeys,
        actor: &Actor,
        ctx: &RequestContext,
        f: SecondFactorFailure<'_>,
    ) -> Result<()> {
        let ev = Event {
            action: "auth.mfa",
            success: false,
            object_type: Some("user"),
            object_id: Some(f.user.to_string()),
            details: f.details,
        };
        self.audit(&mut tx, keys, &actor_label(actor), ctx, ev)
            .await?;
        let locked_now = self
            .lock_if_due(
                &mut tx,
                keys,
                f.account,
                f.failures,
                Some(f.user),
                f.email,
                ctx,
            )
            .await?;
        tx.commit().await?;
        if let Some(until) = locked_now {
            self.after_lockout(actor.tenant(), Some(f.user), until);
        }
        Ok(())
    }

    /// Checks a TOTP code of a confirmed enrolment and spends its time step.
    pub(crate) async fn check_totp(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        user: UserId,
        code: &str,
    ) -> Result<bool> {
        let Some(m) = tx.user_mfa(user).await? else {
            return Ok(false);
        };
        if m.confirmed_at.is_none() {
            return Ok(false);
        }
        let secret = zeroize::Zeroizing::new(keys.open("user_mfa", "secret", user.0, &m.secret)?);
        let Some(step) = totp::verify(&secret, code, self.now_secs()) else {
            return Ok(false);
        };
        let step = i64::try_from(step).map_err(|_| Error::internal("time step"))?;
        Ok(tx.accept_totp_step(user, step).await?)
    }

    pub(crate) async fn account_of(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<(AccountKey, String)> {
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.user(user).await?.ok_or_else(Error::unauthenticated)?;
        let email = user_from_row(&keys, row)?.email;
        Ok((
            AccountKey::new(&keys, tenant, &kluis_types::Email::normal_form(&email)),
            email,
        ))
    }

    /// Counts one code tried with a pending session; revokes the session (audited) when it
    /// has used up its attempts.
    pub(crate) async fn count_code_attempt(
        &self,
        actor: &Actor,
        session: SessionId,
        ctx: &RequestContext,
    ) -> Result<()> {
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        if tx
            .count_session_mfa_attempt(session, MAX_CODE_ATTEMPTS)
            .await?
            .is_some()
        {
            return Ok(tx.commit().await?);
        }
        tx.revoke_session(session, self.now()).await?;
        let keys = self.keys(&mut tx).await?;
        let (user, _) = person(actor)?;
        let ev = Event {
            action: "auth.mfa",
            success: false,
            object_type: Some("user"),
            object_id: Some(user.to_string()),
            details: json!({"reason": "too_many_attempts", "session": session}),
        };
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Err(Error::unauthenticated())
    }

    /// The second sign-in step, with a pending session. Success ends the pending session and
    /// starts a full one.
    pub async fn answer_mfa_challenge(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: MfaChallenge,
    ) -> Result<LoginOutcome> {
        if actor.stage() != AuthStage::PendingMfa {
            return Err(mfa_required());
        }
        let (user, Some(session)) = person(actor)? else {
            return Err(Error::unauthenticated());
        };
        let tenant = actor.tenant();
        let recovery = match (&input.code, &input.recovery_code) {
            (Some(_), None) => false,
            (None, Some(_)) => true,
            _ => {
                return Err(Error::validation(
                    "code",
                    "code_or_recovery_code",
                    "give either `code` or `recovery_code`",
                ));
            }
        };
        self.count_code_attempt(actor, session, ctx).await?;
        let (account, email) = self.account_of(tenant, user).await?;
        let acc = self.count_account_attempt(&account).await?;
        self.attempt_delay(acc.failures).await;
        let now = self.now();
        let locked = acc.locked_until.is_some_and(|u| u > now)
            || acc.failures > self.config.login.max_failures;
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let ok = match (&input.code, &input.recovery_code) {
            _ if locked => false,
            (Some(code), _) => self.check_totp(&mut tx, &keys, user, code).await?,
            (_, Some(rc)) => match totp::normalise_recovery_code(rc) {
                Some(n) => {
                    tx.use_recovery_code(user, &recovery_hash(&keys, user, &n), now)
                        .await?
                }
                None => false,
            },
            (None, None) => false,
        };
        if !ok {
            let reason = match (locked, recovery) {
                (true, _) => "locked",
                (false, true) => "wrong_recovery_code",
                (false, false) => "wrong_code",
            };
            let failed = SecondFactorFailure {
                user,
                email: &email,
                account: &account,
                failures: acc.failures,
                details: json!({"reason": reason, "session": session}),
            };
            self.second_factor_failed(tx, &keys, actor, ctx, failed)
                .await?;
            return Err(invalid_code());
        }
        if recovery {
            let left = tx.recovery_codes_left(user).await?;
            let ev = Event::ok("auth.mfa.recovery_code_used", "user", user)
                .with(json!({"recovery_codes_left": left, "session": session}));
            self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
                .await?;
        }
        tx.revoke_session(session, now).await?;
        tx.commit().await?;
        self.clear_account(&account).await?;
        let method = if recovery {
            "password+recovery_code"
        } else {
            "password+totp"
        };
        self.start_session(tenant, user, SessionStage::Mfa, method, ctx)
            .await
    }

    pub async fn mfa_status(&self, actor: &Actor) -> Result<MfaStatus> {
        let user = actor.require_user()?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let enabled = tx
            .user_mfa(user)
            .await?
            .is_some_and(|m| m.confirmed_at.is_some());
        let passkeys = tx.count_user_passkeys(user).await?;
        let row = tx.user(user).await?.ok_or_else(Error::unauthenticated)?;
        let role = row.role;
        let roles = tx.mfa_required_roles().await?;
        Ok(MfaStatus {
            enabled,
            required: required_for(roles.as_deref(), role),
            recovery_codes_left: tx.recovery_codes_left(user).await?,
            passkeys,
        })
    }

    /// Starts (or restarts) TOTP enrolment: a new secret, sealed, unconfirmed until
    /// [`Kluis::confirm_totp_enrolment`].
    pub async fn start_totp_enrolment(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<TotpEnrolment> {
        let (user, _) = person(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.user(user).await?.ok_or_else(Error::unauthenticated)?;
        let email = user_from_row(&keys, row)?.email;
        let secret = totp::generate_secret()?;
        let sealed = keys.seal("user_mfa", "secret", user.0, &secret)?;
        if !tx.put_unconfirmed_mfa(user, &sealed, self.now()).await? {
            return Err(already_enabled());
        }
        self.count_sealed(&mut tx, &keys, 1).await?;
        let ev = Event::ok("mfa.totp.enrol_start", "user", user);
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        let otpauth_uri = totp::otpauth_uri(&secret, ISSUER, &email)?;
        Ok(TotpEnrolment {
            secret: totp::secret_base32(&secret),
            qr_svg: totp::qr_svg(&otpauth_uri)?,
            otpauth_uri,
        })
    }

    /// The enrolment started and not yet confirmed, shown again (after a wrong code the key
    /// stays the same, so the QR code the person just scanned keeps working). None when no
    /// enrolment is pending.
    pub async fn pending_totp_enrolment(&self, actor: &Actor) -> Result<Option<TotpEnrolment>> {
        let (user, _) = person(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let Some(m) = tx.user_mfa(user).await? else {
            return Ok(None);
        };
        if m.confirmed_at.is_some() {
            return Ok(None);
        }
        let row = tx.user(user).await?.ok_or_else(Error::unauthenticated)?;
        let email = user_from_row(&keys, row)?.email;
        let secret = zeroize::Zeroizing::new(keys.open("user_mfa", "secret", user.0, &m.secret)?);
        let otpauth_uri = totp::otpauth_uri(&secret, ISSUER, &email)?;
        Ok(Some(TotpEnrolment {
            secret: totp::secret_base32(&secret),
            qr_svg: totp::qr_svg(&otpauth_uri)?,
            otpauth_uri,
        }))
    }

    /// Confirms enrolment with a first code; issues the recovery codes. With a pending
    /// (must-enrol) session this completes the sign-in: a new, full session.
    pub async fn confirm_totp_enrolment(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: TotpCode,
    ) -> Result<EnrolmentOutcome> {
        let (user, session) = person(actor)?;
        let pending = actor.stage() == AuthStage::PendingEnrol;
        if pending && let Some(s) = session {
            self.count_code_attempt(actor, s, ctx).await?;
        }
        let now = self.now();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let m = tx.user_mfa(user).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::Conflict,
                "no_enrolment_started",
                "start enrolment with POST /api/v1/me/mfa/totp first",
            )
        })?;
        if m.confirmed_at.is_some() {
            return Err(already_enabled());
        }
        let secret = zeroize::Zeroizing::new(keys.open("user_mfa", "secret", user.0, &m.secret)?);
        let step = totp::verify(&secret, &input.code, self.now_secs())
            .and_then(|s| i64::try_from(s).ok())
            .ok_or_else(|| {
                Error::validation("code", "invalid_code", "the code is wrong or expired")
            })?;
        if !tx.confirm_mfa(user, step, now).await? {
            return Err(already_enabled());
        }
        let codes = new_recovery_codes(&mut tx, &keys, user, now).await?;
        if let Some(s) = session {
            if pending {
                tx.revoke_session(s, now).await?;
            } else {
                // This session has just shown the second factor.
                tx.set_session_stage(s, SessionStage::Mfa.as_str()).await?;
            }
        }
        let ev = Event::ok("mfa.totp.enrol", "user", user)
            .with(json!({"recovery_codes_issued": codes.len()}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        let login = if pending {
            let (account, _) = self.account_of(actor.tenant(), user).await?;
            self.clear_account(&account).await?;
            Some(
                self.start_session(
                    actor.tenant(),
                    user,
                    SessionStage::Mfa,
                    "password+totp_enrolment",
                    ctx,
                )
                .await?,
            )
        } else {
            None
        };
        Ok(EnrolmentOutcome {
            recovery_codes: codes,
            login,
        })
    }

    /// New recovery codes (the old ones stop working), after a current code.
    pub async fn regenerate_recovery_codes(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: TotpCode,
    ) -> Result<RecoveryCodes> {
        let user = actor.require_user()?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        if !self.check_totp(&mut tx, &keys, user, &input.code).await? {
            return Err(Error::validation(
                "code",
                "invalid_code",
                "the code is wrong, expired or already used",
            ));
        }
        let codes = new_recovery_codes(&mut tx, &keys, user, self.now()).await?;
        let ev = Event::ok("mfa.recovery_codes.regenerate", "user", user)
            .with(json!({"recovery_codes_issued": codes.len()}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(RecoveryCodes {
            recovery_codes: codes,
        })
    }

    /// Turns the caller's second factor off, after a current code or the password. Refused
    /// while the organisation requires one for the caller's role.
    pub async fn disable_mfa(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: MfaDisable,
    ) -> Result<()> {
        let user = actor.require_user()?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.user(user).await?.ok_or_else(Error::unauthenticated)?;
        let role = row.role;
        // Passkeys still satisfy the policy without TOTP.
        if required_for(tx.mfa_required_roles().await?.as_deref(), role)
            && !crate::passkeys::has_passkey(&mut tx, user).await?
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                "mfa_required_by_policy",
                "your organisation requires a second factor for your role",
            ));
        }
        let method = match (input.code, input.password) {
            (Some(code), None) => {
                if !self.check_totp(&mut tx, &keys, user, &code).await? {
                    return Err(Error::validation(
                        "code",
                        "invalid_code",
                        "the code is wrong, expired or already used",
                    ));
                }
                "totp"
            }
            (None, Some(pw)) => {
                let ok =
                    crate::passwords::verify_with(&keys, user.0, row.password_hash.as_deref(), pw)
                        .await?;
                if !ok {
                    return Err(Error::validation(
                        "password",
                        "wrong_password",
                        "the password is wrong",
                    ));
                }
                "password"
            }
            _ => {
                return Err(Error::validation(
                    "code",
                    "code_or_password",
                    "give either `code` or `password`",
                ));
            }
        };
        if !tx.delete_user_mfa(user).await? {
            return Err(Error::new(
                ErrorKind::Conflict,
                "mfa_not_enabled",
                "no second factor is enrolled",
            ));
        }
        let ev = Event::ok("mfa.totp.disable", "user", user).with(json!({"method": method}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        Ok(tx.commit().await?)
    }

    /// An admin removes another user's second factor (lost phone) and ends their sessions;
    /// they enrol again at their next sign-in if their role requires it.
    pub async fn reset_user_mfa(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: UserId,
    ) -> Result<()> {
        let me = actor.require_user()?;
        actor.require(Permission::UsersManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let row = tx.user(id).await?.ok_or_else(Error::not_found)?;
        if row.role == Role::Owner {
            actor.require(Permission::OwnersManage)?;
        }
        if me == id {
            return Err(Error::forbidden(
                "turn your own second factor off with POST /api/v1/me/mfa/disable",
            ));
        }
        let had = tx.delete_user_mfa(id).await?;
        let n = tx.revoke_user_sessions(id, None, self.now()).await?;
        let keys = self.keys(&mut tx).await?;
        let ev =
            Event::ok("mfa.reset", "user", id).with(json!({"had_mfa": had, "sessions_revoked": n}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        Ok(tx.commit().await?)
    }

    pub async fn mfa_policy(&self, actor: &Actor) -> Result<MfaPolicyDoc> {
        actor.require(Permission::SettingsRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        Ok(policy_doc(tx.mfa_required_roles().await?.as_deref()))
    }

    /// Which roles must use a second factor. A signed-in admin only (never an API key), and
    /// not for their own role before they have enrolled themselves.
    pub async fn set_mfa_policy(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        doc: MfaPolicyDoc,
    ) -> Result<MfaPolicyDoc> {
        let me = actor.require_user()?;
        actor.require(Permission::SettingsManage)?;
        let mut roles: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| doc.required_roles.contains(r))
            .collect();
        roles.dedup();
        let stored = roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let mine = tx.user(me).await?.ok_or_else(Error::unauthenticated)?;
        let my_role = mine.role;
        let enrolled = tx
            .user_mfa(me)
            .await?
            .is_some_and(|m| m.confirmed_at.is_some())
            || crate::passkeys::has_passkey(&mut tx, me).await?;
        if roles.contains(&my_role) && !enrolled {
            return Err(Error::new(
                ErrorKind::Conflict,
                "mfa_enrol_first",
                "enrol a second factor yourself before requiring one for your own role",
            ));
        }
        let before = policy_doc(tx.mfa_required_roles().await?.as_deref());
        let policy = effective_policy(&mut tx).await?;
        let json =
            serde_json::to_string(&policy).map_err(|_| Error::internal("serialise policy"))?;
        tx.put_mfa_required_roles(&stored, &json, self.now())
            .await?;
        let after = MfaPolicyDoc {
            required_roles: roles,
        };
        let keys = self.keys(&mut tx).await?;
        let ev = Event {
            action: "settings.mfa.update",
            success: true,
            object_type: Some("settings"),
            object_id: Some("mfa".into()),
            details: json!({"old": before, "new": after}),
        };
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Data-key rotation of the sealed TOTP secrets (few rows: one transaction).
    pub(crate) async fn reencrypt_mfa(
        &self,
        tenant: TenantId,
        p: &mut crate::keys::ReencryptProgress,
    ) -> Result<()> {
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let mut n = 0;
        for (user, sealed) in tx.mfa_secrets().await? {
            if keys.stale(&sealed) {
                let fresh = keys.reseal("user_mfa", "secret", user.0, &sealed)?;
                if tx.reseal_mfa_secret(user, &sealed, &fresh).await? {
                    n += 1;
                }
            }
            p.rows_seen += 1;
        }
        self.count_sealed(&mut tx, &keys, n).await?;
        tx.commit().await?;
        p.values_resealed += n as u64;
        Ok(())
    }
}

fn already_enabled() -> Error {
    Error::new(
        ErrorKind::Conflict,
        "mfa_already_enabled",
        "a second factor is already enrolled; disable it first",
    )
}

fn policy_doc(stored: Option<&str>) -> MfaPolicyDoc {
    MfaPolicyDoc {
        required_roles: Role::ALL
            .into_iter()
            .filter(|r| required_for(stored, *r))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_roles_match_exactly() {
        assert!(required_for(Some("owner,admin"), Role::Admin));
        assert!(!required_for(Some("owner,admin"), Role::Member));
        assert!(!required_for(Some(""), Role::Owner));
        assert!(!required_for(None, Role::Owner));
        // "read_only" must not match a role that is a substring of it, nor vice versa.
        assert!(!required_for(Some("read_only"), Role::Owner));
        assert_eq!(
            policy_doc(Some("member,owner")).required_roles,
            vec![Role::Owner, Role::Member]
        );
    }
}
