//! The one error type that crosses the API boundary, and its mapping to Docker status codes.
//!
//! Every engine error that reaches a handler is turned into an [`ApiError`] with a kind; the
//! kind alone decides the HTTP status, and the body is always Docker's `{"message": "..."}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

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
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        let body = serde_json::json!({ "message": self.message }).to_string();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_docker_statuses() {
        assert_eq!(ErrorKind::NotFound.status(), StatusCode::NOT_FOUND);
        assert_eq!(ErrorKind::Conflict.status(), StatusCode::CONFLICT);
        assert_eq!(ErrorKind::NotModified.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(ErrorKind::InvalidArgument.status(), StatusCode::BAD_REQUEST);
    }
}
