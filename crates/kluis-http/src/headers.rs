//! Security headers on every response, errors and redirects included.

use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// Strict CSP without 'unsafe-inline': scripts and styles only from our own origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn layers() -> Vec<SetResponseHeaderLayer<HeaderValue>> {
    let h = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    vec![
        h(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        ),
        h(header::CONTENT_SECURITY_POLICY, CSP),
        h(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        h(header::REFERRER_POLICY, "no-referrer"),
        h(header::X_FRAME_OPTIONS, "DENY"),
        h(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        h(
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        h(
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=()",
        ),
        SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ),
    ]
}
