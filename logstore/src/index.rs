//! The index file `<log>.idx`: an 8-byte magic, then fixed 24-byte little-endian entries, one
//! per run of bytes of one stream read at one time:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | `offset`: u64, where the run starts in the log file |
//! | 8..16 | `timestamp_ns`: u64, read time, ns since the Unix epoch |
//! | 16..20 | `len`: u32, bytes in the run |
//! | 20 | `stream`: 1 stdout, 2 stderr |
//! | 21..24 | zero |
//!
//! Entries are appended only after the bytes they describe were written, so an entry always
//! points at stored bytes; bytes past the last entry are the remains of an interrupted write.

use crate::stream::Stream;
use std::path::{Path, PathBuf};

/// First bytes of every index file.
pub const MAGIC: &[u8; 8] = b"ENGIDX01";
/// Size of one entry, in bytes.
pub const ENTRY_LEN: usize = 24;

/// One run of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Start in the log file, in bytes.
    pub offset: u64,
    /// Read time, in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Length, in bytes.
    pub len: u32,
    /// The stream (byte 20: [`Stream::byte`]).
    pub stream: Stream,
}

impl Entry {
    /// One past the last byte of the run.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }

    /// The 24-byte encoding.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        b[16..20].copy_from_slice(&self.len.to_le_bytes());
        b[20] = self.stream.byte();
        b
    }

    /// Decodes one entry (`b` is at least [`ENTRY_LEN`] bytes).
    pub fn decode(b: &[u8]) -> Self {
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let mut l = [0u8; 4];
        l.copy_from_slice(&b[16..20]);
        Self {
            offset: u64_at(0),
            timestamp_ns: u64_at(8),
            len: u32::from_le_bytes(l),
            stream: Stream::from_byte(b[20]),
        }
    }
}

/// Path of the index of `log`: the same name with `.idx` appended.
pub fn index_path(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_os_string();
    s.push(".idx");
    PathBuf::from(s)
}

/// Modification time of a file, in nanoseconds since the Unix epoch (0 when unknown): the
/// timestamp given to bytes of a log that has no index.
pub fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Decodes a whole index file's bytes: `None` when the magic is wrong; a torn last entry is
/// ignored.
pub fn decode_all(bytes: &[u8]) -> Option<Vec<Entry>> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    Some(
        bytes[MAGIC.len()..]
            .chunks_exact(ENTRY_LEN)
            .map(Entry::decode)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_torn_tail_is_ignored() {
        let e = Entry {
            offset: 1 << 40,
            timestamp_ns: 1_700_000_000_123_456_789,
            len: 70_000,
            stream: Stream::Stderr,
        };
        assert_eq!(Entry::decode(&e.encode()), e);
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&e.encode());
        file.extend_from_slice(&e.encode()[..5]);
        assert_eq!(decode_all(&file).unwrap(), vec![e]);
        assert!(decode_all(b"garbage!").is_none());
        assert_eq!(
            index_path(Path::new("/l/a.log")),
            PathBuf::from("/l/a.log.idx")
        );
    }
}
