//! Log drivers end to end: json-file rotation (`max-size`, `max-file`, `compress`) done by
//! the shim, also while berthd is down; `logs` and `logs -f` across rotated files; `local`;
//! `none`; daemon-wide defaults from the config file; refusals at create.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{eventually, stderr, stdout, Daemon};

/// A shell loop printing `line <i> ....` (80 bytes a line) for i in [from, to).
fn printer(from: u32, to: u32, pause: &str) -> String {
    format!(
        "i={from}; while [ $i -lt {to} ]; do echo \"line $i ........................................................................\"; {pause} i=$((i+1)); done"
    )
}

fn container_dir(d: &Daemon, id: &str) -> PathBuf {
    d.root.join("data/containers").join(id)
}

/// The log files of a container in `dir` whose names start with `prefix`, sorted.
fn log_files(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn read_maybe_gz(p: &Path) -> String {
    let mut s = String::new();
    let Ok(f) = std::fs::File::open(p) else {
        return s;
    };
    if p.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(f)
            .read_to_string(&mut s)
            .expect("gunzip");
    } else {
        std::io::BufReader::new(f)
            .read_to_string(&mut s)
            .expect("read");
    }
    s
}

/// The line numbers in `docker logs` output, asserting every line is a printer line.
fn numbers(out: &str) -> Vec<u32> {
    out.lines()
        .map(|l| {
            l.strip_prefix("line ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected log line {l:?}"))
        })
        .collect()
}

/// The line numbers of a log file's records (decompressed). A file that is not there (being
/// rotated) has none, and a record still being written is left out.
fn file_numbers(p: &Path) -> Vec<u32> {
    if !p.exists() {
        return Vec::new();
    }
    read_maybe_gz(p)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| numbers(v["log"].as_str().expect("log field"))[0])
        .collect()
}

fn assert_consecutive(ns: &[u32], last: u32) {
    assert!(!ns.is_empty(), "no lines");
    assert_eq!(*ns.last().expect("last"), last, "the newest line is last");
    for w in ns.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "lines out of order or missing around {}",
            w[0]
        );
    }
}

fn wait_exited(d: &Daemon, name: &str) {
    assert!(
        eventually(Duration::from_secs(60), || d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}}",
            name
        ]) == "exited"),
        "{name} did not finish"
    );
}

#[test]
fn json_file_rotation_keeps_max_files_and_logs_read_across_them() {
    let d = Daemon::start();
    d.busybox();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "big",
        "--log-opt",
        "max-size=100k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        &printer(0, 40_000, ""),
    ]);
    wait_exited(&d, "big");
    let dir = container_dir(&d, &id);
    let files = log_files(&dir, &format!("{id}-json.log"));
    let base = format!("{id}-json.log");
    assert_eq!(
        files,
        [base.clone(), format!("{base}.1"), format!("{base}.2")],
        "3.2 MB of output leaves the live file and two rotated ones"
    );
    // Each file is at most max-size (decimal, as Docker parses it) plus one record.
    for f in &files {
        let size = std::fs::metadata(dir.join(f)).expect("stat").len();
        assert!(size <= 100_000 + 200, "{f} is {size} bytes");
    }
    let rotated = std::fs::metadata(dir.join(&files[1])).expect("stat").len();
    assert!(rotated >= 100_000, "rotated too early: {rotated}");
    // `logs` returns the tail of the output, in order, across the three files.
    let all = numbers(&d.ok(&["logs", "big"]));
    assert_consecutive(&all, 39_999);
    assert!(all[0] > 0, "the oldest output was dropped");
    let on_disk: Vec<u32> = [&files[2], &files[1], &files[0]]
        .iter()
        .flat_map(|f| file_numbers(&dir.join(f)))
        .collect();
    assert_eq!(all, on_disk);
    assert_eq!(
        numbers(&d.ok(&["logs", "--tail", "3", "big"])),
        [39_997, 39_998, 39_999]
    );
    assert_eq!(
        numbers(&d.berth_ok(&["logs", "--tail", "2", "big"])),
        [39_998, 39_999]
    );
    // Inspect shows what was asked.
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "big"]),
        r#"{"Type":"json-file","Config":{"max-file":"3","max-size":"100k"}}"#
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.LogPath}}", "big"]),
        dir.join(&base).display().to_string()
    );
}

