//! Completion and `Drained`, drop reports, stuck-sink deadlines, adds and control answers.

use super::*;

#[test]
fn drained_comes_after_both_streams_ended_and_every_sink_finished() {
    let t0 = Instant::now();
    let s = sink("file", Mode::NonBlocking);
    let shared = s.shared.clone();
    let (mut core, route) = with_route(t0, vec![s]);
    core.on(Input::Turn, t0);
    let peek = Peeked::Eof;
    let fx = core.on(
        Input::Peeked {
            key: 0,
            idx: 0,
            peek,
        },
        t0,
    );
    assert_eq!(fx, [Effect::ClosePipe { key: 0, idx: 0 }]);
    dropped(&shared, 2, 20);
    let fx = core.on(
        Input::Peeked {
            key: 0,
            idx: 1,
            peek,
        },
        t0,
    );
    assert_eq!(
        fx,
        [
            Effect::ClosePipe { key: 0, idx: 1 },
            Effect::FinishSinks { key: 0 }
        ]
    );
    assert!(!core.is_empty(), "the sink has not finished");
    let fx = core.on(Input::SinkFinished { route, sink: 0 }, t0);
    assert_eq!(
        fx,
        [
            Effect::Report(FromRouter::Drops {
                id: "a".into(),
                drops: vec![SinkDrops {
                    sink: "file".into(),
                    dropped_records: 2,
                    dropped_bytes: 20
                }]
            }),
            Effect::RemoveRoute {
                key: 0,
                abandon: vec![false]
            },
            Effect::Report(FromRouter::Drained { id: "a".into() }),
        ]
    );
    assert!(core.is_empty());
    // Late events of the removed route are ignored.
    assert_eq!(core.on(Input::SinkFinished { route, sink: 0 }, t0), []);
}

#[test]
fn changed_drop_counters_are_reported_once_a_second() {
    let t0 = Instant::now();
    let s = sink("tcp", Mode::NonBlocking);
    let shared = s.shared.clone();
    let (mut core, _) = with_route(t0, vec![s]);
    dropped(&shared, 1, 7);
    assert_eq!(
        reports(&core.on(Input::Tick, t0)),
        Vec::<&FromRouter>::new()
    );
    let later = t0 + DROPS_EVERY;
    let fx = core.on(Input::Tick, later);
    assert_eq!(
        reports(&fx),
        [&FromRouter::Drops {
            id: "a".into(),
            drops: vec![SinkDrops {
                sink: "tcp".into(),
                dropped_records: 1,
                dropped_bytes: 7
            }]
        }]
    );
    let unchanged = core.on(Input::Tick, later + DROPS_EVERY);
    assert!(reports(&unchanged).is_empty(), "{unchanged:?}");
}

#[test]
fn a_stuck_sink_is_abandoned_at_its_deadline_and_the_container_drains() {
    let t0 = Instant::now();
    let stuck = sink("stuck", Mode::Blocking);
    let shared = stuck.shared.clone();
    let (mut core, route) = with_route(t0, vec![stuck, sink("file", Mode::Blocking)]);
    core.on(Input::Turn, t0);
    deliver(&mut core, 0, b"line\n", t0 + COALESCE_WAIT);
    core.on(
        Input::Delivered {
            key: 0,
            idx: 0,
            seq: 0,
            len: 5,
            released: false,
        },
        t0,
    );
    assert!(shared.offer(Count::new(1, 5), None));
    hang_up(&mut core, t0);
    core.on(Input::Tick, t0);
    let deadline = t0 + DRAIN + FINISH_SLACK;
    assert!(core.next_timeout(t0) <= DRAIN + FINISH_SLACK);
    let before = core.on(Input::Tick, deadline - Duration::from_millis(1));
    assert!(!before.iter().any(|e| matches!(e, Effect::Consume { .. })));
    // The file sink finished; the stuck one is past its deadline with bytes queued.
    core.on(Input::SinkFinished { route, sink: 1 }, deadline);
    let fx = core.on(Input::Tick, deadline);
    assert!(
        fx.contains(&Effect::Consume {
            key: 0,
            idx: 0,
            len: 5
        }),
        "{fx:?}"
    );
    assert!(shared.failing.load(Ordering::Acquire) && shared.abandoned());
    assert_eq!(
        shared.dropped(),
        Count::new(1, 5),
        "what it had queued, exactly"
    );
    let fx = end_streams(&mut core, deadline);
    let tail: Vec<&Effect> = fx.iter().rev().take(2).collect();
    assert_eq!(
        tail,
        [
            &Effect::Report(FromRouter::Drained { id: "a".into() }),
            &Effect::RemoveRoute {
                key: 0,
                abandon: vec![true, false]
            },
        ]
    );
}

