//! `swarm init|join|join-token|leave|update|unlock-key|unlock|ca`: this node's membership of a
//! cluster, with the docker CLI's requests, texts and exit codes (the commands it prints say
//! `berth`).
//!
//! ```text
//!  init ──► POST /swarm/init ──► GET /nodes/{id} + GET /swarm ──► "berth swarm join --token ..."
//!  join ──► POST /swarm/join ──► GET /info (ControlAvailable: manager or worker)
//!  update / join-token --rotate / unlock-key --rotate / ca --rotate
//!       ──► GET /swarm ──► merge the flags into Spec ──► POST /swarm/update?version=N
//! ```
//!
//! Spec fields are only sent when their flag was given, so the daemon keeps its defaults.

use std::io::BufRead;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::client::{seg, Client, Query};
use crate::opts::parse_go_duration_nanos;

/// Where a manager listens unless `--listen-addr` says otherwise.
const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:2377";
const DEFAULT_SWARM_PORT: &str = "2377";

/// `berth swarm ...`
#[derive(Subcommand, Debug)]
pub enum SwarmCmd {
    /// Initialize a swarm
    Init(InitArgs),
    /// Join a swarm as a node and/or manager
    Join(JoinArgs),
    /// Manage join tokens
    JoinToken(JoinTokenArgs),
    /// Leave the swarm
    Leave(LeaveArgs),
    /// Update the swarm
    Update(UpdateArgs),
    /// Manage the unlock key
    UnlockKey(UnlockKeyArgs),
    /// Unlock swarm
    Unlock,
    /// Display and rotate the root CA
    Ca(CaArgs),
}

pub async fn dispatch(client: &Client, cmd: SwarmCmd) -> Result<()> {
    match cmd {
        SwarmCmd::Init(a) => init(client, a).await,
        SwarmCmd::Join(a) => join(client, a).await,
        SwarmCmd::JoinToken(a) => join_token(client, a).await,
        SwarmCmd::Leave(a) => leave(client, a).await,
        SwarmCmd::Update(a) => update(client, a).await,
        SwarmCmd::UnlockKey(a) => unlock_key(client, a).await,
        SwarmCmd::Unlock => unlock(client).await,
        SwarmCmd::Ca(a) => ca(client, a).await,
    }
}

/// The cluster settings `init` and `update` share; `None` means "flag not given".
#[derive(Args, Debug, Default)]
pub struct SpecFlags {
    /// Task history retention limit (default 5)
    #[arg(long = "task-history-limit", allow_hyphen_values = true)]
    pub task_history_limit: Option<i64>,
    /// Dispatcher heartbeat period (ns|us|ms|s|m|h) (default 5s)
    #[arg(long = "dispatcher-heartbeat", value_parser = parse_go_duration_nanos)]
    pub dispatcher_heartbeat: Option<i64>,
    /// Number of additional Raft snapshots to retain
    #[arg(long = "max-snapshots")]
    pub max_snapshots: Option<u64>,
    /// Number of log entries between Raft snapshots (default 10000)
    #[arg(long = "snapshot-interval")]
    pub snapshot_interval: Option<u64>,
    /// Validity period for node certificates (ns|us|ms|s|m|h) (default 2160h0m0s)
    #[arg(long = "cert-expiry", value_parser = parse_go_duration_nanos)]
    pub cert_expiry: Option<i64>,
}

impl SpecFlags {
    /// Writes the given flags into a swarm `Spec` object (missing sections are created).
    pub fn merge_into(&self, spec: &mut Value, autolock: Option<bool>) {
        if let Some(n) = self.task_history_limit {
            section(spec, "Orchestration").insert("TaskHistoryRetentionLimit".into(), n.into());
        }
        if let Some(n) = self.dispatcher_heartbeat {
            section(spec, "Dispatcher").insert("HeartbeatPeriod".into(), n.into());
        }
        if let Some(n) = self.max_snapshots {
            section(spec, "Raft").insert("KeepOldSnapshots".into(), n.into());
        }
        if let Some(n) = self.snapshot_interval {
            section(spec, "Raft").insert("SnapshotInterval".into(), n.into());
        }
        if let Some(n) = self.cert_expiry {
            section(spec, "CAConfig").insert("NodeCertExpiry".into(), n.into());
        }
        if let Some(b) = autolock {
            section(spec, "EncryptionConfig").insert("AutoLockManagers".into(), b.into());
        }
    }
}

