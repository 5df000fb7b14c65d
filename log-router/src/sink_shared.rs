//! State shared between a sink thread and the router core: what is queued for the thread,
//! whether the sink is failing or stalled, when its drain began, whether the core abandoned it, and its
//! drop counters.
//!
//! Accounting rule: every record handed to a sink is counted exactly once — queued when
//! offered, then settled by the thread (stored, or dropped) or, if the core abandons the
//! thread first, dropped by the core with everything still queued. The counters live behind
//! one mutex so that a settle and an abandonment never both count the same records; the lock
//! is held for a few additions only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Records and bytes, counted together.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Records.
    pub records: u64,
    /// Bytes in those records.
    pub bytes: u64,
}

impl Count {
    /// `records` records holding `bytes` bytes.
    pub fn new(records: u64, bytes: u64) -> Self {
        Self { records, bytes }
    }

    fn add(&mut self, c: Count) {
        self.records += c.records;
        self.bytes += c.bytes;
    }

    fn sub(&mut self, c: Count) {
        self.records = self.records.saturating_sub(c.records);
        self.bytes = self.bytes.saturating_sub(c.bytes);
    }
}

/// The counters behind the lock.
#[derive(Debug, Default)]
struct Tally {
    /// Offered to the thread and not yet settled (the chunk it works on included).
    queued: Count,
    /// Dropped: queue full, sink failed for good, given up, or abandoned.
    dropped: Count,
    /// When the container's writers were seen gone: the sink's drain began.
    drain_since: Option<Instant>,
    /// The core gave up waiting for the thread: it must not call the sink again.
    abandoned: bool,
}

/// State shared between a sink thread and the router core.
#[derive(Debug, Default)]
pub struct SinkShared {
    /// The sink failed (`ENGINE_SINK_ERROR` or fatal) and has not recovered: its chunks are not
    /// held.
    pub failing: AtomicBool,
    /// The sink's last call failed (error or retry) and none has succeeded since: a blocking
    /// sink in this state holds the container's end while its log drains.
    pub stalled: AtomicBool,
    tally: Mutex<Tally>,
}

impl SinkShared {
    fn tally(&self) -> MutexGuard<'_, Tally> {
        // The counters stay consistent even if a holder panicked (plain additions).
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `c` for the thread unless the sink was abandoned or, when `bound` is given (a
    /// chunk not held), the queue already holds bytes and `c` would take it past `bound`
    /// bytes; a chunk refused is counted as dropped. Returns whether it was queued.
    pub fn offer(&self, c: Count, bound: Option<usize>) -> bool {
        let mut t = self.tally();
        let full = bound.is_some_and(|b| {
            t.queued.bytes > 0 && t.queued.bytes.saturating_add(c.bytes) > b as u64
        });
        if t.abandoned || full {
            t.dropped.add(c);
            return false;
        }
        t.queued.add(c);
        true
    }

    /// Takes back an offer whose job could not be sent (the thread is gone), uncounted.
    pub fn withdraw(&self, c: Count) {
        self.tally().queued.sub(c);
    }

    /// The thread is done with `c` (queued before), of which `dropped` were not stored.
    /// Nothing is counted once the sink was abandoned: the core counted it then.
    pub fn settle(&self, c: Count, dropped: Count) {
        let mut t = self.tally();
        if !t.abandoned {
            t.queued.sub(c);
            t.dropped.add(dropped);
        }
    }

    /// The core gives up on the thread: everything still queued is dropped, and the thread
    /// calls the sink no more.
    pub fn abandon(&self) {
        self.failing.store(true, Ordering::Release);
        let mut t = self.tally();
        if !t.abandoned {
            t.abandoned = true;
            let q = std::mem::take(&mut t.queued);
            t.dropped.add(q);
        }
    }

    /// Whether the core abandoned the thread.
    pub fn abandoned(&self) -> bool {
        self.tally().abandoned
    }

    /// Bytes queued for the thread, not yet settled.
    pub fn queued_bytes(&self) -> u64 {
        self.tally().queued.bytes
    }

    /// Records and bytes dropped so far.
    pub fn dropped(&self) -> Count {
        self.tally().dropped
    }

    /// Notes that the drain began at `now` (the first call counts).
    pub fn start_drain(&self, now: Instant) {
        self.tally().drain_since.get_or_insert(now);
    }

    /// When the drain began, if it did.
    pub fn drain_since(&self) -> Option<Instant> {
        self.tally().drain_since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_is_counted_once() {
        let s = SinkShared::default();
        assert!(s.offer(Count::new(2, 10), Some(10)));
        assert!(!s.offer(Count::new(1, 1), Some(10)), "past the bound");
        assert!(s.offer(Count::new(3, 30), None), "a held chunk always goes");
        assert_eq!(s.queued_bytes(), 40);
        assert_eq!(s.dropped(), Count::new(1, 1));
        s.settle(Count::new(2, 10), Count::new(1, 4));
        assert_eq!((s.queued_bytes(), s.dropped()), (30, Count::new(2, 5)));
        s.abandon();
        assert_eq!((s.queued_bytes(), s.dropped()), (0, Count::new(5, 35)));
        // A late settle of the abandoned chunk, or an abandonment again, counts nothing more.
        s.settle(Count::new(3, 30), Count::new(3, 30));
        s.abandon();
        assert!(
            !s.offer(Count::new(1, 2), None),
            "abandoned: dropped at once"
        );
        assert_eq!(s.dropped(), Count::new(6, 37));
        assert!(s.abandoned() && s.failing.load(Ordering::Acquire));
    }

    #[test]
    fn the_first_drain_start_counts() {
        let s = SinkShared::default();
        let t0 = Instant::now();
        assert_eq!(s.drain_since(), None);
        s.start_drain(t0);
        s.start_drain(t0 + std::time::Duration::from_secs(1));
        assert_eq!(s.drain_since(), Some(t0));
    }
}
