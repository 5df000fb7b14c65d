//! The `clone()` into new PID, UTS, mount and IPC namespaces, and everything the child does before
//! it becomes `container-init`.
//!
//! The supervisor is multi-threaded, so the child (a copy of only the calling thread) must do
//! async-signal-safe work only: no allocation, no locks, no `OwnedFd` drops. Everything is
//! prepared before the clone ([`ChildPlan`]); the child makes raw system calls (`dup2`,
//! `fcntl`, `execve`, `write`, `_exit`). The clone is fork-like (`clone3` without a new
//! stack, or `clone` with a NULL stack where `clone3` is unavailable), so no closure or child
//! stack is needed.

use super::init_args::CArgv;
use nix::errno::Errno;
use nix::unistd::Pid;
use proto::exit::EXIT_CHILD_FAILED;
use proto::init::report::{child_record, ChildStage};
use std::os::fd::RawFd;

/// Namespaces every container gets.
pub const CLONE_FLAGS: u64 =
    (libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWNS | libc::CLONE_NEWIPC) as u64;

/// Everything the child needs, prepared before `clone()`.
#[derive(Debug)]
pub struct ChildPlan<'a> {
    /// stdin (`/dev/null`), stdout, stderr and ready descriptors, all above 2.
    pub fds: [RawFd; 4],
    /// argv of `container-init`; `argv[0]` is also the path executed.
    pub argv: &'a CArgv,
    /// Its environment.
    pub envp: &'a CArgv,
}

/// `struct clone_args` of clone3(2), first version (64 bytes).
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// Fork-like clone with [`CLONE_FLAGS`]: returns 0 in the child, the child's pid in the
/// parent.
fn raw_clone() -> Result<libc::pid_t, Errno> {
    let args = CloneArgs {
        flags: CLONE_FLAGS,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
    };
    // SAFETY: clone3 with a valid, fully initialised clone_args of the size passed, no new
    // stack and no CLONE_VM: the child runs on a copy of this stack, like fork(2).
    let mut rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if rc == -1 && Errno::last() == Errno::ENOSYS {
        // SAFETY: legacy clone with a NULL stack and no CLONE_VM behaves like fork(2);
        // the remaining arguments (parent_tid, child_tid, tls) are unused without the flags
        // that read them.
        rc = unsafe {
            libc::syscall(
                libc::SYS_clone,
                CLONE_FLAGS | libc::SIGCHLD as u64,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
    }
    Errno::result(rc).map(|pid| pid as libc::pid_t)
}

/// Writes the child's failure report to `ready` and exits [`EXIT_CHILD_FAILED`].
/// Async-signal-safe.
fn child_fail(ready: RawFd, stage: ChildStage) -> ! {
    let report = child_record(stage, Errno::last_raw());
    // SAFETY: write(2) of a stack buffer and _exit(2) are async-signal-safe; the result of
    // write is irrelevant since we exit either way.
    unsafe {
        libc::write(ready, report.as_ptr().cast(), report.len());
        libc::_exit(EXIT_CHILD_FAILED)
    }
}

/// The child's side: stdio onto 0/1/2, keep the ready pipe across exec, exec
/// `container-init`. Never returns. Async-signal-safe only.
fn child_exec(plan: &ChildPlan<'_>) -> ! {
    let [stdin, stdout, stderr, ready] = plan.fds;
    // SAFETY: dup2/fcntl/execve on descriptors and NUL-terminated arrays prepared before the
    // clone and alive in this copy of the address space; all are async-signal-safe. Every
    // source descriptor is above 2, so no dup2 overwrites one still to be copied.
    unsafe {
        // The container dies with the supervisor: when the thread that cloned it exits (the
        // event-loop thread, which spawns every container and lives as long as the
        // supervisor), the kernel sends SIGKILL to container-init and so ends its whole PID
        // namespace. No container outlives the one process that tracks it and reads its output.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
            child_fail(ready, ChildStage::DeathSignal);
        }
        if libc::dup2(stdout, 1) < 0 || libc::dup2(stderr, 2) < 0 || libc::dup2(stdin, 0) < 0 {
            child_fail(ready, ChildStage::Dup2);
        }
        if libc::fcntl(ready, libc::F_SETFD, 0) < 0 {
            child_fail(ready, ChildStage::ReadyFd);
        }
        let path = *plan.argv.as_ptr();
        libc::execve(path, plan.argv.as_ptr(), plan.envp.as_ptr());
    }
    child_fail(ready, ChildStage::Exec)
}

/// Clones a child in new PID, UTS and mount namespaces that execs `container-init` per
/// `plan`. Returns the child's host pid; failures after the clone are reported on the ready
/// pipe.
///
/// # Errors
/// The errno of `clone3`/`clone` (e.g. `EPERM` without `CAP_SYS_ADMIN`, `EAGAIN`).
pub fn clone_init(plan: &ChildPlan<'_>) -> Result<Pid, Errno> {
    match raw_clone()? {
        0 => child_exec(plan),
        pid => Ok(Pid::from_raw(pid)),
    }
}
