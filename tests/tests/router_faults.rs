//! The log-router as a separate, restartable process: killed with SIGKILL during a steady
//! stream, it is restarted by the supervisor, handed the fds again, and the log is complete.

use harness::{wait_for, TestSupervisor};
use std::time::Duration;

#[test]
fn router_killed_mid_stream_loses_no_line() {
    let sup = TestSupervisor::start();
    const LINES: usize = 30_000;
    let cmd = format!("i=0; while [ $i -lt {LINES} ]; do echo seq=$i; i=$((i+1)); done");
    sup.start_container("stream", &cmd);
    let mut killed = 0;
    for _ in 0..3 {
        // Let some output flow, then kill whichever router is current.
        wait_for(Duration::from_secs(20), || {
            (sup.log_bytes("stream").len() > 20_000 * (killed + 1)).then_some(())
        });
        let pid = sup.router_pid().expect("router running");
        // SAFETY: kill(2) on a PID we just read; no memory involved.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        killed += 1;
        wait_for(Duration::from_secs(20), || {
            sup.router_pid().filter(|&p| p != pid).map(|_| ())
        })
        .expect("router restarted");
    }
    let info = sup.wait("stream");
    assert_eq!(info.exit_status, Some(0));
    let log = String::from_utf8(sup.log_bytes("stream")).unwrap();
    let seqs: Vec<usize> = log
        .lines()
        .map(|l| {
            l.strip_prefix("seq=")
                .unwrap_or_else(|| panic!("bad line {l:?}"))
                .parse()
                .unwrap()
        })
        .collect();
    // Complete and in order. A killed router may have stored a chunk it had not yet taken
    // out of the pipe; its successor stores that chunk again (at-least-once), so a replay
    // (a step back) may follow each kill, never a gap.
    let mut next = 0;
    let mut jumps_back = 0;
    for (i, &s) in seqs.iter().enumerate() {
        assert!(s <= next, "gap: expected seq {next}, got {s}");
        if i > 0 && s != seqs[i - 1] + 1 {
            jumps_back += 1;
        }
        next = next.max(s + 1);
    }
    assert_eq!(next, LINES, "lines lost at the end");
    assert!(
        jumps_back <= killed,
        "{jumps_back} replays for {killed} kills"
    );
    assert!(sup.log_text().contains("log-router restarted"));
}
