//! `io_pulse [iterations=20] [sleep_ms=200]`: per iteration prints a numbered line to stdout
//! and one to stderr, then sleeps `sleep_ms` ms.

use std::io::Write;
use workloads::{arg, say, sleep_ms};

fn main() {
    let iterations: u64 = arg(0, "iterations", 20);
    let pause: u64 = arg(1, "sleep_ms", 200);
    for i in 1..=iterations {
        say(&format!("io_pulse stdout line={i}"));
        let _ = writeln!(std::io::stderr(), "io_pulse stderr line={i}");
        if i < iterations {
            sleep_ms(pause);
        }
    }
}
