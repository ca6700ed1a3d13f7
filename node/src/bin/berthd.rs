//! berthd: the Berth daemon. Parses flags (mirroring dockerd's) and `--config-file`, sets up
//! logging, opens the engine and serves the Docker Engine API until SIGTERM/SIGINT. Running
//! containers are left running on exit (their shims own them) and re-adopted on the next start.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use berth_node::cluster::autojoin::AutoJoinConfig;
use berth_node::config::DaemonConfig;
use berth_node::container::logconfig;
use berth_node::container::model::LogConfig;
use berth_node::engine::Engine;
use berth_node::network::bridge;
use berth_node::network::ipam::Pool;
use berth_node::network::ipam6::Pool6;
use berth_raft::ca::Role;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "berthd",
    version,
    about = "Berth: a container engine that speaks the Docker Engine API"
)]
struct Flags {
    /// Root of persistent state.
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Root of runtime state (shim sockets, bundles).
    #[arg(long)]
    exec_root: Option<PathBuf>,
    /// Socket(s) to listen on: unix:///path (tcp:// needs --tlsverify).
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Write the daemon's pid here.
    #[arg(long)]
    pidfile: Option<PathBuf>,
    /// Parent cgroup for all containers.
    #[arg(long)]
    cgroup_parent: Option<String>,
    /// debug, info, warn, error.
    #[arg(short = 'l', long)]
    log_level: Option<String>,
    /// JSON settings file (daemon.json keys: data-root, exec-root, hosts, pidfile, cgroup-parent,
    /// log-level, default-runtime, runtimes, live-restore, bridge, bip, default-address-pools,
    /// ipv6, fixed-cidr-v6,
    /// insecure-registries, registry-certs-dir, max-concurrent-downloads,
    /// max-concurrent-uploads, log-driver, log-opts, group, cluster).
    #[arg(long)]
    config_file: Option<PathBuf>,
    /// Runtime used when a container names none: `berth` (built-in) or an --add-runtime name.
    #[arg(long)]
    default_runtime: Option<String>,
    /// Extra OCI runtime, NAME=PATH (repeatable), e.g. runc=/usr/sbin/runc.
    #[arg(long = "add-runtime")]
    add_runtime: Vec<String>,
    /// Require mutual TLS on tcp:// listeners.
    #[arg(long)]
    tlsverify: bool,
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    #[arg(long)]
    tlscert: Option<PathBuf>,
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Keep containers running when the daemon stops (default true).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    live_restore: bool,
    /// Device of the default bridge network (default berth0); `none`: no default bridge,
    /// and containers created without --network get none.
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// Address and prefix of the default bridge, e.g. 172.30.0.1/16.
    #[arg(long)]
    bip: Option<String>,
    /// Pool for networks created without --subnet: base=CIDR,size=N (repeatable; an IPv6
    /// base makes an IPv6 pool, for --ipv6 networks).
    #[arg(long = "default-address-pool")]
    default_address_pool: Vec<String>,
    /// IPv6 on the default bridge network (in --fixed-cidr-v6, else an IPv6 pool's subnet,
    /// else a unique-local /64).
    #[arg(long)]
    ipv6: bool,
    /// The default bridge's IPv6 subnet, e.g. 2001:db8:1::/64.
    #[arg(long)]
    fixed_cidr_v6: Option<String>,
    /// Registry reached without TLS verification (or over plain HTTP), host[:port] or CIDR
    /// (repeatable). Loopback registries are always allowed.
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// Per-registry CA certificates: <dir>/<host:port>/*.crt (default /etc/berth/certs.d).
    #[arg(long)]
    registry_certs_dir: Option<PathBuf>,
    /// Layers downloaded in parallel per pull (default 3).
    #[arg(long)]
    max_concurrent_downloads: Option<usize>,
    /// Layers uploaded in parallel per push (default 5).
    #[arg(long)]
    max_concurrent_uploads: Option<usize>,
    /// Log driver of containers that name none: json-file (default), local or none.
    #[arg(long)]
    log_driver: Option<String>,
    /// Default log driver option, KEY=VALUE (repeatable), e.g. max-size=10m.
    #[arg(long = "log-opt")]
    log_opts: Vec<String>,
    /// Group owning the unix sockets, which are then mode 0660 (as dockerd's -G).
    #[arg(short = 'G', long)]
    group: Option<String>,
    /// Cluster: the join secret shared by every node (at least 32 characters). Prefer
    /// --cluster-secret-file: command lines are visible to every user.
    #[arg(long, env = "BERTH_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: Option<String>,
    /// Cluster: a file holding the join secret.
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// Cluster: this node's role, manager or worker (default worker).
    #[arg(long)]
    cluster_role: Option<String>,
    /// Cluster: a manager's address, host[:port] (repeatable or comma-separated); the
    /// first listed is the one that creates the cluster.
    #[arg(long = "cluster-manager", value_delimiter = ',')]
    cluster_managers: Vec<String>,
    /// Cluster: the address other nodes reach this one at (IP or interface).
    #[arg(long)]
    cluster_advertise_addr: Option<String>,
    /// Cluster: where the cluster port listens (default 0.0.0.0:2377).
    #[arg(long)]
    cluster_listen_addr: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct FileConfig {
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    hosts: Vec<String>,
    pidfile: Option<PathBuf>,
    cgroup_parent: Option<String>,
    log_level: Option<String>,
    default_runtime: Option<String>,
    runtimes: BTreeMap<String, RuntimeEntry>,
    live_restore: Option<bool>,
    bridge: Option<String>,
    bip: Option<String>,
    default_address_pools: Vec<PoolEntry>,
    ipv6: Option<bool>,
    fixed_cidr_v6: Option<String>,
    insecure_registries: Vec<String>,
    registry_certs_dir: Option<PathBuf>,
    max_concurrent_downloads: Option<usize>,
    max_concurrent_uploads: Option<usize>,
    log_driver: Option<String>,
    log_opts: BTreeMap<String, String>,
    group: Option<String>,
    cluster: Option<ClusterEntry>,
}

/// daemon.json `"cluster": {"secret" | "secret-file", "role", "managers", "advertise-addr",
/// "listen-addr"}`.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
struct ClusterEntry {
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    role: Option<String>,
    managers: Vec<String>,
    advertise_addr: Option<String>,
    listen_addr: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct PoolEntry {
    base: String,
    size: u8,
}

#[derive(serde::Deserialize, Default)]
struct RuntimeEntry {
    path: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let mut file: FileConfig = match &flags.config_file {
        Some(p) => serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("read {}", p.display()))?,
        )
        .with_context(|| format!("parse {}", p.display()))?,
        None => FileConfig::default(),
    };
    init_logging(&flags, &file)?;
    let cfg = daemon_config(&flags, &mut file)?;
    let mut hosts = if flags.hosts.is_empty() {
        file.hosts
    } else {
        flags.hosts
    };
    if hosts.is_empty() {
        hosts.push(format!(
            "unix://{}",
            cfg.exec_root.join("berth.sock").display()
        ));
    }
    let pidfile = flags.pidfile.or(file.pidfile);
    let group = flags.group.or(file.group);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let tls = Tls {
        verify: flags.tlsverify,
        ca: flags.tlscacert,
        cert: flags.tlscert,
        key: flags.tlskey,
    };
    rt.block_on(run(cfg, hosts, pidfile, tls, group))
}

