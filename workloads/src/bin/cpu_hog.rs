//! `cpu_hog [seconds=10]`: keeps one CPU busy for `seconds` s, then exits 0.

use std::time::{Duration, Instant};
use workloads::{arg, say};

fn main() {
    let seconds: u64 = arg(0, "seconds", 10);
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut x: u64 = 0;
    while Instant::now() < end {
        for _ in 0..100_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    say(&format!("cpu_hog done seconds={seconds}"));
}
