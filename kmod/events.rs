// SPDX-License-Identifier: GPL-2.0

//! The event records of one open file: a fixed-size ring under a mutex, a condition variable
//! that wakes blocked readers, and the file's id.
//!
//! The scan pushes records while holding the monitor's state lock (lock order: state, then
//! ring); a full ring drops its oldest record and counts it, so a file that registered
//! containers and stopped reading never makes the scan wait or allocate. The count of lost
//! records reaches the reader as one [`EVENT_LOST`] record before the next ones.
//!
//! A read takes records in two steps: it copies them out of the ring under the ring's lock
//! ([`EventQueue::peek`]), then to user space without it, and only then removes those that
//! reached user space ([`EventQueue::commit`]): a copy that faults (`EFAULT`) loses nothing.
//! Readers take turns (`reader` mutex) from peek to commit; the scan never waits for them.

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, CondVar, Mutex, MutexGuard,
    },
};

use crate::abi::{MonitorEvent, CONTAINER_ID_LEN, EVENT_LOST};

/// Records a file keeps before it drops the oldest.
pub(crate) const CAPACITY: usize = 256;

/// A zeroed record (fills the ring and read batches).
pub(crate) const EMPTY: MonitorEvent = MonitorEvent {
    kind: 0,
    pid: 0,
    rss_bytes: 0,
    limit_bytes: 0,
    container_id: [0; CONTAINER_ID_LEN],
};

/// The next file id (ids are never reused while the module is loaded).
static NEXT_ID: Atomic<u64> = Atomic::new(1);

/// The ring: `len` records starting at `head`, wrapping at `CAPACITY`. Records are numbered
/// in push order; `head_seq` is the number of the one at `head`.
struct Ring {
    buf: KVec<MonitorEvent>,
    head: usize,
    len: usize,
    head_seq: u64,
    /// Records dropped (ring full) and not yet reported by an [`EVENT_LOST`] record.
    lost: u64,
}

impl Ring {
    fn push(&mut self, event: MonitorEvent) {
        if self.len == CAPACITY {
            // Full: drop the oldest, and count it.
            self.advance(1);
            self.lost = self.lost.saturating_add(1);
        }
        let at = (self.head + self.len) % CAPACITY;
        if let Some(slot) = self.buf.get_mut(at) {
            *slot = event;
            self.len += 1;
        }
    }

    /// Removes the `n` oldest records (`n <= len`).
    fn advance(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = (self.head + n) % CAPACITY;
        self.len -= n;
        self.head_seq += n as u64;
    }

    /// Records waiting for a reader, the [`EVENT_LOST`] record included.
    fn pending(&self) -> usize {
        self.len + usize::from(self.lost > 0)
    }
}

/// What [`EventQueue::peek`] copied: the number of the first ring record, how many lost
/// records its [`EVENT_LOST`] record reports (0: none was copied), and how many ring records
/// follow it.
pub(crate) struct Peek {
    seq: u64,
    lost: u64,
    records: usize,
}

/// Event records waiting for `read(2)`.
#[pin_data]
pub(crate) struct EventQueue {
    /// This file's id, unique while the module is loaded.
    id: u64,
    #[pin]
    ring: Mutex<Ring>,
    #[pin]
    ready: CondVar,
    /// Held by a reader from [`EventQueue::peek`] to [`EventQueue::commit`].
    #[pin]
    reader: Mutex<()>,
}

impl EventQueue {
    /// An empty queue with a new id (allocates the ring).
    pub(crate) fn new() -> Result<Arc<Self>> {
        let mut buf = KVec::with_capacity(CAPACITY, GFP_KERNEL)?;
        buf.extend_with(CAPACITY, EMPTY, GFP_KERNEL)?;
        let ring = Ring {
            buf,
            head: 0,
            len: 0,
            head_seq: 0,
            lost: 0,
        };
        Arc::pin_init(
            pin_init!(Self {
                id: NEXT_ID.fetch_add(1, Relaxed),
                ring <- new_mutex!(ring, "EventQueue::ring"),
                ready <- new_condvar!("EventQueue::ready"),
                reader <- new_mutex!((), "EventQueue::reader"),
            }),
            GFP_KERNEL,
        )
    }

    /// The file's id: unique among the files opened since the module was loaded.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Queues a record (dropping the oldest when full) and wakes the readers.
    pub(crate) fn push(&self, event: MonitorEvent) {
        self.ring.lock().push(event);
        self.ready.notify_all();
    }

    /// How many records wait to be read (an [`EVENT_LOST`] record included).
    pub(crate) fn pending(&self) -> usize {
        self.ring.lock().pending()
    }

    /// Waits until a record waits, then takes the reader's turn: returns `EAGAIN` when
    /// `nonblock` and nothing waits, otherwise sleeps until a record arrives.
    ///
    /// # Errors
    /// `EAGAIN` (empty and `nonblock`), `ERESTARTSYS` (a signal interrupted the sleep).
    pub(crate) fn wait_turn(&self, nonblock: bool) -> Result<MutexGuard<'_, ()>> {
        {
            let mut ring = self.ring.lock();
            while ring.pending() == 0 {
                if nonblock {
                    return Err(EAGAIN);
                }
                if self.ready.wait_interruptible(&mut ring) {
                    return Err(ERESTARTSYS);
                }
            }
        }
        // Not under the ring lock: a reader holding the turn copies to user space.
        Ok(self.reader.lock())
    }

    /// Copies the oldest records into `out` without removing them (the reader's turn held):
    /// first an [`EVENT_LOST`] record when records were lost, then ring records.
    pub(crate) fn peek(&self, _turn: &MutexGuard<'_, ()>, out: &mut [MonitorEvent]) -> (Peek, usize) {
        let ring = self.ring.lock();
        let mut n = 0;
        let mut lost = 0;
        if ring.lost > 0 {
            if let Some(slot) = out.first_mut() {
                *slot = MonitorEvent {
                    kind: EVENT_LOST,
                    rss_bytes: ring.lost,
                    ..EMPTY
                };
                lost = ring.lost;
                n = 1;
            }
        }
        let mut records = 0;
        for slot in out.iter_mut().skip(n) {
            if records == ring.len {
                break;
            }
            match ring.buf.get((ring.head + records) % CAPACITY) {
                Some(event) => *slot = *event,
                None => break,
            }
            records += 1;
        }
        let peek = Peek {
            seq: ring.head_seq,
            lost,
            records,
        };
        (peek, n + records)
    }

    /// Removes what a [`peek`](Self::peek) copied and `copied` (a prefix of its records)
    /// reached user space. Records the ring dropped meanwhile (full) were counted as lost:
    /// those the reader got are taken off that count.
    pub(crate) fn commit(&self, _turn: &MutexGuard<'_, ()>, peek: &Peek, copied: usize) {
        let mut ring = self.ring.lock();
        let mut copied = copied;
        if peek.lost > 0 && copied > 0 {
            ring.lost = ring.lost.saturating_sub(peek.lost);
            copied -= 1;
        }
        let end = peek.seq + copied.min(peek.records) as u64;
        if ring.head_seq > peek.seq {
            // Dropped while being copied, yet delivered.
            let delivered = ring.head_seq.min(end) - peek.seq;
            ring.lost = ring.lost.saturating_sub(delivered);
        }
        if end > ring.head_seq {
            let n = usize::try_from(end - ring.head_seq).unwrap_or(usize::MAX);
            ring.advance(n);
        }
    }
}
