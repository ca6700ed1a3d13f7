//! Host escapes through the container's file system, tried as an attacker would with the
//! stock docker CLI against a real berthd (issue 21, items 1-4): symlink chains in build
//! contexts and images, `docker cp` racing a container that swaps a directory for a symlink
//! to the host, tar hard links to host files, WORKDIR outside the root, and volume copy-up
//! through an image's symlink. Each must leave the host untouched and unread.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{stderr, stdout, Daemon};

const LEGACY: &[(&str, &str)] = &[("DOCKER_BUILDKIT", "0")];
const SECRET: &str = "HOST-SECRET-7f3a";

/// A directory on the host (outside every root berthd manages) holding a secret file.
fn host_dir(d: &Daemon, name: &str) -> PathBuf {
    let dir = d.root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("secret.txt"), SECRET).expect("write");
    dir
}

fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.root.join(name);
    for (path, body) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, body).expect("write");
    }
    dir
}

fn build(d: &Daemon, dir: &Path, tag: &str) -> Output {
    d.docker_in(dir, LEGACY, &["build", "-q", "-t", tag, "."])
}

fn hops(n: usize) -> String {
    "dot/".repeat(n)
}

/// Item 1: COPY through 41 symlink hops and a link to the host, from the context and into
/// the image (also through a WORKDIR on that path).
#[test]
fn build_symlink_hops_stay_inside() {
    let d = Daemon::start();
    d.busybox();
    let host = host_dir(&d, "host-build");
    let h = host.display().to_string();

    // Read: the context links out of itself.
    let ctx = context(
        &d,
        "ctx-read",
        &[(
            "Dockerfile",
            &format!("FROM busybox\nCOPY {}evil/secret.txt /got\n", hops(41)),
        )],
    );
    std::os::unix::fs::symlink(".", ctx.join("dot")).expect("symlink");
    std::os::unix::fs::symlink(&host, ctx.join("evil")).expect("symlink");
    let o = build(&d, &ctx, "hop-read");
    if o.status.success() {
        let got = d.docker(&["run", "--rm", "hop-read", "cat", "/got"]);
        assert!(!stdout(&got).contains(SECRET), "COPY read a host file");
    }

    // A Dockerfile (or .dockerignore) that links to a host file is not read.
    let ctx = d.root.join("ctx-df");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::os::unix::fs::symlink(host.join("secret.txt"), ctx.join("Dockerfile")).expect("symlink");
    let o = build(&d, &ctx, "df-link");
    assert!(!o.status.success());
    assert!(
        !stderr(&o).to_lowercase().contains(&SECRET.to_lowercase()),
        "the build read a host file as its Dockerfile: {}",
        stderr(&o)
    );

    // Write: the image links out of itself, COPY writes through the chain.
    let ctx = context(
        &d,
        "ctx-write",
        &[
            ("f", "planted"),
            (
                "Dockerfile",
                &format!(
                    "FROM busybox\nRUN ln -s . /dot && ln -s {h} /evil\nCOPY f /{}evil/\n",
                    hops(41)
                ),
            ),
        ],
    );
    let _ = build(&d, &ctx, "hop-write");
    assert!(!host.join("f").exists(), "COPY wrote a host file");

    // WORKDIR on that path, then a harmless-looking COPY into `.`.
    let ctx = context(
        &d,
        "ctx-workdir",
        &[
            ("app.txt", "planted"),
            (
                "Dockerfile",
                &format!(
                    "FROM busybox\nRUN ln -s . /dot && ln -s {h} /evil\nWORKDIR /{}evil/sub\nCOPY app.txt .\n",
                    hops(41)
                ),
            ),
        ],
    );
    let _ = build(&d, &ctx, "hop-workdir");
    assert!(!host.join("sub").exists(), "WORKDIR made a host directory");
    assert!(!host.join("app.txt").exists(), "COPY wrote a host file");

    // Through a base image's symlinks, with no hop limit involved: still inside.
    let ctx = context(
        &d,
        "ctx-base",
        &[(
            "Dockerfile",
            &format!("FROM busybox\nRUN ln -s {h} /evil\n"),
        )],
    );
    let o = build(&d, &ctx, "evil-base");
    assert!(o.status.success(), "{}", stderr(&o));
    let ctx = context(
        &d,
        "ctx-child",
        &[
            ("app.txt", "planted"),
            (
                "Dockerfile",
                "FROM evil-base\nWORKDIR /evil/app\nCOPY app.txt .\n",
            ),
        ],
    );
    let o = build(&d, &ctx, "evil-child");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!host.join("app").exists(), "WORKDIR made a host directory");
    let got = d.ok(&[
        "run",
        "--rm",
        "evil-child",
        "cat",
        &format!("{h}/app/app.txt"),
    ]);
    assert_eq!(got, "planted", "the file lands inside the image");
    assert_eq!(
        std::fs::read_to_string(host.join("secret.txt")).expect("secret"),
        SECRET
    );
}

/// A static helper that swaps two paths with `renameat2(RENAME_EXCHANGE)` in a loop, as an
/// attacker inside the container would; built with the host's gcc.
fn swapper(d: &Daemon) -> PathBuf {
    let src = d.root.join("swap.c");
    std::fs::write(
        &src,
        r#"#define _GNU_SOURCE
#include <stdio.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    for (;;) syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], 2 /* RENAME_EXCHANGE */);
}
"#,
    )
    .expect("write");
    let bin = d.root.join("swap");
    let o = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("gcc");
    assert!(o.status.success(), "gcc: {}", stderr(&o));
    bin
}

