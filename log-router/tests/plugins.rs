//! Third-party sinks: one written in C against `engine_sink.h` (built here with `cc`) and one
//! in Rust outside the workspace (built here with cargo), loaded by the real router next to the
//! file sink; every record must arrive, and a panicking Rust sink must not hurt the router.

mod common;

use common::driver::DriverError;
use common::*;
use harness::plugins::{build_c_sink, build_rust_sink};
use proto::router::{FromRouter, SinkSpec};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// The file sink plus the out-of-tree Rust sink (built here) with `options`.
fn file_and_rust_sink(dir: &Path, options: &str) -> [SinkSpec; 2] {
    let so = build_rust_sink(dir);
    let out = dir.join("rs.out");
    let rs = format!("{}:out={},{options}", so.display(), out.display());
    [
        SinkSpec::parse("file").unwrap(),
        SinkSpec::parse(&rs).unwrap(),
    ]
}

/// Parses "<stream> <flags> <len> <id>\n<data>\n" records.
fn parse(bytes: &[u8]) -> Vec<(u32, u32, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').unwrap();
        let head = String::from_utf8(rest[..nl].to_vec()).unwrap();
        let f: Vec<&str> = head.split(' ').collect();
        let len: usize = f[2].parse().unwrap();
        let data = rest[nl + 1..nl + 1 + len].to_vec();
        assert_eq!(rest[nl + 1 + len], b'\n');
        out.push((
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[3].to_string(),
            data,
        ));
        rest = &rest[nl + 2 + len..];
    }
    out
}

/// Checks that the records of one sink carry exactly the bytes written, per stream.
fn check_records(records: &[(u32, u32, String, Vec<u8>)], stdout: &[u8], stderr: &[u8]) {
    for (stream, want) in [(1, stdout), (2, stderr)] {
        let mut got = Vec::new();
        for (s, flags, id, data) in records.iter().filter(|r| r.0 == stream) {
            assert_eq!(id, "p");
            assert!(!data.is_empty() && data.len() <= 16384);
            assert_eq!(
                *flags == 1,
                data.last() != Some(&b'\n'),
                "partial flag of {data:?}"
            );
            let _ = s;
            got.extend_from_slice(data);
        }
        assert_eq!(got, want, "stream {stream}");
    }
}

#[test]
fn c_and_out_of_tree_rust_sinks_get_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let c_so = build_c_sink(dir.path(), "libc_test_sink.so", &[]);
    let rs_so = build_rust_sink(dir.path());
    let c_out = dir.path().join("c.out");
    let rs_out = dir.path().join("rs.out");
    let sinks = vec![
        SinkSpec::parse("file").unwrap(),
        SinkSpec::parse(&format!("{}:out={}", c_so.display(), c_out.display())).unwrap(),
        SinkSpec::parse(&format!("{}:out={}", rs_so.display(), rs_out.display())).unwrap(),
    ];
    built("libengine_sink_file.so");
    let mut link = Router::start(&built("log-router"), sinks).expect("configured");
    let log = dir.path().join("p.log");
    let (out_r, mut out_w) = pipe();
    let (err_r, mut err_w) = pipe();
    link.add_container("p", &log, out_r.as_fd(), err_r.as_fd(), &[])
        .unwrap();
    let mut stdout = b"line one\n\xff\xfe not utf-8\n".to_vec();
    stdout.extend(std::iter::repeat_n(b'x', 40_000));
    stdout.extend_from_slice(b"\nlast, no newline");
    let stderr = b"err one\nerr two\n".to_vec();
    out_w.write_all(&stdout).unwrap();
    err_w.write_all(&stderr).unwrap();
    drop((out_w, err_w));
    wait_for(
        &mut link,
        T,
        |m| matches!(m, FromRouter::Drained { id } if id == "p"),
    );
    check_records(&parse(&std::fs::read(&c_out).unwrap()), &stdout, &stderr);
    check_records(&parse(&std::fs::read(&rs_out).unwrap()), &stdout, &stderr);
    assert_eq!(
        std::fs::read(&log).unwrap().len(),
        stdout.len() + stderr.len()
    );
    stop_router(link);
}

