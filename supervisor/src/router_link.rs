//! The supervisor's side of the log-router: spawns the router process, hands it each
//! container's output fds over a SOCK_SEQPACKET socketpair with SCM_RIGHTS, reads its
//! reports, and restarts it when it dies.
//!
//! The link never calls `waitpid`: the supervisor reaps every child with `waitpid(-1)` and
//! recognises the router by [`RouterLink::pid`]. A dead router shows up both as that pid
//! exiting and as [`Inbox::closed`] from [`RouterLink::read_messages`]; on either, call
//! [`RouterLink::restart`] once with every container whose `Drained` has not been seen.
//!
//! Sends block (at most [`SEND_TIMEOUT`]); reads never block. Register the link with the
//! supervisor's poller through [`RouterLink::register`], which also re-registers the new socket
//! after a restart.

use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    recv, sendmsg, setsockopt, socketpair, sockopt, AddressFamily, ControlMessage, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::time::TimeVal;
use proto::router::{decode, encode, FromRouter, SinkSpec, ToRouter, MAX_CONTROL_LEN};
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// File name of the router binary.
pub const ROUTER_BINARY: &str = "log-router";
/// Environment variable naming the directory of helper binaries and built-in sinks.
pub const LIBEXEC_ENV: &str = "ENGINE_LIBEXEC_DIR";
/// Longest wait for the router's answer to `Configure`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a control send may block (the router reads its socket promptly).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the router link.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The router binary is not where it should be.
    #[error("log-router binary not found (looked for {0})")]
    NotFound(String),
    /// The socketpair or its options could not be set up.
    #[error("control socket: {0}")]
    Socket(#[source] nix::Error),
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
    /// A control message could not be sent.
    #[error("cannot send to the log-router: {0}")]
    Send(#[source] nix::Error),
    /// A control message could not be encoded or is too large.
    #[error("cannot encode a control message: {0}")]
    Encode(String),
    /// The router answered something unexpected.
    #[error("unexpected answer from the log-router: {0}")]
    Protocol(String),
}

/// A container the router must (again) route.
#[derive(Debug, Clone, Copy)]
pub struct LiveContainer<'a> {
    /// Container id.
    pub id: &'a str,
    /// Absolute path of its log file.
    pub log_path: &'a Path,
    /// Read end of its stdout pipe (kept by the supervisor until `Drained`).
    pub stdout: BorrowedFd<'a>,
    /// Read end of its stderr pipe.
    pub stderr: BorrowedFd<'a>,
    /// Per-container sinks; empty means the configured defaults.
    pub sinks: &'a [SinkSpec],
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
    sock: OwnedFd,
    pid: nix::unistd::Pid,
    closed: bool,
    buf: Vec<u8>,
    poller: Option<(mio::Registry, Token)>,
}

