//! The routing mesh and attachable overlays as a docker user sees them, on 3 nodes (1
//! manager, 2 workers):
//! - `ingress` exists once the swarm does (`network ls`/`inspect` on the manager, Ingress
//!   true), and cannot be removed while a service publishes a port through it;
//! - `web` (2 replicas on the workers, on the attachable overlay `ov`) publishes 8080 in
//!   ingress mode: the port answers on every node's address, the manager's too (it runs no
//!   task of web), and requests reach both tasks; `service inspect` shows the port and the
//!   ingress VIP; a second service asking for 8080 gets Docker's conflict error;
//!   `--publish-add`/`--publish-rm` open and close a port on every node;
//! - host mode publishes only on the task's node;
//! - a standalone container on a worker (`docker run --network ov`) resolves `web` to its VIP
//!   and `tasks.web` to both tasks, and reaches web by name and by VIP; a non-attachable
//!   overlay refuses `docker run --network` with Docker's error;
//! - kill -9 of a worker's berthd and a start again: its task and the node's published
//!   ingress port answer again;
//! - the container's address is released when it is removed (the network can then go).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use berth_chaos_tests::swarm::resolve;
use berth_chaos_tests::{eventually, in_netns, swarm, Cluster, Host};

const IMAGE: &str = "busybox:latest";
const HTTPD: &str = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www";

/// `GET /` to `ip:port` from inside `from`'s namespace: the body's last line (the serving
/// task's hostname), or "" when nothing answered.
fn get(from: &Host, ip: &str, port: u16) -> String {
    let addr: SocketAddr = format!("{ip}:{port}").parse().expect("address");
    in_netns(from.netns(), move || {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
            return String::new();
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.lines().last().unwrap_or_default().trim().to_owned()
    })
}

/// The hostnames answering `ip:port` over `n` requests from `from` ("" for a failure).
fn spread(from: &Host, ip: &str, port: u16, n: usize) -> BTreeSet<String> {
    (0..n).map(|_| get(from, ip, port)).collect()
}

/// The hostnames of `service`'s running tasks' containers (their container hostnames).
fn task_hostnames(c: &Cluster, service: &str) -> BTreeSet<String> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    c.hosts()
        .iter()
        .flat_map(|h| {
            let ids = swarm::stdout(&h.docker(&["ps", "-q", "--filter", &filter]));
            ids.lines()
                .map(|id| swarm::stdout(&h.docker(&["exec", id, "hostname"])))
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// The nodes (hostnames) running `service`'s tasks.
fn task_nodes(m: &Host, service: &str) -> Vec<String> {
    let out = m.docker(&[
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Node}}|{{.CurrentState}}",
        service,
    ]);
    swarm::stdout(&out)
        .lines()
        .filter(|l| l.contains("|Running"))
        .filter_map(|l| l.split('|').next().map(str::to_owned))
        .collect()
}

/// Every node's address answers `port` and, over enough requests, each of `want`.
fn mesh_serves(c: &Cluster, port: u16, want: &BTreeSet<String>) -> Result<(), String> {
    let from = c.host(0);
    for h in c.hosts() {
        let seen = spread(from, h.ip(), port, 12);
        if seen != *want {
            return Err(format!(
                "{}:{port} served {seen:?}, want {want:?}",
                h.hostname()
            ));
        }
    }
    Ok(())
}

fn wait_ok(what: &str, c: &Cluster, secs: u64, mut f: impl FnMut() -> Result<(), String>) {
    let mut last = String::new();
    let ok = eventually(Duration::from_secs(secs), || match f() {
        Ok(()) => true,
        Err(e) => {
            last = e;
            false
        }
    });
    let logs: Vec<String> = c.hosts().iter().map(|h| h.log_tail()).collect();
    assert!(ok, "{what}: {last}\n{}", logs.join("\n"));
}

/// Hostnames served by `target`:80 from inside container `ctr` (busybox nc).
fn served_from(h: &Host, ctr: &str, target: &str, n: usize) -> BTreeSet<String> {
    berth_chaos_tests::swarm::served(h, ctr, target, n)
        .into_iter()
        .collect()
}

