//! Every exit-status rule of the engine, in one place: what `container-init` exits with, how
//! a wait status becomes a shell-style status, how the supervisor classes a failed start, what
//! the CLI exits with (its own errors, usage errors, the workload's status), and how a
//! container's end is attributed.
//!
//! Sources of the numbers:
//! - 126 and 127: POSIX, Shell Command Language §2.8.2 "Exit Status for Commands" (127: the
//!   command was not found; 126: found but not executable), also what `docker run` exits with
//!   when the container's command cannot be found (127) or invoked (126);
//! - 125: `docker run`'s status when the error is the runtime's own, not the command's;
//! - 128 + n: sh(1) and bash(1) report a command ended by signal n as 128 + n (POSIX only
//!   requires "greater than 128"; every common shell and `docker run` use 128 + n).

use crate::api::{ContainerState, ErrorCode, Reason};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;

/// The workload's program was not found (POSIX §2.8.2, `docker run`: 127).
pub const EXIT_COMMAND_NOT_FOUND: i32 = 127;

/// The workload's program was found but could not be executed: not executable, a directory,
/// an unknown binary format (POSIX §2.8.2, `docker run`: 126).
pub const EXIT_COMMAND_NOT_EXECUTABLE: i32 = 126;

/// An error of the engine itself rather than of the container's command (`docker run`: 125).
pub const EXIT_ENGINE_ERROR: i32 = 125;

/// `container-init`'s status when it could not set the container up (rootfs, hostname,
/// signals, a failed call in the workload's child before `exec`): the runtime's own failure,
/// so [`EXIT_ENGINE_ERROR`].
pub const EXIT_SETUP_FAILED: i32 = EXIT_ENGINE_ERROR;

/// `container-init`'s status for a malformed command line (a bug in the supervisor), as shell
/// builtins return 2 for incorrect usage (bash(1), "SHELL BUILTIN COMMANDS").
pub const EXIT_USAGE: i32 = 2;

/// Status of the supervisor's cloned child when it fails before `container-init` runs (the
/// failure itself goes on the ready pipe): 127, as POSIX `system()` and `posix_spawn()`
/// children exit when the program cannot be executed.
pub const EXIT_CHILD_FAILED: i32 = EXIT_COMMAND_NOT_FOUND;

/// The CLI's status for `--help` and `--version`: they did what was asked (`docker --help`).
pub const EXIT_SUCCESS: i32 = 0;

/// Added to a signal number to make a status (sh(1)).
const SIGNAL_BASE: i32 = 128;

/// Status of a process ended by signal `sig`, as a shell reports it: 128 + `sig` (e.g. 137 for
/// SIGKILL, 141 for SIGPIPE).
pub const fn signal_status(sig: i32) -> i32 {
    SIGNAL_BASE + sig
}

/// How a process ended, as waitpid(2) reported it (for the supervisor, container-init; for
/// container-init, its main workload process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitExit {
    /// `exit(code)`: for container-init, the workload's status as it carries it.
    Code(i32),
    /// Ended by this signal number.
    Signal(i32),
}

impl InitExit {
    /// The end in a wait status; `None` for a status that is not an end (stopped, continued,
    /// still alive).
    pub fn from_wait(status: WaitStatus) -> Option<Self> {
        match status {
            WaitStatus::Exited(_, code) => Some(Self::Code(code)),
            WaitStatus::Signaled(_, sig, _) => Some(Self::Signal(sig as i32)),
            _ => None,
        }
    }

    /// The status as a shell reports it: the exit code, or [`signal_status`] of the signal.
    pub const fn status(self) -> i32 {
        match self {
            Self::Code(c) => c,
            Self::Signal(s) => signal_status(s),
        }
    }
}

/// `container-init`'s status when the workload could not be started with error `e`:
/// [`EXIT_COMMAND_NOT_FOUND`] when the program is not found, [`EXIT_COMMAND_NOT_EXECUTABLE`]
/// when it cannot be executed (`EACCES`, `ENOEXEC`: not executable, a directory, an unknown
/// binary format), [`EXIT_SETUP_FAILED`] otherwise.
pub fn exec_error_status(e: &std::io::Error) -> i32 {
    if e.raw_os_error() == Some(nix::errno::Errno::ENOEXEC as i32) {
        return EXIT_COMMAND_NOT_EXECUTABLE;
    }
    match e.kind() {
        std::io::ErrorKind::NotFound => EXIT_COMMAND_NOT_FOUND,
        std::io::ErrorKind::PermissionDenied => EXIT_COMMAND_NOT_EXECUTABLE,
        _ => EXIT_SETUP_FAILED,
    }
}

/// The error class of a start whose `container-init` exited `status` after reporting a
/// failure: [`ErrorCode::CommandNotFound`] for [`EXIT_COMMAND_NOT_FOUND`],
/// [`ErrorCode::CommandNotExecutable`] for [`EXIT_COMMAND_NOT_EXECUTABLE`], `None` for any
/// other status (a set-up failure).
pub fn command_error(status: i32) -> Option<ErrorCode> {
    match status {
        EXIT_COMMAND_NOT_FOUND => Some(ErrorCode::CommandNotFound),
        EXIT_COMMAND_NOT_EXECUTABLE => Some(ErrorCode::CommandNotExecutable),
        _ => None,
    }
}

