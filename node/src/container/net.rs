//! Containers on networks: which networks a container asks for (create, connect,
//! disconnect), attaching its namespace when it starts, and what inspect and ps show.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::{netns, ContainerError, Containers, Ctr, Record};
use crate::network::{ports, Attachee, Endpoint, EndpointAddrs, NetworkError, PortMapping};

/// The network mode as Docker reports it: `default` and empty mean `bridge`.
pub(super) fn mode(r: &Record) -> &str {
    match r.host_config.network_mode.as_str() {
        "" | "default" => "bridge",
        m => m,
    }
}

/// Whether a mode names a network (as opposed to host, none, container:<id>).
fn is_network(mode: &str) -> bool {
    !matches!(mode, "host" | "none") && !mode.starts_with("container:")
}

/// A container's primary network gives it eth0, its default route and published ports:
/// only a bridge network can (an overlay is one more endpoint beside the default bridge).
/// Under `--bridge none` (`bridgeless`) there is no default bridge to stand beside, and an
/// overlay is primary itself: eth0 and DNS, but no default route and no published ports.
fn check_primary(
    net: &crate::network::NetworkRecord,
    bridgeless: bool,
) -> Result<(), ContainerError> {
    if net.driver == "bridge" || (bridgeless && net.driver == "overlay") {
        return Ok(());
    }
    Err(ContainerError::Invalid(format!(
        "network {} cannot be used by containers",
        net.name
    )))
}

