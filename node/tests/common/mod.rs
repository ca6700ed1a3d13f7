//! End-to-end harness: a real `berthd` in a network namespace of its own, with temporary
//! roots and a unique cgroup parent, driven by the stock docker CLI and by `berth`.
//! Everything it makes (daemon, shims, containers, mounts, netns, cgroups, files) is removed
//! on drop, even when the test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod outside;
pub mod registry;
pub mod token;

pub const DOCKER: &str = "/usr/local/bin/docker";

pub fn bin_dir() -> PathBuf {
    // target/release/deps/<test> → target/release
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

pub fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "end-to-end tests need root (namespaces, mounts, cgroups)"
    );
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{:x}{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

pub struct Daemon {
    pub name: String,
    pub root: PathBuf,
    pub sock: PathBuf,
    pub netns: String,
    pub cgroup_parent: String,
    child: Option<Child>,
    extra_args: Vec<String>,
    owns_netns: bool,
    /// Set when the daemon runs on a pure cgroup v2 hierarchy (see `DaemonOptions::cgroup_v2`).
    unified: Option<UnifiedNs>,
}

/// How to start a daemon: `Daemon::options().cgroup_v2().args(&[...]).start()`.
#[derive(Default)]
pub struct DaemonOptions {
    extra: Vec<String>,
    cgroup_v2: bool,
}

impl DaemonOptions {
    /// Extra berthd flags.
    pub fn args(mut self, extra: &[&str]) -> Self {
        self.extra.extend(extra.iter().map(|s| s.to_string()));
        self
    }

    /// Runs berthd in a private mount and cgroup namespace in which /sys/fs/cgroup is the
    /// cgroup2 hierarchy alone, as on a pure cgroup v2 host. The namespace's root is a
    /// cgroup of the test's own in the host's unified hierarchy, so nothing the daemon does
    /// reaches the host's cgroups (no controller is enabled anywhere), and it all goes away
    /// with the daemon.
    pub fn cgroup_v2(mut self) -> Self {
        self.cgroup_v2 = true;
        self
    }

    pub fn start(self) -> Daemon {
        require_root();
        let name = unique("bt");
        let root = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&root).expect("root dir");
        let netns = name.clone();
        run_ok(Command::new("ip").args(["netns", "add", &netns]));
        run_ok(Command::new("ip").args(["-n", &netns, "link", "set", "lo", "up"]));
        let mut d = Daemon {
            sock: root.join("b.sock"),
            cgroup_parent: format!("berth-e2e-{name}"),
            unified: None,
            name,
            root,
            netns,
            child: None,
            extra_args: self.extra,
            owns_netns: true,
        };
        if self.cgroup_v2 {
            d.unified = Some(UnifiedNs::create(&d.name));
        }
        d.spawn();
        d
    }
}

/// A private mount and cgroup namespace, held open by a keeper process (so a restarted
/// daemon finds the mounts its predecessor made), whose /sys/fs/cgroup is a fresh cgroup2
/// mount rooted at `host_dir`.
struct UnifiedNs {
    keeper: Child,
    /// The namespace's root cgroup as the host sees it.
    host_dir: PathBuf,
}

/// Where the host's cgroup2 hierarchy is mounted: /sys/fs/cgroup on a v2 host,
/// /sys/fs/cgroup/unified on a hybrid one.
pub fn host_unified_root() -> PathBuf {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        PathBuf::from("/sys/fs/cgroup/unified")
    }
}

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is open as `fd`.
/// Async-signal-safe: for `pre_exec`.
fn join_cgroup(fd: libc::c_int) -> std::io::Result<()> {
    // SAFETY: writes one byte from a static buffer to an open descriptor.
    let n = unsafe { libc::write(fd, c"0".as_ptr().cast(), 1) };
    check(n as libc::c_int)
}

