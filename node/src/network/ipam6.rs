//! IPv6 address management for bridge networks (`network create --ipv6`): subnets, the
//! unique-local /64 given to a network that names no IPv6 subnet, the checks of an IPAM
//! config entry, and per-network allocation. Pure data, like `ipam.rs` for IPv4.
//!
//! ```text
//!  IPAM config {Subnet: "2001:db8:1::/64", Gateway?, IPRange?}  or  none ─► ula_subnet()
//!      ─► plan() ─► Allocator6 { subnet, range, gateway (::1 of the subnet by default) }
//!      ─► claim(fixed IPAMConfig.IPv6Address) / allocate() / release()
//! ```
//! Addresses are handed out in order from the range's start, skipping the subnet-router
//! anycast address (the subnet's first) and the gateway, and round-robin after a release, as
//! the IPv4 allocator does. `Networks` keeps one `Allocator6` per network with IPv6 on,
//! rebuilt from the records at start like the IPv4 ones.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// What IPv6 IPAM refuses; the messages are dockerd's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ipam6Error {
    /// Not `addr/n` with n ≤ 128.
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    /// An IPv4 subnet where an IPv6 one is meant.
    #[error("{0} is not an IPv6 subnet")]
    NotV6(String),
    /// Smaller than a /124 leaves no room for containers.
    #[error("subnet {0} is too small for a network")]
    TooSmall(Subnet6),
    /// A gateway that is no IPv6 address.
    #[error("invalid gateway address {0}")]
    InvalidGateway(String),
    #[error("gateway {gateway} is not in the subnet {subnet}")]
    GatewayOutside { gateway: Ipv6Addr, subnet: Subnet6 },
    #[error("ip-range {range} is not inside the subnet {subnet}")]
    RangeOutside { range: Subnet6, subnet: Subnet6 },
    /// A fixed address outside the network's subnet.
    #[error("no configured subnet or ip-range contain the IP address {0}")]
    OutsideSubnet(Ipv6Addr),
    /// A fixed address that is taken, the gateway or the subnet-router anycast address.
    #[error("Address already in use: {0}")]
    InUse(Ipv6Addr),
    #[error("no available IPv6 addresses on this network's address pools: {0}")]
    Exhausted(Subnet6),
    /// A default address pool not of the form `base=CIDR,size=N` with N in base..=124.
    #[error("invalid default address pool {0:?}: expected base=IPV6-CIDR,size=N")]
    InvalidPool(String),
    /// Every unique-local /64 tried overlaps a network.
    #[error("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network")]
    NoPool,
}

/// An IPv6 subnet, its base masked to the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet6 {
    pub base: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    pub fn new(ip: Ipv6Addr, prefix: u8) -> Subnet6 {
        Subnet6 {
            base: Ipv6Addr::from(u128::from(ip) & Self::mask_of(prefix)),
            prefix,
        }
    }

    fn mask_of(prefix: u8) -> u128 {
        if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(prefix))
        }
    }

    pub fn first(&self) -> u128 {
        u128::from(self.base)
    }

    pub fn last(&self) -> u128 {
        self.first() | !Self::mask_of(self.prefix)
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & Self::mask_of(self.prefix) == self.first()
    }

    pub fn overlaps(&self, other: &Subnet6) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    pub fn contains_subnet(&self, other: &Subnet6) -> bool {
        self.first() <= other.first() && other.last() <= self.last()
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Subnet6 {
    type Err = Ipam6Error;
    fn from_str(s: &str) -> Result<Subnet6, Ipam6Error> {
        let bad = || Ipam6Error::InvalidCidr(s.to_owned());
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        if ip.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(Ipam6Error::NotV6(s.to_owned()));
        }
        let ip: Ipv6Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 128).ok_or_else(bad)?;
        Ok(Subnet6::new(ip, prefix))
    }
}

/// Whether an IPAM config's subnet is an IPv6 one (how a create request's entries split).
pub fn is_v6(subnet: &str) -> bool {
    subnet.contains(':')
}

