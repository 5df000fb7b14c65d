//! `Kill`: forwardable signals reach a running container's init, at once; others, and
//! containers not running, are refused.

use super::*;

fn kill_req(id: &str, signal: Signal) -> Request {
    Request::Kill {
        id: id.into(),
        signal: signal as i32,
    }
}

#[test]
fn forwardable_signals_go_to_init_and_are_answered_at_once() {
    let mut t = T::new();
    t.running("a", 10);
    for sig in proto::init::FORWARDED_SIGNALS {
        let (conn, effects) = t.request(kill_req("a", sig));
        assert_eq!(kills(&effects), vec![(10, sig)]);
        assert!(matches!(answer_to(conn, &effects), Some(Response::Container(i)) if i.id == "a"));
    }
    // A forwarded SIGTERM is the workload's to handle: no stop, no SIGKILL deadline.
    assert_eq!(t.core.next_deadline(), None);
    t.exit(10, InitExit::Code(143));
    t.drained("a");
    assert_eq!(t.info("a").reason, Some(proto::api::Reason::Exit(143)));
}

#[test]
fn other_signals_and_containers_not_running_are_refused() {
    let mut t = T::new();
    t.running("a", 10);
    for sig in [Signal::SIGKILL, Signal::SIGSTOP, Signal::SIGCHLD] {
        let (conn, effects) = t.request(kill_req("a", sig));
        assert!(kills(&effects).is_empty());
        let (code, msg) = error_of(answer_to(conn, &effects));
        assert_eq!(code, ErrorCode::InvalidArgument);
        assert!(msg.contains("cannot be sent to a container"), "{msg}");
    }
    let (code, _) = error_of(Some(t.ask(kill_req("nope", Signal::SIGINT))));
    assert_eq!(code, ErrorCode::NotFound);
    // Reaped (even before its log is drained): nothing to signal.
    t.exit(10, InitExit::Code(0));
    let (conn, effects) = t.request(kill_req("a", Signal::SIGINT));
    assert!(kills(&effects).is_empty());
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::Conflict);
    assert!(msg.contains("container a is not running"), "{msg}");
    // Starting: not yet.
    t.begin(spec("b", "/roots/b"));
    let (code, _) = error_of(Some(t.ask(kill_req("b", Signal::SIGINT))));
    assert_eq!(code, ErrorCode::Conflict);
}
