//! What the core reacts to: client requests, reports of the work the shell carried out
//! (rootfs checks, clones, ready pipes, reaped children), the log-router, the memory monitor,
//! timer ticks and the shutdown signal. Each [`Input`] is a fact the shell observed.

use crate::container::spawn::SpawnError;
use crate::monitor::MonitorEvent;
use crate::router_link::RouterError;
use proto::api::RequestFrame;
use proto::exit::InitExit;
use proto::init::report::Outcome;
use proto::router::FromRouter;
use std::path::PathBuf;
use std::time::Instant;

/// One client connection, unique for the supervisor's lifetime (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// One start request in flight, unique for the supervisor's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StartId(pub u64);

/// The time of an input: the monotonic instant (deadlines) and the wall clock (records'
/// `started_at_ms`/`ended_at_ms`, ms since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time.
    pub at: Instant,
    /// Wall-clock time, ms since the Unix epoch.
    pub unix_ms: u64,
}

/// Why a rootfs check failed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsCheckError {
    /// `metadata` or `canonicalize` failed (missing, no permission, a dead mount...).
    #[error("rootfs {path}: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The path exists but is not a directory.
    #[error("rootfs {0} is not a directory")]
    NotDirectory(String),
}

/// Why the shell could not clone a container-init for a start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnFailure {
    /// The previous container's log files (same id) could not be removed.
    #[error("cannot remove old log {path}: {source}")]
    OldLogs {
        /// The log path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The pipes or the clone failed.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// Why a cloned container-init's ready pipe cannot be heard (it is then killed).
#[derive(Debug, thiserror::Error)]
pub enum ReadyLost {
    /// Making the pipe non-blocking or reading it failed.
    #[error(transparent)]
    Read(#[from] SpawnError),
    /// The pipe could not be registered with the poller.
    #[error("watch the ready pipe: {0}")]
    Watch(#[source] std::io::Error),
}

/// Something the shell observed, for [`crate::core::Core::on`].
#[derive(Debug)]
pub enum Input {
    /// A decoded request from a client connection.
    Request {
        /// The connection; its answers go back to it, in order.
        conn: ConnId,
        /// The request.
        frame: RequestFrame,
    },
    /// A connection is gone: nothing more can be answered on it.
    Disconnected {
        /// The connection.
        conn: ConnId,
    },
    /// Result of an [`crate::core::Effect::CheckRootfs`]: the canonical path of a directory.
    RootfsChecked {
        /// The start it belongs to.
        start: StartId,
        /// Canonical path, or why the rootfs cannot be used.
        result: Result<PathBuf, RootfsCheckError>,
    },
    /// Result of an [`crate::core::Effect::Spawn`]: container-init was cloned with this host
    /// PID; its ready report comes later.
    InitSpawned {
        /// The start.
        start: StartId,
        /// Host PID of container-init.
        pid: i32,
    },
    /// Result of an [`crate::core::Effect::Spawn`]: nothing was cloned.
    SpawnFailed {
        /// The start.
        start: StartId,
        /// Why.
        error: SpawnFailure,
    },
    /// container-init's ready pipe reached EOF (ready) or carried a failure report.
    InitReport {
        /// The start.
        start: StartId,
        /// The decoded report.
        outcome: Outcome,
    },
    /// container-init's ready pipe of a start cannot be read: the start fails.
    ReadyLost {
        /// The start.
        start: StartId,
        /// Why.
        error: ReadyLost,
    },
    /// A child was reaped (`waitpid`), other than the log-router.
    ChildExited {
        /// Its host PID.
        pid: i32,
        /// How it ended.
        exit: InitExit,
    },
    /// The result of removing an ended container's log files ([`crate::core::Effect::RemoveLogs`]);
    /// the core knows which `rm` (if any) asked.
    LogsRemoved {
        /// The container's id.
        id: String,
        /// Whether the files are gone.
        result: std::io::Result<()>,
    },
    /// A report from the log-router.
    Router(FromRouter),
    /// The log-router's control socket reached EOF.
    RouterClosed,
    /// The current log-router process was reaped.
    RouterExited,
    /// A (re)start of the log-router failed before it could be configured.
    RouterStartFailed(RouterError),
    /// An event of the memory monitor.
    Monitor(MonitorEvent),
    /// Time passed (a poll timeout or any wake-up): deadlines are checked.
    Tick,
    /// SIGINT or SIGTERM: stop everything and exit.
    Shutdown {
        /// The signal number.
        signal: i32,
    },
}
