//! A chunk of bytes read at once from one stream, and its split into records: one record per
//! line (line feed included), lines longer than [`ENGINE_SINK_MAX_RECORD`] cut into pieces,
//! and a trailing piece without a line feed. A record not ending in a line feed is partial.

use sink_abi::ffi::ENGINE_SINK_MAX_RECORD;
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
    if let Some(pos) = data.iter().rposition(|&b| b == b'\n') {
        return Cut::Upto(pos + 1);
    }
    if data.len() >= ENGINE_SINK_MAX_RECORD || held_since.is_some_and(|t| now >= t + PARTIAL_HOLD) {
        return Cut::All;
    }
    Cut::Hold
}

/// Bytes read together from one stream of one container, shared by every sink of it.
#[derive(Debug)]
pub struct Chunk {
    /// Container id.
    pub container_id: String,
    /// Source stream.
    pub stream: Stream,
    /// Read time, in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The bytes.
    pub data: Vec<u8>,
    /// Holders that still have to release the chunk before its bytes may be consumed from the
    /// pipe (blocking sinks plus the router itself).
    pending: AtomicUsize,
}

impl Chunk {
    /// A chunk with `holders` releases outstanding.
    pub fn new(
        container_id: String,
        stream: Stream,
        timestamp_ns: u64,
        data: Vec<u8>,
        holders: usize,
    ) -> Self {
        Self {
            container_id,
            stream,
            timestamp_ns,
            data,
            pending: AtomicUsize::new(holders),
        }
    }

    /// Releases one hold; returns true for the last one.
    pub fn release(&self) -> bool {
        self.pending.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// The records of this chunk, in order.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        split(&self.data).map(move |(data, partial)| Record {
            container_id: &self.container_id,
            stream: self.stream,
            timestamp_ns: self.timestamp_ns,
            partial,
            data,
        })
    }
}

/// Splits bytes into `(piece, partial)` records.
pub fn split(data: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let window = &rest[..rest.len().min(ENGINE_SINK_MAX_RECORD)];
        let end = window
            .iter()
            .position(|&b| b == b'\n')
            .map_or(window.len(), |i| i + 1);
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
        assert_eq!(
            got,
            vec![
                (&b"a\n"[..], false),
                (b"bc\n", false),
                (b"\n", false),
                (b"d", true)
            ]
        );
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
        let c = Chunk::new("a".into(), Stream::Stdout, 1, b"x\xff\n".to_vec(), 2);
        assert!(!c.release());
        assert!(c.release());
        let r: Vec<_> = c.records().collect();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].data, b"x\xff\n");
    }
}
