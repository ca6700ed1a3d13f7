//! Invariant: `swarm ca --rotate` moves every node to a new root CA without stopping the
//! cluster. Every node ends with a certificate from the new root and trusts only it; the join
//! tokens change with the root (old ones are refused, new ones let a fresh node in); writes
//! commit all along; nodes that are down while the rotation runs renew with their old
//! certificate when they come back (the rotation waits for them, as swarmkit's does); a root
//! given with `--ca-cert/--ca-key` is taken as it is; bad input is a 400 that changes nothing;
//! a node that never returns is removed to let a rotation finish, and can rejoin afterwards
//! with a new token, keeping its engine's data.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use berth_chaos_tests::{consistently, eventually, swarm, Cluster, Host};
use serde_json::Value;

/// `GET /swarm` on `h`, parsed.
fn swarm_json(h: &Host) -> Value {
    let (code, body) = h.api_get("/swarm").expect("GET /swarm");
    assert_eq!(code, 200, "GET /swarm: {body}");
    serde_json::from_str(&body).expect("swarm json")
}

/// The cluster's TLSInfo: (TrustRoot, CertIssuerSubject, CertIssuerPublicKey).
fn cluster_tls(h: &Host) -> (String, String, String) {
    let s = swarm_json(h);
    let t = &s["TLSInfo"];
    let f = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
    (
        f("TrustRoot"),
        f("CertIssuerSubject"),
        f("CertIssuerPublicKey"),
    )
}

fn rotating(h: &Host) -> bool {
    swarm_json(h)["RootRotationInProgress"]
        .as_bool()
        .expect("RootRotationInProgress")
}

/// Every node's TLSInfo as `h` lists it (`docker node inspect`): hostname → (TrustRoot,
/// CertIssuerSubject, CertIssuerPublicKey).
fn node_tls(h: &Host) -> Vec<(String, (String, String, String))> {
    let ids: Vec<String> = swarm::node_ls(h)
        .expect("node ls")
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut args = vec![
        "node",
        "inspect",
        "--format",
        "{{json .Description.Hostname}} {{json .Description.TLSInfo}}",
    ];
    args.extend(ids.iter().map(String::as_str));
    h.docker_ok(&args)
        .lines()
        .map(|l| {
            let (host, tls) = l.split_once(' ').expect("hostname and tls info");
            let host: String = serde_json::from_str(host).expect("hostname");
            let t: Value = serde_json::from_str(tls).expect("tls info");
            let f = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
            (
                host,
                (
                    f("TrustRoot"),
                    f("CertIssuerSubject"),
                    f("CertIssuerPublicKey"),
                ),
            )
        })
        .collect()
}

/// Whether every node holds a certificate from the cluster's root and trusts only it.
fn all_nodes_on(h: &Host, want: &(String, String, String), nodes: usize) -> bool {
    let tls = node_tls(h);
    tls.len() == nodes && tls.iter().all(|(_, t)| t == want)
}

/// `openssl x509 -noout -fingerprint -sha256` of a PEM text.
fn fingerprint(pem: &str, dir: &Path) -> String {
    let f = dir.join(format!("fp-{}.pem", rand_suffix()));
    std::fs::write(&f, pem).expect("write pem");
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&f)
        .output()
        .expect("run openssl");
    let _ = std::fs::remove_file(&f);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn rand_suffix() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

/// An external root CA made with openssl: (cert file, key file), P-256, PKCS#8 key.
fn external_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.crt"));
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let key_s = key.to_string_lossy().into_owned();
    let cert_s = cert.to_string_lossy().into_owned();
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &key_s,
    ]);
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &key_s,
        "-subj",
        &format!("/O=berth-chaos/CN={name}"),
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-out",
        &cert_s,
    ]);
    (cert, key)
}

