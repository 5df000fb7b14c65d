//! Supervisor settings, resolved by the CLI from its arguments and environment.

use crate::monitor::MonitorConfig;
use proto::router::SinkSpec;
use std::path::PathBuf;

pub use proto::api::DEFAULT_SOCKET;
/// Default state directory (override with `--state-dir`); logs go to `<state-dir>/logs`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/engine";

/// Everything the supervisor needs to run.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Absolute path of the base rootfs, the lower layer of every container.
    pub base_rootfs: PathBuf,
    /// Absolute path of the listening socket.
    pub socket: PathBuf,
    /// Absolute path of the state directory.
    pub state_dir: PathBuf,
    /// Directory holding `container-init`, `log-router` and the built-in sink `.so` files.
    pub libexec_dir: PathBuf,
    /// Memory monitor settings.
    pub monitor: MonitorConfig,
    /// Default sinks of every container (`file` when empty).
    pub log_sinks: Vec<SinkSpec>,
}

impl SupervisorConfig {
    /// `<state-dir>/logs`.
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// `<state-dir>/logs/<id>.log`.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.logs_dir().join(format!("{id}.log"))
    }
}

/// The directory of the running executable, or `ENGINE_LIBEXEC_DIR` when set: where the
/// helper binaries (`container-init`, `log-router`) and built-in sinks are found.
pub fn default_libexec_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ENGINE_LIBEXEC_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."))
}
