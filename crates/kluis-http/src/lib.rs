//! Kluis HTTP edge. Handlers are thin: extract (authenticate, parse), call one service in
//! `kluis-core`, render JSON. Middleware adds security headers, request ids, limits and
//! tracing to every response, errors included.

pub mod auth;
pub mod early;
pub mod error;
pub mod export;
mod headers;
pub mod metrics;
pub mod pages;
mod ratelimit;
pub mod routes;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kluis_core::Kluis;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;

pub use headers::CSP;

#[derive(Clone)]
pub struct HttpConfig {
    /// Largest accepted request body.
    pub body_limit: usize,
    /// Whole-request deadline (handler included).
    pub request_timeout: Duration,
    /// Largest accepted CSV import.
    pub import_max_bytes: u64,
    /// Deadline of an import request (upload and import).
    pub import_timeout: Duration,
    /// The process's Prometheus recorder ([`metrics::install`]); None: `/metrics` answers 404.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// What `/.well-known/security.txt` publishes.
    pub security_txt: SecurityTxt,
}

/// The fields of `/.well-known/security.txt` (RFC 9116) that come from the configuration.
#[derive(Clone, Debug, Default)]
pub struct SecurityTxt {
    /// `Contact:` URIs, in order of preference; empty: the file is not served (404).
    pub contact: Vec<String>,
    /// `Policy:` URL.
    pub policy: Option<String>,
    /// `Canonical:` URL (from the public URL).
    pub canonical: Option<String>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .field("import_max_bytes", &self.import_max_bytes)
            .field("import_timeout", &self.import_timeout)
            .field("metrics", &self.metrics.is_some())
            .field("security_txt", &self.security_txt)
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            import_max_bytes: 512 * 1024 * 1024,
            import_timeout: Duration::from_secs(3600),
            metrics: None,
            security_txt: SecurityTxt::default(),
        }
    }
}

#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

/// What handlers share. Behind one `Arc`: axum clones the state for every extractor and
/// layer that asks for it, so a clone must be one reference count, not one per field.
pub struct AppStateInner {
    pub kluis: Kluis,
    openapi_json: String,
    import_max_bytes: u64,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    security_txt: SecurityTxt,
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kluis API",
        description = "Security-first multi-tenant CRM. Authenticate with `Authorization: Bearer kluis_...` (API key) or the session cookie plus `X-CSRF-Token`."
    ),
    components(schemas(error::ErrorBody))
)]
struct ApiDoc;

