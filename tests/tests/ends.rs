//! Every path ends clean, through the real CLI: an id stays taken until `rm` removes its
//! record, `rm -f` stops and removes, `run --rm` is held by the supervisor, clients that
//! leave leave nothing behind, `run` forwards signals as themselves.

use harness::{stderr, stdout, wait_for, TestSupervisor};
use proto::api::{Request, RequestFrame, Response};
use std::io::Write;
use std::os::unix::net::UnixStream;
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

/// `engine run --rm` of a `sleep 2`, sent `signal` while it waits: the supervisor removes the
/// record and the log once the container has ended. Returns the client's exit status.
fn run_rm_client_signalled(signal: i32, id: &str) -> std::process::ExitStatus {
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
    let status = client.wait().expect("wait");
    let log = sup.state_dir.join(format!("logs/{id}.log"));
    let gone = wait_for(Duration::from_secs(10), || {
        (sup.ps().is_empty() && !log.exists()).then_some(())
    });
    assert!(gone.is_some(), "{:?} {}", sup.ps(), log.exists());
    status
}

#[test]
fn run_rm_is_held_by_the_supervisor_when_the_client_is_killed() {
    let status = run_rm_client_signalled(libc::SIGKILL, "rmkill");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
}

#[test]
fn run_rm_of_a_hung_up_client_ends_and_removes_its_container() {
    // SIGHUP is forwarded (the workload dies of it), as `docker run` does.
    let status = run_rm_client_signalled(libc::SIGHUP, "rmhup");
    assert_eq!(status.code(), Some(129));
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

/// The supervisor's fds, but the memory monitor's (`/proc/<pid>/statm` of container
/// processes, opened as it finds them).
fn fd_count(pid: i32) -> usize {
    count_fds(&fd_links(pid))
}

fn count_fds(links: &[String]) -> usize {
    links
        .iter()
        .filter(|l| !(l.starts_with("/proc/") && l.ends_with("/statm")))
        .count()
}

/// What the process's fds point at (for failure messages).
fn fd_links(pid: i32) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Asserts that the supervisor's fds come back to the `before` ones within `timeout`.
fn assert_fds_back(pid: i32, before: &[String], timeout: Duration) {
    let fds0 = count_fds(before);
    let back = wait_for(timeout, || (fd_count(pid) <= fds0).then_some(()));
    assert!(
        back.is_some(),
        "fds {} > {fds0}: {before:?} then {:?}",
        fd_count(pid),
        fd_links(pid)
    );
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn frame_of(request: Request) -> Vec<u8> {
    proto::frame::encode(&RequestFrame::new(request)).expect("encode")
}

#[test]
fn clients_that_leave_leave_no_connection_behind() {
    let sup = TestSupervisor::start();
    sup.start_container("long", "exec sleep 100");
    let pid = sup.pid();
    for _ in 0..50 {
        sup.ps();
    }
    let (links0, rss0) = (fd_links(pid), rss_kib(pid));
    let fds0 = count_fds(&links0);
    // 100 `logs -f` clients waiting for the container's end, killed while they wait.
    let mut waiting: Vec<_> = (0..100)
        .map(|_| {
            sup.cmd(&["logs", "-f", "long"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("logs -f")
        })
        .collect();
    let all_in = wait_for(Duration::from_secs(20), || {
        (fd_count(pid) >= fds0 + 100).then_some(())
    });
    assert!(all_in.is_some(), "{} fds", fd_count(pid));
    for c in &mut waiting {
        let _ = c.kill();
        let _ = c.wait();
    }
    // 1,000 clients that send `Ps` (and a `Wait`) and close before reading.
    let ps = frame_of(Request::Ps);
    let wait = frame_of(Request::Wait { id: "long".into() });
    for i in 0..1000 {
        let mut s = UnixStream::connect(&sup.socket).expect("connect");
        s.write_all(if i % 2 == 0 { &ps } else { &wait })
            .expect("send");
    }
    // Accepted after all of them (the backlog is in order): they have all been seen.
    sup.ps();
    assert_fds_back(pid, &links0, Duration::from_secs(2));
    let rss = rss_kib(pid);
    assert!(rss < rss0 + 8 * 1024, "rss {rss} KiB vs {rss0} KiB");
    assert_eq!(sup.info("long").state, proto::api::ContainerState::Running);
}

#[test]
fn a_client_that_never_reads_is_bounded_then_dropped() {
    let sup = TestSupervisor::start();
    for i in 0..20 {
        sup.start_container(&format!("c{i}"), "exec sleep 100");
    }
    let pid = sup.pid();
    // The last `start` client's hang-up is handled.
    std::thread::sleep(Duration::from_millis(300));
    let (links0, rss0) = (fd_links(pid), rss_kib(pid));
    let fds0 = count_fds(&links0);
    // 200,000 pipelined `Ps` (about 1 GiB of answers), never read.
    let mut s = UnixStream::connect(&sup.socket).expect("connect");
    s.set_nonblocking(true).unwrap();
    let frames: Vec<u8> = frame_of(Request::Ps).repeat(200_000);
    let mut sent = 0;
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while sent < frames.len() && std::time::Instant::now() < until {
        match s.write(&frames[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(fd_count(pid), fds0 + 1, "the client's connection is held");
    // Others are still served, and the supervisor does not queue without bound.
    let answer = sup.request_within(Request::Ps, Duration::from_secs(2));
    assert!(matches!(answer, Some(Response::Containers(v)) if v.len() == 20));
    let rss = rss_kib(pid);
    assert!(rss < rss0 + 32 * 1024, "rss {rss} KiB vs {rss0} KiB");
    // It is dropped once its queue has stayed full past the deadline.
    assert_fds_back(pid, &links0, Duration::from_secs(15));
}

#[test]
fn connections_beyond_the_bound_get_a_clear_error() {
    let sup = TestSupervisor::start();
    let mut held = Vec::new();
    // `supervisor::shell::MAX_CONNECTIONS`.
    for _ in 0..512 {
        held.push(UnixStream::connect(&sup.socket).expect("connect"));
    }
    // Accepted in order: one more is refused once the others are in.
    let refused = wait_for(Duration::from_secs(10), || {
        let mut s = UnixStream::connect(&sup.socket).ok()?;
        s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
        match proto::frame::read_frame::<_, Response>(&mut s) {
            Ok(Some(Response::Error(e))) => Some(e.message),
            _ => None,
        }
    });
    let message = refused.expect("no refusal");
    assert!(message.contains("connections already"), "{message}");
    drop(held);
    let ok = wait_for(Duration::from_secs(5), || {
        sup.request_within(Request::Ps, Duration::from_secs(1))
    });
    assert!(ok.is_some());
}

/// Waits until the container's log holds `line`.
fn logged(sup: &TestSupervisor, id: &str, line: &str) -> bool {
    wait_for(Duration::from_secs(10), || {
        String::from_utf8_lossy(&sup.log_bytes(id))
            .lines()
            .any(|l| l == line)
            .then_some(())
    })
    .is_some()
}

#[test]
fn run_forwards_signals_as_themselves() {
    let sup = TestSupervisor::start();
    let root = sup.rootfs("traps");
    let script = "for s in INT HUP QUIT USR1 USR2 WINCH; do trap \"echo got $s\" $s; done; \
                  trap 'echo got TERM; exit 7' TERM; echo ready; \
                  while true; do sleep 0.1; done";
    let mut client = sup
        .cmd(&["run", "traps", root.to_str().unwrap(), script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    assert!(logged(&sup, "traps", "ready"));
    for (sig, name) in [
        (libc::SIGINT, "INT"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGWINCH, "WINCH"),
    ] {
        // SAFETY: kill(2) on our own child's PID; no memory is involved.
        unsafe { libc::kill(client.id() as i32, sig) };
        assert!(logged(&sup, "traps", &format!("got {name}")), "{name}");
    }
    assert_eq!(sup.info("traps").state, proto::api::ContainerState::Running);
    // SAFETY: as above.
    unsafe { libc::kill(client.id() as i32, libc::SIGTERM) };
    let status = wait_for(Duration::from_secs(10), || client.try_wait().unwrap());
    assert_eq!(status.and_then(|s| s.code()), Some(7));
    let info = sup.info("traps");
    assert_eq!(info.reason, Some(proto::api::Reason::Exit(7)));
    let mut out = String::new();
    std::io::Read::read_to_string(client.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.ends_with("got WINCH\ngot TERM\n"), "{out}");
}

#[test]
fn a_run_client_killed_outright_leaves_its_container_running() {
    let sup = TestSupervisor::start();
    let root = sup.rootfs("orphan");
    let mut client = sup
        .cmd(&[
            "run",
            "orphan",
            root.to_str().unwrap(),
            "echo up; exec sleep 100",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("run");
    assert!(logged(&sup, "orphan", "up"));
    let _ = client.kill();
    let _ = client.wait();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        sup.info("orphan").state,
        proto::api::ContainerState::Running
    );
    let out = sup.engine(&["rm", "-f", "orphan"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
