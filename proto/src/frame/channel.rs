//! Typed ends of the framed MessagePack channel (the CLI socket): one place for the I/O around
//! the [`super`] codec.
//!
//! - [`FrameClient`]: blocking, for the CLI: `call(request) -> response`, one frame each way.
//! - [`FrameReader`]: non-blocking, for the supervisor: reads what a stream has now and
//!   decodes whole request frames out of it.
//! - [`FrameWriter`]: non-blocking, for the supervisor: a queue of encoded response frames
//!   and a flush that writes until the stream would block.

use super::{
    decode, encode_with_limit, read_frame_with_limit, write_frame, FrameDecoder, FrameError,
    HEADER_LEN, MAX_FRAME_LEN, MAX_RESPONSE_LEN,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, Read, Write};
use std::marker::PhantomData;

/// Why a [`FrameClient::call`] got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request could not be written, and no answer came either.
    #[error("cannot send the request: {0}")]
    Send(#[source] FrameError),
    /// The peer closed the stream without answering.
    #[error("the peer closed the connection")]
    Closed,
    /// The answer could not be read or decoded.
    #[error("cannot read the answer: {0}")]
    Receive(#[source] FrameError),
}

/// The blocking client end: writes one `Req` frame (at most [`MAX_FRAME_LEN`] bytes of body),
/// reads one `Resp` frame (at most [`MAX_RESPONSE_LEN`]).
#[derive(Debug)]
pub struct FrameClient<S, Req, Resp> {
    stream: S,
    _direction: PhantomData<fn(Req) -> Resp>,
}

impl<S: Read + Write, Req: Serialize, Resp: DeserializeOwned> FrameClient<S, Req, Resp> {
    /// A client over a connected blocking stream.
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            _direction: PhantomData,
        }
    }

    /// Sends `request` and reads its answer. The answer is read even when the send failed: a
    /// server may answer and close before reading (e.g. a refused peer), and that answer is
    /// the one to report.
    ///
    /// # Errors
    /// [`CallError::Send`] when the send failed and no answer came, [`CallError::Closed`] when
    /// the peer closed without answering, [`CallError::Receive`].
    pub fn call(&mut self, request: &Req) -> Result<Resp, CallError> {
        let sent = write_frame(&mut self.stream, request);
        let read = read_frame_with_limit(&mut self.stream, MAX_RESPONSE_LEN);
        match (sent, read) {
            (_, Ok(Some(answer))) => Ok(answer),
            (Err(e), _) => Err(CallError::Send(e)),
            (Ok(()), Ok(None)) => Err(CallError::Closed),
            (Ok(()), Err(e)) => Err(CallError::Receive(e)),
        }
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

/// Whether the peer is still sending, after [`FrameReader::fill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Everything available was read (or one frame's worth is buffered); more may come.
    Open,
    /// The peer closed its side (a read returned 0).
    PeerClosed,
}

