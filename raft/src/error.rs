//! The control plane's error: what a cluster operation can fail with, by kind. The engine's
//! API edge maps kinds to HTTP statuses; the messages are dockerd's where it has one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ClusterError {
    /// Bad input from the caller (400).
    #[error("rpc error: code = InvalidArgument desc = {0}")]
    InvalidArgument(String),
    /// No such object (404).
    #[error("{0}")]
    NotFound(String),
    /// A name already taken (409).
    #[error("rpc error: code = AlreadyExists desc = {0}")]
    AlreadyExists(String),
    /// The object changed since the version the update was based on (Docker's wording).
    #[error("rpc error: code = Unknown desc = update out of sequence")]
    OutOfSequence,
    /// The operation is refused in the cluster's current state (400, like dockerd).
    #[error("rpc error: code = FailedPrecondition desc = {0}")]
    FailedPrecondition(String),
    /// No leader, no quorum, or no manager reachable (503).
    #[error("{0}")]
    Unavailable(String),
    /// The caller's certificate or token is not accepted.
    #[error("{0}")]
    PermissionDenied(String),
    /// This node's membership state does not allow it (503: not in a swarm, already in one).
    #[error("{0}")]
    NotAllowed(String),
    /// A fault of ours (500).
    #[error("{0}")]
    Internal(String),
    /// This node's keys are sealed (autolock) and it has not been unlocked since it started
    /// (503, dockerd's words).
    #[error("{}", LOCKED)]
    Locked,
    /// `swarm unlock` with a key that does not open this node's sealed keys (401, dockerd's
    /// words).
    #[error("swarm could not be unlocked: invalid key provided")]
    WrongUnlockKey,
}

/// dockerd's answer to cluster calls on a manager that is locked.
pub const LOCKED: &str = "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.";

/// dockerd's words when a write cannot reach a leader.
pub const NO_LEADER: &str = "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.";

impl ClusterError {
    pub fn internal(what: &str, e: impl std::fmt::Display) -> ClusterError {
        ClusterError::Internal(format!("{what}: {e}"))
    }
    pub fn no_leader() -> ClusterError {
        ClusterError::Unavailable(NO_LEADER.into())
    }
}

pub type ClusterResult<T> = Result<T, ClusterError>;
