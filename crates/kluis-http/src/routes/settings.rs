use axum::Json;
use axum::extract::State;
use kluis_core::crm::retention::{RetentionPolicyDoc, RetentionReport, RetentionStatus};
use kluis_core::mfa::MfaPolicyDoc;
use kluis_core::settings::{LocaleDoc, PasswordPolicyDoc, SensitiveDataDoc, TrashRetentionDoc};

use crate::AppState;
use crate::auth::{Authed, Ctx};
use crate::error::{ApiJson, ApiResult, ErrorBody};

/// The password policy in force for this tenant.
#[utoipa::path(get, path = "/api/v1/settings/password-policy", tag = "settings",
    responses((status = 200, body = PasswordPolicyDoc), (status = 403, body = ErrorBody)))]
pub async fn get_policy(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<PasswordPolicyDoc>> {
    Ok(Json(s.kluis.password_policy(&a).await?))
}

/// Replace the password policy; it may be stricter than the platform baseline, never weaker.
#[utoipa::path(put, path = "/api/v1/settings/password-policy", tag = "settings", request_body = PasswordPolicyDoc,
    responses((status = 200, body = PasswordPolicyDoc), (status = 422, body = ErrorBody)))]
pub async fn put_policy(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(p): ApiJson<PasswordPolicyDoc>,
) -> ApiResult<Json<PasswordPolicyDoc>> {
    Ok(Json(s.kluis.set_password_policy(&a, &c, p).await?))
}

/// What CRM writes do with payment card numbers, IBANs and national id numbers.
#[utoipa::path(get, path = "/api/v1/settings/sensitive-data", tag = "settings",
    responses((status = 200, body = SensitiveDataDoc), (status = 403, body = ErrorBody)))]
pub async fn get_sensitive(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<SensitiveDataDoc>> {
    Ok(Json(s.kluis.sensitive_data_setting(&a).await?))
}

/// `block` (default) refuses such values with 422 `sensitive_data`; `flag` stores them and marks
/// the record.
#[utoipa::path(put, path = "/api/v1/settings/sensitive-data", tag = "settings", request_body = SensitiveDataDoc,
    responses((status = 200, body = SensitiveDataDoc), (status = 422, body = ErrorBody)))]
pub async fn put_sensitive(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(d): ApiJson<SensitiveDataDoc>,
) -> ApiResult<Json<SensitiveDataDoc>> {
    Ok(Json(s.kluis.set_sensitive_data_setting(&a, &c, d).await?))
}

/// How long deleted records stay restorable in the trash (`null`: the server's default).
#[utoipa::path(get, path = "/api/v1/settings/trash-retention", tag = "settings",
    responses((status = 200, body = TrashRetentionDoc), (status = 403, body = ErrorBody)))]
pub async fn get_trash_retention(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<TrashRetentionDoc>> {
    Ok(Json(s.kluis.trash_retention_setting(&a).await?))
}

/// Set the trash retention in days (1 to 365), or `null` for the server's default; the daily
/// retention job purges what is older.
#[utoipa::path(put, path = "/api/v1/settings/trash-retention", tag = "settings", request_body = TrashRetentionDoc,
    responses((status = 200, body = TrashRetentionDoc), (status = 422, body = ErrorBody)))]
pub async fn put_trash_retention(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(d): ApiJson<TrashRetentionDoc>,
) -> ApiResult<Json<TrashRetentionDoc>> {
    Ok(Json(s.kluis.set_trash_retention_setting(&a, &c, d).await?))
}

/// The organisation's default language for emails (`en` or `nl`).
#[utoipa::path(get, path = "/api/v1/settings/locale", tag = "settings",
    responses((status = 200, body = LocaleDoc), (status = 403, body = ErrorBody)))]
pub async fn get_locale(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<LocaleDoc>> {
    Ok(Json(s.kluis.locale_setting(&a).await?))
}

/// Set the organisation's default language for emails; a user's own choice wins.
#[utoipa::path(put, path = "/api/v1/settings/locale", tag = "settings", request_body = LocaleDoc,
    responses((status = 200, body = LocaleDoc), (status = 422, body = ErrorBody)))]
