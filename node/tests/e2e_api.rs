//! The API's edges against a real berthd: status codes for bad input, restart policies,
//! following logs, streaming events, wait conditions.

mod common;

use std::time::Duration;

use common::{eventually, http, stderr, Daemon};

#[test]
fn bad_input_gets_docker_status_codes() {
    let d = Daemon::start();
    d.busybox();
    let (st, body) = http(&d, "POST", "/v1.45/containers/create", "{not json");
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("\"message\""));
    assert_eq!(http(&d, "GET", "/containers/nope/json", "").0, 404);
    assert_eq!(http(&d, "GET", "/v1.41/images/nope:1/json", "").0, 404);
    assert_eq!(http(&d, "GET", "/exec/nope/json", "").0, 404);
    assert_eq!(
        http(&d, "POST", "/containers/create", r#"{"Image":"nope:1"}"#).0,
        404
    );
    assert_eq!(
        http(&d, "POST", "/containers/create", r#"{"Image":"BusyBox"}"#).0,
        400
    );
    assert_eq!(
        http(
            &d,
            "POST",
            "/containers/create?name=bad%20name",
            r#"{"Image":"busybox"}"#
        )
        .0,
        400
    );
    let (st, body) = http(
        &d,
        "POST",
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Memory":100}}"#,
    );
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        http(
            &d,
            "POST",
            "/containers/create?name=dup1",
            r#"{"Image":"busybox","Cmd":["sleep","1000"]}"#
        )
        .0,
        201
    );
    assert_eq!(
        http(
            &d,
            "POST",
            "/containers/create?name=dup1",
            r#"{"Image":"busybox"}"#
        )
        .0,
        409
    );
    assert_eq!(
        http(&d, "POST", "/containers/dup1/kill?signal=NOPE", "").0,
        400
    );
    assert_eq!(http(&d, "POST", "/containers/dup1/kill", "").0, 409);
    assert_eq!(http(&d, "POST", "/containers/dup1/stop", "").0, 304);
    assert_eq!(http(&d, "POST", "/containers/dup1/start", "").0, 204);
    assert_eq!(http(&d, "POST", "/containers/dup1/start", "").0, 304);
    assert_eq!(http(&d, "DELETE", "/containers/dup1", "").0, 409);
    assert_eq!(http(&d, "DELETE", "/containers/dup1?force=1", "").0, 204);
    assert_eq!(http(&d, "GET", "/v1.99/info", "").0, 400);
    assert_eq!(http(&d, "GET", "/v1.12/info", "").0, 400);
    assert_eq!(http(&d, "GET", "/no/such/route", "").0, 404);
    // A truncated or non-tar import registers nothing.
    let before = d.ok(&["images", "-q"]).lines().count();
    let junk = d.root.join("junk.tar");
    std::fs::write(
        &junk,
        b"this is not a tar archive at all, not even close....",
    )
    .expect("write");
    let o = d.docker(&["import", junk.to_str().expect("p"), "junk:1"]);
    assert!(!o.status.success(), "importing garbage succeeded");
    assert_eq!(d.ok(&["images", "-q"]).lines().count(), before);
}

#[test]
fn restart_policies() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "onfail",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert!(eventually(Duration::from_secs(10), || d.ok(&[
        "inspect",
        "-f",
        "{{.RestartCount}} {{.State.Status}}",
        "onfail"
    ]) == "2 exited"));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(d.ok(&["inspect", "-f", "{{.RestartCount}}", "onfail"]), "2");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2; exit 0",
    ]);
    assert!(eventually(Duration::from_secs(10), || d
        .ok(&["inspect", "-f", "{{.RestartCount}}", "always"])
        .parse::<i32>()
        .unwrap_or(0)
        >= 2));
    // An explicit stop ends it.
    d.ok(&["stop", "-t", "1", "always"]);
    let n = d.ok(&["inspect", "-f", "{{.RestartCount}}", "always"]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Running}}",
            "always"
        ]),
        format!("{n} false")
    );
    let o = d.docker(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert!(
        !o.status.success() && stderr(&o).contains("conflicting options"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn logs_follow_events_stream_and_wait_conditions() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done",
    ]);
    // logs -f ends when the container exits, with every line.
    let o = d.docker(&["logs", "-f", "ticker"]);
    assert_eq!(common::stdout(&o), "line1\nline2\nline3\nline4\nline5\n");
    assert_eq!(d.ok(&["logs", "--tail", "2", "ticker"]), "line4\nline5");
    // Streaming events: a listener sees a container that dies after it started. `--since`
    // (history replayed, then the stream) so that a slow subscription misses nothing; the
    // stream is read until the event comes.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs().saturating_sub(1))
        .unwrap_or_default()
        .to_string();
    let mut ev = std::process::Command::new(common::DOCKER)
        .env("DOCKER_HOST", d.host())
        .args([
            "events",
            "--since",
            &since,
            "--filter",
            "event=die",
            "--format",
            "{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("events");
    let lines = ev.stdout.take().expect("events stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(lines).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(
        d.docker(&["run", "--name", "dier", "busybox", "sh", "-c", "exit 9"])
            .status
            .code(),
        Some(9)
    );
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        seen.push(line);
        if seen.last().is_some_and(|l| l.contains("dier 9")) {
            break;
        }
    }
    let _ = ev.kill();
    let _ = ev.wait();
    assert!(
        seen.iter().any(|l| l.contains("dier 9")),
        "events seen: {seen:?}"
    );
    // wait --condition: not-running returns at once for an exited container.
    let (st, body) = http(
        &d,
        "POST",
        "/containers/dier/wait?condition=not-running",
        "",
    );
    assert_eq!(st, 200);
    assert!(body.contains("\"StatusCode\":9"), "{body}");
    assert_eq!(
        http(&d, "POST", "/containers/dier/wait?condition=bogus", "").0,
        400
    );
}

#[test]
fn exec_inspect_reports_the_process() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&["run", "-d", "--name", "host1", "busybox", "sleep", "60"]);
    let (st, body) = http(
        &d,
        "POST",
        "/containers/host1/exec",
        r#"{"Cmd":["sleep","30"],"AttachStdout":false}"#,
    );
    assert_eq!(st, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).expect("json")["Id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (st, _) = http(
        &d,
        "POST",
        &format!("/exec/{id}/start"),
        r#"{"Detach":true}"#,
    );
    assert_eq!(st, 200);
    let (st, body) = http(&d, "GET", &format!("/exec/{id}/json"), "");
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["Running"], true, "{body}");
    let pid = v["Pid"].as_i64().expect("pid");
    assert!(pid > 0, "{body}");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "sleep");
}
