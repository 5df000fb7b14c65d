//! Shared helpers of the test workloads: positional arguments with defaults, and touching
//! memory so that it counts in RSS; the attacks of `probe escape` ([`escape`]).

pub mod escape;

use std::io::Write;

/// Size of one MiB, in bytes.
pub const MIB: usize = 1024 * 1024;

/// Positional argument `index` (0 = first after the program name) parsed as `T`, or
/// `default` when absent. Exits with status 2 and a message when it does not parse.
pub fn arg<T: std::str::FromStr>(index: usize, name: &str, default: T) -> T {
    match std::env::args().nth(index + 1) {
        None => default,
        Some(s) => s.parse().unwrap_or_else(|_| {
            eprintln!("bad value {s:?} for {name}");
            std::process::exit(2)
        }),
    }
}

/// Allocates `bytes` and writes to every page so that all of it is resident.
pub fn touched(bytes: usize) -> Vec<u8> {
    let mut v = vec![0u8; bytes];
    for page in v.chunks_mut(4096) {
        page[0] = 1;
    }
    // Keep the writes from being optimised away.
    std::hint::black_box(&mut v);
    v
}

/// Writes `line` and a newline to stdout and flushes it at once (stdout may be a pipe).
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Sleeps for `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_memory_is_resident_and_sized() {
        let v = touched(3 * 4096 + 1);
        assert_eq!(v.len(), 3 * 4096 + 1);
        assert!(v.chunks(4096).all(|p| p[0] == 1));
    }
}
