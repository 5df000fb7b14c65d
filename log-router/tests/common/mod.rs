//! Helpers for router integration tests: locating the release binaries, pipes, waiting for
//! reports, reaping.

#![allow(dead_code)]

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;
use proto::router::{FromRouter, SinkSpec};
use std::fs::File;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use supervisor::router_link::RouterLink;

/// Directory of the release binaries: `ENGINE_BIN_DIR` or `<workspace>/target/release`.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("ENGINE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release"))
}

/// Path of a release binary or library, with a clear failure when it was not built.
pub fn built(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --release -p log-router -p engine-sink-file -p engine-sink-rotating -p engine-sink-tcp` first",
        p.display()
    );
    p
}

/// The file sink spec.
pub fn file_sink() -> Vec<SinkSpec> {
    vec![SinkSpec::parse("file").unwrap()]
}

/// Starts the release router with the file sink.
pub fn start_router() -> RouterLink {
    built("libengine_sink_file.so");
    RouterLink::start(&built("log-router"), file_sink()).expect("router starts")
}

/// A pipe: (read end, write end as a File).
pub fn pipe() -> (OwnedFd, File) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    (r, File::from(w))
}

/// Routes a new "container" `id` to `log` with the default sinks: returns the write ends of its
/// stdout and stderr.
pub fn add_pipes(link: &mut RouterLink, id: &str, log: &std::path::Path) -> (File, File) {
    use std::os::fd::AsFd;
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    link.add_container(id, log, out_r.as_fd(), err_r.as_fd(), &[])
        .unwrap();
    (out_w, err_w)
}

/// Reads reports until `done` says so for one of them, or panics after `timeout`.
pub fn wait_for(
    link: &mut RouterLink,
    timeout: Duration,
    mut done: impl FnMut(&FromRouter) -> bool,
) -> Vec<FromRouter> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let inbox = link.read_messages();
        for m in inbox.messages {
            let stop = done(&m);
            seen.push(m);
            if stop {
                return seen;
            }
        }
        assert!(
            !inbox.closed,
            "router closed its socket; reports so far: {seen:?}"
        );
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out; reports so far: {seen:?}");
        // SAFETY: the link's socket stays open for the duration of this call.
        let fd = unsafe { BorrowedFd::borrow_raw(link.control_fd()) };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}

/// Waits for `pid` to exit and returns its exit status.
pub fn reap(pid: Pid) -> nix::sys::wait::WaitStatus {
    nix::sys::wait::waitpid(pid, None).expect("waitpid")
}

/// Raises the soft fd limit to the hard limit.
pub fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
}

/// Routes one short-lived "container": new pipes, `AddContainer`, writes `stdout` then
/// `stderr`, closes both, and waits for its `Drained`. Returns every report seen until then.
pub fn run_container(
    link: &mut RouterLink,
    id: &str,
    log: &std::path::Path,
    sinks: &[SinkSpec],
    stdout: &[u8],
    stderr: &[u8],
) -> Vec<FromRouter> {
    use std::io::Write;
    use std::os::fd::AsFd;
    let (out_r, mut out_w) = pipe();
    let (err_r, mut err_w) = pipe();
    link.add_container(id, log, out_r.as_fd(), err_r.as_fd(), sinks)
        .unwrap();
    out_w.write_all(stdout).unwrap();
    err_w.write_all(stderr).unwrap();
    drop((out_w, err_w));
    wait_for(
        link,
        Duration::from_secs(30),
        |m| matches!(m, FromRouter::Drained { id: d } if d == id),
    )
}

/// Shuts the router down, checks it closed its end and exited 0, and reaps it.
pub fn stop_router(mut link: RouterLink) {
    let pid = link.pid();
    assert!(link.shutdown(Duration::from_secs(30)).closed);
    assert_eq!(reap(pid), nix::sys::wait::WaitStatus::Exited(pid, 0));
}
