//! A node's certificate and key, as issued by [`RootCa::issue`](super::RootCa::issue) and
//! stored on the node; knows when it is due for renewal.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use rcgen::PublicKeyData as _;

use super::der;
use super::root::parse_key;
use super::{sha256_hex, CaError, Role};

const WHAT: &str = "node certificate";

/// A node certificate (leaf) with its private key and the facts read from it.
///
/// Build it with [`NodeCert::from_pem`] (or `issue`), which derives every field from the
/// PEM, so the fields always agree with the certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeCert {
    /// The leaf, then any intermediates it is presented with (during a root rotation, the
    /// new root cross-signed by the old one).
    pub cert_pem: String,
    /// PKCS#8 PEM of the node's private key.
    pub key_pem: String,
    /// SHA-256 of the leaf DER, lowercase hex: the node's identity on the wire.
    pub fingerprint: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// The certificate's CN.
    pub node_id: String,
    /// From the certificate's OU.
    pub role: Role,
    /// The certificate's O.
    pub cluster_id: String,
}

impl std::fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCert")
            .field("node_id", &self.node_id)
            .field("role", &self.role)
            .field("cluster_id", &self.cluster_id)
            .field("fingerprint", &self.fingerprint)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl NodeCert {
    /// Loads a node certificate and its key, checking that they belong together and that
    /// the certificate names a node (CN), a role (OU) and a cluster (O).
    ///
    /// This does not check the certificate against a root; TLS does that on every use.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<NodeCert, CaError> {
        let chain = parse_chain_pem(cert_pem, WHAT)?;
        let der = chain[0].clone();
        let invalid = |reason: String| CaError::InvalidCertificate { what: WHAT, reason };
        let info = der::parse_certificate(&der).map_err(|e| invalid(e.0.to_string()))?;
        let key = parse_key(key_pem, "node key")?;
        if key.subject_public_key_info() != info.spki {
            return Err(CaError::KeyMismatch { what: "node" });
        }
        let attrs = der::parse_name(info.subject).map_err(|e| invalid(e.0.to_string()))?;
        let attr = |arc: u64| {
            attrs
                .iter()
                .find(|a| a.oid == [2, 5, 4, arc])
                .and_then(|a| std::str::from_utf8(a.value).ok())
                .map(str::to_owned)
        };
        // 2.5.4.3 commonName, 2.5.4.10 organizationName, 2.5.4.11 organizationalUnitName
        let node_id = attr(3).ok_or_else(|| invalid("no common name (node id)".into()))?;
        let cluster_id = attr(10).ok_or_else(|| invalid("no organization (cluster id)".into()))?;
        let role = attr(11)
            .as_deref()
            .and_then(Role::from_org_unit)
            .ok_or_else(|| {
                invalid("organizational unit is not swarm-manager or swarm-worker".into())
            })?;
        let mut pem = der::to_pem("CERTIFICATE", &der);
        for intermediate in &chain[1..] {
            let ok = der::parse_certificate(intermediate).is_ok_and(|i| i.is_ca);
            if !ok {
                return Err(invalid("a certificate after the leaf is not a ca".into()));
            }
            pem.push_str(&der::to_pem("CERTIFICATE", intermediate));
        }
        Ok(NodeCert {
            cert_pem: pem,
            key_pem: key_pem.to_owned(),
            fingerprint: sha256_hex(&der),
            not_before: info.not_before,
            not_after: info.not_after,
            node_id,
            role,
            cluster_id,
        })
    }

    /// The leaf certificate as DER.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, CaError> {
        parse_cert_pem(&self.cert_pem, WHAT)
    }

    /// The leaf and its intermediates as DER, as presented in a TLS handshake.
    pub fn chain_der(&self) -> Result<Vec<CertificateDer<'static>>, CaError> {
        parse_chain_pem(&self.cert_pem, WHAT)
    }

    /// The subject and public key (SubjectPublicKeyInfo), both DER, of the CA that issued
    /// this certificate: Docker's `TLSInfo.CertIssuerSubject` and `CertIssuerPublicKey`.
    ///
    /// The issuer is looked for among the certificate's intermediates, then among the roots
    /// of `trust_pem`: a CA whose subject is the leaf's issuer and, when both carry key
    /// identifiers, whose subject key identifier is the leaf's authority key identifier
    /// (old and new roots of a rotation share their name, never their key).
    pub fn issuer_info(&self, trust_pem: &str) -> Option<(Vec<u8>, Vec<u8>)> {
        let chain = self.chain_der().ok()?;
        let leaf = der::parse_certificate(&chain[0]).ok()?;
        let roots = parse_chain_pem(trust_pem, "ca certificate").unwrap_or_default();
        chain[1..].iter().chain(roots.iter()).find_map(|c| {
            let ca = der::parse_certificate(c).ok()?;
            let key_ok = match (leaf.authority_key_id, ca.subject_key_id) {
                (Some(a), Some(s)) => a == s,
                _ => true,
            };
            (ca.subject == leaf.issuer && key_ok).then(|| (ca.subject.to_vec(), ca.spki.to_vec()))
        })
    }

    /// The private key as DER, for rustls.
    pub(crate) fn key_der(&self) -> Result<PrivateKeyDer<'static>, CaError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| CaError::InvalidPem {
            what: "node key",
            reason: e.to_string(),
        })
    }

    /// When this certificate should be renewed, unix seconds: a point 50–80% of the way
    /// through its lifetime (as swarmkit does, so a cluster's nodes don't all renew at
    /// once). The point is derived from the fingerprint, so it survives restarts.
    pub fn renew_at(&self) -> i64 {
        let lifetime = i128::from(self.not_after - self.not_before).max(0);
        let seed = self
            .fingerprint
            .get(..16)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        let permille = 500 + i128::from(seed % 301);
        let offset = lifetime * permille / 1000;
        i64::try_from(i128::from(self.not_before) + offset).unwrap_or(self.not_after)
    }

    /// When the certificate was issued, unix seconds (its `not_before` is set back by the
    /// allowed clock skew).
    pub fn issued_at(&self) -> i64 {
        let skew = i64::try_from(super::root::CLOCK_SKEW.as_secs()).unwrap_or(0);
        self.not_before.saturating_add(skew)
    }

    /// Whether `now` (unix seconds) is past [`renew_at`](Self::renew_at).
    pub fn renew_due(&self, now: i64) -> bool {
        now >= self.renew_at()
    }
}

