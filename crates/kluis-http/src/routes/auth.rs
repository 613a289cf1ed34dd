use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use cookie::{Cookie, SameSite};
use kluis_core::sessions::{LoginInput, PasswordChange, SessionInfo};
use kluis_core::users::User;
use serde::Serialize;

use crate::AppState;
use crate::auth::{Authed, CSRF_COOKIE, Ctx, SESSION_COOKIE};
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub user: User,
    pub session: SessionInfo,
    /// Send as `X-CSRF-Token` with every state-changing request made with the session cookie.
    pub csrf_token: String,
}

/// Sign in with organisation, email and password. Sets the HttpOnly session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginInput,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody)))]
pub async fn login(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<LoginInput>,
) -> ApiResult<(HeaderMap, Json<LoginResponse>)> {
    let out = s.kluis.login(input, &c).await?;
    let max_age = time::Duration::try_from(s.kluis.config().session_absolute_timeout)
        .unwrap_or(time::Duration::hours(12));
    let mut headers = HeaderMap::new();
    let session = Cookie::build((SESSION_COOKIE, out.session_token))
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
    Ok((
        headers,
        Json(LoginResponse {
            user: out.user,
            session: out.session,
            csrf_token: out.csrf_token,
        }),
    ))
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

fn clearing_cookies() -> ApiResult<HeaderMap> {
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

/// My active sessions (device, IP, last seen).
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "auth", responses((status = 200, body = Vec<SessionInfo>), (status = 401, body = ErrorBody)))]
pub async fn sessions(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    Ok(Json(s.kluis.my_sessions(&a).await?))
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
