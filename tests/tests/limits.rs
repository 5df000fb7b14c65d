//! Memory limits with the userspace monitor backend: one soft warning, then a hard-limit kill
//! reported as `hard_limit_killed` and exit status 137.

use harness::{stderr, TestSupervisor};
use proto::api::{ContainerState, Reason};

fn kmsg_lines(needle: &str) -> Vec<String> {
    let out = std::process::Command::new("dmesg").output().expect("dmesg");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn memory_hog_is_warned_at_soft_and_killed_at_hard() {
    let sup =
        TestSupervisor::start_with(&["--monitor", "userspace", "--monitor-interval-ms", "100"]);
    let id = format!("hog{}", std::process::id());
    let out = sup.run_container(
        &id,
        "memory_hog 4 100",
        &["--soft-mib", "16", "--hard-mib", "32"],
    );
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let info = sup.info(&id);
    assert_eq!(info.state, ContainerState::Killed);
    assert_eq!(info.reason, Some(Reason::HardLimitKilled));
    let soft = kmsg_lines(&format!("SOFT LIMIT container={id} "));
    let hard = kmsg_lines(&format!("HARD LIMIT container={id} "));
    assert_eq!(soft.len(), 1, "{soft:?}");
    assert_eq!(hard.len(), 1, "{hard:?}");
    assert!(soft[0].contains("[container_monitor] SOFT LIMIT"));
    assert!(soft[0].contains(&format!("limit={}", 16u64 << 20)));
    assert!(hard[0].contains(&format!("limit={}", 32u64 << 20)));
    // The same lines are in the supervisor's log, and the hog's output is kept.
    assert!(sup
        .log_text()
        .contains(&format!("SOFT LIMIT container={id} ")));
    let log = String::from_utf8_lossy(&sup.log_bytes(&id)).into_owned();
    assert!(log.contains("allocation=1 chunk=4MB total=4MB"), "{log}");
    let ps = sup.engine(&["ps"]);
    let table = String::from_utf8_lossy(&ps.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("hard_limit_killed")),
        "{table}"
    );
}

#[test]
fn memory_spread_over_processes_is_summed() {
    let sup =
        TestSupervisor::start_with(&["--monitor", "userspace", "--monitor-interval-ms", "100"]);
    let id = format!("spread{}", std::process::id());
    // Four processes holding 12 MiB each, then sleeping: none crosses 32 MiB alone, so only
    // the sum over the container's processes can reach the hard limit.
    let out = sup.run_container(
        &id,
        "probe spread 4 12",
        &["--soft-mib", "16", "--hard-mib", "32"],
    );
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert_eq!(sup.info(&id).reason, Some(Reason::HardLimitKilled));
}
