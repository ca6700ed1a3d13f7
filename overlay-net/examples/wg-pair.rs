//! Throughput of the user-space WireGuard tunnels without a cluster: two "nodes" (network
//! namespaces joined by a veth pair), a `wireguard::Device` in each, and a "container"
//! namespace on each with two overlays, a plain one and an encrypted one (VXLAN between the
//! tunnel addresses), as a node sets them up. iperf3 runs over the veth (the baseline),
//! between the tunnel addresses, then between the containers over each overlay. Needs root
//! and iperf3.
//!
//! ```text
//! cargo run --release -p berth-overlay-net --example wg-pair -- [seconds] [iperf3 args...]
//! ```
//! It prints both rates (the receiver's), TCP retransmits, the CPU the tunnels' threads used
//! per GB carried (both devices run in this process), and each namespace's tun and UDP drop
//! counters: where a lost packet was lost. Before the tunnel run it prints its pid, for
//! `perf record -p`. Everything it makes (namespaces, veth, tun devices, iperf3 servers) is
//! named after its pid and removed when it ends, also when a step fails (not when it is
//! killed, or panics under the release profile's `panic = "abort"`: then `ip netns delete
//! wgp<pid>a wgp<pid>b`, the pid in hex).

use std::collections::BTreeSet;
use std::error::Error;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_overlay_net::model::{bridge_name, mac_for, Peer, Plane, OVERLAY_MTU};
use berth_overlay_net::netlink::{self, KernelError, Netlink};
use berth_overlay_net::wireguard::{Device, PeerConfig, PrivateKey, DEVICE, ENCRYPTED_OVERLAY_MTU};

type Res<T> = Result<T, Box<dyn Error>>;

