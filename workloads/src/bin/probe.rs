//! `probe`: a test helper that reports what it sees inside a container, one `key=value` per
//! line, and offers behaviours the tests need:
//!
//! - `probe [info]`: `pid`, `ppid`, `pgid`, `sid`, `uid`, `nice`, `hostname`, `cwd`, `pids`
//!   (every pid in `/proc`), `fds` (open descriptors), `sigblk`/`sigign` (hex masks), one
//!   `env=K=V` per variable and one `mount=<source> <target> <fstype>` per mount;
//! - `probe orphan`: a child forks a grandchild that outlives it; reports whether the orphan
//!   was reaped (`orphan_reaped=yes`) and how many zombies remain in `/proc` (`zombies=N`);
//! - `probe ignore-term`: ignores SIGTERM, prints `ignoring-term`, sleeps forever;
//! - `probe trap [children=0]`: this process and `children` forked ones wait for signals and
//!   print `trap pid=P signal=N` per signal; SIGTERM makes each exit 0 (the first process
//!   after its children);
//! - `probe spread <n> <mb>`: `n` child processes each touch `mb` MiB and print
//!   `spread pid=P mb=M`, then everybody sleeps forever;
//! - `probe thread-hog [chunk_mb=8] [sleep_ms=100] [max_mb=200]`: starts a thread that touches
//!   `chunk_mb` MiB every `sleep_ms` ms up to `max_mb` (printing `thread-hog total=<T>MB`),
//!   holds it 5 s and ends the process with status 0; the main thread prints
//!   `thread-hog leader-exit` and exits alone (`SYS_exit`), so the process runs on with an
//!   exited leader (whose `/proc/<pid>/statm` reads all zeros);
//! - `probe exit <code>`: exits with `code`;
//! - `probe escape <major> <minor> <shmid>`: tries every attack of [`workloads::escape`]
//!   (`major:minor` is the host's root disk, `shmid` a SysV segment of the host) and prints
//!   one `escape <attack> <result>` line each.

use std::collections::BTreeSet;
use workloads::{arg, say, sleep_ms, touched, MIB};

/// Signals `trap` waits for.
const TRAPPED: [libc::c_int; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGQUIT,
];

fn main() {
    let cmd = std::env::args().nth(1).unwrap_or_else(|| "info".into());
    match cmd.as_str() {
        "info" => info(),
        "orphan" => orphan(),
        "ignore-term" => ignore_term(),
        "trap" => trap(arg(1, "children", 0)),
        "spread" => spread(arg(1, "n", 2), arg(2, "mb", 8)),
        "thread-hog" => thread_hog(
            arg(1, "chunk_mb", 8),
            arg(2, "sleep_ms", 100),
            arg(3, "max_mb", 200),
        ),
        "exit" => std::process::exit(arg(1, "code", 0)),
        "escape" => workloads::escape::run(
            (arg(1, "major", 0), arg(2, "minor", 0)),
            arg(3, "shmid", -1),
        ),
        other => {
            eprintln!("probe: unknown subcommand {other:?}");
            std::process::exit(2);
        }
    }
}

/// Numeric entries of directory `dir` (pids in `/proc`, fds in `/proc/self/fd`).
fn numeric_entries(dir: &str) -> BTreeSet<i32> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn join(set: &BTreeSet<i32>) -> String {
    set.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Value of `key:` in `/proc/self/status`, trimmed.
fn status_field(key: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or("")
        .trim()
        .to_string()
}

fn info() {
    // SAFETY: these calls only read process attributes.
    let (pid, ppid, pgid, sid, uid) = unsafe {
        (
            libc::getpid(),
            libc::getppid(),
            libc::getpgid(0),
            libc::getsid(0),
            libc::getuid(),
        )
    };
    // SAFETY: getpriority only reads; -1 is a valid nice value, so errno is not consulted.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS as _, 0) };
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    // read_dir's own descriptor shows up in the listing: keep only those open now.
    let fds: BTreeSet<i32> = numeric_entries("/proc/self/fd")
        .into_iter()
        .filter(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok())
        .collect();
    say(&format!(
        "pid={pid}\nppid={ppid}\npgid={pgid}\nsid={sid}\nuid={uid}\nnice={nice}"
    ));
    say(&format!("hostname={}\ncwd={cwd}", hostname.trim()));
    say(&format!(
        "pids={}\nfds={}",
        join(&numeric_entries("/proc")),
        join(&fds)
    ));
    say(&format!(
        "sigblk={}\nsigign={}",
        status_field("SigBlk"),
        status_field("SigIgn")
    ));
    for (k, v) in std::env::vars_os() {
        say(&format!(
            "env={}={}",
            k.to_string_lossy(),
            v.to_string_lossy()
        ));
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for m in mounts.lines() {
        let f: Vec<&str> = m.split_whitespace().collect();
        if f.len() >= 3 {
            say(&format!("mount={} {} {}", f[0], f[1], f[2]));
        }
    }
}

/// Forks; runs `child` in the child, which then exits 0. Returns the child's pid.
fn fork_then(child: impl FnOnce()) -> libc::pid_t {
    // SAFETY: probe is single-threaded, so the child may run ordinary code after fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        eprintln!("probe: fork: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    if pid == 0 {
        child();
        // SAFETY: leaves the child without running the parent's exit handlers twice.
        unsafe { libc::_exit(0) };
    }
    pid
}

/// Number of processes in `/proc` in state Z.
fn zombies() -> usize {
    numeric_entries("/proc")
        .iter()
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            stat.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('Z'))
                == Some(true)
        })
        .count()
}

