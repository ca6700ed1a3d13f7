//! Autolock on this node: its secrets sealed or plain as the cluster says, `swarm unlock`,
//! and the Raft data key.

use super::*;

impl Swarm {
    /// `swarm unlock`: opens this node's sealed secrets with `key` and starts what a restore
    /// would have started. A key that opens nothing is refused and the node stays locked.
    pub async fn unlock(self: &Arc<Self>, key: &str) -> ClusterResult<()> {
        let mut guard = self.active.lock().await;
        let Some(active) = guard.as_ref() else {
            return Err(ClusterError::NotAllowed(NOT_A_MANAGER.into()));
        };
        if !active.locked {
            return Err(ClusterError::FailedPrecondition(NOT_LOCKED.into()));
        }
        let key = UnlockKey::parse(key).map_err(|_| ClusterError::WrongUnlockKey)?;
        // Every sealed secret must open; node.key always exists.
        for name in SECRETS {
            self.read_secret_with(name, Some(&key))?;
        }
        *self.kek.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
        self.forget_clients();
        let id = active.id.clone();
        let manager = if id.role == Role::Manager && id.error.is_empty() {
            Some(self.start_manager(&id).await?)
        } else {
            None
        };
        tracing::info!(node_id = %id.node_id, "swarm unlocked");
        *guard = Some(self.activate(id, manager));
        Ok(())
    }

    /// Brings the secrets on disk in line with the cluster's autolock setting: sealed with
    /// its unlock key on a manager while autolock is on, plain otherwise. Runs every half
    /// second (and right after a `swarm update` served here); a no-op when nothing changed.
    pub async fn sync_keys(&self) -> ClusterResult<()> {
        let want = {
            let a = self.active.lock().await;
            let Some(a) = a.as_ref() else { return Ok(()) };
            if a.locked {
                return Ok(());
            }
            match &a.manager {
                // A manager follows the cluster; until it has the cluster object it keeps
                // what it has.
                Some(m) => match m.read(|s| s.cluster.clone()) {
                    Some(c) if c.spec.encryption_config.auto_lock_managers => {
                        match c.unlock_key.as_deref().map(UnlockKey::parse) {
                            Some(Ok(k)) => Some(k),
                            _ => return Ok(()),
                        }
                    }
                    Some(_) => None,
                    None => return Ok(()),
                },
                None => None,
            }
        };
        self.reseal(want)
    }

    /// Re-stores every secret sealed with `want` (plain for None).
    pub(super) fn reseal(&self, want: Option<UnlockKey>) -> ClusterResult<()> {
        let mut kek = self.kek.lock().unwrap_or_else(|p| p.into_inner());
        if *kek == want {
            return Ok(());
        }
        for name in SECRETS {
            if let Some(bytes) = self.read_secret_with(name, kek.as_ref())? {
                self.write_secret(name, &bytes, want.as_ref())?;
            }
        }
        tracing::info!(
            sealed = want.is_some(),
            "swarm keys re-stored for the cluster's autolock setting"
        );
        *kek = want;
        Ok(())
    }

    /// This manager's Raft data key, made on first use (a new manager, or one from before
    /// keys existed).
    pub(super) fn raft_dek(&self) -> ClusterResult<UnlockKey> {
        if let Some(bytes) = self.read_secret("raft.dek")? {
            let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                ClusterError::Internal(format!(
                    "{}: a raft data key is 32 bytes, found {}",
                    self.dir.join("raft.dek").display(),
                    bytes.len()
                ))
            })?;
            return Ok(UnlockKey::from_bytes(key));
        }
        let key = UnlockKey::generate();
        let kek = self.kek.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.write_secret("raft.dek", key.as_bytes(), kek.as_ref())?;
        Ok(key)
    }

    /// Whether this node's secrets are on disk sealed (autolock).
    pub(super) fn sealed(&self) -> bool {
        self.dir.join("node.key.sealed").exists()
    }

    /// A secret file's bytes, opened with the current key when sealed.
    pub(super) fn read_secret(&self, name: &str) -> ClusterResult<Option<Vec<u8>>> {
        let kek = self.kek.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.read_secret_with(name, kek.as_ref())
    }

    /// A secret file's bytes: `<name>` as it is, or `<name>.sealed` opened with `kek`
    /// (no key: [`ClusterError::Locked`]; a key that does not open it:
    /// [`ClusterError::WrongUnlockKey`]).
    pub(super) fn read_secret_with(
        &self,
        name: &str,
        kek: Option<&UnlockKey>,
    ) -> ClusterResult<Option<Vec<u8>>> {
        let read = |p: PathBuf| match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClusterError::internal(&format!("read {}", p.display()), e)),
        };
        if let Some(plain) = read(self.dir.join(name))? {
            return Ok(Some(plain));
        }
        let Some(sealed) = read(self.dir.join(format!("{name}.sealed")))? else {
            return Ok(None);
        };
        let kek = kek.ok_or(ClusterError::Locked)?;
        match ca::open(kek, &sealed) {
            Ok(plain) => Ok(Some(plain)),
            Err(CaError::WrongUnlockKey) => Err(ClusterError::WrongUnlockKey),
            Err(e) => Err(ClusterError::internal(&format!("open {name}.sealed"), e)),
        }
    }

    /// Stores a secret sealed with `kek`, or plain without one; the other form goes.
    pub(super) fn write_secret(
        &self,
        name: &str,
        bytes: &[u8],
        kek: Option<&UnlockKey>,
    ) -> ClusterResult<()> {
        let sealed = format!("{name}.sealed");
        let other = match kek {
            Some(k) => {
                write_atomic(&self.dir, &sealed, &ca::seal(k, bytes))?;
                name.to_owned()
            }
            None => {
                write_atomic(&self.dir, name, bytes)?;
                sealed
            }
        };
        match std::fs::remove_file(self.dir.join(&other)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClusterError::internal(&format!("remove {other}"), e)),
        }
    }

    /// Removes a secret in either form.
    pub(super) fn remove_secret(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(name));
        let _ = std::fs::remove_file(self.dir.join(format!("{name}.sealed")));
    }
}

/// Every half second, the secrets follow the cluster's autolock setting.
pub(super) async fn keys_loop(swarm: std::sync::Weak<Swarm>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(s) = swarm.upgrade() else { return };
        if let Err(e) = s.sync_keys().await {
            tracing::warn!(error = %e, "re-storing the swarm keys for autolock");
        }
    }
}
