//! Integration tests of the memory monitor with real processes (run as root): each test
//! container is a process cloned into a new PID namespace (its init) that allocates and
//! touches memory, possibly in several processes.

mod monitor_support;

use crossbeam_channel::Receiver;
use monitor_support::{pid_ns_of, rss_of, unique_id, wait_gone, NsInit, Plan, DEADLINE, MIB};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use std::sync::Arc;
use std::time::Duration;
use supervisor::monitor::userspace::UserspaceBackend;
use supervisor::monitor::{
    self, Backend, BackendKind, MonitorCommand, MonitorConfig, MonitorError, MonitorEvent,
    MonitorHandle, Tracked,
};

/// Tick interval of the actors under test.
const INTERVAL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------
// The actor under test.

struct Actor {
    handle: MonitorHandle,
    events: Receiver<MonitorEvent>,
    _poll: mio::Poll,
}

fn start_actor() -> Actor {
    let poll = mio::Poll::new().unwrap();
    let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
    let (tx, events) = crossbeam_channel::unbounded();
    let config = MonitorConfig {
        interval: INTERVAL,
        force: Some(BackendKind::Userspace),
        ..MonitorConfig::default()
    };
    let (handle, kind) = monitor::start(config, tx, waker).unwrap();
    assert_eq!(kind, BackendKind::Userspace);
    Actor {
        handle,
        events,
        _poll: poll,
    }
}

impl Actor {
    fn register(&self, id: &str, pid: i32, soft: u64, hard: u64) {
        self.handle.send(MonitorCommand::Register(Tracked {
            id: id.into(),
            pid,
            soft_limit_bytes: soft,
            hard_limit_bytes: hard,
        }));
    }

    /// The next event, within the deadline.
    fn next(&self) -> MonitorEvent {
        self.events
            .recv_timeout(DEADLINE)
            .expect("no monitor event before the deadline")
    }

    /// Events up to and including the first that satisfies `last`.
    fn events_until(&self, mut last: impl FnMut(&MonitorEvent) -> bool) -> Vec<MonitorEvent> {
        let mut seen = Vec::new();
        loop {
            let Ok(ev) = self.events.recv_timeout(DEADLINE) else {
                panic!("the awaited event did not come; events seen: {seen:?}");
            };
            let done = last(&ev);
            seen.push(ev);
            if done {
                return seen;
            }
        }
    }
}

/// Tracking of `ns` with both limits at `limit` bytes.
fn tracked(id: &str, ns: &NsInit, limit: u64) -> Tracked {
    Tracked {
        id: id.into(),
        pid: ns.raw(),
        soft_limit_bytes: limit,
        hard_limit_bytes: limit,
    }
}

fn is_hard(ev: &MonitorEvent) -> bool {
    matches!(ev, MonitorEvent::HardLimitKilled { .. })
}

fn is_soft(ev: &MonitorEvent) -> bool {
    matches!(ev, MonitorEvent::SoftLimit { .. })
}

fn is_rss(ev: &MonitorEvent, want: u64) -> bool {
    matches!(ev, MonitorEvent::Rss { rss_bytes, .. } if *rss_bytes == want)
}

