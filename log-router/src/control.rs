//! The router's end of the control socket (`SOCK_SEQPACKET`): one MessagePack message per
//! packet, container fds in `SCM_RIGHTS`, and a queue for reports the supervisor has not read
//! yet (so the router never blocks on a busy supervisor).

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, send, ControlMessageOwned, MsgFlags};
use proto::router::{decode, encode, FromRouter, ToRouter, MAX_CONTROL_LEN};
use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Most fds accepted in one packet (more are closed by the kernel and the packet is refused).
const MAX_FDS: usize = 8;

/// One received packet.
#[derive(Debug)]
pub struct Packet {
    /// The decoded message, or why it could not be decoded.
    pub message: Result<ToRouter, String>,
    /// File descriptors that came with it, in order.
    pub fds: Vec<OwnedFd>,
}

/// The control socket with its outgoing queue.
#[derive(Debug)]
pub struct Control {
    fd: OwnedFd,
    out: VecDeque<Vec<u8>>,
    buf: Vec<u8>,
}

impl Control {
    /// Wraps the inherited socket and makes it non-blocking.
    ///
    /// # Errors
    /// Errors of `fcntl`.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL)?);
        fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        Ok(Self {
            fd,
            out: VecDeque::new(),
            buf: vec![0; MAX_CONTROL_LEN + 1],
        })
    }

    /// The raw fd, for registering with the poller.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Receives one packet. `Ok(None)`: nothing pending.
    ///
    /// # Errors
    /// `UnexpectedEof` when the supervisor closed its end; other socket errors.
    pub fn recv(&mut self) -> io::Result<Option<Packet>> {
        let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let mut iov = [IoSliceMut::new(&mut self.buf)];
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
        let msg = match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Ok(m) => m,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::EINTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut fds = Vec::new();
        let mut trouble = None;
        match msg.cmsgs() {
            Ok(cmsgs) => {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: SCM_RIGHTS installed these fds in this process just now;
                        // nothing else owns them.
                        fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
                    }
                }
            }
            Err(_) => trouble = Some("too many file descriptors in one packet".to_string()),
        }
        let len = msg.bytes;
        let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
        if len == 0 && fds.is_empty() && trouble.is_none() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let message = match trouble {
            Some(t) => Err(t),
            None if truncated || len > MAX_CONTROL_LEN => Err(format!(
                "control packet larger than {MAX_CONTROL_LEN} bytes"
            )),
            None => {
                decode::<ToRouter>(&self.buf[..len]).map_err(|e| format!("bad control packet: {e}"))
            }
        };
        Ok(Some(Packet { message, fds }))
    }

    /// Queues a report and tries to send everything queued.
    ///
    /// # Errors
    /// As [`Control::flush`].
    pub fn send(&mut self, msg: &FromRouter) -> io::Result<()> {
        match encode(msg) {
            Ok(bytes) => self.out.push_back(bytes),
            Err(e) => tracing::error!(error = %e, "cannot encode a report"),
        }
        self.flush()
    }

    /// Sends queued reports until the socket is full.
    ///
    /// # Errors
    /// `BrokenPipe` and similar when the supervisor is gone.
    pub fn flush(&mut self) -> io::Result<()> {
        while let Some(p) = self.out.front() {
            match send(
                self.fd.as_raw_fd(),
                p,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(_) => {
                    self.out.pop_front();
                }
                Err(Errno::EAGAIN) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reports not yet sent.
    pub fn queued(&self) -> usize {
        self.out.len()
    }
}
