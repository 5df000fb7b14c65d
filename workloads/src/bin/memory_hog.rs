//! `memory_hog [chunk_mb=8] [sleep_ms=1000]`: allocates `chunk_mb` MiB every `sleep_ms` ms,
//! touches every page, prints `allocation=N chunk=<chunk_mb>MB total=<T>MB`, forever.

use workloads::{arg, say, sleep_ms, touched, MIB};

fn main() {
    let chunk_mb: usize = arg(0, "chunk_mb", 8);
    let pause: u64 = arg(1, "sleep_ms", 1000);
    let mut held = Vec::new();
    for n in 1.. {
        held.push(touched(chunk_mb * MIB));
        say(&format!(
            "allocation={n} chunk={chunk_mb}MB total={}MB",
            n * chunk_mb
        ));
        sleep_ms(pause);
    }
}
