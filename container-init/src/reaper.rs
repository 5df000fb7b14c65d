//! The PID 1 loop: with every signal blocked, `sigwait` for the next one; on `SIGCHLD` reap
//! every exited process (orphaned grandchildren included) with `waitpid(-1, WNOHANG)`; on a
//! termination or user signal forward it to every process of the container (`kill(-1, sig)`
//! from PID 1 reaches all others in the PID namespace). Returns when the main workload process
//! has ended, with its status ([`InitExit::status`]: the exit code, or 128 + signal).

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use proto::exit::InitExit;

/// Signals forwarded to the container's processes.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGQUIT,
];

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

/// Reaps every exited child; returns the main child's exit code once it has been reaped.
fn reap_all(main: Pid) -> Option<i32> {
    let mut main_code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return main_code,
            Ok(status) if status.pid() == Some(main) => {
                main_code = InitExit::from_wait(status).map(InitExit::status)
            }
            Ok(_) | Err(Errno::EINTR) => {}
            // No other error is possible for waitpid(-1, WNOHANG); give up on the main child
            // rather than spin.
            Err(_) => return Some(main_code.unwrap_or(255)),
        }
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

/// Serves signals until the main child `main` has ended; returns its exit status for
/// `container-init` to exit with. Processes still running then are killed by the kernel when
/// PID 1 exits.
pub fn run(main: Pid) -> i32 {
    let set = SigSet::all();
    loop {
        let sig = next_signal(&set);
        if sig == libc::SIGCHLD {
            if let Some(code) = reap_all(main) {
                return code;
            }
        } else if let Some(fwd) = FORWARDED.iter().find(|s| **s as i32 == sig) {
            // ESRCH (nobody left) is expected and harmless.
            let _ = nix::sys::signal::kill(Pid::from_raw(-1), *fwd);
        }
    }
}
