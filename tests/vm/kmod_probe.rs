//! `kmod-probe`: drives `/dev/container_monitor` directly, for the VM tests.
//!
//! Built by `tests/vm/run.sh` with plain `rustc` (std only; no Cargo package) and run inside the
//! VM as root. It compiles the ABI from `proto/src/kmod_abi.rs`, the file the module compiles
//! too. Subcommands (exit status 0 = every check passed; each check prints `ok ...` or
//! `FAIL ...`):
//!
//! - `errnos`: every bad ioctl and read returns its documented errno; also EPERM without
//!   CAP_SYS_ADMIN (a child drops it, then opens).
//! - `hog <workers> <step-mib> <soft-mib> <hard-mib>`: a PID-namespace init whose `workers`
//!   child processes (or itself, when 0) each grow by `step-mib` every 100 ms; expects one
//!   SOFT and one HARD record, the init killed by SIGKILL, and the namespace emptied.
//! - `vmshare <interval-ms>`: a namespace init with 24 MiB and 3 `CLONE_VM` children sharing
//!   its address space is measured as one address space (24 MiB, not 96).
//! - `gone <interval-ms>`: a namespace init that exits by itself leaves the module's list
//!   (QUERY → ENOENT, one GONE record) within one interval of its exit.
//! - `churn <count>`: `count` short-lived namespace inits registered while the scan runs;
//!   half are unregistered, half exit and are dropped by the scan.
//! - `hold <count>`: registers `count` sleeping processes, prints their pids and exits
//!   without unregistering (for rmmod with live entries).
//! - `query <pid>`: prints the module's last RSS of `pid`; exit status 3 when not registered.
//! - `watch-exit <pid> <interval-ms>`: waits until someone else's registered process `pid`
//!   exits (a zombie or gone in /proc), then checks that it leaves the module's list within
//!   one interval.
//! - `thread-hog <step-mib> <soft-mib> <hard-mib>`, `init-leader-exit <interval-ms>`,
//!   `pid-reuse <rounds>`, `file-reuse <rounds>`, `ring-overflow <count>`, `read-efault`,
//!   `rmmod-open`, `concurrent <secs>`, `many-threaded <count> <interval-ms>`: see
//!   `kmod_probe_paths.rs`.

#![allow(dead_code)]

#[path = "../../proto/src/kmod_abi.rs"]
mod abi;
#[path = "kmod_probe_paths.rs"]
mod paths;

use std::fs::{File, OpenOptions};
use std::io::{Error, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const DEVICE: &str = "/dev/container_monitor";
const O_NONBLOCK: i32 = 0o4000;
const CLONE_NEWPID: i64 = 0x2000_0000;
const SIGCHLD: i64 = 17;
const SIGKILL: i32 = 9;
const SYS_CLONE: i64 = 56;
const SYS_CAPGET: i64 = 125;
const SYS_CAPSET: i64 = 126;
const CAP_SYS_ADMIN: u32 = 21;
const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EAGAIN: i32 = 11;
const EFAULT: i32 = 14;
const EINVAL: i32 = 22;
const ENOTTY: i32 = 25;

extern "C" {
    fn ioctl(fd: i32, request: u64, ...) -> i32;
    fn syscall(number: i64, ...) -> i64;
    fn fork() -> i32;
    fn unshare(flags: i32) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn close(fd: i32) -> i32;
    fn pause() -> i32;
    fn clone(
        f: extern "C" fn(*mut std::ffi::c_void) -> i32,
        stack: *mut std::ffi::c_void,
        flags: i32,
        arg: *mut std::ffi::c_void, ...
    ) -> i32;
    fn _exit(status: i32) -> !;
}

/// Counts failed checks.
struct Checks {
    failed: u32,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool, detail: String) {
        if ok {
            println!("ok   {what}");
        } else {
            println!("FAIL {what}: {detail}");
            self.failed += 1;
        }
    }

    /// `got` is the result of an ioctl/read: Ok(()) or the errno.
    fn errno(&mut self, what: &str, got: Result<(), i32>, want: i32) {
        self.check(what, got == Err(want), format!("got {got:?}, want errno {want}"));
    }
}