#[test]
fn a_panicking_rust_sink_is_reported_and_the_router_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let sinks = file_and_rust_sink(dir.path(), "panic-on=BOOM");
    let mut link = start_router();
    let log = dir.path().join("p.log");
    let seen = run_container(&mut link, "p", &log, &sinks, b"before\nBOOM\nafter\n", b"");
    assert!(
        seen.iter().any(|m| matches!(m, FromRouter::SinkError { message, .. } if message.contains("asked to panic on BOOM"))),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|m| matches!(m, FromRouter::Drops { drops, .. } if drops.iter().any(|d| d.dropped_records > 0))),
        "{seen:?}"
    );
    assert_eq!(std::fs::read(&log).unwrap(), b"before\nBOOM\nafter\n");
    // The same router still routes a new container.
    let log2 = dir.path().join("q.log");
    run_container(&mut link, "q", &log2, &[], b"still here\n", b"");
    assert_eq!(std::fs::read(&log2).unwrap(), b"still here\n");
    stop_router(link);
}

#[test]
fn unsupported_versions_and_short_tables_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = build_c_sink(dir.path(), "libv2.so", &["-DSINK_VERSION=2"]);
    let short = build_c_sink(dir.path(), "libshort.so", &["-DSINK_SIZE=16"]);
    for (so, want) in [(v2, "ABI version 2"), (short, "struct_size 16")] {
        let spec = SinkSpec::parse(&format!("{}:out=/dev/null", so.display())).unwrap();
        let err = Router::start(&built("log-router"), vec![spec]).unwrap_err();
        assert!(
            matches!(&err, DriverError::Refused(m) if m.contains(want)),
            "{err}"
        );
    }
}

/// Mounts a tmpfs of `size` on `dir`; unmounted on drop.
struct SmallTmpfs(PathBuf);

impl SmallTmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size}").as_str()),
        )
        .expect("mount tmpfs (tests run as root)");
        SmallTmpfs(dir.to_path_buf())
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn a_full_disk_is_reported_once_and_stops_neither_the_container_nor_other_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let c_so = build_c_sink(dir.path(), "libc_test_sink.so", &[]);
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let _fs = SmallTmpfs::mount(&small, "64k");
    let c_out = dir.path().join("c.out");
    let sinks = [
        SinkSpec::parse("file:drain-timeout=300ms").unwrap(),
        SinkSpec::parse(&format!("{}:out={}", c_so.display(), c_out.display())).unwrap(),
    ];
    let mut link = start_router();
    let mut stdout = Vec::new();
    for n in 0..40_000 {
        stdout.extend_from_slice(format!("line {n}\n").as_bytes());
    }
    // Blocking mode by default: a failing sink must still not hold the container back, or the
    // 400 KB written here would never fit through the pipe.
    let seen = run_container(&mut link, "p", &small.join("p.log"), &sinks, &stdout, b"");
    let errors: Vec<&FromRouter> = seen
        .iter()
        .filter(|m| matches!(m, FromRouter::SinkError { .. }))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        matches!(errors[0], FromRouter::SinkError { sink, message, .. } if sink == "file" && message.contains("No space left")),
        "{errors:?}"
    );
    check_records(&parse(&std::fs::read(&c_out).unwrap()), &stdout, b"");
    assert!(seen
        .iter()
        .any(|m| matches!(m, FromRouter::Drops { drops, .. } if drops[0].sink == "file")));
    stop_router(link);
}