/// Creates secrets on `h` until `stop`, counting successes and keeping failures.
struct Writer {
    stop: AtomicBool,
    ok: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Writer {
    fn run(&self, h: &Host, prefix: &str) {
        let mut i = 0;
        while !self.stop.load(Ordering::SeqCst) {
            let name = format!("{prefix}-{i}");
            let o = h.docker_with_input(&["secret", "create", &name, "-"], "rotating");
            if o.status.success() {
                self.ok.fetch_add(1, Ordering::SeqCst);
            } else {
                self.failures
                    .lock()
                    .expect("failures")
                    .push(format!("{name}: {}", swarm::stderr(&o)));
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_root_ca_rotates_under_a_running_cluster() {
    let c = Cluster::new(5);
    swarm::form(&c, 3, 1);
    let (m1, m2, m3, w, fresh) = (c.host(0), c.host(1), c.host(2), c.host(3), c.host(4));
    let dir = c.host(0).root().join("ca-rotate");
    std::fs::create_dir_all(&dir).expect("test dir");

    // `swarm ca` prints the root every node trusts.
    let old = cluster_tls(m1);
    let printed = m1.docker_ok(&["swarm", "ca"]);
    assert!(
        printed.starts_with("-----BEGIN CERTIFICATE-----"),
        "{printed}"
    );
    assert_eq!(printed, old.0.trim());
    assert!(!rotating(m1));
    let eventually_all_old = eventually(Duration::from_secs(30), || all_nodes_on(m1, &old, 4));
    assert!(eventually_all_old, "{:#?}", node_tls(m1));
    let old_worker_token = swarm::join_token(m1, "worker");
    let old_manager_token = swarm::join_token(m1, "manager");

    let writer = Writer {
        stop: AtomicBool::new(false),
        ok: AtomicUsize::new(0),
        failures: Mutex::new(Vec::new()),
    };
    let run_id = c.run_id().to_owned();
    std::thread::scope(|scope| {
        let writer = &writer;
        let prefix = format!("rot-{run_id}");
        scope.spawn(move || writer.run(m2, &prefix));

        // 1. A generated root; the CLI waits until every node is on it.
        let o = m1.docker_timeout(&["swarm", "ca", "--rotate"], Duration::from_secs(120));
        assert!(
            o.status.success(),
            "swarm ca --rotate: {}\n{}",
            swarm::stderr(&o),
            m1.log_tail()
        );
        let new = cluster_tls(m1);
        assert!(
            swarm::stdout(&o).ends_with(new.0.trim()),
            "the CLI prints the new root: {}",
            swarm::stdout(&o)
        );
        assert_ne!(new.0, old.0, "the root did not change");
        assert_ne!(new.2, old.2, "the root key did not change");
        assert!(!rotating(m1));
        // m2 and m3 read their own copies of the cluster object, a moment behind m1's.
        let agreed = eventually(Duration::from_secs(10), || {
            [m1, m2, m3].iter().all(|h| cluster_tls(h) == new)
        });
        for h in [m1, m2, m3] {
            assert!(agreed, "{} disagrees: {:?}", h.hostname(), cluster_tls(h));
        }
        let settled = eventually(Duration::from_secs(30), || all_nodes_on(m1, &new, 4));
        assert!(settled, "{:#?}", node_tls(m1));

        // The tokens name the new root: the old ones are refused, the new ones work.
        let worker_token = swarm::join_token(m1, "worker");
        assert_ne!(worker_token, old_worker_token);
        assert_ne!(swarm::join_token(m1, "manager"), old_manager_token);
        for old_token in [&old_worker_token, &old_manager_token] {
            let o = swarm::join(fresh, old_token, m1);
            assert!(!o.status.success(), "joined with a token of the old root");
            assert_eq!(swarm::local_state(fresh).0, "inactive");
        }
        swarm::join_ok(fresh, &worker_token, m2);
        let joined = eventually(Duration::from_secs(30), || swarm::converged(m1, 5, 3));
        assert!(joined, "{:?}", swarm::node_ls(m1));
        let fresh_on_new = eventually(Duration::from_secs(30), || all_nodes_on(m1, &new, 5));
        assert!(fresh_on_new, "{:#?}", node_tls(m1));

        // 2. A root given with --ca-cert/--ca-key while a manager and a worker are down:
        // the rotation waits for them; they renew with their old certificates on return.
        let (ext_cert, ext_key) = external_ca(&dir, "berth-chaos-root");
        m3.stop();
        w.stop();
        let o = m1.docker(&[
            "swarm",
            "ca",
            "--rotate",
            "--detach",
            "--ca-cert",
            &ext_cert.to_string_lossy(),
            "--ca-key",
            &ext_key.to_string_lossy(),
        ]);
        assert!(o.status.success(), "{}", swarm::stderr(&o));
        assert!(
            rotating(m1),
            "the rotation does not wait for the down nodes"
        );
        let waiting = consistently(Duration::from_secs(5), || rotating(m2));
        assert!(waiting, "the rotation finished without the down nodes");
        // Meanwhile the nodes that are up renew under the new root.
        let ext_pem = std::fs::read_to_string(&ext_cert).expect("external cert");
        m3.start();
        w.start();
        let done = eventually(Duration::from_secs(90), || !rotating(m1));
        assert!(
            done,
            "the rotation did not finish after the nodes came back: {:#?}\n{}\n{}",
            node_tls(m1),
            m3.log_tail(),
            w.log_tail()
        );
        let ext = cluster_tls(m1);
        assert_eq!(
            fingerprint(&ext.0, &dir),
            fingerprint(&ext_pem, &dir),
            "the cluster's root is not the given one"
        );
        assert_eq!(
            fingerprint(&m1.docker_ok(&["swarm", "ca"]), &dir),
            fingerprint(&ext_pem, &dir)
        );
        let settled = eventually(Duration::from_secs(30), || all_nodes_on(m1, &ext, 5));
        assert!(settled, "{:#?}", node_tls(m1));
        let back = eventually(Duration::from_secs(60), || swarm::converged(m1, 5, 3));
        assert!(back, "{:?}", swarm::node_ls(m1));
        // The returned manager serves the cluster again.
        m3.docker_ok(&["node", "ls"]);

        writer.stop.store(true, Ordering::SeqCst);
    });
    let failures = writer.failures.lock().expect("failures").clone();
    let ok = writer.ok.load(Ordering::SeqCst);
    assert!(failures.is_empty(), "{ok} writes ok, failed: {failures:#?}");
    assert!(ok >= 20, "only {ok} writes during the rotations");
    let listed = m3.docker_ok(&["secret", "ls", "-q"]).lines().count();
    assert!(listed >= ok, "{listed} secrets listed, {ok} acknowledged");

    // 3. Bad input: a 400 that names the problem, and nothing changes.
    let before = cluster_tls(m1);
    let (other_cert, _) = external_ca(&dir, "berth-chaos-other");
    let (_, stray_key) = external_ca(&dir, "berth-chaos-stray");
    let o = m1.docker(&[
        "swarm",
        "ca",
        "--rotate",
        "--ca-cert",
        &other_cert.to_string_lossy(),
    ]);
    assert!(!o.status.success(), "a cert without its key was taken");
    assert!(
        swarm::stderr(&o).contains("--ca-key"),
        "{}",
        swarm::stderr(&o)
    );
    let o = m1.docker(&[
        "swarm",
        "ca",
        "--rotate",
        "--ca-key",
        &stray_key.to_string_lossy(),
    ]);
    assert!(!o.status.success(), "a key without a cert was taken");
    assert!(
        swarm::stderr(&o).contains("signing CA cert must also be provided"),
        "{}",
        swarm::stderr(&o)
    );
    let update = |cert: &str, key: &str| {
        let s = swarm_json(m1);
        let version = s["Version"]["Index"].as_u64().expect("version");
        let mut spec = s["Spec"].clone();
        spec["CAConfig"]["SigningCACert"] = cert.into();
        spec["CAConfig"]["SigningCAKey"] = key.into();
        m1.api_post(
            &format!("/swarm/update?version={version}"),
            &spec.to_string(),
        )
        .expect("POST /swarm/update")
    };
    let cert_pem = std::fs::read_to_string(&other_cert).expect("cert");
    let key_pem = std::fs::read_to_string(&stray_key).expect("key");
    let (code, body) = update(&cert_pem, &key_pem);
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("the signing CA key does not match the signing CA cert"),
        "{body}"
    );
    let (code, body) = update(&cert_pem, "");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("--ca-key"), "{body}");
    let (code, body) = update("not a certificate", &key_pem);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid signing CA cert"), "{body}");
    assert_eq!(cluster_tls(m1), before, "bad input changed the root");
    assert!(!rotating(m1));
    assert!(swarm::converged(m1, 5, 3), "{:?}", swarm::node_ls(m1));

    // 4. A node that will not come back holds the rotation open until it is removed; if it
    // does come back after that, its certificate is from the dropped root: it leaves and
    // joins again with a current token, and its engine's data is still there.
    w.docker_ok(&["volume", "create", "kept-through-rotation"]);
    let w_id = swarm::node_id(w);
    w.stop();
    let down = eventually(Duration::from_secs(30), || {
        swarm::node_ls(m1).is_ok_and(|rows| rows.iter().any(|r| r.id == w_id && r.status == "Down"))
    });
    assert!(down, "{:?}", swarm::node_ls(m1));
    m1.docker_ok(&["swarm", "ca", "--rotate", "-d"]);
    let held = consistently(Duration::from_secs(3), || rotating(m1));
    assert!(held, "the rotation finished without the down worker");
    m1.docker_ok(&["node", "rm", "--force", &w_id]);
    let done = eventually(Duration::from_secs(30), || !rotating(m1));
    assert!(
        done,
        "the rotation did not finish once the worker was removed"
    );
    let last = cluster_tls(m1);
    let settled = eventually(Duration::from_secs(30), || all_nodes_on(m1, &last, 4));
    assert!(settled, "{:#?}", node_tls(m1));
    w.start();
    w.docker_ok(&["swarm", "leave", "--force"]);
    swarm::join_ok(w, &swarm::join_token(m1, "worker"), m1);
    let rejoined = eventually(Duration::from_secs(30), || swarm::converged(m1, 5, 3));
    assert!(rejoined, "{:?}", swarm::node_ls(m1));
    assert!(
        all_nodes_on(m1, &last, 5)
            || eventually(Duration::from_secs(30), || all_nodes_on(m1, &last, 5))
    );
    assert_eq!(
        w.docker_ok(&["volume", "ls", "-q"]),
        "kept-through-rotation"
    );
}
