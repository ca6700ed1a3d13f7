//! The manager's certificate authority work: joins (token check, certificate, the node's
//! record), manager material for promoted nodes, signing, root rotation's end, and the
//! peer addresses nodes ask for.

use super::*;

impl Manager {
    pub(super) async fn join(&self, req: JoinRequest) -> ClusterResult<JoinReply> {
        let token = ca::JoinToken::parse(&req.token)
            .map_err(|e| ClusterError::InvalidArgument(e.to_string()))?;
        let cluster = self
            .read(|s| s.cluster.clone())
            .ok_or_else(|| ClusterError::Unavailable("the swarm is not initialised yet".into()))?;
        let root = RootCa::from_pem(&cluster.ca_cert, None)
            .map_err(|e| ClusterError::internal("the cluster's root CA", e))?;
        if !token.matches_ca(root.cert_der()) {
            return Err(ClusterError::InvalidArgument(
                "invalid join token: it is for another swarm's root CA".into(),
            ));
        }
        let role = if ca::secret_eq(&req.token, &cluster.manager_token) {
            Role::Manager
        } else if ca::secret_eq(&req.token, &cluster.worker_token) {
            Role::Worker
        } else {
            return Err(ClusterError::InvalidArgument(
                "A valid join token is necessary to join this cluster".into(),
            ));
        };
        let availability = Availability::parse(&req.availability).ok_or_else(|| {
            ClusterError::InvalidArgument(format!(
                "invalid availability {:?}: expected active, pause or drain",
                req.availability
            ))
        })?;
        let node_id = new_node_id();
        let raft_id = if role == Role::Manager {
            new_raft_id()
        } else {
            0
        };
        let expiry = Duration::from_nanos(cluster.spec.ca_config.node_cert_expiry);
        let cert_pem = self.sign(&req.csr, &node_id, role, expiry)?;
        let fingerprint = ca::fingerprint_of(&cert_pem)
            .map_err(|e| ClusterError::internal("issued certificate", e))?;
        let node = Node {
            addr: req.addr,
            // Kept for workers too: where the node will serve if it is promoted.
            manager_addr: req.manager_addr,
            raft_id,
            cert_fingerprint: fingerprint,
            ..Node::joined(node_id.clone(), role, availability, req.description)
        };
        self.propose(Op::PutNode {
            version: None,
            node: Box::new(node),
        })
        .await?;
        tracing::info!(node_id = %node_id, role = role.as_str(), "node joined");
        Ok(JoinReply {
            node_id,
            raft_id,
            role,
            cluster_id: self.cluster_id.clone(),
            ca_cert: rotation::trust_bundle(&cluster),
            cert_pem,
            ca_key: (role == Role::Manager).then(|| cluster.ca_key.clone()),
            managers: self.managers(),
            unlock_key: if role == Role::Manager {
                self.unlock_key()
            } else {
                None
            },
        })
    }

    /// A manager-role node that is not yet a manager: give it the CA key and a manager
    /// certificate.
    pub(super) async fn material(&self, caller: &Node, csr: &str) -> ClusterResult<Reply> {
        require_manager(caller)?;
        let cert_pem = self.sign(csr, &caller.id, Role::Manager, self.cert_expiry())?;
        let fingerprint = ca::fingerprint_of(&cert_pem)
            .map_err(|e| ClusterError::internal("issued certificate", e))?;
        let mut node = caller.clone();
        if node.raft_id == 0 {
            node.raft_id = new_raft_id();
        }
        node.cert_fingerprint = fingerprint;
        let raft_id = node.raft_id;
        // Only over the version read here: this manager's copy may lag the log, and a
        // whole node written back unconditionally would undo a spec change committed since
        // (the node asks again on its next heartbeat).
        self.propose(Op::PutNode {
            version: Some(caller.meta.version),
            node: Box::new(node),
        })
        .await?;
        let cluster = self.cluster()?;
        Ok(Reply::Material(Material {
            ca_key: cluster.ca_key.clone(),
            cert_pem,
            raft_id,
            unlock_key: self.unlock_key(),
            trust_root: rotation::trust_bundle(&cluster),
        }))
    }

