//! Deployment, run for real: the scripts are shellcheck-clean; the systemd unit passes
//! `systemd-analyze verify`; `deploy/install.sh` installs on this machine and `--uninstall`
//! reverts it; the EC2 user data forms a cluster of 3 managers and 2 workers on namespace
//! hosts with no manual step (workers booted before any manager keep retrying and join; a
//! node with the wrong secret is refused and never joins; restarts change nothing); the
//! on-prem bootstrap forms a cluster over SSH (sshd in each namespace host) from an
//! inventory. berthd is started with the command line of the unit install.sh wrote (this
//! machine's PID 1 is not systemd: the test plays its part).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use berth_chaos_tests::swarm::{self, local_state};
use berth_chaos_tests::{bin_dir, consistently, eventually, in_netns, Cluster, Host};

const SECRET: &str = "4d1f0c6a2b9e8f7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace dir")
        .to_owned()
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// One release tarball for every test of this binary (scripts/release-tarball).
fn tarball() -> &'static Path {
    static T: OnceLock<PathBuf> = OnceLock::new();
    T.get_or_init(|| {
        // In the build tree, rewritten by each run: nothing left in /tmp.
        std::fs::create_dir_all(repo().join("target")).expect("target dir");
        let out = repo().join("target/deploy-test-release.tgz");
        run(Command::new(repo().join("scripts/release-tarball")).arg(&out));
        out
    })
}

/// Serializes what changes this machine itself (install.sh without --root).
struct MachineLock(#[allow(dead_code)] std::fs::File);

fn machine_lock() -> MachineLock {
    std::fs::create_dir_all(repo().join("target")).expect("target dir");
    let f = std::fs::File::create(repo().join("target/deploy-install.lock")).expect("lock file");
    // SAFETY: flock on a descriptor we own; released when the file is closed.
    let r = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) };
    assert_eq!(r, 0, "flock");
    MachineLock(f)
}

