//! rustls configurations for the control plane's mutual TLS, all on the `ring` provider
//! passed explicitly, all speaking ALPN `h2` (tonic runs over HTTP/2).
//!
//! - [`server_config`]: managers present `[leaf, root]`; a client certificate is optional
//!   (a joining node has none) but must chain to the root when presented.
//! - [`client_config`]: trusts only the cluster root, presents the node certificate.
//! - [`pinned_client_config`]: for a node joining with a token and no CA yet; trusts a
//!   server only if its chain carries the root whose digest the token names, and hands
//!   that root back through [`PinnedRoot`].

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use super::{der, sha256_hex, CaError, JoinToken, NodeCert, MANAGER_SERVER_NAME};

/// ALPN for HTTP/2.
const ALPN_H2: &[u8] = b"h2";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn manager_name() -> ServerName<'static> {
    ServerName::try_from(MANAGER_SERVER_NAME).expect("swarm-manager is a valid dns name")
}

fn tls_err(what: &'static str) -> impl FnOnce(rustls::Error) -> CaError {
    move |source| CaError::Tls { what, source }
}

/// Every certificate of a trust bundle (one root, or old and new during a rotation).
fn trust_store(trust_pem: &str, what: &'static str) -> Result<RootCertStore, CaError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(trust_pem.as_bytes()) {
        let cert = cert.map_err(|e| CaError::InvalidPem {
            what: "ca certificate",
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(tls_err(what))?;
    }
    if roots.is_empty() {
        return Err(CaError::InvalidPem {
            what: "ca certificate",
            reason: "no certificate found".into(),
        });
    }
    Ok(roots)
}

/// The server side of the control plane's TLS, for a manager holding `node` and trusting
/// the roots in `trust_pem` (old and new during a rotation).
///
/// The manager presents its leaf, its intermediates (the cross-signed new root during a
/// rotation) and every root it trusts, so a joining node finds the root its token names
/// in the chain whichever side of a rotation the token is from.
pub fn server_config(trust_pem: &str, node: &NodeCert) -> Result<Arc<ServerConfig>, CaError> {
    let provider = provider();
    let roots = trust_store(trust_pem, "server")?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|source| CaError::Verifier { source })?;
    let mut chain = node.chain_der()?;
    for root in CertificateDer::pem_slice_iter(trust_pem.as_bytes()).flatten() {
        if !chain.contains(&root) {
            chain.push(root);
        }
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err("server"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, node.key_der()?)
        .map_err(tls_err("server"))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The client side, trusting only the root(s) in `root_pem` (every certificate in it, so
/// old and new roots can both be trusted during a rotation) and presenting `node` (with
/// its intermediates) if given.
pub fn client_config(
    root_pem: &str,
    node: Option<&NodeCert>,
) -> Result<Arc<ClientConfig>, CaError> {
    let roots = trust_store(root_pem, "client")?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err("client"))?
        .with_root_certificates(roots);
    let mut config = match node {
        Some(node) => builder
            .with_client_auth_cert(node.chain_der()?, node.key_der()?)
            .map_err(tls_err("client"))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The root CA a [`pinned_client_config`] learned from a manager.
///
/// It is set once a server's chain has passed the pin check: it is then always the root
/// whose digest the token names. Store it only once the call over that connection has
/// succeeded.
#[derive(Debug, Clone, Default)]
pub struct PinnedRoot(Arc<Mutex<Option<CertificateDer<'static>>>>);

impl PinnedRoot {
    /// The captured root as DER.
    pub fn der(&self) -> Option<CertificateDer<'static>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The captured root as PEM, ready for [`RootCa::from_pem`](super::RootCa::from_pem).
    pub fn pem(&self) -> Option<String> {
        self.der().map(|der| der::to_pem("CERTIFICATE", &der))
    }

    fn set(&self, der: CertificateDer<'static>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(der);
    }
}

/// A client configuration for `swarm join`, before the joiner knows the CA: the server
/// must present a chain holding the root named by `token`, and its leaf must verify
/// against that root for [`MANAGER_SERVER_NAME`]. No client certificate is presented.
pub fn pinned_client_config(token: &JoinToken) -> (Arc<ClientConfig>, PinnedRoot) {
    let pinned = PinnedRoot::default();
    let provider = provider();
    let verifier = PinnedRootVerifier {
        token: token.clone(),
        provider: provider.clone(),
        captured: pinned.clone(),
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    (Arc::new(config), pinned)
}

/// SHA-256 of the leaf (first) certificate, lowercase hex.
pub fn peer_fingerprint(certs: &[CertificateDer<'_>]) -> Option<String> {
    certs.first().map(|leaf| sha256_hex(leaf))
}

/// Accepts a server whose chain carries the token's root and whose leaf chains to it.
#[derive(Debug)]
struct PinnedRootVerifier {
    token: JoinToken,
    provider: Arc<CryptoProvider>,
    captured: PinnedRoot,
}

impl ServerCertVerifier for PinnedRootVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let root = std::iter::once(end_entity)
            .chain(intermediates)
            .find(|cert| self.token.matches_ca(cert))
            .ok_or_else(|| {
                rustls::Error::General(
                    "the server's certificate chain does not hold the ca named by the join token"
                        .into(),
                )
            })?
            .clone()
            .into_owned();
        let mut roots = RootCertStore::empty();
        roots.add(root.clone())?;
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(format!("pinned ca: {e}")))?;
        // Whatever name the caller dialled, only a manager certificate will do.
        let verified = webpki.verify_server_cert(
            end_entity,
            intermediates,
            &manager_name(),
            ocsp_response,
            now,
        )?;
        self.captured.set(root);
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{new_token, Role, RootCa, DEFAULT_NODE_CERT_VALIDITY};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    struct Cluster {
        root: RootCa,
        manager: NodeCert,
        worker: NodeCert,
    }

    fn cluster() -> Cluster {
        let root = RootCa::generate().expect("root");
        let manager = root
            .issue(
                "mgr1",
                Role::Manager,
                "cluster1",
                DEFAULT_NODE_CERT_VALIDITY,
            )
            .expect("manager");
        let worker = root
            .issue("wrk1", Role::Worker, "cluster1", DEFAULT_NODE_CERT_VALIDITY)
            .expect("worker");
        Cluster {
            root,
            manager,
            worker,
        }
    }

    /// Server-side result: the fingerprint of the client's certificate, if any.
    type Accepted = Result<Option<String>, std::io::Error>;

    /// Runs a real TLS handshake over an in-memory pipe; returns what each side saw.
    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
    ) -> (Accepted, Result<Option<Vec<u8>>, std::io::Error>) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let acceptor = TlsAcceptor::from(server);
        let connector = TlsConnector::from(client);
        let (accepted, connected) = tokio::join!(
            acceptor.accept(server_io),
            connector.connect(manager_name(), client_io)
        );
        let accepted = accepted
            .map(|tls| peer_fingerprint(tls.get_ref().1.peer_certificates().unwrap_or(&[])));
        let connected = connected.map(|tls| tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
        (accepted, connected)
    }

    fn now() -> UnixTime {
        UnixTime::now()
    }

    #[test]
    fn issued_chain_verifies_for_the_role_names() {
        let c = cluster();
        let mut roots = RootCertStore::empty();
        roots.add(c.root.cert_der().clone()).expect("root");
        let roots = Arc::new(roots);
        let servers = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .expect("server verifier");
        let clients = WebPkiClientVerifier::builder_with_provider(roots, provider())
            .build()
            .expect("client verifier");
        let name = |n: &'static str| ServerName::try_from(n).expect("name");
        let mgr = c.manager.cert_der().expect("der");
        let wrk = c.worker.cert_der().expect("der");

        servers
            .verify_server_cert(&mgr, &[], &name("swarm-manager"), &[], now())
            .expect("manager serves as swarm-manager");
        servers
            .verify_server_cert(&mgr, &[], &name("mgr1"), &[], now())
            .expect("manager serves under its node id");
        let err = servers
            .verify_server_cert(&wrk, &[], &name("swarm-manager"), &[], now())
            .expect_err("a worker is no manager");
        assert!(format!("{err:?}").contains("NotValidForName"), "{err:?}");
        servers
            .verify_server_cert(&wrk, &[], &name("swarm-worker"), &[], now())
            .expect("worker name");
        clients
            .verify_client_cert(&mgr, &[], now())
            .expect("manager as client");
        clients
            .verify_client_cert(&wrk, &[], now())
            .expect("worker as client");

        let other = cluster();
        let foreign = other.manager.cert_der().expect("der");
        assert!(servers
            .verify_server_cert(&foreign, &[], &name("swarm-manager"), &[], now())
            .is_err());
        assert!(clients.verify_client_cert(&foreign, &[], now()).is_err());
    }

    #[test]
    fn issue_refuses_bad_input() {
        let c = cluster();
        let short = std::time::Duration::from_secs(3599);
        let err = c
            .root
            .issue("n", Role::Worker, "c", short)
            .expect_err("short");
        assert!(err.to_string().contains("below the minimum of 1h"), "{err}");
        let err = c
            .root
            .issue("Bad_Id", Role::Worker, "c", DEFAULT_NODE_CERT_VALIDITY)
            .expect_err("bad id");
        assert!(err.to_string().contains("\"Bad_Id\""), "{err}");
        let public = RootCa::from_pem(c.root.cert_pem(), None).expect("cert only");
        assert!(public.key_pem().is_none());
        assert_eq!(public.digest(), c.root.digest());
        let err = public
            .issue("n", Role::Worker, "c", DEFAULT_NODE_CERT_VALIDITY)
            .expect_err("no key");
        assert!(matches!(err, CaError::NoCaKey), "{err}");
    }

    #[test]
    fn root_round_trips_through_pem_and_can_still_issue() {
        let c = cluster();
        let key = c.root.key_pem().expect("key").to_owned();
        let reloaded = RootCa::from_pem(c.root.cert_pem(), Some(&key)).expect("reload");
        assert_eq!(reloaded.cert_der(), c.root.cert_der());
        assert_eq!(reloaded.digest(), sha256_hex(c.root.cert_der()));
        assert_eq!(reloaded.digest().len(), 64);
        let node = reloaded
            .issue("n2", Role::Manager, "cluster1", DEFAULT_NODE_CERT_VALIDITY)
            .expect("issue after reload");
        let mut roots = RootCertStore::empty();
        roots.add(c.root.cert_der().clone()).expect("root");
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .expect("verifier")
            .verify_server_cert(
                &node.cert_der().expect("der"),
                &[],
                &manager_name(),
                &[],
                now(),
            )
            .expect("leaf from the reloaded root verifies against the original");

        let other = RootCa::generate().expect("other");
        let err = RootCa::from_pem(c.root.cert_pem(), other.key_pem()).expect_err("wrong key");
        assert!(matches!(err, CaError::KeyMismatch { .. }), "{err}");
        let err = RootCa::from_pem(&c.manager.cert_pem, None).expect_err("leaf is no ca");
        assert!(err.to_string().contains("not a ca"), "{err}");
    }

    #[test]
    fn leaves_never_outlive_the_root() {
        let c = cluster();
        let long = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
        let node = c.root.issue("n", Role::Worker, "c", long).expect("issue");
        assert_eq!(node.not_after, c.root.not_after());
    }

    #[tokio::test]
    async fn node_with_cert_is_seen_by_fingerprint() {
        let c = cluster();
        let server = server_config(c.root.cert_pem(), &c.manager).expect("server");
        let client = client_config(c.root.cert_pem(), Some(&c.worker)).expect("client");
        let (accepted, connected) = handshake(server, client).await;
        assert_eq!(
            accepted.expect("server side"),
            Some(c.worker.fingerprint.clone())
        );
        assert_eq!(connected.expect("client side"), Some(b"h2".to_vec()));
    }

    #[tokio::test]
    async fn joining_client_without_cert_is_accepted() {
        let c = cluster();
        let server = server_config(c.root.cert_pem(), &c.manager).expect("server");
        let client = client_config(c.root.cert_pem(), None).expect("client");
        let (accepted, connected) = handshake(server, client).await;
        assert_eq!(accepted.expect("server side"), None);
        connected.expect("client side");
    }

    #[tokio::test]
    async fn client_cert_from_another_ca_is_refused() {
        let c = cluster();
        let other = cluster();
        let server = server_config(c.root.cert_pem(), &c.manager).expect("server");
        // The intruder trusts our root (it is public) but its own certificate is foreign.
        let client = client_config(c.root.cert_pem(), Some(&other.worker)).expect("client");
        let (accepted, _) = handshake(server, client).await;
        let err = accepted.expect_err("foreign client certificate");
        // Every generated root is named CN=swarm-ca, so the foreign leaf's issuer is
        // found by name and its signature is what fails.
        assert!(
            err.to_string().contains("invalid peer certificate"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn worker_cannot_serve_as_manager() {
        let c = cluster();
        let server = server_config(c.root.cert_pem(), &c.worker).expect("server");
        let client = client_config(c.root.cert_pem(), Some(&c.manager)).expect("client");
        let (_, connected) = handshake(server, client).await;
        let err = connected.expect_err("worker poses as manager");
        assert!(err.to_string().contains("not valid for name"), "{err}");
    }

    #[tokio::test]
    async fn client_refuses_a_server_of_another_cluster() {
        let c = cluster();
        let other = cluster();
        let server = server_config(other.root.cert_pem(), &other.manager).expect("server");
        let client = client_config(c.root.cert_pem(), None).expect("client");
        let (_, connected) = handshake(server, client).await;
        assert!(connected.is_err());
    }

    #[tokio::test]
    async fn pinned_config_learns_the_right_ca() {
        let c = cluster();
        let token = JoinToken::parse(&new_token(&c.root)).expect("token");
        let (client, pinned) = pinned_client_config(&token);
        assert!(pinned.der().is_none());
        let server = server_config(c.root.cert_pem(), &c.manager).expect("server");
        let (accepted, connected) = handshake(server, client).await;
        assert_eq!(accepted.expect("server side"), None);
        connected.expect("client side");
        assert_eq!(pinned.der().as_ref(), Some(c.root.cert_der()));
        let learned = RootCa::from_pem(&pinned.pem().expect("pem"), None).expect("root");
        assert_eq!(learned.digest(), c.root.digest());
    }

    #[tokio::test]
    async fn pinned_config_refuses_another_ca() {
        let c = cluster();
        let other = cluster();
        let token = JoinToken::parse(&new_token(&other.root)).expect("token");
        let (client, pinned) = pinned_client_config(&token);
        let server = server_config(c.root.cert_pem(), &c.manager).expect("server");
        let (_, connected) = handshake(server, client).await;
        let err = connected.expect_err("wrong ca");
        assert!(err.to_string().contains("does not hold the ca"), "{err}");
        assert!(pinned.der().is_none());
    }

    #[tokio::test]
    async fn pinned_config_refuses_a_worker_of_the_right_ca() {
        let c = cluster();
        let token = JoinToken::parse(&new_token(&c.root)).expect("token");
        let (client, pinned) = pinned_client_config(&token);
        let server = server_config(c.root.cert_pem(), &c.worker).expect("server");
        let (_, connected) = handshake(server, client).await;
        assert!(connected.is_err());
        assert!(pinned.der().is_none());
    }

    /// A leaf of `root` for `node_id`, followed by `chain` (PEM).
    fn leaf(root: &RootCa, node_id: &str, role: Role, chain: &str) -> NodeCert {
        let csr = crate::ca::Csr::generate().expect("csr");
        let mut pem = root
            .sign(
                &csr.csr_pem,
                node_id,
                role,
                "cluster1",
                DEFAULT_NODE_CERT_VALIDITY,
            )
            .expect("sign");
        pem.push_str(chain);
        NodeCert::from_pem(&pem, &csr.key_pem).expect("leaf")
    }

    #[tokio::test]
    async fn during_a_rotation_old_and_new_certificates_meet() {
        let old = RootCa::generate().expect("old");
        let new = RootCa::generate().expect("new");
        let crossed = old.cross_sign(&new).expect("cross-sign");
        let both = format!("{}{}", old.cert_pem(), new.cert_pem());
        let old_mgr = leaf(&old, "m1", Role::Manager, "");
        let old_wrk = leaf(&old, "w1", Role::Worker, "");
        let new_mgr = leaf(&new, "m2", Role::Manager, &crossed);
        let new_wrk = leaf(&new, "w2", Role::Worker, &crossed);
        assert_eq!(new_mgr.chain_der().expect("chain").len(), 2);

        // A node that knows nothing of the rotation (trusts the old root only) and a node
        // that trusts both, in every combination of old and new certificates.
        for (trust, server, client) in [
            (old.cert_pem(), &new_mgr, &old_wrk),
            (old.cert_pem(), &old_mgr, &new_wrk),
            (old.cert_pem(), &new_mgr, &new_wrk),
            (both.as_str(), &old_mgr, &new_wrk),
            (both.as_str(), &new_mgr, &old_wrk),
        ] {
            let srv = server_config(trust, server).expect("server");
            let cli = client_config(trust, Some(client)).expect("client");
            let (accepted, connected) = handshake(srv, cli).await;
            assert_eq!(
                accepted.expect("server side"),
                Some(client.fingerprint.clone())
            );
            connected.expect("client side");
        }

        // After the rotation only the new root is trusted: old certificates are refused
        // both ways, new ones (still carrying the cross-signed certificate) pass.
        let srv = server_config(new.cert_pem(), &new_mgr).expect("server");
        let cli = client_config(new.cert_pem(), Some(&old_wrk)).expect("client");
        let (accepted, _) = handshake(srv.clone(), cli).await;
        assert!(accepted.is_err(), "an old-root client passed");
        let cli = client_config(new.cert_pem(), Some(&new_wrk)).expect("client");
        let (accepted, connected) = handshake(srv, cli).await;
        accepted.expect("server side");
        connected.expect("client side");
        let srv = server_config(old.cert_pem(), &old_mgr).expect("server");
        let cli = client_config(new.cert_pem(), None).expect("client");
        let (_, connected) = handshake(srv, cli).await;
        assert!(connected.is_err(), "an old-root server passed");

        // A joiner pins whichever root its token names in the manager's chain.
        for (trust, token_root) in [(both.as_str(), &old), (new.cert_pem(), &new)] {
            let token = JoinToken::parse(&new_token(token_root)).expect("token");
            let (cli, pinned) = pinned_client_config(&token);
            let srv = server_config(trust, &new_mgr).expect("server");
            let (_, connected) = handshake(srv, cli).await;
            connected.expect("joiner");
            assert_eq!(pinned.der().as_ref(), Some(token_root.cert_der()));
        }
        let token = JoinToken::parse(&new_token(&old)).expect("token");
        let (cli, _) = pinned_client_config(&token);
        let srv = server_config(new.cert_pem(), &new_mgr).expect("server");
        let (_, connected) = handshake(srv, cli).await;
        assert!(connected.is_err(), "a token of the dropped root still pins");
    }

    #[test]
    fn peer_fingerprint_is_the_leaf_digest() {
        let c = cluster();
        let chain = [
            c.manager.cert_der().expect("der"),
            c.root.cert_der().clone(),
        ];
        assert_eq!(
            peer_fingerprint(&chain),
            Some(c.manager.fingerprint.clone())
        );
        assert_eq!(peer_fingerprint(&[]), None);
    }
}
