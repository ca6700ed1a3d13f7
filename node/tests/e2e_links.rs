//! Legacy links (`docker run --link`) with the stock docker CLI against a real berthd: the
//! linking container's environment and /etc/hosts, `HostConfig.Links` in inspect, `rm --link`,
//! dockerd's errors, and `--link` on a user-defined network as a DNS alias only the linking
//! container resolves.

mod common;

use common::{http, stderr, stdout, Daemon};

/// The address a container has on a network.
fn ip_on(d: &Daemon, name: &str, net: &str) -> String {
    d.ok(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        name,
    ])
    .trim()
    .to_owned()
}

#[test]
fn links_on_the_default_bridge() {
    let mut d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "-e",
        "PASSWORD=s3cret",
        "--expose",
        "80",
        "--expose",
        "53/udp",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let db_ip = ip_on(&d, "db", "bridge");
    let db_id = d.ok(&["inspect", "-f", "{{.Id}}", "db"]).trim().to_owned();
    d.ok(&[
        "run", "-d", "--name", "web", "--link", "db:my-db", "busybox", "sleep", "300",
    ]);

    let env = d.ok(&["exec", "web", "env"]);
    for want in [
        format!("MY_DB_PORT=udp://{db_ip}:53"),
        format!("MY_DB_PORT_80_TCP=tcp://{db_ip}:80"),
        format!("MY_DB_PORT_80_TCP_ADDR={db_ip}"),
        "MY_DB_PORT_80_TCP_PORT=80".to_owned(),
        "MY_DB_PORT_80_TCP_PROTO=tcp".to_owned(),
        "MY_DB_PORT_53_UDP_PROTO=udp".to_owned(),
        "MY_DB_NAME=/web/my-db".to_owned(),
        "MY_DB_ENV_PASSWORD=s3cret".to_owned(),
    ] {
        assert!(
            env.lines().any(|l| l == want),
            "{want} missing from:\n{env}"
        );
    }
    assert!(
        !env.contains("MY_DB_ENV_PATH"),
        "PATH is not passed on: {env}"
    );

    let hosts = d.ok(&["exec", "web", "cat", "/etc/hosts"]);
    let line = format!("{db_ip}\tmy-db {} db", &db_id[..12]);
    assert!(
        hosts.lines().any(|l| l == line),
        "{line:?} not in:\n{hosts}"
    );
    // The variables lead to the linked container (busybox-static's resolver cannot read
    // /etc/hosts, so the names are checked in the file above).
    let page = d.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        r#"printf "GET /hostname HTTP/1.0\r\n\r\n" | nc $MY_DB_PORT_80_TCP_ADDR $MY_DB_PORT_80_TCP_PORT"#,
    ]);
    assert!(page.trim_end().ends_with(&db_id[..12]), "{page}");

    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "web"])
            .trim(),
        r#"["/db:/web/my-db"]"#
    );
    // ps lists the link's name after the linked container's own (the CLI shows it with
    // --no-trunc), and the link follows renames of either side.
    let names = d.ok(&[
        "ps",
        "--no-trunc",
        "--filter",
        &format!("id={db_id}"),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(names.trim(), "db,web/my-db");
    d.ok(&["rename", "web", "web2"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "web2"])
            .trim(),
        r#"["/db:/web2/my-db"]"#
    );
    d.ok(&["rename", "web2", "web"]);
    // The alias equal to the name: the name is not repeated.
    let hosts = d.ok(&[
        "run",
        "--rm",
        "--link",
        "db",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    let line = format!("{db_ip}\tdb {}", &db_id[..12]);
    assert!(
        hosts.lines().any(|l| l == line),
        "{line:?} not in:\n{hosts}"
    );

    // dockerd's error for a missing container: 400 through the API, exit 125 from the CLI.
    let o = d.docker(&["run", "--link", "nope:x", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("could not get container for nope"),
        "{}",
        stderr(&o)
    );
    let (status, body) = http(
        &d,
        "POST",
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Links":["nope:x"]}}"#,
    );
    assert_eq!(status, 400, "{body}");
    let o = d.docker(&[
        "run",
        "--network",
        "host",
        "--link",
        "db",
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&o).contains("host type networking can't be used with links"),
        "{}",
        stderr(&o)
    );

    // A stopped child stops the linking container from starting, with dockerd's message.
    d.ok(&["create", "--name", "stopped", "busybox", "true"]);
    let o = d.docker(&["run", "--link", "stopped:s", "busybox", "true"]);
    assert!(
        stderr(&o).contains("Cannot link to a non running container: /stopped AS"),
        "{}",
        stderr(&o)
    );

    // Links are in the record: a kill -9 of berthd keeps them, and the restored
    // container's variables.
    d.kill9();
    d.spawn();
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "web"])
            .trim(),
        r#"["/db:/web/my-db"]"#
    );
    let env = d.ok(&["exec", "web", "env"]);
    assert!(env.contains("MY_DB_NAME=/web/my-db"), "{env}");

    // rm --link forgets the link (the linked container stays).
    d.ok(&["rm", "--link", "/web/my-db"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "web"])
            .trim(),
        "null"
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "db"]).trim(),
        "true"
    );
    let o = d.docker(&["rm", "--link", "/web/my-db"]);
    assert!(!o.status.success(), "a second rm --link finds nothing");
    d.ok(&["restart", "-t", "0", "web"]);
    let env = d.ok(&["exec", "web", "env"]);
    assert!(!env.contains("MY_DB_"), "link gone after restart: {env}");
    d.ok(&["rm", "-f", "web", "db", "stopped"]);
}

#[test]
fn links_on_a_user_network_are_dns_aliases() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&["network", "create", "ln"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "ln",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "ln",
        "--link",
        "db:dbalias",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "ln",
        "busybox",
        "sleep",
        "300",
    ]);
    let db_ip = ip_on(&d, "db", "ln");
    let lookup = |who: &str| {
        let o = d.docker(&["exec", who, "nslookup", "-type=a", "dbalias", "127.0.0.11"]);
        stdout(&o)
    };
    let seen = lookup("web");
    assert!(seen.contains(&db_ip), "web resolves its link alias: {seen}");
    let seen = lookup("other");
    assert!(
        !seen.contains(&db_ip),
        "only the linking container does: {seen}"
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks.ln.Links}}",
            "web"
        ])
        .trim(),
        r#"["db:dbalias"]"#
    );
    d.ok(&["rm", "-f", "web", "db", "other"]);
    d.ok(&["network", "rm", "ln"]);
}
