//! Log-router rules: restart re-adds undrained containers, validations in FIFO order, a dead
//! router fails waiting validations, restart failures are retried.

use super::*;
use proto::router::ToRouter;

fn with_opts(id: &str) -> StartSpec {
    let mut s = spec(id, &format!("/roots/{id}"));
    s.log_opts = vec!["max-size=1k".into()];
    s
}

fn sends_validate(effects: &[Effect]) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::RouterSend(ToRouter::Validate { .. })))
}

fn starts_router(effects: &[Effect]) -> bool {
    effects.iter().any(|e| matches!(e, Effect::StartRouter))
}

fn routed(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::RouteOutput { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_restarted_router_gets_every_undrained_container_once_ready() {
    let mut t = T::new();
    t.running("drained", 10);
    t.running("ended-undrained", 11);
    t.running("live", 12);
    t.drained("drained");
    t.exit(11, InitExit::Code(0));
    let effects = t.on(Input::RouterExited);
    assert!(starts_router(&effects), "{effects:?}");
    assert!(routed(&effects).is_empty(), "not before Ready");
    // A start meanwhile is not routed to a router that is not ready, nor answered: Ready
    // routes it, and Added answers it.
    let (conn, start) = t.cloned("new", 13);
    let effects = t.ready(conn, start);
    assert!(routed(&effects).is_empty(), "{effects:?}");
    let effects = t.on(Input::Router(FromRouter::Ready));
    let mut ids = routed(&effects);
    ids.sort();
    assert_eq!(ids, vec!["ended-undrained", "live", "new"]);
    // A re-routed running container's answer answers nobody.
    assert_eq!(answer_to(conn, &t.added("live")), None);
    assert!(matches!(
        answer_to(conn, &t.added("new")),
        Some(Response::Container(i)) if i.state == ContainerState::Running
    ));
}

#[test]
fn a_log_the_router_cannot_store_refuses_the_start_and_kills_its_init() {
    let mut t = T::new();
    let (conn, start) = t.cloned("a", 42);
    t.ready(conn, start);
    let message = "cannot create sink file: No space left on device (os error 28)".to_string();
    let effects = t.on(Input::Router(FromRouter::AddFailed {
        id: "a".into(),
        message,
    }));
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::SpawnFailed);
    assert!(
        msg.starts_with("cannot start a: its log cannot be stored: cannot create sink file")
            && msg.contains("No space left"),
        "{msg}"
    );
    assert_eq!(proto::exit::error_status(Some(code)), 125);
    assert_eq!(kills(&effects), vec![(42, Signal::SIGKILL)]);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::DropStart { id, .. } if id == "a")));
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Monitor(_))),
        "never registered: {effects:?}"
    );
    // No record; the id stays taken until the init is reaped, then nothing is left.
    assert!(t.ps().is_empty());
    let (again, effects) = t.request(Request::Start(spec("a", "/roots/a2")));
    assert_eq!(error_of(answer_to(again, &effects)).0, ErrorCode::Conflict);
    t.exit(42, InitExit::Signal(9));
    assert!(t.ps().is_empty());
    // A late Added for it answers nothing; the id is free again.
    assert_eq!(answer_to(conn, &t.added("a")), None);
    t.running("a", 43);
}

#[test]
fn a_start_the_router_never_adds_times_out_naming_the_log() {
    let mut t = T::new();
    let (conn, start) = t.cloned("a", 42);
    t.ready(conn, start);
    let effects = t.advance(config().ready_timeout.as_millis() as u64);
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::SpawnFailed);
    assert!(
        msg.contains("the log-router did not add its log /state/logs/a.log"),
        "{msg}"
    );
    assert_eq!(kills(&effects), vec![(42, Signal::SIGKILL)]);
}

#[test]
fn a_quick_container_is_answered_on_added_and_ends_on_its_drain() {
    let mut t = T::new();
    let (conn, start) = t.cloned("a", 42);
    t.ready(conn, start);
    t.exit(42, InitExit::Code(3));
    let (waiter, _) = t.request(Request::Wait { id: "a".into() });
    let effects = t.on(Input::Router(FromRouter::Drained { id: "a".into() }));
    assert_eq!(
        answer_to(waiter, &effects),
        None,
        "not added yet: not its drain"
    );
    let effects = t.added("a");
    assert!(matches!(
        answer_to(conn, &effects),
        Some(Response::Container(_))
    ));
    let effects = t.drained("a");
    assert!(
        matches!(answer_to(waiter, &effects), Some(Response::Container(i)) if i.exit_status == Some(3)),
        "{effects:?}"
    );
}

