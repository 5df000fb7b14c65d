//! Container lifecycle against the real supervisor: exit statuses, namespaces, PID 1 reaping,
//! stop with and without SIGTERM handling, `run` forwarding SIGINT as itself.

use harness::{children_of, stderr, wait_for, TestSupervisor};
use proto::api::{ContainerState, Reason};
use std::time::{Duration, Instant};

#[test]
fn run_exits_with_the_container_status() {
    let sup = TestSupervisor::start();
    for (id, cmd, code) in [
        ("ok", "true", 0),
        ("three", "exit 3", 3),
        ("killed", "kill -9 $$", 137),
    ] {
        let out = sup.run_container(id, cmd, &[]);
        assert_eq!(out.status.code(), Some(code), "{id}: {}", stderr(&out));
        let info = sup.info(id);
        assert_eq!(info.exit_status, Some(code));
        assert_eq!(info.state, ContainerState::Exited);
        assert_eq!(info.reason, Some(Reason::Exit(code)));
    }
}

#[test]
fn argv_after_double_dash_is_execd_as_given() {
    let sup = TestSupervisor::start();
    let root = sup.rootfs("argv");
    let out = sup.engine(&[
        "run",
        "argv",
        root.to_str().unwrap(),
        "--",
        "echo",
        "a  b",
        "$HOME",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sup.log_bytes("argv"), b"a  b $HOME\n");
}

#[test]
fn hostname_pid1_and_proc_are_the_containers_own() {
    let sup = TestSupervisor::start();
    let out = sup.run_container(
        "inside",
        "echo host=$(hostname); echo ppid=$PPID; echo comm=$(cat /proc/1/comm); echo pids=$(ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' ')",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let log = String::from_utf8(sup.log_bytes("inside")).unwrap();
    assert!(log.contains("host=inside\n"), "{log}");
    assert!(log.contains("ppid=1\n"), "{log}");
    assert!(log.contains("comm=container-init\n"), "{log}");
    let pids: Vec<i32> = log
        .lines()
        .find_map(|l| l.strip_prefix("pids="))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(pids.contains(&1), "{pids:?}");
    // Only init, the shell and its pipeline: small numbers of a fresh PID namespace.
    assert!(
        pids.len() <= 8 && pids.iter().all(|&p| p < 100),
        "host processes visible: {pids:?}"
    );
    // The host's hostname is untouched.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "inside");
}

#[test]
fn orphaned_grandchild_is_reaped_by_container_init() {
    let sup = TestSupervisor::start();
    // The grandchild outlives its parent (a subshell), is re-parented to PID 1, exits; the
    // workload then lists zombies in its namespace.
    let out = sup.run_container(
        "orphan",
        "(sleep 0.3 &) ; sleep 1; echo zombies=$(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l)",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let log = String::from_utf8(sup.log_bytes("orphan")).unwrap();
    assert!(log.contains("zombies=0"), "{log}");
}

#[test]
fn two_hundred_short_containers_leave_no_zombie() {
    let sup = TestSupervisor::start();
    for i in 0..200 {
        let id = format!("short{i}");
        sup.start_container(&id, "true");
    }
    for i in 0..200 {
        let info = sup.wait(&format!("short{i}"));
        assert_eq!(info.exit_status, Some(0));
    }
    let leftover = wait_for(Duration::from_secs(10), || {
        let kids: Vec<_> = children_of(sup.pid())
            .into_iter()
            .filter(|(pid, _)| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|c| c.trim() != "log-router")
                    .unwrap_or(false)
            })
            .collect();
        kids.is_empty().then_some(())
    });
    assert!(
        leftover.is_some(),
        "children left: {:?}",
        children_of(sup.pid())
    );
    assert!(children_of(sup.pid()).iter().all(|(_, s)| *s != 'Z'));
}

#[test]
fn stop_of_sleep_is_quick_and_reason_stopped() {
    let sup = TestSupervisor::start();
    sup.start_container("sleeper", "sleep 1000");
    let t = Instant::now();
    let out = sup.engine(&["stop", "--time", "30", "sleeper"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t.elapsed()
    );
    let info = sup.info("sleeper");
    assert_eq!(info.state, ContainerState::Stopped);
    assert_eq!(info.reason, Some(Reason::Stopped));
}

#[test]
fn stop_kills_a_term_ignoring_workload_after_the_grace_period() {
    let sup = TestSupervisor::start();
    sup.start_container("stubborn", "trap '' TERM; sleep 1000 & wait; sleep 1000");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let out = sup.engine(&["stop", "--time", "2", "stubborn"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "ended before the grace period"
    );
    let info = sup.info("stubborn");
    assert_eq!(info.reason, Some(Reason::Stopped));
    assert_eq!(info.exit_status, Some(137), "ended by SIGKILL");
    assert!(sup.log_text().contains("SIGKILL"));
}

#[test]
fn stop_signals_every_process_not_only_the_direct_child() {
    let sup = TestSupervisor::start();
    // The shell waits on two background sleeps; SIGTERM must reach the sleeps too.
    sup.start_container("family", "sleep 1000 & sleep 1000 & wait");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert!(sup
        .engine(&["stop", "--time", "30", "family"])
        .status
        .success());
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(sup.info("family").reason, Some(Reason::Stopped));
}

#[test]
fn run_forwards_sigint_as_itself_and_waits_for_the_status() {
    let sup = TestSupervisor::start();
    let root = sup.rootfs("interrupted");
    let mut child = sup
        .cmd(&[
            "run",
            "interrupted",
            root.to_str().unwrap(),
            "echo started; sleep 1000",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let running = wait_for(Duration::from_secs(10), || {
        sup.log_bytes("interrupted")
            .starts_with(b"started")
            .then_some(())
    });
    assert!(running.is_some());
    // SAFETY: kill(2) on our own child's PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status =
        wait_for(Duration::from_secs(20), || child.try_wait().unwrap()).expect("run exited");
    // sleep dies of the forwarded SIGINT: 128 + 2, as with `docker run` (not a stop).
    assert_eq!(status.code(), Some(130));
    let info = sup.info("interrupted");
    assert_eq!(info.reason, Some(Reason::Exit(130)));
}

#[test]
fn run_prints_the_containers_output_like_docker_run() {
    let sup = TestSupervisor::start();
    let out = sup.run_container(
        "attached",
        "echo to-stdout; sleep 0.3; echo to-stderr >&2; printf tail",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"to-stdout\ntail");
    assert!(stderr(&out).ends_with("to-stderr\n"), "{}", stderr(&out));
}

/// Copies `bin` and the shared libraries `ldd` names into `root`, keeping their paths.
fn copy_with_libs(bin: &str, root: &std::path::Path) {
    let ldd = std::process::Command::new("ldd").arg(bin).output().unwrap();
    let mut files = vec![bin.to_string()];
    for word in String::from_utf8_lossy(&ldd.stdout).split_whitespace() {
        if word.starts_with('/') {
            files.push(word.to_string());
        }
    }
    for f in files {
        let real = std::fs::canonicalize(&f).unwrap();
        let dest = root.join(f.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&real, &dest).unwrap();
    }
}

#[test]
fn an_existing_foreign_rootfs_works_as_the_container_layer() {
    // A tree of another distribution's dynamically linked programs (copied from this Debian
    // host): its files win over the busybox base, and nothing is written to it.
    let sup = TestSupervisor::start();
    let root = sup.rootfs("debian");
    copy_with_libs("/usr/bin/cat", &root);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/etc/debian_version", root.join("etc/debian_version")).unwrap();
    let out = sup.engine(&[
        "run",
        "debian",
        root.to_str().unwrap(),
        "--",
        "/usr/bin/cat",
        "/etc/debian_version",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sup.log_bytes("debian"),
        std::fs::read("/etc/debian_version").unwrap()
    );
    let out = sup.engine(&[
        "run",
        "debian2",
        root.to_str().unwrap(),
        "touch /etc/written",
    ]);
    assert!(out.status.success());
    assert!(!root.join("etc/written").exists());
}

#[test]
fn overlapping_rootfs_and_base_are_refused_clearly() {
    let sup = TestSupervisor::start();
    let out = sup.engine(&["start", "overlap", "/", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("overlap"), "{}", stderr(&out));
}

/// `rm` forgets an ended container and deletes its log files; a running one is refused, an
/// unknown id is an error, and the id can be used again. `run --rm` leaves nothing behind.
#[test]
fn rm_forgets_ended_containers_and_their_logs() {
    let mut sup = TestSupervisor::start();
    let out = sup.run_container("done", "echo bye", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::path::PathBuf::from(sup.info("done").log_path);
    assert!(log.exists(), "{}", log.display());
    sup.start_container("busy", "sleep 1000");

    let out = sup.engine(&["rm", "busy", "done", "ghost"]);
    assert_eq!(out.status.code(), Some(125), "busy and ghost are refused");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
    let err = stderr(&out);
    assert!(err.contains("container busy is running"), "{err}");
    assert!(err.contains("no such container: ghost"), "{err}");
    assert!(!log.exists(), "the log of a removed container is deleted");
    assert!(!log.with_extension("log.idx").exists(), "and its index");
    let ids: Vec<String> = sup.ps().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec!["busy".to_string()]);
    assert!(sup.alive());

    // Stopped, it can be removed; then the id starts afresh.
    assert!(sup
        .engine(&["stop", "--time", "1", "busy"])
        .status
        .success());
    let out = sup.engine(&["rm", "busy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(sup.ps().is_empty());

    let out = sup.run_container("once", "echo shown", &["--rm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "shown\n",
        "output shown before removal"
    );
    assert!(sup.ps().is_empty(), "run --rm leaves no record");
    assert!(sup.log_bytes("once").is_empty(), "nor a log");
    let out = sup.run_container("once", "exit 4", &["--rm"]);
    assert_eq!(out.status.code(), Some(4), "run --rm keeps the exit status");
}
