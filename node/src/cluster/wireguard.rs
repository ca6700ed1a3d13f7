//! This node's WireGuard tunnels (encrypted overlays): its key pair, the public key it
//! publishes in its description, and the tunnel device its assignments ask for.
//!
//! ```text
//!  start ─► key pair (memory only) ─► describer: Description.wireguard = {public, port}
//!  every BERTH_WIREGUARD_ROTATE s (default 12 h) ─► new pair; the old one is kept, the new
//!        public key goes out with the next heartbeat ─► Raft ─► every node's assignments
//!  assignments.tunnels ─► update(): device bwg0 at the tunnel address, with the private key
//!        whose public half the cluster has committed for this node (so a rotation switches
//!        here when the peers learn the new key, not before), and the listed peers
//!        None ─► the device goes
//!  encrypted VNIs ─► nft table inet berth_wg: their VXLAN datagrams are dropped unless they
//!        came out of bwg0 (no frame forged in the clear reaches an encrypted network)
//! ```
//! The private keys never leave this process: not logged, not written to disk, not sent.
//! A restarted berthd makes a new pair and publishes it.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::BTreeSet;

use berth_overlay_net::wireguard::{
    guard_rules, Device, PeerConfig, PrivateKey, PublicKey, DEFAULT_PORT, DEVICE,
};
use berth_raft::rpc::NetworkPeers;
use berth_raft::tunnels::{encrypted, Tunnels, WireguardKey, TUNNEL_POOL};

/// Seconds between key rotations (a test knob; Docker Swarm rotates every 12 hours).
pub const ROTATE_ENV: &str = "BERTH_WIREGUARD_ROTATE";
/// The UDP port of the tunnels (default 51820).
pub const PORT_ENV: &str = "BERTH_WIREGUARD_PORT";
const DEFAULT_ROTATE: Duration = Duration::from_secs(12 * 3600);

struct Keys {
    current: PrivateKey,
    /// The pair before the last rotation: in use until the new public key is committed.
    previous: Option<PrivateKey>,
}

impl Keys {
    fn find(&self, public: &str) -> Option<&PrivateKey> {
        let want = PublicKey::from_base64(public)?;
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.public() == want)
    }
}

pub struct NodeTunnels {
    port: u16,
    rotate: Duration,
    keys: Mutex<Keys>,
    device: Mutex<Option<Device>>,
    /// The guard table's script last applied (`wireguard::guard_rules`).
    guard: Mutex<String>,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

impl NodeTunnels {
    pub fn new() -> std::io::Result<Arc<NodeTunnels>> {
        let port = env_u64(PORT_ENV)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .unwrap_or(DEFAULT_PORT);
        let rotate = env_u64(ROTATE_ENV)
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_ROTATE);
        Ok(Arc::new(NodeTunnels {
            port,
            rotate,
            keys: Mutex::new(Keys {
                current: PrivateKey::generate()?,
                previous: None,
            }),
            device: Mutex::new(None),
            guard: Mutex::new(String::new()),
        }))
    }

    /// What this node publishes: its newest public key and its port.
    pub fn published(&self) -> WireguardKey {
        WireguardKey {
            public_key: self.keys().current.public().to_base64(),
            port: self.port,
        }
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rotates the key pair every period, for as long as the daemon runs.
    pub fn start_rotation(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(me.rotate).await;
                match PrivateKey::generate() {
                    Ok(k) => {
                        let public = k.public().to_base64();
                        let mut keys = me.keys();
                        let old = std::mem::replace(&mut keys.current, k);
                        keys.previous = Some(old);
                        tracing::info!(public_key = %public, "WireGuard key pair rotated; publishing the new public key");
                    }
                    Err(e) => tracing::warn!(error = %e, "WireGuard key rotation"),
                }
            }
        });
    }

    /// Converges the tunnel device to the assignments' `tunnels`, and the guard table to
    /// the encrypted networks among `networks` (blocking work on a blocking thread).
    pub async fn update(self: &Arc<Self>, tunnels: Option<Tunnels>, networks: &[NetworkPeers]) {
        let vnis: BTreeSet<u32> = networks
            .iter()
            .filter(|n| encrypted(&n.network.spec.options))
            .map(|n| n.network.vni)
            .collect();
        let me = self.clone();
        let r = tokio::task::spawn_blocking(move || {
            me.guard(&vnis)?;
            me.apply(tunnels)
        })
        .await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "WireGuard tunnels"),
            Err(e) => tracing::warn!(error = %e, "WireGuard tunnels"),
        }
    }

    /// Drops VXLAN datagrams of encrypted networks that did not come through the tunnels.
    fn guard(&self, vnis: &BTreeSet<u32>) -> Result<(), String> {
        let script = guard_rules(vnis);
        let mut last = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        if *last == script {
            return Ok(());
        }
        crate::network::nft::apply(&script)?;
        *last = script;
        Ok(())
    }

    fn apply(&self, tunnels: Option<Tunnels>) -> Result<(), String> {
        let mut dev = self.device.lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = tunnels else {
            if dev.take().is_some() {
                tracing::info!("WireGuard tunnels stopped: no encrypted network here");
            }
            return Ok(());
        };
        let address: Ipv4Addr = t
            .address
            .parse()
            .map_err(|_| format!("bad tunnel address {:?}", t.address))?;
        // The committed key if this node still holds it, else the newest (the committed one
        // is from before a restart; the new one is on its way).
        let key = {
            let keys = self.keys();
            keys.find(&t.public_key).unwrap_or(&keys.current).clone()
        };
        if dev.as_ref().is_some_and(|d| d.address != address) {
            *dev = None;
        }
        let d = match dev.as_mut() {
            Some(d) => d,
            None => {
                let d = Device::start(DEVICE, &key, address, TUNNEL_POOL.1, self.port)
                    .map_err(|e| format!("{e}: {}", e.source))?;
                tracing::info!(%address, port = self.port, public_key = %key.public().to_base64(), "WireGuard tunnels started");
                dev.insert(d)
            }
        };
        if d.public() != key.public() {
            d.set_key(&key);
            tracing::info!(public_key = %key.public().to_base64(), "WireGuard tunnels switched to the new key");
        }
        let peers: Vec<PeerConfig> = t
            .peers
            .iter()
            .filter_map(|p| {
                Some(PeerConfig {
                    public: PublicKey::from_base64(&p.public_key)?,
                    endpoint: p.endpoint.parse::<SocketAddrV4>().ok()?,
                    address: p.address.parse().ok()?,
                })
            })
            .collect();
        d.set_peers(&peers);
        Ok(())
    }
}
