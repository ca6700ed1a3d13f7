//! The overlay benchmark (Berth only: Docker Swarm's VIPs need IPVS, which this kernel
//! lacks), on 3 nodes (1 manager, 2 workers) with a plain and an encrypted overlay:
//!
//! - TCP throughput (iperf3, run inside the namespaces with `nsenter -n` / `ip netns exec`)
//!   between two task containers on different nodes over VXLAN and over VXLAN inside
//!   WireGuard, each as a ratio of the throughput between the same two nodes' namespaces
//!   over the underlay itself (the containers have no path to each other without an
//!   overlay: the underlay is what the overlay rides on);
//! - from a task starting (its process's start time) to its service name resolving and its
//!   VIP answering in a task container on another node (a thread in that container's
//!   namespace polls the embedded DNS and the VIP every 2 ms);
//! - TCP connections per second through a VIP (nftables DNAT to 2 busybox httpd tasks, one
//!   of them on another node), 2 client threads in a task's namespace, connect then close:
//!   bounded by httpd's fork per connection as much as by the DNAT.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_chaos_tests::{swarm, Cluster, Host};
use serde_json::{json, Value};

use super::{check_stop, log, summary, Bench, Conn};

const IMAGE: &str = "busybox:latest";
const HTTPD: &str = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www";

fn conn(h: &Host) -> Result<Conn, String> {
    Conn::connect(&h.socket(), Duration::from_secs(30)).map_err(|e| e.to_string())
}

/// A service body: `args` on `node` (hostname), on the given network ids.
fn body(name: &str, replicas: u64, node: Option<&str>, nets: &[&str], args: &[&str]) -> Value {
    let mut b = json!({
        "Name": name,
        "TaskTemplate": {
            "ContainerSpec": {"Image": IMAGE, "Args": args, "StopGracePeriod": 1_000_000_000u64},
            "Networks": nets.iter().map(|n| json!({"Target": n})).collect::<Vec<_>>(),
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
    });
    if let Some(n) = node {
        b["TaskTemplate"]["Placement"] = json!({"Constraints": [format!("node.hostname=={n}")]});
    }
    b
}

/// The running task container of `service` on `h`: (pid, network name → address).
fn task(h: &Host, service: &str) -> Option<(u32, Value)> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    let out = h.docker(&["ps", "-q", "--filter", &filter]);
    let id = swarm::stdout(&out).lines().next()?.to_owned();
    let v = conn(h)
        .ok()?
        .json("GET", &format!("/containers/{id}/json"), None)
        .ok()?;
    let pid = v["State"]["Pid"].as_u64().filter(|p| *p > 0)? as u32;
    Some((pid, v["NetworkSettings"]["Networks"].clone()))
}

fn wait_task(h: &Host, service: &str, limit: Duration) -> Result<(u32, Value), String> {
    let t = Instant::now();
    while t.elapsed() < limit {
        check_stop();
        if let Some(x) = task(h, service) {
            return Ok(x);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{service}: no running task on {}", h.hostname()))
}

fn addr_on(nets: &Value, net: &str) -> Result<String, String> {
    nets[net]["IPAddress"]
        .as_str()
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("no address on {net}: {nets}"))
}

/// The command prefix that runs a program in a namespace.
enum Ns<'a> {
    Pid(u32),
    Named(&'a str),
}

fn in_ns(ns: &Ns, program: &str) -> Command {
    match ns {
        Ns::Pid(p) => {
            let mut c = Command::new("nsenter");
            c.args(["-t", &p.to_string(), "-n", program]);
            c
        }
        Ns::Named(n) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", n, program]);
            c
        }
    }
}

/// iperf3 from `client` to `server` (listening at `addr`) for `secs`: Gbit/s received.
fn iperf(server: &Ns, client: &Ns, addr: &str, secs: f64) -> Result<f64, String> {
    let mut srv = in_ns(server, "iperf3")
        .args(["-s", "-1", "-p", "5299"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("iperf3 server (scripts/deps installs iperf3): {e}"))?;
    std::thread::sleep(Duration::from_millis(400));
    let out = in_ns(client, "iperf3")
        .args(["-c", addr, "-p", "5299", "-J", "-t", &format!("{secs}")])
        .output();
    let _ = srv.kill();
    let _ = srv.wait();
    let out = out.map_err(|e| format!("iperf3 client: {e}"))?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "iperf3 output: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    v.pointer("/end/sum_received/bits_per_second")
        .and_then(Value::as_f64)
        .map(|b| b / 1e9)
        .ok_or_else(|| format!("iperf3: {}", v["error"]))
}

/// Runs `f` on a thread in the network namespace of process `pid`.
fn in_netns_of<T: Send + 'static>(pid: u32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/ns/net");
        let file = std::fs::File::open(&path).expect("netns of the task");
        // SAFETY: setns on a descriptor we hold open; it changes only this thread.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}");
        f()
    })
    .join()
    .expect("namespace thread")
}

