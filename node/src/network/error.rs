//! `NetworkError`: what can go wrong in `network/`, with a kind for the API.
//!
//! The network area returns this type everywhere; it becomes a `berth_api::ApiError` only at
//! the backend edge (`api.rs`) and a `ContainerError` where the container manager calls in
//! (`From` below). Kernel and store failures keep their cause (`#[source]`): the message a
//! client sees is the whole cause chain, the log at the edge gets the chain too.

use std::io;

use berth_api::error::cause_chain;
use berth_api::{ApiError, ErrorKind};

use super::ipam::IpamError;
use super::ports::PortError;
use crate::container::ContainerError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The request names a bad value (400).
    #[error("{0}")]
    Invalid(String),
    /// No such network, or no such driver (404).
    #[error("{0}")]
    NotFound(String),
    /// The network exists but its state forbids the operation (409).
    #[error("{0}")]
    Conflict(String),
    /// The operation is never allowed on this object (403).
    #[error("{0}")]
    Forbidden(String),
    /// `-d overlay` with no overlay driver registered: only a swarm manager makes overlay
    /// networks (503, Docker's "This node is not a swarm manager" answer).
    #[error("overlay networks need a swarm manager")]
    NeedsSwarm,
    /// A kernel operation failed: what was being done (`create bridge berth-1a2b3c4d5`).
    #[error("{what}")]
    Kernel {
        what: String,
        #[source]
        source: io::Error,
    },
    /// nftables refused or could not be run.
    #[error("{0}")]
    Rules(String),
    /// Attaching a container failed inside its namespace.
    #[error("attach to network")]
    Attach(#[source] Box<NetworkError>),
    /// IPAM refused a subnet, address or MAC address; `kind` says what that is where it
    /// happened (a client's bad value, a taken address, or a record of ours that no longer
    /// reads).
    #[error("{error}")]
    Ipam { kind: ErrorKind, error: IpamError },
    /// Publishing a port failed (the host port is taken, the address is not local).
    #[error(
        "driver failed programming external connectivity on endpoint {ctr_name} ({ctr_id}): {why}"
    )]
    Publish {
        ctr_name: String,
        ctr_id: String,
        why: PortError,
    },
    /// A state the network service should never be in (a record it cannot read back, an
    /// exhausted allocator).
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking task or namespace thread died.
    #[error("network worker: {0}")]
    Worker(String),
}

pub type Result<T> = std::result::Result<T, NetworkError>;

impl NetworkError {
    pub fn invalid(m: impl Into<String>) -> Self {
        NetworkError::Invalid(m.into())
    }

    /// Wraps an IPAM refusal as what it means at the call site.
    pub fn ipam(kind: ErrorKind) -> impl FnOnce(IpamError) -> NetworkError {
        move |error| NetworkError::Ipam { kind, error }
    }

    pub fn kernel(what: impl Into<String>, source: io::Error) -> Self {
        NetworkError::Kernel {
            what: what.into(),
            source,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::Invalid(_) => ErrorKind::InvalidArgument,
            NetworkError::NotFound(_) => ErrorKind::NotFound,
            NetworkError::Conflict(_) => ErrorKind::Conflict,
            NetworkError::Forbidden(_) => ErrorKind::Forbidden,
            NetworkError::NeedsSwarm => ErrorKind::Unavailable,
            NetworkError::Ipam { kind, .. } => *kind,
            NetworkError::Kernel { .. }
            | NetworkError::Rules(_)
            | NetworkError::Attach(_)
            | NetworkError::Publish { .. }
            | NetworkError::Internal(_)
            | NetworkError::Store(_)
            | NetworkError::Worker(_) => ErrorKind::Internal,
        }
    }

    /// What a client is told: the message and, for internal errors, each cause after it
    /// (`create bridge berth-1a2b3c4d5: Operation not permitted`).
    pub fn client_message(&self) -> String {
        if self.kind() == ErrorKind::Internal {
            cause_chain(self)
        } else {
            self.to_string()
        }
    }
}

impl From<tokio::task::JoinError> for NetworkError {
    fn from(e: tokio::task::JoinError) -> Self {
        NetworkError::Worker(e.to_string())
    }
}

/// The backend edge: the one place a network error becomes an API error.
impl From<NetworkError> for ApiError {
    fn from(e: NetworkError) -> Self {
        match e {
            NetworkError::NeedsSwarm => berth_api::swarm::not_a_manager(),
            e if e.kind() == ErrorKind::Internal => {
                ApiError::new(ErrorKind::Internal, e.client_message()).with_source(e)
            }
            e => ApiError::new(e.kind(), e.to_string()),
        }
    }
}

/// Where the container manager calls in (create, start, connect, disconnect).
impl From<NetworkError> for ContainerError {
    fn from(e: NetworkError) -> Self {
        match e {
            NetworkError::Invalid(m) => ContainerError::Invalid(m),
            NetworkError::NotFound(m) => ContainerError::NotFound(m),
            NetworkError::Conflict(m) => ContainerError::Conflict(m),
            NetworkError::Forbidden(m) => ContainerError::Forbidden(m),
            NetworkError::Ipam {
                kind: ErrorKind::InvalidArgument,
                error,
            } => ContainerError::Invalid(error.to_string()),
            NetworkError::Ipam {
                kind: ErrorKind::Forbidden,
                error,
            } => ContainerError::Forbidden(error.to_string()),
            NetworkError::Ipam {
                kind: ErrorKind::Conflict,
                error,
            } => ContainerError::Conflict(error.to_string()),
            e => ContainerError::internal_with(e.client_message(), e),
        }
    }
}

/// A binding a container asks for that cannot be read is the client's bad value.
impl From<PortError> for ContainerError {
    fn from(e: PortError) -> Self {
        ContainerError::Invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_errors_reach_the_client_with_their_cause() {
        let e = NetworkError::kernel(
            "create bridge berth-x",
            io::Error::from_raw_os_error(libc::EPERM),
        );
        let api = ApiError::from(e);
        assert_eq!(api.kind, ErrorKind::Internal);
        assert!(
            api.message.starts_with("create bridge berth-x: "),
            "{}",
            api.message
        );
        assert!(std::error::Error::source(&api).is_some(), "cause kept");
    }

    #[test]
    fn kinds_map_to_api_kinds() {
        for (e, kind) in [
            (NetworkError::invalid("x"), ErrorKind::InvalidArgument),
            (NetworkError::NotFound("x".into()), ErrorKind::NotFound),
            (NetworkError::Conflict("x".into()), ErrorKind::Conflict),
            (NetworkError::Forbidden("x".into()), ErrorKind::Forbidden),
            (NetworkError::NeedsSwarm, ErrorKind::Unavailable),
        ] {
            assert_eq!(ApiError::from(e).kind, kind);
        }
    }

    #[test]
    fn user_errors_become_container_errors_of_the_same_kind() {
        let c = ContainerError::from(NetworkError::NotFound("network x not found".into()));
        assert!(matches!(c, ContainerError::NotFound(m) if m == "network x not found"));
    }
}
