//! The cluster's certificate authority and everything built on it: node certificates,
//! join tokens, the mutual-TLS configurations the control plane talks over, the tonic
//! plumbing that carries them, and the sealing of secrets at rest (autolock).
//!
//! ```text
//!   RootCa::generate ──► RootCa (cert + key on managers, cert only on workers)
//!        │  issue(node_id, role, cluster_id, validity)
//!        ▼
//!   NodeCert (leaf: CN=node id, OU=swarm-manager|swarm-worker, O=cluster id)
//!        │
//!        ├── server_config(trust, node) ──► incoming(listener) ──► TlsConn { PeerInfo }
//!        └── client_config(trust, node) ──► channel(addr)  ──────► tonic Channel
//!
//!   root rotation: old.cross_sign(new) = new root's name and key, signed by the old root;
//!   leaves issued by the new key are presented as [leaf, cross-signed], so they verify
//!   against either root; `trust` holds both roots until every node has a new leaf
//!
//!   new_token(root) = SWMTKN-1-<root digest>-<secret>
//!        └── JoinToken::parse ──► pinned_client_config ──► PinnedRoot (the CA, learned
//!                                                          by a node that has none yet)
//! ```
//!
//! Invariants:
//! - every TLS configuration is built with the `ring` provider passed explicitly; nothing
//!   here depends on a process-wide default provider;
//! - a server accepts callers without a certificate (a joining node has none yet) but a
//!   presented certificate must chain to the cluster root; authorization is left to the
//!   caller, which looks up [`PeerInfo::fingerprint`] in the node table;
//! - managers are addressed by the name [`MANAGER_SERVER_NAME`]; only manager certificates
//!   carry it, so a worker can never pose as a manager;
//! - a join token pins the root CA by its SHA-256 digest, so `swarm join` trusts nothing
//!   but the CA the token was made for;
//! - a trust bundle ("trust") is one or more root PEMs; the first is the cluster's current
//!   root (the one join tokens name), a second the root a rotation moves to.

mod der;
mod node;
mod root;
mod seal;
mod tls;
mod token;
mod transport;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use node::{fingerprint_of, NodeCert};
pub use root::{Csr, RootCa};
pub use seal::{open, seal, UnlockKey};
pub use tls::{client_config, peer_fingerprint, pinned_client_config, server_config, PinnedRoot};
pub use token::{new_token, secret_eq, JoinToken};
pub use transport::{
    channel, channel_live, incoming, incoming_live, node_channel, LiveConfig, PeerInfo, TlsConn,
    CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES,
};

/// The TLS server name every manager certificate carries and every client verifies.
pub const MANAGER_SERVER_NAME: &str = "swarm-manager";

/// The DNS name worker certificates carry instead of [`MANAGER_SERVER_NAME`].
pub const WORKER_SERVER_NAME: &str = "swarm-worker";

/// The shortest node certificate lifetime `issue` accepts (as Docker's `--cert-expiry`).
pub const MIN_NODE_CERT_VALIDITY: Duration = Duration::from_secs(60 * 60);

/// The node certificate lifetime Docker uses when none is configured (90 days).
pub const DEFAULT_NODE_CERT_VALIDITY: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// The role a node certificate grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    /// `"manager"` or `"worker"`, as the Docker API spells roles.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }

    /// The organizational unit of certificates for this role.
    pub fn org_unit(self) -> &'static str {
        match self {
            Role::Manager => "swarm-manager",
            Role::Worker => "swarm-worker",
        }
    }

    fn from_org_unit(ou: &str) -> Option<Role> {
        match ou {
            "swarm-manager" => Some(Role::Manager),
            "swarm-worker" => Some(Role::Worker),
            _ => None,
        }
    }

    /// The DNS name a certificate of this role carries (and a server is verified against).
    fn server_name(self) -> &'static str {
        match self {
            Role::Manager => MANAGER_SERVER_NAME,
            Role::Worker => WORKER_SERVER_NAME,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong in the CA, its certificates, tokens, TLS set-up or sealing.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// rcgen refused to generate a key or a certificate.
    #[error("generating {what}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    /// A PEM block was missing or unreadable.
    #[error("invalid {what} pem: {reason}")]
    InvalidPem { what: &'static str, reason: String },
    /// A certificate could not be parsed or lacks something this module relies on.
    #[error("invalid {what}: {reason}")]
    InvalidCertificate { what: &'static str, reason: String },
    /// A private key does not belong to the certificate it was given with.
    #[error("the {what} key does not match its certificate")]
    KeyMismatch { what: &'static str },
    /// Issuing needs the CA key, which only managers hold.
    #[error("cannot issue certificates: this node holds the ca certificate but not its key")]
    NoCaKey,
    /// The requested node certificate lifetime is below the minimum.
    #[error("certificate validity {requested:?} is below the minimum of 1h")]
    ValidityTooShort { requested: Duration },
    /// The node id cannot be used as a certificate name.
    #[error("invalid node id {node_id:?}: expected 1-63 lowercase letters, digits or '-'")]
    InvalidNodeId { node_id: String },
    /// The cluster id is empty.
    #[error("invalid cluster id: must not be empty")]
    InvalidClusterId,
    /// A join token is malformed.
    #[error("invalid join token: {reason}")]
    InvalidToken { reason: String },
    /// rustls refused a configuration (bad key or certificate).
    #[error("building the tls {what} configuration")]
    Tls {
        what: &'static str,
        #[source]
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built.
    #[error("building the client certificate verifier")]
    Verifier {
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// An unlock key's text form is malformed.
    #[error("invalid unlock key: {reason}")]
    UnlockKeyFormat { reason: &'static str },
    /// Sealed data could not be opened: the key is wrong or the data was altered.
    #[error("invalid unlock key")]
    WrongUnlockKey,
    /// Sealed data is shorter than a nonce and a tag.
    #[error("sealed data is truncated ({len} bytes)")]
    SealedTruncated { len: usize },
}

/// Lowercase hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The current time as unix seconds.
fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
