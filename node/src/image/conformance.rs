//! The `ImageStore` conformance suite: the same assertions, run against every implementation
//! (`ImageService` on a temporary data root, and `FakeImageStore`), so code tested against
//! the fake can trust it to behave like the real store where the trait is concerned.
//!
//! Each check takes a fresh, empty store. Mounting (`mount_rootfs`) needs overlayfs and is
//! tested with the real kernel in `store/overlay.rs`; `pull` needs a registry and is covered
//! by the transfer tests and the end-to-end suite, so neither is here.

use std::sync::Arc;

use berth_api::models::ContainerConfig;

use crate::image::digest::is_hex64;
use crate::image::error::ImageError;
use crate::image::image_store::ImageStore;
use crate::image::store::child::{parse_tag, ChildImage};
use crate::image::testutil::file_tar;

/// A layer holding one file, big enough that removing it frees a measurable size.
fn layer(name: &str, fill: u8) -> Vec<u8> {
    file_tar(&[(name, vec![fill; 4096].as_slice())])
}

/// A child of `parent` (or of scratch), with `layer` as its new top layer if given.
fn child(
    s: &dyn ImageStore,
    parent: Option<&str>,
    created_by: &str,
    layer: Option<&[u8]>,
    tags: &[&str],
) -> String {
    let spec = ChildImage {
        parent: parent.map(str::to_owned),
        created_by: created_by.into(),
        tags: tags.iter().map(|t| parse_tag(t).expect("tag")).collect(),
        ..Default::default()
    };
    let mut reader = layer;
    let reader = reader.as_mut().map(|r| r as &mut dyn std::io::Read);
    s.create_child(&spec, reader).expect("create child")
}

fn is_not_found(r: Result<impl std::fmt::Debug, ImageError>) -> bool {
    matches!(r, Err(ImageError::NotFound(_)))
}

/// An image is found by tag, full id (with or without `sha256:`) and unique id prefix, with
/// its config and one directory per layer; unknown names are "not found".
pub fn resolves_by_name_and_id(s: &dyn ImageStore) {
    let spec = ChildImage {
        created_by: "ADD a".into(),
        config: ContainerConfig {
            env: vec!["A=1".into()],
            ..Default::default()
        },
        tags: vec![parse_tag("conf-base:v1").expect("tag")],
        ..Default::default()
    };
    let tar = layer("a", b'a');
    let id = s
        .create_child(&spec, Some(&mut &tar[..]))
        .expect("create child");
    let hex = id.strip_prefix("sha256:").expect("sha256: id");
    assert!(is_hex64(hex), "{id}");
    let prefixed = format!("sha256:{}", &hex[..12]);
    for name in [
        "conf-base:v1",
        "docker.io/library/conf-base:v1",
        id.as_str(),
        hex,
        &hex[..12],
        prefixed.as_str(),
    ] {
        let img = s.resolve(name).expect(name);
        assert_eq!(img.id, id, "{name}");
        assert_eq!(img.name, name);
        assert_eq!(img.layer_dirs.len(), 1, "{name}");
        assert_eq!(img.config.env, vec!["A=1"], "{name}");
    }
    assert_eq!(s.image_ids().expect("ids"), vec![id.clone()]);
    assert!(is_not_found(s.resolve("conf-base:v2")));
    assert!(is_not_found(s.resolve("conf-base")), "no :latest tag");
    assert!(is_not_found(
        s.resolve(&format!("sha256:{}", "0".repeat(64)))
    ));
    assert!(is_not_found(s.image_chain("conf-base:v2")));
}

