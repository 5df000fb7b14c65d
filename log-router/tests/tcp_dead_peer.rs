//! The TCP sink behind the real router, with a peer that never comes up: its drops are counted
//! exactly (and none for the file sink, whose log is complete), within the drain timeout in
//! blocking mode and at once in non-blocking mode. (A peer that comes up late receiving each
//! record once: `tests/tests/tcp_delivery.rs`, through the supervisor.)

mod common;

use common::*;
use proto::api::SinkDrops;
use proto::router::{FromRouter, SinkSpec};
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

/// Routes `seq 1 1000`'s output to the file sink and `tcp` (whose peer never comes up);
/// returns how long until `Drained`, and the reports until then. Checks the file sink's log.
fn run_dead_peer(tcp: &str) -> (Duration, Vec<FromRouter>) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dead.log");
    let mut link = start_router();
    let out = seq_1000();
    let t0 = Instant::now();
    let seen = run_container(&mut link, "dead", &log, &sinks(tcp), &out, b"");
    let took = t0.elapsed();
    assert_eq!(
        std::fs::read(&log).unwrap(),
        out,
        "the file sink has it all"
    );
    stop_router(link);
    (took, seen)
}

/// What the peer missed, exactly: the one record of `seq 1 1000`; nothing for the file sink.
fn all_of_seq_dropped_by_tcp() -> Vec<SinkDrops> {
    vec![SinkDrops {
        sink: "tcp".into(),
        dropped_records: 1,
        dropped_bytes: seq_1000().len() as u64,
    }]
}

#[test]
fn a_peer_that_never_comes_costs_exact_drops_after_the_drain_timeout() {
    let (took, seen) = run_dead_peer(&format!("tcp:address={},drain-timeout=1s", free_addr()));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "blocking: the wait is bounded by drain-timeout; took {took:?}"
    );
    assert_eq!(last_drops(&seen), all_of_seq_dropped_by_tcp());
    let draining = seen
        .iter()
        .filter(|m| matches!(m, FromRouter::Draining { .. }));
    assert_eq!(draining.count(), 1, "{seen:?}");
}

#[test]
fn a_dead_peer_never_delays_the_end_in_non_blocking_mode() {
    let tcp = format!(
        "tcp:address={},mode=non-blocking,drain-timeout=30s",
        free_addr()
    );
    let (took, seen) = run_dead_peer(&tcp);
    assert!(
        took < Duration::from_secs(3),
        "non-blocking: a dead peer does not delay the end; took {took:?}"
    );
    assert_eq!(last_drops(&seen), all_of_seq_dropped_by_tcp());
    assert!(
        !seen
            .iter()
            .any(|m| matches!(m, FromRouter::Draining { .. })),
        "{seen:?}"
    );
}
