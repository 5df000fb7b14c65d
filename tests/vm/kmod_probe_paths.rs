//! `kmod-probe` cases for the paths that must end clean (a module of `kmod_probe.rs`, built
//! with it by `tests/vm/run.sh`): processes whose leader exited, pid and file-id reuse, the
//! event ring's overflow and faults, unload with an open file, concurrent ioctls during
//! scans, and many multi-threaded processes at once. Each returns its failed checks.

use super::*;
use std::io::Write;

const SYS_EXIT: i64 = 60;
const SYS_CLONE3: i64 = 435;
const EEXIST: i32 = 17;
const PROT_READ_WRITE: i32 = 0x3;
const MAP_PRIVATE_ANONYMOUS: i32 = 0x22;

extern "C" {
    fn read(fd: i32, buf: *mut u8, count: usize) -> isize;
    fn mmap(addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32, off: i64) -> *mut u8;
    fn munmap(addr: *mut u8, len: usize) -> i32;
}

/// Ends the calling thread only (`SYS_exit`, not `exit_group`): the process lives on in its
/// other threads, with an exited leader when called from the main thread.
fn exit_thread() -> ! {
    loop {
        // SAFETY: SYS_exit ends this thread; other threads own nothing on its stack.
        unsafe { syscall(SYS_EXIT, 0i64) };
    }
}

/// In a new thread, grows by `step_mib` every 100 ms up to `max_mib` and holds it for 10 s,
/// then ends the process; the calling (main) thread exits at once.
fn grow_in_thread_then_exit_leader(step_mib: usize, max_mib: usize) -> ! {
    std::thread::spawn(move || {
        let mut keep = Vec::new();
        let mut total = 0;
        while total < max_mib {
            grow(&mut keep, step_mib);
            total += step_mib;
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(10));
        std::process::exit(0);
    });
    // Let the thread start before the leader goes.
    std::thread::sleep(Duration::from_millis(50));
    exit_thread()
}

/// A container (a PID-namespace init) with one worker process whose main thread exits after
/// starting a thread that grows: the worker must still count, so SOFT, then HARD and SIGKILL.
pub fn thread_hog(step_mib: usize, soft_mib: u64, hard_mib: u64) -> u32 {
    let mut c = Checks { failed: 0 };
    let mut dev = open(true).expect("open device");
    let max_mib = (hard_mib as usize * 4).min(200);
    let init = spawn(true, move || {
        spawn(false, move || grow_in_thread_then_exit_leader(step_mib, max_mib));
        sleep_forever()
    });
    let (soft, hard) = (soft_mib << 20, hard_mib << 20);
    c.check("register", register(&dev, init, soft, hard, "thread-hog").is_ok(), String::new());
    let first = next_event(&mut dev, Duration::from_secs(20));
    let second = next_event(&mut dev, Duration::from_secs(20));
    for e in [&first, &second].into_iter().flatten() {
        println!("     record: {}", describe(e));
    }
    let is = |e: &Option<abi::MonitorEvent>, kind| e.is_some_and(|e| e.kind == kind && e.pid == init);
    c.check("SOFT record", is(&first, abi::EVENT_SOFT_LIMIT), format!("{first:?}"));
    c.check("HARD record", is(&second, abi::EVENT_HARD_LIMIT_KILLED), format!("{second:?}"));
    if second.is_none() {
        kill_and_reap(init);
    } else {
        let status = wait(init);
        c.check("init killed by SIGKILL", status & 0x7f == SIGKILL, format!("status {status:#x}"));
    }
    c.failed
}

/// A registered namespace init whose main thread exits while another thread holds 24 MiB:
/// still registered (no GONE) and measured (24 MiB or more) for several scans; GONE once the
/// whole process is killed.
pub fn init_leader_exit(interval_ms: u64) -> u32 {
    let mut c = Checks { failed: 0 };
    let mut dev = open(true).expect("open device");
    let init = spawn(true, || {
        std::thread::spawn(|| {
            let mut keep = Vec::new();
            grow(&mut keep, 24);
            sleep_forever()
        });
        std::thread::sleep(Duration::from_millis(100));
        exit_thread()
    });
    c.check("register", register(&dev, init, 1 << 30, 1 << 31, "leader-exit").is_ok(), String::new());
    std::thread::sleep(Duration::from_millis(interval_ms * 5 + 300));
    let rss = query(&dev, init);
    c.check(
        "still registered after its leader exited",
        rss.is_ok(),
        format!("{rss:?}"),
    );
    c.check(
        &format!("measured from a live thread ({} MiB)", rss.unwrap_or(0) >> 20),
        rss.is_ok_and(|r| r >= 24 << 20),
        "want 24 MiB or more".into(),
    );
    let early = read_event(&mut dev);
    c.check("no record while it runs", matches!(early, Ok(None)), format!("{early:?}"));
    kill_and_reap(init);
    let e = next_event(&mut dev, Duration::from_secs(3));
    c.check(
        "GONE once killed",
        e.is_some_and(|e| e.kind == abi::EVENT_GONE && e.pid == init),
        format!("{e:?}"),
    );
    c.failed
}

