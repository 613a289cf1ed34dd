use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use kluis_core::setup::{SetupInput, SetupResult};

use crate::AppState;
use crate::auth::Ctx;
use crate::error::{ApiJson, ApiResult, ErrorBody};

/// Complete first-start setup with the one-time token from the console.
#[utoipa::path(post, path = "/api/v1/setup", tag = "setup", request_body = SetupInput,
    responses((status = 201, body = SetupResult), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn complete(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<SetupInput>,
) -> ApiResult<(StatusCode, Json<SetupResult>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.kluis.complete_setup(input, &c).await?),
    ))
}

/// The setup page. The token travels in the URL fragment (`/setup#<token>`), which browsers
/// never send to the server, so it cannot end up in access logs or Referer headers.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("../../assets/setup.html"))
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../assets/setup.js"),
    )
}

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../assets/kluis.css"),
    )
}
