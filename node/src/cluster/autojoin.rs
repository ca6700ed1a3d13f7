//! Forming a cluster without copying tokens around: every node is told, up front (daemon.json
//! `"cluster"` or `--cluster-*` flags), a cluster secret chosen by the operator, the managers'
//! addresses and its role. At start a node in no swarm inits or joins by itself, retrying
//! with backoff until a manager answers (as k3s does with its token and server URL, and
//! Nomad with `retry_join`). A node already in a swarm does nothing.
//!
//! Who inits: only the manager whose advertise address is the *first* listed manager, and
//! only when none of the other listed managers answers as a member of a cluster (so a first
//! manager whose disk was wiped joins the cluster the others still run). Every other node
//! only joins. Managers starting at once therefore cannot form two clusters.
//!
//! The secret stands in for Docker's join token and is not weaker: the joiner learns the
//! cluster's CA only from a manager that proves it knows the secret, and the join itself is
//! made with the cluster's real join token (CA-pinned, `SWMTKN-1-…`), which a manager hands
//! out only, sealed, to a node that proved it knows the secret.
//!
//! ```text
//!  K = PBKDF2-HMAC-SHA256(secret, "berth cluster secret v1", 200 000)   (≥ 32 characters)
//!  hello_key, offer_key, seal_key = HMAC(K, "hello" | "offer" | "seal")
//!
//!  joiner ── TLS, server not yet verifiable ──► any manager (cluster port, Request::AutoJoin)
//!     {v:1, role, nonce (32 random bytes), proof: HMAC(hello_key, nonce‖role)}
//!                       manager: proof wrong → PermissionDenied "wrong cluster secret"
//!     ◄── {ca_cert, token: ChaCha20-Poly1305(seal_key, role's join token),
//!          proof: HMAC(offer_key, nonce‖role‖CA DER‖sealed token)}
//!  joiner: proof right (the CA is the cluster's: only a holder of the secret could make it,
//!          for this nonce), token opens and names that CA's digest
//!     ──► the ordinary join with that token: TLS pinned to the CA, the key made here, a CSR
//! ```
//! A man in the middle of the first exchange learns nothing it can use: the token is
//! sealed, and what it relays can only lead the joiner to the genuine CA. A wrong secret
//! is refused by the manager with a clear error, logged on both sides; the joiner keeps
//! retrying (an operator fixes the secret in the config and restarts it), and never joins.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use berth_api::backend::SwarmBackend;
use berth_api::swarm::{InitRequest, JoinRequest};
use berth_raft::ca::{self, JoinToken, Role, RootCa, UnlockKey};
use berth_raft::manager::AutoJoinResponder;
use berth_raft::objects::Cluster;
use berth_raft::rpc::{ClusterClient, Reply, Request};
use berth_raft::{ClusterError, ClusterResult};
use rand::RngCore;
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{addr, ClusterBackend};

/// The shortest secret accepted (characters): `openssl rand -hex 32` gives 64.
pub const MIN_SECRET_LEN: usize = 32;
const SALT: &[u8] = b"berth cluster secret v1";
const ITERATIONS: u32 = 200_000;
const VERSION: u32 = 1;
/// The first wait between attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What the joiner is told when its secret is not the cluster's.
pub const WRONG_SECRET: &str = "wrong cluster secret: this node's cluster secret is not the one the cluster was formed with; the join is refused";

/// The `cluster` settings of berthd (daemon.json `"cluster": {…}`, `--cluster-*` flags).
#[derive(Clone)]
pub struct AutoJoinConfig {
    pub secret: String,
    pub role: Role,
    /// The managers' cluster addresses, `host[:port]` (port 2377 by default); the first is
    /// the only one that may init.
    pub managers: Vec<String>,
    /// As `swarm init/join --advertise-addr` (IP or interface; empty: the listen IP, or the
    /// host's only address).
    pub advertise_addr: String,
    /// As `--listen-addr` (default `0.0.0.0:2377`).
    pub listen_addr: String,
}

