//! Legacy links (`docker run --link name:alias`, `HostConfig.Links`), as dockerd has them.
//!
//! ```text
//!  create ─► register: each "name[:alias]" resolved to a container (following
//!            --network container:), recorded as Link { child id, alias } in the record
//!            (on a user-defined network: the endpoint's Links instead, for the embedded DNS)
//!  start  ─► resolve: every running child's address on the default bridge ─►
//!            environment (ALIAS_PORT_80_TCP_ADDR, ALIAS_ENV_X, ...) and /etc/hosts lines
//!  inspect ─► HostConfig.Links "/<child name>:/<parent name>/<alias>", with current names
//!  rm --link /parent/alias ─► the link is dropped from the parent's record
//! ```
//! Links follow the child by id, so renames on either side keep them; a removed child drops
//! out of them, as from dockerd's link index.

use serde::{Deserialize, Serialize};

use super::model::HostConfig;
use super::{ContainerError, Containers, Record};

/// One link of a container to another (its child).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Link {
    /// The linked container's id.
    pub child: String,
    /// The name the linking container knows it by.
    pub alias: String,
}

/// What a container's links give it at start.
#[derive(Debug, Default)]
pub(super) struct LinkView {
    /// Variables set before the container's own (which override them).
    pub env: Vec<String>,
    /// `/etc/hosts` lines: (address, names).
    pub hosts: Vec<(String, String)>,
}

/// dockerd's `opts.ParseLink`: `name`, `name:alias`, or the stored `/name:/parent/alias`.
pub(super) fn parse(link: &str) -> Result<(String, String), ContainerError> {
    if link.is_empty() {
        return Err(ContainerError::Invalid(
            "empty string specified for links".into(),
        ));
    }
    let parts: Vec<&str> = link.split(':').collect();
    match parts.as_slice() {
        [one] => Ok(((*one).to_owned(), (*one).to_owned())),
        [name, alias] if name.starts_with('/') => {
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            Ok((name[1..].to_owned(), alias.to_owned()))
        }
        [name, alias] => Ok(((*name).to_owned(), (*alias).to_owned())),
        _ => Err(ContainerError::Invalid(format!(
            "bad format for links: {link}"
        ))),
    }
}

/// The variables dockerd's `links.Link.ToEnv` makes for a child at `ip` known as `full`
/// (`/parent/alias`), from its exposed ports (`80/tcp`) and environment.
pub(super) fn env_for(full: &str, ip: &str, ports: &[String], child_env: &[String]) -> Vec<String> {
    let alias = full
        .rsplit('/')
        .next()
        .unwrap_or(full)
        .to_ascii_uppercase()
        .replace('-', "_");
    let mut ports: Vec<(u16, String)> = ports
        .iter()
        .filter_map(|k| {
            let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            Some((p.parse().ok()?, proto.to_ascii_lowercase()))
        })
        .collect();
    // By number, tcp before any other protocol of the same number (dockerd's sort).
    ports.sort_by(|a, b| a.0.cmp(&b.0).then((b.1 == "tcp").cmp(&(a.1 == "tcp"))));
    let mut env = Vec::new();
    if let Some((p, proto)) = ports.first() {
        env.push(format!("{alias}_PORT={proto}://{ip}:{p}"));
    }
    let mut i = 0;
    while i < ports.len() {
        let j = next_contiguous(&ports, i);
        let (p, proto) = &ports[i];
        let key = |p: u16, proto: &str| format!("{alias}_PORT_{p}_{}", proto.to_ascii_uppercase());
        if j > i + 1 {
            let k = key(*p, proto);
            env.push(format!("{k}_START={proto}://{ip}:{p}"));
            env.push(format!("{k}_ADDR={ip}"));
            env.push(format!("{k}_PROTO={proto}"));
            env.push(format!("{k}_PORT_START={p}"));
            let (q, qproto) = &ports[j];
            let kq = key(*p, qproto);
            env.push(format!("{kq}_END={qproto}://{ip}:{q}"));
            env.push(format!("{kq}_PORT_END={q}"));
        }
        for (p, proto) in &ports[i..=j] {
            let k = key(*p, proto);
            env.push(format!("{k}={proto}://{ip}:{p}"));
            env.push(format!("{k}_ADDR={ip}"));
            env.push(format!("{k}_PORT={p}"));
            env.push(format!("{k}_PROTO={proto}"));
        }
        i = j + 1;
    }
    env.push(format!("{alias}_NAME={full}"));
    for v in child_env {
        let Some((k, val)) = v.split_once('=') else {
            continue;
        };
        // dockerd leaves out what builds add and means nothing to the linking container.
        if k != "HOME" && k != "PATH" {
            env.push(format!("{alias}_ENV_{k}={val}"));
        }
    }
    env
}

