//! Security headers on every response, errors and redirects included.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;

/// Strict CSP without 'unsafe-inline': scripts and styles only from our own origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Set on every response, replacing whatever a handler set.
const ALWAYS: [(HeaderName, &str); 8] = [
    (
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=63072000; includeSubDomains",
    ),
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    ),
    (
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    ),
];

/// Adds the security headers to a response. One function rather than one tower layer per
/// header: axum wraps every route in each layer, so nine layers meant nine boxed services
/// cloned and nine nested futures per request.
pub async fn add(mut res: Response) -> Response {
    let file = res
        .extensions()
        .get::<crate::routes::files::FileResponse>()
        .is_some();
    let h = res.headers_mut();
    for (name, value) in ALWAYS {
        h.insert(name, HeaderValue::from_static(value));
    }
    if file {
        // A stored file: nothing may load or run, even if a browser renders it.
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(crate::routes::files::FILE_CSP),
        );
    }
    // Handlers that may be cached (static assets) say so; everything else is not stored.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
