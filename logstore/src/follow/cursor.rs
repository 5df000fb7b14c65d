//! Reading the current log file and its index incrementally: a [`LogCursor`] holds `<id>.log`
//! and `<id>.log.idx` open, returns the runs of index entries added since the last call, and
//! notices when the path has been rotated away (renamed to `.1` or removed), so that its reader
//! drains it and moves on ([`super::Follower`]). One call reads at most [`MAX_POLL_BYTES`] of
//! log, so a reader's memory stays bounded however large the log is.

use super::held::Held;
use crate::index::{self, Entry, ENTRY_LEN, MAGIC};
use crate::reader::Run;
use crate::stream::Stream;
use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Most log bytes one poll of the current file reads (at least one whole run, however long),
/// in bytes.
pub const MAX_POLL_BYTES: u64 = 4 << 20;

/// An open log file and its index, and how far they have been read.
#[derive(Debug)]
pub struct LogCursor {
    path: PathBuf,
    log: File,
    idx: Option<File>,
    ino: u64,
    /// Bytes of the index consumed (magic included once seen).
    idx_pos: u64,
    /// Bytes of the log consumed, for a log without an index.
    raw_pos: u64,
}

impl LogCursor {
    /// Opens the current log at `path`; `Ok(None)` when it does not exist (yet).
    ///
    /// # Errors
    /// Errors of opening other than "not found".
    pub fn open(path: &Path) -> io::Result<Option<Self>> {
        loop {
            let log = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let idx = match File::open(index::index_path(path)) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            let ino = log.metadata()?.ino();
            // A rotation between the two opens would pair a log with the wrong index.
            if inode(path) == Some(ino) {
                return Ok(Some(Self {
                    path: path.to_path_buf(),
                    log,
                    idx,
                    ino,
                    idx_pos: 0,
                    raw_pos: 0,
                }));
            }
        }
    }

    /// Inode of the open log file.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// What names this generation across rotations, also once the log is compressed (a new
    /// file; the index stays): the open index if there is one, else the log.
    ///
    /// # Errors
    /// Errors of `fstat`.
    pub fn into_generation(self) -> io::Result<Held> {
        match self.idx {
            Some(idx) => Held::new(idx, true),
            None => Held::new(self.log, false),
        }
    }

    /// Whether the path no longer names the open file (rotated or removed).
    pub fn rotated(&self) -> bool {
        inode(&self.path) != Some(self.ino)
    }

    /// Appends runs written since the last call, at most [`MAX_POLL_BYTES`] of them (but at
    /// least one run); returns whether more were already there (call again before waiting).
    ///
    /// # Errors
    /// Read errors.
    pub fn poll(&mut self, out: &mut Vec<Run>) -> io::Result<bool> {
        if self.idx.is_none() {
            // The index may appear after the log on the first write.
            if let Ok(f) = File::open(index::index_path(&self.path)) {
                if self.raw_pos == 0 && !self.rotated() {
                    self.idx = Some(f);
                }
            }
        }
        match &self.idx {
            Some(idx) => {
                let (pos, more) = read_indexed(idx, &self.log, self.idx_pos, out)?;
                self.idx_pos = pos;
                Ok(more)
            }
            None => self.poll_raw(out),
        }
    }

    fn poll_raw(&mut self, out: &mut Vec<Run>) -> io::Result<bool> {
        let meta = self.log.metadata()?;
        let size = meta.len();
        if size <= self.raw_pos {
            return Ok(false);
        }
        let len = (size - self.raw_pos).min(MAX_POLL_BYTES);
        let mut data = vec![0u8; len as usize];
        self.log.read_exact_at(&mut data, self.raw_pos)?;
        self.raw_pos += len;
        out.push(Run {
            stream: Stream::Stdout,
            timestamp_ns: index::mtime_ns(&meta),
            data,
        });
        Ok(self.raw_pos < size)
    }
}

/// Index entries read per `pread` of the index.
const ENTRIES_PER_READ: usize = 1024;

/// Reads complete index entries after byte `pos` of `idx` and their runs from `log`, up to
/// [`MAX_POLL_BYTES`] of runs; returns the new position and whether complete entries remain.
fn read_indexed(idx: &File, log: &File, pos: u64, out: &mut Vec<Run>) -> io::Result<(u64, bool)> {
    let size = idx.metadata()?.len();
    let mut pos = pos;
    if pos == 0 {
        if size < MAGIC.len() as u64 {
            return Ok((0, false));
        }
        pos = MAGIC.len() as u64;
    }
    let whole = (size.saturating_sub(pos) / ENTRY_LEN as u64) * ENTRY_LEN as u64;
    let end = pos + whole;
    let mut read = 0u64;
    let mut buf = vec![0u8; ENTRIES_PER_READ * ENTRY_LEN];
    while pos < end && read < MAX_POLL_BYTES {
        let n = (end - pos).min(buf.len() as u64) as usize;
        idx.read_exact_at(&mut buf[..n], pos)?;
        for chunk in buf[..n].chunks_exact(ENTRY_LEN) {
            if read >= MAX_POLL_BYTES {
                break;
            }
            let e = Entry::decode(chunk);
            let mut data = vec![0u8; e.len as usize];
            log.read_exact_at(&mut data, e.offset)?;
            read += u64::from(e.len);
            pos += ENTRY_LEN as u64;
            out.push(Run {
                stream: e.stream,
                timestamp_ns: e.timestamp_ns,
                data,
            });
        }
    }
    Ok((pos, pos < end))
}

/// Inode of the file at `path`, if any.
pub fn inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::LogWriter;

    #[test]
    fn follows_appends_and_notices_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let (mut w, _) = LogWriter::open(&p).unwrap();
        w.append(Stream::Stdout, 1, b"a\n").unwrap();
        w.store().unwrap();
        let mut c = LogCursor::open(&p).unwrap().unwrap();
        let mut runs = Vec::new();
        assert!(!c.poll(&mut runs).unwrap());
        assert_eq!(runs.len(), 1);
        w.append(Stream::Stdout, 2, b"b\n").unwrap();
        w.store().unwrap();
        runs.clear();
        c.poll(&mut runs).unwrap();
        assert_eq!(runs[0].data, b"b\n");
        assert!(!c.rotated());
        drop(w);
        crate::rotate::shift(&p, 3).unwrap();
        assert!(c.rotated());
        runs.clear();
        c.poll(&mut runs).unwrap();
        assert!(runs.is_empty());
    }

    #[test]
    fn large_logs_are_read_in_bounded_polls() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.log");
        let (mut w, _) = LogWriter::open(&p).unwrap();
        let run = vec![b'x'; 1 << 20];
        let total = 3 * MAX_POLL_BYTES as usize / run.len() + 1;
        for ts in 0..total {
            w.append(Stream::Stdout, ts as u64, &run).unwrap();
        }
        w.store().unwrap();
        let mut c = LogCursor::open(&p).unwrap().unwrap();
        let (mut polls, mut seen) = (0, Vec::new());
        loop {
            let mut runs = Vec::new();
            let more = c.poll(&mut runs).unwrap();
            let bytes: usize = runs.iter().map(|r| r.data.len()).sum();
            assert!(
                bytes as u64 <= MAX_POLL_BYTES,
                "one poll read {bytes} bytes"
            );
            seen.extend(runs.iter().map(|r| r.timestamp_ns));
            polls += 1;
            if !more {
                break;
            }
        }
        assert_eq!(
            seen,
            (0..total as u64).collect::<Vec<_>>(),
            "every run once, in order"
        );
        assert!(polls >= 4, "{polls} polls");
    }
}
