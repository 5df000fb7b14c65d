//! The core's settings: paths it computes with (never touches), default sinks, and its
//! timeouts.

use proto::router::SinkSpec;
use std::path::PathBuf;
use std::time::Duration;

/// How long a start may take from the request to container-init's ready report (rootfs
/// check, `--log-opt` validation and set-up together), in ms: 30 s, as [`spawn`] allows.
///
/// [`spawn`]: crate::container::spawn::spawn
pub use crate::container::spawn::READY_TIMEOUT_MS;
/// Rootfs checks that may be in flight at once (a check can hang on a dead mount: each one
/// holds a thread until its filesystem answers); a start beyond them is refused.
pub const MAX_ROOTFS_CHECKS: usize = 128;
/// Longest wait for a (re)started log-router's `Ready`, in ms: 10 s.
pub const ROUTER_READY_TIMEOUT_MS: u64 = 10_000;
/// Delay before retrying a failed log-router restart, in ms: 1 s, doubled after each further
/// failure up to [`ROUTER_RETRY_MAX_MS`].
pub const ROUTER_RETRY_MS: u64 = 1_000;
/// Longest delay between log-router restarts, in ms: 30 s.
pub const ROUTER_RETRY_MAX_MS: u64 = 30_000;
/// Longest wait for the log-router to exit at shutdown, in ms: 10 s.
pub const ROUTER_SHUTDOWN_MS: u64 = 10_000;

/// Everything the core needs to decide.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Canonical path of the base rootfs (a container's rootfs may not overlap it).
    pub base_rootfs: PathBuf,
    /// Directory of the logs: a container's is `<logs_dir>/<id>.log`.
    pub logs_dir: PathBuf,
    /// Sinks of a container that names none of its own.
    pub default_sinks: Vec<SinkSpec>,
    /// See [`READY_TIMEOUT_MS`].
    pub ready_timeout: Duration,
    /// See [`MAX_ROOTFS_CHECKS`].
    pub max_rootfs_checks: usize,
    /// See [`ROUTER_READY_TIMEOUT_MS`].
    pub router_ready_timeout: Duration,
    /// See [`ROUTER_RETRY_MS`].
    pub router_retry: Duration,
    /// See [`ROUTER_RETRY_MAX_MS`].
    pub router_retry_max: Duration,
    /// See [`ROUTER_SHUTDOWN_MS`].
    pub router_shutdown_timeout: Duration,
}

impl CoreConfig {
    /// The defaults above for these paths and sinks.
    pub fn new(base_rootfs: PathBuf, logs_dir: PathBuf, default_sinks: Vec<SinkSpec>) -> Self {
        Self {
            base_rootfs,
            logs_dir,
            default_sinks,
            ready_timeout: Duration::from_millis(READY_TIMEOUT_MS),
            max_rootfs_checks: MAX_ROOTFS_CHECKS,
            router_ready_timeout: Duration::from_millis(ROUTER_READY_TIMEOUT_MS),
            router_retry: Duration::from_millis(ROUTER_RETRY_MS),
            router_retry_max: Duration::from_millis(ROUTER_RETRY_MAX_MS),
            router_shutdown_timeout: Duration::from_millis(ROUTER_SHUTDOWN_MS),
        }
    }

    /// `<logs_dir>/<id>.log`.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.logs_dir.join(format!("{id}.log"))
    }
}
