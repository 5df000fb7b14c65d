//! State shared between a sink thread and the router core: bytes queued, whether the sink is
//! failing, and its drop counters. Plain atomics: the core reads and updates them without a
//! system call.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Counters shared between a sink thread and the router core.
#[derive(Debug, Default)]
pub struct SinkShared {
    /// Bytes queued for the thread, not yet handled.
    pub queued_bytes: AtomicUsize,
    /// The sink failed (`ENGINE_SINK_ERROR` or fatal) and has not recovered: its chunks are not
    /// held.
    pub failing: AtomicBool,
    /// Records dropped (queue full, sink dead, or given up).
    pub dropped_records: AtomicU64,
    /// Bytes in those records.
    pub dropped_bytes: AtomicU64,
}

impl SinkShared {
    /// Counts dropped records.
    pub fn drop_records(&self, records: u64, bytes: u64) {
        self.dropped_records.fetch_add(records, Ordering::Relaxed);
        self.dropped_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}