/// All documented routes. The OpenAPI document is generated from this table, and the
/// cross-tenant test walks that document, so a route added here is tested automatically.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(metrics::scrape))
        .routes(routes!(routes::status::public))
        .routes(routes!(routes::status::post))
        .routes(routes!(routes::status::resolve))
        .routes(routes!(routes::support::operator_sign_in))
        .routes(routes!(routes::support::operator_sign_out))
        .routes(routes!(routes::support::request))
        .routes(routes!(routes::support::operator_view))
        .routes(routes!(routes::support::approve))
        .routes(routes!(routes::support::refuse))
        .routes(routes!(routes::support::list, routes::support::grant))
        .routes(routes!(routes::support::get))
        .routes(routes!(routes::support::revoke))
        .routes(routes!(routes::support::activity))
        .routes(routes!(routes::setup::complete))
        .routes(routes!(routes::auth::login))
        .routes(routes!(routes::auth::logout))
        .routes(routes!(routes::auth::logout_all))
        .routes(routes!(routes::auth::me))
        .routes(routes!(routes::auth::sessions))
        .routes(routes!(routes::auth::change_password))
        .routes(routes!(routes::auth::mfa_challenge))
        .routes(routes!(routes::auth::mfa_status))
        .routes(routes!(routes::auth::totp_start))
        .routes(routes!(routes::auth::totp_confirm))
        .routes(routes!(routes::auth::mfa_disable))
        .routes(routes!(routes::auth::recovery_codes))
        .routes(routes!(routes::auth::revoke_session))
        .routes(routes!(routes::account_links::request_reset))
        .routes(routes!(routes::account_links::complete_reset))
        .routes(routes!(routes::account_links::accept_invitation))
        .routes(routes!(routes::account_links::resend_invitation))
        .routes(routes!(routes::users::list, routes::users::create))
        .routes(routes!(
            routes::users::get,
            routes::users::update,
            routes::users::delete
        ))
        .routes(routes!(routes::users::sessions))
        .routes(routes!(routes::users::revoke_session))
        .routes(routes!(routes::users::reset_mfa))
        .routes(routes!(routes::users::unlock))
        .routes(routes!(routes::apikeys::list, routes::apikeys::create))
        .routes(routes!(routes::apikeys::get, routes::apikeys::revoke))
        .routes(routes!(routes::apikeys::rotate))
        .routes(routes!(
            routes::settings::get_policy,
            routes::settings::put_policy
        ))
        .routes(routes!(
            routes::keys::status,
            routes::keys::set,
            routes::keys::remove
        ))
        .routes(routes!(
            routes::records::contacts::list,
            routes::records::contacts::create
        ))
        .routes(routes!(
            routes::records::contacts::get,
            routes::records::contacts::update,
            routes::records::contacts::delete
        ))
        .routes(routes!(routes::records::contacts::versions))
        .routes(routes!(routes::records::contacts::export))
        .routes(routes!(routes::records::contacts::restore_version))
        .routes(routes!(
            routes::records::companies::list,
            routes::records::companies::create
        ))
        .routes(routes!(
            routes::records::companies::get,
            routes::records::companies::update,
            routes::records::companies::delete
        ))
        .routes(routes!(routes::records::companies::versions))
        .routes(routes!(routes::records::companies::export))
        .routes(routes!(routes::records::companies::restore_version))
        .routes(routes!(
            routes::records::deals::list,
            routes::records::deals::create
        ))
        .routes(routes!(
            routes::records::deals::get,
            routes::records::deals::update,
            routes::records::deals::delete
        ))
        .routes(routes!(routes::records::deals::versions))
        .routes(routes!(routes::records::deals::export))
        .routes(routes!(routes::records::deals::restore_version))
        .routes(routes!(
            routes::records::tickets::list,
            routes::records::tickets::create
        ))
        .routes(routes!(
            routes::records::tickets::get,
            routes::records::tickets::update,
            routes::records::tickets::delete
        ))
        .routes(routes!(routes::records::tickets::versions))
        .routes(routes!(routes::records::tickets::export))
        .routes(routes!(routes::records::tickets::restore_version))
        .routes(routes!(
            routes::records::notes::list,
            routes::records::notes::create
        ))
        .routes(routes!(
            routes::records::notes::get,
            routes::records::notes::update,
            routes::records::notes::delete
        ))
        .routes(routes!(routes::records::notes::versions))
        .routes(routes!(routes::records::notes::export))
        .routes(routes!(routes::records::notes::restore_version))
        .routes(routes!(
            routes::records::tasks::list,
            routes::records::tasks::create
        ))
        .routes(routes!(
            routes::records::tasks::get,
            routes::records::tasks::update,
            routes::records::tasks::delete
        ))
        .routes(routes!(routes::records::tasks::versions))
        .routes(routes!(routes::records::tasks::export))
        .routes(routes!(routes::records::tasks::restore_version))
        .routes(routes!(
            routes::records::pipelines::list,
            routes::records::pipelines::create
        ))
        .routes(routes!(
            routes::records::pipelines::update,
            routes::records::pipelines::delete
        ))
        .routes(routes!(
            routes::records::custom::list,
            routes::records::custom::create
        ))
        .routes(routes!(
            routes::records::custom::update,
            routes::records::custom::delete
        ))
        .routes(routes!(routes::records::custom::restore))
        .routes(routes!(
            routes::records::custom::values,
            routes::records::custom::create_value
        ))
        .routes(routes!(
            routes::records::custom::update_value,
            routes::records::custom::delete_value
        ))
        .routes(routes!(routes::records::custom::restore_value))
        .routes(routes!(
            routes::records::tags::list,
            routes::records::tags::create
        ))
        .routes(routes!(
            routes::records::tags::update,
            routes::records::tags::delete
        ))
        .routes(routes!(routes::records::tags::restore))
        .routes(routes!(routes::records::trash::list))
        .routes(routes!(routes::records::trash::restore))
        .routes(routes!(routes::records::trash::purge))
        .routes(routes!(
            routes::settings::get_sensitive,
            routes::settings::put_sensitive
        ))
        .routes(routes!(
            routes::settings::get_trash_retention,
            routes::settings::put_trash_retention
        ))
        .routes(routes!(
            routes::settings::get_ip_allowlist,
            routes::settings::put_ip_allowlist
        ))
        .routes(routes!(
            routes::settings::get_retention,
            routes::settings::put_retention
        ))
        .routes(routes!(routes::settings::retention_dry_run))
        .routes(routes!(routes::incidents::list, routes::incidents::create))
        .routes(routes!(routes::incidents::get))
        .routes(routes!(routes::incidents::notify_customers))
        .routes(routes!(routes::incidents::authority_notified))
        .routes(routes!(routes::incidents::close))
        .routes(routes!(routes::incidents::export))
        .routes(routes!(routes::privacy::list, routes::privacy::create))
        .routes(routes!(routes::privacy::get))
        .routes(routes!(routes::privacy::export))
        .routes(routes!(routes::privacy::erase))
        .routes(routes!(routes::imports::list, routes::imports::create))
        .routes(routes!(routes::imports::get))
        .routes(routes!(
            routes::settings::get_mfa,
            routes::settings::put_mfa
        ))
        .routes(routes!(routes::sso::start))
        .routes(routes!(routes::sso::callback))
        .routes(routes!(
            routes::sso::get_settings,
            routes::sso::put_settings,
            routes::sso::delete_settings
        ))
        .routes(routes!(
            routes::sso::set_break_glass,
            routes::sso::clear_break_glass
        ))
        .routes(routes!(
            routes::settings::get_locale,
            routes::settings::put_locale
        ))
        .routes(routes!(routes::roles::list, routes::roles::create))
        .routes(routes!(routes::roles::assignments))
        .routes(routes!(
            routes::roles::get,
            routes::roles::update,
            routes::roles::delete
        ))
        .routes(routes!(routes::roles::assign))
        .routes(routes!(
            routes::roles::list_teams,
            routes::roles::create_team
        ))
        .routes(routes!(
            routes::roles::get_team,
            routes::roles::update_team,
            routes::roles::delete_team
        ))
        .routes(routes!(
            routes::roles::add_member,
            routes::roles::remove_member
        ))
        .routes(routes!(routes::roles::unmask))
        .routes(routes!(routes::audit::events))
        .routes(routes!(routes::audit::checkpoints))
        .routes(routes!(routes::audit::checkpoint))
        .routes(routes!(routes::audit::export))
        .routes(routes!(routes::platform::list, routes::platform::create))
        .routes(routes!(routes::platform::suspend))
        .routes(routes!(routes::platform::resume))
        .routes(routes!(routes::platform::backups))
        .routes(routes!(
            routes::platform::get_rate_limits,
            routes::platform::put_rate_limits
        ))
        .routes(routes!(routes::passkeys::register_start))
        .routes(routes!(routes::passkeys::register_finish))
        .routes(routes!(routes::passkeys::list))
        .routes(routes!(routes::passkeys::delete))
        .routes(routes!(routes::passkeys::mfa_start))
        .routes(routes!(routes::passkeys::mfa_finish))
        .routes(routes!(routes::passkeys::login_start))
        .routes(routes!(routes::passkeys::login_finish))
        .routes(routes!(routes::passkeys::user_list))
        .routes(routes!(routes::passkeys::user_delete))
        .routes(routes!(
            routes::scim::create_token,
            routes::scim::revoke_token
        ))
        .routes(routes!(
            routes::scim::get_settings,
            routes::scim::put_settings
        ))
        .routes(routes!(
            routes::files::contacts::list,
            routes::files::contacts::upload
        ))
        .routes(routes!(
            routes::files::companies::list,
            routes::files::companies::upload
        ))
        .routes(routes!(
            routes::files::deals::list,
            routes::files::deals::upload
        ))
        .routes(routes!(
            routes::files::tickets::list,
            routes::files::tickets::upload
        ))
        .routes(routes!(
            routes::files::notes::list,
            routes::files::notes::upload
        ))
        .routes(routes!(
            routes::files::get,
            routes::files::rename,
            routes::files::delete
        ))
        .routes(routes!(routes::files::download, routes::files::replace))
        .routes(routes!(routes::files::versions))
        .routes(routes!(routes::files::restore))
        .routes(routes!(routes::files::purge))
        .routes(routes!(routes::saml::start))
        .routes(routes!(routes::saml::acs))
        .routes(routes!(routes::saml::metadata))
        .routes(routes!(
            routes::saml::get_settings,
            routes::saml::put_settings
        ))
}