/// `spec[name]` as an object, created (or replaced when it is not an object) as needed.
fn section<'a>(spec: &'a mut Value, name: &str) -> &'a mut Map<String, Value> {
    if !spec.is_object() {
        *spec = Value::Object(Map::new());
    }
    let map = spec.as_object_mut().expect("spec was just made an object");
    let entry = map
        .entry(name.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry
        .as_object_mut()
        .expect("section was just made an object")
}

/// The `Spec` of an init request: what docker's zero-valued spec marshals to, plus the flags.
pub fn init_spec(flags: &SpecFlags, autolock: bool) -> Value {
    let mut spec = json!({
        "Labels": null,
        "Orchestration": {},
        "Raft": {"ElectionTick": 0, "HeartbeatTick": 0},
        "Dispatcher": {},
        "CAConfig": {},
        "TaskDefaults": {},
        "EncryptionConfig": {"AutoLockManagers": false},
    });
    flags.merge_into(&mut spec, autolock.then_some(true));
    spec
}

/// Normalises a `--listen-addr` value to `host:port` as docker's node-address flag does:
/// the port defaults to 2377 and an empty host to 0.0.0.0.
pub fn parse_node_addr(value: &str) -> Result<String, String> {
    let v = value.strip_prefix("tcp://").unwrap_or(value);
    if v.contains("://") {
        return Err(format!("invalid proto, expected tcp: {value}"));
    }
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("invalid address: {value}"))?;
        (format!("[{h}]"), after.strip_prefix(':').unwrap_or(after))
    } else if v.matches(':').count() > 1 {
        (format!("[{v}]"), "")
    } else {
        match v.split_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (v.to_string(), ""),
        }
    };
    let host = if host.is_empty() {
        "0.0.0.0".to_string()
    } else {
        host
    };
    let port = if port.is_empty() {
        DEFAULT_SWARM_PORT
    } else {
        port
    };
    if port.parse::<u16>().is_err() {
        return Err(format!("invalid port: {port}"));
    }
    Ok(format!("{host}:{port}"))
}

/// Validates a `--default-addr-pool` CIDR and returns it with the host bits cleared, as
/// Go's `net.IPNet.String` prints it.
pub fn parse_addr_pool(value: &str) -> Result<String, String> {
    let bad = || format!("invalid CIDR address: {value}");
    let (ip, len) = value.trim().split_once('/').ok_or_else(bad)?;
    let len: u32 = len.parse().map_err(|_| bad())?;
    match ip.parse::<std::net::IpAddr>().map_err(|_| bad())? {
        std::net::IpAddr::V4(a) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            let net = std::net::Ipv4Addr::from(u32::from(a) & mask);
            Ok(format!("{net}/{len}"))
        }
        std::net::IpAddr::V6(a) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            let net = std::net::Ipv6Addr::from(u128::from(a) & mask);
            Ok(format!("{net}/{len}"))
        }
        _ => Err(bad()),
    }
}

/// Checks an `--availability` value: `active`, `pause` or `drain` (any case).
fn availability(value: Option<&str>) -> Result<String> {
    let Some(v) = value else {
        return Ok(String::new());
    };
    let lower = v.to_ascii_lowercase();
    match lower.as_str() {
        "active" | "pause" | "drain" => Ok(lower),
        _ => bail!("invalid availability {v:?}, only active, pause and drain are supported"),
    }
}

/// `berth swarm init`
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Listen address (format: "<ip|interface>[:port]") (default 0.0.0.0:2377)
    #[arg(long = "listen-addr", value_parser = parse_node_addr)]
    pub listen_addr: Option<String>,
    /// Advertised address (format: "<ip|interface>[:port]")
    #[arg(long = "advertise-addr")]
    pub advertise_addr: Option<String>,
    /// Address or interface to use for data path traffic (format: "<ip|interface>")
    #[arg(long = "data-path-addr")]
    pub data_path_addr: Option<String>,
    /// Port number to use for data path traffic (1024 - 49151). If no value is set or is set
    /// to 0, the default port (4789) is used.
    #[arg(long = "data-path-port")]
    pub data_path_port: Option<u32>,
    /// default address pool in CIDR format
    #[arg(long = "default-addr-pool", value_delimiter = ',', value_parser = parse_addr_pool)]
    pub default_addr_pool: Vec<String>,
    /// default address pool subnet mask length
    #[arg(long = "default-addr-pool-mask-length", default_value_t = 24)]
    pub default_addr_pool_mask_length: u32,
    /// Force create a new cluster from current state
    #[arg(long = "force-new-cluster")]
    pub force_new_cluster: bool,
    /// Enable manager autolocking (requiring an unlock key to start a stopped manager)
    #[arg(long = "autolock")]
    pub autolock: bool,
    /// Availability of the node ("active", "pause", "drain") (default "active")
    #[arg(long = "availability")]
    pub availability: Option<String>,
    #[command(flatten)]
    pub spec: SpecFlags,
}