#[test]
fn a_sink_stuck_in_a_call_does_not_keep_the_container_from_ending() {
    let dir = tempfile::tempdir().unwrap();
    let sinks = file_and_rust_sink(dir.path(), "hang-on=HANG,drain-timeout=100ms");
    let mut link = start_router();
    let log = dir.path().join("h.log");
    let started = std::time::Instant::now();
    let seen = run_container(&mut link, "h", &log, &sinks, b"a\nHANG\nb\n", b"");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(std::fs::read(&log).unwrap(), b"a\nHANG\nb\n");
    assert!(
        seen.iter().any(|m| matches!(m, FromRouter::Drops { drops, .. } if drops.iter().any(|d| d.sink.ends_with(".so")))),
        "{seen:?}"
    );
    // The router still works (the stuck thread is abandoned, not joined).
    let log2 = dir.path().join("h2.log");
    run_container(&mut link, "h2", &log2, &[], b"fine\n", b"");
    assert_eq!(std::fs::read(&log2).unwrap(), b"fine\n");
    stop_router(link);
}

/// Writes `len` bytes of 100-byte lines to a routed container; returns how long the writes
/// took, the bytes written, and the reports.
fn timed_writer(
    link: &mut Router,
    log: &Path,
    sinks: &[SinkSpec],
    len: usize,
) -> (Duration, Vec<u8>, Vec<FromRouter>) {
    let mut data = Vec::with_capacity(len);
    for n in 0.. {
        if data.len() >= len {
            break;
        }
        data.extend_from_slice(format!("{n:099}\n").as_bytes());
    }
    let (out_r, mut out_w) = pipe();
    let (err_r, err_w) = pipe();
    link.add_container("slow", log, out_r.as_fd(), err_r.as_fd(), sinks)
        .unwrap();
    let copy = data.clone();
    let writer = std::thread::spawn(move || {
        let t = std::time::Instant::now();
        out_w.write_all(&copy).unwrap();
        t.elapsed()
    });
    let took = writer.join().unwrap();
    drop(err_w);
    let seen = wait_for(link, T, |m| matches!(m, FromRouter::Drained { .. }));
    (took, data, seen)
}

#[test]
fn a_slow_sink_slows_the_writer_in_blocking_mode_and_drops_in_non_blocking_mode() {
    let dir = tempfile::tempdir().unwrap();
    // 4 MiB in 16 KiB records at 5 ms each: about 1.3 s of sink time, 1 MiB of pipe.
    let [file, slow] = file_and_rust_sink(dir.path(), "sleep=5ms");
    let mut link = start_router();
    let blocking = [file.clone(), slow.clone()];
    let (took, data, seen) = timed_writer(&mut link, &dir.path().join("b.log"), &blocking, 4 << 20);
    assert!(
        took > Duration::from_millis(600),
        "the writer was not held back: {took:?}"
    );
    assert!(
        !seen.iter().any(|m| matches!(m, FromRouter::Drops { .. })),
        "{seen:?}"
    );
    let got: Vec<u8> = parse(&std::fs::read(dir.path().join("rs.out")).unwrap())
        .into_iter()
        .flat_map(|r| r.3)
        .collect();
    assert_eq!(got, data, "the slow sink got everything");

    std::fs::remove_file(dir.path().join("rs.out")).unwrap();
    let mut nb = slow.clone();
    nb.options.push(("mode".into(), "non-blocking".into()));
    nb.options.push(("max-buffer-size".into(), "64k".into()));
    let log = dir.path().join("n.log");
    let (took, data, seen) = timed_writer(&mut link, &log, &[file, nb], 4 << 20);
    assert!(
        took < Duration::from_millis(600),
        "the writer was held back: {took:?}"
    );
    assert_eq!(
        std::fs::read(&log).unwrap(),
        data,
        "the file sink got everything"
    );
    assert!(
        seen.iter().any(|m| matches!(m, FromRouter::Drops { drops, .. } if drops.iter().any(|d| d.dropped_records > 0))),
        "{seen:?}"
    );
    stop_router(link);
}
