//! One host of a cluster: its network namespace, its roots, and its berthd, which it can
//! start, stop (SIGTERM), kill -9 and restart on the same roots; driven with the docker CLI.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::net::{self, Switch};
use crate::{bin_dir, cleanup, eventually, DOCKER};

/// How long `docker()` lets one CLI call run before killing it.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Host {
    hostname: String,
    netns: String,
    ip: String,
    port: String,
    root: PathBuf,
    cgroup_parent: String,
    bridge: String,
    bip: String,
    /// The running berthd, if any; behind a lock so that every method takes `&self`.
    daemon: Mutex<Option<Child>>,
    /// berthd's command line and socket when started by `launch_command` (an installed
    /// berthd, as its systemd unit starts it) instead of the harness's own.
    custom: Mutex<Option<(Vec<String>, PathBuf)>>,
    /// berthd runs with `--bridge none` (no default bridge network) from its next start.
    bridgeless: std::sync::atomic::AtomicBool,
}

impl Host {
    /// Host number `i` (1-based) of run `run`: namespace, switch port, directories.
    pub(crate) fn create(run: &str, i: usize, cluster_root: &Path, switch: &Switch) -> Host {
        let netns = format!("chaos-{run}-h{i}");
        let root = cluster_root.join(format!("h{i}"));
        let mut h = Host {
            hostname: format!("h{i}"),
            ip: String::new(),
            port: String::new(),
            cgroup_parent: format!("berth-chaos-{run}-h{i}"),
            bridge: format!("cb{i}{run}"),
            bip: format!("10.{}.{}.1/24", 231 + i, net::random_bytes::<1>()[0]),
            daemon: Mutex::new(None),
            custom: Mutex::new(None),
            bridgeless: Default::default(),
            netns,
            root,
        };
        std::fs::create_dir_all(&h.root).expect("host root dir");
        let (ip, port) = switch.attach(i, &h.netns);
        h.ip = ip;
        h.port = port;
        h
    }

