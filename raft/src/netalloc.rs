//! Address allocation for swarm-scoped networks, as pure functions over plain values: VXLAN
//! network identifiers, subnets carved from the cluster's address pools, and addresses in a
//! network (tasks and service VIPs).
//!
//! ```text
//!  pools ["10.0.0.0/8"], size 24 ──pick_subnet(taken)──► 10.0.1.0/24 (first that overlaps none)
//!  VNIs in use ──pick_vni──► lowest free from 4096
//!  Network.addresses (held) + cursor ──pick_address──► next free after the last one given
//! ```
//! Every function is deterministic: `State::apply` calls them, so every manager makes the same
//! choice for the same committed entry and two creates can never race for one value.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The first VXLAN id given out (Docker's overlay driver starts at 4096 too).
pub const FIRST_VNI: u32 = 4096;
/// VXLAN ids are 24 bits.
pub const MAX_VNI: u32 = (1 << 24) - 1;
/// The pool networks are carved from when the swarm was made without `--default-addr-pool`.
pub const DEFAULT_POOL: &str = "10.0.0.0/8";
pub const DEFAULT_SUBNET_SIZE: u8 = 24;

/// An IPv4 network, `a.b.c.d/p` with the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn new(ip: Ipv4Addr, prefix: u8) -> Cidr {
        let prefix = prefix.min(32);
        Cidr {
            base: u32::from(ip) & mask(prefix),
            prefix,
        }
    }
    pub fn first(&self) -> u32 {
        self.base
    }
    pub fn last(&self) -> u32 {
        self.base | !mask(self.prefix)
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.base
    }
    pub fn overlaps(&self, o: &Cidr) -> bool {
        self.first() <= o.last() && o.first() <= self.last()
    }
    /// The usual gateway: the first host address.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (ip, p) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid CIDR address: {s}"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        Ok(Cidr::new(ip, prefix))
    }
}

/// The lowest VXLAN id from [`FIRST_VNI`] that is not in `used`.
pub fn pick_vni(used: &BTreeSet<u32>) -> Option<u32> {
    let mut want = FIRST_VNI;
    for v in used.range(FIRST_VNI..) {
        if *v > want {
            break;
        }
        want = v + 1;
    }
    (want <= MAX_VNI).then_some(want)
}

/// The first subnet of `size` bits in `pools` (in order) that overlaps nothing in `taken`.
pub fn pick_subnet(pools: &[Cidr], size: u8, taken: &[Cidr]) -> Option<Cidr> {
    for pool in pools {
        if size < pool.prefix || size > 30 {
            continue;
        }
        let step = 1u64 << (32 - size as u32);
        let mut at = pool.first() as u64;
        while at + step - 1 <= pool.last() as u64 {
            let cand = Cidr {
                base: at as u32,
                prefix: size,
            };
            match taken
                .iter()
                .filter(|t| t.overlaps(&cand))
                .map(|t| t.last())
                .max()
            {
                None => return Some(cand),
                // Jump past the subnet in the way, to the next boundary of our size.
                Some(end) => at = ((end as u64 + 1).div_ceil(step)) * step,
            }
        }
    }
    None
}

