//! Security probes against a real berthd: leftovers of a build whose daemon was killed,
//! interface names that would leave a bridge behind, settings that must fail create (not
//! start), and the attacks that already fail (nft injection through names, tar entries that
//! climb out of the data root, slow and huge requests), kept as regression tests.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{alive, eventually, http, stderr, stdout, Daemon, DOCKER};
use serde_json::{json, Value};

/// The `message` of an error body.
fn message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

fn in_ns(d: &Daemon, args: &[&str]) -> Output {
    d.in_netns(args[0])
        .args(&args[1..])
        .output()
        .expect("nsenter")
}

/// The names of the links in the daemon's network namespace.
fn links(d: &Daemon) -> Vec<String> {
    let o = in_ns(d, &["ip", "-o", "link", "show"]);
    let mut names: Vec<String> = stdout(&o)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect();
    names.sort();
    names
}

fn nft_ruleset(d: &Daemon) -> String {
    stdout(&in_ns(d, &["nft", "list", "ruleset"]))
}

/// Entries of the daemon's `data/tmp` that a build made.
fn build_tmp_entries(d: &Daemon) -> Vec<String> {
    std::fs::read_dir(d.root.join("data/tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("build-"))
                .collect()
        })
        .unwrap_or_default()
}

fn data_mounts(d: &Daemon) -> Vec<String> {
    let data = d.root.join("data").display().to_string();
    d.mounts_under_root()
        .into_iter()
        .filter(|m| m.starts_with(&data))
        .collect()
}

// ---- item 8: a build's leftovers after kill -9 -----------------------------------------

#[test]
fn killed_build_leaves_nothing_after_restart() {
    let mut d = Daemon::start();
    d.busybox();
    let ctx = d.root.join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN sleep 1000\n").expect("df");
    let mut client = Command::new(DOCKER)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("dockercfg"))
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-t", "slow:1"])
        .arg(&ctx)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker build");
    // The RUN step is running: its container is listed and its process is in our cgroups.
    let running = eventually(Duration::from_secs(60), || {
        !d.leftover_pids().is_empty() && !d.ok(&["ps", "-q"]).is_empty()
    });
    assert!(running, "the RUN step never started\n{}", d.log_tail());
    let pids = d.leftover_pids();
    let cid = d.ok(&["ps", "-q", "--no-trunc"]);
    assert!(!build_tmp_entries(&d).is_empty(), "no build context in tmp");

    d.kill9();
    let _ = client.kill();
    let _ = client.wait();
    // What today's berthd left is there: the RUN process runs on without its daemon.
    assert!(pids.iter().any(|p| alive(&p.to_string())));
    // And a COPY step in flight would have left its staging overlay mounted.
    let stage = d.root.join("data/tmp/build-stage-interrupted");
    for sub in ["lower", "diff", "work", "merged"] {
        std::fs::create_dir_all(stage.join(sub)).expect("stage dirs");
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        stage.join("lower").display(),
        stage.join("diff").display(),
        stage.join("work").display()
    );
    let m = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(stage.join("merged"))
        .output()
        .expect("mount");
    assert!(m.status.success(), "{}", stderr(&m));

    d.spawn();
    assert_eq!(
        d.ok(&["ps", "-aq"]),
        "",
        "the RUN container is still listed"
    );
    assert!(
        eventually(Duration::from_secs(10), || d.leftover_pids().is_empty()),
        "processes left in the daemon's cgroups: {:?}",
        d.leftover_pids()
    );
    for p in &pids {
        assert!(!alive(&p.to_string()), "RUN process {p} still alive");
    }
    assert!(
        !d.container_cgroup(&cid).exists(),
        "the RUN container's cgroup is still there"
    );
    assert_eq!(build_tmp_entries(&d), Vec::<String>::new());
    assert_eq!(data_mounts(&d), Vec::<String>::new());
    assert!(!d.root.join("data/containers").join(&cid).exists());
    // The daemon builds again, and the interrupted step runs anew (nothing was committed).
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo again > /f\n",
    )
    .expect("df");
    let o = d.docker_in(
        &ctx,
        &[("DOCKER_BUILDKIT", "0")],
        &["build", "-t", "ok:1", "."],
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), d.log_tail());
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

