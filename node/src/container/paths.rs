//! Where a container's files live: its data directory (rw layer, init layer, logs, etc
//! files) under the data root, and its run directory (shim state, bundle) under the exec root.

use std::path::PathBuf;

use super::logconfig::LogDriver;
use super::{ContainerError, Containers};

/// Paths of one container.
pub struct Paths {
    /// `<data-root>/containers/<id>`: log, etc files, rw layer.
    pub dir: PathBuf,
    /// `<exec-root>/containers/<id>`: shim state, bundle.
    pub run: PathBuf,
}

impl Paths {
    /// The json-file driver's live log file (inspect's `LogPath`).
    pub fn log(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}-json.log"))
    }
    /// The live log file for a driver, where Docker keeps it: `<id>-json.log` for
    /// json-file, `local-logs/container.log` for local; none for `none`.
    pub fn log_file(&self, id: &str, driver: LogDriver) -> Option<PathBuf> {
        match driver {
            LogDriver::JsonFile => Some(self.log(id)),
            LogDriver::Local => Some(self.dir.join("local-logs").join("container.log")),
            LogDriver::None => None,
        }
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("diff")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }
    pub fn bundle(&self) -> PathBuf {
        self.run.join("bundle")
    }
    pub fn runtime_root(&self) -> PathBuf {
        self.run.join("runtime")
    }
    /// The init layer: the mount points and files the runtime needs (/dev, /proc, /sys,
    /// /etc/hosts, ...), a read-only layer between the image and the container's own layer,
    /// so they never show up in `diff`, `commit` or `export` as changes.
    pub fn init_layer(&self, with_init: bool) -> Result<PathBuf, ContainerError> {
        let init = self.dir.join("init");
        let ready = init.join(".dockerenv").exists()
            && (!with_init || init.join("sbin/docker-init").exists());
        if ready {
            return Ok(init);
        }
        let mut dirs = vec![
            "dev/pts",
            "dev/shm",
            "dev/mqueue",
            "proc",
            "sys/fs/cgroup",
            "etc",
        ];
        let mut files = vec![
            "etc/hostname",
            "etc/hosts",
            "etc/resolv.conf",
            "dev/console",
            ".dockerenv",
        ];
        if with_init {
            dirs.push("sbin");
            files.push("sbin/docker-init");
        }
        for d in dirs {
            let p = init.join(d);
            std::fs::create_dir_all(&p).map_err(|e| ContainerError::io("create", &p, e))?;
        }
        for f in files {
            let p = init.join(f);
            std::fs::write(&p, b"").map_err(|e| ContainerError::io("create", &p, e))?;
        }
        Ok(init)
    }
    /// The overlay lower layers of a container: the image's, then the init layer.
    pub fn lowers(
        &self,
        image_layers: &[PathBuf],
        with_init: bool,
    ) -> Result<Vec<PathBuf>, ContainerError> {
        let mut l = image_layers.to_vec();
        l.push(self.init_layer(with_init)?);
        Ok(l)
    }
}

impl Containers {
    pub fn paths(&self, id: &str) -> Paths {
        Paths {
            dir: self.inner.cfg.containers_dir().join(id),
            run: self.inner.cfg.run_dir(id),
        }
    }
}