impl UnifiedNs {
    fn create(name: &str) -> UnifiedNs {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let host_dir = host_unified_root().join(format!("berth-e2e-{name}-v2"));
        std::fs::create_dir(&host_dir).expect("namespace root cgroup");
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(host_dir.join("cgroup.procs"))
            .expect("open cgroup.procs");
        let fd = procs.as_raw_fd();
        let mut cmd = Command::new("sleep");
        cmd.arg("infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the closure only makes system calls on static strings and open descriptors.
        unsafe {
            cmd.pre_exec(move || {
                // Into the namespace's root cgroup first: a new cgroup namespace is rooted at
                // the cgroup its creator is in.
                join_cgroup(fd)?;
                check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWCGROUP))?;
                check(libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                // The hybrid tmpfs with its v1 hierarchies (and the unified one) goes away
                // in this namespace only; a cgroup2 mount takes its place.
                check(libc::umount2(c"/sys/fs/cgroup".as_ptr(), libc::MNT_DETACH))?;
                check(libc::mount(
                    c"cgroup2".as_ptr(),
                    c"/sys/fs/cgroup".as_ptr(),
                    c"cgroup2".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RELATIME,
                    std::ptr::null(),
                ))
            });
        }
        let keeper = cmd.spawn().expect("spawn namespace keeper");
        drop(procs);
        let ns = UnifiedNs { keeper, host_dir };
        let ready = eventually(Duration::from_secs(5), || {
            std::fs::read_to_string(format!("/proc/{}/mountinfo", ns.keeper.id())).is_ok_and(|m| {
                m.lines()
                    .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "))
            })
        });
        assert!(ready, "the cgroup v2 namespace was not set up");
        ns
    }

    fn pid(&self) -> u32 {
        self.keeper.id()
    }

    /// Kills every process in the namespace's cgroups, ends the keeper (and with it the
    /// namespace and its mounts) and removes the cgroups, deepest first.
    fn destroy(&mut self) {
        let _ = std::fs::write(self.host_dir.join("cgroup.kill"), "1");
        let _ = self.keeper.kill();
        let _ = self.keeper.wait();
        eventually(Duration::from_secs(5), || {
            std::fs::read_to_string(self.host_dir.join("cgroup.events"))
                .map_or(true, |e| e.contains("populated 0"))
        });
        remove_cgroup_tree(&self.host_dir);
    }
}

/// Removes a cgroup directory and every cgroup below it, deepest first.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => return,
        }
    }
}

impl Daemon {
    pub fn start() -> Daemon {
        Self::options().start()
    }

    pub fn start_with(extra: &[&str]) -> Daemon {
        Self::options().args(extra).start()
    }

    pub fn options() -> DaemonOptions {
        DaemonOptions::default()
    }

