//! Ending rules: exit codes, 128+signal, stop and hard-limit attribution, the end only when
//! reaped and drained, Wait/Stop answers, stop deadlines, rm.

use super::*;
use crate::monitor::{MonitorCommand, MonitorEvent};
use proto::api::Reason;

/// Runs `id`, sends a `Wait`, ends it with `exit` then drained; returns the Wait's answer.
fn ended(t: &mut T, id: &str, pid: i32, exit: InitExit) -> ContainerInfo {
    t.running(id, pid);
    let (conn, effects) = t.request(Request::Wait { id: id.into() });
    assert_eq!(answer_to(conn, &effects), None);
    t.exit(pid, exit);
    match answer_to(conn, &t.drained(id)) {
        Some(Response::Container(info)) => info,
        other => panic!("{other:?}"),
    }
}

#[test]
fn exit_code_is_the_status() {
    let mut t = T::new();
    let info = ended(&mut t, "a", 10, InitExit::Code(3));
    assert_eq!(info.state, ContainerState::Exited);
    assert_eq!(info.reason, Some(Reason::Exit(3)));
    assert_eq!(info.exit_status, Some(3));
    assert_eq!(info.ended_at_ms, Some(1_000_000));
}

#[test]
fn a_signal_is_128_plus_its_number() {
    let mut t = T::new();
    let info = ended(&mut t, "a", 10, InitExit::Signal(15));
    assert_eq!(info.state, ContainerState::Exited);
    assert_eq!(info.reason, Some(Reason::Signal(15)));
    assert_eq!(info.exit_status, Some(143));
}

#[test]
fn sigkill_without_a_stop_is_a_hard_limit_kill() {
    let mut t = T::new();
    let info = ended(&mut t, "a", 10, InitExit::Signal(9));
    assert_eq!(info.state, ContainerState::Killed);
    assert_eq!(info.reason, Some(Reason::HardLimitKilled));
    assert_eq!(info.exit_status, Some(137));
}

#[test]
fn a_monitor_hard_kill_is_attributed_and_not_unregistered() {
    let mut t = T::new();
    t.running("a", 10);
    t.on(Input::Monitor(MonitorEvent::HardLimitKilled {
        id: "a".into(),
        pid: 10,
        rss_bytes: 99,
        limit_bytes: 64,
    }));
    let effects = t.exit(10, InitExit::Code(137));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Monitor(MonitorCommand::Unregister { .. }))),
        "{effects:?}"
    );
    t.drained("a");
    let info = t.info("a");
    assert_eq!(info.state, ContainerState::Killed);
    assert_eq!(info.reason, Some(Reason::HardLimitKilled));
    assert_eq!(info.rss_bytes, Some(99));
}

#[test]
fn a_normal_exit_unregisters_from_the_monitor() {
    let mut t = T::new();
    t.running("a", 10);
    let effects = t.exit(10, InitExit::Code(0));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Monitor(MonitorCommand::Unregister { id, pid: 10 }) if id == "a"
    )));
}

#[test]
fn stop_sends_sigterm_then_sigkill_at_the_deadline_and_answers_at_the_end() {
    let mut t = T::new();
    t.running("a", 10);
    let (conn, effects) = t.request(Request::Stop {
        id: "a".into(),
        grace_ms: 1000,
    });
    assert_eq!(kills(&effects), vec![(10, Signal::SIGTERM)]);
    assert_eq!(answer_to(conn, &effects), None);
    assert!(kills(&t.advance(999)).is_empty());
    assert_eq!(kills(&t.advance(1)), vec![(10, Signal::SIGKILL)]);
    assert!(kills(&t.advance(5000)).is_empty(), "SIGKILL once");
    t.exit(10, InitExit::Signal(9));
    let info = match answer_to(conn, &t.drained("a")) {
        Some(Response::Container(info)) => info,
        other => panic!("{other:?}"),
    };
    assert_eq!(info.state, ContainerState::Stopped);
    assert_eq!(info.reason, Some(Reason::Stopped));
}

