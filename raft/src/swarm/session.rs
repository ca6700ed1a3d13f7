//! The node's session with the managers: heartbeats, role changes, certificate renewal.

use super::*;

/// How long one heartbeat call may take: well under the grace period, so that a beat lost
/// to a brief partition is retried soon after the partition heals.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(600);
/// The wait before trying again when no manager answered a heartbeat.
const HEARTBEAT_RETRY: Duration = Duration::from_millis(250);

/// Test knob: `BERTH_SWARM_CERT_RENEW_AFTER=<seconds>` makes a node certificate due that
/// long after it was issued, instead of at swarmkit's random 50–80% of its lifetime (the
/// shortest lifetime Docker allows is an hour). For tests only; unset in production.
pub const RENEW_AFTER_ENV: &str = "BERTH_SWARM_CERT_RENEW_AFTER";

pub(super) fn renew_at(cert: &NodeCert) -> i64 {
    match std::env::var(RENEW_AFTER_ENV)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(after) => cert.issued_at().saturating_add(after.max(1)),
        None => cert.renew_at(),
    }
}

/// The managers a node calls, in order: its own manager first (when it is one), then the
/// others it knows.
fn manager_targets(id: &Identity, has_manager: bool) -> Vec<String> {
    let mut targets: Vec<String> = Vec::new();
    if has_manager {
        targets.push(id.manager_addr.clone());
    }
    targets.extend(id.managers.iter().map(|p| p.addr.clone()));
    targets.dedup();
    targets
}

impl Swarm {
    /// Sends a request to a manager on this node's behalf (an agent's session calls): its
    /// own manager first, then the others in order, until one answers.
    pub async fn call(self: &Arc<Self>, req: &Request, timeout: Duration) -> ClusterResult<Reply> {
        let (id, has_manager) = {
            let a = self.active.lock().await;
            match a.as_ref() {
                Some(a) if !a.locked => (a.id.clone(), a.manager.is_some()),
                _ => return Err(ClusterError::Unavailable("not part of a swarm".into())),
            }
        };
        let targets = manager_targets(&id, has_manager);
        let mut last = ClusterError::Unavailable("no manager is known".into());
        for t in targets {
            let Ok(addr) = crate::rpc::parse_addr(&t) else {
                continue;
            };
            match self.client(addr)?.call_timeout(req, timeout).await {
                Err(e @ ClusterError::Unavailable(_)) => last = e,
                other => return other,
            }
        }
        Err(last)
    }

