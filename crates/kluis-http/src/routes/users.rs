use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kluis_core::sessions::SessionInfo;
use kluis_core::users::{NewUserInput, User, UserUpdate};
use kluis_core::{Page, SessionId, UserId};

use super::PageQuery;
use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiJson, ApiQuery, ApiResult, ErrorBody, IdPath};

/// List the tenant's users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery),
    responses((status = 200, body = Page<User>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<User>>> {
    Ok(Json(
        s.kluis
            .list_users(&a, &c, q.cursor.as_deref(), q.limit)
            .await?,
    ))
}

/// Create (or, without a password, invite) a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUserInput,
    responses((status = 201, body = User), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<NewUserInput>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.create_user(&a, &c, input).await?),
    ))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath<UserId>,
) -> ApiResult<Json<User>> {
    Ok(Json(s.kluis.get_user(&a, id).await?))
}

/// Change a user's name, role or status.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path, description = "user id")), request_body = UserUpdate,
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<UserId>,
    ApiJson(up): ApiJson<UserUpdate>,
) -> ApiResult<Json<User>> {
    Ok(Json(s.kluis.update_user(&a, &c, id, up).await?))
}

/// Delete a user (their sessions end at once).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<UserId>,
) -> ApiResult<StatusCode> {
    s.kluis.delete_user(&a, &c, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's live sessions (device, IP, last seen). Needs user management; audited.
#[utoipa::path(get, path = "/api/v1/users/{id}/sessions", tag = "users", params(("id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 200, body = Page<SessionInfo>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn sessions(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<UserId>,
) -> ApiResult<Json<Page<SessionInfo>>> {
    Ok(Json(Page::all(s.kluis.user_sessions(&a, &c, id).await?)))
}

/// End one session of a user. Needs user management (and the owner permission for an owner).
#[utoipa::path(delete, path = "/api/v1/users/{id}/sessions/{session_id}", tag = "users",
    params(("id" = uuid::Uuid, Path, description = "user id"), ("session_id" = uuid::Uuid, Path, description = "session id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_session(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath((id, session)): IdPath<(UserId, SessionId)>,
) -> ApiResult<StatusCode> {
    s.kluis.revoke_user_session(&a, &c, id, session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user's second factor (lost phone) and end their sessions. A signed-in admin only;
/// not for oneself; audited.
#[utoipa::path(post, path = "/api/v1/users/{id}/mfa/reset", tag = "users", params(("id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reset_mfa(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<UserId>,
) -> ApiResult<StatusCode> {
    s.kluis.reset_user_mfa(&a, &c, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift a sign-in lockout of a user (and forget their failed attempts). Audited.
#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", tag = "users", params(("id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unlock(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<UserId>,
) -> ApiResult<StatusCode> {
    s.kluis.unlock_user(&a, &c, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
