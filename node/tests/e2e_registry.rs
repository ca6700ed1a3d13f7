//! Pull and push against a real registry (Debian's docker-registry) inside the test's network
//! namespace, driven by the stock docker CLI, `berth`, and skopeo as an independent client.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::registry::{make_ca, Registry, RegistryOpts};
use common::token::{TokenRequest, TokenServer};
use common::{eventually, stderr, stdout, Daemon};
use sha2::{Digest as _, Sha256};

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Incompressible bytes (xorshift), so gzip keeps them about as large.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, "data/", &[][..]).expect("dir");
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, *data).expect("file");
    }
    b.into_inner().expect("tar")
}

/// A docker-archive of busybox plus `extra` layers, tagged `tag`.
fn image_archive(root: &Path, tag: &str, extra: &[Vec<u8>]) -> PathBuf {
    let dir = root.join(format!("img-{:x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("dir");
    let base = std::fs::read(common::busybox_tar(root)).expect("busybox tar");
    let mut layers = vec![base];
    layers.extend(extra.iter().cloned());
    let mut names = Vec::new();
    let mut diffs = Vec::new();
    let mut b = tar::Builder::new(Vec::new());
    for (i, l) in layers.iter().enumerate() {
        let name = format!("l{i}.tar");
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(l.len() as u64);
        b.append_data(&mut h, &name, &l[..]).expect("layer");
        names.push(name);
        diffs.push(sha(l));
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": { "Cmd": ["/bin/sh"], "Env": ["PATH=/bin"] },
        "rootfs": { "type": "layers", "diff_ids": diffs },
    });
    let config = serde_json::to_vec(&config).expect("config");
    let manifest =
        serde_json::json!([{ "Config": "config.json", "RepoTags": [tag], "Layers": names }]);
    for (name, data) in [
        ("config.json", config),
        (
            "manifest.json",
            serde_json::to_vec(&manifest).expect("manifest"),
        ),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, &data[..]).expect("meta");
    }
    let path = dir.join("image.tar");
    std::fs::write(&path, b.into_inner().expect("tar")).expect("write");
    path
}

/// An OCI image layout of `layers` (tar, zstd?) compressed with gzip or zstd; returns its
/// directory and the config digest.
fn oci_layout(root: &Path, layers: &[(Vec<u8>, bool)]) -> (PathBuf, String) {
    let dir = root.join(format!("oci-{:x}", rand::random::<u32>()));
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("layout");
    let put = |bytes: &[u8]| -> String {
        let d = sha(bytes);
        std::fs::write(blobs.join(&d["sha256:".len()..]), bytes).expect("blob");
        d
    };
    let mut descs = Vec::new();
    let mut diffs = Vec::new();
    for (tar, zstd) in layers {
        diffs.push(sha(tar));
        let (bytes, mt) = if *zstd {
            (
                zstd::encode_all(&tar[..], 3).expect("zstd"),
                "application/vnd.oci.image.layer.v1.tar+zstd",
            )
        } else {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(tar).expect("gzip");
            (
                gz.finish().expect("gzip"),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        };
        descs.push(
            serde_json::json!({ "mediaType": mt, "digest": put(&bytes), "size": bytes.len() }),
        );
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-02T00:00:00Z",
        "config": { "Cmd": ["/bin/sh"], "Env": ["PATH=/bin"] },
        "rootfs": { "type": "layers", "diff_ids": diffs },
    }))
    .expect("config");
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest, "size": config.len() },
        "layers": descs,
    }))
    .expect("manifest");
    let md = put(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{ "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
                        "size": manifest.len(), "annotations": { "org.opencontainers.image.ref.name": "v1" } }],
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("index");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    (dir, config_digest)
}

fn load(d: &Daemon, archive: &Path) {
    d.ok(&["load", "-i", archive.to_str().expect("path")]);
}

fn image_id(d: &Daemon, name: &str) -> String {
    d.ok(&["image", "inspect", "-f", "{{.Id}}", name])
}

