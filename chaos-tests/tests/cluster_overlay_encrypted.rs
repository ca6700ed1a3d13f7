//! Encrypted overlays (`--opt encrypted`) as a docker user sees them, on 3 nodes (1 manager,
//! 2 workers), with WireGuard keys rotating every few seconds throughout
//! (`BERTH_WIREGUARD_ROTATE`): a service `web` (2 replicas of busybox httpd) on the encrypted
//! network `sec`, a service `echo` on the plain overlay `plain`, and a global `probe` on both.
//! From the probe on every node: `web` resolves to its VIP, `tasks.web` to both tasks, and
//! the VIP reaches both; the encrypted network's interfaces have the smaller MTU and several
//! megabytes cross both networks whole. A capture on the switch (the underlay) shows a
//! marker sent over `plain` in the clear and one sent over `sec` nowhere, with WireGuard's
//! datagrams on the wire; each node drops VXLAN of the encrypted network that does not come
//! out of its tunnel. Requests keep being answered across key rotations. Removing the
//! services and networks leaves no tunnel, VXLAN or bridge device, nor the guard, on any node.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_chaos_tests::swarm::{resolve, served, sh, task_container};
use berth_chaos_tests::{eventually, in_netns, swarm, Cluster, Host};

const IMAGE: &str = "busybox:latest";
/// Seconds between key rotations on every node.
const ROTATE_SECS: &str = "10";
/// The large file each httpd serves (bytes).
const BIG: usize = 4 << 20;
const HTTPD: &str = "mkdir -p /www && hostname > /www/index.html \
    && dd if=/dev/urandom of=/www/big bs=1024 count=4096 2>/dev/null \
    && exec httpd -f -p 80 -h /www";

fn running(m: &Host, service: &str) -> usize {
    let out = m.docker(&[
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.CurrentState}}",
        service,
    ]);
    swarm::stdout(&out)
        .lines()
        .filter(|l| l.starts_with("Running"))
        .count()
}

fn service(m: &Host, name: &str, extra: &[&str], cmd: &[&str]) {
    let mut args = vec![
        "service",
        "create",
        "--detach",
        "--name",
        name,
        "--no-resolve-image",
        "--stop-grace-period",
        "1s",
    ];
    args.extend_from_slice(extra);
    args.push(IMAGE);
    args.extend_from_slice(cmd);
    m.docker_ok(&args);
}

/// From the probe on `h`: `web` is the VIP, `tasks.web` both tasks, the VIP reaches both.
fn check_from(h: &Host, vip: &str) -> Result<(), String> {
    let ctr = task_container(h, "probe").ok_or("no probe task")?;
    let web = resolve(h, &ctr, "web");
    if web != BTreeSet::from([vip.to_owned()]) {
        return Err(format!("{}: web resolves to {web:?}", h.hostname()));
    }
    let tasks = resolve(h, &ctr, "tasks.web");
    if tasks.len() != 2 {
        return Err(format!("{}: tasks.web = {tasks:?}", h.hostname()));
    }
    let seen = served(h, &ctr, "web", 12);
    if seen.iter().any(String::is_empty) {
        return Err(format!("{}: a request failed: {seen:?}", h.hostname()));
    }
    let distinct: BTreeSet<String> = seen.into_iter().collect();
    if distinct.len() != 2 {
        return Err(format!("{}: the VIP reached {distinct:?}", h.hostname()));
    }
    Ok(())
}

/// Bytes of `/big` fetched from `addr` inside `ctr` (headers included).
fn fetch_big(h: &Host, ctr: &str, addr: &str) -> usize {
    let script = format!("printf 'GET /big HTTP/1.0\r\n\r\n' | nc -w 10 {addr} 80 | wc -c");
    sh(h, ctr, &script).trim().parse().unwrap_or(0)
}

fn has_link(h: &Host, prefixes: &[&str]) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", h.netns(), "-o", "link", "show"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
        .collect()
}

/// The guard table (VXLAN of encrypted networks only through the tunnels) on `h`.
fn guard(h: &Host) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            h.netns(),
            "nft",
            "list",
            "table",
            "inet",
            "berth_wg",
        ])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn switches(h: &Host) -> usize {
    std::fs::read_to_string(h.log_path())
        .unwrap_or_default()
        .matches("switched to the new key")
        .count()
}

