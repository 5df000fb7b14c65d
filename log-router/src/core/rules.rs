//! The timing rules of the flow: how many chunks a stream takes per turn, how long small
//! writes are left to gather in the pipe, and how often drop counters are reported.

use std::time::{Duration, Instant};

/// Chunks taken from one stream per turn before other streams get theirs.
pub const CHUNKS_PER_TURN: usize = 8;

/// Bytes in a pipe from which a chunk is taken at once; below, they are left to gather for up
/// to [`COALESCE_WAIT`] first.
pub const COALESCE_BYTES: usize = 64 * 1024;

/// Longest time bytes are left in a pipe to gather into a larger chunk. A container writing
/// many small pieces (one line per `write(2)`) would otherwise cost a hand-off to the sink
/// threads, a sink write and two thread wake-ups per few lines; a container's end (hang-up)
/// is never waited for. `mio` sleeps whole milliseconds, so a wait lasts 1–2 ms.
pub const COALESCE_WAIT: Duration = Duration::from_millis(1);

/// How often changed drop counters are reported.
pub const DROPS_EVERY: Duration = Duration::from_secs(1);

/// Whether to leave `pending` bytes in the pipe to gather (see [`COALESCE_WAIT`]): not after
/// the writers closed (`hup`), not once enough are there, not right after a full chunk
/// (`last_full`: the writer is fast; waiting could fill the pipe and stall it while the
/// router sleeps), not past `until` (the end of a gathering already begun).
pub fn gathers(
    pending: usize,
    hup: bool,
    last_full: bool,
    until: Option<Instant>,
    now: Instant,
) -> bool {
    !hup && !last_full && pending > 0 && pending < COALESCE_BYTES && until.is_none_or(|t| now < t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pending_bytes_gather_for_a_bounded_time() {
        let now = Instant::now();
        let soon = Some(now + COALESCE_WAIT);
        assert!(gathers(100, false, false, None, now));
        assert!(gathers(100, false, false, soon, now));
        assert!(
            !gathers(100, false, false, Some(now), now),
            "the wait is over"
        );
        assert!(
            !gathers(100, true, false, None, now),
            "the writers are gone"
        );
        assert!(!gathers(100, false, true, None, now), "after a full chunk");
        assert!(!gathers(COALESCE_BYTES, false, false, None, now), "enough");
        assert!(!gathers(0, false, false, None, now), "nothing to gather");
    }
}
