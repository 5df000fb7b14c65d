//! The supervisor's side of the log-router: spawns the router process, hands it each
//! container's output fds over a SOCK_SEQPACKET socketpair with SCM_RIGHTS, reads its
//! reports, and restarts it when it dies.
//!
//! The link never calls `waitpid`: the supervisor reaps every child with `waitpid(-1)` and
//! recognises the router by [`RouterLink::pid`]. A dead router shows up both as that pid
//! exiting and as [`Inbox::closed`] from [`RouterLink::read_messages`]; on either, call
//! [`RouterLink::respawn`] and hand it every container whose `Drained` has not been seen.
//!
//! The supervisor's loop never waits on the router: it uses [`RouterLink::respawn`] (start a
//! new router and send `Configure`, its `Ready` read later), [`RouterLink::add_container`] and
//! [`RouterLink::send_message`] (`Validate`, `Shutdown`: answers read later), and
//! [`RouterLink::kill`]. Those sends never block: what a full socket does not take waits in an
//! outbox (fds duplicated), in order, sent when the socket is writable again (the link is
//! registered for both readiness kinds) or at the next read. Only [`RouterLink::start`] waits
//! (for the first `Ready`); its send blocks at most [`SEND_TIMEOUT`]. Reads never block.
//! Register the link with the supervisor's poller through [`RouterLink::register`], which also
//! re-registers the new socket after a respawn.

