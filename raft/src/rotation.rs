//! Root CA rotation (`swarm ca --rotate [--ca-cert --ca-key]`), as swarmkit does it.
//!
//! ```text
//!  swarm update (ForceRotate+1, or SigningCACert/Key)
//!     └─ plan ──► Cluster.root_rotation = { new root, its key, new root cross-signed by old }
//!  every node, on its next heartbeat: trust [old, new]; its certificate's issuer is not the
//!     new root ──► Renew ──► a leaf from the new key, presented as [leaf, cross-signed]
//!  leader, every 250 ms: every node reports (Description.tls_info) a certificate from the
//!     new root ──► finish: ca_cert/ca_key = new, no rotation, new join tokens
//!  every node, on its next heartbeat: trust [new]
//! ```
//! Invariants: while a rotation is under way the cluster's root (`ca_cert`, what join tokens
//! name) is still the old one and every node trusts both, so a node that has not renewed
//! yet, or was down, still talks to everyone (a leaf from the new key verifies against the
//! old root through the cross-signed certificate). The rotation finishes only when *every*
//! node in the node table holds a certificate from the new root, down nodes included (as
//! swarmkit): a node that never comes back must be removed (`node rm`) for it to finish.

use base64::Engine as _;

use crate::ca::{self, CaError, RootCa};
use crate::error::{ClusterError, ClusterResult};
use crate::objects::{Cluster, ClusterSpec, Node, RootRotation};

/// What a `swarm update` does to the cluster's root.
#[derive(Debug)]
pub enum Plan {
    /// Nothing: the root stays, and a rotation under way goes on.
    Keep,
    /// Start a rotation to this root (replacing one under way).
    Start(Box<RootRotation>),
    /// The desired root is the current one again: a rotation under way is dropped.
    Cancel,
}

/// Decides what an update of the cluster spec to `spec` does to the root CA, and takes the
/// signing key out of `spec` (it is never stored in the spec).
///
/// A rotation starts when `SigningCACert` names a root other than the current one and the
/// one being rotated to (its key must come with it: Berth has no external CAs), or when
/// `ForceRotate` changed without a `SigningCACert` (a generated root).
pub fn plan(cluster: &Cluster, spec: &mut ClusterSpec) -> ClusterResult<Plan> {
    let cert = spec.ca_config.signing_ca_cert.trim().to_owned();
    let key = std::mem::take(&mut spec.ca_config.signing_ca_key);
    let key = key.trim();
    if !key.is_empty() && cert.is_empty() {
        return Err(invalid(
            "if a signing CA key is provided, the signing CA cert must also be provided",
        ));
    }
    let current = RootCa::from_pem(&cluster.ca_cert, Some(&cluster.ca_key))
        .map_err(|e| ClusterError::internal("the cluster's root CA", e))?;
    if cert.is_empty() {
        if spec.ca_config.force_rotate == cluster.spec.ca_config.force_rotate {
            return Ok(Plan::Keep);
        }
        let next =
            RootCa::generate().map_err(|e| ClusterError::internal("generate a root CA", e))?;
        return start(&current, next);
    }
    let next = RootCa::from_pem(&cert, (!key.is_empty()).then_some(key)).map_err(bad_input)?;
    let pending = cluster
        .root_rotation
        .as_ref()
        .and_then(|r| RootCa::from_pem(&r.ca_cert, None).ok());
    let forced = spec.ca_config.force_rotate != cluster.spec.ca_config.force_rotate;
    if next.digest() == current.digest() && !forced {
        return Ok(if pending.is_some() {
            Plan::Cancel
        } else {
            Plan::Keep
        });
    }
    if pending.is_some_and(|p| p.digest() == next.digest()) && !forced {
        return Ok(Plan::Keep);
    }
    if key.is_empty() {
        return Err(invalid(
            "rotating to an external CA is not supported: the signing CA key must be provided with the signing CA cert (--ca-key)",
        ));
    }
    if !next.valid_at(chrono::Utc::now().timestamp()) {
        return Err(invalid(
            "the signing CA cert is not valid now: it has expired or is not yet valid",
        ));
    }
    start(&current, next)
}

fn start(current: &RootCa, next: RootCa) -> ClusterResult<Plan> {
    let cross_signed = current.cross_sign(&next).map_err(bad_input)?;
    Ok(Plan::Start(Box::new(RootRotation {
        ca_cert: next.cert_pem().to_owned(),
        ca_key: next.key_pem().unwrap_or_default().to_owned(),
        cross_signed,
    })))
}

fn invalid(msg: &str) -> ClusterError {
    ClusterError::InvalidArgument(msg.to_owned())
}

/// A bad `--ca-cert`/`--ca-key`, in words that name the flag's value.
fn bad_input(e: CaError) -> ClusterError {
    let msg = match e {
        CaError::KeyMismatch { .. } => {
            "the signing CA key does not match the signing CA cert".to_owned()
        }
        CaError::InvalidPem { what, reason } if what.contains("key") => {
            format!("invalid signing CA key: {reason}")
        }
        CaError::InvalidPem { reason, .. } => format!("invalid signing CA cert: {reason}"),
        CaError::InvalidCertificate { reason, .. } => {
            format!("invalid signing CA cert: {reason}")
        }
        other => format!("invalid signing CA cert or key: {other}"),
    };
    ClusterError::InvalidArgument(msg)
}

