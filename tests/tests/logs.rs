//! Output capture: every byte a container wrote is in its log before `run` returns and before
//! `ps` shows it ended; bytes are kept exactly.

use harness::{stderr, TestSupervisor};
use proto::api::ContainerState;

#[test]
fn five_hundred_runs_keep_both_writes() {
    let sup = TestSupervisor::start();
    for i in 0..500 {
        let id = format!("ab{i}");
        let out = sup.run_container(&id, "echo a; printf b", &[]);
        assert!(out.status.success(), "{id}: {}", stderr(&out));
        assert_eq!(sup.log_bytes(&id), b"a\nb", "{id}");
    }
}

#[test]
fn ended_in_ps_means_log_complete() {
    let sup = TestSupervisor::start();
    for i in 0..50 {
        let id = format!("fast{i}");
        sup.start_container(&id, "printf 'x%.0s' $(seq 1 1000); printf tail");
    }
    for i in 0..50 {
        let id = format!("fast{i}");
        let info = harness::wait_for(std::time::Duration::from_secs(30), || {
            let c = sup.info(&id);
            c.state.is_ended().then_some(c)
        })
        .expect("ended");
        assert_eq!(info.state, ContainerState::Exited);
        let log = sup.log_bytes(&id);
        assert_eq!(log.len(), 1004, "{id}");
        assert!(log.ends_with(b"tail"));
    }
}

#[test]
fn non_utf8_and_stderr_are_kept_byte_for_byte() {
    let sup = TestSupervisor::start();
    let out = sup.run_container(
        "bytes",
        "printf '\\377\\376\\000ok\\r\\033[0m'; printf 'err\\n' >&2",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let log = sup.log_bytes("bytes");
    assert!(
        log.windows(8).any(|w| w == b"\xff\xfe\x00ok\r\x1b["),
        "{log:?}"
    );
    assert!(log.windows(4).any(|w| w == b"err\n"), "{log:?}");
    assert_eq!(log.len(), 10 + 4);
    // `engine logs` prints the same bytes.
    let out = sup.engine(&["logs", "bytes"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, log);
}

#[test]
fn logs_of_a_running_container() {
    let sup = TestSupervisor::start();
    sup.start_container("pulse", "echo first; sleep 1000");
    let seen = harness::wait_for(std::time::Duration::from_secs(10), || {
        let out = sup.engine(&["logs", "pulse"]);
        (out.stdout == b"first\n").then_some(())
    });
    assert!(seen.is_some());
    assert!(sup
        .engine(&["stop", "--time", "1", "pulse"])
        .status
        .success());
}

#[test]
fn large_output_is_complete() {
    let sup = TestSupervisor::start();
    // 8 MiB through the pipe, router and file sink.
    let out = sup.run_container("big", "dd if=/dev/zero bs=65536 count=128 2>/dev/null", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sup.log_bytes("big").len(), 8 << 20);
}