impl std::fmt::Debug for AutoJoinConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoJoinConfig")
            .field("secret", &"[elided]")
            .field("role", &self.role)
            .field("managers", &self.managers)
            .field("advertise_addr", &self.advertise_addr)
            .field("listen_addr", &self.listen_addr)
            .finish()
    }
}

impl AutoJoinConfig {
    /// Checks what can be checked before anything starts.
    pub fn validate(&self) -> Result<(), String> {
        if self.secret.trim().chars().count() < MIN_SECRET_LEN {
            return Err(format!(
                "the cluster secret must be at least {MIN_SECRET_LEN} characters (make one with: openssl rand -hex 32)"
            ));
        }
        if self.managers.iter().all(|m| m.trim().is_empty()) {
            return Err(
                "cluster: at least one manager address is needed (\"managers\" or --cluster-manager)".into(),
            );
        }
        Ok(())
    }
}

/// The keys derived from a cluster secret.
pub struct Keys {
    hello: hmac::Key,
    offer: hmac::Key,
    seal: UnlockKey,
}

impl Keys {
    pub fn derive(secret: &str) -> Keys {
        let mut master = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(ITERATIONS).unwrap_or(std::num::NonZeroU32::MIN),
            SALT,
            secret.trim().as_bytes(),
            &mut master,
        );
        let master = hmac::Key::new(hmac::HMAC_SHA256, &master);
        let sub = |label: &[u8]| -> [u8; 32] {
            let tag = hmac::sign(&master, label);
            let mut out = [0u8; 32];
            out.copy_from_slice(tag.as_ref());
            out
        };
        Keys {
            hello: hmac::Key::new(hmac::HMAC_SHA256, &sub(b"hello")),
            offer: hmac::Key::new(hmac::HMAC_SHA256, &sub(b"offer")),
            seal: UnlockKey::from_bytes(sub(b"seal")),
        }
    }
}

/// What a joiner sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub v: u32,
    pub role: Role,
    /// 32 random bytes, hex.
    pub nonce: String,
    /// HMAC(hello_key, nonce ‖ role), hex.
    pub proof: String,
}

/// What a manager answers a joiner that knows the secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offer {
    pub v: u32,
    /// The cluster's root CA (PEM), the one its join tokens name.
    pub ca_cert: String,
    /// The role's join token sealed with the seal key (base64).
    pub token: String,
    /// HMAC(offer_key, nonce ‖ role ‖ CA DER ‖ sealed token), hex.
    pub proof: String,
}

fn hello_msg(nonce: &[u8], role: Role) -> Vec<u8> {
    let mut m = b"berth autojoin hello v1\0".to_vec();
    m.extend_from_slice(nonce);
    m.extend_from_slice(role.as_str().as_bytes());
    m
}

fn offer_msg(nonce: &[u8], role: Role, ca_der: &[u8], sealed: &[u8]) -> Vec<u8> {
    let mut m = b"berth autojoin offer v1\0".to_vec();
    m.extend_from_slice(nonce);
    m.extend_from_slice(role.as_str().as_bytes());
    m.extend_from_slice(&(ca_der.len() as u64).to_be_bytes());
    m.extend_from_slice(ca_der);
    m.extend_from_slice(sealed);
    m
}

impl Hello {
    pub fn new(keys: &Keys, role: Role) -> (Hello, Vec<u8>) {
        let mut nonce = vec![0u8; 32];
        rand::rng().fill_bytes(&mut nonce);
        let proof = hmac::sign(&keys.hello, &hello_msg(&nonce, role));
        (
            Hello {
                v: VERSION,
                role,
                nonce: hex::encode(&nonce),
                proof: hex::encode(proof.as_ref()),
            },
            nonce,
        )
    }
}

