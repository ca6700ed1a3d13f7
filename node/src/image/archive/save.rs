//! `docker save`: a streamed tar that both classic `docker load` (manifest.json) and OCI
//! tooling (index.json) accept, laid out as Docker ≥ 25 writes it.
//!
//! ```text
//!  blobs/sha256/<diff id>     each layer's original tar, replayed from its tar-split recipe
//!  blobs/sha256/<image id>    config
//!  blobs/sha256/<digest>      OCI manifest per image
//!  index.json  oci-layout     OCI image layout, one entry per tag (containerd name annotations)
//!  manifest.json repositories docker-archive: [{Config, RepoTags, Layers}]
//! ```
//! Layers are byte-identical to what was loaded (checked against the diff id while streaming),
//! so image ids survive a save/load round trip.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::image::digest::{is_hex64, Digest};
use crate::image::error::ImageError;
use crate::image::reference::Reference;
use crate::image::service::ImageService;
use crate::image::store::layers::LayerMeta;

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

struct SaveImage {
    id: Digest,
    config: Vec<u8>,
    tags: Vec<Reference>,
    layers: Vec<LayerMeta>,
}

/// Everything a save will write, resolved before the first byte is sent.
pub(crate) struct SavePlan {
    images: Vec<SaveImage>,
}

impl ImageService {
    /// Resolves the names as Docker does: a bare repository name saves all its tags.
    pub(crate) fn plan_save(&self, names: &[String]) -> Result<SavePlan, ImageError> {
        let mut plan = SavePlan { images: Vec::new() };
        for name in names {
            let bare = name.strip_prefix("sha256:").unwrap_or(name);
            let parsed = if is_hex64(bare) || name.starts_with("sha256:") {
                None
            } else {
                Reference::parse(name).ok()
            };
            match parsed {
                Some(r) if r.is_name_only() => {
                    let mut found = false;
                    for rec in self.inner.records.all()? {
                        for t in rec
                            .repo_tags
                            .iter()
                            .filter_map(|t| Reference::parse(t).ok())
                        {
                            if t.name() == r.name() {
                                self.add_to_plan(&mut plan, &rec.id, Some(t))?;
                                found = true;
                            }
                        }
                    }
                    if !found {
                        let rec = self.lookup(name)?;
                        self.add_to_plan(&mut plan, &rec.id, None)?;
                    }
                }
                Some(r) => {
                    let rec = self.lookup(name)?;
                    let tag = if r.digest().is_none() {
                        Some(Reference::parse_tagged(name)?)
                    } else {
                        None
                    };
                    self.add_to_plan(&mut plan, &rec.id, tag)?;
                }
                None => {
                    let rec = self.lookup(name)?;
                    self.add_to_plan(&mut plan, &rec.id, None)?;
                }
            }
        }
        Ok(plan)
    }

    fn add_to_plan(
        &self,
        plan: &mut SavePlan,
        id: &str,
        tag: Option<Reference>,
    ) -> Result<(), ImageError> {
        if let Some(img) = plan.images.iter_mut().find(|i| i.id.to_string() == id) {
            if let Some(t) = tag.filter(|t| !img.tags.contains(t)) {
                img.tags.push(t);
            }
            return Ok(());
        }
        let rec = self
            .inner
            .records
            .get(id)?
            .ok_or_else(|| ImageError::NotFound(id.to_owned()))?;
        let mut layers = Vec::new();
        for c in &rec.layers {
            layers.push(self.inner.layers.must_get(&Digest::parse(c)?)?);
        }
        plan.images.push(SaveImage {
            id: Digest::parse(id)?,
            config: self.config_bytes(&rec)?,
            tags: tag.into_iter().collect(),
            layers,
        });
        Ok(())
    }

