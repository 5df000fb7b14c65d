// SPDX-License-Identifier: GPL-2.0

//! Load-time check that the layouts the scan reads (`task_struct`, `struct pid`,
//! `signal_struct`, from the kernel crate's bindgen bindings) are those of the running kernel.
//!
//! bindgen and the C compiler can disagree: an empty struct with an alignment attribute
//! (e.g. `struct sched_statistics ____cacheline_aligned` without `CONFIG_SCHEDSTATS`) has size
//! 0 in GNU C but not in the bindings, which shifts every later `task_struct` field. A module
//! reading such fields follows wrong pointers under the RCU read lock: a hang or corruption,
//! not an error. So the module checks a few invariants of `init_task` through the bindings'
//! offsets, and refuses to load (`ENOEXEC`, with a log line naming the field) when one fails.

use kernel::{bindings, prelude::*};

/// Checks the layouts; `Err(ENOEXEC)` (after logging which check failed) on a mismatch.
pub(crate) fn check() -> Result {
    match first_mismatch() {
        None => Ok(()),
        Some(what) => {
            pr_err!(
                "the kernel's struct layouts differ from the Rust bindings' ({}): not loading\n",
                what
            );
            Err(ENOEXEC)
        }
    }
}

/// The first invariant of `init_task` that the bindings' offsets do not find, if any.
fn first_mismatch() -> Option<&'static str> {
    let init = &raw mut bindings::init_task;
    // SAFETY: `init_task` is a static task that lives as long as the kernel; only fields are
    // read, through raw field pointers, each a pointer-sized aligned word inside the object
    // whatever the layout (the bindings' size of `task_struct` is what the checks below
    // validate, and `init_task` is at least as large as every field offset tested). Lists are
    // followed only after the check that their head is consistent.
    unsafe {
        // `tasks` is a circular list: the next entry's `prev` is the head.
        let head = &raw mut (*init).tasks;
        let next = core::ptr::read_volatile(&raw const (*head).next);
        if next.is_null() || core::ptr::read_volatile(&raw const (*next).prev) != head {
            return Some("task_struct.tasks");
        }
        // A kernel thread without an address space, the leader of its group.
        let flags = core::ptr::read_volatile(&raw const (*init).flags);
        if flags & bindings::PF_KTHREAD == 0 {
            return Some("task_struct.flags");
        }
        if !core::ptr::read_volatile(&raw const (*init).mm).is_null() {
            return Some("task_struct.mm");
        }
        if core::ptr::read_volatile(&raw const (*init).group_leader) != init {
            return Some("task_struct.group_leader");
        }
        // Its pid is number 0 of the initial PID namespace.
        let pid = core::ptr::read_volatile(&raw const (*init).thread_pid);
        if pid.is_null() {
            return Some("task_struct.thread_pid");
        }
        let level = core::ptr::read_volatile(&raw const (*pid).level);
        let upid = (&raw const (*pid).numbers).cast::<bindings::upid>();
        if level != 0
            || core::ptr::read_volatile(&raw const (*upid).nr) != 0
            || core::ptr::read_volatile(&raw const (*upid).ns) != &raw mut bindings::init_pid_ns
        {
            return Some("struct pid");
        }
        // Its thread group lists it, by `thread_node`.
        let signal = core::ptr::read_volatile(&raw const (*init).signal);
        if signal.is_null() {
            return Some("task_struct.signal");
        }
        let threads = &raw mut (*signal).thread_head;
        let first = core::ptr::read_volatile(&raw const (*threads).next);
        if first != &raw mut (*init).thread_node
            || core::ptr::read_volatile(&raw const (*first).prev) != threads
        {
            return Some("signal_struct.thread_head or task_struct.thread_node");
        }
    }
    None
}
