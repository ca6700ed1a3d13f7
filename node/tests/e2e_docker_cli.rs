//! The stock docker CLI against a real berthd: the container lifecycle end to end.

mod common;

use std::time::Duration;

use common::{alive, eventually, stderr, stdout, Daemon};

#[test]
fn version_info_and_ping() {
    let d = Daemon::start();
    let v = d.ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
    ]);
    assert_eq!(v, "1.45 1.24");
    let info = d.docker(&["info"]);
    assert!(info.status.success(), "{}", stderr(&info));
    assert!(
        !stderr(&info).contains("errors pretty printing"),
        "{}",
        stderr(&info)
    );
    assert!(stdout(&info).contains("Storage Driver: overlay2"));
    // A version above ours is refused with Docker's message.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--unix-socket",
            d.sock.to_str().expect("sock"),
            "http://x/v1.99/version",
        ])
        .output()
        .expect("curl");
    assert!(
        stdout(&out)
            .contains("client version 1.99 is too new. Maximum supported API version is 1.45"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn run_rm_exit_codes_and_streams() {
    let d = Daemon::start();
    d.busybox();
    assert_eq!(d.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi");
    let o = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    // --rm is done by the daemon: nothing is left.
    assert!(eventually(Duration::from_secs(5), || d
        .ok(&["ps", "-aq"])
        .is_empty()));
    // Command not found → 127, like docker.
    let o = d.docker(&["run", "--rm", "busybox", "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    // stdin piped through, half-close is EOF.
    let o = d.docker_stdin(
        &["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"],
        b"line1\nline2\n",
    );
    assert_eq!(stdout(&o), "line1\nline2\ndone\n");
    // TTY: raw bytes, CRLF from the pty.
    let o = d.docker(&["run", "--rm", "-t", "busybox", "sh", "-c", "tty"]);
    assert_eq!(stdout(&o), "/dev/pts/0\r\n");
    // A `--rm` container's overlay is volatile (no syncs); `restart` keeps the container (as
    // in Docker) and mounts its writable layer again; `stop` then removes it.
    let id = d.ok(&[
        "run",
        "-d",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo $$ >> /runs; exec sleep 1000",
    ]);
    assert!(eventually(Duration::from_secs(5), || d
        .docker(&["exec", &id, "cat", "/runs"])
        .status
        .success()));
    let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", d.mount_ns_pid()))
        .expect("mountinfo");
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(&id) && l.contains(" overlay ") && l.contains("volatile")),
        "the --rm container's overlay is not volatile"
    );
    d.ok(&["restart", "-t", "1", &id]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}} {{.RestartCount}}", &id]),
        "true 0"
    );
    assert!(eventually(Duration::from_secs(5), || d
        .ok(&["exec", &id, "cat", "/runs"])
        .lines()
        .count()
        == 2));
    let copy = d.root.join("runs-copy");
    d.ok(&["cp", &format!("{id}:/runs"), copy.to_str().expect("path")]);
    assert_eq!(
        std::fs::read_to_string(&copy)
            .expect("copy")
            .lines()
            .count(),
        2
    );
    d.ok(&["stop", "-t", "1", &id]);
    assert!(eventually(Duration::from_secs(5), || d
        .ok(&["ps", "-aq"])
        .is_empty()));
    // Nothing runs on in the containers' cgroups once they are gone, failed starts included.
    assert!(
        eventually(Duration::from_secs(5), || d.leftover_pids().is_empty()),
        "left behind: {:?}",
        d.leftover_pids()
    );
}

#[test]
fn detached_lifecycle_logs_exec_stop() {
    let d = Daemon::start();
    d.busybox();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "FOO=bar",
        "-l",
        "app=t",
        "busybox",
        "sh",
        "-c",
        "trap 'echo bye; exit 0' TERM; echo started; echo warn >&2; while true; do sleep 0.1; done",
    ]);
    assert_eq!(id.len(), 64);
    assert!(eventually(Duration::from_secs(5), || d
        .ok(&["logs", "web"])
        .contains("started")));
    let logs = d.docker(&["logs", "web"]);
    assert_eq!(stdout(&logs), "started\n");
    assert_eq!(stderr(&logs), "warn\n");
    assert!(d.ok(&["logs", "-t", "web"]).contains("Z started"));
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Up"), "{ps}");
    assert_eq!(d.ok(&["ps", "-q", "--filter", "label=app=t"]), &id[..12]);
    assert_eq!(d.ok(&["exec", "web", "sh", "-c", "echo $FOO"]), "bar");
    let o = d.docker(&["exec", "web", "sh", "-c", "exit 4"]);
    assert_eq!(o.status.code(), Some(4));
    let o = d.docker(&["exec", "web", "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127));
    assert_eq!(
        d.ok(&[
            "exec",
            "-u",
            "web",
            "-w",
            "/tmp",
            "web",
            "sh",
            "-c",
            "id -u; pwd"
        ]),
        "1000\n/tmp"
    );
    let o = d.docker_stdin(&["exec", "-i", "web", "cat"], b"piped\n");
    assert_eq!(stdout(&o), "piped\n");
    assert!(d.ok(&["top", "web"]).contains("sleep"));
    let stats = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "web",
    ]);
    assert!(stats.starts_with("web "), "{stats}");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.Config.Labels.app}} {{.State.Running}}",
            "web"
        ]),
        "t true"
    );
    d.ok(&["stop", "web"]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "web"
        ]),
        "exited 0"
    );
    assert!(d.ok(&["logs", "web"]).contains("bye"));
    // Stop of a stopped container is a no-op (304), and start brings it back.
    d.ok(&["stop", "web"]);
    d.ok(&["start", "web"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "web"]),
        "true"
    );
    let o = d.docker(&["rm", "web"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("container is running"),
        "{}",
        stderr(&o)
    );
    d.ok(&["rm", "-f", "web"]);
    assert!(d.ok(&["ps", "-aq"]).is_empty());
}