/// The node id (CN) a leaf certificate names, if it names one.
pub(super) fn leaf_node_id(der: &[u8]) -> Option<String> {
    let info = der::parse_certificate(der).ok()?;
    let attrs = der::parse_name(info.subject).ok()?;
    attrs
        .iter()
        .find(|a| a.oid == [2, 5, 4, 3])
        .and_then(|a| std::str::from_utf8(a.value).ok())
        .map(str::to_owned)
}

/// The fingerprint (SHA-256 of the DER, lowercase hex) of a certificate in PEM.
pub fn fingerprint_of(cert_pem: &str) -> Result<String, CaError> {
    Ok(sha256_hex(&parse_cert_pem(cert_pem, WHAT)?))
}

/// Every certificate of a PEM text, in order; at least one.
pub(super) fn parse_chain_pem(
    pem: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError::InvalidPem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CaError::InvalidPem {
            what,
            reason: "no certificate found".into(),
        });
    }
    Ok(certs)
}

pub(super) fn parse_cert_pem(
    pem: &str,
    what: &'static str,
) -> Result<CertificateDer<'static>, CaError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| CaError::InvalidPem {
        what,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ca::{unix_now, RootCa, DEFAULT_NODE_CERT_VALIDITY};

    #[test]
    fn from_pem_reads_back_what_issue_wrote() {
        let root = RootCa::generate().expect("root");
        let node = root
            .issue(
                "node1",
                Role::Worker,
                "cluster-x",
                DEFAULT_NODE_CERT_VALIDITY,
            )
            .expect("issue");
        let again = NodeCert::from_pem(&node.cert_pem, &node.key_pem).expect("reload");
        assert_eq!(again, node);
        assert_eq!(node.node_id, "node1");
        assert_eq!(node.role, Role::Worker);
        assert_eq!(node.cluster_id, "cluster-x");
        assert_eq!(node.fingerprint.len(), 64);
        let now = unix_now();
        assert!((node.not_before - (now - 60)).abs() <= 5, "{node:?}");
        let expected = now + 90 * 24 * 3600;
        assert!((node.not_after - expected).abs() <= 5, "{node:?}");
    }

    #[test]
    fn a_signed_request_certifies_the_requesters_key_under_the_cas_names() {
        let root = RootCa::generate().expect("root");
        // The request asks for names of its own; the CA ignores them.
        let key = rcgen::KeyPair::generate().expect("key");
        let mut asked = rcgen::CertificateParams::new(vec!["swarm-manager".into()]).expect("p");
        asked
            .distinguished_name
            .push(rcgen::DnType::OrganizationalUnitName, "swarm-manager");
        let csr = asked
            .serialize_request(&key)
            .and_then(|r| r.pem())
            .expect("csr");
        let pem = root
            .sign(&csr, "node1", Role::Worker, "c", DEFAULT_NODE_CERT_VALIDITY)
            .expect("sign");
        let node = NodeCert::from_pem(&pem, &key.serialize_pem()).expect("the requester's key");
        assert_eq!(node.role, Role::Worker);
        assert_eq!(node.node_id, "node1");
        assert_eq!(fingerprint_of(&pem).expect("fp"), node.fingerprint);
        assert_eq!(
            leaf_node_id(&node.cert_der().expect("der")).as_deref(),
            Some("node1")
        );
        assert!((node.issued_at() - unix_now()).abs() <= 5);

        let generated = crate::ca::Csr::generate().expect("csr");
        let pem = root
            .sign(
                &generated.csr_pem,
                "n2",
                Role::Manager,
                "c",
                DEFAULT_NODE_CERT_VALIDITY,
            )
            .expect("sign");
        NodeCert::from_pem(&pem, &generated.key_pem).expect("matches its key");

        let mut tampered = generated.csr_pem.into_bytes();
        let mid = tampered.len() / 2;
        tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
        let err = root
            .sign(
                &String::from_utf8(tampered).expect("ascii"),
                "n3",
                Role::Worker,
                "c",
                DEFAULT_NODE_CERT_VALIDITY,
            )
            .expect_err("a request whose signature does not hold");
        assert!(matches!(err, CaError::InvalidCertificate { .. }), "{err}");
    }

    #[test]
    fn from_pem_refuses_a_key_from_another_cert() {
        let root = RootCa::generate().expect("root");
        let a = root
            .issue("a", Role::Worker, "c", DEFAULT_NODE_CERT_VALIDITY)
            .expect("a");
        let b = root
            .issue("b", Role::Worker, "c", DEFAULT_NODE_CERT_VALIDITY)
            .expect("b");
        let err = NodeCert::from_pem(&a.cert_pem, &b.key_pem).expect_err("mismatch");
        assert!(matches!(err, CaError::KeyMismatch { .. }), "{err}");
        let err = NodeCert::from_pem("not pem", &a.key_pem).expect_err("garbage");
        assert!(
            err.to_string().starts_with("invalid node certificate pem"),
            "{err}"
        );
    }

    #[test]
    fn from_pem_refuses_a_ca_certificate_as_a_node() {
        let root = RootCa::generate().expect("root");
        let key = root.key_pem().expect("key").to_owned();
        let err = NodeCert::from_pem(root.cert_pem(), &key).expect_err("root is no node");
        assert!(matches!(err, CaError::InvalidCertificate { .. }), "{err}");
        assert!(
            err.to_string().starts_with("invalid node certificate: "),
            "{err}"
        );
    }

    #[test]
    fn renewal_falls_between_half_and_four_fifths_and_is_stable() {
        let root = RootCa::generate().expect("root");
        let mut points = std::collections::HashSet::new();
        for i in 0..8 {
            let node = root
                .issue(
                    &format!("n{i}"),
                    Role::Manager,
                    "c",
                    Duration::from_secs(100_000),
                )
                .expect("issue");
            let lifetime = node.not_after - node.not_before;
            let at = node.renew_at();
            assert!(at >= node.not_before + lifetime / 2, "{at} {node:?}");
            assert!(at <= node.not_before + lifetime * 8 / 10, "{at} {node:?}");
            assert!(!node.renew_due(node.not_before + lifetime / 2 - 1));
            assert!(!node.renew_due(at - 1));
            assert!(node.renew_due(at));
            assert!(node.renew_due(node.not_after));
            let reloaded = NodeCert::from_pem(&node.cert_pem, &node.key_pem).expect("reload");
            assert_eq!(reloaded.renew_at(), at, "restart agrees");
            points.insert(at - node.not_before);
        }
        assert!(points.len() > 1, "renewal points are spread: {points:?}");
    }
}
