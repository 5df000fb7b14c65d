//! Start rules: validation, id and rootfs conflicts (with pending starts too), ready, failed,
//! 127/126 in either order, timeouts, the cap on rootfs checks.

use super::*;
use crate::core::input::RootfsCheckError;
use proto::api::Command;

#[test]
fn invalid_requests_are_answered_at_once_without_a_check() {
    let mut t = T::new();
    let mut bad_id = spec("bad id!", "/roots/a");
    bad_id.id = "bad id!".into();
    let relative = spec("a", "roots/a");
    let mut empty = spec("a", "/roots/a");
    empty.command = Command::Argv(Vec::new());
    let mut limits = spec("a", "/roots/a");
    limits.soft_limit_bytes = limits.hard_limit_bytes + 1;
    let mut nice = spec("a", "/roots/a");
    nice.nice = 40;
    let mut opts = spec("a", "/roots/a");
    opts.log_opts = vec!["=x".into()];
    for s in [bad_id, relative, empty, limits, nice, opts] {
        let (conn, effects) = t.request(Request::Start(s.clone()));
        let (code, _) = error_of(answer_to(conn, &effects));
        assert_eq!(code, ErrorCode::InvalidArgument, "{s:?}");
        assert!(
            !effects
                .iter()
                .any(|e| matches!(e, Effect::CheckRootfs { .. })),
            "{s:?}"
        );
    }
}

#[test]
fn a_start_is_answered_with_the_ready_report_not_before() {
    let mut t = T::new();
    let (conn, start) = t.begin(spec("a", "/roots/a"));
    let effects = t.checked(start, "/roots/a");
    let spawn = effects
        .iter()
        .find_map(|e| match e {
            Effect::Spawn { spec, .. } => Some(spec.clone()),
            _ => None,
        })
        .expect("spawn");
    assert_eq!(spawn.rootfs, PathBuf::from("/roots/a"));
    assert_eq!(spawn.log_path, PathBuf::from("/state/logs/a.log"));
    assert_eq!(answer_to(conn, &effects), None);
    t.on(Input::InitSpawned { start, pid: 42 });
    // Created, not yet started: `ps` and `inspect` show it as starting.
    let ps = t.ps();
    assert_eq!(ps.len(), 1);
    assert_eq!((ps[0].state, ps[0].pid), (ContainerState::Starting, 42));
    assert_eq!(t.info("a").state, ContainerState::Starting);
    // Ready: its output goes to the log-router, and the answer waits for the router.
    let effects = t.ready(conn, start);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::RouteOutput { id, .. } if id == "a")));
    assert_eq!(t.info("a").state, ContainerState::Starting);
    let effects = t.added("a");
    let info = match answer_to(conn, &effects) {
        Some(Response::Container(i)) => i,
        other => panic!("{other:?}"),
    };
    assert_eq!((info.state, info.pid), (ContainerState::Running, 42));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Monitor(crate::monitor::MonitorCommand::Register(tr)) if tr.pid == 42
    )));
    assert_eq!(t.info("a").state, ContainerState::Running);
}

#[test]
fn an_init_that_exits_before_its_report_is_read_still_becomes_a_container() {
    let mut t = T::new();
    let (conn, start) = t.cloned("a", 42);
    t.exit(42, InitExit::Code(0));
    t.ready(conn, start);
    let effects = t.added("a");
    assert!(matches!(
        answer_to(conn, &effects),
        Some(Response::Container(_))
    ));
    let (w, _) = t.request(Request::Wait { id: "a".into() });
    let r = answer_to(w, &t.drained("a"));
    assert!(matches!(r, Some(Response::Container(i)) if i.exit_status == Some(0)));
}

