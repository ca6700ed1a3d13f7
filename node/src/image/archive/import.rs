//! `docker import`: a root file system tar (plain, gzip or zstd) becomes a one-layer image.
//!
//! ```text
//!  options ─► ImportPlan (reference, --change lines, platform; 400 before the body is read)
//!  body ─► LayerStore::unpack (tmp) ─► config blob ─► register (layer + blob + records at once)
//! ```
//! Nothing is registered unless the whole tar was read and unpacked: a short or broken upload
//! leaves no layer directory, blob or record behind.

use std::io::Read;

use berth_api::backend::ImportOptions;
use berth_api::models::ContainerConfig;
use chrono::Utc;

use crate::image::digest::Digest;
use crate::image::error::ImageError;
use crate::image::reference::Reference;
use crate::image::service::{ImageService, NewImage, PendingLayer};
use crate::image::store::changes::apply_changes;
use crate::image::store::config::{host_arch, import_config};

/// What an import will do, checked before any byte of the body is read.
pub(crate) struct ImportPlan {
    tag: Option<Reference>,
    config: ContainerConfig,
    comment: String,
    arch: String,
}

impl ImportPlan {
    pub(crate) fn new(opts: &ImportOptions) -> Result<Self, ImageError> {
        let tag = match opts.repo.as_deref().filter(|r| !r.is_empty()) {
            None => None,
            Some(repo) => {
                let mut r = Reference::parse(repo)?;
                if r.digest().is_some() {
                    return Err(ImageError::InvalidArgument(
                        "cannot import digest reference".into(),
                    ));
                }
                if let Some(t) = opts.tag.as_deref().filter(|t| !t.is_empty()) {
                    r = r.with_tag(t)?;
                }
                Some(if r.tag().is_none() {
                    r.with_tag(crate::image::reference::DEFAULT_TAG)?
                } else {
                    r
                })
            }
        };
        let mut arch = host_arch().to_owned();
        if let Some(p) = opts.platform.as_deref().filter(|p| !p.is_empty()) {
            let mut parts = p.split('/');
            let os = parts.next().unwrap_or_default();
            if os != "linux" {
                return Err(ImageError::InvalidArgument(format!(
                    "unsupported os {os:?} in platform {p:?}: only linux"
                )));
            }
            if let Some(a) = parts.next().filter(|a| !a.is_empty()) {
                arch = a.to_owned();
            }
        }
        let mut config = ContainerConfig::default();
        apply_changes(&mut config, &opts.changes)?;
        let comment = opts
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "Imported from -".to_owned());
        Ok(ImportPlan {
            tag,
            config,
            comment,
            arch,
        })
    }
}