#[test]
fn compressed_rotations_are_gzip_and_logs_reads_them() {
    let d = Daemon::start();
    d.busybox();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "gz",
        "--log-opt",
        "max-size=50k",
        "--log-opt",
        "max-file=4",
        "--log-opt",
        "compress=true",
        "busybox",
        "sh",
        "-c",
        &printer(0, 10_000, ""),
    ]);
    wait_exited(&d, "gz");
    let dir = container_dir(&d, &id);
    let base = format!("{id}-json.log");
    assert_eq!(
        log_files(&dir, &base),
        [
            base.clone(),
            format!("{base}.1.gz"),
            format!("{base}.2.gz"),
            format!("{base}.3.gz")
        ]
    );
    let gz = std::fs::read(dir.join(format!("{base}.1.gz"))).expect("read .1.gz");
    assert_eq!(&gz[..2], b"\x1f\x8b", "gzip magic");
    assert!(gz.len() < 50_000, "compressed: {} bytes", gz.len());
    let all = numbers(&d.ok(&["logs", "gz"]));
    assert_consecutive(&all, 9_999);
    let on_disk: Vec<u32> = (1..4)
        .rev()
        .map(|i| format!("{base}.{i}.gz"))
        .chain([base.clone()])
        .flat_map(|f| file_numbers(&dir.join(f)))
        .collect();
    assert_eq!(all, on_disk);
    // Timestamps come from the records, strictly increasing across the files.
    let ts = d.ok(&["logs", "-t", "gz"]);
    let times: Vec<&str> = ts.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(times.len(), all.len());
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "timestamps out of order"
    );
}

#[test]
fn logs_follow_reads_across_rotations() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "create",
        "--name",
        "slow",
        "--log-opt",
        "max-size=20k",
        "--log-opt",
        "max-file=3",
        "--log-opt",
        "compress=true",
        "busybox",
        "sh",
        "-c",
        &format!("sleep 1; {}", printer(0, 2_500, "usleep 1000;")),
    ]);
    d.ok(&["start", "slow"]);
    let follow = Command::new(common::DOCKER)
        .env("DOCKER_HOST", d.host())
        .args(["logs", "-f", "slow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker logs -f");
    let out = follow.wait_with_output().expect("logs -f output");
    assert!(out.status.success(), "{}", stderr(&out));
    // ~20 rotations happened while it followed: every line, once, in order.
    let ns = numbers(&stdout(&out));
    assert_eq!(ns.len(), 2_500, "lines missing or repeated");
    assert_consecutive(&ns, 2_499);
    assert_eq!(ns[0], 0);
}