/// The non-blocking reading end: buffers bytes and yields decoded `T` frames. After an
/// oversized header the stream cannot be resynchronised: the reader is broken, yields nothing
/// more and discards what it reads.
#[derive(Debug)]
pub struct FrameReader<T> {
    decoder: FrameDecoder,
    broken: bool,
    _message: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Default for FrameReader<T> {
    fn default() -> Self {
        Self {
            decoder: FrameDecoder::new(),
            broken: false,
            _message: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> FrameReader<T> {
    /// A reader with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads everything `stream` has now, 16 KiB at a time, until it would block, reaches end
    /// of stream, or more than one whole frame ([`HEADER_LEN`] + [`MAX_FRAME_LEN`] bytes) is
    /// buffered.
    ///
    /// # Errors
    /// An I/O error other than `WouldBlock` and `Interrupted`.
    pub fn fill<R: Read>(&mut self, stream: &mut R) -> io::Result<Fill> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Ok(Fill::PeerClosed),
                Ok(n) => {
                    if !self.broken {
                        self.decoder.push(&buf[..n]);
                    }
                    // Do not buffer without bound behind an oversized header.
                    if self.decoder.buffered() > MAX_FRAME_LEN + HEADER_LEN {
                        return Ok(Fill::Open);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Fill::Open),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next whole frame, decoded; `None` when no whole frame is buffered or the reader is
    /// broken.
    ///
    /// # Errors
    /// `Some(Err(FrameError::Decode))` for a frame that is not a `T` (the next frame may still
    /// be fine); `Some(Err(FrameError::TooLarge))` for an oversized header, which breaks the
    /// reader.
    pub fn next_frame(&mut self) -> Option<Result<T, FrameError>> {
        if self.broken {
            return None;
        }
        match self.decoder.next_body() {
            Ok(None) => None,
            Ok(Some(body)) => Some(decode(&body)),
            Err(e) => {
                self.broken = true;
                Some(Err(e))
            }
        }
    }
}

/// The non-blocking writing end: a queue of encoded `T` frames (bodies of at most `limit`
/// bytes) flushed into a stream as far as it takes them.
#[derive(Debug)]
pub struct FrameWriter<T> {
    out: Vec<u8>,
    limit: usize,
    _message: PhantomData<fn(T)>,
}

impl<T: Serialize> FrameWriter<T> {
    /// An empty queue for frames whose body is at most `limit` bytes (e.g.
    /// [`MAX_RESPONSE_LEN`]).
    pub fn new(limit: usize) -> Self {
        Self {
            out: Vec::new(),
            limit,
            _message: PhantomData,
        }
    }

    /// Encodes `value` and queues its frame (nothing is written yet).
    ///
    /// # Errors
    /// [`FrameError::Encode`], [`FrameError::TooLarge`]; nothing is queued then.
    pub fn push(&mut self, value: &T) -> Result<(), FrameError> {
        let bytes = encode_with_limit(value, self.limit)?;
        self.out.extend_from_slice(&bytes);
        Ok(())
    }

    /// Writes queued bytes until `stream` would block or the queue is empty.
    ///
    /// # Errors
    /// An I/O error other than `WouldBlock` and `Interrupted` (`WriteZero` when the stream
    /// takes nothing).
    pub fn flush<W: Write>(&mut self, stream: &mut W) -> io::Result<()> {
        while !self.out.is_empty() {
            match stream.write(&self.out) {
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

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{encode, read_frame};
    use serde::Deserialize;
    use std::os::unix::net::UnixStream;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Ask(u32);
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Answer(String);

    #[test]
    fn call_sends_one_frame_and_reads_one() {
        let (client, mut server) = UnixStream::pair().unwrap();
        let peer = std::thread::spawn(move || {
            let ask: Ask = read_frame(&mut server).unwrap().unwrap();
            write_frame(&mut server, &Answer(format!("got {}", ask.0))).unwrap();
            let again: Ask = read_frame(&mut server).unwrap().unwrap();
            assert_eq!(again, Ask(2));
        });
        let mut c: FrameClient<_, Ask, Answer> = FrameClient::new(client);
        assert_eq!(c.call(&Ask(7)).unwrap(), Answer("got 7".into()));
        assert!(matches!(c.call(&Ask(2)), Err(CallError::Closed)));
        peer.join().unwrap();
    }

    #[test]
    fn an_answer_given_before_the_request_is_read_wins_over_a_failed_send() {
        let (client, mut server) = UnixStream::pair().unwrap();
        write_frame(&mut server, &Answer("refused".into())).unwrap();
        drop(server);
        let mut c: FrameClient<_, Ask, Answer> = FrameClient::new(client);
        assert_eq!(c.call(&Ask(1)).unwrap(), Answer("refused".into()));
        assert!(matches!(c.call(&Ask(1)), Err(CallError::Send(_))));
    }

    #[test]
    fn reader_yields_split_frames_then_sees_the_peer_close() {
        let mut wire = encode(&Ask(1)).unwrap();
        wire.extend(encode(&"not an ask").unwrap());
        wire.extend(encode(&Ask(3)).unwrap());
        let mut r: FrameReader<Ask> = FrameReader::new();
        let mut got = Vec::new();
        for piece in wire.chunks(3) {
            assert_eq!(r.fill(&mut &piece[..]).unwrap(), Fill::PeerClosed);
            while let Some(m) = r.next_frame() {
                got.push(m.ok());
            }
        }
        assert_eq!(got, [Some(Ask(1)), None, Some(Ask(3))]);
    }

    #[test]
    fn an_oversized_header_breaks_the_reader() {
        let mut wire = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec();
        wire.extend(encode(&Ask(1)).unwrap());
        let mut r: FrameReader<Ask> = FrameReader::new();
        r.fill(&mut &wire[..]).unwrap();
        assert!(matches!(
            r.next_frame(),
            Some(Err(FrameError::TooLarge { .. }))
        ));
        assert!(r.next_frame().is_none());
        r.fill(&mut &encode(&Ask(2)).unwrap()[..]).unwrap();
        assert!(r.next_frame().is_none());
    }

    /// A stream that takes at most `room` bytes, then would block.
    struct Narrow {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Narrow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room).min(5);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writer_flushes_until_would_block_and_resumes() {
        let mut w: FrameWriter<Answer> = FrameWriter::new(MAX_RESPONSE_LEN);
        w.push(&Answer("first".into())).unwrap();
        w.push(&Answer("second".into())).unwrap();
        let total = w.queued();
        let mut s = Narrow {
            taken: Vec::new(),
            room: 7,
        };
        w.flush(&mut s).unwrap();
        assert_eq!((s.taken.len(), w.queued()), (7, total - 7));
        s.room = usize::MAX;
        w.flush(&mut s).unwrap();
        assert_eq!(w.queued(), 0);
        let mut wire = &s.taken[..];
        let a: Answer = read_frame(&mut wire).unwrap().unwrap();
        let b: Answer = read_frame(&mut wire).unwrap().unwrap();
        assert_eq!((a.0.as_str(), b.0.as_str()), ("first", "second"));
    }

    #[test]
    fn writer_refuses_a_frame_over_its_limit_and_queues_nothing() {
        let mut w: FrameWriter<Answer> = FrameWriter::new(8);
        assert!(matches!(
            w.push(&Answer("x".repeat(20))),
            Err(FrameError::TooLarge { limit: 8, .. })
        ));
        assert_eq!(w.queued(), 0);
    }
}
