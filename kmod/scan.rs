// SPDX-License-Identifier: GPL-2.0

//! One pass over the host's processes, each mapped to the container it belongs to, summing
//! the resident pages (file + anon + shmem) of each distinct address space.
//!
//! The kernel crate has no process iterator or RSS accessor in 7.3: this walks the task list
//! as `for_each_process()` does, under the RCU read lock, and reads `mm->rss_stat` under
//! `task_lock()` (which keeps `task->mm` from being freed). A process whose leader has exited
//! while other threads run is read through the first thread that still has an `mm`
//! (`find_lock_task_mm()`'s way).
//!
//! Two ways to read a counter ([`Mode`]): `get_mm_counter()`'s approximate global count (one
//! load, no lock), off by less than `percpu_counter_batch` pages per online CPU (the per-CPU
//! deltas not yet folded in), or `get_mm_counter_sum()`'s exact sum (`__percpu_counter_sum`:
//! the counter's raw spinlock and a walk over every CPU). A scan reads every process the
//! cheap way, then re-reads exactly only the containers whose count is within that error of
//! a limit (see `monitor.rs`), so decisions are those of exact sums.

use crate::mmcache::MmCache;
use kernel::{bindings, container_of, prelude::*, sync::rcu};

/// What one walk counts for one entry.
#[derive(Clone, Copy, Default)]
pub(crate) struct Tally {
    /// Resident pages (file + anon + shmem) of the entry's distinct address spaces.
    pub(crate) pages: u64,
    /// How many address spaces were counted (each approximate read may be off by
    /// [`slack_pages`]).
    pub(crate) mms: u64,
    /// In a [`Mode::Exact`] walk: count this entry (the others are skipped).
    pub(crate) recheck: bool,
    /// The entry's init has exited (set after the walks).
    pub(crate) exited: bool,
}

/// How a walk reads the counters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every entry, `get_mm_counter()`: the global count, no lock.
    Approximate,
    /// Only entries whose [`Tally::recheck`] is set, `get_mm_counter_sum()`: exact.
    Exact,
}

/// Largest error of one approximate read of an address space's three counters, in pages:
/// each per-CPU delta stays below `percpu_counter_batch` (max(32, 2 × online CPUs)) before it
/// is folded into the global count, so each counter is off by less than batch × CPUs.
pub(crate) fn slack_pages() -> u64 {
    // SAFETY: `percpu_counter_batch` is an exported int, written only on CPU hotplug;
    // `__num_online_cpus` an exported atomic_t. Plain reads of both are what the kernel's
    // own readers do (`num_online_cpus()`).
    let (batch, cpus) = unsafe {
        (
            core::ptr::read_volatile(&raw const bindings::percpu_counter_batch),
            bindings::atomic_read(&raw const bindings::__num_online_cpus),
        )
    };
    // A CPU may come online during the scan: count one more.
    let per_counter = u64::try_from(batch).unwrap_or(0) * (u64::try_from(cpus).unwrap_or(0) + 1);
    3 * per_counter
}

/// Maps a process to its entry. `keys` is sorted by key: the address of a registered
/// container's PID namespace, or of the `struct pid` of a registered ordinary process.
pub(crate) struct Walk<'a> {
    /// `(key, entry index)`, sorted.
    pub(crate) keys: &'a [(usize, usize)],
    /// Per entry index (added to).
    pub(crate) tallies: &'a mut [Tally],
    /// How the counters are read, and which entries count.
    pub(crate) mode: Mode,
    /// Address spaces with more than one user already counted in this pass. Its capacity is
    /// reserved before the walk; nothing allocates under the RCU read lock.
    pub(crate) shared_mm: &'a mut KVec<usize>,
    /// Pinned address spaces ([`MmCache`]): a process whose pin is confirmed is read without
    /// `task_lock()`. `None` reads every process under its lock (and pins nothing).
    pub(crate) cache: Option<&'a mut MmCache>,
    /// Shared address spaces met when `shared_mm` was full (an upper bound of the room
    /// missing; start at 0).
    pub(crate) missing_shared: usize,
    /// New pins that did not fit in the cache's room (counted under the lock instead;
    /// start at 0).
    pub(crate) missing_pins: usize,
}

/// The pass ran out of room in `shared_mm`: reserve `missing` more and walk again.
pub(crate) struct Overflow {
    /// Shared address spaces that found no room (an upper bound).
    pub(crate) missing: usize,
}