/// `clone3(CLONE_NEWPID)` with `set_tid`: a namespace init whose host pid is `nr` (the child
/// sleeps). `Err(errno)` when the number is taken or the call fails.
fn spawn_init_as(nr: i32) -> Result<i32, i32> {
    let set_tid: [i32; 2] = [1, nr];
    let mut args = [0u64; 11];
    args[0] = CLONE_NEWPID as u64;
    args[4] = SIGCHLD as u64;
    args[8] = set_tid.as_ptr() as u64;
    args[9] = 2;
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork(); the program is
    // single-threaded here, so the child may run ordinary Rust code.
    let pid = unsafe { syscall(SYS_CLONE3, args.as_mut_ptr(), std::mem::size_of_val(&args)) };
    if pid < 0 {
        return Err(Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    if pid == 0 {
        sleep_forever();
        // SAFETY: ends the child.
        unsafe { _exit(0) };
    }
    Ok(pid as i32)
}

/// A pid number reused at once (within a scan interval, as a small `pid_max` makes likely):
/// a namespace init is registered, killed and reaped, and a new one gets its number
/// (`clone3` `set_tid`) and is registered before the scan drops the old entry.
pub fn pid_reuse(rounds: usize) -> u32 {
    let mut c = Checks { failed: 0 };
    let dev = open(true).expect("open device");
    let mut reused = 0;
    let mut registered = 0;
    for round in 0..rounds {
        let old = spawn(true, sleep_forever);
        if register(&dev, old, 1 << 30, 1 << 31, "reuse-old").is_err() {
            c.check("register the first process", false, format!("round {round}"));
            kill_and_reap(old);
            continue;
        }
        kill_and_reap(old);
        let new = match spawn_init_as(old) {
            Ok(pid) => pid,
            Err(EEXIST) => {
                let _ = unregister(&dev, old);
                continue;
            }
            Err(e) => {
                c.check("clone3 with set_tid", false, format!("errno {e}"));
                let _ = unregister(&dev, old);
                break;
            }
        };
        reused += 1;
        let got = register(&dev, new, 1 << 30, 1 << 31, "reuse-new");
        if got.is_ok() {
            registered += 1;
        } else {
            println!("     round {round}: REGISTER of reused pid {new}: {got:?}");
        }
        // The new process is the one queried, and unregistered by its id.
        let by_id = send(&dev, abi::MONITOR_UNREGISTER, &request(new, 0, 0, "reuse-new"));
        if got.is_ok() && by_id.is_err() {
            c.check("unregister the new entry by its id", false, format!("{by_id:?}"));
        }
        let _ = unregister(&dev, old);
        kill_and_reap(new);
    }
    c.check(
        &format!("reused pids registered ({registered} of {reused})"),
        reused > 0 && registered == reused,
        String::new(),
    );
    c.failed
}

/// Files opened after a closed one never see its entries: file A registers, waits for a scan
/// that lists it, unregisters and closes; file B, opened right after (its queue may take A's
/// address), lists nothing.
pub fn file_reuse(rounds: usize) -> u32 {
    let mut c = Checks { failed: 0 };
    let child = spawn(false, sleep_forever);
    let mut foreign = 0;
    for _ in 0..rounds {
        let a = open(true).expect("open device");
        let _ = register(&a, child, 1 << 30, 1 << 31, "file-a");
        let start = Instant::now();
        while !matches!(query_all(&a, 4), Ok((1, _))) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = unregister(&a, child);
        drop(a);
        let b = open(true).expect("open device");
        if let Ok((n, _)) = query_all(&b, 4) {
            foreign += n;
        }
    }
    c.check("a new file lists none of a closed file's entries", foreign == 0, format!("{foreign} listed"));
    kill_and_reap(child);
    c.failed
}

/// Forks `n` sleeping processes (plain, not namespace inits).
fn sleepers(n: usize) -> Vec<i32> {
    (0..n).map(|_| spawn(false, sleep_forever)).collect()
}

/// `pending_events` of a file (from `MONITOR_QUERY_ALL`).
fn pending(dev: &File) -> u32 {
    let mut arg = abi::MonitorQueryAll::default().to_bytes();
    match raw_ioctl(dev, abi::MONITOR_QUERY_ALL, arg.as_mut_ptr() as usize) {
        Ok(()) => abi::MonitorQueryAll::from_bytes(&arg).pending_events,
        Err(_) => 0,
    }
}

/// Waits until `dev` has at least `n` records pending, up to `timeout`.
fn wait_pending(dev: &File, n: u32, timeout: Duration) -> u32 {
    let start = Instant::now();
    let mut got = pending(dev);
    while got < n && start.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(20));
        got = pending(dev);
    }
    got
}

