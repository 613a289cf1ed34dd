use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kluis_core::apikeys::{ApiKey, ApiKeyWithSecret, NewApiKeyInput};
use kluis_core::{ApiKeyId, Page};

use super::PageQuery;
use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiJson, ApiQuery, ApiResult, ErrorBody, IdPath};

/// List API keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/apikeys", tag = "apikeys", params(PageQuery),
    responses((status = 200, body = Page<ApiKey>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<ApiKey>>> {
    Ok(Json(
        s.kluis
            .list_api_keys(&a, &c, q.cursor.as_deref(), q.limit)
            .await?,
    ))
}

/// Create an API key; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/apikeys", tag = "apikeys", request_body = NewApiKeyInput,
    responses((status = 201, body = ApiKeyWithSecret), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<NewApiKeyInput>,
) -> ApiResult<(StatusCode, Json<ApiKeyWithSecret>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.create_api_key(&a, &c, input).await?),
    ))
}

/// One API key (without its secret).
#[utoipa::path(get, path = "/api/v1/apikeys/{id}", tag = "apikeys", params(("id" = uuid::Uuid, Path, description = "key id")),
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<ApiKeyId>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(s.kluis.get_api_key(&a, &c, id).await?))
}

/// Rotate: a new secret (in this response only); the old one stops working after the configured overlap.
#[utoipa::path(post, path = "/api/v1/apikeys/{id}/rotate", tag = "apikeys", params(("id" = uuid::Uuid, Path, description = "key id")),
    responses((status = 200, body = ApiKeyWithSecret), (status = 404, body = ErrorBody)))]
pub async fn rotate(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<ApiKeyId>,
) -> ApiResult<Json<ApiKeyWithSecret>> {
    Ok(Json(s.kluis.rotate_api_key(&a, &c, id).await?))
}

/// Revoke an API key at once.
#[utoipa::path(delete, path = "/api/v1/apikeys/{id}", tag = "apikeys", params(("id" = uuid::Uuid, Path, description = "key id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<ApiKeyId>,
) -> ApiResult<StatusCode> {
    s.kluis.revoke_api_key(&a, &c, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