/// A unique-local /64 (RFC 4193: `fd` + a random 40-bit global id, subnet id 0) that
/// overlaps none of `taken`: the subnet of an `--ipv6` network that names none.
pub fn ula_subnet(taken: &[Subnet6]) -> Result<Subnet6, Ipam6Error> {
    for _ in 0..64 {
        let global: u64 = rand::random::<u64>() & 0xff_ffff_ffff;
        let base = (0xfdu128 << 120) | (u128::from(global) << 80);
        let cand = Subnet6::new(Ipv6Addr::from(base), 64);
        if !taken.iter().any(|t| t.overlaps(&cand)) {
            return Ok(cand);
        }
    }
    Err(Ipam6Error::NoPool)
}

/// A default address pool for IPv6 networks (`--default-address-pool base=fd00:1::/48,size=64`,
/// daemon.json `default-address-pools` with an IPv6 base): networks created with `--ipv6` and
/// no IPv6 subnet get the first free `size` subnet of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool6 {
    pub base: Subnet6,
    pub size: u8,
}

impl Pool6 {
    /// `base=fd00:1::/48,size=64` (size defaults to the base's prefix).
    pub fn parse(s: &str) -> Result<Pool6, Ipam6Error> {
        let mut base = None;
        let mut size = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("base", v)) => base = Some(v.parse::<Subnet6>()?),
                Some(("size", v)) => {
                    size = Some(
                        v.parse::<u8>()
                            .ok()
                            .filter(|p| *p <= 128)
                            .ok_or_else(|| Ipam6Error::InvalidPool(s.to_owned()))?,
                    )
                }
                _ => return Err(Ipam6Error::InvalidPool(s.to_owned())),
            }
        }
        let base = base.ok_or_else(|| Ipam6Error::InvalidPool(s.to_owned()))?;
        let size = size.unwrap_or(base.prefix);
        if size < base.prefix || size > 124 {
            return Err(Ipam6Error::InvalidPool(s.to_owned()));
        }
        Ok(Pool6 { base, size })
    }

    /// The first `size` subnet of the pool that overlaps none of `taken`. Each step skips
    /// past a taken subnet, so the search is bounded by `taken`, not by the pool's size.
    pub fn carve(&self, taken: &[Subnet6]) -> Option<Subnet6> {
        let step = 1u128.checked_shl(128 - u32::from(self.size)).unwrap_or(0);
        let mut at = self.base.first();
        loop {
            let cand = Subnet6::new(Ipv6Addr::from(at), self.size);
            if cand.last() > self.base.last() || cand.first() < self.base.first() {
                return None;
            }
            match taken
                .iter()
                .filter(|t| t.overlaps(&cand))
                .map(Subnet6::last)
                .max()
            {
                None => return Some(cand),
                Some(end) => {
                    // The next `size`-aligned start after the taken subnet's end.
                    let next = (end / step.max(1)).checked_add(1)?.checked_mul(step)?;
                    if step == 0 || next <= at {
                        return None;
                    }
                    at = next;
                }
            }
        }
    }
}

/// The subnet of a new `--ipv6` network that names none: the first free one of the IPv6
/// default address pools, else a unique-local /64.
pub fn choose_subnet(pools: &[Pool6], taken: &[Subnet6]) -> Result<Subnet6, Ipam6Error> {
    if pools.is_empty() {
        return ula_subnet(taken);
    }
    pools
        .iter()
        .find_map(|p| p.carve(taken))
        .ok_or(Ipam6Error::NoPool)
}

/// The allocator of a new network from its IPv6 IPAM entry (subnet already chosen):
/// gateway (default the subnet's `::1`) and range checked against the subnet.
pub fn plan(subnet: Subnet6, gateway: &str, ip_range: &str) -> Result<Allocator6, Ipam6Error> {
    if subnet.prefix > 124 {
        return Err(Ipam6Error::TooSmall(subnet));
    }
    let gateway = if gateway.is_empty() {
        Ipv6Addr::from(subnet.first() + 1)
    } else {
        let g: Ipv6Addr = gateway
            .parse()
            .map_err(|_| Ipam6Error::InvalidGateway(gateway.to_owned()))?;
        if !subnet.contains(g) {
            return Err(Ipam6Error::GatewayOutside { gateway: g, subnet });
        }
        g
    };
    let range = if ip_range.is_empty() {
        None
    } else {
        let r: Subnet6 = ip_range.parse()?;
        if !subnet.contains_subnet(&r) {
            return Err(Ipam6Error::RangeOutside { range: r, subnet });
        }
        Some(r)
    };
    Ok(Allocator6::new(subnet, range, gateway))
}

