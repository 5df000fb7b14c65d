//! The router's end of the control channel ([`proto::router::RouterEnd`]) with a queue for
//! reports the supervisor has not read yet, so the router never blocks on a busy supervisor.

use proto::router::{ChannelError, FromRouter, RouterEnd, ToRouter};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// One received message and the file descriptors that came with it, in order.
#[derive(Debug)]
pub struct Packet {
    /// The message.
    pub message: ToRouter,
    /// File descriptors of its packet.
    pub fds: Vec<OwnedFd>,
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

    /// Receives one packet. `Ok(None)`: nothing pending.
    ///
    /// # Errors
    /// [`ChannelError::Closed`] when the supervisor closed its end; packet errors
    /// ([`ChannelError::is_packet_error`]: the packet was dropped, the channel goes on); other
    /// socket errors.
    pub fn recv(&mut self) -> Result<Option<Packet>, ChannelError> {
        Ok(self
            .channel
            .recv()?
            .map(|(message, fds)| Packet { message, fds }))
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
