use axum::Json;
use axum::extract::State;
use kluis_core::customer_key::{CustomerKeyInput, CustomerKeyStatus};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiJson, ApiResult, ErrorBody};

/// A customer-managed key in the organisation's own PKCS#11 token.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerKeyBody {
    /// One of the server's `allowed_modules`.
    pub module: String,
    pub token_label: String,
    pub key_label: String,
    /// The token PIN granted to this server; stored sealed, never shown again.
    pub pin: String,
}

/// Which key protects this organisation's data, and whether it is usable now (owners only).
#[utoipa::path(get, path = "/api/v1/keys/customer-key", tag = "keys",
    responses((status = 200, body = CustomerKeyStatus), (status = 403, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn status(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<CustomerKeyStatus>> {
    Ok(Json(s.kluis.customer_key_status(&a).await?))
}

/// Protect this organisation's data with its own key (BYOK). Revoking that key later locks the
/// data (423 `customer_key_unavailable`) until it is restored.
#[utoipa::path(put, path = "/api/v1/keys/customer-key", tag = "keys", request_body = CustomerKeyBody,
    responses((status = 200, body = CustomerKeyStatus), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(b): ApiJson<CustomerKeyBody>,
) -> ApiResult<Json<CustomerKeyStatus>> {
    let input = CustomerKeyInput {
        module: b.module,
        token_label: b.token_label,
        key_label: b.key_label,
        pin: b.pin.into(),
    };
    Ok(Json(s.kluis.set_customer_key(&a, &c, input).await?))
}

/// Go back to the platform-managed key (needs the customer key to be usable once more).
#[utoipa::path(delete, path = "/api/v1/keys/customer-key", tag = "keys",
    responses((status = 200, body = CustomerKeyStatus), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn remove(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
) -> ApiResult<Json<CustomerKeyStatus>> {
    Ok(Json(s.kluis.remove_customer_key(&a, &c).await?))
}
