//! Every path ends clean, through the real CLI: an id stays taken until `rm` removes its
//! record, `rm -f` stops and removes, `run --rm` is held by the supervisor, clients that
//! leave leave nothing behind, `run` forwards signals as themselves.

use harness::{stderr, stdout, wait_for, TestSupervisor};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn an_id_is_refused_while_any_record_has_it_until_rm() {
    let sup = TestSupervisor::start();
    let out = sup.run_container("dup", "echo first", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = sup.info("dup");
    let r2 = sup.rootfs("dup2");
    let out = sup.engine(&["start", "dup", r2.to_str().unwrap(), "echo second"]);
    assert_eq!(out.status.code(), Some(125), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("container dup already exists (exited)"),
        "{err}"
    );
    assert!(err.contains("engine rm"), "{err}");
    // The first record and its log are untouched.
    assert_eq!(sup.info("dup"), first);
    assert_eq!(sup.log_bytes("dup"), b"first\n");
    // A running one holds its id too.
    sup.start_container("live", "exec sleep 100");
    let r3 = sup.rootfs("live2");
    let out = sup.engine(&["start", "live", r3.to_str().unwrap(), "true"]);
    assert!(
        stderr(&out).contains("already exists (running)"),
        "{}",
        stderr(&out)
    );
    // `rm` frees the id.
    let out = sup.engine(&["rm", "dup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sup.engine(&["run", "dup", r2.to_str().unwrap(), "echo second"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sup.log_bytes("dup"), b"second\n");
}

#[test]
fn rm_force_stops_running_containers_and_removes_them() {
    let sup = TestSupervisor::start();
    sup.start_container("fa", "exec sleep 100");
    sup.start_container("fb", "exec sleep 100");
    let out = sup.engine(&["rm", "fa"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("is running"), "{}", stderr(&out));
    let out = sup.engine(&["rm", "-f", "fa", "fb"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "fa\nfb\n");
    assert!(sup.ps().is_empty(), "{:?}", sup.ps());
    assert!(!sup.state_dir.join("logs/fa.log").exists());
    // An unknown id is still an error, the others removed.
    sup.start_container("fc", "exec sleep 100");
    let out = sup.engine(&["rm", "-f", "nope", "fc"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("no such container: nope"));
    assert_eq!(stdout(&out), "fc\n");
}

#[test]
fn run_rm_of_a_hog_tells_why_it_was_killed() {
    let sup =
        TestSupervisor::start_with(&["--monitor", "userspace", "--monitor-interval-ms", "100"]);
    let out = sup.run_container(
        "hogrm",
        "memory_hog 4 100",
        &["--rm", "--soft-mib", "16", "--hard-mib", "32"],
    );
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "killed: hard limit of {} bytes exceeded",
            32u64 << 20
        )),
        "{err}"
    );
    let gone = wait_for(Duration::from_secs(5), || sup.ps().is_empty().then_some(()));
    assert!(gone.is_some(), "{:?}", sup.ps());
}

/// `engine run --rm` of a `sleep 2`, killed with `signal` while it waits: the supervisor
/// removes the record and the log once the container has ended.
fn run_rm_client_killed_by(signal: i32, id: &str) {
    let sup = TestSupervisor::start();
    let root = sup.rootfs(id);
    let mut client = sup
        .cmd(&[
            "run",
            "--rm",
            id,
            root.to_str().unwrap(),
            "echo out; sleep 2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let running = wait_for(Duration::from_secs(10), || {
        (!sup.log_bytes(id).is_empty()).then_some(())
    });
    assert!(running.is_some(), "{:?}", sup.ps());
    // SAFETY: kill(2) on our own child's PID; no memory is involved.
    unsafe { libc::kill(client.id() as i32, signal) };
    let _ = client.wait();
    let log = sup.state_dir.join(format!("logs/{id}.log"));
    assert!(log.exists());
    let gone = wait_for(Duration::from_secs(10), || {
        (sup.ps().is_empty() && !log.exists()).then_some(())
    });
    assert!(gone.is_some(), "{:?} {}", sup.ps(), log.exists());
}

#[test]
fn run_rm_is_held_by_the_supervisor_when_the_client_is_killed() {
    run_rm_client_killed_by(libc::SIGKILL, "rmkill");
}

#[test]
fn run_rm_is_held_by_the_supervisor_when_the_client_is_hung_up() {
    run_rm_client_killed_by(libc::SIGHUP, "rmhup");
}

#[test]
fn run_rm_shows_all_output_then_removes() {
    let sup = TestSupervisor::start();
    let out = sup.run_container("rmall", "seq 1 20000; echo last >&2", &["--rm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 20000);
    assert_eq!(stdout(&out).lines().last(), Some("20000"));
    assert_eq!(stderr(&out), "last\n");
    let gone = wait_for(Duration::from_secs(5), || sup.ps().is_empty().then_some(()));
    assert!(gone.is_some(), "{:?}", sup.ps());
    assert!(!sup.state_dir.join("logs/rmall.log").exists());
}
