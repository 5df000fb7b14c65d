// SPDX-License-Identifier: GPL-2.0

//! Address spaces pinned between scans, so that reading a known process's RSS takes no lock.
//!
//! Reading `task->mm` needs `task_lock()`: `mm_struct` is not freed by RCU. But a scan that
//! holds a reference on an `mm_struct`'s *memory* (`mmgrab()`: `mm_count`, what lazy-TLB
//! kernel threads hold; its counters are destroyed and it is freed only in `__mmdrop()`) may
//! compare a lockless `READ_ONCE(task->mm)` with that pinned address: the address cannot be
//! reused while pinned, so equality proves the task uses that very `mm_struct`, and its
//! `rss_stat` counters can be read without the task's lock. A process met for the first time,
//! or whose `mm` changed (exec, exit), takes the locked path once and is pinned then.
//!
//! Pins are kept sorted by task address; a pin the last walk did not confirm (the process
//! ended, exec'd, or left every container) is dropped after it, outside the RCU read lock.

use kernel::{bindings, prelude::*};

/// One pinned address space: `mm` (an `mm_struct` on which this holds an `mm_count`
/// reference) was `task`'s when pinned. Addresses as integers so that the state is `Send`.
#[derive(Clone, Copy)]
struct Pin {
    task: usize,
    mm: usize,
    /// Confirmed by the walk in progress.
    seen: bool,
}

/// The pins, and those the walk in progress added (room reserved before the walk).
pub(crate) struct MmCache {
    pins: KVec<Pin>,
    added: KVec<Pin>,
}

/// `added` ran out of room in a walk.
pub(crate) struct Full;

impl MmCache {
    pub(crate) fn new() -> Self {
        Self {
            pins: KVec::new(),
            added: KVec::new(),
        }
    }

    /// Before a walk (may sleep): room for at least `room` new pins.
    pub(crate) fn reserve(&mut self, room: usize) -> Result {
        self.added.reserve(room.max(64), GFP_KERNEL)?;
        Ok(())
    }

    /// Room reserved for new pins.
    pub(crate) fn room(&self) -> usize {
        self.added.capacity()
    }

    /// The pinned `mm` of `task` if it is still `task`'s current one (`current` is a lockless
    /// read of `task->mm`), marking the pin confirmed.
    pub(crate) fn confirmed(&mut self, task: usize, current: usize) -> Option<usize> {
        let at = self.pins.binary_search_by_key(&task, |p| p.task).ok()?;
        let pin = self.pins.get_mut(at)?;
        if current == 0 || pin.mm != current {
            return None;
        }
        pin.seen = true;
        Some(pin.mm)
    }

    /// Pins `mm` as `task`'s.
    ///
    /// # Safety
    /// `mm` is a live `mm_struct` that cannot be freed during the call (e.g. read from
    /// `task->mm` under `task_lock()`).
    pub(crate) unsafe fn pin(
        &mut self,
        task: usize,
        mm: *mut bindings::mm_struct,
    ) -> Result<(), Full> {
        if self.added.len() == self.added.capacity() {
            return Err(Full);
        }
        // SAFETY: `mm` is live (caller); `mmgrab` takes a reference on its memory, dropped
        // by `settle` or `Drop`.
        unsafe { bindings::mmgrab(mm) };
        let pin = Pin {
            task,
            mm: mm as usize,
            seen: true,
        };
        // Cannot fail: room checked above.
        let _ = self.added.push_within_capacity(pin);
        Ok(())
    }

    /// After a walk, outside the RCU read lock (may sleep): drops the pins the walk did not
    /// confirm, files the new ones in order, and clears the marks for the next walk.
    /// Called with no walk since the last call, it drops every pin.
    pub(crate) fn settle(&mut self) -> Result {
        self.pins.retain(|pin| {
            if !pin.seen {
                drop_pin(pin);
            }
            pin.seen
        });
        self.pins.reserve(self.added.len(), GFP_KERNEL)?;
        while let Some(pin) = self.added.pop() {
            let at = match self.pins.binary_search_by_key(&pin.task, |p| p.task) {
                Ok(at) => {
                    // The same task pinned twice (its mm changed while a stale pin was kept):
                    // keep the newer.
                    if let Some(old) = self.pins.get_mut(at) {
                        drop_pin(old);
                        *old = pin;
                    }
                    continue;
                }
                Err(at) => at,
            };
            // Cannot fail: reserved above.
            let _ = self.pins.insert_within_capacity(at, pin);
        }
        for pin in self.pins.iter_mut() {
            pin.seen = false;
        }
        Ok(())
    }
}

/// Drops a pin's reference.
fn drop_pin(pin: &Pin) {
    // SAFETY: `pin.mm` holds one `mm_count` reference taken by `MmCache::pin`, dropped exactly
    // once (the pin is discarded or overwritten right after). `__mmdrop` may run here, in
    // process context without locks that it takes.
    unsafe { bindings::mmdrop(pin.mm as *mut bindings::mm_struct) };
}

impl Drop for MmCache {
    fn drop(&mut self) {
        for pin in Iterator::chain(self.pins.iter(), self.added.iter()) {
            drop_pin(pin);
        }
    }
}