// ---- item 9: interface names ------------------------------------------------------------

#[test]
fn bad_bridge_names_are_refused_and_leave_nothing() {
    let d = Daemon::start();
    let links_before = links(&d);
    let rules_before = nft_ruleset(&d);
    for name in [
        "br%d",
        "a/b",
        "a b",
        "a\tb",
        ".",
        "..",
        "br:0",
        "0123456789abcdef",
        "q\"x",
    ] {
        let body = json!({
            "Name": "n1",
            "Options": { "com.docker.network.bridge.name": name },
        });
        let (st, resp) = http(&d, "POST", "/networks/create", &body.to_string());
        assert_eq!(st, 400, "{name:?}: {resp}");
        assert!(
            message(&resp).starts_with(&format!("invalid bridge name {name:?}")),
            "{name:?}: {resp}"
        );
    }
    // The stock CLI shows the reason.
    let o = d.docker(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=br%d",
        "n1",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("invalid bridge name \"br%d\"") && stderr(&o).contains('%'),
        "{}",
        stderr(&o)
    );
    // An interface that exists but is no bridge is not taken over.
    let o = d.docker(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=lo",
        "n1",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("existing interface lo is not a bridge"),
        "{}",
        stderr(&o)
    );
    // Nothing of the failed creates is left: no link (no br0), no rule, no network.
    assert_eq!(links(&d), links_before);
    assert_eq!(nft_ruleset(&d), rules_before);
    assert!(!d
        .ok(&["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .any(|n| n == "n1"));
    // The name and subnet were not kept: a good create with the same name works, and its
    // removal takes its bridge along.
    d.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=brok0",
        "n1",
    ]);
    assert!(links(&d).iter().any(|l| l == "brok0"));
    d.ok(&["network", "rm", "n1"]);
    assert_eq!(links(&d), links_before);
}

// ---- item 10: validation at create, not at start ----------------------------------------

fn create(d: &Daemon, name: &str, host_config: Value) -> (u16, String) {
    let body = json!({
        "Image": "busybox",
        "Cmd": ["sleep", "1000"],
        "HostConfig": host_config,
    });
    http(
        d,
        "POST",
        &format!("/containers/create?name={name}"),
        &body.to_string(),
    )
}

/// Nothing of a refused create is left: no container, no directory, the name is free.
fn assert_nothing_made(d: &Daemon, name: &str) {
    assert_eq!(
        d.ok(&["ps", "-aq"]),
        "",
        "a refused create left a container"
    );
    let dirs = std::fs::read_dir(d.root.join("data/containers"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(dirs, 0, "a refused create left a directory");
    let (st, body) = create(d, name, json!({}));
    assert_eq!(st, 201, "{body}");
    d.ok(&["rm", "-f", name]);
}

#[test]
fn bad_settings_fail_create_not_start() {
    let d = Daemon::start();
    d.busybox();
    let ncpu = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|s| {
            (0..nix::sched::CpuSet::count())
                .filter(|i| s.is_set(*i).unwrap_or(false))
                .count()
        })
        .expect("affinity");
    let range =
        format!("Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available");
    let cases: Vec<(Value, String)> = vec![
        (
            json!({"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}),
            "invalid port specification: \"99999\"".into(),
        ),
        (
            json!({"PortBindings": {"99999/tcp": [{"HostPort": "80"}]}}),
            "invalid port specification: \"99999\"".into(),
        ),
        (
            json!({"CpusetCpus": "0-99999999"}),
            "Invalid value 0-99999999 for cpuset cpus: value of out range, maximum is 8192".into(),
        ),
        (
            json!({"CpusetCpus": "0-4095"}),
            "Requested CPUs are not available - requested 0-4095, available: ".into(),
        ),
        (json!({"NanoCpus": -1}), range.clone()),
        (json!({"NanoCpus": i64::MAX}), range.clone()),
    ];
    for (hc, want) in &cases {
        let (st, body) = create(&d, "v1", hc.clone());
        assert_eq!(st, 400, "{hc}: {body}");
        assert!(message(&body).starts_with(want), "{hc}: {body}");
        assert_nothing_made(&d, "v1");
    }
    // The CLI reports the daemon's reason.
    let o = d.docker(&["create", "--cpuset-cpus", "0-99999999", "busybox"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Invalid value 0-99999999 for cpuset cpus"),
        "{}",
        stderr(&o)
    );
    assert_nothing_made(&d, "v1");

    // A memory limit too large to double (the default swap) starts, unlimited in effect.
    let (st, body) = create(&d, "big", json!({"Memory": i64::MAX}));
    assert_eq!(st, 201, "{body}");
    let (st, body) = http(&d, "POST", "/containers/big/start", "");
    assert_eq!(st, 204, "{body}\n{}", d.log_tail());
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "big"]),
        "true"
    );
    d.ok(&["rm", "-f", "big"]);

    // Unknown ps filters are refused.
    let q = "/containers/json?all=1&filters=%7B%22foo%22%3A%5B%22bar%22%5D%7D";
    let (st, body) = http(&d, "GET", q, "");
    assert_eq!(st, 400, "{body}");
    assert_eq!(message(&body), "invalid filter 'foo'");
    let o = d.docker(&["ps", "--filter", "foo=bar"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("invalid filter 'foo'"),
        "{}",
        stderr(&o)
    );
    assert!(d
        .docker(&["ps", "--filter", "status=running"])
        .status
        .success());

    // The same checks on update, and a refused update changes nothing.
    d.ok(&["run", "-d", "--name", "upd", "busybox", "sleep", "1000"]);
    for (body, want) in [
        (json!({"NanoCpus": -1}), range.as_str()),
        (
            json!({"CpusetCpus": "0-99999999"}),
            "Invalid value 0-99999999 for cpuset cpus",
        ),
        (
            json!({"CpuPeriod": 10}),
            "CPU cfs period can not be less than 1ms",
        ),
    ] {
        let (st, resp) = http(&d, "POST", "/containers/upd/update", &body.to_string());
        assert_eq!(st, 400, "{body}: {resp}");
        assert!(message(&resp).starts_with(want), "{body}: {resp}");
    }
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.HostConfig.NanoCpus}} [{{.HostConfig.CpusetCpus}}] {{.HostConfig.CpuPeriod}}",
            "upd"
        ]),
        "true 0 [] 0"
    );
    let o = d.docker(&["update", "--cpuset-cpus", "0-99999999", "upd"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Invalid value 0-99999999 for cpuset cpus"),
        "{}",
        stderr(&o)
    );
    // Good values still go through.
    d.ok(&["update", "--cpus", "0.5", "--cpuset-cpus", "0", "upd"]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.NanoCpus}} {{.HostConfig.CpusetCpus}}",
            "upd"
        ]),
        "500000000 0"
    );
}

