//! IPv4 address management: subnets, pools to carve networks from, and per-network address
//! allocation. Pure data; the network service persists what it must.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// What IPAM refuses. The caller decides what kind of API error each one is where it meets it:
/// a bad `--subnet` is the client's fault, an unreadable recorded subnet is ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// Not `a.b.c.d/n` with n ≤ 32.
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    /// A pool `size` that is not a prefix length.
    #[error("invalid pool size {0:?}")]
    InvalidPoolSize(String),
    /// A default address pool not of the form `base=CIDR,size=N`.
    #[error("invalid default address pool {0:?}: expected base=CIDR,size=N")]
    InvalidPool(String),
    /// A default address pool without `base=`.
    #[error("default address pool {0:?} has no base")]
    PoolWithoutBase(String),
    /// A default address pool whose subnets would be larger than the pool.
    #[error("invalid default address pool {pool:?}: size /{size} is larger than its base")]
    PoolSizeLargerThanBase { pool: String, size: u8 },
    /// An address asked for outside the network's subnet.
    #[error("no configured subnet or ip-range contain the IP address {0}")]
    OutsideSubnet(Ipv4Addr),
    /// An address asked for that is taken (or the gateway, network or broadcast address).
    #[error("Address already in use: {0}")]
    InUse(Ipv4Addr),
    /// Every address of the network's range is taken.
    #[error("no available IPv4 addresses on this network's address pools: {0}")]
    Exhausted(Subnet),
    /// Not six `:`-separated hex octets.
    #[error("invalid MAC address: {0}")]
    InvalidMac(String),
    /// A multicast MAC address, which no interface may have.
    #[error("invalid MAC address: {0} is a multicast address")]
    MulticastMac(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(ip: Ipv4Addr, prefix: u8) -> Subnet {
        let mask = Self::mask_of(prefix);
        Subnet {
            base: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        }
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix as u32)
        }
    }

    pub fn mask(&self) -> u32 {
        Self::mask_of(self.prefix)
    }

    pub fn first(&self) -> u32 {
        u32::from(self.base)
    }

    pub fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.first()
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    pub fn contains_subnet(&self, other: &Subnet) -> bool {
        self.first() <= other.first() && other.last() <= self.last()
    }

    /// The first usable host address: the default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + if self.prefix < 31 { 1 } else { 0 })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = IpamError;
    fn from_str(s: &str) -> Result<Subnet, IpamError> {
        let bad = || IpamError::InvalidCidr(s.to_owned());
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
        Ok(Subnet::new(ip, prefix))
    }
}

/// A default address pool (`--default-address-pool base=172.17.0.0/16,size=16`): the subnets
/// handed to networks created without `--subnet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub base: Subnet,
    pub size: u8,
}

impl Pool {
    /// Docker's defaults: 172.17–31.0.0/16 as /16s, then 192.168.0.0/16 as /20s.
    pub fn defaults() -> Vec<Pool> {
        vec![
            Pool {
                base: Subnet::new(Ipv4Addr::new(172, 17, 0, 0), 16),
                size: 16,
            },
            Pool {
                base: Subnet::new(Ipv4Addr::new(172, 18, 0, 0), 15),
                size: 16,
            },
            Pool {
                base: Subnet::new(Ipv4Addr::new(172, 20, 0, 0), 14),
                size: 16,
            },
            Pool {
                base: Subnet::new(Ipv4Addr::new(172, 24, 0, 0), 14),
                size: 16,
            },
            Pool {
                base: Subnet::new(Ipv4Addr::new(172, 28, 0, 0), 14),
                size: 16,
            },
            Pool {
                base: Subnet::new(Ipv4Addr::new(192, 168, 0, 0), 16),
                size: 20,
            },
        ]
    }

    /// `base=10.10.0.0/16,size=24`.
    pub fn parse(s: &str) -> Result<Pool, IpamError> {
        let mut base = None;
        let mut size = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("base", v)) => base = Some(v.parse::<Subnet>()?),
                Some(("size", v)) => {
                    size = Some(
                        v.parse::<u8>()
                            .ok()
                            .filter(|p| *p <= 32)
                            .ok_or_else(|| IpamError::InvalidPoolSize(v.to_owned()))?,
                    )
                }
                _ => return Err(IpamError::InvalidPool(s.to_owned())),
            }
        }
        let base = base.ok_or_else(|| IpamError::PoolWithoutBase(s.to_owned()))?;
        let size = size.unwrap_or(base.prefix);
        if size < base.prefix {
            return Err(IpamError::PoolSizeLargerThanBase {
                pool: s.to_owned(),
                size,
            });
        }
        Ok(Pool { base, size })
    }

    /// The first subnet of this pool that overlaps none of `taken`.
    pub fn carve(&self, taken: &[Subnet]) -> Option<Subnet> {
        let step = 1u64 << (32 - self.size as u32);
        let mut at = self.base.first() as u64;
        while at + step - 1 <= self.base.last() as u64 {
            let cand = Subnet::new(Ipv4Addr::from(at as u32), self.size);
            match taken.iter().find(|t| t.overlaps(&cand)) {
                None => return Some(cand),
                // Skip past the whole overlapping range.
                Some(t) => {
                    let next = (t.last() as u64 + 1).max(at + step);
                    at = next.div_ceil(step) * step;
                }
            }
        }
        None
    }
}

