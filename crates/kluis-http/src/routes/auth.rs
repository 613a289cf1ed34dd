use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use cookie::{Cookie, SameSite};
use kluis_core::Page;
use kluis_core::SessionId;
use kluis_core::mfa::{
    MfaChallenge, MfaDisable, MfaStatus, RecoveryCodes, TotpCode, TotpEnrolment,
};
use kluis_core::sessions::{LoginInput, LoginOutcome, LoginStatus, PasswordChange, SessionInfo};
use kluis_core::users::User;
use serde::Serialize;

use crate::AppState;
use crate::auth::{Authed, CSRF_COOKIE, ChallengeAuthed, Ctx, EnrolAuthed, SESSION_COOKIE};
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody, IdPath};

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// `complete`, or which second step the (pending) session cookie is good for.
    pub status: LoginStatus,
    /// Absent while a second step is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionInfo>,
    /// Send as `X-CSRF-Token` with every state-changing request made with the session cookie.
    pub csrf_token: String,
}

/// Sets the session and CSRF cookies of a sign-in step and renders its answer.
pub(crate) fn login_answer(out: LoginOutcome) -> ApiResult<(HeaderMap, Json<LoginResponse>)> {
    let headers = session_cookies(&out)?;
    Ok((
        headers,
        Json(LoginResponse {
            status: out.status,
            user: out.user,
            session: out.session,
            csrf_token: out.csrf_token,
        }),
    ))
}

/// The session and CSRF cookies of a sign-in step (the API and the pages set the same ones).
pub(crate) fn session_cookies(out: &LoginOutcome) -> ApiResult<HeaderMap> {
    let max_age = time::Duration::seconds(out.max_age_secs);
    let mut headers = HeaderMap::new();
    let session = Cookie::build((SESSION_COOKIE, out.session_token.clone()))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(max_age);
    // Readable by our own scripts (double submit); useless to another site under SameSite=Strict.
    let csrf = Cookie::build((CSRF_COOKIE, out.csrf_token.clone()))
        .secure(true)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(max_age);
    for c in [session.build(), csrf.build()] {
        headers.append(header::SET_COOKIE, cookie_header(&c)?);
    }
    Ok(headers)
}

/// Sign in with organisation, email and password. Sets the HttpOnly session cookie. When a
/// second factor is due the cookie is a pending one (5 minutes) that only
/// `POST /api/v1/auth/mfa` (`status: mfa_required`) or the enrolment endpoints
/// (`status: mfa_enrolment_required`) accept. Every failure, an unknown or locked account
/// included, is the same 401 `invalid_credentials`.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginInput,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody)))]
pub async fn login(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<LoginInput>,
) -> ApiResult<(HeaderMap, Json<LoginResponse>)> {
    login_answer(s.kluis.login(input, &c).await?)
}

/// The second sign-in step, with the pending session cookie: a TOTP `code` or a
/// `recovery_code`. Replaces the cookie with a full session.
#[utoipa::path(post, path = "/api/v1/auth/mfa", tag = "auth", request_body = MfaChallenge,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn mfa_challenge(
    State(s): State<AppState>,
    ChallengeAuthed(a): ChallengeAuthed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<MfaChallenge>,
) -> ApiResult<(HeaderMap, Json<LoginResponse>)> {
    login_answer(s.kluis.answer_mfa_challenge(&a, &c, input).await?)
}

/// My second factor: enrolled, required by my organisation, recovery codes left.
#[utoipa::path(get, path = "/api/v1/me/mfa", tag = "auth",
    responses((status = 200, body = MfaStatus), (status = 401, body = ErrorBody)))]
