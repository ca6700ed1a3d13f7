//! A registry token server for the tests: `tests/fixtures/token_server.py` (Python standard
//! library, JWTs signed RS256 by openssl) on 127.0.0.1 inside a test network namespace, with a
//! self-signed RSA certificate the registry trusts as its `rootcertbundle`. Every request it
//! answers is logged, so tests can check what clients asked for. Stopped and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::registry::TokenAuth;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/token_server.py"
);

pub struct TokenServer {
    /// `http://127.0.0.1:<port>/token`
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub user: String,
    pub password: String,
    pub dir: PathBuf,
    netns: String,
    child: Option<Child>,
}

/// One request the token server answered.
#[derive(Debug, serde::Deserialize)]
pub struct TokenRequest {
    pub status: u16,
    pub service: Vec<String>,
    pub scope: Vec<String>,
    pub account: Vec<String>,
    pub user: Option<String>,
    #[serde(default)]
    pub access: Vec<serde_json::Value>,
}

impl TokenServer {
    /// Starts a token server in `netns` that knows `user:password` and lets anonymous clients
    /// pull repositories whose names start with one of `anonymous_pull`.
    pub fn start(
        netns: &str,
        root: &Path,
        user: &str,
        password: &str,
        anonymous_pull: &[&str],
    ) -> TokenServer {
        let dir = root.join(format!("token-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).expect("token dir");
        let o = Command::new("openssl")
            .current_dir(&dir)
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "signing.key",
                "-out",
                "signing.crt",
                "-days",
                "2",
                "-subj",
                "/CN=berth-test-token-issuer",
            ])
            .output()
            .expect("openssl");
        assert!(
            o.status.success(),
            "signing key: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let suffix = format!("{:08x}", rand::random::<u32>());
        let service = format!("berth-test-registry-{suffix}");
        let issuer = format!("berth-test-issuer-{suffix}");
        let cfg = serde_json::json!({
            "service": service,
            "issuer": issuer,
            "user": user,
            "password": password,
            "anonymous_pull": anonymous_pull,
            "key": dir.join("signing.key"),
            "cert": dir.join("signing.crt"),
            "log": dir.join("requests.jsonl"),
            "port_file": dir.join("port"),
        });
        std::fs::write(dir.join("config.json"), cfg.to_string()).expect("config");
        let log = std::fs::File::create(dir.join("server.log")).expect("log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{netns}"))
            .args(["python3", SCRIPT])
            .arg(dir.join("config.json"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn token server");
        let mut t = TokenServer {
            realm: String::new(),
            service,
            issuer,
            user: user.to_owned(),
            password: password.to_owned(),
            dir,
            netns: netns.to_owned(),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(t.dir.join("port")) {
                break p;
            }
            if let Some(Ok(Some(st))) = t.child.as_mut().map(|c| c.try_wait()) {
                panic!("token server exited ({st}): {}", t.server_log());
            }
            assert!(Instant::now() < deadline, "token server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        t.realm = format!("http://127.0.0.1:{}/token", port.trim());
        t
    }

    /// What a registry's `auth: token:` section needs to trust this server.
    pub fn auth(&self) -> TokenAuth {
        TokenAuth {
            realm: self.realm.clone(),
            service: self.service.clone(),
            issuer: self.issuer.clone(),
            rootcertbundle: self.dir.join("signing.crt"),
        }
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        std::fs::read_to_string(self.dir.join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// A token for `scope` as the configured user, fetched with curl inside the namespace.
    pub fn token(&self, scope: &str) -> String {
        let o = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", self.netns))
            .args(["curl", "-sf", "--max-time", "10", "-G", "-u"])
            .arg(format!("{}:{}", self.user, self.password))
            .args(["--data-urlencode", &format!("service={}", self.service)])
            .args(["--data-urlencode", &format!("scope={scope}")])
            .arg(&self.realm)
            .output()
            .expect("curl");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("token for {scope}: {e}: {}", self.server_log()));
        v["token"].as_str().expect("a token").to_owned()
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
