//! A router killed with SIGKILL in the middle of a steady stream is replaced through
//! `Router::restart` (as the supervisor replaces it); every line the container wrote reaches
//! the log (delivery is at least once: a chunk stored at the moment of the kill may appear
//! twice, never zero times, and a write torn by the kill is cut when the file sink reopens the
//! log).

mod common;

use common::driver::LiveContainer;
use common::*;
use proto::router::FromRouter;
use std::collections::HashSet;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

const LINES: u64 = 300_000;

/// Every `seq N` of 0..LINES present as a full line; returns (lines, duplicates).
fn check_sequence(log: &[u8]) -> (usize, usize) {
    let mut seen = HashSet::new();
    let mut lines = 0;
    for line in log.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        lines += 1;
        // The file sink cuts a write torn by the kill when it reopens the log: no torn lines.
        let text = String::from_utf8_lossy(line);
        let n: u64 = text
            .strip_prefix("seq ")
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("bad line {text:?}"));
        seen.insert(n);
    }
    let missing: Vec<u64> = (0..LINES).filter(|n| !seen.contains(n)).take(10).collect();
    assert!(
        missing.is_empty(),
        "missing sequence numbers, first: {missing:?}"
    );
    (lines, lines - LINES as usize)
}

#[test]
fn killed_router_is_restarted_and_nothing_in_the_pipes_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("seq.log");
    let mut link = start_router();
    let (out_r, mut out_w) = pipe();
    let (err_r, err_w) = pipe();
    link.add_container("seq", &log, out_r.as_fd(), err_r.as_fd(), &[])
        .unwrap();
    let writer = std::thread::spawn(move || {
        for n in 0..LINES {
            writeln!(out_w, "seq {n}").unwrap();
        }
    });
    // Kill while the stream is flowing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&log).map_or(0, |m| m.len()) < 200_000 {
        assert!(Instant::now() < deadline, "stream never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    let old = link.pid();
    link.kill();
    // Let the writer fill the pipe while no router runs.
    std::thread::sleep(Duration::from_millis(200));
    let live = [LiveContainer {
        id: "seq",
        log_path: &log,
        stdout: out_r.as_fd(),
        stderr: err_r.as_fd(),
        sinks: &[],
    }];
    let last = link.restart(&live).unwrap();
    assert!(!last.iter().any(|m| matches!(m, FromRouter::Drained { .. })));
    assert_ne!(link.pid(), old);
    writer.join().unwrap();
    drop(err_w);
    wait_for(
        &mut link,
        Duration::from_secs(60),
        |m| matches!(m, FromRouter::Drained { id } if id == "seq"),
    );
    let (lines, dups) = check_sequence(&std::fs::read(&log).unwrap());
    eprintln!("{lines} lines, {dups} repeated after the kill");
    stop_router(link);
}
