//! The TCP sink behind the real router: a peer that starts late and one that hangs up in the
//! middle of a stream lose nothing in blocking mode; in non-blocking mode a peer that never
//! comes back costs counted drops, never the file sink's records or the log's completion.

mod common;

use common::*;
use proto::router::{FromRouter, SinkSpec};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

const LINES: u64 = 50_000;
/// Lines written before the peer hangs up; the rest only after.
const FIRST: u64 = 25_000;
/// Lines read on the first connection before hanging up.
const HANG_UP_AT: usize = 10_000;
const T: Duration = Duration::from_secs(60);

/// A local address nothing listens on (yet); checks the TCP sink was built.
fn free_addr() -> std::net::SocketAddr {
    built("libengine_sink_tcp.so");
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

/// Accepts the sink's next connection before `deadline`, with reads bounded by it too.
fn accept_by(server: &TcpListener, deadline: Instant, seen: usize) -> TcpStream {
    server.set_nonblocking(true).unwrap();
    loop {
        match server.accept() {
            Ok((c, _)) => {
                c.set_nonblocking(false).unwrap();
                return c;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "the sink did not (re)connect within {T:?}; {seen} of {LINES} lines seen"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Reads JSON lines from one connection until it ends (EOF), calling `on_line` with the
/// number of distinct lines seen so far; panics with a clear message if the connection is
/// neither fed nor closed before `deadline`.
fn read_lines(
    conn: TcpStream,
    deadline: Instant,
    seen: &mut HashSet<u64>,
    mut on_line: impl FnMut(usize),
) {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no EOF from the sink within {T:?}; {} of {LINES} lines seen",
            seen.len()
        );
        r.get_ref().set_read_timeout(Some(left)).unwrap();
        match r.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue;
            }
            Err(e) => panic!("reading from the sink: {e}"),
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["container"], "net");
        assert_eq!(v["stream"], "stdout");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        let log = v["log"].as_str().unwrap();
        seen.insert(log.trim_end().strip_prefix("n ").unwrap().parse().unwrap());
        line.clear();
        on_line(seen.len());
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
    let (hung_up_tx, hung_up_rx) = std::sync::mpsc::channel::<()>();
    // The "container": the first part, then (after the hang-up, or if the test gave up) the
    // rest; its streams end when it returns.
    let writer = std::thread::spawn(move || {
        let _err = err_w;
        let mut w = BufWriter::new(out_w);
        for n in 0..FIRST {
            writeln!(w, "n {n}").unwrap();
        }
        w.flush().unwrap();
        let _ = hung_up_rx.recv();
        for n in FIRST..LINES {
            writeln!(w, "n {n}").unwrap();
        }
    });
    // The peer starts late.
    std::thread::sleep(Duration::from_millis(300));
    let server = TcpListener::bind(addr).unwrap();
    let deadline = Instant::now() + T;
    let mut seen = HashSet::new();
    // First connection: read a part, then hang up (FIN) and read what is in flight until the
    // sink closes its end (it notices the FIN before sending the rest).
    let c1 = accept_by(&server, deadline, 0);
    let c1w = c1.try_clone().unwrap();
    let mut hung_up = Some(hung_up_tx);
    read_lines(c1, deadline, &mut seen, |n| {
        if n >= HANG_UP_AT {
            if let Some(tx) = hung_up.take() {
                c1w.shutdown(Shutdown::Write).unwrap();
                let _ = tx.send(());
            }
        }
    });
    assert!(hung_up.is_none(), "the stream ended before the hang-up");
    // The sink reconnects and sends what the kernel had not accepted on the first one.
    let mut connections = 1;
    while (seen.len() as u64) < LINES {
        let c = accept_by(&server, deadline, seen.len());
        connections += 1;
        read_lines(c, deadline, &mut seen, |_| {});
    }
    assert!(
        connections >= 2,
        "the sink never reconnected after the hang-up"
    );
    wait_for(
        &mut link,
        T,
        |m| matches!(m, FromRouter::Drained { id } if id == "net"),
    );
    writer.join().unwrap();
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