#[test]
fn rotation_goes_on_while_berthd_is_down() {
    let mut d = Daemon::start();
    d.busybox();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=20k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        &printer(0, 1_000_000, "usleep 200;"),
    ]);
    let dir = container_dir(&d, &id);
    let base = format!("{id}-json.log");
    assert!(eventually(Duration::from_secs(10), || dir
        .join(format!("{base}.1"))
        .exists()));
    d.kill9();
    let newest = |f: &str| {
        file_numbers(&dir.join(f))
            .last()
            .copied()
            .unwrap_or_default()
    };
    let at_kill = newest(&base).max(newest(&format!("{base}.1")));
    // While berthd is gone, the shim rotates: a `.1` made of output written after the kill.
    let rotated_since = eventually(Duration::from_secs(20), || {
        file_numbers(&dir.join(format!("{base}.1")))
            .first()
            .is_some_and(|n| *n > at_kill)
    });
    assert!(rotated_since, "no rotation while berthd was down");
    // Never more than the live file and `.1`, each within bounds (a file may be between
    // names at any moment: it is written on).
    for _ in 0..20 {
        for f in log_files(&dir, &base) {
            assert!(f == base || f == format!("{base}.1"), "unexpected {f}");
            if let Ok(m) = std::fs::metadata(dir.join(&f)) {
                assert!(m.len() <= 20_000 + 200, "{f} is {} bytes", m.len());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    d.spawn();
    let ns = numbers(&d.ok(&["logs", "chatty"]));
    assert!(ns.windows(2).all(|w| w[1] == w[0] + 1), "in order");
    assert!(ns[0] > at_kill);
    d.ok(&["rm", "-f", "chatty"]);
}

#[test]
fn driver_none_writes_no_file_and_logs_fails_like_docker() {
    let d = Daemon::start();
    d.busybox();
    // Attached output still reaches the client.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--log-driver",
            "none",
            "busybox",
            "echo",
            "hi"
        ]),
        "hi"
    );
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "sh",
        "-c",
        &printer(0, 1_000, ""),
    ]);
    wait_exited(&d, "quiet");
    let dir = container_dir(&d, &id);
    assert!(log_files(&dir, &id).is_empty(), "{:?}", log_files(&dir, ""));
    assert!(!dir.join("local-logs").exists());
    let o = d.docker(&["logs", "quiet"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(
            "Error response from daemon: configured logging driver does not support reading"
        ),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["logs", "quiet"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{json .HostConfig.LogConfig}}|{{.LogPath}}",
            "quiet"
        ]),
        r#"{"Type":"none","Config":{}}|"#
    );
    // The API status is Docker's 501.
    let code = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--unix-socket",
            d.sock.to_str().expect("sock"),
            "http://x/v1.45/containers/quiet/logs?stdout=1",
        ])
        .output()
        .expect("curl");
    assert_eq!(stdout(&code), "501");
}

#[test]
fn local_driver_uses_dockers_defaults_and_rotates() {
    let d = Daemon::start();
    d.busybox();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "loc",
        "--log-driver",
        "local",
        "--log-opt",
        "max-size=30k",
        "busybox",
        "sh",
        "-c",
        &printer(0, 5_000, ""),
    ]);
    wait_exited(&d, "loc");
    let dir = container_dir(&d, &id).join("local-logs");
    // Default max-file 5 and compress true.
    assert_eq!(
        log_files(&dir, "container.log"),
        [
            "container.log",
            "container.log.1.gz",
            "container.log.2.gz",
            "container.log.3.gz",
            "container.log.4.gz"
        ]
    );
    assert!(log_files(&container_dir(&d, &id), &id).is_empty());
    assert_consecutive(&numbers(&d.ok(&["logs", "loc"])), 4_999);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{json .HostConfig.LogConfig}}|{{.LogPath}}",
            "loc"
        ]),
        r#"{"Type":"local","Config":{"max-size":"30k"}}|"#
    );
}

