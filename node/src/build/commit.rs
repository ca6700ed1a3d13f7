//! `docker commit`: a container's writable layer (its overlay upper dir) becomes the top layer
//! of a new image on top of the container's image, with the container's config (overridden
//! by the request's config and `--change` lines).
//!
//! A running container is frozen (cgroup freezer) while its upper dir is read, unless the
//! caller says `pause=false`; it is thawed again whatever happens.

use std::fs::File;
use std::path::{Path, PathBuf};

use berth_api::backend::CommitOptions;
use berth_api::models::ContainerConfig;

use super::{BuildError, Builder};
use crate::image::pack_layer;
use crate::image::reference::Reference;
use crate::image::{apply_changes, parse_tag, ChildImage, ImageError, ImageStore};

impl Builder {
    /// `POST /commit`; returns the new image id (`sha256:...`).
    pub async fn commit(&self, opts: CommitOptions) -> Result<String, BuildError> {
        let cs = &self.inner.containers;
        let c = cs.get(&opts.container)?;
        let rec = c.record();
        let tags = commit_tags(opts.repo.as_deref(), opts.tag.as_deref())?;
        // The image's config is the API's model; the container's is the engine's.
        let ctr_config = ContainerConfig::from(rec.config.clone());
        let mut config = ctr_config.clone();
        if let Some(v) = opts.config {
            let user: ContainerConfig = serde_json::from_value(v)
                .map_err(|e| BuildError::Invalid(format!("invalid commit config: {e}")))?;
            config = override_config(user, &ctr_config);
        }
        apply_changes(&mut config, &opts.changes)?;
        let paused = opts.pause && c.status() == "running";
        if paused {
            cs.pause(&c.id).await?;
        }
        let upper = cs.paths(&c.id).upper();
        let tmp = self.tmp_file("commit");
        let packed = {
            let (upper, tmp) = (upper.clone(), tmp.clone());
            tokio::task::spawn_blocking(move || pack_to_file(&upper, &tmp)).await
        };
        if paused {
            if let Err(e) = cs.unpause(&c.id).await {
                tracing::warn!(container_id = %c.id, error = %e, "unpausing after commit");
            }
        }
        let packed = packed.map_err(|e| BuildError::Internal(format!("commit task: {e}")));
        if let Err(e) = packed.and_then(|r| r.map_err(BuildError::from)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let spec = ChildImage {
            parent: Some(rec.image_id.clone()),
            config,
            container: Some(c.id.clone()),
            author: opts.author.unwrap_or_default(),
            comment: opts.comment.unwrap_or_default(),
            created_by: std::iter::once(rec.path.clone())
                .chain(rec.args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" "),
            tags,
        };
        let id = self.child_from_file(spec, tmp).await?;
        cs.emit(
            &c,
            "commit",
            &[("comment", String::new()), ("imageID", id.clone())],
        );
        Ok(id)
    }

    /// A unique temporary path on the data root's file system.
    pub(crate) fn tmp_file(&self, what: &str) -> PathBuf {
        self.inner.cfg.tmp_dir().join(format!(
            "{}{what}-{:016x}",
            super::leftovers::TMP_PREFIX,
            rand::random::<u64>()
        ))
    }

    /// Registers `spec` with the layer tar at `tar` (removed afterwards).
    pub(crate) async fn child_from_file(
        &self,
        spec: ChildImage,
        tar: PathBuf,
    ) -> Result<String, BuildError> {
        let images = self.inner.images.clone();
        let res = tokio::task::spawn_blocking(move || {
            let res = register_file(&*images, &spec, &tar);
            let _ = std::fs::remove_file(&tar);
            res
        })
        .await
        .map_err(|e| BuildError::Internal(format!("image task: {e}")))?;
        Ok(res?)
    }
}

fn register_file(
    images: &dyn ImageStore,
    spec: &ChildImage,
    tar: &Path,
) -> Result<String, ImageError> {
    let mut f = File::open(tar).map_err(ImageError::io("open", tar))?;
    images.create_child(spec, Some(&mut f))
}

/// Packs an overlay-form directory into a layer tar file.
pub(crate) fn pack_to_file(dir: &Path, out: &Path) -> Result<(), ImageError> {
    let f = File::create(out).map_err(ImageError::io("create", out))?;
    let mut w = std::io::BufWriter::new(f);
    pack_layer(dir, &mut w)?;
    let f = w
        .into_inner()
        .map_err(|e| ImageError::io("write", out)(e.into_error()))?;
    f.sync_all().map_err(ImageError::io("sync", out))
}

fn commit_tags(repo: Option<&str>, tag: Option<&str>) -> Result<Vec<Reference>, BuildError> {
    let Some(repo) = repo.filter(|r| !r.is_empty()) else {
        if tag.is_some_and(|t| !t.is_empty()) {
            return Err(BuildError::Invalid("a tag needs a repository".into()));
        }
        return Ok(Vec::new());
    };
    let r = match tag.filter(|t| !t.is_empty()) {
        Some(t) => Reference::parse(repo)?.with_tag(t)?,
        None => parse_tag(repo)?,
    };
    if r.digest().is_some() {
        return Err(BuildError::Invalid(format!(
            "refusing to create a tag with a digest reference: {repo}"
        )));
    }
    Ok(vec![r])
}

/// The commit request's config wins; what it leaves empty comes from the container's.
fn override_config(mut user: ContainerConfig, ctr: &ContainerConfig) -> ContainerConfig {
    if user.user.is_empty() {
        user.user = ctr.user.clone();
    }
    if user.env.is_empty() {
        user.env = ctr.env.clone();
    }
    if user.cmd.is_empty() && user.entrypoint.is_empty() {
        user.cmd = ctr.cmd.clone();
        user.entrypoint = ctr.entrypoint.clone();
    }
    if user.working_dir.is_empty() {
        user.working_dir = ctr.working_dir.clone();
    }
    if user.hostname.is_empty() {
        user.hostname = ctr.hostname.clone();
    }
    if user.image.is_empty() {
        user.image = ctr.image.clone();
    }
    if user.labels.is_empty() {
        user.labels = ctr.labels.clone();
    }
    if user.exposed_ports.is_none() {
        user.exposed_ports = ctr.exposed_ports.clone();
    }
    if user.volumes.is_none() {
        user.volumes = ctr.volumes.clone();
    }
    if user.stop_signal.is_none() {
        user.stop_signal = ctr.stop_signal.clone();
    }
    if user.healthcheck.is_none() {
        user.healthcheck = ctr.healthcheck.clone();
    }
    if user.shell.is_none() {
        user.shell = ctr.shell.clone();
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_tags_and_overrides() {
        assert!(commit_tags(None, None).expect("none").is_empty());
        assert!(commit_tags(None, Some("x")).is_err());
        let t = commit_tags(Some("repo"), None).expect("repo");
        assert_eq!(t[0].familiar(), "repo:latest");
        let t = commit_tags(Some("repo"), Some("v1")).expect("repo:v1");
        assert_eq!(t[0].familiar(), "repo:v1");
        assert!(commit_tags(Some("Bad"), None).is_err());

        let ctr = ContainerConfig {
            cmd: vec!["sh".into()],
            env: vec!["A=1".into()],
            working_dir: "/w".into(),
            ..Default::default()
        };
        let user = ContainerConfig {
            cmd: vec!["top".into()],
            ..Default::default()
        };
        let c = override_config(user, &ctr);
        assert_eq!(c.cmd, vec!["top"]);
        assert_eq!(c.env, vec!["A=1"]);
        assert_eq!(c.working_dir, "/w");
    }
}
