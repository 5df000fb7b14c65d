//! A stream's turn: measure, gather, peek, hold a line, deliver, consume, budget.

use super::*;

#[test]
fn a_turn_measures_peeks_delivers_and_consumes() {
    let t0 = Instant::now();
    let (mut core, _) = with_route(t0, vec![sink("file", Mode::Blocking)]);
    let fx = core.on(Input::Turn, t0);
    assert_eq!(
        fx,
        [
            Effect::Measure { key: 0, idx: 0 },
            Effect::Measure { key: 0, idx: 1 }
        ]
    );
    let line = vec![b'x'; COALESCE_BYTES - 1]
        .into_iter()
        .chain(*b"\n")
        .collect::<Vec<u8>>();
    let d = deliver(&mut core, 0, &line, t0);
    assert_eq!(
        d,
        Effect::Deliver {
            key: 0,
            idx: 0,
            id: "a".into(),
            seq: 0,
            len: line.len(),
            holds: vec![true],
        }
    );
    // Nobody held it: consumed at once, and the stream goes on in the same turn.
    let fx = core.on(
        Input::Delivered {
            key: 0,
            idx: 0,
            seq: 0,
            len: line.len(),
            released: true,
        },
        t0,
    );
    assert_eq!(
        fx,
        [
            Effect::Consume {
                key: 0,
                idx: 0,
                len: line.len()
            },
            Effect::Measure { key: 0, idx: 0 }
        ]
    );
}

#[test]
fn a_held_chunk_stays_in_the_pipe_until_released() {
    let t0 = Instant::now();
    let (mut core, route) = with_route(t0, vec![sink("file", Mode::Blocking)]);
    core.on(Input::Turn, t0);
    deliver(&mut core, 1, b"err\n", t0 + COALESCE_WAIT);
    let held = Input::Delivered {
        key: 0,
        idx: 1,
        seq: 0,
        len: 4,
        released: false,
    };
    let fx = core.on(held, t0);
    assert_eq!(
        fx,
        [Effect::Arm {
            key: 0,
            idx: 1,
            armed: false
        }]
    );
    // Readiness while in flight: no measuring, no second chunk.
    core.on(
        Input::Readable {
            key: 0,
            idx: 1,
            hup: false,
        },
        t0,
    );
    assert_eq!(core.on(Input::Turn, t0), []);
    // A stale release (another chunk number) does nothing.
    let stale = Input::Released {
        route,
        idx: 1,
        seq: 9,
    };
    assert_eq!(core.on(stale, t0), []);
    let fx = core.on(
        Input::Released {
            route,
            idx: 1,
            seq: 0,
        },
        t0,
    );
    assert_eq!(
        fx,
        [Effect::Consume {
            key: 0,
            idx: 1,
            len: 4
        }]
    );
    assert_eq!(core.next_timeout(t0), Duration::ZERO, "ready again");
    assert_eq!(
        core.on(Input::Turn, t0),
        [Effect::Measure { key: 0, idx: 1 }]
    );
}

#[test]
fn small_writes_gather_for_a_bounded_time_but_not_after_hang_up() {
    let t0 = Instant::now();
    let (mut core, _) = with_route(t0, vec![sink("file", Mode::Blocking)]);
    core.on(Input::Turn, t0);
    let small = Input::Pending {
        key: 0,
        idx: 0,
        bytes: 100,
    };
    let fx = core.on(small, t0);
    assert_eq!(
        fx,
        [Effect::Arm {
            key: 0,
            idx: 0,
            armed: false
        }],
        "left to gather, polled only for hang-up"
    );
    assert!(core.next_timeout(t0) > Duration::ZERO);
    assert!(core.next_timeout(t0) <= COALESCE_WAIT);
    // Before the wait is over the stream is not looked at.
    core.on(
        Input::Pending {
            key: 0,
            idx: 1,
            bytes: 0,
        },
        t0,
    );
    assert_eq!(core.on(Input::Turn, t0), []);
    // Once it is over, the small bytes are taken.
    let later = t0 + COALESCE_WAIT;
    assert_eq!(
        core.on(Input::Turn, later),
        [Effect::Measure { key: 0, idx: 0 }]
    );
    let fx = core.on(
        Input::Pending {
            key: 0,
            idx: 0,
            bytes: 100,
        },
        later,
    );
    assert_eq!(fx, [Effect::Peek { key: 0, idx: 0 }]);
    // After hang-up nothing is waited for.
    core.on(
        Input::Readable {
            key: 0,
            idx: 1,
            hup: true,
        },
        later,
    );
    core.on(Input::Turn, later);
    let fx = core.on(
        Input::Pending {
            key: 0,
            idx: 1,
            bytes: 10,
        },
        later,
    );
    assert_eq!(fx, [Effect::Peek { key: 0, idx: 1 }]);
}

