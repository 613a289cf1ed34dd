use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kluis_core::users::{NewUserInput, User, UserUpdate};
use kluis_core::{Page, UserId};

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