#[test]
fn create_start_attach_wait_kill_restart_pause() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "create",
        "--name",
        "c2",
        "busybox",
        "sh",
        "-c",
        "echo hello; exit 7",
    ]);
    let o = d.docker(&["start", "-a", "c2"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(stdout(&o), "hello\n");
    assert_eq!(d.ok(&["wait", "c2"]), "7");
    d.ok(&["run", "-d", "--name", "killme", "busybox", "sleep", "1000"]);
    d.ok(&["kill", "-s", "TERM", "killme"]);
    // sleep as PID 1 ignores TERM, as under Docker; KILL works.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "killme"]),
        "true"
    );
    d.ok(&["kill", "killme"]);
    assert_eq!(d.ok(&["wait", "killme"]), "137");
    let o = d.docker(&["kill", "killme"]);
    assert!(
        !o.status.success() && stderr(&o).contains("is not running"),
        "{}",
        stderr(&o)
    );
    d.ok(&["run", "-d", "--name", "pz", "busybox", "sleep", "1000"]);
    d.ok(&["pause", "pz"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "pz"]),
        "paused"
    );
    d.ok(&["unpause", "pz"]);
    let before = d.ok(&["inspect", "-f", "{{.State.StartedAt}}", "pz"]);
    d.ok(&["restart", "-t", "0", "pz"]);
    assert_ne!(
        d.ok(&["inspect", "-f", "{{.State.StartedAt}}", "pz"]),
        before
    );
    d.ok(&["rename", "pz", "p2"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.Name}}", "p2"]), "/p2");
    // Name in use → 409 from create.
    let o = d.docker(&["create", "--name", "p2", "busybox"]);
    assert!(
        !o.status.success() && stderr(&o).contains("is already in use"),
        "{}",
        stderr(&o)
    );
    let pruned = d.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 1);
}

#[test]
fn limits_are_applied_and_cannot_be_raised() {
    let d = Daemon::start();
    d.busybox();
    let mem = d.ok(&["run", "--rm", "-m", "64m", "--pids-limit", "50", "--cpus", "0.5", "busybox", "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"]);
    let lines: Vec<&str> = mem.lines().collect();
    assert_eq!(lines[0], "67108864");
    assert_eq!(lines[1], "50");
    if lines.len() > 2 {
        assert_eq!(lines[2], "50000");
    }
    // The container's cgroup files are read-only from inside.
    let o = d.docker(&["run", "--rm", "-m", "64m", "busybox", "sh", "-c",
        "echo 1073741824 > /sys/fs/cgroup/memory/memory.limit_in_bytes || echo 1073741824 > /sys/fs/cgroup/memory.max"]);
    assert!(
        !o.status.success(),
        "a container raised its own memory limit"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--pids-limit",
        "10",
        "busybox",
        "sh",
        "-c",
        "echo max > /sys/fs/cgroup/pids/pids.max",
    ]);
    assert!(!o.status.success(), "a container raised its own pids limit");
    // Default capabilities: no CAP_SYS_ADMIN, so mount fails; --privileged lifts it.
    let o = d.docker(&[
        "run", "--rm", "busybox", "mount", "-t", "tmpfs", "t", "/mnt",
    ]);
    assert!(!o.status.success());
    d.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /mnt && mount -t tmpfs t /mnt",
    ]);
    // Masked /proc paths and a read-only rootfs.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "wc -c < /proc/timer_list"
        ]),
        "0"
    );
    let o = d.docker(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert!(!o.status.success());
    d.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "busybox",
        "touch",
        "/scratch/x",
    ]);
    // ulimits and user.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--ulimit",
            "nofile=512:1024",
            "busybox",
            "sh",
            "-c",
            "ulimit -n"
        ]),
        "512"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "-u", "1000:1000", "busybox", "id", "-u"]),
        "1000"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "--hostname", "box1", "busybox", "hostname"]),
        "box1"
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "cat /sys/class/net/lo/operstate"
        ]),
        "unknown"
    );
    // Bad values are refused with a 400 naming them.
    let o = d.docker(&["run", "--rm", "--cap-add", "BOGUS", "busybox", "true"]);
    assert!(
        !o.status.success() && stderr(&o).contains("BOGUS"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["run", "--rm", "busybox:nope", "true"]);
    assert!(!o.status.success());
}

