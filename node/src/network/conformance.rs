//! The conformance suite of `NetworkDriver`: what every driver must do, checked against the
//! real kernel. Run it from a test with a driver factory ([`check_driver`]); the bridge
//! driver's runs are at the bottom of this file, the overlay driver's will be in
//! `overlay-net/` (with this crate's `conformance` feature).
//!
//! Everything happens inside network namespaces the suite makes with unique names (a
//! "host" namespace standing in for the daemon's, one per container), with private
//! addresses from a random 10.x.0.0/16 pool, so nothing touches the machine's own network
//! and two runs cannot collide. The namespaces (and with them every link, address and
//! nftables table made inside) are deleted when the suite ends, even when it fails.
//!
//! ```text
//!  open ─► create ─► attach c1, c2 ─► traffic: c1→gateway, c1→c2, host→published port,
//!          names resolve ─► "kill -9": drop all state, disrupt, forget a record ─► reopen
//!          from the store, restore endpoints ─► the same traffic again ─► detach ─► delete
//!          ─► nothing left beside what open made (links, addresses, rules, reservations)
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::ipam::Pool;
use super::{
    local_drivers, ports, Attachee, Drivers, Endpoint, EndpointAddrs, NetConfig, NetworkDriver,
    NetworkRecord, Networks, PortMapping, NETWORKS,
};
use crate::events::Events;
use crate::store::MetaStore;

/// Makes the driver under test for a daemon configured with `cfg`.
pub type Factory = Arc<dyn Fn(&NetConfig) -> Arc<dyn NetworkDriver> + Send + Sync>;

/// What a reboot or crash may take away from a network the driver made, done to the data
/// plane of an idle network while no `Networks` is open (bridge: its device and the nft
/// table). `restore` + `sync` at the next open must bring it back.
pub type Disrupt = Arc<dyn Fn(&NetworkRecord, &NetConfig) + Send + Sync>;

/// The driver under test.
#[derive(Clone)]
pub struct DriverUnderTest {
    /// Its name (`docker network create -d NAME`).
    pub name: &'static str,
    pub factory: Factory,
    /// Driver options of the networks the suite creates.
    pub options: BTreeMap<String, String>,
    pub disrupt: Option<Disrupt>,
    /// Networks with IPv6 on (`EnableIPv6`): endpoints get an IPv6 address too, and the
    /// traffic checks run over both families.
    pub ipv6: bool,
}

/// Runs the whole suite against one driver. Needs root; panics (fails the test) on the
/// first broken promise, after cleaning up.
pub fn check_driver(dut: DriverUnderTest) {
    let h = Harness::new();
    h.run(move |h| Box::pin(lifecycle(h, dut)));
}

/// The checks of a singleton driver (`host`, `null`): its one network exists from the
/// start, can't be created again or removed, takes no endpoints, and makes nothing.
pub fn check_singleton(driver: &'static str, network: &'static str) {
    let h = Harness::new();
    h.run(move |h| Box::pin(singleton(h, driver, network)));
}

/// The namespaces and files of one run; removed on drop.
pub struct Harness {
    tag: String,
    dir: PathBuf,
    /// The namespace standing in for the daemon's.
    host: String,
    /// Second octet of the 10.x.0.0/16 pool of this run.
    octet: u8,
    made: std::sync::Mutex<Vec<String>>,
}

type SuiteFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

