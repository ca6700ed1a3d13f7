//! The flags shared by `run` and `create`, and their translation into the
//! `POST /containers/create` body (Config + HostConfig + NetworkingConfig), field by field as
//! the docker CLI fills it in.

mod body;

use clap::Args;
use serde_json::Value;

/// Container configuration flags (`run` and `create`).
#[derive(Args, Debug, Clone, Default)]
pub struct ContainerOpts {
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list")]
    pub attach: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Block IO weight (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub blkio_weight: Option<u16>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "string")]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long = "cgroupns", value_name = "string")]
    pub cgroupns: Option<String>,
    /// Write the container ID to the file
    #[arg(long = "cidfile", value_name = "string")]
    pub cidfile: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int")]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long = "cpus", value_name = "decimal")]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Add a host device to the container
    #[arg(long = "device", value_name = "list")]
    pub device: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns", value_name = "list")]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Container NIS domain name
    #[arg(long = "domainname", value_name = "string")]
    pub domainname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long = "entrypoint", value_name = "string")]
    pub entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long = "expose", value_name = "list")]
    pub expose: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval", value_name = "duration")]
    pub health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long = "health-start-period", value_name = "duration")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(long = "health-start-interval", value_name = "duration")]
    pub health_start_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout", value_name = "duration")]
    pub health_timeout: Option<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname", value_name = "string")]
    pub hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long = "init")]
    pub init: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long = "ip", value_name = "string")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long = "ip6", value_name = "string")]
    pub ip6: Option<String>,
    /// IPC mode to use
    #[arg(long = "ipc", value_name = "string")]
    pub ipc: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub label_file: Vec<String>,
    /// Add link to another container
    #[arg(long = "link", value_name = "list")]
    pub link: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    pub mac_address: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory", value_name = "bytes")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(
        long = "memory-swappiness",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub memory_swappiness: Option<i64>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount")]
    pub mount: Vec<String>,
    /// Assign a name to the container
    #[arg(long = "name", value_name = "string")]
    pub name: Option<String>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net", value_name = "network")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// PID namespace to use
    #[arg(long = "pid", value_name = "string")]
    pub pid: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", value_name = "string")]
    pub platform: Option<String>,
    /// Give extended privileges to this container
    #[arg(long = "privileged")]
    pub privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long = "pull", value_name = "string", default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart", value_name = "string")]
    pub restart: Option<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long = "rm")]
    pub rm: bool,
    /// Runtime to use for this container
    #[arg(long = "runtime", value_name = "string")]
    pub runtime: Option<String>,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Sysctl options
    #[arg(long = "sysctl", value_name = "map")]
    pub sysctl: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs", value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Ulimit options
    #[arg(long = "ulimit", value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "string")]
    pub user: Option<String>,
    /// User namespace to use
    #[arg(long = "userns", value_name = "string")]
    pub userns: Option<String>,
    /// UTS namespace to use
    #[arg(long = "uts", value_name = "string")]
    pub uts: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub workdir: Option<String>,
    /// Print usage
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// The image, then the command and its arguments
    #[arg(value_name = "IMAGE [COMMAND] [ARG...]", required = true, num_args = 1.., trailing_var_arg = true)]
    pub args: Vec<String>,
}

/// A create request ready to send.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub body: Value,
    pub image: String,
    pub name: Option<String>,
    pub platform: Option<String>,
}

#[cfg(test)]
mod tests {

    use super::*;
    use clap::Parser;
    use serde_json::json;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct Wrap {
        #[command(flatten)]
        opts: ContainerOpts,
    }

    fn parse(args: &[&str]) -> ContainerOpts {
        let mut full = vec!["run"];
        full.extend_from_slice(args);
        Wrap::try_parse_from(full).expect("parse").opts
    }