/// The OpenAPI 3 document, generated from the route table.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// Builds the whole application.
pub fn app(kluis: Kluis, config: &HttpConfig) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let openapi_json = doc.to_pretty_json().unwrap_or_else(|_| "{}".to_owned());
    let state = AppState(Arc::new(AppStateInner {
        kluis,
        openapi_json,
        import_max_bytes: config.import_max_bytes,
        metrics: config.metrics.clone(),
        security_txt: config.security_txt.clone(),
    }));
    let x_request_id = HeaderName::from_static("x-request-id");

    let router = api
        .route("/api/v1/openapi.json", get(openapi_doc))
        .route("/.well-known/security.txt", get(security_txt))
        .route("/setup", get(routes::setup::page))
        .route("/assets/setup.js", get(routes::setup::script))
        .route("/reset", get(routes::account_links::reset_page))
        .route("/invite", get(routes::account_links::invite_page))
        .route("/assets/account-link.js", get(routes::account_links::script))
        .route("/assets/kluis.css", get(routes::setup::stylesheet))
        .merge(pages::routes())
        .nest("/scim/v2", routes::scim::router())
        .fallback(pages::errors::fallback)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            routes::status::notice_header,
        ))
        .with_state(state)
        .layer(middleware::map_response(json_for_bare_errors))
        .layer(middleware::from_fn(ratelimit::headers))
        .layer(middleware::from_fn(metrics::track))
        .layer(middleware::from_fn(auth::remember_peer))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([
                    axum::http::header::AUTHORIZATION,
                    axum::http::header::COOKIE,
                    HeaderName::from_static("x-csrf-token"),
                ]))
                .layer(SetRequestIdLayer::new(x_request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    // Method, path and request id only: no query strings, no headers.
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(x_request_id))
                .layer(middleware::from_fn_with_state(
                    Deadlines { request: config.request_timeout, import: config.import_timeout },
                    deadline,
                )),
        );
    // Security headers outermost, so every response gets them, including timeouts, errors
    // and refused paths.
    router
        .layer(middleware::from_fn(reject_unsafe_paths))
        .layer(middleware::from_fn_with_state(
            early::DrainLimits::default(),
            early::layer,
        ))
        .layer(middleware::map_response(headers::add))
}

