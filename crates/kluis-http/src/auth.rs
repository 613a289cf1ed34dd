//! Request authentication: `Authorization: Bearer kluis_...` (API key) or the session cookie
//! (then state-changing methods also need the `X-CSRF-Token` header, and cross-site requests
//! are refused outright). Platform routes take `Authorization: Bearer kluisp_...` only.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{HeaderMap, Method, StatusCode, header, request::Parts};
use kluis_core::sessions::SessionUse;
use kluis_core::tenants::PlatformActor;
use kluis_core::{Actor, RequestContext};

use crate::AppState;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "__Host-kluis_session";
pub const CSRF_COOKIE: &str = "__Host-kluis_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated tenant actor.
pub struct Authed(pub Actor);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let actor = match bearer(&parts.headers)? {
            // A platform operator under a support grant (the grant names the tenant).
            Some(bearer) if bearer.starts_with(kluis_core::support::OPERATOR_TOKEN_PREFIX) => {
                let grant = parts
                    .headers
                    .get(kluis_core::support::GRANT_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let route = parts
                    .extensions
                    .get::<axum::extract::MatchedPath>()
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_else(|| parts.uri.path().to_owned());
                if support_blocked(&parts.method, &route) {
                    return Err(kluis_core::support::support_action_blocked().into());
                }
                let ctx = request_context(parts);
                state
                    .kluis
                    .authenticate_support(
                        bearer,
                        grant,
                        &ctx,
                        parts.method.as_str(),
                        parts.uri.path(),
                    )
                    .await?
            }
            Some(bearer) => {
                let actor = state.kluis.authenticate_api_key(bearer).await?;
                state
                    .kluis
                    .check_network(actor.tenant(), &peer_ip(&parts.extensions))
                    .await?;
                actor
            }
            None => session_actor(parts, state, SessionUse::Api).await?,
        };
        // Every authenticated API request counts against the caller's rate limits.
        let decision = state.kluis.rate_limit(&actor).await?;
        crate::ratelimit::enforce(&parts.extensions, decision)?;
        Ok(Authed(actor))
    }
}

/// The session cookie (with CSRF checks) for `usage`. Only `SessionUse::Api` sessions reach
/// ordinary routes: `authenticate_session` refuses pending sessions for every route that
/// takes [`Authed`].
async fn session_actor(
    parts: &Parts,
    state: &AppState,
    usage: SessionUse,
) -> Result<Actor, ApiError> {
    let Some(cookie) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Err(kluis_core::Error::unauthenticated().into());
    };
    let state_changing = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if state_changing && is_cross_site(&parts.headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "cross-site request refused",
        ));
    }
    let csrf = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    let actor = state
        .kluis
        .authenticate_session_for(&cookie, csrf, state_changing, usage)
        .await?;
    state
        .kluis
        .check_network(actor.tenant(), &peer_ip(&parts.extensions))
        .await?;
    Ok(actor)
}

/// The TCP peer's address ("" when unknown, which an IP allowlist refuses). No forwarding
/// headers are trusted: Kluis terminates TLS itself.
pub(crate) fn peer_ip(ext: &axum::http::Extensions) -> String {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

tokio::task_local! {
    /// The peer address of the request this task serves, for the page handlers, which see
    /// headers but not the connection (set by [`remember_peer`] around every request).
    static PEER: String;
}

pub(crate) async fn remember_peer(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let ip = peer_ip(req.extensions());
    PEER.scope(ip, next.run(req)).await
}

/// The peer address of the current request ("" outside one).
pub(crate) fn current_peer() -> String {
    PEER.try_with(Clone::clone).unwrap_or_default()
}

/// Seed 000's high-risk actions, refused under support access before any handler runs (and
/// again by the core's permission check, whatever the route): app keys (even viewing them),
/// encryption keys, imports, exports, deleting anything, people, roles, teams, SCIM, custom
/// fields and pipelines, every setting change, and the support-access decisions themselves.
fn support_blocked(method: &Method, route: &str) -> bool {
    let write = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let any = [
        "/api/v1/apikeys",
        "/api/v1/keys/",
        "/api/v1/imports",
        "/api/v1/me",
        "/api/v1/support-access/",
        "/api/v1/audit/export",
    ];
    let writes = [
        "/api/v1/settings",
        "/api/v1/users",
        "/api/v1/roles",
        "/api/v1/teams",
        "/api/v1/scim",
        "/api/v1/auth/",
        "/api/v1/custom-fields",
        "/api/v1/custom-values",
        "/api/v1/pipelines",
    ];
    *method == Method::DELETE
        || route.ends_with("/export")
        || route.ends_with("/purge")
        || any.iter().any(|p| route.starts_with(p))
        || (write && writes.iter().any(|p| route.starts_with(p)))
}

/// A session cookie waiting for its second factor (`POST /api/v1/auth/mfa` only).
pub struct ChallengeAuthed(pub Actor);

impl FromRequestParts<AppState> for ChallengeAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(ChallengeAuthed(
            session_actor(parts, state, SessionUse::Challenge).await?,
        ))
    }
}

/// A session cookie that may enrol a second factor: signed in, or pending because the
/// organisation requires enrolment (the TOTP enrolment endpoints only).
pub struct EnrolAuthed(pub Actor);

impl FromRequestParts<AppState> for EnrolAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if bearer(&parts.headers)?.is_some() {
            return Err(kluis_core::Error::forbidden(
                "this action requires a signed-in user, not an API key",
            )
            .into());
        }
        Ok(EnrolAuthed(
            session_actor(parts, state, SessionUse::Enrolment).await?,
        ))
    }
}

/// A signed-in support operator (operator session token), outside any tenant.
pub struct OperatorAuthed(pub kluis_core::support::Operator);

impl FromRequestParts<AppState> for OperatorAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = bearer(&parts.headers)?.ok_or_else(kluis_core::Error::unauthenticated)?;
        Ok(OperatorAuthed(
            state.kluis.authenticate_operator(bearer).await?,
        ))
    }
}

/// An authenticated platform operator.
pub struct PlatformAuthed(pub PlatformActor);

impl FromRequestParts<AppState> for PlatformAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = bearer(&parts.headers)?.ok_or_else(kluis_core::Error::unauthenticated)?;
        Ok(PlatformAuthed(
            state.kluis.authenticate_platform_key(bearer).await?,
        ))
    }
}

/// `Some(token)` for `Authorization: Bearer <token>`, None without the header, 401 for any
/// other scheme.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| kluis_core::Error::unauthenticated())?;
    match v.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(kluis_core::Error::unauthenticated().into()),
    }
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Browsers say where a request comes from; refuse state changes started by another site.
fn is_cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
}

/// Where the request came from (peer address, user agent, request id).
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Ctx(request_context(parts)))
    }
}

fn request_context(parts: &Parts) -> RequestContext {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    RequestContext {
        ip: peer_ip(&parts.extensions),
        user_agent: header("user-agent"),
        request_id: header("x-request-id"),
    }
}
