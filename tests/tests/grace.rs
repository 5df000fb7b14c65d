//! A stop gives every process of the container its grace period: container-init forwards the
//! stop signal to the whole PID namespace (a `setsid` daemon included) and keeps reaping after
//! the workload has died, until the namespace is empty or the supervisor's SIGKILL ends it.
//! A workload that exits on its own still ends the container at once.

use harness::{stderr, wait_for, TestSupervisor};
use proto::api::Reason;
use std::time::{Duration, Instant};

/// How long each trap below takes to clean up, in seconds (`sleep 1`).
const CLEAN_UP: Duration = Duration::from_secs(1);

/// Waits until the container's log holds `line`.
fn wait_for_line(sup: &TestSupervisor, id: &str, line: &str) {
    let seen = wait_for(Duration::from_secs(10), || {
        String::from_utf8_lossy(&sup.log_bytes(id))
            .lines()
            .any(|l| l.starts_with(line))
            .then_some(())
    });
    assert!(
        seen.is_some(),
        "{id} never logged {line:?}: {:?}",
        String::from_utf8_lossy(&sup.log_bytes(id))
    );
}

/// The workload of the `gc` cases: the shell dies of SIGTERM at once; its background child
/// traps it and needs [`CLEAN_UP`] to clean up.
const GC: &str = "sh -c 'trap \"sleep 1; echo clean; exit 0\" TERM; echo ready; \
                  while :; do sleep 0.1; done' & wait";

fn log_text(sup: &TestSupervisor, id: &str) -> String {
    String::from_utf8_lossy(&sup.log_bytes(id)).into_owned()
}

/// `engine stop --time 10 id`, then checks that the stop waited for the clean-up that logs
/// `line`, and not for the SIGKILL at the end of the grace period.
fn stop_and_check_clean_up(sup: &TestSupervisor, id: &str, line: &str) {
    let t = Instant::now();
    let out = sup.engine(&["stop", "--time", "10", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let took = t.elapsed();
    let log = log_text(sup, id);
    assert!(log.lines().any(|l| l == line), "{line:?} missing: {log}");
    assert!(took >= CLEAN_UP - Duration::from_millis(100), "{took:?}");
    assert!(
        took < Duration::from_secs(8),
        "waited for SIGKILL: {took:?}"
    );
    assert_eq!(sup.info(id).reason, Some(Reason::Stopped));
}

#[test]
fn stop_waits_for_a_background_process_that_cleans_up() {
    let sup = TestSupervisor::start();
    sup.start_container("gc", GC);
    wait_for_line(&sup, "gc", "ready");
    stop_and_check_clean_up(&sup, "gc", "clean");
    // The status is still the workload's (the shell killed by SIGTERM), not the last process's.
    assert_eq!(sup.info("gc").exit_status, Some(143));
}

#[test]
fn stop_signals_and_waits_for_a_setsid_daemon() {
    let sup = TestSupervisor::start();
    // A daemon in its own session (so not in the workload's process group) traps SIGTERM.
    sup.start_container(
        "daemon",
        "setsid sh -c 'trap \"sleep 1; echo daemon clean; exit 0\" TERM; \
         echo daemon pid=$$ sid=$(cut -d\" \" -f6 /proc/$$/stat); \
         while :; do sleep 0.1; done' & exec sleep 1000",
    );
    wait_for_line(&sup, "daemon", "daemon pid=");
    let log = log_text(&sup, "daemon");
    let ids: Vec<&str> = log
        .lines()
        .find_map(|l| l.strip_prefix("daemon pid="))
        .unwrap()
        .split(" sid=")
        .collect();
    assert_eq!(ids[0], ids[1], "the daemon leads its own session: {log}");
    stop_and_check_clean_up(&sup, "daemon", "daemon clean");
}

#[test]
fn supervisor_shutdown_gives_the_same_grace() {
    let mut sup = TestSupervisor::start();
    sup.start_container("gc", GC);
    wait_for_line(&sup, "gc", "ready");
    let logs = sup.state_dir.join("logs");
    let t = Instant::now();
    let status = sup
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
        .expect("supervisor exited");
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() >= CLEAN_UP - Duration::from_millis(100));
    let log = std::fs::read_to_string(logs.join("gc.log")).unwrap();
    assert!(log.contains("clean\n"), "{log}");
}

#[test]
fn a_workload_that_exits_on_its_own_ends_the_container_at_once() {
    let sup = TestSupervisor::start();
    // No stop was asked for: the background sleep does not hold the container.
    let t = Instant::now();
    let out = sup.run_container("leaves", "sleep 1000 & exit 3", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(sup.info("leaves").reason, Some(Reason::Exit(3)));
}
