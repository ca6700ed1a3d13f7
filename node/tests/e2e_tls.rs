//! `-H tcp://` with mutual TLS: the stock docker CLI with `--tlsverify` gets in; a client
//! without a certificate signed by the CA does not.

mod common;

use std::path::Path;
use std::process::Command;

use common::{stderr, stdout, Daemon, DOCKER};

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as docker's docs make them.
fn make_certs(dir: &Path) {
    std::fs::create_dir_all(dir).expect("dir");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=berth-test-ca",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    for (who, ext) in [("server", "server.ext"), ("client", "client.ext")] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{who}-key.pem"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN={who}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                &format!("{who}.pem"),
                "-days",
                "2",
                "-extfile",
                ext,
            ],
        );
    }
}

#[test]
fn tcp_needs_a_client_certificate() {
    common::require_root();
    let certs = std::env::temp_dir().join(format!("berth-tls-{}", std::process::id()));
    make_certs(&certs);
    let p = |f: &str| certs.join(f).display().to_string();
    let (ca, cert, key) = (p("ca.pem"), p("server.pem"), p("server-key.pem"));
    let d = Daemon::start_with(&[
        "-H",
        "tcp://127.0.0.1:23761",
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
    ]);
    let in_ns = |args: &[&str]| {
        Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", d.netns))
            .arg(DOCKER)
            .args(args)
            .env("DOCKER_CONFIG", d.root.join("dockercfg"))
            .output()
            .expect("docker")
    };
    let ok = in_ns(&[
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &p("client.pem"),
        "--tlskey",
        &p("client-key.pem"),
        "-H",
        "tcp://127.0.0.1:23761",
        "version",
        "--format",
        "{{.Server.APIVersion}}",
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(stdout(&ok).trim(), "1.45");
    // No client certificate: refused.
    let refused = in_ns(&[
        "--tls",
        "--tlscacert",
        &ca,
        "-H",
        "tcp://127.0.0.1:23761",
        "version",
        "--format",
        "{{.Server.APIVersion}}",
    ]);
    assert!(
        !refused.status.success(),
        "a client without a certificate got in"
    );
    let _ = std::fs::remove_dir_all(&certs);
}

#[test]
fn tcp_without_tls_is_refused() {
    common::require_root();
    let out = Command::new(common::bin_dir().join("berthd"))
        .args([
            "--data-root",
            "/nonexistent-berth-test",
            "-H",
            "tcp://127.0.0.1:23762",
        ])
        .output()
        .expect("berthd");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("without --tlsverify"),
        "{}",
        stderr(&out)
    );
}