#[test]
fn ids_and_rootfs_are_taken_by_pending_starts_and_live_containers() {
    let mut t = T::new();
    let (_, a) = t.begin(spec("a", "/roots/a"));
    // Same id while checking.
    let (conn, effects) = t.request(Request::Start(spec("a", "/roots/other")));
    assert_eq!(error_of(answer_to(conn, &effects)).0, ErrorCode::Conflict);
    // Same rootfs (another spelling, same canonical path) while `a` is cloned.
    t.checked(a, "/roots/a");
    let (conn_b, b) = t.begin(spec("b", "/roots/./a"));
    let effects = t.checked(b, "/roots/a");
    let (code, msg) = error_of(answer_to(conn_b, &effects));
    assert_eq!(code, ErrorCode::Conflict);
    assert!(msg.contains("already used by running container a"), "{msg}");
    // And by a live container.
    t.on(Input::InitSpawned { start: a, pid: 42 });
    t.on(Input::InitReport {
        start: a,
        outcome: Outcome::Ready,
    });
    t.added("a");
    let (conn, effects) = t.request(Request::Start(spec("a", "/roots/x")));
    assert_eq!(error_of(answer_to(conn, &effects)).0, ErrorCode::Conflict);
    let (conn_c, c) = t.begin(spec("c", "/roots/a"));
    let effects = t.checked(c, "/roots/a");
    assert_eq!(error_of(answer_to(conn_c, &effects)).0, ErrorCode::Conflict);
    // An ended container's rootfs is free again; its id only once `rm` removed it.
    t.exit(42, InitExit::Code(0));
    t.drained("a");
    t.running("b", 43);
}

#[test]
fn an_ended_record_holds_its_id_until_rm_removes_it() {
    let mut t = T::new();
    t.running("a", 42);
    t.exit(42, InitExit::Code(0));
    t.drained("a");
    let (conn, effects) = t.request(Request::Start(spec("a", "/roots/other")));
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::Conflict);
    assert!(msg.contains("container a already exists (exited)"), "{msg}");
    assert!(msg.contains("engine rm"), "{msg}");
    assert!(!effects
        .iter()
        .any(|e| matches!(e, Effect::CheckRootfs { .. })));
    // The record is untouched.
    assert_eq!(t.info("a").pid, 42);
    // While its log files are being removed the id is still taken.
    t.request(Request::Remove { id: "a".into() });
    let (conn, effects) = t.request(Request::Start(spec("a", "/roots/other")));
    assert_eq!(error_of(answer_to(conn, &effects)).0, ErrorCode::Conflict);
    t.on(Input::LogsRemoved {
        id: "a".into(),
        result: Ok(()),
    });
    t.running("a", 43);
}

#[test]
fn rootfs_errors_and_overlaps_are_invalid_arguments() {
    let mut t = T::new();
    let (conn, start) = t.begin(spec("a", "/nope"));
    let effects = t.on(Input::RootfsChecked {
        start,
        result: Err(RootfsCheckError::NotDirectory("/nope".into())),
    });
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert_eq!(msg, "rootfs /nope is not a directory");
    for key in ["/base/inner", "/"] {
        let (conn, start) = t.begin(spec("b", key));
        let (code, msg) = error_of(answer_to(conn, &t.checked(start, key)));
        assert_eq!(code, ErrorCode::InvalidArgument);
        assert!(msg.contains("overlap"), "{msg}");
    }
    // The base rootfs itself is allowed (no layer of its own).
    let (_, start) = t.begin(spec("c", "/base"));
    assert!(t
        .checked(start, "/base")
        .iter()
        .any(|e| matches!(e, Effect::Spawn { .. })));
}

/// A failed report, then the exit (or the other way round): the exit status picks the code.
fn failed(t: &mut T, id: &str, exit: InitExit, report_first: bool) -> (ErrorCode, String) {
    let (conn, start) = t.cloned(id, 50);
    let report = Input::InitReport {
        start,
        outcome: Outcome::Failed("exec nothere: No such file or directory".into()),
    };
    let reap = Input::ChildExited { pid: 50, exit };
    let (first, second) = if report_first {
        (report, reap)
    } else {
        (reap, report)
    };
    let effects = t.on(first);
    assert_eq!(answer_to(conn, &effects), None, "needs both");
    let effects = t.on(second);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::DropStart { id: i, .. } if i == id)));
    error_of(answer_to(conn, &effects))
}

