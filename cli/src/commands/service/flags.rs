//! The flags of `service create` and `service update`, as docker names them. What both take
//! is in [`SpecFlags`] (each an `Option`: given or not, the way docker asks "changed?"); the
//! lists `create` sets are in [`CreateArgs`], their `-add`/`-rm` pairs in [`UpdateArgs`].

use clap::Args;

/// Flags that set one field of the spec, on create and on update alike.
#[derive(Args, Debug, Default, Clone)]
pub struct SpecFlags {
    /// Number of tasks
    #[arg(long = "replicas")]
    pub replicas: Option<u64>,
    /// Maximum number of tasks per node (default 0 = unlimited)
    #[arg(long = "replicas-max-per-node")]
    pub replicas_max_per_node: Option<u64>,
    /// Number of job tasks to run concurrently (default equal to --replicas)
    #[arg(long = "max-concurrent")]
    pub max_concurrent: Option<u64>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Container hostname
    #[arg(long = "hostname")]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long = "entrypoint")]
    pub entrypoint: Option<String>,
    /// Time to wait before force killing a container (ns|us|ms|s|m|h)
    #[arg(long = "stop-grace-period")]
    pub stop_grace_period: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tty: Option<bool>,
    /// Use an init inside each service container to forward signals and reap processes
    #[arg(long = "init", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub init: Option<bool>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub read_only: Option<bool>,
    /// Reserve CPUs
    #[arg(long = "reserve-cpu")]
    pub reserve_cpu: Option<String>,
    /// Reserve Memory
    #[arg(long = "reserve-memory")]
    pub reserve_memory: Option<String>,
    /// Limit CPUs
    #[arg(long = "limit-cpu")]
    pub limit_cpu: Option<String>,
    /// Limit Memory
    #[arg(long = "limit-memory")]
    pub limit_memory: Option<String>,
    /// Limit maximum number of processes (default 0 = unlimited)
    #[arg(long = "limit-pids")]
    pub limit_pids: Option<i64>,
    /// Restart when condition is met ("none", "on-failure", "any")
    #[arg(long = "restart-condition")]
    pub restart_condition: Option<String>,
    /// Delay between restart attempts (ns|us|ms|s|m|h)
    #[arg(long = "restart-delay")]
    pub restart_delay: Option<String>,
    /// Maximum number of restarts before giving up
    #[arg(long = "restart-max-attempts")]
    pub restart_max_attempts: Option<u64>,
    /// Window used to evaluate the restart policy (ns|us|ms|s|m|h)
    #[arg(long = "restart-window")]
    pub restart_window: Option<String>,
    /// Maximum number of tasks updated simultaneously (0 to update all at once)
    #[arg(long = "update-parallelism")]
    pub update_parallelism: Option<u64>,
    /// Delay between updates (ns|us|ms|s|m|h)
    #[arg(long = "update-delay")]
    pub update_delay: Option<String>,
    /// Action on update failure ("pause", "continue", "rollback")
    #[arg(long = "update-failure-action")]
    pub update_failure_action: Option<String>,
    /// Duration after each task update to monitor for failure (ns|us|ms|s|m|h)
    #[arg(long = "update-monitor")]
    pub update_monitor: Option<String>,
    /// Failure rate to tolerate during an update
    #[arg(long = "update-max-failure-ratio")]
    pub update_max_failure_ratio: Option<f64>,
    /// Update order ("start-first", "stop-first")
    #[arg(long = "update-order")]
    pub update_order: Option<String>,
    /// Maximum number of tasks rolled back simultaneously (0 to roll back all at once)
    #[arg(long = "rollback-parallelism")]
    pub rollback_parallelism: Option<u64>,
    /// Delay between task rollbacks (ns|us|ms|s|m|h)
    #[arg(long = "rollback-delay")]
    pub rollback_delay: Option<String>,
    /// Action on rollback failure ("pause", "continue")
    #[arg(long = "rollback-failure-action")]
    pub rollback_failure_action: Option<String>,
    /// Duration after each task rollback to monitor for failure (ns|us|ms|s|m|h)
    #[arg(long = "rollback-monitor")]
    pub rollback_monitor: Option<String>,
    /// Failure rate to tolerate during a rollback
    #[arg(long = "rollback-max-failure-ratio")]
    pub rollback_max_failure_ratio: Option<f64>,
    /// Rollback order ("start-first", "stop-first")
    #[arg(long = "rollback-order")]
    pub rollback_order: Option<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<u64>,
    /// Start period for the container to initialize before counting retries towards unstable (ms|s|m|h)
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Endpoint mode (vip or dnsrr)
    #[arg(long = "endpoint-mode")]
    pub endpoint_mode: Option<String>,
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Do not query the registry to resolve image digest and supported platforms
    #[arg(long = "no-resolve-image")]
    pub no_resolve_image: bool,
}

