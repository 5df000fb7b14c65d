//! Spawning a container: `clone()` into new PID, UTS, mount and IPC namespaces, exec
//! `container-init` with the container's parameters, and read its ready report.
//! What to spawn and why a spawn failed are [`super::request`]'s (every phase uses them).
//!
//! Two phases: [`clone_now`] returns as soon as container-init is cloned, with the read end
//! of its ready pipe (the supervisor's loop watches it, see [`super::ready::Reader`]);
//! [`spawn`] does both phases in one blocking call (for tests and simple callers).
//!
//! Phases, one file each: [`super::stdio`] (pipes), [`super::init_args`] (the command line,
//! prepared before the clone), [`super::namespaces`] (the clone and the child's exec),
//! [`super::ready`] (the report). The rootfs itself is built by `container-init` inside the
//! new mount namespace.

use super::namespaces::{clone_init, ChildPlan};
use super::ready::Outcome;
pub use super::request::{SpawnError, SpawnRequest};
use super::{init_args, ready, stdio};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use proto::exit::command_error;
use proto::init::report::Outcome as Report;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// How long `container-init` may take to set up the rootfs and exec the workload, in ms.
pub const READY_TIMEOUT_MS: u64 = 30_000;

/// A started container.
#[derive(Debug)]
pub struct Spawned {
    /// Host PID of container-init.
    pub pid: nix::unistd::Pid,
    /// Read end of the workload's stdout pipe (O_CLOEXEC).
    pub stdout: OwnedFd,
    /// Read end of the workload's stderr pipe (O_CLOEXEC).
    pub stderr: OwnedFd,
}

/// A container-init that was just cloned: its report is still to be read.
#[derive(Debug)]
pub struct InitChild {
    /// Host PID of container-init; the caller must reap it.
    pub pid: nix::unistd::Pid,
    /// Read end of the workload's stdout pipe (O_CLOEXEC).
    pub stdout: OwnedFd,
    /// Read end of the workload's stderr pipe (O_CLOEXEC).
    pub stderr: OwnedFd,
    /// Read end of the ready pipe (O_CLOEXEC): EOF with nothing written = the workload runs,
    /// see [`proto::init::report::decode`].
    pub ready: OwnedFd,
}

/// Spawns a container. Returns once container-init has set up the rootfs and started the
/// workload, or failed doing so.
///
/// On success the caller owns the child: it must reap `pid` (e.g. `waitpid(-1)` on
/// `SIGCHLD`). On [`SpawnError::Setup`] and [`SpawnError::Command`] the child has already
/// been reaped here. Ids and paths are not validated (the supervisor does that); a missing
/// rootfs comes back as [`SpawnError::Setup`] and a missing or non-executable workload binary
/// as [`SpawnError::Command`], both with container-init's one-line message, e.g.
/// `exec nothere: No such file or directory (os error 2)`.
///
/// Safe to call from a multi-threaded process: the cloned child only makes
/// async-signal-safe system calls before `exec`.
///
/// # Errors
/// [`SpawnError::Sys`] when a pipe, the clone or reading the report fails, or an argument
/// contains a NUL byte (`EINVAL`); [`SpawnError::Setup`] when container-init could not set
/// up the container or start the workload within [`READY_TIMEOUT_MS`];
/// [`SpawnError::Command`] when the workload's program was not found or not executable.
pub fn spawn(req: &SpawnRequest<'_>) -> Result<Spawned, SpawnError> {
    let parent = clone_now(req)?;
    let pid = parent.pid;
    let outcome = match ready::wait(&parent.ready, Duration::from_millis(READY_TIMEOUT_MS)) {
        Ok(outcome) => outcome,
        Err(e) => {
            reap_failed(pid, true);
            return Err(e);
        }
    };
    match outcome {
        Outcome::Report(Report::Ready) => {
            tracing::debug!(id = req.id, pid = pid.as_raw(), "container-init ready");
            Ok(Spawned {
                pid,
                stdout: parent.stdout,
                stderr: parent.stderr,
            })
        }
        Outcome::Report(Report::ChildFailed(failure)) => {
            reap_failed(pid, false);
            Err(SpawnError::Setup(failure.to_string()))
        }
        // container-init's own exit status says whether the workload's program was missing.
        Outcome::Report(Report::Failed(message)) => match reap_failed(pid, false) {
            Some(exit_code) if command_error(exit_code).is_some() => {
                Err(SpawnError::Command { message, exit_code })
            }
            _ => Err(SpawnError::Setup(message)),
        },
        Outcome::TimedOut => {
            reap_failed(pid, true);
            Err(SpawnError::Setup(format!(
                "container-init did not report within {READY_TIMEOUT_MS} ms"
            )))
        }
    }
}

/// Clones container-init and returns at once, without waiting for its report. The caller
/// owns the child (it must reap `pid`) and reads the ready pipe.
///
/// # Errors
/// [`SpawnError::Sys`] when a pipe or the clone fails, or an argument contains a NUL byte.
pub fn clone_now(req: &SpawnRequest<'_>) -> Result<InitChild, SpawnError> {
    let (parent, child) = stdio::create()?;
    let argv = init_args::build(req, child.ready.as_raw_fd())?;
    let envp = init_args::CArgv::new([])?;
    let plan = ChildPlan {
        fds: child.raw(),
        argv: &argv,
        envp: &envp,
    };
    let pid = clone_init(&plan).map_err(|source| SpawnError::Sys {
        what: "clone container-init",
        source,
    })?;
    // Only the child may hold the write ends now, so EOF means it exec'd the workload (or died).
    drop(child);
    Ok(InitChild {
        pid,
        stdout: parent.stdout,
        stderr: parent.stderr,
        ready: parent.ready,
    })
}

/// Reaps a child whose spawn failed (killing it first if `kill_first`), so that the caller
/// never sees its pid. Returns its exit code when it exited (rather than being killed).
fn reap_failed(pid: nix::unistd::Pid, kill_first: bool) -> Option<i32> {
    if kill_first {
        // SIGKILL to container-init (PID 1 of its namespace) ends the whole namespace.
        let _ = kill(pid, Signal::SIGKILL);
    }
    loop {
        match waitpid(pid, None) {
            Err(nix::Error::EINTR) => continue,
            Ok(WaitStatus::Exited(_, code)) => return Some(code),
            _ => return None,
        }
    }
}
