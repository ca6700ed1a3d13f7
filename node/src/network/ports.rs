//! Published ports: reading `PortBindings`/`PublishAllPorts`, and reserving host ports.
//!
//! A published port is held by a socket bound (not listening) in the daemon's namespace,
//! the way docker-proxy holds it: another program (or container) asking for the same port
//! gets "address in use", and `-P` gets a free port from the kernel. Traffic itself never
//! reaches these sockets; nftables DNATs it to the container first.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use serde_json::Value;

/// A port binding that cannot be read, or a host port that cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A `<port>/sctp` key: SCTP is not published by this engine.
    #[error("sctp ports are not supported: {0}")]
    Sctp(String),
    /// A protocol other than tcp, udp or sctp.
    #[error("invalid proto: {0}")]
    InvalidProto(String),
    /// A container port that is not 1–65535.
    #[error("invalid containerPort: {0}")]
    InvalidContainerPort(String),
    /// A host port that is not a port or an increasing `lo-hi` range.
    #[error("invalid hostPort: {0}")]
    InvalidHostPort(String),
    /// A `HostIp` that is not an IP address.
    #[error("invalid IP address: {0}")]
    InvalidHostIp(String),
    /// The kernel gave no free port for `-P` or a `0` host port.
    #[error("allocate a host port: {0}")]
    NoFreePort(#[source] io::Error),
    /// The port asked for is bound by someone else.
    #[error("Bind for {} failed: port is already allocated", host_port(*ip, *port))]
    InUse { ip: IpAddr, port: u16 },
    /// The host address asked for is not one of this host's.
    #[error("Bind for {} failed: {ip} is not an address of this host", host_port(*ip, *port))]
    NotLocal { ip: IpAddr, port: u16 },
    /// Binding the port failed otherwise.
    #[error("Bind for {} failed: {source}", host_port(*ip, *port))]
    Bind {
        ip: IpAddr,
        port: u16,
        source: io::Error,
    },
    /// Every port of the range asked for is taken.
    #[error("Bind for {}-{hi} failed: every port in the range is already allocated", host_port(*ip, *lo))]
    RangeInUse { ip: IpAddr, lo: u16, hi: u16 },
    /// An IPv6 host address for a container that has no IPv6 address to forward to.
    #[error("Bind for {} failed: the container has no IPv6 address (its network does not have IPv6 enabled)", host_port(*ip, *port))]
    NoIpv6 { ip: IpAddr, port: u16 },
}

/// `ip:port`, with brackets around an IPv6 address.
pub fn host_port(ip: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub proto: &'static str,
    pub ctr_port: u16,
    /// None (or 0.0.0.0, ::) = every local address: IPv4, and IPv6 too for a container
    /// that has an IPv6 address.
    pub host_ip: Option<IpAddr>,
    /// An inclusive range; None = any free port.
    pub host_port: Option<(u16, u16)>,
}

pub struct Reservation {
    pub port: u16,
    sock: OwnedFd,
}

impl Reservation {
    /// Serves the connections that reach this reservation (TCP, bound to `::`): those to
    /// `[::1]`, which nftables cannot forward (the kernel drops packets from `::1` that would
    /// leave the loopback device, and IPv6 has no `route_localnet`), so they are excluded
    /// from DNAT and relayed to `target` here, as docker-proxy does. Every other local
    /// address is DNAT'ed before it reaches the socket. Stops when the task is aborted.
    pub fn relay_loopback6(
        &self,
        target: std::net::SocketAddr,
    ) -> io::Result<tokio::task::JoinHandle<()>> {
        let rt = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        // (bind_port made it listen when it bound it.)
        let listener = std::net::TcpListener::from(self.sock.try_clone()?);
        listener.set_nonblocking(true)?;
        let _guard = rt.enter();
        let listener = tokio::net::TcpListener::from_std(listener)?;
        Ok(rt.spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    match tokio::net::TcpStream::connect(target).await {
                        Ok(mut upstream) => {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                        Err(e) => {
                            tracing::debug!(%target, error = %e, "relay [::1] to a published port")
                        }
                    }
                });
            }
        }))
    }
}

/// `"80/tcp"` → (80, "tcp").
pub fn parse_port_key(k: &str) -> Result<(u16, &'static str), PortError> {
    let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    let proto = match proto {
        "tcp" | "" => "tcp",
        "udp" => "udp",
        "sctp" => return Err(PortError::Sctp(k.to_owned())),
        _ => return Err(PortError::InvalidProto(proto.to_owned())),
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| PortError::InvalidContainerPort(port.to_owned()))?;
    Ok((port, proto))
}

