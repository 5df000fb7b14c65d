//! One client connection on the supervisor's socket: non-blocking reads into a frame decoder,
//! queued response frames, and the request it is waiting to answer (`wait`, `stop`).

use proto::api::{RequestFrame, Response};
use proto::frame::{self, FrameDecoder, FrameError};
use std::io::{self, Read, Write};

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
    decoder: FrameDecoder,
    out: Vec<u8>,
    /// The request waiting for a container to end, if any; later requests wait behind it.
    pub pending: Option<Pending>,
    /// Close once `out` is flushed (after a protocol error).
    pub close_after_flush: bool,
    /// The peer closed its side.
    pub peer_closed: bool,
    /// Set when the connection's protocol stream is broken (oversized frame): stop decoding.
    broken: bool,
}

impl Connection {
    /// Wraps an accepted stream.
    pub fn new(stream: mio::net::UnixStream) -> Self {
        Self {
            stream,
            decoder: FrameDecoder::new(),
            out: Vec::new(),
            pending: None,
            close_after_flush: false,
            peer_closed: false,
            broken: false,
        }
    }

    /// Reads everything available now into the decoder.
    ///
    /// # Errors
    /// An I/O error other than `WouldBlock` (the connection should be dropped).
    pub fn fill(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.peer_closed = true;
                    return Ok(());
                }
                Ok(n) => {
                    if !self.broken {
                        self.decoder.push(&buf[..n]);
                    }
                    // Do not buffer without bound behind an oversized header.
                    if self.decoder.buffered() > frame::MAX_FRAME_LEN + frame::HEADER_LEN {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next complete request, unless one is pending or the stream is broken.
    pub fn next_request(&mut self) -> Option<Incoming> {
        if self.pending.is_some() || self.broken || self.close_after_flush {
            return None;
        }
        match self.decoder.next_body() {
            Ok(None) => None,
            Ok(Some(body)) => Some(match frame::decode::<RequestFrame>(&body) {
                Ok(req) => Incoming::Request(req),
                Err(e) => Incoming::Malformed(e),
            }),
            Err(e) => {
                self.broken = true;
                Some(Incoming::Malformed(e))
            }
        }
    }

    /// Queues a response frame and tries to send it.
    pub fn respond(&mut self, response: &Response) {
        match frame::encode_with_limit(response, frame::MAX_RESPONSE_LEN) {
            Ok(bytes) => self.out.extend_from_slice(&bytes),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode response");
                let fallback = Response::error(
                    proto::api::ErrorCode::Internal,
                    format!("the answer cannot be sent: {e}"),
                );
                if let Ok(bytes) = frame::encode(&fallback) {
                    self.out.extend_from_slice(&bytes);
                }
            }
        }
        let _ = self.flush();
    }

    /// Writes queued bytes until the socket would block.
    ///
    /// # Errors
    /// An I/O error other than `WouldBlock`.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether bytes are still queued for the peer.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Whether the connection is finished and can be dropped.
    pub fn is_done(&self) -> bool {
        !self.has_output()
            && (self.close_after_flush || (self.peer_closed && self.pending.is_none()))
    }
}