/// The `POST /swarm/init` body.
pub fn init_request(args: &InitArgs) -> Result<Value> {
    Ok(json!({
        "ListenAddr": args.listen_addr.as_deref().unwrap_or(DEFAULT_LISTEN_ADDR),
        "AdvertiseAddr": args.advertise_addr.as_deref().unwrap_or(""),
        "DataPathAddr": args.data_path_addr.as_deref().unwrap_or(""),
        "DataPathPort": args.data_path_port.unwrap_or(0),
        "ForceNewCluster": args.force_new_cluster,
        "Spec": init_spec(&args.spec, args.autolock),
        "AutoLockManagers": args.autolock,
        "Availability": availability(args.availability.as_deref())?,
        "DefaultAddrPool": args.default_addr_pool,
        "SubnetSize": args.default_addr_pool_mask_length,
    }))
}

pub async fn init(client: &Client, args: InitArgs) -> Result<()> {
    let body = init_request(&args)?;
    let node_id: String = match client.post_json("/swarm/init", Some(&body)).await {
        Ok(id) => id,
        Err(e) => {
            let text = format!("{e:#}");
            if text.contains("could not choose an IP address to advertise")
                || text.contains("could not find the system's IP address")
            {
                bail!("{text} - specify one with --advertise-addr");
            }
            return Err(e);
        }
    };
    print!("Swarm initialized: current node ({node_id}) is now a manager.\n\n");
    print_join_command(client, &node_id, true, false).await?;
    println!(
        "To add a manager to this swarm, run 'berth swarm join-token manager' and follow the instructions."
    );
    if args.autolock {
        let key = fetch_unlock_key(client).await?;
        print!("{}", unlock_text(&key));
    }
    Ok(())
}

/// The text `join-token` and `init` print for one role.
pub fn join_text(role: &str, token: &str, addr: &str) -> String {
    format!(
        "To add a {role} to this swarm, run the following command:\n\n    berth swarm join --token {token} {addr}\n\n"
    )
}

/// Prints the join commands of a manager node (nothing for a worker, as docker).
async fn print_join_command(
    client: &Client,
    node_id: &str,
    worker: bool,
    manager: bool,
) -> Result<()> {
    let node: Value = client.get_json(&format!("/nodes/{}", seg(node_id))).await?;
    let swarm: Value = client.get_json("/swarm").await?;
    let Some(addr) = node["ManagerStatus"]["Addr"].as_str() else {
        return Ok(());
    };
    let tokens = &swarm["JoinTokens"];
    if worker {
        print!(
            "{}",
            join_text("worker", tokens["Worker"].as_str().unwrap_or(""), addr)
        );
    }
    if manager {
        print!(
            "{}",
            join_text("manager", tokens["Manager"].as_str().unwrap_or(""), addr)
        );
    }
    Ok(())
}

/// `berth swarm join`
#[derive(Args, Debug)]
pub struct JoinArgs {
    /// Listen address (format: "<ip|interface>[:port]") (default 0.0.0.0:2377)
    #[arg(long = "listen-addr", value_parser = parse_node_addr)]
    pub listen_addr: Option<String>,
    /// Advertised address (format: "<ip|interface>[:port]")
    #[arg(long = "advertise-addr")]
    pub advertise_addr: Option<String>,
    /// Address or interface to use for data path traffic (format: "<ip|interface>")
    #[arg(long = "data-path-addr")]
    pub data_path_addr: Option<String>,
    /// Token for entry into the swarm
    #[arg(long = "token")]
    pub token: Option<String>,
    /// Availability of the node ("active", "pause", "drain") (default "active")
    #[arg(long = "availability")]
    pub availability: Option<String>,
    /// The address of a manager
    #[arg(value_name = "HOST:PORT")]
    pub remote: String,
}

