//! The TCP sink through the real supervisor when its peer is down while the container writes
//! (`seq 1 1000`): a peer that comes up late receives each record exactly once; one that never
//! comes up costs drops that `ps --format json` counts exactly (none for the file sink, whose
//! log is complete). In blocking mode `run` waits at most `drain-timeout` and says so on
//! stderr; in non-blocking mode the dead peer does not delay the container's end.

use harness::{stderr, stdout, TestSupervisor};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// `seq 1 1000`'s output.
fn seq_1000() -> String {
    (1..=1000).map(|n| format!("{n}\n")).collect()
}

/// A local address nothing listens on (yet).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `ps --format json`'s drop counters of container `id`: `(sink, records, bytes)`.
fn drops(sup: &TestSupervisor, id: &str) -> Vec<(String, u64, u64)> {
    let out = sup.engine(&["ps", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {v}"));
    c["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["sink"].as_str().unwrap().to_string(),
                d["dropped_records"].as_u64().unwrap(),
                d["dropped_bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_peer_that_comes_up_late_receives_each_record_once() {
    let addr = free_addr();
    let sup = TestSupervisor::start_with(&[
        "--monitor",
        "userspace",
        "--log-sink",
        "file",
        "--log-sink",
        &format!("tcp:address={addr}"),
    ]);
    // Up after the sink was retried a few times (100 ms, 200 ms, 400 ms, 800 ms).
    let peer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let l = TcpListener::bind(addr).unwrap();
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        got
    });
    let out = sup.run_container("late", "seq 1 1000", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), seq_1000(), "run prints every line once");
    let got = peer.join().unwrap();
    let mut counts = vec![0u32; 1001];
    for line in got.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let n: usize = v["log"].as_str().unwrap().trim_end().parse().unwrap();
        counts[n] += 1;
    }
    let wrong: Vec<(usize, u32)> = (1..=1000)
        .map(|n| (n, counts[n]))
        .filter(|&(_, c)| c != 1)
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "records not received exactly once (line, times): {wrong:?}; {} lines in all",
        got.lines().count()
    );
    assert_eq!(drops(&sup, "late"), [], "nothing dropped, by any sink");
}

/// Runs `seq 1 1000` as container `id` logging to the file sink and `tcp` (whose peer never
/// comes up); returns how long `run` took and its output, after checking that the file sink
/// has every byte and that only the TCP sink dropped: all of it.
fn run_dead_peer(id: &str, tcp: &str) -> (Duration, std::process::Output) {
    let sup = TestSupervisor::start();
    let t0 = Instant::now();
    let out = sup.run_container(id, "seq 1 1000", &["--log-opt", "file", "--log-opt", tcp]);
    let took = t0.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), seq_1000());
    assert_eq!(sup.log_bytes(id), seq_1000().as_bytes());
    let d = drops(&sup, id);
    assert_eq!(d.len(), 1, "only the TCP sink dropped: {d:?}");
    assert!(d[0].0.starts_with("tcp") && d[0].1 >= 1, "{d:?}");
    assert_eq!(
        d[0].2,
        seq_1000().len() as u64,
        "every byte the peer missed: {d:?}"
    );
    (took, out)
}

#[test]
fn a_peer_that_never_comes_up_is_waited_for_at_most_drain_timeout_and_counted() {
    let addr = free_addr();
    let (took, out) = run_dead_peer("never", &format!("tcp:address={addr},drain-timeout=2s"));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "the wait is bounded by drain-timeout: {took:?}"
    );
    let err = stderr(&out);
    let expected = format!("waiting up to 2s for log sink tcp:address={addr} to drain");
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("waiting up to"))
            .collect::<Vec<_>>(),
        [expected.as_str()],
        "one line saying what run waits for: {err}"
    );
}

#[test]
fn a_dead_peer_does_not_delay_the_end_in_non_blocking_mode() {
    let tcp = format!(
        "tcp:address={},mode=non-blocking,drain-timeout=30s",
        free_addr()
    );
    let (took, out) = run_dead_peer("nb", &tcp);
    assert!(
        took < Duration::from_secs(5),
        "run returns well before drain-timeout: {took:?}"
    );
    assert!(!stderr(&out).contains("waiting up to"), "{}", stderr(&out));
}
