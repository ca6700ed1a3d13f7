//! `node ls|inspect|update|promote|demote|rm`: the nodes a manager knows, as the docker CLI
//! shows and changes them.
//!
//! ```text
//!  ls ─────────► GET /nodes (+ GET /info to star the local node) ──► table / --format
//!  inspect ────► "self" via GET /info Swarm.NodeID ──► GET /nodes/{id} ──► JSON / --format / --pretty
//!  update, promote, demote ──► GET /nodes/{id} ──► change Spec ──► POST /nodes/{id}/update?version=N
//!  rm ─────────► DELETE /nodes/{id}?force=1
//! ```
//!
//! `node ps` and its task table live in `node_ps.rs`.

use std::cmp::Ordering;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use crate::client::{seg, Client, Query};
use crate::commands::inspect::print_found;
use crate::error::StatusError;
use crate::format::bytes_size;
use crate::opts;
use crate::output::ListFormat;

/// `berth node ...`
#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// List nodes in the swarm
    #[command(visible_alias = "list")]
    Ls(NodeLsArgs),
    /// Display detailed information on one or more nodes
    Inspect(NodeInspectArgs),
    /// Update a node
    Update(NodeUpdateArgs),
    /// Promote one or more nodes to manager in the swarm
    Promote(NodesArgs),
    /// Demote one or more nodes from manager in the swarm
    Demote(NodesArgs),
    /// Remove one or more nodes from the swarm
    #[command(visible_alias = "remove")]
    Rm(NodeRmArgs),
    /// List tasks running on one or more nodes, defaults to current node
    Ps(crate::commands::node_ps::NodePsArgs),
}

pub async fn dispatch(client: &Client, cmd: NodeCmd) -> Result<()> {
    match cmd {
        NodeCmd::Ls(a) => ls(client, a).await,
        NodeCmd::Inspect(a) => inspect(client, a).await,
        NodeCmd::Update(a) => update(client, a).await,
        NodeCmd::Promote(a) => promote(client, a).await,
        NodeCmd::Demote(a) => demote(client, a).await,
        NodeCmd::Rm(a) => rm(client, a).await,
        NodeCmd::Ps(a) => crate::commands::node_ps::ps(client, a).await,
    }
}

/// docker's `formatter.PrettyPrint` of a word: first letter upper case, the rest lower case.
pub fn pretty(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        None => String::new(),
        Some(first) if s.chars().count() == 1 => first.to_lowercase().collect(),
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
    }
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter().fold(v, |v, k| &v[*k]).as_str().unwrap_or("")
}

/// `berth node ls`
#[derive(Args, Debug)]
pub struct NodeLsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Only display IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

const DEFAULT_TABLE: &str = "table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}";

const HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Self", ""),
    ("Hostname", "HOSTNAME"),
    ("Status", "STATUS"),
    ("Availability", "AVAILABILITY"),
    ("ManagerStatus", "MANAGER STATUS"),
    ("EngineVersion", "ENGINE VERSION"),
    ("TLSStatus", "TLS STATUS"),
];

/// One `node ls` row; `swarm_info` is `/info`'s `Swarm` (the local node ID, the cluster's TLS).
pub fn node_row(n: &Value, swarm_info: &Value) -> Value {
    let id = text(n, &["ID"]);
    let manager_status = match n.get("ManagerStatus") {
        Some(ms) if ms.is_object() => {
            if ms["Leader"].as_bool() == Some(true) {
                "Leader".to_string()
            } else {
                pretty(text(ms, &["Reachability"]))
            }
        }
        _ => String::new(),
    };
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("ID", id.into());
    put(
        "Self",
        (!id.is_empty() && id == text(swarm_info, &["NodeID"])).into(),
    );
    put("Hostname", text(n, &["Description", "Hostname"]).into());
    put("Status", pretty(text(n, &["Status", "State"])).into());
    put(
        "Availability",
        pretty(text(n, &["Spec", "Availability"])).into(),
    );
    put("ManagerStatus", manager_status.into());
    put(
        "EngineVersion",
        text(n, &["Description", "Engine", "EngineVersion"]).into(),
    );
    put("TLSStatus", tls_status(n, swarm_info).into());
    Value::Object(m)
}

