//! Errors as values with stable codes. The HTTP layer maps [`ErrorKind`] to a status; the
//! code string is part of the API contract and never changes meaning.

use crate::db::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request itself is malformed.
    BadRequest,
    /// 401: no valid credentials.
    Unauthenticated,
    /// 403: authenticated, but not allowed.
    Forbidden,
    /// 404: no such object in the caller's tenant (also used for other tenants' objects).
    NotFound,
    /// 409: conflicts with existing state.
    Conflict,
    /// 410: was valid once, is no more (used setup link).
    Gone,
    /// 422: well-formed but invalid input.
    Validation,
    /// 500: our fault; details go to the log, never to the client.
    Internal,
    /// 503: a dependency is unavailable.
    Unavailable,
    /// 412: the `If-Match` precondition does not hold (stale update).
    PreconditionFailed,
    /// 428: a change needs `If-Match`.
    PreconditionRequired,
    /// 423: the tenant's data is locked by its own key holder (customer-managed key revoked).
    Locked,
    /// 429: a rate limit is spent.
    TooManyRequests,
    /// 413: an upload over a size limit or a quota.
    TooLarge,
}

#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind,
            code,
            message: message.into(),
            field: None,
        }
    }
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn validation(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Validation, code, message).with_field(field)
    }
    pub fn not_found() -> Self {
        Error::new(ErrorKind::NotFound, "not_found", "no such object")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Forbidden, "forbidden", message)
    }
    pub fn unauthenticated() -> Self {
        Error::new(
            ErrorKind::Unauthenticated,
            "unauthenticated",
            "missing, invalid or expired credentials",
        )
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, "internal", message)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(hint) => {
                tracing::debug!(constraint = %hint, "unique violation");
                Error::new(
                    ErrorKind::Conflict,
                    "conflict",
                    "an object with these values already exists",
                )
            }
            other => {
                // Store errors never carry bound values, so logging them is safe.
                tracing::error!(error = %other, "storage error");
                Error::new(
                    ErrorKind::Unavailable,
                    "storage_unavailable",
                    "the database is unavailable",
                )
            }
        }
    }
}

impl From<kluis_crypto::CryptoError> for Error {
    fn from(e: kluis_crypto::CryptoError) -> Self {
        tracing::error!(error = %e, "crypto error");
        Error::internal("internal error")
    }
}
