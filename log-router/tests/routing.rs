//! The real router binary with the real file sink: exact bytes, `Drained` only once the bytes
//! are in the file, many short streams, refused configurations, clean shutdown.

mod common;

use common::driver::DriverError;
use common::*;
use proto::router::{FromRouter, SinkSpec};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn wait_file(path: &Path, want: &[u8]) {
    let deadline = Instant::now() + T;
    while std::fs::read(path).unwrap_or_default() != want {
        assert!(
            Instant::now() < deadline,
            "{} never became {want:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn bytes_arrive_unchanged_and_drained_follows_the_last_byte() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/c1.log");
    let mut link = start_router();
    let (out_r, mut out_w) = pipe();
    let (err_r, mut err_w) = pipe();
    link.add_container("c1", &log, out_r.as_fd(), err_r.as_fd(), &[])
        .unwrap();
    err_w.write_all(b"to stderr\n").unwrap();
    wait_file(&log, b"to stderr\n");
    out_w
        .write_all(b"plain line\n\xff\xfe\x00\x1b[31m not utf-8\n")
        .unwrap();
    let long = vec![b'L'; 40_000];
    out_w.write_all(&long).unwrap();
    out_w.write_all(b"\nlast line without newline").unwrap();
    drop(out_w);
    drop(err_w);
    wait_for(
        &mut link,
        T,
        |m| matches!(m, FromRouter::Drained { id } if id == "c1"),
    );
    // Read at once: Drained must come after the bytes are written.
    let got = std::fs::read(&log).unwrap();
    let mut want = b"to stderr\nplain line\n\xff\xfe\x00\x1b[31m not utf-8\n".to_vec();
    want.extend_from_slice(&long);
    want.extend_from_slice(b"\nlast line without newline");
    assert_eq!(got, want);
    stop_router(link);
}

#[test]
fn five_hundred_short_streams_each_complete() {
    raise_nofile();
    let dir = tempfile::tempdir().unwrap();
    let mut link = start_router();
    let mut held = std::collections::HashMap::new();
    let mut drained = 0;
    for wave in 0..10 {
        for i in 0..50 {
            let id = format!("s{wave}-{i}");
            let (out_r, mut out_w) = pipe();
            let (err_r, mut err_w) = pipe();
            let log = dir.path().join(format!("{id}.log"));
            link.add_container(&id, &log, out_r.as_fd(), err_r.as_fd(), &[])
                .unwrap();
            out_w.write_all(b"a\n").unwrap();
            err_w.write_all(b"b").unwrap();
            held.insert(id, (out_r, err_r, log));
        }
        let target = drained + 50;
        wait_for(&mut link, T, |m| {
            if let FromRouter::Drained { id } = m {
                let (_, _, log) = held.remove(id).expect("drained once, for a known id");
                let got = std::fs::read(&log).unwrap();
                assert!(got == b"a\nb" || got == b"ba\n", "{id}: {got:?}");
                drained += 1;
            }
            drained == target
        });
    }
    assert_eq!(drained, 500);
    stop_router(link);
}

#[test]
fn bad_sinks_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("not-a-library.so");
    std::fs::write(&text, "just text\n").unwrap();
    let no_entry = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or("/lib/x86_64-linux-gnu/libc.so.6");
    let cases = [
        ("relative/custom.so".to_string(), "not absolute"),
        ("nosuch".to_string(), "unknown sink"),
        (text.display().to_string(), "not a shared object"),
        (no_entry.to_string(), "does not export `engine_sink_entry`"),
        ("file:colour=red".to_string(), "unknown option `colour`"),
        ("file:mode=sometimes".to_string(), "mode `sometimes`"),
        ("file:log-path=/x".to_string(), "set by the router"),
    ];
    built("libengine_sink_file.so");
    for (spec, want) in cases {
        let spec = SinkSpec::parse(&spec).unwrap();
        let err = Router::start(&built("log-router"), vec![spec.clone()]).unwrap_err();
        match &err {
            DriverError::Refused(m) => assert!(m.contains(want), "{spec}: `{m}` lacks `{want}`"),
            other => panic!("{spec}: {other}"),
        }
    }
}

#[test]
fn add_with_a_bad_sink_reports_and_still_drains() {
    let dir = tempfile::tempdir().unwrap();
    let mut link = start_router();
    let bad = [SinkSpec::parse("/nonexistent/sink.so").unwrap()];
    let log = dir.path().join("x.log");
    let seen = run_container(&mut link, "x", &log, &bad, b"discarded\n", b"");
    assert!(
        matches!(&seen[0], FromRouter::AddFailed { id, message } if id == "x" && message.contains("/nonexistent/sink.so")),
        "{seen:?}"
    );
    // What it threw away is counted as dropped, before `Drained`.
    let drops = seen.iter().rev().find_map(|m| match m {
        FromRouter::Drops { drops, .. } => Some(drops.clone()),
        _ => None,
    });
    assert_eq!(
        drops,
        Some(vec![proto::api::SinkDrops {
            sink: "discarded".into(),
            dropped_records: 1,
            dropped_bytes: 10,
        }]),
        "{seen:?}"
    );
    stop_router(link);
}

#[test]
fn per_container_sinks_are_validated_before_start_and_reports_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut link = start_router();
    let (out_r, mut out_w) = pipe();
    let (err_r, err_w) = pipe();
    let log = dir.path().join("v.log");
    link.add_container("v", &log, out_r.as_fd(), err_r.as_fd(), &[])
        .unwrap();
    out_w.write_all(b"kept\n").unwrap();
    drop((out_w, err_w));
    std::thread::sleep(Duration::from_millis(100));
    let opts = ["rotating:max-size=1m".to_string(), "max-file=0".to_string()];
    let sinks = proto::router::apply_log_opts(&[], &opts).unwrap();
    let err = link.validate(&sinks).unwrap_err();
    assert!(err.to_string().contains("max-file"), "{err}");
    link.validate(&proto::router::apply_log_opts(&[], &opts[..1]).unwrap())
        .unwrap();
    // The Drained that arrived while validating is not lost.
    wait_for(
        &mut link,
        T,
        |m| matches!(m, FromRouter::Drained { id } if id == "v"),
    );
    assert_eq!(std::fs::read(&log).unwrap(), b"kept\n");
    stop_router(link);
}
