//! Multi-host test harness: a `Cluster` of berthd "hosts" on one machine, each a network
//! namespace of its own wired to a private switch, for cluster tests that drive the stock
//! docker CLI exactly as a user would, and break the network or the daemons on purpose.
//!
//! ```text
//!            switch netns chaos-<run>-sw  (the only place partitions are made)
//!   ┌─────────────────── bridge cs<run> ───────────────────┐
//!   │ cp1<run>              cp2<run>              cp3<run> │   nft table bridge chaos_<run>
//!   └───┬───────────────────────┬───────────────────────┬──┘   drops frames between port sets
//!       │ veth                  │ veth                  │ veth
//!   ch1<run> 10.231.X.11    ch2<run> 10.231.X.12    ch3<run> 10.231.X.13
//!   netns chaos-<run>-h1    netns chaos-<run>-h2    netns chaos-<run>-h3
//!   berthd (UTS: "h1")      berthd (UTS: "h2")      berthd (UTS: "h3")
//!   <tmp>/chaos-<run>/h1/{data,run,berth.sock,berthd.log}   cgroup parent berth-chaos-<run>-h1
//! ```
//!
//! Invariants:
//! - Nothing changes in the root network namespace: the bridge lives in the switch namespace
//!   and each veth pair is created directly in its two target namespaces.
//! - Every name (netns, link, nft table, cgroup, directory) carries the run id, so two runs
//!   can't collide and `Footprint::leftovers` can find whatever a run left behind.
//! - Dropping a `Cluster` (also while a test panics) kills every berthd it started and every
//!   process in its cgroups or naming its directories, unmounts what is under its roots,
//!   removes its cgroups, namespaces and directories. On a panic it prints each berthd's log
//!   tail first.
//! - berthd runs in the host's network namespace and a new UTS namespace only (not a new
//!   mount namespace, which would hide the cgroup mounts), so each host has its own hostname.
//!
//! Environment: `BERTH_BIN_DIR` (where berthd is), `BERTH_CHAOS_LOG` (berthd's
//! `--log-level`), and for checking a test against Docker itself `BERTH_CHAOS_DOCKERD`
//! (a dockerd to run instead of berthd; its containerd must be on `PATH`).

mod cleanup;
mod host;
mod images;
mod net;
pub mod swarm;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use cleanup::Footprint;
pub use host::{Host, DOCKER_TIMEOUT};
pub use images::busybox_tar;
pub use net::in_netns;

/// The stock docker CLI the tests drive berthd with.
pub const DOCKER: &str = "/usr/local/bin/docker";

/// Where berthd, berth-shim and berth are: `$BERTH_BIN_DIR`, or `<workspace>/target/release`
/// (CI builds every binary there before running the tests).
pub fn bin_dir() -> PathBuf {
    match std::env::var_os("BERTH_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace dir")
            .join("target/release"),
    }
}

/// Fails loudly when not root: every test here needs namespaces, mounts and cgroups.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "chaos tests need root (namespaces, mounts, cgroups)"
    );
}

/// Polls `f` (every 100 ms) until it returns true or `timeout` passes; whether it did.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `f` (every 100 ms) for the whole `window`; whether it held every time.
pub fn consistently(window: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + window;
    while Instant::now() < deadline {
        if !f() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// A private switch and `n` hosts on it, each with its own berthd running.
pub struct Cluster {
    run: String,
    root: PathBuf,
    switch: net::Switch,
    hosts: Vec<Host>,
    /// The nft table that holds partitions, while one exists.
    partitioned: Mutex<bool>,
}

impl Cluster {
    /// Builds the switch and `n` hosts (1..=20) and starts every berthd; returns once each
    /// answers `GET /_ping`.
    pub fn new(n: usize) -> Cluster {
        let c = Cluster::bare(n);
        for h in &c.hosts {
            h.launch();
        }
        for h in &c.hosts {
            h.wait_ready();
        }
        c
    }

    /// The switch and `n` hosts (1..=20) with nothing started on them: for tests that
    /// start berthd their own way (`Host::launch_command`).
    pub fn bare(n: usize) -> Cluster {
        require_root();
        assert!((1..=20).contains(&n), "1 to 20 hosts");
        let berthd = bin_dir().join("berthd");
        assert!(
            berthd.exists(),
            "{} missing: build it or set BERTH_BIN_DIR",
            berthd.display()
        );
        let (run, switch) = net::Switch::create();
        let root = std::env::temp_dir().join(format!("chaos-{run}"));
        let mut c = Cluster {
            run,
            root,
            switch,
            hosts: Vec::new(),
            partitioned: Mutex::new(false),
        };
        std::fs::create_dir_all(&c.root).expect("cluster root dir");
        for i in 1..=n {
            let h = Host::create(&c.run, i, &c.root, &c.switch);
            c.hosts.push(h);
        }
        c
    }

    /// The run id every name of this cluster carries.
    pub fn run_id(&self) -> &str {
        &self.run
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Host `i`, counted from 0 (its hostname is `h{i+1}`).
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// The host whose hostname is `name` (`h1`…).
    pub fn by_hostname(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.hostname() == name)
    }

    /// Drops every frame between a host in `a` and a host in `b`, both ways, at the switch
    /// (a bridge-family nft rule on the switch ports: IPv4, ARP, everything). Traffic within
    /// each set, and of hosts in neither, is untouched. Partitions add up until `heal`.
    pub fn partition(&self, a: &[&Host], b: &[&Host]) {
        let ports = |s: &[&Host]| s.iter().map(|h| h.switch_port().to_owned()).collect();
        let mut p = self.partitioned.lock().expect("partition lock");
        self.switch.cut(&ports(a), &ports(b));
        *p = true;
    }

    /// Removes every partition.
    pub fn heal(&self) {
        let mut p = self.partitioned.lock().expect("partition lock");
        if *p {
            self.switch.uncut();
            *p = false;
        }
    }

    /// The switch's namespace: every frame between hosts crosses its ports (where a test
    /// captures the underlay: `tcpdump -i any` there; the bridge device itself only sees
    /// what is flooded or addressed to it).
    pub fn switch_netns(&self) -> &str {
        &self.switch.netns
    }

    /// What this run owns, to check after drop that nothing of it is left.
    pub fn footprint(&self) -> Footprint {
        Footprint::new(&self.run, &self.root)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for h in &self.hosts {
                eprintln!(
                    "---- berthd log of {} ({}):\n{}",
                    h.hostname(),
                    h.ip(),
                    h.log_tail()
                );
            }
        }
        for h in &self.hosts {
            h.destroy();
        }
        self.switch.destroy();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