/// The IPv6 addresses in use on one network.
#[derive(Debug, Clone)]
pub struct Allocator6 {
    pub subnet: Subnet6,
    /// Where dynamic addresses come from (`--ip-range`, default the whole subnet).
    pub range: Subnet6,
    pub gateway: Ipv6Addr,
    used: BTreeSet<u128>,
    /// Where the last dynamic search ended (round-robin, as for IPv4).
    next: u128,
}

impl Allocator6 {
    pub fn new(subnet: Subnet6, range: Option<Subnet6>, gateway: Ipv6Addr) -> Allocator6 {
        let range = range.unwrap_or(subnet);
        Allocator6 {
            subnet,
            range,
            gateway,
            used: BTreeSet::new(),
            next: range.first(),
        }
    }

    /// Not the gateway, not the subnet-router anycast address, not in use.
    fn usable(&self, ip: u128) -> bool {
        ip != u128::from(self.gateway) && ip != self.subnet.first() && !self.used.contains(&ip)
    }

    /// Claims a specific address (`IPAMConfig.IPv6Address`, or one recorded before a
    /// restart of berthd).
    pub fn claim(&mut self, ip: Ipv6Addr) -> Result<(), Ipam6Error> {
        if !self.subnet.contains(ip) {
            return Err(Ipam6Error::OutsideSubnet(ip));
        }
        let n = u128::from(ip);
        if !self.usable(n) {
            return Err(Ipam6Error::InUse(ip));
        }
        self.used.insert(n);
        Ok(())
    }

    /// The next free address of the range. The search is bounded: a range of 2^64
    /// addresses is never walked through, only as far as the addresses in use reach.
    pub fn allocate(&mut self) -> Result<Ipv6Addr, Ipam6Error> {
        let (lo, hi) = (self.range.first(), self.range.last());
        let start = self.next.clamp(lo, hi);
        let mut ip = start;
        // At most every used address, the gateway and the anycast one can be skipped.
        let bound = self.used.len() as u128 + 3;
        let mut tried = 0u128;
        loop {
            if self.usable(ip) {
                self.used.insert(ip);
                self.next = if ip == hi { lo } else { ip + 1 };
                return Ok(Ipv6Addr::from(ip));
            }
            ip = if ip == hi { lo } else { ip + 1 };
            tried += 1;
            if ip == start || tried > bound {
                return Err(Ipam6Error::Exhausted(self.subnet));
            }
        }
    }

