//! Requests and responses between the `engine` CLI and the supervisor.
//!
//! Every request travels as a [`RequestFrame`] carrying [`PROTOCOL_VERSION`]; every answer is a
//! [`Response`]. One connection may carry several requests, answered in order. `Wait` is
//! answered only when the container has ended (its init reaped and its log drained).

use serde::{Deserialize, Serialize};

/// Version of this protocol; a request with another version is answered with
/// [`ErrorCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Where the supervisor listens and clients connect by default (override with `--socket` or
/// `ENGINE_SOCKET`).
pub const DEFAULT_SOCKET: &str = "/run/engine/engine.sock";

/// Default soft RSS limit, in bytes (40 MiB).
pub const DEFAULT_SOFT_LIMIT_BYTES: u64 = 40 * 1024 * 1024;
/// Default hard RSS limit, in bytes (64 MiB).
pub const DEFAULT_HARD_LIMIT_BYTES: u64 = 64 * 1024 * 1024;
/// Default grace period of `stop` between SIGTERM and SIGKILL, in ms (10 s, as `docker stop`).
pub const DEFAULT_STOP_GRACE_MS: u64 = 10_000;

/// Envelope of every request: the protocol version and the request itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFrame {
    /// Must equal [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The request.
    pub request: Request,
}

impl RequestFrame {
    /// Wraps `request` with the current [`PROTOCOL_VERSION`].
    pub fn new(request: Request) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            request,
        }
    }
}

/// What a client asks of the supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Create and start a container. Answered with [`Response::Container`] once it is created
    /// and recorded (state `running`), or an error.
    Start(StartSpec),
    /// Wait until the container has ended and its log is complete. Answered with
    /// [`Response::Container`] in a final state.
    Wait {
        /// Container id.
        id: String,
    },
    /// SIGTERM to every process of the container, SIGKILL after `grace_ms`. Answered with
    /// [`Response::Container`] once the container is gone.
    Stop {
        /// Container id.
        id: String,
        /// Grace period between SIGTERM and SIGKILL, in ms.
        grace_ms: u64,
    },
    /// List every known container, live and ended. Answered with [`Response::Containers`].
    Ps,
    /// One container's record. Answered with [`Response::Container`].
    Inspect {
        /// Container id.
        id: String,
    },
    /// Send `signal` to the container's init, which forwards it to every process of the
    /// container (`docker kill -s`, and `run`'s signal proxy). Only the signals of
    /// [`crate::init::FORWARDED_SIGNALS`] (SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT,
    /// SIGWINCH) are accepted, others are [`ErrorCode::InvalidArgument`]; a SIGTERM sent so
    /// is the workload's to handle (no grace period, no SIGKILL follows: that is `Stop`).
    /// Answered at once with [`Response::Container`]; [`ErrorCode::Conflict`] when the
    /// container is not running.
    Kill {
        /// Container id.
        id: String,
        /// Signal number (Linux numbering).
        signal: i32,
    },
    /// Forget an ended container: its record and its log files (`docker rm`). Answered with
    /// [`Response::Container`], the record as it was; a live container is refused with
    /// [`ErrorCode::Conflict`] (stop it first), an unknown id with [`ErrorCode::NotFound`].
    Remove {
        /// Container id.
        id: String,
    },
}

/// Everything needed to start a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartSpec {
    /// Container id, `[A-Za-z0-9][A-Za-z0-9_.-]{0,30}` (see [`crate::limits::validate_id`]).
    pub id: String,
    /// Absolute path of the container's rootfs directory, as seen by the supervisor.
    pub rootfs: String,
    /// The workload.
    pub command: Command,
    /// Soft RSS limit, in bytes: crossing it logs one warning.
    pub soft_limit_bytes: u64,
    /// Hard RSS limit, in bytes: crossing it kills the container with SIGKILL.
    pub hard_limit_bytes: u64,
    /// Nice value of the workload, -20..=19 (setpriority(2)).
    pub nice: i32,
    /// Per-container log options in Docker's `--log-opt` style (`key=value`); empty for the
    /// supervisor's defaults.
    #[serde(default)]
    pub log_opts: Vec<String>,
    /// Remove the record and its log files once the container has ended and the connection
    /// that sent this `Start` is closed (`run --rm`: its client reads the log to the end
    /// first); `false` when absent.
    #[serde(default)]
    pub remove_on_exit: bool,
}

/// The workload of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Run as `/bin/sh -c <string>` inside the rootfs.
    Shell(String),
    /// exec'd as given: `argv[0]` is looked up in the container's `PATH`.
    Argv(Vec<String>),
}

/// Lifecycle state of a container, as `ps` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    /// Created, init not yet confirmed running.
    Starting,
    /// Init is running.
    Running,
    /// Ended by itself (exit code or signal).
    Exited,
    /// Ended after a `stop` request.
    Stopped,
    /// Killed by the memory monitor at its hard limit.
    Killed,
}

impl ContainerState {
    /// Lower-case name as printed by `ps`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Exited => "exited",
            Self::Stopped => "stopped",
            Self::Killed => "killed",
        }
    }

    /// True for the final states.
    pub fn is_ended(self) -> bool {
        matches!(self, Self::Exited | Self::Stopped | Self::Killed)
    }
}

/// Why a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The workload exited with this code (container-init carries
    /// [`crate::exit::signal_status`] when the workload was signalled).
    Exit(i32),
    /// container-init itself was ended by this signal.
    Signal(i32),
    /// A `stop` was requested.
    Stopped,
    /// The memory monitor killed the container at its hard limit.
    HardLimitKilled,
}