/// The addresses in use on one network.
#[derive(Debug, Clone)]
pub struct Allocator {
    pub subnet: Subnet,
    /// Where dynamic addresses come from (`--ip-range`, default the whole subnet).
    pub range: Subnet,
    pub gateway: Ipv4Addr,
    used: BTreeSet<u32>,
    /// Where the last dynamic search ended: addresses are handed out round-robin, so a
    /// released address is not reused at once (stale ARP entries elsewhere).
    next: u32,
}

impl Allocator {
    pub fn new(subnet: Subnet, range: Option<Subnet>, gateway: Ipv4Addr) -> Allocator {
        let range = range.unwrap_or(subnet);
        Allocator {
            subnet,
            range,
            gateway,
            used: BTreeSet::new(),
            next: range.first(),
        }
    }

    fn usable(&self, ip: u32) -> bool {
        let s = &self.subnet;
        ip != u32::from(self.gateway)
            && (s.prefix >= 31 || (ip != s.first() && ip != s.last()))
            && !self.used.contains(&ip)
    }

    /// Claims a specific address (`--ip`, or one recorded before a restart).
    pub fn claim(&mut self, ip: Ipv4Addr) -> Result<(), IpamError> {
        if !self.subnet.contains(ip) {
            return Err(IpamError::OutsideSubnet(ip));
        }
        let n = u32::from(ip);
        if !self.usable(n) {
            return Err(IpamError::InUse(ip));
        }
        self.used.insert(n);
        Ok(())
    }

    pub fn allocate(&mut self) -> Result<Ipv4Addr, IpamError> {
        let (lo, hi) = (self.range.first(), self.range.last());
        let start = self.next.clamp(lo, hi);
        let mut ip = start;
        loop {
            if self.usable(ip) {
                self.used.insert(ip);
                self.next = if ip == hi { lo } else { ip + 1 };
                return Ok(Ipv4Addr::from(ip));
            }
            ip = if ip == hi { lo } else { ip + 1 };
            if ip == start {
                return Err(IpamError::Exhausted(self.subnet));
            }
        }
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }
}

/// Docker's MAC for an address: 02:42 followed by the IPv4 address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Result<[u8; 6], IpamError> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(IpamError::InvalidMac(s.to_owned()));
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).map_err(|_| IpamError::InvalidMac(s.to_owned()))?;
    }
    if out[0] & 1 == 1 {
        return Err(IpamError::MulticastMac(s.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sn(s: &str) -> Subnet {
        s.parse().expect("subnet")
    }

    #[test]
    fn subnets_parse_and_compare() {
        assert_eq!(sn("10.1.2.3/16").to_string(), "10.1.0.0/16");
        assert!(sn("10.1.0.0/16").overlaps(&sn("10.1.5.0/24")));
        assert!(!sn("10.1.0.0/16").overlaps(&sn("10.2.0.0/16")));
        assert!(sn("10.1.0.0/16").contains_subnet(&sn("10.1.5.0/24")));
        assert_eq!(sn("10.1.0.0/16").first_host(), Ipv4Addr::new(10, 1, 0, 1));
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("x/8".parse::<Subnet>().is_err());
    }

    #[test]
    fn pools_carve_around_taken_subnets() {
        let d = Pool::defaults();
        assert_eq!(d[0].carve(&[]), Some(sn("172.17.0.0/16")));
        assert_eq!(d[0].carve(&[sn("172.17.3.0/24")]), None);
        assert_eq!(
            d[1].carve(&[sn("172.18.0.0/16")]),
            Some(sn("172.19.0.0/16"))
        );
        let p = Pool::parse("base=10.10.0.0/16,size=24").expect("pool");
        assert_eq!(p.carve(&[sn("10.10.0.0/23")]), Some(sn("10.10.2.0/24")));
        assert!(Pool::parse("base=10.10.0.0/16,size=8").is_err());
        assert!(Pool::parse("nonsense").is_err());
    }

    #[test]
    fn allocation_skips_gateway_network_and_broadcast() {
        let s = sn("10.0.0.0/29");
        let mut a = Allocator::new(s, None, s.first_host());
        let got: Vec<_> = (0..5).map(|_| a.allocate().expect("ip")).collect();
        assert_eq!(got[0], Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(got[4], Ipv4Addr::new(10, 0, 0, 6));
        assert!(a.allocate().is_err());
        a.release(Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(a.allocate().expect("ip"), Ipv4Addr::new(10, 0, 0, 3));
        assert!(a.claim(Ipv4Addr::new(10, 0, 0, 4)).is_err());
        assert!(a.claim(Ipv4Addr::new(10, 9, 0, 4)).is_err());
    }

    #[test]
    fn ip_range_limits_dynamic_addresses() {
        let s = sn("10.0.0.0/24");
        let mut a = Allocator::new(s, Some(sn("10.0.0.128/30")), s.first_host());
        assert_eq!(a.allocate().expect("ip"), Ipv4Addr::new(10, 0, 0, 128));
        a.claim(Ipv4Addr::new(10, 0, 0, 20))
            .expect("static outside range");
    }

    #[test]
    fn macs() {
        let m = mac_for(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(format_mac(&m), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02").expect("mac"), m);
        assert!(parse_mac("01:00:00:00:00:00").is_err());
        assert!(parse_mac("zz").is_err());
    }
}