/// When the writers are gone the sinks' drain begins: noted for their threads, which are
/// woken to look at their deadlines.
#[test]
fn the_drain_begins_when_the_writers_are_gone() {
    let t0 = Instant::now();
    let s = sink("tcp", Mode::Blocking);
    let shared = s.shared.clone();
    let (mut core, _) = with_route(t0, vec![s]);
    core.on(Input::Tick, t0);
    assert_eq!(shared.drain_since(), None);
    hang_up(&mut core, t0);
    let later = t0 + Duration::from_millis(5);
    assert!(core
        .on(Input::Tick, later)
        .contains(&Effect::DrainSinks { key: 0 }));
    assert_eq!(shared.drain_since(), Some(later));
    assert!(!core
        .on(Input::Tick, later)
        .contains(&Effect::DrainSinks { key: 0 }));
}

/// Once the writers are gone, blocking sinks that are failing are reported once as what the
/// container's end waits for; non-blocking ones never are.
#[test]
fn blocking_sinks_that_stall_the_drain_are_reported_once() {
    let t0 = Instant::now();
    let (tcp, nb) = (sink("tcp", Mode::Blocking), sink("nb", Mode::NonBlocking));
    let (tcp_shared, nb_shared) = (tcp.shared.clone(), nb.shared.clone());
    let (mut core, _) = with_route(t0, vec![tcp, nb, sink("file", Mode::Blocking)]);
    nb_shared.stalled.store(true, Ordering::Release);
    hang_up(&mut core, t0);
    assert!(
        reports(&core.on(Input::Tick, t0)).is_empty(),
        "nothing stalls the end yet"
    );
    tcp_shared.stalled.store(true, Ordering::Release);
    let later = t0 + Duration::from_millis(100);
    assert_eq!(
        reports(&core.on(Input::Tick, later)),
        [&FromRouter::Draining {
            id: "a".into(),
            sinks: vec![proto::api::SinkWait {
                sink: "tcp:k=v".into(),
                timeout_ms: DRAIN.as_millis() as u64
            }]
        }]
    );
    assert!(
        reports(&core.on(Input::Tick, later)).is_empty(),
        "reported once"
    );
}

/// A sink that stored everything is never counted as having dropped anything, even when it
/// is let go at the deadline of a container another sink held up to it.
#[test]
fn a_sink_that_stored_everything_counts_no_drop_when_let_go() {
    let t0 = Instant::now();
    let (tcp, file) = (sink("tcp", Mode::Blocking), sink("file", Mode::Blocking));
    let (tcp_shared, file_shared) = (tcp.shared.clone(), file.shared.clone());
    let (mut core, _) = with_route(t0, vec![tcp, file]);
    core.on(Input::Turn, t0);
    deliver(&mut core, 0, b"line\n", t0 + COALESCE_WAIT);
    let c = Count::new(1, 5);
    assert!(tcp_shared.offer(c, None) && file_shared.offer(c, None));
    file_shared.settle(c, Count::default());
    let delivered = Input::Delivered {
        key: 0,
        idx: 0,
        seq: 0,
        len: 5,
        released: false,
    };
    core.on(delivered, t0);
    hang_up(&mut core, t0);
    core.on(Input::Tick, t0);
    let deadline = t0 + DRAIN + FINISH_SLACK;
    core.on(Input::Tick, deadline);
    // The streams end at the deadline; the file sink has not reported finishing yet.
    end_streams(&mut core, deadline);
    let fx = core.on(Input::Tick, deadline + Duration::from_millis(1));
    assert!(
        fx.contains(&Effect::Report(FromRouter::Drained { id: "a".into() })),
        "{fx:?}"
    );
    assert_eq!(tcp_shared.dropped(), c);
    assert_eq!(
        file_shared.dropped(),
        Count::default(),
        "the file sink lost nothing"
    );
}

#[test]
fn adds_are_checked_and_failures_reported() {
    let t0 = Instant::now();
    let (mut core, route) = with_route(t0, vec![]);
    let one_fd = core.on(
        Input::AddRequested {
            id: "b".into(),
            fds: 1,
        },
        t0,
    );
    assert!(
        matches!(reports(&one_fd)[..], [FromRouter::AddFailed { id, .. }] if id == "b"),
        "{one_fd:?}"
    );
    let twice = core.on(
        Input::AddRequested {
            id: "a".into(),
            fds: 2,
        },
        t0,
    );
    assert!(
        matches!(reports(&twice)[..], [FromRouter::AddFailed { message, .. }] if message.contains("already routed")),
        "{twice:?}"
    );
    // A route without sinks discards its output.
    assert_eq!(
        core.on(Input::Turn, t0),
        [
            Effect::Discard { key: 0, idx: 0 },
            Effect::Discard { key: 0, idx: 1 }
        ]
    );
    // Pipes that cannot be used: the route goes, with AddFailed.
    let fx = core.on(
        Input::AddRequested {
            id: "c".into(),
            fds: 2,
        },
        t0,
    );
    let [Effect::SetUp { route: c, .. }] = fx.as_slice() else {
        panic!("{fx:?}");
    };
    assert_ne!(c.serial, route.serial);
    let message = "not a pipe".to_string();
    let fx = core.on(Input::SetUpFailed { route: *c, message }, t0);
    assert!(matches!(reports(&fx)[..], [FromRouter::AddFailed { id, .. }] if id == "c"));
    assert_eq!(core.len(), 1);
}

