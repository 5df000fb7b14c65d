//! Spare chunk buffers. A chunk is read into a fresh heap buffer and freed by whichever thread
//! drops it last; large buffers come back here instead, so that the next chunk is read into
//! memory already faulted in (a fresh 256 KiB buffer costs 64 page faults and zeroed pages).

use std::sync::{Arc, Mutex};

/// Largest chunk taken from a pipe at once, in bytes (the size of a reused buffer).
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Chunks from this size on get a full [`CHUNK_BYTES`] buffer, which is kept for reuse.
pub const REUSE_FROM: usize = 64 * 1024;

/// Spare buffers kept at most (one being filled while one is in flight).
const SPARES: usize = 2;

/// A shared stock of spare buffers, each of [`CHUNK_BYTES`] capacity.
#[derive(Debug, Clone, Default)]
pub struct Buffers(Arc<Mutex<Vec<Vec<u8>>>>);

impl Buffers {
    /// An empty buffer with room for `len` bytes: a spare one for a large chunk when there is
    /// one, else a new one.
    pub fn take(&self, len: usize) -> Vec<u8> {
        if !(REUSE_FROM..=CHUNK_BYTES).contains(&len) {
            return Vec::with_capacity(len);
        }
        let spare = self.0.lock().ok().and_then(|mut s| s.pop());
        spare.unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES))
    }

    /// Keeps `buf` for a later [`Buffers::take`] if it is a full-size one and the stock is not
    /// full; frees it otherwise.
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() != CHUNK_BYTES {
            return;
        }
        buf.clear();
        if let Ok(mut s) = self.0.lock() {
            if s.len() < SPARES {
                s.push(buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_reused_small_ones_are_not() {
        let b = Buffers::default();
        let mut big = b.take(REUSE_FROM);
        assert_eq!(big.capacity(), CHUNK_BYTES);
        big.extend_from_slice(b"old");
        let ptr = big.as_ptr();
        b.give(big);
        let again = b.take(CHUNK_BYTES);
        assert_eq!((again.as_ptr(), again.len()), (ptr, 0));
        let small = b.take(100);
        assert!(small.capacity() < REUSE_FROM);
        b.give(small);
        assert!(b.0.lock().unwrap().is_empty());
        for _ in 0..5 {
            b.give(Vec::with_capacity(CHUNK_BYTES));
        }
        assert_eq!(b.0.lock().unwrap().len(), SPARES);
    }
}
