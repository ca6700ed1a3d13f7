//! Cluster benchmarks: Berth's managers against Docker Swarm's, on this machine, in one run,
//! reported as ratios. Each engine gets clusters from the chaos harness (each daemon in its
//! own network namespace on a private switch; Docker through `BERTH_CHAOS_DOCKERD`), driven
//! through the Engine API over each daemon's unix socket with a small keep-alive HTTP/1.1
//! client (the docker CLI only to form the cluster and find the leader).
//!
//! ```text
//! cluster-bench [--smoke] [--engines berth,docker] [--dockerd PATH] [--json PATH]
//!               [--rounds N] [--seconds S] [--clients N] [--failovers N] [--settle S]
//!               [--replicas N] [--parts control,services,overlay]
//! ```
//!
//! What it measures, per engine (see README.md, section "Benchmarks"):
//! - idle RSS of one daemon outside a cluster, and of each manager of an idle 3-manager
//!   cluster (Docker: dockerd + its containerd);
//! - one client's acknowledged writes: `GET /nodes/{id}` then `POST /nodes/{id}/update` of a
//!   label, in a loop, on the leader; p50/p99 of the POST, GET+POST pairs per second;
//! - 32 concurrent clients creating secrets with unique names for a fixed time;
//! - leader failover: kill -9 of the leader's daemon until a `node update` through a
//!   surviving manager is acknowledged, repeated (the killed daemon restarted in between);
//! - services on 3 nodes (`services.rs`): N replicas created → running and removed → gone,
//!   a rolling update of 30 replicas with parallelism 5, a worker's kill -9 → its tasks
//!   running elsewhere;
//! - overlay networks (`overlay.rs`, Berth only): TCP throughput over VXLAN and over
//!   WireGuard as ratios of the underlay's, task start → its name and VIP answering on
//!   another node, VIP connections per second.
//!
//! Needs root. Never a pass/fail test: figures are printed and written as JSON. The exit
//! status is 1 when a Berth measurement failed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use berth_chaos_tests::{bin_dir, eventually, swarm, Cluster, Host};
use serde_json::{json, Value};

mod overlay;
mod services;

/// The API version prefix of every request (what docker 20.10's CLI sends).
const API: &str = "/v1.41";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn check_stop() {
    assert!(!STOP.load(Ordering::SeqCst), "interrupted");
}

fn log(msg: &str) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() % 86400)
        .unwrap_or(0);
    eprintln!(
        "[cluster-bench {:02}:{:02}:{:02}] {msg}",
        t / 3600,
        t / 60 % 60,
        t % 60
    );
}

// ---------------------------------------------------------------------------------------
// A keep-alive HTTP/1.1 client over a unix socket.

struct Conn {
    r: BufReader<UnixStream>,
}

impl Conn {
    fn connect(sock: &Path, timeout: Duration) -> std::io::Result<Conn> {
        let s = UnixStream::connect(sock)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        Ok(Conn {
            r: BufReader::new(s),
        })
    }

    /// One request on this connection: (status, body). An error leaves the connection
    /// unusable.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut req = format!("{method} {API}{path} HTTP/1.1\r\nHost: docker\r\n").into_bytes();
        if let Some(b) = body {
            req.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    b.len()
                )
                .as_bytes(),
            );
        }
        req.extend_from_slice(b"\r\n");
        if let Some(b) = body {
            req.extend_from_slice(b);
        }
        self.r.get_mut().write_all(&req)?;
        self.read_response(method == "HEAD")
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut l = String::new();
        if self.r.read_line(&mut l)? == 0 {
            return Err(bad("connection closed"));
        }
        Ok(l.trim_end().to_owned())
    }

    fn read_response(&mut self, head: bool) -> std::io::Result<(u16, Vec<u8>)> {
        let status = self.line()?;
        let code: u16 = status
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad(&format!("bad status line {status:?}")))?;
        let (mut len, mut chunked, mut close) = (None, false, false);
        loop {
            let l = self.line()?;
            if l.is_empty() {
                break;
            }
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => len = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" => close = v == "close",
                _ => {}
            }
        }
        let mut body = Vec::new();
        if head || code == 204 || code == 304 || (100..200).contains(&code) {
        } else if chunked {
            loop {
                let size = self.line()?;
                let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| bad("bad chunk size"))?;
                if size == 0 {
                    while !self.line()?.is_empty() {}
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.r.read_exact(&mut body[start..])?;
                self.line()?;
            }
        } else if let Some(n) = len {
            body.resize(n, 0);
            self.r.read_exact(&mut body)?;
        } else {
            self.r.read_to_end(&mut body)?;
            close = true;
        }
        if close {
            let _ = self.r.get_mut().shutdown(std::net::Shutdown::Both);
        }
        Ok((code, body))
    }

    fn json(&mut self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let b = body.map(|b| b.to_string().into_bytes());
        let (code, out) = self
            .request(method, path, b.as_deref())
            .map_err(|e| format!("{method} {path}: {e}"))?;
        if !(200..300).contains(&code) {
            return Err(format!(
                "{method} {path}: {code} {}",
                String::from_utf8_lossy(&out).trim()
            ));
        }
        if out.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out).map_err(|e| format!("{method} {path}: {e}"))
    }
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_owned())
}

