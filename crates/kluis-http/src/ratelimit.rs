//! The `RateLimit-Policy`, `RateLimit` and `Retry-After` headers (IETF draft
//! draft-ietf-httpapi-ratelimit-headers, structured-field form) on every answer to an
//! authenticated API request, the 429 included.
//!
//! Authentication happens in the [`crate::auth::Authed`] extractor, which cannot touch the
//! response; it leaves the decision in a slot this middleware put into the request.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use kluis_core::ratelimit::RateDecision;

use crate::error::ApiError;

#[derive(Clone, Default)]
pub(crate) struct RateSlot(Arc<Mutex<Option<RateDecision>>>);

impl RateSlot {
    fn put(&self, d: RateDecision) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(d);
    }
    fn take(&self) -> Option<RateDecision> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Records `decision` for the headers; a refused request becomes `429 rate_limited`.
pub(crate) fn enforce(
    extensions: &axum::http::Extensions,
    decision: RateDecision,
) -> Result<(), ApiError> {
    let refused = decision.refused.is_some();
    if let Some(slot) = extensions.get::<RateSlot>() {
        slot.put(decision);
    }
    if refused {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; try again after the number of seconds in Retry-After",
        ));
    }
    Ok(())
}

pub(crate) async fn headers(mut req: Request, next: Next) -> Response {
    let slot = RateSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut res = next.run(req).await;
    let Some(d) = slot.take() else {
        return res;
    };
    let policies: Vec<String> = d
        .states
        .iter()
        .chain(d.refused.iter())
        .map(|s| format!("\"{}\";q={};w={}", s.policy, s.quota, s.window_secs))
        .collect();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&policies.join(", ")) {
        h.insert("ratelimit-policy", v);
    }
    if let Some(t) = d.tightest()
        && let Ok(v) = HeaderValue::from_str(&format!(
            "\"{}\";r={};t={}",
            t.policy, t.remaining, t.reset_secs
        ))
    {
        h.insert("ratelimit", v);
    }
    if let Some(r) = &d.refused {
        h.insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from(r.reset_secs.max(1)),
        );
    }
    res
}
