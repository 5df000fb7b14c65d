//! A blocking client of the supervisor's socket: one frame out, one frame back.

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use proto::api::{ContainerInfo, ErrorBody, Request, RequestFrame, Response};
use proto::frame::channel::{CallError, FrameClient};
use proto::frame::FrameError;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long `connect` keeps trying while the supervisor's backlog is full, in ms: 10 s.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// How long a request may wait for its answer (all but `Wait` and `Stop`), in ms: 60 s, twice
/// the supervisor's ready timeout for a start.
pub const ANSWER_TIMEOUT_MS: u64 = 60_000;

/// A connection to the supervisor.
#[derive(Debug)]
pub struct Client {
    channel: FrameClient<UnixStream, RequestFrame, Response>,
    /// [`ANSWER_TIMEOUT_MS`] (shorter in tests).
    answer_timeout: Duration,
}

impl Client {
    /// Connects to the supervisor at `socket`, trying for up to [`CONNECT_TIMEOUT_MS`] while
    /// its backlog is full (a supervisor that does not accept).
    ///
    /// # Errors
    /// When nothing listens there, or the supervisor does not accept in time.
    pub fn connect(socket: &Path) -> Result<Self> {
        let stream = connect_within(socket, Duration::from_millis(CONNECT_TIMEOUT_MS))
            .with_context(|| {
                format!(
                    "cannot connect to the supervisor at {} (is `engine supervisor` running?)",
                    socket.display()
                )
            })?;
        Ok(Self {
            channel: FrameClient::new(stream),
            answer_timeout: Duration::from_millis(ANSWER_TIMEOUT_MS),
        })
    }

    /// Sends a request and reads its answer; an error answer becomes an `Err` with the
    /// supervisor's message.
    ///
    /// # Errors
    /// Transport failures and error answers.
    pub fn call(&mut self, request: Request) -> Result<Response> {
        // A refused client (e.g. wrong uid) is answered and closed before its request is
        // read: `call` reads that answer before reporting a failed send.
        // `Wait` and `Stop` are answered when the container ends, however long it lives; a
        // dead supervisor still closes the connection. Others are answered at once (a start
        // within the supervisor's 30 s ready timeout).
        let waits = matches!(request, Request::Wait { .. } | Request::Stop { .. });
        let timeout = (!waits).then_some(self.answer_timeout);
        let stream = self.channel.get_mut();
        stream
            .set_read_timeout(timeout)
            .and_then(|()| stream.set_write_timeout(Some(self.answer_timeout)))
            .context("cannot set the socket's timeouts")?;
        let resp = match self.channel.call(&RequestFrame::new(request)) {
            Ok(resp) => resp,
            Err(CallError::Send(e)) if timed_out(&e) => bail!(
                "the supervisor did not take the request within {} ms (is it hung?)",
                self.answer_timeout.as_millis()
            ),
            Err(CallError::Send(e)) => {
                return Err(e).context("cannot send request to the supervisor")
            }
            Err(CallError::Closed) => bail!("the supervisor closed the connection"),
            Err(CallError::Receive(FrameError::Io(e)))
                if e.kind() == std::io::ErrorKind::ConnectionReset =>
            {
                bail!("the supervisor closed the connection (did it exit?)")
            }
            Err(CallError::Receive(e)) if timed_out(&e) => bail!(
                "the supervisor did not answer within {} ms (is it hung?)",
                self.answer_timeout.as_millis()
            ),
            Err(CallError::Receive(e)) => {
                return Err(e).context("cannot read the supervisor's answer")
            }
        };
        match resp {
            Response::Error(e) => Err(Refused(e).into()),
            other => Ok(other),
        }
    }

    /// Sends a request answered by one container record.
    ///
    /// # Errors
    /// As [`Client::call`], or an unexpected answer.
    pub fn container(&mut self, request: Request) -> Result<ContainerInfo> {
        match self.call(request)? {
            Response::Container(info) => Ok(info),
            other => bail!("unexpected answer from the supervisor: {other:?}"),
        }
    }
}

/// Connects without blocking on a full backlog (`EAGAIN` for a UNIX socket), retrying every
/// 20 ms until `timeout`; the stream is blocking once connected.
fn connect_within(path: &Path, timeout: Duration) -> std::io::Result<UnixStream> {
    let addr = UnixAddr::new(path)?;
    let deadline = Instant::now() + timeout;
    loop {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        match connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
            Ok(()) => {
                let stream = UnixStream::from(fd);
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(Errno::EAGAIN) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(Errno::EAGAIN) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the supervisor did not accept within {} ms",
                        timeout.as_millis()
                    ),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether a frame error is a socket timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO` passed).
fn timed_out(e: &FrameError) -> bool {
    matches!(e, FrameError::Io(io) if matches!(
        io.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ))
}

/// An error answer of the supervisor; `Display` is its message.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.message)]
pub struct Refused(pub ErrorBody);

/// The exit status of the CLI for an error: [`proto::exit::error_status`] of the supervisor's
/// error class when `e` is an error answer, of none otherwise.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    proto::exit::error_status(e.downcast_ref::<Refused>().map(|r| r.0.code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{bind, listen, Backlog};
    use std::os::fd::AsRawFd;

    /// A socket that listens with a backlog of one and never accepts.
    fn deaf(dir: &Path) -> (std::path::PathBuf, std::os::fd::OwnedFd) {
        let path = dir.join("s.sock");
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(fd.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        listen(&fd, Backlog::new(0).unwrap()).unwrap();
        (path, fd)
    }

    #[test]
    fn an_unanswered_request_times_out_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _l) = deaf(dir.path());
        let mut c = Client::connect(&path).unwrap();
        c.answer_timeout = Duration::from_millis(200);
        let t = Instant::now();
        let e = c.call(Request::Ps).unwrap_err().to_string();
        assert!(e.contains("did not answer within 200 ms"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_full_backlog_times_out_the_connect() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _l) = deaf(dir.path());
        // Fill the backlog, then one more cannot get in.
        let mut held = Vec::new();
        let e = loop {
            match connect_within(&path, Duration::from_millis(100)) {
                Ok(s) => held.push(s),
                Err(e) => break e,
            }
            assert!(held.len() < 64, "the backlog never filled");
        };
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("did not accept within 100 ms"));
    }

    #[test]
    fn a_dead_supervisor_ends_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(100));
            drop(s);
        });
        let mut c = Client::connect(&path).unwrap();
        let e = c.call(Request::Wait { id: "a".into() }).unwrap_err();
        assert!(e.to_string().contains("closed the connection"), "{e}");
        t.join().unwrap();
    }
}