#[test]
fn exit_127_and_126_mean_not_found_and_not_executable_in_either_order() {
    let mut t = T::new();
    for report_first in [true, false] {
        let (code, msg) = failed(&mut t, "a", InitExit::Code(127), report_first);
        assert_eq!(code, ErrorCode::CommandNotFound);
        assert_eq!(
            msg,
            "cannot start a: exec nothere: No such file or directory"
        );
        let (code, _) = failed(&mut t, "a", InitExit::Code(126), report_first);
        assert_eq!(code, ErrorCode::CommandNotExecutable);
        let (code, msg) = failed(&mut t, "a", InitExit::Code(1), report_first);
        assert_eq!(code, ErrorCode::SpawnFailed);
        assert!(
            msg.contains("container setup failed: exec nothere"),
            "{msg}"
        );
    }
    assert!(t.ps().is_empty(), "failed starts leave no record");
}

#[test]
fn a_child_failure_is_answered_at_once_and_holds_the_id_until_reaped() {
    let mut t = T::new();
    let (conn, start) = t.cloned("a", 50);
    let effects = t.on(Input::InitReport {
        start,
        outcome: Outcome::ChildFailed(proto::init::report::ChildFailure {
            stage: Some(proto::init::report::ChildStage::Exec),
            errno: nix::errno::Errno::ENOENT,
        }),
    });
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::SpawnFailed);
    assert!(msg.contains("exec container-init: ENOENT"), "{msg}");
    assert!(
        msg.starts_with("cannot start a: container setup failed:"),
        "{msg}"
    );
    let (c, effects) = t.request(Request::Start(spec("a", "/roots/z")));
    assert_eq!(error_of(answer_to(c, &effects)).0, ErrorCode::Conflict);
    t.exit(50, InitExit::Code(1));
    t.begin(spec("a", "/roots/z"));
}

#[test]
fn a_start_past_the_ready_timeout_is_answered_and_its_init_killed() {
    let mut t = T::new();
    let (conn, start) = t.cloned("a", 50);
    assert!(answer_to(conn, &t.advance(29_999)).is_none());
    let effects = t.advance(1);
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::SpawnFailed);
    assert!(msg.contains("did not report within 30000 ms"), "{msg}");
    assert_eq!(kills(&effects), vec![(50, Signal::SIGKILL)]);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::DropStart { start: s, .. } if *s == start)));
    // Not answered twice; its late report changes nothing; the id is free once reaped.
    assert!(t.advance(60_000).is_empty());
    let late = t.on(Input::InitReport {
        start,
        outcome: Outcome::Ready,
    });
    assert!(late.is_empty(), "{late:?}");
    assert!(t.ps().is_empty());
    t.exit(50, InitExit::Signal(9));
    t.running("a", 51);
}

#[test]
fn a_hung_rootfs_check_times_out_and_counts_until_it_returns() {
    let mut cfg = config();
    cfg.max_rootfs_checks = 2;
    let mut t = T::with(cfg);
    let (conn_a, a) = t.begin(spec("a", "/hung/a"));
    let (_, _b) = t.begin(spec("b", "/hung/b"));
    let (conn, effects) = t.request(Request::Start(spec("c", "/roots/c")));
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::SpawnFailed);
    assert!(msg.contains("2 rootfs checks are still running"), "{msg}");
    let effects = t.advance(30_000);
    let (code, msg) = error_of(answer_to(conn_a, &effects));
    assert_eq!(code, ErrorCode::SpawnFailed);
    assert!(msg.contains("rootfs /hung/a did not answer"), "{msg}");
    assert!(kills(&effects).is_empty(), "nothing was cloned");
    // The hung checks still hold their threads: still refused.
    let (conn, effects) = t.request(Request::Start(spec("c", "/roots/c")));
    assert_eq!(
        error_of(answer_to(conn, &effects)).0,
        ErrorCode::SpawnFailed
    );
    // One returns (late, ignored): room for one more.
    let late = t.on(Input::RootfsChecked {
        start: a,
        result: Err(RootfsCheckError::NotDirectory("/hung/a".into())),
    });
    assert!(late.is_empty(), "{late:?}");
    t.begin(spec("a", "/roots/a"));
}

