//! Command-line grammar of `engine` (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// engine: a lightweight container runtime with per-container logs and memory limits.
#[derive(Debug, Parser)]
#[command(name = "engine", version, arg_required_else_help = true)]
pub struct Cli {
    /// Supervisor socket [default: /run/engine/engine.sock].
    #[arg(long, global = true, env = "ENGINE_SOCKET")]
    pub socket: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub verb: Verb,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Run the supervisor daemon (foreground) with this base rootfs.
    Supervisor(SupervisorArgs),
    /// Create and start a container, return once it runs.
    Start(StartArgs),
    /// Start a container and wait for it; exit with its status.
    Run(RunArgs),
    /// List containers.
    Ps(PsArgs),
    /// Print a container's log.
    Logs(LogsArgs),
    /// Stop a container: SIGTERM, then SIGKILL after the grace period.
    Stop(StopArgs),
    /// Remove ended containers: their records and log files.
    Rm(RmArgs),
}

/// Which memory monitor backend the supervisor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MonitorChoice {
    /// Kernel module when `/dev/container_monitor` exists, else userspace.
    Auto,
    /// Only the kernel module.
    Kernel,
    /// Only the userspace `/proc` scanner.
    Userspace,
}

/// `engine supervisor`.
#[derive(Debug, Args)]
pub struct SupervisorArgs {
    /// Base rootfs: the read-only lower layer under every container's rootfs.
    pub base_rootfs: PathBuf,
    /// TOML config file (keys: socket, state-dir, monitor, monitor-interval-ms, log-sinks);
    /// command-line options win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// State directory; logs go to `<state-dir>/logs/<id>.log` [default: /var/lib/engine].
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Memory monitor backend [default: auto].
    #[arg(long, value_enum)]
    pub monitor: Option<MonitorChoice>,
    /// Memory monitor scan interval, in ms [default: 200].
    #[arg(long)]
    pub monitor_interval_ms: Option<u64>,
    /// Default log sink of every container, `NAME[:key=value,...]`; repeatable
    /// (default: `file`).
    #[arg(long = "log-sink")]
    pub log_sinks: Vec<String>,
}

/// `engine run`: the options of `start`, and `--rm`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container (record and log files) once it has ended and its output is shown.
    #[arg(long)]
    pub rm: bool,
    /// What `start` takes.
    #[command(flatten)]
    pub start: StartArgs,
}

/// `engine rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Container ids (ended containers only).
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// `engine start` / `engine run`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Container id: `[A-Za-z0-9][A-Za-z0-9_.-]{0,30}`.
    pub id: String,
    /// The container's rootfs directory (stacked over the base rootfs).
    pub rootfs: PathBuf,
    /// Workload as one string, run as `/bin/sh -c <command>`.
    pub command: Option<String>,
    /// Soft RSS limit in MiB: crossing it logs one warning.
    #[arg(long, default_value_t = 40)]
    pub soft_mib: u64,
    /// Hard RSS limit in MiB: crossing it kills the container.
    #[arg(long, default_value_t = 64)]
    pub hard_mib: u64,
    /// Nice value of the workload (-20..19).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub nice: i32,
    /// Log option for this container, Docker style: `key=value` sets an option on every sink;
    /// a sink spec (`rotating:max-size=1m`, `/abs/sink.so:k=v`) replaces the defaults (the
    /// first) or adds a sink (the next ones). Repeatable.
    #[arg(long = "log-opt")]
    pub log_opts: Vec<String>,
    /// Program and arguments, exec'd as given (after `--`).
    #[arg(last = true)]
    pub argv: Vec<String>,
}

/// `engine ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = PsFormat::Table)]
    pub format: PsFormat,
}

/// Output formats of `ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PsFormat {
    /// Aligned columns.
    Table,
    /// A JSON array of container records.
    Json,
}

/// `engine logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Container id.
    pub id: String,
    /// Keep printing new output until the container ends.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(short = 'n', long = "tail")]
    pub tail: Option<usize>,
    /// Only lines since this time: RFC 3339, or a duration before now (`10m`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines before this time: RFC 3339, or a duration before now (`10m`).
    #[arg(long)]
    pub until: Option<String>,
    /// Prefix each line with its read time (RFC 3339, ns).
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only this stream.
    #[arg(long, value_enum)]
    pub stream: Option<crate::logs::view::StreamFilter>,
    /// Escape control characters and bytes that are not UTF-8 (`\xNN`).
    #[arg(long)]
    pub escape: bool,
}

/// `engine stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Container id.
    pub id: String,
    /// Grace period in seconds between SIGTERM and SIGKILL.
    #[arg(long, short = 't', default_value_t = 10)]
    pub time: u64,
}
