//! Standalone containers on attachable overlays (`docker run --network <overlay>`), node
//! side: the address comes from the managers over the cluster channel, the network's data
//! plane and local record from the next assignments answer, and the address goes back once
//! the container is gone.
//!
//! ```text
//!  container create ─► Networks::attach_swarm ─► hook ─► AttachNetwork{network, container}
//!     ─► managers: holder attach:<node>:<container> (refused unless attachable)
//!     ─► Assignments now carry the network ─► netattach: plane + local record ─► endpoint
//!  every assignments answer ─► gc: an attachment of this node whose container is gone
//!     ─► DetachNetwork
//!  a create that fails after its attachment, a container removed
//!     ─► Networks::release_swarm ─► DetachNetwork (at once)
//! ```
//! Releasing by comparing with the containers that exist (rather than only at `rm`) also
//! covers a create that failed after its address was given and a removal while the
//! managers were unreachable.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_raft::ingress::attach_holder;
use berth_raft::rpc::{NetworkPeers, Reply, Request};
use berth_raft::swarm::Swarm;
use berth_raft::ClusterError;

use futures_util::future::BoxFuture;

use crate::container::Containers;
use crate::network::{NetworkError, SwarmAttacher, SwarmAttachment};

/// How long a fresh attachment is left alone while its container is being created.
const GRACE: Duration = Duration::from_secs(60);
/// How long a create waits for the network to come up on this node.
const READY: Duration = Duration::from_secs(20);

pub struct Attachable {
    swarm: Arc<Swarm>,
    containers: Containers,
    /// Containers whose attachments were just given: when, and on which networks.
    pending: Mutex<HashMap<String, (Instant, Vec<String>)>>,
}

/// What `Networks` calls at container create (and when that create fails).
struct Hook(Arc<Attachable>);

impl SwarmAttacher for Hook {
    fn attach(
        &self,
        key: String,
        container: String,
    ) -> BoxFuture<'static, crate::network::error::Result<Option<SwarmAttachment>>> {
        let me = self.0.clone();
        Box::pin(async move { me.attach(&key, &container).await })
    }

    fn release(&self, container: String, network_ids: Vec<String>) -> BoxFuture<'static, ()> {
        let me = self.0.clone();
        Box::pin(async move { me.release(&container, network_ids).await })
    }
}

impl Attachable {
    pub fn new(swarm: Arc<Swarm>, containers: Containers) -> Arc<Attachable> {
        Arc::new(Attachable {
            swarm,
            containers,
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// The hook `Networks` calls at container create.
    pub fn hook(self: &Arc<Self>) -> Arc<dyn SwarmAttacher> {
        Arc::new(Hook(self.clone()))
    }

    async fn attach(
        &self,
        key: &str,
        container: &str,
    ) -> crate::network::error::Result<Option<SwarmAttachment>> {
        let st = self.swarm.status();
        if !st.active || st.locked {
            return Ok(None);
        }
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(container.to_owned())
            .or_insert_with(|| (Instant::now(), Vec::new()))
            .0 = Instant::now();
        let req = Request::AttachNetwork {
            network: key.to_owned(),
            container_id: container.to_owned(),
        };
        let fail = |e: ClusterError| format!("Could not attach to network {key}: {e}");
        let (network_id, name, address) = match self.swarm.call(&req, READY).await {
            Ok(Reply::Attached {
                network_id,
                name,
                address,
            }) => (network_id, name, address),
            Ok(_) => return Err(NetworkError::Internal(fail(unexpected()))),
            // Not a swarm network: the local lookup says so in its own words.
            Err(ClusterError::NotFound(_)) => return Ok(None),
            Err(e @ ClusterError::PermissionDenied(_)) => {
                return Err(NetworkError::Forbidden(fail(e)))
            }
            Err(e) => return Err(NetworkError::Internal(fail(e))),
        };
        let address = address
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| NetworkError::Internal(format!("bad address {address}")))?;
        if let Some((_, given)) = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(container)
        {
            given.push(network_id.clone());
        }
        let nets = self.containers.networks();
        let deadline = Instant::now() + READY;
        while nets.find(&network_id).is_err() {
            if Instant::now() > deadline {
                return Err(NetworkError::Internal(format!(
                    "network {name} did not come up on this node"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Some(SwarmAttachment {
            network_id,
            name,
            address,
        }))
    }

    /// Gives back a container's addresses: those given at its create (which failed, or
    /// the container is gone) and those on `also`.
    async fn release(&self, container: &str, also: Vec<String>) {
        let given: std::collections::BTreeSet<String> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(container)
            .map(|(_, g)| g)
            .unwrap_or_default()
            .into_iter()
            .chain(also)
            .collect();
        for network_id in given {
            self.detach(network_id, container.to_owned()).await;
        }
    }

    async fn detach(&self, network_id: String, container_id: String) {
        let req = Request::DetachNetwork {
            network_id,
            container_id,
        };
        if let Err(e) = self.swarm.call(&req, Duration::from_secs(5)).await {
            tracing::debug!(error = %e, "releasing a standalone container's address");
        }
    }

    /// Gives back the addresses of this node's standalone containers that are gone.
    pub async fn gc(&self, node_id: &str, networks: &[NetworkPeers]) {
        let prefix = attach_holder(node_id, "");
        let live: HashSet<String> = self
            .containers
            .all()
            .into_iter()
            .map(|c| c.id.clone())
            .collect();
        let gone: Vec<(String, String)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.retain(|_, (at, _)| at.elapsed() < GRACE);
            networks
                .iter()
                .flat_map(|n| n.endpoints.iter().map(move |e| (n, e)))
                .filter_map(|(n, e)| {
                    let c = e.task_id.strip_prefix(&prefix)?;
                    (!live.contains(c) && !pending.contains_key(c))
                        .then(|| (n.network.id.clone(), c.to_owned()))
                })
                .collect()
        };
        for (network_id, container_id) in gone {
            self.detach(network_id, container_id).await;
        }
    }
}

fn unexpected() -> ClusterError {
    ClusterError::Internal("unexpected reply".into())
}
