//! The `overlay` driver: swarm-scoped networks on this node. The data plane is
//! `berth-overlay-net`'s (a bridge and a VXLAN device per network, peers programmed from the
//! cluster's committed state); this adapter plugs it into `Networks`.
//!
//! ```text
//!  cluster agent ──set_planes(per network: VNI, local address, remote endpoints)──► OverlayDriver
//!                                                       └─► overlay_net::netlink::reconcile
//!  Networks::attach ──join──► veth (MTU 1450; 1390 encrypted) into the network's bridge `ovb-<id>`
//! ```
//! Records of swarm networks are made on a node when a task of it is to run there
//! (`Networks::ensure_swarm_network`) and go when none is left; `network create -d overlay`
//! itself goes to the managers, never to this driver.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::sync::Mutex;

use berth_overlay_net::model::{bridge_name, Plane, OVERLAY_MTU};
use berth_overlay_net::netlink::{self as ovl, Netlink as OvlNetlink};
use berth_overlay_net::wireguard::ENCRYPTED_OVERLAY_MTU;

use super::driver::{Created, Link, NetworkDriver, Sandbox};
use super::error::{NetworkError, Result};
use super::NetworkRecord;

/// The overlay data plane of this node.
#[derive(Default)]
pub struct OverlayDriver {
    /// What the cluster says each network's plane is (by network id).
    planes: Mutex<BTreeMap<String, Plane>>,
    /// Serialises reconcile passes.
    pass: Mutex<()>,
}

impl OverlayDriver {
    /// Replaces the desired planes and converges the kernel to them (blocking).
    pub fn set_planes(&self, planes: Vec<Plane>) -> Result<()> {
        *self.planes.lock().unwrap_or_else(|p| p.into_inner()) = planes
            .into_iter()
            .map(|p| (p.network_id.clone(), p))
            .collect();
        self.reconcile()
    }

    /// One pass: observe, plan, carry out (blocking).
    pub fn reconcile(&self) -> Result<()> {
        let _g = self.pass.lock().unwrap_or_else(|p| p.into_inner());
        let planes: Vec<Plane> = self
            .planes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut nl = OvlNetlink::open().map_err(kernel)?;
        let steps = ovl::reconcile(&mut nl, &planes).map_err(kernel)?;
        if !steps.is_empty() {
            tracing::debug!(steps = steps.len(), "overlay data plane reconciled");
        }
        Ok(())
    }

    fn has_plane(&self, id: &str) -> bool {
        self.planes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }
}

fn kernel(e: ovl::KernelError) -> NetworkError {
    NetworkError::Kernel {
        what: e.what,
        source: e.source,
    }
}

impl NetworkDriver for OverlayDriver {
    fn name(&self) -> &'static str {
        "overlay"
    }

    fn has_addresses(&self) -> bool {
        true
    }

    fn create(&self, rec: &NetworkRecord) -> Result<Created> {
        if !self.has_plane(&rec.id) {
            return Err(NetworkError::Internal(format!(
                "overlay network {} has no data plane on this node yet",
                rec.name
            )));
        }
        self.reconcile()?;
        Ok(Created::New)
    }

    fn delete(&self, rec: &NetworkRecord) -> Result<()> {
        self.planes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&rec.id);
        self.reconcile()
    }

    fn join(&self, sb: &mut Sandbox<'_>, l: &Link) -> Result<()> {
        let bridge = bridge_name(&l.network.id);
        let master = sb
            .host
            .link_index(&bridge)
            .map_err(|e| NetworkError::kernel(format!("look up bridge {bridge}"), e))?
            .ok_or_else(|| {
                NetworkError::Internal(format!(
                    "bridge {bridge} of overlay network {} is missing",
                    l.network.name
                ))
            })?;
        // Encrypted networks' frames also carry WireGuard's overhead.
        let mtu = match berth_raft::tunnels::encrypted(&l.network.options) {
            true => ENCRYPTED_OVERLAY_MTU,
            false => OVERLAY_MTU,
        };
        let host_name = format!("vo{}", hex::encode(rand::random::<[u8; 4]>()));
        sb.host
            .create_veth(&host_name, master, &l.ifname, l.mac, sb.netns.as_raw_fd())
            .map_err(|e| NetworkError::kernel(format!("create veth {host_name}"), e))?;
        if let Ok(Some(i)) = sb.host.link_index(&host_name) {
            sb.host
                .set_mtu(i, mtu)
                .map_err(|e| NetworkError::kernel(format!("MTU of {host_name}"), e))?;
        }
        let idx = sb
            .ctr
            .link_index(&l.ifname)
            .map_err(|e| NetworkError::kernel(format!("look up {}", l.ifname), e))?
            .ok_or_else(|| {
                NetworkError::Internal(format!("{} did not appear in the container", l.ifname))
            })?;
        sb.ctr
            .set_mtu(idx, mtu)
            .map_err(|e| NetworkError::kernel(format!("MTU of {}", l.ifname), e))?;
        sb.ctr
            .add_address(idx, l.ip, l.prefix)
            .map_err(|e| NetworkError::kernel(format!("address {}", l.ip), e))?;
        sb.ctr
            .set_up(idx)
            .map_err(|e| NetworkError::kernel(format!("{} up", l.ifname), e))
    }

    fn leave(&self, sb: &mut Sandbox<'_>, ip: &str) -> Result<()> {
        let links = sb
            .ctr
            .links()
            .map_err(|e| NetworkError::kernel("list links", e))?;
        for (idx, name) in links {
            let addrs = sb
                .ctr
                .addresses(idx)
                .map_err(|e| NetworkError::kernel(format!("addresses of {name}"), e))?;
            if addrs.iter().any(|(a, _)| a.to_string() == ip) {
                return sb
                    .ctr
                    .delete_link(idx)
                    .map_err(|e| NetworkError::kernel(format!("delete {name}"), e));
            }
        }
        Ok(())
    }
}
