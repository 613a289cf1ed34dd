//! SCIM 2.0: the admin API for the tenant's SCIM token and group-to-role mapping
//! (`/api/v1/scim/...`, signed-in owners and admins), and the SCIM service provider itself
//! (`/scim/v2/...`), which accepts only the tenant's SCIM token and answers in SCIM's own error
//! format with `application/scim+json`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kluis_core::scim::patch::PatchRequest;
use kluis_core::scim::service::{ScimSettingsDoc, ScimSettingsInput, ScimTokenCreated};
use kluis_core::scim::{self, ListParams, SearchRequest};
use kluis_core::{Actor, ErrorKind};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiJson, ApiResult, ErrorBody};

// ---- admin API -------------------------------------------------------------------------------

/// Create the organisation's SCIM token, or rotate it (the previous one stops working at once).
/// The token is in this response only. Owners and admins, signed in; audited.
#[utoipa::path(post, path = "/api/v1/scim/token", tag = "settings",
    responses((status = 201, body = ScimTokenCreated), (status = 403, body = ErrorBody)))]
pub async fn create_token(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
) -> ApiResult<(StatusCode, Json<ScimTokenCreated>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.create_scim_token(&a, &c).await?),
    ))
}

/// Revoke the SCIM token: provisioning stops until a new one is created.
#[utoipa::path(delete, path = "/api/v1/scim/token", tag = "settings",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
) -> ApiResult<StatusCode> {
    s.kluis.revoke_scim_token(&a, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// SCIM status and the group-to-role mapping.
#[utoipa::path(get, path = "/api/v1/scim/settings", tag = "settings",
    responses((status = 200, body = ScimSettingsDoc), (status = 403, body = ErrorBody)))]
pub async fn get_settings(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<ScimSettingsDoc>> {
    Ok(Json(s.kluis.scim_settings(&a).await?))
}

/// Map SCIM groups (by displayName) to roles; a user gets the highest role among their groups.
/// The owner role cannot be mapped. Applies to current members at once; audited.
#[utoipa::path(put, path = "/api/v1/scim/settings", tag = "settings", request_body = ScimSettingsInput,
    responses((status = 200, body = ScimSettingsDoc), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_settings(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<ScimSettingsInput>,
) -> ApiResult<Json<ScimSettingsDoc>> {
    Ok(Json(s.kluis.put_scim_settings(&a, &c, input).await?))
}

// ---- the SCIM service provider ---------------------------------------------------------------

const SCIM_TYPES: &[&str] = &[
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
];

/// An error in RFC 7644 §3.12 form.
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

impl ScimError {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }
}

impl From<kluis_core::Error> for ScimError {
    fn from(e: kluis_core::Error) -> Self {
        let api = crate::error::ApiError::from(kluis_core::Error::new(e.kind, e.code, ""));
        let scim_type = SCIM_TYPES.iter().copied().find(|t| *t == e.code);
        let detail = if e.kind == ErrorKind::Internal || api.status.is_server_error() {
            "internal error; see the server log for the request id".to_owned()
        } else {
            e.message
        };
        ScimError::new(api.status, scim_type, detail)
    }
}

fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/scim+json"),
    );
    res
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [scim::ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        let mut res = scim_json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

type ScimResult<T> = Result<T, ScimError>;

/// The tenant's SCIM client. Only `Authorization: Bearer kluisscim_...` is accepted here (no
/// cookie, no API key); the SCIM token is accepted nowhere else.
pub struct ScimAuthed(pub Actor);

impl FromRequestParts<AppState> for ScimAuthed {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ScimError> {
        let unauthenticated = || {
            ScimError::new(
                StatusCode::UNAUTHORIZED,
                None,
                "missing or invalid SCIM token",
            )
        };
        let v = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthenticated)?;
        let token = match v.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => return Err(unauthenticated()),
        };
        let actor = state
            .kluis
            .authenticate_scim(token)
            .await
            .map_err(|e| match e.kind {
                ErrorKind::Unauthenticated => unauthenticated(),
                _ => ScimError::from(e),
            })?;
        Ok(ScimAuthed(actor))
    }
}

