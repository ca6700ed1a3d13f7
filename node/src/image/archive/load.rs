//! `docker load`: docker-archive and OCI image-layout tarballs.
//!
//! ```text
//!  body ─► Bundle (tmp dir) ─┬─ manifest.json  [{Config, RepoTags, Layers}]      docker-archive
//!                            └─ index.json     manifests → manifest → config + layers (OCI)
//!  each layer not yet stored ─► unpack (tmp), diff id checked against the config
//!  everything ─► one register call: layers, config blobs and records appear together
//! ```
//! A corrupt archive (truncated, a layer whose diff id does not match, a blob whose digest
//! does not match) registers nothing. `docker save` of Docker ≥ 25 writes both files; then
//! `manifest.json` is used, since it carries the tags.

use std::collections::HashSet;
use std::io::Read;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::image::archive::bundle::Bundle;
use crate::image::digest::{chain_id, Digest};
use crate::image::error::ImageError;
use crate::image::reference::Reference;
use crate::image::service::{ImageService, NewImage, PendingLayer};
use crate::image::store::config::{host_arch, ImageConfig};

#[derive(Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    annotations: std::collections::BTreeMap<String, String>,
    platform: Option<Platform>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OciDoc {
    manifests: Vec<Descriptor>,
    config: Option<Descriptor>,
    layers: Vec<Descriptor>,
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::BadArchive(format!("{what}: {e}")))
}

/// Collects what a load will register.
struct Loader<'a> {
    svc: &'a ImageService,
    bundle: &'a Bundle,
    layers: Vec<PendingLayer>,
    pending: HashSet<Digest>,
    images: Vec<NewImage>,
}

impl Loader<'_> {
    /// Adds an image from its config and layer files (`layers[i]` opens layer i; with
    /// `blob_digests`, each layer file's own digest is checked too).
    fn add(
        &mut self,
        config: Vec<u8>,
        layers: &[String],
        blob_digests: Option<&[Digest]>,
        tags: Vec<Reference>,
    ) -> Result<(), ImageError> {
        let id = Digest::of_bytes(&config);
        let parsed = ImageConfig::parse(&config, &id.to_string())?;
        let diffs = &parsed.rootfs.diff_ids;
        if diffs.len() != layers.len() {
            return Err(ImageError::BadArchive(format!(
                "image {id}: config lists {} layers but the archive has {}",
                diffs.len(),
                layers.len()
            )));
        }
        let mut chain: Vec<Digest> = Vec::new();
        for (i, (diff, file)) in diffs.iter().zip(layers).enumerate() {
            let parent = chain.last().cloned();
            let c = chain_id(parent.as_ref(), diff);
            if !self.pending.contains(&c) && !self.svc.inner.layers.exists(&c) {
                let unpacked = self.svc.inner.layers.unpack(self.bundle.open(file)?)?;
                if unpacked.diff_id != *diff {
                    return Err(ImageError::BadArchive(format!(
                        "invalid diffID for layer {i}: expected {diff}, got {}",
                        unpacked.diff_id
                    )));
                }
                if let Some(want) = blob_digests.and_then(|b| b.get(i)) {
                    if unpacked.blob_digest != *want {
                        return Err(ImageError::DigestMismatch {
                            what: format!("layer blob {file}"),
                            expected: want.to_string(),
                            actual: unpacked.blob_digest.to_string(),
                        });
                    }
                }
                self.layers.push(PendingLayer { unpacked, parent });
                self.pending.insert(c.clone());
            }
            chain.push(c);
        }
        let created = parsed.created_time().map_or(0, |t| t.timestamp());
        self.images.push(NewImage {
            config,
            id,
            chain,
            tags,
            created,
        });
        Ok(())
    }

    fn docker_archive(&mut self) -> Result<(), ImageError> {
        let items: Vec<ManifestItem> =
            parse_json(&self.bundle.read("manifest.json")?, "manifest.json")?;
        for item in items {
            let mut tags = Vec::new();
            for t in item.repo_tags.unwrap_or_default() {
                let r = Reference::parse(&t)?;
                if r.tag().is_none() {
                    return Err(ImageError::BadArchive(format!(
                        "invalid tag {t:?} in manifest.json"
                    )));
                }
                tags.push(r);
            }
            let config = self.bundle.read(&item.config)?;
            self.add(config, &item.layers, None, tags)?;
        }
        Ok(())
    }

    /// Reads a blob of the layout and checks its digest.
    fn blob(&self, digest: &str) -> Result<(Vec<u8>, Digest), ImageError> {
        let d = Digest::parse(digest)
            .map_err(|_| ImageError::BadArchive(format!("unsupported digest {digest:?}")))?;
        let bytes = self.bundle.read(&format!("blobs/sha256/{}", d.hex()))?;
        let actual = Digest::of_bytes(&bytes);
        if actual != d {
            return Err(ImageError::DigestMismatch {
                what: format!("blob {digest}"),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok((bytes, d))
    }

    fn oci_layout(&mut self) -> Result<(), ImageError> {
        let index: OciDoc = parse_json(&self.bundle.read("index.json")?, "index.json")?;
        for desc in &index.manifests {
            self.oci_descriptor(desc, name_of(desc), 0)?;
        }
        Ok(())
    }

    fn oci_descriptor(
        &mut self,
        desc: &Descriptor,
        name: Option<Reference>,
        depth: u32,
    ) -> Result<(), ImageError> {
        if depth > 4 {
            return Err(ImageError::BadArchive(
                "OCI index nesting is too deep".into(),
            ));
        }
        let (bytes, _) = self.blob(&desc.digest)?;
        let doc: OciDoc = parse_json(&bytes, &desc.digest)?;
        if !doc.manifests.is_empty()
            || desc.media_type.contains("index")
            || desc.media_type.contains("list")
        {
            // A multi-platform index: take this machine's platform, or the only entry.
            let pick = doc
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == host_arch())
                })
                .or(if doc.manifests.len() == 1 {
                    doc.manifests.first()
                } else {
                    None
                })
                .ok_or_else(|| {
                    ImageError::BadArchive(format!(
                        "index {} has no image for linux/{}",
                        desc.digest,
                        host_arch()
                    ))
                })?;
            return self.oci_descriptor(pick, name, depth + 1);
        }
        let config_desc = doc.config.as_ref().ok_or_else(|| {
            ImageError::BadArchive(format!("manifest {} has no config", desc.digest))
        })?;
        let (config, _) = self.blob(&config_desc.digest)?;
        let mut files = Vec::new();
        let mut digests = Vec::new();
        for l in &doc.layers {
            let d = Digest::parse(&l.digest).map_err(|_| {
                ImageError::BadArchive(format!("unsupported digest {:?}", l.digest))
            })?;
            files.push(format!("blobs/sha256/{}", d.hex()));
            digests.push(d);
        }
        self.add(config, &files, Some(&digests), name.into_iter().collect())
    }
}

