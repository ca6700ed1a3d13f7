//! The addresses of `swarm init` / `swarm join`, resolved as dockerd does: `--listen-addr`
//! and `--advertise-addr` take an IP, an IP with a port, or an interface name (with an
//! optional port); an empty advertise address is the listen IP, or the host's only
//! non-loopback address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use berth_raft::{ClusterError, ClusterResult, DEFAULT_PORT};

/// `host[:port]` split; the port defaults to `default_port`.
fn split(s: &str, default_port: u16) -> ClusterResult<(String, u16)> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((sa.ip().to_string(), sa.port()));
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok((s.to_owned(), default_port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => {
            let port = p.parse::<u16>().map_err(|_| {
                ClusterError::InvalidArgument(format!("invalid port {p:?} in address {s:?}"))
            })?;
            Ok((h.to_owned(), port))
        }
        _ => Ok((s.to_owned(), default_port)),
    }
}

/// An IP, or the first IPv4 address of the interface named so.
fn host_ip(host: &str) -> ClusterResult<IpAddr> {
    if host.is_empty() {
        return Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    let addrs = interface_addrs();
    addrs
        .iter()
        .find(|(name, _)| name == host)
        .map(|(_, ip)| IpAddr::V4(*ip))
        .ok_or_else(|| {
            ClusterError::InvalidArgument(format!(
                "invalid address {host:?}: not an IP address nor an interface with an IPv4 address"
            ))
        })
}

/// `--listen-addr` (default `0.0.0.0:2377`).
pub fn listen(s: &str) -> ClusterResult<SocketAddr> {
    let s = if s.is_empty() { "0.0.0.0:2377" } else { s };
    let (h, port) = split(s, DEFAULT_PORT)?;
    Ok(SocketAddr::new(host_ip(&h)?, port))
}

/// `--advertise-addr`; the port defaults to the listen port.
pub fn advertise(s: &str, listen: SocketAddr) -> ClusterResult<SocketAddr> {
    if !s.is_empty() {
        let (h, port) = split(s, listen.port())?;
        let ip = host_ip(&h)?;
        if ip.is_unspecified() {
            return Err(ClusterError::InvalidArgument(format!(
                "advertise address must be a non-zero IP address or network interface (with optional port number): {s:?}"
            )));
        }
        return Ok(SocketAddr::new(ip, port));
    }
    if !listen.ip().is_unspecified() {
        return Ok(listen);
    }
    let candidates: Vec<(String, Ipv4Addr)> = interface_addrs()
        .into_iter()
        .filter(|(_, ip)| !ip.is_loopback())
        .collect();
    match candidates.as_slice() {
        [(_, ip)] => Ok(SocketAddr::new(IpAddr::V4(*ip), listen.port())),
        [] => Err(ClusterError::InvalidArgument(
            "could not find the system's IP address - specify one with --advertise-addr".into(),
        )),
        many => {
            let list: Vec<String> = many.iter().map(|(n, ip)| format!("{ip} on {n}")).collect();
            Err(ClusterError::InvalidArgument(format!(
                "could not choose an IP address to advertise since this system has multiple addresses on different interfaces ({}) - specify one with --advertise-addr",
                list.join(" and ")
            )))
        }
    }
}

/// A remote manager of `swarm join` (`host[:port]`, port 2377 by default; names resolved).
pub async fn remote(s: &str) -> ClusterResult<SocketAddr> {
    let (h, port) = split(s, DEFAULT_PORT)?;
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut it = tokio::net::lookup_host((h.as_str(), port))
        .await
        .map_err(|e| ClusterError::InvalidArgument(format!("invalid remote address {s:?}: {e}")))?;
    it.next().ok_or_else(|| {
        ClusterError::InvalidArgument(format!("invalid remote address {s:?}: no address"))
    })
}

/// Every (interface, IPv4 address) of this network namespace.
fn interface_addrs() -> Vec<(String, Ipv4Addr)> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it names.
        let family = unsafe { (*ifa.ifa_addr).sa_family };
        if i32::from(family) != libc::AF_INET {
            continue;
        }
        // SAFETY: AF_INET addresses are sockaddr_in.
        let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
        let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        out.push((name, ip));
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_and_advertise_forms() {
        let l = listen("").expect("default");
        assert_eq!(l, "0.0.0.0:2377".parse().expect("addr"));
        let l = listen("10.1.2.3").expect("ip");
        assert_eq!(l, "10.1.2.3:2377".parse().expect("addr"));
        let l = listen("10.1.2.3:4000").expect("ip:port");
        assert_eq!(advertise("", l).expect("from listen"), l);
        assert_eq!(
            advertise("10.9.9.9", l).expect("ip"),
            "10.9.9.9:4000".parse().expect("addr")
        );
        assert_eq!(
            advertise("127.0.0.1:5000", l).expect("ip:port"),
            "127.0.0.1:5000".parse().expect("addr")
        );
        assert!(advertise("0.0.0.0", l).is_err());
        assert!(listen("10.1.2.3:notaport").is_err());
        assert!(listen("no-such-interface-x").is_err());
        let lo = listen("lo").expect("interface");
        assert_eq!(lo.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