/// More GONE records than the ring holds: the reader gets one LOST record with the count of
/// the dropped ones, then the ring's records.
pub fn ring_overflow(count: usize) -> u32 {
    let mut c = Checks { failed: 0 };
    let mut dev = open(true).expect("open device");
    let pids = sleepers(count);
    for (i, &pid) in pids.iter().enumerate() {
        let _ = register(&dev, pid, 1 << 30, 1 << 31, &format!("ovf-{i}"));
    }
    for &pid in &pids {
        kill_and_reap(pid);
    }
    let ring = 256;
    let waiting = wait_pending(&dev, ring + 1, Duration::from_secs(10));
    c.check("pending counts the LOST record", waiting == ring + 1, format!("{waiting}"));
    let mut lost = 0;
    let mut gone = 0;
    let mut first_kind = 0;
    // The scan may still be finding the last exits while the full ring is read: read until
    // every record is accounted for (read or counted lost), or 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        while let Ok(Some(e)) = read_event(&mut dev) {
            if first_kind == 0 {
                first_kind = e.kind;
            }
            match e.kind {
                abi::EVENT_LOST => lost += e.rss_bytes,
                abi::EVENT_GONE => gone += 1,
                _ => {}
            }
        }
        if gone + lost >= count as u64 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("     {gone} GONE records, {lost} reported lost");
    c.check("LOST comes first", first_kind == abi::EVENT_LOST, format!("kind {first_kind}"));
    c.check(
        "every record read or counted lost",
        gone + lost == count as u64 && lost > 0 && gone >= u64::from(ring),
        format!("{gone} + {lost} != {count}"),
    );
    c.failed
}

/// A read whose copy to user space faults keeps its records: a bad buffer gets EFAULT and
/// the record stays; a buffer whose second record crosses into an unmapped page gets the
/// first record only, and the second stays.
pub fn read_efault() -> u32 {
    let mut c = Checks { failed: 0 };
    let mut dev = open(true).expect("open device");
    let pids = sleepers(2);
    for (i, &pid) in pids.iter().enumerate() {
        let _ = register(&dev, pid, 1 << 30, 1 << 31, &format!("efault-{i}"));
    }
    for &pid in &pids {
        kill_and_reap(pid);
    }
    let got = wait_pending(&dev, 2, Duration::from_secs(5));
    c.check("two GONE records pending", got == 2, format!("{got}"));
    // SAFETY: read(2) into an address that is never mapped (the kernel reports EFAULT).
    let n = unsafe { read(dev.as_raw_fd(), 16 as *mut u8, abi::MONITOR_EVENT_SIZE) };
    let errno = Error::last_os_error().raw_os_error().unwrap_or(0);
    c.check("read into a bad buffer: EFAULT", n < 0 && errno == EFAULT, format!("{n} errno {errno}"));
    c.check("records kept after EFAULT", pending(&dev) == 2, format!("{}", pending(&dev)));
    // Two pages, the second unmapped: one record fits before the hole, the next crosses it.
    let page = 4096;
    // SAFETY: a fresh private anonymous mapping, then unmapping its second page.
    let base = unsafe { mmap(std::ptr::null_mut(), 2 * page, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0) };
    // SAFETY: `base + page` is the second page of the mapping above.
    unsafe { munmap(base.add(page), page) };
    let at = page - abi::MONITOR_EVENT_SIZE - 8;
    // SAFETY: the buffer starts in the mapped page; the kernel stops at the hole.
    let n = unsafe { read(dev.as_raw_fd(), base.add(at), 2 * abi::MONITOR_EVENT_SIZE) };
    c.check(
        "read across a hole returns the whole record before it",
        n == abi::MONITOR_EVENT_SIZE as isize,
        format!("{n}"),
    );
    c.check("the other record stays", pending(&dev) == 1, format!("{}", pending(&dev)));
    let e = read_event(&mut dev);
    c.check(
        "then read",
        matches!(e, Ok(Some(e)) if e.kind == abi::EVENT_GONE),
        format!("{e:?}"),
    );
    c.failed
}