use crate::router_outbox::Outbox;
use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::errno::Errno;
use proto::router::channel::pair;
use proto::router::{ChannelError, FromRouter, SinkSpec, SupervisorEnd, ToRouter};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// File name of the router binary.
pub const ROUTER_BINARY: &str = "log-router";
/// Longest wait for the router's answer to `Configure`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a control send may block (the router reads its socket promptly).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the router link.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The socketpair or its options could not be set up.
    #[error("control socket: {0}")]
    Socket(#[source] Errno),
    /// The process could not be started.
    #[error("cannot start {path}: {source}")]
    Spawn {
        /// Binary path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The router refused the sink configuration (unknown sink, bad option, bad library).
    #[error("{0}")]
    Config(String),
    /// No answer to `Configure` in time.
    #[error("log-router did not answer within {0:?}")]
    Timeout(Duration),
    /// The router's end is closed (it exited or was killed).
    #[error("log-router closed the control socket")]
    Closed,
    /// A control message could not be sent (no room within [`SEND_TIMEOUT`], socket error).
    #[error("cannot send to the log-router: {0}")]
    Send(#[source] ChannelError),
    /// A control message could not be encoded or is too large.
    #[error("cannot encode a control message: {0}")]
    Encode(#[source] ChannelError),
    /// The router answered something unexpected.
    #[error("unexpected answer from the log-router: {0}")]
    Protocol(String),
}

/// Reports read from the router.
#[derive(Debug, Default, PartialEq)]
pub struct Inbox {
    /// Decoded reports, in order.
    pub messages: Vec<FromRouter>,
    /// The router's end is closed: it exited or was killed (restart it).
    pub closed: bool,
}

/// A running router process and its control socket.
#[derive(Debug)]
pub struct RouterLink {
    exe: PathBuf,
    sinks: Vec<SinkSpec>,
    sock: SupervisorEnd,
    pid: nix::unistd::Pid,
    closed: bool,
    poller: Option<(mio::Registry, Token)>,
    /// Messages a full socket did not take yet.
    outbox: Outbox,
}

impl RouterLink {
    /// Starts the router at `exe`, configures its default `sinks` and waits for `Ready`.
    ///
    /// # Errors
    /// [`RouterError::Config`] with the router's one-line reason when a sink is unknown, cannot
    /// be loaded or has a bad option (the router is told to exit); other variants when the
    /// process cannot be started or does not answer within [`READY_TIMEOUT`].
    pub fn start(exe: &Path, sinks: Vec<SinkSpec>) -> Result<Self, RouterError> {
        let (sock, pid) = spawn(exe)?;
        let mut link = Self {
            exe: exe.to_path_buf(),
            sinks,
            sock,
            pid,
            closed: false,
            poller: None,
            outbox: Outbox::default(),
        };
        link.configure()?;
        Ok(link)
    }

    /// Pid of the current router process (to recognise it when reaped).
    pub fn pid(&self) -> nix::unistd::Pid {
        self.pid
    }

    /// Registers the control socket with the supervisor's poller under `token` (readable, and
    /// writable for the outbox), and
    /// remembers both so that [`RouterLink::respawn`] registers the new socket itself.
    ///
    /// # Errors
    /// Errors of `epoll_ctl` or of cloning the registry.
    pub fn register(&mut self, registry: &mio::Registry, token: Token) -> std::io::Result<()> {
        registry.register(
            &mut SourceFd(&self.sock.as_raw_fd()),
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.poller = Some((registry.try_clone()?, token));
        Ok(())
    }

    /// Hands a container's output to the router, without blocking (queued when the socket is
    /// full). The fds are duplicated into the router; the caller keeps its own until
    /// `Drained{id}` arrives (they are needed again on a restart).
    ///
    /// # Errors
    /// [`RouterError::Closed`] when the router is gone (restart it: the container is re-added
    /// then), [`RouterError::Send`], [`RouterError::Encode`].
    pub fn add_container(
        &mut self,
        id: &str,
        log_path: &Path,
        stdout: BorrowedFd<'_>,
        stderr: BorrowedFd<'_>,
        sinks: &[SinkSpec],
    ) -> Result<(), RouterError> {
        let msg = ToRouter::AddContainer {
            id: id.to_string(),
            log_path: log_path.to_string_lossy().into_owned(),
            sinks: sinks.to_vec(),
        };
        self.post(&msg, &[stdout, stderr])
    }

    /// Sends a control message without fds (`Validate`, `Shutdown`) without blocking (queued
    /// when the socket is full); its answer, if any, comes through
    /// [`RouterLink::read_messages`].
    ///
    /// # Errors
    /// [`RouterError::Closed`] when the router is gone, [`RouterError::Send`],
    /// [`RouterError::Encode`].
    pub fn send_message(&mut self, msg: &ToRouter) -> Result<(), RouterError> {
        self.post(msg, &[])
    }

    /// Sends `msg` now if nothing is queued and the socket takes it, else queues it.
    fn post(&mut self, msg: &ToRouter, fds: &[BorrowedFd<'_>]) -> Result<(), RouterError> {
        self.outbox
            .post(&self.sock, msg, fds)
            .map_err(|e| self.send_error(e))
    }

    /// Sends what the outbox holds until the socket is full again. Call when the socket is
    /// writable ([`RouterLink::read_messages`] does).
    pub fn flush(&mut self) {
        while let Err(e) = self.outbox.flush(&self.sock) {
            let e = self.send_error(e);
            tracing::warn!(error = %e, "queued message to the log-router dropped");
            if self.closed {
                self.outbox.clear();
            }
        }
    }

    /// SIGKILLs the router if its end of the socket is still open (while it is open the
    /// process is not reaped, so its pid cannot have been reused).
    pub fn kill(&self) {
        if !self.closed {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Replaces the router without waiting: kills the old one if it still runs, starts a new
    /// one and sends it `Configure`. Its `Ready` (or `ConfigError`) comes through
    /// [`RouterLink::read_messages`]; then hand it every container whose `Drained` has not
    /// been seen. Read the old router's last reports before calling this.
    ///
    /// # Errors
    /// As [`RouterLink::start`] before any answer; the link may be respawned again.
    pub fn respawn(&mut self) -> Result<(), RouterError> {
        self.kill();
        self.replace_process()?;
        let msg = ToRouter::Configure {
            sinks: self.sinks.clone(),
        };
        self.post(&msg, &[])
    }

    /// Reads every report available now, without blocking.
    pub fn read_messages(&mut self) -> Inbox {
        self.flush();
        self.read_socket()
    }

    /// Reads every packet available now from the socket.
    fn read_socket(&mut self) -> Inbox {
        let mut inbox = Inbox::default();
        while !self.closed {
            match self.sock.recv() {
                Ok(Some((m, _fds))) => inbox.messages.push(m),
                Ok(None) => break,
                Err(ChannelError::Closed) => self.closed = true,
                Err(e) if e.is_packet_error() => {
                    tracing::error!(error = %e, "report from the log-router ignored")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "log-router control socket failed");
                    self.closed = true;
                }
            }
        }
        inbox.closed = self.closed;
        inbox
    }

    /// Starts a new router process in place of the old one (its socket registered with the
    /// poller, if any).
    fn replace_process(&mut self) -> Result<(), RouterError> {
        let (sock, pid) = spawn(&self.exe)?;
        let old = std::mem::replace(&mut self.sock, sock);
        if let Some((registry, _)) = &self.poller {
            let _ = registry.deregister(&mut SourceFd(&old.as_raw_fd()));
        }
        drop(old);
        // What the old router did not take is sent again after the new one is ready.
        self.outbox.clear();
        self.pid = pid;
        self.closed = false;
        if let Some((registry, token)) = &self.poller {
            registry
                .register(
                    &mut SourceFd(&self.sock.as_raw_fd()),
                    *token,
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(|e| RouterError::Socket(Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
        }
        tracing::info!(pid = pid.as_raw(), "log-router restarted");
        Ok(())
    }

    /// Sends `Configure` and waits for `Ready` or `ConfigError`.
    fn configure(&mut self) -> Result<(), RouterError> {
        let msg = ToRouter::Configure {
            sinks: self.sinks.clone(),
        };
        self.send(&msg, &[])?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let inbox = self.read_messages();
            match inbox.messages.into_iter().next() {
                Some(FromRouter::Ready) => return Ok(()),
                Some(FromRouter::ConfigError { message }) => {
                    let _ = self.send(&ToRouter::Shutdown, &[]);
                    return Err(RouterError::Config(message));
                }
                Some(other) => {
                    return Err(RouterError::Protocol(format!("{other:?} before Ready")))
                }
                None => {}
            }
            if inbox.closed {
                return Err(RouterError::Closed);
            }
            if Instant::now() >= deadline {
                let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
                return Err(RouterError::Timeout(READY_TIMEOUT));
            }
            self.wait_readable(deadline);
        }
    }

    /// Sends one packet, with fds when given.
    fn send(&mut self, msg: &ToRouter, fds: &[BorrowedFd<'_>]) -> Result<(), RouterError> {
        self.flush();
        if !self.outbox.is_empty() {
            // Behind queued messages: keep the order.
            return self.post(msg, fds);
        }
        self.sock
            .send_timeout(msg, fds, SEND_TIMEOUT)
            .map_err(|e| self.send_error(e))
    }

    /// Classes a send error (a closed socket marks the router gone).
    fn send_error(&mut self, e: ChannelError) -> RouterError {
        match e {
            ChannelError::Closed => {
                self.closed = true;
                RouterError::Closed
            }
            e @ (ChannelError::Encode(_) | ChannelError::TooLarge { .. }) => RouterError::Encode(e),
            e => RouterError::Send(e),
        }
    }

    /// Waits until the socket is readable or `deadline` passes.
    fn wait_readable(&self, deadline: Instant) {
        self.sock
            .wait_readable(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Creates the socketpair and starts the router with its end as `--control-fd`, in its own
/// process group (terminal signals are the supervisor's to handle).
fn spawn(exe: &Path) -> Result<(SupervisorEnd, nix::unistd::Pid), RouterError> {
    let (ours, theirs) = pair().map_err(RouterError::Socket)?;
    let theirs = theirs.into_fd();
    let child_fd = theirs.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.arg("--control-fd")
        .arg(child_fd.to_string())
        .stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only calls the
    // async-signal-safe fcntl and setpgid.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(child_fd, libc::F_SETFD, 0) < 0 || libc::setpgid(0, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| RouterError::Spawn {
        path: exe.to_path_buf(),
        source,
    })?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // The supervisor reaps the router with waitpid(-1); dropping `Child` neither waits nor kills.
    drop(child);
    drop(theirs);
    tracing::info!(pid = pid.as_raw(), exe = %exe.display(), "log-router started");
    Ok((ours, pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_is_named() {
        let e = RouterLink::start(Path::new("/nonexistent/log-router"), vec![]).unwrap_err();
        assert!(matches!(e, RouterError::Spawn { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/log-router"));
    }
}
