//! The shutdown sequence: stop everything, then shut the log-router down, then exit.

use super::*;
use proto::router::ToRouter;

fn router_shutdown(effects: &[Effect]) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::RouterSend(ToRouter::Shutdown)))
}

fn exits(effects: &[Effect]) -> bool {
    effects.iter().any(|e| matches!(e, Effect::Exit))
}

#[test]
fn shutdown_stops_containers_and_starts_then_the_router_then_exits() {
    let mut t = T::new();
    t.running("a", 10);
    let (conn, _) = t.cloned("b", 11);
    let effects = t.on(Input::Shutdown { signal: 15 });
    let mut k = kills(&effects);
    k.sort();
    assert_eq!(k, vec![(10, Signal::SIGTERM), (11, Signal::SIGKILL)]);
    assert_eq!(
        error_of(answer_to(conn, &effects)).0,
        ErrorCode::ShuttingDown
    );
    assert!(!router_shutdown(&effects));
    let (c, effects) = t.request(Request::Start(spec("c", "/roots/c")));
    assert_eq!(error_of(answer_to(c, &effects)).0, ErrorCode::ShuttingDown);
    // SIGKILL after the default grace.
    assert_eq!(kills(&t.advance(10_000)), vec![(10, Signal::SIGKILL)]);
    t.exit(10, InitExit::Signal(9));
    assert!(!router_shutdown(&t.drained("a")), "b's init not reaped yet");
    let effects = t.exit(11, InitExit::Signal(9));
    assert!(router_shutdown(&effects));
    assert!(!exits(&effects));
    assert_eq!(t.info("a").state, ContainerState::Stopped);
    let effects = t.on(Input::RouterClosed);
    assert!(exits(&effects));
    assert!(t.core.exited());
    assert!(t.on(Input::Tick).is_empty(), "nothing after the exit");
}

#[test]
fn a_router_that_does_not_exit_is_killed_at_the_deadline() {
    let mut t = T::new();
    let effects = t.on(Input::Shutdown { signal: 2 });
    assert!(router_shutdown(&effects));
    assert!(!exits(&t.advance(9_999)));
    let effects = t.advance(1);
    assert!(effects.iter().any(|e| matches!(e, Effect::KillRouter)));
    assert!(exits(&effects));
}

#[test]
fn a_router_that_died_is_restarted_while_containers_drain() {
    let mut t = T::new();
    t.running("a", 10);
    t.on(Input::Shutdown { signal: 15 });
    assert!(t
        .on(Input::RouterExited)
        .iter()
        .any(|e| matches!(e, Effect::StartRouter)));
    t.exit(10, InitExit::Code(143));
    let effects = t.on(Input::Router(FromRouter::Ready));
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::RouteOutput { id, .. } if id == "a")));
    assert!(router_shutdown(&t.drained("a")));
}