impl Harness {
    fn new() -> Harness {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the network driver conformance suite needs root (namespaces, links, nftables)"
        );
        let tag = hex::encode(rand::random::<[u8; 3]>());
        let dir = std::env::temp_dir().join(format!("berth-netconf-{tag}"));
        std::fs::create_dir_all(&dir).expect("suite dir");
        let h = Harness {
            host: format!("bnc-{tag}"),
            tag,
            dir,
            octet: 100 + rand::random::<u8>() % 150,
            made: std::sync::Mutex::new(Vec::new()),
        };
        h.netns(&h.host.clone());
        h
    }

    /// Makes a namespace (lo up) that the harness deletes at the end.
    fn netns(&self, name: &str) -> PathBuf {
        sh("ip", &["netns", "add", name]);
        self.made.lock().unwrap().push(name.to_owned());
        sh("ip", &["-n", name, "link", "set", "lo", "up"]);
        PathBuf::from(format!("/var/run/netns/{name}"))
    }

    fn host_path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.host))
    }

    /// The daemon configuration of this run: its own default bridge and nft table.
    pub fn config(&self) -> NetConfig {
        NetConfig {
            bridge: format!("bnc{}", self.tag),
            bip: None,
            pools: vec![
                Pool::parse(&format!("base=10.{}.0.0/16,size=24", self.octet)).expect("pool"),
            ],
            ..Default::default()
        }
    }

    /// Runs the suite on a runtime whose threads are all inside the host namespace (a
    /// thread's namespace is inherited by the threads and processes it starts).
    fn run(&self, suite: impl for<'a> FnOnce(&'a Harness) -> SuiteFuture<'a> + Send) {
        let host = self.host_path();
        std::thread::scope(|s| {
            let t = s.spawn(|| {
                let f = std::fs::File::open(&host).expect("open host namespace");
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("enter host namespace");
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(suite(self));
                rt.shutdown_timeout(Duration::from_secs(5));
            });
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        });
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for ns in self
            .made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
        {
            // Those the suite deleted itself are gone already.
            let _ = Command::new("ip")
                .args(["netns", "delete", ns])
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let left = String::from_utf8(
            Command::new("ip")
                .args(["netns", "list"])
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        if !std::thread::panicking() {
            assert!(
                !left.contains(&self.tag),
                "namespaces of the suite left behind: {left}"
            );
        }
    }
}

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the host namespace has: link names, addresses, nftables ruleset.
#[derive(Debug, PartialEq)]
struct Snapshot {
    links: BTreeSet<String>,
    addresses: BTreeSet<String>,
    rules: String,
}

fn snapshot(ns: &str) -> Snapshot {
    let links = sh("ip", &["-n", ns, "-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect();
    let addresses = sh("ip", &["-n", ns, "-o", "-4", "addr", "show"])
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(str::to_owned)
        .collect();
    let rules = sh("ip", &["netns", "exec", ns, "nft", "list", "ruleset"]);
    Snapshot {
        links,
        addresses,
        rules,
    }
}

/// Runs `f` on a thread inside the namespace at `ns`.
fn inside<T: Send + 'static>(ns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&ns).expect("open namespace");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("enter namespace");
        f()
    })
    .join()
    .expect("namespace thread")
}

/// A listening socket inside `ns` (it stays in that namespace).
fn listen(ns: &Path, addr: impl Into<SocketAddr>) -> TcpListener {
    let addr = addr.into();
    inside(ns, move || {
        TcpListener::bind(addr).unwrap_or_else(|e| panic!("listen on {addr}: {e}"))
    })
}

fn connects(from: &Path, to: impl Into<SocketAddr>) -> bool {
    let to = to.into();
    inside(from, move || {
        TcpStream::connect_timeout(&to, Duration::from_secs(2)).is_ok()
    })
}

fn open(h: &Harness, meta: &Arc<MetaStore>, extra: Option<&DriverUnderTest>) -> Networks {
    let cfg = h.config();
    let mut drivers: Drivers = local_drivers(&cfg);
    if let Some(dut) = extra {
        drivers.register((dut.factory)(&cfg));
    }
    let nets = Networks::open_with(&cfg, meta.clone(), Events::new(), drivers)
        .unwrap_or_else(|e| panic!("open networks: {e:#}"));
    nets.rebuild_rules().expect("rules at start");
    nets
}

/// What berthd's death does to the network state: everything in memory goes (DNS
/// servers, port reservations, allocations); the kernel keeps what it has.
async fn kill(nets: Networks) {
    let tasks: Vec<_> = nets.state().dns.drain().flat_map(|(_, t)| t).collect();
    for t in tasks {
        t.abort();
        let _ = t.await;
    }
    let inner = Arc::downgrade(&nets.inner);
    drop(nets);
    assert!(
        inner.upgrade().is_none(),
        "Networks still referenced after its DNS servers stopped"
    );
}

struct Ctr {
    id: String,
    name: String,
    netns: PathBuf,
    eps: BTreeMap<String, Endpoint>,
}

impl Ctr {
    fn new(h: &Harness, name: &str, nets: &Networks, net: &str) -> Ctr {
        let mut ep = Endpoint::default();
        let rec = nets.check_endpoint(net, &mut ep).expect("endpoint request");
        Ctr {
            id: hex::encode(rand::random::<[u8; 32]>()),
            name: name.to_owned(),
            netns: h.netns(&format!("{}-{name}", h.host)),
            eps: BTreeMap::from([(rec.name, ep)]),
        }
    }

    fn attachee<'a>(&'a self, primary: &'a str) -> Attachee<'a> {
        Attachee {
            id: &self.id,
            name: &self.name,
            netns: &self.netns,
            primary,
            dns: &[],
        }
    }

    fn ip(&self) -> Ipv4Addr {
        let ep = self.eps.values().next().expect("one endpoint");
        ep.ip
            .parse()
            .unwrap_or_else(|_| panic!("no address: {ep:?}"))
    }