#[test]
fn a_second_stop_keeps_the_earlier_deadline_and_sends_no_second_sigterm() {
    let mut t = T::new();
    t.running("a", 10);
    t.request(Request::Stop {
        id: "a".into(),
        grace_ms: 100,
    });
    let (_, effects) = t.request(Request::Stop {
        id: "a".into(),
        grace_ms: 5000,
    });
    assert!(kills(&effects).is_empty());
    assert_eq!(kills(&t.advance(100)), vec![(10, Signal::SIGKILL)]);
}

#[test]
fn the_end_waits_for_reap_and_drain_in_either_order() {
    let mut t = T::new();
    for (id, pid, drain_first) in [("a", 10, true), ("b", 11, false)] {
        t.running(id, pid);
        let (conn, _) = t.request(Request::Wait { id: id.into() });
        let first = if drain_first {
            t.drained(id)
        } else {
            t.exit(pid, InitExit::Code(0))
        };
        assert_eq!(answer_to(conn, &first), None);
        assert_eq!(t.info(id).state, ContainerState::Running);
        let second = if drain_first {
            t.exit(pid, InitExit::Code(0))
        } else {
            t.drained(id)
        };
        assert!(matches!(
            answer_to(conn, &second),
            Some(Response::Container(_))
        ));
        assert_eq!(t.info(id).state, ContainerState::Exited);
    }
}

#[test]
fn drained_output_is_forgotten() {
    let mut t = T::new();
    t.running("a", 10);
    let effects = t.drained("a");
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::ForgetOutput { id } if id == "a")));
}

#[test]
fn stop_of_an_ended_container_answers_at_once_and_sends_nothing() {
    let mut t = T::new();
    ended(&mut t, "a", 10, InitExit::Code(0));
    let (conn, effects) = t.request(Request::Stop {
        id: "a".into(),
        grace_ms: 1,
    });
    assert!(kills(&effects).is_empty());
    let info = match answer_to(conn, &effects) {
        Some(Response::Container(info)) => info,
        other => panic!("{other:?}"),
    };
    assert_eq!(info.reason, Some(Reason::Exit(0)), "not turned into a stop");
}

#[test]
fn stop_after_the_reap_but_before_the_drain_is_a_stop_without_signals() {
    let mut t = T::new();
    t.running("a", 10);
    t.exit(10, InitExit::Code(0));
    let (conn, effects) = t.request(Request::Stop {
        id: "a".into(),
        grace_ms: 1,
    });
    assert!(kills(&effects).is_empty());
    let r = answer_to(conn, &t.drained("a"));
    assert!(matches!(r, Some(Response::Container(i)) if i.state == ContainerState::Stopped));
}

#[test]
fn rm_refuses_a_live_container_and_forgets_an_ended_one() {
    let mut t = T::new();
    t.running("a", 10);
    let (code, _) = error_of(Some(t.ask(Request::Remove { id: "a".into() })));
    assert_eq!(code, ErrorCode::Conflict);
    t.exit(10, InitExit::Code(0));
    t.drained("a");
    let (conn, effects) = t.request(Request::Remove { id: "a".into() });
    assert_eq!(answer_to(conn, &effects), None, "answered after the files");
    let log = effects
        .iter()
        .find_map(|e| match e {
            Effect::RemoveLogs { log_path, .. } => Some(log_path.clone()),
            _ => None,
        })
        .expect("log removal");
    assert_eq!(log, PathBuf::from("/state/logs/a.log"));
    let effects = t.on(Input::LogsRemoved {
        id: "a".into(),
        result: Ok(()),
    });
    assert!(matches!(answer_to(conn, &effects), Some(Response::Container(i)) if i.id == "a"));
    let (code, _) = error_of(Some(t.ask(Request::Inspect { id: "a".into() })));
    assert_eq!(code, ErrorCode::NotFound);
}

#[test]
fn rm_reports_log_files_it_could_not_remove() {
    let mut t = T::new();
    ended(&mut t, "a", 10, InitExit::Code(0));
    let (conn, _) = t.request(Request::Remove { id: "a".into() });
    let effects = t.on(Input::LogsRemoved {
        id: "a".into(),
        result: Err(std::io::ErrorKind::PermissionDenied.into()),
    });
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::Internal);
    assert!(msg.contains("removed a, but not its log"), "{msg}");
}