#[test]
fn a_clone_failure_is_a_spawn_failure() {
    let mut t = T::new();
    let (conn, start) = t.begin(spec("a", "/roots/a"));
    t.checked(start, "/roots/a");
    let effects = t.on(Input::SpawnFailed {
        start,
        error: crate::core::input::SpawnFailure::Spawn(crate::container::spawn::SpawnError::Sys {
            what: "clone container-init",
            source: nix::errno::Errno::EAGAIN,
        }),
    });
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::SpawnFailed);
    assert!(
        msg.starts_with("cannot start a: clone container-init"),
        "{msg}"
    );
    t.begin(spec("a", "/roots/a"));
}

#[test]
fn a_ready_pipe_that_cannot_be_read_fails_the_start_and_kills_its_init() {
    let mut t = T::new();
    let (conn, start) = t.cloned("a", 50);
    let effects = t.on(Input::ReadyLost {
        start,
        error: crate::core::input::ReadyLost::Watch(std::io::ErrorKind::OutOfMemory.into()),
    });
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::SpawnFailed);
    assert!(
        msg.starts_with("cannot start a: watch the ready pipe"),
        "{msg}"
    );
    assert_eq!(kills(&effects), vec![(50, Signal::SIGKILL)]);
}

#[test]
fn a_start_goes_on_when_its_client_leaves() {
    let mut t = T::new();
    let (conn, start) = t.cloned("a", 50);
    t.on(Input::Disconnected { conn });
    t.ready(conn, start);
    let effects = t.added("a");
    assert_eq!(answer_to(conn, &effects), None);
    assert_eq!(t.info("a").state, ContainerState::Running);
}

#[test]
fn a_starting_container_is_waited_for_and_stopped_once_it_runs_and_not_removed() {
    let mut t = T::new();
    let (_, start) = t.begin(spec("a", "/roots/a"));
    // Visible from the request on, pid 0 until its init is cloned.
    let ps = t.ps();
    assert_eq!(
        (ps.len(), ps[0].state, ps[0].pid),
        (1, ContainerState::Starting, 0)
    );
    let (code, msg) = error_of(Some(t.ask(Request::Remove { id: "a".into() })));
    assert_eq!(code, ErrorCode::Conflict);
    assert!(msg.contains("is starting"), "{msg}");
    let (waiter, effects) = t.request(Request::Wait { id: "a".into() });
    assert_eq!(answer_to(waiter, &effects), None);
    let (stopper, effects) = t.request(Request::Stop {
        id: "a".into(),
        grace_ms: 100,
    });
    assert_eq!(answer_to(stopper, &effects), None);
    assert!(kills(&effects).is_empty(), "nothing runs yet");
    t.checked(start, "/roots/a");
    t.on(Input::InitSpawned { start, pid: 50 });
    let effects = t.on(Input::InitReport {
        start,
        outcome: Outcome::Ready,
    });
    assert!(
        kills(&effects).is_empty(),
        "not running before the router added it"
    );
    let effects = t.added("a");
    assert_eq!(kills(&effects), vec![(50, Signal::SIGTERM)]);
    assert_eq!(kills(&t.advance(100)), vec![(50, Signal::SIGKILL)]);
    t.exit(50, InitExit::Signal(9));
    let effects = t.drained("a");
    for conn in [waiter, stopper] {
        let r = answer_to(conn, &effects);
        assert!(
            matches!(&r, Some(Response::Container(i)) if i.state == ContainerState::Stopped),
            "{r:?}"
        );
    }
}

