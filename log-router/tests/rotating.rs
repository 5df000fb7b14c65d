//! The rotating sink behind the real router: a container writing numbered lines as fast as it
//! can; across every rotation each line is in exactly one file, whole, in order.

mod common;

use common::*;
use proto::router::{FromRouter, SinkSpec};
use std::io::{BufWriter, Write};
use std::os::fd::AsFd;
use std::time::Duration;

const LINES: u64 = 400_000;

#[test]
fn fast_writer_loses_and_repeats_nothing_across_rotations() {
    built("libengine_sink_rotating.so");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rot.log");
    let mut link = start_router();
    let sinks = [SinkSpec::parse("rotating:max-size=256k,max-file=1000,compress=true").unwrap()];
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    link.add_container("rot", &log, out_r.as_fd(), err_r.as_fd(), &sinks)
        .unwrap();
    let writer = std::thread::spawn(move || {
        let mut w = BufWriter::with_capacity(64 * 1024, out_w);
        for n in 0..LINES {
            writeln!(w, "line {n} of the fast writer").unwrap();
        }
    });
    writer.join().unwrap();
    drop(err_w);
    wait_for(
        &mut link,
        Duration::from_secs(60),
        |m| matches!(m, FromRouter::Drained { id } if id == "rot"),
    );
    let files = logstore::rotate::files(&log);
    assert!(files.len() > 10, "only {} files", files.len());
    let mut next = 0u64;
    for f in &files {
        let bytes = logstore::rotate::read_bytes(f).unwrap();
        assert!(
            bytes.len() <= 256 * 1024,
            "{} is {} bytes",
            f.display(),
            bytes.len()
        );
        assert!(bytes.ends_with(b"\n"), "{} ends inside a line", f.display());
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert_eq!(line, format!("line {next} of the fast writer").as_bytes());
            next += 1;
        }
    }
    assert_eq!(next, LINES);
    stop_router(link);
}
