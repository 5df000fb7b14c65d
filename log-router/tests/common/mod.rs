//! Helpers for router integration tests: locating the release binaries, pipes, starting and
//! stopping a router through [`driver::Router`], waiting for reports.

#![allow(dead_code)]

pub mod driver;

pub use driver::Router;
use proto::router::{FromRouter, SinkSpec};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

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
pub fn start_router() -> Router {
    built("libengine_sink_file.so");
    Router::start(&built("log-router"), file_sink()).expect("router starts")
}

/// A pipe: (read end, write end as a File).
pub fn pipe() -> (OwnedFd, File) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    (r, File::from(w))
}

/// Routes a new "container" `id` to `log` with the default sinks: returns the write ends of its
/// stdout and stderr.
pub fn add_pipes(link: &mut Router, id: &str, log: &std::path::Path) -> (File, File) {
    use std::os::fd::AsFd;
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    link.add_container(id, log, out_r.as_fd(), err_r.as_fd(), &[])
        .unwrap();
    (out_w, err_w)
}

/// Reads reports until `done` says so for one of them, or panics after `timeout`: see
/// [`Router::wait_for`].
pub fn wait_for(
    link: &mut Router,
    timeout: Duration,
    done: impl FnMut(&FromRouter) -> bool,
) -> Vec<FromRouter> {
    link.wait_for(timeout, done)
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
    link: &mut Router,
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
pub fn stop_router(link: Router) {
    let (_, status) = link.shutdown(Duration::from_secs(30));
    assert!(status.success(), "router exited with {status}");
}
