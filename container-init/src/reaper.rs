//! The PID 1 loop: with every signal blocked, `sigwait` for the next one; on `SIGCHLD` reap
//! every exited process (orphaned grandchildren included) with `waitpid(-1, WNOHANG)`; on a
//! termination or user signal forward it to every process of the container (`kill(-1, sig)`
//! from PID 1 reaches all others in the PID namespace, whatever their session or process
//! group).
//!
//! When it returns ([`Ending`]): if the main workload process ends on its own, at once (the
//! kernel then kills what is left of the namespace as PID 1 exits). Once the stop signal
//! ([`proto::init::STOP_SIGNAL`]) has been received, only when the namespace is empty, so
//! every process gets the grace period the supervisor bounds with a SIGKILL to PID 1. The
//! status is always the main process's ([`InitExit::status`]: the exit code, or 128 + signal).

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use proto::exit::InitExit;
use proto::init::STOP_SIGNAL;

/// Signals forwarded to the container's processes (the contract's list).
pub const FORWARDED: [Signal; 7] = proto::init::FORWARDED_SIGNALS;

/// Blocks every signal in this (single-threaded) process, so that they stay pending for
/// [`run`]. Called first thing, before any child exists.
///
/// # Errors
/// The errno of `sigprocmask`.
pub fn block_all() -> nix::Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None)
}

/// Empties the signal mask (the workload must not inherit ours). Async-signal-safe.
///
/// # Errors
/// The errno of `sigprocmask`.
pub fn unblock_all() -> std::io::Result<()> {
    // SAFETY: sigemptyset/sigprocmask on a local, initialised sigset_t.
    let rc = unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Restores the default disposition of every catchable signal. Ignored signals survive
/// `exec` (the Rust runtime ignores `SIGPIPE`; an ignored `SIGCHLD` would make the kernel
/// reap our children before we see their status). Async-signal-safe; failures (signals
/// reserved by libc) are harmless and ignored.
pub fn default_dispositions() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: plain sigaction(2) with SIG_DFL on a zeroed struct.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// Status to exit with when reaping fails in a way `waitpid(-1, WNOHANG)` never should
/// before the main child was reaped (the loop gives up rather than spin).
const REAP_FAILED: i32 = 255;

/// What one round of reaping found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reaped {
    /// The main child's status ([`InitExit::status`]) if it was reaped in this round.
    main: Option<i32>,
    /// No child is left (`ECHILD`): PID 1 is the last process of its namespace.
    empty: bool,
}

/// Reaps every exited child; says whether the main child was among them and whether any
/// child is left.
fn reap_all(main: Pid) -> Reaped {
    let mut main_code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                return Reaped {
                    main: main_code,
                    empty: false,
                }
            }
            Err(Errno::ECHILD) => {
                return Reaped {
                    main: main_code,
                    empty: true,
                }
            }
            Ok(status) if status.pid() == Some(main) => {
                main_code = InitExit::from_wait(status).map(InitExit::status)
            }
            Ok(_) | Err(Errno::EINTR) => {}
            // No other error is possible for waitpid(-1, WNOHANG); give up rather than spin.
            Err(_) => {
                return Reaped {
                    main: Some(main_code.unwrap_or(REAP_FAILED)),
                    empty: true,
                }
            }
        }
    }
}

/// When the loop ends: the state that decides it, fed with what the loop sees.
#[derive(Debug, Default)]
struct Ending {
    /// The main child's status, once it has been reaped.
    main_status: Option<i32>,
    /// The stop signal has been received: wait for the whole namespace.
    stopping: bool,
}

impl Ending {
    /// Records a received signal.
    fn on_signal(&mut self, sig: i32) {
        if sig == STOP_SIGNAL as i32 {
            self.stopping = true;
        }
    }

    /// Records a round of reaping; returns the status to exit with when it is time to: as
    /// soon as the main child has ended, or, during a stop, once no child is left either.
    fn on_reaped(&mut self, reaped: Reaped) -> Option<i32> {
        self.main_status = self.main_status.or(reaped.main);
        let status = self.main_status?;
        (!self.stopping || reaped.empty).then_some(status)
    }
}

/// Waits for the next signal in the blocked set, as a raw number (real-time signals
/// included, which `nix`'s `Signal` cannot represent).
fn next_signal(set: &SigSet) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` is a valid sigset_t and `sig` a valid out-pointer; sigwait only writes it.
    let rc = unsafe { libc::sigwait(set.as_ref(), &mut sig) };
    if rc == 0 {
        sig
    } else {
        0
    }
}

/// Serves signals until it is time to end (see the module header); returns the main child
/// `main`'s exit status for `container-init` to exit with. Processes still running then are
/// killed by the kernel when PID 1 exits.
pub fn run(main: Pid) -> i32 {
    let set = SigSet::all();
    let mut ending = Ending::default();
    loop {
        let sig = next_signal(&set);
        ending.on_signal(sig);
        if sig == libc::SIGCHLD {
            if let Some(code) = ending.on_reaped(reap_all(main)) {
                return code;
            }
        } else if let Some(fwd) = FORWARDED.iter().find(|s| **s as i32 == sig) {
            // ESRCH (nobody left) is expected and harmless.
            let _ = nix::sys::signal::kill(Pid::from_raw(-1), *fwd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALIVE: Reaped = Reaped {
        main: None,
        empty: false,
    };

    fn main_ended(status: i32, empty: bool) -> Reaped {
        Reaped {
            main: Some(status),
            empty,
        }
    }

    #[test]
    fn without_a_stop_the_main_childs_end_ends_init_at_once() {
        let mut e = Ending::default();
        assert_eq!(e.on_reaped(ALIVE), None, "another child ended");
        e.on_signal(libc::SIGHUP);
        e.on_signal(libc::SIGCHLD);
        assert_eq!(e.on_reaped(main_ended(3, false)), Some(3));
    }

    #[test]
    fn during_a_stop_init_waits_for_the_namespace_to_empty() {
        let mut e = Ending::default();
        e.on_signal(STOP_SIGNAL as i32);
        assert_eq!(e.on_reaped(main_ended(143, false)), None);
        assert_eq!(e.on_reaped(ALIVE), None, "a background process ended");
        // The last one: the status is still the main child's, not the last process's.
        let last = Reaped {
            main: None,
            empty: true,
        };
        assert_eq!(e.on_reaped(last), Some(143));
    }

    #[test]
    fn a_stop_after_the_main_child_ended_still_ends_at_the_empty_namespace() {
        let mut e = Ending::default();
        e.on_signal(STOP_SIGNAL as i32);
        assert_eq!(e.on_reaped(main_ended(0, true)), Some(0));
        let mut e = Ending::default();
        e.on_signal(STOP_SIGNAL as i32);
        assert_eq!(e.on_reaped(ALIVE), None, "the main child is alive");
        assert_eq!(e.on_reaped(main_ended(1, true)), Some(1));
    }

    #[test]
    fn only_the_stop_signal_starts_a_stop() {
        for sig in FORWARDED.iter().filter(|s| **s != STOP_SIGNAL) {
            let mut e = Ending::default();
            e.on_signal(*sig as i32);
            assert_eq!(e.on_reaped(main_ended(0, false)), Some(0), "{sig}");
        }
    }
}
