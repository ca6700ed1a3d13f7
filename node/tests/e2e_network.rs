//! Bridge networking end to end, with real traffic: a berthd in its own network namespace
//! (the "host"), containers on the default bridge and on user-defined networks, and a second
//! namespace made by the test standing for another machine on the host's network. Nothing
//! leaves the namespaces the tests create.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::outside::{http_get, in_ns, web, Outside};
use common::{eventually, stderr, stdout, Daemon};

/// Sends one UDP datagram from inside `ns` and returns the reply.
fn udp_roundtrip(ns: &str, addr: &str, port: u16, msg: &str) -> Option<String> {
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(3)\ns.sendto(b'{msg}',('{addr}',{port}))\nprint(s.recvfrom(1500)[0].decode())"
    );
    let o = in_ns(ns, &["python3", "-c", &script]);
    o.status.success().then(|| stdout(&o).trim().to_owned())
}

/// A static UDP echo server to copy into containers (busybox has no UDP server).
fn udp_echo_binary(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("udpecho.c");
    std::fs::write(
        &src,
        r#"#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int c, char **v) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET; a.sin_port = htons(atoi(v[1]));
  if (bind(s, (struct sockaddr *)&a, sizeof a)) return 1;
  for (;;) {
    char b[1500]; struct sockaddr_in f; socklen_t l = sizeof f;
    ssize_t n = recvfrom(s, b, sizeof b, 0, (struct sockaddr *)&f, &l);
    if (n > 0) sendto(s, b, n, 0, (struct sockaddr *)&f, l);
  }
}
"#,
    )
    .expect("write udpecho.c");
    let bin = dir.join("udpecho");
    let o = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("gcc");
    assert!(o.status.success(), "gcc: {}", stderr(&o));
    bin
}