/// Captures the underlay (every port of the switch) while `f` runs; returns the raw
/// capture and tcpdump's summary of it.
fn capture(c: &Cluster, f: impl FnOnce()) -> (Vec<u8>, String) {
    let netns = c.switch_netns();
    let file = std::env::temp_dir().join(format!("chaos-{}-underlay.pcap", c.run_id()));
    // --immediate-mode: libpcap's default ring hands packets over a block at a time, when
    // the block fills or a 1 s timeout passes; packets still in an open block when tcpdump
    // is stopped are never written (a CI run lost every packet of the last second so).
    let mut dump = Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "tcpdump",
            "--immediate-mode",
            "-i",
            "any",
            "-U",
            "-n",
            "-w",
        ])
        .arg(&file)
        .arg("udp")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump (scripts/deps installs it)");
    // A datagram between two of the test's hosts, sent until the capture file holds it:
    // before `f`, tcpdump is capturing (it starts slowly under load); after, everything
    // `f` sent, which went out before this mark, is in the file.
    let mark = |label: &str| {
        let (from, to) = (c.host(0).netns().to_owned(), c.host(1).ip().to_owned());
        let label = format!("capture-{label}-{}", c.run_id());
        let seen = eventually(Duration::from_secs(20), || {
            let (to, payload) = (to.clone(), label.clone());
            in_netns(&from, move || {
                let s = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
                let _ = s.send_to(payload.as_bytes(), (to.as_str(), 9));
            });
            std::thread::sleep(Duration::from_millis(100));
            contains(&std::fs::read(&file).unwrap_or_default(), &label)
        });
        assert!(seen, "the capture never showed its {label} datagram");
    };
    mark("start");
    f();
    mark("end");
    let _ = dump.kill();
    let _ = dump.wait();
    let bytes = std::fs::read(&file).unwrap_or_default();
    let text = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&file)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    (bytes, text)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The networks and services on a formed cluster; returns web's VIP once all run.
fn deploy(c: &Cluster) -> String {
    let m = c.host(0);
    m.docker_ok(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--opt",
        "encrypted",
        "sec",
    ]);
    m.docker_ok(&["network", "create", "-d", "overlay", "plain"]);
    let opts = m.docker_ok(&["network", "inspect", "--format", "{{json .Options}}", "sec"]);
    let opts: serde_json::Value = serde_json::from_str(&opts).expect("Options JSON");
    assert_eq!(opts["encrypted"], "", "Docker's Options: {opts}");
    let web_args = ["--replicas", "2", "--network", "sec"];
    service(m, "web", &web_args, &["sh", "-c", HTTPD]);
    service(m, "echo", &["--network", "plain"], &["sh", "-c", HTTPD]);
    let probe_args = ["--mode", "global", "--network", "sec", "--network", "plain"];
    service(m, "probe", &probe_args, &["sleep", "3600"]);
    let vip = m.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{(index .Endpoint.VirtualIPs 0).Addr}}",
        "web",
    ]);
    let up = eventually(Duration::from_secs(120), || {
        running(m, "web") == 2
            && running(m, "echo") == 1
            && c.hosts()
                .iter()
                .all(|h| task_container(h, "probe").is_some())
    });
    assert!(up, "services did not start:\n{}", m.log_tail());
    vip.split('/').next().unwrap_or_default().to_owned()
}

/// Several megabytes from every web and echo task to every probe: both networks carry
/// full-size frames across nodes.
fn large_transfers(c: &Cluster) {
    for h in c.hosts() {
        let ctr = task_container(h, "probe").expect("probe");
        let targets: BTreeSet<String> = resolve(h, &ctr, "tasks.web")
            .into_iter()
            .chain(resolve(h, &ctr, "tasks.echo"))
            .collect();
        assert_eq!(targets.len(), 3, "{targets:?}");
        for t in &targets {
            let mut got = 0;
            let ok = eventually(Duration::from_secs(30), || {
                got = fetch_big(h, &ctr, t);
                got > BIG
            });
            assert!(ok, "{}: {got} bytes of /big from {t}", h.hostname());
        }
    }
}

