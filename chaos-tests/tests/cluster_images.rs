//! Images in the cluster, on 3 nodes (1 manager, 2 workers):
//! - an image that is in no reachable registry but was loaded on one node (a worker) runs
//!   on all three: the other nodes fetch it from that peer over the swarm's mutual TLS;
//! - `--with-registry-auth`: a private registry (htpasswd basic auth) serves an image no
//!   node has; without the flag the tasks are rejected for want of credentials, with it
//!   every node pulls, and the credentials never show in `service inspect`.
//!
//! The registry: Debian's docker-registry on 127.0.0.1 inside every host's namespace, all
//! three on the same storage directory, so each node sees the same registry at the same
//! (loopback, hence plain-HTTP) address.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_chaos_tests::{busybox_tar, eventually, swarm, Cluster, Host};

const REGISTRY: &str = "/usr/bin/docker-registry";
const USER: &str = "deployer";
const PASSWORD: &str = "pw-5e1c0f";

/// Registry processes, killed on drop.
struct Registries(Vec<Child>);

impl Drop for Registries {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn bcrypt(password: &str) -> String {
    let script =
        "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))";
    let o = Command::new("python3")
        .args(["-W", "ignore", "-c", script, password])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// One registry per host on 127.0.0.1:`port`, sharing storage under the first host's root.
fn registries(c: &Cluster, port: u16) -> Registries {
    let dir = c.host(0).root().join("registry");
    std::fs::create_dir_all(dir.join("storage")).expect("registry dir");
    std::fs::write(
        dir.join("htpasswd"),
        format!("{USER}:{}\n", bcrypt(PASSWORD)),
    )
    .expect("htpasswd");
    let cfg = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: berth-test\n\
         auth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n",
        storage = dir.join("storage").display(),
        htpasswd = dir.join("htpasswd").display(),
    );
    std::fs::write(dir.join("config.yml"), cfg).expect("registry config");
    let mut out = Registries(Vec::new());
    for h in c.hosts() {
        let log = std::fs::File::create(h.root().join("registry.log")).expect("registry log");
        let child = h
            .namespaced(REGISTRY)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("docker-registry (scripts/deps installs it)");
        out.0.push(child);
    }
    for h in c.hosts() {
        let probe = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
        let up = eventually(Duration::from_secs(20), || {
            h.namespaced("bash")
                .args(["-c", &probe])
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(up, "{}: registry did not start", h.hostname());
    }
    out
}

/// `image` imported from the busybox tar on `h`.
fn import(h: &Host, image: &str) {
    let tar = busybox_tar(h.root());
    h.docker_ok(&[
        "import",
        "-c",
        "CMD [\"/bin/sh\"]",
        tar.to_str().expect("utf-8 path"),
        image,
    ]);
}

/// (hostname, current state, error) of `service`'s tasks meant to run.
fn tasks(m: &Host, service: &str) -> Vec<(String, String, String)> {
    let out = m.docker(&[
        "service",
        "ps",
        "--no-trunc",
        "--format",
        "{{.Node}}|{{.CurrentState}}|{{.Error}}",
        service,
    ]);
    swarm::stdout(&out)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f.len() == 3).then(|| (f[0].to_owned(), f[1].to_owned(), f[2].to_owned()))
        })
        .collect()
}

/// Whether `service` runs one task on each of `c`'s hosts.
fn on_every_node(c: &Cluster, service: &str) -> bool {
    let t = tasks(c.host(0), service);
    let mut nodes: Vec<&str> = t
        .iter()
        .filter(|t| t.1.starts_with("Running"))
        .map(|t| t.0.as_str())
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes.len() == c.hosts().len()
}

fn create(m: &Host, name: &str, image: &str, extra: &[&str]) {
    let mut args = vec![
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        name,
        "--replicas",
        "3",
        "--replicas-max-per-node",
        "1",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "sleep", "3600"]);
    m.docker_ok(&args);
}

#[test]
fn images_reach_every_node_from_a_peer_or_a_private_registry() {
    let c = Cluster::new(3);
    swarm::form(&c, 1, 2);
    let m = c.host(0);

    // Loaded on one worker only, in no registry (nothing listens on that loopback port).
    let only = "127.0.0.1:5999/only-here:1";
    import(c.host(2), only);
    create(m, "peer", only, &[]);
    let spread = eventually(Duration::from_secs(90), || on_every_node(&c, "peer"));
    assert!(spread, "{:?}", tasks(m, "peer"));
    for h in c.hosts() {
        let id = h.docker(&["image", "inspect", "--format", "{{.Id}}", only]);
        assert!(id.status.success(), "{}: image not fetched", h.hostname());
    }
    m.docker_ok(&["service", "rm", "peer"]);

    // A private registry: the image is pushed, then removed from the node that pushed it.
    let port = 20000 + (std::process::id() % 30000) as u16;
    let _registries = registries(&c, port);
    let private = format!("127.0.0.1:{port}/app:1");
    let registry = format!("127.0.0.1:{port}");
    import(m, &private);
    m.docker_with_input(
        &["login", "-u", USER, "--password-stdin", &registry],
        PASSWORD,
    );
    let pushed = m.docker(&["push", &private]);
    assert!(pushed.status.success(), "push: {}", swarm::stderr(&pushed));
    m.docker_ok(&["rmi", &private]);

    create(m, "noauth", &private, &[]);
    let refused = eventually(Duration::from_secs(60), || {
        let t = tasks(m, "noauth");
        !t.is_empty()
            && t.iter()
                .all(|t| !t.1.starts_with("Running") && !t.2.is_empty())
    });
    assert!(refused, "ran without credentials: {:?}", tasks(m, "noauth"));
    let why = tasks(m, "noauth")
        .into_iter()
        .map(|t| t.2.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        why.contains("auth") || why.contains("denied"),
        "not an authentication error: {why}"
    );
    m.docker_ok(&["service", "rm", "noauth"]);

    create(m, "withauth", &private, &["--with-registry-auth"]);
    let pulled = eventually(Duration::from_secs(90), || on_every_node(&c, "withauth"));
    assert!(pulled, "{:?}", tasks(m, "withauth"));
    let shown = m.docker_ok(&["service", "inspect", "withauth"]);
    assert!(
        !shown.contains("RegistryAuth") && !shown.contains(PASSWORD),
        "credentials shown: {shown}"
    );
    // An update without the flag keeps the credentials (registryAuthFrom=spec): with the
    // image untagged on every node, the new tasks must pull again.
    for h in c.hosts() {
        h.docker_ok(&["rmi", "-f", &private]);
    }
    m.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--env-add",
        "V=2",
        "withauth",
    ]);
    let updated = eventually(Duration::from_secs(90), || {
        on_every_node(&c, "withauth")
            && tasks(m, "withauth")
                .iter()
                .filter(|t| t.1.starts_with("Running"))
                .count()
                == 3
            && m.docker_ok(&[
                "service",
                "inspect",
                "--format",
                "{{.UpdateStatus.State}}",
                "withauth",
            ]) == "completed"
    });
    assert!(updated, "{:?}", tasks(m, "withauth"));
    m.docker_ok(&["service", "rm", "withauth"]);
}
