//! Single sign-on (OpenID Connect): the browser flow (`/sso/oidc/start`, `/sso/oidc/callback`)
//! and its configuration (`/api/v1/settings/sso`, break-glass owners).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use kluis_core::UserId;
use kluis_core::sso::{SsoCallbackParams, SsoSettingsDoc, SsoSettingsInput};
use serde::Deserialize;

use super::auth::LoginResponse;
use crate::AppState;
use crate::auth::{Authed, Ctx, cookie as read_cookie};
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult, ErrorBody, IdPath};

/// Binds a sign-in to the browser that started it: HttpOnly, `SameSite=Lax` (it must come
/// back on the top-level redirect from the IdP, a cross-site navigation), 10 minutes.
pub const SSO_COOKIE: &str = "__Host-kluis_sso";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// The organisation's slug.
    pub organisation: Option<String>,
}

fn cookie_value(c: &Cookie<'_>) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(&c.to_string()).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "cookie encoding",
        )
    })
}

/// Start single sign-on: redirects (302) to the organisation's identity provider.
#[utoipa::path(get, path = "/sso/oidc/start", tag = "auth", params(StartQuery),
    responses((status = 302, description = "to the identity provider"), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn start(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiQuery(q): ApiQuery<StartQuery>,
) -> ApiResult<(StatusCode, HeaderMap)> {
    let org = q.organisation.unwrap_or_default();
    if org.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "organisation_required",
            "give ?organisation=<slug>",
        ));
    }
    let out = s.kluis.sso_start(&org, &c).await?;
    let mut headers = HeaderMap::new();
    let c = Cookie::build((SSO_COOKIE, out.binding))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(time::Duration::minutes(10));
    headers.append(header::SET_COOKIE, cookie_value(&c.build())?);
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&out.redirect_url).map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "redirect encoding",
            )
        })?,
    );
    Ok((StatusCode::FOUND, headers))
}

/// The identity provider's redirect back. On success: the same session cookie, CSRF cookie and
/// body as a password sign-in.
#[utoipa::path(get, path = "/sso/oidc/callback", tag = "auth", params(SsoCallbackParams),
    responses((status = 200, body = LoginResponse, description = "JSON; a browser (Accept: text/html) gets a page that continues to /account"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn callback(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<SsoCallbackParams>,
) -> Response {
    let binding = read_cookie(&headers, SSO_COOKIE);
    let html = crate::pages::wants_html(&headers);
    let answer = async {
        let out = s.kluis.sso_callback(&q, binding.as_deref(), &c).await?;
        // The same cookies and body as a password sign-in, and the sign-in's binding cookie gone.
        let (mut h, body) = super::auth::login_answer(out)?;
        let used = Cookie::build((SSO_COOKIE, ""))
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Lax)
            .path("/")
            .max_age(time::Duration::ZERO);
        h.append(header::SET_COOKIE, cookie_value(&used.build())?);
        Ok::<_, ApiError>((h, body))
    }
    .await;
    match (answer, html) {
        (Ok(ok), false) => ok.into_response(),
        (Err(e), false) => e.into_response(),
        // A browser arriving from the identity provider gets pages, not JSON.
        (Ok((h, _)), true) => crate::pages::signed_in_elsewhere(&headers, h),
        (Err(e), true) => crate::pages::sign_in_failed(&headers, &e),
    }
}

/// The organisation's single sign-on configuration (owners and admins; the client secret is
/// never shown).
#[utoipa::path(get, path = "/api/v1/settings/sso", tag = "settings",
    responses((status = 200, body = SsoSettingsDoc), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_settings(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<SsoSettingsDoc>> {
    Ok(Json(s.kluis.sso_settings(&a).await?))
}

/// Configure single sign-on (owners and admins, signed in; audited). The provider's discovery
/// document is fetched and checked before anything is stored.
#[utoipa::path(put, path = "/api/v1/settings/sso", tag = "settings", request_body = SsoSettingsInput,
    responses((status = 200, body = SsoSettingsDoc), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_settings(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<SsoSettingsInput>,
) -> ApiResult<Json<SsoSettingsDoc>> {
    Ok(Json(s.kluis.put_sso_settings(&a, &c, input).await?))
}

/// Remove single sign-on (password sign-in is no longer restricted).
#[utoipa::path(delete, path = "/api/v1/settings/sso", tag = "settings",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_settings(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
) -> ApiResult<StatusCode> {
    s.kluis.delete_sso_settings(&a, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make an owner a break-glass account: may still sign in with a password when SSO is
/// required (owners only).
#[utoipa::path(put, path = "/api/v1/users/{id}/break-glass", tag = "users", params(("id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_break_glass(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<UserId>,
) -> ApiResult<StatusCode> {
    s.kluis.set_break_glass(&a, &c, id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take the break-glass mark away (refused if SSO is required and it is the last one).
#[utoipa::path(delete, path = "/api/v1/users/{id}/break-glass", tag = "users", params(("id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn clear_break_glass(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<UserId>,
) -> ApiResult<StatusCode> {
    s.kluis.set_break_glass(&a, &c, id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