/// The next free address of `subnet` after `cursor` (wrapping once), skipping the network
/// and broadcast addresses and everything in `held`. Handing out addresses round the subnet,
/// rather than the lowest free one, keeps a just-released address unused for as long as
/// possible: stale neighbour entries elsewhere then point at nothing rather than at a new task.
pub fn pick_address(subnet: Cidr, held: &BTreeSet<u32>, cursor: u32) -> Option<Ipv4Addr> {
    let (lo, hi) = if subnet.prefix >= 31 {
        (subnet.first(), subnet.last())
    } else {
        (subnet.first() + 1, subnet.last() - 1)
    };
    if lo > hi {
        return None;
    }
    let start = if (lo..hi).contains(&cursor) {
        cursor + 1
    } else {
        lo
    };
    (start..=hi)
        .chain(lo..start)
        .find(|a| !held.contains(a))
        .map(Ipv4Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().expect("cidr")
    }

    #[test]
    fn cidrs_parse_and_overlap() {
        assert_eq!(c("10.0.3.7/24").to_string(), "10.0.3.0/24");
        assert!(c("10.0.0.0/8").overlaps(&c("10.9.0.0/16")));
        assert!(!c("10.0.0.0/24").overlaps(&c("10.0.1.0/24")));
        assert!("10.0.0.0".parse::<Cidr>().is_err());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert_eq!(c("10.0.1.0/24").first_host(), Ipv4Addr::new(10, 0, 1, 1));
    }

    #[test]
    fn vnis_are_the_lowest_free_ones() {
        let mut used = BTreeSet::new();
        assert_eq!(pick_vni(&used), Some(4096));
        used.extend([4096, 4097, 4099, 7]);
        assert_eq!(pick_vni(&used), Some(4098));
        used.insert(4098);
        assert_eq!(pick_vni(&used), Some(4100));
    }

    #[test]
    fn subnets_skip_taken_ones_and_user_subnets_of_other_sizes() {
        let pools = [c("10.0.0.0/8")];
        assert_eq!(pick_subnet(&pools, 24, &[]), Some(c("10.0.0.0/24")));
        let taken = [c("10.0.0.0/24"), c("10.0.1.0/24")];
        assert_eq!(pick_subnet(&pools, 24, &taken), Some(c("10.0.2.0/24")));
        // A user's /16 in the way is jumped over as a whole.
        let taken = [c("10.0.0.0/16")];
        assert_eq!(pick_subnet(&pools, 24, &taken), Some(c("10.1.0.0/24")));
        // A /28 inside the first /24 makes that /24 unusable.
        let taken = [c("10.0.0.16/28")];
        assert_eq!(pick_subnet(&pools, 24, &taken), Some(c("10.0.1.0/24")));
        // A full pool moves on to the next one; none left is None.
        let pools = [c("10.0.0.0/23"), c("192.168.0.0/24")];
        let taken = [c("10.0.0.0/24"), c("10.0.1.0/24")];
        assert_eq!(pick_subnet(&pools, 24, &taken), Some(c("192.168.0.0/24")));
        let taken = [c("10.0.0.0/23"), c("192.168.0.0/24")];
        assert_eq!(pick_subnet(&pools, 24, &taken), None);
    }

    #[test]
    fn thousands_of_subnets_never_collide() {
        let pools = [c("10.0.0.0/8")];
        let mut taken = Vec::new();
        for _ in 0..2000 {
            let s = pick_subnet(&pools, 24, &taken).expect("free subnet");
            assert!(taken.iter().all(|t: &Cidr| !t.overlaps(&s)), "{s}");
            taken.push(s);
        }
        assert_eq!(taken[1999], c("10.7.207.0/24"));
    }

    #[test]
    fn addresses_go_round_the_subnet_and_skip_held_ones() {
        let s = c("10.0.1.0/29"); // hosts .1 to .6
        let ip = |last: u8| u32::from(Ipv4Addr::new(10, 0, 1, last));
        let mut held: BTreeSet<u32> = [ip(1)].into(); // the gateway
        let a = pick_address(s, &held, 0).expect("free");
        assert_eq!(a, Ipv4Addr::new(10, 0, 1, 2));
        held.insert(u32::from(a));
        let b = pick_address(s, &held, u32::from(a)).expect("free");
        assert_eq!(b, Ipv4Addr::new(10, 0, 1, 3));
        // .2 is released, but the next one given is still after the cursor.
        held.remove(&u32::from(a));
        held.insert(u32::from(b));
        assert_eq!(
            pick_address(s, &held, u32::from(b)),
            Some(Ipv4Addr::new(10, 0, 1, 4))
        );
        // Wraps round to .2 once the end is reached.
        held.extend([ip(4), ip(5), ip(6)]);
        assert_eq!(
            pick_address(s, &held, ip(6)),
            Some(Ipv4Addr::new(10, 0, 1, 2))
        );
        held.insert(ip(2));
        assert_eq!(pick_address(s, &held, ip(6)), None);
    }
}
