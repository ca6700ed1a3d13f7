//! The tunnels' UDP socket, with the kernel's UDP segmentation offloads: a [`Batch`] of
//! sealed packets for one peer leaves in one `sendmsg` (`UDP_SEGMENT`), and datagrams of one
//! flow that arrive together come up in one `recvmsg` (`UDP_GRO`).
//!
//! Why: per datagram, the kernel's UDP send and receive paths (route lookup, skb, device
//! queue, socket queue) cost several times what sealing or opening the packet does. With
//! the offloads the stack runs once per batch of up to [`MAX_SEGMENTS`] datagrams; they are
//! split as late as possible (by the NIC, in the driver, or not at all across a veth).

use std::io;
use std::mem::size_of;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The socket's kernel buffers. The default (208 KiB) overflowed under a single TCP stream
/// whenever the receiving thread lost its core for a moment: 14 % of the datagrams were
/// dropped and TCP backed off to a fraction of what the tunnel can carry.
const SOCKET_BUFFER: libc::c_int = 4 << 20;
/// Datagrams per batch: every kernel with `UDP_SEGMENT` takes 64 per `sendmsg` (recent ones
/// more); 44 full-size ones already fill [`MAX_BATCH`].
pub const MAX_SEGMENTS: usize = 64;
/// Bytes per batch: a batch is sent as one UDP datagram before segmentation, so it must fit
/// in one (65,507 bytes of payload), with room to spare.
const MAX_BATCH: usize = 65_000;

/// The bound socket, and whether segmentation offload works on its route.
pub struct Socket {
    udp: UdpSocket,
    gso: AtomicBool,
}

