//! The `berth` binary against a scripted fake daemon on a unix socket: checks the request
//! sequence of `run` (create → attach 101 → wait (headers only) → start → frames → wait body),
//! the pull-on-404 path, exit-code propagation for `run`/`exec`, and error output.
//!
//! The fake speaks just enough HTTP/1.1: one request per connection, `Content-Length` bodies,
//! a chunked `wait` reply whose body is held back until `start` arrives (as dockerd does).

use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

const ID: &str = "b22644106748bf64a3328aec43c0181f532a5a4806ac90c57154631de75b8a9c";

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake daemon does for the scenario under test.
#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    RunEcho,
    MissingImage,
    ExecExit,
    StartFails,
}

struct Fake {
    scenario: Scenario,
    log: Mutex<Vec<String>>,
    started: Notify,
    creates: Mutex<u32>,
}

async fn read_request(conn: &mut UnixStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

async fn reply(conn: &mut UnixStream, status: &str, body: &str) {
    let text = format!(
        "HTTP/1.1 {status}\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(text.as_bytes()).await;
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![stream, 0, 0, 0];
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

async fn handle(fake: Arc<Fake>, mut conn: UnixStream) {
    let Some(req) = read_request(&mut conn).await else {
        return;
    };
    let path = req.path.clone();
    fake.log
        .lock()
        .expect("log")
        .push(format!("{} {}", req.method, path));
    let p = path.split('?').next().unwrap_or("").to_string();
    if p == "/_ping" {
        let _ = conn
            .write_all(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nOstype: linux\r\nContent-Length: 0\r\n\r\n")
            .await;
    } else if p == "/v1.41/containers/create" {
        let n = {
            let mut c = fake.creates.lock().expect("creates");
            *c += 1;
            *c
        };
        if fake.scenario == Scenario::MissingImage && n == 1 {
            reply(
                &mut conn,
                "404 Not Found",
                r#"{"message":"No such image: 127.0.0.1:5000/bb:1"}"#,
            )
            .await;
        } else {
            let body: serde_json::Value =
                serde_json::from_slice(&req.body).expect("create body is JSON");
            assert_eq!(body["HostConfig"]["AutoRemove"], true);
            reply(
                &mut conn,
                "201 Created",
                &format!(r#"{{"Id":"{ID}","Warnings":[]}}"#),
            )
            .await;
        }
    } else if p == "/v1.41/images/create" {
        assert_eq!(req.header("X-Registry-Auth"), Some("e30="));
        reply(
            &mut conn,
            "200 OK",
            "{\"status\":\"Pulling from bb\",\"id\":\"1\"}\n{\"status\":\"Digest: sha256:5300\"}\n",
        )
        .await;
    } else if p.ends_with("/attach") {
        assert_eq!(req.header("Upgrade"), Some("tcp"));
        let _ = conn
            .write_all(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            .await;
        fake.started.notified().await;
        if fake.scenario == Scenario::StartFails {
            return;
        }
        let mut out = frame(1, b"hi\n");
        out.extend(frame(2, b"err\n"));
        let _ = conn.write_all(&out).await;
    } else if p.ends_with("/wait") {
        // Headers at once, body only after start (the CLI must not wait for the body first).
        let _ = conn
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        fake.started.notified().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let body = r#"{"Error":null,"StatusCode":3}"#;
        let _ = conn
            .write_all(format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).as_bytes())
            .await;
    } else if p.ends_with("/start") && p.starts_with("/v1.41/containers/") {
        if fake.scenario == Scenario::StartFails {
            reply(
                &mut conn,
                "400 Bad Request",
                r#"{"message":"failed to create shim task: exec: \"nosuchcmd\": executable file not found in $PATH: unknown"}"#,
            )
            .await;
        } else {
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        }
        fake.started.notify_waiters();
    } else if p == "/v1.41/containers/web/json" {
        reply(
            &mut conn,
            "200 OK",
            r#"{"Id":"web","State":{"Running":true},"Config":{"Tty":false}}"#,
        )
        .await;
    } else if p == "/v1.41/containers/web/exec" {
        reply(&mut conn, "201 Created", r#"{"Id":"e1"}"#).await;
    } else if p == "/v1.41/exec/e1/start" {
        let _ = conn
            .write_all(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            .await;
        let _ = conn.write_all(&frame(1, b"x\n")).await;
    } else if p == "/v1.41/exec/e1/json" {
        reply(
            &mut conn,
            "200 OK",
            r#"{"ID":"e1","Running":false,"ExitCode":4}"#,
        )
        .await;
    } else if p == "/v1.41/containers/nosuch/json" {
        reply(
            &mut conn,
            "404 Not Found",
            r#"{"message":"No such container: nosuch"}"#,
        )
        .await;
    } else {
        reply(
            &mut conn,
            "404 Not Found",
            r#"{"message":"page not found"}"#,
        )
        .await;
    }
    let _ = conn.shutdown().await;
}

/// Starts a fake daemon, runs `berth -H <socket> args...`, returns its output and the log.
async fn run_against(scenario: Scenario, args: &[&str]) -> (Output, Vec<String>) {
    let dir = std::env::temp_dir().join(format!(
        "berth-fake-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sock: PathBuf = dir.join("d.sock");
    let listener = UnixListener::bind(&sock).expect("bind fake daemon socket");
    let fake = Arc::new(Fake {
        scenario,
        log: Mutex::new(Vec::new()),
        started: Notify::new(),
        creates: Mutex::new(0),
    });
    let server_fake = fake.clone();
    let server = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(handle(server_fake.clone(), conn));
        }
    });
    let host = format!("unix://{}", sock.display());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.arg("-H")
        .arg(&host)
        .args(args)
        .env_remove("BERTH_HOST")
        .stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run berth");
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
    let log = fake.log.lock().expect("log").clone();
    (out, log)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[tokio::test]
async fn run_follows_dockers_sequence_and_exit_code() {
    let (out, log) =
        run_against(Scenario::RunEcho, &["run", "--rm", "busybox", "echo", "hi"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(3));
    let kinds: Vec<String> = log
        .iter()
        .map(|l| l.split('?').next().unwrap_or("").replace(ID, "{id}"))
        .collect();
    assert_eq!(
        kinds,
        vec![
            "HEAD /_ping",
            "POST /v1.41/containers/create",
            "POST /v1.41/containers/{id}/attach",
            "POST /v1.41/containers/{id}/wait",
            "POST /v1.41/containers/{id}/start",
        ]
    );
    assert!(log[3].ends_with("wait?condition=removed"), "{log:?}");
    assert!(
        log[2].ends_with("attach?stderr=1&stdout=1&stream=1"),
        "{log:?}"
    );
}

#[tokio::test]
async fn run_pulls_a_missing_image_then_creates_again() {
    let (out, log) = run_against(
        Scenario::MissingImage,
        &["run", "--rm", "127.0.0.1:5000/bb:1", "echo", "pulled"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("Unable to find image '127.0.0.1:5000/bb:1' locally\n1: Pulling from bb\nDigest: sha256:5300\n"), "{stderr}");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(log[1], "POST /v1.41/containers/create");
    assert_eq!(
        log[2],
        "POST /v1.41/images/create?fromImage=127.0.0.1%3A5000%2Fbb&tag=1"
    );
    assert_eq!(log[3], "POST /v1.41/containers/create");
}

#[tokio::test]
async fn run_maps_start_failures_to_127() {
    let (out, _) = run_against(
        Scenario::StartFails,
        &["run", "--rm", "busybox", "nosuchcmd"],
    )
    .await;
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("berth: Error response from daemon: failed to create shim task"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("Run 'berth run --help' for more information\n"),
        "{stderr}"
    );
}

#[tokio::test]
async fn exec_exits_with_the_exec_exit_code() {
    let (out, log) = run_against(Scenario::ExecExit, &["exec", "web", "sh", "-c", "exit 4"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x\n");
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        log,
        vec![
            "HEAD /_ping",
            "GET /v1.41/containers/web/json",
            "POST /v1.41/containers/web/exec",
            "POST /v1.41/exec/e1/start",
            "GET /v1.41/exec/e1/json",
        ]
    );
}

#[tokio::test]
async fn daemon_errors_are_printed_and_exit_1() {
    let (out, _) = run_against(Scenario::RunEcho, &["logs", "nosuch"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error response from daemon: No such container: nosuch\n"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn unreachable_daemon() {
    let out = tokio::task::spawn_blocking(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["-H", "unix:///nonexistent/berth.sock", "ps"])
            .output()
    })
    .await
    .expect("join")
    .expect("run berth");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Cannot connect to the Berth daemon at unix:///nonexistent/berth.sock. Is the berth daemon running?\n"
    );
    assert_eq!(out.status.code(), Some(1));
}
