//! The /etc/hostname, /etc/hosts and /etc/resolv.conf a container gets, written under
//! `<data-root>/containers/<id>/` and bind-mounted in.

use std::path::Path;

use super::ContainerError;

pub struct EtcFiles {
    pub hostname: String,
    pub hosts: String,
    pub resolv: String,
}

/// What the files are made from.
pub struct Input<'a> {
    pub hostname: &'a str,
    pub domainname: &'a str,
    pub extra_hosts: &'a [String],
    pub dns: &'a [String],
    pub dns_search: &'a [String],
    pub dns_options: &'a [String],
    pub host_resolv: &'a str,
    /// The container's address on its primary network, if it has one.
    pub own_ip: Option<&'a str>,
    /// Its IPv6 address there, on a network with IPv6 on.
    pub own_ip6: Option<&'a str>,
    /// What `host-gateway` in `--add-host` means: the primary network's gateway.
    pub host_gateway: Option<&'a str>,
    /// On a user-defined network: resolve through 127.0.0.11.
    pub embedded_dns: bool,
    /// Legacy links: (address, names) after the `--add-host` lines, as dockerd orders them.
    pub links: &'a [(String, String)],
}

pub fn render(i: &Input) -> Result<EtcFiles, ContainerError> {
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for e in i.extra_hosts {
        // name:ip, or name=ip (newer CLIs); the ip may be IPv6 with colons.
        let (name, ip) = e
            .split_once('=')
            .or_else(|| e.split_once(':'))
            .filter(|(n, ip)| !n.is_empty() && !ip.is_empty())
            .ok_or_else(|| {
                ContainerError::Invalid(format!(
                    "invalid argument {e:?} for \"--add-host\" flag: bad format for add-host"
                ))
            })?;
        let ip = if ip == "host-gateway" {
            i.host_gateway.unwrap_or("127.0.0.1")
        } else {
            ip
        };
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    for (ip, names) in i.links {
        hosts.push_str(&format!("{ip}\t{names}\n"));
    }
    let fqdn = if i.domainname.is_empty() {
        i.hostname.to_owned()
    } else {
        format!("{}.{}", i.hostname, i.domainname)
    };
    match i.own_ip {
        Some(ip) if fqdn != i.hostname => hosts.push_str(&format!("{ip}\t{fqdn} {}\n", i.hostname)),
        Some(ip) => hosts.push_str(&format!("{ip}\t{fqdn}\n")),
        None => hosts.push_str(&format!("127.0.1.1\t{fqdn}\n")),
    }
    if let (Some(ip6), Some(_)) = (i.own_ip6, i.own_ip) {
        if fqdn != i.hostname {
            hosts.push_str(&format!("{ip6}\t{fqdn} {}\n", i.hostname));
        } else {
            hosts.push_str(&format!("{ip6}\t{fqdn}\n"));
        }
    }
    let host_lines = |prefix: &str| -> Vec<String> {
        i.host_resolv
            .lines()
            .filter(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.trim().to_owned())
            .collect()
    };
    let mut resolv = String::new();
    if i.embedded_dns {
        // --dns servers become the embedded server's upstreams, like Docker.
        resolv.push_str("nameserver 127.0.0.11\n");
    } else if i.dns.is_empty() {
        // The host's resolvers, without loopback ones, which mean nothing inside.
        for l in host_lines("nameserver") {
            if !(l.contains(" 127.") || l.contains(" ::1")) {
                resolv.push_str(&format!("{l}\n"));
            }
        }
    } else {
        for d in i.dns {
            resolv.push_str(&format!("nameserver {d}\n"));
        }
    }
    if i.dns_search.is_empty() {
        for l in host_lines("search") {
            resolv.push_str(&format!("{l}\n"));
        }
    } else if !(i.dns_search.len() == 1 && i.dns_search[0] == ".") {
        resolv.push_str(&format!("search {}\n", i.dns_search.join(" ")));
    }
    let mut opts: Vec<String> = if i.dns_options.is_empty() {
        host_lines("options")
            .iter()
            .flat_map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    } else {
        i.dns_options.to_vec()
    };
    if i.embedded_dns && !opts.iter().any(|o| o.starts_with("ndots:")) {
        opts.push("ndots:0".into());
    }
    if !opts.is_empty() {
        resolv.push_str(&format!("options {}\n", opts.join(" ")));
    }
    Ok(EtcFiles {
        hostname: format!("{}\n", i.hostname),
        hosts,
        resolv,
    })
}

pub fn write(dir: &Path, files: &EtcFiles) -> Result<Vec<(String, String)>, ContainerError> {
    let mut out = Vec::new();
    for (dest, name, body) in [
        ("/etc/hostname", "hostname", &files.hostname),
        ("/etc/hosts", "hosts", &files.hosts),
        ("/etc/resolv.conf", "resolv.conf", &files.resolv),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, body).map_err(|e| ContainerError::io("write", &p, e))?;
        out.push((dest.to_owned(), p.display().to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(extra: &'a [String], dns: &'a [String], resolv: &'a str) -> Input<'a> {
        Input {
            hostname: "abc",
            domainname: "",
            extra_hosts: extra,
            dns,
            dns_search: &[],
            dns_options: &[],
            host_resolv: resolv,
            own_ip: None,
            own_ip6: None,
            host_gateway: None,
            embedded_dns: false,
            links: &[],
        }
    }

    #[test]
    fn ipv6_address_gets_its_own_hosts_line() {
        let mut i = input(&[], &[], "");
        i.own_ip = Some("172.18.0.2");
        i.own_ip6 = Some("fd00:1::2");
        let f = render(&i).expect("ok");
        assert!(f.hosts.contains("172.18.0.2\tabc\n"));
        assert!(f.hosts.ends_with("fd00:1::2\tabc\n"), "{}", f.hosts);
    }

    #[test]
    fn hosts_and_resolv() {
        let extra = ["db:10.0.0.5".to_owned()];
        let host = "nameserver 127.0.0.53\nnameserver 9.9.9.9\nsearch lan\n";
        let f = render(&input(&extra, &[], host)).expect("ok");
        assert!(f.hosts.contains("10.0.0.5\tdb\n"));
        assert!(f.hosts.contains("127.0.1.1\tabc\n"));
        assert_eq!(f.resolv, "nameserver 9.9.9.9\nsearch lan\n");
        let dns = ["1.1.1.1".to_owned()];
        let g = render(&input(&[], &dns, "search lan\n")).expect("ok");
        assert_eq!(g.resolv, "nameserver 1.1.1.1\nsearch lan\n");
        let bad = ["nocolon".to_owned()];
        assert!(render(&input(&bad, &[], "")).is_err());
    }

    #[test]
    fn user_networks_use_the_embedded_server() {
        let gw = ["h:host-gateway".to_owned()];
        let mut i = input(&gw, &[], "nameserver 10.0.0.1\nsearch lan\n");
        i.own_ip = Some("172.18.0.2");
        i.host_gateway = Some("172.18.0.1");
        i.embedded_dns = true;
        let f = render(&i).expect("ok");
        assert!(f.hosts.contains("172.18.0.2\tabc\n"));
        assert!(f.hosts.contains("172.18.0.1\th\n"));
        assert_eq!(
            f.resolv,
            "nameserver 127.0.0.11\nsearch lan\noptions ndots:0\n"
        );
    }
}
