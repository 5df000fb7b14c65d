//! `engine supervisor`: resolve the daemon's settings and run it in the foreground.

use crate::args::{MonitorChoice, SupervisorArgs};
use anyhow::{Context, Result};
use proto::router::SinkSpec;
use std::path::Path;
use std::time::Duration;
use supervisor::monitor::{BackendKind, MonitorConfig};
use supervisor::SupervisorConfig;

/// Runs the supervisor until SIGINT/SIGTERM.
///
/// # Errors
/// Bad arguments, or the supervisor's start-up error (socket in use, missing rootfs, ...).
pub fn run(socket: &Path, args: &SupervisorArgs) -> Result<i32> {
    let abs = |p: &Path| {
        std::path::absolute(p).with_context(|| format!("cannot resolve path {}", p.display()))
    };
    let log_sinks = args
        .log_sinks
        .iter()
        .map(|s| SinkSpec::parse(s).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let config = SupervisorConfig {
        base_rootfs: abs(&args.base_rootfs)?,
        socket: abs(socket)?,
        state_dir: abs(&args.state_dir)?,
        libexec_dir: supervisor::config::default_libexec_dir(),
        monitor: MonitorConfig {
            interval: Duration::from_millis(args.monitor_interval_ms.max(1)),
            force: match args.monitor {
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
