//! The one error type that crosses the API boundary, and its mapping to Docker status codes.
//!
//! Every engine error that reaches a handler is turned into an [`ApiError`] with a kind; the
//! kind alone decides the HTTP status, and the body is always Docker's `{"message": "..."}`.
//!
//! An `ApiError` may keep the error it was made from ([`ApiError::with_source`]); the client
//! never sees it, but every internal (500) error is logged once, here at the edge, with its
//! whole cause chain and the request's method and path ([`log_internal_errors`]).
//!
//! ```text
//!  handler ─► Err(ApiError) ─► into_response: status + {"message"}; a 500 keeps the error
//!                                in the response's extensions
//!          ─► log_internal_errors (outermost layer): takes it out, logs method, path, chain
//! ```

use std::error::Error as StdError;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_common::models::ErrorMessage;

/// What went wrong, as far as a client needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request names a bad value.
    InvalidArgument,
    /// 401: credentials were refused.
    Unauthorized,
    /// 403: the operation is never allowed on this object.
    Forbidden,
    /// 404: the object does not exist.
    NotFound,
    /// 409: the object exists but its state forbids the operation.
    Conflict,
    /// 304: nothing to do (start of a running container, stop of a stopped one).
    NotModified,
    /// 501: not supported here: Docker performs the operation but this build does not yet,
    /// or the object can't do it (logs of a container whose driver can't be read).
    NotImplemented,
    /// 503: the feature is not active on this node.
    Unavailable,
    /// 500: anything else.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
            ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error with its kind and the message the client prints after
/// `Error response from daemon: `.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// What caused it, for the log only (never sent to the client).
    #[source]
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            source: None,
        }
    }
    /// Keeps `source` as the cause of this error; the message the client sees is unchanged.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
    /// An internal error whose message is `source`'s, keeping `source` as its cause (what
    /// `ApiError::internal(e.to_string())` says, without losing `e`).
    pub fn internal_from(source: impl StdError + Send + Sync + 'static) -> Self {
        Self::internal(source.to_string()).with_source(source)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn not_modified() -> Self {
        Self::new(ErrorKind::NotModified, "")
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub use berth_common::errors::cause_chain;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        let body = serde_json::to_string(&ErrorMessage {
            message: self.message.clone(),
        })
        .unwrap_or_default();
        let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if self.kind == ErrorKind::Internal {
            // For `log_internal_errors`, which knows the request.
            resp.extensions_mut().insert(self);
        }
        resp
    }
}

/// Middleware, outermost around the router: logs every internal (500) error a handler
/// returned, at `error` level with its cause chain and the request's method and path.
pub async fn log_internal_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut resp = next.run(req).await;
    if let Some(err) = resp.extensions_mut().remove::<ApiError>() {
        tracing::error!(
            method = %method,
            path = %uri.path(),
            error = %cause_chain(&err),
            "request failed with an internal error"
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_chain_appends_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = ApiError::internal("read state").with_source(io);
        assert_eq!(cause_chain(&e), "read state: no such file");
        assert_eq!(e.message, "read state");

        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = ApiError::internal(format!("read state: {io}")).with_source(io);
        assert_eq!(cause_chain(&e), "read state: no such file");

        let e = ApiError::internal_from(std::io::Error::other("boom"));
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Internal, "boom"));
        assert!(e.source().is_some());
    }

    #[test]
    fn kinds_map_to_docker_statuses() {
        assert_eq!(ErrorKind::NotFound.status(), StatusCode::NOT_FOUND);
        assert_eq!(ErrorKind::Conflict.status(), StatusCode::CONFLICT);
        assert_eq!(ErrorKind::NotModified.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(ErrorKind::InvalidArgument.status(), StatusCode::BAD_REQUEST);
    }
}
