//! Our own CLI drives a cluster end to end, as a user would: `berth secret|config` (create
//! from a file and from stdin, ls, inspect, rm, removal refused while in use), `berth
//! service` (create attached and detached, replicated with a secret and a config, global;
//! ls, ps, inspect --format, scale, update --env-add/--image/--secret-add, rollback, logs,
//! rm) and `berth stack` (deploy of a two-service compose file with a network, a secret and
//! a config; ls, services, ps; a re-deploy with a changed replica count; rm leaving nothing
//! with the stack's label). Only `berth` talks to the daemons here (the swarm itself is
//! formed with the harness's docker helpers).

use std::process::Output;
use std::time::Duration;

use berth_chaos_tests::{eventually, swarm, Cluster, Host};

const IMAGE: &str = "busybox:latest";
const LONG: Duration = Duration::from_secs(120);

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}

/// `berth args…` with a longer timeout (attached service commands wait for convergence).
fn berth_long(h: &Host, args: &[&str]) -> Output {
    let o = h.berth_with(args, None, &[], LONG);
    assert!(
        o.status.success(),
        "berth {args:?}: {}\n{}\n{}",
        out(&o),
        err(&o),
        h.log_tail()
    );
    o
}

/// `service ls` as `name replicas` lines.
fn service_replicas(h: &Host) -> Vec<String> {
    h.berth_ok(&["service", "ls", "--format", "{{.Name}} {{.Replicas}}"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The running task containers of `service` on every host: (host, container id).
fn task_containers<'a>(c: &'a Cluster, service: &str) -> Vec<(&'a Host, String)> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    c.hosts()
        .iter()
        .flat_map(|h| {
            h.berth_ok(&["ps", "-q", "--filter", &filter])
                .lines()
                .map(|id| (h, id.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn secrets_and_configs(c: &Cluster, id: &str) -> (String, String) {
    let m = c.host(0);
    let (s1, c1) = (format!("pw-{id}"), format!("conf-{id}"));
    // A secret from stdin, a config from a file with a label.
    let o = m.berth_with(
        &["secret", "create", &s1, "-"],
        Some(&format!("secret-{id}")),
        &[],
        LONG,
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o).len(),
        25,
        "secret create prints the ID: {}",
        out(&o)
    );
    let file = m.root().join("app.conf");
    std::fs::write(&file, format!("config-{id}\n")).expect("write config file");
    let file = file.to_str().expect("utf-8 path");
    m.berth_ok(&["config", "create", "--label", "tier=web", &c1, file]);
    let o = m.berth(&["config", "create", "other", "/nonexistent/file"]);
    assert!(
        !o.status.success() && err(&o).contains("no such file or directory"),
        "{}",
        err(&o)
    );

    let ls = m.berth_ok(&["secret", "ls"]);
    assert!(
        ls.starts_with("ID") && ls.contains("DRIVER") && ls.contains(&s1),
        "{ls}"
    );
    let name = m.berth_ok(&[
        "config",
        "ls",
        "--filter",
        "label=tier=web",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(name, c1);
    assert_eq!(m.berth_ok(&["secret", "ls", "-q"]).lines().count(), 1);
    assert_eq!(
        m.berth_ok(&["secret", "inspect", "--format", "{{.Spec.Name}}", &s1]),
        s1
    );
    let raw = m.berth_ok(&["secret", "inspect", &s1]);
    assert!(
        !raw.contains(&format!("secret-{id}")),
        "inspect shows a secret's data"
    );
    let pretty = m.berth_ok(&["config", "inspect", "--pretty", &c1]);
    assert!(pretty.contains(&format!("Data:\nconfig-{id}")), "{pretty}");
    let o = m.berth(&["secret", "inspect", "nosuch"]);
    assert!(
        !o.status.success() && err(&o).contains("not found"),
        "{}",
        err(&o)
    );
    (s1, c1)
}

fn services(c: &Cluster, id: &str, s1: &str, c1: &str) {
    let m = c.host(0);
    let secret = format!("source={s1},target=pw,mode=0400");
    let config = format!("source={c1},target=/etc/app.conf");
    let script = "cat /run/secrets/pw; echo; cat /etc/app.conf; sleep 3600";
    let o = berth_long(
        m,
        &[
            "service",
            "create",
            "--name",
            "app",
            "--replicas",
            "2",
            "--no-resolve-image",
            "--stop-grace-period",
            "1s",
            "--secret",
            &secret,
            "--config",
            &config,
            "--env",
            "A=1",
            IMAGE,
            "sh",
            "-c",
            script,
        ],
    );
    let text = out(&o);
    assert!(
        text.contains("overall progress: 2 out of 2 tasks"),
        "{text}"
    );
    assert!(text.ends_with("converged"), "{text}");
    m.berth_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "glob",
        "--mode",
        "global",
        "--no-resolve-image",
        "--stop-grace-period",
        "1s",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let ready = eventually(Duration::from_secs(60), || {
        let r = service_replicas(m);
        r.contains(&"app 2/2".to_string()) && r.contains(&"glob 3/3".to_string())
    });
    assert!(ready, "{:?}", service_replicas(m));
    let ls = m.berth_ok(&["service", "ls"]);
    let header: Vec<&str> = ls.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]);
    assert!(
        ls.contains("replicated") && ls.contains("global") && ls.contains(IMAGE),
        "{ls}"
    );
    let ps = m.berth_ok(&[
        "service",
        "ps",
        "--format",
        "{{.Name}} {{.DesiredState}}",
        "app",
    ]);
    assert_eq!(ps, "app.1 Running\napp.2 Running");
    assert_eq!(
        m.berth_ok(&["service", "ps", "-q", "glob"]).lines().count(),
        3
    );
    let f = "{{.Spec.Name}} {{.Spec.Mode.Replicated.Replicas}} {{index .Spec.TaskTemplate.ContainerSpec.Env 0}}";
    assert_eq!(
        m.berth_ok(&["service", "inspect", "--format", f, "app"]),
        "app 2 A=1"
    );

    // Every task reads its secret and its config; the logs say so with docker's prefix.
    for (h, ctr) in task_containers(c, "app") {
        assert_eq!(
            h.berth_ok(&["exec", &ctr, "cat", "/run/secrets/pw"]),
            format!("secret-{id}")
        );
    }
    let logs = m.berth_ok(&["service", "logs", "app"]);
    let prefixed = logs
        .lines()
        .filter(|l| l.starts_with("app.") && l.contains("@h") && l.contains("    | "))
        .count();
    assert!(prefixed >= 4, "{logs}");
    assert!(
        logs.contains(&format!("| secret-{id}")) && logs.contains(&format!("| config-{id}")),
        "{logs}"
    );

    // In use: removal refused, naming the service.
    for (kind, name) in [("secret", s1), ("config", c1)] {
        let o = m.berth(&[kind, "rm", name]);
        assert!(!o.status.success(), "{kind} in use was removed");
        assert!(
            err(&o).contains("in use") && err(&o).contains("app"),
            "{}",
            err(&o)
        );
    }
    let s2 = scale_update_rollback(c, id);
    assert_eq!(m.berth_ok(&["service", "rm", "app", "glob"]), "app\nglob");
    assert_eq!(m.berth_ok(&["service", "ls", "-q"]), "");
    m.berth_ok(&["secret", "rm", &s2]);
}

fn scale_update_rollback(c: &Cluster, id: &str) -> String {
    let m = c.host(0);
    let o = berth_long(m, &["service", "scale", "app=3"]);
    assert!(out(&o).starts_with("app scaled to 3"), "{}", out(&o));
    assert!(service_replicas(m).contains(&"app 3/3".to_string()));
    berth_long(
        m,
        &[
            "service",
            "update",
            "--env-add",
            "B=2",
            "--update-parallelism",
            "3",
            "app",
        ],
    );
    let env = m.berth_ok(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
        "app",
    ]);
    assert_eq!(env, r#"["A=1","B=2"]"#);
    for h in c.hosts() {
        h.berth_ok(&["tag", IMAGE, "busybox:v2"]);
    }
    berth_long(
        m,
        &[
            "service",
            "update",
            "--image",
            "busybox:v2",
            "--no-resolve-image",
            "app",
        ],
    );
    let image = m.berth_ok(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        "app",
    ]);
    assert_eq!(image, "busybox:v2");
    let s2 = format!("pw2-{id}");
    let o = m.berth_with(&["secret", "create", &s2, "-"], Some("second"), &[], LONG);
    assert!(o.status.success(), "{}", err(&o));
    let add = format!("source={s2},target=pw2");
    berth_long(m, &["service", "update", "--secret-add", &add, "app"]);
    let rolled = eventually(Duration::from_secs(60), || {
        let ctrs = task_containers(c, "app");
        ctrs.len() == 3
            && ctrs.iter().all(|(h, ctr)| {
                h.berth(&["exec", ctr, "cat", "/run/secrets/pw2"]).stdout == b"second"
            })
    });
    assert!(rolled, "--secret-add did not reach every task");
    // Rollback: back to the spec before --secret-add.
    let o = berth_long(m, &["service", "rollback", "app"]);
    assert!(out(&o).contains("converged"), "{}", out(&o));
    let secrets = m.berth_ok(&[
        "service",
        "inspect",
        "--format",
        "{{len .Spec.TaskTemplate.ContainerSpec.Secrets}}",
        "app",
    ]);
    assert_eq!(secrets, "1");
    // A bad flag value: docker's message and exit code 125, nothing sent.
    let o = m.berth(&["service", "update", "--update-order", "sideways", "app"]);
    assert_eq!(o.status.code(), Some(125), "{}", err(&o));
    assert!(err(&o).contains("--update-order"), "{}", err(&o));
    s2
}

const COMPOSE: &str = r#"
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "cat /run/secrets/token; echo; cat /etc/web.conf; sleep 3600"]
    environment:
      GREETING: ${GREETING:-hello}
    networks: [back]
    secrets: [token]
    configs:
      - source: webconf
        target: /etc/web.conf
    stop_grace_period: 1s
    deploy:
      replicas: REPLICAS
  worker:
    image: busybox:latest
    command: sleep 3600
    networks: [back]
    stop_grace_period: 1s
    deploy:
      mode: global
networks:
  back: {}
secrets:
  token:
    file: ./token.txt
configs:
  webconf:
    file: ./web.conf
"#;

fn stack(c: &Cluster, id: &str) {
    let m = c.host(0);
    let dir = m.root().join(format!("stack-{id}"));
    std::fs::create_dir_all(&dir).expect("stack dir");
    std::fs::write(dir.join("token.txt"), format!("token-{id}")).expect("token");
    std::fs::write(dir.join("web.conf"), "conf\n").expect("conf");
    let file = dir.join("compose.yml");
    std::fs::write(&file, COMPOSE.replace("REPLICAS", "2")).expect("compose");
    let file = file.to_str().expect("utf-8 path");
    let greeting = format!("hi-{id}");
    let deploy = [
        "stack",
        "deploy",
        "-c",
        file,
        "--resolve-image",
        "never",
        "st",
    ];
    let o = m.berth_with(&deploy, None, &[("GREETING", &greeting)], LONG);
    assert!(o.status.success(), "{}\n{}", out(&o), err(&o));
    for line in [
        "Creating network st_back",
        "Creating secret st_token",
        "Creating config st_webconf",
        "Creating service st_web",
        "Creating service st_worker",
    ] {
        assert!(out(&o).contains(line), "{}", out(&o));
    }
    let services = |want: &[&str]| {
        eventually(Duration::from_secs(60), || {
            let got = m.berth_ok(&[
                "stack",
                "services",
                "--format",
                "{{.Name}} {{.Replicas}}",
                "st",
            ]);
            got.lines().collect::<Vec<_>>() == want
        })
    };
    assert!(
        services(&["st_web 2/2", "st_worker 3/3"]),
        "{}",
        m.berth_ok(&["stack", "services", "st"])
    );
    let ls = m.berth_ok(&["stack", "ls"]);
    assert_eq!(
        ls.lines().collect::<Vec<_>>(),
        ["NAME      SERVICES", "st        2"]
    );
    let ps = m.berth_ok(&["stack", "ps", "--format", "{{.Name}}", "st"]);
    assert!(
        ps.contains("st_web.1") && ps.contains("st_web.2") && ps.lines().count() == 5,
        "{ps}"
    );
    let f = "{{json .Spec.Labels}} {{json .Spec.TaskTemplate.ContainerSpec.Env}} {{json .Spec.TaskTemplate.Networks}}";
    let spec = m.berth_ok(&["service", "inspect", "--format", f, "st_web"]);
    assert!(
        spec.contains(r#""com.docker.stack.namespace":"st""#)
            && spec.contains(r#""com.docker.stack.image":"busybox:latest""#),
        "{spec}"
    );
    assert!(
        spec.contains(&format!("GREETING=hi-{id}")) && spec.contains(r#""Aliases":["web"]"#),
        "{spec}"
    );
    for (h, ctr) in task_containers(c, "st_web") {
        assert_eq!(
            h.berth_ok(&["exec", &ctr, "cat", "/run/secrets/token"]),
            format!("token-{id}")
        );
    }

    // Re-deploy with three replicas: the service is updated, not re-created.
    std::fs::write(file, COMPOSE.replace("REPLICAS", "3")).expect("compose");
    let o = m.berth_with(&deploy, None, &[("GREETING", &greeting)], LONG);
    assert!(
        o.status.success() && out(&o).contains("Updating service st_web (id: "),
        "{}\n{}",
        out(&o),
        err(&o)
    );
    assert!(
        services(&["st_web 3/3", "st_worker 3/3"]),
        "{}",
        m.berth_ok(&["stack", "services", "st"])
    );

    let o = m.berth_with(&["stack", "rm", "st"], None, &[], LONG);
    assert!(o.status.success(), "{}\n{}", out(&o), err(&o));
    assert!(
        out(&o).contains("Removing service st_web") && out(&o).contains("Removing network st_back"),
        "{}",
        out(&o)
    );
    let label = "label=com.docker.stack.namespace=st";
    for kind in ["service", "secret", "config", "network"] {
        assert_eq!(
            m.berth_ok(&[kind, "ls", "-q", "--filter", label]),
            "",
            "{kind}s left"
        );
    }
    // The removed services' tasks go once they have stopped.
    let mut last = String::new();
    let gone = eventually(Duration::from_secs(60), || {
        let o = m.berth(&["stack", "ps", "st"]);
        last = format!("{}{}", out(&o), err(&o));
        err(&o).contains("Nothing found in stack: st")
    });
    assert!(gone, "{last}");
}

#[test]
fn berth_drives_secrets_configs_services_and_stacks() {
    let c = Cluster::new(3);
    for h in c.hosts() {
        h.import_busybox();
    }
    swarm::form(&c, 1, 2);
    let id = c.run_id().to_owned();
    let (s1, c1) = secrets_and_configs(&c, &id);
    services(&c, &id, &s1, &c1);
    let m = c.host(0);
    m.berth_ok(&["secret", "rm", &s1]);
    m.berth_ok(&["config", "rm", &c1]);
    assert_eq!(m.berth_ok(&["secret", "ls", "-q"]), "");
    stack(&c, &id);
}
