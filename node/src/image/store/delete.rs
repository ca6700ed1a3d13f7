//! `docker rmi` and `docker image prune`, following dockerd's rules.
//!
//! - By reference: the reference is removed. The image goes only when that was its last
//!   reference and no container uses it. Removing the only tag of an image a container uses
//!   needs force (409 otherwise), and even then only untags.
//! - By id: an image with several references needs force (409); an image a container uses
//!   needs force and then is only untagged, because its layers are the container's lowers.
//! - Deleting an image removes its config blob and every layer no other image uses; the reply
//!   lists `Untagged` references, then `Deleted` for the image and each removed layer.
//!
//! Records change in one transaction; layer directories are removed after it commits, so a
//! crash in between leaves only unreferenced layers, which the next start removes.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::image::digest::Digest;
use crate::image::error::ImageError;
use crate::image::reference::Reference;
use crate::image::service::{short_id, ImageService};
use crate::image::store::records::{ImageRecord, RecordBatch};
use berth_api::backend::Filters;

#[derive(Default)]
pub(crate) struct Removal {
    pub items: Vec<Value>,
    pub reclaimed: u64,
    events: Vec<(&'static str, String)>,
}

impl Removal {
    fn untag(
        &mut self,
        batch: &mut RecordBatch<'_>,
        r: &Reference,
        id: &str,
    ) -> Result<(), ImageError> {
        batch.remove_ref(&r.to_string())?;
        self.items.push(json!({ "Untagged": r.familiar() }));
        self.events.push(("untag", id.to_owned()));
        Ok(())
    }
}

fn refs_of(rec: &ImageRecord) -> Vec<Reference> {
    rec.repo_tags
        .iter()
        .chain(&rec.repo_digests)
        .filter_map(|r| Reference::parse(r).ok())
        .collect()
}

/// Docker's `isSingleReference`: one tag at most, and all references in one repository.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let tags: Vec<&Reference> = refs.iter().filter(|r| r.digest().is_none()).collect();
    if tags.len() > 1 {
        return false;
    }
    let name = tags.first().copied().unwrap_or(&refs[0]).name();
    refs.iter().all(|r| r.name() == name)
}

fn is_id_prefix(id: &str, name: &str) -> bool {
    id.starts_with(name)
        || id
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.starts_with(name))
}

fn conflict_delete(id: &str, why: String) -> ImageError {
    ImageError::Conflict(format!(
        "conflict: unable to delete {} (must be forced) - {why}",
        short_id(id)
    ))
}

impl ImageService {
    /// `DELETE /images/{name}`.
    pub(crate) fn remove_image(&self, name: &str, force: bool) -> Result<Vec<Value>, ImageError> {
        // The users callback runs without our lock held (it takes the container store's), so
        // the image is looked up again under the lock to make sure it is still the same one.
        for _ in 0..3 {
            let id = self.lookup(name)?.id;
            let users = self.users_of(&id);
            let removal = {
                let _guard = self.lock();
                if self.lookup(name)?.id != id {
                    continue;
                }
                self.remove_locked(name, force, &users)?
            };
            self.publish(&removal);
            return Ok(removal.items);
        }
        Err(ImageError::Conflict(format!(
            "conflict: {name} keeps changing; try again"
        )))
    }

    fn publish(&self, r: &Removal) {
        for (action, id) in &r.events {
            self.event(action, id, id);
        }
    }

