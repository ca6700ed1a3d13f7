//! The tunnels of one node: a tun device, a UDP socket, and a boringtun `Tunn` per peer,
//! driven by three threads (tun → network, network → tun, timers).
//!
//! A packet read from the tun device goes to the peer whose tunnel address is its
//! destination (no such peer: dropped). A datagram from the network is matched to its peer
//! by the receiver index it carries, or, for a handshake initiation, by the initiator's
//! static key; a decrypted packet is written to the tun device only when its source is that
//! peer's tunnel address (WireGuard's allowed IPs).

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519;

use super::coalesce::Coalescer;
use super::tun::Tun;
use super::udp::{Batch, Socket};
use super::{link, PeerConfig, PrivateKey, PublicKey, TUNNEL_MTU};
use crate::netlink::KernelError;

/// How long a thread blocks before it looks at the stop flag.
const TICK: Duration = Duration::from_millis(250);
/// Buffers: the largest IP packet, plus WireGuard's overhead.
const BUF: usize = 65_536 + 64;

struct Peer {
    cfg: PeerConfig,
    index: u32,
    tunn: Mutex<Tunn>,
}

#[derive(Default)]
struct Peers {
    by_ip: HashMap<Ipv4Addr, Arc<Peer>>,
    by_index: HashMap<u32, Arc<Peer>>,
    by_key: HashMap<[u8; 32], Arc<Peer>>,
}

struct Shared {
    tun: Tun,
    udp: Socket,
    stop: AtomicBool,
    key: RwLock<(x25519::StaticSecret, x25519::PublicKey)>,
    peers: RwLock<Peers>,
    next_index: AtomicU32,
}

/// A running tun device with its peers; dropping it stops the threads and removes the
/// device.
pub struct Device {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    public: Mutex<PublicKey>,
    pub name: String,
    pub address: Ipv4Addr,
    pub port: u16,
}