/// The manager's side: checks a hello and makes the offer from the cluster object.
pub fn answer(keys: &Keys, hello: &Value, cluster: &Cluster) -> ClusterResult<Value> {
    let hello: Hello = serde_json::from_value(hello.clone()).map_err(|e| {
        ClusterError::InvalidArgument(format!("malformed automatic join request: {e}"))
    })?;
    if hello.v != VERSION {
        return Err(ClusterError::InvalidArgument(format!(
            "automatic join version {} is not supported (this manager speaks {VERSION})",
            hello.v
        )));
    }
    let nonce = hex::decode(&hello.nonce)
        .ok()
        .filter(|n| n.len() == 32)
        .ok_or_else(|| ClusterError::InvalidArgument("malformed automatic join nonce".into()))?;
    let proof = hex::decode(&hello.proof).unwrap_or_default();
    if hmac::verify(&keys.hello, &hello_msg(&nonce, hello.role), &proof).is_err() {
        return Err(ClusterError::PermissionDenied(WRONG_SECRET.into()));
    }
    let root = RootCa::from_pem(&cluster.ca_cert, None)
        .map_err(|e| ClusterError::internal("the cluster's root CA", e))?;
    let token = match hello.role {
        Role::Manager => &cluster.manager_token,
        Role::Worker => &cluster.worker_token,
    };
    let sealed = ca::seal(&keys.seal, token.as_bytes());
    let proof = hmac::sign(
        &keys.offer,
        &offer_msg(&nonce, hello.role, root.cert_der(), &sealed),
    );
    let offer = Offer {
        v: VERSION,
        ca_cert: root.cert_pem().to_owned(),
        token: base64::engine::general_purpose::STANDARD.encode(&sealed),
        proof: hex::encode(proof.as_ref()),
    };
    serde_json::to_value(offer).map_err(|e| ClusterError::internal("encode offer", e))
}

/// The joiner's side: checks an offer made for `nonce` and returns the join token, which
/// names the CA the offer proved.
pub fn accept(keys: &Keys, nonce: &[u8], role: Role, offer: &Value) -> ClusterResult<String> {
    let bad = |why: &str| {
        ClusterError::PermissionDenied(format!(
            "the manager's answer does not prove it knows the cluster secret ({why}): not joining through it"
        ))
    };
    let offer: Offer = serde_json::from_value(offer.clone()).map_err(|_| bad("malformed"))?;
    let root = RootCa::from_pem(&offer.ca_cert, None).map_err(|_| bad("no CA"))?;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&offer.token)
        .map_err(|_| bad("malformed token"))?;
    let proof = hex::decode(&offer.proof).unwrap_or_default();
    hmac::verify(
        &keys.offer,
        &offer_msg(nonce, role, root.cert_der(), &sealed),
        &proof,
    )
    .map_err(|_| bad("wrong proof"))?;
    let token = ca::open(&keys.seal, &sealed).map_err(|_| bad("token does not open"))?;
    let token = String::from_utf8(token).map_err(|_| bad("token"))?;
    let parsed = JoinToken::parse(&token).map_err(|_| bad("token"))?;
    if !parsed.matches_ca(root.cert_der()) {
        return Err(bad("the token names another CA"));
    }
    Ok(token)
}

/// Answers automatic joins on this node's managers.
struct Responder {
    keys: Arc<Keys>,
}

impl AutoJoinResponder for Responder {
    fn answer(
        &self,
        hello: &Value,
        cluster: &Cluster,
        peer: Option<SocketAddr>,
    ) -> ClusterResult<Value> {
        let r = answer(&self.keys, hello, cluster);
        let peer = peer.map(|p| p.to_string()).unwrap_or_default();
        match &r {
            Ok(_) => {
                tracing::info!(peer = %peer, "automatic join: cluster secret verified, join token handed out")
            }
            Err(e) => tracing::warn!(peer = %peer, error = %e, "automatic join refused"),
        }
        r
    }
}

/// Sets up automatic joining on `backend`'s swarm: managers answer joiners from now on,
/// and, once `restore` has run, [`run`] inits or joins.
pub(super) fn install(backend: &ClusterBackend, keys: Arc<Keys>) {
    backend.swarm.set_auto_join(Arc::new(Responder { keys }));
}