fn orphan() {
    let (rd, wr) = {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid two-element array for pipe(2).
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            std::process::exit(1);
        }
        (fds[0], fds[1])
    };
    let child = fork_then(|| {
        let grandchild = fork_then(|| sleep_ms(300));
        let bytes = grandchild.to_ne_bytes();
        // SAFETY: writes 4 bytes from a live buffer to our pipe.
        unsafe { libc::write(wr, bytes.as_ptr().cast(), bytes.len()) };
    });
    let mut bytes = [0u8; 4];
    // SAFETY: reads 4 bytes into a live buffer from our pipe; waitpid on our own child.
    unsafe {
        libc::read(rd, bytes.as_mut_ptr().cast(), bytes.len());
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    let grandchild = i32::from_ne_bytes(bytes);
    say(&format!("orphan={grandchild}"));
    // The grandchild exits after 300 ms; PID 1 must reap it.
    let mut reaped = false;
    for _ in 0..50 {
        sleep_ms(100);
        if !std::path::Path::new(&format!("/proc/{grandchild}")).exists() {
            reaped = true;
            break;
        }
    }
    say(&format!(
        "orphan_reaped={}",
        if reaped { "yes" } else { "no" }
    ));
    say(&format!("zombies={}", zombies()));
}

fn ignore_term() {
    // SAFETY: installs SIG_IGN for SIGTERM; no handler code runs.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    say("ignoring-term");
    loop {
        sleep_ms(60_000);
    }
}

fn trap(children: usize) {
    // SAFETY: builds and applies a signal mask from valid, initialised sigset_t values.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in TRAPPED {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let serve = move || {
        // SAFETY: getpid only reads.
        let pid = unsafe { libc::getpid() };
        say(&format!("trap ready pid={pid}"));
        loop {
            let mut sig = 0;
            // SAFETY: `set` is a valid sigset_t and `sig` a valid out-pointer.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            say(&format!("trap pid={pid} signal={sig}"));
            if sig == libc::SIGTERM {
                return;
            }
        }
    };
    let kids: Vec<libc::pid_t> = (0..children).map(|_| fork_then(serve)).collect();
    serve();
    for kid in kids {
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(kid, std::ptr::null_mut(), 0) };
    }
}

fn spread(n: usize, mb: usize) {
    for _ in 0..n {
        fork_then(|| {
            let held = touched(mb * MIB);
            // SAFETY: getpid only reads.
            say(&format!("spread pid={} mb={mb}", unsafe { libc::getpid() }));
            loop {
                std::hint::black_box(&held);
                sleep_ms(60_000);
            }
        });
    }
    loop {
        sleep_ms(60_000);
    }
}

fn thread_hog(chunk_mb: usize, pause: u64, max_mb: usize) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(());
        let mut held = Vec::new();
        let mut total = 0;
        while total < max_mb {
            held.push(touched(chunk_mb * MIB));
            total += chunk_mb;
            say(&format!("thread-hog total={total}MB"));
            sleep_ms(pause);
        }
        sleep_ms(5000);
        std::process::exit(0);
    });
    // The leader goes only once the thread runs.
    let _ = rx.recv();
    say("thread-hog leader-exit");
    loop {
        // SAFETY: SYS_exit ends the calling thread only; the other thread owns all it uses.
        unsafe { libc::syscall(libc::SYS_exit, 0) };
    }
}
