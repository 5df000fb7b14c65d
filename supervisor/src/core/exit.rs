//! How a container's end is told: how container-init ended, the status a `run` client exits
//! with (the exit code, or 128+signal as a shell reports it), and which state and reason a
//! record gets (stop vs hard-limit attribution).

use proto::api::{ContainerState, Reason};

pub use crate::container::spawn::{EXIT_COMMAND_NOT_EXECUTABLE, EXIT_COMMAND_NOT_FOUND};

/// SIGKILL's number on Linux (signal(7)).
const SIGKILL: i32 = 9;

/// How container-init ended, as waitpid(2) reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitExit {
    /// `exit(code)`: the workload's status as carried by container-init.
    Code(i32),
    /// Ended by this signal number.
    Signal(i32),
}

impl InitExit {
    /// The status a `run` client exits with: the code, or 128+signal.
    pub fn status(self) -> i32 {
        match self {
            Self::Code(c) => c,
            Self::Signal(s) => 128 + s,
        }
    }
}

/// Decides the final state and reason: `stopped` when a stop was requested; hard-limit kill
/// when the monitor reported one or, failing that, SIGKILL with no stop requested; otherwise
/// the exit code or signal.
pub fn attribute(
    exit: InitExit,
    stop_requested: bool,
    hard_killed: bool,
) -> (ContainerState, Reason) {
    if stop_requested {
        (ContainerState::Stopped, Reason::Stopped)
    } else if hard_killed || exit == InitExit::Signal(SIGKILL) {
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

    #[test]
    fn status_is_the_code_or_128_plus_signal() {
        assert_eq!(InitExit::Code(3).status(), 3);
        assert_eq!(InitExit::Signal(9).status(), 137);
        assert_eq!(InitExit::Signal(15).status(), 143);
    }
}
