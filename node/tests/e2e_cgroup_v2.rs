//! Berth on a pure cgroup v2 hierarchy: berthd runs in a private mount and cgroup namespace
//! whose /sys/fs/cgroup is cgroup2 alone (`Daemon::options().cgroup_v2()`), driven by the
//! stock docker CLI and by `berth`. The hierarchy has no controllers enabled, like a v2 host
//! whose memory, cpu, cpuset and pids controllers are not delegated: what needs none
//! (freeze, kill, procs, cpu.stat) must work, limits are dropped with Docker's warnings.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{alive, eventually, stderr, stdout, Daemon};
use serde_json::Value;

fn v2() -> Daemon {
    let d = Daemon::options().cgroup_v2().start();
    d.busybox();
    d
}

fn id(d: &Daemon, name: &str) -> String {
    d.ok(&["inspect", "-f", "{{.Id}}", name])
}

/// The container's cgroup directory, as the host sees it.
fn cgroup(d: &Daemon, name: &str) -> PathBuf {
    d.container_cgroup(&id(d, name))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn procs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn info_reports_cgroup_v2_and_the_missing_controllers() {
    let d = v2();
    assert_eq!(
        d.ok(&["info", "--format", "{{.CgroupVersion}} {{.CgroupDriver}}"]),
        "2 cgroupfs"
    );
    let info: Value =
        serde_json::from_str(&d.ok(&["info", "--format", "{{json .}}"])).expect("info json");
    for k in [
        "MemoryLimit",
        "SwapLimit",
        "CpuCfsQuota",
        "CpuCfsPeriod",
        "CPUShares",
        "CPUSet",
        "PidsLimit",
        "OomKillDisable",
    ] {
        assert_eq!(info[k], false, "{k} with no controller: {info}");
    }
    let o = d.docker(&["info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Cgroup Version: 2"), "{}", stdout(&o));
    for w in [
        "WARNING: No memory limit support",
        "WARNING: No cpu cfs quota support",
        "WARNING: No cpuset support",
    ] {
        assert!(stderr(&o).contains(w), "{w}: {}", stderr(&o));
    }
    let b = d.berth_ok(&["info"]);
    assert!(b.contains("Cgroup Version: 2"), "{b}");
}

#[test]
fn lifecycle_exit_codes_and_cgroup_removal() {
    let d = v2();
    // run, logs, exec, the container in its own cgroup (and its own cgroup namespace).
    d.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo started; cat /proc/self/cgroup; exec sleep 1000",
    ]);
    let cg = cgroup(&d, "c1");
    assert!(cg.join("cgroup.procs").exists(), "{}", cg.display());
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", "c1"]);
    assert!(procs(&cg).contains(&pid), "{pid} not in {:?}", procs(&cg));
    // Docker's default on v2: a private cgroup namespace, the container's cgroup is its "/".
    assert!(
        eventually(Duration::from_secs(30), || d
            .ok(&["logs", "c1"])
            .lines()
            .any(|l| l == "0::/")),
        "{}",
        d.ok(&["logs", "c1"])
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.HostConfig.CgroupnsMode}}", "c1"]),
        "private"
    );
    assert_eq!(d.ok(&["exec", "c1", "echo", "in"]), "in");
    assert_eq!(
        d.ok(&["exec", "c1", "cat", "/proc/self/cgroup"])
            .lines()
            .last(),
        Some("0::/")
    );
    // stop: SIGTERM, forwarded by the init to sleep → 143.
    d.ok(&["stop", "-t", "5", "c1"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "c1"]), "143");
    assert!(
        !cg.exists(),
        "cgroup of a stopped container is left: {}",
        cg.display()
    );
    // start again, kill → 137.
    d.ok(&["start", "c1"]);
    assert!(procs(&cg).len() >= 2, "{:?}", procs(&cg));
    d.ok(&["kill", "c1"]);
    assert_eq!(d.ok(&["wait", "c1"]), "137", "{}", d.log_tail());
    // restart: a new init in a fresh cgroup.
    d.ok(&["start", "c1"]);
    let p1 = d.ok(&["inspect", "-f", "{{.State.Pid}}", "c1"]);
    d.ok(&["restart", "-t", "1", "c1"]);
    let p2 = d.ok(&["inspect", "-f", "{{.State.Pid}}", "c1"]);
    assert_ne!(p1, p2);
    assert!(procs(&cg).contains(&p2), "{p2} not in {:?}", procs(&cg));
    // rm -f: processes and the cgroup directory are gone.
    d.ok(&["rm", "-f", "c1"]);
    assert!(!alive(&p2));
    assert!(!cg.exists(), "{} left after rm", cg.display());
    // --rm, with berth too.
    assert_eq!(d.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi");
    assert_eq!(d.berth_ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi");
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert!(d.leftover_pids().is_empty(), "{:?}", d.leftover_pids());
    let parent = d.container_cgroup("x");
    let left: Vec<_> = std::fs::read_dir(parent.parent().expect("parent"))
        .expect("parent cgroup")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "container cgroups left: {left:?}");
}

