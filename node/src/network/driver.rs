//! The `NetworkDriver` seam: what differs between kinds of network (the data plane), and
//! the registry `Networks` dispatches through by the record's `driver` name.
//!
//! ```text
//!  Networks (records, IPAM, endpoints, names, embedded DNS)
//!     │ Drivers::get(rec.driver)
//!     ├─► BridgeDriver  "bridge"   bridge device, veths, nftables, published ports
//!     ├─► HostDriver    "host"     the host's stack: nothing to make
//!     ├─► NullDriver    "null"     no interfaces: nothing to make
//!     └─► (overlay-net) "overlay"  per-node bridge + VXLAN, peers from the control plane
//! ```
//!
//! Driver calls that touch the kernel are blocking: `Networks` runs them on a blocking
//! thread, and `join`/`leave` on a thread that has entered the container's namespace. A
//! driver keeps only what it needs to program its data plane (published ports, for
//! bridge); records, addresses and endpoints belong to `Networks`, so that after a restart
//! `restore` + `sync` from the records converge the data plane again.
//!
//! Every driver runs the conformance suite in `conformance.rs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use super::error::{NetworkError, Result};
use super::netlink::Netlink;
use super::{ports, NetworkRecord, PortMapping};

/// What `NetworkDriver::create` found: a device it made (deleted again if the create fails
/// later) or one that was already there (left alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Existing,
}

/// The container side of a join or leave, on a thread inside the container's namespace.
pub struct Sandbox<'a> {
    /// Netlink in the daemon's namespace.
    pub host: &'a mut Netlink,
    /// Netlink in the container's namespace.
    pub ctr: &'a mut Netlink,
    /// The container's namespace, for links created straight into it.
    pub netns: BorrowedFd<'a>,
}

/// One interface to make in a container for one network, with the address `Networks`
/// allocated for it.
#[derive(Debug, Clone)]
pub struct Link {
    pub network: NetworkRecord,
    /// The name inside the container: `eth0`, `eth1`, …
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: [u8; 6],
    /// `IPAMConfig.LinkLocalIPs`: extra addresses on the interface (IPv4: /16 in
    /// 169.254.0.0/16, else /32; IPv6: /64 in fe80::/10, else /128).
    pub link_local: Vec<IpAddr>,
    /// The IPv6 address and prefix length, on networks with IPv6 on.
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// The IPv6 gateway, on networks with IPv6 on.
    pub gateway6: Option<Ipv6Addr>,
}

/// A container's addresses on the network its ports are published through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointAddrs {
    pub ip: Ipv4Addr,
    /// On networks with IPv6 on.
    pub ip6: Option<Ipv6Addr>,
}

/// One kind of network. Implementations: `BridgeDriver`, `HostDriver`, `NullDriver`; the
/// overlay driver of the cluster (`overlay-net/`) is one more, registered with
/// `Drivers::register`.
pub trait NetworkDriver: Send + Sync {
    /// The name in `docker network create -d` and in the record (`bridge`, `null`, …).
    fn name(&self) -> &'static str;

    /// One network per host, made at start (`host`, `none`): `network create` refuses.
    fn singleton(&self) -> bool {
        false
    }

    /// Whether networks of this driver have a subnet and give endpoints addresses (IPAM).
    fn has_addresses(&self) -> bool {
        false
    }

    /// Checks the driver options of a new network and fills the driver's part of its
    /// record (the bridge device's name). No kernel work; the network id is set.
    fn prepare(&self, _rec: &mut NetworkRecord) -> Result<()> {
        Ok(())
    }

    /// Makes the data plane of a new network (blocking).
    fn create(&self, _rec: &NetworkRecord) -> Result<Created> {
        Ok(Created::Existing)
    }

    /// Brings the data plane of a recorded network back to its record at start: after a
    /// reboot, a crash, or a device someone deleted (blocking).
    fn restore(&self, _rec: &NetworkRecord) -> Result<()> {
        Ok(())
    }

