use axum::Json;
use axum::extract::State;
use kluis_core::Page;
use kluis_core::audit::{AuditEvent, AuditQuery, CheckpointList};

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiQuery, ApiResult, ErrorBody};

/// Query the tenant's audit trail: time range, actor, IP, action, object; cursor pagination.
/// Reading it is itself recorded.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEvent>), (status = 403, body = ErrorBody)))]
pub async fn events(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditEvent>>> {
    Ok(Json(s.kluis.audit_events(&a, &c, &q).await?))
}

/// Signed checkpoints (C2SP signed notes) of the tenant's log and the key that verifies them,
/// for verification without trusting the server.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit",
    responses((status = 200, body = CheckpointList), (status = 403, body = ErrorBody)))]
pub async fn checkpoints(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<CheckpointList>> {
    Ok(Json(s.kluis.audit_checkpoints(&a).await?))
}