#[test]
fn validations_are_answered_in_order() {
    let mut t = T::new();
    let (conn_a, a) = t.begin(with_opts("a"));
    let (conn_b, b) = t.begin(with_opts("b"));
    assert!(sends_validate(&t.checked(a, "/roots/a")));
    assert!(sends_validate(&t.checked(b, "/roots/b")));
    let effects = t.on(Input::Router(FromRouter::Validated {
        error: Some("unknown option max-size".into()),
    }));
    let (code, msg) = error_of(answer_to(conn_a, &effects));
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert_eq!(msg, "--log-opt: unknown option max-size");
    let effects = t.on(Input::Router(FromRouter::Validated { error: None }));
    assert_eq!(answer_to(conn_b, &effects), None);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Spawn { start, .. } if *start == b)));
}

#[test]
fn a_dead_router_fails_the_validations_it_owed() {
    let mut t = T::new();
    let (conn, a) = t.begin(with_opts("a"));
    t.checked(a, "/roots/a");
    let effects = t.on(Input::RouterExited);
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert!(msg.contains("log-router exited"), "{msg}");
    // While it restarts, --log-opt cannot be checked.
    let (conn, b) = t.begin(with_opts("b"));
    let effects = t.checked(b, "/roots/b");
    assert!(!sends_validate(&effects));
    assert_eq!(error_of(answer_to(conn, &effects)).0, ErrorCode::Internal);
    // The new router's first answers are not mistaken for the old ones'.
    t.on(Input::Router(FromRouter::Ready));
    let (conn, c) = t.begin(with_opts("c"));
    assert!(sends_validate(&t.checked(c, "/roots/c")));
    let effects = t.on(Input::Router(FromRouter::Validated { error: None }));
    assert_eq!(answer_to(conn, &effects), None);
    assert!(effects.iter().any(|e| matches!(e, Effect::Spawn { .. })));
}

#[test]
fn failed_restarts_are_retried_after_a_delay() {
    let mut t = T::new();
    t.on(Input::RouterExited);
    let effects = t.on(Input::RouterStartFailed(
        crate::router_link::RouterError::Closed,
    ));
    assert!(!starts_router(&effects));
    assert!(!starts_router(&t.advance(999)));
    assert!(starts_router(&t.advance(1)));
    // No Ready within the deadline: killed, and retried.
    let effects = t.advance(10_000);
    assert!(effects.iter().any(|e| matches!(e, Effect::KillRouter)));
    // Its death then does not start a second one at once.
    assert!(!starts_router(&t.on(Input::RouterExited)));
    assert!(!starts_router(&t.advance(1_999)), "second failure: 2 s");
    assert!(starts_router(&t.advance(1)));
    // A refused configuration is a failed start too; each failure doubles the delay.
    let effects = t.on(Input::Router(FromRouter::ConfigError {
        message: "bad sink".into(),
    }));
    assert!(effects.iter().any(|e| matches!(e, Effect::KillRouter)));
    assert!(!starts_router(&t.advance(3_999)));
    assert!(starts_router(&t.advance(1)));
    // Up to the cap.
    for _ in 0..8 {
        t.on(Input::RouterStartFailed(
            crate::router_link::RouterError::Closed,
        ));
        t.advance(30_000);
    }
    t.on(Input::RouterStartFailed(
        crate::router_link::RouterError::Closed,
    ));
    assert!(!starts_router(&t.advance(29_999)));
    assert!(starts_router(&t.advance(1)));
    // A ready router resets the delay.
    t.on(Input::Router(FromRouter::Ready));
    t.on(Input::RouterExited);
    t.on(Input::RouterStartFailed(
        crate::router_link::RouterError::Closed,
    ));
    assert!(starts_router(&t.advance(1_000)));
}

#[test]
fn drops_are_recorded() {
    let mut t = T::new();
    t.running("a", 10);
    let drops = vec![proto::api::SinkDrops {
        sink: "tcp".into(),
        dropped_records: 2,
        dropped_bytes: 20,
    }];
    t.on(Input::Router(FromRouter::Drops {
        id: "a".into(),
        drops: drops.clone(),
    }));
    assert_eq!(t.info("a").dropped, drops);
}

#[test]
fn draining_sinks_are_shown_until_the_log_is_drained() {
    let mut t = T::new();
    t.running("a", 10);
    let sinks = vec![proto::api::SinkWait {
        sink: "tcp:address=127.0.0.1:1".into(),
        timeout_ms: 2000,
    }];
    t.on(Input::Router(FromRouter::Draining {
        id: "a".into(),
        sinks: sinks.clone(),
    }));
    assert_eq!(t.info("a").draining, sinks);
    t.on(Input::Router(FromRouter::Drained { id: "a".into() }));
    assert!(
        t.info("a").draining.is_empty(),
        "a drained log waits for no sink"
    );
}