#[test]
fn user_networks_resolve_names_and_stay_isolated() {
    let d = Daemon::start();
    d.busybox();
    let n1 = d.ok(&["network", "create", "--label", "team=a", "n1"]);
    assert_eq!(n1.len(), 64);
    d.ok(&["network", "create", "n2"]);
    d.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.77.0.0/24",
        "--gateway",
        "10.77.0.254",
        "locked",
    ]);
    // Duplicate names and the predefined networks.
    let dup = d.docker(&["network", "create", "n1"]);
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));
    let rm_bridge = d.docker(&["network", "rm", "bridge"]);
    assert!(
        stderr(&rm_bridge).contains("pre-defined"),
        "{}",
        stderr(&rm_bridge)
    );
    let overlap = d.docker(&["network", "create", "--subnet", "10.77.0.128/25", "x"]);
    assert!(!overlap.status.success());

    web(
        &d,
        &["--network", "n1", "--network-alias", "webby"],
        "web",
        "hello-n1",
    );
    // By name and by alias, through 127.0.0.11.
    let out = d.ok(&[
        "run", "--rm", "--network", "n1", "busybox", "sh", "-c",
        "cat /etc/resolv.conf; wget -qO- http://web/; wget -qO- http://webby/; ping -c1 -W2 web >/dev/null && echo pinged",
    ]);
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert_eq!(out.matches("hello-n1").count(), 2, "{out}");
    assert!(out.contains("pinged"), "{out}");
    // Unknown names fail fast (no upstream is reachable from the test namespace).
    let miss = d.docker(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "busybox",
        "nslookup",
        "nosuch.invalid",
    ]);
    assert!(!miss.status.success());

    // Another network cannot reach it, by name or by address.
    let ip = d.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.n1.IPAddress}}",
        "web",
    ]);
    assert!(ip.starts_with("172."), "{ip}");
    let iso = d.docker(&[
        "run",
        "--rm",
        "--network",
        "n2",
        "busybox",
        "wget",
        "-T",
        "2",
        "-qO-",
        &format!("http://{ip}/"),
    ]);
    assert!(!iso.status.success(), "n2 reached n1: {}", stdout(&iso));
    let byname = d.docker(&[
        "run",
        "--rm",
        "--network",
        "n2",
        "busybox",
        "nslookup",
        "web",
    ]);
    assert!(!byname.status.success());

    // Internal: no route out; a fixed --ip from the user subnet; the gateway as configured.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "locked",
        "--ip",
        "10.77.0.50",
        "busybox",
        "sh",
        "-c",
        "ip -4 addr show eth0; ip route; ping -c1 -W1 172.17.0.1 || echo no-way-out",
    ]);
    assert!(out.contains("10.77.0.50/24"), "{out}");
    assert!(!out.contains("default"), "{out}");
    assert!(out.contains("no-way-out"), "{out}");
    let busy = d.docker(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "--ip",
        "172.30.0.9",
        "busybox",
        "true",
    ]);
    assert!(
        !busy.status.success(),
        "--ip on a network without a user subnet"
    );

    // Connect a running container to n2, then disconnect it.
    d.ok(&["network", "connect", "--alias", "w2", "n2", "web"]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "n2",
        "busybox",
        "wget",
        "-qO-",
        "http://w2/",
    ]);
    assert!(out.contains("hello-n1"), "{out}");
    let inspect = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{end}}",
        "n2",
    ]);
    assert!(inspect.contains("web"), "{inspect}");
    d.ok(&["network", "disconnect", "n2", "web"]);
    let ifs = d.ok(&["exec", "web", "ip", "-4", "-o", "addr"]);
    assert!(!ifs.contains("eth1"), "{ifs}");

    // A network with endpoints stays; the default bridge has no DNS but /etc/hosts.
    let rm = d.docker(&["network", "rm", "n1"]);
    assert!(!rm.status.success());
    assert!(stderr(&rm).contains("active endpoints"), "{}", stderr(&rm));
    let hosts = d.ok(&[
        "run",
        "--rm",
        "--hostname",
        "hh",
        "--add-host",
        "db:10.1.2.3",
        "busybox",
        "cat",
        "/etc/hosts",
        "/etc/resolv.conf",
    ]);
    assert!(
        hosts.contains("172.17.0.") && hosts.contains("\thh"),
        "{hosts}"
    );
    assert!(hosts.contains("10.1.2.3\tdb"), "{hosts}");
    assert!(!hosts.contains("127.0.0.11"), "{hosts}");

    let ls = d.ok(&[
        "network",
        "ls",
        "--filter",
        "label=team=a",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(ls, "n1");
    d.ok(&["rm", "-f", "web"]);
    let pruned = d.ok(&["network", "prune", "-f"]);
    assert!(
        pruned.contains("n1") && pruned.contains("n2") && pruned.contains("locked"),
        "{pruned}"
    );
    let left = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(left.lines().count(), 3, "{left}");
    // Bridges of removed networks are gone.
    let links = stdout(&in_ns(&d.netns, &["ip", "-o", "link"]));
    assert!(!links.contains("berth-"), "{links}");
}

#[test]
fn published_ports_and_outbound_nat() {
    let d = Daemon::start();
    d.busybox();
    let out = Outside::new(&d, "o", "10.203.0.1/24", "10.203.0.2/24", "from outside");
    // Outbound: the outside namespace has no route to container subnets, so an answer
    // proves masquerading.
    let o = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        "http://10.203.0.2:9000/",
    ]);
    assert_eq!(o, "from outside");

    web(&d, &["-p", "18080:80"], "pub", "published");
    // From the host's loopback, the host's own address, and another machine.
    for (ns, url) in [
        (d.netns.as_str(), "http://127.0.0.1:18080/"),
        (d.netns.as_str(), "http://10.203.0.1:18080/"),
        (out.ns.as_str(), "http://10.203.0.1:18080/"),
    ] {
        assert_eq!(
            http_get(ns, url).as_deref().map(str::trim),
            Some("published"),
            "{url} from {ns}"
        );
    }
    // From another container, through the host address (hairpin).
    let o = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        "http://10.203.0.1:18080/",
    ]);
    assert_eq!(o, "published");
    // Loopback-only binding is not reachable from outside.
    web(&d, &["-p", "127.0.0.1:18081:80"], "local", "loopback-only");
    assert_eq!(
        http_get(&d.netns, "http://127.0.0.1:18081/")
            .as_deref()
            .map(str::trim),
        Some("loopback-only")
    );
    assert!(http_get(&out.ns, "http://10.203.0.1:18081/").is_none());

    // A port in use is refused before the container starts.
    let clash = d.docker(&[
        "run", "-d", "--name", "clash", "-p", "18080:80", "busybox", "sleep", "9",
    ]);
    assert_eq!(clash.status.code(), Some(125));
    assert!(
        stderr(&clash).contains("port is already allocated"),
        "{}",
        stderr(&clash)
    );
    let st = d.ok(&["inspect", "-f", "{{.State.Running}}", "clash"]);
    assert_eq!(st, "false");

    // UDP, and -P for the image's exposed ports.
    let echo = udp_echo_binary(&d.root);
    d.ok(&[
        "create",
        "--name",
        "udp",
        "-p",
        "15353:53/udp",
        "--expose",
        "7000",
        "-P",
        "busybox",
        "/udpecho",
        "53",
    ]);
    d.ok(&["cp", echo.to_str().expect("path"), "udp:/udpecho"]);
    d.ok(&["start", "udp"]);
    let ports = d.ok(&["port", "udp"]);
    assert!(ports.contains("53/udp -> 0.0.0.0:15353"), "{ports}");
    let random: u16 = d
        .ok(&["port", "udp", "7000/tcp"])
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("a random host port for 7000/tcp");
    assert!(random > 1024);
    assert!(eventually(Duration::from_secs(5), || {
        udp_roundtrip(&d.netns, "127.0.0.1", 15353, "ping-lo").as_deref() == Some("ping-lo")
    }));
    assert_eq!(
        udp_roundtrip(&out.ns, "10.203.0.1", 15353, "ping-out").as_deref(),
        Some("ping-out")
    );
    // ps shows the mappings; berth agrees.
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ps.contains("pub 0.0.0.0:18080->80/tcp"), "{ps}");
    let bps = d.berth_ok(&["port", "pub"]);
    assert!(bps.contains("80/tcp -> 0.0.0.0:18080"), "{bps}");

    // Network counters reach `docker stats`.
    let io = d.ok(&["stats", "--no-stream", "--format", "{{.NetIO}}", "pub"]);
    assert!(!io.is_empty() && !io.starts_with("0B / 0B"), "{io}");

    // Stopping frees the port for someone else.
    d.ok(&["rm", "-f", "pub"]);
    web(&d, &["-p", "18080:80"], "pub2", "second");
    assert_eq!(
        http_get(&d.netns, "http://127.0.0.1:18080/")
            .as_deref()
            .map(str::trim),
        Some("second")
    );
}