/// Index of the last port of the run of consecutive numbers starting at `i` (dockerd's
/// `nextContiguous`, which ignores protocols).
fn next_contiguous(ports: &[(u16, String)], i: usize) -> usize {
    let mut value = ports[i].0;
    for (k, (p, _)) in ports.iter().enumerate().skip(i + 1) {
        if u32::from(*p) > u32::from(value) + 1 {
            return k - 1;
        }
        value = *p;
    }
    ports.len() - 1
}

/// The names containers are also known by through links (`/web/db` for `db` linked by
/// `web` as `db`), by child id: `docker ps` lists them after a container's own name.
pub(super) fn names_by_child(recs: &[Record]) -> std::collections::HashMap<String, Vec<String>> {
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in recs {
        for l in &r.links {
            out.entry(l.child.clone())
                .or_default()
                .push(format!("/{}/{}", r.name, l.alias));
        }
    }
    out
}

/// `base` with `over` applied: a variable of `over` replaces the one of the same name.
pub(super) fn merge_env(base: Vec<String>, over: &[String]) -> Vec<String> {
    let mut out = base;
    for v in over {
        let key = v.split('=').next().unwrap_or(v);
        match out
            .iter_mut()
            .find(|e| e.split('=').next().unwrap_or(e) == key)
        {
            Some(slot) => slot.clone_from(v),
            None => out.push(v.clone()),
        }
    }
    out
}

impl Containers {
    /// At create: the links asked for, resolved to containers. On a user-defined network
    /// they become the primary endpoint's `Links` (aliases in the embedded DNS), as dockerd
    /// makes them; elsewhere the record's [`Link`]s.
    pub(super) fn register_links(
        &self,
        host: &mut HostConfig,
        networks: &mut std::collections::BTreeMap<String, crate::network::Endpoint>,
    ) -> Result<Vec<Link>, ContainerError> {
        let asked = std::mem::take(&mut host.links);
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        let mode = match host.network_mode.as_str() {
            "" | "default" => "bridge",
            m => m,
        };
        if mode == "host" {
            return Err(host_and_links());
        }
        if mode.starts_with("container:") {
            return Err(ContainerError::Invalid(
                "conflicting options: container type network can't be used with links. This would result in undefined behavior".into(),
            ));
        }
        if mode != "bridge" && mode != "none" {
            if let Some(ep) = networks.get_mut(mode) {
                if ep.links.is_empty() {
                    for l in &asked {
                        let (name, alias) = parse(l)?;
                        ep.links.push(format!("{name}:{alias}"));
                    }
                }
            }
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for l in &asked {
            let (name, alias) = parse(l)?;
            let mut child = self.get(&name).map_err(|e| match e {
                ContainerError::NotFound(m) => {
                    ContainerError::Invalid(format!("could not get container for {name}: {m}"))
                }
                other => other,
            })?;
            let mut rec = child.record();
            while let Some(other) = rec.host_config.network_mode.strip_prefix("container:") {
                child = self.get(other).map_err(|e| {
                    ContainerError::Invalid(format!("Could not get container for {other}: {e}"))
                })?;
                rec = child.record();
            }
            if rec.host_config.network_mode == "host" {
                return Err(host_and_links());
            }
            out.retain(|x: &Link| x.alias != alias);
            out.push(Link {
                child: rec.id.clone(),
                alias,
            });
        }
        Ok(out)
    }

    /// `HostConfig.Links` of inspect: `/<child>:/<parent>/<alias>` for each child that
    /// still exists, or null.
    pub(super) fn links_json(&self, r: &Record) -> serde_json::Value {
        let shown: Vec<String> = r
            .links
            .iter()
            .filter_map(|l| {
                let child = self.get(&l.child).ok()?.record();
                Some(format!("/{}:/{}/{}", child.name, r.name, l.alias))
            })
            .collect();
        if shown.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!(shown)
        }
    }