/// The cluster object after applying `plan`.
pub fn apply(cluster: &mut Cluster, plan: Plan) {
    match plan {
        Plan::Keep => {}
        Plan::Start(r) => cluster.root_rotation = Some(*r),
        Plan::Cancel => cluster.root_rotation = None,
    }
}

/// The roots nodes trust: the cluster's root, and during a rotation the new one after it.
pub fn trust_bundle(c: &Cluster) -> String {
    let mut pem = c.ca_cert.clone();
    if let Some(r) = &c.root_rotation {
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        pem.push_str(&r.ca_cert);
    }
    pem
}

/// The root new certificates are issued under.
pub fn desired_root(c: &Cluster) -> &str {
    c.root_rotation
        .as_ref()
        .map(|r| r.ca_cert.as_str())
        .unwrap_or(&c.ca_cert)
}

/// The CA that signs node certificates now, and the intermediates (PEM, maybe empty) to
/// hand out after each leaf it signs.
pub fn signer(c: &Cluster) -> Result<(RootCa, String), CaError> {
    match &c.root_rotation {
        Some(r) => Ok((
            RootCa::from_pem(&r.ca_cert, Some(&r.ca_key))?,
            r.cross_signed.clone(),
        )),
        None => Ok((
            RootCa::from_pem(&c.ca_cert, Some(&c.ca_key))?,
            String::new(),
        )),
    }
}

/// A root's subject and public key as base64 DER, as nodes report their issuer.
pub fn issuer_of(root_pem: &str) -> Option<(String, String)> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    RootCa::from_pem(root_pem, None)
        .and_then(|r| r.issuer_info())
        .ok()
        .map(|(s, k)| (b64(&s), b64(&k)))
}

/// Whether `node` reports a certificate issued by the root whose issuer facts are `issuer`.
pub fn holds_cert_from(node: &Node, issuer: &(String, String)) -> bool {
    node.description
        .tls_info
        .as_ref()
        .is_some_and(|t| t.cert_issuer_subject == issuer.0 && t.cert_issuer_public_key == issuer.1)
}