    fn gateway(&self) -> Ipv4Addr {
        let ep = self.eps.values().next().expect("one endpoint");
        ep.gateway.parse().expect("gateway")
    }

    /// The IPv6 address and gateway, on networks with IPv6 on.
    fn ip6(&self) -> Option<(Ipv6Addr, Ipv6Addr)> {
        let ep = self.eps.values().next().expect("one endpoint");
        Some((ep.ip6.parse().ok()?, ep.gateway6.parse().ok()?))
    }

    fn addrs(&self) -> EndpointAddrs {
        EndpointAddrs {
            ip: self.ip(),
            ip6: self.ip6().map(|(ip, _)| ip),
        }
    }

    /// What the embedded DNS answers for this container.
    fn dns_answer(&self) -> Vec<IpAddr> {
        let mut v = vec![IpAddr::V4(self.ip())];
        v.extend(self.ip6().map(|(ip, _)| IpAddr::V6(ip)));
        v
    }
}

async fn create(nets: &Networks, dut: &DriverUnderTest, name: &str) -> NetworkRecord {
    let v: Value = nets
        .create(
            json!({"Name": name, "Driver": dut.name, "Options": dut.options,
                       "EnableIPv6": dut.ipv6}),
        )
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:#}"));
    let rec = nets.find(name).expect("created network is found");
    assert_eq!(v["Id"], rec.id);
    assert_eq!(rec.driver, dut.name);
    assert_eq!(nets.inspect(name).expect("inspect")["Driver"], dut.name);
    rec
}

/// The traffic a user checks: the gateway and the other container answer, a published
/// port reaches the container, names resolve.
fn check_traffic(h: &Harness, nets: &Networks, c1: &Ctr, c2: &Ctr, published: Option<u16>) {
    let l_gw = listen(&h.host_path(), SocketAddrV4::new(c1.gateway(), 7001));
    assert!(
        connects(&c1.netns, SocketAddrV4::new(c1.gateway(), 7001)),
        "c1 reaches the host at its gateway"
    );
    let l_c2 = listen(&c2.netns, SocketAddrV4::new(c2.ip(), 7002));
    assert!(
        connects(&c1.netns, SocketAddrV4::new(c2.ip(), 7002)),
        "c1 reaches c2"
    );
    let l_c1 = listen(&c1.netns, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080));
    if let Some(port) = published {
        assert!(
            connects(&h.host_path(), SocketAddrV4::new(c1.gateway(), port)),
            "the published port {port} reaches c1"
        );
    }
    drop((l_gw, l_c2, l_c1));
    if let (Some((ip6_1, gw6)), Some((ip6_2, _))) = (c1.ip6(), c2.ip6()) {
        check_traffic6(h, c1, c2, (ip6_1, gw6, ip6_2), published);
    }
    assert_eq!(nets.resolve(&c2.name, &c1.id), Some(c2.dns_answer()));
    assert_eq!(nets.resolve(&c1.name, &c2.id), Some(c1.dns_answer()));
    assert_eq!(nets.resolve("nobody", &c1.id), None);
}

/// The same over IPv6: the gateway, the other container, the published port (held on `::`).
fn check_traffic6(
    h: &Harness,
    c1: &Ctr,
    c2: &Ctr,
    (ip6_1, gw6, ip6_2): (Ipv6Addr, Ipv6Addr, Ipv6Addr),
    published: Option<u16>,
) {
    let l_gw = listen(&h.host_path(), (gw6, 7011));
    assert!(
        connects(&c1.netns, (gw6, 7011)),
        "c1 reaches the host at {gw6}"
    );
    let l_c2 = listen(&c2.netns, (ip6_2, 7012));
    assert!(
        connects(&c1.netns, (ip6_2, 7012)),
        "c1 reaches c2 at {ip6_2}"
    );
    let l_c1 = listen(&c1.netns, (ip6_1, 8080));
    if let Some(port) = published {
        assert!(
            connects(&h.host_path(), (gw6, port)),
            "the published port {port} reaches c1 over IPv6"
        );
    }
    drop((l_gw, l_c2, l_c1));
}

/// The networks and containers of one run of `lifecycle`.
struct World {
    net: NetworkRecord,
    idle: NetworkRecord,
    forgotten: NetworkRecord,
    c1: Ctr,
    c2: Ctr,
    maps: Vec<PortMapping>,
}

impl World {
    fn published(&self) -> Option<u16> {
        self.maps.first().map(|m| m.host_port)
    }
}

