//! Decrypted UDP datagrams of one flow (the VXLAN frames of an encrypted overlay), gathered
//! into one write to the tun device.
//!
//! Why: a packet written to a tun device goes through the receiving kernel right away, in
//! the writing thread: IP, UDP, VXLAN, the VXLAN device's GRO, the bridge and its netfilter
//! hooks, the container's veth and TCP. One packet per write gives GRO nothing to merge, so
//! all of that ran once per 1440-byte packet, in the inbound thread, and was most of its
//! time. Written as one UDP segmentation-offload packet, the datagrams are split again
//! right after the UDP lookup, the VXLAN device's GRO merges the frames inside, and the rest
//! runs once per batch, as it does for a plain overlay.

use super::tun::{Tun, UdpGso};

/// An IPv4 header without options and a UDP header.
const HEADERS: usize = 28;
/// Datagrams per write: what every kernel splits (recent ones take more).
const MAX_SEGMENTS: usize = 64;
/// An IPv4 packet's largest size: its length field.
const MAX_LEN: usize = 65_535;

/// Datagrams waiting for one write: the first one's headers, then every payload; all
/// payloads are `segment` bytes but the last.
pub struct Coalescer {
    buf: Vec<u8>,
    count: usize,
    segment: usize,
    /// A shorter datagram ended the batch: nothing may follow it.
    closed: bool,
    /// Whether the kernel takes segmentation-offload writes; once one fails, every packet
    /// is written alone.
    gso: bool,
}

impl Coalescer {
    pub fn new() -> Coalescer {
        Coalescer {
            buf: Vec::with_capacity(MAX_LEN),
            count: 0,
            segment: 0,
            closed: false,
            gso: true,
        }
    }

    /// Writes `pkt` to `tun`, now, or later with the next datagrams of its flow. Packets
    /// leave in the order they came.
    pub fn add(&mut self, tun: &Tun, pkt: &[u8]) {
        if !self.gso || !is_plain_udp(pkt) {
            self.flush(tun);
            write(tun, pkt);
            return;
        }
        if self.count > 0 && !self.joins(pkt) {
            self.flush(tun);
        }
        self.push(pkt);
    }

    /// Appends `pkt` (plain UDP, and it joins or starts the batch).
    fn push(&mut self, pkt: &[u8]) {
        let payload = pkt.len() - HEADERS;
        if self.count == 0 {
            self.buf.extend_from_slice(pkt);
            self.segment = payload;
        } else {
            self.buf.extend_from_slice(&pkt[HEADERS..]);
        }
        self.closed = payload < self.segment;
        self.count += 1;
    }

    /// Whether `pkt` (plain UDP) can follow what is gathered: same addresses, ports, type of
    /// service, TTL and fragmentation flags, a payload no larger than the segment, room.
    fn joins(&self, pkt: &[u8]) -> bool {
        let h = &self.buf;
        let payload = pkt.len() - HEADERS;
        !self.closed
            && payload <= self.segment
            && self.count < MAX_SEGMENTS
            && self.buf.len() + payload <= MAX_LEN
            && h[..2] == pkt[..2]
            && h[6..10] == pkt[6..10]
            && h[12..24] == pkt[12..24]
    }

    /// Writes what is gathered.
    pub fn flush(&mut self, tun: &Tun) {
        match self.count {
            0 => {}
            1 => write(tun, &self.buf),
            _ => self.write_gso(tun),
        }
        self.buf.clear();
        self.count = 0;
        self.closed = false;
    }

    fn write_gso(&mut self, tun: &Tun) {
        let total = self.buf.len();
        gso_headers(&mut self.buf[..HEADERS], total);
        let gso = UdpGso {
            ip_len: 20,
            segment: self.segment as u16,
        };
        let Err(e) = tun.write_udp_gso(gso, &self.buf) else {
            return;
        };
        if e.raw_os_error() == Some(libc::EINVAL) {
            tracing::info!(error = %e, "the tun device refuses UDP segmentation offload: packets are written one by one");
            self.gso = false;
        }
        let mut pkt = Vec::with_capacity(HEADERS + self.segment);
        for payload in self.buf[HEADERS..].chunks(self.segment) {
            pkt.clear();
            pkt.extend_from_slice(&self.buf[..HEADERS]);
            pkt.extend_from_slice(payload);
            datagram_headers(&mut pkt);
            write(tun, &pkt);
        }
    }
}

fn write(tun: &Tun, pkt: &[u8]) {
    if let Err(e) = tun.write(pkt) {
        tracing::trace!(error = %e, "packet not delivered to the tun device");
    }
}

