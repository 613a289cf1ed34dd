//! Data-subject requests (GDPR art. 15-20): create, list, read, export, erase.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kluis_core::crm::privacy::{NewPrivacyRequest, PrivacyRequest};

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiJson, ApiResult, ErrorBody, IdPath};

/// Record a request about one person (by email, phone or both); its deadline is one month.
#[utoipa::path(post, path = "/api/v1/privacy/requests", tag = "privacy", request_body = NewPrivacyRequest,
    responses((status = 201, body = PrivacyRequest), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(r): ApiJson<NewPrivacyRequest>,
) -> ApiResult<(StatusCode, Json<PrivacyRequest>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.create_privacy_request(&a, &c, &r).await?),
    ))
}

/// The organisation's requests, newest first, with their deadlines.
#[utoipa::path(get, path = "/api/v1/privacy/requests", tag = "privacy",
    responses((status = 200, body = Vec<PrivacyRequest>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Vec<PrivacyRequest>>> {
    Ok(Json(s.kluis.list_privacy_requests(&a).await?))
}

#[utoipa::path(get, path = "/api/v1/privacy/requests/{id}", tag = "privacy",
    params(("id" = uuid::Uuid, Path, description = "request id")),
    responses((status = 200, body = PrivacyRequest), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath<uuid::Uuid>,
) -> ApiResult<Json<PrivacyRequest>> {
    Ok(Json(s.kluis.privacy_request(&a, id).await?))
}

/// Everything about the subject as one tar archive: `subject.json` (records with every
/// version, trash included, and the audit events about them) and the same as CSV.
#[utoipa::path(post, path = "/api/v1/privacy/requests/{id}/export", tag = "privacy",
    params(("id" = uuid::Uuid, Path, description = "request id")),
    responses((status = 200, content_type = "application/x-tar", body = Vec<u8>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn export(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<uuid::Uuid>,
) -> ApiResult<Response> {
    let archive = s.kluis.export_privacy_request(&a, &c, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", archive.file_name),
            ),
        ],
        archive.bytes,
    )
        .into_response())
}

/// Erase everything about the subject: records, versions, trash, files, and the audit events'
/// details (the log stays verifiable). Only for `erasure` requests.
#[utoipa::path(post, path = "/api/v1/privacy/requests/{id}/erase", tag = "privacy",
    params(("id" = uuid::Uuid, Path, description = "request id")),
    responses((status = 200, body = PrivacyRequest), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn erase(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<uuid::Uuid>,
) -> ApiResult<Json<PrivacyRequest>> {
    Ok(Json(s.kluis.erase_privacy_request(&a, &c, id).await?))
}