    /// A second daemon in `other`'s network namespace (so it reaches the same loopback
    /// registries), with roots of its own.
    pub fn start_beside(other: &Daemon, extra: &[&str]) -> Daemon {
        require_root();
        let name = unique("bt");
        let root = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&root).expect("root dir");
        let mut d = Daemon {
            sock: root.join("b.sock"),
            cgroup_parent: format!("berth-e2e-{name}"),
            name,
            root,
            netns: other.netns.clone(),
            child: None,
            // Its own default bridge (and so its own nftables table) beside the first one's.
            extra_args: [
                "--bridge".to_owned(),
                format!("bb{:08x}", rand::random::<u32>()),
                "--bip".to_owned(),
                format!(
                    "10.{}.{}.1/24",
                    100 + rand::random::<u8>() % 100,
                    rand::random::<u8>()
                ),
            ]
            .into_iter()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect(),
            owns_netns: false,
            unified: None,
        };
        d.spawn();
        d
    }

    /// Runs a command inside this daemon's network namespace.
    pub fn in_netns(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/var/run/netns/{}", self.netns))
            .arg(program);
        c
    }

    /// Starts berthd (again) on the same roots.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("berthd.log"))
            .expect("log");
        // Open until the daemon has been spawned: its pre_exec enters them.
        let mut ns_files = Vec::new();
        let mut cmd = match &self.unified {
            None => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/var/run/netns/{}", self.netns))
                    .arg(bin_dir().join("berthd"));
                c
            }
            Some(u) => {
                use std::os::fd::AsRawFd;
                use std::os::unix::process::CommandExt;
                let open =
                    |p: String| std::fs::File::open(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
                let procs = std::fs::OpenOptions::new()
                    .write(true)
                    .open(u.host_dir.join("cgroup.procs"))
                    .expect("open cgroup.procs");
                let net = open(format!("/var/run/netns/{}", self.netns));
                let cg = open(format!("/proc/{}/ns/cgroup", u.pid()));
                let mnt = open(format!("/proc/{}/ns/mnt", u.pid()));
                let fds = [
                    procs.as_raw_fd(),
                    net.as_raw_fd(),
                    cg.as_raw_fd(),
                    mnt.as_raw_fd(),
                ];
                ns_files.extend([procs, net, cg, mnt]);
                let mut c = Command::new(bin_dir().join("berthd"));
                // SAFETY: the closure only makes system calls on open descriptors.
                unsafe {
                    c.pre_exec(move || {
                        join_cgroup(fds[0])?;
                        check(libc::setns(fds[1], libc::CLONE_NEWNET))?;
                        check(libc::setns(fds[2], libc::CLONE_NEWCGROUP))?;
                        check(libc::setns(fds[3], libc::CLONE_NEWNS))
                    });
                }
                c
            }
        };
        cmd.arg("--data-root")
            .arg(self.root.join("data"))
            .arg("--exec-root")
            .arg(self.root.join("run"))
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--pidfile")
            .arg(self.root.join("berthd.pid"))
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let _ = std::fs::remove_file(&self.sock);
        self.child = Some(cmd.spawn().expect("spawn berthd"));
        drop(ns_files);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.sock).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("berthd did not start: {}", self.log());
    }

    /// Processes still in this daemon's container cgroups.
    pub fn leftover_pids(&self) -> Vec<i32> {
        match &self.unified {
            Some(u) => {
                pids_in_cgroups_under(std::slice::from_ref(&u.host_dir), &self.cgroup_parent)
            }
            None => pids_in_cgroups(&self.cgroup_parent),
        }
    }

    /// The directory of a container's cgroup as the test (the host) sees it: in the daemon's
    /// cgroup v2 hierarchy, or in the v1 `pids` hierarchy.
    pub fn container_cgroup(&self, id: &str) -> PathBuf {
        match &self.unified {
            Some(u) => u.host_dir.join(&self.cgroup_parent).join(id),
            None => Path::new("/sys/fs/cgroup/pids")
                .join(&self.cgroup_parent)
                .join(id),
        }
    }

    /// The pid of the shim that supervises container `name`.
    pub fn shim_pid(&self, name: &str) -> i32 {
        let id = self.ok(&["inspect", "-f", "{{.Id}}", name]);
        for e in std::fs::read_dir("/proc").expect("proc").flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("berth-shim") && cmd.contains(&id) && cmd.contains("init") {
                return pid;
            }
        }
        panic!("no shim for {name}");
    }

    /// The pid of a process in the daemon's mount namespace (its own, or the keeper of its
    /// cgroup v2 namespace), for `nsenter -t`.
    pub fn mount_ns_pid(&self) -> u32 {
        match (&self.unified, &self.child) {
            (Some(u), _) => u.pid(),
            (None, Some(c)) => c.id(),
            (None, None) => std::process::id(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("berthd.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The daemon's flags beyond the harness's own, from its next `spawn` on.
    pub fn set_args(&mut self, extra: &[&str]) {
        self.extra_args = extra.iter().map(|s| s.to_string()).collect();
    }

    /// SIGKILL the daemon (containers keep running under their shims).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.join("dockercfg"))
            .args(args)
            .output()
            .expect("run docker")
    }

    pub fn docker_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut c = Command::new(DOCKER)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.join("dockercfg"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write stdin");
        c.wait_with_output().expect("docker output")
    }

    /// `docker args…` run in `dir` with extra environment (e.g. `DOCKER_BUILDKIT=0`).
    pub fn docker_in(&self, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
        Command::new(DOCKER)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.join("dockercfg"))
            .envs(env.iter().copied())
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run docker")
    }

    /// `berth args…` run in `dir`.
    pub fn berth_in(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new(bin_dir().join("berth"))
            .env("BERTH_HOST", self.host())
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run berth")
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(bin_dir().join("berth"))
            .env("BERTH_HOST", self.host())
            .env("BERTH_CONFIG", self.root.join("berthcfg"))
            .args(args)
            .output()
            .expect("run berth")
    }

    /// `berth args…` with `stdin` written to it (e.g. `login --password-stdin`).
    pub fn berth_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut c = Command::new(bin_dir().join("berth"))
            .env("BERTH_HOST", self.host())
            .env("BERTH_CONFIG", self.root.join("berthcfg"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run berth");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write stdin");
        c.wait_with_output().expect("berth output")
    }

    /// `docker args…`, asserting success; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    pub fn berth_ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    pub fn log_tail(&self) -> String {
        let l = self.log();
        let lines: Vec<&str> = l.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Imports a busybox image (from the host's busybox-static) as `busybox:latest`.
    pub fn busybox(&self) {
        let tar = busybox_tar(&self.root);
        self.ok(&[
            "import",
            "-c",
            "CMD [\"/bin/sh\"]",
            tar.to_str().expect("path"),
            "busybox:latest",
        ]);
    }

    /// Mount points under this daemon's roots, as its mount namespace sees them.
    pub fn mounts_under_root(&self) -> Vec<String> {
        match &self.unified {
            Some(u) => mounts_under_in(&format!("/proc/{}/mountinfo", u.pid()), &self.root),
            None => mounts_under(&self.root),
        }
    }

    fn cleanup(&mut self) {
        if self.child.is_some() {
            let _ = Command::new(DOCKER)
                .env("DOCKER_HOST", self.host())
                .args(["ps", "-aq"])
                .output()
                .map(|o| {
                    let ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect();
                    if !ids.is_empty() {
                        let _ = Command::new(DOCKER)
                            .env("DOCKER_HOST", self.host())
                            .arg("rm")
                            .arg("-f")
                            .args(&ids)
                            .output();
                    }
                });
        }
        self.kill9();
        // Anything left in our cgroups (containers of a killed daemon) and our shims.
        for pid in pids_in_cgroups(&self.cgroup_parent)
            .into_iter()
            .chain(pids_with_arg(&self.root))
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(100));
        if let Some(u) = &mut self.unified {
            // Everything the daemon started is in the namespace's cgroups; its mounts go
            // with the namespace.
            u.destroy();
        }
        unmount_under(&self.root);
        remove_cgroups(&self.cgroup_parent);
        if self.owns_netns {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.netns])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn run_ok(cmd: &mut Command) {
    let o = cmd.output().expect("run");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A busybox rootfs tar, made under `dir`, from the host's busybox-static.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    {
        let rootfs = dir.join("rootfs");
        for d in ["bin", "etc", "tmp", "root", "home/web"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("busybox-static must be installed (/bin/busybox)");
        let list = Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000::/home/web:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n").expect("passwd");
        std::fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nweb:x:1000:\nnogroup:x:65534:\n",
        )
        .expect("group");
        let tar = dir.join("busybox.tar");
        run_ok(
            Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        let _ = std::fs::remove_dir_all(&rootfs);
        tar
    }
}

fn pids_in_cgroups(parent: &str) -> Vec<i32> {
    let roots = [
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup",
    ];
    pids_in_cgroups_under(&roots.map(PathBuf::from), parent)
}

fn pids_in_cgroups_under(roots: &[PathBuf], parent: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for r in roots {
        let base = r.join(parent);
        let Ok(rd) = std::fs::read_dir(&base) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(e.path().join("cgroup.procs")) {
                out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
    }
    out
}

fn pids_with_arg(root: &Path) -> Vec<i32> {
    let needle = root.display().to_string();
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                if String::from_utf8_lossy(&cmd).contains(&needle) {
                    out.push(pid);
                }
            }
        }
    }
    out
}

/// Mount points at or below `root`.
pub fn mounts_under(root: &Path) -> Vec<String> {
    mounts_under_in("/proc/self/mountinfo", root)
}

/// Mount points at or below `root` in the mount table `mountinfo`.
fn mounts_under_in(mountinfo: &str, root: &Path) -> Vec<String> {
    let prefix = root.display().to_string();
    let info = std::fs::read_to_string(mountinfo).unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|t| t.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

fn unmount_under(root: &Path) {
    let mut targets = mounts_under(root);
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = nix::mount::umount2(t.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

fn remove_cgroups(parent: &str) {
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut bases: Vec<PathBuf> = rd.flatten().map(|e| e.path().join(parent)).collect();
    bases.push(Path::new("/sys/fs/cgroup").join(parent));
    for base in bases {
        if let Ok(children) = std::fs::read_dir(&base) {
            for c in children.flatten() {
                if c.path().is_dir() {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&base);
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Polls `f` until it returns true or the timeout passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// One raw HTTP/1.1 request to the daemon's API socket; returns (status, body).
pub fn http(d: &Daemon, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
