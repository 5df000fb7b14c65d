//! [`Held`]: the generation a follower resumes after, named by an inode and held open so that
//! the inode keeps naming it.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;

/// One generation of a log (its index, or its log when it has none), open.
///
/// Open, because the inode of a deleted file may be given to a new one (the next current file
/// or index), which would then be mistaken for the generation.
#[derive(Debug)]
pub struct Held {
    file: File,
    ino: u64,
    /// `file` is the generation's index: renamed with it, never replaced (compression writes a
    /// new log but keeps the index), so a link count of 0 means the generation was deleted.
    index: bool,
}

impl Held {
    /// Holds `file`, the generation's index when `index`, else its log.
    ///
    /// # Errors
    /// Errors of `fstat`.
    pub fn new(file: File, index: bool) -> io::Result<Self> {
        let ino = file.metadata()?.ino();
        Ok(Self { file, ino, index })
    }

    /// The inode that names the generation.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// Whether the inode is the generation's index (else its log).
    pub fn is_index(&self) -> bool {
        self.index
    }

    /// Whether the generation is known to be deleted (past `max-file`, with every older one):
    /// its index has no name left. A log without index gives no answer (`false`): compressing
    /// it unlinks it too.
    pub fn deleted(&self) -> bool {
        self.index && self.file.metadata().is_ok_and(|m| m.nlink() == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_index_is_told_from_a_log_that_may_be_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let idx = dir.path().join("a.log.idx");
        let log = dir.path().join("a.log");
        std::fs::write(&idx, b"i").unwrap();
        std::fs::write(&log, b"l").unwrap();
        let held_idx = Held::new(File::open(&idx).unwrap(), true).unwrap();
        let held_log = Held::new(File::open(&log).unwrap(), false).unwrap();
        assert_eq!(
            Some(held_idx.ino()),
            std::fs::metadata(&idx).ok().map(|m| m.ino())
        );
        std::fs::rename(&idx, dir.path().join("a.log.1.idx")).unwrap();
        assert!(!held_idx.deleted(), "renamed by a shift");
        std::fs::remove_file(dir.path().join("a.log.1.idx")).unwrap();
        std::fs::remove_file(&log).unwrap();
        assert!(held_idx.deleted());
        assert!(!held_log.deleted());
    }
}