pub async fn put_locale(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(d): ApiJson<LocaleDoc>,
) -> ApiResult<Json<LocaleDoc>> {
    Ok(Json(s.kluis.set_locale_setting(&a, &c, d).await?))
}

/// Which roles must sign in with a second factor.
#[utoipa::path(get, path = "/api/v1/settings/mfa", tag = "settings",
    responses((status = 200, body = MfaPolicyDoc), (status = 403, body = ErrorBody)))]
pub async fn get_mfa(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<MfaPolicyDoc>> {
    Ok(Json(s.kluis.mfa_policy(&a).await?))
}

/// Require a second factor for these roles (`[]`: for nobody). Signed-in admins only, never an
/// API key; audited. Users of those roles without one enrol at their next sign-in, and their
/// sessions without a second factor stop working at once (401 `mfa_required`).
#[utoipa::path(put, path = "/api/v1/settings/mfa", tag = "settings", request_body = MfaPolicyDoc,
    responses((status = 200, body = MfaPolicyDoc), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_mfa(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(doc): ApiJson<MfaPolicyDoc>,
) -> ApiResult<Json<MfaPolicyDoc>> {
    Ok(Json(s.kluis.set_mfa_policy(&a, &c, doc).await?))
}

/// The organisation's IP allowlist: CIDR blocks from which its people may sign in and its
/// sessions and API keys are accepted (empty: any address).
#[utoipa::path(get, path = "/api/v1/settings/ip-allowlist", tag = "settings",
    responses((status = 200, body = kluis_core::network::IpAllowlistDoc), (status = 403, body = ErrorBody)))]
pub async fn get_ip_allowlist(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<kluis_core::network::IpAllowlistDoc>> {
    Ok(Json(s.kluis.ip_allowlist(&a).await?))
}

/// Replace the IP allowlist (at most 100 entries, IPv4 and IPv6). A list that leaves out the
/// address of the request that saves it is refused (`422 allowlist_excludes_you`).
#[utoipa::path(put, path = "/api/v1/settings/ip-allowlist", tag = "settings", request_body = kluis_core::network::IpAllowlistDoc,
    responses((status = 200, body = kluis_core::network::IpAllowlistDoc), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_ip_allowlist(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(d): ApiJson<kluis_core::network::IpAllowlistDoc>,
) -> ApiResult<Json<kluis_core::network::IpAllowlistDoc>> {
    Ok(Json(s.kluis.set_ip_allowlist(&a, &c, d).await?))
}

/// The retention policy (contacts inactive for N years deleted or anonymised; audit events
/// kept M years), its latest dry-run report and its last run.
#[utoipa::path(get, path = "/api/v1/settings/retention", tag = "settings",
    responses((status = 200, body = RetentionStatus), (status = 403, body = ErrorBody)))]
pub async fn get_retention(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<RetentionStatus>> {
    Ok(Json(s.kluis.retention_status(&a).await?))
}

/// Set the retention policy. A new policy acts only after a dry run: the daily job's next
/// pass reports what it would do and changes nothing (or ask for the report now).
#[utoipa::path(put, path = "/api/v1/settings/retention", tag = "settings", request_body = RetentionPolicyDoc,
    responses((status = 200, body = RetentionStatus), (status = 422, body = ErrorBody)))]
pub async fn put_retention(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
    ApiJson(d): ApiJson<RetentionPolicyDoc>,
) -> ApiResult<Json<RetentionStatus>> {
    Ok(Json(s.kluis.set_retention_policy(&a, &c, d).await?))
}

/// What the policy would delete, anonymise and expire now; recorded, and it lets the policy act.
#[utoipa::path(post, path = "/api/v1/settings/retention/dry-run", tag = "settings",
    responses((status = 200, body = RetentionReport), (status = 403, body = ErrorBody)))]
pub async fn retention_dry_run(
    State(s): State<AppState>,
    Authed(a): Authed,
    Ctx(c): Ctx,
) -> ApiResult<Json<RetentionReport>> {
    Ok(Json(s.kluis.retention_dry_run(&a, &c).await?))
}