fn parse_host_port(s: &str) -> Result<Option<(u16, u16)>, PortError> {
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    let bad = || PortError::InvalidHostPort(s.to_owned());
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

/// What a container asks to publish: its `PortBindings`, plus every exposed port with no
/// binding when `PublishAllPorts` (`-P`) is set.
pub fn bindings(
    port_bindings: Option<&Value>,
    exposed: Option<&BTreeMap<String, Value>>,
    publish_all: bool,
) -> Result<Vec<Binding>, PortError> {
    let mut out = Vec::new();
    let mut bound = std::collections::BTreeSet::new();
    if let Some(Value::Object(m)) = port_bindings {
        for (k, list) in m {
            let (ctr_port, proto) = parse_port_key(k)?;
            bound.insert((ctr_port, proto));
            let entries = match list {
                Value::Array(a) if !a.is_empty() => a.clone(),
                _ => vec![Value::Null],
            };
            for e in entries {
                let ip = e.get("HostIp").and_then(Value::as_str).unwrap_or("");
                let host_ip = if ip.is_empty() {
                    None
                } else {
                    let bare = ip.trim_start_matches('[').trim_end_matches(']');
                    Some(
                        bare.parse::<IpAddr>()
                            .map_err(|_| PortError::InvalidHostIp(ip.to_owned()))?,
                    )
                };
                let hp = e.get("HostPort").and_then(Value::as_str).unwrap_or("");
                out.push(Binding {
                    proto,
                    ctr_port,
                    host_ip,
                    host_port: parse_host_port(hp)?,
                });
            }
        }
    }
    if publish_all {
        for k in exposed.into_iter().flat_map(|m| m.keys()) {
            let (ctr_port, proto) = parse_port_key(k)?;
            if bound.insert((ctr_port, proto)) {
                out.push(Binding {
                    proto,
                    ctr_port,
                    host_ip: None,
                    host_port: None,
                });
            }
        }
    }
    Ok(out)
}

/// Binds the host side of `b` on `ip` (the binding's address, or the unspecified address
/// of the family asked for): the port asked for, the first free one of a range, or any.
pub fn reserve_on(b: &Binding, ip: IpAddr) -> Result<Reservation, PortError> {
    let try_port = |port: u16| -> io::Result<Reservation> {
        let (fd, port) = bind_port(b.proto == "udp", ip, port)?;
        Ok(Reservation { port, sock: fd })
    };
    match b.host_port {
        None => try_port(0).map_err(PortError::NoFreePort),
        Some((lo, hi)) if lo == hi => try_port(lo).map_err(|e| match e.raw_os_error() {
            Some(libc::EADDRINUSE) => PortError::InUse { ip, port: lo },
            Some(libc::EADDRNOTAVAIL) => PortError::NotLocal { ip, port: lo },
            _ => PortError::Bind {
                ip,
                port: lo,
                source: e,
            },
        }),
        Some((lo, hi)) => (lo..=hi)
            .find_map(|p| try_port(p).ok())
            .ok_or(PortError::RangeInUse { ip, lo, hi }),
    }
}

/// Binds the host side of `b` on its address, or on every IPv4 address.
pub fn reserve(b: &Binding) -> Result<Reservation, PortError> {
    reserve_on(b, b.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
}

/// Binds a binding with no address on every IPv4 and every IPv6 address, the same port on
/// both (as dockerd publishes for a container with an IPv6 address). A kernel-chosen port
/// taken on the IPv6 side is tried again a few times.
pub fn reserve_dual(b: &Binding) -> Result<(Reservation, Reservation), PortError> {
    let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    for _ in 0..16 {
        let r4 = reserve(b)?;
        let same = Binding {
            host_port: Some((r4.port, r4.port)),
            ..b.clone()
        };
        match reserve_on(&same, any6) {
            Ok(r6) => return Ok((r4, r6)),
            Err(PortError::InUse { .. }) if b.host_port.is_none_or(|(lo, hi)| lo != hi) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(PortError::NoFreePort(io::Error::from_raw_os_error(
        libc::EADDRINUSE,
    )))
}

/// A socket bound (never listening) to ip:port; port 0 lets the kernel choose. IPv6
/// sockets are IPv6-only, so `::` and `0.0.0.0` are held apart. Returns the socket and the
/// port it got.
fn bind_port(udp: bool, ip: IpAddr, port: u16) -> io::Result<(OwnedFd, u16)> {
    let ty = if udp {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    } | libc::SOCK_CLOEXEC;
    let family = if ip.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: plain socket(2); the result is checked before it is owned.
    let raw = unsafe { libc::socket(family, ty, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // A TCP port held on `::` listens: berthd relays `[::1]` through it (relay_loopback6).
    // Its accepted connections leave TIME_WAIT entries behind, which would keep a restarted
    // berthd from binding the port again without SO_REUSEADDR (which still refuses while
    // another socket listens there, so the port stays exclusive).
    let listens = !udp && ip == IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    if listens {
        set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    }
    match ip {
        IpAddr::V4(ip) => bind_v4(&fd, ip, port)?,
        IpAddr::V6(ip) => bind_v6(&fd, ip, port)?,
    }
    // SAFETY: listen(2) on a socket we own.
    if listens && unsafe { libc::listen(fd.as_raw_fd(), 128) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let port = bound_port(&fd)?;
    Ok((fd, port))
}

fn bind_v4(fd: &OwnedFd, ip: Ipv4Addr, port: u16) -> io::Result<()> {
    // SAFETY: sockaddr_in is plain old data; zeroed is valid.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = port.to_be();
    sa.sin_addr.s_addr = u32::from(ip).to_be();
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: sa lives for the call and len is its size.
    if unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            len,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_int_opt(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a c_int option value of its own size.
    if unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn bind_v6(fd: &OwnedFd, ip: Ipv6Addr, port: u16) -> io::Result<()> {
    set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    // SAFETY: sockaddr_in6 is plain old data; zeroed is valid.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_port = port.to_be();
    sa.sin6_addr.s6_addr = ip.octets();
    let len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    // SAFETY: sa lives for the call and len is its size.
    if unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in6).cast(),
            len,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The port a bound socket got.
fn bound_port(fd: &OwnedFd) -> io::Result<u16> {
    // SAFETY: sockaddr_storage is plain old data; zeroed is valid.
    let mut got: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: got is a writable sockaddr_storage of len bytes.
    if unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut got as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // Both sockaddr_in and sockaddr_in6 keep the port right after the family.
    // SAFETY: the storage holds a sockaddr_in or sockaddr_in6, which share this prefix.
    let port =
        unsafe { (*(&got as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()).sin_port };
    Ok(u16::from_be(port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_from_the_api() {
        let pb = json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                        "53/udp": [{"HostIp": "", "HostPort": ""}],
                        "90/tcp": [{"HostPort": "9000-9005"}]});
        let exposed: BTreeMap<String, Value> = [
            ("80/tcp".to_owned(), json!({})),
            ("443/tcp".to_owned(), json!({})),
        ]
        .into();
        let b = bindings(Some(&pb), Some(&exposed), true).expect("bindings");
        assert_eq!(b.len(), 4);
        assert!(b.contains(&Binding {
            proto: "tcp",
            ctr_port: 80,
            host_ip: Some(Ipv4Addr::LOCALHOST.into()),
            host_port: Some((8080, 8080))
        }));
        assert!(b.contains(&Binding {
            proto: "udp",
            ctr_port: 53,
            host_ip: None,
            host_port: None
        }));
        assert!(b.iter().any(|x| x.ctr_port == 443 && x.host_port.is_none()));
        assert!(b.iter().any(|x| x.host_port == Some((9000, 9005))));
        assert!(bindings(Some(&json!({"x/tcp": []})), None, false).is_err());
        assert!(bindings(
            Some(&json!({"80/tcp": [{"HostPort": "70000"}]})),
            None,
            false
        )
        .is_err());
    }

    #[test]
    fn reservations_hold_ports() {
        let any = Binding {
            proto: "tcp",
            ctr_port: 80,
            host_ip: Some(Ipv4Addr::LOCALHOST.into()),
            host_port: None,
        };
        let r = reserve(&any).expect("free port");
        assert!(r.port > 0);
        let same = Binding {
            host_port: Some((r.port, r.port)),
            ..any.clone()
        };
        let err = reserve(&same).err().expect("in use");
        assert!(
            err.to_string().contains("port is already allocated"),
            "{err}"
        );
        let range = Binding {
            host_port: Some((r.port, r.port.saturating_add(5))),
            ..any
        };
        let r2 = reserve(&range).expect("next in range");
        assert_ne!(r2.port, r.port);
    }

    #[test]
    fn ipv6_host_addresses_and_dual_reservations() {
        let b = bindings(
            Some(&json!({"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}],
                         "81/tcp": [{"HostIp": "[::]", "HostPort": ""}]})),
            None,
            false,
        )
        .expect("IPv6 host addresses");
        assert!(b
            .iter()
            .any(|x| x.host_ip == Some("::1".parse().expect("ip"))));
        assert!(b
            .iter()
            .any(|x| x.host_ip == Some("::".parse().expect("ip"))));
        assert!(bindings(Some(&json!({"80/tcp": [{"HostIp": "::zz"}]})), None, false).is_err());
        let any = Binding {
            proto: "tcp",
            ctr_port: 80,
            host_ip: None,
            host_port: None,
        };
        let (r4, r6) = reserve_dual(&any).expect("a port free on both");
        assert_eq!(r4.port, r6.port);
        // Held on both families now.
        let same = Binding {
            host_port: Some((r4.port, r4.port)),
            ..any
        };
        let e = reserve_on(&same, "::".parse().expect("ip"))
            .err()
            .expect("in use");
        assert_eq!(
            e.to_string(),
            format!(
                "Bind for [::]:{} failed: port is already allocated",
                r4.port
            )
        );
    }
}
