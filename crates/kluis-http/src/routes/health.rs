use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiResult;

/// Liveness: the process answers. No database access, no authentication.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "alive")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "ready"), (status = 503, body = crate::error::ErrorBody)))]
pub async fn readyz(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    s.kluis.ready().await?;
    Ok(Json(json!({"status": "ready"})))
}