impl Walk<'_> {
    fn lookup(&self, key: usize) -> Option<usize> {
        self.keys
            .binary_search_by_key(&key, |&(k, _)| k)
            .ok()
            .and_then(|at| self.keys.get(at))
            .map(|&(_, index)| index)
    }

    /// The entry `task` belongs to: its own `struct pid` if registered, else the nearest
    /// registered PID namespace among its namespace and that namespace's ancestors.
    ///
    /// # Safety
    /// The RCU read lock is held and `task` is on the task list.
    unsafe fn owner(&self, task: *mut bindings::task_struct) -> Option<usize> {
        // SAFETY: the caller guarantees `task` is valid under RCU; `thread_pid` of a listed
        // task stays valid until an RCU grace period after it is unlisted.
        let pid = unsafe { core::ptr::read_volatile(&raw const (*task).thread_pid) };
        if let Some(index) = self.lookup(pid as usize) {
            return Some(index);
        }
        // `task_active_pid_ns()` inlined (`ns_of_pid(task_pid(task))`), without the call and
        // its lockdep RCU checks: the namespace the pid was allocated in, at its own level.
        // SAFETY: `pid` is a live `struct pid` (above, RCU); `level` and `numbers[0..=level]`
        // are set at allocation and never change; a listed task's pid is never null.
        let mut ns = unsafe { (*(*pid).numbers.as_ptr().add((*pid).level as usize)).ns };
        while !ns.is_null() {
            if let Some(index) = self.lookup(ns as usize) {
                return Some(index);
            }
            // SAFETY: a namespace holds a reference on its parent, and `ns` is kept alive by
            // the pid of a task we may look at under RCU.
            ns = unsafe { (*ns).parent };
        }
        None
    }

    /// Resident pages of `task`'s address space, `None` if it has none or it was already
    /// counted in this walk. A process whose leader has exited while other threads run has
    /// no `mm` on its leader: it is read from the first thread that still has one, as the
    /// kernel's `find_lock_task_mm()` does.
    ///
    /// # Safety
    /// The RCU read lock is held and `task` is on the task list.
    unsafe fn resident_pages(&mut self, task: *mut bindings::task_struct) -> Option<u64> {
        if let Some(cache) = self.cache.as_deref_mut() {
            // SAFETY: `task` is valid (caller); a lockless READ_ONCE of `task->mm`, only
            // compared with a pinned address, never dereferenced.
            let current = unsafe { core::ptr::read_volatile(&raw const (*task).mm) } as usize;
            if let Some(mm) = cache.confirmed(task as usize, current) {
                // SAFETY: `mm` is pinned by the cache (`mm_count`), so it and its counters
                // stay allocated and initialised until the cache drops the pin.
                return unsafe { self.count_mm(mm as *mut bindings::mm_struct) };
            }
        }
        // SAFETY: `task` is valid (caller); `alloc_lock` is the lock `task_lock()` takes.
        unsafe { bindings::spin_lock(&raw mut (*task).alloc_lock) };
        // SAFETY: `task` is valid; under `task_lock`, `task->mm` is stable. (Read through a
        // raw field pointer: a `task_struct` is not always as aligned as its Rust type says,
        // e.g. under `slub_debug` red zones, and a place read would assert that it is.)
        let mm = unsafe { core::ptr::read(&raw const (*task).mm) };
        let pinned = match self.cache.as_deref_mut() {
            // SAFETY: under `task_lock`, a non-null `task->mm` is not freed (exit_mm()
            // clears it under the same lock before dropping its reference).
            Some(cache) if !mm.is_null() => unsafe { cache.pin(task as usize, mm) }.is_ok(),
            _ => true,
        };
        if !pinned {
            // No room for a new pin: counted under the lock all the same, and more room is
            // reserved before the next walk.
            self.missing_pins += 1;
        }
        // SAFETY: as above, `mm` is null or live while the lock is held.
        let result = unsafe { self.count_mm(mm) };
        // SAFETY: taken above.
        unsafe { bindings::spin_unlock(&raw mut (*task).alloc_lock) };
        if mm.is_null() {
            // SAFETY: the RCU read lock is held and `task` is listed (caller).
            return unsafe { self.live_thread_pages(task) };
        }
        result
    }

    /// `for_each_thread(leader, t)` under the RCU read lock: the resident pages of the first
    /// other thread of `leader`'s process that has an `mm` (read under its `task_lock`).
    ///
    /// # Safety
    /// The RCU read lock is held and `leader` is on the task list.
    unsafe fn live_thread_pages(&mut self, leader: *mut bindings::task_struct) -> Option<u64> {
        // SAFETY: `leader` is valid under RCU (caller); its `signal` is set at creation and
        // freed only with the last task of the group, after an RCU grace period;
        // `thread_head` lists the group's threads by `thread_node`, an RCU list. (Raw field
        // pointers only, see `resident_pages`.)
        let head = unsafe {
            let signal = core::ptr::read(&raw const (*leader).signal);
            &raw mut (*signal).thread_head
        };
        // SAFETY: `head` is a valid list head (above); READ_ONCE as `list_next_rcu`.
        let mut next = unsafe { core::ptr::read_volatile(&raw const (*head).next) };
        while next != head {
            // SAFETY: every other link of `thread_head` is the `thread_node` of a task that
            // stays valid under RCU.
            let thread = unsafe { container_of!(next, bindings::task_struct, thread_node) };
            // SAFETY: `thread` is valid (above); READ_ONCE as `list_next_rcu`.
            next = unsafe { core::ptr::read_volatile(&raw const (*thread).thread_node.next) };
            if thread == leader {
                continue;
            }
            // SAFETY: `thread` is valid; `alloc_lock` is `task_lock()`'s lock.
            unsafe { bindings::spin_lock(&raw mut (*thread).alloc_lock) };
            // SAFETY: under `task_lock`, `thread->mm` is null or live (see above).
            let mm = unsafe { core::ptr::read(&raw const (*thread).mm) };
            // SAFETY: as above.
            let result = (!mm.is_null()).then(|| unsafe { self.count_mm(mm) });
            // SAFETY: taken above.
            unsafe { bindings::spin_unlock(&raw mut (*thread).alloc_lock) };
            if let Some(pages) = result {
                return pages;
            }
        }
        None
    }

    /// The resident pages of `mm`, `None` when it is null or was already counted in this
    /// walk. When `shared_mm` is full, counts how much room was missing (the walk's result is
    /// then discarded and the walk repeated with that much more).
    ///
    /// # Safety
    /// `mm` is null or a live `mm_struct` that cannot be freed during the call.
    unsafe fn count_mm(&mut self, mm: *mut bindings::mm_struct) -> Option<u64> {
        if mm.is_null() {
            return None;
        }
        // SAFETY: `mm` is live (caller); `mm_users` is an atomic_t.
        let users = unsafe { bindings::atomic_read(&raw const (*mm).__bindgen_anon_1.mm_users) };
        if users > 1 {
            // Threads, vfork()ed children or transient users share it: count it once.
            let key = mm as usize;
            if self.shared_mm.contains(&key) {
                return None;
            }
            if self.shared_mm.push_within_capacity(key).is_err() {
                self.missing_shared += 1;
            }
        }
        let mut pages = 0u64;
        for member in [
            bindings::MM_FILEPAGES,
            bindings::MM_ANONPAGES,
            bindings::MM_SHMEMPAGES,
        ] {
            // SAFETY: `mm` is live; `rss_stat` holds `NR_MM_COUNTERS` initialised per-CPU
            // counters and `member` is below that.
            let counter = unsafe { &raw mut (*mm).__bindgen_anon_1.rss_stat[member as usize] };
            let count = match self.mode {
                // SAFETY: `counter` is valid (above); `count` is an s64 updated under the
                // counter's lock, read without it as `percpu_counter_read_positive()` does
                // (READ_ONCE; a torn read is impossible for an aligned s64 on 64-bit).
                Mode::Approximate => unsafe {
                    core::ptr::read_volatile(&raw const (*counter).count)
                },
                // SAFETY: `counter` is valid; the sum takes the counter's own lock.
                Mode::Exact => unsafe { bindings::__percpu_counter_sum(counter) },
            };
            pages = pages.saturating_add(u64::try_from(count).unwrap_or(0));
        }
        Some(pages)
    }

    /// Walks every process once, adding its resident pages to its entry's count.
    ///
    /// # Errors
    /// [`Overflow`] when `shared_mm` was too small (the counts are then not to be used).
    pub(crate) fn run(&mut self) -> Result<(), Overflow> {
        let _rcu = rcu::read_lock();
        // `init_task` is a static task that is never freed; only its address is taken.
        let head = &raw mut bindings::init_task;
        let mut task = head;
        loop {
            // SAFETY: `task` is `init_task` or on the task list, and the RCU read lock is
            // held: its `tasks.next` points to the next listed task's `tasks` field (this is
            // `next_task()`; the volatile read is the `READ_ONCE` of `list_entry_rcu`).
            let next = unsafe { core::ptr::read_volatile(&raw const (*task).tasks.next) };
            // SAFETY: every link of the task list is the `tasks` field of a `task_struct`.
            task = unsafe { container_of!(next, bindings::task_struct, tasks) };
            if task == head {
                return match self.missing_shared {
                    0 => Ok(()),
                    missing => Err(Overflow { missing }),
                };
            }
            // SAFETY: `task` is listed and valid under RCU.
            let flags = unsafe { core::ptr::read_volatile(&raw const (*task).flags) };
            if flags & bindings::PF_KTHREAD != 0 {
                continue;
            }
            // SAFETY: RCU read lock held, `task` listed.
            let Some(index) = (unsafe { self.owner(task) }) else {
                continue;
            };
            let counted = self.tallies.get(index).is_some_and(|t| match self.mode {
                Mode::Approximate => true,
                Mode::Exact => t.recheck,
            });
            if !counted {
                continue;
            }
            // SAFETY: RCU read lock held, `task` listed.
            let Some(pages) = (unsafe { self.resident_pages(task) }) else {
                continue;
            };
            if let Some(tally) = self.tallies.get_mut(index) {
                tally.pages = tally.pages.saturating_add(pages);
                tally.mms += 1;
            }
        }
    }
}