impl ImageService {
    /// Imports the tar read from `body`; returns the new image id.
    pub(crate) fn import_image(
        &self,
        plan: ImportPlan,
        body: impl Read,
    ) -> Result<String, ImageError> {
        let unpacked = self.inner.layers.unpack(body)?;
        let now = Utc::now();
        let value = import_config(
            &plan.config,
            &unpacked.diff_id,
            &plan.arch,
            &plan.comment,
            now,
        );
        let config = serde_json::to_vec(&value).map_err(|e| ImageError::Internal(e.to_string()))?;
        let id = Digest::of_bytes(&config);
        let image = NewImage {
            config,
            id: id.clone(),
            chain: vec![unpacked.diff_id.clone()],
            tags: plan.tag.iter().cloned().collect(),
            created: now.timestamp(),
        };
        let registered = self.register(
            vec![PendingLayer {
                unpacked,
                parent: None,
            }],
            &[image],
        )?;
        for r in &registered {
            for (t, _) in &r.tags {
                self.event("tag", &r.id, &t.familiar());
            }
        }
        let id = id.to_string();
        self.event("import", &id, &id);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::image::testutil::{file_tar, service, TestService};

    fn opts(repo: &str, changes: &[&str]) -> ImportOptions {
        ImportOptions {
            repo: Some(repo.into()),
            changes: changes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn leftovers(t: &TestService) -> (usize, usize, usize) {
        let count = |p: std::path::PathBuf| std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
        let root = t.dir.path();
        (
            count(root.join("overlay")),
            count(root.join("content/blobs/sha256")),
            count(root.join("tmp/images")),
        )
    }

    #[test]
    fn imports_with_changes_and_tag() {
        let t = service();
        let tar = file_tar(&[("bin/sh", b"#!fake".as_slice()), ("etc/motd", b"hi")]);
        let plan = ImportPlan::new(&opts(
            "imported:1",
            &[r#"CMD ["/bin/sh"]"#, "ENV A=b", "WORKDIR /x", "EXPOSE 80"],
        ))
        .expect("plan");
        let id = t.svc.import_image(plan, &tar[..]).expect("import");
        let img = t.svc.resolve("imported:1").expect("resolve");
        assert_eq!(img.id, id);
        assert_eq!(img.config.cmd, vec!["/bin/sh"]);
        assert_eq!(img.config.env, vec!["A=b"]);
        assert_eq!(img.config.working_dir, "/x");
        assert_eq!(img.layer_dirs.len(), 1);
        assert_eq!(
            std::fs::read(img.layer_dirs[0].join("etc/motd")).expect("file"),
            b"hi"
        );
        let by_short = t
            .svc
            .resolve(&id["sha256:".len().."sha256:".len() + 12])
            .expect("short id");
        assert_eq!(by_short.id, id);
        let inspect = t.svc.inspect_image("imported:1").expect("inspect");
        assert_eq!(inspect["RepoTags"], serde_json::json!(["imported:1"]));
        assert_eq!(inspect["Comment"], "Imported from -");
        assert_eq!(
            inspect["RootFS"]["Layers"][0],
            Digest::of_bytes(&tar).to_string()
        );
    }

    #[test]
    fn gzip_and_empty_tars_import() {
        let t = service();
        let tar = file_tar(&[("a", b"x".as_slice())]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let id = t
            .svc
            .import_image(ImportPlan::new(&opts("gz", &[])).expect("plan"), &gz[..])
            .expect("gzip import");
        let inspect = t.svc.inspect_image(&id).expect("inspect");
        assert_eq!(
            inspect["RootFS"]["Layers"][0],
            Digest::of_bytes(&tar).to_string(),
            "diff id is of the plain tar"
        );

        let empty = file_tar(&[]);
        t.svc
            .import_image(
                ImportPlan::new(&opts("scratch", &[])).expect("plan"),
                &empty[..],
            )
            .expect("empty import");
        let img = t.svc.resolve("scratch").expect("resolve");
        assert_eq!(img.layer_dirs.len(), 1);
    }

    #[test]
    fn truncated_or_garbage_input_registers_nothing() {
        let t = service();
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let tar = file_tar(&[("big", big.as_slice()), ("small", b"x")]);
        for bad in [
            &tar[..tar.len() / 2],
            &tar[..tar.len() - 1024],
            b"this is not a tar archive at all".as_slice(),
        ] {
            let plan = ImportPlan::new(&opts("bad:1", &[])).expect("plan");
            let err = t.svc.import_image(plan, bad).expect_err("must fail");
            assert_eq!(
                berth_api::error::ApiError::from(err).kind,
                berth_api::error::ErrorKind::InvalidArgument
            );
            assert_eq!(leftovers(&t), (0, 0, 0), "something was left behind");
            assert!(t.svc.resolve("bad:1").is_err());
        }
    }

    #[test]
    fn bad_options_fail_before_reading() {
        assert!(ImportPlan::new(&opts("Bad", &[])).is_err());
        assert!(ImportPlan::new(&opts("ok", &["RUN x"])).is_err());
        let d = format!("ok@sha256:{}", "a".repeat(64));
        assert!(ImportPlan::new(&opts(&d, &[])).is_err());
        let p = ImportPlan::new(&ImportOptions {
            platform: Some("windows".into()),
            ..Default::default()
        });
        assert!(p.is_err());
    }
}
