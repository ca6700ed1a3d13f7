//! Endpoints: containers attached to networks (addresses from IPAM, interfaces from the
//! network's driver), their published ports, their re-registration after a restart of
//! berthd, and the names the embedded DNS server answers from them.
//!
//! ```text
//!  attach: plan (addresses, under the lock) ─► namespace thread: driver.join per network,
//!          default route, DNS sockets ─► record endpoints, serve DNS ─► events
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::ErrorKind;

use super::driver::{EndpointAddrs, Link, NetworkDriver, Sandbox};
use super::error::{NetworkError, Result};
use super::ipam::{self, Subnet};
use super::ipam6::Subnet6;
use super::netlink::Netlink;
use super::{dns, new_id, Active, Attachee, Endpoint, NetworkRecord, Networks, PortMapping, State};

/// One endpoint of an attach, its address allocated.
struct Planned {
    net_name: String,
    link: Link,
    driver: Arc<dyn NetworkDriver>,
}

/// `IPAMConfig.LinkLocalIPs`, checked: addresses (dockerd's "invalid link-local IP
/// address"), IPv4 or IPv6.
fn link_local_ips(asked: &[String]) -> Result<Vec<IpAddr>> {
    asked
        .iter()
        .map(|a| {
            a.parse::<IpAddr>()
                .map_err(|_| NetworkError::invalid(format!("invalid link-local IP address: {a}")))
        })
        .collect()
}

/// `IPAMConfig.IPv6Address` (`--ip6`), checked against the network.
fn check_ipv6_request(rec: &NetworkRecord, asked: &str) -> Result<()> {
    if !rec.enable_ipv6 {
        return Err(NetworkError::invalid(format!(
            "invalid IPv6 address {asked}: IPv6 is not enabled on network {}",
            rec.name
        )));
    }
    if !rec.user_subnet6 {
        return Err(NetworkError::invalid(
            "user specified IP address is supported only when connecting to networks with user configured subnets",
        ));
    }
    let ip: Ipv6Addr = asked
        .parse()
        .map_err(|_| NetworkError::invalid(format!("invalid IPv6 address: {asked}")))?;
    let s: Subnet6 = rec
        .subnet6
        .parse()
        .map_err(|e: super::ipam6::Ipam6Error| NetworkError::Internal(e.to_string()))?;
    if !s.contains(ip) {
        return Err(NetworkError::invalid(format!(
            "no configured subnet or ip-range contain the IP address {ip}"
        )));
    }
    Ok(())
}