/// `check_endpoint`, except that a network that does not exist (yet) is not an error: as
/// with dockerd, that fails the start, not the create, so the endpoint is kept by the name
/// given, with no network id, and looked up when the container starts. (`docker run`
/// answers a 404 from create by pulling the image.)
fn check_or_defer(
    nets: &crate::network::Networks,
    key: &str,
    ep: &mut Endpoint,
) -> Result<Option<crate::network::NetworkRecord>, ContainerError> {
    match nets.check_endpoint(key, ep) {
        Ok(rec) => Ok(Some(rec)),
        Err(NetworkError::NotFound(_)) => {
            ep.network_id.clear();
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// One `EndpointsConfig` entry as the API sends it.
fn endpoint_from(v: Option<&Value>) -> Endpoint {
    let Some(v) = v else {
        return Endpoint::default();
    };
    let strings = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    Endpoint {
        aliases: strings("Aliases"),
        links: strings("Links"),
        ipv4_request: v
            .pointer("/IPAMConfig/IPv4Address")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        ipv6_request: v
            .pointer("/IPAMConfig/IPv6Address")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        link_local_ips: v
            .pointer("/IPAMConfig/LinkLocalIPs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        mac_request: v
            .get("MacAddress")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        driver_opts: v
            .get("DriverOpts")
            .and_then(|d| serde_json::from_value(d.clone()).ok())
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// The endpoints a create request's `NetworkingConfig` asks for, by the key it used.
pub(super) fn requested_endpoints(networking: Option<&Value>) -> BTreeMap<String, Endpoint> {
    networking
        .and_then(|n| n.get("EndpointsConfig"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), endpoint_from(Some(v))))
                .collect()
        })
        .unwrap_or_default()
}

impl Containers {
    /// The networks containers are attached to.
    pub(crate) fn networks(&self) -> &crate::network::Networks {
        &self.inner.nets
    }

    /// Whether berthd runs with `--bridge none` (no default bridge network).
    fn bridgeless(&self) -> bool {
        self.inner.nets.default_network() == crate::network::NO_BRIDGE
    }

    /// Where a container's network namespace is pinned while it runs.
    pub(crate) fn netns_path(&self, id: &str) -> std::path::PathBuf {
        netns::path(&self.inner.cfg.exec_root, id)
    }

    /// At create: endpoints on swarm networks (`--network <attachable overlay>`) get their
    /// address from the managers. A container whose `--network` is an overlay keeps the
    /// default bridge as its primary network (eth0: default route, published ports), as
    /// task containers do, and has the overlay as one more endpoint; under `--bridge none`
    /// the overlay stays its primary network (`check_primary`).
    pub(super) async fn swarm_endpoints(
        &self,
        network_mode: &mut String,
        mut eps: BTreeMap<String, Endpoint>,
        id: &str,
    ) -> Result<BTreeMap<String, Endpoint>, ContainerError> {
        let mut keys: Vec<String> = eps.keys().cloned().collect();
        let mode = network_mode.clone();
        if is_network(&mode) && !matches!(mode.as_str(), "" | "default" | "bridge") {
            keys.push(mode.clone());
        }
        keys.sort();
        keys.dedup();
        for key in keys {
            let Some(a) = self.inner.nets.attach_swarm(&key, id).await? else {
                continue;
            };
            let mut ep = eps.remove(&key).unwrap_or_default();
            ep.ipv4_request = a.address.to_string();
            eps.insert(a.name.clone(), ep);
            if key == mode {
                *network_mode = match self.bridgeless() {
                    true => a.name.clone(),
                    false => "bridge".into(),
                };
            }
        }
        Ok(eps)
    }

    /// At create: the endpoints a container will have, checked against the networks.
    pub(super) fn plan_networks(
        &self,
        network_mode: &str,
        endpoints: &BTreeMap<String, Endpoint>,
        ports_wanted: bool,
    ) -> Result<BTreeMap<String, Endpoint>, ContainerError> {
        let nets = &self.inner.nets;
        let mode = match network_mode {
            "" | "default" => "bridge",
            m => m,
        };
        let configs = Some(endpoints).filter(|e| !e.is_empty());
        let mut out = BTreeMap::new();
        if !is_network(mode) {
            if let Some(c) = configs {
                if c.keys().any(|k| k != mode && k != "default") {
                    return Err(ContainerError::Invalid(format!(
                        "container cannot be connected to network endpoints when it uses --network {mode}"
                    )));
                }
            }
            if mode == "host" && ports_wanted {
                tracing::debug!("published ports are discarded when using host network mode");
            }
            return Ok(out);
        }
        // A network that does not exist yet is looked up at start (`check_or_defer`).
        let primary = match nets.find(mode) {
            Ok(p) => Some(p),
            Err(NetworkError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let primary_id = primary.as_ref().map(|p| p.id.as_str());
        if let Some(p) = &primary {
            check_primary(p, self.bridgeless())?;
            if p.driver == "overlay" && ports_wanted {
                return Err(ContainerError::Invalid(format!(
                    "published ports need the default bridge, and this daemon runs with --bridge none (network {} is an overlay)",
                    p.name
                )));
            }
        }
        let mut ep = configs
            .and_then(|c| {
                c.get(mode)
                    .or_else(|| c.get("default"))
                    .or_else(|| primary_id.and_then(|id| c.get(id)))
            })
            .cloned()
            .unwrap_or_default();
        let key = match check_or_defer(nets, primary_id.unwrap_or(mode), &mut ep)? {
            Some(p) => p.name,
            None => mode.to_owned(),
        };
        out.insert(key, ep);
        for (k, v) in configs.into_iter().flatten() {
            if k == mode || k == "default" || Some(k.as_str()) == primary_id {
                continue;
            }
            let mut ep = v.clone();
            match check_or_defer(nets, k, &mut ep)? {
                Some(rec) if matches!(rec.name.as_str(), "host" | "none") => {
                    return Err(ContainerError::Invalid(format!(
                        "container cannot be connected to {} and {mode} at once",
                        rec.name
                    )));
                }
                Some(rec) => {
                    out.insert(rec.name, ep);
                }
                None => {
                    out.insert(k.clone(), ep);
                }
            }
        }
        Ok(out)
    }

    /// At start: the container's network namespace (None = the host's) attached to its
    /// networks, with its ports published. Records what it got in the container.
    pub(super) async fn setup_network(
        &self,
        rec: &Record,
    ) -> Result<(Option<String>, BTreeMap<String, Endpoint>, Vec<PortMapping>), ContainerError>
    {
        let mode = mode(rec);
        if mode == "host" {
            return Ok((None, BTreeMap::new(), Vec::new()));
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let other = self.get(other)?;
            if !other.is_running() {
                return Err(ContainerError::Conflict(format!(
                    "cannot join network of a non running container: {}",
                    other.id
                )));
            }
            let p = netns::path(&self.inner.cfg.exec_root, &other.id);
            return Ok((Some(p.display().to_string()), BTreeMap::new(), Vec::new()));
        }
        let p = netns::path(&self.inner.cfg.exec_root, &rec.id);
        netns::remove(&p);
        netns::create(&p)?;
        let mut eps = rec.networks.clone();
        let primary = eps
            .keys()
            .find(|k| k.as_str() == mode)
            .cloned()
            .unwrap_or_else(|| mode.to_owned());
        for (name, ep) in eps.iter_mut() {
            if ep.network_id.is_empty() {
                // Named at create before it existed: looked up now, as dockerd does.
                let net = self.inner.nets.check_endpoint(name, ep)?;
                if *name == primary {
                    check_primary(&net, self.bridgeless())?;
                }
                continue;
            }
            // A network recreated under the same name since create: Docker refuses to start.
            if self.inner.nets.find(&ep.network_id).is_err() {
                return Err(ContainerError::NotFound(format!(
                    "network {name} not found"
                )));
            }
        }
        self.inner
            .nets
            .attach(&attachee(rec, &p, &primary), &mut eps, 0)
            .await?;
        let wanted = ports::bindings(
            rec.host_config.port_bindings.as_ref(),
            rec.config.exposed_ports.as_ref(),
            rec.host_config.publish_all_ports,
        )?;
        let mut published = Vec::new();
        if let Some(addrs) = eps.get(&primary).and_then(endpoint_addrs) {
            published = self
                .inner
                .nets
                .publish(&rec.id, &rec.name, addrs, &wanted)?;
        }
        Ok((Some(p.display().to_string()), eps, published))
    }

    /// After a restart of berthd: a running container's endpoints, DNS and ports again.
    pub(super) async fn restore_network(&self, c: &Ctr) {
        let rec = c.record();
        if !is_network(mode(&rec)) || rec.networks.is_empty() {
            return;
        }
        let p = netns::path(&self.inner.cfg.exec_root, &rec.id);
        let primary = mode(&rec).to_owned();
        self.inner
            .nets
            .restore(&attachee(&rec, &p, &primary), &rec.networks)
            .await;
        if let Some(addrs) = rec.networks.get(&primary).and_then(endpoint_addrs) {
            self.inner.nets.restore_ports(&rec.id, addrs, &rec.ports);
        }
    }

    /// `network connect`: recorded for the next start; attached now if running.
    pub async fn connect(&self, net_key: &str, body: Value) -> Result<(), ContainerError> {
        let c = self.get(body_container(&body))?;
        let _op = c.op.lock().await;
        let rec = c.record();
        let m = mode(&rec).to_owned();
        if !is_network(&m) {
            return Err(ContainerError::Forbidden(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (it uses --network {m})"
            )));
        }
        let mut ep = endpoint_from(body.get("EndpointConfig"));
        let net = self.inner.nets.check_endpoint(net_key, &mut ep)?;
        if matches!(net.name.as_str(), "host" | "none") {
            return Err(ContainerError::Forbidden(format!(
                "container cannot be disconnected from host network or connected to host network (--network {})",
                net.name
            )));
        }
        if rec.networks.values().any(|e| e.network_id == net.id) {
            return Err(ContainerError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, net.name
            )));
        }
        let mut eps = BTreeMap::from([(net.name.clone(), ep)]);
        if c.is_running() {
            let p = netns::path(&self.inner.cfg.exec_root, &rec.id);
            let n = self.inner.nets.interface_count(&p).await;
            self.inner
                .nets
                .attach(&attachee(&rec, &p, &m), &mut eps, n)
                .await?;
        }
        c.update(|r| r.networks.extend(eps));
        self.persist(&c)?;
        Ok(())
    }

    /// `network disconnect`.
    pub async fn disconnect(&self, net_key: &str, body: Value) -> Result<(), ContainerError> {
        let c = self.get(body_container(&body))?;
        let _op = c.op.lock().await;
        let net = self.inner.nets.find(net_key)?;
        let rec = c.record();
        let Some((name, ep)) = rec
            .networks
            .iter()
            .find(|(_, e)| e.network_id == net.id)
            .map(|(n, e)| (n.clone(), e.clone()))
        else {
            return Err(ContainerError::Forbidden(format!(
                "container {} is not connected to network {}",
                rec.id, net.name
            )));
        };
        if c.is_running() && !ep.ip.is_empty() {
            let p = netns::path(&self.inner.cfg.exec_root, &rec.id);
            self.inner.nets.detach_one(&rec.id, &p, &ep).await?;
        }
        c.update(|r| {
            r.networks.remove(&name);
        });
        self.persist(&c)?;
        Ok(())
    }
}

/// The `Container` a connect/disconnect body names.
fn body_container(body: &Value) -> &str {
    body.get("Container")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn attachee<'a>(rec: &'a Record, netns: &'a std::path::Path, primary: &'a str) -> Attachee<'a> {
    Attachee {
        id: &rec.id,
        name: &rec.name,
        netns,
        primary,
        dns: &rec.host_config.dns,
    }
}

/// The addresses an endpoint got, for its published ports.
fn endpoint_addrs(ep: &Endpoint) -> Option<EndpointAddrs> {
    Some(EndpointAddrs {
        ip: ep.ip.parse::<Ipv4Addr>().ok()?,
        ip6: ep.ip6.parse().ok(),
    })
}

/// Clears what a container held only while running.
pub(super) fn clear_runtime(r: &mut Record) {
    for ep in r.networks.values_mut() {
        ep.clear_runtime();
    }
    r.ports.clear();
}

/// The address other containers and /etc/hosts know this container by.
pub(super) fn primary_ip(r: &Record) -> Option<(String, String)> {
    let ep = r.networks.get(mode(r))?;
    (!ep.ip.is_empty()).then(|| (ep.ip.clone(), ep.gateway.clone()))
}

/// Its IPv6 address there, on a network with IPv6 on.
pub(super) fn primary_ip6(r: &Record) -> Option<String> {
    let ep = r.networks.get(mode(r))?;
    (!ep.ip6.is_empty()).then(|| ep.ip6.clone())
}

/// Whether the container resolves through the embedded DNS server.
pub(super) fn uses_embedded_dns(nets: &crate::network::Networks, r: &Record) -> bool {
    r.networks.values().any(|e| {
        nets.find(&e.network_id)
            .map(|n| !n.predefined())
            .unwrap_or(false)
    })
}

/// `NetworkSettings.Ports`: published ports with their host side, exposed ones as null.
fn ports_json(r: &Record) -> Value {
    let mut m = serde_json::Map::new();
    for k in r.config.exposed_ports.iter().flat_map(|e| e.keys()) {
        m.insert(k.clone(), Value::Null);
    }
    for p in &r.ports {
        let k = format!("{}/{}", p.ctr_port, p.proto);
        let entry = json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()});
        match m.get_mut(&k) {
            Some(Value::Array(a)) => a.push(entry),
            _ => {
                m.insert(k, json!([entry]));
            }
        }
    }
    Value::Object(m)
}

