//! `version`, `info`, `system df`, `system prune` and `events`.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{Client, Query, API_VERSION};
use crate::commands::container::{confirm, prune_containers};
use crate::commands::image::prune_images;
use crate::commands::logs::api_time;
use crate::commands::network::prune_networks;
use crate::commands::volume::prune_volumes;
use crate::format::{ago, bytes_size, ellipsis, go_quote, human_size, short_id};
use crate::opts;
use crate::output::{render_each, row, unescape, ListFormat};
use crate::template::Template;

fn s(v: &Value) -> String {
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
    out.push_str(&if platform.is_empty() { "Server:\n".to_string() } else { format!("Server: {platform}\n") });
    let line = |out: &mut String, indent: &str, key: &str, val: &str| {
        let label = format!("{key}:");
        out.push_str(&format!("{indent}{label:<18}{val}\n"));
    };
    let components = v["Components"].as_array().cloned().unwrap_or_default();
    let engine = components.iter().find(|c| c["Name"] == "Engine");
    let details = engine.map(|e| e["Details"].clone()).unwrap_or_else(|| v.clone());
    let d = |k: &str| s(&details[k]);
    out.push_str(" Engine:\n");
    line(&mut out, "  ", "Version", &engine.map(|e| s(&e["Version"])).unwrap_or_else(|| s(&v["Version"])));
    let (api, min) = if engine.is_some() { (d("ApiVersion"), d("MinAPIVersion")) } else { (s(&v["ApiVersion"]), s(&v["MinAPIVersion"])) };
    line(&mut out, "  ", "API version", &format!("{api} (minimum version {min})"));
    line(&mut out, "  ", "Go version", &d("GoVersion"));
    line(&mut out, "  ", "Git commit", &d("GitCommit"));
    line(&mut out, "  ", "Built", &ansi_date(&d("BuildTime")));
    line(&mut out, "  ", "OS/Arch", &format!("{}/{}", d("Os"), d("Arch")));
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
        let data = json!({"Client": cv, "Server": server.as_ref().ok()});
        println!("{}", Template::parse(&unescape(f))?.render(&data)?);
        return server.map(|_| ());
    }
    let mut out = String::from("Client:\n");
    out.push_str(&format!(" {:<19}{}\n", "Version:", s(&cv["Version"])));
    out.push_str(&format!(" {:<19}{}\n", "API version:", s(&cv["ApiVersion"])));
    out.push_str(&format!(" {:<19}linux/{}\n", "OS/Arch:", go_arch(std::env::consts::ARCH)));
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
    let mut p = |t: String| {
        o.push_str(&t);
        o.push('\n');
    };
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
    p(" Plugins:".to_string());
    let join = |v: &Value| v.as_array().map(|a| a.iter().map(s).collect::<Vec<_>>().join(" ")).unwrap_or_default();
    p(format!("  Volume: {}", join(&i["Plugins"]["Volume"])));
    p(format!("  Network: {}", join(&i["Plugins"]["Network"])));
    if i["Plugins"]["Authorization"].as_array().is_some_and(|a| !a.is_empty()) {
        p(format!("  Authorization: {}", join(&i["Plugins"]["Authorization"])));
    }
    p(format!("  Log: {}", join(&i["Plugins"]["Log"])));
    let swarm = &i["Swarm"];
    let state = s(&swarm["LocalNodeState"]);
    p(format!(" Swarm: {}", if state.is_empty() { "inactive".to_string() } else { state.clone() }));
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
    let mut runtimes: Vec<String> = i["Runtimes"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    runtimes.sort();
    p(format!(" Runtimes: {}", runtimes.join(" ")));
    p(format!(" Default Runtime: {}", s(&i["DefaultRuntime"])));
    p(format!(" Init Binary: {}", s(&i["InitBinary"])));
    p(format!(" containerd version: {}", s(&i["ContainerdCommit"]["ID"])));
    p(format!(" runc version: {}", s(&i["RuncCommit"]["ID"])));
    p(format!(" init version: {}", s(&i["InitCommit"]["ID"])));
    if let Some(opts) = i["SecurityOptions"].as_array().filter(|a| !a.is_empty()) {
        p(" Security Options:".to_string());
        o.push_str(&security_lines(opts));
    }
    let mut p = |t: String| {
        o.push_str(&t);
        o.push('\n');
    };
    p(format!(" Kernel Version: {}", s(&i["KernelVersion"])));
    p(format!(" Operating System: {}", s(&i["OperatingSystem"])));
    p(format!(" OSType: {}", s(&i["OSType"])));
    p(format!(" Architecture: {}", s(&i["Architecture"])));
    p(format!(" CPUs: {}", s(&i["NCPU"])));
    p(format!(" Total Memory: {}", bytes_size(i["MemTotal"].as_f64().unwrap_or(0.0))));
    p(format!(" Name: {}", s(&i["Name"])));
    p(format!(" ID: {}", s(&i["ID"])));
    p(format!(" Docker Root Dir: {}", s(&i["DockerRootDir"])));
    p(format!(" Debug Mode: {}", i["Debug"].as_bool().unwrap_or(false)));
    for (key, label) in [("HttpProxy", "HTTP Proxy"), ("HttpsProxy", "HTTPS Proxy"), ("NoProxy", "No Proxy")] {
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
    p(format!(" Experimental: {}", i["ExperimentalBuild"].as_bool().unwrap_or(false)));
    let insecure: Vec<String> = i["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .chain(i["RegistryConfig"]["IndexConfigs"].as_object().into_iter().flat_map(|m| {
            m.values().filter(|c| c["Secure"] == json!(false) && c["Name"] != "docker.io").map(|c| s(&c["Name"]))
        }))
        .collect();
    if !insecure.is_empty() {
        p(" Insecure Registries:".to_string());
        for r in insecure {
            p(format!("  {r}"));
        }
    }
    if let Some(m) = i["RegistryConfig"]["Mirrors"].as_array().filter(|a| !a.is_empty()) {
        p(" Registry Mirrors:".to_string());
        for r in m {
            p(format!("  {}", s(r)));
        }
    }
    p(format!(" Live Restore Enabled: {}", i["LiveRestoreEnabled"].as_bool().unwrap_or(false)));
    o
}

