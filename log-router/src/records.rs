//! A chunk of bytes read at once from one stream, and its split into records: whole lines (as
//! many as fit in [`ENGINE_SINK_MAX_RECORD`]), or a piece of a line without a line feed
//! (partial: a line longer than the limit, or not finished yet).

use crate::buffers::Buffers;
use sink_abi::ffi::{EngineSinkRecord, ENGINE_SINK_MAX_RECORD};
use sink_abi::{Record, Stream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long an unfinished line may wait in the pipe for its line feed before it is delivered
/// as a partial record.
pub const PARTIAL_HOLD: Duration = Duration::from_millis(100);

/// How much of a peeked chunk to deliver now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// All of it.
    All,
    /// The first `n` bytes (up to and including the last line feed); the rest stays in the pipe.
    Upto(usize),
    /// Nothing yet: the chunk is an unfinished line; look again after [`PARTIAL_HOLD`].
    Hold,
}

/// Chunks end at a line boundary whenever possible, so that a chunk delivered twice after a
/// router crash repeats whole lines and never glues two halves together, and a rotating sink
/// finds line ends to rotate at. An unfinished line is delivered anyway when it is the last
/// bytes of the stream (`last`: writers closed and nothing follows), when it reached the
/// record limit, or when it has waited [`PARTIAL_HOLD`] since `held_since`.
pub fn cut(data: &[u8], last: bool, held_since: Option<Instant>, now: Instant) -> Cut {
    if last || data.last() == Some(&b'\n') {
        return Cut::All;
    }
    if let Some(pos) = memchr::memrchr(b'\n', data) {
        return Cut::Upto(pos + 1);
    }
    if data.len() >= ENGINE_SINK_MAX_RECORD || held_since.is_some_and(|t| now >= t + PARTIAL_HOLD) {
        return Cut::All;
    }
    Cut::Hold
}

/// Bytes read together from one stream of one container, shared by every sink of it, with
/// their C records built once.
pub struct Chunk {
    /// Container id.
    pub container_id: String,
    /// Source stream.
    pub stream: Stream,
    /// Read time, in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Number of the chunk within its route (to match releases with the chunk in flight).
    pub seq: u64,
    /// The bytes.
    pub data: Vec<u8>,
    /// The records, pointing into `data` and `container_id` (whose heap buffers never move or
    /// change while the chunk lives).
    ffi: Vec<EngineSinkRecord>,
    /// Holders that still have to release the chunk before its bytes may be consumed from the
    /// pipe (blocking sinks plus the router itself).
    pending: AtomicUsize,
    /// Where `data` goes back when the chunk is dropped.
    recycle: Option<Buffers>,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(b) = self.recycle.take() {
            b.give(std::mem::take(&mut self.data));
        }
    }
}

// SAFETY: the raw pointers in `ffi` point into the chunk's own immutable heap buffers; the
// chunk is never mutated after construction except through the atomic counter.
unsafe impl Send for Chunk {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for Chunk {}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("container_id", &self.container_id)
            .field("stream", &self.stream)
            .field("len", &self.data.len())
            .field("records", &self.ffi.len())
            .finish_non_exhaustive()
    }
}

impl Chunk {
    /// A chunk with `holders` releases outstanding.
    pub fn new(
        container_id: String,
        stream: Stream,
        timestamp_ns: u64,
        seq: u64,
        data: Vec<u8>,
        holders: usize,
    ) -> Self {
        let ffi = split(&data)
            .map(|(piece, partial)| {
                Record {
                    container_id: &container_id,
                    stream,
                    timestamp_ns,
                    partial,
                    data: piece,
                }
                .to_ffi()
            })
            .collect();
        Self {
            container_id,
            stream,
            timestamp_ns,
            seq,
            data,
            ffi,
            pending: AtomicUsize::new(holders),
            recycle: None,
        }
    }

    /// Hands the chunk's buffer back to `buffers` when the chunk is dropped.
    pub fn recycled_into(mut self, buffers: &Buffers) -> Self {
        self.recycle = Some(buffers.clone());
        self
    }

    /// Releases one hold; returns true for the last one.
    pub fn release(&self) -> bool {
        self.pending.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// The C records, in order: consecutive slices of [`Chunk::data`].
    pub fn ffi(&self) -> &[EngineSinkRecord] {
        &self.ffi
    }

    /// The records of this chunk, in order.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        // SAFETY: the records point into this chunk's buffers, alive as long as `self`.
        self.ffi.iter().map(|r| unsafe { Record::from_ffi(r) })
    }
}

/// Splits bytes into `(piece, partial)` records of at most [`ENGINE_SINK_MAX_RECORD`] bytes:
/// whole lines, as many as fit, cut right after a line feed; or, when the window holds no line
/// feed, a piece of a line (partial).
pub fn split(data: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let window = &rest[..rest.len().min(ENGINE_SINK_MAX_RECORD)];
        let end = memchr::memrchr(b'\n', window).map_or(window.len(), |i| i + 1);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some((piece, piece.last() != Some(&b'\n')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_pieces_and_tail() {
        let got: Vec<_> = split(b"a\nbc\n\nd").collect();
        assert_eq!(got, vec![(&b"a\nbc\n\n"[..], false), (b"d", true)]);
        let many: Vec<u8> = b"0123456789\n".repeat(3000);
        let recs: Vec<_> = split(&many).collect();
        assert!(recs.iter().all(|(p, partial)| !partial
            && p.len() <= ENGINE_SINK_MAX_RECORD
            && p.len() % 11 == 0));
        assert_eq!(recs.len(), 3);
        let long = vec![b'x'; ENGINE_SINK_MAX_RECORD * 2 + 3];
        let mut data = long.clone();
        data.push(b'\n');
        let pieces: Vec<_> = split(&data).collect();
        assert_eq!(pieces.len(), 3);
        assert!(pieces[0].1 && pieces[1].1 && !pieces[2].1);
        assert_eq!(pieces[2].0.len(), 4);
        assert_eq!(pieces.iter().map(|p| p.0.len()).sum::<usize>(), data.len());
        assert_eq!(split(b"").count(), 0);
    }

    #[test]
    fn chunks_are_cut_at_line_ends() {
        let now = Instant::now();
        assert_eq!(cut(b"a\nb\n", false, None, now), Cut::All);
        assert_eq!(cut(b"a\nb", false, None, now), Cut::Upto(2));
        assert_eq!(cut(b"a\nb", true, None, now), Cut::All);
        assert_eq!(cut(b"prompt> ", false, None, now), Cut::Hold);
        assert_eq!(cut(b"prompt> ", false, Some(now), now), Cut::Hold);
        assert_eq!(
            cut(b"prompt> ", false, Some(now), now + PARTIAL_HOLD),
            Cut::All
        );
        let long = vec![b'x'; ENGINE_SINK_MAX_RECORD];
        assert_eq!(cut(&long, false, None, now), Cut::All);
    }

    #[test]
    fn release_counts_down() {
        let c = Chunk::new("a".into(), Stream::Stdout, 1, 0, b"x\xff\n".to_vec(), 2);
        assert!(!c.release());
        assert!(c.release());
        let r: Vec<_> = c.records().collect();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].data, b"x\xff\n");
    }
}
