//! Starting the workload: a child of `container-init` in its own session and process group,
//! with default signal dispositions, an empty signal mask, the requested nice value (for the
//! process and for its session's scheduler autogroup, see [`crate::autogroup`]), a clean
//! environment, stdin/stdout/stderr inherited (every other descriptor is close-on-exec), and
//! last its confinement ([`crate::confine`]: capabilities and seccomp).
//! A failure up to and including `exec` is returned here (std's `Command` carries the child's
//! errno back over its own close-on-exec pipe), so it can go to the ready pipe.

use crate::confine::Confinement;
use nix::unistd::Pid;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

/// `PATH` of the workload; `argv[0]` without a `/` is looked up in it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The workload could not be started.
#[derive(Debug, thiserror::Error)]
#[error("exec {program}: {source}")]
pub struct WorkloadError {
    /// `argv[0]`, lossily decoded.
    pub program: String,
    /// Why: not found, not executable, or a failed set-up call in the child.
    #[source]
    pub source: io::Error,
}

impl WorkloadError {
    /// Exit status of `container-init` for this failure:
    /// [`proto::exit::exec_error_status`] of its cause.
    pub fn exit_code(&self) -> i32 {
        proto::exit::exec_error_status(&self.source)
    }
}

/// Starts `argv` with hostname `id`, nice value `nice` and confined by `confine`; returns its
/// pid once `exec` succeeded.
///
/// # Errors
/// [`WorkloadError`]: the program was not found in [`DEFAULT_PATH`], could not be executed,
/// or `setsid`, `setpriority`, [`crate::autogroup::set_nice`] or
/// [`Confinement::apply`] failed.
pub fn start(
    argv: &[OsString],
    id: &OsStr,
    nice: i32,
    confine: Arc<Confinement>,
) -> Result<Pid, WorkloadError> {
    let (program, args) = argv.split_first().ok_or_else(|| WorkloadError {
        program: String::new(),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", DEFAULT_PATH)
        .env("HOSTNAME", id)
        .env("HOME", "/")
        .current_dir("/");
    // SAFETY: the closure runs between fork and exec in a single-threaded process and makes
    // only async-signal-safe system calls (setsid, sigprocmask, sigaction, setpriority,
    // open/write/close of the autogroup file, prctl, seccomp, capset); no allocation.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid()?;
            crate::reaper::unblock_all()?;
            crate::reaper::default_dispositions();
            // `which` is an int in musl's prototype and an unsigned enum in glibc's.
            if libc::setpriority(libc::PRIO_PROCESS as _, 0, nice) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The new session's autogroup starts at nice 0: set it only when that differs.
            if nice != 0 {
                crate::autogroup::set_nice(nice)?;
            }
            confine.apply()
        });
    }
    let child = cmd.spawn().map_err(|source| WorkloadError {
        program: program.to_string_lossy().into_owned(),
        source,
    })?;
    // The child is reaped by the reaper with waitpid(-1); `Child` has no Drop that waits.
    Ok(Pid::from_raw(child.id() as i32))
}
