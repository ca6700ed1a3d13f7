//! The switch: a network namespace holding one bridge, a veth port per host (created
//! directly in the switch and host namespaces, never moved), and the bridge-family nft table
//! that makes partitions. Also runs closures inside a host's network namespace.

use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

/// Random bytes from the kernel (no rand crate needed for a handful of bytes).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("read /dev/urandom");
    b
}

/// Runs `cmd`, panicking with its stderr when it fails.
pub(crate) fn run_ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ip(args: &[&str]) -> String {
    run_ok(Command::new("ip").args(args))
}

/// `nsenter --net=<netns> <program>`: a command in that network namespace only.
pub(crate) fn in_netns_cmd(netns: &str, program: &str) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/var/run/netns/{netns}")).arg(program);
    c
}

/// Runs `f` on a thread that has joined network namespace `netns` (setns affects only the
/// calling thread); sockets `f` makes belong to that namespace for their whole life.
pub fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{netns}");
    let t = std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a descriptor we hold open; it changes only this thread's namespace.
        let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    });
    t.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

pub(crate) struct Switch {
    pub run: String,
    pub netns: String,
    bridge: String,
    /// First three octets of the run's /24 (10.231.X).
    prefix: String,
}

impl Switch {
    /// A new switch namespace under a fresh run id (retried if the name is taken).
    pub fn create() -> (String, Switch) {
        for _ in 0..10 {
            let r = random_bytes::<4>();
            let run = format!("{:02x}{:02x}{:02x}", r[0], r[1], r[2]);
            let netns = format!("chaos-{run}-sw");
            let added = Command::new("ip")
                .args(["netns", "add", &netns])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !added {
                continue;
            }
            let sw = Switch {
                bridge: format!("cs{run}"),
                prefix: format!("10.231.{}", r[3]),
                run: run.clone(),
                netns,
            };
            ip(&["-n", &sw.netns, "link", "add", &sw.bridge, "type", "bridge"]);
            ip(&["-n", &sw.netns, "link", "set", &sw.bridge, "up"]);
            return (run, sw);
        }
        panic!("could not create a switch namespace");
    }

    /// Creates host `i`'s namespace and plugs it into the switch; returns its address and
    /// the name of its switch port.
    pub fn attach(&self, i: usize, host_netns: &str) -> (String, String) {
        let port = format!("cp{i}{}", self.run);
        let nic = format!("ch{i}{}", self.run);
        let addr = format!("{}.{}", self.prefix, 10 + i);
        ip(&["netns", "add", host_netns]);
        ip(&["-n", host_netns, "link", "set", "lo", "up"]);
        // Both ends created in place: the port in the switch, its peer in the host.
        ip(&[
            "-n",
            &self.netns,
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            &nic,
            "netns",
            host_netns,
        ]);
        ip(&[
            "-n",
            &self.netns,
            "link",
            "set",
            &port,
            "master",
            &self.bridge,
            "up",
        ]);
        ip(&[
            "-n",
            host_netns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &nic,
        ]);
        ip(&["-n", host_netns, "link", "set", &nic, "up"]);
        (addr, port)
    }

    fn table(&self) -> String {
        format!("chaos_{}", self.run)
    }

    /// Drops frames from any port in `a` to any in `b` and back.
    pub fn cut(&self, a: &Vec<String>, b: &Vec<String>) {
        let set = |v: &Vec<String>| {
            let quoted: Vec<String> = v.iter().map(|p| format!("\"{p}\"")).collect();
            format!("{{ {} }}", quoted.join(", "))
        };
        let t = self.table();
        let rules = format!(
            "add table bridge {t}\n\
             add chain bridge {t} cut {{ type filter hook forward priority -200; policy accept; }}\n\
             add rule bridge {t} cut iifname {a} oifname {b} drop\n\
             add rule bridge {t} cut iifname {b} oifname {a} drop\n",
            a = set(a),
            b = set(b),
        );
        self.nft(&rules);
    }

    pub fn uncut(&self) {
        self.nft(&format!("delete table bridge {}\n", self.table()));
    }

    fn nft(&self, rules: &str) {
        use std::io::Write;
        let mut c = in_netns_cmd(&self.netns, "nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nft (install the nftables package)");
        c.stdin
            .take()
            .expect("nft stdin")
            .write_all(rules.as_bytes())
            .expect("write nft rules");
        let o = c.wait_with_output().expect("nft");
        assert!(
            o.status.success(),
            "nft failed: {}\n{rules}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Deletes the switch namespace; its bridge, ports and nft table go with it (the veths'
    /// host ends go with the host namespaces).
    pub fn destroy(&self) {
        delete_netns(&self.netns);
    }
}

pub(crate) fn delete_netns(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "delete", name])
        .stderr(Stdio::null())
        .status();
}
