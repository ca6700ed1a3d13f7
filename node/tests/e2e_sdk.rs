//! The Docker SDK for Python (`docker` 7.x from PyPI) against a real berthd: each
//! `node/tests/sdk/test_*.py` is a unittest module run with DOCKER_HOST pointing at the
//! daemon. The SDK lives in a venv made by `scripts/sdk-venv` (`.ci/run` makes it); without
//! it these tests fail and say how to make it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Daemon;

/// Where `scripts/sdk-venv` puts the venv, unless `BERTH_SDK_VENV` says otherwise.
const DEFAULT_VENV: &str = "/opt/berth-sdk-venv";

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("BERTH_SDK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_VENV));
    let python = venv.join("bin/python3");
    let usable = Command::new(&python)
        .args([
            "-c",
            "import docker, sys; sys.exit(docker.__version__.split('.')[0] != '7')",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        usable,
        "no Docker SDK for Python 7.x in {}: run `scripts/sdk-venv` (or set BERTH_SDK_VENV to a \
         venv with `pip install 'docker==7.*'`)",
        venv.display()
    );
    python
}

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

/// Runs one SDK test module against a fresh daemon with busybox imported.
fn run_sdk(module: &str) {
    let d = Daemon::start();
    d.busybox();
    run_sdk_on(&d, module, &[]);
}

/// Runs one SDK test module against `d`, with extra environment variables.
fn run_sdk_on(d: &Daemon, module: &str, env: &[(&str, &str)]) {
    let python = venv_python();
    let out = Command::new(python)
        .arg(sdk_dir().join(module))
        .current_dir(sdk_dir())
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("dockercfg"))
        .env("BERTH_TEST_IMAGE", "busybox:latest")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("BERTH_CLI", common::bin_dir().join("berth"))
        .envs(env.iter().copied())
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "{module} failed:\n{text}\n--- berthd log (tail) ---\n{}",
        d.log_tail()
    );
}

#[test]
fn sdk_exec_run_output_is_whole() {
    run_sdk("test_exec.py");
}

#[test]
fn sdk_attach_without_stream_and_detach_keys() {
    run_sdk("test_attach.py");
}

#[test]
fn sdk_kill_answers_after_exit() {
    run_sdk("test_kill.py");
}

#[test]
fn sdk_restart_policy_validation() {
    run_sdk("test_restart_policy.py");
}

#[test]
fn sdk_healthchecks() {
    run_sdk("test_health.py");
}

/// A healthy container stays healthy across a `kill -9` of berthd, and its probes go on.
#[test]
fn sdk_health_survives_a_daemon_restart() {
    let mut d = Daemon::start();
    d.busybox();
    run_sdk_on(&d, "test_health_restart.py", &[("BERTH_PHASE", "before")]);
    d.kill9();
    d.spawn();
    run_sdk_on(&d, "test_health_restart.py", &[("BERTH_PHASE", "after")]);
}

#[test]
fn sdk_response_shapes_and_null_bodies() {
    run_sdk("test_shapes.py");
}

/// Archive calls see volumes and binds in every state; read-only mounts; volume subpaths.
#[test]
fn sdk_archive_sees_volumes_and_subpaths() {
    run_sdk("test_archive.py");
}

/// A running container joins a second user-defined network; its one DNS server answers both.
#[test]
fn sdk_second_network_shares_one_dns() {
    run_sdk("test_networks.py");
}

/// Build output: RUN stderr streamed, `errorDetail.code`, `cache_from` of a missing image.
#[test]
fn sdk_build_stream_errors_and_cache_from() {
    run_sdk("test_build.py");
}

/// Legacy links: environment, /etc/hosts, `HostConfig.Links`, removal with `link=True`.
#[test]
fn sdk_legacy_links() {
    run_sdk("test_links.py");
}

/// IPv6 networks: addresses, routes, traffic, AAAA answers, ports published on IPv6, errors.
#[test]
fn sdk_ipv6_networks() {
    run_sdk("test_ipv6.py");
}
