//! The container's file system from outside: `cp` (archive stat/get/put), `export`, and
//! `diff` (changes), all resolved inside the container's root so symlinks cannot escape it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::backend::{BodyStream, ByteStream, PathStat};
use bytes::Bytes;
use futures_util::TryStreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{ContainerError, Containers, Ctr};
use crate::fsroot::{self, Last, Root};
use crate::image::ImageStore;

/// Go's `os.FileMode` bits, which `X-Docker-Container-Path-Stat` carries, from `st_mode`.
fn go_mode(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    mode |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => 1 << 31,
        libc::S_IFLNK => 1 << 27,
        libc::S_IFIFO => 1 << 25,
        libc::S_IFSOCK => 1 << 24,
        libc::S_IFBLK => 1 << 26,
        libc::S_IFCHR => (1 << 26) | (1 << 21),
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if st_mode & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    if st_mode & 0o1000 != 0 {
        mode |= 1 << 20;
    }
    mode
}

/// Resolves `path` inside the container's root without following its last component,
/// and describes what is there as `X-Docker-Container-Path-Stat` does.
fn stat_of(root: &Root, path: &str) -> Result<(OwnedFd, PathStat), ContainerError> {
    let not_found =
        || ContainerError::NotFound(format!("Could not find the file {path} in container"));
    let fd = root.resolve(path, Last::NoFollow).map_err(|e| {
        if e.errno() == Some(libc::ELOOP) {
            ContainerError::Invalid(format!("too many levels of symbolic links in {path}"))
        } else {
            not_found()
        }
    })?;
    let st = nix::sys::stat::fstat(&fd).map_err(|_| not_found())?;
    let is_link = fsroot::tree::Kind::of(&st) == fsroot::tree::Kind::Symlink;
    let link_target = if is_link {
        nix::fcntl::readlinkat(&fd, "")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let mtime =
        chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32).unwrap_or_default();
    let mode = go_mode(st.st_mode);
    Ok((
        fd,
        PathStat {
            name,
            size: st.st_size,
            mode,
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

/// A tar of the tree at `top` (an fd inside a container's root) with its entries named
/// under `name` (empty: `.`, the contents themselves).
fn tar_stream(top: OwnedFd, name: String, guard: Option<RootfsGuard>) -> ByteStream {
    let (tx, rx) = mpsc::channel(16);
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let top = top;
        let mut b = tar::Builder::new(ChanWriter(tx));
        let name = if name.is_empty() {
            ".".to_owned()
        } else {
            name
        };
        match fsroot::tree::append_tree(&mut b, &top, Path::new(&name)) {
            Ok(()) => {
                let _ = b.finish();
            }
            Err(e) => tracing::debug!(error = %e, "archive of a container path stopped"),
        }
    });
    ByteStream {
        tty: false,
        stream: super::logs::tokio_stream_from(rx),
    }
}

fn open_root(merged: &Path) -> Result<Root, ContainerError> {
    Root::open(merged).map_err(ContainerError::internal)
}

/// Keeps a stopped container's rootfs mounted while it is read; unmounts when dropped.
pub struct RootfsGuard(Option<(Arc<dyn ImageStore>, PathBuf)>);

impl Drop for RootfsGuard {
    fn drop(&mut self) {
        if let Some((images, p)) = self.0.take() {
            let _ = images.unmount_rootfs(&p);
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
            .map_err(|e| ContainerError::internal_with(crate::image::full_message(&e), e))?;
        let _ = self.inner.images.unmount_rootfs(&merged);
        for d in [paths.upper(), paths.work(), merged.clone()] {
            std::fs::create_dir_all(&d).map_err(|e| ContainerError::io("create", &d, e))?;
        }
        // As `launch` mounts it (a `--rm` container's overlay is volatile).
        let volatile = c.record().host_config.auto_remove;
        self.inner
            .images
            .mount_rootfs(
                &paths.lowers(&image.layer_dirs, c.record().host_config.init == Some(true))?,
                &paths.upper(),
                &paths.work(),
                &merged,
                volatile,
            )
            .map_err(|e| ContainerError::Runtime(format!("mount rootfs: {e}")))?;
        Ok((
            merged.clone(),
            RootfsGuard(Some((self.inner.images.clone(), merged))),
        ))
    }

    pub async fn archive_stat(&self, key: &str, path: &str) -> Result<PathStat, ContainerError> {
        let c = self.get(key)?;
        let (root, _g) = self.rootfs(&c)?;
        let root = open_root(&root)?;
        Ok(stat_of(&root, path)?.1)
    }

    pub async fn archive_get(
        &self,
        key: &str,
        path: &str,
    ) -> Result<(PathStat, ByteStream), ContainerError> {
        let c = self.get(key)?;
        let (root, guard) = self.rootfs(&c)?;
        let root = open_root(&root)?;
        let (fd, stat) = stat_of(&root, path)?;
        // `path/.` copies the directory's contents, not the directory.
        let name = if path.ends_with("/.") {
            String::new()
        } else {
            stat.name.clone()
        };
        drop(root);
        Ok((stat, tar_stream(fd, name, Some(guard))))
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
        let root = open_root(&root)?;
        let not_found =
            || ContainerError::NotFound(format!("Could not find the file {path} in container"));
        match root.stat(path, Last::Follow) {
            Ok(st) if fsroot::tree::Kind::of(&st) == fsroot::tree::Kind::Dir => {}
            Ok(_) => {
                return Err(ContainerError::Invalid(format!(
                    "extraction point is not a directory: {path}"
                )))
            }
            Err(_) => return Err(not_found()),
        }
        let reader = tokio_util::io::StreamReader::new(body.map_err(std::io::Error::other));
        let sync = tokio_util::io::SyncIoBridge::new(reader);
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || -> Result<(), ContainerError> {
            let _g = guard;
            let root = root;
            // Every entry is resolved again inside the root (the destination too), so a
            // directory the container swaps for a symlink meanwhile leads nowhere outside.
            let opts = fsroot::write::Options {
                chown: copy_uid_gid,
                no_overwrite_dir_non_dir,
                parent_mode: 0o755,
                parent_owner: None,
                xattrs: false,
            };
            fsroot::write::extract_tar(&root, &path, sync, opts).map_err(|e| {
                if e.source.kind() == std::io::ErrorKind::InvalidInput {
                    ContainerError::Invalid(e.to_string())
                } else {
                    ContainerError::internal(e)
                }
            })
        })
        .await
        .map_err(|e| ContainerError::internal_with(format!("extract task: {e}"), e))??;
        Ok(())
    }

    pub async fn export(&self, key: &str) -> Result<ByteStream, ContainerError> {
        let c = self.get(key)?;
        let (root, guard) = self.rootfs(&c)?;
        let top = open_root(&root)?
            .dir("/")
            .map_err(ContainerError::internal)?;
        self.emit(&c, "export", &[]);
        Ok(tar_stream(top, String::new(), Some(guard)))
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
        walk_changes(&upper, &lowers, &mut out);
        out.sort_by(|a: &Value, b: &Value| a["Path"].as_str().cmp(&b["Path"].as_str()));
        Ok(if out.is_empty() {
            Value::Null
        } else {
            json!(out)
        })
    }
}

/// What differs in `upper` from the `lowers` below it, as `diff` lists it (0 changed,
/// 1 added, 2 deleted). The upper dir is walked through fds and the lowers are asked inside
/// their own roots, so nothing the container planted there leads to the host.
fn walk_changes(upper: &Path, lowers: &[PathBuf], out: &mut Vec<Value>) {
    let Ok(top) = Root::open(upper).and_then(|r| r.dir("/")) else {
        return;
    };
    let lowers: Vec<Root> = lowers.iter().filter_map(|l| Root::open(l).ok()).collect();
    let res = fsroot::tree::walk(&top, &mut |n| {
        if n.rel.as_os_str().is_empty() {
            return Ok(true);
        }
        let rel = n.rel.to_string_lossy();
        let kind = n.kind();
        let code = if kind == fsroot::tree::Kind::Char && n.stat.st_rdev == 0 {
            2
        } else if lowers.iter().any(|l| l.stat(&rel, Last::NoFollow).is_ok()) {
            0
        } else {
            1
        };
        out.push(json!({ "Path": format!("/{rel}"), "Kind": code }));
        Ok(kind == fsroot::tree::Kind::Dir && code != 2)
    });
    if let Err(e) = res {
        tracing::debug!(error = %e, "listing a container's changes");
    }
}

/// Bytes used by a directory tree (files only, hard links once), 0 if unreadable.
pub fn dir_size(root: &Path) -> u64 {
    crate::image::dir_size(root).unwrap_or(0)
}
