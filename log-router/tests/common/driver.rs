//! A blocking driver of a real log-router process for the tests, speaking the control contract
//! through `proto::router` only: launch with `--control-fd N`, `Configure` -> `Ready`,
//! `AddContainer` with the two fds, `Validate`, reports, `Shutdown`, and kill + respawn for the
//! restart test. Every wait is bounded. The driver owns the router's `Child`, so it reaps its
//! own routers and never another test's.

use proto::router::{
    spawn_with_control, ChannelError, FromRouter, LaunchError, SinkSpec, SupervisorEnd, ToRouter,
};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for the answer to `Configure` or `Validate`.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a control send waits for room in the socket.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a killed router's end of the socket to close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the driver.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The router process could not be started.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The router refused sinks (`ConfigError`, or `Validated` with an error): its one-line
    /// reason.
    #[error("{0}")]
    Refused(String),
    /// A control message could not be sent.
    #[error("cannot send to the log-router: {0}")]
    Send(#[source] ChannelError),
    /// The router closed its end before answering.
    #[error("log-router closed the control socket")]
    Closed,
    /// No answer within the given time.
    #[error("log-router did not answer within {0:?}")]
    Timeout(Duration),
}

/// A container the router must route again after a restart.
#[derive(Debug, Clone, Copy)]
pub struct LiveContainer<'a> {
    /// Container id.
    pub id: &'a str,
    /// Absolute path of its log file.
    pub log_path: &'a Path,
    /// Read end of its stdout pipe.
    pub stdout: BorrowedFd<'a>,
    /// Read end of its stderr pipe.
    pub stderr: BorrowedFd<'a>,
    /// Per-container sinks; empty means the configured defaults.
    pub sinks: &'a [SinkSpec],
}

/// A running router process and the supervisor's end of its control channel. Dropping it kills
/// and reaps the process.
#[derive(Debug)]
pub struct Router {
    /// The binary, started again by [`Router::restart`].
    exe: PathBuf,
    /// Default sinks, sent in every `Configure`.
    sinks: Vec<SinkSpec>,
    /// The current process; replaced whole on restart.
    run: Launched,
    /// Reports read while waiting for an answer, handed out first by [`Router::read_reports`].
    stash: Vec<FromRouter>,
}

/// One router process and its channel.
#[derive(Debug)]
struct Launched {
    end: SupervisorEnd,
    child: Child,
    /// Its end of the socket is closed: it exited or was killed.
    closed: bool,
}

impl Launched {
    /// Starts `exe` with its end of a new control channel, stdin from /dev/null, in its own
    /// process group (as the supervisor starts it: terminal signals are not the router's).
    fn new(exe: &Path) -> Result<Self, LaunchError> {
        let mut cmd = Command::new(exe);
        cmd.stdin(Stdio::null()).process_group(0);
        let (end, child) = spawn_with_control(cmd)?;
        Ok(Self {
            end,
            child,
            closed: false,
        })
    }
}

impl Router {
    /// Starts the router at `exe`, sends `Configure` with the default `sinks` and waits for
    /// `Ready`.
    ///
    /// # Errors
    /// [`DriverError::Refused`] with the router's reason on `ConfigError` (the router is told to
    /// shut down, then reaped); the other variants when it cannot be started or does not answer
    /// within [`ANSWER_TIMEOUT`].
    pub fn start(exe: &Path, sinks: Vec<SinkSpec>) -> Result<Self, DriverError> {
        let mut router = Self {
            run: Launched::new(exe)?,
            exe: exe.into(),
            sinks,
            stash: Vec::new(),
        };
        router.configure()?;
        Ok(router)
    }

    /// Pid of the current router process.
    pub fn pid(&self) -> u32 {
        self.run.child.id()
    }

    /// Hands a container's stdout and stderr read ends to the router (`AddContainer` with
    /// both fds); they are duplicated into the router, the caller keeps its own.
    ///
    /// # Errors
    /// [`DriverError::Send`] or [`DriverError::Closed`].
    pub fn add_container(
        &mut self,
        id: &str,
        log_path: &Path,
        stdout: impl AsFd,
        stderr: impl AsFd,
        sinks: &[SinkSpec],
    ) -> Result<(), DriverError> {
        let msg = ToRouter::add_container(id, log_path, sinks);
        self.send(&msg, &[stdout.as_fd(), stderr.as_fd()])
    }

    /// Asks the router to check `sinks` (`Validate`) and waits for `Validated`; reports that
    /// arrive meanwhile are kept for [`Router::read_reports`].
    ///
    /// # Errors
    /// [`DriverError::Refused`] with the router's reason; send errors, [`DriverError::Closed`],
    /// [`DriverError::Timeout`].
    pub fn validate(&mut self, sinks: &[SinkSpec]) -> Result<(), DriverError> {
        let msg = ToRouter::Validate {
            sinks: sinks.to_vec(),
        };
        self.send(&msg, &[])?;
        match self.await_answer(|m| matches!(m, FromRouter::Validated { .. }))? {
            FromRouter::Validated {
                error: Some(reason),
            } => Err(DriverError::Refused(reason)),
            _ => Ok(()),
        }
    }