/// The underlay: the plain marker crosses in the clear, the encrypted one never does. A
/// capture that missed the plain marker (nothing proves it saw the traffic) is taken again,
/// up to three times, with what each probe sent in the message.
fn underlay_shows_no_plaintext(c: &Cluster) {
    let tag = c.run_id();
    let (secret, clear) = (format!("SECRET-{tag}-MARK"), format!("CLEAR-{tag}-MARK"));
    let mut sent = Vec::new();
    for attempt in 1..=3 {
        sent.clear();
        let (bytes, text) = capture(c, || {
            for h in c.hosts() {
                let ctr = task_container(h, "probe").expect("probe");
                for (name, marker) in [("tasks.web", &secret), ("tasks.echo", &clear)] {
                    for t in resolve(h, &ctr, name) {
                        let script = format!("printf '{marker}\\r\\n\\r\\n' | nc -w 2 {t} 80");
                        let got = sh(h, &ctr, &script);
                        sent.push(format!(
                            "{} -> {name} {t}: {} bytes back",
                            h.hostname(),
                            got.len()
                        ));
                    }
                }
            }
        });
        assert!(
            !contains(&bytes, &secret),
            "the encrypted marker crossed in the clear"
        );
        if contains(&bytes, &clear) {
            assert!(text.contains(".51820 "), "WireGuard datagrams on the wire");
            return;
        }
        eprintln!(
            "capture {attempt}: no plain marker; sent: {sent:?}; {} packets",
            text.lines().count()
        );
    }
    panic!("the capture never showed the plain marker; sent: {sent:?}");
}

/// Key rotation under traffic: requests keep being answered.
fn rotation_keeps_serving(c: &Cluster) {
    let before: Vec<usize> = c.hosts().iter().map(switches).collect();
    let h = c.host(1);
    let ctr = task_container(h, "probe").expect("probe");
    let (mut total, mut failed) = (0, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(35) {
        total += 1;
        if served(h, &ctr, "web", 1)[0].is_empty() {
            failed += 1;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let after: Vec<usize> = c.hosts().iter().map(switches).collect();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(*a >= b + 2, "h{}: {b} → {a} key switches in 35 s", i + 1);
    }
    assert!(
        failed * 10 <= total,
        "{failed} of {total} requests failed across key rotations"
    );
}

/// Removal: every device of the overlays and the tunnels goes, and the guard.
fn remove_all(c: &Cluster) {
    let m = c.host(0);
    m.docker_ok(&["service", "rm", "web", "echo", "probe"]);
    for net in ["sec", "plain"] {
        let removed = eventually(Duration::from_secs(60), || {
            m.docker(&["network", "rm", net]).status.success()
        });
        assert!(removed, "network rm {net} after the services went");
    }
    // The ingress network (made at swarm init) stays: its devices are not the overlays'.
    let ingress = m.docker_ok(&["network", "inspect", "ingress", "--format", "{{.Id}}"]);
    let ingress: String = ingress.trim().chars().take(9).collect();
    let ours = |h: &Host| -> Vec<String> {
        has_link(h, &["ovb-", "ovx-", "bwg"])
            .into_iter()
            .filter(|l| !l.ends_with(&ingress))
            .collect()
    };
    let clean = eventually(Duration::from_secs(30), || {
        c.hosts()
            .iter()
            .all(|h| ours(h).is_empty() && guard(h).is_empty())
    });
    let left: Vec<Vec<String>> = c.hosts().iter().map(ours).collect();
    assert!(clean, "devices left: {left:?}");
}

#[test]
fn encrypted_overlay_hides_payloads_balances_and_survives_key_rotation() {
    // Inherited by every berthd of this test.
    std::env::set_var("BERTH_WIREGUARD_ROTATE", ROTATE_SECS);
    let c = Cluster::new(3);
    for h in c.hosts() {
        h.import_busybox();
    }
    swarm::form(&c, 1, 2);
    let vip = deploy(&c);
    for h in c.hosts() {
        let mut last = String::new();
        let ok = eventually(Duration::from_secs(90), || {
            check_from(h, &vip).map_err(|e| last = e).is_ok()
        });
        assert!(ok, "{last}\n{}", h.log_tail());
        let g = guard(h);
        assert!(g.contains(r#"iifname != "bwg0" udp dport 4789"#), "{g}");
        let ctr = task_container(h, "probe").expect("probe");
        let links = sh(h, &ctr, "ip -o link");
        assert!(
            links.contains("mtu 1390") && links.contains("mtu 1450"),
            "encrypted 1390, plain 1450: {links}"
        );
    }
    large_transfers(&c);
    underlay_shows_no_plaintext(&c);
    rotation_keeps_serving(&c);
    remove_all(&c);
}