#[test]
fn daemon_config_file_sets_default_driver_and_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("daemon.json");
    std::fs::write(
        &cfg,
        r#"{"log-driver":"json-file","log-opts":{"max-size":"10k","max-file":"2"}}"#,
    )
    .expect("write config");
    let d = Daemon::start_with(&["--config-file", cfg.to_str().expect("path")]);
    d.busybox();
    assert_eq!(d.ok(&["info", "-f", "{{.LoggingDriver}}"]), "json-file");
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "dflt",
        "busybox",
        "sh",
        "-c",
        &printer(0, 2_000, ""),
    ]);
    wait_exited(&d, "dflt");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "dflt"]),
        r#"{"Type":"json-file","Config":{"max-file":"2","max-size":"10k"}}"#
    );
    let cdir = container_dir(&d, &id);
    let base = format!("{id}-json.log");
    assert_eq!(log_files(&cdir, &base), [base.clone(), format!("{base}.1")]);
    assert_consecutive(&numbers(&d.ok(&["logs", "dflt"])), 1_999);
    // The container's own options win; the daemon's fill the gaps of the same driver only.
    d.ok(&[
        "create",
        "--name",
        "own",
        "--log-opt",
        "max-size=1m",
        "busybox",
    ]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "own"]),
        r#"{"Type":"json-file","Config":{"max-file":"2","max-size":"1m"}}"#
    );
    d.ok(&[
        "create",
        "--name",
        "loc",
        "--log-driver",
        "local",
        "busybox",
    ]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "loc"]),
        r#"{"Type":"local","Config":{}}"#
    );
    drop(d);

    // A daemon whose default is `none`.
    std::fs::write(&cfg, r#"{"log-driver":"none"}"#).expect("write config");
    let d = Daemon::start_with(&["--config-file", cfg.to_str().expect("path")]);
    d.busybox();
    assert_eq!(d.ok(&["info", "-f", "{{.LoggingDriver}}"]), "none");
    d.ok(&["run", "--name", "nn", "busybox", "echo", "hi"]);
    let o = d.docker(&["logs", "nn"]);
    assert!(
        stderr(&o).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_daemon_log_defaults_stop_berthd_from_starting() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        vec!["--log-driver", "foo"],
        vec!["--log-opt", "max-size=huge"],
    ] {
        let o = Command::new(common::bin_dir().join("berthd"))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("run"))
            .arg("-H")
            .arg(format!("unix://{}", dir.path().join("s.sock").display()))
            .args(&args)
            .output()
            .expect("run berthd");
        assert!(!o.status.success(), "{args:?} started");
        assert!(
            stderr(&o).contains("failed to set log opts"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(
            !dir.path().join("data").exists(),
            "state made before refusing"
        );
    }
}

#[test]
fn unknown_driver_or_bad_option_is_a_400_at_create_and_nothing_is_made() {
    let d = Daemon::start();
    d.busybox();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--log-driver", "foo"],
            "logger: no log driver named 'foo' is registered",
        ),
        (
            &["--log-opt", "x=1"],
            "unknown log opt 'x' for json-file log driver",
        ),
        (&["--log-opt", "max-size=abc"], "invalid size: 'abc'"),
        (
            &["--log-opt", "max-file=0", "--log-opt", "max-size=1m"],
            "max-file cannot be less than 1",
        ),
        (
            &["--log-opt", "compress=true"],
            "compress cannot be true when max-file is less than 2 or max-size is not set",
        ),
        (
            &["--log-driver", "local", "--log-opt", "tag=x"],
            "unknown log opt 'tag' for log driver local",
        ),
        (
            &["--log-driver", "local", "--log-opt", "max-file=1"],
            "compression cannot be enabled when max file count is 1",
        ),
    ];
    for (opts, msg) in cases {
        let mut args = vec!["run", "--name", "bad"];
        args.extend_from_slice(opts);
        args.extend(["busybox", "true"]);
        let o = d.docker(&args);
        assert_eq!(o.status.code(), Some(125), "{opts:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("Error response from daemon: {msg}")),
            "{opts:?}: {}",
            stderr(&o)
        );
    }
    assert!(d.ok(&["ps", "-aq"]).is_empty());
    let containers = d.root.join("data/containers");
    assert_eq!(
        std::fs::read_dir(&containers).map_or(0, |r| r.count()),
        0,
        "container directories were made"
    );
    // The API answers 400 with Docker's body.
    let o = Command::new("curl")
        .args([
            "-s",
            "-w",
            " %{http_code}",
            "--unix-socket",
            d.sock.to_str().expect("sock"),
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"foo","Config":null}}}"#,
            "http://x/v1.45/containers/create",
        ])
        .output()
        .expect("curl");
    assert_eq!(
        stdout(&o),
        r#"{"message":"logger: no log driver named 'foo' is registered"} 400"#
    );
}
