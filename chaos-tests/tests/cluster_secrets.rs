//! Secrets and configs reach a service's tasks on every node, the way Swarm hands them out:
//! secrets under /run/secrets on a tmpfs with the requested owner and mode, configs at their
//! target (templated), never on a node's disk, never in inspect output, sealed in the Raft
//! files; `--secret-rm/--secret-add` roll the tasks; in-use objects cannot be removed; and
//! a task's files go when the task does.

use std::time::Duration;

use berth_chaos_tests::{eventually, swarm, Cluster, Host};

const IMAGE: &str = "busybox:latest";

/// The running task containers of `service` on `h`.
fn containers(h: &Host, service: &str) -> Vec<String> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    swarm::stdout(&h.docker(&["ps", "-q", "--filter", &filter]))
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What `cmd` printed in the container, trimmed.
fn exec(h: &Host, id: &str, cmd: &[&str]) -> String {
    let mut args = vec!["exec", id];
    args.extend_from_slice(cmd);
    let o = h.docker(&args);
    swarm::stdout(&o) + &swarm::stderr(&o)
}

/// Whether any regular file under `dir` contains `needle` (grep, not following mounts).
fn on_disk(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let o = std::process::Command::new("grep")
        .args(["-r", "-l", "-F", "-s", "--binary-files=text", "-e", needle])
        .arg(dir)
        .output()
        .expect("run grep");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Task-data tmpfs mounts of host `h` still mounted.
fn task_mounts(h: &Host) -> usize {
    let prefix = h.root().join("run/task-data/");
    let prefix = prefix.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|mp| mp.starts_with(&prefix))
        })
        .count()
}