// ---- regression: names can't inject nft rules -------------------------------------------

#[test]
fn names_cannot_inject_nft_rules() {
    let d = Daemon::start();
    d.busybox();
    let evil = [
        "x\"; add table ip pwned; \"",
        "x; add table ip pwned",
        "x\nadd table ip pwned",
        "x' ; flush ruleset ; '",
    ];
    for name in evil {
        let (st, body) = http(
            &d,
            "POST",
            "/networks/create",
            &json!({ "Name": name }).to_string(),
        );
        assert_eq!(st, 400, "network {name:?}: {body}");
        let (st, body) = http(
            &d,
            "POST",
            &format!(
                "/containers/create?name={}",
                name.bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect::<String>()
            ),
            r#"{"Image":"busybox"}"#,
        );
        assert_eq!(st, 400, "container {name:?}: {body}");
    }
    // Aliases are free text to the API: they end up in DNS answers, never in a rule.
    d.ok(&["network", "create", "inj"]);
    let body = json!({
        "Image": "busybox",
        "Cmd": ["sleep", "1000"],
        "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"NetworkMode": "inj", "PortBindings": {"80/tcp": [{"HostPort": "18181"}]}},
        "NetworkingConfig": {"EndpointsConfig": {"inj": {"Aliases": evil}}},
    });
    let (st, resp) = http(
        &d,
        "POST",
        "/containers/create?name=aliased",
        &body.to_string(),
    );
    assert!(st == 201 || st == 400, "{st}: {resp}");
    if st == 201 {
        let (st, resp) = http(&d, "POST", "/containers/aliased/start", "");
        assert!(st == 204 || st == 400, "{st}: {resp}");
    }
    let rules = nft_ruleset(&d);
    assert!(!rules.contains("pwned"), "{rules}");
    assert!(
        rules.contains("table ip berth"),
        "the daemon's table is gone:\n{rules}"
    );
    let tables = stdout(&in_ns(&d, &["nft", "list", "tables"]));
    assert!(!tables.contains("pwned"), "{tables}");
}

