//! Docker's copy-up: a volume that is empty when a container mounts it gets the image's
//! content at the mount path, with ownership, modes, times, xattrs, symlinks, hard links and
//! special files preserved; the volume's root takes the owner and mode of the image's dir.

use std::path::Path;

use super::VolumeError;
use crate::fsroot::write::{self, Writer};
use crate::fsroot::{Root, RootError};

fn root_err(e: RootError) -> VolumeError {
    VolumeError::Io {
        what: e.op,
        path: e.path,
        source: e.source,
    }
}

/// Whether `dir` has no entries (a missing dir counts as empty).
pub fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut rd| rd.next().is_none())
}

/// Copies the tree at `src` inside `src_root` (the container's root file system, symlinks
/// followed inside it) into the empty directory `dst`. A missing `src`, or one that is not a
/// directory, copies nothing. Both sides are worked through file descriptors: neither the
/// image's symlinks nor anything planted in the volume meanwhile lead outside.
pub fn copy_up(src_root: &Root, src: &str, dst: &Path) -> Result<(), VolumeError> {
    let fd = match src_root.dir(src) {
        Ok(fd) => fd,
        Err(_) => return Ok(()),
    };
    let dst_root = Root::open(dst).map_err(root_err)?;
    let mut w = Writer::new(
        &dst_root,
        "/",
        write::Options {
            chown: true,
            no_overwrite_dir_non_dir: false,
            parent_mode: 0o755,
            parent_owner: None,
            xattrs: true,
        },
    );
    write::copy_tree(&mut w, &fd, Path::new(""), &write::meta_of_stat).map_err(root_err)?;
    w.finish().map_err(root_err)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn copies_files_links_and_modes() {
        let d = tempfile::tempdir().expect("tmp");
        let src = d.path().join("src");
        let dst = d.path().join("dst");
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::create_dir(&dst).expect("mkdir");
        std::fs::write(src.join("sub/f"), "hello").expect("write");
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640))
            .expect("chmod");
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o711)).expect("chmod");
        std::fs::hard_link(src.join("sub/f"), src.join("hard")).expect("link");
        std::os::unix::fs::symlink("sub/f", src.join("sym")).expect("symlink");
        assert!(is_empty(&dst));
        let sr = Root::open(d.path()).expect("root");
        copy_up(&sr, "/src", &dst).expect("copy");
        assert_eq!(
            std::fs::read_to_string(dst.join("sub/f")).expect("read"),
            "hello"
        );
        let m = std::fs::metadata(dst.join("sub/f")).expect("stat");
        assert_eq!(m.mode() & 0o777, 0o640);
        assert_eq!(m.nlink(), 2, "the hard link stays a hard link");
        assert_eq!(
            std::fs::read_link(dst.join("sym")).expect("readlink"),
            Path::new("sub/f")
        );
        assert_eq!(std::fs::metadata(&dst).expect("stat").mode() & 0o777, 0o711);
        assert_eq!(
            std::fs::metadata(src.join("sub/f")).expect("stat").mtime(),
            m.mtime()
        );
    }

    #[test]
    fn missing_source_copies_nothing() {
        let d = tempfile::tempdir().expect("tmp");
        let sr = Root::open(d.path()).expect("root");
        copy_up(&sr, "/nope", d.path()).expect("copy");
        assert!(is_empty(d.path()));
    }
}
