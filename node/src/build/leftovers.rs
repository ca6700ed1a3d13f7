//! What builds interrupted by a dead berthd left in the data root's `tmp`: contexts
//! (`build-context-*`), staging overlays still mounted (`build-stage-*`, `build-from-*`),
//! layer tars (`build-layer-*`, `build-run-*`). Swept once at start, before the API opens,
//! so no build of this daemon can be using them. (Their RUN containers are removed by
//! `container::leftovers`.)

use std::path::{Path, PathBuf};

/// Prefix of every temporary entry a build makes (`Builder::tmp_file`).
pub const TMP_PREFIX: &str = "build-";

/// Unmounts and removes every build entry in `tmp_dir`.
pub fn sweep(tmp_dir: &Path) {
    let Ok(rd) = std::fs::read_dir(tmp_dir) else {
        return;
    };
    let doomed: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(TMP_PREFIX))
        .map(|e| e.path())
        .collect();
    if doomed.is_empty() {
        return;
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for dir in doomed {
        for m in mounts_at_or_below(&info, &dir) {
            if let Err(e) = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
                tracing::warn!(path = %m.display(), error = %e, "unmounting a build's leftover mount");
            }
        }
        let res = if dir.is_dir() {
            std::fs::remove_dir_all(&dir)
        } else {
            std::fs::remove_file(&dir)
        };
        match res {
            Ok(()) => {
                tracing::info!(path = %dir.display(), "removed what an interrupted build left")
            }
            Err(e) => {
                tracing::warn!(path = %dir.display(), error = %e, "removing a build's leftover")
            }
        }
    }
}

/// The mount points in `mountinfo` at or below `dir`, deepest first (so each can be
/// unmounted in turn).
pub fn mounts_at_or_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|t| PathBuf::from(unescape(t)))
        .filter(|t| t.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 0:50 / /d/tmp/build-stage-1/merged rw - overlay overlay rw,lowerdir=/l
91 90 0:51 / /d/tmp/build-stage-1/merged/proc rw - proc proc rw
92 22 0:52 / /d/tmp/build-stage-10/merged rw - overlay overlay rw
93 22 0:53 / /d/tmp/build-from-2/with\\040space rw - overlay overlay rw
94 22 0:54 / /d/containers/x/merged rw - overlay overlay rw
";

    #[test]
    fn mounts_below_a_dir_deepest_first() {
        assert_eq!(
            mounts_at_or_below(INFO, Path::new("/d/tmp/build-stage-1")),
            vec![
                PathBuf::from("/d/tmp/build-stage-1/merged/proc"),
                PathBuf::from("/d/tmp/build-stage-1/merged"),
            ]
        );
        // A sibling whose name merely starts the same is not below it.
        assert_eq!(
            mounts_at_or_below(INFO, Path::new("/d/tmp/build-stage-10")),
            vec![PathBuf::from("/d/tmp/build-stage-10/merged")]
        );
        assert_eq!(
            mounts_at_or_below(INFO, Path::new("/d/tmp/build-from-2")),
            vec![PathBuf::from("/d/tmp/build-from-2/with space")]
        );
        assert!(mounts_at_or_below(INFO, Path::new("/d/tmp/build-context-3")).is_empty());
    }

    #[test]
    fn sweep_removes_build_entries_only() {
        let d = tempfile::tempdir().expect("tmp");
        let ctx = d.path().join("build-context-1");
        std::fs::create_dir_all(ctx.join("sub")).expect("mkdir");
        std::fs::write(ctx.join("sub/f"), "x").expect("write");
        std::fs::write(d.path().join("build-layer-2"), "tar").expect("write");
        std::fs::create_dir(d.path().join("images")).expect("mkdir");
        sweep(d.path());
        let left: Vec<String> = std::fs::read_dir(d.path())
            .expect("read")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["images".to_owned()]);
    }
}
