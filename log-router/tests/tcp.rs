//! The TCP sink behind the real router: a peer that starts late and one that hangs up in the
//! middle of a stream lose nothing in blocking mode; in non-blocking mode a peer that never
//! comes back costs counted drops, never the file sink's records or the log's completion.

mod common;

use common::*;
use proto::router::{FromRouter, SinkSpec};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

const LINES: u64 = 50_000;
const T: Duration = Duration::from_secs(60);

/// A local address nothing listens on (yet); checks the TCP sink was built.
fn free_addr() -> std::net::SocketAddr {
    built("libengine_sink_tcp.so");
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

/// Reads JSON lines from one connection until it ends or `stop` says so; returns the line
/// numbers seen and whether `last` was among them.
fn read_lines(conn: TcpStream, seen: &mut HashSet<u64>, mut stop: impl FnMut(usize) -> bool) {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    while r.read_line(&mut line).unwrap() > 0 {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["container"], "net");
        assert_eq!(v["stream"], "stdout");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        let log = v["log"].as_str().unwrap();
        seen.insert(log.trim_end().strip_prefix("n ").unwrap().parse().unwrap());
        line.clear();
        if stop(seen.len()) {
            return;
        }
    }
}

#[test]
fn late_peer_and_hang_up_lose_nothing_in_blocking_mode() {
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("net.log");
    let mut link = start_router();
    let sinks = [
        SinkSpec::parse("file").unwrap(),
        SinkSpec::parse(&format!("tcp:address={addr},format=json_lines")).unwrap(),
    ];
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    link.add_container("net", &log, out_r.as_fd(), err_r.as_fd(), &sinks)
        .unwrap();
    let writer = std::thread::spawn(move || {
        let mut w = BufWriter::new(out_w);
        for n in 0..LINES {
            writeln!(w, "n {n}").unwrap();
        }
    });
    // The peer starts late.
    std::thread::sleep(Duration::from_millis(300));
    let server = TcpListener::bind(addr).unwrap();
    let mut seen = HashSet::new();
    // First connection: read a part, then hang up (FIN), still reading what was in flight.
    let (c1, _) = server.accept().unwrap();
    let mut hung_up = false;
    let c1b = c1.try_clone().unwrap();
    read_lines(c1, &mut seen, |n| {
        if n >= 10_000 && !hung_up {
            hung_up = true;
            c1b.shutdown(Shutdown::Write).unwrap();
        }
        false
    });
    assert!(hung_up, "the stream ended before the hang-up");
    // The sink reconnects and sends the rest.
    let (c2, _) = server.accept().unwrap();
    read_lines(c2, &mut seen, |n| n as u64 == LINES);
    writer.join().unwrap();
    drop(err_w);
    wait_for(
        &mut link,
        T,
        |m| matches!(m, FromRouter::Drained { id } if id == "net"),
    );
    let missing: Vec<u64> = (0..LINES).filter(|n| !seen.contains(n)).take(5).collect();
    assert!(missing.is_empty(), "missing {missing:?}");
    assert_eq!(
        std::fs::read(&log)
            .unwrap()
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64,
        LINES
    );
    stop_router(link);
}

#[test]
fn an_absent_peer_in_non_blocking_mode_costs_counted_drops_only() {
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("net.log");
    let mut link = start_router();
    let tcp =
        format!("tcp:address={addr},mode=non-blocking,max-buffer-size=64k,drain-timeout=500ms");
    let sinks = [
        SinkSpec::parse("file").unwrap(),
        SinkSpec::parse(&tcp).unwrap(),
    ];
    let mut out = Vec::new();
    for n in 0..LINES {
        out.extend_from_slice(format!("n {n}\n").as_bytes());
    }
    let seen = run_container(&mut link, "net", &log, &sinks, &out, b"");
    assert_eq!(
        std::fs::read(&log).unwrap(),
        out,
        "the file sink got everything"
    );
    assert!(
        seen.iter().any(|m| matches!(m, FromRouter::SinkError { sink, message, .. } if sink == "tcp" && message.contains("cannot connect"))),
        "{seen:?}"
    );
    let drops = seen.iter().rev().find_map(|m| match m {
        FromRouter::Drops { drops, .. } => Some(drops.clone()),
        _ => None,
    });
    let d = &drops.expect("drops reported")[0];
    assert_eq!(d.sink, "tcp");
    assert!(d.dropped_records > 0 && d.dropped_bytes > 0, "{d:?}");
    stop_router(link);
}