/// The cluster with its rotation finished, when every node holds a certificate from the new
/// root; `None` while some node does not (or when no rotation is under way).
pub fn finished<'a>(c: &Cluster, nodes: impl IntoIterator<Item = &'a Node>) -> Option<Cluster> {
    let r = c.root_rotation.as_ref()?;
    let issuer = issuer_of(&r.ca_cert)?;
    if !nodes.into_iter().all(|n| holds_cert_from(n, &issuer)) {
        return None;
    }
    let root = RootCa::from_pem(&r.ca_cert, None).ok()?;
    let mut done = c.clone();
    done.ca_cert = r.ca_cert.clone();
    done.ca_key = r.ca_key.clone();
    done.root_rotation = None;
    // The tokens name the root by digest: both change (swarmkit makes new secrets too).
    done.worker_token = ca::new_token(&root);
    done.manager_token = ca::new_token(&root);
    Some(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{Availability, Description, NodeTlsInfo, Role};

    fn cluster() -> Cluster {
        let root = RootCa::generate().expect("root");
        Cluster {
            id: "c1".into(),
            meta: Default::default(),
            spec: ClusterSpec::default(),
            ca_cert: root.cert_pem().to_owned(),
            ca_key: root.key_pem().expect("key").to_owned(),
            worker_token: ca::new_token(&root),
            manager_token: ca::new_token(&root),
            default_addr_pool: Vec::new(),
            subnet_size: 24,
            data_path_port: 4789,
            unlock_key: None,
            root_rotation: None,
        }
    }

    fn node_with_issuer(id: &str, issuer: &(String, String)) -> Node {
        let mut n = Node::joined(
            id.into(),
            Role::Worker,
            Availability::Active,
            Description::default(),
        );
        n.description.tls_info = Some(NodeTlsInfo {
            trust_root: String::new(),
            cert_issuer_subject: issuer.0.clone(),
            cert_issuer_public_key: issuer.1.clone(),
        });
        n
    }

    #[test]
    fn force_rotate_starts_a_rotation_and_only_a_change_does() {
        let mut c = cluster();
        let mut spec = c.spec.clone();
        assert!(matches!(plan(&c, &mut spec), Ok(Plan::Keep)));
        spec.ca_config.force_rotate = 1;
        let p = plan(&c, &mut spec).expect("plan");
        let Plan::Start(r) = p else {
            panic!("no rotation: {p:?}")
        };
        assert_ne!(r.ca_cert, c.ca_cert);
        apply(&mut c, Plan::Start(r));
        c.spec = spec.clone();
        assert!(matches!(plan(&c, &mut spec), Ok(Plan::Keep)));
        assert_eq!(trust_bundle(&c).matches("BEGIN CERTIFICATE").count(), 2);
        assert_eq!(
            desired_root(&c),
            c.root_rotation.as_ref().expect("r").ca_cert
        );
    }

    #[test]
    fn a_given_root_needs_its_matching_key() {
        let c = cluster();
        let next = RootCa::generate().expect("next");
        let other = RootCa::generate().expect("other");

        let mut spec = c.spec.clone();
        spec.ca_config.signing_ca_key = next.key_pem().expect("k").into();
        let err = plan(&c, &mut spec).expect_err("key without cert");
        assert!(err
            .to_string()
            .contains("signing CA cert must also be provided"));

        let mut spec = c.spec.clone();
        spec.ca_config.signing_ca_cert = next.cert_pem().into();
        spec.ca_config.signing_ca_key = other.key_pem().expect("k").into();
        let err = plan(&c, &mut spec).expect_err("mismatch");
        assert!(err.to_string().contains("does not match"), "{err}");
        assert!(
            spec.ca_config.signing_ca_key.is_empty(),
            "the key is taken out"
        );

        let mut spec = c.spec.clone();
        spec.ca_config.signing_ca_cert = next.cert_pem().into();
        let err = plan(&c, &mut spec).expect_err("cert without key");
        assert!(err.to_string().contains("--ca-key"), "{err}");

        let mut spec = c.spec.clone();
        spec.ca_config.signing_ca_cert = "garbage".into();
        spec.ca_config.signing_ca_key = "garbage".into();
        let err = plan(&c, &mut spec).expect_err("not pem");
        assert!(err.to_string().contains("invalid signing CA cert"), "{err}");

        let mut spec = c.spec.clone();
        spec.ca_config.signing_ca_cert = next.cert_pem().into();
        spec.ca_config.signing_ca_key = next.key_pem().expect("k").into();
        let Plan::Start(r) = plan(&c, &mut spec).expect("plan") else {
            panic!("no rotation")
        };
        assert_eq!(r.ca_cert, next.cert_pem());

        // The current root given back (Docker's CLI re-sends the spec): nothing happens.
        let mut spec = c.spec.clone();
        spec.ca_config.signing_ca_cert = c.ca_cert.clone();
        assert!(matches!(plan(&c, &mut spec), Ok(Plan::Keep)));
    }

    #[test]
    fn a_rotation_finishes_when_every_node_holds_a_new_certificate() {
        let mut c = cluster();
        let mut spec = c.spec.clone();
        spec.ca_config.force_rotate = 1;
        let p = plan(&c, &mut spec).expect("plan");
        apply(&mut c, p);
        let r = c.root_rotation.clone().expect("rotation");
        let new = issuer_of(&r.ca_cert).expect("new issuer");
        let old = issuer_of(&c.ca_cert).expect("old issuer");
        assert_ne!(new, old);
        let nodes = [node_with_issuer("a", &new), node_with_issuer("b", &old)];
        assert!(finished(&c, &nodes).is_none());
        let nodes = [node_with_issuer("a", &new), node_with_issuer("b", &new)];
        let done = finished(&c, &nodes).expect("finished");
        assert_eq!(done.ca_cert, r.ca_cert);
        assert!(done.root_rotation.is_none());
        assert_ne!(done.worker_token, c.worker_token);
        let root = RootCa::from_pem(&done.ca_cert, Some(&done.ca_key)).expect("key matches");
        let t = ca::JoinToken::parse(&done.manager_token).expect("token");
        assert!(t.matches_ca(root.cert_der()));
    }

    #[test]
    fn leaves_from_the_new_root_name_it_as_their_issuer() {
        let mut c = cluster();
        let mut spec = c.spec.clone();
        spec.ca_config.force_rotate = 7;
        let p = plan(&c, &mut spec).expect("plan");
        apply(&mut c, p);
        let (signer, chain) = signer(&c).expect("signer");
        let csr = ca::Csr::generate().expect("csr");
        let mut pem = signer
            .sign(
                &csr.csr_pem,
                "n1",
                Role::Worker,
                "c1",
                ca::DEFAULT_NODE_CERT_VALIDITY,
            )
            .expect("sign");
        pem.push_str(&chain);
        let leaf = ca::NodeCert::from_pem(&pem, &csr.key_pem).expect("leaf with chain");
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let (s, k) = leaf.issuer_info(&trust_bundle(&c)).expect("issuer");
        let want = issuer_of(desired_root(&c)).expect("desired");
        assert_eq!((b64(&s), b64(&k)), want);
        // Without the cross-signed certificate the issuer is found among the roots by key.
        let bare = ca::NodeCert::from_pem(
            pem.split_inclusive("-----END CERTIFICATE-----\n")
                .next()
                .expect("leaf"),
            &csr.key_pem,
        )
        .expect("bare leaf");
        let (s, k) = bare.issuer_info(&trust_bundle(&c)).expect("issuer");
        assert_eq!((b64(&s), b64(&k)), want);
    }
}