    /// The lifetime of new node certificates (`swarm update --cert-expiry`).
    pub(super) fn cert_expiry(&self) -> Duration {
        Duration::from_nanos(self.read(|s| {
            s.cluster
                .as_ref()
                .map(|c| c.spec.ca_config.node_cert_expiry)
                .unwrap_or(crate::objects::DEFAULT_CERT_EXPIRY_NS)
        }))
    }

    /// The cluster object, or 503 before this manager has it.
    pub(super) fn cluster(&self) -> ClusterResult<crate::objects::Cluster> {
        self.read(|s| s.cluster.clone())
            .ok_or_else(|| ClusterError::Unavailable("the swarm is not initialised yet".into()))
    }

    /// The roots nodes are to trust now (the start-up root before there is a cluster object).
    pub(super) fn trust_bundle(&self) -> String {
        self.read(|s| s.cluster.as_ref().map(rotation::trust_bundle))
            .unwrap_or_else(|| self.ca.cert_pem().to_owned())
    }

    /// Signs a node's certificate signing request (a malformed one is the caller's fault)
    /// with the cluster's current CA: during a root rotation the new root's key, the leaf
    /// followed by the new root cross-signed by the old one.
    pub(super) fn sign(
        &self,
        csr: &str,
        node_id: &str,
        role: Role,
        expiry: Duration,
    ) -> ClusterResult<String> {
        let (signer, chain) = match self.read(|s| s.cluster.as_ref().map(rotation::signer)) {
            Some(r) => r.map_err(|e| ClusterError::internal("the cluster's CA", e))?,
            None => (self.ca.clone(), String::new()),
        };
        let mut pem = signer
            .sign(csr, node_id, role, &self.cluster_id, expiry)
            .map_err(|e| match e {
                ca::CaError::InvalidCertificate { .. } => {
                    ClusterError::InvalidArgument(e.to_string())
                }
                e => ClusterError::internal("sign certificate", e),
            })?;
        pem.push_str(&chain);
        Ok(pem)
    }

    /// Leader only: finishes a root rotation once every node holds a certificate from the
    /// new root (`rotation::finished`).
    pub(super) async fn reconcile_rotation(&self) {
        if !self.is_leader() {
            return;
        }
        let done = self.read(|s| {
            let c = s.cluster.as_ref()?;
            rotation::finished(c, s.nodes.values()).map(|d| (c.meta.version, d))
        });
        let Some((version, done)) = done else { return };
        let cmd = Command {
            at: now(),
            op: Op::UpdateCluster {
                version: Some(version),
                cluster: Box::new(done),
            },
        };
        match self.raft.client_write(cmd).await {
            Ok(r) if matches!(r.data, Outcome::Done { .. }) => {
                tracing::info!(
                    "root CA rotation finished: every node holds a certificate from the new root"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "finishing the root rotation"),
        }
    }

    /// The cluster's unlock key while autolock is on.
    pub(super) fn unlock_key(&self) -> Option<String> {
        self.read(|s| {
            s.cluster
                .as_ref()
                .filter(|c| c.spec.encryption_config.auto_lock_managers)
                .and_then(|c| c.unlock_key.clone())
        })
    }

    /// The peer ports of the ready nodes other than `me` (where to fetch an image from).
    pub(super) fn peer_addrs(&self, me: &str) -> Vec<crate::peer::PeerAddr> {
        self.read(|s| {
            s.nodes
                .values()
                .filter(|n| n.id != me && n.state == NodeState::Ready && !n.addr.is_empty())
                .filter_map(|n| {
                    let ip: std::net::IpAddr = n.addr.parse().ok()?;
                    Some(crate::peer::PeerAddr {
                        node_id: n.id.clone(),
                        addr: std::net::SocketAddr::new(ip, crate::peer::PEER_PORT).to_string(),
                    })
                })
                .collect()
        })
    }
}