pub async fn info(client: &Client, args: InfoArgs) -> Result<()> {
    let info: Result<Value> = client.get_json("/info").await;
    if let Some(f) = &args.format {
        let info = info?;
        print!("{}", render_each(f, &[info])?);
        return Ok(());
    }
    print!("Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\n", env!("CARGO_PKG_VERSION"));
    let info = info?;
    print!("{}", render_info(&info));
    println!();
    for w in info["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", s(w));
    }
    Ok(())
}

/// `berth system df`
#[derive(Args, Debug)]
pub struct DfArgs {
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

const DF_HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

fn with_percent(reclaimable: i64, total: i64) -> String {
    let r = human_size(reclaimable as f64);
    if total > 0 {
        format!("{r} ({}%)", reclaimable * 100 / total)
    } else {
        r
    }
}

fn is_active_state(state: &str) -> bool {
    state.contains("running") || state.contains("paused") || state.contains("restarting")
}

/// The four summary rows of `system df`.
pub fn df_rows(df: &Value) -> Vec<Value> {
    let arr = |k: &str| df[k].as_array().cloned().unwrap_or_default();
    let images = arr("Images");
    let layers = df["LayersSize"].as_i64().unwrap_or(0);
    let mut used = 0;
    let mut active_images = 0;
    for i in &images {
        if i["Containers"].as_i64().unwrap_or(0) > 0 {
            active_images += 1;
            let size = i["Size"].as_i64().unwrap_or(-1);
            let shared = i["SharedSize"].as_i64().unwrap_or(-1);
            if size != -1 && shared != -1 {
                used += size - shared;
            }
        }
    }
    let containers = arr("Containers");
    let (mut c_total, mut c_reclaim, mut c_active) = (0, 0, 0);
    for c in &containers {
        let size = c["SizeRw"].as_i64().unwrap_or(0);
        c_total += size;
        if is_active_state(c["State"].as_str().unwrap_or("")) {
            c_active += 1;
        } else {
            c_reclaim += size;
        }
    }
    let volumes = arr("Volumes");
    let (mut v_total, mut v_reclaim, mut v_active) = (0, 0, 0);
    for v in &volumes {
        let size = v["UsageData"]["Size"].as_i64().unwrap_or(-1);
        let refs = v["UsageData"]["RefCount"].as_i64().unwrap_or(0);
        if refs > 0 {
            v_active += 1;
        }
        if size != -1 {
            v_total += size;
            if refs == 0 {
                v_reclaim += size;
            }
        }
    }
    let cache = arr("BuildCache");
    let (mut b_total, mut b_in_use, mut b_active) = (0, 0, 0);
    for b in &cache {
        let size = b["Size"].as_i64().unwrap_or(0);
        let shared = b["Shared"].as_bool().unwrap_or(false);
        let in_use = b["InUse"].as_bool().unwrap_or(false);
        if in_use {
            b_active += 1;
        }
        if !shared {
            b_total += size;
            if in_use {
                b_in_use += size;
            }
        }
    }
    vec![
        row(vec![
            ("Type", "Images".to_string()),
            ("TotalCount", images.len().to_string()),
            ("Active", active_images.to_string()),
            ("Size", human_size(layers as f64)),
            ("Reclaimable", with_percent(layers - used, layers)),
        ]),
        row(vec![
            ("Type", "Containers".to_string()),
            ("TotalCount", containers.len().to_string()),
            ("Active", c_active.to_string()),
            ("Size", human_size(c_total as f64)),
            ("Reclaimable", with_percent(c_reclaim, c_total)),
        ]),
        row(vec![
            ("Type", "Local Volumes".to_string()),
            ("TotalCount", volumes.len().to_string()),
            ("Active", v_active.to_string()),
            ("Size", human_size(v_total as f64)),
            ("Reclaimable", with_percent(v_reclaim, v_total)),
        ]),
        row(vec![
            ("Type", "Build Cache".to_string()),
            ("TotalCount", cache.len().to_string()),
            ("Active", b_active.to_string()),
            ("Size", human_size(b_total as f64)),
            ("Reclaimable", human_size((b_total - b_in_use) as f64)),
        ]),
    ]
}

fn df_verbose(df: &Value) -> Result<String> {
    let mut out = String::from("Images space usage:\n\n");
    let mut rows = Vec::new();
    for i in df["Images"].as_array().into_iter().flatten() {
        let tags: Vec<String> = i["RepoTags"].as_array().into_iter().flatten().map(s).collect();
        let (repo, tag) = match tags.first() {
            Some(t) => {
                let r = crate::reference::ImageRef::parse(t);
                (r.familiar_repo(), r.tag.unwrap_or_else(|| "latest".into()))
            }
            None => ("<none>".to_string(), "<none>".to_string()),
        };
        let size = i["Size"].as_f64().unwrap_or(0.0);
        let shared = i["SharedSize"].as_f64().unwrap_or(0.0);
        rows.push(row(vec![
            ("Repository", repo),
            ("Tag", tag),
            ("ID", short_id(i["Id"].as_str().unwrap_or(""))),
            ("CreatedSince", ago(i["Created"].as_i64().unwrap_or(0))),
            ("Size", human_size(size)),
            ("SharedSize", human_size(shared.max(0.0))),
            ("UniqueSize", human_size(size - shared.max(0.0))),
            ("Containers", s(&i["Containers"])),
        ]));
    }
    let lf = ListFormat {
        format: None,
        default_table: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        headers: &[
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("Size", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("Containers", "CONTAINERS"),
        ],
    };
    out.push_str(&lf.render(&rows)?);
    out.push_str("\nContainers space usage:\n\n");
    let mut rows = Vec::new();
    for c in df["Containers"].as_array().into_iter().flatten() {
        let names: Vec<String> = c["Names"].as_array().into_iter().flatten().map(|n| s(n).trim_start_matches('/').to_string()).collect();
        rows.push(row(vec![
            ("ID", short_id(c["Id"].as_str().unwrap_or(""))),
            ("Image", s(&c["Image"])),
            ("Command", go_quote(&ellipsis(c["Command"].as_str().unwrap_or(""), 20))),
            ("LocalVolumes", c["Mounts"].as_array().map(|m| m.iter().filter(|x| x["Driver"] == "local").count()).unwrap_or(0).to_string()),
            ("Size", human_size(c["SizeRw"].as_f64().unwrap_or(0.0))),
            ("RunningFor", ago(c["Created"].as_i64().unwrap_or(0))),
            ("Status", s(&c["Status"])),
            ("Names", names.join(",")),
        ]));
    }
    let lf = ListFormat {
        format: None,
        default_table: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        headers: &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("Size", "SIZE"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("Names", "NAMES"),
        ],
    };
    out.push_str(&lf.render(&rows)?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut rows = Vec::new();
    for v in df["Volumes"].as_array().into_iter().flatten() {
        let size = v["UsageData"]["Size"].as_i64().unwrap_or(-1);
        rows.push(row(vec![
            ("Name", s(&v["Name"])),
            ("Links", s(&v["UsageData"]["RefCount"])),
            ("Size", if size < 0 { "N/A".to_string() } else { human_size(size as f64) }),
        ]));
    }
    let lf = ListFormat {
        format: None,
        default_table: "table {{.Name}}\t{{.Links}}\t{{.Size}}",
        headers: &[("Name", "VOLUME NAME"), ("Links", "LINKS"), ("Size", "SIZE")],
    };
    out.push_str(&lf.render(&rows)?);
    let cache: i64 = df["BuildCache"].as_array().into_iter().flatten().map(|b| b["Size"].as_i64().unwrap_or(0)).sum();
    out.push_str(&format!("\nBuild cache usage: {}\n", human_size(cache as f64)));
    Ok(out)
}

pub async fn df(client: &Client, args: DfArgs) -> Result<()> {
    let df: Value = client.get_json("/system/df").await?;
    if args.verbose && args.format.is_none() {
        print!("{}", df_verbose(&df)?);
        return Ok(());
    }
    let lf = ListFormat {
        format: args.format.as_deref(),
        default_table: "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        headers: DF_HEADERS,
    };
    print!("{}", lf.render(&df_rows(&df))?);
    Ok(())
}

/// `berth system prune`
#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long = "volumes")]
    pub volumes: bool,
}

/// The confirmation text of `system prune`.
pub fn prune_warning(all: bool, volumes: bool) -> String {
    let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if volumes {
        w.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if all {
        w.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
    } else {
        w.push_str("  - all dangling images\n  - unused build cache\n");
    }
    w
}

pub async fn prune(client: &Client, args: SystemPruneArgs) -> Result<()> {
    if !args.force && !confirm(&prune_warning(args.all, args.volumes)) {
        return Ok(());
    }
    let mut total: u64 = 0;
    let section = |title: &str, lines: &[String]| {
        if !lines.is_empty() {
            println!("{title}");
            for l in lines {
                println!("{l}");
            }
            println!();
        }
    };
    let (ids, space) = prune_containers(client, &args.filter).await?;
    total += space;
    section("Deleted Containers:", &ids);
    let names = prune_networks(client, &args.filter).await?;
    section("Deleted Networks:", &names);
    if args.volumes {
        let (vols, space) = prune_volumes(client, false, &args.filter).await?;
        total += space;
        section("Deleted Volumes:", &vols);
    }
    let (lines, space) = prune_images(client, args.all, &args.filter).await?;
    total += space;
    section("Deleted Images:", &lines);
    let f = opts::parse_filters(&args.filter).map_err(anyhow::Error::msg)?;
    let mut q = Query::new();
    q.flag("all", args.all);
    if f.as_object().is_some_and(|m| !m.is_empty()) {
        q.filters(&f);
    } else {
        q.add("filters", "");
    }
    if let Ok(resp) = client.post_json::<Value>(&q.to_path("/build/prune"), None).await {
        total += resp["SpaceReclaimed"].as_u64().unwrap_or(0);
        let caches: Vec<String> = resp["CachesDeleted"].as_array().into_iter().flatten().map(s).collect();
        section("Deleted build cache objects:", &caches);
    }
    println!("Total reclaimed space: {}", human_size(total as f64));
    Ok(())
}

/// `berth events`
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long = "since")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long = "until")]
    pub until: Option<String>,
}