/// One round's outcome.
enum Round {
    Done(&'static str),
    Retry(String),
}

/// Inits or joins, retrying until this node is in a swarm. Does nothing on a node that is
/// already in one (a restart), or that gets into one by hand meanwhile.
pub(super) async fn run(backend: ClusterBackend, cfg: AutoJoinConfig, keys: Arc<Keys>) {
    if backend.swarm.status().active {
        tracing::info!("cluster: this node is already in a swarm; nothing to join");
        return;
    }
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0u64;
    loop {
        if backend.swarm.status().active {
            return;
        }
        attempt += 1;
        match round(&backend, &cfg, &keys).await {
            Round::Done(what) => {
                tracing::info!(role = cfg.role.as_str(), attempt, "cluster: {what}");
                return;
            }
            Round::Retry(why) => {
                tracing::warn!(attempt, retry_in = ?backoff, "cluster: not in a swarm yet: {why}");
            }
        }
        // ±25 % so that nodes started together do not knock in step.
        let jitter = rand::rng().next_u64() % (backoff.as_millis() as u64 / 2 + 1);
        tokio::time::sleep(backoff * 3 / 4 + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn round(backend: &ClusterBackend, cfg: &AutoJoinConfig, keys: &Keys) -> Round {
    let listen = match addr::listen(&cfg.listen_addr) {
        Ok(l) => l,
        Err(e) => return Round::Retry(format!("listen address: {e}")),
    };
    let advertise = match addr::advertise(&cfg.advertise_addr, listen) {
        Ok(a) => a,
        Err(e) => return Round::Retry(format!("advertise address: {e}")),
    };
    let mut managers = Vec::new();
    let mut problems = Vec::new();
    for (i, m) in cfg.managers.iter().enumerate() {
        match addr::remote(m.trim()).await {
            Ok(a) => managers.push((i, m.trim().to_owned(), a)),
            Err(e) => problems.push(format!("{m}: {e}")),
        }
    }
    let me = |a: &SocketAddr| a.ip() == advertise.ip();
    let first =
        cfg.role == Role::Manager && managers.first().is_some_and(|(i, _, a)| *i == 0 && me(a));
    let mut wrong_secret = false;
    for (_, name, a) in managers.iter().filter(|(_, _, a)| !me(a)) {
        match ask(*a, keys, cfg.role).await {
            Ok(token) => {
                let req = JoinRequest {
                    listen_addr: listen.to_string(),
                    advertise_addr: advertise.to_string(),
                    remote_addrs: vec![a.to_string()],
                    join_token: token,
                    availability: "active".into(),
                    ..Default::default()
                };
                return match backend.join(req).await {
                    Ok(()) => Round::Done("joined the swarm"),
                    Err(e) => Round::Retry(format!("join through {name}: {}", e.message)),
                };
            }
            Err(ClusterError::PermissionDenied(m)) => {
                tracing::error!(manager = %name, "cluster: join refused: {m}");
                wrong_secret = true;
                problems.push(format!("{name}: {m}"));
            }
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    if first && !wrong_secret {
        let req = InitRequest {
            listen_addr: listen.to_string(),
            advertise_addr: advertise.to_string(),
            availability: "active".into(),
            spec: serde_json::json!({}),
            ..Default::default()
        };
        return match backend.init(req).await {
            Ok(_) => Round::Done(
                "no listed manager runs a cluster: initialised one (first listed manager)",
            ),
            Err(e) => Round::Retry(format!("init: {}", e.message)),
        };
    }
    if problems.is_empty() {
        problems.push("no other manager is listed".into());
    }
    Round::Retry(problems.join("; "))
}

/// Asks the manager at `addr` for the join token of `role`, proving the secret; checks the
/// answer proves it too.
async fn ask(addr: SocketAddr, keys: &Keys, role: Role) -> ClusterResult<String> {
    let (hello, nonce) = Hello::new(keys, role);
    let hello = serde_json::to_value(hello).map_err(|e| ClusterError::internal("encode", e))?;
    let client = ClusterClient::new(addr, unverified_tls());
    match client.call(&Request::AutoJoin(hello)).await? {
        Reply::AutoJoin(offer) => accept(keys, &nonce, role, &offer),
        _ => Err(ClusterError::Internal(
            "unexpected reply to an automatic join".into(),
        )),
    }
}

/// TLS for the first exchange only: the joiner does not know the CA yet, so it cannot
/// verify the server; the answer proves itself (the offer's HMAC), and the join that
/// follows is pinned to the CA so proven.
fn unverified_tls() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(cfg)
}

#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Cluster {
        let root = RootCa::generate().expect("root");
        Cluster {
            id: "c".into(),
            meta: Default::default(),
            worker_token: ca::new_token(&root),
            manager_token: ca::new_token(&root),
            ca_cert: root.cert_pem().to_owned(),
            ca_key: String::new(),
            spec: Default::default(),
            default_addr_pool: Vec::new(),
            subnet_size: 24,
            data_path_port: 4789,
            unlock_key: None,
            root_rotation: None,
        }
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    #[test]
    fn the_right_secret_gets_the_roles_token() {
        let keys = Keys::derive(SECRET);
        let c = cluster();
        for (role, want) in [
            (Role::Worker, &c.worker_token),
            (Role::Manager, &c.manager_token),
        ] {
            let (hello, nonce) = Hello::new(&keys, role);
            let offer =
                answer(&keys, &serde_json::to_value(hello).expect("json"), &c).expect("answer");
            assert_eq!(&accept(&keys, &nonce, role, &offer).expect("accept"), want);
        }
    }

    #[test]
    fn a_wrong_secret_is_refused_by_the_manager() {
        let c = cluster();
        let (hello, _) = Hello::new(&Keys::derive(&format!("{SECRET}-other")), Role::Worker);
        let err = answer(
            &Keys::derive(SECRET),
            &serde_json::to_value(hello).expect("json"),
            &c,
        )
        .expect_err("refused");
        assert_eq!(err, ClusterError::PermissionDenied(WRONG_SECRET.into()));
    }

    #[test]
    fn a_manager_without_the_secret_cannot_make_an_offer() {
        let keys = Keys::derive(SECRET);
        let c = cluster();
        let (hello, nonce) = Hello::new(&keys, Role::Worker);
        let hello = serde_json::to_value(hello).expect("json");
        // An impostor with another secret (it cannot check the hello, answers anyway).
        let impostor = Keys::derive(&format!("{SECRET}-impostor"));
        let mut forged = answer(&keys, &hello, &c).expect("genuine");
        let fake = answer(
            &impostor,
            &serde_json::to_value(Hello::new(&impostor, Role::Worker).0).expect("json"),
            &cluster(),
        )
        .expect("fake");
        assert!(accept(&keys, &nonce, Role::Worker, &fake).is_err());
        // The genuine offer with another CA swapped in fails its proof.
        forged["ca_cert"] = cluster().ca_cert.into();
        assert!(accept(&keys, &nonce, Role::Worker, &forged).is_err());
        // A genuine offer made for another nonce (a replay) fails too.
        let (_, other_nonce) = Hello::new(&keys, Role::Worker);
        let genuine = answer(&keys, &hello, &c).expect("genuine");
        assert!(accept(&keys, &other_nonce, Role::Worker, &genuine).is_err());
        assert!(accept(&keys, &nonce, Role::Manager, &genuine).is_err());
        assert!(accept(&keys, &nonce, Role::Worker, &genuine).is_ok());
    }

    #[test]
    fn short_secrets_and_no_managers_are_refused() {
        let mut cfg = AutoJoinConfig {
            secret: "short".into(),
            role: Role::Worker,
            managers: vec!["10.0.0.1".into()],
            advertise_addr: String::new(),
            listen_addr: String::new(),
        };
        assert!(cfg.validate().expect_err("short").contains("at least 32"));
        cfg.secret = SECRET.into();
        assert!(cfg.validate().is_ok());
        assert!(!format!("{cfg:?}").contains(SECRET));
        cfg.managers.clear();
        assert!(cfg.validate().is_err());
    }
}
