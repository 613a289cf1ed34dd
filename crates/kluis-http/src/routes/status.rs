//! The public status (JSON) and the operators' API to post incidents and maintenance.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use kluis_core::status::{NewNotice, Notice, StatusDoc};

use crate::AppState;
use crate::auth::{Ctx, PlatformAuthed};
use crate::error::{ApiJson, ApiResult, ErrorBody, IdPath};

/// Components, their state, and current, coming and recent incidents and maintenance. No
/// authentication; nothing about any organisation.
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, body = StatusDoc)))]
pub async fn public(State(s): State<AppState>) -> ApiResult<Json<StatusDoc>> {
    Ok(Json(s.kluis.public_status().await?))
}

/// Post an incident (default: starts now) or planned maintenance (start and end required),
/// with titles and texts in English and Dutch.
#[utoipa::path(post, path = "/api/v1/platform/status/notices", tag = "platform", request_body = NewNotice,
    responses((status = 201, body = Notice), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    Ctx(c): Ctx,
    ApiJson(n): ApiJson<NewNotice>,
) -> ApiResult<(StatusCode, Json<Notice>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.post_notice(&p, &c, n).await?),
    ))
}

/// Close an incident, or end maintenance early.
#[utoipa::path(post, path = "/api/v1/platform/status/notices/{id}/resolve", tag = "platform",
    params(("id" = uuid::Uuid, Path, description = "notice id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn resolve(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    s.kluis.resolve_notice(&p, &c, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `Kluis-Notice` on every API answer while maintenance is announced (from 24 hours before it
/// starts until it ends): `maintenance; starts="..."; ends="..."; status="/status"`.
pub(crate) async fn notice_header(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    if api
        && let Ok(Some(n)) = s.kluis.sign_in_announcement().await
        && let Ok(v) = HeaderValue::from_str(&format!(
            "maintenance; starts=\"{}\"; ends=\"{}\"; status=\"/status\"",
            n.starts_at,
            n.ends_at.as_deref().unwrap_or("")
        ))
    {
        res.headers_mut().insert("kluis-notice", v);
    }
    res
}