impl Reason {
    /// Text shown in `ps`'s REASON column: `exit 3`, `signal 9`, `stopped`, `hard_limit_killed`.
    pub fn to_display(self) -> String {
        match self {
            Self::Exit(c) => format!("exit {c}"),
            Self::Signal(s) => format!("signal {s}"),
            Self::Stopped => "stopped".into(),
            Self::HardLimitKilled => "hard_limit_killed".into(),
        }
    }
}

/// What one sink did not store for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkDrops {
    /// Sink name or path, as configured; `discarded` for output the log-router read and threw
    /// away because the container's sinks could not be created.
    pub sink: String,
    /// Records the sink did not store: its queue was full (non-blocking mode), it failed for
    /// good, or it was still failing at the end of its drain timeout. Each record counts once.
    pub dropped_records: u64,
    /// Bytes in those records.
    pub dropped_bytes: u64,
}

/// A blocking sink a container's end waits for: it was failing (peer down, disk full) once
/// the container's output ended, and is retried for up to its `drain-timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkWait {
    /// The sink and its options, as configured (router options left out), e.g.
    /// `tcp:address=127.0.0.1:5170`.
    pub sink: String,
    /// Longest wait, in ms from the end of the container's output (its `drain-timeout`).
    pub timeout_ms: u64,
}

/// A container's record, as `ps` and `inspect` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// Container id.
    pub id: String,
    /// Host PID of the container's init (0 if it never started).
    pub pid: i32,
    /// Lifecycle state.
    pub state: ContainerState,
    /// Why it ended; `None` while it runs.
    pub reason: Option<Reason>,
    /// Start time, ms since the Unix epoch.
    pub started_at_ms: u64,
    /// End time, ms since the Unix epoch; `None` while it runs.
    pub ended_at_ms: Option<u64>,
    /// Soft RSS limit, in bytes.
    pub soft_limit_bytes: u64,
    /// Hard RSS limit, in bytes.
    pub hard_limit_bytes: u64,
    /// Last measured RSS of the whole container, in bytes, if measured yet.
    pub rss_bytes: Option<u64>,
    /// Absolute path of the container's log file.
    pub log_path: String,
    /// Absolute path of the rootfs.
    pub rootfs: String,
    /// The workload.
    pub command: Command,
    /// Status a `run` client exits with: [`crate::exit::InitExit::status`] of container-init's
    /// end (the exit code, or 128 + signal). `None` while it runs.
    pub exit_status: Option<i32>,
    /// Drop counters of the sinks that dropped records (empty when nothing was ever dropped).
    #[serde(default)]
    pub dropped: Vec<SinkDrops>,
    /// Sinks the container's end is waiting for, while its log drains (empty otherwise; added
    /// after protocol version 1 without a version change: older peers skip or default it).
    #[serde(default)]
    pub draining: Vec<SinkWait>,
}

/// Machine-readable class of an error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid MessagePack for a request, or too large.
    BadRequest,
    /// The request's protocol version is not [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// An argument is invalid (id syntax, limits, nice, path).
    InvalidArgument,
    /// No container has that id.
    NotFound,
    /// The id or rootfs is already used by a live container.
    Conflict,
    /// The peer's uid is neither root nor the supervisor's.
    PermissionDenied,
    /// The supervisor is shutting down.
    ShuttingDown,
    /// Creating the container failed.
    SpawnFailed,
    /// The container was set up but its program was not found in the rootfs (or `$PATH`).
    /// `engine run`/`start` exit [`crate::exit::EXIT_COMMAND_NOT_FOUND`] for it.
    CommandNotFound,
    /// The container was set up but its program could not be executed (not executable, a
    /// directory, a bad binary format). `engine run`/`start` exit
    /// [`crate::exit::EXIT_COMMAND_NOT_EXECUTABLE`].
    CommandNotExecutable,
    /// Any other failure inside the supervisor.
    Internal,
}

/// An error answer that crosses the process boundary: a code and a one-line message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Class of the error.
    pub code: ErrorCode,
    /// One line for a person.
    pub message: String,
}

/// What the supervisor answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// One container's record.
    Container(ContainerInfo),
    /// Every container, sorted by start time.
    Containers(Vec<ContainerInfo>),
    /// The request failed.
    Error(ErrorBody),
}

impl Response {
    /// Shorthand for an error answer.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error(ErrorBody {
            code,
            message: message.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    #[test]
    fn request_round_trips_as_named_map() {
        let req = RequestFrame::new(Request::Start(StartSpec {
            id: "alpha".into(),
            rootfs: "/tmp/r".into(),
            command: Command::Shell("echo hi".into()),
            soft_limit_bytes: DEFAULT_SOFT_LIMIT_BYTES,
            hard_limit_bytes: DEFAULT_HARD_LIMIT_BYTES,
            nice: 0,
            log_opts: vec![],
            remove_on_exit: true,
        }));
        let bytes = frame::encode(&req).unwrap();
        let back: RequestFrame = frame::decode(&bytes[frame::HEADER_LEN..]).unwrap();
        assert_eq!(back, req);
        // Field names are on the wire, so an older peer can skip unknown ones.
        let needle = b"soft_limit_bytes";
        assert!(bytes.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn reason_display() {
        assert_eq!(Reason::Exit(3).to_display(), "exit 3");
        assert_eq!(Reason::HardLimitKilled.to_display(), "hard_limit_killed");
    }
}
