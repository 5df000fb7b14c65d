//! The memory monitor actor: a dedicated thread that owns a monitor backend, takes
//! register/unregister commands over a crossbeam channel, and reports limit events back to
//! the supervisor loop (waking it with a `mio::Waker`).

pub mod kernel;

use std::path::PathBuf;
use std::time::Duration;

/// Default scan interval, in ms.
pub const DEFAULT_INTERVAL_MS: u64 = 200;
/// Device node of the kernel module.
pub const DEVICE_PATH: &str = "/dev/container_monitor";

/// A container the monitor tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// Container id.
    pub id: String,
    /// Host PID of its init.
    pub pid: i32,
    /// Soft RSS limit, in bytes.
    pub soft_limit_bytes: u64,
    /// Hard RSS limit, in bytes.
    pub hard_limit_bytes: u64,
}

/// Supervisor → monitor actor.
#[derive(Debug, Clone)]
pub enum MonitorCommand {
    /// Start tracking.
    Register(Tracked),
    /// Stop tracking (the container ended or is being stopped).
    Unregister {
        /// Container id.
        id: String,
        /// Host PID of its init.
        pid: i32,
    },
    /// End the actor thread.
    Shutdown,
}

/// Monitor actor → supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorEvent {
    /// The soft limit was crossed (reported once per container).
    SoftLimit {
        /// Container id.
        id: String,
        /// Host PID of its init.
        pid: i32,
        /// Measured RSS, in bytes.
        rss_bytes: u64,
        /// The soft limit, in bytes.
        limit_bytes: u64,
    },
    /// The hard limit was crossed and the container was killed with SIGKILL.
    HardLimitKilled {
        /// Container id.
        id: String,
        /// Host PID of its init.
        pid: i32,
        /// Measured RSS, in bytes.
        rss_bytes: u64,
        /// The hard limit, in bytes.
        limit_bytes: u64,
    },
    /// Latest RSS measurement of a container, in bytes.
    Rss {
        /// Container id.
        id: String,
        /// Measured RSS, in bytes.
        rss_bytes: u64,
    },
    /// A backend error the supervisor should log (e.g. a failed ioctl).
    Error {
        /// Container id, when the error concerns one.
        id: Option<String>,
        /// One-line reason.
        message: String,
    },
}

/// Which backend is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// `/dev/container_monitor` (the kernel module).
    Kernel,
    /// The userspace scanner of `/proc`.
    Userspace,
}

/// Monitor settings.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Scan interval of the userspace backend (and RSS query interval of the kernel one).
    pub interval: Duration,
    /// Device path of the kernel module.
    pub device: PathBuf,
    /// Force a backend instead of choosing by the device's presence.
    pub force: Option<BackendKind>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(DEFAULT_INTERVAL_MS),
            device: PathBuf::from(DEVICE_PATH),
            force: None,
        }
    }
}

/// What a backend does; the actor thread drives it.
pub trait Backend: Send {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// Start tracking a container.
    ///
    /// # Errors
    /// One-line reason.
    fn register(&mut self, tracked: &Tracked) -> Result<(), String>;
    /// Stop tracking a container.
    ///
    /// # Errors
    /// One-line reason.
    fn unregister(&mut self, id: &str, pid: i32) -> Result<(), String>;
    /// Called once per interval: measure (or collect the kernel's events) and push what
    /// happened since the last call.
    fn tick(&mut self, out: &mut Vec<MonitorEvent>);
}
