//! The incident and breach register (platform operators only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kluis_core::incidents::{AuthorityNotice, Incident, NewIncident};

use crate::AppState;
use crate::auth::{Ctx, PlatformAuthed};
use crate::error::{ApiJson, ApiResult, ErrorBody, IdPath};

/// Record an incident: severity, affected organisations, data categories. The deadlines (customer
/// notice within 2 business days, the authority within 72 hours) are computed.
#[utoipa::path(post, path = "/api/v1/platform/incidents", tag = "platform", request_body = NewIncident,
    responses((status = 201, body = Incident), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    Ctx(c): Ctx,
    ApiJson(n): ApiJson<NewIncident>,
) -> ApiResult<(StatusCode, Json<Incident>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.record_incident(&p, &c, n).await?),
    ))
}

/// The register, most recently detected first, with what is overdue.
#[utoipa::path(get, path = "/api/v1/platform/incidents", tag = "platform",
    responses((status = 200, body = Vec<Incident>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
) -> ApiResult<Json<Vec<Incident>>> {
    Ok(Json(s.kluis.list_incidents(&p).await?))
}

#[utoipa::path(get, path = "/api/v1/platform/incidents/{id}", tag = "platform",
    params(("id" = uuid::Uuid, Path, description = "incident id")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    IdPath(id): IdPath<uuid::Uuid>,
) -> ApiResult<Json<Incident>> {
    Ok(Json(s.kluis.incident(&p, id).await?))
}

/// Email the owners of every affected organisation (English or Dutch, each in their language).
#[utoipa::path(post, path = "/api/v1/platform/incidents/{id}/notify-customers", tag = "platform",
    params(("id" = uuid::Uuid, Path, description = "incident id")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn notify_customers(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<uuid::Uuid>,
) -> ApiResult<Json<Incident>> {
    Ok(Json(s.kluis.notify_incident_customers(&p, &c, id).await?))
}

/// Record the notification to the data-protection authority and its reference.
#[utoipa::path(post, path = "/api/v1/platform/incidents/{id}/authority-notified", tag = "platform", request_body = AuthorityNotice,
    params(("id" = uuid::Uuid, Path, description = "incident id")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn authority_notified(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<uuid::Uuid>,
    ApiJson(n): ApiJson<AuthorityNotice>,
) -> ApiResult<Json<Incident>> {
    Ok(Json(
        s.kluis.incident_authority_notified(&p, &c, id, n).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/platform/incidents/{id}/close", tag = "platform",
    params(("id" = uuid::Uuid, Path, description = "incident id")),
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn close(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<uuid::Uuid>,
) -> ApiResult<Json<Incident>> {
    Ok(Json(s.kluis.close_incident(&p, &c, id).await?))
}

/// What the data-protection authority asks for (GDPR art. 33(3)) and the timeline (audited).
#[utoipa::path(get, path = "/api/v1/platform/incidents/{id}/export", tag = "platform",
    params(("id" = uuid::Uuid, Path, description = "incident id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn export(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<uuid::Uuid>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(s.kluis.export_incident(&p, &c, id).await?))
}