    /// Writes the archive of `plan` to `out`.
    pub(crate) fn write_save(&self, plan: &SavePlan, out: impl Write) -> Result<(), ImageError> {
        let mut tar = tar::Builder::new(out);
        let werr = |e: io::Error| ImageError::Internal(format!("writing image archive: {e}"));
        for dir in ["blobs", "blobs/sha256"] {
            let mut h = header(tar::EntryType::Directory, 0, 0o755);
            tar.append_data(&mut h, dir, io::empty()).map_err(werr)?;
        }
        let mut written = HashSet::new();
        let mut manifest_json = Vec::new();
        let mut index = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for img in &plan.images {
            for l in &img.layers {
                if written.insert(l.diff_id.clone()) {
                    let src = Verified::new(
                        self.inner.layers.reassemble(l)?,
                        l.tar_size,
                        l.diff_id.clone(),
                    );
                    let mut h = header(tar::EntryType::Regular, l.tar_size, 0o644);
                    tar.append_data(&mut h, blob_path(&l.diff_id), src)
                        .map_err(werr)?;
                }
            }
            append_blob(&mut tar, &img.config, &mut written)?;
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": { "mediaType": CONFIG_TYPE, "digest": img.id.to_string(), "size": img.config.len() },
                "layers": img.layers.iter().map(|l| json!({
                    "mediaType": LAYER_TYPE, "digest": l.diff_id.to_string(), "size": l.tar_size,
                })).collect::<Vec<_>>(),
            });
            let manifest =
                serde_json::to_vec(&manifest).map_err(|e| ImageError::Internal(e.to_string()))?;
            let manifest_digest = append_blob(&mut tar, &manifest, &mut written)?;
            let desc = |annotations: Option<Value>| {
                let mut d = json!({ "mediaType": MANIFEST_TYPE, "digest": manifest_digest.to_string(), "size": manifest.len() });
                if let Some(a) = annotations {
                    d["annotations"] = a;
                }
                d
            };
            if img.tags.is_empty() {
                index.push(desc(None));
            }
            for t in &img.tags {
                index.push(desc(Some(json!({
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": t.tag().unwrap_or_default(),
                }))));
                if let (Some(top), Some(tag)) = (img.layers.last(), t.tag()) {
                    repositories
                        .entry(t.familiar_name())
                        .or_default()
                        .insert(tag.to_owned(), top.diff_id.hex().to_owned());
                }
            }
            let tags: Vec<String> = img.tags.iter().map(Reference::familiar).collect();
            manifest_json.push(json!({
                "Config": blob_path(&img.id),
                "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
                "Layers": img.layers.iter().map(|l| blob_path(&l.diff_id)).collect::<Vec<_>>(),
            }));
        }
        let docs = [
            (
                "index.json",
                json!({ "schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": index }),
            ),
            ("manifest.json", Value::Array(manifest_json)),
            ("oci-layout", json!({ "imageLayoutVersion": "1.0.0" })),
            ("repositories", json!(repositories)),
        ];
        for (name, doc) in docs {
            let bytes =
                serde_json::to_vec(&doc).map_err(|e| ImageError::Internal(e.to_string()))?;
            let mut h = header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
            tar.append_data(&mut h, name, &bytes[..]).map_err(werr)?;
        }
        tar.into_inner().map_err(werr)?.flush().map_err(werr)?;
        for img in &plan.images {
            let id = img.id.to_string();
            self.event("save", &id, &id);
        }
        Ok(())
    }
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    bytes: &[u8],
    written: &mut HashSet<Digest>,
) -> Result<Digest, ImageError> {
    let d = Digest::of_bytes(bytes);
    if written.insert(d.clone()) {
        let mut h = header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
        tar.append_data(&mut h, blob_path(&d), bytes)
            .map_err(|e| ImageError::Internal(format!("writing image archive: {e}")))?;
    }
    Ok(d)
}

/// Yields exactly `left` bytes and fails at the end unless they hash to `expected`, so a
/// damaged layer ends the stream with an error instead of producing a wrong archive.
struct Verified<R> {
    inner: R,
    left: u64,
    hasher: Option<Sha256>,
    expected: Digest,
}

impl<R: Read> Verified<R> {
    fn new(inner: R, len: u64, expected: Digest) -> Self {
        Verified {
            inner,
            left: len,
            hasher: Some(Sha256::new()),
            expected,
        }
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            if let Some(h) = self.hasher.take() {
                let got = Digest::from_hasher(h);
                if got != self.expected {
                    return Err(io::Error::other(format!(
                        "layer {} reassembled as {got}",
                        self.expected
                    )));
                }
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("layer {} is short", self.expected),
            ));
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write as _;