/// A child without a layer shares its parent's layers and adds an empty history entry; one
/// with a layer stacks it on top; a child's config replaces its parent's.
pub fn children_stack_layers_and_history(s: &dyn ImageStore) {
    let tar_a = layer("a", b'a');
    let base = child(s, None, "ADD a", Some(&tar_a), &[]);
    let env = ChildImage {
        parent: Some(base.clone()),
        config: ContainerConfig {
            env: vec!["B=2".into()],
            ..Default::default()
        },
        created_by: "ENV B=2".into(),
        ..Default::default()
    };
    let config_only = s.create_child(&env, None).expect("config-only child");
    let base_img = s.resolve(&base).expect("base");
    let img = s.resolve(&config_only).expect("config-only child");
    assert_eq!(img.layer_dirs, base_img.layer_dirs);
    assert_eq!(img.config.env, vec!["B=2"]);

    let chain = s.image_chain(&config_only).expect("chain");
    assert_eq!(chain.id, config_only);
    assert_eq!(chain.history.len(), 2);
    assert_eq!(chain.history[1]["created_by"], "ENV B=2");
    assert!(!chain.empty_layer(0) && chain.empty_layer(1));
    assert_eq!(chain.diff_ids.len(), 1);
    assert_eq!(chain.layers, s.image_chain(&base).expect("base").layers);

    let tar_b = layer("b", b'b');
    let top = child(s, Some(&config_only), "COPY b", Some(&tar_b), &[]);
    let top_chain = s.image_chain(&top).expect("top chain");
    assert_eq!(top_chain.layers.len(), 2);
    assert_eq!(top_chain.layers[0], chain.layers[0]);
    assert_ne!(top_chain.diff_ids[0], top_chain.diff_ids[1]);
    let top_img = s.resolve(&top).expect("top");
    assert_eq!(top_img.layer_dirs.len(), 2);
    assert!(top_img.config.env.is_empty(), "config replaced, not merged");

    // The same content on scratch is the same layer.
    let again = child(s, None, "ADD a again", Some(&tar_a), &[]);
    assert_eq!(s.image_chain(&again).expect("again").layers, chain.layers);
    let mut ids = s.image_ids().expect("ids");
    ids.sort();
    let mut want = vec![base, config_only, top, again];
    want.sort();
    assert_eq!(ids, want);
}

/// `tag_all` points references at an image, moving a reference that named another one.
pub fn tags_point_and_move(s: &dyn ImageStore) {
    let tar = layer("a", b'a');
    let a = child(s, None, "ADD a", Some(&tar), &[]);
    let b = child(s, Some(&a), "CMD x", None, &[]);
    let one = parse_tag("conf-tag:one").expect("tag");
    let two = parse_tag("conf-tag:two").expect("tag");
    s.tag_all(&a, &[one.clone(), two.clone()]).expect("tag a");
    assert_eq!(s.resolve("conf-tag:one").expect("one").id, a);
    assert_eq!(s.resolve("conf-tag:two").expect("two").id, a);
    s.tag_all(&b, std::slice::from_ref(&two)).expect("move two");
    s.tag_all(&b, std::slice::from_ref(&two))
        .expect("tag again");
    assert_eq!(s.resolve("conf-tag:one").expect("one").id, a);
    assert_eq!(s.resolve("conf-tag:two").expect("two").id, b);
    let c = child(s, Some(&b), "CMD y", None, &["conf-tag:one"]);
    assert_eq!(s.resolve("conf-tag:one").expect("one").id, c);
}