/// Logs to stderr at `--log-level` (daemon.json `log-level`, default info).
fn init_logging(flags: &Flags, file: &FileConfig) -> anyhow::Result<()> {
    let level = flags
        .log_level
        .clone()
        .or(file.log_level.clone())
        .unwrap_or_else(|| "info".into());
    // openraft narrates every election and membership step at info; keep that for debug.
    let filter = match level.as_str() {
        "info" | "warn" | "error" => format!("{level},openraft=warn"),
        _ => level.clone(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).context("bad --log-level")?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

/// The engine's settings: flags over daemon.json, checked.
fn daemon_config(flags: &Flags, file: &mut FileConfig) -> anyhow::Result<DaemonConfig> {
    let log_config = log_config(flags, file)?;
    let cluster = cluster_config(flags, file)?;
    let runtimes = runtimes(flags, std::mem::take(&mut file.runtimes))?;
    let (pools, pools6) = address_pools(flags, file)?;
    let exe = std::env::current_exe().context("locate berthd")?;
    let cfg = DaemonConfig {
        data_root: pick(&flags.data_root, &file.data_root, "/var/lib/berth".into()),
        exec_root: pick(&flags.exec_root, &file.exec_root, "/run/berth".into()),
        cgroup_parent: pick(&flags.cgroup_parent, &file.cgroup_parent, "berth".into()),
        default_runtime: pick(
            &flags.default_runtime,
            &file.default_runtime,
            "berth".into(),
        ),
        runtimes,
        shim_path: exe.with_file_name("berth-shim"),
        live_restore: file.live_restore.unwrap_or(flags.live_restore),
        bridge: pick(&flags.bridge, &file.bridge, bridge::DEFAULT_DEVICE.into()),
        bip: flags.bip.clone().or(file.bip.clone()),
        default_address_pools: pools,
        default_address_pools6: pools6,
        ipv6: flags.ipv6 || file.ipv6.unwrap_or(false),
        fixed_cidr_v6: flags.fixed_cidr_v6.clone().or(file.fixed_cidr_v6.clone()),
        insecure_registries: file
            .insecure_registries
            .iter()
            .chain(&flags.insecure_registries)
            .cloned()
            .collect(),
        registry_certs_dir: pick(
            &flags.registry_certs_dir,
            &file.registry_certs_dir,
            "/etc/berth/certs.d".into(),
        ),
        max_concurrent_downloads: pick(
            &flags.max_concurrent_downloads,
            &file.max_concurrent_downloads,
            3,
        ),
        max_concurrent_uploads: pick(
            &flags.max_concurrent_uploads,
            &file.max_concurrent_uploads,
            5,
        ),
        log_config,
        cluster,
    };
    if cfg.bridge == berth_node::network::NO_BRIDGE
        && (cfg.bip.is_some() || cfg.fixed_cidr_v6.is_some())
    {
        bail!("--bridge none turns the default bridge off: --bip and --fixed-cidr-v6 configure it and cannot be given with it");
    }
    if cfg.max_concurrent_downloads == 0 || cfg.max_concurrent_uploads == 0 {
        bail!("--max-concurrent-downloads and --max-concurrent-uploads must be at least 1");
    }
    if cfg.default_runtime != "berth" && !cfg.runtimes.contains_key(&cfg.default_runtime) {
        bail!(
            "--default-runtime {}: no such runtime (add it with --add-runtime NAME=PATH)",
            cfg.default_runtime
        );
    }
    if cfg.fixed_cidr_v6.is_some() && !cfg.ipv6 {
        bail!("--fixed-cidr-v6 needs --ipv6 (daemon.json \"ipv6\": true)");
    }
    Ok(cfg)
}

/// A flag if given, else the config file's setting, else the default.
fn pick<T: Clone>(flag: &Option<T>, file: &Option<T>, default: T) -> T {
    flag.clone().or_else(|| file.clone()).unwrap_or(default)
}

/// daemon.json `runtimes` plus `--add-runtime`s, and `runc` when it is installed: dockerd
/// has it built in, so it is a runtime here too.
fn runtimes(
    flags: &Flags,
    from_file: BTreeMap<String, RuntimeEntry>,
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut runtimes: BTreeMap<String, PathBuf> =
        from_file.into_iter().map(|(k, v)| (k, v.path)).collect();
    for r in &flags.add_runtime {
        let (name, path) = r
            .split_once('=')
            .with_context(|| format!("--add-runtime {r:?}: expected NAME=PATH"))?;
        runtimes.insert(name.to_owned(), PathBuf::from(path));
    }
    if !runtimes.contains_key("runc") {
        if let Some(runc) = find_in_path("runc") {
            runtimes.insert("runc".to_owned(), runc);
        }
    }
    Ok(runtimes)
}

/// The default address pools (`--default-address-pool`s, else daemon.json's), split into
/// IPv4 and IPv6 ones by their base.
fn address_pools(flags: &Flags, file: &FileConfig) -> anyhow::Result<(Vec<Pool>, Vec<Pool6>)> {
    let specs: Vec<String> = if flags.default_address_pool.is_empty() {
        file.default_address_pools
            .iter()
            .map(|p| format!("base={},size={}", p.base, p.size))
            .collect()
    } else {
        flags.default_address_pool.clone()
    };
    let (mut pools, mut pools6) = (Vec::new(), Vec::new());
    for p in &specs {
        let base = p
            .split(',')
            .find_map(|kv| kv.strip_prefix("base="))
            .unwrap_or("");
        if base.contains(':') {
            pools6.push(Pool6::parse(p).map_err(anyhow::Error::msg)?);
        } else {
            pools.push(Pool::parse(p).map_err(anyhow::Error::msg)?);
        }
    }
    Ok((pools, pools6))
}

/// The `cluster` settings: flags over daemon.json, field by field. None when neither names
/// a secret nor managers.
fn cluster_config(flags: &Flags, file: &mut FileConfig) -> anyhow::Result<Option<AutoJoinConfig>> {
    let f = file.cluster.take().unwrap_or_default();
    let managers = if flags.cluster_managers.is_empty() {
        f.managers
    } else {
        flags.cluster_managers.clone()
    };
    let secret_file = flags.cluster_secret_file.clone().or(f.secret_file);
    let secret = match (&flags.cluster_secret, &secret_file, f.secret) {
        (Some(s), _, _) => Some(s.clone()),
        (None, Some(p), _) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("read the cluster secret file {}", p.display()))?,
        ),
        (None, None, s) => s,
    };
    if secret.is_none() && managers.is_empty() {
        return Ok(None);
    }
    let Some(secret) = secret else {
        bail!("cluster: managers are given but no secret (\"secret-file\", --cluster-secret-file or $BERTH_CLUSTER_SECRET)");
    };
    let role = match flags
        .cluster_role
        .clone()
        .or(f.role)
        .unwrap_or_else(|| "worker".into())
        .as_str()
    {
        "manager" => Role::Manager,
        "worker" => Role::Worker,
        other => bail!("cluster: invalid role {other:?}: expected manager or worker"),
    };
    let cfg = AutoJoinConfig {
        secret: secret.trim().to_owned(),
        role,
        managers,
        advertise_addr: flags
            .cluster_advertise_addr
            .clone()
            .or(f.advertise_addr)
            .unwrap_or_default(),
        listen_addr: flags
            .cluster_listen_addr
            .clone()
            .or(f.listen_addr)
            .unwrap_or_default(),
    };
    cfg.validate().map_err(anyhow::Error::msg)?;
    Ok(Some(cfg))
}

