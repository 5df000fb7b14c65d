//! `engine supervisor`: resolve the daemon's settings and run it in the foreground.

use crate::args::{MonitorChoice, SupervisorArgs};
use crate::config_file::{self, FileConfig};
use anyhow::{anyhow, Context, Result};
use clap::ValueEnum;
use proto::router::SinkSpec;
use std::path::Path;
use std::time::Duration;
use supervisor::config::{DEFAULT_SOCKET, DEFAULT_STATE_DIR};
use supervisor::monitor::{BackendKind, MonitorConfig, DEFAULT_INTERVAL_MS};
use supervisor::SupervisorConfig;

/// Shortest memory monitor interval accepted, in ms (a scan per 10 ms is already costly).
const MIN_INTERVAL_MS: u64 = 10;
/// Longest memory monitor interval accepted, in ms.
const MAX_INTERVAL_MS: u64 = 60_000;

/// Runs the supervisor until SIGINT/SIGTERM.
///
/// # Errors
/// Bad arguments, or the supervisor's start-up error (socket in use, missing rootfs, ...).
pub fn run(socket: Option<&Path>, args: &SupervisorArgs) -> Result<i32> {
    let file = match &args.config {
        Some(path) => config_file::load(path)?,
        None => FileConfig::default(),
    };
    let abs = |p: &Path| {
        std::path::absolute(p).with_context(|| format!("cannot resolve path {}", p.display()))
    };
    let socket = socket
        .map(Path::to_path_buf)
        .or(file.socket)
        .unwrap_or_else(|| DEFAULT_SOCKET.into());
    let state_dir = args
        .state_dir
        .clone()
        .or(file.state_dir)
        .unwrap_or_else(|| DEFAULT_STATE_DIR.into());
    let monitor = match (args.monitor, file.monitor.as_deref()) {
        (Some(m), _) => m,
        (None, Some(name)) => MonitorChoice::from_str(name, true)
            .map_err(|_| anyhow!("unknown monitor {name:?}: expected auto, kernel or userspace"))?,
        (None, None) => MonitorChoice::Auto,
    };
    let interval_ms = args
        .monitor_interval_ms
        .or(file.monitor_interval_ms)
        .unwrap_or(DEFAULT_INTERVAL_MS);
    if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&interval_ms) {
        anyhow::bail!(
            "invalid monitor interval {interval_ms} ms: must be in {MIN_INTERVAL_MS}..{MAX_INTERVAL_MS}"
        );
    }
    let sink_texts = if args.log_sinks.is_empty() {
        file.log_sinks.unwrap_or_default()
    } else {
        args.log_sinks.clone()
    };
    let log_sinks = sink_texts
        .iter()
        .map(|s| SinkSpec::parse(s).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let config = SupervisorConfig {
        base_rootfs: std::fs::canonicalize(&args.base_rootfs)
            .with_context(|| format!("base rootfs {}", args.base_rootfs.display()))?,
        socket: abs(&socket)?,
        state_dir: abs(&state_dir)?,
        libexec_dir: supervisor::config::default_libexec_dir(),
        monitor: MonitorConfig {
            interval: Duration::from_millis(interval_ms),
            force: match monitor {
                MonitorChoice::Auto => None,
                MonitorChoice::Kernel => Some(BackendKind::Kernel),
                MonitorChoice::Userspace => Some(BackendKind::Userspace),
            },
            ..MonitorConfig::default()
        },
        log_sinks,
    };
    supervisor::run(config)?;
    Ok(0)
}
