//! Appending to a log file and its index, and repairing both when opened after a crash.
//!
//! Order of a store: the buffered bytes are written to the log, then the index entries that
//! describe them. Opening truncates the log to the end of its last complete index entry, so
//! bytes whose write was interrupted (and that the router will deliver again, since it had not
//! consumed them from the pipe) never show up twice or torn.

use crate::index::{self, Entry, ENTRY_LEN, MAGIC};
use crate::stream::Stream;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Buffered bytes above which `append` stores without waiting for `store`.
pub const BUFFER_BYTES: usize = 256 * 1024;
/// Runs at least this long are written straight from the caller's memory by `append_span`.
pub const DIRECT_BYTES: usize = 32 * 1024;

/// What opening had to fix.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repair {
    /// Bytes cut from the end of the log (an interrupted write).
    pub log_bytes_dropped: u64,
    /// The index was missing, foreign or behind: it was rebuilt to cover the log as one run.
    pub index_rebuilt: bool,
}

impl Repair {
    /// Whether anything was changed.
    pub fn changed(&self) -> bool {
        self.log_bytes_dropped > 0 || self.index_rebuilt
    }
}

/// A file written in order, keeping what could not be written yet.
#[derive(Debug)]
struct Appender {
    file: File,
    buf: Vec<u8>,
}

