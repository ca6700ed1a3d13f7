//! Another "machine" for network tests: a namespace joined to a daemon's by a veth pair, with
//! an address on each side and a web server of its own. It has no route back to container
//! subnets, so a container's request it answers proves masquerading. Removed on drop.

use std::process::{Child, Command, Output, Stdio};

use super::{stderr, stdout, Daemon};

/// Runs a command inside a network namespace (only the network one: cgroups stay visible).
pub fn in_ns(ns: &str, args: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net=/var/run/netns/{ns}"))
        .args(args)
        .output()
        .expect("nsenter")
}

/// GET `url` from inside `ns`, the body trimmed (curl; `-g` so the brackets of an IPv6
/// literal are no glob).
pub fn http_get(ns: &str, url: &str) -> Option<String> {
    let o = in_ns(ns, &["curl", "-g", "-s", "--max-time", "3", url]);
    o.status.success().then(|| stdout(&o).trim().to_owned())
}

/// Starts busybox httpd serving `text` at / in a detached container called `name`, and
/// returns once it answers there (`run -d` returns when `sh` has started, before httpd
/// listens: a request at once could be refused on a loaded machine).
pub fn web(d: &Daemon, extra: &[&str], name: &str, text: &str) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    let script =
        format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www");
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    d.ok(&args);
    let get = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 80";
    let up = super::eventually(std::time::Duration::from_secs(30), || {
        stdout(&d.docker(&["exec", name, "sh", "-c", get])).contains(text)
    });
    assert!(up, "httpd in {name} never answered");
}

pub struct Outside {
    pub ns: String,
    server: Option<Child>,
    dir: std::path::PathBuf,
}

impl Outside {
    /// `tag` names the namespace and the veth pair (`vo<tag>` on the daemon's side, `vi<tag>`
    /// out there); `here` and `there` are their addresses with prefix (`10.203.0.1/24`; IPv6
    /// ones are added without duplicate address detection). The web server answers `text`
    /// at `/` on port 9000, over IPv4 and IPv6.
    pub fn new(d: &Daemon, tag: &str, here: &str, there: &str, text: &str) -> Outside {
        let ns = format!("{}{tag}", d.netns);
        let (vo, vi) = (format!("vo{tag}"), format!("vi{tag}"));
        let ok = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().expect("ip");
            assert!(o.status.success(), "ip {args:?}: {}", stderr(&o));
        };
        ok(&["netns", "add", &ns]);
        ok(&["-n", &ns, "link", "set", "lo", "up"]);
        ok(&[
            "-n", &d.netns, "link", "add", &vo, "type", "veth", "peer", "name", &vi, "netns", &ns,
        ]);
        let nodad = |a: &str| {
            if a.contains(':') {
                vec!["nodad"]
            } else {
                Vec::new()
            }
        };
        let mut add = vec!["-n", &d.netns, "addr", "add", here, "dev", &vo];
        add.extend(nodad(here));
        ok(&add);
        ok(&["-n", &d.netns, "link", "set", &vo, "up"]);
        let mut add = vec!["-n", &ns, "addr", "add", there, "dev", &vi];
        add.extend(nodad(there));
        ok(&add);
        ok(&["-n", &ns, "link", "set", &vi, "up"]);
        let dir = d.root.join(format!("outside-www-{tag}"));
        std::fs::create_dir_all(&dir).expect("www");
        std::fs::write(dir.join("index.html"), format!("{text}\n")).expect("index");
        let server = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{ns}"))
            .args(["/bin/busybox", "httpd", "-f", "-p", "9000", "-h"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("outside httpd");
        Outside {
            ns,
            server: Some(server),
            dir,
        }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.ns])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
