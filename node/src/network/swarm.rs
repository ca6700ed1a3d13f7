//! Swarm networks on this node: the local records of the overlay networks this node has
//! tasks on (made from the cluster's network objects, removed once unused), the service
//! names the embedded DNS answers on them, and the load-balancing rules of the containers
//! on them.
//!
//! ```text
//!  cluster agent ──ensure_swarm_network(record from the cluster)──► record + data plane
//!               ──set_service_resolver(network id, name → addresses)──► embedded DNS
//!               ──set_vip_rules(network ids → nft script)──► applied as a container attaches
//!               ──apply_rules_in(container, nft script)──► nft inside the container's namespace
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

/// Gives standalone containers addresses on swarm networks, from the managers (the cluster
/// agent's).
pub trait SwarmAttacher: Send + Sync {
    /// (network name or id, container id) → the attachment, None when the swarm has no such
    /// network. It returns once the network's local record exists on this node.
    fn attach(
        &self,
        key: String,
        container_id: String,
    ) -> futures_util::future::BoxFuture<'static, Result<Option<SwarmAttachment>>>;

    /// Gives back, at once, what `attach` gave a container whose create then failed, and
    /// its addresses on `network_ids` (a removed container's).
    fn release(
        &self,
        container_id: String,
        network_ids: Vec<String>,
    ) -> futures_util::future::BoxFuture<'static, ()>;
}

/// Names of services on swarm networks: (network id, lower-case name) → addresses, or None
/// when the name is not a service's.
pub type ServiceResolver = Arc<dyn Fn(&str, &str) -> Option<Vec<Ipv4Addr>> + Send + Sync>;

/// The VIP load-balancing rules (an `nft -f` script) of a container on these swarm networks
/// (ids), None when they have no VIP to balance.
pub type VipRules = Arc<dyn Fn(&[String]) -> Option<String> + Send + Sync>;

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
    pub fn set_swarm_attacher(&self, a: Option<Arc<dyn SwarmAttacher>>) {
        set(&self.inner.attacher, a);
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
        match current(&self.inner.attacher) {
            Some(h) => h.attach(key.to_owned(), container_id.to_owned()).await,
            None => Ok(None),
        }
    }

    /// A create that failed after `attach_swarm`, or a standalone container removed: its
    /// swarm addresses (those given at create, and on `network_ids`) go back now, not when
    /// the agent's collector next finds the container missing. In the background: neither
    /// a failed create's error nor `rm` waits on the managers.
    pub fn release_swarm(&self, container_id: &str, network_ids: Vec<String>) {
        if let Some(h) = current(&self.inner.attacher) {
            tokio::spawn(h.release(container_id.to_owned(), network_ids));
        }
    }

    /// Who answers service names on swarm networks (the cluster agent).
    pub fn set_service_resolver(&self, r: ServiceResolver) {
        set(&self.inner.services, Some(r));
    }

    /// A service name as seen from a container on the swarm network `network_id`.
    pub(super) fn resolve_service(&self, network_id: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        let r = current(&self.inner.services)?;
        r(network_id, &name.to_ascii_lowercase())
    }

    /// Who renders the VIP rules of containers on swarm networks (the cluster agent): a
    /// container gets them as it is attached, before its process starts, then whenever the
    /// services behind them change.
    pub fn set_vip_rules(&self, r: VipRules) {
        set(&self.inner.vip_rules, Some(r));
    }

    /// The VIP rules of a container on the swarm networks `network_ids`.
    pub(super) fn vip_rules_for(&self, network_ids: &[String]) -> Option<String> {
        if network_ids.is_empty() {
            return None;
        }
        let r = current(&self.inner.vip_rules)?;
        r(network_ids)
    }

    /// Replaces an nftables ruleset inside a container's namespace (`nft -f -` run there).
    pub async fn apply_rules_in(&self, netns: PathBuf, script: String) -> Result<()> {
        super::endpoint::run_in_netns(netns, move |_| {
            super::nft::apply(&script).map_err(NetworkError::Rules)
        })
        .await
    }
}

/// The hook in `slot` now (the agent's hooks are set and read under a lock; a panic
/// elsewhere must not take them down).
fn current<T: Clone>(slot: &std::sync::Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn set<T>(slot: &std::sync::Mutex<Option<T>>, hook: Option<T>) {
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = hook;
}
