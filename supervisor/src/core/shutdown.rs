//! The shutdown sequence: stop every container (SIGTERM, SIGKILL after the default grace),
//! refuse and kill every start in flight, then, once nothing is live and every abandoned
//! init is reaped, tell the log-router to shut down and exit when its socket closes.

use crate::core::ending;
use crate::core::input::StartId;
use crate::core::router;
use crate::core::start;
use crate::core::world::World;
use proto::api::ErrorCode;
use std::time::Duration;

/// SIGINT or SIGTERM.
pub fn begin(w: &mut World, signal: i32) {
    if !w.shutting_down {
        tracing::info!(signal, live = w.records.live_count(), "shutting down");
    }
    w.shutting_down = true;
    let grace = Duration::from_millis(proto::api::DEFAULT_STOP_GRACE_MS);
    let ids: Vec<String> = w.records.live().map(|c| c.info.id.clone()).collect();
    for id in ids {
        ending::request_stop(w, &id, grace);
    }
    let starts: Vec<StartId> = w
        .starts
        .iter()
        .filter(|(_, p)| !p.abandoned)
        .map(|(s, _)| s)
        .collect();
    for s in starts {
        start::abandon(
            w,
            s,
            (
                ErrorCode::ShuttingDown,
                "the supervisor is shutting down".into(),
            ),
        );
    }
}

/// After every input: once shutting down and nothing is left, shut the log-router down.
pub fn maybe_finish(w: &mut World) {
    if w.shutting_down && w.records.live_count() == 0 && w.starts.is_empty() {
        router::shut_down(w);
    }
}
