//! The embedded DNS server containers on user-defined networks see at 127.0.0.11:53.
//!
//! berthd opens a UDP socket and a TCP listener inside each such container's network
//! namespace (a socket belongs to the namespace it was created in) and serves them from its
//! own runtime. Names of containers, their network aliases and short ids on the networks the
//! asking container shares are answered here (A records, and AAAA on networks with IPv6 on); everything else is forwarded from
//! the daemon's namespace to the host's resolvers, so loopback resolvers work too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

pub const ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const TTL: u32 = 600;

/// What the server asks the network service: the addresses of `name` as seen from the
/// container `asker` (IPv4 and IPv6), or None when the name is not one of ours.
pub type Lookup = Arc<dyn Fn(&str, &str) -> Option<Vec<IpAddr>> + Send + Sync>;

/// The sockets of one container's server, opened inside its namespace.
pub struct Sockets {
    pub udp: std::net::UdpSocket,
    pub tcp: std::net::TcpListener,
}

/// Binds 127.0.0.11:53 (UDP and TCP) in the calling thread's network namespace.
pub fn bind_here() -> std::io::Result<Sockets> {
    let addr = SocketAddr::from((ADDR, 53));
    let udp = std::net::UdpSocket::bind(addr)?;
    udp.set_nonblocking(true)?;
    let tcp = std::net::TcpListener::bind(addr)?;
    tcp.set_nonblocking(true)?;
    Ok(Sockets { udp, tcp })
}

/// Serves one container until the returned tasks are aborted.
pub fn serve(
    socks: Sockets,
    asker: String,
    lookup: Lookup,
    upstreams: Arc<Vec<SocketAddr>>,
) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let udp = Arc::new(UdpSocket::from_std(socks.udp)?);
    let tcp = TcpListener::from_std(socks.tcp)?;
    let (l1, a1, u1) = (lookup.clone(), asker.clone(), upstreams.clone());
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        loop {
            let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                return;
            };
            let query = buf[..n].to_vec();
            let (udp, l, a, u) = (udp.clone(), l1.clone(), a1.clone(), u1.clone());
            tokio::spawn(async move {
                if let Some(reply) = answer(&query, &a, &l, &u).await {
                    let _ = udp.send_to(&reply, from).await;
                }
            });
        }
    });
    let tcp_task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = tcp.accept().await else {
                return;
            };
            let (l, a, u) = (lookup.clone(), asker.clone(), upstreams.clone());
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 2];
                    if conn.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                    if conn.read_exact(&mut q).await.is_err() {
                        return;
                    }
                    let Some(r) = answer(&q, &a, &l, &u).await else {
                        return;
                    };
                    let mut out = (r.len() as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&r);
                    if conn.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(vec![udp_task, tcp_task])
}

/// The resolvers from a resolv.conf text, on port 53.
pub fn upstreams_from(resolv: &str) -> Vec<SocketAddr> {
    resolv
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some("nameserver"))
                .then(|| it.next())
                .flatten()
                .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

struct Question {
    name: String,
    qtype: u16,
    qclass: u16,
    /// Offset just past the question section.
    end: usize,
}