    /// Its address on the switch, e.g. `10.231.7.11`.
    pub fn ip(&self) -> &str {
        &self.ip
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    pub fn socket(&self) -> PathBuf {
        match &*self.custom.lock().expect("custom lock") {
            Some((_, sock)) => sock.clone(),
            None => self.root.join("berth.sock"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    pub(crate) fn switch_port(&self) -> &str {
        &self.port
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.join("berthd.log")
    }

    /// The pid of this host's berthd, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon
            .lock()
            .expect("daemon lock")
            .as_ref()
            .map(Child::id)
    }

    /// Whether this host's berthd process is running (started and not yet exited).
    pub fn is_running(&self) -> bool {
        let mut d = self.daemon.lock().expect("daemon lock");
        match d.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Starts berthd on this host's roots and waits until it answers `/_ping`.
    pub fn start(&self) {
        self.launch();
        self.wait_ready();
    }

    /// Starts berthd on this host's roots without waiting for it (to start several at
    /// once, then `wait_ready` each).
    pub fn launch(&self) {
        let mut d = self.daemon.lock().expect("daemon lock");
        if let Some(c) = d.as_mut() {
            assert!(
                !matches!(c.try_wait(), Ok(None)),
                "{}: berthd is already running",
                self.hostname
            );
        }
        *d = Some(self.spawn());
    }

    /// From its next start, berthd on this host runs with `--bridge none`: no default
    /// bridge network, so containers are on the networks they name, or none.
    pub fn set_bridgeless(&self) {
        self.bridgeless
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// From now on berthd on this host is `argv` (e.g. an installed unit's `ExecStart`),
    /// serving its API on `socket`; starts it without waiting (`wait_ready` waits). Keep
    /// its roots under [`Host::root`] and its cgroup parent [`Host::cgroup_parent`], so
    /// that the host's cleanup finds what it leaves.
    pub fn launch_command(&self, argv: &[String], socket: &Path) {
        *self.custom.lock().expect("custom lock") = Some((argv.to_vec(), socket.to_owned()));
        self.launch();
    }

    /// `program` run in this host's network namespace and a UTS namespace named after
    /// the host, as its daemons run (sshd, a boot script).
    pub fn namespaced(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        self.enter_namespaces(&mut c);
        c
    }

    fn spawn(&self) -> Child {
        use std::io::Write;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("berthd log");
        let _ = writeln!(log, "==== chaos: berthd starting on {} ====", self.hostname);
        let _ = std::fs::remove_file(self.socket());
        if std::env::var_os("BERTH_CHAOS_DOCKERD").is_some() {
            // dockerd cannot restart its own containerd after a kill -9 (machine-facts.md):
            // clear what the dead one left. Reference runs have no containers to lose.
            cleanup::kill_leftovers(&self.root, &self.cgroup_parent);
            let _ = std::fs::remove_dir_all(self.root.join("run/containerd"));
        }
        if let Some((argv, _)) = &*self.custom.lock().expect("custom lock") {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log);
            self.enter_namespaces(&mut cmd);
            return cmd.spawn().expect("spawn berthd");
        }
        // A reference engine instead of berthd, to check a test against Docker itself.
        let reference = std::env::var_os("BERTH_CHAOS_DOCKERD");
        let mut cmd = match &reference {
            Some(dockerd) => Command::new(dockerd),
            None => Command::new(bin_dir().join("berthd")),
        };
        cmd.arg("--data-root")
            .arg(self.root.join("data"))
            .arg("--exec-root")
            .arg(self.root.join("run"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--pidfile")
            .arg(self.root.join("berthd.pid"))
            .args(["--cgroup-parent", &self.cgroup_parent]);
        let bridgeless = self.bridgeless.load(std::sync::atomic::Ordering::Relaxed);
        match bridgeless {
            true => cmd.args(["--bridge", "none"]),
            false => cmd.args(["--bip", &self.bip]),
        };
        match reference {
            // dockerd's --bridge names an existing bridge; its iptables rules stay out.
            Some(_) => cmd.args(["--iptables=false", "--ip6tables=false"]),
            None if !bridgeless => cmd.args(["--bridge", &self.bridge]),
            None => &mut cmd,
        };
        if let Some(level) = std::env::var_os("BERTH_CHAOS_LOG") {
            cmd.arg("--log-level").arg(level);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        self.enter_namespaces(&mut cmd);
        cmd.spawn().expect("spawn berthd")
    }

    /// Makes `cmd` join this host's network namespace and a new UTS namespace named after
    /// the host. Only those two: a new mount namespace would hide the cgroup mounts.
    fn enter_namespaces(&self, cmd: &mut Command) {
        let path = format!("/var/run/netns/{}", self.netns);
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let name = self.hostname.clone().into_bytes();
        // SAFETY: the closure only makes system calls on a descriptor it owns and on a
        // buffer allocated before the fork; nothing in it allocates or takes locks.
        unsafe {
            cmd.pre_exec(move || {
                let check = |r: libc::c_int| match r {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                };
                check(libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET))?;
                check(libc::unshare(libc::CLONE_NEWUTS))?;
                check(libc::sethostname(name.as_ptr().cast(), name.len()))
            });
        }
    }

    /// Waits (up to 60 s: an engine may hold its API until its cluster part is up) until
    /// berthd answers `GET /_ping`; panics with its log otherwise.
    pub fn wait_ready(&self) {
        let ok = eventually(Duration::from_secs(60), || {
            assert!(
                self.is_running(),
                "{}: berthd exited:\n{}",
                self.hostname,
                self.log_tail()
            );
            self.api_get("/_ping").is_some_and(|(code, _)| code == 200)
        });
        assert!(
            ok,
            "{}: berthd not ready:\n{}",
            self.hostname,
            self.log_tail()
        );
    }

    /// SIGTERM and wait for berthd to exit (SIGKILL after 20 s). No-op when not running.
    pub fn stop(&self) {
        self.terminate(Duration::from_secs(20));
    }

    pub(crate) fn terminate(&self, grace: Duration) {
        let Some(mut c) = self.daemon.lock().expect("daemon lock").take() else {
            return;
        };
        // SAFETY: kill on the pid of a child we have not reaped yet.
        unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    /// SIGKILL berthd, as a crash would (its shims and containers keep running).
    pub fn kill9(&self) {
        if let Some(mut c) = self.daemon.lock().expect("daemon lock").take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `stop` (if running) then `start` on the same roots.
    pub fn restart(&self) {
        self.stop();
        self.start();
    }

    /// `GET path` on berthd's socket: (status code, body), or None if it can't be reached.
    pub fn api_get(&self, path: &str) -> Option<(u16, String)> {
        self.api("GET", path, None)
    }

    /// `POST path` with a JSON body on berthd's socket: (status code, body), or None if it
    /// can't be reached.
    pub fn api_post(&self, path: &str, body: &str) -> Option<(u16, String)> {
        self.api("POST", path, Some(body))
    }

    fn api(&self, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(self.socket()).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n");
        if let Some(b) = body {
            req += &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            );
        } else {
            req += "\r\n";
        }
        s.write_all(req.as_bytes()).ok()?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).ok()?;
        let resp = String::from_utf8_lossy(&resp);
        let code = resp.split(' ').nth(1)?.parse().ok()?;
        let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Some((code, body.to_owned()))
    }

    /// The stock docker CLI against this host (`-H unix://…`), killed after 60 s.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_timeout(args, DOCKER_TIMEOUT)
    }

    /// `docker args…`, killed after `timeout` (then it fails, and its stderr says so).
    pub fn docker_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        self.docker_input(args, None, timeout)
    }

    /// `docker args…` with `input` on its stdin (e.g. the key `docker swarm unlock` reads).
    pub fn docker_with_input(&self, args: &[&str], input: &str) -> Output {
        self.docker_input(args, Some(input.as_bytes()), DOCKER_TIMEOUT)
    }

    fn docker_input(&self, args: &[&str], input: Option<&[u8]>, timeout: Duration) -> Output {
        let mut cmd = Command::new(DOCKER);
        cmd.arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .env("DOCKER_CONFIG", self.root.join("dockercfg"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT");
        let mut o = cleanup::output_within_input(&mut cmd, timeout, input);
        if o.status.code().is_none() {
            let note = format!("\nchaos: docker {args:?} killed after {timeout:?}\n");
            o.stderr.extend_from_slice(note.as_bytes());
        }
        o
    }

    /// `docker args…`, which must succeed; its trimmed stdout. On failure panics with the
    /// command, its stderr and berthd's log tail.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "{}: docker {args:?} failed: {}\n---- berthd log tail:\n{}",
            self.hostname,
            String::from_utf8_lossy(&o.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    /// Our own CLI, `berth` (from [`bin_dir`]), against this host (`-H unix://…`), with
    /// `input` on its stdin and `env` added to its environment, killed after `timeout`.
    pub fn berth_with(
        &self,
        args: &[&str],
        input: Option<&str>,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Output {
        let mut cmd = Command::new(bin_dir().join("berth"));
        cmd.arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .env_remove("BERTH_HOST")
            .envs(env.iter().copied());
        let mut o = cleanup::output_within_input(&mut cmd, timeout, input.map(str::as_bytes));
        if o.status.code().is_none() {
            let note = format!("\nchaos: berth {args:?} killed after {timeout:?}\n");
            o.stderr.extend_from_slice(note.as_bytes());
        }
        o
    }

    /// `berth args…` against this host, killed after 60 s.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_with(args, None, &[], DOCKER_TIMEOUT)
    }

    /// `berth args…`, which must succeed; its trimmed stdout. On failure panics with the
    /// command, its stderr and berthd's log tail.
    pub fn berth_ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "{}: berth {args:?} failed: {}{}\n---- berthd log tail:\n{}",
            self.hostname,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    /// The last 40 lines of this host's berthd log (all its runs, marked).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A command run in this host's network namespace (and nothing else of it).
    pub fn command(&self, program: &str) -> Command {
        net::in_netns_cmd(&self.netns, program)
    }

    /// A TCP listener on this host's address (port chosen by the kernel), for probes.
    pub fn listen_tcp(&self) -> TcpListener {
        let ip = self.ip.clone();
        net::in_netns(&self.netns, move || {
            TcpListener::bind((ip.as_str(), 0)).expect("bind probe listener")
        })
    }

    /// Whether a TCP connection from this host to `addr` is set up within 1 s.
    pub fn can_connect(&self, addr: SocketAddr) -> bool {
        net::in_netns(&self.netns, move || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        })
    }

    /// Ends everything of this host: berthd (SIGTERM, then SIGKILL), its containers and
    /// shims, mounts under its root, its cgroups and its network namespace.
    pub(crate) fn destroy(&self) {
        if self.is_running() {
            let ids = self.docker_timeout(&["ps", "-aq"], Duration::from_secs(10));
            let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let rm = [&["rm", "-f"][..], &ids[..]].concat();
                let _ = self.docker_timeout(&rm, Duration::from_secs(20));
            }
        }
        self.terminate(Duration::from_secs(5));
        cleanup::kill_leftovers(&self.root, &self.cgroup_parent);
        cleanup::unmount_under(&self.root);
        cleanup::remove_cgroups(&self.cgroup_parent);
        net::delete_netns(&self.netns);
    }
}
