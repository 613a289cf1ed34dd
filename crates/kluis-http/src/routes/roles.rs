//! Roles (built-in and custom), custom-role assignment, and teams (issue 17, permissions).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kluis_core::crm::{UnmaskInput, Unmasked};
use kluis_core::roles::{
    CustomRoleAssignment, RoleInput, RolePatch, RoleView, Team, TeamInput, UserCustomRole,
};
use kluis_core::{RecordId, TeamId, UserId};

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiJson, ApiResult, ErrorBody, IdPath};

/// Every role: the built-in ones (read-only, id = their name) and the tenant's custom roles,
/// in one shape (rights and record scope per object type).
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles",
    responses((status = 200, body = Vec<RoleView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(s): State<AppState>, Authed(a): Authed) -> ApiResult<Json<Vec<RoleView>>> {
    Ok(Json(s.kluis.list_roles(&a).await?))
}

/// Create a custom role (owners and admins; audited).
#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = RoleInput,
    responses((status = 201, body = RoleView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<RoleInput>,
) -> ApiResult<(StatusCode, Json<RoleView>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.create_role(&a, &c, input).await?),
    ))
}

/// One role, built-in (`owner`, `admin`, ...) or custom (UUID).
#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = String, Path, description = "built-in role name or custom role id")),
    responses((status = 200, body = RoleView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath<String>,
) -> ApiResult<Json<RoleView>> {
    Ok(Json(s.kluis.get_role(&a, &id).await?))
}

/// Change a custom role (built-in roles: 403 `built_in_role`). Takes effect on the holders'
/// next request.
#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = String, Path, description = "custom role id")), request_body = RolePatch,
    responses((status = 200, body = RoleView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<String>,
    ApiJson(patch): ApiJson<RolePatch>,
) -> ApiResult<Json<RoleView>> {
    Ok(Json(s.kluis.update_role(&a, &c, &id, patch).await?))
}

/// Delete a custom role nobody holds (409 `role_in_use` otherwise).
#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = String, Path, description = "custom role id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<String>,
) -> ApiResult<StatusCode> {
    s.kluis.delete_role(&a, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which users hold a custom role (the others act with their built-in role).
#[utoipa::path(get, path = "/api/v1/roles/assignments", tag = "roles",
    responses((status = 200, body = Vec<UserCustomRole>), (status = 403, body = ErrorBody)))]
pub async fn assignments(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Vec<UserCustomRole>>> {
    Ok(Json(s.kluis.list_custom_role_assignments(&a).await?))
}

/// Give a user a custom role (its CRM rules replace their built-in role's), or `null` to
/// take it away. Owners and admins; audited.
#[utoipa::path(put, path = "/api/v1/users/{id}/custom-role", tag = "roles", params(("id" = uuid::Uuid, Path, description = "user id")), request_body = CustomRoleAssignment,
    responses((status = 200, body = UserCustomRole), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn assign(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<UserId>,
    ApiJson(input): ApiJson<CustomRoleAssignment>,
) -> ApiResult<Json<UserCustomRole>> {
    Ok(Json(s.kluis.assign_custom_role(&a, &c, id, input).await?))
}

/// The tenant's teams and their members.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams",
    responses((status = 200, body = Vec<Team>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_teams(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Vec<Team>>> {
    Ok(Json(s.kluis.list_teams(&a).await?))
}

/// Create a team (owners and admins; audited).
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = TeamInput,
    responses((status = 201, body = Team), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_team(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<TeamInput>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.create_team(&a, &c, input).await?),
    ))
}

/// One team.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = uuid::Uuid, Path, description = "team id")),
    responses((status = 200, body = Team), (status = 404, body = ErrorBody)))]
pub async fn get_team(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath<TeamId>,
) -> ApiResult<Json<Team>> {
    Ok(Json(s.kluis.get_team(&a, id).await?))
}

/// Rename a team.
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = uuid::Uuid, Path, description = "team id")), request_body = TeamInput,
    responses((status = 200, body = Team), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_team(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<TeamId>,
    ApiJson(input): ApiJson<TeamInput>,
) -> ApiResult<Json<Team>> {
    Ok(Json(s.kluis.rename_team(&a, &c, id, input).await?))
}

/// Delete a team (its members' record scope "team" shrinks at once).
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = uuid::Uuid, Path, description = "team id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_team(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<TeamId>,
) -> ApiResult<StatusCode> {
    s.kluis.delete_team(&a, &c, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a user to a team.
#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams",
    params(("id" = uuid::Uuid, Path, description = "team id"), ("user_id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 200, body = Team), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_member(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath((id, user)): IdPath<(TeamId, UserId)>,
) -> ApiResult<Json<Team>> {
    Ok(Json(s.kluis.set_team_member(&a, &c, id, user, true).await?))
}

/// Remove a user from a team.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams",
    params(("id" = uuid::Uuid, Path, description = "team id"), ("user_id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 200, body = Team), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath((id, user)): IdPath<(TeamId, UserId)>,
) -> ApiResult<Json<Team>> {
    Ok(Json(
        s.kluis.set_team_member(&a, &c, id, user, false).await?,
    ))
}

/// Reveal one field that the caller's role shows masked (`j***@acme.nl`), if the role allows
/// unmasking on that object type. Audited (the field, never the value).
#[utoipa::path(post, path = "/api/v1/records/{id}/unmask", tag = "roles", params(("id" = uuid::Uuid, Path, description = "record id (any object type)")), request_body = UnmaskInput,
    responses((status = 200, body = Unmasked), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn unmask(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<RecordId>,
    ApiJson(input): ApiJson<UnmaskInput>,
) -> ApiResult<Json<Unmasked>> {
    Ok(Json(s.kluis.unmask_field(&a, &c, id, input).await?))
}
