//! WireGuard tunnels between nodes, for encrypted overlays (`network create -d overlay --opt
//! encrypted`), in user space (boringtun's Noise state machine, driven here over a tun
//! device and a UDP socket; this engine does not use kernel WireGuard even where it exists).
//!
//! Each node that has a task on an encrypted network gets one tun device, [`DEVICE`], with the
//! tunnel address the control plane allocated to it (`/16` of the tunnel pool), and one
//! WireGuard peer per other node of those networks (its public key, its underlay endpoint
//! `addr:port`, its tunnel address: the peer's only allowed source). An encrypted network's
//! VXLAN device uses tunnel addresses as its local and remote endpoints, so its frames are
//! routed into the tun device, sealed here and sent over UDP; plain overlays keep using the
//! underlay directly.
//!
//! ```text
//!  container ─ veth ─ ovb-<id> ─ ovx-<id> (VXLAN, local/remote = tunnel addresses)
//!        └─► route to 198.18.x.y/16 ─► bwg0 (tun) ─► [wg-out] Tunn::encapsulate ─► UDP 51820 ─► peer
//!                                  (what the tun device has queued, sent in batches: UDP GSO)
//!  peer ─► UDP 51820 (UDP GRO) ─► [wg-in] Tunn::decapsulate (source must be the peer's tunnel
//!        address) ─► bwg0 (datagrams of one flow in one write) ─► kernel VXLAN (port 4789) ─► ovx-<id>
//!  [wg-timers] every 250 ms: handshakes, keepalives, session expiry
//! ```
//! Per packet, the kernel's work around the tunnel (UDP send and receive, and on the
//! receiving node VXLAN, bridge, veth and the container's TCP, all run in the thread that
//! writes to the tun device) costs several times the cipher, so both directions batch with
//! the kernel's segmentation offloads (`udp.rs`, `coalesce.rs`). `examples/wg-pair.rs`
//! measures the tunnels between two namespaces.
//! Private keys live only in memory ([`PrivateKey`] has no `Debug` and no serialisation);
//! only public keys are published. A key change ([`Device::set_key`]) keeps the peers and
//! starts a handshake with each at once, so traffic waits one round trip, not a rekey timeout.

mod coalesce;
mod device;
mod link;
mod tun;
mod udp;

pub use device::Device;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use base64::Engine as _;
use boringtun::x25519;

/// The tun device of this node's tunnels.
pub const DEVICE: &str = "bwg0";
/// The default UDP port of the tunnels (WireGuard's customary one).
pub const DEFAULT_PORT: u16 = 51820;
/// What WireGuard adds to each packet over IPv4: IP 20 + UDP 8 + data header 16 + tag 16
/// (80 over IPv6).
pub const WG_OVERHEAD: u32 = 60;
/// The tun device's MTU on a 1500-byte underlay.
pub const TUNNEL_MTU: u32 = 1500 - WG_OVERHEAD;
/// The MTU of an encrypted overlay's containers: the tunnel's less VXLAN's 50 bytes.
pub const ENCRYPTED_OVERLAY_MTU: u32 = TUNNEL_MTU - 50;

/// The nft table (in the node's namespace) that drops VXLAN datagrams of encrypted networks
/// that did not come out of the tunnels: a frame forged in the clear to the VXLAN port.
pub const GUARD_TABLE: &str = "berth_wg";

/// The guard table's script for these encrypted VNIs (none: the table goes).
pub fn guard_rules(vnis: &BTreeSet<u32>) -> String {
    let mut s = format!("table inet {GUARD_TABLE}\ndelete table inet {GUARD_TABLE}\n");
    if vnis.is_empty() {
        return s;
    }
    let set: Vec<String> = vnis.iter().map(u32::to_string).collect();
    // The VNI: 24 bits at byte 4 of the VXLAN header, after the 8-byte UDP header.
    s += &format!(
        "table inet {GUARD_TABLE} {{\n  chain input {{\n    type filter hook input priority -10; policy accept;\n    \
         iifname != \"{DEVICE}\" udp dport {} @th,96,24 {{ {} }} drop\n  }}\n}}\n",
        crate::model::VXLAN_PORT,
        set.join(", ")
    );
    s
}

/// A node's static private key. Never printed, never serialised: it does not leave the
/// process that made it.
#[derive(Clone)]
pub struct PrivateKey(x25519::StaticSecret);

impl PrivateKey {
    /// A fresh key from the kernel's random source.
    pub fn generate() -> std::io::Result<PrivateKey> {
        let mut b = [0u8; 32];
        let mut filled = 0;
        while filled < b.len() {
            // SAFETY: the pointer and length describe the unfilled tail of `b`, a live
            // local buffer.
            let n =
                unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
                continue;
            }
            filled += n as usize;
        }
        Ok(PrivateKey(x25519::StaticSecret::from(b)))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(x25519::PublicKey::from(&self.0).to_bytes())
    }
}

/// A node's public key (what the cluster state carries, base64 as in `wg` tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    pub fn from_base64(s: &str) -> Option<PublicKey> {
        let v = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
        Some(PublicKey(v.try_into().ok()?))
    }
}

/// One peer of this node's tunnels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub public: PublicKey,
    /// Where its WireGuard socket is: the node's underlay address and tunnel port.
    pub endpoint: SocketAddrV4,
    /// Its tunnel address: where packets for it are routed, and the only source address
    /// accepted from it.
    pub address: Ipv4Addr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fresh_and_round_trip_through_base64() {
        let a = PrivateKey::generate().expect("key");
        let b = PrivateKey::generate().expect("key");
        assert_ne!(a.public(), b.public());
        let s = a.public().to_base64();
        assert_eq!(s.len(), 44);
        assert_eq!(PublicKey::from_base64(&s), Some(a.public()));
        assert_eq!(PublicKey::from_base64("c2hvcnQ="), None);
    }

    #[test]
    fn the_guard_drops_encrypted_vnis_outside_the_tunnels_only() {
        let r = guard_rules(&BTreeSet::from([4097, 4099]));
        assert!(r.contains("delete table inet berth_wg"), "{r}");
        assert!(
            r.contains(r#"iifname != "bwg0" udp dport 4789 @th,96,24 { 4097, 4099 } drop"#),
            "{r}"
        );
        let none = guard_rules(&BTreeSet::new());
        assert!(!none.contains("drop"), "{none}");
    }

    #[test]
    fn mtus_leave_room_for_both_encapsulations() {
        assert_eq!(TUNNEL_MTU, 1440);
        assert_eq!(ENCRYPTED_OVERLAY_MTU, 1390);
    }
}