    pub fn release(&mut self, ip: Ipv6Addr) {
        self.used.remove(&u128::from(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().expect("test address")
    }

    #[test]
    fn subnets_parse_and_mask() {
        let s: Subnet6 = "2001:db8:1::5/64".parse().expect("v6 subnet");
        assert_eq!(s.to_string(), "2001:db8:1::/64");
        assert!(s.contains(ip("2001:db8:1::ffff")));
        assert!(!s.contains(ip("2001:db8:2::1")));
        assert_eq!(
            "2001:db8::/129".parse::<Subnet6>(),
            Err(Ipam6Error::InvalidCidr("2001:db8::/129".into()))
        );
        assert_eq!(
            "zz::/64".parse::<Subnet6>(),
            Err(Ipam6Error::InvalidCidr("zz::/64".into()))
        );
        assert_eq!(
            "10.0.0.0/24".parse::<Subnet6>(),
            Err(Ipam6Error::NotV6("10.0.0.0/24".into()))
        );
        let big: Subnet6 = "2001:db8::/32".parse().expect("v6 /32");
        assert!(big.overlaps(&s) && s.overlaps(&big));
        assert!(big.contains_subnet(&s) && !s.contains_subnet(&big));
        assert!(is_v6("2001:db8::/64") && !is_v6("10.0.0.0/8"));
    }

    #[test]
    fn allocation_skips_anycast_and_gateway_and_round_robins() {
        let s: Subnet6 = "2001:db8:1::/64".parse().expect("subnet");
        let mut a = plan(s, "", "").expect("plan");
        assert_eq!(a.gateway, ip("2001:db8:1::1"));
        assert_eq!(a.allocate().expect("first"), ip("2001:db8:1::2"));
        assert_eq!(a.allocate().expect("second"), ip("2001:db8:1::3"));
        a.release(ip("2001:db8:1::2"));
        // A released address is not handed out again at once.
        assert_eq!(a.allocate().expect("third"), ip("2001:db8:1::4"));
        a.claim(ip("2001:db8:1::10")).expect("fixed address");
        assert_eq!(
            a.claim(ip("2001:db8:1::10")),
            Err(Ipam6Error::InUse(ip("2001:db8:1::10")))
        );
        assert_eq!(
            a.claim(ip("2001:db8:1::1")),
            Err(Ipam6Error::InUse(ip("2001:db8:1::1")))
        );
        assert_eq!(
            a.claim(ip("2001:db8:1::")),
            Err(Ipam6Error::InUse(ip("2001:db8:1::")))
        );
        assert_eq!(
            a.claim(ip("2001:db8:9::1")),
            Err(Ipam6Error::OutsideSubnet(ip("2001:db8:9::1")))
        );
    }

    #[test]
    fn small_subnets_exhaust() {
        let s: Subnet6 = "2001:db8::/126".parse().expect("subnet");
        assert_eq!(plan(s, "", "").err(), Some(Ipam6Error::TooSmall(s)));
        let s: Subnet6 = "2001:db8::/124".parse().expect("subnet");
        let mut a = plan(s, "", "").expect("plan");
        for _ in 0..14 {
            a.allocate().expect("room left");
        }
        assert_eq!(a.allocate(), Err(Ipam6Error::Exhausted(s)));
    }

    #[test]
    fn gateway_and_range_are_checked() {
        let s: Subnet6 = "2001:db8:1::/64".parse().expect("subnet");
        let a = plan(s, "2001:db8:1::fe", "2001:db8:1:0:1::/80").expect("plan");
        assert_eq!(a.gateway, ip("2001:db8:1::fe"));
        let mut a = a;
        assert_eq!(
            a.allocate().expect("from the range"),
            ip("2001:db8:1:0:1::")
        );
        assert_eq!(
            plan(s, "2001:db8:2::1", "").err(),
            Some(Ipam6Error::GatewayOutside {
                gateway: ip("2001:db8:2::1"),
                subnet: s
            })
        );
        assert_eq!(
            plan(s, "nope", "").err(),
            Some(Ipam6Error::InvalidGateway("nope".into()))
        );
        assert!(matches!(
            plan(s, "", "2001:db8:2::/80"),
            Err(Ipam6Error::RangeOutside { .. })
        ));
    }

    #[test]
    fn pools_carve_free_subnets() {
        let p = Pool6::parse("base=fd00:1::/48,size=64").expect("pool");
        assert_eq!(p.size, 64);
        let first = p.carve(&[]).expect("first");
        assert_eq!(first.to_string(), "fd00:1::/64");
        let taken: Vec<Subnet6> = vec![
            first,
            "fd00:1:0:1::/64".parse().expect("second"),
            "fd00:1:0:3::/80".parse().expect("inside the fourth"),
        ];
        assert_eq!(
            p.carve(&taken).expect("third").to_string(),
            "fd00:1:0:2::/64"
        );
        let taken = vec![
            "fd00:1::/63".parse().expect("two"),
            "fd00:1:0:2::/64".parse().expect("third"),
        ];
        assert_eq!(
            p.carve(&taken).expect("fourth").to_string(),
            "fd00:1:0:3::/64"
        );
        let all: Subnet6 = "fd00::/16".parse().expect("all");
        assert_eq!(p.carve(&[all]), None);
        assert_eq!(choose_subnet(&[p], &[all]), Err(Ipam6Error::NoPool));
        assert_eq!(
            choose_subnet(&[p], &[]).expect("pool").to_string(),
            "fd00:1::/64"
        );
        assert_eq!(choose_subnet(&[], &[]).expect("ula").prefix, 64);
        for bad in [
            "base=fd00::/64,size=48",
            "size=64",
            "base=10.0.0.0/8,size=16",
            "base=fd00::/48,size=126",
            "x",
        ] {
            assert!(Pool6::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ula_subnets_are_unique_local_64s_avoiding_taken_ones() {
        let a = ula_subnet(&[]).expect("ula");
        assert_eq!(a.prefix, 64);
        assert_eq!(a.base.octets()[0], 0xfd);
        let b = ula_subnet(&[a]).expect("another ula");
        assert!(!a.overlaps(&b));
        let everything: Subnet6 = "fd00::/8".parse().expect("fd00::/8");
        assert_eq!(ula_subnet(&[everything]), Err(Ipam6Error::NoPool));
    }
}
