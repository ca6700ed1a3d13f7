//! `version` and `info`.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{Client, API_VERSION};
use crate::data::Data;
use crate::format::bytes_size;
use crate::output::unescape;
use crate::template::Template;

/// A JSON value as display text (strings bare, null empty).
pub fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `berth version`
#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
}

fn client_version(negotiated: Option<&str>) -> Value {
    let api = match negotiated {
        Some(v) if v != API_VERSION => format!("{v} (downgraded from {API_VERSION})"),
        Some(v) => v.to_string(),
        None => API_VERSION.to_string(),
    };
    json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api,
        "DefaultAPIVersion": API_VERSION,
        "Os": "linux",
        "Arch": std::env::consts::ARCH,
        "Context": "default",
    })
}

fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An RFC 3339 build time shown as Go's `time.ANSIC` (`Thu May  7 21:09:36 2026`).
fn ansi_date(s: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.format("%a %b %e %H:%M:%S %Y").to_string(),
        Err(_) => s.to_string(),
    }
}

/// The `Server:` part of `version`.
pub fn render_server_version(v: &Value) -> String {
    let mut out = String::new();
    let platform = v["Platform"]["Name"].as_str().unwrap_or("");
    out.push_str(&if platform.is_empty() {
        "Server:\n".to_string()
    } else {
        format!("Server: {platform}\n")
    });
    let line = |out: &mut String, indent: &str, key: &str, val: &str| {
        let label = format!("{key}:");
        out.push_str(&format!("{indent}{label:<18}{val}\n"));
    };
    let components = v["Components"].as_array().cloned().unwrap_or_default();
    let engine = components.iter().find(|c| c["Name"] == "Engine");
    let details = engine
        .map(|e| e["Details"].clone())
        .unwrap_or_else(|| v.clone());
    let d = |k: &str| s(&details[k]);
    out.push_str(" Engine:\n");
    line(
        &mut out,
        "  ",
        "Version",
        &engine
            .map(|e| s(&e["Version"]))
            .unwrap_or_else(|| s(&v["Version"])),
    );
    let (api, min) = if engine.is_some() {
        (d("ApiVersion"), d("MinAPIVersion"))
    } else {
        (s(&v["ApiVersion"]), s(&v["MinAPIVersion"]))
    };
    line(
        &mut out,
        "  ",
        "API version",
        &format!("{api} (minimum version {min})"),
    );
    line(&mut out, "  ", "Go version", &d("GoVersion"));
    line(&mut out, "  ", "Git commit", &d("GitCommit"));
    line(&mut out, "  ", "Built", &ansi_date(&d("BuildTime")));
    line(
        &mut out,
        "  ",
        "OS/Arch",
        &format!("{}/{}", d("Os"), d("Arch")),
    );
    let experimental = match &details["Experimental"] {
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        _ => "false".to_string(),
    };
    line(&mut out, "  ", "Experimental", &experimental);
    for c in components.iter().filter(|c| c["Name"] != "Engine") {
        out.push_str(&format!(" {}:\n", s(&c["Name"])));
        line(&mut out, "  ", "Version", &s(&c["Version"]));
        if let Some(det) = c["Details"].as_object() {
            let mut keys: Vec<&String> = det.keys().collect();
            keys.sort();
            for k in keys {
                line(&mut out, "  ", k, &s(&det[k]));
            }
        }
    }
    out
}

