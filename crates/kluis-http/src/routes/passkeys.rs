//! Passkeys (WebAuthn): registration, the second sign-in step, passwordless sign-in, and
//! listing/removing them. Each ceremony is a start (returns `{ceremony, options}`; `options`
//! goes to `navigator.credentials.create()/get()` after base64url-decoding its binary fields)
//! and a finish (`{ceremony, credential}`, the credential JSON with binary fields base64url).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kluis_core::Page;
use kluis_core::UserId;
use kluis_core::passkeys::{
    PasskeyAssertion, PasskeyCeremony, PasskeyDelete, PasskeyInfo, PasskeyLoginStart,
    PasskeyRegistrationFinish,
};
use serde::Serialize;

use crate::AppState;
use crate::auth::{Authed, ChallengeAuthed, Ctx, EnrolAuthed};
use crate::error::{ApiJson, ApiResult, ErrorBody, IdPath};
use crate::routes::auth::{LoginResponse, login_answer};

/// Start registering a passkey (signed in, or the pending sign-in of a user who must enrol a
/// second factor). User verification required, attestation none, discoverable credential.
#[utoipa::path(post, path = "/api/v1/me/passkeys/register/start", tag = "auth",
    responses((status = 200, body = PasskeyCeremony), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn register_start(
    State(s): State<AppState>,
    EnrolAuthed(a): EnrolAuthed,
) -> ApiResult<Json<PasskeyCeremony>> {
    Ok(Json(s.kluis.start_passkey_registration(&a).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeyRegistrationResponse {
    pub passkey: PasskeyInfo,
    /// When registration completed a pending must-enrol sign-in: the new session (its cookie
    /// is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginResponse>,
}

/// Finish registering a passkey: `{ceremony, name, credential}`. Audited.
#[utoipa::path(post, path = "/api/v1/me/passkeys/register/finish", tag = "auth", request_body = PasskeyRegistrationFinish,
    responses((status = 200, body = PasskeyRegistrationResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register_finish(
    State(s): State<AppState>,
    EnrolAuthed(a): EnrolAuthed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<PasskeyRegistrationFinish>,
) -> ApiResult<(HeaderMap, Json<PasskeyRegistrationResponse>)> {
    let out = s.kluis.finish_passkey_registration(&a, &c, input).await?;
    let (headers, login) = match out.login {
        Some(l) => {
            let (h, Json(body)) = login_answer(l)?;
            (h, Some(body))
        }
        None => (HeaderMap::new(), None),
    };
    Ok((
        headers,
        Json(PasskeyRegistrationResponse {
            passkey: out.passkey,
            login,
        }),
    ))
}

/// My passkeys.
#[utoipa::path(get, path = "/api/v1/me/passkeys", tag = "auth",
    responses((status = 200, body = Page<PasskeyInfo>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Page<PasskeyInfo>>> {
    Ok(Json(Page::all(s.kluis.my_passkeys(&a).await?)))
}

/// Remove one of my passkeys, with my `password` or a current TOTP `code`. Refused (409
/// `mfa_required_by_policy`) for my last second factor while my organisation requires one.
#[utoipa::path(delete, path = "/api/v1/me/passkeys/{id}", tag = "auth", request_body = PasskeyDelete,
    params(("id" = uuid::Uuid, Path, description = "passkey id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<uuid::Uuid>,
    ApiJson(input): ApiJson<PasskeyDelete>,
) -> ApiResult<StatusCode> {
    s.kluis.delete_my_passkey(&a, &c, id, input).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Second sign-in step with a passkey (pending session cookie, `status: mfa_required`).
#[utoipa::path(post, path = "/api/v1/auth/mfa/passkey/start", tag = "auth",
    responses((status = 200, body = PasskeyCeremony), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn mfa_start(
    State(s): State<AppState>,
    ChallengeAuthed(a): ChallengeAuthed,
) -> ApiResult<Json<PasskeyCeremony>> {
    Ok(Json(s.kluis.start_passkey_challenge(&a).await?))
}

/// Finish the second sign-in step: `{ceremony, credential}`. Replaces the cookie with a full
/// session. Failures count like wrong TOTP codes (401 `passkey_rejected`).
#[utoipa::path(post, path = "/api/v1/auth/mfa/passkey/finish", tag = "auth", request_body = PasskeyAssertion,
    responses((status = 200, body = LoginResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn mfa_finish(
    State(s): State<AppState>,
    ChallengeAuthed(a): ChallengeAuthed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<PasskeyAssertion>,
) -> ApiResult<(HeaderMap, Json<LoginResponse>)> {
    login_answer(s.kluis.answer_passkey_challenge(&a, &c, input).await?)
}

/// Start a passwordless sign-in for an organisation (`{tenant}`); the browser offers the
/// user's passkeys for this site (discoverable credentials).
#[utoipa::path(post, path = "/api/v1/auth/passkey/start", tag = "auth", request_body = PasskeyLoginStart,
    responses((status = 200, body = PasskeyCeremony)))]
pub async fn login_start(
    State(s): State<AppState>,
    ApiJson(input): ApiJson<PasskeyLoginStart>,
) -> ApiResult<Json<PasskeyCeremony>> {
    Ok(Json(s.kluis.start_passkey_login(input).await?))
}

/// Finish a passwordless sign-in: `{ceremony, credential}`. Sets the session cookie. Every
/// failure is the same 401 `passkey_failed`.
#[utoipa::path(post, path = "/api/v1/auth/passkey/finish", tag = "auth", request_body = PasskeyAssertion,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn login_finish(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<PasskeyAssertion>,
) -> ApiResult<(HeaderMap, Json<LoginResponse>)> {
    login_answer(s.kluis.finish_passkey_login(&c, input).await?)
}

/// A user's passkeys (user management).
#[utoipa::path(get, path = "/api/v1/users/{id}/passkeys", tag = "users", params(("id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 200, body = Page<PasskeyInfo>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn user_list(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath<UserId>,
) -> ApiResult<Json<Page<PasskeyInfo>>> {
    Ok(Json(Page::all(s.kluis.user_passkeys(&a, id).await?)))
}

/// Remove a user's passkey (lost device) and end their sessions. Audited.
#[utoipa::path(delete, path = "/api/v1/users/{id}/passkeys/{passkey_id}", tag = "users",
    params(("id" = uuid::Uuid, Path, description = "user id"), ("passkey_id" = uuid::Uuid, Path, description = "passkey id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn user_delete(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath((id, passkey)): IdPath<(UserId, uuid::Uuid)>,
) -> ApiResult<StatusCode> {
    s.kluis.delete_user_passkey(&a, &c, id, passkey).await?;
    Ok(StatusCode::NO_CONTENT)
}
