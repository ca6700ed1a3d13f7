//! The /etc/hostname, /etc/hosts and /etc/resolv.conf a container gets, written under
//! `<data-root>/containers/<id>/` and bind-mounted in.

use std::path::Path;

use super::ContainerError;

pub struct EtcFiles {
    pub hostname: String,
    pub hosts: String,
    pub resolv: String,
}

pub fn render(
    hostname: &str,
    domainname: &str,
    extra_hosts: &[String],
    dns: &[String],
    host_resolv: &str,
) -> Result<EtcFiles, ContainerError> {
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for e in extra_hosts {
        let (name, ip) = e.split_once(':').ok_or_else(|| {
            ContainerError::Invalid(format!(
                "invalid argument {e:?} for \"--add-host\" flag: bad format for add-host"
            ))
        })?;
        let ip = if ip == "host-gateway" {
            "127.0.0.1"
        } else {
            ip
        };
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    let fqdn = if domainname.is_empty() {
        hostname.to_owned()
    } else {
        format!("{hostname}.{domainname}")
    };
    hosts.push_str(&format!("127.0.1.1\t{fqdn}\n"));
    let resolv = if dns.is_empty() {
        // Like Docker: the host's file without loopback resolvers, which mean nothing inside.
        host_resolv
            .lines()
            .filter(|l| {
                !(l.trim_start().starts_with("nameserver")
                    && (l.contains(" 127.") || l.contains(" ::1")))
            })
            .map(|l| format!("{l}\n"))
            .collect()
    } else {
        let mut s: String = dns.iter().map(|d| format!("nameserver {d}\n")).collect();
        s.extend(
            host_resolv
                .lines()
                .filter(|l| l.starts_with("search") || l.starts_with("options"))
                .map(|l| format!("{l}\n")),
        );
        s
    };
    Ok(EtcFiles {
        hostname: format!("{hostname}\n"),
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

    #[test]
    fn hosts_and_resolv() {
        let f = render(
            "abc",
            "",
            &["db:10.0.0.5".into()],
            &[],
            "nameserver 127.0.0.53\nnameserver 9.9.9.9\nsearch lan\n",
        )
        .expect("ok");
        assert!(f.hosts.contains("10.0.0.5\tdb\n"));
        assert!(f.hosts.contains("127.0.1.1\tabc\n"));
        assert_eq!(f.resolv, "nameserver 9.9.9.9\nsearch lan\n");
        let g = render("abc", "", &[], &["1.1.1.1".into()], "search lan\n").expect("ok");
        assert_eq!(g.resolv, "nameserver 1.1.1.1\nsearch lan\n");
        assert!(render("abc", "", &["nocolon".into()], &[], "").is_err());
    }
}