pub async fn mfa_status(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<MfaStatus>> {
    Ok(Json(s.kluis.mfa_status(&a).await?))
}

/// Start TOTP enrolment: a new secret, its `otpauth://` URI and QR code (SVG). Works with a
/// signed-in session or the pending one of a sign-in that must enrol.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp", tag = "auth",
    responses((status = 200, body = TotpEnrolment), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn totp_start(
    State(s): State<AppState>,
    EnrolAuthed(a): EnrolAuthed,
    Ctx(c): Ctx,
) -> ApiResult<Json<TotpEnrolment>> {
    Ok(Json(s.kluis.start_totp_enrolment(&a, &c).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EnrolmentResponse {
    /// Shown once; each works once.
    pub recovery_codes: Vec<String>,
    /// When enrolment completed a pending sign-in: the new session (its cookie is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginResponse>,
}

/// Confirm TOTP enrolment with the first code. Returns 10 recovery codes (shown once). With a
/// pending must-enrol session this completes the sign-in and sets a full session cookie.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/confirm", tag = "auth", request_body = TotpCode,
    responses((status = 200, body = EnrolmentResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn totp_confirm(
    State(s): State<AppState>,
    EnrolAuthed(a): EnrolAuthed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<TotpCode>,
) -> ApiResult<(HeaderMap, Json<EnrolmentResponse>)> {
    let out = s.kluis.confirm_totp_enrolment(&a, &c, input).await?;
    let (headers, login) = match out.login {
        Some(l) => {
            let (h, Json(body)) = login_answer(l)?;
            (h, Some(body))
        }
        None => (HeaderMap::new(), None),
    };
    Ok((
        headers,
        Json(EnrolmentResponse {
            recovery_codes: out.recovery_codes,
            login,
        }),
    ))
}

/// Turn my second factor off, with a current `code` or my `password`. Refused (409
/// `mfa_required_by_policy`) while my organisation requires one for my role.
#[utoipa::path(post, path = "/api/v1/me/mfa/disable", tag = "auth", request_body = MfaDisable,
    responses((status = 204), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn mfa_disable(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<MfaDisable>,
) -> ApiResult<StatusCode> {
    s.kluis.disable_mfa(&a, &c, input).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// New recovery codes (the old ones stop working), with a current code.
#[utoipa::path(post, path = "/api/v1/me/mfa/recovery-codes", tag = "auth", request_body = TotpCode,
    responses((status = 200, body = RecoveryCodes), (status = 422, body = ErrorBody)))]
pub async fn recovery_codes(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<TotpCode>,
) -> ApiResult<Json<RecoveryCodes>> {
    Ok(Json(
        s.kluis.regenerate_recovery_codes(&a, &c, input).await?,
    ))
}

/// End one of my sessions (e.g. on a lost device).
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "auth", params(("id" = uuid::Uuid, Path, description = "session id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_session(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<SessionId>,
) -> ApiResult<StatusCode> {
    s.kluis.revoke_my_session(&a, &c, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn cookie_header(c: &Cookie<'_>) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(&c.to_string()).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "cookie encoding",
        )
    })
}

pub(crate) fn clearing_cookies() -> ApiResult<HeaderMap> {
    let mut headers = HeaderMap::new();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        let c = Cookie::build((name, ""))
            .secure(true)
            .http_only(name == SESSION_COOKIE)
            .same_site(SameSite::Strict)
            .path("/")
            .max_age(time::Duration::ZERO);
        headers.append(header::SET_COOKIE, cookie_header(&c.build())?);
    }
    Ok(headers)
}

/// End this session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
) -> ApiResult<(StatusCode, HeaderMap)> {
    s.kluis.logout(&a, &c).await?;
    Ok((StatusCode::NO_CONTENT, clearing_cookies()?))
}

/// Sign out all my sessions, this one included.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout_all(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
) -> ApiResult<(StatusCode, HeaderMap)> {
    s.kluis.logout_everywhere(&a, &c).await?;
    Ok((StatusCode::NO_CONTENT, clearing_cookies()?))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
pub async fn me(State(s): State<AppState>, Authed(a): Authed) -> ApiResult<Json<User>> {
    Ok(Json(s.kluis.me(&a).await?))
}

/// My active sessions (device, IP, last seen). A password change ends all but this one.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "auth", responses((status = 200, body = Page<SessionInfo>), (status = 401, body = ErrorBody)))]
pub async fn sessions(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Page<SessionInfo>>> {
    Ok(Json(Page::all(s.kluis.my_sessions(&a).await?)))
}

/// Change my password; my other sessions end.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 422, body = ErrorBody)))]
pub async fn change_password(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    s.kluis.change_password(&a, &c, input).await?;
    Ok(StatusCode::NO_CONTENT)
}
