// SPDX-License-Identifier: GPL-2.0

//! One pass over the host's processes, each mapped to the container it belongs to, summing
//! the resident pages (file + anon + shmem) of each distinct address space.
//!
//! The kernel crate has no process iterator or RSS accessor in 7.3: this walks the task list
//! as `for_each_process()` does, under the RCU read lock, and reads `mm->rss_stat` with
//! `__percpu_counter_sum` under `task_lock()` (which keeps `task->mm` from being freed).

use kernel::{bindings, container_of, prelude::*, sync::rcu};

/// Maps a process to its entry. `keys` is sorted by key: the address of a registered
/// container's PID namespace, or of the `struct pid` of a registered ordinary process.
pub(crate) struct Walk<'a> {
    /// `(key, entry index)`, sorted.
    pub(crate) keys: &'a [(usize, usize)],
    /// Resident pages per entry index (added to).
    pub(crate) pages: &'a mut [u64],
    /// Address spaces with more than one user already counted in this pass. Its capacity is
    /// reserved before the walk; nothing allocates under the RCU read lock.
    pub(crate) shared_mm: &'a mut KVec<usize>,
}

/// The pass ran out of room in `shared_mm`; reserve more and walk again.
pub(crate) struct Overflow;

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
        // SAFETY: `task_active_pid_ns` reads `task`'s pid under the RCU lock we hold.
        let mut ns = unsafe { bindings::task_active_pid_ns(task) };
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

    /// Resident pages of `task`'s address space, 0 if it has none or it was already counted.
    ///
    /// # Safety
    /// The RCU read lock is held and `task` is on the task list.
    unsafe fn resident_pages(&mut self, task: *mut bindings::task_struct) -> Result<u64, Overflow> {
        // SAFETY: `task` is valid (caller); `alloc_lock` is the lock `task_lock()` takes.
        unsafe { bindings::spin_lock(&raw mut (*task).alloc_lock) };
        // SAFETY: under `task_lock`, `task->mm` is stable and, if set, not freed (exit_mm()
        // clears it under the same lock before dropping its reference).
        let result = unsafe { self.count_mm((*task).mm) };
        // SAFETY: taken above.
        unsafe { bindings::spin_unlock(&raw mut (*task).alloc_lock) };
        result
    }

    /// # Safety
    /// `mm` is null or a live `mm_struct` that cannot be freed during the call.
    unsafe fn count_mm(&mut self, mm: *mut bindings::mm_struct) -> Result<u64, Overflow> {
        if mm.is_null() {
            return Ok(0);
        }
        // SAFETY: `mm` is live (caller); `mm_users` is an atomic_t.
        let users = unsafe { bindings::atomic_read(&raw const (*mm).__bindgen_anon_1.mm_users) };
        if users > 1 {
            // Threads, vfork()ed children or transient users share it: count it once.
            let key = mm as usize;
            if self.shared_mm.contains(&key) {
                return Ok(0);
            }
            if self.shared_mm.push_within_capacity(key).is_err() {
                return Err(Overflow);
            }
        }
        let mut pages = 0u64;
        for member in [
            bindings::MM_FILEPAGES,
            bindings::MM_ANONPAGES,
            bindings::MM_SHMEMPAGES,
        ] {
            // SAFETY: `mm` is live; `rss_stat` holds `NR_MM_COUNTERS` initialised per-CPU
            // counters and `member` is below that; the sum takes the counter's own lock.
            let sum = unsafe {
                bindings::__percpu_counter_sum(
                    &raw mut (*mm).__bindgen_anon_1.rss_stat[member as usize],
                )
            };
            pages = pages.saturating_add(u64::try_from(sum).unwrap_or(0));
        }
        Ok(pages)
    }

    /// Walks every process once, adding its resident pages to its entry's count.
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
                return Ok(());
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
            // SAFETY: RCU read lock held, `task` listed.
            let pages = unsafe { self.resident_pages(task) }?;
            if let Some(total) = self.pages.get_mut(index) {
                *total = total.saturating_add(pages);
            }
        }
    }
}