pub async fn join(client: &Client, args: JoinArgs) -> Result<()> {
    let body = json!({
        "ListenAddr": args.listen_addr.as_deref().unwrap_or(DEFAULT_LISTEN_ADDR),
        "AdvertiseAddr": args.advertise_addr.as_deref().unwrap_or(""),
        "DataPathAddr": args.data_path_addr.as_deref().unwrap_or(""),
        "RemoteAddrs": [args.remote],
        "JoinToken": args.token.as_deref().unwrap_or(""),
        "Availability": availability(args.availability.as_deref())?,
    });
    client.post("/swarm/join", Some(&body)).await?;
    let info: Value = client.get_json("/info").await?;
    if info["Swarm"]["ControlAvailable"].as_bool() == Some(true) {
        println!("This node joined a swarm as a manager.");
    } else {
        println!("This node joined a swarm as a worker.");
    }
    Ok(())
}

/// `berth swarm join-token`
#[derive(Args, Debug)]
pub struct JoinTokenArgs {
    /// Rotate join token
    #[arg(long = "rotate")]
    pub rotate: bool,
    /// Only display token
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// worker or manager
    #[arg(value_name = "worker|manager")]
    pub role: String,
}

/// `POST /swarm/update` with the cluster's current version and spec.
async fn update_swarm(client: &Client, swarm: &Value, spec: &Value, rotate: Rotate) -> Result<()> {
    let version = swarm["Version"]["Index"]
        .as_u64()
        .ok_or_else(|| anyhow!("the daemon's swarm has no version"))?;
    let mut q = Query::new();
    q.add("version", version.to_string())
        .add("rotateWorkerToken", rotate.worker.to_string())
        .add("rotateManagerToken", rotate.manager.to_string())
        .add("rotateManagerUnlockKey", rotate.unlock_key.to_string());
    client.post(&q.to_path("/swarm/update"), Some(spec)).await?;
    Ok(())
}

/// Which secrets a swarm update rotates.
#[derive(Debug, Clone, Copy, Default)]
struct Rotate {
    worker: bool,
    manager: bool,
    unlock_key: bool,
}

pub async fn join_token(client: &Client, args: JoinTokenArgs) -> Result<()> {
    let worker = args.role == "worker";
    let manager = args.role == "manager";
    if !worker && !manager {
        bail!("unknown role {}", args.role);
    }
    if args.rotate {
        let swarm: Value = client.get_json("/swarm").await?;
        let rotate = Rotate {
            worker,
            manager,
            ..Rotate::default()
        };
        update_swarm(client, &swarm, &swarm["Spec"], rotate).await?;
        if !args.quiet {
            print!("Successfully rotated {} join token.\n\n", args.role);
        }
    }
    // Read again: a rotation changed the tokens.
    let swarm: Value = client.get_json("/swarm").await?;
    if args.quiet {
        let key = if worker { "Worker" } else { "Manager" };
        println!("{}", swarm["JoinTokens"][key].as_str().unwrap_or(""));
        return Ok(());
    }
    let info: Value = client.get_json("/info").await?;
    let node_id = info["Swarm"]["NodeID"].as_str().unwrap_or("");
    print_join_command(client, node_id, worker, manager).await
}