    /// Every report available now, without waiting (kept ones first). Panics on a packet the
    /// contract does not allow: the router sent garbage.
    pub fn read_reports(&mut self) -> Vec<FromRouter> {
        let mut out = std::mem::take(&mut self.stash);
        while !self.run.closed {
            match self.run.end.recv() {
                Ok(Some((report, _fds))) => out.push(report),
                Ok(None) => break,
                Err(ChannelError::Closed) => self.run.closed = true,
                Err(e) => panic!("control channel from the log-router: {e}"),
            }
        }
        out
    }

    /// Reads reports until `done` is true for one of them; returns every report seen, that one
    /// last. Panics when the router closes its end first or `timeout` passes.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&FromRouter) -> bool,
    ) -> Vec<FromRouter> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let mut reports = self.read_reports().into_iter();
            while let Some(report) = reports.next() {
                let stop = done(&report);
                seen.push(report);
                if stop {
                    // Reports read after the awaited one are kept for the next read.
                    self.stash = reports.collect();
                    return seen;
                }
            }
            assert!(
                !self.run.closed,
                "router closed its socket; reports so far: {seen:?}"
            );
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out; reports so far: {seen:?}");
            self.run.end.wait_readable(left);
        }
    }

    /// SIGKILLs the router and reaps it. Its end of the socket stays readable: the reports it
    /// sent before dying are still there for [`Router::restart`].
    pub fn kill(&mut self) {
        let _ = self.run.child.kill();
        let _ = self.run.child.wait();
    }

    /// Replaces the router as the supervisor does after a crash: kills and reaps the old
    /// process, reads its last reports until its end closes, starts and configures a new one,
    /// and re-adds every `live` container whose `Drained` is not among those reports. Returns
    /// the old router's last reports.
    ///
    /// # Errors
    /// As [`Router::start`] and [`Router::add_container`].
    pub fn restart(&mut self, live: &[LiveContainer<'_>]) -> Result<Vec<FromRouter>, DriverError> {
        self.kill();
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let mut last = self.read_reports();
        while !self.run.closed && Instant::now() < deadline {
            self.run
                .end
                .wait_readable(deadline.saturating_duration_since(Instant::now()));
            last.extend(self.read_reports());
        }
        self.run = Launched::new(&self.exe)?;
        self.configure()?;
        let drained = |id: &str| {
            last.iter()
                .any(|m| matches!(m, FromRouter::Drained { id: d } if d == id))
        };
        for c in live.iter().filter(|c| !drained(c.id)) {
            self.add_container(c.id, c.log_path, c.stdout, c.stderr, c.sinks)?;
        }
        Ok(last)
    }

    /// Sends `Shutdown`, reads reports until the router closes its end, and reaps it. Returns
    /// the reports and the exit status. Panics when it does not exit within `timeout`.
    pub fn shutdown(mut self, timeout: Duration) -> (Vec<FromRouter>, ExitStatus) {
        self.send(&ToRouter::Shutdown, &[])
            .expect("Shutdown is sent");
        let deadline = Instant::now() + timeout;
        let mut seen = self.read_reports();
        while !self.run.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "router did not exit within {timeout:?}; reports: {seen:?}"
            );
            self.run.end.wait_readable(left);
            seen.extend(self.read_reports());
        }
        let status = self.run.child.wait().expect("reap the router");
        (seen, status)
    }

    /// Sends `Configure` and waits for `Ready` or `ConfigError` (then tells the router to
    /// exit).
    fn configure(&mut self) -> Result<(), DriverError> {
        let msg = ToRouter::Configure {
            sinks: self.sinks.clone(),
        };
        self.send(&msg, &[])?;
        let answer =
            self.await_answer(|m| matches!(m, FromRouter::Ready | FromRouter::ConfigError { .. }))?;
        match answer {
            FromRouter::ConfigError { message } => {
                let _ = self.send(&ToRouter::Shutdown, &[]);
                Err(DriverError::Refused(message))
            }
            _ => Ok(()),
        }
    }

    /// Reads until the first report `is_answer` accepts and returns it; the others are kept.
    fn await_answer(
        &mut self,
        mut is_answer: impl FnMut(&FromRouter) -> bool,
    ) -> Result<FromRouter, DriverError> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let mut reports = self.read_reports();
            let answer = reports
                .iter()
                .position(&mut is_answer)
                .map(|i| reports.remove(i));
            self.stash = reports;
            match answer {
                Some(answer) => return Ok(answer),
                None if self.run.closed => return Err(DriverError::Closed),
                None if Instant::now() >= deadline => {
                    return Err(DriverError::Timeout(ANSWER_TIMEOUT))
                }
                None => {
                    self.run
                        .end
                        .wait_readable(deadline.saturating_duration_since(Instant::now()));
                }
            }
        }
    }

    /// Sends one packet, waiting up to [`SEND_TIMEOUT`] for room.
    fn send(&mut self, msg: &ToRouter, fds: &[BorrowedFd<'_>]) -> Result<(), DriverError> {
        match self.run.end.send_timeout(msg, fds, SEND_TIMEOUT) {
            Ok(()) => Ok(()),
            Err(ChannelError::Closed) => {
                self.run.closed = true;
                Err(DriverError::Closed)
            }
            Err(e) => Err(DriverError::Send(e)),
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        // Both are no-ops once the child was reaped (its status is kept).
        let _ = self.run.child.kill();
        let _ = self.run.child.wait();
    }
}