fn tls_empty(t: &Value) -> bool {
    ["TrustRoot", "CertIssuerSubject", "CertIssuerPublicKey"]
        .iter()
        .all(|k| t[*k].as_str().unwrap_or("").is_empty())
}

fn tls_status(n: &Value, swarm_info: &Value) -> &'static str {
    let cluster = &swarm_info["Cluster"]["TLSInfo"];
    let node = &n["Description"]["TLSInfo"];
    if tls_empty(cluster) || tls_empty(node) {
        "Unknown"
    } else if cluster == node {
        "Ready"
    } else {
        "Needs Rotation"
    }
}

/// Orders strings with runs of digits compared as numbers (`node2` before `node10`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let la = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                let lb = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
                let (na, nb) = (
                    a[..la].trim_start_matches('0'),
                    b[..lb].trim_start_matches('0'),
                );
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[la..];
                b = &b[lb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                a = &a[x.len_utf8()..];
                b = &b[y.len_utf8()..];
            }
        }
    }
}

/// Renders `node ls` rows for the user's `--format`/`-q`.
pub fn render_nodes(rows: &[Value], format: Option<&str>, quiet: bool) -> Result<String> {
    let format = match format {
        None | Some("") | Some("table") if quiet => Some("{{.ID}}"),
        f => f,
    };
    ListFormat {
        format,
        default_table: DEFAULT_TABLE,
        headers: HEADERS,
    }
    .render(rows)
}

pub async fn ls(client: &Client, args: NodeLsArgs) -> Result<()> {
    let f = opts::parse_filters(&args.filter).map_err(anyhow::Error::msg)?;
    let mut nodes: Vec<Value> = client
        .get_json(&Query::new().filters(&f).to_path("/nodes"))
        .await?;
    let info: Value = if !nodes.is_empty() && !args.quiet {
        client.get_json("/info").await?
    } else {
        Value::Null
    };
    nodes.sort_by(|a, b| {
        natural_cmp(
            text(a, &["Description", "Hostname"]),
            text(b, &["Description", "Hostname"]),
        )
    });
    let rows: Vec<Value> = nodes.iter().map(|n| node_row(n, &info["Swarm"])).collect();
    print!(
        "{}",
        render_nodes(&rows, args.format.as_deref(), args.quiet)?
    );
    Ok(())
}

/// Resolves `self` to the local node's ID through `/info`; anything else is passed through.
pub async fn reference(client: &Client, name: &str) -> Result<String> {
    if name != "self" {
        return Ok(name.to_string());
    }
    let info: Value = client.get_json("/info").await?;
    let id = text(&info, &["Swarm", "NodeID"]);
    if id.is_empty() {
        // Not a manager, probably: the node list says why in the daemon's words.
        client.get("/nodes").await?;
        bail!("node ID not found in /info");
    }
    Ok(id.to_string())
}

/// `berth node inspect`
#[derive(Args, Debug)]
pub struct NodeInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Print the information in a human friendly format
    #[arg(long = "pretty")]
    pub pretty: bool,
    /// Nodes
    #[arg(value_name = "self|NODE", required = true)]
    pub nodes: Vec<String>,
}

async fn fetch_raw(client: &Client, name: &str) -> Result<Vec<u8>> {
    let id = reference(client, name).await?;
    let resp = client.get(&format!("/nodes/{}", seg(&id))).await?;
    Ok(resp.bytes().await?.to_vec())
}

