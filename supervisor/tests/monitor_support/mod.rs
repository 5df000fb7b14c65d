//! Test containers for the monitor tests: a process cloned into a new PID namespace (its
//! init) that forks workers, optionally shares its address space with a `CLONE_VM`
//! sibling or starts a chain of PID namespaces nested inside its own (as `unshare -f -p`
//! does), and allocates and touches memory when told to.

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

pub const MIB: usize = 1 << 20;
/// Generous bound for anything that should happen within a few ticks.
pub const DEADLINE: Duration = Duration::from_secs(30);

// Test containers: code that runs in the cloned child. Only async-signal-safe calls (raw
// system calls, no allocation), since the test process is multi-threaded.

/// What a test container does.
#[derive(Clone, Copy, Default)]
pub struct Plan {
    /// Worker processes the init forks at once; each allocates `worker_bytes` on `go`.
    pub workers: usize,
    pub worker_bytes: usize,
    /// Bytes the init allocates on `go`.
    pub init_bytes: usize,
    /// Whether the init starts a `CLONE_VM` sibling (a process sharing its address space).
    pub vm_sibling: bool,
    /// PID namespaces nested inside the container's, one inside the other (0: none). The
    /// init forks a child that `unshare(CLONE_NEWPID)`s and forks the init of the next
    /// namespace, which does the same while levels remain; the innermost allocates
    /// `nested_bytes` on `go`.
    pub nested_depth: usize,
    pub nested_bytes: usize,
}

/// Bytes touched per step, and the pause between steps.
const STEP_BYTES: usize = 4 * MIB;
const STEP_PAUSE: Duration = Duration::from_millis(20);

fn park() -> ! {
    loop {
        // SAFETY: pause has no arguments.
        unsafe { libc::pause() };
    }
}

fn child_exit(code: i32) -> ! {
    // SAFETY: ends this process without running the (multi-threaded) parent's atexit code.
    unsafe { libc::_exit(code) }
}

fn read_byte(fd: RawFd) {
    let mut b = 0u8;
    // SAFETY: reads one byte into a local.
    unsafe { libc::read(fd, (&raw mut b).cast(), 1) };
}

fn write_byte(fd: RawFd) {
    let b = 1u8;
    // SAFETY: writes one byte from a local.
    unsafe { libc::write(fd, (&raw const b).cast(), 1) };
}

/// A fresh private anonymous read-write mapping of `bytes`; ends the process on failure.
fn map_anon(bytes: usize) -> *mut u8 {
    // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        child_exit(2);
    }
    base.cast()
}

/// Maps `bytes` of anonymous memory and touches every page, `STEP_BYTES` at a time.
fn touch_memory(bytes: usize) {
    if bytes == 0 {
        return;
    }
    let base = map_anon(bytes);
    let mut offset = 0;
    while offset < bytes {
        let end = (offset + STEP_BYTES).min(bytes);
        while offset < end {
            // SAFETY: offset < bytes, inside the mapping made above.
            unsafe { base.add(offset).write_volatile(1) };
            offset += 4096;
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: STEP_PAUSE.as_nanos() as libc::c_long,
        };
        // SAFETY: sleeps; ts is a valid timespec.
        unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
    }
}

extern "C" fn sibling_main(_arg: *mut libc::c_void) -> libc::c_int {
    park()
}

/// Starts a process that shares the caller's address space (`CLONE_VM`, not a thread).
fn spawn_vm_sibling() {
    const STACK: usize = 64 * 1024;
    let stack = map_anon(STACK);
    // SAFETY: the stack top is inside the mapping and 16-byte aligned; the sibling only
    // calls pause() and never returns.
    let r = unsafe {
        libc::clone(
            sibling_main,
            stack.add(STACK).cast(),
            libc::CLONE_VM | libc::SIGCHLD,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        child_exit(4);
    }
}

/// Forks a child that enters `depth` nested PID namespaces, the innermost allocating `bytes`
/// on `go`. Each level is an `unshare(CLONE_NEWPID)` followed by a fork (the new namespace's
/// init); the process that unshared parks.
fn spawn_nested(depth: usize, bytes: usize, go: RawFd, ready: RawFd) {
    // SAFETY: the child only makes raw system calls before parking.
    match unsafe { libc::fork() } {
        0 => {
            let mut level = 0;
            while level < depth {
                // SAFETY: unshare takes a flag word; fork as above.
                if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
                    child_exit(5);
                }
                // SAFETY: as above.
                match unsafe { libc::fork() } {
                    0 => level += 1,
                    -1 => child_exit(6),
                    _ => park(),
                }
            }
            read_byte(go);
            touch_memory(bytes);
            write_byte(ready);
            park()
        }
        -1 => child_exit(1),
        _ => {}
    }
}

