//! Every `AddContainer` is answered, by the real router binary: `Added` once its sinks are
//! created, `AddFailed` naming the container when its log cannot be opened or when its fds
//! never arrived (the router out of descriptors: the kernel truncates the control message).

mod common;

use common::*;
use nix::sys::resource::{getrlimit, Resource};
use nix::unistd::Pid;
use proto::router::FromRouter;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// The first answer to an `AddContainer` of `id`, and every report before it.
fn answer_for(link: &mut Router, id: &str) -> Vec<FromRouter> {
    wait_for(link, T, |m| match m {
        FromRouter::Added { id: i } | FromRouter::AddFailed { id: i, .. } => i == id,
        _ => false,
    })
}

/// Sets the soft `RLIMIT_NOFILE` of process `pid`, in descriptors (the hard limit stays).
fn set_nofile(pid: Pid, limit: u64) {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let new = libc::rlimit {
        rlim_cur: limit,
        rlim_max: hard,
    };
    // SAFETY: `new` is a valid rlimit; a null old-limit pointer is allowed by prlimit(2).
    let rc = unsafe {
        libc::prlimit(
            pid.as_raw(),
            libc::RLIMIT_NOFILE,
            &new,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// The lowest fd number process `pid` has free: with its limit there, no fd can be installed
/// (the limit bounds fd numbers, not their count).
fn lowest_free_fd(pid: Pid) -> u64 {
    let open: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|n| !open.contains(n)).unwrap()
}

#[test]
fn a_routed_container_is_answered_added() {
    let dir = tempfile::tempdir().unwrap();
    let mut link = start_router();
    let (mut out, err) = add_pipes(&mut link, "ok", &dir.path().join("ok.log"));
    let seen = answer_for(&mut link, "ok");
    assert!(
        matches!(seen.last(), Some(FromRouter::Added { id }) if id == "ok"),
        "{seen:?}"
    );
    out.write_all(b"hi\n").unwrap();
    drop((out, err));
    wait_for(
        &mut link,
        T,
        |m| matches!(m, FromRouter::Drained { id } if id == "ok"),
    );
    stop_router(link);
}

#[test]
fn a_log_that_cannot_be_opened_is_answered_add_failed_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // A parent that is a file: the log's directory cannot be created.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let log = blocker.join("logs/x.log");
    let mut link = start_router();
    let (out, err) = add_pipes(&mut link, "x", &log);
    let seen = answer_for(&mut link, "x");
    assert!(
        matches!(seen.last(), Some(FromRouter::AddFailed { id, message })
            if id == "x" && message.contains(&*log.to_string_lossy())),
        "{seen:?}"
    );
    drop((out, err));
    stop_router(link);
}

#[test]
fn an_add_whose_fds_the_router_cannot_receive_is_answered_add_failed() {
    let dir = tempfile::tempdir().unwrap();
    let mut link = start_router();
    let pid = Pid::from_raw(link.pid() as i32);
    // Let the router settle (configured, sinks loaded), then leave it no free descriptor.
    let seen = run_container(
        &mut link,
        "warm",
        &dir.path().join("warm.log"),
        &[],
        b"",
        b"",
    );
    assert!(seen.iter().any(|m| matches!(m, FromRouter::Added { .. })));
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    set_nofile(pid, lowest_free_fd(pid));
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    link.add_container(
        "starved",
        &dir.path().join("starved.log"),
        out_r.as_fd(),
        err_r.as_fd(),
        &[],
    )
    .unwrap();
    let seen = answer_for(&mut link, "starved");
    assert!(
        matches!(seen.last(), Some(FromRouter::AddFailed { id, message })
            if id == "starved" && message.contains("out of file descriptors")),
        "{seen:?}"
    );
    // The router kept none of its fds: with ours closed, the writers see no reader.
    drop((out_r, err_r));
    let mut out_w = out_w;
    assert_eq!(
        out_w.write(b"x").map_err(|e| e.raw_os_error()),
        Err(Some(libc::EPIPE))
    );
    drop(err_w);
    // With descriptors again, the router goes on.
    set_nofile(pid, soft);
    let seen = run_container(
        &mut link,
        "fed",
        &dir.path().join("fed.log"),
        &[],
        b"y\n",
        b"",
    );
    assert!(
        seen.iter()
            .any(|m| matches!(m, FromRouter::Added { id } if id == "fed")),
        "{seen:?}"
    );
    stop_router(link);
}
