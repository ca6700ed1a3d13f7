//! The container's file system from outside: `cp` (archive stat/get/put), `export`, and
//! `diff` (changes), all resolved inside the container's root so symlinks cannot escape it.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use berth_api::backend::{BodyStream, ByteStream, PathStat};
use bytes::Bytes;
use futures_util::TryStreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{ContainerError, Containers, Ctr};
use crate::image::ImageService;

/// Resolves `path` inside `root` as the container would see it: `..` and symlinks (absolute
/// ones relative to `root`) never leave `root`.
pub fn resolve_in_root(
    root: &Path,
    path: &str,
    follow_last: bool,
) -> Result<PathBuf, ContainerError> {
    let mut parts: Vec<String> = Vec::new();
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .rev()
        .collect();
    let mut hops = 0;
    while let Some(p) = todo.pop() {
        match p.as_str() {
            "." => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(parts.iter().collect::<PathBuf>()).join(&p);
        let is_last = todo.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !is_last) => {
                hops += 1;
                if hops > 40 {
                    return Err(ContainerError::Invalid(format!(
                        "too many levels of symbolic links in {path}"
                    )));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| ContainerError::io("readlink", &candidate, e))?;
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    parts.clear();
                }
                todo.extend(
                    t.split('/')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .rev(),
                );
            }
            _ => parts.push(p),
        }
    }
    Ok(root.join(parts.iter().collect::<PathBuf>()))
}

/// Go's `os.FileMode` bits, which `X-Docker-Container-Path-Stat` carries.
fn go_mode(m: &std::fs::Metadata) -> u32 {
    let ft = m.file_type();
    let mut mode = m.mode() & 0o777;
    if ft.is_dir() {
        mode |= 1 << 31;
    }
    if ft.is_symlink() {
        mode |= 1 << 27;
    }
    if ft.is_fifo() {
        mode |= 1 << 25;
    }
    if ft.is_socket() {
        mode |= 1 << 24;
    }
    if ft.is_block_device() {
        mode |= 1 << 26;
    }
    if ft.is_char_device() {
        mode |= (1 << 26) | (1 << 21);
    }
    if m.mode() & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if m.mode() & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    if m.mode() & 0o1000 != 0 {
        mode |= 1 << 20;
    }
    mode
}

fn stat_of(root: &Path, path: &str) -> Result<(PathBuf, PathStat), ContainerError> {
    let full = resolve_in_root(root, path, false)?;
    let m = std::fs::symlink_metadata(&full).map_err(|_| {
        ContainerError::NotFound(format!("Could not find the file {path} in container"))
    })?;
    let link_target = if m.file_type().is_symlink() {
        std::fs::read_link(&full)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let mtime =
        chrono::DateTime::from_timestamp(m.mtime(), m.mtime_nsec() as u32).unwrap_or_default();
    Ok((
        full,
        PathStat {
            name,
            size: m.len() as i64,
            mode: go_mode(&m),
            mtime: mtime.to_rfc3339(),
            link_target,
        },
    ))
}

/// A `Write` that sends what it is given as chunks of a byte stream.
struct ChanWriter(mpsc::Sender<Bytes>);

impl std::io::Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::other("client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A tar of `src` with its entries named under `name` (empty: the contents themselves).
fn tar_stream(src: PathBuf, name: String, guard: Option<RootfsGuard>) -> ByteStream {
    let (tx, rx) = mpsc::channel(16);
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let mut b = tar::Builder::new(ChanWriter(tx));
        b.follow_symlinks(false);
        let res = match std::fs::symlink_metadata(&src) {
            Ok(m) if m.is_dir() => {
                b.append_dir_all(if name.is_empty() { "." } else { &name }, &src)
            }
            Ok(_) => b.append_path_with_name(&src, &name),
            Err(e) => Err(e),
        };
        if res.is_ok() {
            let _ = b.finish();
        }
    });
    ByteStream {
        tty: false,
        stream: super::logs::tokio_stream_from(rx),
    }
}

/// Keeps a stopped container's rootfs mounted while it is read; unmounts when dropped.
pub struct RootfsGuard(Option<PathBuf>);

impl Drop for RootfsGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = ImageService::unmount_rootfs(&p);
        }
    }
}

impl Containers {
    /// The container's merged root, mounting it if the container is not running.
    fn rootfs(&self, c: &Ctr) -> Result<(PathBuf, RootfsGuard), ContainerError> {
        let paths = self.paths(&c.id);
        let merged = paths.merged();
        if c.is_running() {
            return Ok((merged, RootfsGuard(None)));
        }
        let image = self
            .inner
            .images
            .resolve(&c.record().image_id)
            .map_err(|e| ContainerError::Runtime(e.message))?;
        let _ = ImageService::unmount_rootfs(&merged);
        for d in [paths.upper(), paths.work(), merged.clone()] {
            std::fs::create_dir_all(&d).map_err(|e| ContainerError::io("create", &d, e))?;
        }
        // As `launch` mounts it (a `--rm` container's overlay is volatile).
        let mount = if c.record().host_config.auto_remove {
            ImageService::mount_rootfs_volatile
        } else {
            ImageService::mount_rootfs
        };
        mount(
            &paths.lowers(&image.layer_dirs, c.record().host_config.init == Some(true))?,
            &paths.upper(),
            &paths.work(),
            &merged,
        )
        .map_err(|e| ContainerError::Runtime(format!("mount rootfs: {e}")))?;
        Ok((merged.clone(), RootfsGuard(Some(merged))))
    }

    pub async fn archive_stat(&self, key: &str, path: &str) -> Result<PathStat, ContainerError> {
        let c = self.get(key)?;
        let (root, _g) = self.rootfs(&c)?;
        Ok(stat_of(&root, path)?.1)
    }