/// Body of the namespace's init (PID 1).
fn init_main(plan: Plan, go: RawFd, ready: RawFd) -> isize {
    for _ in 0..plan.workers {
        // SAFETY: the child only makes raw system calls before parking.
        match unsafe { libc::fork() } {
            0 => {
                read_byte(go);
                touch_memory(plan.worker_bytes);
                write_byte(ready);
                park()
            }
            -1 => child_exit(1),
            _ => {}
        }
    }
    if plan.vm_sibling {
        spawn_vm_sibling();
    }
    if plan.nested_depth > 0 {
        spawn_nested(plan.nested_depth, plan.nested_bytes, go, ready);
    }
    read_byte(go);
    touch_memory(plan.init_bytes);
    write_byte(ready);
    park()
}

/// A test container, killed and reaped on drop.
pub struct NsInit {
    pub pid: Pid,
    go: File,
    ready: File,
    reaped: bool,
}

impl NsInit {
    /// Clones the init into a new PID namespace and waits until all its processes exist.
    pub fn spawn(plan: Plan) -> Self {
        let (go_r, go_w) = nix::unistd::pipe().unwrap();
        let (ready_r, ready_w) = nix::unistd::pipe().unwrap();
        let (go_fd, ready_fd) = (go_r.as_raw_fd(), ready_w.as_raw_fd());
        let mut stack = vec![0u8; 256 * 1024];
        let cb = Box::new(move || init_main(plan, go_fd, ready_fd));
        // SAFETY: the child runs init_main, which makes only raw system calls and never
        // returns; the stack outlives the call (the child has its own copy).
        let pid = unsafe {
            nix::sched::clone(
                cb,
                &mut stack,
                CloneFlags::CLONE_NEWPID,
                Some(libc::SIGCHLD),
            )
        }
        .unwrap();
        drop((go_r, ready_w));
        let init = Self {
            pid,
            go: File::from(go_w),
            ready: File::from(ready_r),
            reaped: false,
        };
        let want = plan.workers + usize::from(plan.vm_sibling) + usize::from(plan.nested_depth > 0);
        wait_until("the container's processes to start", || {
            init.children().len() == want
        });
        if plan.nested_depth > 0 {
            wait_until("the nested namespaces to start", || {
                init.nested().len() == plan.nested_depth + 1
            });
        }
        init
    }

    pub fn raw(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Host pids of the init's children.
    pub fn children(&self) -> Vec<i32> {
        children_of(self.raw())
    }

    /// Host pids of the chain of nested namespaces (with `nested_depth` > 0): the process
    /// that unshared first, then the init of each nested namespace, the innermost last.
    pub fn nested(&self) -> Vec<i32> {
        let mut chain = Vec::new();
        // The chain starts at the init's youngest child (forked after workers and sibling);
        // the children file lists them oldest first.
        let mut next = self.children().last().copied();
        while let Some(pid) = next {
            chain.push(pid);
            next = children_of(pid).first().copied();
        }
        chain
    }

    /// Σ resident bytes of the init and its children, as `statm` says now.
    pub fn rss_sum(&self) -> u64 {
        std::iter::once(self.raw())
            .chain(self.children())
            .map(rss_of)
            .sum()
    }

    /// Lets `n` processes start allocating.
    pub fn go(&mut self, n: usize) {
        self.go.write_all(&vec![1u8; n]).unwrap();
    }

    /// Waits until `n` processes have finished allocating.
    pub fn wait_ready(&mut self, n: usize) {
        let mut buf = vec![0u8; n];
        let fd = self.ready.as_raw_fd();
        let mut got = 0;
        let deadline = Instant::now() + DEADLINE;
        while got < n {
            assert!(
                Instant::now() < deadline,
                "container did not finish allocating"
            );
            let mut pfd = [nix::poll::PollFd::new(
                // SAFETY: the fd belongs to self.ready, alive for this call.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                nix::poll::PollFlags::POLLIN,
            )];
            if nix::poll::poll(&mut pfd, 100u16).unwrap() > 0 {
                got += self.ready.read(&mut buf[got..]).unwrap();
            }
        }
    }

    /// Waits for the init to end and reaps it.
    pub fn wait(&mut self) -> WaitStatus {
        let status = waitpid(self.pid, None).unwrap();
        self.reaped = true;
        status
    }
}

impl Drop for NsInit {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// Host pids of the children of process `pid` (none when it is gone).
fn children_of(pid: i32) -> Vec<i32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Inode of the PID namespace of process `pid`.
pub fn pid_ns_of(pid: i32) -> u64 {
    let meta = std::fs::metadata(format!("/proc/{pid}/ns/pid")).unwrap();
    std::os::unix::fs::MetadataExt::ino(&meta)
}

/// Resident bytes of one process (0 when it is gone).
pub fn rss_of(pid: i32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * page_size()
}

pub fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .unwrap()
        .unwrap() as u64
}

pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until none of `pids` exists any more.
pub fn wait_gone(what: &str, pids: &[i32]) {
    wait_until(what, || {
        pids.iter()
            .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    });
}

/// A container id unique to this test run (dmesg keeps lines of earlier runs).
pub fn unique_id(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}