/// `https://<host>/scim/v2`, for `meta.location` and member `$ref`s. The Host header is only
/// echoed to the client that sent it, after checking it holds nothing but a host name and port.
struct Base(String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                    })
            })
            .unwrap_or("localhost");
        Ok(Base(format!("https://{host}/scim/v2")))
    }
}

/// A SCIM request body: `application/scim+json` or `application/json`, parsed as JSON.
struct ScimBody(Value);

impl<S: Send + Sync> axum::extract::FromRequest<S> for ScimBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ScimError> {
        let ok_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m.eq_ignore_ascii_case("application/scim+json")
                    || m.eq_ignore_ascii_case("application/json")
            });
        if !ok_type {
            return Err(ScimError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "send Content-Type: application/scim+json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    "the request body is too large",
                )
            } else {
                ScimError::new(
                    StatusCode::BAD_REQUEST,
                    Some("invalidSyntax"),
                    "unreadable body",
                )
            }
        })?;
        serde_json::from_slice(&bytes).map(ScimBody).map_err(|_| {
            ScimError::new(
                StatusCode::BAD_REQUEST,
                Some("invalidSyntax"),
                "the body is not valid JSON",
            )
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> ScimResult<T> {
    serde_json::from_value(v).map_err(|_| {
        ScimError::new(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "the request does not have the expected shape",
        )
    })
}

fn ok(body: &Value) -> Response {
    scim_json(StatusCode::OK, body)
}

fn created(body: &Value) -> Response {
    let mut res = scim_json(StatusCode::CREATED, body);
    if let Some(loc) = body["meta"]["location"]
        .as_str()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    res
}

fn list_params(
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ScimResult<ListParams> {
    q.map(|q| q.0).map_err(|_| {
        ScimError::new(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "invalid query parameters",
        )
    })
}

async fn service_provider_config(_a: ScimAuthed, Base(b): Base) -> Response {
    ok(&scim::service_provider_config(&b))
}

async fn resource_types(_a: ScimAuthed, Base(b): Base) -> Response {
    let all = scim::resource_types(&b);
    let n = all.len();
    ok(&scim::list_response(all, n, 1))
}

async fn resource_type(
    _a: ScimAuthed,
    Base(b): Base,
    Path(id): Path<String>,
) -> ScimResult<Response> {
    scim::resource_types(&b)
        .into_iter()
        .find(|r| r["id"] == json!(id))
        .map(|r| ok(&r))
        .ok_or_else(|| ScimError::new(StatusCode::NOT_FOUND, None, "no such resource type"))
}

async fn schemas(_a: ScimAuthed, Base(b): Base) -> Response {
    let all = scim::schemas(&b);
    let n = all.len();
    ok(&scim::list_response(all, n, 1))
}

async fn schema(_a: ScimAuthed, Base(b): Base, Path(id): Path<String>) -> ScimResult<Response> {
    scim::schemas(&b)
        .into_iter()
        .find(|r| r["id"] == json!(id))
        .map(|r| ok(&r))
        .ok_or_else(|| ScimError::new(StatusCode::NOT_FOUND, None, "no such schema"))
}

fn project_one(resource: scim::filter::Resource, doc: Value, p: &ListParams) -> Value {
    scim::project(
        resource,
        doc,
        p.attributes.as_deref(),
        p.excluded_attributes.as_deref(),
    )
}

async fn list_users(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Ctx(c): Ctx,
    Base(b): Base,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ScimResult<Response> {
    let p = list_params(q)?;
    Ok(ok(&s.kluis.scim_list_users(&a, &c, &b, &p).await?))
}

async fn search_users(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Ctx(c): Ctx,
    Base(b): Base,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    let p: ListParams = parse::<SearchRequest>(body)?.into();
    Ok(ok(&s.kluis.scim_list_users(&a, &c, &b, &p).await?))
}

async fn create_user(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Ctx(c): Ctx,
    Base(b): Base,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    Ok(created(&s.kluis.scim_create_user(&a, &c, &b, &body).await?))
}

async fn get_user(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Base(b): Base,
    Path(id): Path<String>,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ScimResult<Response> {
    let p = list_params(q)?;
    let doc = s.kluis.scim_get_user(&a, &b, &id).await?;
    Ok(ok(&project_one(scim::filter::Resource::User, doc, &p)))
}

async fn replace_user(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Ctx(c): Ctx,
    Base(b): Base,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    Ok(ok(&s
        .kluis
        .scim_replace_user(&a, &c, &b, &id, &body)
        .await?))
}

async fn patch_user(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Ctx(c): Ctx,
    Base(b): Base,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    let req: PatchRequest = parse(body)?;
    Ok(ok(&s.kluis.scim_patch_user(&a, &c, &b, &id, req).await?))
}

async fn delete_user(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Ctx(c): Ctx,
    Path(id): Path<String>,
) -> ScimResult<StatusCode> {
    s.kluis.scim_delete_user(&a, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_groups(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Base(b): Base,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ScimResult<Response> {
    let p = list_params(q)?;
    Ok(ok(&s.kluis.scim_list_groups(&a, &b, &p).await?))
}

async fn search_groups(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Base(b): Base,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    let p: ListParams = parse::<SearchRequest>(body)?.into();
    Ok(ok(&s.kluis.scim_list_groups(&a, &b, &p).await?))
}

async fn create_group(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Ctx(c): Ctx,
    Base(b): Base,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    Ok(created(
        &s.kluis.scim_create_group(&a, &c, &b, &body).await?,
    ))
}

async fn get_group(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Base(b): Base,
    Path(id): Path<String>,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ScimResult<Response> {
    let p = list_params(q)?;
    let doc = s.kluis.scim_get_group(&a, &b, &id).await?;
    Ok(ok(&project_one(scim::filter::Resource::Group, doc, &p)))
}

async fn replace_group(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Ctx(c): Ctx,
    Base(b): Base,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    Ok(ok(&s
        .kluis
        .scim_replace_group(&a, &c, &b, &id, &body)
        .await?))
}

async fn patch_group(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Ctx(c): Ctx,
    Base(b): Base,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    let req: PatchRequest = parse(body)?;
    Ok(ok(&s.kluis.scim_patch_group(&a, &c, &b, &id, req).await?))
}

async fn delete_group(
    State(s): State<AppState>,
    ScimAuthed(a): ScimAuthed,
    Ctx(c): Ctx,
    Path(id): Path<String>,
) -> ScimResult<StatusCode> {
    s.kluis.scim_delete_group(&a, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Searching several resource types at once (`POST /.search` at the root) is not offered.
async fn root_search(_a: ScimAuthed) -> ScimError {
    ScimError::new(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "search /Users/.search or /Groups/.search",
    )
}

async fn scim_not_found() -> ScimError {
    ScimError::new(StatusCode::NOT_FOUND, None, "no such endpoint")
}

/// Bare errors from axum itself (405, 413, 408) in SCIM's error format.
async fn scim_bare_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if res.headers().contains_key(header::CONTENT_TYPE)
        || !(status.is_client_error() || status.is_server_error())
    {
        return res;
    }
    let allow = res.headers().get(header::ALLOW).cloned();
    let mut out =
        ScimError::new(status, None, status.canonical_reason().unwrap_or("error")).into_response();
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

/// The `/scim/v2` routes (not part of the OpenAPI document: SCIM has its own discovery).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/.search", axum::routing::post(root_search))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .route("/Users", get(list_users).post(create_user))
        .route("/Users/.search", axum::routing::post(search_users))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route("/Groups/.search", axum::routing::post(search_groups))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .fallback(scim_not_found)
        .layer(middleware::from_fn(scim_bare_errors))
}