pub async fn version(client: &Client, args: VersionArgs) -> Result<()> {
    let negotiated = client.version().await.ok().map(str::to_string);
    let cv = client_version(negotiated.as_deref());
    let server: Result<Value> = match negotiated {
        Some(_) => client.get_json("/version").await,
        None => Err(anyhow::anyhow!(
            "Cannot connect to the Berth daemon at {}. Is the berth daemon running?",
            client.host()
        )),
    };
    if let Some(f) = &args.format {
        let server_data = match &server {
            Ok(v) => Data::from(v),
            Err(_) => Data::Null,
        };
        let data = Data::Object(vec![
            ("Client".to_string(), Data::from(&cv)),
            ("Server".to_string(), server_data),
        ]);
        println!("{}", Template::parse(&unescape(f))?.render_data(&data)?);
        return server.map(|_| ());
    }
    let mut out = String::from("Client:\n");
    out.push_str(&format!(" {:<19}{}\n", "Version:", s(&cv["Version"])));
    out.push_str(&format!(
        " {:<19}{}\n",
        "API version:",
        s(&cv["ApiVersion"])
    ));
    out.push_str(&format!(
        " {:<19}linux/{}\n",
        "OS/Arch:",
        go_arch(std::env::consts::ARCH)
    ));
    out.push_str(&format!(" {:<19}{}\n", "Context:", "default"));
    print!("{out}");
    let server = server?;
    println!();
    print!("{}", render_server_version(&server));
    Ok(())
}

/// `berth info`
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
}

fn security_lines(opts: &[Value]) -> String {
    let mut out = String::new();
    for o in opts.iter().filter_map(Value::as_str) {
        let mut name = String::new();
        let mut rest = Vec::new();
        for kv in o.split(',') {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            if k == "name" {
                name = v.to_string();
            } else {
                rest.push((k.to_string(), v.to_string()));
            }
        }
        out.push_str(&format!("  {name}\n"));
        for (k, v) in rest {
            let mut key = k.clone();
            if let Some(f) = key.get_mut(0..1) {
                f.make_ascii_uppercase();
            }
            out.push_str(&format!("   {key}: {v}\n"));
        }
    }
    out
}

/// The `Server:` part of `info`, laid out like docker's.
pub fn render_info(i: &Value) -> String {
    let mut o = String::from("Server:\n");
    info_counts_and_drivers(&mut o, i);
    info_plugins(&mut o, i);
    info_swarm(&mut o, i);
    info_runtimes(&mut o, i);
    info_host(&mut o, i);
    info_registries(&mut o, i);
    push_line(
        &mut o,
        format!(
            " Live Restore Enabled: {}",
            i["LiveRestoreEnabled"].as_bool().unwrap_or(false)
        ),
    );
    o
}

fn push_line(o: &mut String, t: String) {
    o.push_str(&t);
    o.push('\n');
}

/// Containers by state, images, version, storage, logging and cgroup drivers.
fn info_counts_and_drivers(o: &mut String, i: &Value) {
    let mut p = |t: String| push_line(o, t);
    p(format!(" Containers: {}", s(&i["Containers"])));
    p(format!("  Running: {}", s(&i["ContainersRunning"])));
    p(format!("  Paused: {}", s(&i["ContainersPaused"])));
    p(format!("  Stopped: {}", s(&i["ContainersStopped"])));
    p(format!(" Images: {}", s(&i["Images"])));
    p(format!(" Server Version: {}", s(&i["ServerVersion"])));
    p(format!(" Storage Driver: {}", s(&i["Driver"])));
    for pair in i["DriverStatus"].as_array().into_iter().flatten() {
        p(format!("  {}: {}", s(&pair[0]), s(&pair[1])));
    }
    p(format!(" Logging Driver: {}", s(&i["LoggingDriver"])));
    p(format!(" Cgroup Driver: {}", s(&i["CgroupDriver"])));
    p(format!(" Cgroup Version: {}", s(&i["CgroupVersion"])));
}

/// `Plugins:` by kind; `Authorization` only when there is one.
fn info_plugins(o: &mut String, i: &Value) {
    let mut p = |t: String| push_line(o, t);
    p(" Plugins:".to_string());
    let join = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(s).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    p(format!("  Volume: {}", join(&i["Plugins"]["Volume"])));
    p(format!("  Network: {}", join(&i["Plugins"]["Network"])));
    if i["Plugins"]["Authorization"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        p(format!(
            "  Authorization: {}",
            join(&i["Plugins"]["Authorization"])
        ));
    }
    p(format!("  Log: {}", join(&i["Plugins"]["Log"])));
}

