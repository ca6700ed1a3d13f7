//! `docker stack` against Berth on 3 nodes (1 manager, 2 workers): the docker CLI translates
//! a compose file into networks, secrets, configs and services named `<stack>_<name>`; the
//! services converge, find each other by their compose names (network aliases, answered
//! with the VIP alone), read their secret and config; a re-deploy with another replica count
//! updates the service in place; `stack rm` removes everything carrying the stack's label.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_chaos_tests::swarm::resolve;
use berth_chaos_tests::{eventually, swarm, Cluster, Host};

const COMPOSE: &str = r#"
version: "3.8"
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "cat /run/secrets/token /etc/app.conf > /tmp/seen; exec sleep 3600"]
    deploy:
      replicas: REPLICAS
      labels:
        tier: front
    networks: [back]
    secrets: [token]
    configs:
      - source: app
        target: /etc/app.conf
    environment:
      MODE: stacked
  client:
    image: busybox:latest
    command: sleep 3600
    networks: [back]
networks:
  back:
    driver: overlay
secrets:
  token:
    file: ./token.txt
configs:
  app:
    file: ./app.conf
"#;

/// Writes the compose file (with `replicas`) and its secret and config files; the file's
/// path.
fn compose(h: &Host, replicas: u32) -> String {
    let dir = h.root().join("stack");
    std::fs::create_dir_all(&dir).expect("stack dir");
    std::fs::write(dir.join("token.txt"), "stack-secret-7d1\n").expect("secret file");
    std::fs::write(dir.join("app.conf"), "stack-config-4c2\n").expect("config file");
    let file = dir.join("compose.yml");
    std::fs::write(&file, COMPOSE.replace("REPLICAS", &replicas.to_string()))
        .expect("compose file");
    file.to_str().expect("utf-8 path").to_owned()
}

/// `NAME|REPLICAS` of the stack's services.
fn services(m: &Host) -> BTreeSet<String> {
    let out = m.docker(&[
        "stack",
        "services",
        "--format",
        "{{.Name}}|{{.Replicas}}",
        "st",
    ]);
    swarm::stdout(&out).lines().map(str::to_owned).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The first container of `service`'s tasks on any host, with its host.
fn task_container<'a>(c: &'a Cluster, service: &str) -> Option<(&'a Host, String)> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    c.hosts().iter().find_map(|h| {
        let out = h.docker(&["ps", "-q", "--filter", &filter]);
        let id = swarm::stdout(&out).lines().next()?.to_owned();
        Some((h, id))
    })
}

/// What is left carrying the stack's label: services, networks, secrets, configs.
fn leftovers(m: &Host) -> Vec<String> {
    let label = "label=com.docker.stack.namespace=st";
    ["service", "network", "secret", "config"]
        .iter()
        .flat_map(|kind| {
            let out = m.docker(&[kind, "ls", "-q", "--filter", label]);
            swarm::stdout(&out)
                .lines()
                .map(|l| format!("{kind} {l}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_compose_stack_deploys_updates_and_is_removed() {
    let c = Cluster::new(3);
    for h in c.hosts() {
        h.import_busybox();
    }
    swarm::form(&c, 1, 2);
    let m = c.host(0);

    let file = compose(m, 2);
    let out = m.docker(&[
        "stack",
        "deploy",
        "-c",
        &file,
        "--resolve-image",
        "never",
        "st",
    ]);
    assert!(out.status.success(), "deploy: {}", swarm::stderr(&out));
    let up = eventually(Duration::from_secs(60), || {
        services(m) == set(&["st_client|1/1", "st_web|2/2"])
    });
    assert!(up, "{:?}", services(m));
    let stacks = m.docker_ok(&["stack", "ls", "--format", "{{.Name}}|{{.Services}}"]);
    assert_eq!(stacks, "st|2");
    let ps = m.docker_ok(&[
        "stack",
        "ps",
        "st",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(ps.lines().count(), 3, "{ps}");
    let labels = m.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{index .Spec.Labels \"tier\"}}|{{index .Spec.Labels \"com.docker.stack.namespace\"}}",
        "st_web",
    ]);
    assert_eq!(labels, "front|st");

    // The web tasks read the stack's secret and config; the client finds web by its compose
    // name: the VIP alone, and `tasks.web` lists both tasks.
    let (wh, web) = task_container(&c, "st_web").expect("a web task");
    let seen = eventually(Duration::from_secs(20), || {
        swarm::stdout(&wh.docker(&["exec", &web, "cat", "/tmp/seen"]))
            == "stack-secret-7d1\nstack-config-4c2"
    });
    assert!(
        seen,
        "{}",
        swarm::stdout(&wh.docker(&["exec", &web, "cat", "/tmp/seen"]))
    );
    let vip = m.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{range .Endpoint.VirtualIPs}}{{.Addr}}{{end}}",
        "st_web",
    ]);
    let vip = vip.split('/').next().unwrap_or_default().to_owned();
    let (ch, client) = task_container(&c, "st_client").expect("a client task");
    let by_alias = eventually(Duration::from_secs(20), || {
        resolve(ch, &client, "web") == set(&[&vip])
    });
    assert!(
        by_alias,
        "web → {:?}, VIP {vip}",
        resolve(ch, &client, "web")
    );
    assert_eq!(resolve(ch, &client, "st_web"), set(&[&vip]));
    let tasks = eventually(Duration::from_secs(20), || {
        resolve(ch, &client, "tasks.web").len() == 2
    });
    assert!(tasks, "tasks.web → {:?}", resolve(ch, &client, "tasks.web"));

    // Re-deploy with three replicas: the same service, updated.
    let id_before = m.docker_ok(&["service", "inspect", "--format", "{{.ID}}", "st_web"]);
    let file = compose(m, 3);
    let out = m.docker(&[
        "stack",
        "deploy",
        "-c",
        &file,
        "--resolve-image",
        "never",
        "st",
    ]);
    assert!(out.status.success(), "re-deploy: {}", swarm::stderr(&out));
    let scaled = eventually(Duration::from_secs(60), || {
        services(m) == set(&["st_client|1/1", "st_web|3/3"])
    });
    assert!(scaled, "{:?}", services(m));
    let id_after = m.docker_ok(&["service", "inspect", "--format", "{{.ID}}", "st_web"]);
    assert_eq!(id_before, id_after, "re-deploy replaced the service");

    // Removed: services, network, secret and config all go, in one `stack rm`.
    let out = m.docker(&["stack", "rm", "st"]);
    assert!(out.status.success(), "stack rm: {}", swarm::stderr(&out));
    assert!(leftovers(m).is_empty(), "{:?}", leftovers(m));
    let gone = eventually(Duration::from_secs(60), || {
        c.hosts().iter().all(|h| {
            let out = h.docker(&[
                "ps",
                "-aq",
                "--filter",
                "label=com.docker.stack.namespace=st",
            ]);
            swarm::stdout(&out).is_empty()
        })
    });
    assert!(gone, "stack containers left behind");
    let stacks = m.docker_ok(&["stack", "ls", "--format", "{{.Name}}"]);
    assert!(stacks.is_empty(), "{stacks}");
}