#[test]
fn secrets_and_configs_reach_every_task_and_nothing_leaks() {
    let c = Cluster::new(3);
    for h in c.hosts() {
        h.import_busybox();
    }
    swarm::form(&c, 1, 2);
    let m = c.host(0);
    let id = c.run_id().to_owned();
    let secret = format!("s3cr3t-{id}-bytes");
    let secret2 = format!("other-{id}-bytes");
    let (s1, s2, c1) = (format!("db-{id}"), format!("db2-{id}"), format!("cfg-{id}"));

    // Bad input first: over 500 KB, duplicate name.
    let big = "x".repeat(500 * 1024 + 1);
    let o = m.docker_with_input(&["secret", "create", "big", "-"], &big);
    assert!(!o.status.success(), "a 500 KB+ secret was accepted");
    let o = m.docker_with_input(&["secret", "create", &s1, "-"], "first");
    assert!(o.status.success(), "{}", swarm::stderr(&o));
    let o = m.docker_with_input(&["secret", "create", &s1, "-"], "again");
    assert!(!o.status.success(), "duplicate secret name accepted");
    assert!(
        swarm::stderr(&o).contains("already exists"),
        "{}",
        swarm::stderr(&o)
    );
    m.docker_ok(&["secret", "rm", &s1]);

    let o = m.docker_with_input(&["secret", "create", &s1, "-"], &secret);
    assert!(o.status.success(), "{}", swarm::stderr(&o));
    let o = m.docker_with_input(&["secret", "create", &s2, "-"], &secret2);
    assert!(o.status.success(), "{}", swarm::stderr(&o));
    let template = "svc={{.Service.Name}} node={{.Node.ID}} pw={{secret \"db_pw\"}}\n";
    let o = m.docker_with_input(
        &["config", "create", "--template-driver", "golang", &c1, "-"],
        template,
    );
    assert!(o.status.success(), "{}", swarm::stderr(&o));

    // An unknown secret in a service spec: 400 naming it.
    let body = format!(
        r#"{{"Name":"bad-{id}","TaskTemplate":{{"ContainerSpec":{{"Image":"{IMAGE}","Secrets":[{{"SecretID":"nosuchsecret","SecretName":"nosuch","File":{{"Name":"x","UID":"0","GID":"0","Mode":292}}}}]}}}}}}"#
    );
    let (code, resp) = m.api_post("/services/create", &body).expect("create");
    assert_eq!(code, 400, "{resp}");
    assert!(resp.contains("nosuch"), "{resp}");

    let secret_ref = format!("source={s1},target=db_pw,uid=100,gid=101,mode=0400");
    let config_ref = format!("source={c1},target=/etc/app.conf,mode=0440");
    let o = m.docker_timeout(
        &[
            "service",
            "create",
            "--name",
            "app",
            "--replicas",
            "3",
            "--no-resolve-image",
            "--stop-grace-period",
            "1s",
            "--secret",
            &secret_ref,
            "--config",
            &config_ref,
            IMAGE,
            "sleep",
            "3600",
        ],
        Duration::from_secs(90),
    );
    assert!(
        o.status.success(),
        "service create: {}\n{}",
        swarm::stderr(&o),
        m.log_tail()
    );
    let one_each = eventually(Duration::from_secs(60), || {
        c.hosts().iter().all(|h| containers(h, "app").len() == 1)
    });
    assert!(one_each, "one task per node");

    for h in c.hosts() {
        let ctr = &containers(h, "app")[0];
        assert_eq!(
            exec(h, ctr, &["cat", "/run/secrets/db_pw"]),
            secret,
            "{}",
            h.hostname()
        );
        assert_eq!(
            exec(h, ctr, &["stat", "-c", "%a %u %g", "/run/secrets/db_pw"]).trim(),
            "400 100 101"
        );
        let node = h.docker_ok(&["info", "--format", "{{.Swarm.NodeID}}"]);
        assert_eq!(
            exec(h, ctr, &["cat", "/etc/app.conf"]),
            format!("svc=app node={node} pw={secret}"),
            "templated config on {}",
            h.hostname()
        );
        assert_eq!(
            exec(h, ctr, &["stat", "-c", "%a", "/etc/app.conf"]).trim(),
            "440"
        );
        // The secret is in the container only, not on the node's disk.
        let found = on_disk(&h.root().join("data"), &secret);
        assert!(
            found.is_empty(),
            "secret bytes on {}'s disk: {found:?}",
            h.hostname()
        );
        let inspect = h.docker_ok(&["inspect", ctr]);
        assert!(
            !inspect.contains(&secret),
            "container inspect shows the secret"
        );
    }
    for args in [
        vec!["service", "inspect", "app"],
        vec!["secret", "inspect", s1.as_str()],
    ] {
        let out = m.docker_ok(&args);
        assert!(!out.contains(&secret), "{args:?} shows the secret");
    }
    let raft = std::fs::read(m.root().join("data/swarm/raft.redb")).expect("read raft.redb");
    assert!(
        !raft.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the Raft file holds the plaintext"
    );

    // In use: removal refused, naming the service.
    for (kind, name) in [("secret", &s1), ("config", &c1)] {
        let o = m.docker(&[kind, "rm", name]);
        assert!(!o.status.success(), "{kind} in use was removed");
        assert!(swarm::stderr(&o).contains("app"), "{}", swarm::stderr(&o));
    }

    // --secret-rm/--secret-add roll the tasks: the new ones see only the new secret.
    let add = format!("source={s2},target=other");
    m.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--update-parallelism",
        "3",
        "--config-rm",
        &c1,
        "--secret-rm",
        &s1,
        "--secret-add",
        &add,
        "app",
    ]);
    let rolled = eventually(Duration::from_secs(60), || {
        c.hosts().iter().all(|h| {
            let ids = containers(h, "app");
            ids.len() == 1
                && exec(h, &ids[0], &["cat", "/run/secrets/other"]) == secret2
                && exec(h, &ids[0], &["ls", "/run/secrets"]).trim() == "other"
        })
    });
    assert!(rolled, "the update did not roll the secrets");
    m.docker_ok(&["secret", "rm", &s1]);
    m.docker_ok(&["config", "rm", &c1]);

    // The task files go with the tasks.
    m.docker_ok(&["service", "rm", "app"]);
    let gone = eventually(Duration::from_secs(30), || {
        c.hosts().iter().all(|h| task_mounts(h) == 0)
    });
    assert!(
        gone,
        "task-data mounts left: {:?}",
        c.hosts().iter().map(task_mounts).collect::<Vec<_>>()
    );
    m.docker_ok(&["secret", "rm", &s2]);
}