#[test]
fn a_gone_connection_is_not_answered() {
    let mut t = T::new();
    t.running("a", 10);
    let (conn, _) = t.request(Request::Wait { id: "a".into() });
    t.on(Input::Disconnected { conn });
    t.exit(10, InitExit::Code(0));
    assert_eq!(answer_to(conn, &t.drained("a")), None);
}

/// Starts `id` as `run --rm` does (on one connection, returned) and makes it run as `pid`.
fn running_rm(t: &mut T, id: &str, pid: i32) -> ConnId {
    let rootfs = format!("/roots/{id}");
    let mut s = spec(id, &rootfs);
    s.remove_on_exit = true;
    let (conn, start) = t.begin(s);
    t.checked(start, &rootfs);
    t.on(Input::InitSpawned { start, pid });
    let effects = t.up(id, start);
    assert!(matches!(
        answer_to(conn, &effects),
        Some(Response::Container(_))
    ));
    conn
}

fn removes_logs(effects: &[Effect], id: &str) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::RemoveLogs { id: i, .. } if i == id))
}

#[test]
fn run_rm_removes_the_record_once_ended_and_its_client_gone() {
    let mut t = T::new();
    let conn = running_rm(&mut t, "a", 10);
    // `run` waits on its start connection and reads the log to the end before it leaves.
    t.on(Input::Request {
        conn,
        frame: RequestFrame::new(Request::Wait { id: "a".into() }),
    });
    t.exit(10, InitExit::Code(3));
    let effects = t.drained("a");
    match answer_to(conn, &effects) {
        Some(Response::Container(i)) => assert_eq!(i.reason, Some(Reason::Exit(3))),
        other => panic!("{other:?}"),
    }
    assert!(!removes_logs(&effects, "a"), "{effects:?}");
    assert_eq!(t.info("a").exit_status, Some(3));
    let effects = t.on(Input::Disconnected { conn });
    assert!(removes_logs(&effects, "a"), "{effects:?}");
    assert_eq!(
        error_of(Some(t.ask(Request::Inspect { id: "a".into() }))).0,
        ErrorCode::NotFound
    );
    // The id is free once the files are gone.
    let effects = t.on(Input::LogsRemoved {
        id: "a".into(),
        result: Ok(()),
    });
    assert!(effects.is_empty(), "nobody to answer: {effects:?}");
    t.running("a", 11);
}

#[test]
fn run_rm_whose_client_was_killed_is_removed_at_the_end_after_its_waiters() {
    let mut t = T::new();
    let conn = running_rm(&mut t, "a", 10);
    assert!(t.on(Input::Disconnected { conn }).is_empty());
    assert_eq!(t.info("a").state, ContainerState::Running);
    let (waiter, _) = t.request(Request::Wait { id: "a".into() });
    t.exit(10, InitExit::Code(0));
    let effects = t.drained("a");
    let answered = effects
        .iter()
        .position(|e| matches!(e, Effect::Answer { conn: c, .. } if *c == waiter))
        .expect("waiter answered");
    let removed = effects
        .iter()
        .position(|e| matches!(e, Effect::RemoveLogs { .. }))
        .expect("logs removed");
    assert!(answered < removed, "{effects:?}");
    assert!(t.ps().is_empty());
}

#[test]
fn a_record_without_rm_outlives_its_client() {
    let mut t = T::new();
    let (conn, start) = t.cloned("a", 10);
    t.up("a", start);
    t.on(Input::Disconnected { conn });
    t.exit(10, InitExit::Code(0));
    assert!(!removes_logs(&t.drained("a"), "a"));
    assert_eq!(t.info("a").state, ContainerState::Exited);
}

#[test]
fn a_gone_rm_client_still_holds_the_id_until_the_files_are_gone() {
    let mut t = T::new();
    ended(&mut t, "a", 10, InitExit::Code(0));
    let (conn, _) = t.request(Request::Remove { id: "a".into() });
    t.on(Input::Disconnected { conn });
    let (c, effects) = t.request(Request::Start(spec("a", "/roots/b")));
    assert_eq!(error_of(answer_to(c, &effects)).0, ErrorCode::Conflict);
    let effects = t.on(Input::LogsRemoved {
        id: "a".into(),
        result: Ok(()),
    });
    assert_eq!(answer_to(conn, &effects), None);
    t.running("a", 11);
}