/// `Swarm:` state; node details when active, cluster details on a manager.
fn info_swarm(o: &mut String, i: &Value) {
    let mut p = |t: String| push_line(o, t);
    let swarm = &i["Swarm"];
    let state = s(&swarm["LocalNodeState"]);
    p(format!(
        " Swarm: {}",
        if state.is_empty() {
            "inactive".to_string()
        } else {
            state.clone()
        }
    ));
    if state == "active" {
        p(format!("  NodeID: {}", s(&swarm["NodeID"])));
        p(format!("  Is Manager: {}", s(&swarm["ControlAvailable"])));
        if swarm["ControlAvailable"].as_bool().unwrap_or(false) {
            p(format!("  ClusterID: {}", s(&swarm["Cluster"]["ID"])));
            p(format!("  Managers: {}", s(&swarm["Managers"])));
            p(format!("  Nodes: {}", s(&swarm["Nodes"])));
        }
        p(format!("  Node Address: {}", s(&swarm["NodeAddr"])));
    }
}

/// Runtimes (sorted), init binary, component versions and security options.
fn info_runtimes(o: &mut String, i: &Value) {
    let mut p = |t: String| push_line(o, t);
    let mut runtimes: Vec<String> = i["Runtimes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    runtimes.sort();
    p(format!(" Runtimes: {}", runtimes.join(" ")));
    p(format!(" Default Runtime: {}", s(&i["DefaultRuntime"])));
    p(format!(" Init Binary: {}", s(&i["InitBinary"])));
    p(format!(
        " containerd version: {}",
        s(&i["ContainerdCommit"]["ID"])
    ));
    p(format!(" runc version: {}", s(&i["RuncCommit"]["ID"])));
    p(format!(" init version: {}", s(&i["InitCommit"]["ID"])));
    if let Some(opts) = i["SecurityOptions"].as_array().filter(|a| !a.is_empty()) {
        p(" Security Options:".to_string());
        o.push_str(&security_lines(opts));
    }
}

/// Kernel, OS, hardware, name and root dir, debug mode, proxies, labels, experimental.
fn info_host(o: &mut String, i: &Value) {
    let mut p = |t: String| push_line(o, t);
    p(format!(" Kernel Version: {}", s(&i["KernelVersion"])));
    p(format!(" Operating System: {}", s(&i["OperatingSystem"])));
    p(format!(" OSType: {}", s(&i["OSType"])));
    p(format!(" Architecture: {}", s(&i["Architecture"])));
    p(format!(" CPUs: {}", s(&i["NCPU"])));
    p(format!(
        " Total Memory: {}",
        bytes_size(i["MemTotal"].as_f64().unwrap_or(0.0))
    ));
    p(format!(" Name: {}", s(&i["Name"])));
    p(format!(" ID: {}", s(&i["ID"])));
    p(format!(" Docker Root Dir: {}", s(&i["DockerRootDir"])));
    p(format!(
        " Debug Mode: {}",
        i["Debug"].as_bool().unwrap_or(false)
    ));
    for (key, label) in [
        ("HttpProxy", "HTTP Proxy"),
        ("HttpsProxy", "HTTPS Proxy"),
        ("NoProxy", "No Proxy"),
    ] {
        if let Some(v) = i[key].as_str().filter(|v| !v.is_empty()) {
            p(format!(" {label}: {v}"));
        }
    }
    if let Some(labels) = i["Labels"].as_array().filter(|a| !a.is_empty()) {
        p(" Labels:".to_string());
        for l in labels {
            p(format!("  {}", s(l)));
        }
    }
    p(format!(
        " Experimental: {}",
        i["ExperimentalBuild"].as_bool().unwrap_or(false)
    ));
}

/// Insecure registries (CIDRs, then insecure index configs other than Docker Hub) and mirrors.
fn info_registries(o: &mut String, i: &Value) {
    let mut p = |t: String| push_line(o, t);
    let insecure: Vec<String> = i["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .chain(
            i["RegistryConfig"]["IndexConfigs"]
                .as_object()
                .into_iter()
                .flat_map(|m| {
                    m.values()
                        .filter(|c| c["Secure"] == json!(false) && c["Name"] != "docker.io")
                        .map(|c| s(&c["Name"]))
                }),
        )
        .collect();
    if !insecure.is_empty() {
        p(" Insecure Registries:".to_string());
        for r in insecure {
            p(format!("  {r}"));
        }
    }
    if let Some(m) = i["RegistryConfig"]["Mirrors"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        p(" Registry Mirrors:".to_string());
        for r in m {
            p(format!("  {}", s(r)));
        }
    }
}

pub async fn info(client: &Client, args: InfoArgs) -> Result<()> {
    if let Some(f) = &args.format {
        let raw = client.get("/info").await?.bytes().await?;
        let data =
            Data::parse(&raw).map_err(|e| anyhow::anyhow!("decoding daemon response: {e}"))?;
        println!("{}", Template::parse(&unescape(f))?.render_data(&data)?);
        return Ok(());
    }
    let info: Result<Value> = client.get_json("/info").await;
    print!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\n",
        env!("CARGO_PKG_VERSION")
    );
    let info = info?;
    print!("{}", render_info(&info));
    println!();
    for w in info["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", s(w));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_version_layout() {
        let v = json!({
            "Platform": {"Name": ""},
            "Components": [
                {"Name": "Engine", "Version": "20.10.24+dfsg1", "Details": {
                    "ApiVersion": "1.41", "MinAPIVersion": "1.12", "GoVersion": "go1.19.8", "GitCommit": "5d6db84",
                    "BuildTime": "Thu May  7 21:09:36 2026", "Os": "linux", "Arch": "amd64", "Experimental": "false"}},
                {"Name": "containerd", "Version": "1.6.20~ds1", "Details": {"GitCommit": "1.6.20~ds1-1+deb12u3"}}
            ]
        });
        assert_eq!(
            render_server_version(&v),
            "Server:\n Engine:\n  Version:          20.10.24+dfsg1\n  API version:      1.41 (minimum version 1.12)\n  Go version:       go1.19.8\n  Git commit:       5d6db84\n  Built:            Thu May  7 21:09:36 2026\n  OS/Arch:          linux/amd64\n  Experimental:     false\n containerd:\n  Version:          1.6.20~ds1\n  GitCommit:        1.6.20~ds1-1+deb12u3\n"
        );
    }

    #[test]
    fn info_security_options() {
        assert_eq!(
            security_lines(&[json!("name=seccomp,profile=default")]),
            "  seccomp\n   Profile: default\n"
        );
    }

    #[test]
    fn info_sections_in_order() {
        let i = json!({
            "Swarm": {"LocalNodeState": "active", "NodeID": "n1", "ControlAvailable": false,
                      "NodeAddr": "10.0.0.1"},
            "Runtimes": {"runc": {}, "berth": {}},
            "RegistryConfig": {
                "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                "IndexConfigs": {
                    "docker.io": {"Name": "docker.io", "Secure": false},
                    "reg:5000": {"Name": "reg:5000", "Secure": false}
                }
            }
        });
        let out = render_info(&i);
        assert!(out.starts_with("Server:\n Containers: "), "{out}");
        assert!(
            out.contains(" Swarm: active\n  NodeID: n1\n  Is Manager: false\n  Node Address: 10.0.0.1\n Runtimes: berth runc\n"),
            "{out}"
        );
        assert!(
            out.ends_with(
                " Insecure Registries:\n  127.0.0.0/8\n  reg:5000\n Live Restore Enabled: false\n"
            ),
            "{out}"
        );
    }
}
