//! Packing a directory in overlayfs form (a container's upper dir, a layer's diff) into a
//! layer tar, for `commit` and `export`.
//!
//! The reverse of `unpack.rs`: a 0/0 character device becomes a `.wh.<name>` entry, a
//! directory with `trusted.overlay.opaque=y` gets a `.wh..wh..opq` entry, files with several
//! links are stored once and linked, extended attributes travel as PAX `SCHILY.xattr.*`
//! records (overlayfs' own `trusted.overlay.*` never do). Entries are sorted by name so the
//! same tree always packs to the same bytes.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::error::ImageError;
use super::sys;
use super::unpack::OPAQUE_XATTR;

/// Writes `dir` as a layer tar to `out` and finishes the archive.
pub fn pack_layer(dir: &Path, out: impl Write) -> Result<(), ImageError> {
    let mut p = Packer {
        root: dir.to_owned(),
        tar: tar::Builder::new(out),
        links: HashMap::new(),
    };
    p.walk(Path::new(""))?;
    p.tar.into_inner().map_err(werr)?.flush().map_err(werr)
}

fn werr(e: io::Error) -> ImageError {
    ImageError::Internal(format!("writing layer tar: {e}"))
}

struct Packer<W: Write> {
    root: PathBuf,
    tar: tar::Builder<W>,
    /// (dev, inode) → first path packed, for hard links.
    links: HashMap<(u64, u64), PathBuf>,
}

fn header(kind: EntryType, m: &fs::Metadata) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(u64::from(m.uid()));
    h.set_gid(u64::from(m.gid()));
    h.set_mtime(u64::try_from(m.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

impl<W: Write> Packer<W> {
    fn walk(&mut self, rel: &Path) -> Result<(), ImageError> {
        let dir = self.root.join(rel);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(ImageError::io("read", &dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(ImageError::io("read", &dir))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let rel = rel.join(&name);
            let full = self.root.join(&rel);
            let m = fs::symlink_metadata(&full).map_err(ImageError::io("stat", &full))?;
            self.entry(&rel, &full, &m)?;
            if m.is_dir() {
                self.walk(&rel)?;
            }
        }
        Ok(())
    }

    fn xattrs(&mut self, full: &Path) -> Result<(), ImageError> {
        let mut records = Vec::new();
        for name in sys::llistxattr(full).map_err(ImageError::io("list xattrs of", full))? {
            if name.starts_with("trusted.overlay.") {
                continue;
            }
            if let Some(v) =
                sys::lgetxattr(full, &name).map_err(ImageError::io("read xattr of", full))?
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

    fn entry(&mut self, rel: &Path, full: &Path, m: &fs::Metadata) -> Result<(), ImageError> {
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            let name = rel.file_name().unwrap_or_default();
            let wh = rel.with_file_name(format!(".wh.{}", name.to_string_lossy()));
            let mut h = header(EntryType::Regular, m);
            h.set_mode(0o600);
            return self.tar.append_data(&mut h, wh, io::empty()).map_err(werr);
        }
        if ft.is_socket() {
            return Ok(());
        }
        self.xattrs(full)?;
        if ft.is_dir() {
            let mut h = header(EntryType::Directory, m);
            self.tar
                .append_data(&mut h, rel, io::empty())
                .map_err(werr)?;
            if sys::lgetxattr(full, OPAQUE_XATTR)
                .map_err(ImageError::io("read xattr of", full))?
                .as_deref()
                == Some(b"y")
            {
                let mut o = header(EntryType::Regular, m);
                o.set_mode(m.mode() & 0o777);
                self.tar
                    .append_data(&mut o, rel.join(".wh..wh..opq"), io::empty())
                    .map_err(werr)?;
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(full).map_err(ImageError::io("readlink", full))?;
            let mut h = header(EntryType::Symlink, m);
            self.tar.append_link(&mut h, rel, target).map_err(werr)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                    let mut h = header(EntryType::Link, m);
                    let first = first.clone();
                    return self.tar.append_link(&mut h, rel, first).map_err(werr);
                }
                self.links.insert((m.dev(), m.ino()), rel.to_owned());
            }
            let mut h = header(EntryType::Regular, m);
            h.set_size(m.len());
            let f = File::open(full).map_err(ImageError::io("open", full))?;
            self.tar.append_data(&mut h, rel, f).map_err(werr)?;
        } else {
            let kind = if ft.is_char_device() {
                EntryType::Char
            } else if ft.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            };
            let mut h = header(kind, m);
            let dev = m.rdev();
            h.set_device_major(libc::major(dev)).map_err(werr)?;
            h.set_device_minor(libc::minor(dev)).map_err(werr)?;
            self.tar
                .append_data(&mut h, rel, io::empty())
                .map_err(werr)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::image::digest::Digest;
    use crate::image::unpack::unpack_layer;

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
            sys::lgetxattr(&back.join("etc/opaque"), OPAQUE_XATTR).expect("xattr"),
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
            sys::lgetxattr(&back.join("bin"), "user.test").expect("xattr"),
            Some(b"v".to_vec())
        );
        assert_eq!(
            fs::read_link(back.join("sh")).expect("link"),
            Path::new("/bin")
        );
    }
}
