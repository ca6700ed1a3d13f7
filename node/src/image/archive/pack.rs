//! Packing a directory in overlayfs form (a container's upper dir, a layer's diff) into a
//! layer tar, for `commit` and `export`.
//!
//! The reverse of `unpack.rs`: a 0/0 character device becomes a `.wh.<name>` entry, a
//! directory with `trusted.overlay.opaque=y` gets a `.wh..wh..opq` entry, files with several
//! links are stored once and linked, extended attributes travel as PAX `SCHILY.xattr.*`
//! records (overlayfs' own `trusted.overlay.*` never do). Entries are sorted by name so the
//! same tree always packs to the same bytes.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::fsroot::tree::{self, ExactReader, Kind, Node};
use crate::fsroot::{Root, RootError};

use crate::image::error::ImageError;
use crate::image::store::sys;
use crate::image::store::unpack::OPAQUE_XATTR;

/// Writes `dir` as a layer tar to `out` and finishes the archive. The tree is read through
/// file descriptors ([`crate::fsroot::tree`]): a container still writing its upper dir (a
/// commit without pause) cannot swap a directory for a symlink to the host under us.
pub fn pack_layer(dir: &Path, out: impl Write) -> Result<(), ImageError> {
    let top = Root::open(dir)
        .and_then(|r| r.dir("/"))
        .map_err(|e| ImageError::io("open", dir)(e.source))?;
    let mut p = Packer {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
    };
    tree::walk(&top, &mut |n| {
        if n.rel.as_os_str().is_empty() {
            return Ok(true);
        }
        p.entry(n)
            .map_err(|e| RootError::new("pack", n.rel, io::Error::other(e.to_string())))?;
        Ok(n.kind() == Kind::Dir)
    })
    .map_err(|e| ImageError::Internal(format!("packing {}: {e}", dir.display())))?;
    p.tar.into_inner().map_err(werr)?.flush().map_err(werr)
}

fn werr(e: io::Error) -> ImageError {
    ImageError::Internal(format!("writing layer tar: {e}"))
}

struct Packer<W: Write> {
    tar: tar::Builder<W>,
    /// (dev, inode) → first path packed, for hard links.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Packer<W> {
    /// PAX records of the inode's extended attributes (not overlayfs' own); `full` names the
    /// inode through its fd's magic link.
    fn xattrs(&mut self, full: &Path) -> Result<(), ImageError> {
        let mut records = Vec::new();
        for name in sys::listxattr(full).map_err(ImageError::io("list xattrs of", full))? {
            if name.starts_with("trusted.overlay.") {
                continue;
            }
            if let Some(v) =
                sys::getxattr(full, &name).map_err(ImageError::io("read xattr of", full))?
            {
                records.push((format!("SCHILY.xattr.{name}"), v));
            }
        }
        if !records.is_empty() {
            let iter = records.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
            self.tar.append_pax_extensions(iter).map_err(werr)?;
        }
        Ok(())
    }