// ---------------------------------------------------------------------------------------
// Options, engines, small statistics.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    Berth,
    Docker,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Berth => "berth",
            Engine::Docker => "docker",
        }
    }
}

struct Opts {
    smoke: bool,
    engines: Vec<Engine>,
    dockerd: Option<PathBuf>,
    json: PathBuf,
    rounds: usize,
    seconds: f64,
    clients: usize,
    failovers: usize,
    settle: f64,
    /// Replicas of the services benchmark's create/rm.
    replicas: u64,
    /// Which parts run: the control plane (managers) and/or services.
    control: bool,
    services: bool,
    overlay: bool,
}

const USAGE: &str = "cluster-bench [--smoke] [--engines berth,docker] [--dockerd PATH] \
[--json PATH] [--rounds N] [--seconds S] [--clients N] [--failovers N] [--settle S] \
[--replicas N] [--parts control,services,overlay]";

fn parse_opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let mut o = Opts {
        smoke,
        engines: if smoke {
            vec![Engine::Berth]
        } else {
            vec![Engine::Berth, Engine::Docker]
        },
        dockerd: None,
        json: Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace dir")
            .join("bench/results/cluster-latest.json"),
        rounds: if smoke { 1 } else { 3 },
        seconds: if smoke { 0.5 } else { 5.0 },
        clients: 32,
        failovers: if smoke { 1 } else { 5 },
        settle: if smoke { 1.0 } else { 5.0 },
        replicas: if smoke { 6 } else { 100 },
        control: true,
        services: true,
        overlay: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        let num = |v: String| -> f64 { v.parse().unwrap_or_else(|_| usage(&format!("{a} {v}"))) };
        match a.as_str() {
            "--smoke" => {}
            "--engines" => {
                o.engines = val()
                    .split(',')
                    .filter(|e| !e.is_empty())
                    .map(|e| match e {
                        "berth" => Engine::Berth,
                        "docker" => Engine::Docker,
                        _ => usage(&format!("unknown engine {e}")),
                    })
                    .collect()
            }
            "--dockerd" => o.dockerd = Some(PathBuf::from(val())),
            "--json" => o.json = PathBuf::from(val()),
            "--rounds" => o.rounds = (num(val()) as usize).max(1),
            "--seconds" => o.seconds = num(val()).max(0.1),
            "--clients" => o.clients = (num(val()) as usize).max(1),
            "--failovers" => o.failovers = num(val()) as usize,
            "--settle" => o.settle = num(val()).max(0.0),
            "--replicas" => o.replicas = (num(val()) as u64).max(1),
            "--parts" => {
                let parts = val();
                o.control = parts.split(',').any(|p| p == "control");
                o.services = parts.split(',').any(|p| p == "services");
                o.overlay = parts.split(',').any(|p| p == "overlay");
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    o
}

fn usage(msg: &str) -> ! {
    eprintln!("cluster-bench: {msg}\nusage: {USAGE}");
    std::process::exit(2)
}

/// The dockerd to compare with: `--dockerd`, `$BERTH_CHAOS_DOCKERD`, or `dockerd` on PATH.
fn find_dockerd(o: &Opts) -> Option<PathBuf> {
    if let Some(d) = &o.dockerd {
        return Some(d.clone());
    }
    if let Some(d) = std::env::var_os("BERTH_CHAOS_DOCKERD") {
        return Some(PathBuf::from(d));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join("dockerd"))
        .find(|p| p.exists())
}

/// Makes the harness start `engine`'s daemon from now on (it reads the variable at each
/// start). Its containerd must be on PATH: the dockerd's own directory and `../bin` go first.
fn select(engine: Engine, dockerd: Option<&Path>) {
    match (engine, dockerd) {
        (Engine::Docker, Some(d)) => {
            std::env::set_var("BERTH_CHAOS_DOCKERD", d);
            let dir = d.parent().unwrap_or(Path::new("/"));
            let mut dirs = vec![dir.to_owned(), dir.join("../bin")];
            if let Some(p) = std::env::var_os("PATH") {
                let rest: Vec<PathBuf> = std::env::split_paths(&p)
                    .filter(|p| !dirs.contains(p))
                    .collect();
                dirs.extend(rest);
            }
            if let Ok(p) = std::env::join_paths(dirs) {
                std::env::set_var("PATH", p);
            }
        }
        _ => std::env::remove_var("BERTH_CHAOS_DOCKERD"),
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// Median, min and max of `v`, as JSON (null when empty).
fn summary(v: &[f64]) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    let s = sorted(v);
    json!({"median": percentile(&s, 0.5), "min": s[0], "max": s[s.len() - 1], "n": s.len()})
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------
// Process memory.

fn proc_field(pid: u32, file: &str, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_owned())
}

/// VmRSS of `pid` in MB.
fn rss_mb(pid: u32) -> Option<f64> {
    let kb: f64 = proc_field(pid, "status", "VmRSS:")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// The daemon's RSS in MB: berthd; or dockerd plus the containerd it started.
fn daemon_rss(h: &Host) -> Option<f64> {
    let pid = h.pid()?;
    let mut total = rss_mb(pid)?;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let ppid = proc_field(child, "status", "PPid:");
        let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
        if ppid.as_deref() == Some(&pid.to_string()) && comm.trim() == "containerd" {
            total += rss_mb(child).unwrap_or(0.0);
        }
    }
    Some(total)
}

// ---------------------------------------------------------------------------------------
// The measurements.

struct Bench<'a> {
    o: &'a Opts,
    engine: Engine,
    dockerd: Option<&'a Path>,
    /// Metric name → figures, for the JSON and the table.
    out: BTreeMap<String, Value>,
    problems: Vec<String>,
}

impl Bench<'_> {
    fn problem(&mut self, metric: &str, err: String) {
        log(&format!("{}: {metric}: {err}", self.engine.name()));
        self.problems.push(format!("{metric}: {err}"));
    }

    fn version(&mut self, h: &Host) {
        let v = Conn::connect(&h.socket(), Duration::from_secs(10))
            .map_err(|e| e.to_string())
            .and_then(|mut c| c.json("GET", "/version", None));
        if let Ok(v) = v {
            self.out.insert("version".into(), v["Version"].clone());
        }
    }

    fn idle_single(&mut self) {
        log(&format!(
            "{}: idle RSS outside a cluster",
            self.engine.name()
        ));
        let c = Cluster::new(1);
        self.version(c.host(0));
        std::thread::sleep(Duration::from_secs_f64(self.o.settle));
        match daemon_rss(c.host(0)) {
            Some(r) => {
                self.out.insert("idle_rss_single_mb".into(), summary(&[r]));
            }
            None => self.problem("idle RSS outside a cluster", "no daemon pid".into()),
        }
    }

    fn cluster(&mut self) {
        log(&format!("{}: forming 3 managers", self.engine.name()));
        let t = Instant::now();
        let c = Cluster::new(3);
        swarm::form(&c, 3, 0);
        self.out
            .insert("form_3_managers_s".into(), json!(t.elapsed().as_secs_f64()));
        std::thread::sleep(Duration::from_secs_f64(self.o.settle));
        let rss: Vec<f64> = c.hosts().iter().filter_map(daemon_rss).collect();
        self.out.insert("manager_idle_rss_mb".into(), summary(&rss));
        self.out
            .insert("manager_idle_rss_each_mb".into(), json!(rss));
        check_stop();

        if let Err(e) = self.writes(&c) {
            self.problem("single-client writes", e);
        }
        check_stop();
        if let Err(e) = self.secrets(&c) {
            self.problem("32-client secret creates", e);
        }
        let rss: Vec<f64> = c.hosts().iter().filter_map(daemon_rss).collect();
        self.out
            .insert("manager_rss_after_writes_mb".into(), summary(&rss));
        check_stop();
        if let Err(e) = self.failovers(&c) {
            self.problem("leader failover", e);
        }
    }

    fn leader<'c>(&self, c: &'c Cluster) -> Result<&'c Host, String> {
        let mut name = None;
        let running: Vec<&Host> = c.hosts().iter().filter(|h| h.is_running()).collect();
        eventually(Duration::from_secs(30), || {
            name = running.iter().find_map(|h| swarm::leader(h));
            name.is_some()
        });
        let name = name.ok_or("no leader")?;
        c.by_hostname(&name)
            .ok_or_else(|| format!("leader {name} is not one of ours"))
    }

    /// Sequential `GET /nodes/{id}` + `POST /nodes/{id}/update` pairs on the leader.
    fn writes(&mut self, c: &Cluster) -> Result<(), String> {
        let leader = self.leader(c)?;
        let id = swarm::node_id(leader);
        log(&format!(
            "{}: single-client writes on the leader {} ({} × {} s)",
            self.engine.name(),
            leader.hostname(),
            self.o.rounds,
            self.o.seconds
        ));
        let mut conn =
            Conn::connect(&leader.socket(), Duration::from_secs(30)).map_err(|e| e.to_string())?;
        let mut write = |n: u64| -> Result<(Duration, Duration), String> {
            let t0 = Instant::now();
            let node = conn.json("GET", &format!("/nodes/{id}"), None)?;
            let version = node["Version"]["Index"]
                .as_u64()
                .ok_or("node without Version.Index")?;
            let mut spec = node["Spec"].clone();
            spec["Labels"]["bench"] = json!(n.to_string());
            let t1 = Instant::now();
            conn.json(
                "POST",
                &format!("/nodes/{id}/update?version={version}"),
                Some(&spec),
            )?;
            Ok((t1 - t0, t1.elapsed()))
        };
        for n in 0..20 {
            write(n)?;
        }
        let (mut post, mut get, mut rates) = (Vec::new(), Vec::new(), Vec::new());
        let mut n = 20;
        for _ in 0..self.o.rounds {
            check_stop();
            let (t, mut pairs) = (Instant::now(), 0u64);
            let mut round_post = Vec::new();
            while t.elapsed().as_secs_f64() < self.o.seconds {
                let (g, p) = write(n)?;
                get.push(ms(g));
                round_post.push(ms(p));
                n += 1;
                pairs += 1;
            }
            rates.push(pairs as f64 / t.elapsed().as_secs_f64());
            let s = sorted(&round_post);
            log(&format!(
                "  {} pairs/s, POST p50 {:.2} ms p99 {:.2} ms",
                rates.last().map_or(0, |r| *r as u64),
                percentile(&s, 0.5),
                percentile(&s, 0.99)
            ));
            post.extend(round_post);
        }
        let (sp, sg) = (sorted(&post), sorted(&get));
        self.out.insert(
            "write".into(),
            json!({
                "pairs_per_s": summary(&rates),
                "post_p50_ms": percentile(&sp, 0.5),
                "post_p99_ms": percentile(&sp, 0.99),
                "get_p50_ms": percentile(&sg, 0.5),
                "writes": post.len(),
                "rounds": self.o.rounds,
                "seconds_per_round": self.o.seconds,
                "via": "leader",
            }),
        );
        Ok(())
    }

    /// `clients` threads creating secrets with unique names for a fixed time, on the leader.
    fn secrets(&mut self, c: &Cluster) -> Result<(), String> {
        let leader = self.leader(c)?;
        let sock = leader.socket();
        if !self.secrets_measurable(&sock)? {
            return Ok(());
        }
        log(&format!(
            "{}: {} clients creating secrets on the leader {} ({} × {} s)",
            self.engine.name(),
            self.o.clients,
            leader.hostname(),
            self.o.rounds,
            self.o.seconds
        ));
        let (mut rates, mut lat, mut failed, mut first_err) = (Vec::new(), Vec::new(), 0, None);
        for round in 0..self.o.rounds {
            check_stop();
            let barrier = Arc::new(Barrier::new(self.o.clients + 1));
            let secs = self.o.seconds;
            let threads: Vec<_> = (0..self.o.clients)
                .map(|t| {
                    let (sock, barrier) = (sock.clone(), barrier.clone());
                    std::thread::spawn(move || secret_client(&sock, &barrier, round, t, secs))
                })
                .collect();
            barrier.wait();
            let (mut ok, mut wall) = (0usize, Duration::ZERO);
            for th in threads {
                let run = th.join().map_err(|_| "client thread panicked")?;
                ok += run.latencies.len();
                lat.extend(run.latencies);
                failed += run.failed;
                wall = wall.max(run.wall);
                if first_err.is_none() {
                    first_err = run.first_error;
                }
            }
            rates.push(ok as f64 / wall.as_secs_f64());
            log(&format!(
                "  {} creates/s ({failed} failed so far)",
                rates.last().map_or(0, |r| *r as u64)
            ));
        }
        let s = sorted(&lat);
        self.out.insert(
            "secrets".into(),
            json!({
                "creates_per_s": summary(&rates),
                "p50_ms": percentile(&s, 0.5),
                "p99_ms": percentile(&s, 0.99),
                "created": lat.len(),
                "failed": failed,
                "first_error": first_err,
                "clients": self.o.clients,
                "rounds": self.o.rounds,
                "seconds_per_round": self.o.seconds,
                "via": "leader",
            }),
        );
        Ok(())
    }

    /// Whether the engine behind `sock` creates secrets at all (one probe); if not, the
    /// reason is recorded as `secrets.not_measured`.
    fn secrets_measurable(&mut self, sock: &Path) -> Result<bool, String> {
        let mut probe = Conn::connect(sock, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        let (code, body) = probe
            .request(
                "POST",
                "/secrets/create",
                Some(br#"{"Name":"cluster-bench-probe","Data":"eA=="}"#),
            )
            .map_err(|e| e.to_string())?;
        if code == 201 {
            return Ok(true);
        }
        let why = format!(
            "POST /secrets/create answers {code} {}",
            String::from_utf8_lossy(&body).trim()
        );
        self.out
            .insert("secrets".into(), json!({"not_measured": why}));
        log(&format!(
            "{}: secrets not measured: {why}",
            self.engine.name()
        ));
        Ok(false)
    }

    /// kill -9 the leader; time until a label write through a surviving manager is
    /// acknowledged. The killed daemon is restarted and the cluster converges in between.
    fn failovers(&mut self, c: &Cluster) -> Result<(), String> {
        let (mut took, mut elected, mut detail) = (Vec::new(), Vec::new(), Vec::new());
        for rep in 0..self.o.failovers {
            check_stop();
            let old = self.leader(c)?;
            let survivor = c
                .hosts()
                .iter()
                .find(|h| h.hostname() != old.hostname())
                .ok_or("no survivor")?;
            let id = swarm::node_id(survivor);
            let other = c
                .hosts()
                .iter()
                .find(|h| h.hostname() != old.hostname() && h.hostname() != survivor.hostname())
                .ok_or("no third manager")?;
            log(&format!(
                "{}: failover {}/{}: kill -9 the leader {}, write through {}",
                self.engine.name(),
                rep + 1,
                self.o.failovers,
                old.hostname(),
                survivor.hostname()
            ));
            let t = Instant::now();
            old.kill9();
            let (mut attempts, mut last_err) = (0u32, String::new());
            let deadline = Duration::from_secs(60);
            let acked = loop {
                if t.elapsed() > deadline || STOP.load(Ordering::SeqCst) {
                    break None;
                }
                attempts += 1;
                let r = Conn::connect(&survivor.socket(), Duration::from_secs(3))
                    .map_err(|e| e.to_string())
                    .and_then(|mut conn| {
                        let node = conn.json("GET", &format!("/nodes/{id}"), None)?;
                        let version = node["Version"]["Index"]
                            .as_u64()
                            .ok_or("node without Version.Index")?;
                        let mut spec = node["Spec"].clone();
                        spec["Labels"]["failover"] = json!(rep.to_string());
                        conn.json(
                            "POST",
                            &format!("/nodes/{id}/update?version={version}"),
                            Some(&spec),
                        )
                    });
                match r {
                    Ok(_) => break Some(t.elapsed()),
                    Err(e) => {
                        last_err = e;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            };
            let Some(d) = acked else {
                return Err(format!(
                    "no write acknowledged within {deadline:?} after killing {} ({attempts} attempts; last: {last_err})",
                    old.hostname()
                ));
            };
            // When did the survivors agree on a new leader (CLI view, coarse)?
            let new_leader = [survivor, other]
                .iter()
                .find_map(|h| swarm::leader(h))
                .unwrap_or_default();
            let e = t.elapsed();
            log(&format!(
                "  write acknowledged after {:.2} s ({attempts} attempts); new leader {new_leader}",
                d.as_secs_f64()
            ));
            took.push(d.as_secs_f64());
            elected.push(e.as_secs_f64());
            detail.push(json!({"killed": old.hostname(), "via": survivor.hostname(),
                "new_leader": new_leader, "ack_s": d.as_secs_f64(), "attempts": attempts,
                "last_error_before_ack": last_err}));
            // Bring the killed one back and wait for three managers with one leader.
            select(self.engine, self.dockerd);
            old.start();
            let back = eventually(Duration::from_secs(90), || {
                swarm::converged(survivor, 3, 3) && swarm::converged(old, 3, 3)
            });
            if !back {
                return Err(format!(
                    "{} did not rejoin after restart: {:?}",
                    old.hostname(),
                    swarm::node_ls(survivor)
                ));
            }
            std::thread::sleep(Duration::from_secs_f64(self.o.settle.min(2.0)));
        }
        self.out.insert(
            "failover".into(),
            json!({"write_ack_s": summary(&took), "samples_s": took, "runs": detail}),
        );
        Ok(())
    }
}

/// What one secret-creating client did in a round.
struct ClientRun {
    /// Milliseconds of each create that succeeded.
    latencies: Vec<f64>,
    failed: u64,
    first_error: Option<String>,
    /// How long it ran.
    wall: Duration,
}

/// One client of the secrets benchmark: after the barrier, creates secrets named after the
/// round, the client and a counter for `secs` seconds, reconnecting after a failed request.
fn secret_client(sock: &Path, barrier: &Barrier, round: usize, t: usize, secs: f64) -> ClientRun {
    let mut lat = Vec::new();
    let (mut failed, mut err) = (0u64, None);
    let mut conn = Conn::connect(sock, Duration::from_secs(30)).ok();
    barrier.wait();
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        i += 1;
        let body = format!(r#"{{"Name":"cb-{round}-{t}-{i}","Data":"YmVuY2g="}}"#);
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(sock, Duration::from_secs(30)) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    err.get_or_insert(e.to_string());
                    failed += 1;
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let t0 = Instant::now();
        match c.request("POST", "/secrets/create", Some(body.as_bytes())) {
            Ok((201, _)) => lat.push(ms(t0.elapsed())),
            Ok((code, b)) => {
                failed += 1;
                err.get_or_insert(format!("{code} {}", String::from_utf8_lossy(&b).trim()));
            }
            Err(e) => {
                failed += 1;
                err.get_or_insert(e.to_string());
                conn = None;
            }
        }
    }
    ClientRun {
        latencies: lat,
        failed,
        first_error: err,
        wall: start.elapsed(),
    }
}

fn run_engine(o: &Opts, engine: Engine, dockerd: Option<&Path>) -> (Value, Vec<String>) {
    select(engine, dockerd);
    let mut b = Bench {
        o,
        engine,
        dockerd,
        out: BTreeMap::new(),
        problems: Vec::new(),
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if b.o.control {
            b.idle_single();
            check_stop();
            b.cluster();
            check_stop();
        }
        if b.o.services {
            b.services();
        }
        if b.o.overlay && b.engine == Engine::Berth {
            check_stop();
            b.overlay();
        } else if b.o.overlay {
            b.out.insert(
                "overlay".into(),
                json!({"not_measured": "Docker Swarm's VIPs need IPVS, which this kernel lacks"}),
            );
        }
    }));
    if let Err(p) = r {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        let first = msg.lines().next().unwrap_or("").to_owned();
        b.problems.push(format!("aborted: {first}"));
    }
    let mut out = Value::Object(b.out.into_iter().collect());
    out["problems"] = json!(b.problems);
    (out, b.problems)
}

// ---------------------------------------------------------------------------------------
// The report.

/// (label, JSON pointer, unit, whether higher is better, aim).
const ROWS: &[(&str, &str, &str, bool, &str)] = &[
    (
        "idle RSS, one daemon outside a cluster",
        "/idle_rss_single_mb",
        "MB",
        false,
        "berthd ≤ 20 MB",
    ),
    (
        "idle RSS per manager, 3 managers",
        "/manager_idle_rss_mb",
        "MB",
        false,
        "≤ 1/3 of Docker",
    ),
    (
        "RSS per manager after the writes",
        "/manager_rss_after_writes_mb",
        "MB",
        false,
        "",
    ),
    (
        "node update: GET+POST pairs/s, 1 client",
        "/write/pairs_per_s",
        "/s",
        true,
        "≥ 1,000/s (3,000)",
    ),
    (
        "node update: POST p50",
        "/write/post_p50_ms",
        "ms",
        false,
        "",
    ),
    (
        "node update: POST p99",
        "/write/post_p99_ms",
        "ms",
        false,
        "",
    ),
    (
        "secret create/s, 32 clients",
        "/secrets/creates_per_s",
        "/s",
        true,
        "≥ 10,000/s",
    ),
    ("secret create p50", "/secrets/p50_ms", "ms", false, ""),
    ("secret create p99", "/secrets/p99_ms", "ms", false, ""),
    (
        "leader kill -9 → write acked",
        "/failover/write_ack_s",
        "s",
        false,
        "≤ 2 s",
    ),
    (
        "services: N replicas create → all running",
        "/services/create_running_s",
        "s",
        false,
        "≤ 1/4 of Swarm",
    ),
    (
        "services: rm → all task containers gone",
        "/services/rm_gone_s",
        "s",
        false,
        "≤ 1/4 of Swarm",
    ),
    (
        "rolling update, 30 replicas, parallelism 5",
        "/rolling_update/completed_s",
        "s",
        false,
        "",
    ),
    (
        "worker kill -9 → its tasks running elsewhere",
        "/worker_kill/replaced_s",
        "s",
        false,
        "≤ 5 s",
    ),
    (
        "overlay: iperf3 over the underlay",
        "/overlay/underlay_gbit_s",
        "Gbit/s",
        true,
        "",
    ),
    (
        "overlay: iperf3 over VXLAN (ratio to underlay)",
        "/overlay/vxlan_ratio",
        "×",
        true,
        "≥ 0.8×",
    ),
    (
        "overlay: iperf3 over WireGuard (ratio)",
        "/overlay/wireguard_ratio",
        "×",
        true,
        "≥ 0.3×",
    ),
    (
        "overlay: task start → VIP answers elsewhere",
        "/overlay/vip_answers_ms",
        "ms",
        false,
        "≤ 100 ms",
    ),
    (
        "overlay: VIP connections/s (nftables)",
        "/overlay/vip_connections_per_s",
        "/s",
        true,
        "",
    ),
    (
        "form 3 managers (init + 2 joins, CLI)",
        "/form_3_managers_s",
        "s",
        false,
        "",
    ),
];

fn median_of(v: &Value) -> Option<f64> {
    v.get("median")
        .and_then(Value::as_f64)
        .or_else(|| v.as_f64())
}

fn fmt_num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn cell(v: &Value, unit: &str) -> String {
    if let Some(why) = v.get("not_measured") {
        let _ = why;
        return "not measured".into();
    }
    let Some(m) = median_of(v) else {
        return "—".into();
    };
    let mut s = format!("{} {unit}", fmt_num(m));
    if let (Some(lo), Some(hi), Some(n)) = (
        v.get("min").and_then(Value::as_f64),
        v.get("max").and_then(Value::as_f64),
        v.get("n").and_then(Value::as_u64),
    ) {
        if n > 1 {
            s += &format!(" ({}–{}, n={n})", fmt_num(lo), fmt_num(hi));
        }
    }
    s
}

fn table(results: &BTreeMap<&str, Value>) -> String {
    let get = |e: &str, p: &str| {
        results
            .get(e)
            .and_then(|r| {
                let parent = p.rsplit_once('/').map(|(a, _)| a).unwrap_or("");
                match r.pointer(parent).and_then(|v| v.get("not_measured")) {
                    Some(_) => r.pointer(parent).cloned(),
                    None => r.pointer(p).cloned(),
                }
            })
            .unwrap_or(Value::Null)
    };
    let mut rows = vec![[
        "metric".to_owned(),
        "Berth".to_owned(),
        "Docker".to_owned(),
        "Berth vs Docker".to_owned(),
        "aim".to_owned(),
    ]];
    for (label, ptr, unit, higher, aim) in ROWS {
        let (b, d) = (get("berth", ptr), get("docker", ptr));
        let ratio = match (median_of(&b), median_of(&d)) {
            (Some(b), Some(d)) if b > 0.0 && d > 0.0 => {
                let r = if *higher { b / d } else { d / b };
                let word = if r >= 1.0 { "better" } else { "worse" };
                format!("{:.2}× {word}", if r >= 1.0 { r } else { 1.0 / r })
            }
            _ => "—".into(),
        };
        rows.push([
            label.to_string(),
            cell(&b, unit),
            cell(&d, unit),
            ratio,
            aim.to_string(),
        ]);
    }
    let mut w = [0usize; 5];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    for (n, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c}{}", " ".repeat(w[i] - c.chars().count())))
            .collect();
        s += line.join(" │ ").trim_end();
        s.push('\n');
        if n == 0 {
            let sep: Vec<String> = w.iter().map(|n| "─".repeat(*n)).collect();
            s += &sep.join("─┼─");
            s.push('\n');
        }
    }
    s
}