fn setsockopt(udp: &UdpSocket, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> bool {
    // SAFETY: an int option, passed by pointer and size, on a socket `udp` owns.
    let r = unsafe {
        libc::setsockopt(
            udp.as_raw_fd(),
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

impl Socket {
    /// Listens on `port` of every address of this namespace; reads time out after `tick`
    /// so a thread can look at its stop flag.
    pub fn bind(port: u16, tick: Duration) -> io::Result<Socket> {
        let udp = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], port)))?;
        udp.set_read_timeout(Some(tick))?;
        buffers(&udp);
        if !setsockopt(&udp, libc::SOL_UDP, libc::UDP_GRO, 1) {
            let e = io::Error::last_os_error();
            tracing::info!(error = %e, "no UDP GRO: WireGuard datagrams are received one by one");
        }
        Ok(Socket {
            udp,
            gso: AtomicBool::new(true),
        })
    }

    /// One datagram (handshakes, keepalives, a batch of one).
    pub fn send_to(&self, b: &[u8], to: SocketAddrV4) {
        if let Err(e) = self.udp.send_to(b, to) {
            tracing::trace!(error = %e, %to, "WireGuard datagram not sent");
        }
    }

    /// Datagrams of `seg` bytes each (the last may be shorter), back to back in `buf`.
    fn send_segments(&self, buf: &[u8], seg: usize, to: SocketAddrV4) {
        if buf.len() > seg && self.gso.load(Ordering::Relaxed) {
            match self.sendmsg_gso(buf, seg, to) {
                Ok(()) => return,
                // No checksum offload on the route's device: the kernel cannot segment.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                    tracing::info!(error = %e, "no UDP segmentation offload: WireGuard sends datagrams one by one");
                    self.gso.store(false, Ordering::Relaxed);
                }
                // Anything else (a segment larger than the route's MTU, a full buffer):
                // these go one by one, the next batch tries again.
                Err(e) => tracing::trace!(error = %e, %to, "WireGuard batch not sent whole"),
            }
        }
        for d in buf.chunks(seg) {
            self.send_to(d, to);
        }
    }

    fn sendmsg_gso(&self, buf: &[u8], seg: usize, to: SocketAddrV4) -> io::Result<()> {
        let addr = sockaddr(to);
        let mut iov = libc::iovec {
            iov_base: buf.as_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut control = Control::default();
        // SAFETY: a zeroed msghdr is valid (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&addr as *const libc::sockaddr_in as *mut libc::sockaddr_in).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        // SAFETY: `msg` points at a control buffer of CMSG_SPACE(2) bytes, aligned for
        // cmsghdr, so the first header and its 2-byte payload are inside it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg as u16);
        }
        // SAFETY: every pointer in `msg` refers to a local that outlives the call; the kernel
        // only reads them.
        let n = unsafe { libc::sendmsg(self.udp.as_raw_fd(), &msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives into `buf`: (bytes, segment size). Datagrams coalesced by GRO are all
    /// `segment` bytes but the last; an uncoalesced one is its own segment.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, usize)> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = Control::default();
        // SAFETY: a zeroed msghdr is valid (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        // SAFETY: `iov` describes `buf`, writable for its length; the control buffer is
        // writable for the length given; both outlive the call.
        let n = unsafe { libc::recvmsg(self.udp.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        Ok((n, gro_segment(&msg).filter(|&s| s > 0).unwrap_or(n)))
    }
}

/// Space for one control message with a small payload (`CMSG_SPACE(sizeof(int))` is 24 on
/// 64-bit Linux), aligned for `cmsghdr`.
#[derive(Default)]
#[repr(C, align(8))]
struct Control([u8; 32]);

/// The segment size a `UDP_GRO` control message in `msg` carries.
fn gro_segment(msg: &libc::msghdr) -> Option<usize> {
    // SAFETY: `msg` was filled by recvmsg: its control pointer and (updated) length describe
    // the control messages the kernel wrote, which the CMSG_ macros walk within bounds.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                return usize::try_from(v).ok();
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

fn sockaddr(to: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: to.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*to.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// Enlarges the socket's buffers to [`SOCKET_BUFFER`]: beyond `net.core.[rw]mem_max` when
/// the process may (`CAP_NET_ADMIN`), else up to it. A failure only costs throughput.
fn buffers(udp: &UdpSocket) {
    for (force, plain, what) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, "receive"),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, "send"),
    ] {
        let set = |opt| setsockopt(udp, libc::SOL_SOCKET, opt, SOCKET_BUFFER);
        if !set(force) && !set(plain) {
            let e = io::Error::last_os_error();
            tracing::warn!(error = %e, "WireGuard socket's {what} buffer left at its default");
        }
    }
}

/// Sealed datagrams waiting to leave together: all for one endpoint, all of one size but
/// the last (what `UDP_SEGMENT` can send).
pub struct Batch {
    buf: Vec<u8>,
    to: Option<SocketAddrV4>,
    seg: usize,
    count: usize,
    /// A shorter datagram ended the batch: nothing may follow it.
    closed: bool,
}

impl Batch {
    pub fn new() -> Batch {
        Batch {
            buf: Vec::with_capacity(MAX_BATCH),
            to: None,
            seg: 0,
            count: 0,
            closed: false,
        }
    }

    fn fits(&self, to: SocketAddrV4, len: usize) -> bool {
        self.to == Some(to)
            && !self.closed
            && len <= self.seg
            && self.count < MAX_SEGMENTS
            && self.buf.len() + len <= MAX_BATCH
    }

    /// Queues `datagram` for `to`, sending what was queued first if it cannot join it.
    pub fn add(&mut self, sock: &Socket, to: SocketAddrV4, datagram: &[u8]) {
        if self.count > 0 && !self.fits(to, datagram.len()) {
            self.flush(sock);
        }
        if self.count == 0 {
            self.to = Some(to);
            self.seg = datagram.len();
        }
        self.closed = datagram.len() < self.seg;
        self.buf.extend_from_slice(datagram);
        self.count += 1;
    }

    /// Sends what is queued.
    pub fn flush(&mut self, sock: &Socket) {
        if let Some(to) = self.to.take() {
            sock.send_segments(&self.buf, self.seg, to);
        }
        self.buf.clear();
        self.count = 0;
        self.closed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn pair() -> (Socket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
        rx.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let tx = Socket::bind(0, Duration::from_secs(2)).expect("bind sender");
        (tx, rx)
    }

    fn port(rx: &UdpSocket) -> SocketAddrV4 {
        let p = rx.local_addr().expect("address").port();
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, p)
    }

    #[test]
    fn a_batch_arrives_as_the_datagrams_it_was_given() {
        let (tx, rx) = pair();
        let to = port(&rx);
        let mut b = Batch::new();
        let sent: Vec<Vec<u8>> = [100, 100, 100, 40, 100, 7]
            .iter()
            .enumerate()
            .map(|(i, &n)| vec![i as u8; n])
            .collect();
        for d in &sent {
            b.add(&tx, to, d);
        }
        b.flush(&tx);
        let mut buf = [0u8; 256];
        for d in &sent {
            let n = rx.recv(&mut buf).expect("datagram");
            assert_eq!(&buf[..n], &d[..], "datagrams keep their bounds and order");
        }
    }

    #[test]
    fn coalesced_datagrams_come_back_with_their_segment_size() {
        let (tx, _) = pair();
        let rx = Socket::bind(0, Duration::from_secs(2)).expect("bind receiver");
        let p = rx.udp.local_addr().expect("address").port();
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, p);
        let mut b = Batch::new();
        for i in 0..5u8 {
            b.add(&tx, to, &[i; 300]);
        }
        b.add(&tx, to, &[9; 20]);
        b.flush(&tx);
        let mut buf = vec![0u8; 65_536];
        let mut got: Vec<Vec<u8>> = Vec::new();
        while got.iter().map(Vec::len).sum::<usize>() < 1520 {
            let (n, seg) = rx.recv(&mut buf).expect("datagrams");
            got.extend(buf[..n].chunks(seg).map(<[u8]>::to_vec));
        }
        let lens: Vec<usize> = got.iter().map(Vec::len).collect();
        assert_eq!(lens, [300, 300, 300, 300, 300, 20]);
        assert!(got[4].iter().all(|&x| x == 4) && got[5].iter().all(|&x| x == 9));
    }
}