#[test]
fn sinks_that_cannot_be_created_answer_add_failed_not_added() {
    let t0 = Instant::now();
    let mut core = Core::new(t0);
    let fx = core.on(
        Input::AddRequested {
            id: "d".into(),
            fds: 2,
        },
        t0,
    );
    let [Effect::SetUp { route, .. }] = fx.as_slice() else {
        panic!("{fx:?}");
    };
    let sinks = Err("cannot open /full/d.log: No space left on device".to_string());
    let fx = core.on(
        Input::SetUp {
            route: *route,
            sinks,
        },
        t0,
    );
    assert!(
        matches!(reports(&fx)[..], [FromRouter::AddFailed { id, message }] if id == "d" && message.contains("No space left")),
        "{fx:?}"
    );
    // Its output is read and thrown away, and counted as dropped: each line a record, and the
    // unfinished one at end of file.
    let thrown = |bytes, lines, open_line, eof| Discarded {
        bytes,
        lines,
        open_line,
        eof,
    };
    core.on(Input::Turn, t0);
    for (idx, t) in [
        (0, thrown(12, 1, true, false)),
        (0, thrown(3, 0, true, true)),
        (1, thrown(5, 1, false, false)),
        (1, thrown(0, 0, false, true)),
    ] {
        let fx = core.on(
            Input::Discarded {
                key: route.key,
                idx,
                thrown: t,
            },
            t0,
        );
        if idx == 1 && t.eof {
            let want = SinkDrops {
                sink: "discarded".into(),
                dropped_records: 3,
                dropped_bytes: 20,
            };
            assert_eq!(
                reports(&fx),
                [
                    &FromRouter::Drops {
                        id: "d".into(),
                        drops: vec![want]
                    },
                    &FromRouter::Drained { id: "d".into() }
                ]
            );
        }
    }
}

#[test]
fn an_add_whose_fds_were_cut_off_is_refused_by_id() {
    let t0 = Instant::now();
    let mut core = Core::new(t0);
    let fx = core.on(Input::AddFdsLost { id: "e".into() }, t0);
    assert!(
        matches!(reports(&fx)[..], [FromRouter::AddFailed { id, message }] if id == "e" && message.contains("out of file descriptors")),
        "{fx:?}"
    );
    assert!(core.is_empty(), "no route is kept");
    // The id is free: the next AddContainer for it is routed.
    let fx = core.on(
        Input::AddRequested {
            id: "e".into(),
            fds: 2,
        },
        t0,
    );
    assert!(matches!(fx[..], [Effect::SetUp { .. }]), "{fx:?}");
}

#[test]
fn sink_errors_name_the_sink_and_skip_stale_routes() {
    let t0 = Instant::now();
    let (mut core, route) = with_route(t0, vec![sink("tcp", Mode::Blocking)]);
    let message = "refused".to_string();
    let fx = core.on(
        Input::SinkFailed {
            route,
            sink: 0,
            message: message.clone(),
        },
        t0,
    );
    assert_eq!(
        reports(&fx),
        [&FromRouter::SinkError {
            id: "a".into(),
            sink: "tcp".into(),
            message: message.clone()
        }]
    );
    let stale = RouteId {
        serial: route.serial + 1,
        ..route
    };
    let fx = core.on(
        Input::SinkFailed {
            route: stale,
            sink: 0,
            message,
        },
        t0,
    );
    assert!(fx.is_empty());
}

#[test]
fn configure_and_validate_are_answered() {
    let t0 = Instant::now();
    let mut core = Core::new(t0);
    assert_eq!(
        core.on(Input::Configured(Ok(())), t0),
        [Effect::Report(FromRouter::Ready)]
    );
    let message = "unknown sink".to_string();
    assert_eq!(
        core.on(Input::Configured(Err(message.clone())), t0),
        [Effect::Report(FromRouter::ConfigError {
            message: message.clone()
        })]
    );
    assert_eq!(
        core.on(Input::Validated(Some(message.clone())), t0),
        [Effect::Report(FromRouter::Validated {
            error: Some(message)
        })]
    );
    assert!(!core.shutting_down());
    core.on(Input::Shutdown, t0);
    assert!(core.shutting_down() && core.is_empty());
}