/// Whether the embedded DNS answers `name` with at least one A record.
fn resolves(sock: &UdpSocket, name: &str) -> bool {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut buf = [0u8; 512];
    sock.send_to(&q, "127.0.0.11:53").is_ok()
        && sock
            .recv(&mut buf)
            .is_ok_and(|n| n > 8 && buf[3] & 0x0f == 0 && u16::from_be_bytes([buf[6], buf[7]]) > 0)
}

/// Seconds since boot now (the clock of /proc/<pid>/stat's start times).
fn boottime() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// When process `pid` started, in seconds since boot (10 ms resolution).
fn started(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let ticks: f64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// From the namespace of `pid`: polls until `name` resolves and `vip:80` accepts; the
/// boot-clock times of both.
fn first_answers(
    pid: u32,
    name: String,
    vip: Ipv4Addr,
    limit: Duration,
) -> (Option<f64>, Option<f64>) {
    in_netns_of(pid, move || {
        let sock = UdpSocket::bind("0.0.0.0:0").expect("udp");
        let _ = sock.set_read_timeout(Some(Duration::from_millis(20)));
        let (mut dns, mut tcp) = (None, None);
        let t = Instant::now();
        while t.elapsed() < limit && (dns.is_none() || tcp.is_none()) {
            if dns.is_none() && resolves(&sock, &name) {
                dns = Some(boottime());
            }
            let target = SocketAddr::from((vip, 80));
            if tcp.is_none()
                && TcpStream::connect_timeout(&target, Duration::from_millis(20)).is_ok()
            {
                tcp = Some(boottime());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (dns, tcp)
    })
}

/// Connections per second to `vip:80` from the namespace of `pid`, 2 threads, `secs`
/// (each connects, sends a request line and closes; a SYN that waits for a full accept
/// queue is retried by TCP after 1 s, hence the 3 s bound).
fn connection_rate(pid: u32, vip: Ipv4Addr, secs: f64) -> (f64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
            std::thread::spawn(move || {
                in_netns_of(pid, move || {
                    let target = SocketAddr::from((vip, 80));
                    while !stop.load(Ordering::Relaxed) {
                        match TcpStream::connect_timeout(&target, Duration::from_secs(3)) {
                            Ok(mut s) => {
                                let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
        })
        .collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        let _ = th.join();
    }
    let n = ok.load(Ordering::Relaxed) as f64;
    (
        n / t.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed),
    )
}

impl Bench<'_> {
    /// The overlay part of the benchmark, on a fresh 3-node cluster.
    pub(crate) fn overlay(&mut self) {
        log("berth: overlay networks on 3 nodes (1 manager, 2 workers)");
        let c = Cluster::new(3);
        for h in c.hosts() {
            h.import_busybox();
        }
        swarm::form(&c, 1, 2);
        self.version(c.host(0));
        let mut out = serde_json::Map::new();
        if let Err(e) = self.throughput(&c, &mut out) {
            self.problem("overlay throughput", e);
        }
        check_stop();
        if let Err(e) = self.vip_latency_and_rate(&c, &mut out) {
            self.problem("overlay VIP", e);
        }
        self.out.insert("overlay".into(), Value::Object(out));
    }

    fn networks(&self, m: &Host) -> Result<(String, String), String> {
        let mut api = conn(m)?;
        let mut id = |name: &str, encrypted: bool| -> Result<String, String> {
            let opts = if encrypted {
                json!({"encrypted": ""})
            } else {
                json!({})
            };
            let body = json!({"Name": name, "Driver": "overlay", "Options": opts});
            let v = api.json("POST", "/networks/create", Some(&body))?;
            v["Id"]
                .as_str()
                .map(str::to_owned)
                .ok_or("no network id".into())
        };
        Ok((id("bplain", false)?, id("bsec", true)?))
    }

    fn throughput(
        &mut self,
        c: &Cluster,
        out: &mut serde_json::Map<String, Value>,
    ) -> Result<(), String> {
        let (m, a, b) = (c.host(0), c.host(1), c.host(2));
        let (plain, sec) = self.networks(m)?;
        let mut api = conn(m)?;
        for (name, node) in [("srv", a.hostname()), ("cli", b.hostname())] {
            let args = ["sleep", "86400"];
            let svc = body(name, 1, Some(node), &[&plain, &sec], &args);
            api.json("POST", "/services/create", Some(&svc))?;
        }
        let (spid, snets) = wait_task(a, "srv", Duration::from_secs(120))?;
        let (cpid, _) = wait_task(b, "cli", Duration::from_secs(120))?;
        let secs = if self.o.smoke {
            1.0
        } else {
            self.o.seconds.max(3.0)
        };
        let mut figures =
            |label: &str, server: Ns, client: Ns, addr: &str| -> Result<f64, String> {
                let mut runs = Vec::new();
                for _ in 0..self.o.rounds {
                    check_stop();
                    // The overlays' first packets wait for ARP-less FDB programming and, on the
                    // encrypted one, a handshake: retry a failed first run once.
                    let g = iperf(&server, &client, addr, secs)
                        .or_else(|_| iperf(&server, &client, addr, secs))?;
                    log(&format!("  {label}: {g:.2} Gbit/s"));
                    runs.push(g);
                }
                let s = summary(&runs);
                out.insert(format!("{label}_gbit_s"), s.clone());
                Ok(s["median"].as_f64().unwrap_or(0.0))
            };
        let under = figures(
            "underlay",
            Ns::Named(a.netns()),
            Ns::Named(b.netns()),
            a.ip(),
        )?;
        let vx = figures(
            "vxlan",
            Ns::Pid(spid),
            Ns::Pid(cpid),
            &addr_on(&snets, "bplain")?,
        )?;
        let wg = figures(
            "wireguard",
            Ns::Pid(spid),
            Ns::Pid(cpid),
            &addr_on(&snets, "bsec")?,
        )?;
        out.insert("iperf_seconds".into(), json!(secs));
        if under > 0.0 {
            out.insert("vxlan_ratio".into(), json!(vx / under));
            out.insert("wireguard_ratio".into(), json!(wg / under));
        }
        for s in ["srv", "cli"] {
            let _ = api.json("DELETE", &format!("/services/{s}"), None);
        }
        Ok(())
    }

    fn vip_latency_and_rate(
        &mut self,
        c: &Cluster,
        out: &mut serde_json::Map<String, Value>,
    ) -> Result<(), String> {
        let (m, a, b) = (c.host(0), c.host(1), c.host(2));
        let mut api = conn(m)?;
        let probe = body(
            "probe",
            1,
            Some(b.hostname()),
            &["bplain"],
            &["sleep", "86400"],
        );
        api.json("POST", "/services/create", Some(&probe))?;
        let (ppid, _) = wait_task(b, "probe", Duration::from_secs(120))?;
        let (mut dns, mut vip_ms) = (Vec::new(), Vec::new());
        for round in 0..self.o.rounds.max(3) {
            check_stop();
            let name = format!("lat{round}");
            let svc = body(
                &name,
                1,
                Some(a.hostname()),
                &["bplain"],
                &["sh", "-c", HTTPD],
            );
            api.json("POST", "/services/create", Some(&svc))?;
            let v = api.json("GET", &format!("/services/{name}"), None)?;
            let vip: Ipv4Addr = v
                .pointer("/Endpoint/VirtualIPs/0/Addr")
                .and_then(Value::as_str)
                .and_then(|s| s.split('/').next()?.parse().ok())
                .ok_or("no VIP")?;
            let (d, t) = first_answers(ppid, name.clone(), vip, Duration::from_secs(90));
            let (pid, _) = wait_task(a, &name, Duration::from_secs(10))?;
            let start = started(pid).ok_or("task start time")?;
            let (d, t) = (
                d.ok_or("name never resolved")?,
                t.ok_or("VIP never answered")?,
            );
            // The name resolves to the VIP before the task exists: count that as 0.
            dns.push(((d - start) * 1e3).max(0.0));
            vip_ms.push((t - start) * 1e3);
            log(&format!(
                "  {name}: name {:.0} ms, VIP answers {:.0} ms after the task started",
                dns[dns.len() - 1],
                (t - start) * 1e3
            ));
            let _ = api.json("DELETE", &format!("/services/{name}"), None);
        }
        out.insert("name_resolves_ms".into(), summary(&dns));
        out.insert("vip_answers_ms".into(), summary(&vip_ms));
        let web = body("web", 2, None, &["bplain"], &["sh", "-c", HTTPD]);
        api.json("POST", "/services/create", Some(&web))?;
        let v = api.json("GET", "/services/web", None)?;
        let vip: Ipv4Addr = v
            .pointer("/Endpoint/VirtualIPs/0/Addr")
            .and_then(Value::as_str)
            .and_then(|s| s.split('/').next()?.parse().ok())
            .ok_or("no VIP")?;
        let (_, t) = first_answers(ppid, "web".into(), vip, Duration::from_secs(90));
        t.ok_or("web's VIP never answered")?;
        std::thread::sleep(Duration::from_secs(2));
        let secs = if self.o.smoke { 1.0 } else { self.o.seconds };
        let (rate, failed) = connection_rate(ppid, vip, secs);
        log(&format!("  VIP: {rate:.0} connections/s ({failed} failed)"));
        out.insert("vip_connections_per_s".into(), json!(rate));
        out.insert("vip_connections_failed".into(), json!(failed));
        let _ = api.json("DELETE", "/services/web", None);
        let _ = api.json("DELETE", "/services/probe", None);
        Ok(())
    }
}