#[test]
fn failed_start_leaves_no_cgroup() {
    let d = v2();
    let o = d.docker(&["run", "--name", "bad", "busybox", "/nonexistent"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "bad"]),
        "created"
    );
    assert!(!cgroup(&d, "bad").exists());
    assert!(d.leftover_pids().is_empty());
}

#[test]
fn pause_top_ps_and_stats() {
    let d = v2();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; done",
    ]);
    let cg = cgroup(&d, "busy");
    // top and ps list the container's processes from cgroup.procs.
    let top = d.ok(&["top", "busy"]);
    assert!(top.contains("while true"), "{top}");
    assert_eq!(top.lines().count(), 1 + procs(&cg).len(), "{top}");
    let btop = d.berth_ok(&["top", "busy"]);
    assert!(btop.contains("while true"), "{btop}");
    assert!(d
        .ok(&["ps", "--format", "{{.Names}} {{.Status}}"])
        .starts_with("busy Up"));
    // stats: CPU from cpu.stat (no cpu controller needed), PIDs from cgroup.procs.
    let s = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.CPUPerc}} {{.PIDs}}",
        "busy",
    ]);
    let (cpu, pids) = s.split_once(' ').expect("two columns");
    let cpu: f64 = cpu.trim_end_matches('%').parse().expect("cpu %");
    // Any share proves cpu.stat is read; how much depends on the machine's other load.
    assert!(cpu > 0.0, "a busy loop uses CPU: {s}");
    assert_ne!(pids, "0", "{s}");
    let bs = d.berth_ok(&["stats", "--no-stream", "busy"]);
    assert!(bs.contains("busy"), "{bs}");
    // pause: cgroup.freeze, the loop stops; unpause: it goes on.
    d.ok(&["pause", "busy"]);
    assert_eq!(read(&cg.join("cgroup.freeze")).trim(), "1");
    assert!(read(&cg.join("cgroup.events")).contains("frozen 1"));
    assert!(d.ok(&["ps", "--format", "{{.Status}}"]).contains("Paused"));
    let o = d.docker(&["exec", "busy", "true"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is paused"), "{}", stderr(&o));
    let n1 = d.ok(&["cp", "busy:/tmp/n", "-"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        d.ok(&["cp", "busy:/tmp/n", "-"]),
        n1,
        "the loop ran while paused"
    );
    let o = d.docker(&["pause", "busy"]);
    assert!(stderr(&o).contains("is already paused"), "{}", stderr(&o));
    d.berth_ok(&["unpause", "busy"]);
    assert_eq!(read(&cg.join("cgroup.freeze")).trim(), "0");
    assert!(eventually(Duration::from_secs(5), || d.ok(&[
        "cp",
        "busy:/tmp/n",
        "-"
    ]) != n1));
    // rm -f of a paused container works too.
    d.ok(&["pause", "busy"]);
    d.ok(&["rm", "-f", "busy"]);
    assert!(!cg.exists());
}

#[test]
fn shim_kill9_kills_the_whole_cgroup() {
    let d = v2();
    // Children that would outlive their parent if only the init were killed.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "fam",
        "busybox",
        "sh",
        "-c",
        "sleep 1001 & sleep 1002 & (sleep 1003 &) ; wait",
    ]);
    let cg = cgroup(&d, "fam");
    assert!(
        eventually(Duration::from_secs(5), || procs(&cg).len() >= 4),
        "{:?}",
        procs(&cg)
    );
    let members = procs(&cg);
    let shim = d.shim_pid("fam");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill shim");
    assert!(
        eventually(Duration::from_secs(10), || d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}}",
            "fam"
        ]) == "exited"),
        "{}",
        d.log_tail()
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "fam"]),
        "137"
    );
    assert!(
        eventually(Duration::from_secs(5), || members.iter().all(|p| !alive(p))),
        "processes survived their shim: {members:?}"
    );
    assert!(procs(&cg).is_empty(), "{:?}", procs(&cg));
    d.ok(&["rm", "fam"]);
    assert!(!cg.exists());
}

#[test]
fn container_cannot_write_its_cgroup() {
    let d = v2();
    let o = d.docker(&[
        "run", "--rm", "busybox", "sh", "-c",
        "mount | grep ' /sys/fs/cgroup '; echo 1 > /sys/fs/cgroup/cgroup.freeze && echo WROTE; \
         mkdir /sys/fs/cgroup/escape && echo MADE; echo $$ > /sys/fs/cgroup/cgroup.procs && echo MOVED; true",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("type cgroup2 (ro,"), "{out}");
    for bad in ["WROTE", "MADE", "MOVED"] {
        assert!(
            !out.contains(bad),
            "the container could write its cgroup: {out}"
        );
    }
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn daemon_kill9_and_restart_readopts_a_running_container() {
    let mut d = v2();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    ]);
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", "live"]);
    let cg = cgroup(&d, "live");
    d.kill9();
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(&pid), "the container died with the daemon");
    d.spawn();
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "live"]),
        format!("true {pid}")
    );
    assert_eq!(d.ok(&["exec", "live", "echo", "back"]), "back");
    d.ok(&["pause", "live"]);
    assert_eq!(read(&cg.join("cgroup.freeze")).trim(), "1");
    d.ok(&["unpause", "live"]);
    let top = d.ok(&["top", "live"]);
    assert!(top.contains("tick"), "{top}");
    d.ok(&["stop", "-t", "1", "live"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "live"]),
        "137"
    );
    assert!(!alive(&pid));
    assert!(!cg.exists());
}