// ---- regression: tar entries that climb out ---------------------------------------------

/// One ustar entry: `kind` b'0' file, b'2' symlink, b'5' directory.
fn tar_entry(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[148..156].copy_from_slice(b"        ");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn tar_end(mut t: Vec<u8>) -> Vec<u8> {
    t.extend_from_slice(&[0u8; 1024]);
    t
}

/// Tars whose entries would land outside any extraction directory, one way each: `../` at
/// every depth up to the root, `..` in the middle of a path, an absolute path.
fn escaping_tars(tag: &str) -> Vec<Vec<u8>> {
    let file = |name: &str| tar_entry(name, b'0', "", b"escaped");
    let mut climbs = Vec::new();
    for depth in 1..=12 {
        climbs.extend(file(&format!("{}{tag}-up{depth}", "../".repeat(depth))));
    }
    [
        climbs,
        file(&format!("sub/{}tmp/{tag}-mid", "../".repeat(12))),
        file(&format!("/tmp/{tag}-abs")),
    ]
    .into_iter()
    .map(|bad| {
        let mut t = tar_entry("inside.txt", b'0', "", b"fine");
        t.extend(bad);
        tar_end(t)
    })
    .collect()
}

/// A `docker save` archive of one image whose only layer is `layer`, with `extra` entries
/// (already framed) before the real ones.
fn image_archive(layer: &[u8], extra: &[u8]) -> Vec<u8> {
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(layer))]},
    })
    .to_string();
    let manifest = json!([{
        "Config": "config.json",
        "RepoTags": ["evil:load"],
        "Layers": ["layer/layer.tar"],
    }])
    .to_string();
    let mut archive = extra.to_vec();
    archive.extend(tar_entry("layer/", b'5', "", b""));
    archive.extend(tar_entry("layer/layer.tar", b'0', "", layer));
    archive.extend(tar_entry("config.json", b'0', "", config.as_bytes()));
    archive.extend(tar_entry("manifest.json", b'0', "", manifest.as_bytes()));
    tar_end(archive)
}

