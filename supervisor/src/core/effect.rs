//! What the core asks the shell to do: answers, and every system call (checks, clones,
//! signals, log-router and monitor messages, file removal, exit).

use crate::core::input::{ConnId, StartId};
use crate::monitor::MonitorCommand;
use nix::sys::signal::Signal;
use proto::api::{Command, Response};
use proto::router::{SinkSpec, ToRouter};
use std::path::PathBuf;

/// Everything container-init needs, for [`Effect::Spawn`].
#[derive(Debug, Clone, PartialEq)]
pub struct SpawnSpec {
    /// Container id (the hostname).
    pub id: String,
    /// Canonical path of the container's rootfs.
    pub rootfs: PathBuf,
    /// The workload.
    pub command: Command,
    /// Nice value, -20..=19.
    pub nice: i32,
    /// The container's log path: its old files (a reused id) are removed before the clone.
    pub log_path: PathBuf,
}

/// One thing for the shell to carry out, in order.
#[derive(Debug)]
pub enum Effect {
    /// Send this answer on the connection (if it is still there).
    Answer {
        /// The connection.
        conn: ConnId,
        /// The answer.
        response: Response,
    },
    /// Check the rootfs off the loop: `metadata`, `is_dir`, `canonicalize`; report
    /// [`crate::core::Input::RootfsChecked`].
    CheckRootfs {
        /// The start.
        start: StartId,
        /// The path as the client gave it (absolute).
        path: PathBuf,
    },
    /// Remove the old logs of `spec.id`, clone container-init, watch its ready pipe, keep its
    /// output read ends; report [`crate::core::Input::InitSpawned`] or
    /// [`crate::core::Input::SpawnFailed`].
    Spawn {
        /// The start.
        start: StartId,
        /// What to run.
        spec: SpawnSpec,
    },
    /// Close the ready pipe and the output read ends of a start that did not become a
    /// container.
    DropStart {
        /// The start.
        start: StartId,
        /// Its container id (output fds are kept by id).
        id: String,
    },
    /// `kill(pid, signal)`; the exit comes back through the normal reaping.
    Kill {
        /// Host PID.
        pid: i32,
        /// The signal.
        signal: Signal,
    },
    /// Hand the container's output read ends to the log-router (`AddContainer`).
    RouteOutput {
        /// Container id.
        id: String,
        /// Its log file.
        log_path: PathBuf,
        /// Its sinks.
        sinks: Vec<SinkSpec>,
    },
    /// Close the container's output read ends (its log is drained).
    ForgetOutput {
        /// Container id.
        id: String,
    },
    /// Send a control message to the log-router.
    RouterSend(ToRouter),
    /// Kill the current log-router if it still runs, start a new one and send it `Configure`;
    /// its `Ready` comes as an input, a failure as [`crate::core::Input::RouterStartFailed`].
    StartRouter,
    /// SIGKILL the current log-router (hung or misconfigured).
    KillRouter,
    /// A command for the memory monitor.
    Monitor(MonitorCommand),
    /// Remove a container's log files; report [`crate::core::Input::LogsRemoved`].
    RemoveLogs {
        /// Container id.
        id: String,
        /// Its log path.
        log_path: PathBuf,
    },
    /// Everything is stopped: flush answers and exit.
    Exit,
}