/// Limits whose controller is missing are dropped with Docker's warnings (the container runs
/// unlimited); `--cpus` is refused, as Docker does, and leaves nothing behind.
#[test]
fn limits_without_controllers_warn_or_fail_like_docker() {
    let d = v2();
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "lim",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert!(o.status.success(), "{}\n{}", stderr(&o), d.log_tail());
    let err = stderr(&o);
    for w in [
        "WARNING: Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.",
        "WARNING: Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
        "WARNING: Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.",
        "WARNING: Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
    ] {
        assert!(err.contains(w), "missing {w:?} in {err}");
    }
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}} {{.HostConfig.Memory}} {{.HostConfig.CpuShares}} [{{.HostConfig.CpusetCpus}}] {{.HostConfig.MemorySwap}}", "lim"]),
        "true 0 0 [] -1"
    );
    let cg = cgroup(&d, "lim");
    assert!(!cg.join("memory.max").exists());
    // update: the same warnings (the docker CLI prints them on stdout), nothing applied, the
    // container keeps running.
    let o = d.docker(&["update", "-m", "128m", "--pids-limit", "20", "lim"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("memory limit capabilities"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("PIDs limit discarded"),
        "{}",
        stdout(&o)
    );
    let b = d.berth(&["update", "--pids-limit", "20", "lim"]);
    assert!(b.status.success(), "{}", stderr(&b));
    assert!(
        stderr(&b).contains("PIDs limit discarded"),
        "{}",
        stderr(&b)
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.HostConfig.Memory}}", "lim"]),
        "0"
    );
    let o = d.docker(&["update", "--cpus", "0.5", "lim"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("NanoCPUs can not be set"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.HostConfig.NanoCpus}}",
            "lim"
        ]),
        "true 0"
    );
    // --cpus at create: refused with Docker's message (400), no container, no cgroup.
    let o = d.docker(&["run", "--name", "cpus", "--cpus", "0.5", "busybox", "true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted"),
        "{}",
        stderr(&o)
    );
    assert_eq!(d.ok(&["ps", "-aq", "--filter", "name=cpus"]), "");
    let b = d.berth(&["run", "--name", "cpus", "--cpus", "0.5", "busybox", "true"]);
    assert!(!b.status.success());
    assert!(
        stderr(&b).contains("NanoCPUs can not be set"),
        "{}",
        stderr(&b)
    );
    // berth prints the warnings too.
    let b = d.berth(&["run", "--rm", "-m", "64m", "busybox", "true"]);
    assert!(b.status.success(), "{}", stderr(&b));
    assert!(
        stderr(&b).contains("memory limit capabilities"),
        "{}",
        stderr(&b)
    );
    d.ok(&["rm", "-f", "lim"]);
    assert!(!cg.exists());
}

/// The device allow-list holds on v2 too (an eBPF program there): a container may make any
/// node (as on v1) but opens only the allowed ones. /dev/mem (c 1:1) is not allowed: the
/// kernel refuses it (EPERM) before looking for its driver (absent here: ENXIO).
#[test]
fn devices_outside_the_allow_list_are_denied() {
    let d = v2();
    let script = "mknod /tmp/mem c 1 1 && echo NODE; head -c 1 /tmp/mem; \
                  echo ok > /dev/null && head -c 1 /dev/zero > /dev/null && echo STD";
    let o = d.docker(&["run", "--rm", "busybox", "sh", "-c", script]);
    assert!(
        stdout(&o).contains("NODE") && stdout(&o).contains("STD"),
        "{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("/tmp/mem: Operation not permitted"),
        "a device outside the allow-list was opened: {}",
        stderr(&o)
    );
    // exec'd processes are in the same cgroup, under the same filter.
    d.ok(&["run", "-d", "--name", "dv", "busybox", "sleep", "1000"]);
    let o = d.docker(&[
        "exec",
        "dv",
        "sh",
        "-c",
        "mknod /tmp/mem c 1 1; head -c 1 /tmp/mem",
    ]);
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    // --privileged lifts it, as in Docker.
    let o = d.docker(&["run", "--rm", "--privileged", "busybox", "sh", "-c", script]);
    assert!(stdout(&o).contains("STD"), "{}", stdout(&o));
    assert!(
        !stderr(&o).contains("/tmp/mem: Operation not permitted"),
        "{}",
        stderr(&o)
    );
}
