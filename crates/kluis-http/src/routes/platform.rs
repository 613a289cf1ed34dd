use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kluis_core::tenants::{NewTenantInput, Tenant};
use kluis_core::{Page, TenantId};

use super::PageQuery;
use crate::AppState;
use crate::auth::{Ctx, PlatformAuthed};
use crate::error::{ApiJson, ApiQuery, ApiResult, ErrorBody, IdPath};

/// List tenants (platform key required).
#[utoipa::path(get, path = "/api/v1/platform/tenants", tag = "platform", params(PageQuery),
    responses((status = 200, body = Page<Tenant>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Tenant>>> {
    Ok(Json(
        s.kluis
            .list_tenants(&p, q.cursor.as_deref(), q.limit)
            .await?,
    ))
}

/// Create a tenant.
#[utoipa::path(post, path = "/api/v1/platform/tenants", tag = "platform", request_body = NewTenantInput,
    responses((status = 201, body = Tenant), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<NewTenantInput>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.create_tenant(&p, &c, input).await?),
    ))
}

/// Suspend a tenant: all its sign-ins, sessions and keys stop working; data is kept.
#[utoipa::path(post, path = "/api/v1/platform/tenants/{id}/suspend", tag = "platform", params(("id" = uuid::Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody)))]
pub async fn suspend(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<TenantId>,
) -> ApiResult<Json<Tenant>> {
    Ok(Json(s.kluis.set_tenant_suspended(&p, &c, id, true).await?))
}

/// Lift a suspension.
#[utoipa::path(post, path = "/api/v1/platform/tenants/{id}/resume", tag = "platform", params(("id" = uuid::Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody)))]
pub async fn resume(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<TenantId>,
) -> ApiResult<Json<Tenant>> {
    Ok(Json(s.kluis.set_tenant_suspended(&p, &c, id, false).await?))
}

/// Backups of this installation: the latest shipped backup and its age, the latest restore
/// drill and its result, and alerts (backup older than 26 h, failed drill).
#[utoipa::path(get, path = "/api/v1/platform/backups", tag = "platform",
    responses((status = 200, body = kluis_core::backup_status::BackupStatus), (status = 401, body = ErrorBody)))]
pub async fn backups(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
) -> ApiResult<Json<kluis_core::backup_status::BackupStatus>> {
    Ok(Json(s.kluis.backup_status(&p)))
}

/// A tenant's rate-limit overrides (null: the installation's default).
#[utoipa::path(get, path = "/api/v1/platform/tenants/{id}/rate-limits", tag = "platform", params(("id" = uuid::Uuid, Path, description = "tenant id")),
    responses((status = 200, body = kluis_core::ratelimit::RateLimitsDoc), (status = 404, body = ErrorBody)))]
pub async fn get_rate_limits(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    IdPath(id): IdPath<TenantId>,
) -> ApiResult<Json<kluis_core::ratelimit::RateLimitsDoc>> {
    Ok(Json(s.kluis.rate_overrides(&p, id).await?))
}

/// Raise or lower one tenant's rate limits; each process applies them at its next lease of
/// the quota (within one window).
#[utoipa::path(put, path = "/api/v1/platform/tenants/{id}/rate-limits", tag = "platform", params(("id" = uuid::Uuid, Path, description = "tenant id")),
    request_body = kluis_core::ratelimit::RateLimitsDoc,
    responses((status = 200, body = kluis_core::ratelimit::RateLimitsDoc), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_rate_limits(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<TenantId>,
    ApiJson(doc): ApiJson<kluis_core::ratelimit::RateLimitsDoc>,
) -> ApiResult<Json<kluis_core::ratelimit::RateLimitsDoc>> {
    Ok(Json(s.kluis.set_rate_overrides(&p, &c, id, doc).await?))
}
