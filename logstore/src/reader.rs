//! Reading logs back: runs (bytes of one stream read at one time) from a log and its index,
//! the rotated files of a log in order, and joining runs into lines per stream.

use crate::index::{self, Entry};
use crate::rotate;
use crate::stream::Stream;
use std::fs::File;
use std::io;
use std::path::Path;

/// Bytes of one stream read at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The stream the bytes came from.
    pub stream: Stream,
    /// Read time, in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Reads every indexed run of one log file (plain or `.gz`), in order. A log without a usable
/// index reads as one stdout run stamped with the file's modification time. Bytes after the
/// last index entry (a write in progress) are left out.
///
/// # Errors
/// Errors of reading the log (a missing index is not an error).
pub fn read_runs(log: &Path) -> io::Result<Vec<Run>> {
    let data = File::open(log)?;
    let index = File::open(rotate::index_of(log)).ok();
    let gz = log.extension().is_some_and(|e| e == "gz");
    read_runs_from(&data, gz, index.as_ref())
}

/// [`read_runs`] of open files: the log `data` (gzip-compressed when `gz`) and its `index`, if
/// any; both are read from their file offset on (opened just before: from their start).
///
/// # Errors
/// Errors of reading the log (an unreadable index reads as none).
pub fn read_runs_from(data: &File, gz: bool, index: Option<&File>) -> io::Result<Vec<Run>> {
    let bytes = rotate::read_all(data, gz)?;
    let entries = index
        .and_then(|f| read_index(f).ok())
        .and_then(|b| index::decode_all(&b))
        .filter(|e| e.last().is_none_or(|l| l.end() <= bytes.len() as u64));
    let entries = match entries {
        Some(e) if !e.is_empty() || bytes.is_empty() => e,
        _ => {
            let ts = index::mtime_ns(&data.metadata()?);
            return Ok(if bytes.is_empty() {
                Vec::new()
            } else {
                vec![Run {
                    stream: Stream::Stdout,
                    timestamp_ns: ts,
                    data: bytes,
                }]
            });
        }
    };
    Ok(entries
        .iter()
        .map(|e: &Entry| Run {
            stream: e.stream,
            timestamp_ns: e.timestamp_ns,
            data: bytes[e.offset as usize..e.end() as usize].to_vec(),
        })
        .collect())
}

/// The rest of an open index file.
fn read_index(mut f: &File) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io::Read::read_to_end(&mut f, &mut buf)?;
    Ok(buf)
}

/// One line of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The stream the bytes came from.
    pub stream: Stream,
    /// Read time of the line's first byte, in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The bytes, line feed included when the line has one.
    pub data: Vec<u8>,
}

/// Joins runs into lines, per stream (a line may span runs, with the other stream's runs in
/// between).
#[derive(Debug, Default)]
pub struct LineJoiner {
    pending: [Option<Line>; 2],
}

impl LineJoiner {
    /// A joiner with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one run; returns the lines it completes.
    pub fn push(&mut self, run: &Run) -> Vec<Line> {
        let slot = &mut self.pending[usize::from(run.stream == Stream::Stderr)];
        let mut out = Vec::new();
        for piece in run.data.split_inclusive(|&b| b == b'\n') {
            let line = slot.get_or_insert_with(|| Line {
                stream: run.stream,
                timestamp_ns: run.timestamp_ns,
                data: Vec::new(),
            });
            line.data.extend_from_slice(piece);
            if piece.last() == Some(&b'\n') {
                out.extend(slot.take());
            }
        }
        out
    }

    /// The unfinished lines (no final line feed), stdout first.
    pub fn finish(&mut self) -> Vec<Line> {
        self.pending.iter_mut().filter_map(Option::take).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::LogWriter;

    #[test]
    fn runs_round_trip_and_lines_join_across_streams() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let (mut w, _) = LogWriter::open(&p).unwrap();
        w.append(Stream::Stdout, 1, b"hel").unwrap();
        w.append(Stream::Stderr, 2, b"oops\n").unwrap();
        w.append(Stream::Stdout, 3, b"lo\nlast").unwrap();
        w.store().unwrap();
        let runs = read_runs(&p).unwrap();
        assert_eq!(runs.len(), 3);
        let mut j = LineJoiner::new();
        let mut lines: Vec<Line> = runs.iter().flat_map(|r| j.push(r)).collect();
        lines.extend(j.finish());
        let got: Vec<(Stream, u64, &[u8])> = lines
            .iter()
            .map(|l| (l.stream, l.timestamp_ns, &l.data[..]))
            .collect();
        assert_eq!(
            got,
            vec![
                (Stream::Stderr, 2, &b"oops\n"[..]),
                (Stream::Stdout, 1, b"hello\n"),
                (Stream::Stdout, 3, b"last")
            ]
        );
    }

    #[test]
    fn unindexed_logs_read_as_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.log");
        std::fs::write(&p, b"raw\n").unwrap();
        assert_eq!(read_runs(&p).unwrap()[0].data, b"raw\n");
    }
}