fn api_get(d: &Daemon, path: &str) -> (String, String) {
    let o = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(&d.sock)
        .arg(format!("http://localhost{path}"))
        .output()
        .expect("curl");
    let out = stdout(&o);
    let (body, code) = out.rsplit_once('\n').unwrap_or((&out, ""));
    (body.to_owned(), code.to_owned())
}

fn in_netns(d: &Daemon, program: &str, args: &[&str]) -> std::process::Output {
    d.in_netns(program)
        .args(args)
        .output()
        .expect("run in netns")
}

#[test]
fn push_then_pull_into_a_second_daemon_with_docker_and_berth() {
    let a = Daemon::start();
    let reg = Registry::start(&a.netns, &a.root, RegistryOpts::default());
    let archive = image_archive(
        &a.root,
        "layered:1",
        &[
            layer_tar(&[("data/a", &noise(3 << 20, 7))]),
            layer_tar(&[("data/b", b"hello from layer b\n")]),
        ],
    );
    load(&a, &archive);
    let repo = format!("{}/bb", reg.addr);
    a.ok(&["tag", "layered:1", &format!("{repo}:1")]);
    let out = a.ok(&["push", &format!("{repo}:1")]);
    assert!(
        out.contains(&format!("The push refers to repository [{repo}]")),
        "{out}"
    );
    let served = reg.manifest_digest("bb", "1", None);
    assert!(
        out.contains(&format!("1: digest: {served} size: ")),
        "push must report the digest the registry serves ({served}): {out}"
    );
    let again = a.ok(&["push", &format!("{repo}:1")]);
    assert_eq!(again.matches("Layer already exists").count(), 3, "{again}");
    let manifest = reg.manifest("bb", "1");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(manifest["layers"].as_array().expect("layers").len(), 3);

    // A second daemon pulls it: same image id, the registry's digest as RepoDigest.
    let b = Daemon::start_beside(&a, &[]);
    let pulled = b.ok(&["pull", &format!("{repo}:1")]);
    assert!(pulled.contains("1: Pulling from bb"), "{pulled}");
    assert!(pulled.contains(&format!("Digest: {served}")), "{pulled}");
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {repo}:1")),
        "{pulled}"
    );
    assert_eq!(
        image_id(&b, &format!("{repo}:1")),
        image_id(&a, "layered:1")
    );
    let digests = b.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .RepoDigests}}",
        &format!("{repo}:1"),
    ]);
    assert!(digests.contains(&format!("{repo}@{served}")), "{digests}");
    let up = b.ok(&["pull", &format!("{repo}:1")]);
    assert!(
        up.contains(&format!("Status: Image is up to date for {repo}:1")),
        "{up}"
    );
    assert_eq!(
        b.ok(&["run", "--rm", &format!("{repo}:1"), "cat", "/data/b"]),
        "hello from layer b"
    );

    // docker run of an image not yet present pulls it first.
    a.ok(&["tag", "layered:1", &format!("{repo}:2")]);
    a.ok(&["push", &format!("{repo}:2")]);
    let o = b.docker(&["run", "--rm", &format!("{repo}:2"), "cat", "/data/b"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "hello from layer b");
    assert!(
        stderr(&o).contains("Unable to find image"),
        "{}",
        stderr(&o)
    );

    // A build FROM an image that is not here pulls it first, as Docker's builder does.
    let ctx = b.root.join("build-ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {repo}:1\nRUN cat /data/b > /copied\n"),
    )
    .expect("Dockerfile");
    b.ok(&["rmi", &format!("{repo}:1")]);
    let o = b.docker_in(
        &ctx,
        &[("DOCKER_BUILDKIT", "0")],
        &["build", "-t", "frombuild", "."],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        b.ok(&["run", "--rm", "frombuild", "cat", "/copied"]),
        "hello from layer b"
    );
    b.ok(&["rmi", "frombuild"]);
    b.ok(&["builder", "prune", "-f"]);

    // GET /distribution answers from the registry.
    let (body, code) = api_get(&b, &format!("/v1.41/distribution/{repo}:1/json"));
    assert_eq!(code, "200", "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["Descriptor"]["digest"], served.as_str());
    assert_eq!(v["Platforms"][0]["architecture"], "amd64");

    // Errors: unknown tag → not found (404); bad reference → 400; unreachable names the host.
    let o = b.docker(&["pull", &format!("{repo}:nope")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "--unix-socket",
        ])
        .arg(&b.sock)
        .arg(format!(
            "http://localhost/v1.41/images/create?fromImage={}/bb&tag=nope",
            reg.addr
        ))
        .output()
        .expect("curl");
    assert_eq!(stdout(&o), "404");
    let o = b.docker(&["pull", &format!("{}/Bad", reg.addr)]);
    assert!(
        stderr(&o).contains("invalid reference format"),
        "{}",
        stderr(&o)
    );
    let o = b.docker(&["pull", "127.0.0.1:1/nothing:here"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("127.0.0.1:1"), "{}", stderr(&o));
    let o = b.docker(&["pull", "busybox"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("registry-1.docker.io"),
        "{}",
        stderr(&o)
    );

    // berth pull / push: plain lines when not on a terminal.
    b.ok(&["rmi", &format!("{repo}:2")]);
    let out = b.berth_ok(&["pull", &format!("{repo}:2")]);
    assert!(
        out.contains(&format!("Digest: {}", reg.manifest_digest("bb", "2", None))),
        "{out}"
    );
    assert!(
        !out.contains('\x1b'),
        "no terminal codes off a terminal: {out:?}"
    );
    b.ok(&[
        "tag",
        &format!("{repo}:1"),
        &format!("{}/other:1", reg.addr),
    ]);
    let out = b.berth_ok(&["push", &format!("{}/other:1", reg.addr)]);
    assert!(
        out.contains("Mounted from bb"),
        "cross-repository mount: {out}"
    );
    assert_eq!(
        reg.manifest_digest("other", "1", None),
        served,
        "a pulled image is pushed back byte for byte"
    );

    // --all-tags pulls every tag of the repository.
    let out = b.ok(&["pull", "--all-tags", &repo]);
    for t in ["1", "2"] {
        assert!(
            out.contains(&format!("Status: Image is up to date for {repo}:{t}")),
            "{out}"
        );
    }

    // Removing every image leaves no blob behind.
    for r in [
        format!("{repo}:1"),
        format!("{repo}:2"),
        format!("{}/other:1", reg.addr),
    ] {
        b.ok(&["rmi", &r]);
    }
    let blobs = b.root.join("data/content/blobs/sha256");
    let left: Vec<_> = std::fs::read_dir(&blobs)
        .expect("blobs")
        .flatten()
        .collect();
    assert!(
        left.is_empty(),
        "unreferenced blobs were not collected: {left:?}"
    );
}

#[test]
fn skopeo_reads_our_pushes_and_we_pull_its_oci_zstd_images() {
    let a = Daemon::start();
    let reg = Registry::start(&a.netns, &a.root, RegistryOpts::default());
    let archive = image_archive(
        &a.root,
        "sk:1",
        &[layer_tar(&[("data/z", b"zstd layer content\n")])],
    );
    load(&a, &archive);
    let repo = format!("{}/sk", reg.addr);
    a.ok(&["tag", "sk:1", &format!("{repo}:1")]);
    let out = a.ok(&["push", &format!("{repo}:1")]);
    let o = in_netns(
        &a,
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{repo}:1"),
        ],
    );
    assert!(o.status.success(), "skopeo inspect: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let digest = v["Digest"].as_str().expect("digest").to_owned();
    assert!(out.contains(&format!("1: digest: {digest} ")), "{out}");

    // An OCI layout with a gzip and a zstd layer, copied into the registry by skopeo.
    let (layout, config_digest) = oci_layout(
        &a.root,
        &[
            (
                std::fs::read(common::busybox_tar(&a.root)).expect("busybox"),
                false,
            ),
            (layer_tar(&[("data/z", b"zstd layer content\n")]), true),
        ],
    );
    let o = in_netns(
        &a,
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{}/zs:1", reg.addr),
        ],
    );
    assert!(o.status.success(), "skopeo copy: {}", stderr(&o));
    let m = reg.manifest("zs", "1");
    assert_eq!(
        m["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{m}"
    );
    assert_eq!(
        m["layers"][1]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
        "{m}"
    );
    let b = Daemon::start_beside(&a, &[]);
    let zs = format!("{}/zs:1", reg.addr);
    b.ok(&["pull", &zs]);
    assert_eq!(
        b.ok(&["run", "--rm", &zs, "cat", "/data/z"]),
        "zstd layer content"
    );
    assert_eq!(
        image_id(&b, &zs),
        config_digest,
        "the image id is the config's digest"
    );

    // Pushed back by Berth as OCI with the same zstd blobs; skopeo agrees on the digest.
    let back = format!("{}/zs2:1", reg.addr);
    b.ok(&["tag", &zs, &back]);
    let out = b.ok(&["push", &back]);
    let o = in_netns(
        &a,
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{back}")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(out.contains(v["Digest"].as_str().expect("digest")), "{out}");
    let m = reg.manifest("zs2", "1");
    assert_eq!(
        m["layers"][1]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
        "{m}"
    );
}

#[test]
fn tls_registry_with_basic_auth_login_push_pull() {
    let a = Daemon::start();
    let ip = format!(
        "10.{}.{}.1",
        200 + rand::random::<u8>() % 50,
        rand::random::<u8>()
    );
    let st = Command::new("ip")
        .args([
            "-n",
            &a.netns,
            "addr",
            "add",
            &format!("{ip}/32"),
            "dev",
            "lo",
        ])
        .status()
        .expect("ip");
    assert!(st.success());
    let ca = a.root.join("ca");
    make_ca(&ca, &ip);
    let reg = Registry::start(
        &a.netns,
        &a.root,
        RegistryOpts {
            ip: Some(ip.clone()),
            tls: Some((ca.join("server.crt"), ca.join("server.key"))),
            basic: Some(("tester".into(), "s3cret".into())),
            ..Default::default()
        },
    );
    let certs = a.root.join("certs.d");
    std::fs::create_dir_all(certs.join(&reg.addr)).expect("certs dir");
    std::fs::copy(ca.join("ca.crt"), certs.join(&reg.addr).join("ca.crt")).expect("ca");
    let certs_arg = certs.to_str().expect("path").to_owned();
    let b = Daemon::start_beside(&a, &["--registry-certs-dir", &certs_arg]);
    b.busybox();
    let repo = format!("{}/secure", reg.addr);
    b.ok(&["tag", "busybox", &format!("{repo}:1")]);

    let o = b.docker(&["push", &format!("{repo}:1")]);
    assert!(!o.status.success(), "push without login must fail");
    assert!(stderr(&o).contains("unauthorized"), "{}", stderr(&o));
    let o = b.docker_stdin(
        &["login", "-u", "tester", "--password-stdin", &reg.addr],
        b"wrong\n",
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("401") || stderr(&o).contains("unauthorized"),
        "{}",
        stderr(&o)
    );
    let o = b.docker_stdin(
        &["login", "-u", "tester", "--password-stdin", &reg.addr],
        b"s3cret\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Login Succeeded"), "{}", stdout(&o));
    let out = b.ok(&["push", &format!("{repo}:1")]);
    let served = reg.manifest_digest("secure", "1", Some("tester:s3cret"));
    assert!(out.contains(&served), "{out}");

    // berth login / pull / logout against the same registry from a third daemon.
    let c = Daemon::start_beside(&a, &["--registry-certs-dir", &certs_arg]);
    let o = c.berth(&["pull", &format!("{repo}:1")]);
    assert!(!o.status.success(), "pull without credentials must fail");
    let o = c.berth_stdin(
        &["login", "-u", "tester", "--password-stdin", &reg.addr],
        b"s3cret\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = c.berth_ok(&["pull", &format!("{repo}:1")]);
    assert!(out.contains(&format!("Digest: {served}")), "{out}");
    let out = c.berth_ok(&["logout", &reg.addr]);
    assert!(out.contains("Removing login credentials"), "{out}");

    // Without the CA the registry's certificate is refused, and the error names the host.
    let d = Daemon::start_beside(&a, &[]);
    let o = d.docker(&["pull", &format!("{repo}:1")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(&reg.addr), "{}", stderr(&o));
}

/// Token requests made since `before` requests had been answered.
fn token_requests_since(ts: &TokenServer, before: usize) -> Vec<TokenRequest> {
    ts.requests().into_iter().skip(before).collect()
}

#[test]
fn bearer_token_registry_login_push_pull_logout_with_docker_and_berth() {
    let a = Daemon::start();
    let ts = TokenServer::start(&a.netns, &a.root, "tester", "s3cret", &["public/"]);
    let reg = Registry::start(
        &a.netns,
        &a.root,
        RegistryOpts {
            token: Some(ts.auth()),
            ..Default::default()
        },
    );
    let archive = image_archive(
        &a.root,
        "tok:1",
        &[
            layer_tar(&[("data/a", &noise(1 << 20, 5))]),
            layer_tar(&[("data/b", b"behind a token\n")]),
        ],
    );
    load(&a, &archive);
    let repo = format!("{}/private/bb", reg.addr);
    a.ok(&["tag", "tok:1", &format!("{repo}:1")]);
    let denied = format!(
        "pull access denied for {repo}, repository does not exist or may require 'docker login': \
         denied: requested access to the resource is denied"
    );

    // Anonymous: the token server issues a token without access, the registry refuses it.
    let o = a.docker(&["push", &format!("{repo}:1")]);
    assert!(!o.status.success(), "push without login must fail");
    assert!(
        stderr(&o).contains("denied: requested access to the resource is denied"),
        "{}",
        stderr(&o)
    );
    let anon = ts.requests();
    assert!(!anon.is_empty(), "no token was asked for");
    for r in &anon {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.service, [ts.service.as_str()], "{r:?}");
        assert_eq!(r.user, None, "{r:?}");
        assert!(r.access.is_empty(), "{r:?}");
    }
    assert_eq!(anon[0].scope, ["repository:private/bb:pull,push"]);

    // docker login: a wrong password is refused with Docker's message, the right one works.
    let o = a.docker_stdin(
        &["login", "-u", "tester", "--password-stdin", &reg.addr],
        b"wrong\n",
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "Error response from daemon: Get \"http://{}/v2/\": unauthorized: incorrect username or password",
            reg.addr
        )),
        "{}",
        stderr(&o)
    );
    let o = a.docker_stdin(
        &["login", "-u", "tester", "--password-stdin", &reg.addr],
        b"s3cret\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Login Succeeded"), "{}", stdout(&o));
    let logins = token_requests_since(&ts, anon.len());
    assert_eq!(
        logins.iter().map(|r| r.status).collect::<Vec<_>>(),
        [401, 200],
        "{logins:?}"
    );
    for r in &logins {
        assert_eq!(r.service, [ts.service.as_str()], "{r:?}");
        assert_eq!(r.account, ["tester"], "{r:?}");
    }

    // Push: one token for the whole push, with exactly the scope the push needs.
    let before = ts.requests().len();
    let out = a.ok(&["push", &format!("{repo}:1")]);
    let push = token_requests_since(&ts, before);
    let pull_token = ts.token("repository:private/bb:pull");
    let served = reg.manifest_digest_bearer("private/bb", "1", &pull_token);
    assert!(
        out.contains(&format!("1: digest: {served} size: ")),
        "{out}"
    );
    assert_eq!(push.len(), 1, "a token per push, not per request: {push:?}");
    assert_eq!(push[0].scope, ["repository:private/bb:pull,push"]);
    assert_eq!(push[0].user.as_deref(), Some("tester"));
    let again = a.ok(&["push", &format!("{repo}:1")]);
    assert_eq!(again.matches("Layer already exists").count(), 3, "{again}");

    // A cross-repository mount asks for pull on the source repository in the same token.
    let public = format!("{}/public/bb", reg.addr);
    a.ok(&["tag", "tok:1", &format!("{public}:1")]);
    let before = ts.requests().len();
    let out = a.ok(&["push", &format!("{public}:1")]);
    assert!(out.contains("Mounted from private/bb"), "{out}");
    let mount = token_requests_since(&ts, before);
    assert_eq!(mount.len(), 1, "{mount:?}");
    assert_eq!(
        mount[0].scope,
        [
            "repository:public/bb:pull,push",
            "repository:private/bb:pull"
        ]
    );

    // A second daemon: anonymous pulls of the private repository are denied (Docker's text),
    // the public one pulls without credentials.
    let b = Daemon::start_beside(&a, &[]);
    let o = b.docker(&["pull", &format!("{repo}:1")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&denied), "{}", stderr(&o));
    let o = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-X", "POST", "--unix-socket"])
        .arg(&b.sock)
        .arg(format!(
            "http://localhost/v1.41/images/create?fromImage={}/private/bb&tag=1",
            reg.addr
        ))
        .output()
        .expect("curl");
    let out = stdout(&o);
    assert!(
        out.ends_with("\n404") && out.contains("pull access denied"),
        "a denied pull is a 404, as Docker answers it: {out}"
    );
    let out = b.ok(&["pull", &format!("{public}:1")]);
    assert!(out.contains(&format!("Digest: {served}")), "{out}");

    // After login the private repository pulls, with one token for the whole pull.
    let o = b.docker_stdin(
        &["login", "-u", "tester", "--password-stdin", &reg.addr],
        b"s3cret\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let before = ts.requests().len();
    let out = b.ok(&["pull", &format!("{repo}:1")]);
    assert!(out.contains(&format!("Digest: {served}")), "{out}");
    let pull = token_requests_since(&ts, before);
    assert_eq!(pull.len(), 1, "{pull:?}");
    assert_eq!(pull[0].scope, ["repository:private/bb:pull"]);
    assert_eq!(image_id(&b, &format!("{repo}:1")), image_id(&a, "tok:1"));
    let digests = b.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .RepoDigests}}",
        &format!("{repo}:1"),
    ]);
    assert!(digests.contains(&format!("{repo}@{served}")), "{digests}");
    assert_eq!(
        b.ok(&["run", "--rm", &format!("{repo}:1"), "cat", "/data/b"]),
        "behind a token"
    );

    // Logout: the credentials are gone and the pull is denied again.
    let out = b.ok(&["logout", &reg.addr]);
    assert!(out.contains("Removing login credentials"), "{out}");
    let o = b.docker(&["pull", &format!("{repo}:1")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&denied), "{}", stderr(&o));

    // berth: the same flow from a third daemon.
    let c = Daemon::start_beside(&a, &[]);
    let o = c.berth(&["pull", &format!("{repo}:1")]);
    assert!(!o.status.success(), "pull without credentials must fail");
    assert!(stderr(&o).contains(&denied), "{}", stderr(&o));
    let o = c.berth_stdin(
        &["login", "-u", "tester", "--password-stdin", &reg.addr],
        b"wrong\n",
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unauthorized: incorrect username or password"),
        "{}",
        stderr(&o)
    );
    let o = c.berth_stdin(
        &["login", "-u", "tester", "--password-stdin", &reg.addr],
        b"s3cret\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Login Succeeded"), "{}", stdout(&o));
    let out = c.berth_ok(&["pull", &format!("{repo}:1")]);
    assert!(out.contains(&format!("Digest: {served}")), "{out}");
    c.ok(&["tag", &format!("{repo}:1"), &format!("{repo}:berth")]);
    let out = c.berth_ok(&["push", &format!("{repo}:berth")]);
    assert!(out.contains(&format!("berth: digest: {served} ")), "{out}");
    let out = c.berth_ok(&["logout", &reg.addr]);
    assert!(out.contains("Removing login credentials"), "{out}");
    let o = c.berth(&["pull", &format!("{repo}:1")]);
    assert!(!o.status.success(), "pull after logout must fail");
    assert!(stderr(&o).contains(&denied), "{}", stderr(&o));

    // Nothing was ever asked for another service.
    for r in ts.requests() {
        assert_eq!(r.service, [ts.service.as_str()], "{r:?}");
    }
}

