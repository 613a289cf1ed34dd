//! Passkeys (WebAuthn, through webauthn-rs): registration, a passkey as the second sign-in
//! step, and passwordless sign-in with a discoverable credential.
//!
//! - Relying party: the RP id is the host of the server's public URL and the only accepted
//!   origin is that URL (scheme, host and port): an assertion made for another origin is
//!   refused by webauthn-rs. Attestation is "none" (webauthn-rs passkey ceremonies); user
//!   verification is required, so a passkey alone is two factors (possession + PIN/biometric).
//! - Ceremonies: the webauthn-rs state between start and finish is stored in
//!   `webauthn_ceremonies` under the SHA-256 of a random ceremony id the client holds
//!   (`<tenant hex>.<secret>`), single use (taken with `DELETE ... RETURNING`), 5 minutes, so
//!   any server process sharing the database can finish a ceremony. The state holds the
//!   challenge (sent to the client anyway), the allowed credentials and the policy: nothing
//!   secret, so it is stored as is; forging a state needs write access to the database.
//!   Registration and second-factor ceremonies are bound to the user and session that started
//!   them.
//! - Passwordless: counted like a password sign-in (per address, and per account under the
//!   same counter as the user's password, so a lockout covers both); every failure, an unknown
//!   organisation or credential included, is the same 401 `passkey_failed`. Under "SSO
//!   required" only break-glass owners may use a passkey, as with passwords.
//! - The sign counter: webauthn-rs refuses an assertion whose counter does not exceed the
//!   stored one (a cloned authenticator); the new counter is stored with one conditional update
//!   so two simultaneous assertions cannot both pass.

use std::sync::Arc;

use crate::db::TenantTx;
use crate::db::passkeys::{CeremonyRow, NewCeremony, PasskeyRow};
use kluis_crypto::token;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};

use crate::audit::{Event, actor_label};
use crate::lockout::AccountKey;
use crate::mfa::{person, required_for};
use crate::sessions::{LoginOutcome, SessionStage, mfa_required};
use crate::users::{rfc3339, user_from_row};
use crate::{
    Actor, AuthStage, Error, ErrorKind, Kluis, Permission, RequestContext, Result, Role, TenantId,
    UserId,
};

/// How long a started ceremony may take.
pub const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;
/// Ceremonies in flight per tenant; beyond this `start` refuses (anonymous callers cannot
/// fill the table).
const MAX_CEREMONIES: i64 = 10_000;
/// Passkeys one user may register.
pub const MAX_PASSKEYS: i64 = 20;

const REGISTER: &str = "register";
const SECOND_FACTOR: &str = "second_factor";
const PASSWORDLESS: &str = "passwordless";

/// The relying party.
pub struct WebauthnRuntime {
    wa: Webauthn,
}

impl Kluis {
    /// Enables passkeys for the server at `public_url` (its external base URL, e.g.
    /// `https://crm.example.com`): RP id = its host, origin = the URL.
    pub fn with_webauthn(mut self, public_url: &str) -> std::result::Result<Self, String> {
        let origin = Url::parse(public_url).map_err(|e| format!("public_url: {e}"))?;
        let host = origin
            .host_str()
            .ok_or_else(|| "public_url has no host".to_owned())?
            .to_owned();
        let wa = WebauthnBuilder::new(&host, &origin)
            .and_then(|b| b.rp_name("Kluis").build())
            .map_err(|e| format!("passkey relying party for {public_url}: {e}"))?;
        self.webauthn = Some(Arc::new(WebauthnRuntime { wa }));
        Ok(self)
    }

    fn webauthn(&self) -> Result<&Webauthn> {
        self.webauthn.as_deref().map(|r| &r.wa).ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "passkeys_unavailable",
                "passkeys are not enabled on this server",
            )
        })
    }
}

// ---- API shapes ---------------------------------------------------------------------------

/// A started ceremony: pass `options` (standard WebAuthn JSON, binary fields base64url) to
/// `navigator.credentials.create()` / `.get()`, and send `ceremony` back with the result.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PasskeyCeremony {
    /// Opaque, single use, valid 5 minutes.
    pub ceremony: String,
    /// `{"publicKey": {...}}` (and `mediation` for passwordless sign-in).
    #[schema(value_type = Object)]
    pub options: Value,
}