#[test]
fn routing_mesh_and_attachable_overlays() {
    let c = Cluster::new(3);
    for h in c.hosts() {
        h.import_busybox();
    }
    swarm::form(&c, 1, 2);
    let (m, w1, w2) = (c.host(0), c.host(1), c.host(2));

    // ingress comes with the swarm.
    let ingress = m.docker_ok(&[
        "network",
        "inspect",
        "--format",
        "{{.Ingress}} {{.Scope}} {{.Driver}}",
        "ingress",
    ]);
    assert_eq!(ingress, "true swarm overlay");
    let ls = m.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(ls.lines().any(|l| l == "ingress"), "{ls}");
    let ingress_id = m.docker_ok(&["network", "inspect", "--format", "{{.Id}}", "ingress"]);

    m.docker_ok(&["network", "create", "-d", "overlay", "--attachable", "ov"]);
    m.docker_ok(&["network", "create", "-d", "overlay", "closed"]);
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--replicas",
        "2",
        "--constraint",
        "node.role==worker",
        "--no-resolve-image",
        "--network",
        "ov",
        "--publish",
        "published=8080,target=80",
        "--stop-grace-period",
        "1s",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    let two = eventually(Duration::from_secs(90), || task_nodes(m, "web").len() == 2);
    assert!(two, "web did not start: {:?}", task_nodes(m, "web"));
    let nodes: BTreeSet<String> = task_nodes(m, "web").into_iter().collect();
    assert_eq!(nodes.len(), 2, "one task per worker: {nodes:?}");
    assert!(!nodes.contains(m.hostname()));

    // Endpoint: the port in ingress mode, and a VIP on ingress.
    let port = m.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{range .Endpoint.Ports}}{{.PublishMode}} {{.PublishedPort}} {{.TargetPort}}{{end}}",
        "web",
    ]);
    assert_eq!(port, "ingress 8080 80");
    let vips = m.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{range .Endpoint.VirtualIPs}}{{.NetworkID}} {{end}}",
        "web",
    ]);
    assert!(vips.contains(&ingress_id), "{vips} lacks {ingress_id}");

    // Every node answers 8080, the manager (no task) too, and both tasks serve.
    let mut hostnames = BTreeSet::new();
    let got = eventually(Duration::from_secs(30), || {
        hostnames = task_hostnames(&c, "web");
        hostnames.len() == 2
    });
    assert!(got, "{hostnames:?}");
    wait_ok("routing mesh", &c, 45, || mesh_serves(&c, 8080, &hostnames));

    // The same port again: Docker's conflict.
    let clash = m.docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        "clash",
        "--no-resolve-image",
        "--publish",
        "8080:80",
        IMAGE,
        "sleep",
        "60",
    ]);
    assert!(!clash.status.success(), "a second service got port 8080");
    let err = swarm::stderr(&clash);
    assert!(
        err.contains("port '8080' is already in use by service 'web'")
            && err.contains("as an ingress port"),
        "{err}"
    );
    // The CLI asks before removing the routing mesh's network: yes.
    let rm = m.docker_with_input(&["network", "rm", "ingress"], "y\n");
    assert!(!rm.status.success(), "ingress removed while web uses it");
    assert!(
        swarm::stderr(&rm).contains("ingress network cannot be removed because service"),
        "{}",
        swarm::stderr(&rm)
    );

    // Host mode: only the task's node answers.
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "hm",
        "--no-resolve-image",
        "--publish",
        "mode=host,published=9090,target=80",
        "--stop-grace-period",
        "1s",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    wait_ok("host mode", &c, 60, || {
        let on = task_nodes(m, "hm");
        let [node] = on.as_slice() else {
            return Err(format!("hm runs on {on:?}"));
        };
        for h in c.hosts() {
            let answered = !get(m, h.ip(), 9090).is_empty();
            if answered != (h.hostname() == node) {
                return Err(format!("{}:9090 answered: {answered}", h.hostname()));
            }
        }
        Ok(())
    });
    m.docker_ok(&["service", "rm", "hm"]);

    // An attachable overlay: a standalone container on a worker reaches web by name and VIP.
    let ctr = "client";
    w2.docker_ok(&[
        "run",
        "-d",
        "--name",
        ctr,
        "--network",
        "ov",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let denied = w1.docker(&["run", "-d", "--network", "closed", IMAGE, "true"]);
    assert!(
        !denied.status.success(),
        "attached to a non-attachable overlay"
    );
    assert!(
        swarm::stderr(&denied).contains("network closed not manually attachable"),
        "{}",
        swarm::stderr(&denied)
    );
    let ov_vip = m.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{range .Endpoint.VirtualIPs}}{{.NetworkID}}={{.Addr}} {{end}}",
        "web",
    ]);
    let ov_id = m.docker_ok(&["network", "inspect", "--format", "{{.Id}}", "ov"]);
    let vip = ov_vip
        .split_whitespace()
        .find_map(|p| p.strip_prefix(&format!("{ov_id}=")))
        .and_then(|a| a.split('/').next())
        .expect("a VIP on ov")
        .to_owned();
    wait_ok("attachable overlay", &c, 30, || {
        let name = resolve(w2, ctr, "web");
        if name != BTreeSet::from([vip.clone()]) {
            return Err(format!("web resolves to {name:?}, not {vip}"));
        }
        let tasks = resolve(w2, ctr, "tasks.web");
        if tasks.len() != 2 {
            return Err(format!("tasks.web = {tasks:?}"));
        }
        for target in ["web", vip.as_str()] {
            let seen = served_from(w2, ctr, target, 12);
            if seen != hostnames {
                return Err(format!("{target} served {seen:?}"));
            }
        }
        Ok(())
    });
    let inspect = w2.docker_ok(&[
        "network",
        "inspect",
        "--format",
        "{{range .Containers}}{{.Name}} {{end}}",
        "ov",
    ]);
    assert!(inspect.contains(ctr), "{inspect}");

    // --publish-add / --publish-rm: a port opened, then closed, on every node.
    m.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--publish-add",
        "8081:80",
        "web",
    ]);
    wait_ok("published port added", &c, 90, || {
        let now = task_hostnames(&c, "web");
        if now.len() != 2 {
            return Err(format!("web tasks: {now:?}"));
        }
        mesh_serves(&c, 8081, &now)?;
        mesh_serves(&c, 8080, &now)
    });
    // `--publish-rm` removes by target port (the docker CLI's rule): both ports go, on every
    // node; then 8080 comes back.
    m.docker_ok(&["service", "update", "--detach", "--publish-rm", "80", "web"]);
    wait_ok("published ports removed", &c, 90, || {
        let still: Vec<String> = c
            .hosts()
            .iter()
            .flat_map(|h| [8080, 8081].map(|p| (h, p)))
            .filter(|(h, p)| !get(m, h.ip(), *p).is_empty())
            .map(|(h, p)| format!("{}:{p}", h.hostname()))
            .collect();
        match still.is_empty() {
            true => Ok(()),
            false => Err(format!("still answering: {still:?}")),
        }
    });
    m.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--publish-add",
        "8080:80",
        "web",
    ]);
    wait_ok("published port added again", &c, 90, || {
        let now = task_hostnames(&c, "web");
        if now.len() != 2 {
            return Err(format!("web tasks: {now:?}"));
        }
        mesh_serves(&c, 8080, &now)
    });

    // kill -9 a worker's berthd and start it again: its task and its port answer again.
    w1.kill9();
    w1.start();
    wait_ok("after a restart of berthd", &c, 60, || {
        let now = task_hostnames(&c, "web");
        if now.len() != 2 {
            return Err(format!("web tasks: {now:?}"));
        }
        mesh_serves(&c, 8080, &now)?;
        let seen = served_from(w2, ctr, &vip, 12);
        if seen != now {
            return Err(format!("the VIP served {seen:?}"));
        }
        Ok(())
    });

    // The container's address goes with it: once web is gone, ov can be removed.
    w2.docker_ok(&["rm", "-f", ctr]);
    m.docker_ok(&["service", "rm", "web"]);
    let removed = eventually(Duration::from_secs(60), || {
        m.docker(&["network", "rm", "ov"]).status.success()
    });
    let why = swarm::stderr(&m.docker(&["network", "rm", "ov"]));
    assert!(removed, "ov not removable: {why}");
    let gone = eventually(Duration::from_secs(30), || {
        m.docker_with_input(&["network", "rm", "ingress"], "y\n")
            .status
            .success()
            && !m
                .docker_ok(&["network", "ls", "--format", "{{.Name}}"])
                .lines()
                .any(|l| l == "ingress")
    });
    assert!(gone, "ingress not removable once unused");
}