/// A forwarding proxy in the test's namespace that can corrupt or slow down one blob.
struct Proxy {
    addr: String,
    target: Arc<Mutex<String>>,
    mode: Arc<AtomicUsize>,
    blob_gets: Arc<AtomicUsize>,
    ranges: Arc<AtomicUsize>,
    sent: Arc<AtomicU64>,
}

const PASS: usize = 0;
const CORRUPT: usize = 1;
const SLOW: usize = 2;

impl Proxy {
    fn start(netns: &str, upstream: &str) -> Proxy {
        let (tx, rx) = std::sync::mpsc::channel();
        let ns = PathBuf::from(format!("/var/run/netns/{netns}"));
        let p = Proxy {
            addr: String::new(),
            target: Arc::default(),
            mode: Arc::default(),
            blob_gets: Arc::default(),
            ranges: Arc::default(),
            sent: Arc::default(),
        };
        let (target, mode, gets, ranges, sent) = (
            p.target.clone(),
            p.mode.clone(),
            p.blob_gets.clone(),
            p.ranges.clone(),
            p.sent.clone(),
        );
        let upstream = upstream.to_owned();
        std::thread::spawn(move || {
            let f = std::fs::File::open(&ns).expect("netns");
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            tx.send(l.local_addr().expect("addr").to_string())
                .expect("send");
            for conn in l.incoming().flatten() {
                let (target, mode, gets, ranges, sent, upstream) = (
                    target.clone(),
                    mode.clone(),
                    gets.clone(),
                    ranges.clone(),
                    sent.clone(),
                    upstream.clone(),
                );
                std::thread::spawn(move || {
                    let _ = serve(conn, &upstream, &target, &mode, &gets, &ranges, &sent);
                });
            }
        });
        Proxy {
            addr: rx.recv_timeout(Duration::from_secs(5)).expect("proxy addr"),
            ..p
        }
    }
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    target: &Mutex<String>,
    mode: &AtomicUsize,
    gets: &AtomicUsize,
    ranges: &AtomicUsize,
    sent: &AtomicU64,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Plain HTTP only: a TLS ClientHello (0x16) is dropped, as a plain server would.
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        if head.is_empty() && byte[0] == 0x16 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let first = text.lines().next().unwrap_or("").to_owned();
    let want = target.lock().expect("target").clone();
    let is_target = !want.is_empty() && first.starts_with("GET ") && first.contains(&want);
    if is_target {
        gets.fetch_add(1, Ordering::SeqCst);
        if text.to_ascii_lowercase().contains("\r\nrange:") {
            ranges.fetch_add(1, Ordering::SeqCst);
        }
    }
    let mut up = TcpStream::connect(upstream)?;
    let body_start = text.len() - 2;
    up.write_all(&head[..body_start])?;
    up.write_all(b"Connection: close\r\n\r\n")?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    let mode = mode.load(Ordering::SeqCst);
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4);
    if is_target && mode == CORRUPT && resp.len() > split + 100 {
        resp[split + 100] ^= 0xff;
    }
    if is_target && mode == SLOW {
        client.write_all(&resp[..split])?;
        for chunk in resp[split..].chunks(64 << 10) {
            client.write_all(chunk)?;
            sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(25));
        }
        return Ok(());
    }
    client.write_all(&resp)
}

