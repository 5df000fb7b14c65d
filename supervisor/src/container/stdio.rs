//! The descriptors a container is born with: its stdout and stderr pipes, the ready pipe,
//! and `/dev/null` for stdin. Every descriptor is close-on-exec in the supervisor (other
//! threads may fork); the child end ones are numbered 3 or above so that the child's
//! `dup2` onto 0, 1 and 2 can never overwrite one before it is copied.

use super::request::SpawnError;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::pipe2;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Supervisor ends: kept after the spawn.
#[derive(Debug)]
pub struct ParentEnds {
    /// Read end of the workload's stdout.
    pub stdout: OwnedFd,
    /// Read end of the workload's stderr.
    pub stderr: OwnedFd,
    /// Read end of the ready pipe.
    pub ready: OwnedFd,
}

/// Child ends: inherited by the cloned child, closed in the supervisor right after `clone`.
#[derive(Debug)]
pub struct ChildEnds {
    /// Write end of stdout, becomes fd 1.
    pub stdout: OwnedFd,
    /// Write end of stderr, becomes fd 2.
    pub stderr: OwnedFd,
    /// `/dev/null` opened read-write, becomes fd 0.
    pub stdin: OwnedFd,
    /// Write end of the ready pipe, kept across `exec` for `container-init`.
    pub ready: OwnedFd,
}

impl ChildEnds {
    /// The raw numbers, for the child (which must not touch `OwnedFd`s).
    pub fn raw(&self) -> [RawFd; 4] {
        [
            self.stdin.as_raw_fd(),
            self.stdout.as_raw_fd(),
            self.stderr.as_raw_fd(),
            self.ready.as_raw_fd(),
        ]
    }
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> SpawnError {
    move |source| SpawnError::Sys { what, source }
}

/// Moves `fd` to a close-on-exec descriptor numbered 3 or more (a no-op if it already is).
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, SpawnError> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let raw = fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(3)).map_err(sys("dup descriptor above 2"))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    Ok((r, above_stdio(w)?))
}

/// Creates the three pipes and opens `/dev/null`.
///
/// # Errors
/// [`SpawnError::Sys`] when a pipe or `/dev/null` cannot be opened (e.g. `EMFILE`).
pub fn create() -> Result<(ParentEnds, ChildEnds), SpawnError> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys("open /dev/null"))?;
    Ok((
        ParentEnds {
            stdout: out_r,
            stderr: err_r,
            ready: ready_r,
        },
        ChildEnds {
            stdout: out_w,
            stderr: err_w,
            stdin: above_stdio(null)?,
            ready: ready_w,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::FdFlag;

    #[test]
    fn every_end_is_cloexec_and_child_ends_are_above_stdio() {
        let (parent, child) = create().unwrap();
        for fd in child.raw() {
            assert!(fd > 2);
        }
        for fd in [
            &parent.stdout,
            &parent.stderr,
            &parent.ready,
            &child.stdin,
            &child.ready,
        ] {
            let flags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
            assert!(flags.contains(FdFlag::FD_CLOEXEC));
        }
    }
}