pub async fn inspect(client: &Client, args: NodeInspectArgs) -> Result<()> {
    let format = crate::format::inspect_format(args.pretty, args.format)?;
    if format.as_deref() == Some("pretty") {
        for name in &args.nodes {
            let raw = fetch_raw(client, name)
                .await
                .map_err(|e| StatusError::new(1, format!("{e:#}")))?;
            let node: Value = serde_json::from_slice(&raw)?;
            println!("{}", pretty_node(&node));
        }
        return Ok(());
    }
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.nodes {
        match fetch_raw(client, name).await {
            Ok(raw) => found.push(raw),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    print_found(&found, format.as_deref())?;
    if !errors.is_empty() {
        return Err(StatusError::new(1, errors.join("\n")).into());
    }
    Ok(())
}

/// A `k=v` list under a heading, keys sorted (`Labels:` / `Engine Labels:`).
pub fn push_labels(out: &mut String, heading: &str, labels: &Value) {
    let Some(map) = labels.as_object().filter(|m| !m.is_empty()) else {
        return;
    };
    out.push_str(&format!("\n{heading}:"));
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in keys {
        let v = map[k].as_str().unwrap_or("");
        if v.is_empty() {
            out.push_str(&format!("\n - {k}"));
        } else {
            out.push_str(&format!("\n - {k}={v}"));
        }
    }
}

/// An RFC 3339 time as Go's `time.Time.String` prints it (`2026-11-27 22:30:46.67106768 +0000
/// UTC`), through `pretty` as docker does.
pub fn go_time(s: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) else {
        return pretty(s);
    };
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let zone = if t.offset().local_minus_utc() == 0 {
        "+0000 UTC".to_string()
    } else {
        let z = t.format("%z").to_string();
        format!("{z} {z}")
    };
    pretty(&format!("{}{frac} {zone}", t.format("%Y-%m-%d %H:%M:%S")))
}

/// `node inspect --pretty`: docker's human-readable node text.
pub fn pretty_node(n: &Value) -> String {
    let mut o = format!("ID:\t\t\t{}", text(n, &["ID"]));
    let name = text(n, &["Spec", "Name"]);
    if !name.is_empty() {
        o.push_str(&format!("\nName:\t\t\t{name}"));
    }
    push_labels(&mut o, "Labels", &n["Spec"]["Labels"]);
    o.push_str(&format!(
        "\nHostname:              \t{}",
        text(n, &["Description", "Hostname"])
    ));
    o.push_str(&format!(
        "\nJoined at:             \t{}",
        go_time(text(n, &["CreatedAt"]))
    ));
    o.push_str(&format!(
        "\nStatus:\n State:\t\t\t{}",
        pretty(text(n, &["Status", "State"]))
    ));
    let message = text(n, &["Status", "Message"]);
    if !message.is_empty() {
        o.push_str(&format!("\n Message:              \t{}", pretty(message)));
    }
    o.push_str(&format!(
        "\n Availability:         \t{}",
        pretty(text(n, &["Spec", "Availability"]))
    ));
    let addr = text(n, &["Status", "Addr"]);
    if !addr.is_empty() {
        o.push_str(&format!("\n Address:\t\t{addr}"));
    }
    if let Some(ms) = n.get("ManagerStatus").filter(|m| m.is_object()) {
        let leader = if ms["Leader"].as_bool() == Some(true) {
            "Yes"
        } else {
            "No"
        };
        o.push_str(&format!(
            "\nManager Status:\n Address:\t\t{}\n Raft Status:\t\t{}\n Leader:\t\t{leader}",
            text(ms, &["Addr"]),
            pretty(text(ms, &["Reachability"]))
        ));
    }
    let d = &n["Description"];
    let nano_cpus = d["Resources"]["NanoCPUs"].as_i64().unwrap_or(0);
    let memory = d["Resources"]["MemoryBytes"].as_i64().unwrap_or(0);
    o.push_str(&format!(
        "\nPlatform:\n Operating System:\t{}\n Architecture:\t\t{}\nResources:\n CPUs:\t\t\t{}\n Memory:\t\t{}",
        text(d, &["Platform", "OS"]),
        text(d, &["Platform", "Architecture"]),
        nano_cpus / 1_000_000_000,
        if memory == 0 {
            String::new()
        } else {
            bytes_size(memory as f64)
        }
    ));
    push_plugins(&mut o, &d["Engine"]["Plugins"]);
    o.push_str(&format!(
        "\nEngine Version:\t\t{}",
        text(d, &["Engine", "EngineVersion"])
    ));
    push_labels(&mut o, "Engine Labels", &d["Engine"]["Labels"]);
    let tls = &d["TLSInfo"];
    if !tls_empty(tls) {
        o.push_str(&format!(
            "\nTLS Info:\n TrustRoot:\n{}\n Issuer Subject:\t{}\n Issuer Public Key:\t{}",
            text(tls, &["TrustRoot"]),
            text(tls, &["CertIssuerSubject"]),
            text(tls, &["CertIssuerPublicKey"])
        ));
    }
    o
}

/// `Plugins:` with the names of each type joined, types sorted.
fn push_plugins(out: &mut String, plugins: &Value) {
    let mut by_type: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for p in plugins.as_array().into_iter().flatten() {
        by_type
            .entry(text(p, &["Type"]))
            .or_default()
            .push(text(p, &["Name"]));
    }
    if by_type.is_empty() {
        return;
    }
    out.push_str("\nPlugins:");
    for (kind, names) in by_type {
        let joined = names.join(", ");
        if joined.is_empty() {
            out.push_str(&format!("\n {kind}:"));
        } else {
            out.push_str(&format!("\n {kind}:\t\t{joined}"));
        }
    }
}

/// `berth node update`
#[derive(Args, Debug)]
pub struct NodeUpdateArgs {
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long = "availability")]
    pub availability: Option<String>,
    /// Add or update a node label ("key=value")
    #[arg(long = "label-add")]
    pub label_add: Vec<String>,
    /// Remove a node label if exists
    #[arg(long = "label-rm")]
    pub label_rm: Vec<String>,
    /// Role of the node ("worker", "manager")
    #[arg(long = "role")]
    pub role: Option<String>,
    /// Node
    #[arg(value_name = "NODE")]
    pub node: String,
}