#[test]
fn corrupt_blobs_are_refused_and_pulls_resume_after_kill9() {
    let a = Daemon::start();
    let reg = Registry::start(&a.netns, &a.root, RegistryOpts::default());
    let archive = image_archive(
        &a.root,
        "big:1",
        &[layer_tar(&[("data/big", &noise(8 << 20, 11))])],
    );
    load(&a, &archive);
    a.ok(&["tag", "big:1", &format!("{}/big:1", reg.addr)]);
    a.ok(&["push", &format!("{}/big:1", reg.addr)]);
    let m = reg.manifest("big", "1");
    let big = m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .max_by_key(|l| l["size"].as_u64())
        .expect("a layer");
    let big_digest = big["digest"].as_str().expect("digest").to_owned();
    let big_size = big["size"].as_u64().expect("size");
    let proxy = Proxy::start(&a.netns, &reg.addr);
    *proxy.target.lock().expect("target") = big_digest.clone();
    let via = format!("{}/big:1", proxy.addr);

    // A corrupted byte: refused, nothing stored or registered, nothing left half-made.
    let mut b = Daemon::start_beside(&a, &[]);
    proxy.mode.store(CORRUPT, Ordering::SeqCst);
    let o = b.docker(&["pull", &via]);
    assert!(!o.status.success(), "a corrupt blob must fail the pull");
    assert!(stderr(&o).contains("digest mismatch"), "{}", stderr(&o));
    assert!(!b.docker(&["image", "inspect", &via]).status.success());
    let hex = &big_digest["sha256:".len()..];
    let data = b.root.join("data");
    assert!(!data.join("content/blobs/sha256").join(hex).exists());
    assert!(!data.join("content/ingest").join(hex).exists());
    let layers: Vec<_> = std::fs::read_dir(data.join("overlay"))
        .expect("overlay")
        .flatten()
        .collect();
    assert!(layers.is_empty(), "no layer registered: {layers:?}");

    // Killed mid-download: the partial blob survives and the next pull resumes it.
    proxy.mode.store(SLOW, Ordering::SeqCst);
    let mut pull = Command::new(common::DOCKER)
        .env("DOCKER_HOST", b.host())
        .env("DOCKER_CONFIG", b.root.join("dockercfg"))
        .args(["pull", &via])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker pull");
    let partial = data.join("content/ingest").join(hex);
    assert!(
        eventually(Duration::from_secs(30), || {
            std::fs::metadata(&partial).is_ok_and(|m| m.len() > 1 << 20)
        }),
        "the download never got going: {}",
        b.log_tail()
    );
    b.kill9();
    let _ = pull.kill();
    let _ = pull.wait();
    let kept = std::fs::metadata(&partial).expect("partial survives").len();
    assert!(kept > 0 && kept < big_size, "partial {kept} of {big_size}");
    proxy.mode.store(PASS, Ordering::SeqCst);
    b.spawn();
    let out = b.ok(&["pull", &via]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert!(
        proxy.ranges.load(Ordering::SeqCst) >= 1,
        "no Range request was made"
    );
    assert!(
        b.log().contains("resuming a partial download"),
        "{}",
        b.log_tail()
    );
    assert_eq!(image_id(&b, &via), image_id(&a, "big:1"));
    assert!(!partial.exists());
    assert_eq!(
        b.ok(&["run", "--rm", &via, "sh", "-c", "wc -c < /data/big"]),
        (8u64 << 20).to_string()
    );

    // Two concurrent pulls of the same image on one daemon download each blob once.
    let c = Daemon::start_beside(&a, &[]);
    proxy.blob_gets.store(0, Ordering::SeqCst);
    proxy.mode.store(SLOW, Ordering::SeqCst);
    let spawn = || {
        Command::new(common::DOCKER)
            .env("DOCKER_HOST", c.host())
            .env("DOCKER_CONFIG", c.root.join("dockercfg"))
            .args(["pull", &via])
            .output()
    };
    let (o1, o2) = std::thread::scope(|s| {
        let t1 = s.spawn(spawn);
        std::thread::sleep(Duration::from_millis(200));
        let t2 = s.spawn(spawn);
        (
            t1.join().expect("join").expect("pull 1"),
            t2.join().expect("join").expect("pull 2"),
        )
    });
    assert!(o1.status.success(), "{}", stderr(&o1));
    assert!(o2.status.success(), "{}", stderr(&o2));
    assert_eq!(
        proxy.blob_gets.load(Ordering::SeqCst),
        1,
        "the big blob was fetched twice"
    );
}