fn kerr(what: String) -> impl FnOnce(io::Error) -> KernelError {
    move |source| KernelError { what, source }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Device {
    /// Creates tun device `name` with `address/prefix`, listens on UDP `port` (every
    /// address of this namespace), and starts the threads. No peers yet.
    pub fn start(
        name: &str,
        key: &PrivateKey,
        address: Ipv4Addr,
        prefix: u8,
        port: u16,
    ) -> Result<Device, KernelError> {
        let tun = Tun::create(name).map_err(kerr(format!("create tun device {name}")))?;
        link::configure(name, TUNNEL_MTU, address, prefix)?;
        let udp = Socket::bind(port, TICK)
            .map_err(kerr(format!("bind UDP port {port} for WireGuard")))?;
        let secret = key.0.clone();
        let public = x25519::PublicKey::from(&secret);
        let shared = Arc::new(Shared {
            tun,
            udp,
            stop: AtomicBool::new(false),
            key: RwLock::new((secret, public)),
            peers: RwLock::new(Peers::default()),
            next_index: AtomicU32::new(1),
        });
        let mut threads = Vec::new();
        for (tname, f) in [
            ("wg-out", outbound as fn(&Shared)),
            ("wg-in", inbound),
            ("wg-timers", timers),
        ] {
            let s = shared.clone();
            let h = std::thread::Builder::new()
                .name(tname.into())
                .spawn(move || f(&s))
                .map_err(kerr(format!("start thread {tname}")))?;
            threads.push(h);
        }
        Ok(Device {
            shared,
            threads,
            public: Mutex::new(key.public()),
            name: name.to_owned(),
            address,
            port,
        })
    }

    /// The public key the tunnels use now.
    pub fn public(&self) -> PublicKey {
        *lock(&self.public)
    }

    /// Switches to `key`: every peer's sessions end and a handshake under the new key
    /// starts at once.
    pub fn set_key(&self, key: &PrivateKey) {
        let public = key.public();
        if *lock(&self.public) == public {
            return;
        }
        *lock(&self.public) = public;
        let secret = key.0.clone();
        let xpub = x25519::PublicKey::from(&secret);
        *self.shared.key.write().unwrap_or_else(|p| p.into_inner()) = (secret.clone(), xpub);
        let peers: Vec<Arc<Peer>> = self.shared.read_peers().by_ip.values().cloned().collect();
        let mut out = vec![0u8; 256];
        for p in peers {
            let mut t = lock(&p.tunn);
            t.set_static_private(secret.clone(), xpub, None);
            if let TunnResult::WriteToNetwork(b) = t.format_handshake_initiation(&mut out, true) {
                self.shared.udp.send_to(b, p.cfg.endpoint);
            }
        }
    }

    /// Makes the peers exactly `want`: unchanged ones keep their sessions, new or changed
    /// ones get a fresh tunnel and a handshake at once.
    pub fn set_peers(&self, want: &[PeerConfig]) {
        let secret = self
            .shared
            .key
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone();
        let mut next = Peers::default();
        let mut fresh = Vec::new();
        {
            let cur = self.shared.read_peers();
            for cfg in want {
                let kept = cur.by_ip.get(&cfg.address).filter(|p| p.cfg == *cfg);
                let p = match kept {
                    Some(p) => p.clone(),
                    None => {
                        let index =
                            self.shared.next_index.fetch_add(1, Ordering::Relaxed) & 0xff_ffff;
                        let tunn = Tunn::new(
                            secret.clone(),
                            x25519::PublicKey::from(cfg.public.0),
                            None,
                            None,
                            index,
                            None,
                        );
                        let p = Arc::new(Peer {
                            cfg: cfg.clone(),
                            index,
                            tunn: Mutex::new(tunn),
                        });
                        fresh.push(p.clone());
                        p
                    }
                };
                next.by_ip.insert(cfg.address, p.clone());
                next.by_index.insert(p.index, p.clone());
                next.by_key.insert(cfg.public.0, p);
            }
        }
        *self.shared.peers.write().unwrap_or_else(|p| p.into_inner()) = next;
        let mut out = vec![0u8; 256];
        for p in fresh {
            let mut t = lock(&p.tunn);
            if let TunnResult::WriteToNetwork(b) = t.format_handshake_initiation(&mut out, false) {
                self.shared.udp.send_to(b, p.cfg.endpoint);
            }
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn read_peers(&self) -> std::sync::RwLockReadGuard<'_, Peers> {
        self.peers.read().unwrap_or_else(|p| p.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn send(&self, b: &[u8], to: SocketAddrV4) {
        self.udp.send_to(b, to);
    }

    /// The peer an IPv4 packet from the tun device goes to: its destination's.
    fn peer_for(&self, pkt: &[u8]) -> Option<Arc<Peer>> {
        if pkt.len() < 20 || pkt[0] >> 4 != 4 {
            return None;
        }
        let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
        self.read_peers().by_ip.get(&dst).cloned()
    }

    /// The peer a datagram is for.
    fn peer_of(&self, datagram: &[u8]) -> Option<Arc<Peer>> {
        let peers = self.read_peers();
        match Tunn::parse_incoming_packet(datagram).ok()? {
            Packet::HandshakeInit(h) => {
                let key = self.key.read().unwrap_or_else(|p| p.into_inner());
                let half = parse_handshake_anon(&key.0, &key.1, &h).ok()?;
                peers.by_key.get(&half.peer_static_public).cloned()
            }
            Packet::HandshakeResponse(p) => peers.by_index.get(&(p.receiver_idx >> 8)).cloned(),
            Packet::PacketCookieReply(p) => peers.by_index.get(&(p.receiver_idx >> 8)).cloned(),
            Packet::PacketData(p) => peers.by_index.get(&(p.receiver_idx >> 8)).cloned(),
        }
    }
}

/// tun → network: seal each packet for the peer its destination names. What the tun device
/// has queued is read in one go and leaves in batches (one `sendmsg` per peer and size).
fn outbound(s: &Shared) {
    let mut pkt = vec![0u8; BUF];
    let mut out = vec![0u8; BUF];
    let mut batch = Batch::new();
    while !s.stopped() {
        if !s.tun.readable(TICK) {
            continue;
        }
        loop {
            let n = match s.tun.read(&mut pkt) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let Some(peer) = s.peer_for(&pkt[..n]) else {
                continue;
            };
            // The lock is released before anything is sent: the inbound thread waits for
            // it only while a packet is sealed, not while the kernel sends it.
            let sealed = lock(&peer.tunn).encapsulate(&pkt[..n], &mut out);
            if let TunnResult::WriteToNetwork(b) = sealed {
                batch.add(&s.udp, peer.cfg.endpoint, b);
            }
        }
        batch.flush(&s.udp);
    }
}

/// network → tun: open each datagram with its peer's session; answer handshakes; flush
/// what was queued while a handshake ran. Datagrams the kernel coalesced (UDP GRO) come in
/// one read and are opened one by one; what they carry goes to the tun device gathered by
/// flow, before the next read.
fn inbound(s: &Shared) {
    let mut buf = vec![0u8; BUF];
    let mut out = vec![0u8; BUF];
    let mut to_tun = Coalescer::new();
    while !s.stopped() {
        let (n, seg) = match s.udp.recv(&mut buf) {
            Ok(r) => r,
            Err(_) => continue,
        };
        for datagram in buf[..n].chunks(seg.max(1)) {
            open(s, datagram, &mut out, &mut to_tun);
        }
        to_tun.flush(&s.tun);
    }
}

/// One datagram from the network: to the tun device if it is a packet from the peer's
/// tunnel address, back to the peer if it is a handshake or a reply to one.
fn open(s: &Shared, datagram: &[u8], out: &mut [u8], to_tun: &mut Coalescer) {
    let Some(peer) = s.peer_of(datagram) else {
        return;
    };
    let src = Some(std::net::IpAddr::V4(*peer.cfg.endpoint.ip()));
    // Locked only while the datagram is opened: writing to the tun device runs the
    // kernel's receive path (TCP included), and the outbound thread must not wait for
    // that to seal the next packet.
    let opened = lock(&peer.tunn).decapsulate(src, datagram, out);
    match opened {
        TunnResult::WriteToNetwork(b) => s.send(b, peer.cfg.endpoint),
        TunnResult::WriteToTunnelV4(p, from) if from == peer.cfg.address => {
            to_tun.add(&s.tun, p);
        }
        TunnResult::WriteToTunnelV4(_, from) => {
            tracing::debug!(%from, peer = %peer.cfg.address, "dropped: not the peer's tunnel address");
        }
        _ => {}
    }
    // What waited for a session (queued while a handshake ran) goes now.
    loop {
        let queued = lock(&peer.tunn).decapsulate(None, &[], out);
        let TunnResult::WriteToNetwork(b) = queued else {
            break;
        };
        s.send(b, peer.cfg.endpoint);
    }
}

/// Handshake retries, rekeys, keepalives and session expiry of every peer.
fn timers(s: &Shared) {
    let mut out = vec![0u8; BUF];
    while !s.stopped() {
        std::thread::sleep(TICK);
        let peers: Vec<Arc<Peer>> = s.read_peers().by_ip.values().cloned().collect();
        for p in peers {
            let mut t = lock(&p.tunn);
            if let TunnResult::WriteToNetwork(b) = t.update_timers(&mut out) {
                s.send(b, p.cfg.endpoint);
            }
        }
    }
}