fn parse_question(msg: &[u8]) -> Option<Question> {
    if msg.len() < 12 || u16::from_be_bytes([msg[4], msg[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        if len & 0xC0 != 0 {
            return None; // no compression in a question we accept
        }
        labels.push(String::from_utf8_lossy(msg.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
    let qclass = u16::from_be_bytes([*msg.get(at + 2)?, *msg.get(at + 3)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        qclass,
        end: at + 4,
    })
}

/// A reply to `query` with `rcode` and an A record for each IPv4 address of `ips`, an AAAA
/// record for each IPv6 one.
fn reply(query: &[u8], q: &Question, rcode: u8, ips: &[IpAddr]) -> Vec<u8> {
    let mut r = Vec::with_capacity(q.end + ips.len() * 28);
    r.extend_from_slice(&query[..2]);
    // QR, opcode copied, AA, RD copied; RA; rcode.
    r.push(0x80 | (query[2] & 0x79) | 0x04);
    r.push(0x80 | (rcode & 0x0F));
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&(ips.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&query[12..q.end]);
    for ip in ips {
        let (kind, data) = match ip {
            IpAddr::V4(v4) => (TYPE_A, v4.octets().to_vec()),
            IpAddr::V6(v6) => (TYPE_AAAA, v6.octets().to_vec()),
        };
        r.extend_from_slice(&[0xC0, 0x0C]);
        r.extend_from_slice(&kind.to_be_bytes());
        r.extend_from_slice(&CLASS_IN.to_be_bytes());
        r.extend_from_slice(&TTL.to_be_bytes());
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(&data);
    }
    r
}

async fn answer(
    query: &[u8],
    asker: &str,
    lookup: &Lookup,
    upstreams: &[SocketAddr],
) -> Option<Vec<u8>> {
    let q = parse_question(query)?;
    if q.qclass == CLASS_IN {
        if let Some(ips) = lookup(q.name.trim_end_matches('.'), asker) {
            // Ours: A records for A, AAAA records for AAAA, an empty answer for any
            // other type (and for AAAA when the name has no IPv6 address).
            let ips: Vec<IpAddr> = ips
                .into_iter()
                .filter(|ip| match ip {
                    IpAddr::V4(_) => q.qtype == TYPE_A,
                    IpAddr::V6(_) => q.qtype == TYPE_AAAA,
                })
                .collect();
            return Some(reply(query, &q, 0, &ips));
        }
    }
    for up in upstreams {
        if let Some(r) = forward(query, *up).await {
            return Some(r);
        }
    }
    Some(reply(query, &q, 2, &[])) // SERVFAIL
}

async fn forward(query: &[u8], upstream: SocketAddr) -> Option<Vec<u8>> {
    let bind: SocketAddr = if upstream.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let sock = UdpSocket::bind(bind).await.ok()?;
    sock.connect(upstream).await.ok()?;
    sock.send(query).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    (n >= 2 && buf[..2] == query[..2]).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    #[tokio::test]
    async fn answers_known_names_and_fails_unknown_without_upstreams() {
        let lookup: Lookup = Arc::new(|name: &str, _asker: &str| match name {
            "web" => Some(vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))]),
            "dual" => Some(vec![
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)),
                "fd00:1::3".parse().ok()?,
            ]),
            _ => None,
        });
        let r = answer(&query("Web", TYPE_A), "me", &lookup, &[])
            .await
            .expect("reply");
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0F, 0);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &[10, 0, 0, 2]);
        let aaaa = answer(&query("web", TYPE_AAAA), "me", &lookup, &[])
            .await
            .expect("reply");
        assert_eq!(u16::from_be_bytes([aaaa[6], aaaa[7]]), 0);
        let aaaa = answer(&query("dual", TYPE_AAAA), "me", &lookup, &[])
            .await
            .expect("reply");
        assert_eq!(u16::from_be_bytes([aaaa[6], aaaa[7]]), 1);
        let v6: std::net::Ipv6Addr = "fd00:1::3".parse().expect("ip6");
        assert_eq!(&aaaa[aaaa.len() - 16..], &v6.octets());
        assert_eq!(&aaaa[aaaa.len() - 28..aaaa.len() - 26], &[0xC0, 0x0C]);
        let a = answer(&query("dual", TYPE_A), "me", &lookup, &[])
            .await
            .expect("reply");
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 0, 0, 3]);
        let other = answer(&query("example.org", TYPE_A), "me", &lookup, &[])
            .await
            .expect("reply");
        assert_eq!(other[3] & 0x0F, 2);
        assert!(parse_question(&[0; 5]).is_none());
    }

    #[test]
    fn resolv_conf_upstreams() {
        let u = upstreams_from("nameserver 10.0.0.1\n# x\nnameserver ::1\nsearch lan\n");
        assert_eq!(u.len(), 2);
        assert_eq!(u[0], "10.0.0.1:53".parse().expect("addr"));
    }
}