#[derive(Clone, Copy)]
struct Deadlines {
    request: Duration,
    import: Duration,
}

/// Every request must finish within the request timeout; an import upload (which streams a
/// large file and then imports it) within the import timeout.
async fn deadline(
    axum::extract::State(d): axum::extract::State<Deadlines>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    // File uploads and downloads stream large bodies: they get the import deadline.
    let file_transfer = path.ends_with("/files")
        || path.starts_with("/api/v1/files/") && path.ends_with("/content");
    let limit =
        if req.method() == axum::http::Method::POST && path == "/api/v1/imports" || file_transfer {
            d.import
        } else {
            d.request
        };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

async fn openapi_doc(axum::extract::State(s): axum::extract::State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        s.openapi_json.as_str().to_owned(),
    )
}

/// How far ahead security.txt's `Expires` lies: RFC 9116 asks for less than a year, so a
/// copy that someone mirrors goes stale rather than living forever.
const SECURITY_TXT_VALIDITY: time::Duration = time::Duration::days(180);

/// `/.well-known/security.txt` (RFC 9116): where to report a vulnerability. `Expires` is
/// computed at each request; 404 when no contact is configured (the field is mandatory).
async fn security_txt(axum::extract::State(s): axum::extract::State<AppState>) -> Response {
    let cfg = &s.security_txt;
    if cfg.contact.is_empty() {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no security contact is configured",
        )
        .into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        render_security_txt(cfg, time::OffsetDateTime::now_utc()),
    )
        .into_response()
}