fn machine() -> Value {
    let uname = std::process::Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({"kernel": uname, "cpus": cpus, "loadavg": load.trim()})
}

fn main() {
    let o = parse_opts();
    berth_chaos_tests::require_root();
    catch_signals();
    let dockerd = find_dockerd(&o);
    let started = Instant::now();
    log(&format!(
        "berthd from {}; engines {:?}; rounds {}, {} s each, {} clients, {} failovers{}",
        bin_dir().display(),
        o.engines,
        o.rounds,
        o.seconds,
        o.clients,
        o.failovers,
        if o.smoke { " (smoke)" } else { "" }
    ));
    let (results, skipped, mut status) = run_engines(&o, dockerd.as_deref());
    select(Engine::Berth, None);
    if STOP.load(Ordering::SeqCst) {
        log("interrupted");
        std::process::exit(130);
    }
    let doc = json!({
        "date_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "machine": machine(),
        "berthd": bin_dir().join("berthd"),
        "dockerd": dockerd,
        "smoke": o.smoke,
        "config": {"rounds": o.rounds, "seconds": o.seconds, "clients": o.clients,
                   "failovers": o.failovers, "settle_s": o.settle, "replicas": o.replicas},
        "results": results,
        "skipped": skipped,
        "duration_s": started.elapsed().as_secs_f64(),
    });
    if let Some(dir) = o.json.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    if let Err(e) = std::fs::write(&o.json, text) {
        log(&format!("cannot write {}: {e}", o.json.display()));
        status = 1;
    }
    print_report(&o, &results, &skipped, started);
    std::process::exit(status);
}