/// Finishes a registration.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRegistrationFinish {
    pub ceremony: String,
    /// A name to recognise the passkey by, e.g. "YubiKey" or "Laptop".
    pub name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, as JSON (binary
    /// fields base64url): `{id, rawId, type, response: {attestationObject, clientDataJSON}}`.
    #[schema(value_type = Object)]
    pub credential: Value,
}

/// Finishes a sign-in step.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyAssertion {
    pub ceremony: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, as JSON (binary fields
    /// base64url): `{id, rawId, type, response: {authenticatorData, clientDataJSON,
    /// signature, userHandle}}`.
    #[schema(value_type = Object)]
    pub credential: Value,
}

/// Starts a passwordless sign-in.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyLoginStart {
    /// The organisation's slug.
    pub tenant: String,
}

/// Removing my own passkey proves presence: my password or a current TOTP code.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyDelete {
    pub password: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PasskeyInfo {
    pub id: Uuid,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// The result of a registration: the passkey, and when it completed a pending sign-in that
/// had to enrol a second factor, the new full session.
pub struct RegistrationOutcome {
    pub passkey: PasskeyInfo,
    pub login: Option<LoginOutcome>,
}

fn info(r: &PasskeyRow) -> PasskeyInfo {
    PasskeyInfo {
        id: r.id,
        name: r.name.clone(),
        created_at: rfc3339(r.created_at),
        last_used_at: r.last_used_at.map(rfc3339),
    }
}

// ---- helpers ------------------------------------------------------------------------------

fn cred_hash(cred_id: &[u8]) -> Vec<u8> {
    Sha256::digest(cred_id).to_vec()
}

fn ceremony_invalid() -> Error {
    Error::new(
        ErrorKind::BadRequest,
        "passkey_ceremony_invalid",
        "this passkey request is unknown, used, expired or someone else's; start again",
    )
}

/// The one answer to every failed passwordless sign-in.
fn passkey_failed() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "passkey_failed",
        "the passkey was not accepted",
    )
}

fn passkey_rejected() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "passkey_rejected",
        "the passkey was not accepted",
    )
}

fn bad_credential() -> Error {
    Error::validation(
        "credential",
        "invalid_credential",
        "not a WebAuthn PublicKeyCredential in JSON form",
    )
}

/// A short audit reason for a refused ceremony (never key material).
fn reason(e: &WebauthnError) -> &'static str {
    match e {
        WebauthnError::InvalidRPOrigin => "wrong_origin",
        WebauthnError::InvalidRPIDHash => "wrong_rp_id",
        WebauthnError::MismatchedChallenge => "wrong_challenge",
        WebauthnError::UserNotVerified => "user_not_verified",
        WebauthnError::UserNotPresent => "user_not_present",
        WebauthnError::CredentialPossibleCompromise => "sign_counter_regressed",
        WebauthnError::InvalidClientDataType => "wrong_ceremony_type",
        WebauthnError::AttestationStatementSigInvalid
        | WebauthnError::AuthenticationFailure
        | WebauthnError::CredentialAlteredAlgFromRequest => "bad_signature",
        _ => "rejected",
    }
}

fn validate_name(raw: &str) -> Result<String> {
    let v = raw.trim();
    if v.is_empty() || v.chars().count() > 64 || v.chars().any(char::is_control) {
        return Err(Error::validation(
            "name",
            "invalid_value",
            "must be 1 to 64 characters without control characters",
        ));
    }
    Ok(v.to_owned())
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|_| Error::internal("serialise WebAuthn state"))
}

fn from_json<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|_| Error::internal("stored WebAuthn state is unreadable"))
}