async fn lifecycle(h: &Harness, dut: DriverUnderTest) {
    let meta = Arc::new(MetaStore::open(&h.dir.join("metadata.redb")).expect("store"));
    let nets = open(h, &meta, Some(&dut));
    let baseline = snapshot(&h.host);
    let w = create_and_attach(h, &nets, &dut).await;
    check_traffic(h, &nets, &w.c1, &w.c2, w.published());
    let inspect = nets.inspect(&w.net.id).expect("inspect");
    assert!(inspect["Containers"].get(&w.c1.id).is_some(), "{inspect}");

    // berthd dies; a reboot-like loss hits the idle network; a network is removed from
    // the store while its data plane stays (rm interrupted).
    kill(nets).await;
    if let Some(disrupt) = &dut.disrupt {
        disrupt(&w.idle, &h.config());
    }
    meta.delete(NETWORKS, &w.forgotten.id)
        .expect("forget a record");
    let nets = restart(h, &meta, &dut, &w).await;
    let c3 = check_idle_network(h, &nets, &w.idle).await;
    detach_all(h, &nets, &w, &c3).await;
    delete_all(&nets, &meta, &w, &baseline, &h.host).await;
    kill(nets).await;
}

async fn create_and_attach(h: &Harness, nets: &Networks, dut: &DriverUnderTest) -> World {
    let net = create(nets, dut, &format!("n1-{}", h.tag)).await;
    let idle = create(nets, dut, &format!("n2-{}", h.tag)).await;
    let forgotten = create(nets, dut, &format!("n3-{}", h.tag)).await;
    assert_ne!(net.subnet, idle.subnet, "each network has its own subnet");
    let mut c1 = Ctr::new(h, "c1", nets, &net.name);
    let mut c2 = Ctr::new(h, "c2", nets, &net.name);
    for c in [&mut c1, &mut c2] {
        let mut eps = std::mem::take(&mut c.eps);
        nets.attach(&c.attachee(&net.name), &mut eps, 0)
            .await
            .unwrap_or_else(|e| panic!("attach {}: {e:#}", c.name));
        c.eps = eps;
    }
    assert_ne!(c1.ip(), c2.ip());
    let wanted = [ports::Binding {
        proto: "tcp",
        ctr_port: 8080,
        host_ip: None,
        host_port: None,
    }];
    let maps = nets
        .publish(&c1.id, &c1.name, c1.addrs(), &wanted)
        .expect("publish");
    World {
        net,
        idle,
        forgotten,
        c1,
        c2,
        maps,
    }
}

/// berthd starts again: the networks from the store, the endpoints from the container
/// records, then the rules; the same traffic passes.
async fn restart(h: &Harness, meta: &Arc<MetaStore>, dut: &DriverUnderTest, w: &World) -> Networks {
    let nets = open(h, meta, Some(dut));
    for c in [&w.c1, &w.c2] {
        nets.restore(&c.attachee(&w.net.name), &c.eps).await;
    }
    nets.restore_ports(&w.c1.id, w.c1.addrs(), &w.maps);
    nets.rebuild_rules().expect("rules after restore");
    assert!(nets.find(&w.forgotten.id).is_err());
    check_traffic(h, &nets, &w.c1, &w.c2, w.published());
    {
        let mut st = nets.state();
        let alloc = st.nets.get_mut(&w.net.id).and_then(|n| n.alloc.as_mut());
        assert!(
            alloc.is_none_or(|a| a.claim(w.c1.ip()).is_err()),
            "c1's address is held again after the restart"
        );
    }
    nets
}

/// The disrupted idle network works again: a new endpoint reaches its gateway.
async fn check_idle_network(h: &Harness, nets: &Networks, idle: &NetworkRecord) -> Ctr {
    let mut c3 = Ctr::new(h, "c3", nets, &idle.name);
    let mut eps = std::mem::take(&mut c3.eps);
    nets.attach(&c3.attachee(&idle.name), &mut eps, 0)
        .await
        .expect("attach to the restored idle network");
    c3.eps = eps;
    let gw = SocketAddrV4::new(c3.gateway(), 7003);
    let l = listen(&h.host_path(), gw);
    assert!(
        connects(&c3.netns, gw),
        "the idle network's data plane came back"
    );
    drop(l);
    c3
}

