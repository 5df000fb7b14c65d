//! Rules of the core, driven through [`Core::on`] with hand-made inputs: no pipe, no thread,
//! no root. [`flow`]: a stream's turn (gathering, peeking, holding, delivering); [`finish`]:
//! completion, drops, deadlines, control answers.

mod finish;
mod flow;

use super::events::{Discarded, Effect, Input, Peeked};
use super::route::{RouteId, SinkInfo, FINISH_SLACK};
use super::rules::{CHUNKS_PER_TURN, COALESCE_BYTES, COALESCE_WAIT, DROPS_EVERY};
use super::Core;
use crate::plan::Mode;
use crate::records::PARTIAL_HOLD;
use crate::sink_shared::{Count, SinkShared};
use proto::api::SinkDrops;
use proto::router::FromRouter;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) const DRAIN: Duration = Duration::from_secs(3);

pub(super) fn sink(label: &str, mode: Mode) -> SinkInfo {
    SinkInfo {
        label: label.into(),
        shown: format!("{label}:k=v"),
        mode,
        drain_timeout: DRAIN,
        shared: Arc::new(SinkShared::default()),
    }
}

/// A core with container `a` set up with `sinks`; returns its route.
pub(super) fn with_route(t0: Instant, sinks: Vec<SinkInfo>) -> (Core, RouteId) {
    let mut core = Core::new(t0);
    let fx = core.on(
        Input::AddRequested {
            id: "a".into(),
            fds: 2,
        },
        t0,
    );
    let [Effect::SetUp { route, id }] = fx.as_slice() else {
        panic!("{fx:?}");
    };
    assert_eq!(id, "a");
    let route = *route;
    let fx = core.on(
        Input::SetUp {
            route,
            sinks: Ok(sinks),
        },
        t0,
    );
    // Every AddContainer is answered: this one with Added.
    assert_eq!(fx, [Effect::Report(FromRouter::Added { id: "a".into() })]);
    (core, route)
}

pub(super) fn reports(fx: &[Effect]) -> Vec<&FromRouter> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Report(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// Drives stream `idx` of route key 0 from `Measure` to `Deliver`: enough bytes pending not
/// to gather, a peek of `bytes` that were the rest of the pipe; returns the `Deliver` effect.
pub(super) fn deliver(core: &mut Core, idx: usize, bytes: &[u8], now: Instant) -> Effect {
    let fx = core.on(
        Input::Pending {
            key: 0,
            idx,
            bytes: bytes.len().max(COALESCE_BYTES),
        },
        now,
    );
    assert_eq!(fx, [Effect::Peek { key: 0, idx }]);
    let fx = peek_all(core, idx, bytes, now);
    assert_eq!(fx.len(), 1, "{fx:?}");
    fx.into_iter().next().unwrap()
}

/// Answers a peek of stream `idx` of route key 0 with `bytes`, the rest of the pipe.
pub(super) fn peek_all(core: &mut Core, idx: usize, bytes: &[u8], now: Instant) -> Vec<Effect> {
    let peek = Peeked::Data {
        bytes,
        rest_of_pipe: true,
    };
    core.on(Input::Peeked { key: 0, idx, peek }, now)
}

/// Ends both streams of route key 0 (end of file on each peek).
pub(super) fn end_streams(core: &mut Core, now: Instant) -> Vec<Effect> {
    let mut all = Vec::new();
    for idx in 0..2 {
        let peek = Peeked::Eof;
        all.extend(core.on(Input::Peeked { key: 0, idx, peek }, now));
    }
    all
}

/// Counts `records` records of `bytes` bytes as handed to a sink and dropped by its thread.
pub(super) fn dropped(shared: &SinkShared, records: u64, bytes: u64) {
    let c = Count::new(records, bytes);
    assert!(shared.offer(c, None));
    shared.settle(c, c);
}

/// Every writer of both streams of route key 0 closed (hang-up seen).
pub(super) fn hang_up(core: &mut Core, now: Instant) {
    for idx in 0..2 {
        let hup = Input::Readable {
            key: 0,
            idx,
            hup: true,
        };
        core.on(hup, now);
    }
}