/// `berth service create`
#[derive(Args, Debug, Default)]
pub struct CreateArgs {
    /// Service name
    #[arg(long = "name")]
    pub name: Option<String>,
    /// Service mode ("replicated", "global", "replicated-job", "global-job")
    #[arg(long = "mode", default_value = "replicated")]
    pub mode: String,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Service labels
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Container labels
    #[arg(long = "container-label")]
    pub container_label: Vec<String>,
    /// Attach a filesystem mount to the service
    #[arg(long = "mount")]
    pub mount: Vec<String>,
    /// Placement constraints
    #[arg(long = "constraint")]
    pub constraint: Vec<String>,
    /// Add a placement preference
    #[arg(long = "placement-pref")]
    pub placement_pref: Vec<String>,
    /// Publish a port as a node port
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Network attachments
    #[arg(long = "network")]
    pub network: Vec<String>,
    /// Specify secrets to expose to the service
    #[arg(long = "secret")]
    pub secret: Vec<String>,
    /// Specify configurations to expose to the service
    #[arg(long = "config")]
    pub config: Vec<String>,
    /// Set one or more supplementary user groups for the container
    #[arg(long = "group")]
    pub group: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long = "host")]
    pub host: Vec<String>,
    #[command(flatten)]
    pub spec: SpecFlags,
    /// Image, then the command and its arguments
    #[arg(value_name = "IMAGE", required = true, trailing_var_arg = true, num_args = 1..)]
    pub args: Vec<String>,
}

/// `berth service update`
#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// Service image tag
    #[arg(long = "image")]
    pub image: Option<String>,
    /// Service command args
    #[arg(long = "args")]
    pub args: Option<String>,
    /// Force update even if no changes require it
    #[arg(long = "force")]
    pub force: bool,
    /// Rollback to previous specification
    #[arg(long = "rollback")]
    pub rollback: bool,
    /// Add or update an environment variable
    #[arg(long = "env-add")]
    pub env_add: Vec<String>,
    /// Remove an environment variable
    #[arg(long = "env-rm")]
    pub env_rm: Vec<String>,
    /// Add or update a service label
    #[arg(long = "label-add")]
    pub label_add: Vec<String>,
    /// Remove a label by its key
    #[arg(long = "label-rm")]
    pub label_rm: Vec<String>,
    /// Add or update a container label
    #[arg(long = "container-label-add")]
    pub container_label_add: Vec<String>,
    /// Remove a container label by its key
    #[arg(long = "container-label-rm")]
    pub container_label_rm: Vec<String>,
    /// Add or update a mount on a service
    #[arg(long = "mount-add")]
    pub mount_add: Vec<String>,
    /// Remove a mount by its target path
    #[arg(long = "mount-rm")]
    pub mount_rm: Vec<String>,
    /// Add or update a placement constraint
    #[arg(long = "constraint-add")]
    pub constraint_add: Vec<String>,
    /// Remove a constraint
    #[arg(long = "constraint-rm")]
    pub constraint_rm: Vec<String>,
    /// Add a placement preference
    #[arg(long = "placement-pref-add")]
    pub placement_pref_add: Vec<String>,
    /// Remove a placement preference
    #[arg(long = "placement-pref-rm")]
    pub placement_pref_rm: Vec<String>,
    /// Add or update a published port
    #[arg(long = "publish-add")]
    pub publish_add: Vec<String>,
    /// Remove a published port by its target port
    #[arg(long = "publish-rm")]
    pub publish_rm: Vec<String>,
    /// Add a network
    #[arg(long = "network-add")]
    pub network_add: Vec<String>,
    /// Remove a network
    #[arg(long = "network-rm")]
    pub network_rm: Vec<String>,
    /// Add or update a secret on a service
    #[arg(long = "secret-add")]
    pub secret_add: Vec<String>,
    /// Remove a secret
    #[arg(long = "secret-rm")]
    pub secret_rm: Vec<String>,
    /// Add or update a config file on a service
    #[arg(long = "config-add")]
    pub config_add: Vec<String>,
    /// Remove a configuration file
    #[arg(long = "config-rm")]
    pub config_rm: Vec<String>,
    #[command(flatten)]
    pub spec: SpecFlags,
    /// Service
    #[arg(value_name = "SERVICE")]
    pub service: String,
}