/// Files named `tag*` anywhere outside the daemon's data root where an escape could land.
fn escaped_files(d: &Daemon, tag: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, skip: &Path, tag: &str, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p == skip {
                continue;
            }
            if e.file_name().to_string_lossy().starts_with(tag) {
                out.push(p.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, skip, tag, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&d.root, &d.root.join("data"), tag, &mut out);
    for top in ["/tmp", "/"] {
        for e in std::fs::read_dir(top).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(tag) {
                out.push(e.path());
            }
        }
    }
    out
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn tar_entries_never_land_outside_the_data_root() {
    let d = Daemon::start();
    let tag = format!("berth-esc-{:08x}", rand::random::<u32>());
    for (i, rootfs) in escaping_tars(&tag).into_iter().enumerate() {
        // import: the tar is the rootfs.
        let imp = d.root.join(format!("import{i}.tar"));
        std::fs::write(&imp, &rootfs).expect("write");
        let o = d.docker(&["import", imp.to_str().expect("path"), "evil:imp"]);
        eprintln!("import {i}: {} {}", o.status, stderr(&o));
        // load: the same entries in an image's layer, and in the archive itself.
        let clean = tar_end(tar_entry("inside.txt", b'0', "", b"fine"));
        let o = d.docker_stdin(&["load"], &image_archive(&rootfs, &[]));
        eprintln!("load layer {i}: {} {}", o.status, stderr(&o));
        let outer = &rootfs[..rootfs.len() - 1024];
        let o = d.docker_stdin(&["load"], &image_archive(&clean, outer));
        eprintln!("load archive {i}: {} {}", o.status, stderr(&o));
    }
    let escaped = escaped_files(&d, &tag);
    for p in &escaped {
        let _ = std::fs::remove_file(p);
    }
    assert_eq!(
        escaped,
        Vec::<PathBuf>::new(),
        "files written outside the data root"
    );
    // The daemon is fine afterwards.
    assert!(d.docker(&["images"]).status.success());
}

// ---- regression: slow and huge requests ---------------------------------------------------

#[test]
fn slow_headers_do_not_block_other_clients() {
    let d = Daemon::start();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow: Vec<_> = (0..16)
        .map(|_| {
            let sock = d.sock.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let Ok(mut s) = UnixStream::connect(&sock) else {
                    return;
                };
                for b in
                    b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                        .iter()
                        .cycle()
                {
                    if stop.load(std::sync::atomic::Ordering::Relaxed)
                        || s.write_all(&[*b]).is_err()
                    {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..5 {
        let t0 = Instant::now();
        let (st, body) = http(&d, "GET", "/_ping", "");
        assert_eq!((st, body.as_str()), (200, "OK"));
        assert!(
            // Blocked behind the slow clients, it would wait for them (far longer); the
            // bound leaves room for a loaded machine.
            t0.elapsed() < Duration::from_secs(5),
            "a ping took {:?} beside slow clients",
            t0.elapsed()
        );
        assert!(d.docker(&["version"]).status.success());
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in slow {
        let _ = t.join();
    }
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Streams up to `limit` bytes of body after `head`; returns the status the daemon answered.
fn push_body(d: &Daemon, head: &str, chunked: bool, limit: usize) -> u16 {
    let mut s = UnixStream::connect(&d.sock).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(head.as_bytes()).expect("head");
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0;
    let mut first = true;
    while sent < limit {
        let res = if chunked {
            let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
            if first {
                c.extend_from_slice(b"{\"Image\":\"");
                c.extend_from_slice(&chunk[10..]);
            } else {
                c.extend_from_slice(&chunk);
            }
            c.extend_from_slice(b"\r\n");
            s.write_all(&c)
        } else {
            s.write_all(&chunk)
        };
        first = false;
        if res.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn huge_bodies_are_refused_without_eating_memory() {
    let d = Daemon::start();
    let pid = std::fs::read_to_string(d.root.join("berthd.pid")).expect("pidfile");
    let pid = pid.trim();
    let before = rss_kib(pid);
    assert!(before > 0);
    // An 8 GiB JSON body announced up front, and one sent chunked with no length.
    let st = push_body(
        &d,
        "POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 8589934592\r\n\r\n",
        false,
        512 << 20,
    );
    assert_eq!(st, 413);
    let st = push_body(
        &d,
        "POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        true,
        512 << 20,
    );
    assert_eq!(st, 413);
    let after = rss_kib(pid);
    assert!(
        after < before + 64 * 1024,
        "berthd grew from {before} KiB to {after} KiB"
    );
    assert_eq!(http(&d, "GET", "/_ping", "").0, 200);
}