    #[test]
    fn captured_run_flags() {
        let o = parse(&[
            "--name",
            "flags",
            "--network",
            "n1",
            "-v",
            "v1:/data",
            "-e",
            "FOO=bar",
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "-p",
            "127.0.0.1:8081:80",
            "--restart",
            "no",
            "busybox",
            "sleep",
            "300",
        ]);
        let req = o.build(true).expect("build");
        let b = &req.body;
        assert_eq!(req.name.as_deref(), Some("flags"));
        assert_eq!(b["Env"], json!(["FOO=bar"]));
        assert_eq!(b["Cmd"], json!(["sleep", "300"]));
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(b["HostConfig"]["Binds"], json!(["v1:/data"]));
        assert_eq!(b["HostConfig"]["NetworkMode"], "n1");
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8081"}]})
        );
        assert_eq!(b["HostConfig"]["Memory"], 67108864);
        assert_eq!(b["HostConfig"]["NanoCpus"], 500000000);
        assert_eq!(b["NetworkingConfig"]["EndpointsConfig"], json!({}));
        assert_eq!(b["AttachStdout"], false);
    }

    #[test]
    fn health_flags_make_dockers_healthcheck() {
        let o = parse(&[
            "--health-cmd",
            "wget -q localhost",
            "--health-interval",
            "1s",
            "--health-timeout",
            "300ms",
            "--health-retries",
            "2",
            "--health-start-interval",
            "0.3s",
            "busybox",
        ]);
        let b = o.build(true).expect("build").body;
        assert_eq!(
            b["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 1_000_000_000u64,
                   "Timeout": 300_000_000u64, "StartInterval": 300_000_000u64, "Retries": 2})
        );
        // Without a command, the image's test applies.
        let b = parse(&["--health-interval", "5s", "busybox"])
            .build(true)
            .expect("build")
            .body;
        assert_eq!(b["Healthcheck"], json!({"Interval": 5_000_000_000u64}));
        let b = parse(&["--no-healthcheck", "busybox"])
            .build(true)
            .expect("build")
            .body;
        assert_eq!(b["Healthcheck"], json!({"Test": ["NONE"]}));
        assert!(parse(&["busybox"]).build(true).expect("build").body["Healthcheck"].is_null());
        let err = |args: &[&str]| parse(args).build(true).err().unwrap_or_default();
        assert_eq!(
            err(&["--no-healthcheck", "--health-retries", "1", "busybox"]),
            "--no-healthcheck conflicts with --health-* options"
        );
        assert_eq!(
            err(&["--health-interval=-1s", "busybox"]),
            "--health-interval cannot be negative"
        );
        assert_eq!(
            err(&["--health-retries=-1", "busybox"]),
            "--health-retries cannot be negative"
        );
    }

    #[test]
    fn rm_and_interactive_tty() {
        let o = parse(&["--rm", "-it", "busybox", "sh", "-c", "echo hi"]);
        let b = o.build(false).expect("build").body;
        assert_eq!(b["HostConfig"]["AutoRemove"], true);
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["Tty"], true);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["StdinOnce"], true);
        assert_eq!(b["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(b["HostConfig"]["NetworkMode"], "default");
        assert!(b["NetworkingConfig"]["EndpointsConfig"]["default"].is_object());
    }

    #[test]
    fn flags_after_image_belong_to_the_command() {
        let o = parse(&["busybox", "ls", "-l", "--rm"]);
        assert!(!o.rm);
        assert_eq!(o.args, vec!["busybox", "ls", "-l", "--rm"]);
        let o = parse(&["busybox", "-c", "x"]);
        assert_eq!(o.args, vec!["busybox", "-c", "x"]);
    }

    #[test]
    fn unknown_flags_are_errors() {
        assert!(Wrap::try_parse_from(["run", "--bogus", "busybox"]).is_err());
        assert!(Wrap::try_parse_from(["run"]).is_err());
    }

    #[test]
    fn bad_values_name_themselves() {
        let e = parse(&["-m", "64x", "busybox"])
            .build(false)
            .expect_err("bad memory");
        assert_eq!(
            e,
            "invalid argument \"64x\" for \"-m, --memory\" flag: invalid suffix: 'x'"
        );
        let e = parse(&["--cpus", "abc", "busybox"])
            .build(false)
            .expect_err("bad cpus");
        assert_eq!(e, "invalid argument \"abc\" for \"--cpus\" flag: failed to parse abc as a rational number");
        let e = parse(&["-p", "80/xyz", "busybox"])
            .build(false)
            .expect_err("bad port");
        assert_eq!(e, "invalid proto: xyz");
        let e = parse(&["--rm", "--restart", "always", "busybox"])
            .build(false)
            .expect_err("conflict");
        assert!(e.contains("--restart and --rm"));
    }

    #[test]
    fn resources_and_security() {
        let o = parse(&[
            "--memory-swap",
            "-1",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "64",
            "--read-only",
            "--tmpfs",
            "/run:size=1m",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "ALL",
            "--privileged",
            "--security-opt",
            "no-new-privileges",
            "--ulimit",
            "nofile=100:200",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "3",
            "--init",
            "--runtime",
            "runc",
            "--add-host",
            "db:10.0.0.2",
            "--dns",
            "1.1.1.1",
            "-w",
            "/tmp",
            "-u",
            "1000",
            "--entrypoint",
            "",
            "-h",
            "box",
            "-l",
            "a=b",
            "--mount",
            "type=tmpfs,dst=/x",
            "busybox",
        ]);
        let b = o.build(false).expect("build").body;
        let h = &b["HostConfig"];
        assert_eq!(h["MemorySwap"], -1);
        assert_eq!(h["CpuShares"], 512);
        assert_eq!(h["CpusetCpus"], "0");
        assert_eq!(h["PidsLimit"], 64);
        assert_eq!(h["ReadonlyRootfs"], true);
        assert_eq!(h["Tmpfs"], json!({"/run": "size=1m"}));
        assert_eq!(h["CapAdd"], json!(["NET_ADMIN"]));
        assert_eq!(h["CapDrop"], json!(["ALL"]));
        assert_eq!(h["Privileged"], true);
        assert_eq!(h["SecurityOpt"], json!(["no-new-privileges"]));
        assert_eq!(
            h["Ulimits"],
            json!([{"Name":"nofile","Soft":100,"Hard":200}])
        );
        assert_eq!(h["Init"], true);
        assert_eq!(h["Runtime"], "runc");
        assert_eq!(h["ExtraHosts"], json!(["db:10.0.0.2"]));
        assert_eq!(h["Dns"], json!(["1.1.1.1"]));
        assert_eq!(h["Mounts"], json!([{"Type":"tmpfs","Target":"/x"}]));
        assert_eq!(b["StopSignal"], "SIGINT");
        assert_eq!(b["StopTimeout"], 3);
        assert_eq!(b["WorkingDir"], "/tmp");
        assert_eq!(b["User"], "1000");
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["Hostname"], "box");
        assert_eq!(b["Labels"], json!({"a": "b"}));
    }
}
