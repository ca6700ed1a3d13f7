//! Dockerfile builds and commit end to end: a real berthd driven by the stock docker CLI
//! (classic builder, `DOCKER_BUILDKIT=0`, and its default when buildx is absent) and by
//! `berth build`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::registry::{Registry, RegistryOpts};
use common::{stderr, stdout, Daemon};

const LEGACY: &[(&str, &str)] = &[("DOCKER_BUILDKIT", "0")];

/// A build context directory under the daemon's temporary root.
fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.root.join(name);
    for (path, body) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, body).expect("write");
    }
    dir
}

fn build(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    d.docker_in(dir, LEGACY, &all)
}

fn build_ok(d: &Daemon, dir: &Path, args: &[&str]) -> String {
    let o = build(d, dir, args);
    assert!(
        o.status.success(),
        "build failed: {}\n{}\n{}",
        stdout(&o),
        stderr(&o),
        d.log_tail()
    );
    stdout(&o)
}

/// Nothing of a build is left: no containers, no staging dirs or contexts, no mounts.
fn assert_clean(d: &Daemon) {
    assert_eq!(
        d.ok(&["ps", "-aq"]),
        "",
        "a build container was left behind"
    );
    let tmp = d.root.join("data/tmp");
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("build-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left in tmp: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let prefix = d.root.join("data/tmp").display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&prefix)),
        "a staging mount was left behind"
    );
}

#[test]
fn multi_stage_build_runs_and_rebuild_hits_the_cache() {
    let d = Daemon::start();
    d.busybox();
    let dir = context(
        &d,
        "ctx1",
        &[
            (
                "Dockerfile",
                "# syntax and comments are fine\n\
                 ARG BASE=busybox\n\
                 FROM ${BASE} AS build\n\
                 ARG GREETING=hello\n\
                 WORKDIR /src\n\
                 COPY greet.txt ./\n\
                 RUN echo \"$GREETING from build\" > out.txt && \\\n    cat greet.txt >> out.txt\n\
                 \n\
                 FROM busybox\n\
                 ENV APP_HOME=/app MODE=\"prod mode\"\n\
                 WORKDIR $APP_HOME\n\
                 COPY --from=build /src/out.txt ./\n\
                 COPY data/ ./data/\n\
                 RUN adduser -D -u 1234 runner 2>/dev/null || echo 'runner:x:1234:1234::/app:/bin/sh' >> /etc/passwd\n\
                 USER runner\n\
                 LABEL org.example.role=\"test image\"\n\
                 EXPOSE 8080/tcp\n\
                 ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
                 CMD [\"cat out.txt data/d.txt; echo $MODE; pwd; id -u\"]\n",
            ),
            ("greet.txt", "greetings file\n"),
            ("data/d.txt", "data file\n"),
            ("ignored.log", "should not be sent\n"),
            (".dockerignore", "*.log\n"),
        ],
    );
    let out = build_ok(
        &d,
        &dir,
        &[
            "-t",
            "ms:1",
            "-t",
            "ms:alias",
            "--build-arg",
            "GREETING=hi",
            ".",
        ],
    );
    assert!(out.contains("Step 1/"), "{out}");
    assert!(out.contains("Successfully built"), "{out}");
    assert!(out.contains("Successfully tagged ms:1"), "{out}");
    assert!(out.contains("Successfully tagged ms:alias"), "{out}");
    let run = d.ok(&["run", "--rm", "ms:1"]);
    assert_eq!(
        run,
        "hi from build\ngreetings file\ndata file\nprod mode\n/app\n1234"
    );
    let inspect = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}|{{.Config.WorkingDir}}|{{json .Config.Entrypoint}}|{{index .Config.Labels \"org.example.role\"}}|{{json .Config.ExposedPorts}}",
        "ms:alias",
    ]);
    assert_eq!(
        inspect,
        "runner|/app|[\"/bin/sh\",\"-c\"]|test image|{\"8080/tcp\":{}}"
    );
    assert_clean(&d);
    // The intermediate images of the steps are hidden unless -a, as with Docker; only the
    // first stage's result shows as dangling (nothing builds on it), as with Docker.
    let listed = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(listed.matches("<none>:<none>").count(), 1, "{listed}");
    let all = d.ok(&["images", "-a", "-q"]);
    assert!(all.lines().count() > 10, "{all}");

    // Every step again from the cache; the same image comes out.
    let id1 = d.ok(&["image", "inspect", "--format", "{{.Id}}", "ms:1"]);
    let again = build_ok(&d, &dir, &["-t", "ms:2", "--build-arg", "GREETING=hi", "."]);
    let steps = again.matches("Step ").count();
    let cached = again.matches(" ---> Using cache").count();
    assert_eq!(
        cached,
        steps - 3,
        "every step but the FROMs and the meta ARG: {again}"
    );
    assert!(!again.contains("Running in"), "{again}");
    let id2 = d.ok(&["image", "inspect", "--format", "{{.Id}}", "ms:2"]);
    assert_eq!(id1, id2);

    // Touching a file (mtime only) keeps the cache; changing it invalidates from its COPY on.
    let f = std::fs::File::options()
        .write(true)
        .open(dir.join("data/d.txt"))
        .expect("open");
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .expect("touch");
    let touched = build_ok(&d, &dir, &["--build-arg", "GREETING=hi", "."]);
    assert_eq!(
        touched.matches(" ---> Using cache").count(),
        cached,
        "{touched}"
    );
    std::fs::write(dir.join("data/d.txt"), "changed data\n").expect("write");
    let changed = build_ok(&d, &dir, &["-t", "ms:3", "--build-arg", "GREETING=hi", "."]);
    let lines: Vec<&str> = changed.lines().collect();
    let copy_at = lines
        .iter()
        .position(|l| l.contains("COPY data/ ./data/"))
        .expect("the COPY step");
    let cached_before = lines[..copy_at]
        .iter()
        .filter(|l| l.contains("Using cache"))
        .count();
    let cached_after = lines[copy_at..]
        .iter()
        .filter(|l| l.contains("Using cache"))
        .count();
    assert_eq!(cached_after, 0, "{changed}");
    assert_eq!(cached_before, cached - 7, "{changed}");
    assert!(d.ok(&["run", "--rm", "ms:3"]).contains("changed data"));
    assert_clean(&d);
}

