//! Our own `berth` CLI against a real berthd: the same lifecycle the docker CLI drives.

mod common;

use std::time::Duration;

use common::{eventually, stderr, stdout, Daemon};

#[test]
fn berth_cli_drives_the_lifecycle() {
    let d = Daemon::start();
    let tar = common::busybox_tar(&d.root);
    d.berth_ok(&[
        "import",
        "-c",
        "CMD [\"/bin/sh\"]",
        tar.to_str().expect("p"),
        "busybox:latest",
    ]);
    assert!(d.berth_ok(&["images"]).contains("busybox"));
    assert!(d.berth_ok(&["version"]).contains("1.45"));
    assert_eq!(d.berth_ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi");
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    let o = d.berth(&["run", "--rm", "busybox", "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let o = d.berth(&["run", "--rm", "-m", "1x", "busybox", "true"]);
    assert_eq!(
        o.status.code(),
        Some(125),
        "bad memory size must be refused: {}",
        stderr(&o)
    );
    let id = d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "FOO=bar",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 1000",
    ]);
    assert_eq!(id.len(), 64);
    assert!(eventually(Duration::from_secs(5), || d
        .berth_ok(&["logs", "web"])
        .contains("started")));
    assert!(d.berth_ok(&["ps"]).contains("web"));
    assert_eq!(d.berth_ok(&["ps", "-q"]), &id[..12]);
    assert_eq!(d.berth_ok(&["exec", "web", "sh", "-c", "echo $FOO"]), "bar");
    let o = d.berth(&["exec", "web", "sh", "-c", "exit 4"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        d.berth_ok(&["inspect", "-f", "{{.State.Running}}", "web"]),
        "true"
    );
    assert!(d.berth_ok(&["top", "web"]).contains("sleep"));
    d.berth_ok(&["stop", "-t", "1", "web"]);
    assert_eq!(
        d.berth_ok(&["inspect", "-f", "{{.State.Status}}", "web"]),
        "exited"
    );
    d.berth_ok(&["rm", "web"]);
    assert!(d.berth_ok(&["ps", "-aq"]).is_empty());
    // Errors print Docker's prefix and exit 1.
    let o = d.berth(&["inspect", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).to_lowercase().contains("no such"),
        "{}",
        stderr(&o)
    );
}