/// The CLI's status for a failed command, given the supervisor's error class if the failure
/// was an error answer: [`EXIT_COMMAND_NOT_FOUND`] and [`EXIT_COMMAND_NOT_EXECUTABLE`] for the
/// two command errors (as `docker run` exits), [`EXIT_ENGINE_ERROR`] for everything else (a
/// refused request, an unreachable supervisor, a bad argument: the engine's error, not the
/// workload's, so a script can tell it from the workload's own 1 or 2).
pub fn error_status(code: Option<ErrorCode>) -> i32 {
    match code {
        Some(ErrorCode::CommandNotFound) => EXIT_COMMAND_NOT_FOUND,
        Some(ErrorCode::CommandNotExecutable) => EXIT_COMMAND_NOT_EXECUTABLE,
        _ => EXIT_ENGINE_ERROR,
    }
}

/// The CLI's status when its command line was not run: [`EXIT_SUCCESS`] when the user asked
/// for help or the version (`help_or_version`), [`EXIT_ENGINE_ERROR`] for a usage error (an
/// unknown flag, a missing argument, no verb), where argument parsers commonly exit 2: as
/// `docker run` does, so that 2 stays the workload's.
pub const fn usage_status(help_or_version: bool) -> i32 {
    if help_or_version {
        EXIT_SUCCESS
    } else {
        EXIT_ENGINE_ERROR
    }
}

/// Decides a container's final state and reason from how its init ended: `stopped` when a
/// stop was requested; hard-limit kill when the monitor reported one or, failing that, init
/// died of SIGKILL with no stop requested; otherwise the exit code or signal.
pub fn attribute(
    exit: InitExit,
    stop_requested: bool,
    hard_limit_killed: bool,
) -> (ContainerState, Reason) {
    if stop_requested {
        (ContainerState::Stopped, Reason::Stopped)
    } else if hard_limit_killed || exit == InitExit::Signal(Signal::SIGKILL as i32) {
        (ContainerState::Killed, Reason::HardLimitKilled)
    } else {
        match exit {
            InitExit::Code(c) => (ContainerState::Exited, Reason::Exit(c)),
            InitExit::Signal(s) => (ContainerState::Exited, Reason::Signal(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::Pid;
    use std::io;

    #[test]
    fn wait_statuses_follow_the_shell_convention() {
        let p = Pid::from_raw(5);
        let code = InitExit::from_wait(WaitStatus::Exited(p, 3)).unwrap();
        assert_eq!((code, code.status()), (InitExit::Code(3), 3));
        let killed = InitExit::from_wait(WaitStatus::Signaled(p, Signal::SIGKILL, false)).unwrap();
        assert_eq!((killed, killed.status()), (InitExit::Signal(9), 137));
        assert_eq!(signal_status(Signal::SIGPIPE as i32), 141);
        assert_eq!(InitExit::from_wait(WaitStatus::StillAlive), None);
        assert_eq!(
            InitExit::from_wait(WaitStatus::Stopped(p, Signal::SIGSTOP)),
            None
        );
    }

    #[test]
    fn exec_errors_map_to_126_127_or_setup() {
        let os = |errno: nix::errno::Errno| exec_error_status(&io::Error::from(errno));
        assert_eq!(os(nix::errno::Errno::ENOENT), 127);
        assert_eq!(os(nix::errno::Errno::EACCES), 126);
        assert_eq!(os(nix::errno::Errno::ENOEXEC), 126);
        assert_eq!(os(nix::errno::Errno::ENOMEM), 125);
        assert_eq!(exec_error_status(&io::ErrorKind::InvalidInput.into()), 125);
    }

    #[test]
    fn command_errors_round_trip_to_the_same_status() {
        for status in [EXIT_COMMAND_NOT_FOUND, EXIT_COMMAND_NOT_EXECUTABLE] {
            assert_eq!(error_status(command_error(status)), status);
        }
        assert_eq!(command_error(127), Some(ErrorCode::CommandNotFound));
        assert_eq!(command_error(126), Some(ErrorCode::CommandNotExecutable));
        for status in [0, 1, EXIT_USAGE, EXIT_SETUP_FAILED, 128, signal_status(9)] {
            assert_eq!(command_error(status), None, "{status}");
        }
        assert_eq!(error_status(None), 125);
        assert_eq!(error_status(Some(ErrorCode::SpawnFailed)), 125);
        assert_eq!(error_status(Some(ErrorCode::NotFound)), 125);
    }

    #[test]
    fn usage_errors_are_the_engines_and_help_succeeds() {
        assert_eq!(usage_status(true), 0);
        assert_eq!(usage_status(false), 125);
    }

    #[test]
    fn attribution_rules() {
        use ContainerState as S;
        assert_eq!(
            attribute(InitExit::Code(0), false, false),
            (S::Exited, Reason::Exit(0))
        );
        assert_eq!(
            attribute(InitExit::Code(137), false, false),
            (S::Exited, Reason::Exit(137))
        );
        assert_eq!(
            attribute(InitExit::Signal(9), true, false),
            (S::Stopped, Reason::Stopped)
        );
        assert_eq!(
            attribute(InitExit::Code(143), true, true),
            (S::Stopped, Reason::Stopped)
        );
        assert_eq!(
            attribute(InitExit::Signal(9), false, false),
            (S::Killed, Reason::HardLimitKilled)
        );
        assert_eq!(
            attribute(InitExit::Code(137), false, true),
            (S::Killed, Reason::HardLimitKilled)
        );
        assert_eq!(
            attribute(InitExit::Signal(15), false, false),
            (S::Exited, Reason::Signal(15))
        );
    }
}
