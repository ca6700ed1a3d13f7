//! The two error shapes the CLI turns into output and exit codes.
//!
//! * [`DaemonError`]: an error status from the API; prints as
//!   `Error response from daemon: <message>` and keeps the HTTP status (404 drives the pull in
//!   `run`/`create`).
//! * [`StatusError`]: ends the process with a given exit code (125 for `run` setup failures, the
//!   container's own status, …), printing its message first when there is one.
//!
//! Anything else is printed as is and exits 1.

use std::fmt;

use berth_common::models::ErrorMessage;

/// An error status returned by the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonError {
    pub status: u16,
    pub message: String,
}

impl DaemonError {
    /// Builds the error from a response body: `{"message": ...}`, else the raw text.
    pub fn from_body(status: u16, body: &[u8]) -> DaemonError {
        let message = serde_json::from_slice::<ErrorMessage>(body)
            .map(|m| m.message)
            .unwrap_or_else(|_| {
                let text = String::from_utf8_lossy(body).trim().to_string();
                if text.is_empty() {
                    hyper::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("unknown error")
                        .to_lowercase()
                } else {
                    text
                }
            });
        DaemonError { status, message }
    }
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for DaemonError {}

/// Exit with `code`, printing `message` on stderr unless it is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    pub code: i32,
    pub message: String,
}

impl StatusError {
    /// A silent exit with `code` (the message was already printed, or there is none).
    pub fn code(code: i32) -> StatusError {
        StatusError {
            code,
            message: String::new(),
        }
    }

    pub fn new(code: i32, message: impl Into<String>) -> StatusError {
        StatusError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatusError {}

/// The daemon error inside `err`, if that is what it is.
pub fn daemon_error(err: &anyhow::Error) -> Option<&DaemonError> {
    err.downcast_ref::<DaemonError>()
}

/// Whether `err` is a daemon 404.
pub fn is_not_found(err: &anyhow::Error) -> bool {
    daemon_error(err).is_some_and(|d| d.status == 404)
}

/// Converts an error into the text and exit code `main` reports.
pub fn report(err: &anyhow::Error) -> (String, i32) {
    if let Some(s) = err.downcast_ref::<StatusError>() {
        return (s.message.clone(), s.code);
    }
    (format!("{err:#}"), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_bodies() {
        let e = DaemonError::from_body(404, br#"{"message":"No such container: x"}"#);
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: x"
        );
        let e = DaemonError::from_body(500, b"  plain text\n");
        assert_eq!(e.message, "plain text");
        let e = DaemonError::from_body(404, b"");
        assert_eq!(e.message, "not found");
    }

    #[test]
    fn reports_codes() {
        let e = anyhow::Error::new(StatusError::new(125, "bad flag"));
        assert_eq!(report(&e), ("bad flag".to_string(), 125));
        let e = anyhow::Error::new(DaemonError {
            status: 409,
            message: "conflict".into(),
        });
        assert_eq!(
            report(&e),
            ("Error response from daemon: conflict".to_string(), 1)
        );
        assert!(!is_not_found(&e));
        let e = anyhow::Error::new(DaemonError {
            status: 404,
            message: "No such image: x".into(),
        });
        assert!(is_not_found(&e));
    }
}