/// Builds that must fail: the message the user sees, exit 1 (a failing RUN: its code),
/// nothing tagged, nothing left.
#[test]
fn failures_name_the_problem_and_leave_nothing_behind() {
    let d = Daemon::start();
    d.busybox();
    let cases: &[(&str, &str, &str)] = &[
        (
            "FROM busybox\nFOO bar\n",
            "unknown instruction: FOO",
            "unknown",
        ),
        (
            "FROM busybox\nCOPY nope.txt /\n",
            "file not found in build context",
            "missing",
        ),
        (
            "FROM busybox\nCOPY ../outside /x\n",
            "forbidden path outside the build context",
            "escape",
        ),
        (
            "FROM busybox\nRUN echo start\nRUN echo failing; exit 7\n",
            "The command '/bin/sh -c echo failing; exit 7' returned a non-zero code: 7",
            "run",
        ),
        (
            "FROM busybox\nARG =x\n",
            "ARG names can not be blank",
            "arg",
        ),
        (
            "FROM busybox\nENV ONLYKEY\n",
            "ENV must have two arguments",
            "env",
        ),
        (
            "FROM busybox\nCOPY --from=nostage /a /a\n",
            "invalid from flag value nostage",
            "from",
        ),
        ("FROM nosuchimage:1\n", "nosuchimage", "image"),
    ];
    for (dockerfile, want, name) in cases {
        let dir = context(&d, &format!("fail-{name}"), &[("Dockerfile", dockerfile)]);
        let tag = format!("fail-{name}:1");
        let o = build(&d, &dir, &["-t", &tag, "."]);
        // A failing RUN ends the CLI with the step's exit code (dockerd's errorDetail.code).
        let code = if *name == "run" { 7 } else { 1 };
        assert_eq!(o.status.code(), Some(code), "{name}: {}", stdout(&o));
        assert!(
            stderr(&o).contains(want) || stdout(&o).contains(want),
            "{name}: want {want:?} in\n{}\n{}",
            stdout(&o),
            stderr(&o)
        );
        let listed = d.ok(&["images", "-q", &format!("fail-{name}")]);
        assert_eq!(listed, "", "{name}: an image was tagged");
        assert_clean(&d);
    }
    // The failing RUN printed its own output and the step it ran in.
    let dir = d.root.join("fail-run");
    let o = build(&d, &dir, &["."]);
    assert!(
        stdout(&o).contains("Step 3/3 : RUN echo failing; exit 7"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("failing\n"), "{}", stdout(&o));
    // The same failures through berth build.
    let o = d.berth_in(&dir, &["build", "-t", "fail-berth", "."]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("returned a non-zero code: 7"),
        "{}",
        stderr(&o)
    );
    assert_eq!(d.ok(&["images", "-q", "fail-berth"]), "");
    assert_clean(&d);
}

#[test]
fn berth_build_with_target_labels_quiet_iidfile_and_stdin_dockerfile() {
    let d = Daemon::start();
    d.busybox();
    let dir = context(
        &d,
        "ctx-berth",
        &[
            (
                "Dockerfile",
                "FROM busybox AS first\nARG WHO=nobody\nRUN echo \"first $WHO\" > /who\nCMD [\"cat\", \"/who\"]\n\
                 FROM first AS second\nRUN echo second > /who\n",
            ),
            ("secret.txt", "no"),
            (".dockerignore", "secret.txt\n"),
        ],
    );
    let iid = d.root.join("iid");
    let out = d.berth_in(
        &dir,
        &[
            "build",
            "--target",
            "first",
            "--build-arg",
            "WHO=berth",
            "--label",
            "built.by=berth",
            "-q",
            "--iidfile",
            iid.to_str().expect("path"),
            "-t",
            "bb:first",
            ".",
        ],
    );
    assert!(out.status.success(), "{}\n{}", stderr(&out), d.log_tail());
    let id = stdout(&out).trim().to_owned();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(std::fs::read_to_string(&iid).expect("iidfile"), id);
    assert_eq!(d.ok(&["run", "--rm", "bb:first"]), "first berth");
    assert_eq!(
        d.ok(&[
            "inspect",
            "--format",
            "{{index .Config.Labels \"built.by\"}}",
            "bb:first"
        ]),
        "berth"
    );
    // Full output from berth build, and the stage after the target builds too.
    let out = d.berth_in(&dir, &["build", "-t", "bb:second", "."]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Step 1/6 : FROM busybox AS first"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("Successfully tagged bb:second"),
        "{}",
        stdout(&out)
    );
    assert_eq!(d.ok(&["run", "--rm", "bb:second"]), "second");

    // docker build -f- . : the Dockerfile comes on stdin, the context from the directory.
    let mut cmd = std::process::Command::new(common::DOCKER);
    cmd.env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("dockercfg"))
        .env("DOCKER_BUILDKIT", "0")
        .current_dir(&dir)
        .args(["build", "-f-", "-t", "stdin:1", "."])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("docker");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        b"FROM busybox\nCOPY . /ctx/\nCMD [\"ls\", \"-a\", \"/ctx\"]\n",
    )
    .expect("write");
    drop(child.stdin.take());
    let o = child.wait_with_output().expect("wait");
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let listing = d.ok(&["run", "--rm", "stdin:1"]);
    assert!(listing.contains("Dockerfile"), "{listing}");
    assert!(!listing.contains("secret.txt"), ".dockerignore: {listing}");

    // Without DOCKER_BUILDKIT the CLI (no buildx here) takes the classic path too.
    let o = d.docker_in(&dir, &[], &["build", "-q", "--target", "first", "."]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).trim().starts_with("sha256:"), "{}", stdout(&o));
    assert_clean(&d);
}

