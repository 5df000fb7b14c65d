//! Descriptors: nothing the supervisor leaked reaches the container.
//!
//! A descriptor open in `container-init` (PID 1 of the container) can be reopened by the
//! workload through `/proc/1/fd/N`; a directory descriptor of the host is then a way out of
//! the rootfs (runc CVE-2024-21626). So `container-init` closes every descriptor but 0, 1, 2
//! and the ready pipe as its first step ([`close_inherited`]), and marks what is left above 2
//! close-on-exec ([`cloexec_from_3`]) so the workload inherits only stdin, stdout and stderr.

use std::os::fd::RawFd;

/// `CLOSE_RANGE_CLOEXEC` of close_range(2) (`linux/close_range.h`, since Linux 5.11).
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// close_range(2) of `first..=last` with `flags`.
fn close_range(first: u32, last: u32, flags: libc::c_uint) -> nix::Result<()> {
    // SAFETY: close_range(2) only closes (or flags) descriptors of this process; the caller
    // owns none of them as Rust objects (see `close_inherited`).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    nix::errno::Errno::result(rc).map(drop)
}

/// Closes every descriptor from 3 up except `keep` (the ready pipe). Call it first thing,
/// before any descriptor is opened or owned by Rust code.
///
/// # Errors
/// The errno of close_range(2) (`ENOSYS` before Linux 5.9).
pub fn close_inherited(keep: RawFd) -> nix::Result<()> {
    let keep = u32::try_from(keep).unwrap_or(0);
    if keep < 3 {
        return close_range(3, u32::MAX, 0);
    }
    if keep > 3 {
        close_range(3, keep - 1, 0)?;
    }
    match keep.checked_add(1) {
        Some(next) => close_range(next, u32::MAX, 0),
        None => Ok(()),
    }
}

/// Marks every descriptor from 3 up close-on-exec, so the workload inherits only
/// stdin/stdout/stderr.
///
/// # Errors
/// The errno of close_range(2) (`ENOSYS` before Linux 5.9, `EINVAL` before 5.11).
pub fn cloexec_from_3() -> nix::Result<()> {
    close_range(3, u32::MAX, CLOSE_RANGE_CLOEXEC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use std::os::fd::{AsRawFd, IntoRawFd};

    /// Runs `f` in a forked child (the test harness has descriptors of its own) and returns
    /// the child's exit status.
    fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only makes system calls and exits with _exit.
        match unsafe { libc::fork() } {
            0 => {
                let code = f();
                // SAFETY: leaves the child without running the harness's exit handlers.
                unsafe { libc::_exit(code) }
            }
            pid => {
                let mut status = 0;
                // SAFETY: waits for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                libc::WEXITSTATUS(status)
            }
        }
    }

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        flags != -1
    }

    #[test]
    fn closes_everything_above_2_but_the_ready_fd() {
        let code = in_child(|| {
            let a = std::fs::File::open("/").unwrap().into_raw_fd();
            let keep = std::fs::File::open("/").unwrap().into_raw_fd();
            let b = std::fs::File::open("/").unwrap().into_raw_fd();
            if close_inherited(keep).is_err() {
                return 10;
            }
            match (is_open(a), is_open(keep), is_open(b), is_open(2)) {
                (false, true, false, true) => 0,
                _ => 11,
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn cloexec_marks_without_closing() {
        let f = std::fs::File::open("/").unwrap();
        fcntl(&f, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
        cloexec_from_3().unwrap();
        let flags = FdFlag::from_bits_truncate(fcntl(&f, FcntlArg::F_GETFD).unwrap());
        assert!(flags.contains(FdFlag::FD_CLOEXEC));
        assert!(is_open(f.as_raw_fd()));
    }
}