/// Item 2: `docker cp` both ways while the container swaps a directory and a symlink to
/// the host (the class of CVE-2018-15664), and a tar hard link to a host file.
#[test]
fn cp_races_and_hardlinks_stay_inside() {
    let d = Daemon::start();
    d.busybox();
    let host = host_dir(&d, "host-cp");
    let swap = swapper(&d);
    let id = d.ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        &format!(
            "mkdir -p /tmp/race && echo inside > /tmp/race/secret.txt && ln -s {} /tmp/link && while [ ! -x /swap ]; do sleep 0.1; done; exec /swap /tmp/race /tmp/link",
            host.display()
        ),
    ]);
    d.ok(&["cp", swap.to_str().expect("path"), &format!("{id}:/swap")]);
    let payload = d.root.join("payload");
    std::fs::write(&payload, "planted").expect("write");
    let out = d.root.join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let start = Instant::now();
    let mut tries = 0;
    while tries < 300 && start.elapsed() < Duration::from_secs(90) {
        tries += 1;
        let _ = d.docker(&[
            "cp",
            payload.to_str().expect("path"),
            &format!("{id}:/tmp/race/"),
        ]);
        assert!(
            !host.join("payload").exists(),
            "docker cp wrote a host file after {tries} tries"
        );
        let got = out.join("secret.txt");
        let _ = std::fs::remove_file(&got);
        let _ = d.docker(&[
            "cp",
            &format!("{id}:/tmp/race/secret.txt"),
            out.to_str().expect("path"),
        ]);
        if let Ok(s) = std::fs::read_to_string(&got) {
            assert!(
                !s.contains(SECRET),
                "docker cp read a host file after {tries} tries"
            );
        }
    }
    assert!(tries >= 50, "too few attempts ({tries}) to mean anything");
    assert!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", &id]) == "true",
        "the swapper died: the race was not run"
    );

    // A tar whose hard link names /etc/hostname: the container's, never the host's.
    let host_links = std::fs::metadata("/etc/hostname").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.nlink()
    });
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    h.set_mode(0o644);
    b.append_link(&mut h, "hl", "/etc/hostname").expect("link");
    let tar = b.into_inner().expect("tar");
    let o = d.docker_stdin(&["cp", "-", &format!("{id}:/tmp")], &tar);
    if o.status.success() {
        let inside = d.ok(&["exec", &id, "cat", "/tmp/hl"]);
        let own = d.ok(&["exec", &id, "cat", "/etc/hostname"]);
        assert_eq!(inside, own, "the link names the container's /etc/hostname");
    }
    let after = std::fs::metadata("/etc/hostname").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.nlink()
    });
    assert_eq!(
        host_links.ok(),
        after.ok(),
        "the host's /etc/hostname was linked"
    );
    d.ok(&["rm", "-f", &id]);
}

/// Item 3: a WorkingDir with `..`, or through an image's symlink, is made inside the root.
#[test]
fn workdir_is_made_inside_the_root() {
    let d = Daemon::start();
    d.busybox();
    let host = host_dir(&d, "host-wd");
    let target = d.root.join("wd-escape");
    let wd = format!("/../../../../../../..{}", target.display());
    let o = d.docker(&["run", "--rm", "-w", &wd, "busybox", "pwd"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!target.exists(), "-w created a host directory");
    assert_eq!(stdout(&o).trim(), target.display().to_string());

    let ctx = context(
        &d,
        "ctx-wd",
        &[(
            "Dockerfile",
            &format!("FROM busybox\nRUN ln -s {} /evil\n", host.display()),
        )],
    );
    let o = build(&d, &ctx, "evil-wd");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.docker(&["run", "--rm", "-w", "/evil/made", "evil-wd", "pwd"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !host.join("made").exists(),
        "-w through a symlink made a host directory"
    );
}

/// Item 4: `VOLUME` under an image's symlink to a host directory copies nothing of the host.
#[test]
fn volume_copy_up_stays_inside() {
    let d = Daemon::start();
    d.busybox();
    let host = host_dir(&d, "host-vol");
    std::fs::create_dir_all(host.join("hostsecret")).expect("mkdir");
    std::fs::write(host.join("hostsecret/secret.txt"), SECRET).expect("write");
    let ctx = context(
        &d,
        "ctx-vol",
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nRUN ln -s {} /evil\nVOLUME /evil/hostsecret\n",
                host.display()
            ),
        )],
    );
    let o = build(&d, &ctx, "evil-vol");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.docker(&[
        "run",
        "--rm",
        "evil-vol",
        "sh",
        "-c",
        "cat /evil/hostsecret/secret.txt; ls -la /evil/hostsecret",
    ]);
    assert!(
        !stdout(&o).contains(SECRET),
        "copy-up brought a host file into the volume: {}",
        stdout(&o)
    );
    // A named volume at the same path, read by another container: still nothing.
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        "evilvol:/evil/hostsecret",
        "evil-vol",
        "true",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        "evilvol:/data",
        "busybox",
        "sh",
        "-c",
        "cat /data/secret.txt",
    ]);
    assert!(
        !stdout(&o).contains(SECRET),
        "the named volume holds a host file"
    );
}
