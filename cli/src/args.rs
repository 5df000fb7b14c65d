//! Command-line grammar of `engine` (clap derive).

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use logstore::Stream;
use std::path::PathBuf;

/// A lightweight container runtime with per-container logs and memory limits.
#[derive(Debug, Parser)]
#[command(name = "engine", version, arg_required_else_help = true)]
pub struct Cli {
    /// Supervisor socket; else `socket` of ~/.config/engine/config.toml
    /// [default: /run/engine/engine.sock].
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
    /// Print a shell completion script (bash, zsh, fish...) to stdout.
    Completion(CompletionArgs),
    /// Write the man pages (engine.1, engine-start.1...) into a directory (`make install`).
    #[command(name = "__man", hide = true)]
    Man(ManArgs),
}

/// `engine completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell; e.g. `source <(engine completion bash)`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `engine __man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    pub dir: PathBuf,
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
    /// Stop a running container first (SIGTERM, SIGKILL after the default 10 s grace).
    #[arg(short, long)]
    pub force: bool,
    /// Container ids (ended containers only, unless `--force`).
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
    /// Output format; else `format` of ~/.config/engine/config.toml [default: table].
    #[arg(long, value_enum)]
    pub format: Option<PsFormat>,
}

/// Output formats of `ps`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PsFormat {
    /// Aligned columns.
    #[default]
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
    /// Only the last N lines, or `all` (the default).
    #[arg(short = 'n', long = "tail", value_parser = parse_tail)]
    pub tail: Option<Tail>,
    /// Only lines since this time: RFC 3339 (no zone: local time), a date, Unix seconds
    /// (`1764410400.5`), or a duration before now (`10m`, `1m30s`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines before this time, in the forms of `--since`.
    #[arg(long)]
    pub until: Option<String>,
    /// Prefix each line with its read time (RFC 3339, ns).
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only this stream, printed to stdout (without it, the container's stderr goes to stderr).
    #[arg(long, value_parser = PossibleValuesParser::new(Stream::ALL.map(Stream::name))
        .try_map(|s| s.parse::<Stream>()))]
    pub stream: Option<Stream>,
    /// Escape control characters and bytes that are not UTF-8 (`\xNN`).
    #[arg(long)]
    pub escape: bool,
}

/// `--tail`: a number of lines, or every line (`all`, as `docker logs --tail all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail(pub Option<usize>);

/// Parses `--tail`: `all` or a non-negative number of lines.
///
/// # Errors
/// Neither.
pub fn parse_tail(text: &str) -> Result<Tail, std::num::ParseIntError> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(Tail(None));
    }
    text.parse().map(|n| Tail(Some(n)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn tail_takes_a_count_or_all() {
        assert_eq!(parse_tail("3").unwrap(), Tail(Some(3)));
        assert_eq!(parse_tail("all").unwrap(), Tail(None));
        assert_eq!(parse_tail("ALL").unwrap(), Tail(None));
        assert!(parse_tail("-1").is_err() && parse_tail("some").is_err());
        let cli = Cli::try_parse_from(["engine", "logs", "x", "--tail", "all"]).unwrap();
        let Verb::Logs(a) = cli.verb else {
            panic!("not logs")
        };
        assert_eq!(a.tail, Some(Tail(None)));
    }
}
