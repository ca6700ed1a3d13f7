//! `ImageError`: everything that can go wrong in the image store, and its mapping to the API's
//! error kinds (done once, here).

use std::path::PathBuf;

use berth_api::error::{ApiError, ErrorKind};
use berth_common::errors::cause_chain;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A reference (name, tag or digest) that Docker's grammar rejects; `reason` is Docker's
    /// wording (`invalid reference format: repository name must be lowercase`).
    #[error("{reason}: {value:?}")]
    InvalidReference { value: String, reason: &'static str },
    /// No image, reference or blob by that name.
    #[error("No such image: {0}")]
    NotFound(String),
    /// The request is valid but the store's state forbids it (Docker's wording in the message).
    #[error("{0}")]
    Conflict(String),
    /// A request argument that is not acceptable (filters, changes, platform).
    #[error("{0}")]
    InvalidArgument(String),
    /// The uploaded archive (import, load, layer) is not what it claims to be.
    #[error("invalid archive: {0}")]
    BadArchive(String),
    /// A tar entry that would land outside the layer directory.
    #[error("invalid archive: entry {entry:?} {reason}")]
    PathEscape { entry: String, reason: &'static str },
    /// Content whose digest is not the one it was announced with.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A file-system operation on a path of ours failed.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Mounting or unmounting an overlay failed.
    #[error("overlay mount on {target}: {detail}")]
    Mount {
        target: PathBuf,
        detail: String,
        source: std::io::Error,
    },
    /// A stored record or blob could not be decoded.
    #[error("corrupt image metadata {what}")]
    Corrupt {
        what: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Image metadata whose format version this berthd does not know (written by a newer
    /// one); `what` names the record (its key, or its file).
    #[error("image metadata {what} has format version {found}, which this berthd does not know (it reads versions up to {supported}): it was written by a newer berthd; start one at least as new", supported = crate::image::store::format::METADATA_VERSION)]
    MetadataVersion { what: String, found: String },
    /// A registry answered that the repository, tag or manifest does not exist.
    #[error("{0}")]
    RemoteNotFound(String),
    /// A registry refused the credentials (or wants some).
    #[error("{0}")]
    Unauthorized(String),
    /// A registry could not be reached or broke the protocol; the message names the host.
    #[error("{0}")]
    Registry(String),
    /// The feature is not available on this node.
    #[error("{0}")]
    Unavailable(String),
    /// A background task died.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ImageError {
    /// Wraps an I/O error with the operation and path it concerns.
    pub fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { op, path, source }
    }

    /// Errors from reading the client's upload: a short or broken body is a bad archive.
    /// Parser messages that quote binary garbage are replaced by a plain one.
    pub fn archive(context: &str) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
        move |e| {
            let msg = e.to_string();
            let garbled = msg
                .chars()
                .any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER);
            let msg = if garbled || msg.len() > 300 {
                "not a valid tar archive".to_owned()
            } else {
                msg
            };
            ImageError::BadArchive(format!("{context}: {msg}"))
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::InvalidReference { .. }
            | ImageError::InvalidArgument(_)
            | ImageError::BadArchive(_)
            | ImageError::PathEscape { .. }
            | ImageError::DigestMismatch { .. } => ErrorKind::InvalidArgument,
            ImageError::NotFound(_) | ImageError::RemoteNotFound(_) => ErrorKind::NotFound,
            ImageError::Unauthorized(_) => ErrorKind::Unauthorized,
            ImageError::Conflict(_) => ErrorKind::Conflict,
            ImageError::Unavailable(_) => ErrorKind::Unavailable,
            ImageError::Io { .. }
            | ImageError::Mount { .. }
            | ImageError::Corrupt { .. }
            | ImageError::MetadataVersion { .. }
            | ImageError::Store(_)
            | ImageError::Registry(_)
            | ImageError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        ApiError::new(e.kind(), cause_chain(&e)).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_messages() {
        let e = ImageError::NotFound("busybox:nope".into());
        let api: ApiError = e.into();
        assert_eq!(api.kind, ErrorKind::NotFound);
        assert_eq!(api.message, "No such image: busybox:nope");

        let e = ImageError::io("create", "/x/y")(std::io::Error::from_raw_os_error(libc::ENOENT));
        let api: ApiError = e.into();
        assert_eq!(api.kind, ErrorKind::Internal);
        assert!(api.message.starts_with("create /x/y: "), "{}", api.message);
        assert!(api.message.contains("No such file"), "{}", api.message);
    }
}
