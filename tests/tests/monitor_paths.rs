//! Memory limits with the userspace monitor backend on processes that end unusually: a
//! workload whose main thread exits while another thread keeps allocating is still measured
//! (from a live thread's `statm`) and killed at the hard limit.

use harness::{stderr, TestSupervisor};
use proto::api::{ContainerState, Reason};

#[test]
fn hog_whose_main_thread_exited_is_killed_at_hard() {
    let sup =
        TestSupervisor::start_with(&["--monitor", "userspace", "--monitor-interval-ms", "100"]);
    let id = format!("thog{}", std::process::id());
    // The thread grows to 200 MiB (8 MiB every 100 ms), holds 5 s and ends with status 0
    // unless it is killed on the way.
    let out = sup.run_container(
        &id,
        "probe thread-hog 8 100 200",
        &["--soft-mib", "32", "--hard-mib", "64"],
    );
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let info = sup.info(&id);
    assert_eq!(info.state, ContainerState::Killed);
    assert_eq!(info.reason, Some(Reason::HardLimitKilled));
    let log = String::from_utf8_lossy(&sup.log_bytes(&id)).into_owned();
    assert!(log.contains("thread-hog leader-exit"), "{log}");
    assert!(!log.contains("thread-hog total=200MB"), "{log}");
}
