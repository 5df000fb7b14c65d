//! Supervisor shutdown: SIGTERM with live containers stops them all, flushes their logs,
//! removes the socket and exits 0.

use harness::{children_of, TestSupervisor};
use std::time::Duration;

#[test]
fn sigterm_stops_every_container_and_exits_zero() {
    let mut sup = TestSupervisor::start();
    for id in ["s1", "s2", "s3"] {
        sup.start_container(id, "echo up; sleep 1000");
    }
    let logs = sup.state_dir.join("logs");
    harness::wait_for(Duration::from_secs(10), || {
        ["s1", "s2", "s3"]
            .iter()
            .all(|id| sup.log_bytes(id) == b"up\n")
            .then_some(())
    })
    .expect("containers running");
    let pid = sup.pid();
    let status = sup
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
        .expect("supervisor exited");
    assert!(status.success(), "{status:?}");
    assert!(!sup.socket.exists(), "socket left behind");
    assert!(
        children_of(pid).is_empty(),
        "children left: {:?}",
        children_of(pid)
    );
    for id in ["s1", "s2", "s3"] {
        assert_eq!(
            std::fs::read(logs.join(format!("{id}.log"))).unwrap(),
            b"up\n"
        );
    }
    assert!(sup.log_text().contains("supervisor stopped"));
}

#[test]
fn containers_die_with_a_killed_supervisor() {
    let mut sup = TestSupervisor::start();
    sup.start_container("orphan-to-be", "sleep 1000");
    let init = sup.info("orphan-to-be").pid;
    sup.signal_and_wait(libc::SIGKILL, Duration::from_secs(10))
        .expect("supervisor killed");
    // The parent-death signal ends container-init, and with it the container's namespace.
    let gone = harness::wait_for(Duration::from_secs(10), || {
        (!std::path::Path::new(&format!("/proc/{init}")).exists()
            || std::fs::read_to_string(format!("/proc/{init}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
    assert!(
        gone.is_some(),
        "container-init {init} outlived its supervisor"
    );
}
