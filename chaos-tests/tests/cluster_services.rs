//! Services as a docker user drives them, on 3 nodes (1 manager, 2 workers), with the stock
//! docker CLI: replicas spread evenly, scale up and down, drain, a worker's kill -9 (its tasks
//! run elsewhere, and no duplicates once it returns), rolling update start-first, automatic
//! rollback of a failing update, a global service, constraints, and removal. What runs is
//! checked on each host's own engine (`docker ps` there), not only in the managers' view.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth_chaos_tests::{consistently, eventually, swarm, Cluster, Host};

const IMAGE: &str = "busybox:latest";

/// Running task containers of `service` on each host, by hostname.
fn running_per_host(c: &Cluster, service: &str) -> BTreeMap<String, usize> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    c.hosts()
        .iter()
        .filter(|h| h.is_running())
        .map(|h| {
            let out = h.docker(&["ps", "-q", "--filter", &filter]);
            let n = swarm::stdout(&out)
                .lines()
                .filter(|l| !l.is_empty())
                .count();
            (h.hostname().to_owned(), n)
        })
        .collect()
}

fn total(m: &BTreeMap<String, usize>) -> usize {
    m.values().sum()
}

/// `service ps` rows meant to run: (name, node, desired, current).
fn tasks(m: &Host, service: &str) -> Vec<(String, String, String, String)> {
    let out = m.docker(&[
        "service",
        "ps",
        "--no-trunc",
        "--format",
        "{{.Name}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}",
        service,
    ]);
    swarm::stdout(&out)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f.len() == 4).then(|| {
                (
                    f[0].to_owned(),
                    f[1].to_owned(),
                    f[2].to_owned(),
                    f[3].to_owned(),
                )
            })
        })
        .collect()
}

fn running_tasks(m: &Host, service: &str) -> usize {
    tasks(m, service)
        .iter()
        .filter(|t| t.2 == "Running" && t.3.starts_with("Running"))
        .count()
}

fn inspect(m: &Host, service: &str, format: &str) -> String {
    m.docker_ok(&["service", "inspect", "--format", format, service])
}