/// Writes as much of `data` as possible; returns how much was written and the error that
/// stopped the rest.
fn write_some(file: &mut File, data: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < data.len() {
        match file.write(&data[done..]) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

impl Appender {
    /// Writes the buffer; on error the written prefix is dropped and the rest kept.
    fn store(&mut self) -> io::Result<()> {
        let (done, result) = write_some(&mut self.file, &self.buf);
        self.buf.drain(..done);
        result
    }
}

/// Writes one log file and its index.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    log: Appender,
    idx: Appender,
    /// Bytes of the log already written.
    written: u64,
    /// Entries whose bytes are (partly) still in `log.buf`.
    pending: Vec<Entry>,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

impl LogWriter {
    /// Opens (creating it and its directory if needed) `path` and its index, repairing them.
    ///
    /// # Errors
    /// Errors of creating, reading or truncating the files.
    pub fn open(path: &Path) -> io::Result<(Self, Repair)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log = open_append(path)?;
        let mut idx = open_append(&index::index_path(path))?;
        let mut bytes = Vec::new();
        idx.read_to_end(&mut bytes)?;
        let log_len = log.metadata()?.len();
        let mut repair = Repair::default();
        let entries = index::decode_all(&bytes).unwrap_or_default();
        // Entries past the end of the log describe bytes that are gone: drop them.
        let keep = entries.iter().take_while(|e| e.end() <= log_len).count();
        let end = entries[..keep].last().map_or(0, Entry::end);
        let index_ok = index::decode_all(&bytes).is_some() && keep == entries.len();
        if index_ok && bytes.len() != MAGIC.len() + keep * ENTRY_LEN {
            idx.set_len((MAGIC.len() + keep * ENTRY_LEN) as u64)?;
        }
        let mut written = log_len;
        if index_ok && log_len > end {
            log.set_len(end)?;
            repair.log_bytes_dropped = log_len - end;
            written = end;
        } else if !index_ok {
            // Missing, foreign or behind: describe the whole log as stdout runs at its mtime.
            idx.set_len(0)?;
            let mut out = MAGIC.to_vec();
            let ts = index::mtime_ns(&log.metadata()?);
            let mut off = 0;
            while off < log_len {
                let len = (log_len - off).min(u64::from(u32::MAX)) as u32;
                out.extend_from_slice(
                    &Entry {
                        offset: off,
                        timestamp_ns: ts,
                        len,
                        stream: Stream::Stdout,
                    }
                    .encode(),
                );
                off += u64::from(len);
            }
            idx.write_all(&out)?;
            repair.index_rebuilt = log_len > 0 || !bytes.is_empty();
        }
        Ok((
            Self {
                path: path.to_path_buf(),
                log: Appender {
                    file: log,
                    buf: Vec::with_capacity(BUFFER_BYTES),
                },
                idx: Appender {
                    file: idx,
                    buf: Vec::new(),
                },
                written,
                pending: Vec::new(),
            },
            repair,
        ))
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logical size of the log, buffered bytes included.
    pub fn size(&self) -> u64 {
        self.written + self.log.buf.len() as u64
    }

    /// Appends the bytes of one record (buffered; stored at [`BUFFER_BYTES`] or [`Self::store`]).
    ///
    /// # Errors
    /// Errors of storing a full buffer; nothing is lost, the rest stays buffered.
    pub fn append(&mut self, stream: Stream, timestamp_ns: u64, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let offset = self.size();
        match self.pending.last_mut() {
            Some(e)
                if e.stream == stream
                    && e.timestamp_ns == timestamp_ns
                    && u64::from(e.len) + data.len() as u64 <= u64::from(u32::MAX) =>
            {
                e.len += data.len() as u32;
            }
            _ => self.pending.push(Entry {
                offset,
                timestamp_ns,
                len: data.len() as u32,
                stream,
            }),
        }
        self.log.buf.extend_from_slice(data);
        if self.log.buf.len() >= BUFFER_BYTES {
            self.store()?;
        }
        Ok(())
    }

    /// Appends a large run of one stream read at one time, writing it straight from `data`
    /// when nothing is buffered (no copy); small runs are buffered as by [`Self::append`].
    /// Always takes all of `data`: bytes a failed write left are buffered, and the error
    /// comes back from the next [`Self::store`].
    pub fn append_span(&mut self, stream: Stream, timestamp_ns: u64, data: &[u8]) {
        if !self.log.buf.is_empty() || data.len() < DIRECT_BYTES {
            if let Err(e) = self.append(stream, timestamp_ns, data) {
                // The bytes are buffered; the next store reports the error again.
                let _ = e;
            }
            return;
        }
        self.pending.push(Entry {
            offset: self.size(),
            timestamp_ns,
            len: data.len() as u32,
            stream,
        });
        // An error leaves the rest buffered; the next store reports it.
        let (done, _) = write_some(&mut self.log.file, data);
        self.written += done as u64;
        self.log.buf.extend_from_slice(&data[done..]);
    }

    /// Writes buffered bytes, then the index entries describing them.
    ///
    /// # Errors
    /// The first write error; a retry continues where this call stopped.
    pub fn store(&mut self) -> io::Result<()> {
        let before = self.log.buf.len();
        let result = self.log.store();
        self.written += (before - self.log.buf.len()) as u64;
        // Entries whose bytes are all written move to the index buffer.
        let done = self
            .pending
            .iter()
            .take_while(|e| e.end() <= self.written)
            .count();
        for e in self.pending.drain(..done) {
            self.idx.buf.extend_from_slice(&e.encode());
        }
        result?;
        self.idx.store()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(path: &Path) -> Vec<Entry> {
        index::decode_all(&std::fs::read(index::index_path(path)).unwrap()).unwrap()
    }

    #[test]
    fn runs_are_merged_per_stream_and_time_and_indexed_after_store() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("logs/a.log");
        let (mut w, r) = LogWriter::open(&p).unwrap();
        assert!(!r.changed());
        w.append(Stream::Stdout, 5, b"a\n").unwrap();
        w.append(Stream::Stdout, 5, b"b\n").unwrap();
        w.append(Stream::Stderr, 5, b"\xff").unwrap();
        w.append(Stream::Stdout, 6, b"c").unwrap();
        assert!(idx(&p).is_empty());
        w.store().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"a\nb\n\xffc");
        let e = idx(&p);
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].offset, e[0].len, e[0].stream), (0, 4, Stream::Stdout));
        assert_eq!((e[1].offset, e[1].len, e[1].stream), (4, 1, Stream::Stderr));
        assert_eq!((e[2].offset, e[2].timestamp_ns), (5, 6));
        drop(w);
        let (mut w, r) = LogWriter::open(&p).unwrap();
        assert!(!r.changed());
        assert_eq!(w.size(), 6);
        w.append(Stream::Stdout, 7, b"d").unwrap();
        w.store().unwrap();
        assert_eq!(idx(&p)[3].offset, 6);
    }

    #[test]
    fn large_spans_are_written_directly_and_indexed_on_store() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.log");
        let (mut w, _) = LogWriter::open(&p).unwrap();
        w.append(Stream::Stdout, 1, b"small\n").unwrap();
        let big = vec![b'y'; DIRECT_BYTES];
        w.append_span(Stream::Stderr, 2, &big);
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            0,
            "buffered bytes go first"
        );
        w.store().unwrap();
        w.append_span(Stream::Stderr, 3, &big);
        assert_eq!(
            std::fs::metadata(&p).unwrap().len() as usize,
            6 + 2 * big.len()
        );
        assert_eq!(idx(&p).len(), 2);
        w.store().unwrap();
        let e = idx(&p);
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[2].offset, e[2].len, e[2].timestamp_ns),
            ((6 + big.len()) as u64, big.len() as u32, 3)
        );
    }

    #[test]
    fn an_interrupted_write_is_cut_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let (mut w, _) = LogWriter::open(&p).unwrap();
        w.append(Stream::Stdout, 1, b"kept\n").unwrap();
        w.store().unwrap();
        drop(w);
        // A crash after the data write, before the index write.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"torn li")
            .unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(index::index_path(&p))
            .unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        let (w, r) = LogWriter::open(&p).unwrap();
        assert_eq!(r.log_bytes_dropped, 7);
        assert_eq!(std::fs::read(&p).unwrap(), b"kept\n");
        assert_eq!(idx(&p).len(), 1);
        assert_eq!(w.size(), 5);
    }

    #[test]
    fn a_log_without_index_gets_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.log");
        std::fs::write(&p, b"legacy\n").unwrap();
        let (_, r) = LogWriter::open(&p).unwrap();
        assert!(r.index_rebuilt);
        let e = idx(&p);
        assert_eq!((e.len(), e[0].len, e[0].stream), (1, 7, Stream::Stdout));
        // An index pointing past a log that shrank is rebuilt as well.
        std::fs::write(&p, b"x").unwrap();
        let (_, r) = LogWriter::open(&p).unwrap();
        assert!(r.index_rebuilt);
        assert_eq!(idx(&p)[0].len, 1);
    }

    #[test]
    fn write_errors_keep_the_rest_for_a_retry() {
        let mut w = LogWriter {
            path: PathBuf::from("/dev/full"),
            log: Appender {
                file: OpenOptions::new().write(true).open("/dev/full").unwrap(),
                buf: Vec::new(),
            },
            idx: Appender {
                file: OpenOptions::new().write(true).open("/dev/null").unwrap(),
                buf: Vec::new(),
            },
            written: 0,
            pending: Vec::new(),
        };
        w.append(Stream::Stdout, 1, b"abc").unwrap();
        assert!(w.store().is_err());
        assert_eq!(w.size(), 3);
        assert_eq!(w.pending.len(), 1);
    }
}