#[test]
fn berth_cli_networks_survive_daemon_kill_without_leaks() {
    let mut d = Daemon::start();
    d.busybox();
    d.berth_ok(&["network", "create", "--subnet", "10.88.0.0/24", "app"]);
    let ls = d.berth_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(
        ls.contains("app bridge") && ls.contains("bridge bridge") && ls.contains("none null"),
        "{ls}"
    );
    let script = "mkdir -p /www && echo db-here > /www/index.html && exec httpd -f -p 80 -h /www";
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "app",
        "--network-alias",
        "database",
        "-p",
        "127.0.0.1:18090:80",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let ip = d.berth_ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.app.IPAddress}}",
        "db",
    ]);
    assert!(ip.starts_with("10.88.0."), "{ip}");

    d.kill9();
    // While berthd is down the container keeps serving its published port.
    assert_eq!(
        http_get(&d.netns, "http://127.0.0.1:18090/")
            .as_deref()
            .map(str::trim),
        Some("db-here")
    );
    d.spawn();
    let o = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "wget",
        "-qO-",
        "http://database/",
    ]);
    assert_eq!(o, "db-here");
    // The address is still held: a new container gets another one.
    let other = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0",
    ]);
    assert!(!other.contains(&format!("{ip}/")), "{other}");
    assert_eq!(
        http_get(&d.netns, "http://127.0.0.1:18090/")
            .as_deref()
            .map(str::trim),
        Some("db-here")
    );

    d.berth_ok(&["rm", "-f", "db"]);
    // Nothing left: no veths, no DNAT rule, no pinned namespace; the address is free again.
    assert!(eventually(Duration::from_secs(5), || {
        !stdout(&in_ns(&d.netns, &["ip", "-o", "link"])).contains("vb")
    }));
    let rules = stdout(&in_ns(
        &d.netns,
        &["nft", "list", "chain", "ip", "berth", "publish"],
    ));
    assert!(!rules.contains("dnat"), "{rules}");
    let pins = std::fs::read_dir(d.root.join("run/netns"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(pins, 0);
    let again = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "--ip",
        &ip,
        "busybox",
        "true",
    ]);
    assert_eq!(again, "");
    let rm = d.berth(&["network", "rm", "app"]);
    assert!(rm.status.success(), "{}", stderr(&rm));
}

