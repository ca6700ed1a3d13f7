//! Published ports: reading `PortBindings`/`PublishAllPorts`, and reserving host ports.
//!
//! A published port is held by a socket bound (not listening) in the daemon's namespace,
//! the way docker-proxy holds it: another program (or container) asking for the same port
//! gets "address in use", and `-P` gets a free port from the kernel. Traffic itself never
//! reaches these sockets; nftables DNATs it to the container first.

use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;
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
    /// A `HostIp` that is not an IPv4 address.
    #[error("invalid IP address: {0}")]
    InvalidHostIp(String),
    /// The kernel gave no free port for `-P` or a `0` host port.
    #[error("allocate a host port: {0}")]
    NoFreePort(#[source] io::Error),
    /// The port asked for is bound by someone else.
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    InUse { ip: Ipv4Addr, port: u16 },
    /// The host address asked for is not one of this host's.
    #[error("Bind for {ip}:{port} failed: {ip} is not an address of this host")]
    NotLocal { ip: Ipv4Addr, port: u16 },
    /// Binding the port failed otherwise.
    #[error("Bind for {ip}:{port} failed: {source}")]
    Bind {
        ip: Ipv4Addr,
        port: u16,
        source: io::Error,
    },
    /// Every port of the range asked for is taken.
    #[error("Bind for {ip}:{lo}-{hi} failed: every port in the range is already allocated")]
    RangeInUse { ip: Ipv4Addr, lo: u16, hi: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub proto: &'static str,
    pub ctr_port: u16,
    /// None (or 0.0.0.0) = every local address.
    pub host_ip: Option<Ipv4Addr>,
    /// An inclusive range; None = any free port.
    pub host_port: Option<(u16, u16)>,
}

pub struct Reservation {
    pub port: u16,
    _sock: OwnedFd,
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
                    if ip.contains(':') {
                        // IPv6 bindings (the CLI adds none by itself): nothing to do here.
                        continue;
                    }
                    Some(
                        ip.parse::<Ipv4Addr>()
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

/// Binds the host side of `b`: the port asked for, the first free one of a range, or any.
pub fn reserve(b: &Binding) -> Result<Reservation, PortError> {
    let ip = b.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let try_port = |port: u16| -> io::Result<Reservation> {
        let (fd, port) = bind_port(b.proto == "udp", ip, port)?;
        Ok(Reservation { port, _sock: fd })
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

/// A socket bound (never listening) to ip:port; port 0 lets the kernel choose. Returns the
/// socket and the port it got.
fn bind_port(udp: bool, ip: Ipv4Addr, port: u16) -> io::Result<(OwnedFd, u16)> {
    let ty = if udp {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    } | libc::SOCK_CLOEXEC;
    // SAFETY: plain socket(2); the result is checked before it is owned.
    let raw = unsafe { libc::socket(libc::AF_INET, ty, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
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
    let mut got: libc::sockaddr_in = sa;
    let mut glen = len;
    // SAFETY: got is a writable sockaddr_in of glen bytes.
    if unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut got as *mut libc::sockaddr_in).cast(),
            &mut glen,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok((fd, u16::from_be(got.sin_port)))
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
            host_ip: Some(Ipv4Addr::LOCALHOST),
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
            host_ip: Some(Ipv4Addr::LOCALHOST),
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
}