#[test]
fn scripts_are_shellcheck_clean() {
    let r = repo();
    let mut scripts: Vec<PathBuf> = [
        "deploy/install.sh",
        "deploy/ec2/user-data.sh",
        "deploy/onprem/bootstrap.sh",
    ]
    .iter()
    .map(|s| r.join(s))
    .collect();
    for e in std::fs::read_dir(r.join("scripts"))
        .expect("scripts/")
        .flatten()
    {
        scripts.push(e.path());
    }
    let o = Command::new("shellcheck")
        .args(&scripts)
        .output()
        .expect("run shellcheck (scripts/deps installs it)");
    assert!(
        o.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// The `ExecStart` line of the unit under `root`, split as systemd splits it (no quotes in
/// ours).
fn exec_start(root: &Path) -> Vec<String> {
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/berthd.service"))
        .expect("installed unit");
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    line.split_whitespace().map(str::to_owned).collect()
}

/// Adds string settings to the daemon.json under `root`.
fn amend_config(root: &Path, settings: &[(&str, &str)]) {
    let p = root.join("etc/berth/daemon.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&p).expect("daemon.json")).expect("json");
    for (k, val) in settings {
        v[*k] = (*val).into();
    }
    std::fs::write(&p, serde_json::to_vec_pretty(&v).expect("json")).expect("write");
}

/// Starts the berthd installed under `root` on `h` as its unit would, with the host's cgroup
/// parent (so that the harness's cleanup finds what it leaves).
fn boot(h: &Host, root: &Path) {
    amend_config(root, &[("cgroup-parent", h.cgroup_parent())]);
    h.launch_command(&exec_start(root), &root.join("run/berth/berth.sock"));
}

#[test]
fn the_unit_passes_systemd_analyze_verify_and_its_command_line_serves() {
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/berthd.service")).expect("unit");
    for want in [
        "KillMode=process",
        "Delegate=yes",
        "LimitNOFILE=",
        "ExecStart=/usr/local/bin/berthd --config-file /etc/berth/daemon.json",
    ] {
        assert!(unit.contains(want), "the unit lacks {want}");
    }
    let c = Cluster::bare(1);
    let h = c.host(0);
    let root = h.root().join("sys");
    let o = run(Command::new(repo().join("deploy/install.sh"))
        .args(["--from"])
        .arg(tarball())
        .arg("--root")
        .arg(&root));
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(root.join("etc/systemd/system/berthd.service"))
        .output()
        .expect("systemd-analyze (scripts/deps installs systemd)");
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    boot(h, &root);
    h.wait_ready();
    assert_eq!(local_state(h).0, "inactive");
    // Idempotent: a second install keeps the config and changes nothing that runs.
    let cfg = std::fs::read(root.join("etc/berth/daemon.json")).expect("config");
    run(Command::new(repo().join("deploy/install.sh"))
        .arg("--root")
        .arg(&root)
        .arg("--from")
        .arg(tarball()));
    assert_eq!(
        std::fs::read(root.join("etc/berth/daemon.json")).expect("config"),
        cfg
    );
    h.stop();
    run(Command::new(repo().join("deploy/install.sh"))
        .args(["--uninstall", "--purge", "--root"])
        .arg(&root));
    for gone in [
        "usr/local/bin/berthd",
        "etc/berth",
        "var/lib/berth",
        "etc/systemd/system/berthd.service",
    ] {
        assert!(
            !root.join(gone).exists(),
            "{gone} left after --uninstall --purge"
        );
    }
}

#[test]
fn install_sh_installs_on_this_machine_and_uninstall_reverts_it() {
    let _lock = machine_lock();
    let installed = [
        "/usr/local/bin/berthd",
        "/usr/local/bin/berth",
        "/usr/local/bin/berth-shim",
        "/usr/local/bin/berth-runtime",
        "/usr/local/bin/berth-init",
        "/etc/berth/daemon.json",
        "/etc/systemd/system/berthd.service",
    ];
    let group = || {
        Command::new("getent")
            .args(["group", "berth"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if installed.iter().any(|p| Path::new(p).exists()) || group() {
        eprintln!("skipped: this machine already has a Berth install, which the test would remove");
        return;
    }
    let o = run(Command::new(repo().join("deploy/install.sh"))
        .args(["--from"])
        .arg(bin_dir()));
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
    for p in installed {
        assert!(Path::new(p).exists(), "{p} not installed");
    }
    assert!(group(), "group berth not created");
    let o = Command::new("systemd-analyze")
        .args(["verify", "/etc/systemd/system/berthd.service"])
        .output()
        .expect("systemd-analyze");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read("/etc/berth/daemon.json").expect("config"))
            .expect("json");
    assert_eq!(cfg["group"], "berth");
    // Again: idempotent.
    run(Command::new(repo().join("deploy/install.sh"))
        .args(["--no-packages", "--from"])
        .arg(bin_dir()));

    // The socket belongs to the group: a berthd started as the unit starts it, but on a
    // root of its own (this machine's /run/berth belongs to whatever else runs here).
    let c = Cluster::bare(1);
    let h = c.host(0);
    let root = h.root().join("sys");
    run(Command::new(repo().join("deploy/install.sh"))
        .args(["--from"])
        .arg(bin_dir())
        .arg("--root")
        .arg(&root));
    boot(h, &root);
    h.wait_ready();
    let meta = std::fs::metadata(h.socket()).expect("socket");
    use std::os::unix::fs::MetadataExt;
    let gid = String::from_utf8_lossy(&run(Command::new("getent").args(["group", "berth"])).stdout)
        .split(':')
        .nth(2)
        .and_then(|g| g.parse::<u32>().ok())
        .expect("berth gid");
    assert_eq!(
        (meta.gid(), meta.mode() & 0o777),
        (gid, 0o660),
        "socket owner and mode"
    );
    h.stop();

    let o = run(Command::new(repo().join("deploy/install.sh")).arg("--uninstall"));
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
    for p in installed {
        assert!(!Path::new(p).exists(), "{p} left after --uninstall");
    }
    assert!(!Path::new("/etc/berth").exists(), "/etc/berth left");
    assert!(!group(), "group berth left after --uninstall");
}

/// A fake EC2 instance metadata service (IMDSv2) on 127.0.0.1 in `h`'s namespace: a token
/// by PUT, then `local-ipv4` and the `berth-role` tag, only with the token.
fn fake_imds(h: &Host, role_tag: Option<&str>) -> String {
    let listener = in_netns(h.netns(), || {
        TcpListener::bind("127.0.0.1:0").expect("bind imds")
    });
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let ip = h.ip().to_owned();
    let role = role_tag.map(str::to_owned);
    std::thread::spawn(move || {
        let token = format!("token-{ip}");
        for conn in listener.incoming().flatten() {
            let mut r = BufReader::new(conn);
            let mut head = String::new();
            let mut headers = Vec::new();
            if r.read_line(&mut head).is_err() {
                continue;
            }
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                    break;
                }
                headers.push(l.trim().to_ascii_lowercase());
            }
            let has = |h: &str| headers.iter().any(|x| x.starts_with(h));
            let mut parts = head.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let authorized = has(&format!("x-aws-ec2-metadata-token: {token}"));
            let (code, body) = match (method, path) {
                ("PUT", "/latest/api/token") if has("x-aws-ec2-metadata-token-ttl-seconds:") => {
                    (200, token.clone())
                }
                ("GET", _) if !authorized => (401, String::new()),
                ("GET", "/latest/meta-data/local-ipv4") => (200, ip.clone()),
                ("GET", "/latest/meta-data/tags/instance/berth-role") => match &role {
                    Some(r) => (200, r.clone()),
                    None => (404, String::new()),
                },
                _ => (404, String::new()),
            };
            let mut conn = r.into_inner();
            let _ = write!(
                conn,
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Runs the EC2 user data on `h` as cloud-init would (as root, in the host), with its
/// install rooted under the host's directory and the metadata service faked.
fn user_data(h: &Host, managers: &str, role_tag: Option<&str>, env: &[(&str, &str)]) -> PathBuf {
    let root = h.root().join("sys");
    let imds = fake_imds(h, role_tag);
    let mut cmd = h.namespaced("bash");
    cmd.arg(repo().join("deploy/ec2/user-data.sh"))
        .env("BERTH_MANAGERS", managers)
        .env("BERTH_SECRET", SECRET)
        .env("BERTH_RELEASE", tarball())
        .env("BERTH_METADATA_URL", &imds)
        .env("BERTH_ROOT", &root);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = run(&mut cmd);
    eprintln!(
        "{}: user data ran:\n{}",
        h.hostname(),
        String::from_utf8_lossy(&o.stderr)
    );
    let cfg: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("etc/berth/daemon.json")).expect("daemon.json"),
    )
    .expect("json");
    assert_eq!(
        cfg["cluster"]["advertise-addr"],
        h.ip(),
        "advertise address from metadata"
    );
    root
}

fn log_of(h: &Host) -> String {
    std::fs::read_to_string(h.log_path()).unwrap_or_default()
}

#[test]
fn ec2_user_data_forms_a_cluster_with_no_manual_step() {
    let c = Cluster::bare(6);
    let managers: Vec<&str> = (0..3).map(|i| c.host(i).ip()).collect();
    let managers = managers.join(",");
    // h1-h3 managers and h4-h5 workers by tag; h6 a worker (by BERTH_ROLE) with another secret.
    let mut roots = Vec::new();
    for i in 0..5 {
        let role = if i < 3 { "manager" } else { "worker" };
        roots.push(user_data(c.host(i), &managers, Some(role), &[]));
    }
    let wrong = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    roots.push(user_data(
        c.host(5),
        &managers,
        None,
        &[("BERTH_ROLE", "worker"), ("BERTH_SECRET", wrong)],
    ));

    // The workers boot first: no manager is up; they keep retrying.
    for (i, root) in roots.iter().enumerate().skip(3) {
        boot(c.host(i), root);
    }
    for i in 3..6 {
        c.host(i).wait_ready();
    }
    assert!(
        consistently(Duration::from_secs(4), || local_state(c.host(3)).0
            == "inactive"),
        "a worker joined with no manager up"
    );
    assert!(
        eventually(Duration::from_secs(10), || log_of(c.host(3))
            .contains("not in a swarm yet")),
        "the early worker does not say it retries:\n{}",
        c.host(3).log_tail()
    );

    // Then the three managers, all at once: one cluster, formed by the first.
    for (i, root) in roots.iter().enumerate().take(3) {
        boot(c.host(i), root);
    }
    for i in 0..3 {
        c.host(i).wait_ready();
    }
    let formed = eventually(Duration::from_secs(120), || {
        swarm::converged(c.host(0), 5, 3)
    });
    assert!(
        formed,
        "no cluster of 3 managers + 2 workers: {:?}\n{}",
        swarm::node_ls(c.host(0)),
        c.host(1).log_tail()
    );
    let rows = swarm::node_ls(c.host(0)).expect("node ls");
    for (i, h) in c.hosts()[..5].iter().enumerate() {
        let row = rows
            .iter()
            .find(|r| r.hostname == h.hostname())
            .unwrap_or_else(|| panic!("{} missing: {rows:?}", h.hostname()));
        assert_eq!(row.is_manager(), i < 3, "{row:?}");
        // Every manager sees the same cluster.
        if i < 3 {
            assert!(
                eventually(Duration::from_secs(30), || swarm::converged(h, 5, 3)),
                "{} disagrees: {:?}",
                h.hostname(),
                swarm::node_ls(h)
            );
        }
    }
    assert!(log_of(c.host(0)).contains("initialised one (first listed manager)"));
    for i in 1..5 {
        assert!(
            log_of(c.host(i)).contains("cluster: joined the swarm"),
            "{}:\n{}",
            c.host(i).hostname(),
            c.host(i).log_tail()
        );
    }

    // The node with the wrong secret is refused, says so, keeps trying, never joins.
    let h6 = c.host(5);
    assert!(
        eventually(Duration::from_secs(30), || log_of(h6)
            .contains("wrong cluster secret")),
        "h6 does not say its secret is wrong:\n{}",
        h6.log_tail()
    );
    assert_eq!(local_state(h6).0, "inactive");
    assert!(
        log_of(c.host(0)).contains("automatic join refused")
            || log_of(c.host(1)).contains("automatic join refused")
            || log_of(c.host(2)).contains("automatic join refused")
    );
    assert!(
        swarm::node_ls(c.host(0))
            .expect("node ls")
            .iter()
            .all(|r| r.hostname != "h6"),
        "h6 joined with the wrong secret"
    );

    // Restarts are idempotent: same node, same cluster, nothing new.
    let ids: Vec<String> = [0, 1, 3]
        .iter()
        .map(|&i| swarm::node_id(c.host(i)))
        .collect();
    for (n, &i) in [0usize, 1, 3].iter().enumerate() {
        c.host(i).restart();
        assert_eq!(
            swarm::node_id(c.host(i)),
            ids[n],
            "{} changed identity",
            c.host(i).hostname()
        );
    }
    assert!(
        eventually(Duration::from_secs(60), || swarm::converged(
            c.host(2),
            5,
            3
        )),
        "after restarts: {:?}",
        swarm::node_ls(c.host(2))
    );
    assert!(log_of(c.host(0)).contains("already in a swarm"));
}

/// sshd in `h`'s namespace, on its address only, accepting `pubkey` for root; host keys
/// and configuration in a directory of the host's own.
fn start_sshd(h: &Host, pubkey: &str) {
    let dir = h.root().join("ssh");
    std::fs::create_dir_all(&dir).expect("ssh dir");
    let key = dir.join("host_ed25519");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key));
    std::fs::write(dir.join("authorized_keys"), pubkey).expect("authorized_keys");
    let cfg = format!(
        "ListenAddress {ip}:22\nHostKey {key}\nAuthorizedKeysFile {dir}/authorized_keys\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         UsePAM no\nStrictModes no\nPidFile {dir}/sshd.pid\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
        ip = h.ip(),
        key = key.display(),
        dir = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), cfg).expect("sshd_config");
    // sshd's privilege separation directory.
    std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
    let out = std::fs::File::create(dir.join("sshd.log")).expect("sshd log");
    let mut sshd = h
        .namespaced("/usr/sbin/sshd")
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(dir.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("start sshd (scripts/deps installs openssh-server)");
    // Reaped when the host's cleanup kills it.
    std::thread::spawn(move || sshd.wait());
    let addr = format!("{}:22", h.ip()).parse().expect("addr");
    assert!(
        eventually(Duration::from_secs(10), || h.can_connect(addr)),
        "sshd does not listen on {addr}"
    );
}

#[test]
fn onprem_bootstrap_forms_a_cluster_over_ssh_from_an_inventory() {
    let c = Cluster::bare(3);
    let keys = c.host(0).root().join("client");
    std::fs::create_dir_all(&keys).expect("client dir");
    let key = keys.join("id_ed25519");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key));
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).expect("pubkey");
    for h in c.hosts() {
        start_sshd(h, &pubkey);
    }
    let roles = ["manager", "manager", "worker"];
    let mut inventory = String::from("# address role options\n");
    for (h, role) in c.hosts().iter().zip(roles) {
        inventory += &format!(
            "{} {role} root={} cgroup-parent={}\n",
            h.ip(),
            h.root().join("sys").display(),
            h.cgroup_parent()
        );
    }
    let inv = keys.join("inventory");
    std::fs::write(&inv, inventory).expect("inventory");
    // The operator's machine is h1 (the hosts are reachable from the switch only).
    let mut cmd = c.host(0).namespaced("bash");
    cmd.arg(repo().join("deploy/onprem/bootstrap.sh"))
        .arg("--tarball")
        .arg(tarball())
        .arg("--secret-file")
        .arg(keys.join("secret"))
        .arg("-i")
        .arg(&key)
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ])
        .args(["--timeout", "120"])
        .arg(&inv);
    let o = cmd.output().expect("run bootstrap.sh");
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    let logs: Vec<String> = c
        .hosts()
        .iter()
        .map(|h| {
            std::fs::read_to_string(h.root().join("sys/var/log/berthd.log")).unwrap_or_default()
        })
        .collect();
    assert!(
        o.status.success(),
        "bootstrap failed:\n{out}\n{err}\n{logs:#?}"
    );
    eprintln!("{out}");
    for h in c.hosts() {
        assert!(
            out.contains(h.hostname()),
            "{} missing from node ls:\n{out}",
            h.hostname()
        );
    }
    assert_eq!(out.matches("Ready").count(), 3, "{out}");
    let mut secret = String::new();
    std::fs::File::open(keys.join("secret"))
        .expect("secret")
        .read_to_string(&mut secret)
        .expect("read");
    assert!(
        secret.trim().len() >= 64,
        "a generated secret of 32 random bytes"
    );
}
