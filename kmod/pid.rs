// SPDX-License-Identifier: GPL-2.0

//! A counted reference on a `struct pid`: resolved once, in the registering process's context,
//! so a recycled PID number can never redirect the monitor to another process.
//!
//! The kernel crate has no PID abstraction in 7.3, so this wraps the exported C functions.

use core::ptr::NonNull;
use kernel::{bindings, ffi::c_int, prelude::*, sync::rcu};

/// A reference on a `struct pid`, dropped with `put_pid`.
///
/// # Invariants
/// `ptr` points to a `struct pid` on which this value owns one reference.
pub(crate) struct PidRef {
    ptr: NonNull<bindings::pid>,
}

// SAFETY: `struct pid` is reference counted and its references may be taken and dropped on
// any thread; the fields read here are immutable after allocation.
unsafe impl Send for PidRef {}
// SAFETY: See `Send`; `&PidRef` only allows reading immutable fields and calling thread-safe
// functions (`pid_task` under RCU, `kill_pid`).
unsafe impl Sync for PidRef {}

impl PidRef {
    /// The `struct pid` of `nr` in the current task's PID namespace, or `None` when there is
    /// no such process.
    pub(crate) fn find(nr: i32) -> Option<Self> {
        // SAFETY: `find_get_pid` takes the RCU read lock itself and returns either null or a
        // pointer on which it took a reference for us.
        let ptr = NonNull::new(unsafe { bindings::find_get_pid(nr) })?;
        // INVARIANT: `find_get_pid` took the reference this value owns.
        Some(Self { ptr })
    }

    /// Whether this pid names a process that may be registered: a thread-group leader (a
    /// process id, not the id of another thread) of a user process (not a kernel thread).
    ///
    /// # Errors
    /// `ESRCH` when no task uses the pid any more, `EINVAL` for a thread id or a kernel thread.
    pub(crate) fn check_process(&self) -> Result {
        let _rcu = rcu::read_lock();
        // SAFETY: `pid_task` requires the RCU read lock (held); by the invariant the pid is
        // valid.
        let task = unsafe { bindings::pid_task(self.as_ptr(), bindings::pid_type_PIDTYPE_PID) };
        if task.is_null() {
            return Err(ESRCH);
        }
        // SAFETY: a task returned by `pid_task` stays valid until the RCU read lock is dropped;
        // `flags` is read once (READ_ONCE): only `PF_KTHREAD`, set at creation, matters here.
        let flags = unsafe { core::ptr::read_volatile(&raw const (*task).flags) };
        if flags & bindings::PF_KTHREAD != 0 {
            return Err(EINVAL);
        }
        // A thread's pid has no thread-group task: only a process id (the leader's, even
        // once the leader itself has exited while other threads run) names one.
        // SAFETY: as above.
        let leader = unsafe { bindings::pid_task(self.as_ptr(), bindings::pid_type_PIDTYPE_TGID) };
        if leader.is_null() {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// The raw pointer (valid while `self` lives).
    pub(crate) fn as_ptr(&self) -> *mut bindings::pid {
        self.ptr.as_ptr()
    }

    /// The PID namespace this process is the init of (number 1 in a namespace below the
    /// host's), or `None` for an ordinary process. Holding the `struct pid` holds a reference
    /// on that namespace, so the pointer stays valid (and unique) while `self` lives.
    pub(crate) fn own_namespace(&self) -> Option<*mut bindings::pid_namespace> {
        let pid = self.as_ptr();
        // SAFETY: by the invariant `pid` is valid; `level` and `numbers[0..=level]` are set at
        // allocation and never change.
        unsafe {
            let level = (*pid).level;
            let upid = (*pid).numbers.as_ptr().add(level as usize);
            (level > 0 && (*upid).nr == 1).then_some((*upid).ns)
        }
    }

    /// Whether the process has exited: it is gone from the PID's task list, or a zombie
    /// whose every thread has exited. A leader that has exited while other threads of its
    /// process run (a zombie kept by `delay_group_leader()`) has not: the process lives on.
    /// Takes the RCU read lock as a guard, so that a caller checking many holds it once.
    pub(crate) fn has_exited_rcu(&self, _rcu: &rcu::Guard) -> bool {
        // SAFETY: `pid_task` requires the RCU read lock, held by the caller's guard; by the
        // invariant the pid is valid.
        let task = unsafe { bindings::pid_task(self.as_ptr(), bindings::pid_type_PIDTYPE_PID) };
        if task.is_null() {
            return true;
        }
        // SAFETY: a task returned by `pid_task` stays valid until the RCU read lock is dropped;
        // `exit_state` is written concurrently, hence the volatile (READ_ONCE) read.
        let exit_state = unsafe { core::ptr::read_volatile(&raw const (*task).exit_state) };
        if exit_state == 0 {
            return false;
        }
        // SAFETY: `task` is valid (above); its `signal` is set at creation, never changes and
        // is freed only with the last task of the group, after an RCU grace period. `live`
        // (threads not yet past `do_exit()`'s start) is an atomic_t.
        // (Raw field pointers: a `task_struct` may be less aligned than its Rust type.)
        let live = unsafe {
            let signal = core::ptr::read(&raw const (*task).signal);
            bindings::atomic_read(&raw const (*signal).live)
        };
        live == 0
    }

    /// Sends SIGKILL to the process (as the kernel, so no permission check; a PID-namespace
    /// init cannot ignore it from an ancestor namespace, and its death ends the namespace).
    pub(crate) fn kill(&self) -> Result {
        // SAFETY: by the invariant the pid is valid; `kill_pid` takes the locks it needs.
        let ret = unsafe { bindings::kill_pid(self.as_ptr(), bindings::SIGKILL as c_int, 1) };
        kernel::error::to_result(ret)
    }
}

impl Drop for PidRef {
    fn drop(&mut self) {
        // SAFETY: by the invariant this value owns one reference, released exactly once here.
        unsafe { bindings::put_pid(self.ptr.as_ptr()) };
    }
}
