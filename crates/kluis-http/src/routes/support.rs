//! Support access: operators sign in and ask; a tenant's owners and admins approve, refuse,
//! grant, revoke and see everything done under a grant (see `kluis_core::support`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kluis_core::audit::AuditEvent;
use kluis_core::support::{
    OperatorSession, OperatorSignIn, SupportGrant, SupportGrantId, SupportGrantInput,
    SupportRequestInput,
};

use crate::AppState;
use crate::auth::{Authed, Ctx, OperatorAuthed};
use crate::error::{ApiJson, ApiResult, ErrorBody, IdPath};

/// Operator sign-in: email, password and a TOTP code, all three every time. Answers an
/// operator session token (8 hours) for the support-access routes.
#[utoipa::path(post, path = "/api/v1/operator/sessions", tag = "operator", request_body = OperatorSignIn,
    responses((status = 201, body = OperatorSession), (status = 401, body = ErrorBody)))]
pub async fn operator_sign_in(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<OperatorSignIn>,
) -> ApiResult<(StatusCode, Json<OperatorSession>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.operator_sign_in(&c, &input).await?),
    ))
}

/// Ends the operator session whose token authenticates this request.
#[utoipa::path(delete, path = "/api/v1/operator/sessions/current", tag = "operator",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn operator_sign_out(
    State(s): State<AppState>,
    OperatorAuthed(op): OperatorAuthed,
    Ctx(c): Ctx,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.trim())
        .unwrap_or_default();
    s.kluis.operator_sign_out(&op, &c, token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An operator asks for access to a tenant (reason, read or write, 1 to 24 hours). Nothing
/// opens until an owner or admin approves; the owners are emailed.
#[utoipa::path(post, path = "/api/v1/support-access/requests", tag = "operator", request_body = SupportRequestInput,
    responses((status = 201, body = SupportGrant), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn request(
    State(s): State<AppState>,
    OperatorAuthed(op): OperatorAuthed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<SupportRequestInput>,
) -> ApiResult<(StatusCode, Json<SupportGrant>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.request_support_access(&op, &c, &input).await?),
    ))
}

/// One of the operator's own requests or grants (was it approved, until when).
#[utoipa::path(get, path = "/api/v1/support-access/requests/{id}", tag = "operator",
    params(("id" = uuid::Uuid, Path, description = "grant id")),
    responses((status = 200, body = SupportGrant), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn operator_view(
    State(s): State<AppState>,
    OperatorAuthed(op): OperatorAuthed,
    IdPath(id): IdPath<SupportGrantId>,
) -> ApiResult<Json<SupportGrant>> {
    Ok(Json(s.kluis.operator_grant(&op, id).await?))
}

/// Approve a pending request: access starts now and lasts the hours asked for.
#[utoipa::path(post, path = "/api/v1/support-access/requests/{id}/approve", tag = "support-access",
    params(("id" = uuid::Uuid, Path, description = "grant id")),
    responses((status = 200, body = SupportGrant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<SupportGrantId>,
) -> ApiResult<Json<SupportGrant>> {
    Ok(Json(s.kluis.approve_support_request(&a, &c, id).await?))
}

/// Refuse a pending request.
#[utoipa::path(post, path = "/api/v1/support-access/requests/{id}/refuse", tag = "support-access",
    params(("id" = uuid::Uuid, Path, description = "grant id")),
    responses((status = 200, body = SupportGrant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn refuse(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<SupportGrantId>,
) -> ApiResult<Json<SupportGrant>> {
    Ok(Json(s.kluis.refuse_support_request(&a, &c, id).await?))
}

/// Every request and grant of the organisation, newest first (owners and admins).
#[utoipa::path(get, path = "/api/v1/support-access/grants", tag = "support-access",
    responses((status = 200, body = Vec<SupportGrant>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Vec<SupportGrant>>> {
    Ok(Json(s.kluis.list_support_grants(&a).await?))
}

/// Open the organisation to a named operator without being asked (1 to 24 hours).
#[utoipa::path(post, path = "/api/v1/support-access/grants", tag = "support-access", request_body = SupportGrantInput,
    responses((status = 201, body = SupportGrant), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn grant(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<SupportGrantInput>,
) -> ApiResult<(StatusCode, Json<SupportGrant>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.grant_support_access(&a, &c, &input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/support-access/grants/{id}", tag = "support-access",
    params(("id" = uuid::Uuid, Path, description = "grant id")),
    responses((status = 200, body = SupportGrant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath<SupportGrantId>,
) -> ApiResult<Json<SupportGrant>> {
    Ok(Json(s.kluis.get_support_grant(&a, id).await?))
}

/// End a grant at once (the operator's next request is refused, in every server process).
#[utoipa::path(post, path = "/api/v1/support-access/grants/{id}/revoke", tag = "support-access",
    params(("id" = uuid::Uuid, Path, description = "grant id")),
    responses((status = 200, body = SupportGrant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<SupportGrantId>,
) -> ApiResult<Json<SupportGrant>> {
    Ok(Json(s.kluis.revoke_support_grant(&a, &c, id).await?))
}

/// Access transparency: every request made, record changed, value unmasked and alert raised
/// under a grant, from the audit log.
#[utoipa::path(get, path = "/api/v1/support-access/grants/{id}/activity", tag = "support-access",
    params(("id" = uuid::Uuid, Path, description = "grant id")),
    responses((status = 200, body = Vec<AuditEvent>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn activity(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath<SupportGrantId>,
) -> ApiResult<Json<Vec<AuditEvent>>> {
    Ok(Json(s.kluis.support_grant_activity(&a, id).await?))
}
