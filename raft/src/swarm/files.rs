//! This node's files in `<data-root>/swarm/`: identity, certificates, the trust bundle.

use super::session::renew_at;
use super::*;

impl Swarm {
    pub(super) fn wipe(&self) -> ClusterResult<()> {
        self.forget_clients();
        *self.cert_due.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClusterError::internal(
                &format!("remove {}", self.dir.display()),
                e,
            )),
        }
    }

    pub(super) fn load_identity(&self) -> ClusterResult<Option<Identity>> {
        let p = self.dir.join("node.json");
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| ClusterError::internal(&format!("read {}", p.display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClusterError::internal(&format!("read {}", p.display()), e)),
        }
    }

    pub(super) fn save_identity(&self, id: &Identity) -> ClusterResult<()> {
        let bytes = serde_json::to_vec_pretty(id)
            .map_err(|e| ClusterError::internal("encode identity", e))?;
        write_atomic(&self.dir, "node.json", &bytes)
    }

    /// Stores the roots to trust (`ca.crt`, the cluster's root first), the CA key of that
    /// root (`ca.key`, managers) and this node's certificate and key.
    pub(super) fn save_certs(
        &self,
        trust_pem: &str,
        ca_key: Option<&str>,
        cert: &NodeCert,
    ) -> ClusterResult<()> {
        let kek = self.kek.lock().unwrap_or_else(|p| p.into_inner()).clone();
        write_atomic(&self.dir, "ca.crt", trust_pem.as_bytes())?;
        write_atomic(&self.dir, "node.crt", cert.cert_pem.as_bytes())?;
        self.write_secret("node.key", cert.key_pem.as_bytes(), kek.as_ref())?;
        if let Some(k) = ca_key {
            self.write_secret("ca.key", k.as_bytes(), kek.as_ref())?;
        }
        // Clients made under the previous certificate go; the next call builds new ones.
        self.forget_clients();
        *self.cert_due.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((renew_at(cert), cert.role));
        Ok(())
    }

    /// Replaces the roots this node trusts (and, on a manager, the CA key that goes with the
    /// first of them), keeping its certificate.
    pub(super) fn save_trust(&self, trust_pem: &str, ca_key: Option<&str>) -> ClusterResult<()> {
        let kek = self.kek.lock().unwrap_or_else(|p| p.into_inner()).clone();
        write_atomic(&self.dir, "ca.crt", trust_pem.as_bytes())?;
        if let Some(k) = ca_key {
            self.write_secret("ca.key", k.as_bytes(), kek.as_ref())?;
        }
        self.forget_clients();
        Ok(())
    }

    pub(super) fn load_certs(&self) -> ClusterResult<Certs> {
        let read = |name: &str| -> ClusterResult<Option<String>> {
            let p = self.dir.join(name);
            match std::fs::read_to_string(&p) {
                Ok(s) => Ok(Some(s)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ClusterError::internal(&format!("read {}", p.display()), e)),
            }
        };
        let missing =
            |n: &str| ClusterError::Internal(format!("{n} missing from {}", self.dir.display()));
        let secret = |name: &str| -> ClusterResult<Option<String>> {
            self.read_secret(name)?
                .map(|b| {
                    String::from_utf8(b).map_err(|_| {
                        ClusterError::Internal(format!(
                            "{name} in {} is not PEM",
                            self.dir.display()
                        ))
                    })
                })
                .transpose()
        };
        let trust_pem = read("ca.crt")?.ok_or_else(|| missing("ca.crt"))?;
        let ca_key = secret("ca.key")?;
        // The key is the first root's; one left from before a rotation finished is ignored
        // (managers sign with the CA of the replicated cluster object).
        let root = match RootCa::from_pem(&trust_pem, ca_key.as_deref()) {
            Err(CaError::KeyMismatch { .. }) => RootCa::from_pem(&trust_pem, None),
            other => other,
        }
        .map_err(|e| ClusterError::internal("root CA", e))?;
        let cert = NodeCert::from_pem(
            &read("node.crt")?.ok_or_else(|| missing("node.crt"))?,
            &secret("node.key")?.ok_or_else(|| missing("node.key"))?,
        )
        .map_err(|e| ClusterError::internal("node certificate", e))?;
        *self.cert_due.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((renew_at(&cert), cert.role));
        Ok(Certs {
            trust_pem,
            root,
            cert,
        })
    }
}

/// What `load_certs` reads.
pub(super) struct Certs {
    /// The roots this node trusts (PEM), the cluster's root first.
    pub(super) trust_pem: String,
    /// The first of them, with its key on a manager.
    pub(super) root: RootCa,
    pub(super) cert: NodeCert,
}

impl Certs {
    /// What this node reports as its `TLSInfo`.
    pub(super) fn tls_info(&self) -> NodeTlsInfo {
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let (subject, key) = self
            .cert
            .issuer_info(&self.trust_pem)
            .map(|(s, k)| (b64(&s), b64(&k)))
            .unwrap_or_default();
        NodeTlsInfo {
            trust_root: self.trust_pem.clone(),
            cert_issuer_subject: subject,
            cert_issuer_public_key: key,
        }
    }
}

/// Writes `dir/name` through a temp file, fsync and rename (keys with mode 0600).
pub(super) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> ClusterResult<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)
        .map_err(|e| ClusterError::internal(&format!("create {}", dir.display()), e))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let dst = dir.join(name);
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &dst)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    res.map_err(|e| ClusterError::internal(&format!("write {}", dst.display()), e))
}
