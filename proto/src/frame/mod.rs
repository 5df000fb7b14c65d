//! Frame codec: a big-endian `u32` length followed by that many bytes of MessagePack.
//!
//! Structs are encoded as maps (`rmp_serde::to_vec_named`) so that a peer ignores fields it does
//! not know. A frame longer than [`MAX_FRAME_LEN`] is refused before its body is read.
//!
//! [`channel`] holds the typed ends built on this codec: the CLI's blocking
//! [`channel::FrameClient`], the supervisor's non-blocking [`channel::FrameReader`] and
//! [`channel::FrameWriter`].

pub mod channel;

use serde::{de::DeserializeOwned, Serialize};
use std::io::{self, Read, Write};

/// Largest accepted request frame body, in bytes (1 MiB).
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Largest response frame body, in bytes (64 MiB): a `ps` of thousands of containers is
/// larger than any request may be.
pub const MAX_RESPONSE_LEN: usize = 64 << 20;

/// Size of the length prefix, in bytes.
pub const HEADER_LEN: usize = 4;

/// Errors of encoding, decoding or moving a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The body length exceeds the limit ([`MAX_FRAME_LEN`] for requests).
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The announced length, in bytes.
        len: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is not valid MessagePack for the expected type.
    #[error("malformed frame: {0}")]
    Decode(#[source] rmp_serde::decode::Error),
    /// The value could not be encoded.
    #[error("cannot encode frame: {0}")]
    Encode(#[source] rmp_serde::encode::Error),
    /// The peer closed the stream in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// An I/O error on the underlying stream.
    #[error("i/o error: {0}")]
    Io(#[source] io::Error),
}

/// Encodes `value` as one frame: 4-byte big-endian length, then the MessagePack map.
///
/// # Errors
/// [`FrameError::Encode`] if serialization fails, [`FrameError::TooLarge`] if the body would
/// exceed [`MAX_FRAME_LEN`].
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    encode_with_limit(value, MAX_FRAME_LEN)
}

/// As [`encode`], with another body limit, in bytes (e.g. [`MAX_RESPONSE_LEN`]).
///
/// # Errors
/// As [`encode`].
pub fn encode_with_limit<T: Serialize>(value: &T, limit: usize) -> Result<Vec<u8>, FrameError> {
    let body = rmp_serde::to_vec_named(value).map_err(FrameError::Encode)?;
    if body.len() > limit {
        return Err(FrameError::TooLarge {
            len: body.len(),
            limit,
        });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes one frame body (without its length prefix).
///
/// # Errors
/// [`FrameError::Decode`] if the bytes are not the expected MessagePack value.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    rmp_serde::from_slice(body).map_err(FrameError::Decode)
}

/// Writes `value` as one frame to a blocking stream.
///
/// # Errors
/// As [`encode`], plus [`FrameError::Io`].
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, value: &T) -> Result<(), FrameError> {
    let bytes = encode(value)?;
    w.write_all(&bytes).map_err(FrameError::Io)?;
    w.flush().map_err(FrameError::Io)
}

/// Reads one frame from a blocking stream. Returns `Ok(None)` on a clean end of stream before
/// any byte of a new frame.
///
/// # Errors
/// [`FrameError::TooLarge`], [`FrameError::Truncated`], [`FrameError::Decode`], [`FrameError::Io`].
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, FrameError> {
    read_frame_with_limit(r, MAX_FRAME_LEN)
}

/// As [`read_frame`], with another body limit, in bytes (e.g. [`MAX_RESPONSE_LEN`]).
///
/// # Errors
/// As [`read_frame`].
pub fn read_frame_with_limit<R: Read, T: DeserializeOwned>(
    r: &mut R,
    limit: usize,
) -> Result<Option<T>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    decode(&body).map(Some)
}

/// Incremental decoder for non-blocking streams: feed bytes as they arrive, take whole frame
/// bodies out. Never buffers more than one frame's header plus [`MAX_FRAME_LEN`] bytes.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next complete frame body, if one is buffered.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] as soon as a header announces an oversized body; the stream
    /// cannot be resynchronised after that and should be closed.
    pub fn next_body(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&self.buf[..HEADER_LEN]);
        let len = u32::from_be_bytes(header) as usize;
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge {
                len,
                limit: MAX_FRAME_LEN,
            });
        }
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let body = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u32,
        b: String,
    }

    #[test]
    fn round_trip_through_blocking_stream() {
        let v = Sample {
            a: 7,
            b: "x".into(),
        };
        let mut wire = Vec::new();
        write_frame(&mut wire, &v).unwrap();
        let back: Option<Sample> = read_frame(&mut wire.as_slice()).unwrap();
        assert_eq!(back, Some(v));
    }

    #[test]
    fn clean_eof_is_none_and_partial_header_is_truncated() {
        let empty: &[u8] = &[];
        assert!(read_frame::<_, Sample>(&mut &*empty).unwrap().is_none());
        let partial: &[u8] = &[0, 0];
        assert!(matches!(
            read_frame::<_, Sample>(&mut &*partial),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn oversized_header_is_refused_before_body() {
        let header = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
        assert!(matches!(
            read_frame::<_, Sample>(&mut &header[..]),
            Err(FrameError::TooLarge { .. })
        ));
        let mut d = FrameDecoder::new();
        d.push(&header);
        assert!(matches!(d.next_body(), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn decoder_reassembles_split_frames() {
        let a = encode(&Sample {
            a: 1,
            b: "one".into(),
        })
        .unwrap();
        let b = encode(&Sample {
            a: 2,
            b: "two".into(),
        })
        .unwrap();
        let wire: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(3) {
            d.push(chunk);
            while let Some(body) = d.next_body().unwrap() {
                out.push(decode::<Sample>(&body).unwrap());
            }
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].b, "two");
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn garbage_body_is_a_decode_error() {
        assert!(matches!(
            decode::<Sample>(&[0xc1, 0xff, 0x00]),
            Err(FrameError::Decode(_))
        ));
    }
}
