//! Swarm networks on this node: the local records of the overlay networks this node has
//! tasks on (made from the cluster's network objects, removed once unused), the service
//! names the embedded DNS answers on them, and the load-balancing rules of the containers
//! on them.
//!
//! ```text
//!  cluster agent ──ensure_swarm_network(record from the cluster)──► record + data plane
//!               ──set_service_resolver(network id, name → addresses)──► embedded DNS
//!               ──apply_rules(container, nft script)──► nft inside the container's namespace
//! ```

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use super::error::{NetworkError, Result};
use super::{allocator, Net, NetworkRecord, Networks, NETWORKS};

/// A standalone container's address on an attachable swarm network, given by the managers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmAttachment {
    pub network_id: String,
    /// The network's name (the container's endpoint is recorded under it).
    pub name: String,
    pub address: Ipv4Addr,
}

/// Asks the managers for an address on a swarm network for a container: (network name or
/// id, container id) → the attachment, None when the swarm has no such network. It returns
/// once the network's local record exists on this node.
pub type SwarmAttacher = Arc<
    dyn Fn(
            String,
            String,
        ) -> futures_util::future::BoxFuture<'static, Result<Option<SwarmAttachment>>>
        + Send
        + Sync,
>;

/// Names of services on swarm networks: (network id, lower-case name) → addresses, or None
/// when the name is not a service's.
pub type ServiceResolver = Arc<dyn Fn(&str, &str) -> Option<Vec<Ipv4Addr>> + Send + Sync>;

impl Networks {
    /// The overlay driver, to hand it the planes committed cluster state describes.
    pub fn overlay(&self) -> &Arc<super::overlay::OverlayDriver> {
        &self.inner.overlay
    }

    /// Makes the local record of a swarm network (same id, subnet and gateway as the
    /// cluster's) and its data plane, unless there is one already.
    pub async fn ensure_swarm_network(&self, mut rec: NetworkRecord) -> Result<()> {
        {
            let mut st = self.state();
            if st.nets.contains_key(&rec.id) {
                return Ok(());
            }
            if let Some(other) = st.nets.values().find(|n| n.rec.name == rec.name) {
                return Err(NetworkError::Conflict(format!(
                    "network {} of the swarm has the name of local network {}",
                    rec.name, other.rec.id
                )));
            }
            rec.driver = "overlay".into();
            // Addresses come from the managers: containers ask for theirs.
            rec.user_subnet = true;
            let alloc = allocator(&rec)?;
            st.nets.insert(
                rec.id.clone(),
                Net {
                    rec: rec.clone(),
                    alloc: Some(alloc),
                    alloc6: None,
                    active: BTreeMap::new(),
                },
            );
        }
        let driver = self.inner.overlay.clone();
        let made = {
            let r = rec.clone();
            tokio::task::spawn_blocking(move || super::NetworkDriver::create(driver.as_ref(), &r))
                .await
                .map_err(NetworkError::from)
                .and_then(|r| r)
        };
        let stored = made.and_then(|_| Ok(super::put_record(&self.inner.meta, &rec)?));
        if let Err(e) = stored {
            self.state().nets.remove(&rec.id);
            return Err(e);
        }
        tracing::info!(network_id = %rec.id, name = %rec.name, "swarm network instantiated on this node");
        Ok(())
    }

    /// The local records of swarm networks: (id, whether a container uses it).
    pub fn swarm_networks(&self) -> Vec<(String, bool)> {
        self.state()
            .nets
            .values()
            .filter(|n| n.rec.driver == "overlay")
            .map(|n| (n.rec.id.clone(), !n.active.is_empty()))
            .collect()
    }

    /// (container id, network id) of every endpoint on a swarm network.
    pub fn swarm_endpoints(&self) -> Vec<(String, String)> {
        self.state()
            .nets
            .values()
            .filter(|n| n.rec.driver == "overlay")
            .flat_map(|n| n.active.keys().map(|c| (c.clone(), n.rec.id.clone())))
            .collect()
    }

    /// Removes the local record of a swarm network no container uses any more.
    pub async fn drop_swarm_network(&self, id: &str) -> Result<()> {
        let rec = {
            let st = self.state();
            match st.nets.get(id) {
                Some(n) if n.rec.driver == "overlay" && n.active.is_empty() => n.rec.clone(),
                _ => return Ok(()),
            }
        };
        self.inner.meta.delete(NETWORKS, &rec.id)?;
        self.state().nets.remove(&rec.id);
        let driver = self.inner.overlay.clone();
        tokio::task::spawn_blocking(move || super::NetworkDriver::delete(driver.as_ref(), &rec))
            .await??;
        Ok(())
    }

    /// Who gives standalone containers addresses on swarm networks (the cluster agent;
    /// None when this node leaves the swarm).
    pub fn set_swarm_attacher(&self, a: Option<SwarmAttacher>) {
        *self
            .inner
            .attacher
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = a;
    }

    /// `docker run --network <key>`: when `key` names a swarm network (an attachable overlay,
    /// known here or only to the managers), an address on it for container `container_id`;
    /// None when `key` is a local network or this node is in no swarm.
    pub async fn attach_swarm(
        &self,
        key: &str,
        container_id: &str,
    ) -> Result<Option<SwarmAttachment>> {
        match self.find(key) {
            Ok(rec) if rec.driver != "overlay" => return Ok(None),
            Ok(_) | Err(NetworkError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let hook = self
            .inner
            .attacher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match hook {
            Some(h) => h(key.to_owned(), container_id.to_owned()).await,
            None => Ok(None),
        }
    }

    /// Who answers service names on swarm networks (the cluster agent).
    pub fn set_service_resolver(&self, r: ServiceResolver) {
        *self
            .inner
            .services
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(r);
    }

    /// A service name as seen from a container on the swarm network `network_id`.
    pub(super) fn resolve_service(&self, network_id: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        let r = self
            .inner
            .services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        r(network_id, &name.to_ascii_lowercase())
    }

    /// Replaces an nftables ruleset inside a container's namespace (`nft -f -` run there).
    pub async fn apply_rules_in(&self, netns: PathBuf, script: String) -> Result<()> {
        super::endpoint::run_in_netns(netns, move |_| {
            super::nft::apply(&script).map_err(NetworkError::Rules)
        })
        .await
    }
}