    /// One heartbeat round (every half period while the managers answer, every
    /// [`HEARTBEAT_RETRY`] while they don't); returns how long to wait before the next.
    pub(super) async fn beat(self: &Arc<Self>) -> Duration {
        let (id, has_manager) = {
            let a = self.active.lock().await;
            match a.as_ref() {
                Some(a) => (a.id.clone(), a.manager.is_some()),
                None => return Duration::from_secs(1),
            }
        };
        if !id.error.is_empty() {
            return Duration::from_secs(5);
        }
        let mut description = (self.describe)();
        description.tls_info = self.tls_info();
        let hb = Request::Heartbeat(Heartbeat {
            node_id: id.node_id.clone(),
            addr: id.addr.clone(),
            description,
        });
        // Own manager first, then the others in order.
        let targets = manager_targets(&id, has_manager);
        for t in targets {
            let Ok(addr) = crate::rpc::parse_addr(&t) else {
                continue;
            };
            let client = match self.client(addr) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "swarm session: no usable certificate");
                    return Duration::from_secs(5);
                }
            };
            // A beat lost in a partition must not keep the next one from going out as soon
            // as the partition heals: the call gives up well inside the grace period.
            match client.call_timeout(&hb, HEARTBEAT_TIMEOUT).await {
                Ok(Reply::Heartbeat(r)) => {
                    let period = Duration::from_millis(r.period_ms.clamp(100, 60_000));
                    self.after_beat(&id, has_manager, r).await;
                    // Twice per period: a partition shorter than the grace period
                    // (MISSED_HEARTBEATS periods) never marks the node down, even when it
                    // starts just after a beat and a beat is lost in it.
                    return period / 2;
                }
                Ok(_) => {}
                Err(ClusterError::PermissionDenied(m)) => {
                    self.refused(&m).await;
                    return Duration::from_secs(5);
                }
                Err(e) => {
                    tracing::debug!(manager = %t, error = %e, "heartbeat");
                    // The next try dials afresh: data queued on a connection that crossed a
                    // partition is retransmitted on TCP's backoff (0.2, 0.4, 0.8, 1.6 s…),
                    // so the old connection can stay silent for seconds after the heal,
                    // longer than the grace period.
                    self.forget_client(addr);
                }
            }
        }
        HEARTBEAT_RETRY
    }

    pub(super) async fn after_beat(
        self: &Arc<Self>,
        id: &Identity,
        has_manager: bool,
        r: crate::rpc::HeartbeatReply,
    ) {
        let mut guard = self.active.lock().await;
        let Some(active) = guard.as_mut() else { return };
        if active.id.node_id != id.node_id {
            return;
        }
        let mut changed = false;
        if !r.managers.is_empty() && r.managers != active.id.managers {
            active.id.managers = r.managers.clone();
            changed = true;
        }
        if !r.trust_root.is_empty() {
            if let Err(e) = self.follow_roots(active, &r.trust_root) {
                tracing::warn!(error = %e, "taking the cluster's trusted roots");
            }
        }
        if r.role == Role::Manager && !has_manager {
            match self.promote(&active.id).await {
                Ok((mgr, raft_id)) => {
                    active.id.role = Role::Manager;
                    active.id.raft_id = raft_id;
                    active.manager = Some(mgr);
                    changed = true;
                }
                Err(e) => tracing::warn!(error = %e, "promotion to manager failed; will retry"),
            }
        } else if r.role == Role::Worker && has_manager {
            if let Some(m) = active.manager.take() {
                m.shutdown().await;
            }
            let _ = std::fs::remove_file(self.dir.join("raft.redb"));
            self.remove_secret("ca.key");
            self.remove_secret("raft.dek");
            active.id.role = Role::Worker;
            changed = true;
            tracing::info!("demoted to worker");
        }
        if self.renewal_due(active.id.role) || self.issuer_differs(&r.desired_root) {
            match self.renew(active).await {
                Ok(()) => changed = true,
                Err(e) => tracing::warn!(error = %e, "certificate renewal failed; will retry"),
            }
        }
        if let Some(m) = &active.manager {
            // A manager not (yet) in the Raft membership, e.g. its join was cut short: ask
            // the leader again (a no-op for a member).
            if !m.voters().contains(&m.raft_id) {
                let (m, managers, node_id) = (
                    m.clone(),
                    active.id.managers.clone(),
                    active.id.node_id.clone(),
                );
                tokio::spawn(async move {
                    if let Err(e) = m
                        .to_leader_via(&managers, Request::AddManager { node_id })
                        .await
                    {
                        tracing::debug!(error = %e, "add this manager to raft");
                    }
                });
            }
        }
        if changed {
            if let Err(e) = self.save_identity(&active.id) {
                tracing::warn!(error = %e, "saving swarm identity");
            }
        }
        self.publish(&active.id, active.manager.is_some());
    }

    pub(super) async fn promote(&self, id: &Identity) -> ClusterResult<(Arc<Manager>, u64)> {
        let trust = self.load_certs()?.trust_pem;
        let csr = ca::Csr::generate().map_err(|e| ClusterError::internal("node key", e))?;
        let req = Request::ManagerMaterial {
            csr: csr.csr_pem.clone(),
        };
        let mut material = None;
        for p in &id.managers {
            let Ok(addr) = crate::rpc::parse_addr(&p.addr) else {
                continue;
            };
            match self.client(addr)?.call(&req).await {
                Ok(Reply::Material(m)) => {
                    material = Some(m);
                    break;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "manager material"),
            }
        }
        let m = material.ok_or_else(|| ClusterError::Unavailable("no manager reachable".into()))?;
        if let Some(k) = m.unlock_key.as_deref() {
            // Autolock is on: the manager's secrets are sealed from the start.
            let k = UnlockKey::parse(k).map_err(|e| ClusterError::internal("unlock key", e))?;
            self.reseal(Some(k))?;
        }
        let trust = if m.trust_root.is_empty() {
            trust
        } else {
            m.trust_root.clone()
        };
        RootCa::from_pem(&trust, Some(&m.ca_key))
            .map_err(|e| ClusterError::internal("root CA", e))?;
        let cert = NodeCert::from_pem(&m.cert_pem, &csr.key_pem)
            .map_err(|e| ClusterError::internal("node certificate", e))?;
        self.save_certs(&trust, Some(&m.ca_key), &cert)?;
        let mut id = id.clone();
        id.raft_id = m.raft_id;
        id.role = Role::Manager;
        let _ = std::fs::remove_file(self.dir.join("raft.redb"));
        self.remove_secret("raft.dek");
        let mgr = self.start_manager(&id).await?;
        // Joining Raft is retried by the session (a manager outside the membership asks
        // again on every heartbeat), so a failure here does not undo the promotion.
        if let Err(e) = mgr
            .to_leader_via(
                &id.managers,
                Request::AddManager {
                    node_id: id.node_id.clone(),
                },
            )
            .await
        {
            tracing::warn!(error = %e, "promoted manager not yet in raft; will retry");
        }
        tracing::info!(node_id = %id.node_id, "promoted to manager");
        Ok((mgr, m.raft_id))
    }

    /// Whether this node's certificate is due for renewal, or grants another role than the
    /// one the cluster has for the node (a demoted manager gets a worker certificate).
    pub(super) fn renewal_due(&self, role: Role) -> bool {
        let cached = *self.cert_due.lock().unwrap_or_else(|p| p.into_inner());
        let due = match cached {
            Some(d) => Some(d),
            None => self.load_certs().ok().map(|_| {
                self.cert_due
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or((i64::MAX, role))
            }),
        };
        match due {
            Some((at, cert_role)) => cert_role != role || chrono::Utc::now().timestamp() >= at,
            None => false,
        }
    }

    /// Whether the root new certificates are issued under (`desired`, PEM; empty: no word
    /// from the leader) is not the issuer of this node's certificate: a root rotation is
    /// under way and this node has yet to renew.
    pub(super) fn issuer_differs(&self, desired: &str) -> bool {
        if desired.is_empty() {
            return false;
        }
        let (Some(want), Some(have)) = (crate::rotation::issuer_of(desired), self.tls_info())
        else {
            return false;
        };
        want.0 != have.cert_issuer_subject || want.1 != have.cert_issuer_public_key
    }

    /// Trusts the roots of `trust_pem` from now on when they differ from the ones on disk
    /// (a root rotation started or finished); a manager's cluster port and Raft member
    /// switch at once.
    pub(super) fn follow_roots(&self, active: &Active, trust_pem: &str) -> ClusterResult<()> {
        let certs = self.load_certs()?;
        if certs.trust_pem == trust_pem {
            return Ok(());
        }
        RootCa::from_pem(trust_pem, None)
            .map_err(|e| ClusterError::internal("trusted roots", e))?;
        self.save_trust(trust_pem, self.ca_key_for(active, trust_pem).as_deref())?;
        if let Some(m) = &active.manager {
            m.set_tls(trust_pem, &certs.cert)?;
        }
        tracing::info!(
            roots = trust_pem.matches("BEGIN CERTIFICATE").count(),
            "trusted root CAs changed"
        );
        Ok(())
    }

    /// On a manager, the CA key of the first root of `trust_pem`, from the cluster object.
    fn ca_key_for(&self, active: &Active, trust_pem: &str) -> Option<String> {
        let m = active.manager.as_ref()?;
        let first = RootCa::from_pem(trust_pem, None).ok()?;
        m.read(|s| s.cluster.clone()).and_then(|c| {
            let root = RootCa::from_pem(&c.ca_cert, Some(&c.ca_key)).ok()?;
            (root.digest() == first.digest()).then_some(c.ca_key)
        })
    }

    /// Renews this node's certificate: a new key made here, a signing request to a manager
    /// (its own first) authenticated by the current certificate. The reply also says which
    /// roots to trust. A manager's cluster port and Raft member take the new certificate
    /// for new connections at once.
    pub(super) async fn renew(self: &Arc<Self>, active: &mut Active) -> ClusterResult<()> {
        let csr = ca::Csr::generate().map_err(|e| ClusterError::internal("node key", e))?;
        let req = Request::Renew {
            csr: csr.csr_pem.clone(),
        };
        let targets = manager_targets(&active.id, active.manager.is_some());
        let mut signed = None;
        for t in targets {
            let Ok(addr) = crate::rpc::parse_addr(&t) else {
                continue;
            };
            match self.client(addr)?.call(&req).await {
                Ok(Reply::Renewed {
                    cert_pem,
                    trust_root,
                }) => {
                    signed = Some((cert_pem, trust_root));
                    break;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(manager = %t, error = %e, "certificate renewal"),
            }
        }
        let (cert_pem, trust) = signed.ok_or_else(|| {
            ClusterError::Unavailable("no manager could renew this node's certificate".into())
        })?;
        let cert = NodeCert::from_pem(&cert_pem, &csr.key_pem)
            .map_err(|e| ClusterError::internal("renewed certificate", e))?;
        let trust = if trust.is_empty() {
            self.load_certs()?.trust_pem
        } else {
            trust
        };
        RootCa::from_pem(&trust, None).map_err(|e| ClusterError::internal("trusted roots", e))?;
        self.save_certs(&trust, self.ca_key_for(active, &trust).as_deref(), &cert)?;
        tracing::info!(node_id = %active.id.node_id, role = cert.role.as_str(), not_after = cert.not_after, "node certificate renewed");
        if let Some(m) = &active.manager {
            m.set_tls(&trust, &cert)?;
        }
        Ok(())
    }

    /// The cluster no longer knows this node's certificate: it was removed.
    pub(super) async fn refused(&self, why: &str) {
        let mut guard = self.active.lock().await;
        let Some(active) = guard.as_mut() else { return };
        tracing::warn!(reason = why, "the swarm refused this node");
        active.id.error = format!("this node was removed from the swarm: {why}");
        if let Some(m) = active.manager.take() {
            m.shutdown().await;
        }
        let _ = self.save_identity(&active.id);
        self.publish(&active.id, false);
    }

    /// What this node reports as its `TLSInfo` (cached with the session clients).
    pub(super) fn tls_info(&self) -> Option<NodeTlsInfo> {
        {
            let cache = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.as_ref() {
                return Some(c.tls_info.clone());
            }
        }
        let certs = self.load_certs().ok()?;
        Some(certs.tls_info())
    }

    /// The (cached) session client of the manager at `addr`, under this node's certificate.
    pub(super) fn client(&self, addr: SocketAddr) -> ClusterResult<ClusterClient> {
        let mut cache = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if cache.is_none() {
            let certs = self.load_certs()?;
            let tls = ca::client_config(&certs.trust_pem, Some(&certs.cert))
                .map_err(|e| ClusterError::internal("client tls", e))?;
            *cache = Some(SessionClients {
                tls,
                by_addr: HashMap::new(),
                tls_info: certs.tls_info(),
            });
        }
        let c = cache.as_mut().expect("filled above");
        let tls = c.tls.clone();
        Ok(c.by_addr
            .entry(addr)
            .or_insert_with(|| ClusterClient::new(addr, tls))
            .clone())
    }

    /// Drops the cached client of one manager (its next call opens a new connection).
    fn forget_client(&self, addr: SocketAddr) {
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            c.by_addr.remove(&addr);
        }
    }

    pub(super) fn forget_clients(&self) {
        *self.clients.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

pub(super) async fn session_loop(swarm: std::sync::Weak<Swarm>) {
    loop {
        let Some(s) = swarm.upgrade() else { return };
        let wait = s.beat().await;
        drop(s);
        tokio::time::sleep(wait).await;
    }
}
