//! Single sign-on with SAML 2.0: the browser flow (`/sso/saml/start`, the per-tenant ACS and SP
//! metadata under `/sso/saml/{tenant}/`) and its configuration (`/api/v1/settings/sso/saml`).
//! Without the `saml` cargo feature every one of them answers `400 saml_not_built`.

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use kluis_core::saml::{SamlAcsForm, SamlSettingsDoc, SamlSettingsInput};

use super::auth::LoginResponse;
use super::sso::StartQuery;
use crate::AppState;
use crate::auth::{Authed, Ctx, cookie as read_cookie};
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult, ErrorBody};

/// Binds a SAML sign-in to the browser that started it. The IdP returns the browser with a
/// cross-site POST, which only carries `SameSite=None` cookies; the cookie holds a random
/// secret that only matters together with the single-use RelayState, HttpOnly, 10 minutes.
pub const SAML_COOKIE: &str = "__Host-kluis_saml";

fn binding_cookie(value: &str, max_age: time::Duration) -> ApiResult<HeaderValue> {
    let c = Cookie::build((SAML_COOKIE, value))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::None)
        .path("/")
        .max_age(max_age)
        .build();
    HeaderValue::from_str(&c.to_string()).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "cookie encoding",
        )
    })
}

/// Start SAML sign-in: redirects (302) to the organisation's identity provider with an
/// AuthnRequest (HTTP-Redirect binding).
#[utoipa::path(get, path = "/sso/saml/start", tag = "auth", params(StartQuery),
    responses((status = 302, description = "to the identity provider"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
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
    let out = s.kluis.saml_start(&org, &c).await?;
    let mut headers = HeaderMap::new();
    headers.append(
        header::SET_COOKIE,
        binding_cookie(&out.binding, time::Duration::minutes(10))?,
    );
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

/// The assertion consumer service (HTTP-POST binding). On success: the same session cookie,
/// CSRF cookie and body as a password sign-in.
#[utoipa::path(post, path = "/sso/saml/{tenant}/acs", tag = "auth",
    params(("tenant" = uuid::Uuid, Path, description = "tenant id")),
    request_body(content = SamlAcsForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = LoginResponse, description = "JSON; a browser (Accept: text/html) gets a page that continues to /account"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn acs(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Result<Form<SamlAcsForm>, FormRejection>,
) -> Response {
    let answer = async {
        let Ok(Form(form)) = form else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_form",
                "post SAMLResponse and RelayState as application/x-www-form-urlencoded",
            ));
        };
        let binding = read_cookie(&headers, SAML_COOKIE);
        let out = s
            .kluis
            .saml_acs(&tenant, &form, binding.as_deref(), &c)
            .await?;
        let (mut h, body) = super::auth::login_answer(out)?;
        h.append(
            header::SET_COOKIE,
            binding_cookie("", time::Duration::ZERO)?,
        );
        Ok((h, body))
    }
    .await;
    // A browser posting the IdP's form gets pages, like the OpenID Connect callback.
    match (answer, crate::pages::wants_html(&headers)) {
        (Ok(ok), false) => ok.into_response(),
        (Err(e), false) => e.into_response(),
        (Ok((h, _)), true) => crate::pages::signed_in_elsewhere(&headers, h),
        (Err(e), true) => crate::pages::sign_in_failed(&headers, &e),
    }
}

/// This service provider's SAML metadata for the tenant (give it to the IdP).
#[utoipa::path(get, path = "/sso/saml/{tenant}/metadata", tag = "auth",
    params(("tenant" = uuid::Uuid, Path, description = "tenant id")),
    responses((status = 200, content_type = "application/samlmetadata+xml", body = String), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn metadata(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
) -> ApiResult<(HeaderMap, String)> {
    let xml = s.kluis.saml_metadata(&tenant).await?;
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/samlmetadata+xml"),
    );
    Ok((h, xml))
}

/// The organisation's SAML configuration (owners and admins).
#[utoipa::path(get, path = "/api/v1/settings/sso/saml", tag = "settings",
    responses((status = 200, body = SamlSettingsDoc), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_settings(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<SamlSettingsDoc>> {
    Ok(Json(s.kluis.saml_settings(&a).await?))
}

/// Configure SAML sign-in (owners and admins, signed in; audited). Replaces any OpenID
/// Connect configuration: a tenant has one SSO configuration.
#[utoipa::path(put, path = "/api/v1/settings/sso/saml", tag = "settings", request_body = SamlSettingsInput,
    responses((status = 200, body = SamlSettingsDoc), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_settings(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<SamlSettingsInput>,
) -> ApiResult<Json<SamlSettingsDoc>> {
    Ok(Json(s.kluis.put_saml_settings(&a, &c, input).await?))
}