#[test]
fn services_spread_scale_survive_failures_and_roll() {
    let c = Cluster::new(3);
    for h in c.hosts() {
        h.import_busybox();
    }
    swarm::form(&c, 1, 2);
    let (m, w1, w2) = (c.host(0), c.host(1), c.host(2));

    // Attached create: the CLI follows the tasks until they converge.
    let out = m.docker_timeout(
        &[
            "service",
            "create",
            "--name",
            "web",
            "--replicas",
            "6",
            "--no-resolve-image",
            "--update-parallelism",
            "2",
            "--update-order",
            "start-first",
            "--update-delay",
            "200ms",
            "--stop-grace-period",
            "1s",
            IMAGE,
            "sleep",
            "3600",
        ],
        Duration::from_secs(90),
    );
    assert!(
        out.status.success(),
        "service create: {}\n{}",
        swarm::stderr(&out),
        m.log_tail()
    );
    let spread = |want: usize| {
        eventually(Duration::from_secs(60), || {
            let per = running_per_host(&c, "web");
            per.len() == 3 && per.values().all(|n| *n == want)
        })
    };
    assert!(
        spread(2),
        "6 replicas on 3 nodes: {:?}",
        running_per_host(&c, "web")
    );
    assert_eq!(running_tasks(m, "web"), 6, "{:?}", tasks(m, "web"));

    m.docker_ok(&["service", "scale", "--detach", "web=12"]);
    assert!(spread(4), "12 replicas: {:?}", running_per_host(&c, "web"));
    m.docker_ok(&["service", "scale", "--detach", "web=3"]);
    assert!(spread(1), "3 replicas: {:?}", running_per_host(&c, "web"));

    // Drain a worker: its task moves, none is lost.
    m.docker_ok(&["node", "update", "--availability", "drain", w1.hostname()]);
    let moved = eventually(Duration::from_secs(60), || {
        let per = running_per_host(&c, "web");
        per.get(w1.hostname()) == Some(&0) && total(&per) == 3
    });
    assert!(moved, "drain: {:?}", running_per_host(&c, "web"));
    m.docker_ok(&["node", "update", "--availability", "active", w1.hostname()]);

    // kill -9 a worker's berthd: its tasks run elsewhere within a few heartbeats.
    let on_w2 = running_per_host(&c, "web")[w2.hostname()];
    assert!(on_w2 > 0, "{:?}", running_per_host(&c, "web"));
    w2.kill9();
    let t0 = Instant::now();
    let replaced = eventually(Duration::from_secs(30), || {
        running_tasks(m, "web") == 3
            && tasks(m, "web")
                .iter()
                .filter(|t| t.2 == "Running")
                .all(|t| t.1 != w2.hostname())
    });
    assert!(replaced, "after kill -9: {:?}", tasks(m, "web"));
    eprintln!("tasks of a killed worker replaced in {:?}", t0.elapsed());
    // It comes back: its old containers are stopped, nothing runs twice.
    w2.start();
    let settled = eventually(Duration::from_secs(60), || {
        total(&running_per_host(&c, "web")) == 3
    });
    assert!(
        settled,
        "after the worker returned: {:?}",
        running_per_host(&c, "web")
    );
    let stable = consistently(Duration::from_secs(4), || {
        total(&running_per_host(&c, "web")) == 3
    });
    assert!(stable, "duplicates: {:?}", running_per_host(&c, "web"));

    // Rolling update, start-first, parallelism 2: every task replaced, update completed.
    m.docker_ok(&["service", "update", "--detach", "--env-add", "V=2", "web"]);
    let rolled = eventually(Duration::from_secs(90), || {
        inspect(m, "web", "{{.UpdateStatus.State}}") == "completed" && running_tasks(m, "web") == 3
    });
    assert!(
        rolled,
        "update: {} {:?}",
        inspect(m, "web", "{{json .UpdateStatus}}"),
        tasks(m, "web")
    );
    // The old tasks stop shortly after (start-first: once their replacements run).
    let filter = "label=com.docker.swarm.service.name=web";
    let envs = || -> Vec<String> {
        c.hosts()
            .iter()
            .flat_map(|h| {
                swarm::stdout(&h.docker(&["ps", "-q", "--filter", filter]))
                    .lines()
                    .map(|id| h.docker_ok(&["inspect", "--format", "{{json .Config.Env}}", id]))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let updated = eventually(Duration::from_secs(30), || {
        let e = envs();
        e.len() == 3 && e.iter().all(|x| x.contains("V=2"))
    });
    assert!(updated, "old tasks still run: {:?}", envs());

    // A failing update rolls back by itself.
    m.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--update-failure-action",
        "rollback",
        "--update-monitor",
        "2s",
        "--args",
        "sh -c 'exit 3'",
        "web",
    ]);
    let rolled_back = eventually(Duration::from_secs(90), || {
        inspect(m, "web", "{{.UpdateStatus.State}}") == "rollback_completed"
            && running_tasks(m, "web") == 3
    });
    assert!(
        rolled_back,
        "rollback: {} {:?}",
        inspect(m, "web", "{{json .UpdateStatus}}"),
        tasks(m, "web")
    );
    assert_eq!(
        inspect(m, "web", "{{json .Spec.TaskTemplate.ContainerSpec.Args}}"),
        r#"["sleep","3600"]"#
    );

    // A global service: one task per node; constraints keep it off the manager.
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "agent",
        "--mode",
        "global",
        "--no-resolve-image",
        "--constraint",
        "node.role==worker",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let global = eventually(Duration::from_secs(60), || {
        let per = running_per_host(&c, "agent");
        per.get(m.hostname()) == Some(&0)
            && per.get(w1.hostname()) == Some(&1)
            && per.get(w2.hostname()) == Some(&1)
    });
    assert!(global, "global: {:?}", running_per_host(&c, "agent"));

    // Bad input: a duplicate name, a constraint without an operator.
    let dup = m.docker(&[
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        "web",
        IMAGE,
    ]);
    assert!(!dup.status.success());
    assert!(
        swarm::stderr(&dup).contains("already exists"),
        "{}",
        swarm::stderr(&dup)
    );
    let bad = m.docker(&[
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--constraint",
        "node.role=manager",
        IMAGE,
    ]);
    assert!(!bad.status.success(), "a bad constraint was accepted");
    assert!(
        swarm::stderr(&bad).contains("operator"),
        "{}",
        swarm::stderr(&bad)
    );

    // Removal: every task container goes, on every node.
    m.docker_ok(&["service", "rm", "web", "agent"]);
    let gone = eventually(Duration::from_secs(60), || {
        c.hosts().iter().all(|h| {
            swarm::stdout(&h.docker(&["ps", "-aq", "--filter", "label=com.docker.swarm.task.id"]))
                .is_empty()
        })
    });
    assert!(gone, "task containers left after service rm");
    assert_eq!(m.docker_ok(&["service", "ls", "-q"]), "");
}