/// The kernel log lines that end with `text`.
fn dmesg_count(text: &str) -> usize {
    let out = std::process::Command::new("dmesg").output().unwrap();
    assert!(out.status.success(), "dmesg failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(text))
        .count()
}

// ---------------------------------------------------------------------------------------

#[test]
fn hog_is_warned_once_at_soft_then_killed_at_hard() {
    let actor = start_actor();
    let id = unique_id("hog");
    let mut hog = NsInit::spawn(Plan {
        init_bytes: 256 * MIB,
        ..Plan::default()
    });
    let base = hog.rss_sum();
    let (soft, hard) = (base + 24 * MIB as u64, base + 48 * MIB as u64);
    actor.register(&id, hog.raw(), soft, hard);
    hog.go(1);

    let events = actor.events_until(is_hard);
    let softs: Vec<_> = events.iter().filter(|e| is_soft(e)).collect();
    assert_eq!(softs.len(), 1, "{events:?}");
    let soft_pos = events.iter().position(is_soft).unwrap();
    assert!(soft_pos < events.len() - 1, "soft comes before hard");
    let MonitorEvent::SoftLimit {
        id: sid,
        pid,
        rss_bytes,
        limit_bytes,
    } = softs[0]
    else {
        unreachable!()
    };
    assert_eq!((sid, *pid, *limit_bytes), (&id, hog.raw(), soft));
    assert!(*rss_bytes > soft);
    let hard_ev = events.last().unwrap();
    let MonitorEvent::HardLimitKilled {
        id: hid,
        pid,
        rss_bytes,
        limit_bytes,
    } = hard_ev
    else {
        unreachable!()
    };
    assert_eq!((hid, *pid, *limit_bytes), (&id, hog.raw(), hard));
    assert!(*rss_bytes > hard);

    assert_eq!(
        hog.wait(),
        WaitStatus::Signaled(hog.pid, Signal::SIGKILL, false)
    );

    // Exactly one line of each in the kernel log, as the events say.
    for ev in [softs[0], hard_ev] {
        assert_eq!(dmesg_count(&ev.limit_line().unwrap()), 1, "{ev:?}");
    }

    // The entry is gone: nothing more is reported for it.
    let later: Vec<_> = actor
        .events
        .recv_timeout(INTERVAL * 6)
        .into_iter()
        .collect();
    assert!(later.is_empty(), "{later:?}");
    actor.handle.shutdown();
}

#[test]
fn memory_spread_over_processes_is_summed_and_killed() {
    const WORKERS: usize = 4;
    let actor = start_actor();
    let id = unique_id("spread");
    let mut ns = NsInit::spawn(Plan {
        workers: WORKERS,
        worker_bytes: 16 * MIB,
        ..Plan::default()
    });
    let workers = ns.children();
    let base = ns.rss_sum();
    // 4 × 16 MiB in total: above the hard limit only when summed.
    let hard = base + 40 * MIB as u64;
    actor.register(&id, ns.raw(), base + 8 * MIB as u64, hard);
    let before: Vec<u64> = workers.iter().map(|&p| rss_of(p)).collect();
    ns.go(WORKERS + 1);

    let events = actor.events_until(is_hard);
    assert_eq!(events.iter().filter(|e| is_soft(e)).count(), 1);
    let Some(MonitorEvent::HardLimitKilled { rss_bytes, .. }) = events.last() else {
        unreachable!()
    };
    assert!(*rss_bytes > hard);
    // No single worker grew by more than its 16 MiB (plus a page-table margin).
    for (pid, b) in workers.iter().zip(before) {
        assert!(rss_of(*pid).saturating_sub(b) <= 17 * MIB as u64);
    }
    assert_eq!(
        ns.wait(),
        WaitStatus::Signaled(ns.pid, Signal::SIGKILL, false)
    );
    // The kernel ended the rest of the namespace with its init.
    wait_gone("the workers to be gone", &workers);
}

#[test]
fn rss_is_the_sum_over_processes() {
    let actor = start_actor();
    let id = unique_id("sum");
    let mut ns = NsInit::spawn(Plan {
        workers: 2,
        worker_bytes: 8 * MIB,
        init_bytes: 8 * MIB,
        ..Plan::default()
    });
    actor.register(&id, ns.raw(), u64::MAX / 2, u64::MAX / 2);
    ns.go(3);
    ns.wait_ready(3);
    // All three are parked now; their RSS no longer changes.
    let want = ns.rss_sum();
    assert!(want >= 24 * MIB as u64);
    let events = actor.events_until(|e| is_rss(e, want));
    // The registration's answer, then measurements only.
    assert!(matches!(
        &events[0],
        MonitorEvent::Registered { error: None, .. }
    ));
    assert!(events[1..]
        .iter()
        .all(|e| matches!(e, MonitorEvent::Rss { .. })));
}

#[test]
fn shared_address_space_is_counted_once() {
    let mut backend = UserspaceBackend::new().unwrap();
    let mut ns = NsInit::spawn(Plan {
        init_bytes: 32 * MIB,
        vm_sibling: true,
        ..Plan::default()
    });
    let sibling = ns.children()[0];
    ns.go(1);
    ns.wait_ready(1);
    let once = rss_of(ns.raw());
    assert!(once >= 32 * MIB as u64);
    assert_eq!(
        rss_of(sibling),
        once,
        "the sibling shares the init's memory"
    );
    backend
        .register(&tracked(&unique_id("vm"), &ns, u64::MAX / 2))
        .unwrap();
    // Parked, so every scan measures the same: one Rss event, then none.
    for scan in 0..4 {
        let mut out = Vec::new();
        backend.tick(&mut out);
        if scan == 0 {
            assert!(matches!(&out[..], [e] if is_rss(e, once)), "{out:?}");
        } else {
            assert!(out.is_empty(), "scan {scan}: {out:?}");
        }
    }
}

#[test]
fn memory_in_a_nested_pid_namespace_is_counted_and_killed() {
    let actor = start_actor();
    let id = unique_id("nested");
    let mut ns = NsInit::spawn(Plan {
        nested_depth: 1,
        nested_bytes: 64 * MIB,
        ..Plan::default()
    });
    let nested = ns.nested();
    let inner = *nested.last().unwrap();
    assert_ne!(
        pid_ns_of(inner),
        pid_ns_of(ns.raw()),
        "a namespace of its own"
    );
    let base = ns.rss_sum() + rss_of(inner);
    let hard = base + 40 * MIB as u64;
    actor.register(&id, ns.raw(), base + 8 * MIB as u64, hard);
    // The init allocates nothing; the innermost process 64 MiB.
    ns.go(2);

    let events = actor.events_until(is_hard);
    let Some(MonitorEvent::HardLimitKilled { rss_bytes, pid, .. }) = events.last() else {
        unreachable!()
    };
    assert!(*rss_bytes > hard && *pid == ns.raw(), "{events:?}");
    assert_eq!(
        ns.wait(),
        WaitStatus::Signaled(ns.pid, Signal::SIGKILL, false)
    );
    // The kernel ended the nested namespace with the container's.
    wait_gone("the nested processes to be gone", &nested);
}

#[test]
fn rss_counts_every_nesting_level_and_only_tracked_ancestors() {
    let mut backend = UserspaceBackend::new().unwrap();
    let plan = Plan {
        init_bytes: 8 * MIB,
        nested_depth: 2,
        nested_bytes: 16 * MIB,
        ..Plan::default()
    };
    let (mut tracked_ns, mut other) = (NsInit::spawn(plan), NsInit::spawn(plan));
    for c in [&mut tracked_ns, &mut other] {
        c.go(2);
        c.wait_ready(2);
    }
    // Everything is parked now; RSS no longer changes.
    let sum = |c: &NsInit| c.rss_sum() + c.nested()[1..].iter().map(|&p| rss_of(p)).sum::<u64>();
    let namespaces = |c: &NsInit| {
        c.nested()[1..]
            .iter()
            .map(|&p| pid_ns_of(p))
            .collect::<Vec<_>>()
    };
    let want = sum(&tracked_ns);
    assert!(want >= 24 * MIB as u64);
    let first = tracked(&unique_id("levels"), &tracked_ns, u64::MAX / 2);
    backend.register(&first).unwrap();
    let mut out = Vec::new();
    backend.tick(&mut out);
    assert!(matches!(&out[..], [e] if is_rss(e, want)), "{out:?}");
    // Both levels resolved to the tracked container; the other container's namespace and
    // the one nested in it to none.
    let container = pid_ns_of(tracked_ns.raw());
    for ns in namespaces(&tracked_ns) {
        assert_eq!(backend.cached_owner(ns), Some(Some(container)));
    }
    for ns in namespaces(&other) {
        assert_eq!(backend.cached_owner(ns), Some(None));
    }
    assert_eq!(backend.cached_owner(pid_ns_of(other.raw())), Some(None));

    // Registering the other container turns its negative answers positive.
    let second = tracked(&unique_id("levels2"), &other, u64::MAX / 2);
    backend.register(&second).unwrap();
    out.clear();
    backend.tick(&mut out);
    let other_rss = sum(&other);
    assert!(
        out.iter()
            .any(|e| matches!(e, MonitorEvent::Rss { id, rss_bytes } if *id == second.id && *rss_bytes == other_rss)),
        "{out:?}"
    );
    let other_container = pid_ns_of(other.raw());
    let other_namespaces = namespaces(&other);
    for &ns in &other_namespaces {
        assert_eq!(backend.cached_owner(ns), Some(Some(other_container)));
    }

    // Once its processes are gone, a namespace's answer is dropped.
    let other_nested = other.nested();
    kill(other.pid, Signal::SIGKILL).unwrap();
    other.wait();
    wait_gone(
        "the other container's nested processes to end",
        &other_nested,
    );
    for _ in 0..2 {
        out.clear();
        backend.tick(&mut out);
    }
    for ns in other_namespaces {
        assert_eq!(backend.cached_owner(ns), None);
    }
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(backend.len(), 1);
}

#[test]
fn exited_init_is_dropped_silently() {
    let mut backend = UserspaceBackend::new().unwrap();
    let mut ns = NsInit::spawn(Plan::default());
    let tracked = tracked(&unique_id("gone"), &ns, 1 << 40);
    backend.register(&tracked).unwrap();
    let mut out = Vec::new();
    backend.tick(&mut out);
    assert!(matches!(&out[..], [MonitorEvent::Rss { rss_bytes, .. }] if *rss_bytes > 0));
    assert!(backend.is_tracked(ns.raw()));

    kill(ns.pid, Signal::SIGKILL).unwrap();
    ns.wait();
    out.clear();
    backend.tick(&mut out);
    assert!(out.is_empty(), "{out:?}");
    assert!(backend.is_empty());
    // Unregistering what is no longer tracked is fine.
    backend.unregister(&tracked.id, tracked.pid).unwrap();
}

#[test]
fn unregister_stops_tracking() {
    let mut backend = UserspaceBackend::new().unwrap();
    let ns = NsInit::spawn(Plan::default());
    let tracked = tracked(&unique_id("unreg"), &ns, 1);
    backend.register(&tracked).unwrap();
    assert_eq!(backend.len(), 1);
    backend.unregister(&tracked.id, tracked.pid).unwrap();
    let mut out = Vec::new();
    backend.tick(&mut out);
    assert!(out.is_empty() && backend.is_empty(), "{out:?}");
    // Not killed, although far over its (former) limits.
    assert!(kill(ns.pid, None).is_ok());
}

#[test]
fn every_registration_is_answered_with_its_error() {
    let actor = start_actor();
    let ns = NsInit::spawn(Plan::default());
    let me = std::process::id() as i32;
    let cases = [
        ("own-ns", me, 1, 2),        // not in a PID namespace of its own
        ("no-such", i32::MAX, 1, 2), // no such process
        ("soft-above-hard", ns.raw(), 3, 2),
        ("ok", ns.raw(), 1 << 40, 1 << 40),
        ("dup", ns.raw(), 1 << 40, 1 << 40), // already tracked
    ];
    for (id, pid, soft, hard) in cases {
        actor.register(id, pid, soft, hard);
    }
    let mut answers = Vec::new();
    while answers.len() < cases.len() {
        if let MonitorEvent::Registered { id, error, .. } = actor.next() {
            assert!(error.as_ref().is_none_or(|m| !m.is_empty()));
            answers.push((id, error.is_none()));
        }
    }
    let want = [
        ("own-ns", false),
        ("no-such", false),
        ("soft-above-hard", false),
        ("ok", true),
        ("dup", false),
    ]
    .map(|(id, ok)| (id.to_string(), ok));
    assert_eq!(answers, want);
}

#[test]
fn backend_choice() {
    let poll = mio::Poll::new().unwrap();
    let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
    let (tx, _rx) = crossbeam_channel::unbounded();
    let dir = tempfile::tempdir().unwrap();

    // No device: userspace, nothing to say.
    let config = MonitorConfig {
        device: dir.path().join("absent"),
        ..MonitorConfig::default()
    };
    let (handle, kind) = monitor::start(config.clone(), tx.clone(), waker.clone()).unwrap();
    assert_eq!((kind, handle.note()), (BackendKind::Userspace, None));
    handle.shutdown();

    // Forcing the kernel backend without its device is an error.
    let forced = MonitorConfig {
        force: Some(BackendKind::Kernel),
        ..config
    };
    let err = monitor::start(forced, tx.clone(), waker.clone()).unwrap_err();
    assert!(matches!(err, MonitorError::Kernel(_)), "{err}");

    // A device path that exists but cannot be used: userspace, and a note says why.
    let unusable = MonitorConfig {
        device: dir.path().to_owned(),
        ..MonitorConfig::default()
    };
    let (handle, kind) = monitor::start(unusable, tx, waker).unwrap();
    assert_eq!(kind, BackendKind::Userspace);
    assert!(handle.note().is_some_and(|n| n.contains("userspace")));
    drop(handle);
}

/// Prints the CPU cost of one userspace scan with many idle containers
/// (`MONITOR_BENCH_CONTAINERS`, default 1000, each an init and two workers).
/// Run with `cargo test -p engine-supervisor --release --test monitor -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn scan_cost() {
    let n: usize = std::env::var("MONITOR_BENCH_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let containers: Vec<NsInit> = (0..n)
        .map(|_| {
            NsInit::spawn(Plan {
                workers: 2,
                ..Plan::default()
            })
        })
        .collect();
    let mut backend = UserspaceBackend::new().unwrap();
    for (i, c) in containers.iter().enumerate() {
        backend
            .register(&Tracked {
                id: format!("bench{i}"),
                pid: c.raw(),
                soft_limit_bytes: 1 << 40,
                hard_limit_bytes: 1 << 40,
            })
            .unwrap();
    }
    let mut out = Vec::new();
    let first = thread_cpu();
    backend.tick(&mut out); // first scan: namespace lookups and opens
    let first = thread_cpu() - first;
    let ticks: u32 = std::env::var("MONITOR_BENCH_TICKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let start = thread_cpu();
    for _ in 0..ticks {
        backend.tick(&mut out);
    }
    let per_tick = (thread_cpu() - start) / ticks;
    println!(
        "containers={n} processes={} steady scan cpu={per_tick:?} ({:.2}% of one core at 200 ms), \
         first scan={first:?}",
        3 * n,
        per_tick.as_secs_f64() / 0.2 * 100.0
    );
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