/// One event in docker's default layout:
/// `2026-11-27T22:19:20.115862415Z container die <id> (exitCode=137, image=busybox, name=s24)`.
pub fn event_line(e: &Value) -> String {
    let mut out = String::new();
    let nanos = e["timeNano"].as_i64().or_else(|| e["time"].as_i64().map(|t| t * 1_000_000_000));
    if let Some(n) = nanos {
        let t = chrono::DateTime::from_timestamp(n.div_euclid(1_000_000_000), n.rem_euclid(1_000_000_000) as u32)
            .map(|t| t.with_timezone(&chrono::Local).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_default();
        out.push_str(&t);
        out.push(' ');
    }
    let kind = e["Type"].as_str().unwrap_or("");
    let action = e["Action"].as_str().or(e["status"].as_str()).unwrap_or("");
    let id = e["Actor"]["ID"].as_str().or(e["id"].as_str()).unwrap_or("");
    out.push_str(&format!("{kind} {action} {id}"));
    if let Some(attrs) = e["Actor"]["Attributes"].as_object().filter(|m| !m.is_empty()) {
        let mut keys: Vec<&String> = attrs.keys().collect();
        keys.sort();
        let parts: Vec<String> = keys.iter().map(|k| format!("{k}={}", s(&attrs[*k]))).collect();
        out.push_str(&format!(" ({})", parts.join(", ")));
    }
    out
}

pub async fn events(client: &Client, args: EventsArgs) -> Result<()> {
    let f = opts::parse_filters(&args.filter).map_err(anyhow::Error::msg)?;
    let mut q = Query::new();
    q.opt("since", api_time(&args.since)?).opt("until", api_time(&args.until)?).filters(&f);
    let mut resp = client.get(&q.to_path("/events")).await?;
    let tmpl = match args.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) => Some(Template::parse(&unescape(f))?),
    };
    let mut dec = crate::stream::JsonStream::new();
    loop {
        let chunk = tokio::select! {
            c = resp.chunk() => c?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(chunk) = chunk else { return Ok(()) };
        dec.push(&chunk);
        while let Some(ev) = dec.next_value()? {
            let line = match &tmpl {
                Some(t) => t.render(&ev)?,
                None => event_line(&ev),
            };
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn df_summary_like_capture() {
        let df = json!({
            "LayersSize": 3_965_000,
            "Images": [{"Containers": 0, "Size": 1_981_952, "SharedSize": -1}, {"Containers": 0}, {"Containers": 0}],
            "Containers": [], "Volumes": [], "BuildCache": []
        });
        let lf = ListFormat {
            format: None,
            default_table: "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
            headers: DF_HEADERS,
        };
        assert_eq!(
            lf.render(&df_rows(&df)).expect("render"),
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          3         0         3.965MB   3.965MB (100%)\n\
             Containers      0         0         0B        0B\n\
             Local Volumes   0         0         0B        0B\n\
             Build Cache     0         0         0B        0B\n"
        );
    }

    #[test]
    fn event_lines() {
        let e = json!({"Type": "container", "Action": "die", "Actor": {"ID": "3fc1", "Attributes": {"name": "s24", "exitCode": "137", "image": "busybox"}}, "timeNano": 1_795_818_000_132_805_609i64});
        let line = event_line(&e);
        assert!(line.ends_with(" container die 3fc1 (exitCode=137, image=busybox, name=s24)"), "{line}");
        let stamp = line.split(' ').next().unwrap_or("");
        // `Z` in UTC, `+hh:mm` elsewhere; always nine fraction digits.
        assert!(stamp.len() == 30 || stamp.len() == 35, "{stamp}");
        assert!(stamp.contains(".132805609"), "{stamp}");
    }

    #[test]
    fn info_security_options() {
        assert_eq!(security_lines(&[json!("name=seccomp,profile=default")]), "  seccomp\n   Profile: default\n");
    }

    #[test]
    fn prune_warning_text() {
        assert_eq!(
            prune_warning(false, false),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n"
        );
    }
}
