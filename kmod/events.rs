// SPDX-License-Identifier: GPL-2.0

//! The event records of one open file: a fixed-size ring under a mutex, and a condition
//! variable that wakes blocked readers.
//!
//! The scan pushes records while holding the monitor's state lock (lock order: state, then
//! ring); a full ring drops its oldest record, so a file that registered containers and
//! stopped reading never makes the scan wait or allocate.

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, CondVar, Mutex},
};

use crate::abi::{MonitorEvent, CONTAINER_ID_LEN};

/// Records a file keeps before it drops the oldest.
const CAPACITY: usize = 256;

/// A zeroed record (fills the ring and read batches).
pub(crate) const EMPTY: MonitorEvent = MonitorEvent {
    kind: 0,
    pid: 0,
    rss_bytes: 0,
    limit_bytes: 0,
    container_id: [0; CONTAINER_ID_LEN],
};

/// The ring: `len` records starting at `head`, wrapping at `CAPACITY`.
struct Ring {
    buf: KVec<MonitorEvent>,
    head: usize,
    len: usize,
}

impl Ring {
    fn push(&mut self, event: MonitorEvent) {
        if self.len == CAPACITY {
            // Full: drop the oldest.
            self.head = (self.head + 1) % CAPACITY;
            self.len -= 1;
        }
        let at = (self.head + self.len) % CAPACITY;
        if let Some(slot) = self.buf.get_mut(at) {
            *slot = event;
            self.len += 1;
        }
    }

    fn pop(&mut self) -> Option<MonitorEvent> {
        if self.len == 0 {
            return None;
        }
        let event = self.buf.get(self.head).copied();
        self.head = (self.head + 1) % CAPACITY;
        self.len -= 1;
        event
    }
}

/// Event records waiting for `read(2)`.
#[pin_data]
pub(crate) struct EventQueue {
    #[pin]
    ring: Mutex<Ring>,
    #[pin]
    ready: CondVar,
}

impl EventQueue {
    /// An empty queue (allocates the ring).
    pub(crate) fn new() -> Result<Arc<Self>> {
        let mut buf = KVec::with_capacity(CAPACITY, GFP_KERNEL)?;
        buf.extend_with(CAPACITY, EMPTY, GFP_KERNEL)?;
        let ring = Ring {
            buf,
            head: 0,
            len: 0,
        };
        Arc::pin_init(
            pin_init!(Self {
                ring <- new_mutex!(ring, "EventQueue::ring"),
                ready <- new_condvar!("EventQueue::ready"),
            }),
            GFP_KERNEL,
        )
    }

    /// Queues a record and wakes the readers.
    pub(crate) fn push(&self, event: MonitorEvent) {
        self.ring.lock().push(event);
        self.ready.notify_all();
    }

    /// How many records wait to be read.
    pub(crate) fn pending(&self) -> usize {
        self.ring.lock().len
    }

    /// Moves up to `out.len()` records into `out` and returns how many. While the queue is
    /// empty it returns `EAGAIN` when `nonblock`, otherwise sleeps until a record arrives.
    ///
    /// # Errors
    /// `EAGAIN` (empty and `nonblock`), `ERESTARTSYS` (a signal interrupted the sleep).
    pub(crate) fn pop_into(&self, out: &mut [MonitorEvent], nonblock: bool) -> Result<usize> {
        let mut ring = self.ring.lock();
        while ring.len == 0 {
            if nonblock {
                return Err(EAGAIN);
            }
            if self.ready.wait_interruptible(&mut ring) {
                return Err(ERESTARTSYS);
            }
        }
        let mut n = 0;
        for slot in out.iter_mut() {
            match ring.pop() {
                Some(event) => *slot = event,
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }
}
