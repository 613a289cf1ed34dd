//! Password reset by email and invitation acceptance, plus their two small pages.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use kluis_core::UserId;
use kluis_core::account_links::{
    InvitationAcceptance, PasswordResetCompletion, PasswordResetRequest,
};
use serde::Serialize;

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiJson, ApiResult, ErrorBody, IdPath};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub message: &'static str,
}

const RESET_ACCEPTED: &str =
    "if this organisation has an active account with this email, a reset link is on its way";

/// Ask for a password reset link by email. The answer is the same whether or not the
/// account exists; the work happens after the answer.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody)))]
pub async fn request_reset(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<PasswordResetRequest>,
) -> (StatusCode, Json<Accepted>) {
    s.kluis.request_password_reset(input, c);
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: RESET_ACCEPTED,
        }),
    )
}

/// Set a new password with the token from a reset link. Every session of the user ends.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/complete", tag = "auth", request_body = PasswordResetCompletion,
    responses((status = 204), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn complete_reset(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<PasswordResetCompletion>,
) -> ApiResult<StatusCode> {
    s.kluis.complete_password_reset(input, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept an invitation: choose the first password with the token from the invitation link.
#[utoipa::path(post, path = "/api/v1/auth/invitation/accept", tag = "auth", request_body = InvitationAcceptance,
    responses((status = 204), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn accept_invitation(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    ApiJson(input): ApiJson<InvitationAcceptance>,
) -> ApiResult<StatusCode> {
    s.kluis.accept_invitation(input, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send an invited user a new invitation email; earlier invitation links stop working.
#[utoipa::path(post, path = "/api/v1/users/{id}/invitation", tag = "users", params(("id" = uuid::Uuid, Path, description = "user id")),
    responses((status = 202, body = Accepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn resend_invitation(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    IdPath(id): IdPath<UserId>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    s.kluis.resend_invitation(&a, &c, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: "a new invitation email is on its way",
        }),
    ))
}

// ---- pages (rendered by `crate::pages::links`) -----------------------------------------

/// The password reset page. The token travels in the URL fragment (`/reset#<token>`), which
/// browsers never send to the server.
pub async fn reset_page(headers: HeaderMap) -> axum::response::Response {
    crate::pages::account_link_page(crate::pages::LinkKind::Reset, &headers)
}

/// The invitation page (`/invite#<token>`).
pub async fn invite_page(headers: HeaderMap) -> axum::response::Response {
    crate::pages::account_link_page(crate::pages::LinkKind::Invite, &headers)
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../assets/account-link.js"),
    )
}
