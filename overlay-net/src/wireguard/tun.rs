//! A layer-3 tun device (no packet information header), non-blocking, owned by this
//! process: it disappears when its descriptor is closed, even after a kill -9.
//!
//! Every packet crosses the descriptor behind a `virtio_net_hdr` (`IFF_VNET_HDR`), so that a
//! write can hand the kernel many UDP datagrams of one flow as one segmentation-offload
//! packet ([`Tun::write_udp_gso`]). No offload is enabled for reads (`TUNSETOFFLOAD` is never
//! called): the kernel gives whole packets with their checksums, and the header it puts in
//! front of them is skipped.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// `_IOW('T', 202, int)`, the same on every Linux architecture this engine builds for.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// `struct virtio_net_hdr`: what comes before each packet, in the host's byte order (tun's
/// default for a little-endian host, and the only order of a legacy header).
const VNET_HDR: usize = 10;
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_GSO_UDP_L4: u8 = 5;

pub struct Tun {
    fd: OwnedFd,
}

/// The layout of a UDP segmentation-offload packet: an IPv4 header of `ip_len` bytes, a UDP
/// header, then payloads of `segment` bytes (the last may be shorter).
pub struct UdpGso {
    pub ip_len: u16,
    pub segment: u16,
}

impl Tun {
    /// Creates tun device `name` in the calling thread's network namespace.
    pub fn create(name: &str) -> io::Result<Tun> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name {name:?}"),
            ));
        }
        // SAFETY: a constant NUL-terminated path; the result is checked.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `IfReq` lays out (name,
        // then the flags of its union, padded to the union's 24 bytes).
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tun { fd })
    }

    /// Waits up to `timeout` for a packet to read.
    pub fn readable(&self, timeout: Duration) -> bool {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as libc::c_int) };
        n > 0 && p.revents & libc::POLLIN != 0
    }

    /// One packet, or `WouldBlock` when none is queued.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut hdr = [0u8; VNET_HDR];
        let iov = [
            iovec(hdr.as_mut_ptr(), VNET_HDR),
            iovec(buf.as_mut_ptr(), buf.len()),
        ];
        // SAFETY: both iovecs describe live local buffers, writable for their lengths.
        let n = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
        Ok(check(n)?.saturating_sub(VNET_HDR))
    }

    /// Hands one packet to the kernel as if it arrived on the device.
    pub fn write(&self, pkt: &[u8]) -> io::Result<()> {
        self.write_with([0; VNET_HDR], pkt)
    }

    /// Hands the kernel IPv4 UDP datagrams of one flow as one packet: `pkt` has one IP and
    /// UDP header, their lengths covering all the payloads, and the UDP checksum field
    /// holding the pseudo-header's sum; the kernel splits it into datagrams of
    /// `gso.segment` payload bytes and completes their checksums. Splitting late lets what
    /// receives them run once for all (the VXLAN device's GRO coalesces the frames inside).
    /// A kernel that does not know UDP segmentation in a virtio-net header answers EINVAL.
    pub fn write_udp_gso(&self, gso: UdpGso, pkt: &[u8]) -> io::Result<()> {
        let mut h = [0u8; VNET_HDR];
        h[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        h[1] = VIRTIO_NET_HDR_GSO_UDP_L4;
        h[2..4].copy_from_slice(&(gso.ip_len + 8).to_ne_bytes()); // hdr_len
        h[4..6].copy_from_slice(&gso.segment.to_ne_bytes()); // gso_size
        h[6..8].copy_from_slice(&gso.ip_len.to_ne_bytes()); // csum_start
        h[8..10].copy_from_slice(&6u16.to_ne_bytes()); // csum_offset: the UDP checksum
        self.write_with(h, pkt)
    }

    fn write_with(&self, hdr: [u8; VNET_HDR], pkt: &[u8]) -> io::Result<()> {
        // writev only reads through these pointers.
        let iov = [
            iovec(hdr.as_ptr().cast_mut(), VNET_HDR),
            iovec(pkt.as_ptr().cast_mut(), pkt.len()),
        ];
        // SAFETY: both iovecs describe live buffers, readable for their lengths.
        let n = unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
        check(n).map(drop)
    }
}

fn iovec(base: *mut u8, len: usize) -> libc::iovec {
    libc::iovec {
        iov_base: base.cast(),
        iov_len: len,
    }
}

fn check(n: isize) -> io::Result<usize> {
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
