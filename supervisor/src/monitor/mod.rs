//! The memory monitor actor: a dedicated thread that owns a monitor backend, takes
//! register/unregister commands over a crossbeam channel, and reports limit events back to
//! the supervisor loop (waking it with a `mio::Waker`).
//!
//! [`start`] picks a backend ([`kernel`] when the device opens, else [`userspace`]) and
//! spawns the actor thread; [`MonitorHandle`] sends it commands and shuts it down.

mod actor;
pub mod kernel;
pub mod kmsg;
mod procfs;
pub mod userspace;

pub use actor::{start, start_with_backend, MonitorError, MonitorHandle};

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
    /// The answer to every [`MonitorCommand::Register`]: tracked (`error: None`), or the
    /// backend's one-line reason for refusing it. The supervisor answers a start only then.
    Registered {
        /// Container id.
        id: String,
        /// Host PID of its init.
        pid: i32,
        /// Why the backend refused it, if it did.
        error: Option<String>,
    },
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

impl MonitorEvent {
    /// The log line of a limit event, exactly as the kernel module writes it:
    /// `[container_monitor] SOFT LIMIT container=<id> pid=<pid> rss=<bytes> limit=<bytes>` or
    /// `[container_monitor] HARD LIMIT ...`. `None` for other events.
    pub fn limit_line(&self) -> Option<String> {
        let (kind, id, pid, rss, limit) = match self {
            Self::SoftLimit {
                id,
                pid,
                rss_bytes,
                limit_bytes,
            } => ("SOFT", id, pid, rss_bytes, limit_bytes),
            Self::HardLimitKilled {
                id,
                pid,
                rss_bytes,
                limit_bytes,
            } => ("HARD", id, pid, rss_bytes, limit_bytes),
            Self::Rss { .. } | Self::Error { .. } | Self::Registered { .. } => return None,
        };
        Some(format!(
            "{LINE_PREFIX} {kind} LIMIT container={id} pid={pid} rss={rss} limit={limit}"
        ))
    }
}

/// Prefix of the monitor's kernel-log lines.
pub const LINE_PREFIX: &str = "[container_monitor]";

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

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Kernel => "kernel",
            Self::Userspace => "userspace",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_lines() {
        let soft = MonitorEvent::SoftLimit {
            id: "hog".into(),
            pid: 8434,
            rss_bytes: 42_598_400,
            limit_bytes: 41_943_040,
        };
        assert_eq!(
            soft.limit_line().unwrap(),
            "[container_monitor] SOFT LIMIT container=hog pid=8434 rss=42598400 limit=41943040"
        );
        let hard = MonitorEvent::HardLimitKilled {
            id: "hog".into(),
            pid: 8434,
            rss_bytes: 67_764_224,
            limit_bytes: 67_108_864,
        };
        assert_eq!(
            hard.limit_line().unwrap(),
            "[container_monitor] HARD LIMIT container=hog pid=8434 rss=67764224 limit=67108864"
        );
        let rss = MonitorEvent::Rss {
            id: "hog".into(),
            rss_bytes: 1,
        };
        assert_eq!(rss.limit_line(), None);
        assert_eq!(BackendKind::Userspace.to_string(), "userspace");
    }
}