/// `network disconnect` of c2, stop of c1 and c3 (their namespaces go).
async fn detach_all(h: &Harness, nets: &Networks, w: &World, c3: &Ctr) {
    nets.detach_one(&w.c2.id, &w.c2.netns, &w.c2.eps[&w.net.name])
        .await
        .expect("disconnect c2");
    let c2_links = sh(
        "ip",
        &["-n", &format!("{}-c2", h.host), "-o", "link", "show"],
    );
    assert_eq!(
        c2_links.lines().count(),
        1,
        "only lo left in c2: {c2_links}"
    );
    nets.detach(&w.c2.id);
    for c in [&w.c1, c3] {
        nets.detach(&c.id);
        sh(
            "ip",
            &["netns", "delete", &format!("{}-{}", h.host, c.name)],
        );
    }
    if let Some(port) = w.published() {
        let free = inside(&h.host_path(), move || {
            TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
        });
        assert!(free, "the published port {port} is released");
    }
    for n in [&w.net, &w.idle] {
        assert_eq!(
            nets.inspect(&n.id).expect("inspect")["Containers"],
            json!({})
        );
    }
}

/// Delete: nothing left beside what open made.
async fn delete_all(nets: &Networks, meta: &MetaStore, w: &World, baseline: &Snapshot, host: &str) {
    for n in [&w.net, &w.idle] {
        nets.remove(&n.id)
            .await
            .unwrap_or_else(|e| panic!("remove {}: {e:#}", n.name));
        assert!(nets.find(&n.id).is_err());
    }
    assert!(meta
        .list::<NetworkRecord>(NETWORKS)
        .expect("list")
        .iter()
        .all(|(_, r)| r.predefined()));
    // A deleted namespace is torn down asynchronously by the kernel: give its veths a moment.
    let mut after = snapshot(host);
    for _ in 0..50 {
        if after.links == baseline.links {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = snapshot(host);
    }
    assert_eq!(after.links, baseline.links, "links left behind");
    assert_eq!(after.addresses, baseline.addresses, "addresses left behind");
    for n in [&w.net, &w.idle, &w.forgotten] {
        assert!(
            !after.rules.contains(&n.subnet),
            "rules of {} left behind:\n{}",
            n.name,
            after.rules
        );
    }
}

async fn singleton(h: &Harness, driver: &'static str, network: &'static str) {
    let meta = Arc::new(MetaStore::open(&h.dir.join("metadata.redb")).expect("store"));
    let nets = open(h, &meta, None);
    let baseline = snapshot(&h.host);
    let rec = nets.find(network).expect("predefined network");
    assert_eq!(rec.driver, driver);
    let e = nets
        .create(json!({"Name": format!("x-{}", h.tag), "Driver": driver}))
        .await
        .expect_err("a second instance");
    assert_eq!(
        e.to_string(),
        format!("only one instance of \"{driver}\" network is allowed")
    );
    assert!(nets.remove(network).await.is_err(), "predefined stays");
    let mut ep = Endpoint::default();
    nets.check_endpoint(network, &mut ep)
        .expect("endpoint request");
    let c = h.netns(&format!("{}-c", h.host));
    let who = Attachee {
        id: "c",
        name: "c",
        netns: &c,
        primary: network,
        dns: &[],
    };
    let mut eps = BTreeMap::from([(network.to_owned(), ep)]);
    assert!(
        nets.attach(&who, &mut eps, 0).await.is_err(),
        "no endpoints"
    );
    assert_eq!(snapshot(&h.host), baseline, "nothing made");
    kill(nets).await;
    let nets = open(h, &meta, None);
    assert_eq!(nets.find(network).expect("still there").id, rec.id);
    kill(nets).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::bridge::{table_name, BridgeDriver};

    fn bridge() -> DriverUnderTest {
        DriverUnderTest {
            name: "bridge",
            factory: Arc::new(|cfg| Arc::new(BridgeDriver::new(cfg)) as Arc<dyn NetworkDriver>),
            options: BTreeMap::new(),
            ipv6: false,
            disrupt: Some(Arc::new(|rec, cfg| {
                // Inside the suite's host namespace: the runtime threads are there.
                sh("ip", &["link", "delete", &rec.bridge]);
                sh("nft", &["delete", "table", "ip", &table_name(&cfg.bridge)]);
            })),
        }
    }

    #[test]
    fn bridge_driver_conforms() {
        check_driver(bridge());
    }

    #[test]
    fn bridge_driver_with_options_conforms() {
        let mut dut = bridge();
        dut.options = BTreeMap::from([("com.docker.network.driver.mtu".into(), "1400".into())]);
        check_driver(dut);
    }

    #[test]
    fn bridge_driver_with_ipv6_conforms() {
        let mut dut = bridge();
        dut.ipv6 = true;
        check_driver(dut);
    }

    #[test]
    fn host_driver_conforms() {
        check_singleton("host", "host");
    }

    #[test]
    fn null_driver_conforms() {
        check_singleton("null", "none");
    }
}
