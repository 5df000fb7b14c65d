//! The supervisor's end of the ready pipe: read until EOF ([`wait`] blocks with a timeout;
//! [`Reader`] reads what is there now, for an event loop), then decode
//! the report with [`proto::init::report::decode`] (nothing written = the workload runs; a
//! text line = `container-init`'s set-up error; a child record = the cloned child failed
//! before `container-init` ran).

use super::request::SpawnError;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use proto::init::report::{self, MAX_REPORT};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// What the wait for the ready pipe gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// EOF: the decoded report.
    Report(report::Outcome),
    /// No EOF within the timeout.
    TimedOut,
}

/// Reads `fd` until EOF or until `timeout` has passed, then decodes it. Keeps the first
/// [`MAX_REPORT`] bytes.
///
/// # Errors
/// [`SpawnError::Sys`] when `poll` or `read` fails (other than `EINTR`).
pub fn wait(fd: &OwnedFd, timeout: Duration) -> Result<Outcome, SpawnError> {
    let deadline = Instant::now() + timeout;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(Outcome::TimedOut),
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(source) => {
                return Err(SpawnError::Sys {
                    what: "poll ready pipe",
                    source,
                })
            }
        }
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return Ok(Outcome::Report(report::decode(&bytes))),
            Ok(n) => {
                let room = MAX_REPORT.saturating_sub(bytes.len());
                bytes.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(source) => {
                return Err(SpawnError::Sys {
                    what: "read ready pipe",
                    source,
                })
            }
        }
    }
}

/// Reads a non-blocking ready pipe as it becomes readable; the event loop's side of [`wait`].
/// Keeps the first [`MAX_REPORT`] bytes.
#[derive(Debug)]
pub struct Reader {
    fd: OwnedFd,
    bytes: Vec<u8>,
}

impl Reader {
    /// Takes the read end and makes it non-blocking.
    ///
    /// # Errors
    /// [`SpawnError::Sys`] when `fcntl` fails.
    pub fn new(fd: OwnedFd) -> Result<Self, SpawnError> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(|source| SpawnError::Sys {
            what: "read ready pipe flags",
            source,
        })?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&fd, FcntlArg::F_SETFL(flags)).map_err(|source| SpawnError::Sys {
            what: "make ready pipe non-blocking",
            source,
        })?;
        Ok(Self {
            fd,
            bytes: Vec::new(),
        })
    }

    /// The pipe, to register with a poller.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Reads what is available now: the decoded report at EOF, `None` while the pipe is open.
    ///
    /// # Errors
    /// [`SpawnError::Sys`] when `read` fails (other than `EINTR`/`EAGAIN`).
    pub fn read_available(&mut self) -> Result<Option<report::Outcome>, SpawnError> {
        let mut buf = [0u8; 512];
        loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(0) => return Ok(Some(report::decode(&self.bytes))),
                Ok(n) => {
                    let room = MAX_REPORT.saturating_sub(self.bytes.len());
                    self.bytes.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(None),
                Err(source) => {
                    return Err(SpawnError::Sys {
                        what: "read ready pipe",
                        source,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_returns_nothing_until_eof() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let mut reader = Reader::new(r).unwrap();
        assert_eq!(reader.read_available().unwrap(), None);
        nix::unistd::write(&w, b"bad ").unwrap();
        assert_eq!(reader.read_available().unwrap(), None);
        nix::unistd::write(&w, b"rootfs\n").unwrap();
        drop(w);
        assert_eq!(
            reader.read_available().unwrap(),
            Some(report::Outcome::Failed("bad rootfs".into()))
        );
    }

    #[test]
    fn waits_for_eof_or_times_out() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        assert_eq!(
            wait(&r, Duration::from_millis(50)).unwrap(),
            Outcome::TimedOut
        );
        nix::unistd::write(&w, b"bad rootfs\n").unwrap();
        drop(w);
        assert_eq!(
            wait(&r, Duration::from_secs(5)).unwrap(),
            Outcome::Report(report::Outcome::Failed("bad rootfs".into()))
        );
    }

    #[test]
    fn keeps_at_most_max_report_bytes() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let long = vec![b'x'; MAX_REPORT + 100];
        nix::unistd::write(&w, &long).unwrap();
        drop(w);
        let Outcome::Report(report::Outcome::Failed(line)) =
            wait(&r, Duration::from_secs(5)).unwrap()
        else {
            panic!("not a text report");
        };
        assert_eq!(line.len(), MAX_REPORT);
    }
}