impl Kluis {
    /// Stores a ceremony's state and returns its id (`<tenant hex>.<secret>`).
    async fn store_ceremony(
        &self,
        tenant: TenantId,
        purpose: &str,
        user: Option<UserId>,
        session: Option<crate::SessionId>,
        state: &str,
    ) -> Result<String> {
        let secret = token::generate_secret();
        let id = format!("{}.{}", tenant.0.simple(), secret);
        let now = self.now();
        let mut tx = self.store.tenant(tenant).begin().await?;
        let n = tx
            .insert_webauthn_ceremony(&NewCeremony {
                id_hash: &token::hash_secret(&secret),
                purpose,
                user_id: user,
                session_id: session,
                state,
                now,
                expires_at: now + CEREMONY_TTL_MS,
            })
            .await?;
        if n > MAX_CEREMONIES {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "passkey_busy",
                "too many passkey requests in progress; try again in a few minutes",
            ));
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Takes (uses up) a ceremony of `tenant`; None when unknown, used, expired or of
    /// another purpose.
    async fn take_ceremony(
        &self,
        tenant: TenantId,
        ceremony: &str,
        purpose: &str,
    ) -> Result<Option<CeremonyRow>> {
        let Some((t, secret)) = crate::tokens::parse_session_token(ceremony) else {
            return Ok(None);
        };
        if t != tenant {
            return Ok(None);
        }
        let mut tx = self.store.tenant(tenant).begin().await?;
        let row = tx
            .take_webauthn_ceremony(&token::hash_secret(secret))
            .await?;
        tx.commit().await?;
        Ok(row.filter(|r| r.purpose == purpose && r.expires_at > self.now()))
    }

