//! The one error shape of the API: `{"error": {"code": "...", "message": "...", "field": ...}}`.
//! Codes are stable; messages are for people; nothing internal (SQL, paths, values) leaks.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kluis_core::{Error, ErrorKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code, e.g. `validation_failed`, `not_found`, `password_too_short`.
    pub code: String,
    pub message: String,
    /// The offending input field, when there is one.
    pub field: Option<String>,
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match e.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Gone => StatusCode::GONE,
            ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Locked => StatusCode::LOCKED,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ErrorKind::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
        };
        let message = if status.is_server_error() {
            // The cause goes to the log, inside the request's span (which carries the request
            // id the client also gets in `x-request-id`); the client gets the generic answer.
            // Core messages name what failed, never bound values.
            tracing::error!(code = e.code, cause = %e.message, "request failed");
            "internal error; see the server log for the request id".to_owned()
        } else {
            e.message
        };
        ApiError {
            status,
            code: e.code,
            message,
            field: e.field,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        let mut res = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

/// JSON body extractor with the API's error shape: wrong content type -> 415
/// `unsupported_media_type`; too big -> 413 `payload_too_large`; not JSON or not UTF-8 -> 400
/// `malformed_json`; unknown field -> 422 `unknown_field`; wrong type or missing field -> 422
/// `invalid_field`, naming the field but never echoing the value (it may be a password).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut parts = content_type.split(';');
        let is_json = parts
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            ));
        }
        // JSON is UTF-8 (RFC 8259); a body declared as anything else would be read wrongly.
        let other_charset = parts.filter_map(|p| p.split_once('=')).any(|(k, v)| {
            k.trim().eq_ignore_ascii_case("charset")
                && !v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        });
        if other_charset {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_charset",
                "JSON bodies are UTF-8: send charset=utf-8 or no charset",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| match e {
                BytesRejection::FailedToBufferBody(_)
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the request body is too large",
                    )
                }
                _ => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    "the request body could not be read",
                ),
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // A key given twice is refused: which of the two values counts is otherwise up to the
    // parser (serde keeps the last for maps), and two readers of one request may disagree.
    if let Some(path) = duplicate_key(bytes) {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "duplicate_field",
            "a field is given twice",
        );
        e.field = Some(path);
        return Err(e);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let field = (path != "." && !path.is_empty()).then_some(path);
            let e = match inner.classify() {
                serde_json::error::Category::Data => {
                    let msg = inner.to_string();
                    if msg.starts_with("unknown field") {
                        // serde names the field (not its value): safe to echo.
                        let name = msg.split('`').nth(1).unwrap_or_default().to_owned();
                        let mut e = ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "unknown_field",
                            format!("unknown field `{name}`"),
                        );
                        // The path may already end in the unknown key: name it once.
                        e.field = Some(match &field {
                            Some(p) if p == &name || p.ends_with(&format!(".{name}")) => p.clone(),
                            Some(p) => format!("{p}.{name}"),
                            None => name,
                        });
                        return Err(e);
                    } else if msg.starts_with("missing field") {
                        let name = msg.split('`').nth(1).unwrap_or_default().to_owned();
                        let mut e = ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "missing_field",
                            format!("missing field `{name}`"),
                        );
                        e.field = Some(name);
                        return Err(e);
                    }
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_field",
                        "a field has the wrong type or an unsupported value",
                    )
                }
                _ => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    "the body is not valid UTF-8 JSON",
                ),
            };
            Err(ApiError { field, ..e })
        }
    }
}

/// The path (`fields.email`) of the first key that appears twice in one JSON object, if any.
/// A body that is not JSON at all is left for the real parse to report.
fn duplicate_key(bytes: &[u8]) -> Option<String> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::cell::RefCell;

    struct Walk<'a> {
        path: String,
        found: &'a RefCell<Option<String>>,
    }
    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                if !seen.insert(key) && self.found.borrow().is_none() {
                    *self.found.borrow_mut() = Some(path.clone());
                }
                map.next_value_seed(Walk {
                    path,
                    found: self.found,
                })?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq
                .next_element_seed(Walk {
                    path: format!("{}[{i}]", self.path),
                    found: self.found,
                })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let walked = Walk {
        path: String::new(),
        found: &found,
    }
    .deserialize(&mut de);
    walked.ok()?;
    found.into_inner()
}

/// Path extractor whose rejection is the API's error shape (400 `invalid_id`).
pub struct IdPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for IdPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| IdPath(p.0))
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_id",
                    "the id in the path is not a valid id",
                )
            })
    }
}

/// Query extractor with the API's error shape (400 `invalid_query`).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S>
    for ApiQuery<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    "the query string is not valid for this endpoint",
                )
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn a_key_given_twice_is_found_at_any_depth() {
        assert_eq!(duplicate_key(br#"{"a": 1, "b": 2}"#), None);
        assert_eq!(duplicate_key(br#"{"a": 1, "a": 2}"#), Some("a".into()));
        assert_eq!(
            duplicate_key(br#"{"fields": {"email": "x", "email": "y"}}"#),
            Some("fields.email".into())
        );
        assert_eq!(
            duplicate_key(br#"{"items": [{"k": 1}, {"k": 1, "k": 2}]}"#),
            Some("items[1].k".into())
        );
        assert_eq!(duplicate_key(b"not json"), None, "left to the real parse");
        let e = parse_json::<serde_json::Value>(br#"{"fields": {"email": "x", "email": "y"}}"#)
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("duplicate_field", Some("fields.email"))
        );
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A 5xx answers generically, and its cause is logged with the request id of the span it
    /// happened in; a 4xx is answered as it is and not logged as an error.
    #[test]
    fn server_errors_are_logged_with_the_request_id_and_hidden_from_the_client() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_writer(move || writer.clone())
            .finish();
        let (e500, e422) = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "req-7f3a");
            let _in = span.enter();
            (
                ApiError::from(Error::internal("audit head row missing in tenant_state")),
                ApiError::from(Error::validation("email", "invalid_email", "bad address")),
            )
        });
        assert_eq!(e500.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e500.message.contains("audit head"), "{}", e500.message);
        assert_eq!(e422.message, "bad address");
        let log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 1, "{log}");
        assert!(
            lines[0].contains("audit head row missing in tenant_state"),
            "{log}"
        );
        assert!(lines[0].contains("req-7f3a"), "{log}");
        assert!(lines[0].contains("\"ERROR\""), "{log}");
    }
}