/// SIGINT, SIGTERM and SIGHUP stop the benchmark between steps (`check_stop`).
fn catch_signals() {
    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(
                s,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

/// Runs every engine asked for (Docker only with a dockerd); the results and skipped engines
/// by name, and the exit status (1 when Berth had problems).
fn run_engines(
    o: &Opts,
    dockerd: Option<&Path>,
) -> (
    BTreeMap<&'static str, Value>,
    BTreeMap<&'static str, &'static str>,
    i32,
) {
    let mut results = BTreeMap::new();
    let mut skipped = BTreeMap::new();
    let mut status = 0;
    for &e in &o.engines {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        if e == Engine::Docker && dockerd.is_none_or(|d| !d.exists()) {
            log("docker: skipped (no dockerd: --dockerd PATH or BERTH_CHAOS_DOCKERD)");
            skipped.insert(e.name(), "no dockerd found");
            continue;
        }
        let (r, problems) = run_engine(o, e, dockerd);
        if e == Engine::Berth && !problems.is_empty() {
            status = 1;
        }
        results.insert(e.name(), r);
    }
    (results, skipped, status)
}

/// The summary on stdout: the setup, the comparison table, what was not measured and why.
fn print_report(
    o: &Opts,
    results: &BTreeMap<&str, Value>,
    skipped: &BTreeMap<&str, &str>,
    started: Instant,
) {
    let ver = |e: &str| {
        results
            .get(e)
            .and_then(|r| r["version"].as_str())
            .unwrap_or("?")
            .to_owned()
    };
    println!(
        "Cluster benchmark: 3 managers (services: 1 manager + 2 workers), one network namespace each; Berth {}, Docker {}; {} round(s) × {} s, {} clients, {} failover(s), {} replicas{}; {}",
        ver("berth"),
        ver("docker"),
        o.rounds,
        o.seconds,
        o.clients,
        o.failovers,
        o.replicas,
        if o.smoke { " (smoke)" } else { "" },
        machine()["loadavg"].as_str().unwrap_or("")
    );
    println!();
    print!("{}", table(results));
    for (e, r) in results {
        if let Some(why) = r.pointer("/secrets/not_measured").and_then(Value::as_str) {
            println!("{e}: secret creates not measured: {why}");
        }
        for p in r["problems"].as_array().into_iter().flatten() {
            println!("{e}: problem: {}", p.as_str().unwrap_or(""));
        }
    }
    for (e, why) in skipped {
        println!("{e}: not measured ({why})");
    }
    println!(
        "\nJSON: {}  ({:.0} s)",
        o.json.display(),
        started.elapsed().as_secs_f64()
    );
}
