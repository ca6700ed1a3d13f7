//! Volumes and container mounts end to end: the stock docker CLI and `berth` against a real
//! berthd — named volumes shared between containers, read-only mounts, binds both ways,
//! copy-up from an image, anonymous volumes and `rm -v`, `local` driver options (tmpfs),
//! `--volumes-from`, prune and df, and volumes across a `kill -9` of the daemon.
//! Every test checks that no mount is left behind.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{eventually, stderr, stdout, Daemon};

/// Asserts nothing is mounted under the daemon's volumes once containers are gone.
fn assert_no_volume_mounts(d: &Daemon) {
    let left: Vec<String> = d
        .mounts_under_root()
        .into_iter()
        .filter(|m| m.contains("/volumes/"))
        .collect();
    assert!(left.is_empty(), "volume mounts left behind: {left:?}");
}

fn rm_all(d: &Daemon) {
    let ids = d.ok(&["ps", "-aq"]);
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids.split_whitespace());
        d.ok(&args);
    }
    // Every container's rootfs is unmounted too.
    assert!(
        eventually(Duration::from_secs(5), || d
            .mounts_under_root()
            .iter()
            .all(|m| !m.contains("/merged"))),
        "{:?}",
        d.mounts_under_root()
    );
}

#[test]
fn named_volume_shared_read_only_and_in_use() {
    let d = Daemon::start();
    d.busybox();
    let since = chrono::Utc::now().timestamp() - 1;
    assert_eq!(d.ok(&["volume", "create", "shared"]), "shared");
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "shared:/data",
        "busybox",
        "sh",
        "-c",
        "echo hello > /data/f",
    ]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "shared:/data:ro",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "hello"
    );
    // Read-only is enforced in the container.
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        "shared:/data:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    // The data is the volume's, on the host.
    let mp = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "shared"]);
    assert!(mp.ends_with("/volumes/shared/_data"), "{mp}");
    assert_eq!(
        std::fs::read_to_string(Path::new(&mp).join("f")).expect("read"),
        "hello\n"
    );
    // A container that is not even running holds the volume.
    let id = d.ok(&[
        "create",
        "--name",
        "holder",
        "-v",
        "shared:/data",
        "busybox",
        "true",
    ]);
    let o = d.docker(&["volume", "rm", "shared"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("remove shared: volume is in use - [{id}]")),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}} {{.Driver}}{{end}}",
            "holder"
        ]),
        "volume shared /data true local"
    );
    assert_eq!(
        d.ok(&[
            "ps",
            "-a",
            "--filter",
            "volume=shared",
            "--format",
            "{{.Names}}"
        ]),
        "holder"
    );
    assert_eq!(
        d.ok(&[
            "ps",
            "-a",
            "--filter",
            "volume=/data",
            "--format",
            "{{.Names}}"
        ]),
        "holder"
    );
    assert_eq!(
        d.ok(&[
            "ps",
            "-a",
            "--filter",
            "volume=other",
            "--format",
            "{{.Names}}"
        ]),
        ""
    );
    assert_eq!(
        d.ok(&[
            "volume",
            "ls",
            "--filter",
            "dangling=false",
            "--format",
            "{{.Name}}"
        ]),
        "shared"
    );
    d.ok(&["rm", "holder"]);
    // Unknown names are created at container create; unknown volumes are 404.
    d.ok(&["run", "--rm", "-v", "implicit:/x", "busybox", "true"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "implicit\nshared");
    let o = d.docker(&["volume", "inspect", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no such volume"), "{}", stderr(&o));
    // Bad specs are refused before anything is made.
    let o = d.docker(&["run", "--rm", "-v", "bad:/x:rx", "busybox", "true"]);
    assert!(stderr(&o).contains("invalid mode: rx"), "{}", stderr(&o));
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "implicit\nshared");
    d.ok(&["volume", "rm", "shared", "implicit"]);
    assert!(!Path::new(&mp).exists());
    let until = chrono::Utc::now().timestamp() + 1;
    let ev = d.ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    for want in [
        "create shared",
        "mount shared",
        "unmount shared",
        "destroy shared",
        "create implicit",
    ] {
        assert!(ev.lines().any(|l| l == want), "no '{want}' in {ev}");
    }
    rm_all(&d);
    assert_no_volume_mounts(&d);
}

#[test]
fn bind_mounts_both_ways_with_berth() {
    let d = Daemon::start();
    d.busybox();
    let host = d.root.join("hostdir");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(host.join("in"), "from host").expect("write");
    let spec = format!("{}:/h", host.display());
    assert_eq!(
        d.berth_ok(&["run", "--rm", "-v", &spec, "busybox", "cat", "/h/in"]),
        "from host"
    );
    d.berth_ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "echo from ctr > /h/out",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("out")).expect("read"),
        "from ctr\n"
    );
    let ro = format!("{}:/h:ro", host.display());
    let o = d.berth(&["run", "--rm", "-v", &ro, "busybox", "touch", "/h/x"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!host.join("x").exists());
    // A single file, over a path the image lacks and over one the runtime provides.
    let f = format!("{}:/etc/conf.txt:ro", host.join("in").display());
    assert_eq!(
        d.berth_ok(&["run", "--rm", "-v", &f, "busybox", "cat", "/etc/conf.txt"]),
        "from host"
    );
    let f = format!("{}:/etc/hostname", host.join("in").display());
    assert_eq!(
        d.ok(&["run", "--rm", "-v", &f, "busybox", "cat", "/etc/hostname"]),
        "from host"
    );
    // --mount: a missing source is a 400 naming it; -v creates it, like docker.
    let missing = d.root.join("missing");
    let m = format!("type=bind,source={},target=/m", missing.display());
    for o in [
        d.berth(&["run", "--rm", "--mount", &m, "busybox", "true"]),
        d.docker(&["run", "--rm", "--mount", &m, "busybox", "true"]),
    ] {
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                missing.display()
            )),
            "{}",
            stderr(&o)
        );
    }
    let mro = format!("type=bind,source={},target=/m,readonly", host.display());
    let o = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &mro,
        "busybox",
        "sh",
        "-c",
        "cat /m/in; touch /m/y",
    ]);
    assert_eq!(stdout(&o), "from host");
    assert!(!host.join("y").exists());
    let v = format!("{}:/m", missing.display());
    d.ok(&["run", "--rm", "-v", &v, "busybox", "true"]);
    assert!(missing.is_dir(), "-v makes a missing host dir");
    // tmpfs through --mount.
    assert_eq!(
        d.berth_ok(&[
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=0700",
            "busybox",
            "sh",
            "-c",
            "grep ' /t ' /proc/mounts | cut -d' ' -f3; stat -c %a /t"
        ]),
        "tmpfs\n700"
    );
    // berth's volume commands against the server.
    assert_eq!(
        d.berth_ok(&["volume", "create", "--label", "team=a", "bv"]),
        "bv"
    );
    assert_eq!(
        d.berth_ok(&["volume", "ls", "-q", "--filter", "label=team=a"]),
        "bv"
    );
    assert_eq!(
        d.berth_ok(&["volume", "inspect", "-f", "{{.Driver}} {{.Scope}}", "bv"]),
        "local local"
    );
    d.berth_ok(&[
        "run",
        "--rm",
        "-v",
        "bv:/d",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /d/n",
    ]);
    assert_eq!(
        d.berth_ok(&["run", "--rm", "-v", "bv:/d", "busybox", "cat", "/d/n"]),
        "1"
    );
    d.berth_ok(&["create", "--name", "user", "-v", "bv:/d", "busybox"]);
    let o = d.berth(&["volume", "rm", "bv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("volume is in use"), "{}", stderr(&o));
    d.berth_ok(&["rm", "user"]);
    assert_eq!(d.berth_ok(&["volume", "rm", "bv"]), "bv");
    rm_all(&d);
    assert_no_volume_mounts(&d);
}

/// A busybox image whose /data holds files owned by 1000:1000, and `VOLUME /data`.
fn data_image(d: &Daemon) {
    let base = common::busybox_tar(&d.root);
    let stage = d.root.join("stage");
    std::fs::create_dir_all(stage.join("data/sub")).expect("mkdir");
    std::fs::write(stage.join("data/hello"), "from image\n").expect("write");
    std::fs::write(stage.join("data/sub/deep"), "deep\n").expect("write");
    let run = |c: &mut Command| assert!(c.status().expect("run").success(), "{c:?}");
    run(Command::new("chmod")
        .arg("640")
        .arg(stage.join("data/hello")));
    run(Command::new("tar")
        .args(["--owner=1000", "--group=1000", "-rf"])
        .arg(&base)
        .arg("-C")
        .arg(&stage)
        .arg("data"));
    d.ok(&[
        "import",
        "-c",
        "VOLUME /data",
        "-c",
        "CMD [\"/bin/sh\"]",
        base.to_str().expect("path"),
        "dataimg:1",
    ]);
}

#[test]
fn copy_up_and_anonymous_volumes() {
    let d = Daemon::start();
    data_image(&d);
    // The image's VOLUME gets an anonymous volume, filled from the image.
    assert_eq!(
        d.ok(&["run", "--name", "ca", "dataimg:1", "cat", "/data/hello"]),
        "from image"
    );
    let anon = d.ok(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "ca"]);
    assert_eq!(anon.len(), 64, "{anon}");
    let mp = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", &anon]);
    let meta = std::fs::metadata(Path::new(&mp).join("hello")).expect("copied");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (1000, 1000, 0o640)
    );
    assert_eq!(
        std::fs::read_to_string(Path::new(&mp).join("sub/deep")).expect("deep"),
        "deep\n"
    );
    // Without -v the anonymous volume stays; with -v it goes.
    d.ok(&["rm", "ca"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), anon);
    d.ok(&["run", "--name", "cb", "-v", "/extra", "dataimg:1", "true"]);
    let b_vols = d.ok(&["inspect", "-f", "{{range .Mounts}}{{.Name}} {{end}}", "cb"]);
    assert_eq!(b_vols.split_whitespace().count(), 2, "{b_vols}");
    d.ok(&["rm", "-v", "cb"]);
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]),
        anon,
        "rm -v removed b's anonymous volumes"
    );
    // --rm removes them too.
    d.ok(&["run", "--rm", "dataimg:1", "true"]);
    assert!(eventually(Duration::from_secs(5), || d
        .ok(&["volume", "ls", "-q"])
        == anon));
    // A named volume is filled when empty; nocopy leaves it empty; a full one is kept.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "cv:/data",
            "dataimg:1",
            "stat",
            "-c",
            "%u:%g %a",
            "/data/hello"
        ]),
        "1000:1000 640"
    );
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "cv:/data",
        "dataimg:1",
        "sh",
        "-c",
        "echo changed > /data/hello",
    ]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "cv:/data",
            "dataimg:1",
            "cat",
            "/data/hello"
        ]),
        "changed"
    );
    // Copy-up happens once per container: emptied, a restarted container's volume stays so.
    d.ok(&[
        "run",
        "--name",
        "once",
        "-v",
        "once:/data",
        "dataimg:1",
        "rm",
        "-rf",
        "/data/hello",
        "/data/sub",
    ]);
    d.ok(&["start", "-a", "once"]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "once:/data:nocopy",
            "dataimg:1",
            "ls",
            "-A",
            "/data"
        ]),
        ""
    );
    d.ok(&["rm", "once"]);
    d.ok(&["volume", "rm", "once"]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "nc:/data:nocopy",
            "dataimg:1",
            "ls",
            "-A",
            "/data"
        ]),
        ""
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,source=nc2,target=/data,volume-nocopy",
            "dataimg:1",
            "ls",
            "-A",
            "/data"
        ]),
        ""
    );
    // Named volumes survive rm -v.
    d.ok(&["run", "--name", "cc", "-v", "cv:/data", "dataimg:1", "true"]);
    d.ok(&["rm", "-v", "cc"]);
    assert!(d.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "cv"));
    // Prune: since API 1.42 only anonymous volumes, unless --all.
    let o = d.ok(&["volume", "prune", "-f"]);
    assert!(o.contains(&anon), "{o}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "cv\nnc\nnc2");
    d.busybox();
    d.ok(&["create", "--name", "keep", "-v", "nc:/x", "busybox", "true"]);
    let df = d.ok(&[
        "system",
        "df",
        "-v",
        "--format",
        "{{range .Volumes}}{{.Name}}={{.Links}} {{end}}",
    ]);
    assert!(df.contains("nc=1") && df.contains("cv=0"), "{df}");
    d.ok(&["rm", "keep"]);
    d.ok(&["create", "--name", "gone", "-v", "/anon", "busybox", "true"]);
    // (The docker CLI's `system prune` also needs /build/prune, which berthd lacks; berth's
    // skips it.)
    let o = d.berth_ok(&["system", "prune", "--volumes", "-f"]);
    assert!(o.contains("Deleted Volumes"), "{o}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "cv\nnc\nnc2");
    let o = d.ok(&["volume", "prune", "-af"]);
    assert!(
        o.contains("cv") && o.contains("Total reclaimed space"),
        "{o}"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
    rm_all(&d);
    assert_no_volume_mounts(&d);
}

#[test]
fn tmpfs_volume_volumes_from_and_daemon_restart() {
    let mut d = Daemon::start();
    d.busybox();
    let o = d.docker(&["volume", "create", "--opt", "colour=red", "bad"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("invalid option key: \"colour\""),
        "{}",
        stderr(&o)
    );
    d.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "tv",
    ]);
    d.ok(&["volume", "create", "disk"]);
    let data = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "tv"]);
    assert!(
        !d.mounts_under_root().contains(&data),
        "mounted only while used"
    );
    d.ok(&[
        "run", "-d", "--name", "r1", "-v", "tv:/t", "-v", "disk:/d", "busybox", "sleep", "1000",
    ]);
    assert!(
        d.mounts_under_root().contains(&data),
        "first user mounts the tmpfs"
    );
    assert_eq!(
        d.ok(&[
            "exec",
            "r1",
            "sh",
            "-c",
            "grep ' /t ' /proc/mounts | cut -d' ' -f3"
        ]),
        "tmpfs"
    );
    let o = d.docker(&[
        "exec",
        "r1",
        "sh",
        "-c",
        "dd if=/dev/zero of=/t/big bs=1k count=2048",
    ]);
    assert_ne!(o.status.code(), Some(0), "size=1m is enforced");
    d.ok(&["exec", "r1", "sh", "-c", "rm -f /t/big; echo kept > /d/f"]);
    // --volumes-from shares every mount, optionally read-only.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "r1",
            "busybox",
            "sh",
            "-c",
            "echo x > /t/f; cat /t/f /d/f"
        ]),
        "x\nkept"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "r1:ro",
        "busybox",
        "touch",
        "/d/g",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(d.ok(&["exec", "r1", "cat", "/t/f"]), "x");
    // The daemon dies and comes back: volumes, their data and the tmpfs user count remain.
    d.kill9();
    d.spawn();
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "disk\ntv");
    assert_eq!(d.ok(&["exec", "r1", "cat", "/t/f", "/d/f"]), "x\nkept");
    d.ok(&["run", "--rm", "-v", "tv:/t", "busybox", "true"]);
    assert!(d.mounts_under_root().contains(&data), "r1 still uses tv");
    d.ok(&["stop", "-t", "0", "r1"]);
    assert!(
        eventually(Duration::from_secs(5), || !d
            .mounts_under_root()
            .contains(&data)),
        "the last user's stop unmounts the tmpfs"
    );
    // A volume acknowledged before a kill -9 is there after it.
    d.ok(&["volume", "create", "late"]);
    d.kill9();
    d.spawn();
    assert!(d.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "late"));
    rm_all(&d);
    assert_no_volume_mounts(&d);
}