/// What to do with a node's spec: `Ok(false)` means "nothing to change, skip it".
type Merge<'a> = dyn Fn(&Value, &mut Map<String, Value>) -> Result<bool> + 'a;

/// Applies `update`'s flags to a node spec.
pub fn merge_update(args: &NodeUpdateArgs, spec: &mut Map<String, Value>) -> Result<()> {
    if let Some(role) = &args.role {
        spec.insert("Role".into(), role.clone().into());
    }
    if let Some(a) = &args.availability {
        spec.insert("Availability".into(), a.clone().into());
    }
    let labels = spec
        .entry("Labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    let labels = labels
        .as_object_mut()
        .expect("labels were just made an object");
    for (k, v) in opts::parse_labels(&args.label_add) {
        labels.insert(k, v);
    }
    for k in &args.label_rm {
        if labels.remove(k).is_none() {
            bail!("key {k} doesn't exist in node's labels");
        }
    }
    Ok(())
}

/// GET each node, let `merge` change its spec, POST it back; `success` prints per node.
async fn update_nodes(
    client: &Client,
    nodes: &[String],
    merge: &Merge<'_>,
    success: impl Fn(&str),
) -> Result<()> {
    for name in nodes {
        let node: Value = client.get_json(&format!("/nodes/{}", seg(name))).await?;
        let mut spec = node["Spec"].as_object().cloned().unwrap_or_default();
        if !merge(&node, &mut spec)? {
            continue;
        }
        let version = node["Version"]["Index"].as_u64().unwrap_or(0);
        let path = Query::new()
            .add("version", version.to_string())
            .to_path(&format!("/nodes/{}/update", seg(text(&node, &["ID"]))));
        client.post(&path, Some(&Value::Object(spec))).await?;
        success(name);
    }
    Ok(())
}

pub async fn update(client: &Client, args: NodeUpdateArgs) -> Result<()> {
    let nodes = [args.node.clone()];
    let merge = |_: &Value, spec: &mut Map<String, Value>| merge_update(&args, spec).map(|()| true);
    update_nodes(client, &nodes, &merge, |name| println!("{name}")).await
}

/// `berth node promote|demote`
#[derive(Args, Debug)]
pub struct NodesArgs {
    /// Nodes
    #[arg(value_name = "NODE", required = true)]
    pub nodes: Vec<String>,
}

/// Sets the role unless the node already has it (then says so, as docker does).
fn set_role(node: &Value, spec: &mut Map<String, Value>, role: &str) -> bool {
    if spec.get("Role").and_then(Value::as_str) == Some(role) {
        println!("Node {} is already a {role}.", text(node, &["ID"]));
        return false;
    }
    spec.insert("Role".into(), role.into());
    true
}

pub async fn promote(client: &Client, args: NodesArgs) -> Result<()> {
    let merge = |n: &Value, s: &mut Map<String, Value>| Ok(set_role(n, s, "manager"));
    update_nodes(client, &args.nodes, &merge, |name| {
        println!("Node {name} promoted to a manager in the swarm.")
    })
    .await
}

pub async fn demote(client: &Client, args: NodesArgs) -> Result<()> {
    let merge = |n: &Value, s: &mut Map<String, Value>| Ok(set_role(n, s, "worker"));
    update_nodes(client, &args.nodes, &merge, |name| {
        println!("Manager {name} demoted in the swarm.")
    })
    .await
}

/// `berth node rm`
#[derive(Args, Debug)]
pub struct NodeRmArgs {
    /// Force remove a node from the swarm
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Nodes
    #[arg(value_name = "NODE", required = true)]
    pub nodes: Vec<String>,
}

pub async fn rm(client: &Client, args: NodeRmArgs) -> Result<()> {
    let mut q = Query::new();
    q.flag("force", args.force);
    client
        .delete_each(&args.nodes, |id| q.to_path(&format!("/nodes/{}", seg(id))))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(id: &str, host: &str, leader: Option<bool>) -> Value {
        let mut n = json!({
            "ID": id,
            "Version": {"Index": 9},
            "Spec": {"Labels": {}, "Role": "manager", "Availability": "active"},
            "Description": {"Hostname": host, "Engine": {"EngineVersion": "20.10.24+dfsg1"}},
            "Status": {"State": "ready", "Addr": "127.0.0.1"},
        });
        if let Some(l) = leader {
            n["ManagerStatus"] =
                json!({"Leader": l, "Reachability": "reachable", "Addr": "127.0.0.1:2377"});
        }
        n
    }

    #[test]
    fn ls_table_matches_docker() {
        let info = json!({"NodeID": "e4oehw1ynxcnssl8zumr9lmfa"});
        let rows = vec![node_row(
            &node("e4oehw1ynxcnssl8zumr9lmfa", "vm", Some(true)),
            &info,
        )];
        assert_eq!(
            render_nodes(&rows, None, false).expect("render"),
            "ID                            HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n\
             e4oehw1ynxcnssl8zumr9lmfa *   vm         Ready     Active         Leader           20.10.24+dfsg1\n"
        );
    }

    #[test]
    fn ls_rows_for_other_nodes_quiet_and_json() {
        let info = json!({"NodeID": "aaa"});
        let rows = vec![
            node_row(&node("aaa", "n1", Some(true)), &info),
            node_row(&node("bbb", "n2", Some(false)), &info),
            node_row(&node("ccc", "n10", None), &info),
        ];
        assert_eq!(rows[1]["ManagerStatus"], "Reachable");
        assert_eq!(rows[1]["Self"], false);
        assert_eq!(rows[2]["ManagerStatus"], "");
        assert_eq!(
            render_nodes(&rows, None, true).expect("render"),
            "aaa\nbbb\nccc\n"
        );
        assert_eq!(
            render_nodes(&rows[..1], Some("json"), false).expect("render"),
            "{\"Availability\":\"Active\",\"EngineVersion\":\"20.10.24+dfsg1\",\"Hostname\":\"n1\",\"ID\":\"aaa\",\"ManagerStatus\":\"Leader\",\"Self\":true,\"Status\":\"Ready\",\"TLSStatus\":\"Unknown\"}\n"
        );
        assert_eq!(
            render_nodes(&rows, Some("{{.Hostname}} {{.Self}}"), false).expect("render"),
            "n1 true\nn2 false\nn10 false\n"
        );
    }

    #[test]
    fn words_and_natural_order() {
        assert_eq!(pretty("ready"), "Ready");
        assert_eq!(pretty("unreachable"), "Unreachable");
        assert_eq!(pretty("DOWN"), "Down");
        assert_eq!(pretty(""), "");
        let mut hosts = vec!["node10", "node2", "alpha", "node1"];
        hosts.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(hosts, ["alpha", "node1", "node2", "node10"]);
    }

    #[test]
    fn update_merges_labels_role_and_availability() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: NodeUpdateArgs,
        }
        let t = T::try_parse_from([
            "t",
            "--label-add",
            "foo=bar",
            "--label-add",
            "bare",
            "--label-rm",
            "old",
            "--availability",
            "drain",
            "n1",
        ])
        .expect("parse");
        let mut spec = json!({"Labels": {"old": "x"}, "Role": "manager", "Availability": "active"})
            .as_object()
            .cloned()
            .expect("object");
        merge_update(&t.a, &mut spec).expect("merge");
        assert_eq!(
            Value::Object(spec),
            json!({"Labels": {"foo": "bar", "bare": ""}, "Role": "manager", "Availability": "drain"})
        );
        let t = T::try_parse_from(["t", "--label-rm", "nope", "n1"]).expect("parse");
        let mut spec = Map::new();
        assert_eq!(
            merge_update(&t.a, &mut spec)
                .expect_err("missing key")
                .to_string(),
            "key nope doesn't exist in node's labels"
        );
    }

    #[test]
    fn pretty_inspect() {
        let mut n = node("e4oehw1ynxcnssl8zumr9lmfa", "vm", Some(true));
        n["CreatedAt"] = json!("2026-11-27T22:30:46.67106768Z");
        n["Spec"]["Labels"] = json!({"foo": "bar"});
        n["Description"]["Platform"] = json!({"Architecture": "x86_64", "OS": "linux"});
        n["Description"]["Resources"] =
            json!({"NanoCPUs": 2_000_000_000i64, "MemoryBytes": 25_276_510_208i64});
        n["Description"]["Engine"]["Plugins"] = json!([
            {"Type": "Log", "Name": "json-file"},
            {"Type": "Network", "Name": "bridge"},
            {"Type": "Log", "Name": "local"}
        ]);
        assert_eq!(
            pretty_node(&n),
            "ID:\t\t\te4oehw1ynxcnssl8zumr9lmfa\n\
             Labels:\n - foo=bar\n\
             Hostname:              \tvm\n\
             Joined at:             \t2026-11-27 22:30:46.67106768 +0000 utc\n\
             Status:\n State:\t\t\tReady\n Availability:         \tActive\n Address:\t\t127.0.0.1\n\
             Manager Status:\n Address:\t\t127.0.0.1:2377\n Raft Status:\t\tReachable\n Leader:\t\tYes\n\
             Platform:\n Operating System:\tlinux\n Architecture:\t\tx86_64\n\
             Resources:\n CPUs:\t\t\t2\n Memory:\t\t23.54GiB\n\
             Plugins:\n Log:\t\tjson-file, local\n Network:\t\tbridge\n\
             Engine Version:\t\t20.10.24+dfsg1"
        );
    }
}