    /// Removes what `create` made (blocking). Endpoints are gone already.
    fn delete(&self, _rec: &NetworkRecord) -> Result<()> {
        Ok(())
    }

    /// At start, after `restore` of every record: removes data plane that no record of
    /// this driver owns any more (a network removed while berthd was down mid-way).
    fn sweep(&self, _live: &[NetworkRecord]) -> Result<()> {
        Ok(())
    }

    /// Programs the rules of these networks (all of this driver's) and of the ports
    /// published through it; called after every change that affects them. Calls are
    /// serialised by `Networks`, so the last call's view wins.
    fn sync(&self, _nets: &[NetworkRecord]) -> Result<()> {
        Ok(())
    }

    /// Makes `link` in the container (runs inside its namespace).
    fn join(&self, _sb: &mut Sandbox<'_>, link: &Link) -> Result<()> {
        Err(NetworkError::invalid(format!(
            "network {} cannot be used by containers",
            link.network.name
        )))
    }

    /// Removes the container's interface that holds `ip` (`network disconnect` of a
    /// running container; runs inside its namespace).
    fn leave(&self, _sb: &mut Sandbox<'_>, _ip: &str) -> Result<()> {
        Ok(())
    }

    /// Publishes ports of a container whose addresses on a network of this driver are
    /// `addrs`: reserves the host ports and remembers the forwarding; `sync` installs it.
    fn publish(
        &self,
        _ctr_id: &str,
        _ctr_name: &str,
        _addrs: EndpointAddrs,
        _wanted: &[ports::Binding],
    ) -> Result<Vec<PortMapping>> {
        Ok(Vec::new())
    }

    /// Remembers again the published ports of a container that kept running across a
    /// restart of berthd.
    fn restore_ports(&self, _ctr_id: &str, _addrs: EndpointAddrs, _maps: &[PortMapping]) {}

    /// Forgets the published ports of a container; true when it had some (rules to sync).
    fn release_ports(&self, _ctr_id: &str) -> bool {
        false
    }
}

/// The drivers of this daemon, by name.
#[derive(Clone, Default)]
pub struct Drivers {
    by_name: BTreeMap<&'static str, Arc<dyn NetworkDriver>>,
    /// The overlay driver by its own type, when registered (the cluster agent feeds it).
    overlay: Option<Arc<super::overlay::OverlayDriver>>,
}

impl Drivers {
    /// Adds (or replaces) a driver under its name.
    pub fn register(&mut self, driver: Arc<dyn NetworkDriver>) {
        self.by_name.insert(driver.name(), driver);
    }

    /// Registers the overlay driver.
    pub fn register_overlay(&mut self, driver: Arc<super::overlay::OverlayDriver>) {
        self.overlay = Some(driver.clone());
        self.register(driver);
    }

    pub fn get_overlay(&self) -> Option<Arc<super::overlay::OverlayDriver>> {
        self.overlay.clone()
    }

    /// The driver called `name`. An unknown name is a missing plugin, as in Docker; an
    /// overlay network with no overlay driver registered needs a swarm manager.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn NetworkDriver>> {
        match self.by_name.get(name) {
            Some(d) => Ok(d),
            None if name == "overlay" => Err(NetworkError::NeedsSwarm),
            None => Err(NetworkError::NotFound(format!(
                "plugin \"{name}\" not found"
            ))),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn NetworkDriver>> {
        self.by_name.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::local::{HostDriver, NullDriver};

    #[test]
    fn unknown_drivers_are_missing_plugins_and_overlay_needs_a_manager() {
        let mut d = Drivers::default();
        d.register(Arc::new(HostDriver));
        d.register(Arc::new(NullDriver));
        assert_eq!(d.get("host").map(|d| d.name()).ok(), Some("host"));
        assert!(d.get("null").is_ok_and(|d| d.singleton()));
        assert!(matches!(d.get("overlay"), Err(NetworkError::NeedsSwarm)));
        assert!(
            matches!(d.get("macvlan"), Err(NetworkError::NotFound(m)) if m == "plugin \"macvlan\" not found")
        );
    }
}
