//! The router's end of the control channel ([`proto::router::RouterEnd`]) with a queue for
//! reports the supervisor has not read yet, so the router never blocks on a busy supervisor.

use proto::router::channel::MAX_FDS;
use proto::router::{ChannelError, FromRouter, Received, RouterEnd, ToRouter};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// One received message and the file descriptors that came with it, in order.
#[derive(Debug)]
pub struct Packet {
    /// The message.
    pub message: ToRouter,
    /// File descriptors of its packet.
    pub fds: Vec<OwnedFd>,
    /// The packet's fds were cut off (`MSG_CTRUNC`: too many, or this process is out of
    /// descriptors); `fds` is then empty.
    pub fds_truncated: bool,
}

/// The control channel with its outgoing queue.
#[derive(Debug)]
pub struct Control {
    channel: RouterEnd,
    out: VecDeque<FromRouter>,
}

impl Control {
    /// Wraps the inherited socket and makes it non-blocking.
    ///
    /// # Errors
    /// [`ChannelError::Socket`] from `fcntl`.
    pub fn new(fd: OwnedFd) -> Result<Self, ChannelError> {
        Ok(Self {
            channel: RouterEnd::from_fd(fd)?,
            out: VecDeque::new(),
        })
    }

    /// The raw fd, for registering with the poller.
    pub fn raw_fd(&self) -> RawFd {
        self.channel.as_raw_fd()
    }

    /// Receives one packet. `Ok(None)`: nothing pending. A packet whose fds were cut off is
    /// returned with `fds_truncated` when its message decodes, so that it can be answered.
    ///
    /// # Errors
    /// [`ChannelError::Closed`] when the supervisor closed its end; packet errors
    /// ([`ChannelError::is_packet_error`]: the packet was dropped, the channel goes on; an
    /// undecodable one whose fds were cut off is [`ChannelError::FdsTruncated`]); other
    /// socket errors.
    pub fn recv(&mut self) -> Result<Option<Packet>, ChannelError> {
        Ok(match self.channel.recv_any()? {
            None => None,
            Some(Received::Message(message, fds)) => Some(Packet {
                message,
                fds,
                fds_truncated: false,
            }),
            Some(Received::FdsTruncated(Some(message))) => Some(Packet {
                message,
                fds: Vec::new(),
                fds_truncated: true,
            }),
            Some(Received::FdsTruncated(None)) => {
                return Err(ChannelError::FdsTruncated { max: MAX_FDS })
            }
        })
    }

    /// Queues a report and tries to send everything queued.
    ///
    /// # Errors
    /// As [`Control::flush`].
    pub fn send(&mut self, msg: FromRouter) -> Result<(), ChannelError> {
        self.out.push_back(msg);
        self.flush()
    }

    /// Sends queued reports until the socket is full. A report that cannot be encoded is
    /// logged and dropped.
    ///
    /// # Errors
    /// [`ChannelError::Closed`] and other socket errors when the supervisor is gone.
    pub fn flush(&mut self) -> Result<(), ChannelError> {
        while let Some(msg) = self.out.front() {
            match self.channel.send(msg, &[]) {
                Ok(()) => {}
                Err(ChannelError::WouldBlock) => return Ok(()),
                Err(e) if e.is_packet_error() => {
                    tracing::error!(error = %e, "cannot send a report; dropped");
                }
                Err(e) => return Err(e),
            }
            self.out.pop_front();
        }
        Ok(())
    }

    /// Reports not yet sent.
    pub fn queued(&self) -> usize {
        self.out.len()
    }
}