impl Networks {
    /// Checks an endpoint request at create/connect time and fills in the network id.
    pub fn check_endpoint(&self, net_key: &str, ep: &mut Endpoint) -> Result<NetworkRecord> {
        let rec = self.find(net_key)?;
        let user_defined = !rec.predefined();
        if !ep.aliases.is_empty() && !user_defined {
            return Err(NetworkError::invalid(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
        if !ep.ipv4_request.is_empty() {
            if !rec.user_subnet {
                return Err(NetworkError::invalid(
                    "user specified IP address is supported only when connecting to networks with user configured subnets",
                ));
            }
            let ip: Ipv4Addr = ep.ipv4_request.parse().map_err(|_| {
                NetworkError::invalid(format!("invalid IPv4 address: {}", ep.ipv4_request))
            })?;
            let s: Subnet = rec
                .subnet
                .parse()
                .map_err(NetworkError::ipam(ErrorKind::InvalidArgument))?;
            if !s.contains(ip) {
                return Err(NetworkError::invalid(format!(
                    "no configured subnet or ip-range contain the IP address {ip}"
                )));
            }
        }
        if !ep.ipv6_request.is_empty() {
            check_ipv6_request(&rec, &ep.ipv6_request)?;
        }
        if !ep.mac_request.is_empty() {
            ipam::parse_mac(&ep.mac_request)
                .map_err(NetworkError::ipam(ErrorKind::InvalidArgument))?;
        }
        link_local_ips(&ep.link_local_ips)?;
        ep.network_id = rec.id.clone();
        Ok(rec)
    }

    /// Attaches a container's namespace to its networks: addresses, interfaces made by
    /// each network's driver inside the namespace, default route, DNS. `eps` is updated
    /// with what each endpoint got. On error nothing stays allocated; the links go with
    /// the namespace.
    pub async fn attach(
        &self,
        who: &Attachee<'_>,
        eps: &mut BTreeMap<String, Endpoint>,
        first_if: usize,
    ) -> Result<()> {
        if eps.is_empty() {
            return Ok(());
        }
        let plan = self.plan(who.primary, eps, first_if)?;
        let want_dns = first_if == 0 && plan.iter().any(|p| !p.link.network.predefined());
        // An overlay's gateway is no way out (nothing on the node routes its subnet, as in
        // Docker, where egress is docker_gwbridge's): only a bridge gives the default route.
        let default_net = (first_if == 0)
            .then(|| {
                plan.iter()
                    .find(|p| !p.link.network.internal && p.link.network.driver != "overlay")
            })
            .flatten();
        let default_gw = default_net.map(|p| p.link.gateway);
        let default_gw6 = default_net.and_then(|p| p.link.gateway6);
        // A container's first attach on swarm networks carries their VIP rules, so that
        // its process can reach services as soon as it starts (a later `connect` leaves
        // them to the agent, which renders all of the container's networks at once).
        let swarm_ids: Vec<String> = plan
            .iter()
            .filter(|p| p.link.network.driver == "overlay")
            .map(|p| p.link.network.id.clone())
            .collect();
        let vip_rules = (first_if == 0)
            .then(|| self.vip_rules_for(&swarm_ids))
            .flatten();
        let links: Vec<(Arc<dyn NetworkDriver>, Link)> = plan
            .iter()
            .map(|p| (p.driver.clone(), p.link.clone()))
            .collect();
        let res = run_in_netns(who.netns.to_owned(), move |sb| {
            for (driver, link) in &links {
                driver.join(sb, link)?;
            }
            if let Some(gw) = default_gw {
                sb.ctr
                    .add_default_route(gw)
                    .map_err(|e| NetworkError::kernel(format!("default route via {gw}"), e))?;
            }
            if let Some(gw) = default_gw6 {
                sb.ctr
                    .add_default_route6(gw)
                    .map_err(|e| NetworkError::kernel(format!("default route via {gw}"), e))?;
            }
            if let Some(script) = &vip_rules {
                // Not fatal: the agent applies them again on its next pass.
                if let Err(e) = super::nft::apply(script) {
                    tracing::debug!(error = %e, "VIP load balancing rules at attach");
                }
            }
            if want_dns {
                return dns::bind_here()
                    .map(Some)
                    .map_err(|e| NetworkError::kernel("embedded DNS on 127.0.0.11:53", e));
            }
            Ok(None)
        })
        .await;
        let socks = match res {
            Ok(s) => s,
            Err(e) => {
                release(&mut self.state(), &plan);
                return Err(NetworkError::Attach(Box::new(e)));
            }
        };
        self.record(who, eps, &plan, socks);
        Ok(())
    }

    /// The address of each endpoint, primary network first; all or none.
    fn plan(
        &self,
        primary: &str,
        eps: &BTreeMap<String, Endpoint>,
        first_if: usize,
    ) -> Result<Vec<Planned>> {
        let mut order: Vec<&String> = eps.keys().collect();
        order.sort_by_key(|n| n.as_str() != primary);
        let mut st = self.state();
        let mut plan = Vec::new();
        for (i, name) in order.into_iter().enumerate() {
            match self.plan_one(&mut st, name, &eps[name], format!("eth{}", first_if + i)) {
                Ok(p) => plan.push(p),
                Err(e) => {
                    release(&mut st, &plan);
                    return Err(e);
                }
            }
        }
        Ok(plan)
    }

    fn plan_one(
        &self,
        st: &mut State,
        name: &str,
        ep: &Endpoint,
        ifname: String,
    ) -> Result<Planned> {
        let net = st
            .nets
            .get_mut(&ep.network_id)
            .ok_or_else(|| NetworkError::NotFound(format!("network {name} not found")))?;
        let driver = self.inner.drivers.get(&net.rec.driver)?.clone();
        let alloc = net
            .alloc
            .as_mut()
            .ok_or_else(|| NetworkError::invalid(format!("network {name} has no addresses")))?;
        let link_local = link_local_ips(&ep.link_local_ips)?;
        let ip = if ep.ipv4_request.is_empty() {
            alloc
                .allocate()
                .map_err(NetworkError::ipam(ErrorKind::Internal))?
        } else {
            let ip: Ipv4Addr = ep.ipv4_request.parse().map_err(|_| {
                NetworkError::invalid(format!("invalid IPv4 address: {}", ep.ipv4_request))
            })?;
            alloc
                .claim(ip)
                .map_err(NetworkError::ipam(ErrorKind::Forbidden))?;
            ip
        };
        let mac = if ep.mac_request.is_empty() {
            Ok(ipam::mac_for(ip))
        } else {
            ipam::parse_mac(&ep.mac_request).map_err(NetworkError::ipam(ErrorKind::InvalidArgument))
        };
        let (prefix, gateway) = (alloc.subnet.prefix, alloc.gateway);
        let mac_and_ip6 = mac.and_then(|m| Ok((m, plan_ip6(net.alloc6.as_mut(), ep)?)));
        let (mac, ip6) = match mac_and_ip6 {
            Ok(m) => m,
            Err(e) => {
                if let Some(a) = net.alloc.as_mut() {
                    a.release(ip);
                }
                return Err(e);
            }
        };
        Ok(Planned {
            net_name: name.to_owned(),
            link: Link {
                network: net.rec.clone(),
                ifname,
                ip,
                prefix,
                gateway,
                mac,
                link_local,
                ip6: ip6.map(|(ip, p, _)| (ip, p)),
                gateway6: ip6.map(|(_, _, gw)| gw),
            },
            driver,
        })
    }

    /// After a successful attach: the endpoints as DNS and inspect see them, the DNS
    /// server, and the connect events.
    fn record(
        &self,
        who: &Attachee<'_>,
        eps: &mut BTreeMap<String, Endpoint>,
        plan: &[Planned],
        socks: Option<dns::Sockets>,
    ) {
        let mut st = self.state();
        for p in plan {
            let Some(ep) = eps.get_mut(&p.net_name) else {
                continue;
            };
            let l = &p.link;
            ep.endpoint_id = new_id();
            ep.ip = l.ip.to_string();
            ep.prefix = l.prefix;
            ep.gateway = l.gateway.to_string();
            ep.mac = ipam::format_mac(&l.mac);
            if let (Some((ip6, prefix6)), Some(gw6)) = (l.ip6, l.gateway6) {
                ep.ip6 = ip6.to_string();
                ep.prefix6 = prefix6;
                ep.gateway6 = gw6.to_string();
            }
            if let Some(net) = st.nets.get_mut(&l.network.id) {
                net.active.insert(who.id.to_owned(), active(who, ep, l.ip));
            }
        }
        if let Some(socks) = socks {
            let tasks = self.start_dns(socks, who.id, who.dns);
            st.dns.insert(who.id.to_owned(), tasks);
        }
        drop(st);
        for p in plan {
            self.inner.events.publish(
                "network",
                "connect",
                &p.link.network.id,
                BTreeMap::from([
                    ("container".into(), who.id.to_owned()),
                    ("name".into(), p.net_name.clone()),
                    ("type".into(), p.link.network.driver.clone()),
                ]),
            );
        }
    }

    fn start_dns(
        &self,
        socks: dns::Sockets,
        ctr_id: &str,
        dns_opt: &[String],
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let upstreams: Vec<SocketAddr> = if dns_opt.is_empty() {
            dns::upstreams_from(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
        } else {
            dns_opt
                .iter()
                .filter_map(|d| d.parse::<std::net::IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
                .collect()
        };
        let me = self.clone();
        let lookup: dns::Lookup = Arc::new(move |name: &str, asker: &str| me.resolve(name, asker));
        match dns::serve(socks, ctr_id.to_owned(), lookup, Arc::new(upstreams)) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(container_id = %ctr_id, error = %e, "embedded DNS");
                Vec::new()
            }
        }
    }

    /// A name as the container `asker` sees it: names, aliases and short ids of the
    /// containers on the user-defined networks it is attached to, with their IPv4 and (on
    /// networks with IPv6 on) IPv6 addresses.
    pub(super) fn resolve(&self, name: &str, asker: &str) -> Option<Vec<IpAddr>> {
        let st = self.state();
        let mut ips = Vec::new();
        for net in st.nets.values() {
            if net.rec.predefined() || !net.active.contains_key(asker) {
                continue;
            }
            // `name.network` resolves too.
            let short = name
                .strip_suffix(&format!(".{}", net.rec.name.to_ascii_lowercase()))
                .unwrap_or(name);
            // A legacy link's alias means the linked container, for the linking one only.
            let short = net
                .active
                .get(asker)
                .and_then(|a| {
                    a.links
                        .iter()
                        .find(|(al, _)| al.eq_ignore_ascii_case(short))
                })
                .map_or(short, |(_, target)| target.as_str());
            if net.rec.driver == "overlay" {
                // Services and `tasks.<service>` of the swarm, from committed state.
                for ip in self
                    .resolve_service(&net.rec.id, short)
                    .into_iter()
                    .flatten()
                {
                    if !ips.contains(&IpAddr::V4(ip)) {
                        ips.push(IpAddr::V4(ip));
                    }
                }
            }
            for (id, a) in &net.active {
                let hit = a.ctr_name.eq_ignore_ascii_case(short)
                    || a.aliases.iter().any(|al| al.eq_ignore_ascii_case(short))
                    || (short.len() == 12 && id.starts_with(short));
                if !hit {
                    continue;
                }
                let addrs =
                    std::iter::once(IpAddr::V4(a.ip)).chain(a.ip6.map(|(ip, _)| IpAddr::V6(ip)));
                for ip in addrs {
                    if !ips.contains(&ip) {
                        ips.push(ip);
                    }
                }
            }
        }
        (!ips.is_empty()).then_some(ips)
    }

    /// Re-registers the endpoints of a container that kept running while berthd was down:
    /// its addresses are claimed again and its DNS server reopened in its namespace.
    pub async fn restore(&self, who: &Attachee<'_>, eps: &BTreeMap<String, Endpoint>) {
        let mut user_defined = false;
        {
            let mut st = self.state();
            for (name, ep) in eps {
                let Ok(ip) = ep.ip.parse::<Ipv4Addr>() else {
                    continue;
                };
                let Some(net) = st.nets.get_mut(&ep.network_id) else {
                    tracing::warn!(container_id = %who.id, network = %name, "endpoint of a network that is gone");
                    continue;
                };
                if let Some(a) = net.alloc.as_mut() {
                    let _ = a.claim(ip);
                }
                if let (Some(a), Ok(ip6)) = (net.alloc6.as_mut(), ep.ip6.parse::<Ipv6Addr>()) {
                    let _ = a.claim(ip6);
                }
                user_defined |= !net.rec.predefined();
                net.active.insert(who.id.to_owned(), active(who, ep, ip));
            }
        }
        if user_defined {
            let res = run_in_netns(who.netns.to_owned(), |_| {
                dns::bind_here()
                    .map_err(|e| NetworkError::kernel("embedded DNS on 127.0.0.11:53", e))
            })
            .await;
            match res {
                Ok(socks) => {
                    let tasks = self.start_dns(socks, who.id, who.dns);
                    self.state().dns.insert(who.id.to_owned(), tasks);
                }
                Err(e) => {
                    tracing::warn!(container_id = %who.id, error = %e, "reopen embedded DNS")
                }
            }
        }
    }

    /// The driver of the network on which a container has the address `ip`.
    fn driver_of(&self, ctr_id: &str, ip: Ipv4Addr) -> Result<Arc<dyn NetworkDriver>> {
        let driver = {
            let st = self.state();
            st.nets
                .values()
                .find(|n| n.active.get(ctr_id).is_some_and(|a| a.ip == ip))
                .map(|n| n.rec.driver.clone())
                .unwrap_or_else(|| "bridge".to_owned())
        };
        self.inner.drivers.get(&driver).cloned()
    }

    /// Publishes ports for a container whose primary address is `ip`: reserves the host
    /// ports (a port in use is an error before the container starts) and installs the
    /// forwarding. Returns what was published.
    pub fn publish(
        &self,
        ctr_id: &str,
        ctr_name: &str,
        addrs: EndpointAddrs,
        wanted: &[super::ports::Binding],
    ) -> Result<Vec<PortMapping>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let driver = self.driver_of(ctr_id, addrs.ip)?;
        let mappings = driver.publish(ctr_id, ctr_name, addrs, wanted)?;
        if let Err(e) = self.rebuild_rules() {
            driver.release_ports(ctr_id);
            return Err(e);
        }
        Ok(mappings)
    }

    /// Re-publishes the recorded ports of a container that kept running across a restart.
    pub fn restore_ports(&self, ctr_id: &str, addrs: EndpointAddrs, maps: &[PortMapping]) {
        match self.driver_of(ctr_id, addrs.ip) {
            Ok(d) => d.restore_ports(ctr_id, addrs, maps),
            Err(e) => tracing::warn!(container_id = %ctr_id, error = %e, "re-publish ports"),
        }
    }

    /// Forgets everything a container held: addresses, endpoints, ports, DNS. Its links
    /// go when its namespace is removed.
    pub fn detach(&self, ctr_id: &str) {
        let events = {
            let mut st = self.state();
            let mut events = Vec::new();
            for net in st.nets.values_mut() {
                if let Some(a) = net.active.remove(ctr_id) {
                    if let Some(al) = net.alloc.as_mut() {
                        al.release(a.ip);
                    }
                    if let (Some(al), Some((ip6, _))) = (net.alloc6.as_mut(), a.ip6) {
                        al.release(ip6);
                    }
                    events.push((
                        net.rec.id.clone(),
                        net.rec.name.clone(),
                        net.rec.driver.clone(),
                    ));
                }
            }
            for t in st.dns.remove(ctr_id).into_iter().flatten() {
                t.abort();
            }
            events
        };
        let mut had_ports = false;
        for d in self.inner.drivers.all() {
            had_ports |= d.release_ports(ctr_id);
        }
        if had_ports {
            if let Err(e) = self.rebuild_rules() {
                tracing::warn!(container_id = %ctr_id, error = %e, "remove port rules");
            }
        }
        for (id, name, driver) in events {
            self.inner.events.publish(
                "network",
                "disconnect",
                &id,
                BTreeMap::from([
                    ("container".into(), ctr_id.to_owned()),
                    ("name".into(), name),
                    ("type".into(), driver),
                ]),
            );
        }
    }

    /// Removes one endpoint of a running container (`network disconnect`).
    pub async fn detach_one(&self, ctr_id: &str, netns: &Path, ep: &Endpoint) -> Result<()> {
        let ip: Option<Ipv4Addr> = ep.ip.parse().ok();
        let driver = {
            let st = self.state();
            st.nets.get(&ep.network_id).map(|n| n.rec.driver.clone())
        };
        if let Some(driver) = driver {
            let driver = self.inner.drivers.get(&driver)?.clone();
            let ip_str = ep.ip.clone();
            run_in_netns(netns.to_owned(), move |sb| driver.leave(sb, &ip_str)).await?;
        }
        let mut st = self.state();
        if let Some(net) = st.nets.get_mut(&ep.network_id) {
            net.active.remove(ctr_id);
            if let (Some(a), Some(ip)) = (net.alloc.as_mut(), ip) {
                a.release(ip);
            }
            if let (Some(a), Ok(ip6)) = (net.alloc6.as_mut(), ep.ip6.parse::<Ipv6Addr>()) {
                a.release(ip6);
            }
        }
        Ok(())
    }

    /// How many interfaces (other than lo) a namespace has: the next one is `eth<N>`.
    pub async fn interface_count(&self, netns: &Path) -> usize {
        run_in_netns(netns.to_owned(), |sb| {
            Ok(sb
                .ctr
                .links()
                .map_err(|e| NetworkError::kernel("list links", e))?
                .into_iter()
                .filter(|(_, n)| n.starts_with("eth"))
                .count())
        })
        .await
        .unwrap_or(0)
    }
}

fn active(who: &Attachee<'_>, ep: &Endpoint, ip: Ipv4Addr) -> Active {
    Active {
        ctr_name: who.name.to_owned(),
        aliases: ep.aliases.clone(),
        links: ep
            .links
            .iter()
            .filter_map(|l| {
                let (name, alias) = l.split_once(':').unwrap_or((l, l));
                Some((alias.to_owned(), name.trim_start_matches('/').to_owned()))
                    .filter(|(a, n)| !a.is_empty() && !n.is_empty())
            })
            .collect(),
        ip,
        prefix: ep.prefix,
        ip6: ep.ip6.parse().ok().map(|ip6| (ip6, ep.prefix6)),
        mac: ep.mac.clone(),
        endpoint_id: ep.endpoint_id.clone(),
    }
}

/// The IPv6 address, prefix and gateway of a new endpoint on a network with IPv6 on: the
/// one asked for (`--ip6`) or the next free one. None on networks without IPv6.
fn plan_ip6(
    alloc6: Option<&mut super::ipam6::Allocator6>,
    ep: &Endpoint,
) -> Result<Option<(Ipv6Addr, u8, Ipv6Addr)>> {
    let Some(a) = alloc6 else {
        return Ok(None);
    };
    let ip = if ep.ipv6_request.is_empty() {
        a.allocate()
            .map_err(|e| NetworkError::Internal(e.to_string()))?
    } else {
        let ip: Ipv6Addr = ep.ipv6_request.parse().map_err(|_| {
            NetworkError::invalid(format!("invalid IPv6 address: {}", ep.ipv6_request))
        })?;
        a.claim(ip)
            .map_err(|e| NetworkError::Forbidden(e.to_string()))?;
        ip
    };
    Ok(Some((ip, a.subnet.prefix, a.gateway)))
}

fn release(st: &mut State, plan: &[Planned]) {
    for p in plan {
        let Some(net) = st.nets.get_mut(&p.link.network.id) else {
            continue;
        };
        if let Some(a) = net.alloc.as_mut() {
            a.release(p.link.ip);
        }
        if let (Some(a), Some((ip6, _))) = (net.alloc6.as_mut(), p.link.ip6) {
            a.release(ip6);
        }
    }
}

/// Runs `f` on a fresh thread that has entered the namespace at `netns`, with netlink
/// sockets of the daemon's namespace and of the container's.
pub(super) async fn run_in_netns<T, F>(netns: PathBuf, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Sandbox<'_>) -> Result<T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| {
            let mut host = Netlink::open().map_err(|e| NetworkError::kernel("netlink", e))?;
            let file = std::fs::File::open(&netns)
                .map_err(|e| NetworkError::kernel(format!("open {}", netns.display()), e))?;
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                NetworkError::kernel(format!("enter {}", netns.display()), e.into())
            })?;
            let mut ctr = Netlink::open().map_err(|e| NetworkError::kernel("netlink", e))?;
            let own = std::fs::File::open("/proc/thread-self/ns/net")
                .map_err(|e| NetworkError::kernel("open own namespace", e))?;
            f(&mut Sandbox {
                host: &mut host,
                ctr: &mut ctr,
                netns: own.as_fd(),
            })
        })();
        let _ = tx.send(r);
    });
    rx.await.unwrap_or_else(|_| {
        Err(NetworkError::Worker(
            "network namespace thread panicked".into(),
        ))
    })
}
