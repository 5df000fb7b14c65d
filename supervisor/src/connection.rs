//! One client connection on the supervisor's socket: non-blocking reads into a frame reader,
//! queued response frames (both `proto::frame::channel`), and the request it is waiting to
//! answer (`wait`, `stop`).

use proto::api::{RequestFrame, Response};
use proto::frame::channel::{Fill, FrameReader, FrameWriter};
use proto::frame::{self, FrameError};
use std::io;
use std::time::{Duration, Instant};

/// Bytes of answers queued for one client above which its next requests are not read (its
/// own socket buffer then pushes back on it): 256 KiB, a few `ps` answers of hundreds of
/// containers. One answer may still exceed it (up to [`frame::MAX_RESPONSE_LEN`]).
pub const MAX_QUEUED_BYTES: usize = 256 * 1024;
/// How long a connection's queue may stay above [`MAX_QUEUED_BYTES`] (its client does not
/// read) before the connection is dropped, in ms: 10 s.
pub const STALL_TIMEOUT_MS: u64 = 10_000;

/// A request whose answer comes later: the container has not ended yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// `wait` or `stop` on this container id.
    Ended(String),
}

/// What reading a connection produced.
#[derive(Debug)]
pub enum Incoming {
    /// A well-formed request.
    Request(RequestFrame),
    /// A frame that is not a request, or too large: answer with an error and close.
    Malformed(FrameError),
}

/// A client connection.
#[derive(Debug)]
pub struct Connection {
    /// The socket.
    pub stream: mio::net::UnixStream,
    reader: FrameReader<RequestFrame>,
    writer: FrameWriter<Response>,
    /// The request waiting for a container to end, if any; later requests wait behind it.
    pub pending: Option<Pending>,
    /// Close once queued output is flushed (after a protocol error).
    pub close_after_flush: bool,
    /// The peer closed its side.
    pub peer_closed: bool,
    /// Writing failed (EPIPE: the peer is gone): nothing more can be answered.
    pub broken: bool,
    /// Since when its queue is above [`MAX_QUEUED_BYTES`], if it is.
    full_since: Option<Instant>,
}

impl Connection {
    /// Wraps an accepted stream.
    pub fn new(stream: mio::net::UnixStream) -> Self {
        Self {
            stream,
            reader: FrameReader::new(),
            writer: FrameWriter::new(frame::MAX_RESPONSE_LEN),
            pending: None,
            close_after_flush: false,
            peer_closed: false,
            broken: false,
            full_since: None,
        }
    }

    /// Reads everything available now into the decoder.
    ///
    /// # Errors
    /// An I/O error other than `WouldBlock` (the connection should be dropped).
    pub fn fill(&mut self) -> io::Result<()> {
        if self.reader.fill(&mut self.stream)? == Fill::PeerClosed {
            self.peer_closed = true;
        }
        Ok(())
    }

    /// The next complete request, unless one is pending, the stream is broken, or too many
    /// answers are queued ([`Connection::is_full`]).
    pub fn next_request(&mut self) -> Option<Incoming> {
        if self.pending.is_some() || self.close_after_flush || self.is_full() {
            return None;
        }
        self.reader.next_frame().map(|frame| match frame {
            Ok(req) => Incoming::Request(req),
            Err(e) => Incoming::Malformed(e),
        })
    }

    /// Queues a response frame and tries to send it.
    pub fn respond(&mut self, response: &Response) {
        if let Err(e) = self.writer.push(response) {
            tracing::error!(error = %e, "cannot encode response");
            let fallback = Response::error(
                proto::api::ErrorCode::Internal,
                format!("the answer cannot be sent: {e}"),
            );
            if let Err(e) = self.writer.push(&fallback) {
                tracing::error!(error = %e, "cannot encode the error answer either");
            }
        }
        if self.flush().is_err() {
            self.broken = true;
        }
    }

    /// Writes queued bytes until the socket would block.
    ///
    /// # Errors
    /// An I/O error other than `WouldBlock`.
    pub fn flush(&mut self) -> io::Result<()> {
        let r = self.writer.flush(&mut self.stream);
        self.full_since = match (self.is_full(), self.full_since) {
            (false, _) => None,
            (true, since) => Some(since.unwrap_or_else(Instant::now)),
        };
        r
    }

    /// Whether more than [`MAX_QUEUED_BYTES`] of answers wait for the client to read them.
    pub fn is_full(&self) -> bool {
        self.writer.queued() > MAX_QUEUED_BYTES
    }

    /// When the connection is dropped if its client still does not read: [`STALL_TIMEOUT_MS`]
    /// after its queue went above [`MAX_QUEUED_BYTES`].
    pub fn stall_deadline(&self) -> Option<Instant> {
        self.full_since
            .map(|t| t + Duration::from_millis(STALL_TIMEOUT_MS))
    }

    /// Whether bytes are still queued for the peer.
    pub fn has_output(&self) -> bool {
        self.writer.queued() > 0
    }

    /// Whether the connection is finished and can be dropped (once its request in flight, if
    /// any, is answered).
    pub fn is_done(&self) -> bool {
        !self.has_output()
            && (self.close_after_flush || (self.peer_closed && self.pending.is_none()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::api::ErrorCode;

    fn pair() -> (Connection, std::os::unix::net::UnixStream) {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (Connection::new(mio::net::UnixStream::from_std(a)), b)
    }

    #[test]
    fn an_answer_to_a_gone_peer_breaks_the_connection() {
        let (mut c, peer) = pair();
        c.respond(&Response::error(ErrorCode::Internal, "x"));
        assert!(!c.broken);
        drop(peer);
        c.respond(&Response::error(ErrorCode::Internal, "y"));
        assert!(c.broken);
    }

    #[test]
    fn a_half_closed_peer_is_done_only_without_output() {
        let (mut c, peer) = pair();
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        c.fill().unwrap();
        assert!(c.peer_closed && c.is_done());
        c.respond(&Response::error(ErrorCode::Internal, "x"));
        // Sent at once: the peer can still read.
        assert!(!c.broken && c.is_done());
    }
}