    pub async fn archive_get(
        &self,
        key: &str,
        path: &str,
    ) -> Result<(PathStat, ByteStream), ContainerError> {
        let c = self.get(key)?;
        let (root, guard) = self.rootfs(&c)?;
        let (full, stat) = stat_of(&root, path)?;
        // `path/.` copies the directory's contents, not the directory.
        let name = if path.ends_with("/.") {
            String::new()
        } else {
            stat.name.clone()
        };
        Ok((stat, tar_stream(full, name, Some(guard))))
    }

    pub async fn archive_put(
        &self,
        key: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        body: BodyStream,
    ) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        if c.record().host_config.readonly_rootfs {
            return Err(ContainerError::Forbidden(
                "container rootfs is marked read-only".into(),
            ));
        }
        let (root, guard) = self.rootfs(&c)?;
        let dest = resolve_in_root(&root, path, true)?;
        match std::fs::metadata(&dest) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(ContainerError::Invalid(format!(
                    "extraction point is not a directory: {path}"
                )))
            }
            Err(_) => {
                return Err(ContainerError::NotFound(format!(
                    "Could not find the file {path} in container"
                )))
            }
        }
        let reader = tokio_util::io::StreamReader::new(body.map_err(std::io::Error::other));
        let sync = tokio_util::io::SyncIoBridge::new(reader);
        tokio::task::spawn_blocking(move || -> Result<(), ContainerError> {
            let _g = guard;
            let mut ar = tar::Archive::new(sync);
            ar.set_preserve_permissions(true);
            ar.set_preserve_ownerships(copy_uid_gid);
            ar.set_overwrite(true);
            for entry in ar
                .entries()
                .map_err(|e| ContainerError::Invalid(format!("reading tar: {e}")))?
            {
                let mut entry =
                    entry.map_err(|e| ContainerError::Invalid(format!("reading tar: {e}")))?;
                let rel = entry
                    .path()
                    .map_err(|e| ContainerError::Invalid(format!("bad tar path: {e}")))?
                    .into_owned();
                if rel.components().any(|c| matches!(c, Component::ParentDir)) {
                    return Err(ContainerError::Invalid(format!(
                        "tar entry {} escapes the destination",
                        rel.display()
                    )));
                }
                let target = resolve_in_root(
                    &root,
                    &format!(
                        "{}/{}",
                        dest.strip_prefix(&root).unwrap_or(&dest).display(),
                        rel.display()
                    ),
                    false,
                )?;
                if no_overwrite_dir_non_dir {
                    if let Ok(m) = std::fs::symlink_metadata(&target) {
                        let new_is_dir = entry.header().entry_type().is_dir();
                        if m.is_dir() != new_is_dir {
                            return Err(ContainerError::Invalid(format!(
                                "cannot overwrite {} with a {}",
                                rel.display(),
                                if new_is_dir {
                                    "directory"
                                } else {
                                    "non-directory"
                                }
                            )));
                        }
                    }
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| ContainerError::io("create", parent, e))?;
                }
                entry
                    .unpack(&target)
                    .map_err(|e| ContainerError::io("extract", &target, e))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| ContainerError::Runtime(format!("extract task: {e}")))??;
        Ok(())
    }

    pub async fn export(&self, key: &str) -> Result<ByteStream, ContainerError> {
        let c = self.get(key)?;
        let (root, guard) = self.rootfs(&c)?;
        self.emit(&c, "export", &[]);
        Ok(tar_stream(root, String::new(), Some(guard)))
    }

    pub async fn changes(&self, key: &str) -> Result<Value, ContainerError> {
        let c = self.get(key)?;
        let paths = self.paths(&c.id);
        let upper = paths.upper();
        let image_layers = self
            .inner
            .images
            .resolve(&c.record().image_id)
            .map(|i| i.layer_dirs)
            .unwrap_or_default();
        let lowers = paths.lowers(&image_layers, c.record().host_config.init == Some(true))?;
        let mut out = Vec::new();
        walk_changes(&upper, &upper, &lowers, &mut out);
        out.sort_by(|a: &Value, b: &Value| a["Path"].as_str().cmp(&b["Path"].as_str()));
        Ok(if out.is_empty() {
            Value::Null
        } else {
            json!(out)
        })
    }
}

fn walk_changes(upper: &Path, dir: &Path, lowers: &[PathBuf], out: &mut Vec<Value>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(upper).unwrap_or(&p);
        let Ok(m) = e.metadata() else { continue };
        let in_lower = lowers
            .iter()
            .any(|l| l.join(rel).symlink_metadata().is_ok());
        let kind = if m.file_type().is_char_device() && m.rdev() == 0 {
            2
        } else if in_lower {
            0
        } else {
            1
        };
        out.push(json!({ "Path": format!("/{}", rel.display()), "Kind": kind }));
        if m.is_dir() && kind != 2 {
            walk_changes(upper, &p, lowers, out);
        }
    }
}

/// Bytes used by a directory tree (files only, hard links once), 0 if unreadable.
pub fn dir_size(root: &Path) -> u64 {
    crate::image::layers::dir_size(root).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let d = tempfile::tempdir().expect("tmp");
        let root = d.path();
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::write(root.join("etc/passwd"), "x").expect("write");
        std::os::unix::fs::symlink("/etc", root.join("link")).expect("symlink");
        std::os::unix::fs::symlink("../../../../etc/passwd", root.join("up")).expect("symlink");
        assert_eq!(
            resolve_in_root(root, "/link/passwd", true).expect("ok"),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, "/up", true).expect("ok"),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, "/../../etc", true).expect("ok"),
            root.join("etc")
        );
        assert_eq!(
            resolve_in_root(root, "/link", false).expect("ok"),
            root.join("link")
        );
    }
}
