//! Swarm-scoped networks: the replicated `Network` object, and how applying commands
//! allocates from it (a VXLAN id and a subnet per network, an address per task and per
//! service VIP) and gives back.
//!
//! ```text
//!  Op::CreateNetwork ──► VNI + subnet (netalloc, from the cluster's address pools)
//!  TaskChange::Create ──► one address per network of the task ── held until the task ends or goes
//!  PutService / Rollout ──► one VIP per network (endpoint mode vip) ── dropped with the network use
//!  Op::RemoveNetwork ──► refused while a service or a task uses the network
//! ```
//! All of it runs in `State::apply`, so every manager allocates the same thing for the same
//! entry: the leader's commit is the decision, and there is nothing to race or to leak across
//! a leader change. Which address belongs to whom is kept in the network itself
//! ([`Network::addresses`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::netalloc::{self, Cidr};
use crate::objects::Meta;
use crate::state::State;
use crate::tasks::{Service, Task, TaskState, TaskTemplate};

/// What `network create` asked for (Docker's network create request, swarm part).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `overlay`.
    pub driver: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub ingress: bool,
    /// `--subnet` and `--gateway`; empty: carved from the cluster's pools.
    #[serde(default)]
    pub subnet: String,
    #[serde(default)]
    pub gateway: String,
}

/// Who holds the gateway address of a network.
pub const GATEWAY_HOLDER: &str = "gateway";
/// The holder prefix of a service's virtual IP.
pub const VIP_HOLDER: &str = "vip:";

/// A swarm-scoped network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub meta: Meta,
    pub spec: NetworkSpec,
    /// Set when the network is created (`State::apply`).
    #[serde(default)]
    pub vni: u32,
    #[serde(default)]
    pub subnet: String,
    #[serde(default)]
    pub gateway: String,
    /// Addresses held (as u32): the gateway, tasks (by id) and VIPs (`vip:<service id>`).
    #[serde(default)]
    pub addresses: BTreeMap<u32, String>,
    /// The last address handed out: the next one is looked for after it.
    #[serde(default)]
    pub cursor: u32,
}

impl Network {
    pub fn cidr(&self) -> Option<Cidr> {
        self.subnet.parse().ok()
    }

    /// An address of this network with its prefix, `10.0.1.5/24`.
    pub(crate) fn with_prefix(&self, ip: Ipv4Addr) -> String {
        let p = self.cidr().map(|c| c.prefix).unwrap_or(32);
        format!("{ip}/{p}")
    }

    pub(crate) fn take(&mut self, holder: &str) -> Option<String> {
        let cidr = self.cidr()?;
        let held: BTreeSet<u32> = self.addresses.keys().copied().collect();
        let ip = netalloc::pick_address(cidr, &held, self.cursor)?;
        self.cursor = u32::from(ip);
        self.addresses.insert(u32::from(ip), holder.to_owned());
        Some(self.with_prefix(ip))
    }

    pub(crate) fn release(&mut self, holder: &str) {
        self.addresses.retain(|_, h| h != holder);
    }
}