/// Runs a command to completion; a failure carries its stderr.
fn run(args: &[&str]) -> Res<String> {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !o.status.success() {
        return Err(format!("{args:?}: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The namespaces of this run, deleted on drop (their veth ends go with them).
struct Netns(Vec<String>);

impl Netns {
    fn add(&mut self, name: String) -> Res<String> {
        run(&["ip", "netns", "add", &name])?;
        self.0.push(name.clone());
        run(&["ip", "-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "delete", n]).status();
        }
    }
}

/// A background process, killed and reaped on drop.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `f` on a thread inside namespace `ns` (threads it starts stay there).
fn inside<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Res<T> {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    let h = std::thread::spawn(move || {
        // SAFETY: setns on a descriptor held open by this closure; it changes only this
        // thread.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        (r == 0).then(f)
    });
    let r = h.join().map_err(|_| "namespace thread panicked")?;
    r.ok_or_else(|| format!("setns {path}").into())
}

/// The number after `"key":` at or after `from` in iperf3's JSON.
fn number_after(json: &str, from: usize, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let at = from + json[from..].find(&pat)? + pat.len();
    let rest = json[at..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-' || c == '+'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// One iperf3 run from `client` to `server`'s `to`: (receiver Gbit/s, retransmits).
fn iperf(client: &str, server: &str, to: Ipv4Addr, secs: u32, extra: &[String]) -> Res<(f64, f64)> {
    let srv = Command::new("ip")
        .args(["netns", "exec", server, "iperf3", "-s", "-1", "-B"])
        .arg(to.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("iperf3 server: {e}"))?;
    let _srv = Bg(srv);
    std::thread::sleep(Duration::from_millis(300));
    let (to, secs) = (to.to_string(), secs.to_string());
    let mut args = vec![
        "ip", "netns", "exec", client, "iperf3", "-J", "-c", &to, "-t", &secs,
    ];
    args.extend(extra.iter().map(String::as_str));
    let json = run(&args)?;
    let end = json.find("\"end\":").ok_or("no end in iperf3's output")?;
    let sent = json[end..].find("\"sum_sent\":").ok_or("no sum_sent")? + end;
    let recv = json[end..]
        .find("\"sum_received\":")
        .ok_or("no sum_received")?
        + end;
    let retr = number_after(&json, sent, "retransmits").unwrap_or(0.0);
    let bps = number_after(&json, recv, "bits_per_second").ok_or("no receiver rate")?;
    Ok((bps / 1e9, retr))
}

fn peer(key: &PrivateKey, under: Ipv4Addr, tunnel: Ipv4Addr) -> PeerConfig {
    PeerConfig {
        public: key.public(),
        endpoint: SocketAddrV4::new(under, 51820),
        address: tunnel,
    }
}

/// Waits until `from` reaches `to` (the first handshake is done).
fn wait_ping(from: &str, to: Ipv4Addr) -> Res<()> {
    let to = to.to_string();
    for _ in 0..20 {
        let ok = Command::new("ip")
            .args([
                "netns",
                "exec",
                from,
                "/bin/busybox",
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                &to,
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(());
        }
    }
    Err(format!("{from} never reached {to}").into())
}

/// Underlay (veth) and tunnel addresses of the two nodes.
const UNDER: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
const TUNNEL: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2)];

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let secs: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let run = Run {
        secs,
        extra: args.collect(),
    };
    let id = format!("{:06x}", std::process::id() & 0xff_ffff);
    let mut ns = Netns(Vec::new());
    let [a, b] = nodes(&mut ns, &id)?;
    let gbps = run.measure("veth", &a, &b, UNDER[1], None)?;
    let devices = tunnels(&a, &b)?;
    println!("tunnel run: pid {}", std::process::id());
    run.measure("wireguard", &a, &b, TUNNEL[1], Some(gbps))?;
    for n in [&a, &b] {
        counters(n)?;
    }
    let ctrs = [ns.add(format!("wgp{id}ca"))?, ns.add(format!("wgp{id}cb"))?];
    overlays(&[a.clone(), b.clone()], &ctrs, UNDER, TUNNEL)?;
    for net in &NETS {
        let to = net.addr(1);
        wait_ping(&ctrs[0], to)?;
        run.measure(net.name, &ctrs[0], &ctrs[1], to, Some(gbps))?;
    }
    for n in [&a, &b] {
        counters(n)?;
    }
    drop(devices);
    Ok(())
}

/// Two node namespaces joined by a veth pair `u0` with the [`UNDER`] addresses.
fn nodes(ns: &mut Netns, id: &str) -> Res<[String; 2]> {
    let (a, b) = (ns.add(format!("wgp{id}a"))?, ns.add(format!("wgp{id}b"))?);
    run(&[
        "ip", "-n", &a, "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", &b,
    ])?;
    for (n, addr) in [(&a, UNDER[0]), (&b, UNDER[1])] {
        let cidr = format!("{addr}/24");
        run(&["ip", "-n", n, "addr", "add", &cidr, "dev", "u0"])?;
        run(&["ip", "-n", n, "link", "set", "u0", "up"])?;
    }
    Ok([a, b])
}

/// A tunnel device in each node, each the other's peer, with a session up.
fn tunnels(a: &str, b: &str) -> Res<[Device; 2]> {
    let (ka, kb) = (PrivateKey::generate()?, PrivateKey::generate()?);
    let start = |n: &str, k: &PrivateKey, t: Ipv4Addr| -> Res<Device> {
        let k = k.clone();
        Ok(inside(n, move || Device::start(DEVICE, &k, t, 16, 51820))??)
    };
    let (da, db) = (start(a, &ka, TUNNEL[0])?, start(b, &kb, TUNNEL[1])?);
    da.set_peers(&[peer(&kb, UNDER[1], TUNNEL[1])]);
    db.set_peers(&[peer(&ka, UNDER[0], TUNNEL[0])]);
    wait_ping(a, TUNNEL[1])?;
    Ok([da, db])
}

/// An overlay between the two containers.
struct Net {
    name: &'static str,
    id: &'static str,
    vni: u32,
    /// Its subnet is 10.<subnet>.0.0/24.
    subnet: u8,
    mtu: u32,
    /// VXLAN between the tunnel addresses, not the underlay ones.
    encrypted: bool,
    /// The container's interface on it.
    ifname: &'static str,
}

impl Net {
    /// Node `i`'s container's address on it.
    fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet, 0, 3 + i as u8)
    }
}

const NETS: [Net; 2] = [
    Net {
        name: "vxlan",
        id: "0123456789abcdef",
        vni: 4300,
        subnet: 9,
        mtu: OVERLAY_MTU,
        encrypted: false,
        ifname: "eth1",
    },
    Net {
        name: "vxlan+wg",
        id: "fedcba9876543210",
        vni: 4301,
        subnet: 10,
        mtu: ENCRYPTED_OVERLAY_MTU,
        encrypted: true,
        ifname: "eth2",
    },
];

/// Both overlays on both nodes (bridge and VXLAN device by the crate's reconciler), and each
/// container's veth on each bridge.
fn overlays(
    nodes: &[String; 2],
    ctrs: &[String; 2],
    under: [Ipv4Addr; 2],
    tunnel: [Ipv4Addr; 2],
) -> Res<()> {
    for i in 0..2 {
        let j = 1 - i;
        let planes: Vec<Plane> = NETS
            .iter()
            .map(|n| {
                let ends = if n.encrypted { tunnel } else { under };
                Plane {
                    network_id: n.id.into(),
                    vni: n.vni,
                    local: ends[i],
                    peers: BTreeSet::from([Peer {
                        ip: n.addr(j),
                        mac: mac_for(n.addr(j)),
                        node: ends[j],
                    }]),
                    mtu: n.mtu,
                }
            })
            .collect();
        inside(&nodes[i], move || -> Result<(), KernelError> {
            netlink::reconcile(&mut Netlink::open()?, &planes).map(drop)
        })??;
        for (k, n) in NETS.iter().enumerate() {
            attach(&nodes[i], &ctrs[i], &format!("v{k}"), n, i)?;
        }
    }
    Ok(())
}

/// A veth from `node`'s bridge of `net` to `ctr`, as node `i`'s container.
fn attach(node: &str, ctr: &str, veth: &str, net: &Net, i: usize) -> Res<()> {
    let (mtu, addr) = (net.mtu.to_string(), net.addr(i));
    let mac = netlink::fmt_mac(&mac_for(addr));
    let ifname = net.ifname;
    run(&[
        "ip", "-n", node, "link", "add", veth, "mtu", &mtu, "type", "veth", "peer", "name", ifname,
        "netns", ctr,
    ])?;
    run(&[
        "ip",
        "-n",
        node,
        "link",
        "set",
        veth,
        "master",
        &bridge_name(net.id),
        "up",
    ])?;
    run(&[
        "ip", "-n", ctr, "link", "set", ifname, "address", &mac, "mtu", &mtu, "up",
    ])?;
    run(&[
        "ip",
        "-n",
        ctr,
        "addr",
        "add",
        &format!("{addr}/24"),
        "dev",
        ifname,
    ])?;
    Ok(())
}

/// How every iperf3 run goes.
struct Run {
    secs: u32,
    extra: Vec<String>,
}

impl Run {
    /// One iperf3 run, printed with the CPU it took: the whole machine's (how busy both
    /// cores were) and the tunnel threads' (per GB carried). Returns the rate, Gbit/s.
    fn measure(
        &self,
        label: &str,
        client: &str,
        server: &str,
        to: Ipv4Addr,
        baseline: Option<f64>,
    ) -> Res<f64> {
        let (threads, machine) = (thread_cpu()?, machine_cpu()?);
        let (gbps, retr) = iperf(client, server, to, self.secs, &self.extra)?;
        let (threads2, machine2) = (thread_cpu()?, machine_cpu()?);
        let busy = (machine2.0 - machine.0) / (machine2.1 - machine.1).max(1.0);
        let tunnels: f64 = threads2
            .iter()
            .map(|(n, t)| t - threads.get(n).copied().unwrap_or(0.0))
            .sum();
        let gb = gbps * f64::from(self.secs) / 8.0;
        let ratio = baseline.map_or(String::new(), |b| format!(" ({:.3}x)", gbps / b));
        print!(
            "{label:9}: {gbps:6.2} Gbit/s{ratio}  retr {retr}  machine busy {:3.0} %",
            100.0 * busy
        );
        if baseline.is_some() {
            print!(
                "  tunnel threads {:3.0} % of a core, {:4.2} CPU-s/GB",
                100.0 * tunnels / f64::from(self.secs),
                tunnels / gb
            );
        }
        println!();
        Ok(gbps)
    }
}

/// Jiffies since boot, all CPUs: (busy, total) from /proc/stat.
fn machine_cpu() -> Res<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().ok_or("empty /proc/stat")?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let total: f64 = v.iter().take(8).sum();
    // idle and iowait are fields 4 and 5.
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    Ok((total - idle, total))
}

/// CPU seconds (user + system) used so far by this process's threads, summed by thread
/// name: both devices' `wg-out` together, and so on.
fn thread_cpu() -> Res<std::collections::BTreeMap<String, f64>> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut sums = std::collections::BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let stat = std::fs::read_to_string(task?.path().join("stat"))?;
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        // After the name: state is field 3, utime and stime are fields 14 and 15.
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let field = |i: usize| -> Res<f64> { Ok(f.get(i).ok_or("short stat line")?.parse()?) };
        let ticks = field(11)? + field(12)?;
        if ["wg-out", "wg-in", "wg-timers"].contains(&name.as_str()) {
            *sums.entry(name).or_insert(0.0) += ticks / hz;
        }
    }
    Ok(sums)
}

/// Where packets were lost in `ns`: the tun device's drop counters, and the UDP and TCP
/// counters that say which queue overflowed.
fn counters(ns: &str) -> Res<()> {
    let link = run(&["ip", "-n", ns, "-s", "-o", "link", "show", DEVICE])?;
    let stats: Vec<&str> = link.split("\\").map(str::trim).collect();
    println!(
        "{ns} {DEVICE}: {}",
        stats.get(1..).unwrap_or_default().join(" | ")
    );
    let nstat = run(&["ip", "netns", "exec", ns, "nstat", "-az"])?;
    let wanted = [
        "UdpRcvbufErrors",
        "UdpSndbufErrors",
        "UdpInErrors",
        "TcpExtTCPBacklogDrop",
    ];
    let found: Vec<&str> = nstat
        .lines()
        .filter(|l| wanted.iter().any(|w| l.starts_with(w)))
        .collect();
    println!("{ns} {}", found.join(" | "));
    Ok(())
}