/// The image name an OCI descriptor carries: containerd's full name, or a full reference in
/// `org.opencontainers.image.ref.name` (a bare tag there names no repository).
fn name_of(desc: &Descriptor) -> Option<Reference> {
    if let Some(n) = desc.annotations.get("io.containerd.image.name") {
        return Reference::parse_tagged(n).ok();
    }
    let n = desc.annotations.get("org.opencontainers.image.ref.name")?;
    if n.contains(['/', ':']) {
        Reference::parse_tagged(n)
            .ok()
            .filter(|r| r.tag().is_some())
    } else {
        None
    }
}

impl ImageService {
    /// Loads every image of the archive; returns the `{"stream": …}` lines to send.
    pub(crate) fn load_images(&self, body: impl Read) -> Result<Vec<Value>, ImageError> {
        let dir = self
            .inner
            .tmp
            .join(format!("load-{:016x}", rand::random::<u64>()));
        let bundle = Bundle::extract(body, dir)?;
        let mut loader = Loader {
            svc: self,
            bundle: &bundle,
            layers: Vec::new(),
            pending: HashSet::new(),
            images: Vec::new(),
        };
        if bundle.exists("manifest.json") {
            loader.docker_archive()?;
        } else if bundle.exists("index.json") {
            loader.oci_layout()?;
        } else {
            return Err(ImageError::BadArchive(
                "neither manifest.json nor index.json found in the archive".into(),
            ));
        }
        let Loader { layers, images, .. } = loader;
        let registered = self.register(layers, &images)?;
        drop(bundle);
        let mut out = Vec::new();
        for r in &registered {
            if r.tags.is_empty() {
                out.push(json!({ "stream": format!("Loaded image ID: {}\n", r.id) }));
            }
            for (t, displaced) in &r.tags {
                if let Some(old) = displaced {
                    out.push(json!({ "stream": format!(
                        "The image {} already exists, renaming the old one with ID {old} to empty string\n",
                        t.familiar()
                    ) }));
                }
                out.push(json!({ "stream": format!("Loaded image: {}\n", t.familiar()) }));
                self.event("tag", &r.id, &t.familiar());
            }
            self.event("load", &r.id, &r.id);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::image::testutil::{archive, file_tar, service, TestService};

    fn config(diffs: &[&[u8]], cmd: &str) -> Vec<u8> {
        let ids: Vec<String> = diffs
            .iter()
            .map(|t| Digest::of_bytes(t).to_string())
            .collect();
        let history: Vec<Value> = ids
            .iter()
            .map(|_| json!({ "created": "2026-01-02T03:04:05Z", "created_by": "test" }))
            .collect();
        serde_json::to_vec(&json!({
            "architecture": host_arch(), "os": "linux", "created": "2026-01-02T03:04:05.5Z",
            "config": { "Cmd": [cmd], "Env": ["PATH=/bin"] },
            "rootfs": { "type": "layers", "diff_ids": ids },
            "history": history,
        }))
        .expect("json")
    }

    fn docker_archive(layers: &[&[u8]], cfg: &[u8], tags: &[&str]) -> Vec<u8> {
        let id = Digest::of_bytes(cfg);
        let mut files = vec![(format!("{}.json", id.hex()), cfg.to_vec())];
        let mut paths = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let p = format!("{i:064x}/layer.tar");
            files.push((p.clone(), l.to_vec()));
            paths.push(p);
        }
        let manifest =
            json!([{ "Config": format!("{}.json", id.hex()), "RepoTags": tags, "Layers": paths }]);
        files.push((
            "manifest.json".into(),
            serde_json::to_vec(&manifest).expect("json"),
        ));
        let refs: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
        archive(&refs)
    }

    fn counts(t: &TestService) -> (usize, usize) {
        let count = |p: std::path::PathBuf| std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
        (
            count(t.dir.path().join("overlay")),
            count(t.dir.path().join("content/blobs/sha256")),
        )
    }

    #[test]
    fn loads_a_docker_archive() {
        let t = service();
        let l1 = file_tar(&[("bin/sh", b"sh".as_slice())]);
        let l2 = file_tar(&[("etc/motd", b"hi".as_slice())]);
        let cfg = config(&[&l1, &l2], "/bin/sh");
        let lines = t
            .svc
            .load_images(&docker_archive(&[&l1, &l2], &cfg, &["busybox:latest"])[..])
            .expect("load");
        assert_eq!(
            lines,
            vec![json!({ "stream": "Loaded image: busybox:latest\n" })]
        );
        let img = t.svc.resolve("busybox").expect("resolve");
        assert_eq!(img.id, Digest::of_bytes(&cfg).to_string());
        assert_eq!(img.config.cmd, vec!["/bin/sh"]);
        assert_eq!(img.layer_dirs.len(), 2);
        assert_eq!(
            std::fs::read(img.layer_dirs[1].join("etc/motd")).expect("motd"),
            b"hi"
        );
        let hist = t.svc.image_history("busybox").expect("history");
        assert_eq!(hist[0]["Id"], json!(img.id));
        assert_eq!(hist[0]["Tags"], json!(["busybox:latest"]));
        assert_eq!(hist[1]["Id"], "<missing>");

        // Loading again reuses the layers and reports the same image.
        let lines = t
            .svc
            .load_images(&docker_archive(&[&l1, &l2], &cfg, &[])[..])
            .expect("reload");
        assert_eq!(
            lines,
            vec![json!({ "stream": format!("Loaded image ID: {}\n", img.id) })]
        );
        assert_eq!(counts(&t), (2, 1));
        // A second image sharing the base layer, taking the tag over.
        let cfg2 = config(&[&l1], "/bin/true");
        let lines = t
            .svc
            .load_images(&docker_archive(&[&l1], &cfg2, &["busybox:latest"])[..])
            .expect("load 2");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0]["stream"]
            .as_str()
            .expect("s")
            .contains("renaming the old one"));
        assert_eq!(counts(&t), (2, 2));
    }

    #[test]
    fn corrupt_archives_register_nothing() {
        let t = service();
        let l1 = file_tar(&[("a", b"1".as_slice())]);
        let l2 = file_tar(&[("b", b"2".as_slice())]);
        let wrong = config(&[&l1, &l1], "x");
        let good = docker_archive(&[&l1, &l2], &config(&[&l1, &l2], "x"), &["x:1"]);
        for bad in [
            docker_archive(&[&l1, &l2], &wrong, &["x:1"]),
            docker_archive(&[&l1], &config(&[&l1, &l2], "x"), &["x:1"]),
            good[..good.len() - 1024].to_vec(),
            good[..good.len() / 2].to_vec(),
            archive(&[("hello.txt", b"no manifest".to_vec())]),
        ] {
            let err = t.svc.load_images(&bad[..]).expect_err("must fail");
            assert!(matches!(err, ImageError::BadArchive(_)), "{err}");
            assert_eq!(counts(&t), (0, 0));
            assert_eq!(
                std::fs::read_dir(t.dir.path().join("tmp/images"))
                    .expect("tmp")
                    .count(),
                0
            );
            assert!(t.svc.resolve("x:1").is_err());
        }
    }

    /// An OCI layout with a gzip layer, a nested multi-platform index and a name annotation.
    #[test]
    fn loads_an_oci_layout() {
        let t = service();
        let layer = file_tar(&[("hello", b"oci".as_slice())]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&layer).expect("gz");
        let gz = gz.finish().expect("gz");
        let cfg = config(&[&layer], "/hello");
        let blob = |b: &[u8]| {
            (
                format!("blobs/sha256/{}", Digest::of_bytes(b).hex()),
                b.to_vec(),
            )
        };
        let desc = |mt: &str, b: &[u8]| json!({ "mediaType": mt, "digest": Digest::of_bytes(b).to_string(), "size": b.len() });
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": desc("application/vnd.oci.image.config.v1+json", &cfg),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", &gz)],
        }))
        .expect("json");
        let mut m = desc("application/vnd.oci.image.manifest.v1+json", &manifest);
        m["platform"] = json!({ "architecture": host_arch(), "os": "linux" });
        let nested =
            serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": [m] })).expect("json");
        let mut top = desc("application/vnd.oci.image.index.v1+json", &nested);
        top["annotations"] = json!({ "org.opencontainers.image.ref.name": "example.com/oci:2" });
        let index =
            serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": [top] })).expect("json");
        let files = vec![
            (
                "oci-layout".to_string(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            blob(&gz),
            blob(&cfg),
            blob(&manifest),
            blob(&nested),
            ("index.json".to_string(), index),
        ];
        let refs: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
        let lines = t.svc.load_images(&archive(&refs)[..]).expect("load");
        assert_eq!(
            lines,
            vec![json!({ "stream": "Loaded image: example.com/oci:2\n" })]
        );
        let img = t.svc.resolve("example.com/oci:2").expect("resolve");
        assert_eq!(
            std::fs::read(img.layer_dirs[0].join("hello")).expect("file"),
            b"oci"
        );

        // A layer blob that does not match its descriptor is refused, even with the right
        // content (same diff id, different compression).
        let t = service();
        let mut other = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        other.write_all(&layer).expect("gz");
        let mut bad_files = files.clone();
        bad_files[1].1 = other.finish().expect("gz");
        assert_ne!(bad_files[1].1, gz);
        let refs: Vec<(&str, Vec<u8>)> = bad_files
            .iter()
            .map(|(n, d)| (n.as_str(), d.clone()))
            .collect();
        let err = t
            .svc
            .load_images(&archive(&refs)[..])
            .expect_err("bad blob");
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert_eq!(counts(&t), (0, 0));
    }

    #[test]
    fn symlinked_layers_as_newer_docker_writes_them() {
        let t = service();
        let layer = file_tar(&[("x", b"linked".as_slice())]);
        let cfg = config(&[&layer], "/x");
        let hex = Digest::of_bytes(&layer).hex().to_owned();
        let manifest = json!([{ "Config": format!("blobs/sha256/{}", Digest::of_bytes(&cfg).hex()),
            "RepoTags": ["linked:1"], "Layers": [format!("{hex}/layer.tar")] }]);
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data).expect("append");
        };
        add(&format!("blobs/sha256/{hex}"), &layer);
        add(
            &format!("blobs/sha256/{}", Digest::of_bytes(&cfg).hex()),
            &cfg,
        );
        add(
            "manifest.json",
            &serde_json::to_vec(&manifest).expect("json"),
        );
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(
            &mut h,
            format!("{hex}/layer.tar"),
            format!("../blobs/sha256/{hex}"),
        )
        .expect("link");
        let tar = b.into_inner().expect("tar");
        t.svc.load_images(&tar[..]).expect("load");
        assert!(t.svc.resolve("linked:1").is_ok());
    }
}