#[test]
fn waiters_of_a_failed_start_get_its_error() {
    let mut t = T::new();
    let (conn, start) = t.begin(spec("a", "/nope"));
    let (waiter, _) = t.request(Request::Wait { id: "a".into() });
    let effects = t.on(Input::RootfsChecked {
        start,
        result: Err(RootfsCheckError::NotDirectory("/nope".into())),
    });
    for c in [conn, waiter] {
        let (code, msg) = error_of(answer_to(c, &effects));
        assert_eq!(code, ErrorCode::InvalidArgument);
        assert_eq!(msg, "rootfs /nope is not a directory");
    }
}

/// Takes `id` through its ready report and the log-router's `Added`: the monitor's
/// registration is asked, not answered.
fn registering(t: &mut T, id: &str, pid: i32) -> (ConnId, StartId) {
    let (conn, start) = t.cloned(id, pid);
    t.ready(conn, start);
    let effects = t.added_only(id);
    assert_eq!(answer_to(conn, &effects), None);
    (conn, start)
}

fn unregisters(effects: &[Effect], pid: i32) -> bool {
    effects.iter().any(|e| {
        matches!(e, Effect::Monitor(crate::monitor::MonitorCommand::Unregister { pid: p, .. }) if *p == pid)
    })
}

#[test]
fn a_refused_registration_fails_the_start_and_kills_its_init() {
    let mut t = T::new();
    let (conn, _) = registering(&mut t, "a", 42);
    let (waiter, _) = t.request(Request::Wait { id: "a".into() });
    let effects = t.registered("a", 42, Some("pid 42: no such process"));
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::SpawnFailed);
    assert_eq!(
        msg,
        "cannot start a: the memory monitor refused it: pid 42: no such process"
    );
    assert_eq!(
        error_of(answer_to(waiter, &effects)).0,
        ErrorCode::SpawnFailed
    );
    assert_eq!(kills(&effects), vec![(42, Signal::SIGKILL)]);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::DropStart { id, .. } if id == "a")));
    assert!(t.ps().is_empty());
    // Nothing ran unmonitored; the id is free once the init is reaped.
    t.exit(42, InitExit::Signal(9));
    t.running("a", 43);
}

#[test]
fn a_registration_that_never_comes_times_out() {
    let mut t = T::new();
    let (conn, _) = registering(&mut t, "a", 42);
    let effects = t.advance(config().ready_timeout.as_millis() as u64);
    let (code, msg) = error_of(answer_to(conn, &effects));
    assert_eq!(code, ErrorCode::SpawnFailed);
    assert!(msg.contains("the memory monitor did not answer"), "{msg}");
    assert_eq!(kills(&effects), vec![(42, Signal::SIGKILL)]);
    // A late acceptance is undone.
    assert!(unregisters(&t.registered("a", 42, None), 42));
}

#[test]
fn an_init_that_ends_while_registering_becomes_an_ended_container() {
    let mut t = T::new();
    let (conn, _) = registering(&mut t, "a", 42);
    let effects = t.exit(42, InitExit::Code(0));
    assert!(matches!(
        answer_to(conn, &effects),
        Some(Response::Container(_))
    ));
    // The backend's acceptance, late, is undone; the record is not touched.
    assert!(unregisters(&t.registered("a", 42, None), 42));
    t.drained("a");
    assert_eq!(t.info("a").state, ContainerState::Exited);
}

#[test]
fn a_log_drained_while_registering_is_carried_into_the_record() {
    let mut t = T::new();
    let (conn, _) = registering(&mut t, "a", 42);
    // The workload closed its output at once: the router drained it before the monitor answered.
    t.on(Input::Router(FromRouter::Drained { id: "a".into() }));
    let effects = t.registered("a", 42, None);
    assert!(matches!(
        answer_to(conn, &effects),
        Some(Response::Container(_))
    ));
    // Its end needs only the reap now: the drained log was not forgotten.
    t.exit(42, InitExit::Code(0));
    assert_eq!(t.info("a").state, ContainerState::Exited);
}