/// `--bridge none`, as with dockerd: no default bridge network (its record and the device
/// berthd made go when a data root had one), containers without `--network` get none,
/// user-defined networks still work; `--bip` cannot come with it. And a network named at
/// create that does not exist yet is looked up at start.
#[test]
fn bridge_none_turns_the_default_bridge_off() {
    let mut d = Daemon::start();
    d.busybox();
    let link = |d: &Daemon| {
        d.in_netns("ip")
            .args(["link", "show", "berth0"])
            .output()
            .expect("ip")
            .status
            .success()
    };
    assert!(link(&d), "the default bridge device");
    d.kill9();
    d.set_args(&["--bridge", "none"]);
    d.spawn();
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert_eq!(
        nets.lines().collect::<Vec<_>>(),
        ["host host", "none null"],
        "{nets}"
    );
    assert!(!link(&d), "the default bridge device stayed");

    let addrs = d.ok(&["run", "--rm", "busybox", "ip", "-o", "addr"]);
    assert!(
        addrs.lines().all(|l| l.contains(": lo ")),
        "a container without --network got an interface: {addrs}"
    );
    d.ok(&["create", "--name", "plain", "busybox", "true"]);
    let on = d.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.NetworkMode}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
        "plain",
    ]);
    assert_eq!(on, "none none");
    // As with dockerd, a network that does not exist fails the start, not the create
    // (the docker CLI would answer a 404 from create by trying to pull the image).
    let o = d.docker(&["run", "--rm", "--network", "bridge", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("network bridge not found")
            && !stderr(&o).contains("Unable to find image"),
        "{}",
        stderr(&o)
    );
    let show_ipv4 = ["busybox", "ip", "-o", "-4", "addr"];
    d.ok(&[
        &["create", "--name", "early", "--network", "mine"][..],
        &show_ipv4,
    ]
    .concat());
    d.ok(&["network", "create", "--subnet", "10.89.0.0/24", "mine"]);
    d.ok(&["start", "-a", "early"]);
    let addrs = d.ok(&["logs", "early"]);
    assert!(addrs.contains("inet 10.89.0."), "{addrs}");
    let addrs = d.ok(&[&["run", "--rm", "--network", "mine"][..], &show_ipv4].concat());
    assert!(addrs.contains("inet 10.89.0."), "{addrs}");
    d.ok(&["rm", "plain", "early"]);
    d.ok(&["network", "rm", "mine"]);

    // Refused before it starts anything (`timeout` only guards the test against a start).
    let o = Command::new("timeout")
        .arg("20")
        .arg(common::bin_dir().join("berthd"))
        .args(["--bridge", "none", "--bip", "10.90.0.1/24"])
        .output()
        .expect("berthd");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--bridge none"), "{}", stderr(&o));
}
