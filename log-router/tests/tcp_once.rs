//! The TCP sink behind the real router, with a peer that is down when the container writes:
//! a peer that comes up late receives each record exactly once; a peer that never comes up
//! costs drops counted exactly (and none for the file sink, whose log is complete), within
//! the drain timeout in blocking mode and at once in non-blocking mode.

mod common;

use common::*;
use proto::api::SinkDrops;
use proto::router::{FromRouter, SinkSpec};
use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// What `seq 1 1000` writes: 1000 lines, one `write(2)` (3893 bytes).
fn seq_1000() -> Vec<u8> {
    (1..=1000)
        .flat_map(|n| format!("{n}\n").into_bytes())
        .collect()
}

/// A local address nothing listens on (yet); checks the TCP sink was built.
fn free_addr() -> std::net::SocketAddr {
    built("libengine_sink_tcp.so");
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

fn sinks(tcp: &str) -> [SinkSpec; 2] {
    [
        SinkSpec::parse("file").unwrap(),
        SinkSpec::parse(tcp).unwrap(),
    ]
}

/// The last drop counters reported, per sink.
fn last_drops(seen: &[FromRouter]) -> Vec<SinkDrops> {
    seen.iter()
        .rev()
        .find_map(|m| match m {
            FromRouter::Drops { drops, .. } => Some(drops.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn a_peer_that_comes_up_late_receives_each_record_once() {
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("late.log");
    let mut link = start_router();
    // The sink is retried (100 ms, 200 ms, 400 ms, 800 ms...) before the peer is there.
    let peer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let l = TcpListener::bind(addr).unwrap();
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        got
    });
    let out = seq_1000();
    let seen = run_container(
        &mut link,
        "late",
        &log,
        &sinks(&format!("tcp:address={addr}")),
        &out,
        b"",
    );
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
    assert!(last_drops(&seen).is_empty(), "{seen:?}");
    assert_eq!(std::fs::read(&log).unwrap(), out);
    stop_router(link);
}

#[test]
fn a_peer_that_never_comes_costs_exact_drops_after_the_drain_timeout() {
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("never.log");
    let mut link = start_router();
    let out = seq_1000();
    let t0 = Instant::now();
    let tcp = format!("tcp:address={addr},drain-timeout=1s");
    let seen = run_container(&mut link, "never", &log, &sinks(&tcp), &out, b"");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "blocking: the wait is bounded by drain-timeout; took {took:?}"
    );
    assert_eq!(
        last_drops(&seen),
        [SinkDrops {
            sink: "tcp".into(),
            dropped_records: 1,
            dropped_bytes: out.len() as u64
        }],
        "exactly what the peer missed; nothing for the file sink"
    );
    assert_eq!(std::fs::read(&log).unwrap(), out);
    stop_router(link);
}

#[test]
fn a_dead_peer_never_delays_the_end_in_non_blocking_mode() {
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("nb.log");
    let mut link = start_router();
    let out = seq_1000();
    let t0 = Instant::now();
    let tcp = format!("tcp:address={addr},mode=non-blocking,drain-timeout=30s");
    let seen = run_container(&mut link, "nb", &log, &sinks(&tcp), &out, b"");
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "non-blocking: a dead peer does not delay the end; took {took:?}"
    );
    assert_eq!(
        last_drops(&seen),
        [SinkDrops {
            sink: "tcp".into(),
            dropped_records: 1,
            dropped_bytes: out.len() as u64
        }]
    );
    assert_eq!(std::fs::read(&log).unwrap(), out);
    stop_router(link);
}