/// Makes `files` (name, body) into a tar with `tar_flag` (`-z`, `-j`, `-J`) at `out`.
fn tarball(d: &Daemon, out: &Path, tar_flag: &str, files: &[(&str, &str)]) {
    let src = d.root.join(format!("tarsrc-{:x}", rand::random::<u32>()));
    for (name, body) in files {
        let p = src.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, body).expect("write");
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg(tar_flag)
        .arg("-cf")
        .arg(out)
        .args(&names)
        .status()
        .expect("tar");
    assert!(st.success());
}

/// An HTTPS file server (openssl s_server -WWW) on `addr` inside the daemon's netns, serving
/// `dir` with the test CA's certificate for 127.0.0.1.
fn https_server(d: &Daemon, ca: &Path, dir: &Path, port: u16) -> std::process::Child {
    let child = d
        .in_netns("openssl")
        .current_dir(dir)
        .args(["s_server", "-quiet", "-WWW", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(ca.join("server.crt"))
        .arg("-key")
        .arg(ca.join("server.key"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    wait_listening(d, port);
    child
}

/// Waits (20 s at most) until something accepts connections on 127.0.0.1:`port` in the
/// daemon's network namespace: a server just spawned is not listening yet.
fn wait_listening(d: &Daemon, port: u16) {
    let probe = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
    let up = common::eventually(std::time::Duration::from_secs(20), || {
        d.in_netns("bash")
            .args(["-c", &probe])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(up, "nothing listens on 127.0.0.1:{port}");
}

#[test]
fn all_instructions_add_sources_and_cache_across_restart_and_prune() {
    // The daemon trusts a test CA for 127.0.0.1:18443, where an HTTPS server serves ADD.
    let certs = tempfile::tempdir().expect("certs dir");
    let ca = certs.path().join("ca");
    common::registry::make_ca(&ca, "127.0.0.1");
    let host_certs = certs.path().join("certs.d/127.0.0.1:18443");
    std::fs::create_dir_all(&host_certs).expect("certs.d");
    std::fs::copy(ca.join("ca.crt"), host_certs.join("ca.crt")).expect("ca");
    let certs_arg = certs.path().join("certs.d").display().to_string();
    let mut d = Daemon::start_with(&["--registry-certs-dir", &certs_arg]);
    d.busybox();
    // A loopback HTTP server inside the daemon's network namespace serves ADD's URL.
    let srv = d.root.join("www");
    std::fs::create_dir_all(&srv).expect("www");
    std::fs::write(srv.join("remote.txt"), "from the web\n").expect("write");
    let mut http = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &d.netns,
            "busybox",
            "httpd",
            "-f",
            "-p",
            "127.0.0.1:18080",
            "-h",
        ])
        .arg(&srv)
        .spawn()
        .expect("httpd");
    wait_listening(&d, 18080);
    std::fs::write(srv.join("secure.txt"), "over https\n").expect("write");
    let mut https = https_server(&d, &ca, &srv, 18443);

    let dir = context(
        &d,
        "ctx-all",
        &[
            (
                "Dockerfile",
                "# escape=`\n\
                 FROM busybox\n\
                 SHELL [\"/bin/sh\", \"-c\"]\n\
                 ENV DIR=/opt/app `\n    NAME=app\n\
                 ADD files.tar.gz packed.bin other.data note.txt.xz ${DIR}/\n\
                 ADD --chmod=0644 http://127.0.0.1:18080/remote.txt https://127.0.0.1:18443/secure.txt /web/\n\
                 COPY --chown=web:web --chmod=0640 src/*.txt ${DIR:-/bad}/txt/\n\
                 RUN [\"/bin/sh\", \"-c\", \"ls -ln ${DIR}/txt > /perms\"]\n\
                 VOLUME /data\n\
                 STOPSIGNAL SIGTERM\n\
                 HEALTHCHECK --interval=5s --retries=2 CMD true\n\
                 ONBUILD USER root\n\
                 ONBUILD RUN echo triggered > /onbuild\n\
                 MAINTAINER someone\n\
                 USER web\n\
                 CMD cat /opt/app/inner/packed.txt /opt/app/bz/b.txt /opt/app/xz/x.txt /web/remote.txt /web/secure.txt /perms; xzcat /opt/app/note.txt.xz\n",
            ),
            ("src/a.txt", "a"),
            ("src/b.txt", "b"),
            ("src/c.md", "c"),
        ],
    );
    // gzip, bzip2 and xz tars are unpacked whatever their names; a compressed file that is
    // not a tar is copied as it is.
    let files: &[(&str, &str, &str)] = &[
        ("files.tar.gz", "-z", "inner/packed.txt"),
        ("packed.bin", "-j", "bz/b.txt"),
        ("other.data", "-J", "xz/x.txt"),
    ];
    for (name, flag, inner) in files {
        let body = format!("unpacked {flag} by ADD\n");
        tarball(&d, &dir.join(name), flag, &[(inner, &body)]);
    }
    std::fs::write(dir.join("note.txt"), "still xz\n").expect("write");
    let st = std::process::Command::new("xz")
        .arg(dir.join("note.txt"))
        .status()
        .expect("xz");
    assert!(st.success());
    build_ok(&d, &dir, &["-t", "all:1", "."]);
    let _ = http.kill();
    let _ = http.wait();
    let _ = https.kill();
    let _ = https.wait();
    let out = d.ok(&["run", "--rm", "all:1"]);
    for want in [
        "unpacked -z by ADD",
        "unpacked -j by ADD",
        "unpacked -J by ADD",
        "still xz",
        "from the web",
        "over https",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert!(
        out.contains("-rw-r-----    1 1000     1000") && out.contains("a.txt"),
        "{out}"
    );
    assert!(!out.contains("c.md"), "{out}");
    let f = "{{json .Config.Volumes}}|{{.Config.StopSignal}}|{{.Config.Healthcheck.Retries}}|{{json .Config.OnBuild}}|{{.Author}}|{{.Config.User}}";
    assert_eq!(
        d.ok(&["inspect", "--format", f, "all:1"]),
        "{\"/data\":{}}|SIGTERM|2|[\"USER root\",\"RUN echo triggered > /onbuild\"]|someone|web"
    );
    // ONBUILD triggers run in a child build.
    let child = context(
        &d,
        "ctx-child",
        &[("Dockerfile", "FROM all:1\nCMD cat /onbuild\n")],
    );
    let out = build_ok(&d, &child, &["-t", "child:1", "."]);
    assert!(out.contains("Executing 2 build triggers"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "child:1"]), "triggered");

    // The cache survives a restart of the daemon (the ADD URL step is refetched, so stop
    // short of it with a Dockerfile of the cacheable steps).
    let dir2 = context(
        &d,
        "ctx-restart",
        &[
            (
                "Dockerfile",
                "FROM busybox\nENV A=1\nCOPY f /f\nRUN cat /f > /g\nCMD [\"cat\", \"/g\"]\n",
            ),
            ("f", "file\n"),
        ],
    );
    build_ok(&d, &dir2, &["-t", "rs:1", "."]);
    d.kill9();
    d.spawn();
    let again = build_ok(&d, &dir2, &["-t", "rs:2", "."]);
    assert_eq!(again.matches("Using cache").count(), 4, "{again}");
    // --no-cache, then builder prune drops the cache.
    let fresh = build_ok(&d, &dir2, &["--no-cache", "-t", "rs:3", "."]);
    assert_eq!(fresh.matches("Using cache").count(), 0, "{fresh}");
    let pruned = d.ok(&["builder", "prune", "-f"]);
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    let after = build_ok(&d, &dir2, &["-t", "rs:4", "."]);
    assert_eq!(after.matches("Using cache").count(), 0, "{after}");
    assert_eq!(d.ok(&["run", "--rm", "rs:4"]), "file");

    // --cache-from an image that came from elsewhere (saved, every trace of its build
    // removed, loaded back): its steps are taken from it, and the same image comes out.
    let rs4 = d.ok(&["image", "inspect", "--format", "{{.Id}}", "rs:4"]);
    let saved = d.root.join("rs4.tar");
    d.ok(&["save", "-o", saved.to_str().expect("path"), "rs:4"]);
    d.ok(&["rmi", "rs:1", "rs:2", "rs:3", "rs:4"]);
    d.ok(&["builder", "prune", "-f"]);
    let left = d.ok(&["images", "-aq", "--no-trunc"]);
    assert!(!left.contains(&rs4), "{left}");
    d.ok(&["load", "-i", saved.to_str().expect("path")]);
    let seeded = build_ok(&d, &dir2, &["--cache-from", "rs:4", "-t", "rs:5", "."]);
    assert_eq!(seeded.matches("Using cache").count(), 4, "{seeded}");
    assert!(!seeded.contains("Running in"), "{seeded}");
    assert_eq!(
        d.ok(&["image", "inspect", "--format", "{{.Id}}", "rs:5"]),
        rs4
    );
    assert_eq!(d.ok(&["run", "--rm", "rs:5"]), "file");
    // With --cache-from, the local cache only counts on the way to those images (busybox
    // has none of these steps); a --cache-from image that is not here is skipped.
    let other = build_ok(
        &d,
        &dir2,
        &["--cache-from", "busybox", "--cache-from", "nosuch:1", "."],
    );
    assert_eq!(other.matches("Using cache").count(), 0, "{other}");
    let local = build_ok(&d, &dir2, &["."]);
    assert_eq!(local.matches("Using cache").count(), 4, "{local}");
    assert_clean(&d);
}

#[test]
fn commit_then_run_and_commit_changes() {
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo committed > /made; rm /bin/vi",
    ]);
    let id = d.ok(&[
        "commit",
        "-m",
        "a message",
        "-a",
        "an author",
        "--change",
        "ENV FROM_COMMIT=yes",
        "--change",
        "CMD [\"sh\", \"-c\", \"cat /made; echo $FROM_COMMIT; ls /bin/vi || echo gone\"]",
        "src",
        "committed:1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        d.ok(&["run", "--rm", "committed:1"]),
        "committed\nyes\ngone"
    );
    let f = "{{.Comment}}|{{.Author}}|{{len .RootFS.Layers}}";
    assert_eq!(
        d.ok(&["inspect", "--format", f, "committed:1"]),
        "a message|an author|2"
    );
    // A running container is paused while committed, and runs on afterwards.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo live > /l; sleep 60",
    ]);
    assert!(common::eventually(
        std::time::Duration::from_secs(5),
        || { d.docker(&["exec", "live", "cat", "/l"]).status.success() }
    ));
    d.ok(&["commit", "live", "live:snap"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", "live"]),
        "running"
    );
    assert_eq!(d.ok(&["run", "--rm", "live:snap", "cat", "/l"]), "live");
    // Bad input: unknown container, bad change, bad repository name.
    let o = d.docker(&["commit", "nosuch", "x:1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("No such container"), "{}", stderr(&o));
    let o = d.docker(&["commit", "--change", "RUN x", "src", "x:2"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let o = d.docker(&["commit", "src", "Bad:Name"]);
    assert!(!o.status.success());
    assert_eq!(d.ok(&["images", "-q", "x"]), "");
    d.ok(&["rm", "-f", "live", "src"]);
}

/// RUN containers get --add-host, --shm-size and --network; --platform and --pull, against a
/// real registry in the test's netns.
#[test]
fn run_options_platform_and_pull() {
    let d = Daemon::start();
    d.busybox();
    let dir = context(
        &d,
        "ctx-opts",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN grep '\\.test' /etc/hosts > /hosts; df -k /dev/shm | tail -n 1 > /shm; ls /sys/class/net > /nets\n\
             CMD cat /hosts /shm /nets\n",
        )],
    );
    build_ok(
        &d,
        &dir,
        &[
            "--add-host",
            "extra.test:10.1.2.3",
            "--add-host",
            "gw.test:host-gateway",
            "--shm-size",
            "8m",
            "-t",
            "opts:1",
            ".",
        ],
    );
    let out = d.ok(&["run", "--rm", "opts:1"]);
    let gw = d.ok(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{(index .IPAM.Config 0).Gateway}}",
    ]);
    assert!(out.contains("10.1.2.3\textra.test"), "{out}");
    assert!(out.contains(&format!("{gw}\tgw.test")), "{gw}: {out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("8192")),
        "8 MiB of /dev/shm: {out}"
    );
    assert!(out.contains("eth0"), "{out}");
    // --network none, -q and --iidfile: only the id is printed, and written. (Run options
    // are not part of the cache key, as with Docker: --no-cache to run the step again.)
    let iid = d.root.join("opts.iid");
    let o = build(
        &d,
        &dir,
        &[
            "--network",
            "none",
            "--no-cache",
            "-q",
            "--iidfile",
            iid.to_str().expect("path"),
            "-t",
            "opts:none",
            ".",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_owned();
    assert!(id.starts_with("sha256:") && !id.contains('\n'), "{id}");
    // The CLI writes what -q printed (the id and its newline), as with Docker.
    assert_eq!(
        std::fs::read_to_string(&iid).expect("iidfile"),
        format!("{id}\n")
    );
    assert_eq!(d.ok(&["run", "--rm", "opts:none", "cat", "/nets"]), "lo");

    // --platform: this host's platform builds, another architecture or OS is refused.
    for ok in ["linux/amd64", "linux"] {
        let out = build_ok(&d, &dir, &["--platform", ok, "-q", "."]);
        assert_eq!(out.trim(), id, "{ok}: cached, same image");
    }
    for (bad, want) in [
        ("linux/arm64", "platform linux/arm64 is not supported"),
        ("windows/amd64", "not a supported operating system"),
    ] {
        let o = build(&d, &dir, &["--platform", bad, "-t", "badplat:1", "."]);
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", stdout(&o));
        assert!(stderr(&o).contains(want), "{bad}: {}", stderr(&o));
    }
    assert_eq!(d.ok(&["images", "-q", "badplat"]), "");

    // --pull: the FROM image is pulled even though a (different) image has its name here.
    let reg = Registry::start(&d.netns, &d.root, RegistryOpts::default());
    let base = format!("{}/base:1", reg.addr);
    d.ok(&["tag", "busybox", &base]);
    d.ok(&["push", &base]);
    d.ok(&["tag", "opts:1", &base]);
    let pulled = context(
        &d,
        "ctx-pull",
        &[(
            "Dockerfile",
            &format!("FROM {base}\nRUN test ! -e /hosts && echo pristine > /p\n"),
        )],
    );
    let out = build_ok(
        &d,
        &pulled,
        &["--pull", "--platform", "linux/amd64", "-t", "pulled:1", "."],
    );
    assert!(out.contains("Pulling from base"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "pulled:1", "cat", "/p"]), "pristine");
    // berth build --pull does the same (its X-Registry-Config carries no credentials here).
    d.ok(&["tag", "opts:1", &base]);
    let o = d.berth_in(&pulled, &["build", "--pull", "-t", "pulled:2", "."]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Pulling from base"), "{}", stdout(&o));
    assert_eq!(
        d.ok(&["image", "inspect", "--format", "{{.Id}}", &base]),
        d.ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]),
        "the registry's image replaced the local one"
    );
    // A failing pull fails the build with the registry's answer, even with the image here.
    let absent = format!("{}/absent:1", reg.addr);
    d.ok(&["tag", "busybox", &absent]);
    let ctx = context(
        &d,
        "ctx-absent",
        &[("Dockerfile", &format!("FROM {absent}\nCMD true\n"))],
    );
    let o = build(&d, &ctx, &["--pull", "-t", "absent-built:1", "."]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    assert_eq!(d.ok(&["images", "-q", "absent-built"]), "");
    let o = build(&d, &ctx, &["-t", "absent-built:1", "."]);
    assert!(o.status.success(), "without --pull the local image serves");
    assert_clean(&d);
}