fn render_security_txt(cfg: &SecurityTxt, now: time::OffsetDateTime) -> String {
    let expires = (now + SECURITY_TXT_VALIDITY)
        .replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut out = String::new();
    for c in &cfg.contact {
        out.push_str(&format!("Contact: {c}\n"));
    }
    out.push_str(&format!("Expires: {expires}\n"));
    if let Some(p) = &cfg.policy {
        out.push_str(&format!("Policy: {p}\n"));
    }
    if let Some(c) = &cfg.canonical {
        out.push_str(&format!("Canonical: {c}\n"));
    }
    out.push_str("Preferred-Languages: en, nl\n");
    out
}

/// Responses produced by axum or tower themselves (405, 408, 413) carry no body; give them
/// the API's error shape.
async fn json_for_bare_errors(res: Response) -> Response {
    let has_type = res.headers().contains_key(axum::http::header::CONTENT_TYPE);
    if has_type || !(res.status().is_client_error() || res.status().is_server_error()) {
        return res;
    }
    let (code, msg) = match res.status() {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not support the method",
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("bad_request", "the request was not understood"),
    };
    let mut out = ApiError::new(res.status(), code, msg).into_response();
    if let Some(allow) = res.headers().get(axum::http::header::ALLOW) {
        out.headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    out
}

/// Refuse request targets that are not plain absolute paths (e.g. `//evil`, `..`).
async fn reject_unsafe_paths(req: Request, next: Next) -> Response {
    let p = req.uri().path();
    if !p.starts_with('/') || p.contains("/../") || p.ends_with("/..") || p.contains("//") {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "invalid request path",
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod security_txt_tests {
    use super::*;

    #[test]
    fn fields_as_rfc_9116_wants_them() {
        let cfg = SecurityTxt {
            contact: vec![
                "mailto:security@example.test".into(),
                "https://example.test/report".into(),
            ],
            policy: Some("https://example.test/SECURITY.md".into()),
            canonical: Some("https://crm.example.test/.well-known/security.txt".into()),
        };
        let now =
            time::OffsetDateTime::from_unix_timestamp_nanos(1_796_661_015_250_000_000).unwrap();
        assert_eq!(
            render_security_txt(&cfg, now),
            "Contact: mailto:security@example.test\nContact: https://example.test/report\n\
             Expires: 2027-06-05T16:30:15Z\nPolicy: https://example.test/SECURITY.md\n\
             Canonical: https://crm.example.test/.well-known/security.txt\nPreferred-Languages: en, nl\n"
        );
    }
}

#[cfg(test)]
mod openapi_tests {
    /// Every path parameter the document declares is in its path template, and every `{x}` of a
    /// template is declared: a query parameter documented as a path one (`"in": "path",
    /// "required": true`) sends clients and schema-driven testers astray.
    #[test]
    fn parameters_are_where_the_document_says() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let mut wrong = Vec::new();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            let in_template: Vec<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|s| s.split('}').next())
                .collect();
            for (method, op) in item.as_object().unwrap() {
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                let in_path = |p: &serde_json::Value| p["in"] == "path";
                for p in &params {
                    checked += 1;
                    let name = p["name"].as_str().unwrap_or_default();
                    if in_path(p) && !in_template.contains(&name) {
                        wrong.push(format!("{method} {path}: `{name}` is not in the path"));
                    }
                }
                for name in &in_template {
                    if !params.iter().any(|p| in_path(p) && p["name"] == *name) {
                        wrong.push(format!("{method} {path}: `{{{name}}}` is not declared"));
                    }
                }
            }
        }
        assert!(checked > 100, "only {checked} parameters seen");
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