    /// Verifies an assertion against one stored passkey and records its use. Err(reason) when
    /// refused.
    async fn verify_assertion(
        &self,
        tenant: TenantId,
        row: &PasskeyRow,
        check: impl FnOnce(
            &Webauthn,
            &Passkey,
        ) -> std::result::Result<
            webauthn_rs::prelude::AuthenticationResult,
            WebauthnError,
        >,
    ) -> Result<std::result::Result<(), &'static str>> {
        let wa = self.webauthn()?;
        let mut pk: Passkey = from_json(&row.passkey)?;
        let res = match check(wa, &pk) {
            Ok(r) => r,
            Err(e) => return Ok(Err(reason(&e))),
        };
        if !res.user_verified() {
            return Ok(Err("user_not_verified"));
        }
        pk.update_credential(&res);
        let mut tx = self.store.tenant(tenant).begin().await?;
        let won = tx
            .record_passkey_use(
                row.id,
                row.sign_count,
                &to_json(&pk)?,
                i64::from(res.counter()),
                self.now(),
            )
            .await?;
        tx.commit().await?;
        // Another assertion recorded a use in between: one of the two is a replay or a clone.
        Ok(if won { Ok(()) } else { Err("concurrent_use") })
    }

    // ---- registration ---------------------------------------------------------------------

    /// Starts registering a passkey for the caller (signed in, or in a pending sign-in that
    /// must enrol a second factor).
    pub async fn start_passkey_registration(&self, actor: &Actor) -> Result<PasskeyCeremony> {
        let wa = self.webauthn()?;
        let (user, session) = person(actor)?;
        let tenant = actor.tenant();
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.user(user).await?.ok_or_else(Error::unauthenticated)?;
        let email = user_from_row(&keys, row)?.email;
        let existing = tx.user_passkeys(user).await?;
        drop(tx);
        if existing.len() as i64 >= MAX_PASSKEYS {
            return Err(Error::new(
                ErrorKind::Conflict,
                "too_many_passkeys",
                format!("at most {MAX_PASSKEYS} passkeys per user; remove one first"),
            ));
        }
        let exclude = existing
            .iter()
            .map(|r| from_json::<Passkey>(&r.passkey).map(|p| p.cred_id().clone()))
            .collect::<Result<Vec<_>>>()?;
        let (ccr, state) = wa
            .start_passkey_registration(user.0, &email, &email, Some(exclude))
            .map_err(|_| Error::internal("start passkey registration"))?;
        let mut options =
            serde_json::to_value(&ccr).map_err(|_| Error::internal("serialise options"))?;
        // A passkey must be discoverable to sign in without a username.
        if let Some(sel) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            sel.insert("residentKey".into(), json!("required"));
            sel.insert("requireResidentKey".into(), json!(true));
        }
        let ceremony = self
            .store_ceremony(tenant, REGISTER, Some(user), session, &to_json(&state)?)
            .await?;
        Ok(PasskeyCeremony { ceremony, options })
    }

    /// Finishes a registration: stores the passkey (audited). With a pending must-enrol
    /// session this completes the sign-in with a new, full session.
    pub async fn finish_passkey_registration(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: PasskeyRegistrationFinish,
    ) -> Result<RegistrationOutcome> {
        let wa = self.webauthn()?;
        let (user, session) = person(actor)?;
        let tenant = actor.tenant();
        let name = validate_name(&input.name)?;
        let cred: RegisterPublicKeyCredential =
            serde_json::from_value(input.credential).map_err(|_| bad_credential())?;
        let pending = actor.stage() == AuthStage::PendingEnrol;
        if pending && let Some(s) = session {
            self.count_code_attempt(actor, s, ctx).await?;
        }
        let c = self
            .take_ceremony(tenant, &input.ceremony, REGISTER)
            .await?
            .filter(|c| c.user_id == Some(user) && c.session_id == session)
            .ok_or_else(ceremony_invalid)?;
        let state: PasskeyRegistration = from_json(&c.state)?;
        let now = self.now();
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let pk = match wa.finish_passkey_registration(&cred, &state) {
            Ok(pk) => pk,
            Err(e) => {
                let ev = Event {
                    action: "passkey.register",
                    success: false,
                    object_type: Some("user"),
                    object_id: Some(user.to_string()),
                    details: json!({"reason": reason(&e)}),
                };
                self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
                    .await?;
                tx.commit().await?;
                return Err(Error::validation(
                    "credential",
                    "passkey_rejected",
                    "the authenticator's answer was not accepted",
                ));
            }
        };
        let id = Uuid::now_v7();
        let stored = tx
            .insert_passkey(
                id,
                user,
                &cred_hash(pk.cred_id()),
                &name,
                &to_json(&pk)?,
                0,
                now,
            )
            .await?;
        if !stored {
            return Err(Error::new(
                ErrorKind::Conflict,
                "passkey_already_registered",
                "this passkey is registered already",
            ));
        }
        if let Some(s) = session {
            if pending {
                tx.revoke_session(s, now).await?;
            } else {
                // This session has just shown a user-verified authenticator.
                tx.set_session_stage(s, SessionStage::Mfa.as_str()).await?;
            }
        }
        let ev =
            Event::ok("passkey.register", "passkey", id).with(json!({"user": user, "name": name}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        let row = tx
            .user_passkeys(user)
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::internal("passkey vanished"))?;
        tx.commit().await?;
        let login = if pending {
            let (account, _) = self.account_of(tenant, user).await?;
            self.clear_account(&account).await?;
            Some(
                self.start_session(
                    tenant,
                    user,
                    SessionStage::Mfa,
                    "password+passkey_enrolment",
                    ctx,
                )
                .await?,
            )
        } else {
            None
        };
        Ok(RegistrationOutcome {
            passkey: info(&row),
            login,
        })
    }

    pub async fn my_passkeys(&self, actor: &Actor) -> Result<Vec<PasskeyInfo>> {
        let user = actor.require_user()?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        Ok(tx.user_passkeys(user).await?.iter().map(info).collect())
    }

    /// Removes one of the caller's passkeys, after their password or a current TOTP code.
    /// Refused for the last second factor while the organisation requires one.
    pub async fn delete_my_passkey(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: Uuid,
        input: PasskeyDelete,
    ) -> Result<()> {
        let user = actor.require_user()?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx.user(user).await?.ok_or_else(Error::unauthenticated)?;
        let method = match (input.password, input.code) {
            (Some(pw), None) => {
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
            (None, Some(code)) => {
                if !self.check_totp(&mut tx, &keys, user, &code).await? {
                    return Err(Error::validation(
                        "code",
                        "invalid_code",
                        "the code is wrong, expired or already used",
                    ));
                }
                "totp"
            }
            _ => {
                return Err(Error::validation(
                    "password",
                    "code_or_password",
                    "give either `password` or `code`",
                ));
            }
        };
        let role = row.role;
        let passkeys = tx.user_passkeys(user).await?;
        if !passkeys.iter().any(|p| p.id == id) {
            return Err(Error::not_found());
        }
        let totp = tx
            .user_mfa(user)
            .await?
            .is_some_and(|m| m.confirmed_at.is_some());
        if passkeys.len() == 1
            && !totp
            && required_for(tx.mfa_required_roles().await?.as_deref(), role)
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                "mfa_required_by_policy",
                "your organisation requires a second factor for your role; add another first",
            ));
        }
        tx.delete_passkey(user, id).await?;
        let ev = Event::ok("passkey.delete", "passkey", id)
            .with(json!({"user": user, "method": method}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        Ok(tx.commit().await?)
    }

    /// A user's passkeys, for an admin.
    pub async fn user_passkeys(&self, actor: &Actor, user: UserId) -> Result<Vec<PasskeyInfo>> {
        actor.require(Permission::UsersManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        tx.user(user).await?.ok_or_else(Error::not_found)?;
        Ok(tx.user_passkeys(user).await?.iter().map(info).collect())
    }

    /// An admin removes a user's passkey (a lost device) and ends the user's sessions.
    pub async fn delete_user_passkey(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        user: UserId,
        id: Uuid,
    ) -> Result<()> {
        actor.require(Permission::UsersManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let row = tx.user(user).await?.ok_or_else(Error::not_found)?;
        if row.role == Role::Owner {
            actor.require(Permission::OwnersManage)?;
        }
        if !tx.delete_passkey(user, id).await? {
            return Err(Error::not_found());
        }
        let n = tx.revoke_user_sessions(user, None, self.now()).await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event::ok("passkey.delete", "passkey", id)
            .with(json!({"user": user, "by_admin": true, "sessions_revoked": n}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        Ok(tx.commit().await?)
    }

    // ---- second factor --------------------------------------------------------------------

    /// Starts the second sign-in step with one of the user's passkeys (pending session).
    pub async fn start_passkey_challenge(&self, actor: &Actor) -> Result<PasskeyCeremony> {
        let wa = self.webauthn()?;
        if actor.stage() != AuthStage::PendingMfa {
            return Err(mfa_required());
        }
        let (user, Some(session)) = person(actor)? else {
            return Err(Error::unauthenticated());
        };
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let rows = tx.user_passkeys(user).await?;
        drop(tx);
        if rows.is_empty() {
            return Err(Error::new(
                ErrorKind::Conflict,
                "no_passkeys",
                "no passkey is registered; answer with a TOTP code",
            ));
        }
        let pks = rows
            .iter()
            .map(|r| from_json::<Passkey>(&r.passkey))
            .collect::<Result<Vec<_>>>()?;
        let (rcr, state) = wa
            .start_passkey_authentication(&pks)
            .map_err(|_| Error::internal("start passkey authentication"))?;
        let options =
            serde_json::to_value(&rcr).map_err(|_| Error::internal("serialise options"))?;
        let ceremony = self
            .store_ceremony(
                actor.tenant(),
                SECOND_FACTOR,
                Some(user),
                Some(session),
                &to_json(&state)?,
            )
            .await?;
        Ok(PasskeyCeremony { ceremony, options })
    }

    /// Finishes the second sign-in step with a passkey. Counts towards the pending session's
    /// attempts and the account lockout like a TOTP code.
    pub async fn answer_passkey_challenge(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: PasskeyAssertion,
    ) -> Result<LoginOutcome> {
        self.webauthn()?;
        if actor.stage() != AuthStage::PendingMfa {
            return Err(mfa_required());
        }
        let (user, Some(session)) = person(actor)? else {
            return Err(Error::unauthenticated());
        };
        let tenant = actor.tenant();
        let cred: PublicKeyCredential =
            serde_json::from_value(input.credential).map_err(|_| bad_credential())?;
        self.count_code_attempt(actor, session, ctx).await?;
        let (account, email) = self.account_of(tenant, user).await?;
        let acc = self.count_account_attempt(&account).await?;
        self.attempt_delay(acc.failures).await;
        let now = self.now();
        let locked = acc.locked_until.is_some_and(|u| u > now)
            || acc.failures > self.config.login.max_failures;
        let outcome: std::result::Result<(), &'static str> = if locked {
            Err("locked")
        } else {
            match self
                .take_ceremony(tenant, &input.ceremony, SECOND_FACTOR)
                .await?
            {
                Some(c) if c.user_id == Some(user) && c.session_id == Some(session) => {
                    let state: PasskeyAuthentication = from_json(&c.state)?;
                    let mut tx = self.store.tenant(tenant).begin_read().await?;
                    let row = tx
                        .passkey_by_cred(&cred_hash(cred.get_credential_id()))
                        .await?;
                    drop(tx);
                    match row {
                        Some(row) if row.user_id == user => {
                            self.verify_assertion(tenant, &row, |wa, _| {
                                wa.finish_passkey_authentication(&cred, &state)
                            })
                            .await?
                        }
                        _ => Err("unknown_credential"),
                    }
                }
                _ => Err("ceremony_invalid"),
            }
        };
        let mut tx = self.store.tenant(tenant).begin().await?;
        let keys = self.keys(&mut tx).await?;
        if let Err(why) = outcome {
            let failed = crate::mfa::SecondFactorFailure {
                user,
                email: &email,
                account: &account,
                failures: acc.failures,
                details: json!({"method": "passkey", "reason": why, "session": session}),
            };
            self.second_factor_failed(tx, &keys, actor, ctx, failed)
                .await?;
            return Err(if why == "ceremony_invalid" {
                ceremony_invalid()
            } else {
                passkey_rejected()
            });
        }
        tx.revoke_session(session, now).await?;
        tx.commit().await?;
        self.clear_account(&account).await?;
        self.start_session(tenant, user, SessionStage::Mfa, "password+passkey", ctx)
            .await
    }

    // ---- passwordless ---------------------------------------------------------------------

    /// Starts a passwordless sign-in for an organisation. An unknown or suspended
    /// organisation gets an answer of the same shape (its finish always fails).
    pub async fn start_passkey_login(&self, input: PasskeyLoginStart) -> Result<PasskeyCeremony> {
        let wa = self.webauthn()?;
        let mut p = self.store.platform_read().await?;
        let t = p
            .tenant_by_slug(input.tenant.trim())
            .await?
            .filter(|t| t.status.is_active());
        drop(p);
        let (rcr, state) = wa
            .start_discoverable_authentication()
            .map_err(|_| Error::internal("start passkey authentication"))?;
        let options =
            serde_json::to_value(&rcr).map_err(|_| Error::internal("serialise options"))?;
        let ceremony = match t {
            Some(t) => {
                self.store_ceremony(t.id, PASSWORDLESS, None, None, &to_json(&state)?)
                    .await?
            }
            // Looks like a real one (a time-ordered id, like tenant ids); nothing is stored.
            None => format!(
                "{}.{}",
                TenantId::new().0.simple(),
                token::generate_secret()
            ),
        };
        Ok(PasskeyCeremony { ceremony, options })
    }

    /// Finishes a passwordless sign-in: a full session whose stage satisfies "2FA required"
    /// (the passkey verified the user).
    pub async fn finish_passkey_login(
        &self,
        ctx: &RequestContext,
        input: PasskeyAssertion,
    ) -> Result<LoginOutcome> {
        let wa = self.webauthn()?;
        let cred: PublicKeyCredential =
            serde_json::from_value(input.credential).map_err(|_| bad_credential())?;
        let tenant = crate::tokens::parse_session_token(&input.ceremony).map(|(t, _)| t);
        let Some(tenant) = tenant else {
            return Err(passkey_failed());
        };
        // Platform lookup: a ceremony names a tenant that may not exist.
        let mut p = self.store.platform_read().await?;
        let active = p
            .tenant(tenant)
            .await?
            .is_some_and(|t| t.status.is_active());
        drop(p);
        let scope = if active { tenant } else { TenantId::PLATFORM };
        let ceremony = if active {
            self.take_ceremony(tenant, &input.ceremony, PASSWORDLESS)
                .await?
        } else {
            None
        };
        let cred_id = cred.get_credential_id().to_vec();
        let (row, user) = if active {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            let keys = self.keys(&mut tx).await?;
            let row = tx.passkey_by_cred(&cred_hash(&cred_id)).await?;
            let user = match &row {
                Some(r) => tx.user(r.user_id).await?,
                None => None,
            };
            let email = match &user {
                Some(u) => Some(user_from_row(&keys, u.clone())?.email),
                None => None,
            };
            (row, user.zip(email))
        } else {
            (None, None)
        };
        // The account counter: the user's (shared with password sign-in), or, for an unknown
        // credential, one keyed by the credential id so guessing is counted too.
        let account = match &user {
            Some((_, email)) => self.account_key(Some(tenant), "", email).await?,
            None => {
                let mut tx = self.store.tenant(scope).begin_read().await?;
                let keys = self.keys(&mut tx).await?;
                let id = hex::encode(&cred_id);
                AccountKey {
                    scope,
                    subject: keys.blind("login.passkey", &id),
                    daily: keys.blind("login.passkey.day", &id),
                }
            }
        };
        let gate = self.count_attempt(&account, ctx).await?;
        self.attempt_delay(gate.account_failures).await;
        let handle = wa
            .identify_discoverable_authentication(&cred)
            .ok()
            .map(|(u, _)| u);
        let outcome: std::result::Result<(), &'static str> =
            match (&gate.refused, &ceremony, &row, &user) {
                (Some(r), ..) => Err(*r),
                (_, None, ..) => Err(if active {
                    "ceremony_invalid"
                } else {
                    "unknown_organisation"
                }),
                (_, _, None, _) | (_, _, _, None) => Err("unknown_credential"),
                (_, Some(c), Some(row), Some((u, _))) => {
                    if handle != Some(row.user_id.0) {
                        Err("user_handle_mismatch")
                    } else if !u.status.is_active() {
                        Err("user_disabled")
                    } else {
                        let state: DiscoverableAuthentication = from_json(&c.state)?;
                        self.verify_assertion(tenant, row, |wa, pk| {
                            wa.finish_discoverable_authentication_v2(&cred, state, pk)
                        })
                        .await?
                    }
                }
            };
        let user_id = user.as_ref().map(|(u, _)| u.id);
        if let Err(why) = outcome {
            let ev = Event {
                action: "auth.login",
                success: false,
                object_type: Some("user"),
                object_id: user_id.map(|u| u.to_string()),
                details: json!({"method": "passkey", "reason": why}),
            };
            let mut tx = self.store.tenant(scope).begin().await?;
            let keys = self.keys(&mut tx).await?;
            self.audit(&mut tx, &keys, "anonymous", ctx, ev).await?;
            let email = user.as_ref().map(|(_, e)| e.as_str()).unwrap_or("");
            let locked = self
                .lock_if_due(
                    &mut tx,
                    &keys,
                    &account,
                    gate.account_failures,
                    user_id,
                    email,
                    ctx,
                )
                .await?;
            tx.commit().await?;
            if let Some(until) = locked {
                self.after_lockout(scope, user_id, until);
            }
            return Err(passkey_failed());
        }
        let Some((user_row, _)) = user else {
            return Err(passkey_failed());
        };
        self.sign_in_without_sso_allowed(tenant, &user_row, "passkey", ctx)
            .await?;
        self.attempt_succeeded(&account, &gate, true).await?;
        self.start_session(tenant, user_row.id, SessionStage::Mfa, "passkey", ctx)
            .await
    }
}

/// Whether a user has a passkey (a second factor for `second_step_due` and the policy).
pub(crate) async fn has_passkey(tx: &mut TenantTx, user: UserId) -> Result<bool> {
    Ok(tx.count_user_passkeys(user).await? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert_eq!(validate_name("  YubiKey 5 ").unwrap(), "YubiKey 5");
        assert!(validate_name("").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(65)).is_err());
    }
}
