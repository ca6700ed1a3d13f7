//! The OCI Distribution client berthd pulls and pushes with.
//!
//! ```text
//!  Registries (per daemon: insecure rules, certs dir, transport)
//!     └─ open(domain, repo, creds, push?) ─► Session
//!           ping GET /v2/ ─► challenge ─► Bearer token (realm flow) | Basic | none
//!           manifest(ref) · blob(digest, from offset) · head_blob · mount · upload · put_manifest
//!  http.rs   one HTTP/1.1 connection per request, TLS by rustls (ring)
//!  auth.rs   X-Registry-Auth credentials, WWW-Authenticate parsing
//! ```
//! Why our own client on hyper rather than oci-client: pulling needs the blob body as a byte
//! stream we tee into a file and into the unpacker while hashing it (digest checked before
//! anything is stored), HTTP `Range` requests to resume partial blobs, and several blob streams
//! at once; pushing needs a streamed upload body and cross-repository mounts. oci-client hides
//! the response stream behind its own buffering and brings reqwest with it; the few requests
//! of the distribution protocol are less code here than the adapters around it would be, and
//! hyper, rustls and tokio-rustls are already in the workspace.

mod auth;
mod client;
mod http;

use crate::image::error::ImageError;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use auth::Credentials;
pub use client::Session;
pub(crate) use http::full as full_body;

/// The registry `docker.io` names, and the address of Docker Hub's API.
pub const DOCKER_HUB: &str = "docker.io";
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached (connection refused, TLS failure, timeout).
    #[error("{url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// The registry answered that the repository, tag or blob does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Credentials missing or refused.
    #[error("{0}")]
    Unauthorized(String),
    /// The credentials (or the token they bought) do not grant access to the repository: a
    /// Bearer `error="insufficient_scope"` challenge, or the `DENIED` error code. Docker reads
    /// this as "repository does not exist or may require 'docker login'".
    #[error("{0}")]
    Denied(String),
    /// An answer that does not follow the protocol, or an unexpected status.
    #[error("{0}")]
    Protocol(String),
}

/// Daemon-wide registry settings.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `--insecure-registry`: `host[:port]` names or CIDRs reached without TLS verification
    /// (and over plain HTTP when they do not speak TLS).
    pub insecure: Vec<String>,
    /// `<dir>/<host:port>/*.crt` are extra CAs for that registry (Docker's certs.d).
    pub certs_dir: PathBuf,
}

/// The daemon's registry client.
pub struct Registries {
    cfg: RegistryConfig,
    transport: Arc<http::Transport>,
}

impl Registries {
    pub fn new(cfg: RegistryConfig) -> Self {
        let transport = Arc::new(http::Transport::new(cfg.certs_dir.clone()));
        Registries { cfg, transport }
    }

    /// A plain `GET` of any `http`/`https` URL over the registry transport (`ADD <url>`):
    /// TLS verified against the system CAs plus `<certs-dir>/<host:port>/*.crt`.
    pub async fn get_url(
        &self,
        url: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
        self.transport
            .send(
                hyper::Method::GET,
                url,
                &hyper::HeaderMap::new(),
                http::empty(),
                true,
            )
            .await
    }

    /// The host to talk to for a reference's domain.
    pub fn api_host(domain: &str) -> &str {
        if domain == DOCKER_HUB || domain == "index.docker.io" {
            DOCKER_HUB_API
        } else {
            domain
        }
    }

    /// Docker's rule: listed names and CIDRs, plus loopback (localhost, 127.0.0.0/8, ::1).
    pub fn is_insecure(&self, host: &str) -> bool {
        is_insecure(&self.cfg.insecure, host)
    }

    /// Opens a session with `repo` on `domain`, authenticated for pulling (and pushing).
    /// `mount_from` names repositories on the same registry blobs may be mounted from.
    pub async fn open(
        &self,
        domain: &str,
        repo: &str,
        creds: Option<&Credentials>,
        push: bool,
        mount_from: &[String],
    ) -> Result<Session, RegistryError> {
        let host = Self::api_host(domain);
        let actions = if push { "pull,push" } else { "pull" };
        let mut scopes = vec![format!("repository:{repo}:{actions}")];
        scopes.extend(
            mount_from
                .iter()
                .filter(|r| *r != repo)
                .map(|r| format!("repository:{r}:pull")),
        );
        Session::open(
            self.transport.clone(),
            host,
            self.is_insecure(host),
            repo,
            creds.cloned(),
            scopes,
        )
        .await
    }

    /// `POST /auth`: checks credentials against the registry at `server` (a host, or a URL
    /// such as `https://index.docker.io/v1/`).
    pub async fn login(&self, server: &str, creds: &Credentials) -> Result<(), RegistryError> {
        let host = login_host(server);
        Session::login(
            self.transport.clone(),
            &host,
            self.is_insecure(&host),
            creds,
        )
        .await
    }
}

/// `https://index.docker.io/v1/` → `registry-1.docker.io`; `127.0.0.1:5000` stays.
pub fn login_host(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    if host.is_empty() {
        return DOCKER_HUB_API.to_owned();
    }
    Registries::api_host(host).to_owned()
}

fn split_host_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

fn is_insecure(list: &[String], host: &str) -> bool {
    let bare = split_host_port(host);
    if bare == "localhost" {
        return true;
    }
    let ip: Option<IpAddr> = bare.parse().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    list.iter().any(|entry| {
        let entry = entry
            .trim()
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        if entry == host || entry == bare {
            return true;
        }
        match (entry.split_once('/'), ip) {
            (Some((net, bits)), Some(ip)) => cidr_contains(net, bits, ip),
            _ => false,
        }
    })
}

fn cidr_contains(net: &str, bits: &str, ip: IpAddr) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// What a registry said, as the image store reports it (kinds: not found, unauthorized,
/// internal).
impl From<RegistryError> for ImageError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as R;
        match e {
            R::NotFound(m) => ImageError::RemoteNotFound(m),
            R::Unauthorized(m) | R::Denied(m) => ImageError::Unauthorized(m),
            e @ (R::Unreachable { .. } | R::Protocol(_)) => ImageError::Registry(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_rules_follow_docker() {
        let list = vec!["myreg:5000".to_owned(), "10.1.0.0/16".to_owned()];
        assert!(is_insecure(&list, "127.0.0.1:5000"));
        assert!(is_insecure(&list, "127.9.9.9"));
        assert!(is_insecure(&list, "localhost:5000"));
        assert!(is_insecure(&list, "[::1]:5000"));
        assert!(is_insecure(&list, "myreg:5000"));
        assert!(!is_insecure(&list, "myreg:5001"));
        assert!(is_insecure(&list, "10.1.200.3:5000"));
        assert!(!is_insecure(&list, "10.2.0.1:5000"));
        assert!(!is_insecure(&list, "registry-1.docker.io"));
    }

    #[test]
    fn hub_names_map_to_its_api_host() {
        assert_eq!(Registries::api_host("docker.io"), DOCKER_HUB_API);
        assert_eq!(Registries::api_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(login_host("https://index.docker.io/v1/"), DOCKER_HUB_API);
        assert_eq!(login_host(""), DOCKER_HUB_API);
        assert_eq!(login_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(login_host("http://localhost:5000/"), "localhost:5000");
    }
}
