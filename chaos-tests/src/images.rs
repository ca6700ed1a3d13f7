//! Images for tests that run containers: a busybox image made from the machine's
//! busybox-static, imported with `docker import` (no registry needed).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::net::run_ok;
use crate::Host;

/// A busybox root filesystem tar under `dir` (needs /bin/busybox from busybox-static).
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("busybox-rootfs");
    for d in ["bin", "etc", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("busybox-static must be installed (/bin/busybox)");
    let list = run_ok(Command::new("/bin/busybox").arg("--list"));
    for applet in list.split_whitespace().filter(|a| *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").expect("group");
    let tar = dir.join("busybox.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    );
    let _ = std::fs::remove_dir_all(&rootfs);
    tar
}

impl Host {
    /// Imports busybox as `busybox:latest` into this host's berthd.
    pub fn import_busybox(&self) {
        let tar = busybox_tar(self.root());
        let tar = tar.to_str().expect("utf-8 path");
        self.docker_ok(&["import", "-c", "CMD [\"/bin/sh\"]", tar, "busybox:latest"]);
    }
}