/// Gives the unix socket at `path` to `group`, mode 0660. A group that does not exist is
/// logged and the socket stays root's only.
fn socket_group(path: &std::path::Path, group: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let gid = match group.parse::<u32>() {
        Ok(n) => Some(nix::unistd::Gid::from_raw(n)),
        Err(_) => nix::unistd::Group::from_name(group)
            .with_context(|| format!("look up group {group}"))?
            .map(|g| g.gid),
    };
    let Some(gid) = gid else {
        tracing::warn!(group, socket = %path.display(), "group not found: the socket stays root's only");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        return Ok(());
    };
    nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(0)), Some(gid))
        .with_context(|| format!("chown {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(())
}

/// The default log driver and options: flags over the config file (`--log-opt`s, when
/// given, replace `log-opts` whole, as dockerd does), checked like a container's.
fn log_config(flags: &Flags, file: &FileConfig) -> anyhow::Result<LogConfig> {
    let kind = flags
        .log_driver
        .clone()
        .or(file.log_driver.clone())
        .unwrap_or_else(|| logconfig::DEFAULT_DRIVER.to_owned());
    let config = if flags.log_opts.is_empty() {
        file.log_opts.clone()
    } else {
        let mut m = BTreeMap::new();
        for o in &flags.log_opts {
            let (k, v) = o
                .split_once('=')
                .with_context(|| format!("--log-opt {o:?}: expected KEY=VALUE"))?;
            m.insert(k.to_owned(), v.to_owned());
        }
        m
    };
    let cfg = LogConfig { kind, config };
    logconfig::LogSettings::from_config(&cfg).context("failed to set log opts")?;
    Ok(cfg)
}

/// `--tlsverify` and the PEM files for tcp:// listeners.
struct Tls {
    verify: bool,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

async fn run(
    cfg: DaemonConfig,
    hosts: Vec<String>,
    pidfile: Option<PathBuf>,
    tls: Tls,
    group: Option<String>,
) -> anyhow::Result<()> {
    if let Some(p) = &pidfile {
        std::fs::write(p, std::process::id().to_string())
            .with_context(|| format!("write pidfile {}", p.display()))?;
    }
    // Refuse bad listen addresses before touching any state on disk.
    for h in &hosts {
        if h.starts_with("tcp://") {
            if !tls.verify || tls.ca.is_none() || tls.cert.is_none() || tls.key.is_none() {
                bail!("refusing to listen on {h} without --tlsverify --tlscacert --tlscert --tlskey: the API gives root on this host");
            }
        } else if !h.starts_with("unix://") {
            bail!("unsupported listen address {h:?}: use unix:///path or tcp://IP:PORT");
        }
    }
    let engine = Engine::open(cfg).await?;
    let app = berth_api::router(engine.backends.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    for h in &hosts {
        if let Some(path) = h.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("create {}", dir.display()))?;
            }
            let _ = std::fs::remove_file(&path);
            let listener = tokio::net::UnixListener::bind(&path)
                .with_context(|| format!("listen on {}", path.display()))?;
            if let Some(g) = &group {
                socket_group(&path, g)?;
            }
            let mut rx = stop_rx.clone();
            let app = app.clone();
            servers.push(tokio::spawn(async move {
                let _ = berth_api::serve_unix(listener, app, async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
            }));
            tracing::info!(socket = %path.display(), "API listening");
        } else if let Some(addr) = h.strip_prefix("tcp://") {
            let (Some(ca), Some(cert), Some(key)) = (&tls.ca, &tls.cert, &tls.key) else {
                bail!("refusing to listen on {h} without --tlsverify --tlscacert --tlscert --tlskey: the API gives root on this host");
            };
            if !tls.verify {
                bail!("refusing to listen on {h} without --tlsverify: clients must present a certificate");
            }
            let cfg =
                berth_node::listen::server_config(&berth_node::listen::TlsFiles { ca, cert, key })?;
            let listener = berth_node::listen::TlsListener::bind(addr, cfg).await?;
            let mut rx = stop_rx.clone();
            let app = app.clone();
            servers.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|s| *s).await;
                    })
                    .await;
            }));
            tracing::info!(address = %addr, "API listening with mutual TLS");
        } else {
            bail!("unsupported listen address {h:?}: use unix:///path");
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down; containers keep running");
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s).await;
    }
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    drop(engine);
    Ok(())
}

/// The first executable file named `name` in `$PATH`.
fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
