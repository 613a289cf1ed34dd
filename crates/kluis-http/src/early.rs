//! Answers that come before the request body was read (401 for a bad key, 415, a bad If-Match,
//! 413) must reach the client. Over HTTP/2 an unread body makes the server reset the stream
//! (RST_STREAM) while the client is still sending, and some clients (curl 7.88 with nghttp2)
//! then report a framing error and drop the answer. So the rest of an unread body is read and
//! thrown away, within bounds, before the answer goes out. Oversized headers and targets are
//! refused here, with the API's JSON error, below the transport's own (bare) limits.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::error::ApiError;

/// Largest request target (path and query) accepted; longer: 414 `uri_too_long`.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest request header block (names, values and 32 bytes each, as HTTP/2 counts it);
/// larger: 431 `headers_too_large`. The transport's limits sit well above (see `serve`).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// How much of an unread body is read and discarded before an early answer, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct DrainLimits {
    pub bytes: u64,
    pub time: Duration,
}

impl Default for DrainLimits {
    fn default() -> Self {
        DrainLimits {
            bytes: 4 * 1024 * 1024,
            time: Duration::from_secs(5),
        }
    }
}

/// Total size of a header block the way HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE counts it.
fn header_bytes(h: &HeaderMap) -> usize {
    h.iter().map(|(k, v)| k.as_str().len() + v.len() + 32).sum()
}

struct Shared {
    body: Option<Body>,
    ended: bool,
}

/// The request body as the handler sees it; the middleware keeps a second handle to take back
/// what the handler left unread.
struct Tracked(Arc<Mutex<Shared>>);

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(body) = g.body.as_mut() else {
            return Poll::Ready(None);
        };
        let r = Pin::new(body).poll_frame(cx);
        if matches!(r, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            g.ended = true;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.ended || g.body.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.body.as_ref().map(HttpBody::size_hint).unwrap_or_default()
    }
}

/// The middleware: refuses oversized targets and header blocks, and drains what the inner
/// service left of the body before its answer leaves.
pub async fn layer(
    axum::extract::State(limits): axum::extract::State<DrainLimits>,
    req: Request,
    next: Next,
) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let early = if uri_len > MAX_URI_BYTES {
        Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "the request target is too long",
        ))
    } else if header_bytes(req.headers()) > MAX_HEADER_BYTES {
        Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "the request headers are too large",
        ))
    } else {
        None
    };
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        let req = Request::from_parts(parts, body);
        return match early {
            Some(e) => e.into_response(),
            None => next.run(req).await,
        };
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let shared = Arc::new(Mutex::new(Shared {
        body: Some(body),
        ended: false,
    }));
    let res = match early {
        Some(e) => e.into_response(),
        None => {
            let req = Request::from_parts(parts, Body::new(Tracked(shared.clone())));
            next.run(req).await
        }
    };
    // Still held elsewhere (a task streaming it): not ours to drain.
    let Some(inner) = Arc::into_inner(shared) else {
        return res;
    };
    let inner = inner.into_inner().unwrap_or_else(|p| p.into_inner());
    let (false, Some(body)) = (inner.ended, inner.body) else {
        return res;
    };
    // A declared length beyond the bound cannot be drained in bounds: do not start.
    if declared.is_some_and(|n| n > limits.bytes) {
        return res;
    }
    drain(body, limits).await;
    res
}

async fn drain(mut body: Body, limits: DrainLimits) {
    let read = async {
        let mut n: u64 = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(d) = frame.data_ref() {
                n = n.saturating_add(d.len() as u64);
                if n > limits.bytes {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(limits.time, read).await;
}