/// `Ports` in `docker ps`'s list form.
pub(super) fn ports_list(r: &Record) -> Value {
    let mut out = Vec::new();
    for p in &r.ports {
        out.push(json!({"IP": p.host_ip, "PrivatePort": p.ctr_port, "PublicPort": p.host_port, "Type": p.proto}));
    }
    for k in r.config.exposed_ports.iter().flat_map(|e| e.keys()) {
        if let Ok((port, proto)) = ports::parse_port_key(k) {
            if !r
                .ports
                .iter()
                .any(|p| p.ctr_port == port && p.proto == proto)
            {
                out.push(json!({"PrivatePort": port, "Type": proto}));
            }
        }
    }
    Value::Array(out)
}

fn endpoint_json(ep: &Endpoint) -> Value {
    let ipam =
        if ep.ipv4_request.is_empty() && ep.ipv6_request.is_empty() && ep.link_local_ips.is_empty()
        {
            Value::Null
        } else {
            let mut m = json!({"IPv4Address": ep.ipv4_request});
            if !ep.ipv6_request.is_empty() {
                m["IPv6Address"] = json!(ep.ipv6_request);
            }
            if !ep.link_local_ips.is_empty() {
                m["LinkLocalIPs"] = json!(ep.link_local_ips);
            }
            m
        };
    // The address it has while attached, else the one asked for (API ≥ 1.44).
    let mac = if ep.mac.is_empty() {
        &ep.mac_request
    } else {
        &ep.mac
    };
    let list = |v: &Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
    json!({
        "IPAMConfig": ipam, "Links": list(&ep.links), "Aliases": list(&ep.aliases),
        "MacAddress": mac, "DriverOpts": if ep.driver_opts.is_empty() { Value::Null } else { json!(ep.driver_opts) },
        "NetworkID": ep.network_id, "EndpointID": ep.endpoint_id, "Gateway": ep.gateway,
        "IPAddress": ep.ip, "IPPrefixLen": ep.prefix, "IPv6Gateway": ep.gateway6,
        "GlobalIPv6Address": ep.ip6, "GlobalIPv6PrefixLen": ep.prefix6, "DNSNames": null,
    })
}