    fn remove_locked(
        &self,
        name: &str,
        force: bool,
        users: &[String],
    ) -> Result<Removal, ImageError> {
        let rec = self.lookup(name)?;
        let id = rec.id.clone();
        let refs = refs_of(&rec);
        let mut out = Removal::default();
        let mut batch = self.inner.records.batch();
        let mut remaining: Vec<Reference>;
        if !is_id_prefix(&id, name) {
            let r = Reference::parse_tagged(name)?;
            if !force && is_single_reference(&refs) {
                if let Some(c) = users.first() {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to remove repository reference {name:?} (must force) - container {} is using its referenced image {}",
                        short_id(c),
                        short_id(&id)
                    )));
                }
            }
            out.untag(&mut batch, &r, &id)?;
            remaining = refs.into_iter().filter(|x| *x != r).collect();
            // The last tag of a repository takes that repository's digests with it.
            if r.digest().is_none()
                && !remaining
                    .iter()
                    .any(|x| x.digest().is_none() && x.name() == r.name())
            {
                let (gone, keep): (Vec<_>, Vec<_>) = remaining
                    .into_iter()
                    .partition(|x| x.digest().is_some() && x.name() == r.name());
                for g in &gone {
                    out.untag(&mut batch, g, &id)?;
                }
                remaining = keep;
            }
            if !remaining.is_empty() || !users.is_empty() {
                batch.commit()?;
                return Ok(out);
            }
        } else {
            remaining = refs;
            if is_single_reference(&remaining) {
                if let (false, Some(c)) = (force, users.first()) {
                    return Err(conflict_delete(
                        &id,
                        format!("image is being used by stopped container {}", short_id(c)),
                    ));
                }
                for r in std::mem::take(&mut remaining) {
                    out.untag(&mut batch, &r, &id)?;
                }
            }
            if let Some(c) = users.first() {
                if !force {
                    return Err(conflict_delete(
                        &id,
                        format!("image is being used by stopped container {}", short_id(c)),
                    ));
                }
                for r in std::mem::take(&mut remaining) {
                    out.untag(&mut batch, &r, &id)?;
                }
                batch.commit()?;
                return Ok(out);
            }
            if !remaining.is_empty() {
                if !force {
                    return Err(conflict_delete(
                        &id,
                        "image is referenced in multiple repositories".into(),
                    ));
                }
                for r in std::mem::take(&mut remaining) {
                    out.untag(&mut batch, &r, &id)?;
                }
            }
        }
        self.delete_image(batch, &rec, &mut out)?;
        Ok(out)
    }

    /// Deletes the record (in `batch`), then the config blob and the layers nobody else uses.
    fn delete_image(
        &self,
        mut batch: RecordBatch<'_>,
        rec: &ImageRecord,
        out: &mut Removal,
    ) -> Result<(), ImageError> {
        batch.delete_image(&rec.id);
        batch.commit()?;
        out.items.push(json!({ "Deleted": rec.id }));
        out.events.push(("delete", rec.id.clone()));
        if let Err(e) = self.inner.content.delete(&Digest::parse(&rec.id)?) {
            tracing::warn!(image = %rec.id, error = %e, "removing config blob");
        }
        let in_use: HashSet<String> = self
            .inner
            .records
            .all()?
            .into_iter()
            .flat_map(|r| r.layers.into_iter())
            .collect();
        for chain in rec.layers.iter().rev().filter(|c| !in_use.contains(*c)) {
            let d = Digest::parse(chain)?;
            let size = self.inner.layers.get(&d)?.map_or(0, |m| m.size);
            self.inner.layers.remove(&d)?;
            out.reclaimed += size;
            out.items.push(json!({ "Deleted": chain }));
        }
        Ok(())
    }

    /// `POST /images/prune`: dangling images, or every unused one with `dangling=false`.
    pub(crate) fn prune_images(&self, filters: &Filters) -> Result<Value, ImageError> {
        let mut dangling_only = true;
        for (key, values) in filters {
            match key.as_str() {
                "dangling" => {
                    for v in values {
                        dangling_only = crate::image::views::parse_bool_filter("dangling", v)?;
                    }
                }
                "label" | "label!" | "until" => {}
                other => {
                    return Err(ImageError::InvalidArgument(format!(
                        "Invalid filter '{other}'"
                    )))
                }
            }
        }
        let until = match filters.get("until").and_then(|v| v.first()) {
            Some(u) => Some(crate::image::views::parse_until(u)?),
            None => None,
        };
        let mut total = Removal::default();
        let candidates: Vec<ImageRecord> = self
            .inner
            .records
            .all()?
            .into_iter()
            .filter(|r| self.users_of(&r.id).is_empty())
            .collect();
        {
            let _guard = self.lock();
            for rec in candidates {
                let Some(rec) = self.inner.records.get(&rec.id)? else {
                    continue;
                };
                if dangling_only && !rec.repo_tags.is_empty() {
                    continue;
                }
                if until.is_some_and(|t| rec.created >= t) {
                    continue;
                }
                let config = self.config_of(&rec)?;
                if !crate::image::views::labels_match(filters, &config.labels()) {
                    continue;
                }
                let names: Vec<String> = if rec.repo_tags.is_empty() && rec.repo_digests.is_empty()
                {
                    vec![rec.id.clone()]
                } else {
                    rec.repo_tags
                        .iter()
                        .chain(&rec.repo_digests)
                        .cloned()
                        .collect()
                };
                for n in names {
                    match self.remove_locked(&n, false, &[]) {
                        Ok(r) => {
                            total.items.extend(r.items);
                            total.events.extend(r.events);
                            total.reclaimed += r.reclaimed;
                        }
                        Err(ImageError::Conflict(_)) | Err(ImageError::NotFound(_)) => {}
                        Err(e) => {
                            tracing::warn!(image = %rec.id, error = %e, "prune: could not remove")
                        }
                    }
                }
            }
        }
        self.publish(&total);
        let attrs = [("reclaimed".to_owned(), total.reclaimed.to_string())].into();
        self.inner.events.publish("image", "prune", "", attrs);
        let deleted = if total.items.is_empty() {
            Value::Null
        } else {
            Value::Array(total.items)
        };
        Ok(json!({ "ImagesDeleted": deleted, "SpaceReclaimed": total.reclaimed }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::image::archive::import::ImportPlan;
    use crate::image::testutil::{file_tar, service, TestService};
    use berth_api::backend::ImportOptions;

    fn import(t: &TestService, repo: &str, tar: &[u8], changes: &[&str]) -> String {
        let opts = ImportOptions {
            repo: (!repo.is_empty()).then(|| repo.to_owned()),
            changes: changes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        t.svc
            .import_image(ImportPlan::new(&opts).expect("plan"), tar)
            .expect("import")
    }

    fn layers(t: &TestService) -> usize {
        std::fs::read_dir(t.dir.path().join("overlay"))
            .expect("overlay")
            .count()
    }

    #[test]
    fn untag_one_of_several_then_delete_by_id() {
        let t = service();
        let id = import(&t, "x:1", &file_tar(&[("f", b"1".as_slice())]), &[]);
        t.svc.tag_image("x:1", "x", Some("2")).expect("tag");
        t.svc.tag_image(&id, "y", None).expect("tag");
        assert_eq!(
            t.svc.remove_image("x:1", false).expect("rmi"),
            vec![json!({ "Untagged": "x:1" })]
        );
        let err = t.svc.remove_image(&id[7..19], false).expect_err("409");
        assert_eq!(
            err.to_string(),
            format!("conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories", &id[7..19])
        );
        let out = t.svc.remove_image(&id[7..19], true).expect("rmi -f");
        assert_eq!(out[0], json!({ "Untagged": "x:2" }));
        assert_eq!(out[1], json!({ "Untagged": "y:latest" }));
        assert_eq!(out[2], json!({ "Deleted": id }));
        assert_eq!(out.len(), 4, "the layer is deleted too: {out:?}");
        assert_eq!(layers(&t), 0);
        let (history, _) = t.events.subscribe();
        let actions: Vec<&str> = history.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["tag", "import", "tag", "tag", "untag", "untag", "untag", "delete"]
        );
    }

    #[test]
    fn images_in_use_are_only_untagged() {
        let t = service();
        let id = import(&t, "busy:1", &file_tar(&[("f", b"1".as_slice())]), &[]);
        let user = "c0ffee0123456789".repeat(4);
        let (want, u) = (id.clone(), user.clone());
        t.svc.set_users(Arc::new(
            move |img: &str| if img == want { vec![u.clone()] } else { vec![] },
        ));
        let err = t.svc.remove_image("busy:1", false).expect_err("409");
        assert_eq!(
            err.to_string(),
            format!(
                "conflict: unable to remove repository reference \"busy:1\" (must force) - container c0ffee012345 is using its referenced image {}",
                &id[7..19]
            )
        );
        assert_eq!(
            berth_api::error::ApiError::from(err).kind,
            berth_api::error::ErrorKind::Conflict
        );
        assert!(
            t.svc.remove_image(&id, false).is_err(),
            "by id needs force too"
        );
        assert_eq!(
            t.svc.remove_image("busy:1", true).expect("rmi -f"),
            vec![json!({ "Untagged": "busy:1" })]
        );
        assert_eq!(t.svc.resolve(&id).expect("still there").id, id);
        assert!(t.svc.remove_image(&id, true).expect("rmi -f id").is_empty());
        assert_eq!(layers(&t), 1, "a container's layers are never removed");
        assert_eq!(
            t.svc.list_images(&Filters::new()).expect("list")[0]["RepoTags"],
            json!([])
        );
    }

    #[test]
    fn shared_layers_go_with_the_last_image() {
        let t = service();
        let tar = file_tar(&[("shared", b"s".as_slice())]);
        let a = import(&t, "a", &tar, &["CMD [\"a\"]"]);
        let b = import(&t, "b", &tar, &["CMD [\"b\"]"]);
        assert_ne!(a, b);
        assert_eq!(layers(&t), 1);
        assert_eq!(t.svc.remove_image("a", false).expect("rmi a").len(), 2);
        assert_eq!(layers(&t), 1);
        let out = t.svc.remove_image("b", false).expect("rmi b");
        assert_eq!(
            out.last(),
            Some(&json!({ "Deleted": Digest::of_bytes(&tar).to_string() }))
        );
        assert_eq!(layers(&t), 0);
    }

    #[test]
    fn prune_dangling_then_unused() {
        let t = service();
        let dangling = import(&t, "", &file_tar(&[("d", b"dd".as_slice())]), &[]);
        let used = import(&t, "used:1", &file_tar(&[("u", b"uu".as_slice())]), &[]);
        let _tagged = import(
            &t,
            "tagged:1",
            &file_tar(&[("t", b"ttt".as_slice())]),
            &["LABEL keep=no"],
        );
        let u = used.clone();
        t.svc.set_users(Arc::new(move |img: &str| {
            if img == u {
                vec!["c".repeat(64)]
            } else {
                vec![]
            }
        }));

        let listed = t
            .svc
            .list_images(&[("dangling".to_string(), vec!["true".to_string()])].into())
            .expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["Id"], json!(dangling));
        let by_ref = t
            .svc
            .list_images(&[("reference".to_string(), vec!["tag*".to_string()])].into())
            .expect("list");
        assert_eq!(by_ref.len(), 1);
        assert_eq!(by_ref[0]["RepoTags"], json!(["tagged:1"]));
        assert_eq!(by_ref[0]["Labels"], json!({ "keep": "no" }));

        let report = t.svc.prune_images(&Filters::new()).expect("prune");
        assert_eq!(report["ImagesDeleted"][0], json!({ "Deleted": dangling }));
        assert_eq!(report["SpaceReclaimed"], 2);
        let report = t.svc.prune_images(&Filters::new()).expect("prune again");
        assert_eq!(
            report,
            json!({ "ImagesDeleted": null, "SpaceReclaimed": 0 })
        );

        let all: Filters = [("dangling".to_string(), vec!["false".to_string()])].into();
        let report = t.svc.prune_images(&all).expect("prune -a");
        assert_eq!(
            report["ImagesDeleted"][0],
            json!({ "Untagged": "tagged:1" })
        );
        assert_eq!(report["SpaceReclaimed"], 3);
        assert!(
            t.svc.resolve("used:1").is_ok(),
            "images in use are never pruned"
        );
        assert!(t
            .svc
            .prune_images(&[("bogus".to_string(), vec![])].into())
            .is_err());
    }

    fn refs(list: &[&str]) -> Vec<Reference> {
        list.iter()
            .map(|s| Reference::parse(s).expect("ref"))
            .collect()
    }

    #[test]
    fn single_reference_rule() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(!is_single_reference(&[]));
        assert!(is_single_reference(&refs(&["a:1"])));
        assert!(!is_single_reference(&refs(&["a:1", "a:2"])));
        assert!(is_single_reference(&refs(&["a:1", &format!("a@{d}")])));
        assert!(!is_single_reference(&refs(&["a:1", &format!("b@{d}")])));
        assert!(is_id_prefix("sha256:abcdef", "abc"));
        assert!(is_id_prefix("sha256:abcdef", "sha256:abc"));
        assert!(!is_id_prefix("sha256:abcdef", "busybox"));
    }
}
