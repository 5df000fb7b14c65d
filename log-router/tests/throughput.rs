//! Throughput of the router with the file sink against the ceiling of writing the same bytes
//! straight to a file, with the same writes. Ignored by default (it moves `ENGINE_BENCH_MIB`,
//! default 1024, MiB):
//! `cargo test --release -p log-router --test throughput -- --ignored --nocapture`.

mod common;

use common::*;
use proto::router::FromRouter;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// One write of the workload: `ENGINE_BENCH_BLOCK` bytes (default 4096, what stdio buffers)
/// of 100-byte text lines.
fn block() -> Vec<u8> {
    let size: usize = std::env::var("ENGINE_BENCH_BLOCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096);
    let mut b = Vec::with_capacity(size);
    let mut n = 0u64;
    while b.len() + 100 <= size {
        let line = format!(
            "{n:012} the quick brown fox jumps over the lazy dog, again and again and again\n"
        );
        b.extend_from_slice(&line.as_bytes()[..100.min(line.len())]);
        n += 1;
    }
    b
}

fn mib() -> usize {
    std::env::var("ENGINE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

#[test]
#[ignore]
fn router_file_sink_against_direct_file() {
    let dir = tempfile::tempdir_in(
        std::env::var("ENGINE_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()),
    )
    .unwrap();
    let data = block();
    let len = data.len();
    let blocks = mib() * 1024 * 1024 / data.len();
    let total = (blocks * data.len()) as f64 / (1024.0 * 1024.0);

    let direct = dir.path().join("direct.log");
    let t = Instant::now();
    let mut f = std::fs::File::create(&direct).unwrap();
    for _ in 0..blocks {
        f.write_all(&data).unwrap();
    }
    drop(f);
    let ceiling = t.elapsed();
    std::fs::remove_file(&direct).unwrap();

    let mut link = start_router();
    let log = dir.path().join("routed.log");
    let (out_r, mut out_w) = pipe();
    let (err_r, err_w) = pipe();
    let t = Instant::now();
    link.add_container("bench", &log, out_r.as_fd(), err_r.as_fd(), &[])
        .unwrap();
    let writer = std::thread::spawn(move || {
        for _ in 0..blocks {
            out_w.write_all(&data).unwrap();
        }
    });
    writer.join().unwrap();
    drop(err_w);
    wait_for(&mut link, Duration::from_secs(600), |m| {
        matches!(m, FromRouter::Drained { .. })
    });
    let routed = t.elapsed();
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", link.pid())).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .to_string();
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        (blocks * len) as u64
    );
    println!(
        "{total:.0} MiB: direct {:.0} MiB/s, routed {:.0} MiB/s, ratio {:.2}; router {hwm}",
        total / ceiling.as_secs_f64(),
        total / routed.as_secs_f64(),
        ceiling.as_secs_f64() / routed.as_secs_f64()
    );
    stop_router(link);
}
