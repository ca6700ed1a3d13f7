//! The command tree (clap) and its dispatch. Top-level verbs mirror `docker`'s; the management
//! groups (`container`, `image`, `network`, `volume`, `system`) reuse the same argument types
//! and handlers, so `berth container ls` and `berth ps` are one code path. The cluster's
//! `swarm`, `node`, `service`, `stack`, `secret` and `config` exist only as groups, as in
//! docker.

pub mod auth;
pub mod build;
pub mod container;
pub mod cp;
pub mod disk;
pub mod events;
pub mod exec;
pub mod image;
pub mod inspect;
pub mod logs;
pub mod network;
pub mod node;
pub mod node_ps;
pub mod ps;
pub mod run;
pub mod runconfig;
pub mod service;
pub mod session;
pub mod stack;
pub mod stats;
pub mod swarm;
pub mod swarm_data;
pub mod system;
pub mod transfer;
pub mod volume;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::client::Client;

/// The `berth` command line.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    disable_version_flag = true,
    subcommand_required = false
)]
pub struct Cli {
    /// Daemon socket to connect to (unix:///path or tcp://host:port)
    #[arg(short = 'H', long = "host", env = "BERTH_HOST", value_name = "HOST")]
    pub host: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(run::CreateArgs),
    /// Start one or more stopped containers
    Start(run::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Pause all processes within one or more containers
    Pause(container::ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::ContainersArgs),
    /// Remove one or more containers
    Rm(container::RmArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(run::AttachArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::ContainersArgs),
    /// Return low-level information on Docker-API objects
    Inspect(inspect::InspectArgs),
    /// Display the running processes of a container
    Top(container::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Update configuration of one or more containers
    Update(container::UpdateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::ContainerArg),
    /// Export a container's filesystem as a tar archive
    Export(transfer::ExportArgs),
    /// List port mappings or a specific mapping for the container
    Port(container::PortArgs),
    /// Create a new image from a container's changes
    Commit(transfer::CommitArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// List images
    Images(image::ImagesArgs),
    /// Remove one or more images
    Rmi(image::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image::TagArgs),
    /// Show the history of an image
    History(image::HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(transfer::ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(transfer::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(transfer::SaveArgs),
    /// Download an image from a registry
    Pull(transfer::PullArgs),
    /// Upload an image to a registry
    Push(transfer::PushArgs),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Log in to a registry
    Login(auth::LoginArgs),
    /// Log out from a registry
    Logout(auth::LogoutArgs),
    /// Show the Berth version information
    Version(system::VersionArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCmd),
    /// Manage the daemon
    #[command(subcommand)]
    System(SystemCmd),
    /// Manage Swarm
    #[command(subcommand)]
    Swarm(swarm::SwarmCmd),
    /// Manage Swarm nodes
    #[command(subcommand)]
    Node(node::NodeCmd),
    /// Manage Swarm services
    #[command(subcommand)]
    Service(service::ServiceCmd),
    /// Manage Swarm stacks
    #[command(subcommand)]
    Stack(stack::StackCmd),
    /// Manage Swarm secrets
    #[command(subcommand)]
    Secret(swarm_data::SecretCmd),
    /// Manage Swarm configs
    #[command(subcommand)]
    Config(swarm_data::ConfigCmd),
}

/// `berth container ...`
#[derive(Subcommand, Debug)]
pub enum ContainerCmd {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(run::CreateArgs),
    /// Start one or more stopped containers
    Start(run::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Pause all processes within one or more containers
    Pause(container::ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::ContainersArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(container::RmArgs),
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(ps::PsArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(run::AttachArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::ContainersArgs),
    /// Display detailed information on one or more containers
    Inspect(inspect::TypedInspectArgs),
    /// Display the running processes of a container
    Top(container::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Update configuration of one or more containers
    Update(container::UpdateArgs),
    /// Remove all stopped containers
    Prune(container::PruneArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::ContainerArg),
    /// Export a container's filesystem as a tar archive
    Export(transfer::ExportArgs),
    /// List port mappings or a specific mapping for the container
    Port(container::PortArgs),
    /// Create a new image from a container's changes
    Commit(transfer::CommitArgs),
}

/// `berth image ...`
// Parsed once per process; boxing the larger argument sets would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// List images
    #[command(visible_alias = "list")]
    Ls(image::ImagesArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(image::RmiArgs),
    /// Display detailed information on one or more images
    Inspect(inspect::TypedInspectArgs),
    /// Remove unused images
    Prune(image::ImagePruneArgs),
    /// Show the history of an image
    History(image::HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image::TagArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(transfer::ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(transfer::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(transfer::SaveArgs),
    /// Download an image from a registry
    Pull(transfer::PullArgs),
    /// Upload an image to a registry
    Push(transfer::PushArgs),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
}

/// `berth system ...`
#[derive(Subcommand, Debug)]
pub enum SystemCmd {
    /// Show docker disk usage
    Df(disk::DfArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Remove unused data
    Prune(disk::SystemPruneArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
}

/// Runs one parsed command.
pub async fn dispatch(client: &Client, cmd: Command) -> Result<()> {
    use Command as C;
    match cmd {
        C::Run(a) => run::run(client, a).await,
        C::Create(a) => run::create(client, a).await,
        C::Start(a) => run::start(client, a).await,
        C::Stop(a) => container::stop(client, a).await,
        C::Restart(a) => container::restart(client, a).await,
        C::Kill(a) => container::kill(client, a).await,
        C::Pause(a) => container::simple_post(client, "pause", a).await,
        C::Unpause(a) => container::simple_post(client, "unpause", a).await,
        C::Rm(a) => container::rm(client, a).await,
        C::Ps(a) => ps::ps(client, a).await,
        C::Logs(a) => logs::logs(client, a).await,
        C::Attach(a) => run::attach(client, a).await,
        C::Exec(a) => exec::exec(client, a).await,
        C::Wait(a) => container::wait(client, a).await,
        C::Inspect(a) => inspect::inspect(client, a).await,
        C::Top(a) => container::top(client, a).await,
        C::Stats(a) => stats::stats(client, a).await,
        C::Cp(a) => cp::cp(client, a).await,
        C::Rename(a) => container::rename(client, a).await,
        C::Update(a) => container::update(client, a).await,
        C::Diff(a) => container::diff(client, a).await,
        C::Export(a) => transfer::export(client, a).await,
        C::Port(a) => container::port(client, a).await,
        C::Commit(a) => transfer::commit(client, a).await,
        C::Events(a) => events::events(client, a).await,
        C::Images(a) => image::images(client, a).await,
        C::Rmi(a) => image::rmi(client, a).await,
        C::Tag(a) => image::tag(client, a).await,
        C::History(a) => image::history(client, a).await,
        C::Import(a) => transfer::import(client, a).await,
        C::Load(a) => transfer::load(client, a).await,
        C::Save(a) => transfer::save(client, a).await,
        C::Pull(a) => transfer::pull(client, a).await,
        C::Push(a) => transfer::push(client, a).await,
        C::Build(a) => build::build(client, a).await,
        C::Login(a) => auth::login(client, a).await,
        C::Logout(a) => auth::logout(a),
        C::Version(a) => system::version(client, a).await,
        C::Info(a) => system::info(client, a).await,
        C::Container(c) => dispatch_container(client, c).await,
        C::Image(c) => dispatch_image(client, c).await,
        C::Network(c) => network::dispatch(client, c).await,
        C::Volume(c) => volume::dispatch(client, c).await,
        C::Swarm(c) => swarm::dispatch(client, c).await,
        C::Node(c) => node::dispatch(client, c).await,
        C::Service(c) => service::dispatch(client, c).await,
        C::Stack(c) => stack::dispatch(client, c).await,
        C::Secret(c) => swarm_data::dispatch_secret(client, c).await,
        C::Config(c) => swarm_data::dispatch_config(client, c).await,
        C::System(c) => match c {
            SystemCmd::Df(a) => disk::df(client, a).await,
            SystemCmd::Info(a) => system::info(client, a).await,
            SystemCmd::Prune(a) => disk::prune(client, a).await,
            SystemCmd::Events(a) => events::events(client, a).await,
        },
    }
}

async fn dispatch_container(client: &Client, cmd: ContainerCmd) -> Result<()> {
    use ContainerCmd as C;
    match cmd {
        C::Run(a) => run::run(client, a).await,
        C::Create(a) => run::create(client, a).await,
        C::Start(a) => run::start(client, a).await,
        C::Stop(a) => container::stop(client, a).await,
        C::Restart(a) => container::restart(client, a).await,
        C::Kill(a) => container::kill(client, a).await,
        C::Pause(a) => container::simple_post(client, "pause", a).await,
        C::Unpause(a) => container::simple_post(client, "unpause", a).await,
        C::Rm(a) => container::rm(client, a).await,
        C::Ls(a) => ps::ps(client, a).await,
        C::Logs(a) => logs::logs(client, a).await,
        C::Attach(a) => run::attach(client, a).await,
        C::Exec(a) => exec::exec(client, a).await,
        C::Wait(a) => container::wait(client, a).await,
        C::Inspect(a) => inspect::typed(client, inspect::Kind::Container, a).await,
        C::Top(a) => container::top(client, a).await,
        C::Stats(a) => stats::stats(client, a).await,
        C::Cp(a) => cp::cp(client, a).await,
        C::Rename(a) => container::rename(client, a).await,
        C::Update(a) => container::update(client, a).await,
        C::Prune(a) => container::prune(client, a).await,
        C::Diff(a) => container::diff(client, a).await,
        C::Export(a) => transfer::export(client, a).await,
        C::Port(a) => container::port(client, a).await,
        C::Commit(a) => transfer::commit(client, a).await,
    }
}

async fn dispatch_image(client: &Client, cmd: ImageCmd) -> Result<()> {
    use ImageCmd as C;
    match cmd {
        C::Ls(a) => image::images(client, a).await,
        C::Rm(a) => image::rmi(client, a).await,
        C::Inspect(a) => inspect::typed(client, inspect::Kind::Image, a).await,
        C::Prune(a) => image::prune(client, a).await,
        C::History(a) => image::history(client, a).await,
        C::Tag(a) => image::tag(client, a).await,
        C::Import(a) => transfer::import(client, a).await,
        C::Load(a) => transfer::load(client, a).await,
        C::Save(a) => transfer::save(client, a).await,
        C::Pull(a) => transfer::pull(client, a).await,
        C::Push(a) => transfer::push(client, a).await,
        C::Build(a) => build::build(client, a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_valid() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).expect("parse")
    }

    #[test]
    fn run_parses_like_docker() {
        let cli = parse(&[
            "berth",
            "-H",
            "unix:///tmp/x.sock",
            "run",
            "--rm",
            "-it",
            "-h",
            "box",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ]);
        assert_eq!(cli.host.as_deref(), Some("unix:///tmp/x.sock"));
        match cli.command {
            Some(Command::Run(r)) => {
                assert!(r.opts.rm && r.opts.interactive && r.opts.tty);
                assert_eq!(r.opts.hostname.as_deref(), Some("box"));
                assert_eq!(r.opts.args, vec!["busybox", "sh", "-c", "exit 3"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["berth", "run", "--sig-proxy=false", "-d", "busybox"]).command {
            Some(Command::Run(r)) => assert!(!r.sig_proxy && r.detach),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn management_aliases() {
        assert!(matches!(
            parse(&["berth", "container", "ls", "-a"]).command,
            Some(Command::Container(ContainerCmd::Ls(_)))
        ));
        assert!(matches!(
            parse(&["berth", "container", "ps"]).command,
            Some(Command::Container(ContainerCmd::Ls(_)))
        ));
        assert!(matches!(
            parse(&["berth", "image", "list"]).command,
            Some(Command::Image(ImageCmd::Ls(_)))
        ));
        assert!(matches!(
            parse(&["berth", "image", "remove", "x"]).command,
            Some(Command::Image(ImageCmd::Rm(_)))
        ));
        assert!(matches!(
            parse(&["berth", "system", "df"]).command,
            Some(Command::System(SystemCmd::Df(_)))
        ));
    }

    #[test]
    fn stop_timeout_and_exec_trailing_args() {
        match parse(&["berth", "stop", "-t", "1", "-s", "SIGINT", "a", "b"]).command {
            Some(Command::Stop(s)) => {
                assert_eq!(s.timeout, Some(1));
                assert_eq!(s.signal.as_deref(), Some("SIGINT"));
                assert_eq!(s.containers, vec!["a", "b"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["berth", "exec", "-i", "web", "ls", "-la", "/"]).command {
            Some(Command::Exec(e)) => assert_eq!(e.args, vec!["web", "ls", "-la", "/"]),
            other => panic!("unexpected {other:?}"),
        }
    }
}