/// `rmmod` fails while a file is open, and the file still works.
pub fn rmmod_open() -> u32 {
    let mut c = Checks { failed: 0 };
    let dev = open(true).expect("open device");
    let out = std::process::Command::new("rmmod").arg("container_monitor").output();
    let refused = out.as_ref().is_ok_and(|o| !o.status.success());
    c.check("rmmod refused while a file is open", refused, format!("{out:?}"));
    c.check("the file still works", query_all(&dev, 1).is_ok(), String::new());
    c.failed
}

/// Threads hammer every ioctl and read, each on its own file and on a shared one, for
/// `secs` seconds while scans run and registered processes die: every answer is a
/// documented one.
pub fn concurrent(secs: u64) -> u32 {
    let mut c = Checks { failed: 0 };
    let pids = sleepers(24);
    let shared = std::sync::Arc::new(open(true).expect("open device"));
    // Registered processes that die during the run (their exits are scanned).
    let doomed = sleepers(8);
    for (i, &pid) in doomed.iter().enumerate() {
        let _ = register(&shared, pid, 1 << 30, 1 << 31, &format!("doomed-{i}"));
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let shared = shared.clone();
            let pids = pids.clone();
            std::thread::spawn(move || {
                let mut own = open(true).expect("open device");
                let mut odd = Vec::new();
                let mut i = t;
                while Instant::now() < deadline {
                    let pid = pids[i % pids.len()];
                    let dev: &File = if i % 3 == 0 { &shared } else { &own };
                    let results = [
                        register(dev, pid, 1 << 30, 1 << 31, &format!("conc-{t}")),
                        query(dev, pid).map(drop),
                        query_all(dev, 8).map(drop),
                        unregister(dev, pid),
                    ];
                    for r in results {
                        if let Err(e) = r {
                            if ![EINVAL, ENOENT].contains(&e) {
                                odd.push(e);
                            }
                        }
                    }
                    if let Err(e) = read_event(&mut own) {
                        odd.push(e);
                    }
                    i += 4;
                }
                odd
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(secs * 300));
    for pid in &doomed {
        // SAFETY: kill(2) of our own child (reaped below).
        unsafe { kill(*pid, SIGKILL) };
    }
    let mut odd = Vec::new();
    for w in workers {
        odd.extend(w.join().unwrap_or_else(|_| vec![-1]));
    }
    for pid in doomed.iter().chain(&pids) {
        kill_and_reap(*pid);
    }
    c.check("only documented errnos", odd.is_empty(), format!("{odd:?}"));
    c.failed
}

/// `n` processes of two threads each, registered at once (as many shared address spaces as
/// processes), one of them growing past its hard limit: every one is measured, and the
/// grower is killed at its limit.
pub fn many_threaded(n: usize, interval_ms: u64) -> u32 {
    let mut c = Checks { failed: 0 };
    let mut dev = open(true).expect("open device");
    let mut pids = Vec::with_capacity(n);
    for i in 0..n {
        pids.push(spawn(false, move || {
            let grower = i == 0;
            let t = std::thread::Builder::new().stack_size(32 << 10).spawn(move || {
                if grower {
                    let mut keep = Vec::new();
                    std::thread::sleep(Duration::from_secs(1));
                    for _ in 0..40 {
                        grow(&mut keep, 4);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                sleep_forever()
            });
            if t.is_err() {
                return 1;
            }
            sleep_forever()
        }));
    }
    let mut registered = 0;
    for (i, &pid) in pids.iter().enumerate() {
        let hard = if i == 0 { 32 << 20 } else { 1 << 31 };
        if register(&dev, pid, hard, hard, &format!("mt-{i}")).is_ok() {
            registered += 1;
        }
    }
    c.check("all registered", registered == n, format!("{registered} of {n}"));
    std::thread::sleep(Duration::from_millis(interval_ms * 4 + 500));
    let listed = query_all(&dev, n as u32 + 8);
    let measured = listed
        .as_ref()
        .map(|(_, r)| r.iter().filter(|q| q.rss_bytes > 0).count())
        .unwrap_or(0);
    c.check(
        &format!("every process measured ({measured} of {n})"),
        measured >= n - 1,
        String::new(),
    );
    let mut killed = false;
    let start = Instant::now();
    // Generous: with 1400 threads registered, a scan of the debug kernel under TCG is slow.
    while !killed && start.elapsed() < Duration::from_secs(90) {
        match next_event(&mut dev, Duration::from_secs(1)) {
            Some(e) if e.kind == abi::EVENT_HARD_LIMIT_KILLED && e.pid == pids[0] => killed = true,
            _ => {}
        }
    }
    c.check("the grower killed at its hard limit", killed, String::new());
    for &pid in &pids {
        kill_and_reap(pid);
    }
    let _ = std::io::stdout().flush();
    c.failed
}