#[test]
fn cp_diff_export_update_events() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&["run", "-d", "--name", "files", "busybox", "sleep", "1000"]);
    let src = d.root.join("hello.txt");
    std::fs::write(&src, "hello from host\n").expect("write");
    d.ok(&["cp", src.to_str().expect("p"), "files:/tmp/"]);
    assert_eq!(
        d.ok(&["exec", "files", "cat", "/tmp/hello.txt"]),
        "hello from host"
    );
    let out = d.root.join("passwd.out");
    d.ok(&["cp", "files:/etc/passwd", out.to_str().expect("p")]);
    assert!(std::fs::read_to_string(&out)
        .expect("read")
        .starts_with("root:x:0:0"));
    let diff = d.ok(&["diff", "files"]);
    assert_eq!(
        diff, "C /tmp\nA /tmp/hello.txt",
        "runtime mount points must not show as changes"
    );
    let tar = d.root.join("export.tar");
    d.ok(&["export", "-o", tar.to_str().expect("p"), "files"]);
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .expect("tar");
    assert!(stdout(&list).contains("bin/busybox"));
    d.ok(&["update", "--memory", "32m", "--memory-swap", "64m", "files"]);
    assert_eq!(d.ok(&["exec", "files", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"]), "33554432");
    let since = chrono::Utc::now().timestamp() - 60;
    let until = chrono::Utc::now().timestamp() + 1;
    let ev = d.ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "container=files",
        "--format",
        "{{.Action}}",
    ]);
    for a in ["create", "start", "exec_create", "update"] {
        assert!(ev.lines().any(|l| l.starts_with(a)), "no {a} event in {ev}");
    }
}

#[test]
fn kill9_daemon_keeps_containers_and_kill9_shim_marks_exited() {
    let mut d = Daemon::start();
    d.busybox();
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
    d.ok(&["run", "-d", "--name", "victim", "busybox", "sleep", "1000"]);
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", "live"]);
    d.kill9();
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(&pid), "the container died with the daemon");
    d.spawn();
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "live"]),
        format!("true {pid}")
    );
    let n1 = d.ok(&["logs", "live"]).lines().count();
    assert!(
        eventually(Duration::from_secs(5), || d
            .ok(&["logs", "live"])
            .lines()
            .count()
            > n1 + 2),
        "logs stopped"
    );
    assert_eq!(d.ok(&["exec", "live", "echo", "ok"]), "ok");
    // The re-adopted container's exit is still seen.
    d.ok(&["stop", "-t", "1", "live"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "live"]),
        "exited"
    );
    // kill -9 of a shim: the container is reported exited.
    let victim_pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", "victim"]);
    let shim_pid = d.shim_pid("victim");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill shim");
    assert!(eventually(Duration::from_secs(5), || d.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}}",
        "victim"
    ]) == "exited"));
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "victim"]),
        "137"
    );
    assert!(
        eventually(Duration::from_secs(5), || !alive(&victim_pid)),
        "the orphaned container still runs"
    );
}

/// A process that exists and is not a zombie.
#[test]
fn external_runtime_runs_the_same_bundle() {
    if !std::path::Path::new("/usr/sbin/runc").exists() {
        panic!("runc is not installed (apt-get install runc)");
    }
    let d = Daemon::start_with(&["--add-runtime", "runc=/usr/sbin/runc"]);
    d.busybox();
    let o = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "echo via-runc; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "via-runc\n");
    d.ok(&[
        "run",
        "-d",
        "--runtime",
        "runc",
        "--name",
        "rc1",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        d.ok(&["exec", "rc1", "echo", "exec-via-runc"]),
        "exec-via-runc"
    );
    d.ok(&["rm", "-f", "rc1"]);
}