    use super::*;
    use crate::image::archive::import::ImportPlan;
    use crate::image::testutil::service;
    use berth_api::backend::ImportOptions;

    /// A rootfs tar with a symlink, a hard link and a whiteout, written by hand.
    fn rootfs() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "bin/", io::empty()).expect("dir");
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        h.set_size(6);
        b.append_data(&mut h, "bin/busybox", &b"binary"[..])
            .expect("file");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, "bin/sh", "bin/busybox")
            .expect("hardlink");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "bin/ls", "/bin/busybox")
            .expect("symlink");
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        b.append_data(&mut h, "etc/.wh.gone", io::empty())
            .expect("whiteout");
        b.into_inner().expect("tar")
    }

    fn entries(tar: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut a = tar::Archive::new(tar);
        let mut out = BTreeMap::new();
        for e in a.entries().expect("entries") {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").display().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("data");
            out.insert(name, data);
        }
        out
    }

    fn without(tar: &[u8], skip: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries(tar) {
            if name != skip && !name.ends_with('/') && name != "blobs" && name != "blobs/sha256" {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, &name, &data[..]).expect("append");
            }
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn save_then_load_round_trips_ids_and_tags() {
        let t = service();
        let tar = rootfs();
        let plan = ImportPlan::new(&ImportOptions {
            repo: Some("app:1".into()),
            ..Default::default()
        })
        .expect("plan");
        let id = t.svc.import_image(plan, &tar[..]).expect("import");
        t.svc.tag_image("app:1", "app", Some("2")).expect("tag");
        t.svc.tag_image("app:1", "other", None).expect("tag");

        let mut saved = Vec::new();
        let plan = t.svc.plan_save(&["app".to_string()]).expect("plan");
        t.svc.write_save(&plan, &mut saved).expect("save");
        let files = entries(&saved);
        let diff = Digest::of_bytes(&tar);
        assert_eq!(
            files[&format!("blobs/sha256/{}", diff.hex())],
            tar,
            "layer bytes are the imported tar"
        );
        let manifest: Value = serde_json::from_slice(&files["manifest.json"]).expect("manifest");
        assert_eq!(manifest[0]["RepoTags"], json!(["app:1", "app:2"]));
        assert_eq!(
            manifest[0]["Config"],
            json!(format!("blobs/sha256/{}", &id["sha256:".len()..]))
        );
        let index: Value = serde_json::from_slice(&files["index.json"]).expect("index");
        assert_eq!(index["manifests"].as_array().expect("list").len(), 2);
        assert_eq!(
            index["manifests"][0]["annotations"]["io.containerd.image.name"],
            "docker.io/library/app:1"
        );
        assert!(files.contains_key("oci-layout") && files.contains_key("repositories"));

        t.svc.remove_image(&id, true).expect("rmi -f");
        assert!(t.svc.resolve(&id).is_err());
        assert_eq!(
            std::fs::read_dir(t.dir.path().join("overlay"))
                .expect("overlay")
                .count(),
            0
        );

        let lines = t.svc.load_images(&saved[..]).expect("load");
        assert_eq!(lines.len(), 2);
        assert_eq!(t.svc.resolve("app:2").expect("app:2").id, id);
        let layer = &t.svc.resolve("app:1").expect("app:1").layer_dirs[0];
        assert_eq!(
            std::fs::read(layer.join("bin/sh")).expect("hard link"),
            b"binary"
        );

        // The OCI half alone is enough too.
        t.svc.remove_image(&id, true).expect("rmi -f");
        let oci_only = without(&saved, "manifest.json");
        t.svc.load_images(&oci_only[..]).expect("load OCI");
        assert_eq!(t.svc.resolve("app:1").expect("app:1").id, id);
    }

    #[test]
    fn unknown_names_fail_before_streaming() {
        let t = service();
        let err = t.svc.plan_save(&["nope".to_string()]).err().expect("404");
        assert!(matches!(err, ImageError::NotFound(_)));
    }

    fn run(cmd: &str, args: &[&str]) -> String {
        let out = std::process::Command::new(cmd)
            .args(args)
            .output()
            .expect(cmd);
        assert!(
            out.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The whole path with real tools: a busybox rootfs is imported, run in its overlay,
    /// saved, and the archive read and rewritten by skopeo (docker-archive and OCI) and
    /// loaded back with the same id.
    #[test]
    #[ignore = "needs root, a static /bin/busybox, chroot and skopeo on the host"]
    fn interop_with_skopeo_and_a_real_rootfs() {
        let t = service();
        let work = tempfile::tempdir().expect("tempdir");
        let root = work.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).expect("mkdir");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("copy busybox");
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("symlink");
        std::fs::write(root.join("etc/motd"), "from the image\n").expect("motd");
        let mut layer = Vec::new();
        crate::image::archive::pack::pack_layer(&root, &mut layer).expect("pack");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&layer).expect("gzip");
        let opts = ImportOptions {
            repo: Some("bb:1".into()),
            changes: vec![r#"CMD ["/bin/sh"]"#.into()],
            ..Default::default()
        };
        let id = t
            .svc
            .import_image(
                ImportPlan::new(&opts).expect("plan"),
                &gz.finish().expect("gzip")[..],
            )
            .expect("import");

        let img = t.svc.resolve("bb:1").expect("resolve");
        let (up, wk, merged) = (
            work.path().join("up"),
            work.path().join("work"),
            work.path().join("merged"),
        );
        for d in [&up, &wk, &merged] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        crate::image::mount_rootfs(&img.layer_dirs, &up, &wk, &merged).expect("mount");
        let m = merged.display().to_string();
        let out = std::process::Command::new("chroot")
            .args([
                &m,
                "/bin/sh",
                "-c",
                "/bin/busybox cat /etc/motd; echo x > /new",
            ])
            .output();
        crate::image::unmount_rootfs(&merged).expect("unmount");
        let out = out.expect("chroot");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "from the image\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(up.join("new").exists() && !img.layer_dirs[0].join("new").exists());

        let saved = work.path().join("saved.tar");
        let plan = t.svc.plan_save(&["bb".to_string()]).expect("plan");
        t.svc
            .write_save(&plan, std::fs::File::create(&saved).expect("create"))
            .expect("save");
        let s = saved.display().to_string();
        let raw: Value = serde_json::from_str(&run(
            "skopeo",
            &["inspect", "--raw", &format!("docker-archive:{s}")],
        ))
        .expect("manifest");
        assert_eq!(raw["config"]["digest"], json!(id));

        let oci = work.path().join("oci").display().to_string();
        run(
            "skopeo",
            &[
                "copy",
                "-q",
                &format!("docker-archive:{s}"),
                &format!("oci:{oci}:bb-oci"),
            ],
        );
        let mut b = tar::Builder::new(Vec::new());
        b.append_dir_all(".", &oci).expect("tar oci dir");
        let oci_tar = b.into_inner().expect("tar");
        let other = work.path().join("skopeo.tar").display().to_string();
        run(
            "skopeo",
            &[
                "copy",
                "-q",
                &format!("docker-archive:{s}"),
                &format!("docker-archive:{other}:bb:3"),
            ],
        );

        // skopeo rewrites the config as an OCI config (a new id) and gzips the layer; the
        // layer's diff id must still match ours.
        let ours = t.svc.inspect_image(&id).expect("inspect");
        t.svc.remove_image(&id, true).expect("rmi");
        let lines = t
            .svc
            .load_images(&oci_tar[..])
            .expect("load skopeo's OCI layout");
        let loaded = lines[0]["stream"]
            .as_str()
            .expect("line")
            .trim()
            .trim_start_matches("Loaded image ID: ")
            .to_owned();
        let theirs = t.svc.inspect_image(&loaded).expect("inspect OCI copy");
        assert_eq!(theirs["RootFS"], ours["RootFS"]);
        assert_eq!(theirs["Config"]["Cmd"], json!(["/bin/sh"]));
        let lines = t
            .svc
            .load_images(std::fs::File::open(&other).expect("open"))
            .expect("load skopeo's archive");
        assert_eq!(lines, vec![json!({ "stream": "Loaded image: bb:3\n" })]);
        assert_eq!(t.svc.resolve("bb:3").expect("bb:3").id, id);
    }
}