#[test]
fn an_unfinished_line_waits_then_goes_as_is() {
    let t0 = Instant::now();
    let (mut core, _) = with_route(t0, vec![sink("file", Mode::NonBlocking)]);
    core.on(Input::Turn, t0);
    let big = vec![b'p'; COALESCE_BYTES];
    let fx = core.on(
        Input::Pending {
            key: 0,
            idx: 0,
            bytes: big.len(),
        },
        t0,
    );
    assert_eq!(fx, [Effect::Peek { key: 0, idx: 0 }]);
    assert_eq!(peek_all(&mut core, 0, b"prompt> ", t0), []);
    assert_eq!(core.next_timeout(t0), DROPS_EVERY.min(PARTIAL_HOLD));
    let later = t0 + PARTIAL_HOLD;
    assert_eq!(
        core.on(Input::Turn, later),
        [Effect::Measure { key: 0, idx: 0 }]
    );
    let d = deliver(&mut core, 0, b"prompt> ", later);
    assert!(
        matches!(d, Effect::Deliver { len: 8, ref holds, .. } if holds == &[false]),
        "{d:?}"
    );
}

#[test]
fn a_turn_ends_after_its_chunk_budget() {
    let t0 = Instant::now();
    let (mut core, _) = with_route(t0, vec![sink("file", Mode::Blocking)]);
    core.on(Input::Turn, t0);
    let chunk = vec![b'\n'; COALESCE_BYTES];
    for seq in 0..CHUNKS_PER_TURN as u64 {
        deliver(&mut core, 0, &chunk, t0);
        let fx = core.on(
            Input::Delivered {
                key: 0,
                idx: 0,
                seq,
                len: chunk.len(),
                released: true,
            },
            t0,
        );
        let more = seq + 1 < CHUNKS_PER_TURN as u64;
        assert_eq!(fx.len(), if more { 2 } else { 1 }, "{fx:?}");
    }
    assert_eq!(
        core.next_timeout(t0),
        Duration::ZERO,
        "the stream is ready again"
    );
}

#[test]
fn a_second_turn_of_a_stream_does_not_deliver_its_chunk_again() {
    let t0 = Instant::now();
    let (mut core, _) = with_route(t0, vec![sink("file", Mode::Blocking)]);
    for hup in [false, true] {
        core.on(
            Input::Readable {
                key: 0,
                idx: 0,
                hup,
            },
            t0,
        );
    }
    // Both readiness events give the stream a turn: two measures in one go.
    let fx = core.on(Input::Turn, t0);
    let measures = fx
        .iter()
        .filter(|e| **e == Effect::Measure { key: 0, idx: 0 })
        .count();
    assert!(measures >= 2, "{fx:?}");
    deliver(&mut core, 0, b"a\nb", t0);
    core.on(
        Input::Delivered {
            key: 0,
            idx: 0,
            seq: 0,
            len: 3,
            released: false,
        },
        t0,
    );
    let second = Input::Pending {
        key: 0,
        idx: 0,
        bytes: COALESCE_BYTES,
    };
    assert_eq!(core.on(second, t0), []);
    assert_eq!(peek_all(&mut core, 0, b"a\nb", t0), []);
}
