//! `container-init`'s end of the ready pipe to the supervisor: closed with nothing written once
//! the workload runs, or carrying one line that says why the container could not be set up
//! (the format is [`proto::init::report`]).

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The write end of the ready pipe, owned by `container-init`.
#[derive(Debug)]
pub struct Ready(std::fs::File);

impl Ready {
    /// Takes ownership of the inherited descriptor `fd`.
    ///
    /// # Safety
    /// `fd` must be an open descriptor that nothing else in this process owns.
    pub unsafe fn from_raw(fd: RawFd) -> Self {
        // SAFETY: the caller guarantees `fd` is open and unowned.
        Self(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Reports success: closes the pipe without writing.
    pub fn succeed(self) {
        drop(self);
    }

    /// Reports a setup failure as one line ([`proto::init::report::failure_line`]) and closes
    /// the pipe. A write error is ignored: the supervisor then sees the init exit instead.
    pub fn fail(mut self, message: &str) {
        let _ = self
            .0
            .write_all(&proto::init::report::failure_line(message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::IntoRawFd;

    fn pipe() -> (std::fs::File, RawFd) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        (std::fs::File::from(r), w.into_raw_fd())
    }

    #[test]
    fn failure_is_one_line_then_eof() {
        let (mut r, w) = pipe();
        // SAFETY: `w` was just created and released by `into_raw_fd`.
        unsafe { Ready::from_raw(w) }.fail("mount overlay:\nEINVAL");
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "mount overlay: EINVAL\n");
    }

    #[test]
    fn success_is_eof_without_bytes() {
        let (mut r, w) = pipe();
        // SAFETY: `w` was just created and released by `into_raw_fd`.
        unsafe { Ready::from_raw(w) }.succeed();
        let mut s = Vec::new();
        r.read_to_end(&mut s).unwrap();
        assert!(s.is_empty());
    }
}
