//! A real registry for the tests: Debian's `docker-registry` (distribution 2.x) on an address
//! inside a test network namespace, with temporary storage; optionally TLS (a test CA made with
//! openssl) and htpasswd basic auth. Stopped and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY: &str = "/usr/bin/docker-registry";

pub struct Registry {
    /// `ip:port`, as image references name it.
    pub addr: String,
    pub dir: PathBuf,
    netns: String,
    tls: bool,
    child: Option<Child>,
}

/// TLS and auth settings of a registry.
#[derive(Default)]
pub struct RegistryOpts {
    /// Address to listen on (default 127.0.0.1).
    pub ip: Option<String>,
    /// Server certificate and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// user, password for htpasswd basic auth.
    pub basic: Option<(String, String)>,
    /// Bearer-token auth through a token server (see `token.rs`).
    pub token: Option<TokenAuth>,
}

/// The registry's `auth: token:` settings.
#[derive(Clone)]
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// PEM certificates the token signatures must chain to.
    pub rootcertbundle: PathBuf,
}

fn sh(dir: &Path, script: &str) {
    let o = Command::new("sh")
        .current_dir(dir)
        .args(["-c", script])
        .output()
        .expect("sh");
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A test CA and a server certificate for `ip`, in `dir`: `ca.crt`, `server.crt`, `server.key`.
pub fn make_ca(dir: &Path, ip: &str) {
    std::fs::create_dir_all(dir).expect("ca dir");
    sh(
        dir,
        &format!(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout ca.key -out ca.crt -days 2 -subj /CN=berth-registry-test-ca 2>/dev/null && \
             openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout server.key -out server.csr -subj /CN={ip} 2>/dev/null && \
             printf 'subjectAltName=IP:{ip}\\nextendedKeyUsage=serverAuth\\n' > server.ext && \
             openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
             -out server.crt -days 2 -extfile server.ext 2>/dev/null"
        ),
    );
}

impl Registry {
    /// Starts a registry inside `netns` and waits until it answers.
    pub fn start(netns: &str, root: &Path, opts: RegistryOpts) -> Registry {
        assert!(
            Path::new(REGISTRY).exists(),
            "docker-registry is missing (scripts/deps installs it)"
        );
        let ip = opts.ip.clone().unwrap_or_else(|| "127.0.0.1".into());
        for _ in 0..5 {
            let port = 20000 + rand::random::<u16>() % 30000;
            let dir = root.join(format!("registry-{port}"));
            std::fs::create_dir_all(dir.join("storage")).expect("registry dir");
            let mut cfg = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {ip}:{port}\n  secret: berth-test\n",
                dir.join("storage").display()
            );
            if let Some((cert, key)) = &opts.tls {
                cfg.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ));
            }
            if let Some((user, pass)) = &opts.basic {
                let hash = bcrypt(pass);
                std::fs::write(dir.join("htpasswd"), format!("{user}:{hash}\n")).expect("htpasswd");
                cfg.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    dir.join("htpasswd").display()
                ));
            }
            if let Some(t) = &opts.token {
                cfg.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                     rootcertbundle: {}\n",
                    t.realm,
                    t.service,
                    t.issuer,
                    t.rootcertbundle.display()
                ));
            }
            std::fs::write(dir.join("config.yml"), cfg).expect("config");
            let log = std::fs::File::create(dir.join("registry.log")).expect("log");
            let child = Command::new("nsenter")
                .arg(format!("--net=/var/run/netns/{netns}"))
                .arg(REGISTRY)
                .arg("serve")
                .arg(dir.join("config.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let mut r = Registry {
                addr: format!("{ip}:{port}"),
                dir,
                netns: netns.to_owned(),
                tls: opts.tls.is_some(),
                child: Some(child),
            };
            if r.wait_ready() {
                return r;
            }
            r.stop();
        }
        panic!("docker-registry did not start");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return false;
            }
            let code = self.curl(&["-o", "/dev/null", "-w", "%{http_code}", "/v2/"]);
            if code == "200" || code == "401" {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// `curl -sk <args> <scheme>://<addr><path>` inside the namespace; returns stdout.
    pub fn curl(&self, args: &[&str]) -> String {
        let (path, opts) = args.split_last().expect("a path");
        let scheme = if self.tls { "https" } else { "http" };
        let o = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", self.netns))
            .args(["curl", "-sk", "--max-time", "10"])
            .args(opts)
            .arg(format!("{scheme}://{}{path}", self.addr))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The digest the registry serves for `repo:tag` (its `Docker-Content-Digest`).
    pub fn manifest_digest(&self, repo: &str, tag: &str, auth: Option<&str>) -> String {
        match auth {
            Some(a) => self.digest_with(repo, tag, &["-u", a]),
            None => self.digest_with(repo, tag, &[]),
        }
    }

    /// The digest the registry serves for `repo:tag` to a holder of a Bearer `token`.
    pub fn manifest_digest_bearer(&self, repo: &str, tag: &str, token: &str) -> String {
        let header = format!("Authorization: Bearer {token}");
        self.digest_with(repo, tag, &["-H", &header])
    }

    fn digest_with(&self, repo: &str, tag: &str, auth: &[&str]) -> String {
        let mut args = vec![
            "-I",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        ];
        args.extend(auth);
        let path = format!("/v2/{repo}/manifests/{tag}");
        args.push(&path);
        let head = self.curl(&args);
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("docker-content-digest")
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no digest for {repo}:{tag}: {head}"))
    }

    /// The manifest of `repo:tag` as JSON.
    pub fn manifest(&self, repo: &str, tag: &str) -> serde_json::Value {
        let path = format!("/v2/{repo}/manifests/{tag}");
        let body = self.curl(&[
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
            &path,
        ]);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("manifest {repo}:{tag}: {e}: {body}"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A bcrypt hash for htpasswd (the registry accepts only bcrypt), made by libcrypt through
/// python3's `crypt` module.
fn bcrypt(password: &str) -> String {
    let o = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            password,
        ])
        .output()
        .expect("python3");
    let h = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(
        h.starts_with("$2"),
        "bcrypt failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    h
}