/// `NetworkSettings` of inspect.
pub(super) fn settings_json(
    r: &Record,
    exec_root: &std::path::Path,
    net_ids: &dyn Fn(&str) -> String,
) -> Value {
    let m = mode(r);
    let mut networks = serde_json::Map::new();
    for (name, ep) in &r.networks {
        networks.insert(name.clone(), endpoint_json(ep));
    }
    if matches!(m, "host" | "none") {
        let mut ep = Endpoint {
            network_id: net_ids(m),
            ..Default::default()
        };
        ep.clear_runtime();
        networks.insert(m.to_owned(), endpoint_json(&ep));
    }
    let running = !r.state.started_at.is_empty()
        && matches!(r.state.status.as_str(), "running" | "paused" | "restarting");
    let sandbox = if m == "host" || !running {
        String::new()
    } else if let Some(other) = m.strip_prefix("container:") {
        netns::path(exec_root, other).display().to_string()
    } else {
        netns::path(exec_root, &r.id).display().to_string()
    };
    let bridge = r.networks.get("bridge");
    let pick = |f: &dyn Fn(&Endpoint) -> Value, empty: Value| bridge.map(f).unwrap_or(empty);
    json!({
        "Bridge": "", "SandboxID": if sandbox.is_empty() { String::new() } else { r.id.clone() },
        "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports_json(r), "SandboxKey": sandbox,
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": pick(&|e| json!(e.endpoint_id), json!("")),
        "Gateway": pick(&|e| json!(e.gateway), json!("")),
        "GlobalIPv6Address": pick(&|e| json!(e.ip6), json!("")),
        "GlobalIPv6PrefixLen": pick(&|e| json!(e.prefix6), json!(0)),
        "IPAddress": pick(&|e| json!(e.ip), json!("")),
        "IPPrefixLen": pick(&|e| json!(e.prefix), json!(0)),
        "IPv6Gateway": pick(&|e| json!(e.gateway6), json!("")),
        "MacAddress": pick(&|e| json!(e.mac), json!("")),
        "Networks": networks,
    })
}

/// Containers attached (in their records) to a network id: `network rm` of a network whose
/// containers are stopped is allowed, like Docker; this serves filters.
pub(super) fn on_network(r: &Record, key: &str) -> bool {
    r.networks.iter().any(|(name, ep)| {
        name == key || ep.network_id == key || (key.len() >= 12 && ep.network_id.starts_with(key))
    }) || mode(r) == key
}