    /// At start: what the links give a container on the default bridge. Every child must
    /// be running and on the default bridge (dockerd's messages otherwise).
    pub(super) fn resolve_links(&self, r: &Record) -> Result<LinkView, ContainerError> {
        let mut view = LinkView::default();
        if !r.networks.contains_key("bridge") {
            return Ok(view);
        }
        for l in &r.links {
            let Ok(child) = self.get(&l.child) else {
                continue;
            };
            let c = child.record();
            let full = format!("/{}/{}", r.name, l.alias);
            if !child.is_running() {
                return Err(ContainerError::Runtime(format!(
                    "Cannot link to a non running container: /{} AS {full}",
                    c.name
                )));
            }
            let Some(ip) = c
                .networks
                .get("bridge")
                .map(|e| e.ip.clone())
                .filter(|ip| !ip.is_empty())
            else {
                return Err(ContainerError::Runtime(format!(
                    "Cannot link to /{}, as it does not belong to the default network",
                    c.name
                )));
            };
            let ports: Vec<String> = c
                .config
                .exposed_ports
                .iter()
                .flat_map(|m| m.keys().cloned())
                .collect();
            view.env.extend(env_for(&full, &ip, &ports, &c.config.env));
            // The alias, the child's hostname, and its name unless that is the alias.
            let mut names = format!("{} {}", l.alias, c.config.hostname);
            if l.alias != c.name {
                names = format!("{names} {}", c.name);
            }
            view.hosts.push((ip, names));
        }
        Ok(view)
    }

    /// `DELETE /containers/{name}?link=true`: `name` is `/parent/alias`; the parent forgets
    /// that link.
    pub async fn remove_link(&self, name: &str) -> Result<(), ContainerError> {
        let full = format!("/{}", name.trim_start_matches('/'));
        let no_such = || ContainerError::NotFound(format!("No such container: {full}"));
        let Some((parent, alias)) = full.rsplit_once('/') else {
            return Err(no_such());
        };
        if parent.is_empty() {
            self.get(&full)?;
            return Err(ContainerError::Conflict(
                "Conflict, cannot remove the default link name.".into(),
            ));
        }
        let p = self.get(parent).map_err(|_| no_such())?;
        let _op = p.op.lock().await;
        let rec = p.record();
        // The parent's name must be the one given: `/<id prefix>/alias` names no link.
        if format!("/{}", rec.name) != parent {
            return Err(no_such());
        }
        if !rec
            .links
            .iter()
            .any(|l| l.alias == alias && self.get(&l.child).is_ok())
        {
            return Err(no_such());
        }
        p.update(|r| r.links.retain(|l| l.alias != alias));
        self.persist(&p)?;
        Ok(())
    }
}

fn host_and_links() -> ContainerError {
    ContainerError::Invalid(
        "conflicting options: host type networking can't be used with links. This would result in undefined behavior".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(parse("db").expect("db"), ("db".into(), "db".into()));
        assert_eq!(parse("db:d").expect("db:d"), ("db".into(), "d".into()));
        assert_eq!(
            parse("/db:/web/d").expect("stored form"),
            ("db".into(), "d".into())
        );
        assert!(parse("").is_err());
        assert!(parse("a:b:c").is_err());
    }

    #[test]
    fn env_like_dockerd() {
        let env = env_for(
            "/web/my-db",
            "172.17.0.2",
            &["80/tcp".into(), "53/udp".into()],
            &["PATH=/bin".into(), "PASSWORD=x=y".into(), "JUNK".into()],
        );
        assert_eq!(
            env,
            vec![
                "MY_DB_PORT=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_80_TCP=tcp://172.17.0.2:80",
                "MY_DB_PORT_80_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_80_TCP_PORT=80",
                "MY_DB_PORT_80_TCP_PROTO=tcp",
                "MY_DB_NAME=/web/my-db",
                "MY_DB_ENV_PASSWORD=x=y",
            ]
        );
    }

    #[test]
    fn env_ranges() {
        let ports: Vec<String> = ["8000/tcp", "8001/tcp", "8002/tcp", "9000/tcp"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let env = env_for("/a/b", "10.0.0.2", &ports, &[]);
        assert!(env.contains(&"B_PORT_8000_TCP_START=tcp://10.0.0.2:8000".to_owned()));
        assert!(env.contains(&"B_PORT_8000_TCP_END=tcp://10.0.0.2:8002".to_owned()));
        assert!(env.contains(&"B_PORT_8000_TCP_PORT_END=8002".to_owned()));
        assert!(env.contains(&"B_PORT_8001_TCP_ADDR=10.0.0.2".to_owned()));
        assert!(!env.iter().any(|e| e.starts_with("B_PORT_9000_TCP_START")));
        assert_eq!(env[0], "B_PORT=tcp://10.0.0.2:8000");
    }

    #[test]
    fn own_env_wins() {
        let merged = merge_env(
            vec!["A_PORT=x".into(), "B=1".into()],
            &["B=2".into(), "C=3".into()],
        );
        assert_eq!(merged, vec!["A_PORT=x", "B=2", "C=3"]);
    }
}
