//! Reading a log file and its index incrementally, and across rotations: a [`LogCursor`] holds
//! the current `<id>.log` and `<id>.log.idx` open, returns the runs of index entries added
//! since the last call, and notices when the path has been rotated away (renamed to `.1` or
//! removed), so the caller drains it and opens the new current file.

use logfile::index::{self, Entry, ENTRY_LEN, MAGIC};
use logfile::{Run, STDOUT};
use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

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

    /// Whether the path no longer names the open file (rotated or removed).
    pub fn rotated(&self) -> bool {
        inode(&self.path) != Some(self.ino)
    }

    /// Appends the runs written since the last call.
    ///
    /// # Errors
    /// Read errors.
    pub fn poll(&mut self, out: &mut Vec<Run>) -> io::Result<()> {
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
                self.idx_pos = read_indexed(idx, &self.log, self.idx_pos, out)?;
                Ok(())
            }
            None => self.poll_raw(out),
        }
    }

    fn poll_raw(&mut self, out: &mut Vec<Run>) -> io::Result<()> {
        let meta = self.log.metadata()?;
        let size = meta.len();
        if size <= self.raw_pos {
            return Ok(());
        }
        let mut data = vec![0u8; (size - self.raw_pos) as usize];
        self.log.read_exact_at(&mut data, self.raw_pos)?;
        self.raw_pos = size;
        out.push(Run {
            stream: STDOUT,
            timestamp_ns: index::mtime_ns(&meta),
            data,
        });
        Ok(())
    }
}

/// Reads the complete index entries after byte `pos` of `idx` and their runs from `log`;
/// returns the new position.
fn read_indexed(idx: &File, log: &File, pos: u64, out: &mut Vec<Run>) -> io::Result<u64> {
    let size = idx.metadata()?.len();
    let mut pos = pos;
    if pos == 0 {
        if size < MAGIC.len() as u64 {
            return Ok(0);
        }
        pos = MAGIC.len() as u64;
    }
    let whole = (size.saturating_sub(pos) / ENTRY_LEN as u64) * ENTRY_LEN as u64;
    let mut buf = vec![0u8; whole as usize];
    idx.read_exact_at(&mut buf, pos)?;
    for chunk in buf.chunks_exact(ENTRY_LEN) {
        let e = Entry::decode(chunk);
        let mut data = vec![0u8; e.len as usize];
        log.read_exact_at(&mut data, e.offset)?;
        out.push(Run {
            stream: e.stream,
            timestamp_ns: e.timestamp_ns,
            data,
        });
    }
    Ok(pos + whole)
}

/// Inode of the file at `path`, if any.
pub fn inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;
    use logfile::LogWriter;

    #[test]
    fn follows_appends_and_notices_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let (mut w, _) = LogWriter::open(&p).unwrap();
        w.append(STDOUT, 1, b"a\n").unwrap();
        w.store().unwrap();
        let mut c = LogCursor::open(&p).unwrap().unwrap();
        let mut runs = Vec::new();
        c.poll(&mut runs).unwrap();
        assert_eq!(runs.len(), 1);
        w.append(STDOUT, 2, b"b\n").unwrap();
        w.store().unwrap();
        runs.clear();
        c.poll(&mut runs).unwrap();
        assert_eq!(runs[0].data, b"b\n");
        assert!(!c.rotated());
        drop(w);
        logfile::rotate::shift(&p, 3).unwrap();
        assert!(c.rotated());
        runs.clear();
        c.poll(&mut runs).unwrap();
        assert!(runs.is_empty());
    }
}