/// `berth swarm leave`
#[derive(Args, Debug)]
pub struct LeaveArgs {
    /// Force this node to leave the swarm, ignoring warnings
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

pub async fn leave(client: &Client, args: LeaveArgs) -> Result<()> {
    let mut q = Query::new();
    q.flag("force", args.force);
    client.post(&q.to_path("/swarm/leave"), None).await?;
    println!("Node left the swarm.");
    Ok(())
}

/// `berth swarm update`
#[derive(Args, Debug)]
#[command(arg_required_else_help = true)]
pub struct UpdateArgs {
    /// Change manager autolocking setting (true|false)
    #[arg(long = "autolock", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub autolock: Option<bool>,
    #[command(flatten)]
    pub spec: SpecFlags,
}

pub async fn update(client: &Client, args: UpdateArgs) -> Result<()> {
    let swarm: Value = client.get_json("/swarm").await?;
    let mut spec = swarm["Spec"].clone();
    let was_locked = spec["EncryptionConfig"]["AutoLockManagers"].as_bool() == Some(true);
    args.spec.merge_into(&mut spec, args.autolock);
    let now_locked = spec["EncryptionConfig"]["AutoLockManagers"].as_bool() == Some(true);
    update_swarm(client, &swarm, &spec, Rotate::default()).await?;
    println!("Swarm updated.");
    if now_locked && !was_locked {
        let key = fetch_unlock_key(client).await?;
        print!("{}", unlock_text(&key));
    }
    Ok(())
}

/// `GET /swarm/unlockkey`.
async fn fetch_unlock_key(client: &Client) -> Result<String> {
    let resp: Value = client
        .get_json("/swarm/unlockkey")
        .await
        .context("could not fetch unlock key")?;
    Ok(resp["UnlockKey"].as_str().unwrap_or("").to_string())
}

/// What docker prints about a new unlock key (nothing for an empty key).
pub fn unlock_text(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    format!(
        "To unlock a swarm manager after it restarts, run the `berth swarm unlock`\ncommand and provide the following key:\n\n    {key}\n\nRemember to store this key in a password manager, since without it you\nwill not be able to restart the manager.\n"
    )
}

/// `berth swarm unlock-key`
#[derive(Args, Debug)]
pub struct UnlockKeyArgs {
    /// Rotate unlock key
    #[arg(long = "rotate")]
    pub rotate: bool,
    /// Only display token
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

pub async fn unlock_key(client: &Client, args: UnlockKeyArgs) -> Result<()> {
    if args.rotate {
        let swarm: Value = client.get_json("/swarm").await?;
        if swarm["Spec"]["EncryptionConfig"]["AutoLockManagers"].as_bool() != Some(true) {
            bail!("cannot rotate because autolock is not turned on");
        }
        let rotate = Rotate {
            unlock_key: true,
            ..Rotate::default()
        };
        update_swarm(client, &swarm, &swarm["Spec"], rotate).await?;
        if !args.quiet {
            println!("Successfully rotated manager unlock key.");
        }
    }
    let key = fetch_unlock_key(client).await?;
    if key.is_empty() {
        bail!("no unlock key is set");
    }
    if args.quiet {
        println!("{key}");
    } else {
        print!("{}", unlock_text(&key));
    }
    Ok(())
}

pub async fn unlock(client: &Client) -> Result<()> {
    let info: Value = client.get_json("/info").await?;
    match info["Swarm"]["LocalNodeState"].as_str().unwrap_or("") {
        "inactive" => bail!("Error: This node is not part of a swarm"),
        "locked" => {}
        _ => bail!("Error: swarm is not locked"),
    }
    let key = read_key("Enter unlock key: ")?;
    client
        .post("/swarm/unlock", Some(&json!({ "UnlockKey": key })))
        .await?;
    Ok(())
}

/// Reads the unlock key: without echo from a terminal, else the first line of stdin.
fn read_key(prompt: &str) -> Result<String> {
    use std::io::Write;
    let tty = crate::tty::stdin_is_tty();
    let _no_echo = if tty {
        print!("{prompt}");
        let _ = std::io::stdout().flush();
        crate::tty::NoEcho::enter()
    } else {
        None
    };
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the unlock key from stdin")?;
    if tty {
        println!();
    }
    Ok(line.trim().to_string())
}

/// `berth swarm ca`
#[derive(Args, Debug)]
pub struct CaArgs {
    /// Rotate the swarm CA - if no certificate or key are provided, new ones will be generated
    #[arg(long = "rotate")]
    pub rotate: bool,
    /// Path to the PEM-formatted root CA certificate to use for the new cluster
    #[arg(long = "ca-cert")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Path to the PEM-formatted root CA key to use for the new cluster
    #[arg(long = "ca-key")]
    pub ca_key: Option<std::path::PathBuf>,
    /// Validity period for node certificates (ns|us|ms|s|m|h) (default 2160h0m0s)
    #[arg(long = "cert-expiry", value_parser = parse_go_duration_nanos)]
    pub cert_expiry: Option<i64>,
    /// Exit immediately instead of waiting for the root rotation to converge
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// Reads a `--ca-cert`/`--ca-key` file, which must hold PEM.
fn read_pem(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {}", path.display()))?;
    if !text.contains("-----BEGIN ") {
        bail!("file contents must be in PEM format");
    }
    Ok(text)
}

/// Prints the cluster's root CA certificate.
fn print_trust_root(swarm: &Value) -> Result<()> {
    let root = swarm["TLSInfo"]["TrustRoot"].as_str().unwrap_or("");
    if root.is_empty() {
        bail!("No CA information available");
    }
    println!("{}", root.trim());
    Ok(())
}

pub async fn ca(client: &Client, args: CaArgs) -> Result<()> {
    let swarm: Value = client.get_json("/swarm").await?;
    if !args.rotate {
        for (given, flag) in [
            (args.ca_cert.is_some(), "ca-cert"),
            (args.ca_key.is_some(), "ca-key"),
            (args.cert_expiry.is_some(), "cert-expiry"),
        ] {
            if given {
                bail!("`--{flag}` flag requires the `--rotate` flag to update the CA");
            }
        }
        return print_trust_root(&swarm);
    }
    if args.ca_cert.is_some() && args.ca_key.is_none() {
        bail!("the --ca-cert flag requires that a --ca-key flag and/or --external-ca flag be provided as well");
    }
    let cert = args.ca_cert.as_deref().map(read_pem).transpose()?;
    let key = args.ca_key.as_deref().map(read_pem).transpose()?;
    let mut spec = swarm["Spec"].clone();
    let ca = section(&mut spec, "CAConfig");
    if let Some(n) = args.cert_expiry {
        ca.insert("NodeCertExpiry".into(), n.into());
    }
    ca.insert(
        "SigningCACert".into(),
        cert.clone().unwrap_or_default().into(),
    );
    ca.insert(
        "SigningCAKey".into(),
        key.clone().unwrap_or_default().into(),
    );
    if cert.is_none() && key.is_none() {
        let next = ca.get("ForceRotate").and_then(Value::as_u64).unwrap_or(0) + 1;
        ca.insert("ForceRotate".into(), next.into());
    }
    update_swarm(client, &swarm, &spec, Rotate::default()).await?;
    if args.detach {
        return Ok(());
    }
    let swarm = wait_for_rotation(client, args.quiet).await?;
    if args.quiet {
        return Ok(());
    }
    print_trust_root(&swarm)
}

/// Polls `/swarm` and `/nodes` until the root rotation is over: no rotation in progress,
/// and every node holding a certificate from the cluster's root and trusting only it (what
/// the docker CLI waits for). Returns the final `/swarm`.
async fn wait_for_rotation(client: &Client, quiet: bool) -> Result<Value> {
    let mut shown = None;
    loop {
        let swarm: Value = client.get_json("/swarm").await?;
        let nodes: Vec<Value> = client.get_json("/nodes").await?;
        let want = &swarm["TLSInfo"];
        let on_root = |n: &&Value| {
            let t = &n["Description"]["TLSInfo"];
            t["CertIssuerSubject"] == want["CertIssuerSubject"]
                && t["CertIssuerPublicKey"] == want["CertIssuerPublicKey"]
        };
        let certs = nodes.iter().filter(on_root).count();
        let trusts = nodes
            .iter()
            .filter(|n| n["Description"]["TLSInfo"]["TrustRoot"] == want["TrustRoot"])
            .count();
        let rotating = swarm["RootRotationInProgress"].as_bool().unwrap_or(false);
        if !rotating && certs == nodes.len() && trusts == nodes.len() {
            return Ok(swarm);
        }
        let now = (rotating, certs, trusts, nodes.len());
        if !quiet && shown != Some(now) {
            eprintln!(
                "rotating the root CA: {certs}/{} nodes with a certificate from the root, {trusts}/{} trusting it",
                nodes.len(),
                nodes.len()
            );
            shown = Some(now);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_get_docker_defaults() {
        assert_eq!(
            parse_node_addr("127.0.0.1").as_deref(),
            Ok("127.0.0.1:2377")
        );
        assert_eq!(
            parse_node_addr("127.0.0.1:4500").as_deref(),
            Ok("127.0.0.1:4500")
        );
        assert_eq!(parse_node_addr(":4500").as_deref(), Ok("0.0.0.0:4500"));
        assert_eq!(
            parse_node_addr("tcp://eth0:2400").as_deref(),
            Ok("eth0:2400")
        );
        assert_eq!(parse_node_addr("[::1]").as_deref(), Ok("[::1]:2377"));
        assert_eq!(parse_node_addr("::1").as_deref(), Ok("[::1]:2377"));
        assert!(parse_node_addr("1.2.3.4:http").is_err());
        assert!(parse_node_addr("udp://1.2.3.4").is_err());
    }

    #[test]
    fn address_pools_are_networks() {
        assert_eq!(
            parse_addr_pool("10.20.1.5/16").as_deref(),
            Ok("10.20.0.0/16")
        );
        assert_eq!(parse_addr_pool("fd00::1/64").as_deref(), Ok("fd00::/64"));
        assert!(parse_addr_pool("10.0.0.0").is_err());
        assert!(parse_addr_pool("10.0.0.0/33").is_err());
    }

    #[test]
    fn init_body_matches_the_docker_cli() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: InitArgs,
        }
        let t = T::try_parse_from([
            "t",
            "--advertise-addr",
            "127.0.0.1",
            "--listen-addr",
            "127.0.0.1:2377",
        ])
        .expect("parse");
        assert_eq!(
            init_request(&t.a).expect("request"),
            serde_json::from_str::<Value>(
                r#"{"ListenAddr":"127.0.0.1:2377","AdvertiseAddr":"127.0.0.1","DataPathAddr":"","DataPathPort":0,"ForceNewCluster":false,"Spec":{"Labels":null,"Orchestration":{},"Raft":{"ElectionTick":0,"HeartbeatTick":0},"Dispatcher":{},"CAConfig":{},"TaskDefaults":{},"EncryptionConfig":{"AutoLockManagers":false}},"AutoLockManagers":false,"Availability":"","DefaultAddrPool":[],"SubnetSize":24}"#
            )
            .expect("json")
        );
        let t = T::try_parse_from([
            "t",
            "--cert-expiry",
            "1h",
            "--task-history-limit",
            "2",
            "--availability",
            "Drain",
            "--default-addr-pool",
            "10.10.0.0/16,10.20.0.0/16",
        ])
        .expect("parse");
        let body = init_request(&t.a).expect("request");
        assert_eq!(
            body["Spec"]["CAConfig"]["NodeCertExpiry"],
            3_600_000_000_000i64
        );
        assert_eq!(
            body["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"],
            2
        );
        assert_eq!(body["Availability"], "drain");
        assert_eq!(
            body["DefaultAddrPool"],
            json!(["10.10.0.0/16", "10.20.0.0/16"])
        );
        assert_eq!(body["ListenAddr"], DEFAULT_LISTEN_ADDR);
        assert!(T::try_parse_from(["t", "--cert-expiry", "90d"]).is_err());
        let t = T::try_parse_from(["t", "--availability", "sleep"]).expect("parse");
        assert_eq!(
            init_request(&t.a)
                .expect_err("bad availability")
                .to_string(),
            "invalid availability \"sleep\", only active, pause and drain are supported"
        );
    }

    #[test]
    fn update_merges_only_given_flags() {
        let mut spec = json!({
            "Name": "default",
            "Orchestration": {"TaskHistoryRetentionLimit": 5},
            "Dispatcher": {"HeartbeatPeriod": 5_000_000_000i64},
            "CAConfig": {"NodeCertExpiry": 7_776_000_000_000_000i64},
            "EncryptionConfig": {"AutoLockManagers": false},
        });
        let flags = SpecFlags {
            dispatcher_heartbeat: Some(10_000_000_000),
            snapshot_interval: Some(500),
            ..SpecFlags::default()
        };
        flags.merge_into(&mut spec, None);
        assert_eq!(spec["Dispatcher"]["HeartbeatPeriod"], 10_000_000_000i64);
        assert_eq!(spec["Raft"]["SnapshotInterval"], 500);
        assert_eq!(spec["Orchestration"]["TaskHistoryRetentionLimit"], 5);
        assert_eq!(spec["CAConfig"]["NodeCertExpiry"], 7_776_000_000_000_000i64);
        assert_eq!(spec["EncryptionConfig"]["AutoLockManagers"], false);
        assert_eq!(spec["Name"], "default");
    }

    #[test]
    fn printed_commands_say_berth() {
        assert_eq!(
            join_text("worker", "SWMTKN-1-abc", "127.0.0.1:2377"),
            "To add a worker to this swarm, run the following command:\n\n    berth swarm join --token SWMTKN-1-abc 127.0.0.1:2377\n\n"
        );
        assert!(unlock_text("").is_empty());
        assert!(unlock_text("SWMKEY-1-x").contains("\n    SWMKEY-1-x\n\n"));
    }
}
