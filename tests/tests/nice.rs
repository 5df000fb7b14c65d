//! `--nice` changes the CPU share between containers: two CPU hogs pinned to one CPU, one at
//! nice 0 and one at nice 15, get CPU time in about the ratio of their CFS weights
//! (1024 : 36, kernel `sched_prio_to_weight`), at least 5 : 1 here. This holds whether the
//! kernel's autogroups are on (each workload leads its own session, so its own autogroup) or
//! off.

use harness::{children_of, stderr, wait_for, TestSupervisor};
use std::time::{Duration, Instant};

/// How long the hogs share the CPU while measured, at least.
const MEASURE: Duration = Duration::from_secs(3);

/// CPU time the nice-0 hog must get for the ratio to mean something, in clock ticks
/// (`sysconf(_SC_CLK_TCK)`, 100 a second on Linux): the measure goes on until then.
const MIN_TICKS: u64 = 100;

/// The measure gives up after this long (the hogs run 30 s).
const MAX_MEASURE: Duration = Duration::from_secs(20);

/// Smallest accepted share of the nice-0 hog over the nice-15 one.
const MIN_RATIO: f64 = 5.0;

/// Host pid of the `cpu_hog` process under container-init `init` (the workload or one of its
/// descendants).
fn hog_pid(init: i32) -> Option<i32> {
    let mut todo = vec![init];
    while let Some(pid) = todo.pop() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "cpu_hog" {
            return Some(pid);
        }
        todo.extend(children_of(pid).into_iter().map(|(p, _)| p));
    }
    None
}

/// utime + stime of `pid`, in clock ticks (`/proc/PID/stat` fields 14 and 15, proc(5)).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat of a hog");
    // The fields after the last ')' start at field 3 (state).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Pins `pid` to the single CPU `cpu`.
fn pin(pid: i32, cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).unwrap();
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(pid), &set)
        .unwrap_or_else(|e| panic!("pin {pid} to CPU {cpu}: {e}"));
}

/// The first CPU this test may run on.
fn some_cpu() -> usize {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    (0..nix::sched::CpuSet::count())
        .find(|&c| set.is_set(c).unwrap_or(false))
        .expect("a CPU")
}

#[test]
fn nice_changes_the_cpu_share_between_containers() {
    let sup = TestSupervisor::start();
    let mut hogs = Vec::new();
    for (id, nice) in [("hog-nice0", "0"), ("hog-nice15", "15")] {
        let root = sup.rootfs(id);
        let out = sup.engine(&[
            "start",
            id,
            root.to_str().unwrap(),
            "cpu_hog 30",
            "--nice",
            nice,
        ]);
        assert!(out.status.success(), "start {id}: {}", stderr(&out));
        let init = sup.info(id).pid;
        let pid = wait_for(Duration::from_secs(10), || hog_pid(init))
            .unwrap_or_else(|| panic!("no cpu_hog under {id}'s init {init}"));
        hogs.push(pid);
    }
    let cpu = some_cpu();
    for &pid in &hogs {
        pin(pid, cpu);
    }
    // Let the pinning settle, then measure until the nice-0 hog has had enough CPU time to
    // make the ratio meaningful (the CPU may be shared with other work on the host).
    std::thread::sleep(Duration::from_millis(300));
    let before: Vec<u64> = hogs.iter().map(|&p| cpu_ticks(p)).collect();
    let ticks_since = || -> Vec<u64> {
        hogs.iter()
            .zip(&before)
            .map(|(&p, b)| cpu_ticks(p) - b)
            .collect()
    };
    let t = Instant::now();
    std::thread::sleep(MEASURE);
    while ticks_since()[0] < MIN_TICKS && t.elapsed() < MAX_MEASURE {
        std::thread::sleep(Duration::from_millis(250));
    }
    let used = ticks_since();
    let took = t.elapsed();
    for id in ["hog-nice0", "hog-nice15"] {
        assert!(sup.engine(&["stop", "--time", "1", id]).status.success());
    }
    let (fast, slow) = (used[0], used[1]);
    eprintln!("CPU ticks over {took:?} on CPU {cpu}: nice 0 {fast}, nice 15 {slow}");
    assert!(
        fast >= MIN_TICKS,
        "the nice-0 hog barely ran: {used:?} ticks"
    );
    assert!(
        fast as f64 >= MIN_RATIO * slow as f64,
        "nice 0 vs nice 15 got {fast} vs {slow} ticks (want >= {MIN_RATIO}:1)"
    );
}
