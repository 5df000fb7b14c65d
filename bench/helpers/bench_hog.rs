//! `bench_hog <limit_bytes> [extra_mib=16] [delay_ms=0]`: the reaction-time hog of
//! `bench/reaction.sh`.
//!
//! Sleeps `delay_ms` first (the caller draws it at random, so that the crossing falls at a
//! random phase of the monitor's scan interval rather than at a fixed offset from the
//! container's registration), then allocates `limit_bytes` + `extra_mib` MiB at once and touches it page by page, reading its
//! own resident set (`/proc/self/statm`) after every MiB. The moment the resident set first
//! exceeds `limit_bytes` it prints `crossed_at_us=<µs since the Unix epoch> rss=<bytes>`
//! (one line, flushed), then touches the rest and sleeps until killed. Built statically by
//! `bench/reaction.sh` with plain `rustc` (std only, no crates), and put in the container's
//! own rootfs layer.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PAGE: usize = 4096;
const MIB: usize = 1 << 20;

/// Resident set of this process, in bytes (0 if `/proc` is unreadable).
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * PAGE)
}

/// Microseconds since the Unix epoch, now.
fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(limit) = args.first().and_then(|a| a.parse::<usize>().ok()) else {
        eprintln!("usage: bench_hog <limit_bytes> [extra_mib] [delay_ms]");
        std::process::exit(2);
    };
    let extra_mib: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let delay_ms: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(delay_ms));
    let mut block = vec![0u8; limit + extra_mib * MIB];
    let mut crossed = false;
    for (i, page) in block.chunks_mut(PAGE).enumerate() {
        // A volatile-free but observable write: the value depends on the index.
        page[0] = (i as u8) | 1;
        if !crossed && (i + 1) % (MIB / PAGE) == 0 {
            let rss = rss_bytes();
            if rss > limit {
                crossed = true;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "crossed_at_us={} rss={rss}", now_us());
                let _ = out.flush();
            }
        }
    }
    std::hint::black_box(&block);
    if !crossed {
        println!("never_crossed rss={}", rss_bytes());
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