fn open(nonblock: bool) -> Result<File, Error> {
    let flags = if nonblock { O_NONBLOCK } else { 0 };
    OpenOptions::new().read(true).write(true).custom_flags(flags).open(DEVICE)
}

fn raw_ioctl(dev: &File, cmd: u32, arg: usize) -> Result<(), i32> {
    // SAFETY: the kernel validates `arg` as a user pointer; bad pointers are what some checks
    // pass on purpose, and the kernel reports them as EFAULT without touching our memory.
    let ret = unsafe { ioctl(dev.as_raw_fd(), u64::from(cmd), arg) };
    if ret < 0 {
        Err(Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

fn request(pid: i32, soft: u64, hard: u64, id: &str) -> abi::MonitorRequest {
    abi::MonitorRequest {
        pid,
        soft_limit_bytes: soft,
        hard_limit_bytes: hard,
        container_id: abi::id_field(id.as_bytes()).expect("id fits"),
    }
}

fn send(dev: &File, cmd: u32, req: &abi::MonitorRequest) -> Result<(), i32> {
    let bytes = req.to_bytes();
    raw_ioctl(dev, cmd, bytes.as_ptr() as usize)
}

fn register(dev: &File, pid: i32, soft: u64, hard: u64, id: &str) -> Result<(), i32> {
    send(dev, abi::MONITOR_REGISTER, &request(pid, soft, hard, id))
}

fn unregister(dev: &File, pid: i32) -> Result<(), i32> {
    send(dev, abi::MONITOR_UNREGISTER, &request(pid, 0, 0, "x"))
}

fn query(dev: &File, pid: i32) -> Result<u64, i32> {
    let mut bytes = abi::MonitorQuery { pid, ..Default::default() }.to_bytes();
    raw_ioctl(dev, abi::MONITOR_QUERY, bytes.as_mut_ptr() as usize)?;
    Ok(abi::MonitorQuery::from_bytes(&bytes).rss_bytes)
}

/// Reads one record; `None` on EAGAIN (non-blocking file).
/// `MONITOR_QUERY_ALL` of everything, with room for `capacity` records: `(count, records
/// written)`.
fn query_all(dev: &File, capacity: u32) -> Result<(u32, Vec<abi::MonitorQuery>), i32> {
    query_since(dev, capacity, 0).map(|(count, records, _)| (count, records))
}

/// `MONITOR_QUERY_ALL` of what changed after `generation`: `(count, records written, the
/// answer's generation)`.
fn query_since(
    dev: &File,
    capacity: u32,
    generation: u64,
) -> Result<(u32, Vec<abi::MonitorQuery>, u64), i32> {
    let mut records = vec![[0u8; abi::MONITOR_QUERY_SIZE]; capacity as usize];
    let mut arg = abi::MonitorQueryAll {
        records: records.as_mut_ptr() as u64,
        capacity,
        generation,
        ..Default::default()
    }
    .to_bytes();
    raw_ioctl(dev, abi::MONITOR_QUERY_ALL, arg.as_mut_ptr() as usize)?;
    let answer = abi::MonitorQueryAll::from_bytes(&arg);
    let count = answer.count;
    let written = records
        .iter()
        .take(count.min(capacity) as usize)
        .map(abi::MonitorQuery::from_bytes)
        .collect();
    Ok((count, written, answer.generation))
}

fn read_event(dev: &mut File) -> Result<Option<abi::MonitorEvent>, i32> {
    let mut buf = [0u8; abi::MONITOR_EVENT_SIZE];
    match dev.read(&mut buf) {
        Ok(n) if n == buf.len() => Ok(Some(abi::MonitorEvent::from_bytes(&buf))),
        Ok(n) => Err(-(n as i32)),
        Err(e) if e.raw_os_error() == Some(EAGAIN) => Ok(None),
        Err(e) => Err(e.raw_os_error().unwrap_or(0)),
    }
}

/// Waits (polling a non-blocking file) for the next record, up to `timeout`.
fn next_event(dev: &mut File, timeout: Duration) -> Option<abi::MonitorEvent> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(Some(e)) = read_event(dev) {
            return Some(e);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn describe(e: &abi::MonitorEvent) -> String {
    let kind = match e.kind {
        abi::EVENT_SOFT_LIMIT => "SOFT",
        abi::EVENT_HARD_LIMIT_KILLED => "HARD",
        abi::EVENT_GONE => "GONE",
        _ => "?",
    };
    let id = abi::id_bytes(&e.container_id).unwrap_or(b"?");
    format!(
        "{kind} container={} pid={} rss={} limit={}",
        String::from_utf8_lossy(id),
        e.pid,
        e.rss_bytes,
        e.limit_bytes
    )
}

/// Forks a child running `body`, which never returns (the child `_exit`s).
fn spawn(new_pid_ns: bool, body: impl FnOnce() -> i32) -> i32 {
    let pid = if new_pid_ns {
        // SAFETY: clone without CLONE_VM and without a new stack behaves like fork(); this
        // program is single-threaded, so the child may run ordinary Rust code.
        unsafe { syscall(SYS_CLONE, CLONE_NEWPID | SIGCHLD, 0i64, 0i64, 0i64, 0i64) as i32 }
    } else {
        // SAFETY: single-threaded program.
        unsafe { fork() }
    };
    assert!(pid >= 0, "fork: {}", Error::last_os_error());
    if pid == 0 {
        let status = body();
        // SAFETY: ends the child without running the parent's destructors twice.
        unsafe { _exit(status) };
    }
    pid
}

/// Forks a child that runs `body` `depth` PID namespaces below the caller's, as `unshare -f
/// -p` does once per level: each level `unshare(CLONE_NEWPID)`s and forks the next
/// namespace's init, then waits for it. Returns the first child's pid.
fn spawn_nested(depth: usize, body: impl FnOnce() -> i32) -> i32 {
    spawn(false, move || {
        if depth == 0 {
            return body();
        }
        // SAFETY: unshare(2) takes a flag word; single-threaded program.
        if unsafe { unshare(CLONE_NEWPID as i32) } != 0 {
            return 5;
        }
        wait(spawn_nested(depth - 1, body))
    })
}

fn sleep_forever() -> i32 {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Returns the wait status of `pid` (blocking).
fn wait(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: `status` is a valid out pointer.
    unsafe { waitpid(pid, &mut status, 0) };
    status
}

fn kill_and_reap(pid: i32) {
    // SAFETY: plain kill(2) of our own child.
    unsafe { kill(pid, SIGKILL) };
    wait(pid);
}

/// Touches `mib` MiB of fresh anonymous memory and keeps it.
fn grow(keep: &mut Vec<Vec<u8>>, mib: usize) {
    let mut block = Vec::with_capacity(mib << 20);
    block.resize(mib << 20, 0x5a);
    keep.push(block);
}

fn errnos() -> u32 {
    let mut c = Checks { failed: 0 };
    let dev = open(true).expect("open device");
    let child = spawn(false, sleep_forever);
    let mib = 1u64 << 20;

    c.errno("unknown command", raw_ioctl(&dev, 0x1234, 0), ENOTTY);
    let wrong_size = abi::ioc(1, abi::MONITOR_IOC_MAGIC, 1, 40);
    c.errno("REGISTER with another size", raw_ioctl(&dev, wrong_size, 0), ENOTTY);
    c.errno("REGISTER bad pointer", raw_ioctl(&dev, abi::MONITOR_REGISTER, 16), EFAULT);
    c.errno("UNREGISTER bad pointer", raw_ioctl(&dev, abi::MONITOR_UNREGISTER, 16), EFAULT);
    c.errno("QUERY bad pointer", raw_ioctl(&dev, abi::MONITOR_QUERY, 16), EFAULT);
    c.errno("soft > hard", register(&dev, child, 2 * mib, mib, "bad"), EINVAL);
    c.errno("pid 0", register(&dev, 0, mib, mib, "bad"), EINVAL);
    c.errno("pid < 0", register(&dev, -4, mib, mib, "bad"), EINVAL);
    let mut no_nul = request(child, mib, mib, "x");
    no_nul.container_id = [b'a'; abi::CONTAINER_ID_LEN];
    c.errno("id without NUL", send(&dev, abi::MONITOR_REGISTER, &no_nul), EINVAL);
    c.errno("empty id", register(&dev, child, mib, mib, ""), EINVAL);
    c.errno("no such process", register(&dev, 0x3fff_fff0, mib, mib, "none"), ESRCH);
    c.errno("unregister unknown pid", unregister(&dev, child), ENOENT);
    c.errno("query unknown pid", query(&dev, child).map(drop), ENOENT);
    c.check(
        "register",
        register(&dev, child, 64 * mib, 128 * mib, "probe").is_ok(),
        String::new(),
    );
    c.errno("duplicate pid", register(&dev, child, mib, mib, "dup"), EINVAL);
    c.check("query registered", query(&dev, child).is_ok(), String::new());
    c.errno("QUERY_ALL bad pointer", raw_ioctl(&dev, abi::MONITOR_QUERY_ALL, 16), EFAULT);
    // The answer comes from the last scan: wait for one that saw the new entry.
    let mut all = query_all(&dev, 4);
    for _ in 0..30 {
        if matches!(&all, Ok((1, _))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        all = query_all(&dev, 4);
    }
    let one = matches!(&all, Ok((1, r)) if r.len() == 1 && r[0].pid == child);
    c.check("QUERY_ALL lists this file's entry", one, format!("{all:?}"));
    // The child sleeps: its RSS does not change, so nothing is new after the last answer.
    let since = query_since(&dev, 4, 0).map(|(_, _, g)| g).unwrap_or(0);
    let news = query_since(&dev, 4, since);
    let quiet = since > 0 && matches!(&news, Ok((0, r, _)) if r.is_empty());
    c.check("QUERY_ALL since the last answer: nothing new", quiet, format!("{since} {news:?}"));
    // (Only now is there a record to write.)
    let bad = abi::MonitorQueryAll { records: 16, capacity: 4, ..Default::default() };
    let mut bad_records = bad.to_bytes();
    let got = raw_ioctl(&dev, abi::MONITOR_QUERY_ALL, bad_records.as_mut_ptr() as usize);
    c.errno("QUERY_ALL bad records pointer", got, EFAULT);

    let counted = matches!(&query_all(&dev, 0), Ok((1, r)) if r.is_empty());
    c.check("QUERY_ALL without room only counts", counted, String::new());
    let other = open(true).expect("open device");
    let none = query_all(&other, 4);
    c.check(
        "QUERY_ALL of another file is empty",
        matches!(&none, Ok((0, r)) if r.is_empty()),
        format!("{none:?}"),
    );
    let mut small = [0u8; 8];
    let got = (&dev).read(&mut small).map(drop).map_err(|e| e.raw_os_error().unwrap_or(0));
    c.errno("read shorter than a record", got, EINVAL);
    let mut rec = [0u8; abi::MONITOR_EVENT_SIZE];
    let got = (&dev).read(&mut rec).map(drop).map_err(|e| e.raw_os_error().unwrap_or(0));
    c.errno("non-blocking read of an empty queue", got, EAGAIN);
    c.check("unregister", unregister(&dev, child).is_ok(), String::new());
    c.errno("unregister twice", unregister(&dev, child), ENOENT);
    kill_and_reap(child);

    // EPERM: a child drops CAP_SYS_ADMIN (effective and permitted) and opens; uid 0 still
    // owns the 0600 node, so only the module's capability check can refuse it.
    let opener = spawn(false, || {
        let mut hdr = [0x2008_0522u32, 0];
        let mut data = [0u32; 6];
        // SAFETY: capget/capset with a v3 header and two data words, as capabilities(7).
        unsafe {
            syscall(SYS_CAPGET, hdr.as_mut_ptr(), data.as_mut_ptr());
            data[0] &= !(1 << CAP_SYS_ADMIN);
            data[1] &= !(1 << CAP_SYS_ADMIN);
            if syscall(SYS_CAPSET, hdr.as_mut_ptr(), data.as_mut_ptr()) != 0 {
                return 2;
            }
        }
        match open(true) {
            Err(e) if e.raw_os_error() == Some(EPERM) => 0,
            _ => 1,
        }
    });
    let status = wait(opener);
    c.check("open without CAP_SYS_ADMIN", status == 0, format!("child status {status:#x}"));

    // Only processes: not a kernel thread (kthreadd is pid 2), not another thread's id.
    c.errno("kernel thread", register(&dev, 2, mib, mib, "kthread"), EINVAL);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: gettid(2) takes no argument.
        let _ = tx.send(unsafe { syscall(186) } as i32);
        sleep_forever()
    });
    let tid = rx.recv().unwrap_or(0);
    c.errno("thread id", register(&dev, tid, mib, mib, "thread"), EINVAL);

    // A file unregisters only what it registered.
    let owner = spawn_sleeper_after_threads();
    c.check("register", register(&dev, owner, mib, mib, "owned").is_ok(), String::new());
    c.errno("unregister from another file", unregister(&other, owner), ENOENT);
    c.check("still registered", query(&dev, owner).is_ok(), String::new());
    c.check("unregister from its file", unregister(&dev, owner).is_ok(), String::new());
    // SAFETY: kill(2) of our own child; reaped below.
    unsafe { kill(owner, SIGKILL) };
    wait(owner);
    c.failed
}

/// A sleeping child forked once this program has threads: it only calls `pause(2)`, which is
/// async-signal-safe.
fn spawn_sleeper_after_threads() -> i32 {
    // SAFETY: the child calls only pause(2) and never returns.
    let pid = unsafe { fork() };
    if pid == 0 {
        loop {
            // SAFETY: pause(2) only sleeps.
            unsafe { pause() };
        }
    }
    pid
}

/// A container over its limits: its init grows (no workers, `nested` 0), or `workers` child
/// processes grow, each `nested` PID namespaces below the container's.
fn hog(workers: usize, nested: usize, step_mib: usize, soft_mib: u64, hard_mib: u64) -> u32 {
    let mut c = Checks { failed: 0 };
    let mut dev = open(true).expect("open device");
    let init = spawn(true, move || {
        // PID 1 of a new namespace: start the workers (or grow itself), then idle.
        let body = move || {
            let mut keep = Vec::new();
            for _ in 0..1000 {
                grow(&mut keep, step_mib);
                std::thread::sleep(Duration::from_millis(100));
            }
            0
        };
        if workers == 0 && nested == 0 {
            return body();
        }
        for _ in 0..workers.max(1) {
            spawn_nested(nested, body);
        }
        sleep_forever()
    });
    let (soft, hard) = (soft_mib << 20, hard_mib << 20);
    let id = format!("probe-hog-{workers}-{nested}");
    c.check("register hog", register(&dev, init, soft, hard, &id).is_ok(), String::new());
    let first = next_event(&mut dev, Duration::from_secs(60));
    let second = next_event(&mut dev, Duration::from_secs(60));
    for e in [&first, &second].into_iter().flatten() {
        println!("     record: {}", describe(e));
    }
    let is = |e: &Option<abi::MonitorEvent>, kind, limit| {
        e.is_some_and(|e| e.kind == kind && e.pid == init && e.limit_bytes == limit && e.rss_bytes > limit)
    };
    c.check("SOFT record first", is(&first, abi::EVENT_SOFT_LIMIT, soft), format!("{first:?}"));
    c.check("HARD record next", is(&second, abi::EVENT_HARD_LIMIT_KILLED, hard), format!("{second:?}"));
    let status = wait(init);
    c.check("init killed by SIGKILL", status & 0x7f == SIGKILL, format!("status {status:#x}"));
    c.errno("entry removed after HARD", query(&dev, init).map(drop), ENOENT);
    let extra = next_event(&mut dev, Duration::from_millis(600));
    c.check("no further records", extra.is_none(), format!("{extra:?}"));
    c.failed
}

extern "C" fn idle(_: *mut std::ffi::c_void) -> i32 {
    loop {
        // SAFETY: pause(2) only sleeps.
        unsafe { pause() };
    }
}

fn vmshare(interval_ms: u64) -> u32 {
    const CLONE_VM: i32 = 0x100;
    let mut c = Checks { failed: 0 };
    let mut dev = open(true).expect("open device");
    let init = spawn(true, || {
        let mut keep = Vec::new();
        grow(&mut keep, 24);
        for _ in 0..3 {
            let mut stack = vec![0u8; 64 << 10];
            // SAFETY: the stack stays allocated (leaked) for the child's life; `idle` touches
            // nothing of ours.
            let top = unsafe { stack.as_mut_ptr().add(stack.len()) };
            std::mem::forget(stack);
            // SAFETY: glibc's clone(3) runs `idle` on `top` in a child that shares our memory.
            let pid = unsafe {
                clone(idle, top.cast(), CLONE_VM | SIGCHLD as i32, std::ptr::null_mut())
            };
            if pid < 0 {
                return 1;
            }
        }
        sleep_forever()
    });
    let (soft, hard) = (40 << 20, 1 << 30);
    c.check("register", register(&dev, init, soft, hard, "vmshare").is_ok(), String::new());
    std::thread::sleep(Duration::from_millis(interval_ms * 4 + 400));
    let rss = query(&dev, init).unwrap_or(0);
    c.check(
        &format!("shared address space counted once (rss {} MiB)", rss >> 20),
        (24 << 20..soft).contains(&rss),
        "want 24..40 MiB".into(),
    );
    let e = read_event(&mut dev);
    c.check("no SOFT record", matches!(e, Ok(None)), format!("{e:?}"));
    c.check("unregister", unregister(&dev, init).is_ok(), String::new());
    kill_and_reap(init);
    c.failed
}

fn gone(interval_ms: u64) -> u32 {
    let mut c = Checks { failed: 0 };
    let mut dev = open(true).expect("open device");
    let init = spawn(true, || {
        std::thread::sleep(Duration::from_millis(300));
        0
    });
    c.check("register", register(&dev, init, 1 << 30, 1 << 30, "short").is_ok(), String::new());
    let status = wait(init);
    let exited = Instant::now();
    c.check("exited by itself", status == 0, format!("status {status:#x}"));
    while query(&dev, init).is_ok() && exited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = exited.elapsed();
    // One interval, plus scheduling slack under TCG emulation.
    let limit = Duration::from_millis(interval_ms + 150);
    c.check(
        "gone from the list within one interval",
        took <= limit,
        format!("took {took:?}, limit {limit:?}"),
    );
    let e = next_event(&mut dev, Duration::from_secs(1));
    if let Some(e) = &e {
        println!("     record: {}", describe(e));
    }
    c.check(
        "GONE record",
        e.is_some_and(|e| e.kind == abi::EVENT_GONE && e.pid == init),
        format!("{e:?}"),
    );
    c.failed
}

/// Whether `pid` has exited: gone from /proc, or a zombie.
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

fn watch_exit(pid: i32, interval_ms: u64) -> u32 {
    let mut c = Checks { failed: 0 };
    let dev = open(true).expect("open device");
    // The supervisor registers asynchronously (its monitor thread), just after the start.
    let start = Instant::now();
    while query(&dev, pid).is_err() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(2));
    }
    c.check("registered", query(&dev, pid).is_ok(), format!("pid {pid}"));
    let start = Instant::now();
    while !exited(pid) && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let exit = Instant::now();
    while query(&dev, pid).is_ok() && exit.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = exit.elapsed();
    let limit = Duration::from_millis(interval_ms + 150);
    c.check(
        &format!("gone from the list {} ms after its exit", took.as_millis()),
        took <= limit,
        format!("limit {limit:?}"),
    );
    c.failed
}

fn churn(count: usize) -> u32 {
    let mut c = Checks { failed: 0 };
    let dev = open(true).expect("open device");
    let mut registered = 0;
    let mut live = Vec::new();
    for i in 0..count {
        let init = spawn(true, move || {
            let mut keep = Vec::new();
            grow(&mut keep, 1);
            std::thread::sleep(Duration::from_millis(20 + (i as u64 % 7) * 30));
            0
        });
        if register(&dev, init, 1 << 30, 1 << 31, &format!("churn-{i}")).is_ok() {
            registered += 1;
        }
        live.push(init);
        if live.len() == 20 || i + 1 == count {
            for (j, pid) in live.drain(..).enumerate() {
                if j % 2 == 0 {
                    let _ = unregister(&dev, pid);
                }
                wait(pid);
            }
        }
    }
    c.check("all registered", registered == count, format!("{registered} of {count}"));
    c.failed
}

fn hold(count: usize) -> u32 {
    // The sleepers outlive this program: fork them before opening the device (an inherited
    // descriptor would pin the module) and let go of the stdout a shell may be reading.
    let pids: Vec<i32> = (0..count)
        .map(|_| {
            spawn(false, || {
                for fd in 0..3 {
                    // SAFETY: closing our own standard descriptors.
                    unsafe { close(fd) };
                }
                sleep_forever()
            })
        })
        .collect();
    let dev = open(true).expect("open device");
    let mut failed = 0;
    for (i, &pid) in pids.iter().enumerate() {
        if register(&dev, pid, 1 << 30, 1 << 31, &format!("held-{i}")).is_err() {
            failed += 1;
        }
        println!("{pid}");
    }
    failed
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
    let failed = match args.first().map(String::as_str) {
        Some("errnos") => errnos(),
        Some("hog") => hog(num(1) as usize, 0, num(2) as usize, num(3), num(4)),
        Some("hog-nested") => hog(1, num(1) as usize, num(2) as usize, num(3), num(4)),
        Some("gone") => gone(num(1)),
        Some("vmshare") => vmshare(num(1)),
        Some("churn") => churn(num(1) as usize),
        Some("hold") => hold(num(1) as usize),
        Some("watch-exit") => watch_exit(num(1) as i32, num(2)),
        Some("thread-hog") => paths::thread_hog(num(1) as usize, num(2), num(3)),
        Some("init-leader-exit") => paths::init_leader_exit(num(1)),
        Some("pid-reuse") => paths::pid_reuse(num(1) as usize),
        Some("file-reuse") => paths::file_reuse(num(1) as usize),
        Some("ring-overflow") => paths::ring_overflow(num(1) as usize),
        Some("read-efault") => paths::read_efault(),
        Some("rmmod-open") => paths::rmmod_open(),
        Some("concurrent") => paths::concurrent(num(1)),
        Some("many-threaded") => paths::many_threaded(num(1) as usize, num(2)),
        Some("query") => {
            let dev = open(true).expect("open device");
            match query(&dev, num(1) as i32) {
                Ok(rss) => println!("{rss}"),
                Err(ENOENT) => return ExitCode::from(3),
                Err(e) => {
                    eprintln!("MONITOR_QUERY: errno {e}");
                    return ExitCode::FAILURE;
                }
            }
            0
        }
        _ => {
            eprintln!("usage: kmod-probe errnos|hog W STEP SOFT HARD|hog-nested DEPTH STEP SOFT HARD|vmshare MS|gone MS|churn N|hold N|query PID|watch-exit PID MS|thread-hog STEP SOFT HARD|init-leader-exit MS|pid-reuse N|file-reuse N|ring-overflow N|read-efault|rmmod-open|concurrent SECS|many-threaded N MS");
            return ExitCode::from(2);
        }
    };
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