impl RouterLink {
    /// Finds `log-router` in `ENGINE_LIBEXEC_DIR`, else next to the running executable.
    ///
    /// # Errors
    /// [`RouterError::NotFound`].
    pub fn find_binary() -> Result<PathBuf, RouterError> {
        let dir = match std::env::var_os(LIBEXEC_ENV).filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf))
                .unwrap_or_default(),
        };
        let exe = dir.join(ROUTER_BINARY);
        if exe.is_file() {
            Ok(exe)
        } else {
            Err(RouterError::NotFound(exe.display().to_string()))
        }
    }

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
            buf: vec![0; MAX_CONTROL_LEN + 1],
            poller: None,
        };
        link.configure()?;
        Ok(link)
    }

    /// Pid of the current router process (to recognise it when reaped).
    pub fn pid(&self) -> nix::unistd::Pid {
        self.pid
    }

    /// The control socket, readable when reports are waiting (it changes on restart).
    pub fn control_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Registers the control socket with the supervisor's poller under `token` (readable), and
    /// remembers both so that [`RouterLink::restart`] registers the new socket itself.
    ///
    /// # Errors
    /// Errors of `epoll_ctl` or of cloning the registry.
    pub fn register(&mut self, registry: &mio::Registry, token: Token) -> std::io::Result<()> {
        registry.register(
            &mut SourceFd(&self.sock.as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        self.poller = Some((registry.try_clone()?, token));
        Ok(())
    }

    /// Hands a container's output to the router. The fds are duplicated into the router; the
    /// caller keeps its own until `Drained{id}` arrives (they are needed again on a restart).
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
        self.send(&msg, &[stdout.as_raw_fd(), stderr.as_raw_fd()])
    }

    /// Sends a control message without fds (`Validate`, `Shutdown`); the answer, if any,
    /// comes through [`RouterLink::read_messages`].
    ///
    /// # Errors
    /// [`RouterError::Closed`] when the router is gone, [`RouterError::Send`],
    /// [`RouterError::Encode`].
    pub fn send_message(&mut self, msg: &ToRouter) -> Result<(), RouterError> {
        self.send(msg, &[])
    }

    /// Reads every report available now, without blocking.
    pub fn read_messages(&mut self) -> Inbox {
        self.read_socket()
    }

    /// Reads every packet available now from the socket.
    fn read_socket(&mut self) -> Inbox {
        let mut inbox = Inbox::default();
        while !self.closed {
            match recv(self.sock.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => self.closed = true,
                Ok(n) if n > MAX_CONTROL_LEN => {
                    tracing::error!("oversized report from the log-router ignored")
                }
                Ok(n) => match decode::<FromRouter>(&self.buf[..n]) {
                    Ok(m) => inbox.messages.push(m),
                    Err(e) => {
                        tracing::error!(error = %e, "undecodable report from the log-router ignored")
                    }
                },
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "log-router control socket failed");
                    self.closed = true;
                }
            }
        }
        inbox.closed = self.closed;
        inbox
    }

    /// Replaces the router without waiting: kills the old process if its socket is still
    /// open (while it is open the process is not reaped, so its pid cannot have been reused),
    /// starts a new one, registers its socket and sends `Configure`. Its `Ready` (or
    /// `ConfigError`) arrives through [`RouterLink::read_messages`]; the caller then hands it
    /// every container whose `Drained` it has not seen. Read the old router's last reports
    /// before calling this.
    ///
    /// # Errors
    /// As [`RouterLink::start`] before the answer; on error the link holds whatever router was
    /// started and may be restarted again.
    pub fn restart(&mut self) -> Result<(), RouterError> {
        self.kill();
        let (sock, pid) = spawn(&self.exe)?;
        let old = std::mem::replace(&mut self.sock, sock);
        if let Some((registry, _)) = &self.poller {
            let _ = registry.deregister(&mut SourceFd(&old.as_raw_fd()));
        }
        drop(old);
        self.pid = pid;
        self.closed = false;
        if let Some((registry, token)) = &self.poller {
            registry
                .register(
                    &mut SourceFd(&self.sock.as_raw_fd()),
                    *token,
                    Interest::READABLE,
                )
                .map_err(|e| RouterError::Socket(Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
        }
        tracing::info!(pid = pid.as_raw(), "log-router restarted");
        let msg = ToRouter::Configure {
            sinks: self.sinks.clone(),
        };
        self.send(&msg, &[])
    }

    /// SIGKILLs the router if its socket is still open (it is not reaped yet).
    pub fn kill(&self) {
        if !self.closed {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Whether the router's end of the socket is closed.
    pub fn is_closed(&self) -> bool {
        self.closed
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
    fn send(&mut self, msg: &ToRouter, fds: &[RawFd]) -> Result<(), RouterError> {
        let bytes = encode(msg).map_err(|e| RouterError::Encode(e.to_string()))?;
        if bytes.len() > MAX_CONTROL_LEN {
            return Err(RouterError::Encode(format!(
                "{} bytes exceed the {MAX_CONTROL_LEN}-byte control limit",
                bytes.len()
            )));
        }
        let rights = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
        loop {
            let iov = [IoSlice::new(&bytes)];
            match sendmsg::<()>(
                self.sock.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => {
                    self.closed = true;
                    return Err(RouterError::Closed);
                }
                Err(e) => return Err(RouterError::Send(e)),
            }
        }
    }

    /// Waits until the socket is readable or `deadline` passes.
    fn wait_readable(&self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}

/// Creates the socketpair and starts the router with its end as `--control-fd`, in its own
/// process group (terminal signals are the supervisor's to handle).
fn spawn(exe: &Path) -> Result<(OwnedFd, nix::unistd::Pid), RouterError> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(RouterError::Socket)?;
    let timeout = TimeVal::new(SEND_TIMEOUT.as_secs() as i64, 0);
    setsockopt(&ours, sockopt::SendTimeout, &timeout).map_err(RouterError::Socket)?;
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