/// `remove_untagged` leaves tagged and used images alone, frees the layers only the removed
/// image held, and never breaks an image built on the removed one.
pub fn removes_only_untagged_unused_images(s: &dyn ImageStore) {
    let tar_a = layer("a", b'a');
    let base = child(s, None, "ADD a", Some(&tar_a), &["conf-rm:base"]);
    assert_eq!(s.remove_untagged(&base).expect("tagged"), None);
    assert_eq!(s.resolve("conf-rm:base").expect("base").id, base);

    let loose = child(s, Some(&base), "CMD x", None, &[]);
    let used = loose.clone();
    s.set_users(Arc::new(move |id: &str| {
        if id == used {
            vec!["c0ffee".to_string()]
        } else {
            Vec::new()
        }
    }));
    assert_eq!(s.remove_untagged(&loose).expect("in use"), None);
    assert_eq!(s.resolve(&loose).expect("still there").id, loose);
    s.set_users(Arc::new(|_: &str| Vec::new()));
    assert_eq!(
        s.remove_untagged(&loose).expect("unused"),
        Some(0),
        "its only layer is the base's"
    );
    assert!(is_not_found(s.resolve(&loose)));
    assert!(!s.image_ids().expect("ids").contains(&loose));
    assert_eq!(s.resolve("conf-rm:base").expect("base").layer_dirs.len(), 1);

    let tar_b = layer("b", b'b');
    let own = child(s, Some(&base), "COPY b", Some(&tar_b), &[]);
    let freed = s.remove_untagged(&own).expect("own layer");
    assert!(freed.is_some_and(|n| n > 0), "{freed:?}");

    let tar_c = layer("c", b'c');
    let parent = child(s, None, "ADD c", Some(&tar_c), &[]);
    let kid = child(s, Some(&parent), "CMD z", None, &["conf-rm:kid"]);
    assert_eq!(s.remove_untagged(&parent).expect("parent"), Some(0));
    let kid_img = s.resolve("conf-rm:kid").expect("child outlives its parent");
    assert_eq!(kid_img.id, kid);
    assert_eq!(kid_img.layer_dirs.len(), 1);

    let unknown = format!("sha256:{}", "0".repeat(64));
    assert_eq!(s.remove_untagged(&unknown).expect("unknown"), None);
}

/// `restore_step` rebuilds a target's steps one by one (`--cache-from`): each restored image
/// has the target's first steps, the same step restored twice is the same image, and a step
/// past the target's history is an error.
pub fn restores_steps_of_a_target(s: &dyn ImageStore) {
    let tar_a = layer("a", b'a');
    let tar_b = layer("b", b'b');
    let t0 = child(s, None, "ADD a", Some(&tar_a), &[]);
    let t1 = child(s, Some(&t0), "ENV X=1", None, &[]);
    let t2 = child(s, Some(&t1), "COPY b", Some(&tar_b), &[]);
    let target = s.image_chain(&t2).expect("target");
    let cfg = ContainerConfig::default();

    let r0 = s.restore_step(None, &target, 0, &cfg).expect("step 0");
    let c0 = s.image_chain(&r0).expect("chain 0");
    assert_eq!(c0.history, target.history[..1]);
    assert_eq!(c0.layers, target.layers[..1]);
    assert_eq!(c0.diff_ids, target.diff_ids[..1]);

    let r1 = s.restore_step(Some(&c0), &target, 1, &cfg).expect("step 1");
    let c1 = s.image_chain(&r1).expect("chain 1");
    assert_eq!(c1.history, target.history[..2]);
    assert_eq!(c1.layers, target.layers[..1]);

    let r2 = s.restore_step(Some(&c1), &target, 2, &cfg).expect("step 2");
    let c2 = s.image_chain(&r2).expect("chain 2");
    assert_eq!(c2.history, target.history);
    assert_eq!(c2.layers, target.layers);
    assert_eq!(c2.diff_ids, target.diff_ids);
    assert_eq!(
        s.resolve(&r2).expect("restored").layer_dirs,
        s.resolve(&t2).expect("target").layer_dirs
    );
    assert_eq!(
        s.restore_step(Some(&c1), &target, 2, &cfg).expect("again"),
        r2
    );
    assert!(s.restore_step(None, &target, 3, &cfg).is_err());
}

/// One `#[test]` per check and implementation, so a failure names both.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod fake_store {
            $(
                #[test]
                fn $check() {
                    super::$check(&crate::image::fake::FakeImageStore::new());
                }
            )*
        }
        mod image_service {
            $(
                #[test]
                fn $check() {
                    let t = crate::image::testutil::service();
                    super::$check(&t.svc);
                }
            )*
        }
    };
}

conformance!(
    resolves_by_name_and_id,
    children_stack_layers_and_history,
    tags_point_and_move,
    removes_only_untagged_unused_images,
    restores_steps_of_a_target,
);