/// An IPv4 packet without options, not a fragment, carrying one whole UDP datagram with a
/// payload: what [`Coalescer`] can gather.
fn is_plain_udp(p: &[u8]) -> bool {
    p.len() > HEADERS
        && p[0] == 0x45
        && p[9] == libc::IPPROTO_UDP as u8
        && u16::from_be_bytes([p[6], p[7]]) & 0x3fff == 0
        && usize::from(u16::from_be_bytes([p[2], p[3]])) == p.len()
        && usize::from(u16::from_be_bytes([p[24], p[25]])) == p.len() - 20
}

/// The headers of a segmentation-offload packet of `total` bytes: lengths covering every
/// payload, the IP checksum, and in the UDP checksum field the pseudo-header's sum (the
/// kernel adds each datagram's own).
fn gso_headers(h: &mut [u8], total: usize) {
    let udp_len = (total - 20) as u16;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip_checksum(h);
    h[24..26].copy_from_slice(&udp_len.to_be_bytes());
    let mut sum = u32::from(libc::IPPROTO_UDP as u16) + u32::from(udp_len);
    for w in h[12..20].chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    h[26..28].copy_from_slice(&fold(sum).to_be_bytes());
}

/// The headers of one datagram cut from a gathered batch: its own lengths, the IP
/// checksum, and no UDP checksum (allowed over IPv4; the tunnel authenticated the bytes).
fn datagram_headers(p: &mut [u8]) {
    let total = p.len();
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip_checksum(p);
    p[24..26].copy_from_slice(&((total - 20) as u16).to_be_bytes());
    p[26..28].copy_from_slice(&[0, 0]);
}

/// Recomputes the checksum of the 20-byte IPv4 header at the start of `h`.
fn ip_checksum(h: &mut [u8]) {
    h[10..12].copy_from_slice(&[0, 0]);
    let sum: u32 = h[..20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    h[10..12].copy_from_slice(&(!fold(sum)).to_be_bytes());
}

/// The one's-complement sum of 16-bit words, folded to 16 bits.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP datagram 10.0.0.1:1000 → 10.0.0.2:4789 with `n` bytes of payload `fill`.
    fn datagram(n: usize, fill: u8) -> Vec<u8> {
        let mut p = vec![0u8; HEADERS + n];
        p[0] = 0x45;
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        p[20..22].copy_from_slice(&1000u16.to_be_bytes());
        p[22..24].copy_from_slice(&4789u16.to_be_bytes());
        p[HEADERS..].fill(fill);
        datagram_headers(&mut p);
        p
    }

    fn valid_ip_header(h: &[u8]) -> bool {
        let sum: u32 = h[..20]
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        fold(sum) == 0xffff
    }

    #[test]
    fn only_whole_option_free_udp_datagrams_are_gathered() {
        let p = datagram(100, 1);
        assert!(is_plain_udp(&p) && valid_ip_header(&p));
        let mut tcp = p.clone();
        tcp[9] = 6;
        let mut fragment = p.clone();
        fragment[6] = 0x20; // more fragments
        let mut options = p.clone();
        options[0] = 0x46;
        for q in [tcp, fragment, options, p[..p.len() - 1].to_vec()] {
            assert!(!is_plain_udp(&q));
        }
    }

    #[test]
    fn a_gathered_batch_has_the_headers_the_kernel_splits_by() {
        let mut c = Coalescer::new();
        for (n, fill) in [(1000, 1), (1000, 2), (600, 3)] {
            let p = datagram(n, fill);
            assert!(c.count == 0 || c.joins(&p));
            c.push(&p);
        }
        assert!(
            !c.joins(&datagram(10, 4)),
            "nothing follows a shorter datagram"
        );
        let total = c.buf.len();
        assert_eq!(total, HEADERS + 2600);
        gso_headers(&mut c.buf[..HEADERS], total);
        assert!(valid_ip_header(&c.buf));
        assert_eq!(u16::from_be_bytes([c.buf[2], c.buf[3]]), 2628);
        assert_eq!(u16::from_be_bytes([c.buf[24], c.buf[25]]), 2608);
        // 10.0.0.1 + 10.0.0.2 + 17 + 2608, folded.
        let want = fold(0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 2608);
        assert_eq!(u16::from_be_bytes([c.buf[26], c.buf[27]]), want);
    }

    #[test]
    fn another_flow_or_a_larger_payload_starts_a_new_batch() {
        let mut c = Coalescer::new();
        c.push(&datagram(500, 1));
        assert!(c.joins(&datagram(500, 2)));
        assert!(!c.joins(&datagram(501, 2)));
        let mut other_port = datagram(500, 2);
        other_port[20] = 9;
        assert!(!c.joins(&other_port));
        let mut other_ttl = datagram(500, 2);
        other_ttl[8] = 1;
        assert!(!c.joins(&other_ttl));
    }
}