    fn entry(&mut self, n: &Node<'_>) -> Result<(), ImageError> {
        let rel = n.rel;
        let st = n.stat;
        let kind = n.kind();
        let full = Root::proc_path(n.fd);
        if kind == Kind::Char && st.st_rdev == 0 {
            let name = rel.file_name().unwrap_or_default();
            let wh = rel.with_file_name(format!(".wh.{}", name.to_string_lossy()));
            let mut h = tree::header(EntryType::Regular, st);
            h.set_mode(0o600);
            return self.tar.append_data(&mut h, wh, io::empty()).map_err(werr);
        }
        if kind == Kind::Socket {
            return Ok(());
        }
        if matches!(kind, Kind::Dir | Kind::File) {
            self.xattrs(&full)?;
        }
        match kind {
            Kind::Dir => {
                let mut h = tree::header(EntryType::Directory, st);
                self.tar
                    .append_data(&mut h, rel, io::empty())
                    .map_err(werr)?;
                if sys::getxattr(&full, OPAQUE_XATTR)
                    .map_err(ImageError::io("read xattr of", rel))?
                    .as_deref()
                    == Some(b"y")
                {
                    let mut o = tree::header(EntryType::Regular, st);
                    o.set_mode(st.st_mode & 0o777);
                    self.tar
                        .append_data(&mut o, rel.join(".wh..wh..opq"), io::empty())
                        .map_err(werr)?;
                }
            }
            Kind::Symlink => {
                let target = n
                    .link_target()
                    .map_err(|e| ImageError::io("readlink", rel)(e.source))?;
                let mut h = tree::header(EntryType::Symlink, st);
                self.tar.append_link(&mut h, rel, target).map_err(werr)?;
            }
            Kind::File => {
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&(st.st_dev, st.st_ino)) {
                        let mut h = tree::header(EntryType::Link, st);
                        let first = first.clone();
                        return self.tar.append_link(&mut h, rel, first).map_err(werr);
                    }
                    self.links.insert((st.st_dev, st.st_ino), rel.to_owned());
                }
                let mut h = tree::header(EntryType::Regular, st);
                let f = n
                    .open()
                    .map_err(|e| ImageError::io("open", rel)(e.source))?;
                // The size of the inode as opened: a file still growing is cut there.
                let size = f
                    .metadata()
                    .map_err(ImageError::io("stat", rel))?
                    .len()
                    .min(u64::try_from(st.st_size).unwrap_or(0));
                h.set_size(size);
                self.tar
                    .append_data(&mut h, rel, ExactReader::new(f, size))
                    .map_err(werr)?;
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                let t = match kind {
                    Kind::Char => EntryType::Char,
                    Kind::Block => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = tree::header(t, st);
                h.set_device_major(libc::major(st.st_rdev)).map_err(werr)?;
                h.set_device_minor(libc::minor(st.st_rdev)).map_err(werr)?;
                self.tar
                    .append_data(&mut h, rel, io::empty())
                    .map_err(werr)?;
            }
            Kind::Socket => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    use super::*;
    use crate::image::digest::Digest;
    use crate::image::store::unpack::unpack_layer;

    #[test]
    fn packs_overlay_form_back_into_an_oci_layer() {
        let src = tempfile::tempdir().expect("tempdir");
        let d = src.path();
        fs::create_dir_all(d.join("etc/opaque")).expect("mkdir");
        sys::lsetxattr(&d.join("etc/opaque"), OPAQUE_XATTR, b"y").expect("opaque");
        fs::write(d.join("etc/opaque/inside"), b"kept").expect("write");
        fs::write(d.join("bin"), b"exe").expect("write");
        fs::set_permissions(d.join("bin"), fs::Permissions::from_mode(0o4711)).expect("chmod");
        fs::hard_link(d.join("bin"), d.join("bin2")).expect("link");
        std::os::unix::fs::symlink("/bin", d.join("sh")).expect("symlink");
        sys::mknod(&d.join("deleted"), libc::S_IFCHR, 0, 0).expect("whiteout");
        sys::lsetxattr(&d.join("bin"), "user.test", b"v").expect("xattr");

        let mut tar = Vec::new();
        pack_layer(d, &mut tar).expect("pack");
        let mut names = Vec::new();
        for e in tar::Archive::new(&tar[..]).entries().expect("entries") {
            let mut e = e.expect("entry");
            names.push((
                e.path().expect("path").display().to_string(),
                e.header().entry_type(),
            ));
            e.read_to_end(&mut Vec::new()).expect("read");
        }
        assert!(
            names.contains(&(".wh.deleted".into(), EntryType::Regular)),
            "{names:?}"
        );
        assert!(
            names.contains(&("etc/opaque/.wh..wh..opq".into(), EntryType::Regular)),
            "{names:?}"
        );
        assert!(
            names.contains(&("bin2".into(), EntryType::Link)),
            "{names:?}"
        );

        let mut again = Vec::new();
        pack_layer(d, &mut again).expect("pack again");
        assert_eq!(
            Digest::of_bytes(&tar),
            Digest::of_bytes(&again),
            "packing is deterministic"
        );

        let tmp = tempfile::tempdir().expect("tempdir");
        let u = unpack_layer(&tar[..], tmp.path()).expect("unpack");
        let back = u.dir.join("diff");
        assert_eq!(
            fs::read(back.join("etc/opaque/inside")).expect("read"),
            b"kept"
        );
        assert_eq!(
            sys::getxattr(&back.join("etc/opaque"), OPAQUE_XATTR).expect("xattr"),
            Some(b"y".to_vec())
        );
        assert_eq!(
            fs::symlink_metadata(back.join("deleted"))
                .expect("wh")
                .rdev(),
            0
        );
        assert!(fs::symlink_metadata(back.join("deleted"))
            .expect("wh")
            .file_type()
            .is_char_device());
        let (a, b) = (
            fs::metadata(back.join("bin")).expect("bin"),
            fs::metadata(back.join("bin2")).expect("bin2"),
        );
        assert_eq!((a.ino(), a.mode() & 0o7777), (b.ino(), 0o4711));
        assert_eq!(
            sys::getxattr(&back.join("bin"), "user.test").expect("xattr"),
            Some(b"v".to_vec())
        );
        assert_eq!(
            fs::read_link(back.join("sh")).expect("link"),
            Path::new("/bin")
        );
    }
}