/// A task's address on one network (Docker's `NetworksAttachments[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    pub network_id: String,
    /// `10.0.1.5/24`.
    pub address: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A service's virtual IP on one network (Docker's `Endpoint.VirtualIPs[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualIp {
    pub network_id: String,
    /// `10.0.1.2/24`.
    pub addr: String,
}

/// The networks a task template asks for: (target, aliases). `Target` is a network id once
/// the API edge has checked the spec.
pub fn template_networks(tt: &TaskTemplate) -> Vec<(String, Vec<String>)> {
    tt.other
        .get("Networks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let target = n.get("Target")?.as_str()?.to_owned();
            let aliases = n
                .get("Aliases")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            Some((target, aliases))
        })
        .collect()
}

/// Endpoint mode `dnsrr`: the service's name resolves to its tasks, no VIP.
pub fn dnsrr(svc: &Service) -> bool {
    svc.spec
        .endpoint_spec
        .as_ref()
        .and_then(|e| e.get("Mode"))
        .and_then(Value::as_str)
        == Some("dnsrr")
}

impl State {
    /// A network by id or name.
    pub fn network_by_key(&self, key: &str) -> Option<&Network> {
        self.networks
            .get(key)
            .or_else(|| self.networks.values().find(|n| n.spec.name == key))
    }

    /// Fills in the VXLAN id, subnet and gateway of a new network; the reason it is refused
    /// otherwise.
    pub(crate) fn allocate_network(&self, n: &mut Network) -> Result<(), String> {
        let taken: Vec<Cidr> = self.networks.values().filter_map(Network::cidr).collect();
        let cidr = if n.spec.subnet.is_empty() {
            let (pools, size) = self.address_pools();
            netalloc::pick_subnet(&pools, size, &taken).ok_or_else(|| {
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".to_owned()
            })?
        } else {
            let c: Cidr = n.spec.subnet.parse()?;
            if c.prefix > 30 {
                return Err(format!("subnet {c} is too small for a network"));
            }
            if let Some(o) = self
                .networks
                .values()
                .find(|o| o.cidr().is_some_and(|x| x.overlaps(&c)))
            {
                return Err(format!(
                    "invalid pool request: Pool overlaps with other one on this address space ({c} overlaps {} of network {})",
                    o.subnet, o.spec.name
                ));
            }
            c
        };
        let gateway = if n.spec.gateway.is_empty() {
            cidr.first_host()
        } else {
            let g: Ipv4Addr = n
                .spec
                .gateway
                .parse()
                .map_err(|_| format!("invalid gateway address {}", n.spec.gateway))?;
            if !cidr.contains(g) {
                return Err(format!("gateway {g} is not in the subnet {cidr}"));
            }
            g
        };
        let used: BTreeSet<u32> = self.networks.values().map(|n| n.vni).collect();
        n.vni = netalloc::pick_vni(&used).ok_or("no VXLAN id left")?;
        n.subnet = cidr.to_string();
        n.gateway = gateway.to_string();
        n.addresses = BTreeMap::from([(u32::from(gateway), GATEWAY_HOLDER.to_owned())]);
        n.cursor = u32::from(gateway);
        n.options_default();
        Ok(())
    }

    /// The cluster's `--default-addr-pool`s and `--default-addr-pool-mask-length`.
    fn address_pools(&self) -> (Vec<Cidr>, u8) {
        let c = self.cluster.as_ref();
        let mut pools: Vec<Cidr> = c
            .map(|c| {
                c.default_addr_pool
                    .iter()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if pools.is_empty() {
            pools.push(
                netalloc::DEFAULT_POOL
                    .parse()
                    .expect("the default pool is a valid CIDR"),
            );
        }
        let size = c
            .map(|c| c.subnet_size)
            .filter(|s| (1..=30).contains(s))
            .map(|s| s as u8)
            .unwrap_or(netalloc::DEFAULT_SUBNET_SIZE);
        (pools, size)
    }

    /// Why a network cannot be removed now, if it cannot.
    pub(crate) fn network_in_use(&self, n: &Network) -> Option<String> {
        if n.spec.ingress {
            if let Some(s) = self
                .services
                .values()
                .find(|s| crate::ingress::needs_ingress(s.spec.endpoint_spec.as_ref()))
            {
                return Some(format!(
                    "ingress network cannot be removed because service {} depends on it",
                    s.id
                ));
            }
        }
        let uses = |tt: &TaskTemplate| template_networks(tt).iter().any(|(t, _)| *t == n.id);
        if let Some(s) = self.services.values().find(|s| uses(&s.spec.task_template)) {
            return Some(format!(
                "network {} is in use by service {}",
                n.spec.name, s.spec.name
            ));
        }
        if n.addresses
            .values()
            .any(|h| h.starts_with(crate::ingress::ATTACH_HOLDER))
        {
            return Some(format!("network {} has active endpoints", n.spec.name));
        }
        // Swarm's rule: only a task meant to run and not yet ended holds the network; the
        // tasks of a removed service (desired state remove) do not, so `stack rm` can remove
        // its networks right after its services.
        let task = n.addresses.values().find(|h| {
            self.tasks.get(h.as_str()).is_some_and(|t| {
                t.desired_state <= TaskState::Running && t.status.state <= TaskState::Running
            })
        });
        task.map(|t| format!("network {} is in use by task {t}", n.spec.name))
    }

    /// Gives a new task an address on each of its networks. An error leaves nothing held.
    pub(crate) fn attach_task(&mut self, t: &mut Task) -> Result<(), String> {
        let mut got = Vec::new();
        let mut wanted = template_networks(&t.spec);
        if crate::ingress::needs_ingress(t.endpoint_spec.as_ref()) {
            if let Some(i) = self.ingress() {
                wanted.push((i.id.clone(), Vec::new()));
            }
        }
        for (target, aliases) in wanted {
            let Some(id) = self.network_by_key(&target).map(|n| n.id.clone()) else {
                self.detach_task(&t.id, &got);
                return Err(format!("network {target} not found"));
            };
            let net = self.networks.get_mut(&id).expect("looked up just above");
            match net.take(&t.id) {
                Some(address) => got.push(NetworkAttachment {
                    network_id: id,
                    address,
                    aliases,
                }),
                None => {
                    let name = net.spec.name.clone();
                    self.detach_task(&t.id, &got);
                    return Err(format!(
                        "could not find an available IP address on network {name}"
                    ));
                }
            }
        }
        t.networks = got;
        Ok(())
    }

    /// Gives back the addresses of a task that ended or went.
    pub(crate) fn detach_task(&mut self, task_id: &str, attachments: &[NetworkAttachment]) {
        for a in attachments {
            if let Some(n) = self.networks.get_mut(&a.network_id) {
                n.release(task_id);
            }
        }
    }

    /// Makes a service's VIPs follow its spec: one per network for endpoint mode vip, none
    /// for dnsrr or a removed service. Unchanged networks keep their VIP.
    pub(crate) fn sync_vips(&mut self, service_id: &str) {
        let holder = format!("{VIP_HOLDER}{service_id}");
        let want: Vec<String> = match self.services.get(service_id) {
            Some(s) if !dnsrr(s) => self.service_networks(s),
            _ => Vec::new(),
        };
        let old: Vec<VirtualIp> = self
            .services
            .get(service_id)
            .map(|s| s.virtual_ips.clone())
            .unwrap_or_default();
        for n in self.networks.values_mut() {
            if !want.contains(&n.id) {
                n.release(&holder);
            }
        }
        let mut vips = Vec::new();
        for id in want {
            if let Some(v) = old.iter().find(|v| v.network_id == id) {
                vips.push(v.clone());
                continue;
            }
            if let Some(addr) = self.networks.get_mut(&id).and_then(|n| n.take(&holder)) {
                vips.push(VirtualIp {
                    network_id: id,
                    addr,
                });
            }
        }
        if let Some(s) = self.services.get_mut(service_id) {
            s.virtual_ips = vips;
        }
    }
}

/// The option Docker shows the VXLAN id in.
pub const VXLANID_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";

impl Network {
    fn options_default(&mut self) {
        self.spec
            .options
            .insert(VXLANID_OPTION.to_owned(), self.vni.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Command, Op, Outcome};
    use crate::tasks::{ServiceSpec, TaskState, TaskStatus};
    use serde_json::json;

    fn net(name: &str, subnet: &str) -> Network {
        Network {
            id: format!("id-{name}"),
            meta: Meta::default(),
            spec: NetworkSpec {
                name: name.into(),
                driver: "overlay".into(),
                subnet: subnet.into(),
                ..Default::default()
            },
            vni: 0,
            subnet: String::new(),
            gateway: String::new(),
            addresses: BTreeMap::new(),
            cursor: 0,
        }
    }

    fn apply(s: &mut State, index: u64, op: Op) -> Outcome {
        s.apply(
            index,
            &Command {
                at: "2026-01-01T00:00:00Z".into(),
                op,
            },
        )
    }

    fn create(s: &mut State, index: u64, n: Network) -> Outcome {
        apply(s, index, Op::CreateNetwork(Box::new(n)))
    }

    fn service(id: &str, nets: &[&str], mode: &str) -> Service {
        let mut tt = TaskTemplate::default();
        tt.other.insert(
            "Networks".into(),
            json!(nets
                .iter()
                .map(|n| json!({"Target": n}))
                .collect::<Vec<_>>()),
        );
        Service {
            id: id.into(),
            meta: Meta::default(),
            spec: ServiceSpec {
                name: format!("svc-{id}"),
                task_template: tt,
                endpoint_spec: Some(json!({ "Mode": mode })),
                ..Default::default()
            },
            previous_spec: None,
            spec_version: 0,
            update_status: None,
            job_iteration: 0,
            virtual_ips: Vec::new(),
            ports: Vec::new(),
        }
    }

    fn task(id: &str, svc: &Service) -> Task {
        Task {
            id: id.into(),
            meta: Meta::default(),
            service_id: svc.id.clone(),
            slot: 1,
            node_id: "n1".into(),
            spec: svc.spec.task_template.clone(),
            spec_version: 1,
            service_labels: BTreeMap::new(),
            service_name: svc.spec.name.clone(),
            desired_state: TaskState::Running,
            status: TaskStatus {
                timestamp: String::new(),
                state: TaskState::Assigned,
                message: String::new(),
                err: String::new(),
                container_id: String::new(),
                pid: 0,
                exit_code: 0,
            },
            job_iteration: 0,
            endpoint_spec: None,
            networks: Vec::new(),
        }
    }

    fn status(id: &str, state: TaskState) -> crate::tasks::TaskChange {
        let mut st = task(id, &service("x", &[], "vip")).status;
        st.state = state;
        crate::tasks::TaskChange::Status {
            id: id.into(),
            node_id: "n1".into(),
            status: st,
        }
    }

    #[test]
    fn networks_get_distinct_vnis_and_subnets() {
        let mut s = State::default();
        assert!(matches!(
            create(&mut s, 1, net("a", "")),
            Outcome::Done { .. }
        ));
        assert!(matches!(
            create(&mut s, 2, net("b", "")),
            Outcome::Done { .. }
        ));
        let (a, b) = (&s.networks["id-a"], &s.networks["id-b"]);
        assert_eq!(
            (a.vni, a.subnet.as_str(), a.gateway.as_str()),
            (4096, "10.0.0.0/24", "10.0.0.1")
        );
        assert_eq!((b.vni, b.subnet.as_str()), (4097, "10.0.1.0/24"));
        assert_eq!(a.spec.options[VXLANID_OPTION], "4096");
        // Same name: refused; a user subnet overlapping another network: refused.
        assert!(matches!(
            create(&mut s, 3, net("a", "")),
            Outcome::AlreadyExists { .. }
        ));
        let o = create(&mut s, 4, net("c", "10.0.1.128/25"));
        assert!(
            matches!(&o, Outcome::Refused { message } if message.contains("overlaps")),
            "{o:?}"
        );
        // A user subnet elsewhere is taken as asked, and the pool carves around it.
        assert!(matches!(
            create(&mut s, 5, net("d", "10.0.2.0/23")),
            Outcome::Done { .. }
        ));
        assert!(matches!(
            create(&mut s, 6, net("e", "")),
            Outcome::Done { .. }
        ));
        assert_eq!(s.networks["id-e"].subnet, "10.0.4.0/24");
        // Removed: its VNI and subnet are free again.
        assert!(matches!(
            apply(&mut s, 7, Op::RemoveNetwork { id: "id-a".into() }),
            Outcome::Done { .. }
        ));
        assert!(matches!(
            create(&mut s, 8, net("f", "")),
            Outcome::Done { .. }
        ));
        assert_eq!(
            (s.networks["id-f"].vni, s.networks["id-f"].subnet.as_str()),
            (4096, "10.0.0.0/24")
        );
    }

    #[test]
    fn tasks_and_vips_hold_addresses_until_they_end_and_block_removal() {
        let mut s = State::default();
        create(&mut s, 1, net("ov", ""));
        let svc = service("s1", &["id-ov"], "vip");
        apply(
            &mut s,
            2,
            Op::PutService {
                version: None,
                service: Box::new(svc.clone()),
                new_spec: true,
            },
        );
        let vip = s.services["s1"].virtual_ips.clone();
        assert_eq!(
            vip,
            vec![VirtualIp {
                network_id: "id-ov".into(),
                addr: "10.0.0.2/24".into()
            }]
        );
        let mk = |id: &str| crate::tasks::TaskChange::Create(Box::new(task(id, &svc)));
        apply(&mut s, 3, Op::Tasks(vec![mk("t1"), mk("t2")]));
        assert_eq!(s.tasks["t1"].networks[0].address, "10.0.0.3/24");
        assert_eq!(s.tasks["t2"].networks[0].address, "10.0.0.4/24");
        // In use: by the service, then (once the service is gone) by its live tasks.
        let rm = || Op::RemoveNetwork { id: "id-ov".into() };
        assert!(
            matches!(apply(&mut s, 4, rm()), Outcome::Refused { message } if message == "network ov is in use by service svc-s1")
        );
        apply(&mut s, 5, Op::RemoveService { id: "s1".into() });
        assert!(!s.networks["id-ov"]
            .addresses
            .values()
            .any(|h| h.starts_with(VIP_HOLDER)));
        // A task still meant to run holds it; the removed service's tasks do not.
        if let Some(t) = s.tasks.get_mut("t2") {
            t.desired_state = TaskState::Running;
        }
        assert!(
            matches!(apply(&mut s, 6, rm()), Outcome::Refused { message } if message.starts_with("network ov is in use by task t2"))
        );
        if let Some(t) = s.tasks.get_mut("t2") {
            t.desired_state = TaskState::Remove;
        }
        // t1 ends: its address is free, but not handed out again before the others.
        apply(
            &mut s,
            7,
            Op::Tasks(vec![
                status("t1", TaskState::Running),
                status("t1", TaskState::Shutdown),
            ]),
        );
        assert!(!s.networks["id-ov"].addresses.values().any(|h| h == "t1"));
        apply(
            &mut s,
            8,
            Op::Tasks(vec![crate::tasks::TaskChange::Remove { id: "t2".into() }]),
        );
        assert!(matches!(apply(&mut s, 9, rm()), Outcome::Done { .. }));
    }

    #[test]
    fn dnsrr_services_have_no_vip_and_a_full_network_rejects_the_task() {
        let mut s = State::default();
        create(&mut s, 1, net("tiny", "10.9.0.0/30")); // two hosts: the gateway and one more
        let svc = service("s1", &["tiny"], "dnsrr");
        apply(
            &mut s,
            2,
            Op::PutService {
                version: None,
                service: Box::new(svc.clone()),
                new_spec: true,
            },
        );
        assert!(s.services["s1"].virtual_ips.is_empty());
        let mk = |id: &str| crate::tasks::TaskChange::Create(Box::new(task(id, &svc)));
        apply(&mut s, 3, Op::Tasks(vec![mk("t0"), mk("t1")]));
        assert_eq!(s.tasks["t0"].networks[0].address, "10.9.0.2/30");
        let t = &s.tasks["t1"];
        assert_eq!(t.status.state, TaskState::Rejected);
        assert_eq!(
            t.status.err,
            "could not find an available IP address on network tiny"
        );
        assert!(t.networks.is_empty());
        // Switching to vip mode takes a VIP; back to dnsrr drops it.
        let mut vip = s.services["s1"].clone();
        vip.spec.endpoint_spec = Some(json!({"Mode": "vip"}));
        create(&mut s, 4, net("big", ""));
        vip.spec.task_template = service("s1", &["big"], "vip").spec.task_template;
        let v = vip.meta.version;
        apply(
            &mut s,
            5,
            Op::PutService {
                version: Some(v),
                service: Box::new(vip),
                new_spec: true,
            },
        );
        assert_eq!(s.services["s1"].virtual_ips.len(), 1);
        let mut back = s.services["s1"].clone();
        back.spec.endpoint_spec = Some(json!({"Mode": "dnsrr"}));
        let v = back.meta.version;
        apply(
            &mut s,
            6,
            Op::PutService {
                version: Some(v),
                service: Box::new(back),
                new_spec: true,
            },
        );
        assert!(s.services["s1"].virtual_ips.is_empty());
        assert_eq!(s.networks["id-big"].addresses.len(), 1, "only the gateway");
        assert_eq!(
            s.networks["id-tiny"].addresses.len(),
            2,
            "the gateway and t0"
        );
    }
}
