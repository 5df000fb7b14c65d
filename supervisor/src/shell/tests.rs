//! The shell's logic driven against a fake system (no root, no clone, no poller): readiness
//! and reaping become inputs, effects become calls, answers come out in order.

use super::driver::Driver;
use super::os::{CheckResult, Os};
use crate::container::spawn::{InitChild, SpawnError};
use crate::core::{ConnId, Core, CoreConfig, Input, SpawnSpec, StartId};
use crate::monitor::{MonitorCommand, MonitorEvent};
use crate::router_link::{Inbox, RouterError};
use nix::sys::signal::Signal;
use proto::api::{Command, ContainerState, Request, RequestFrame, Response, StartSpec};
use proto::exit::InitExit;
use proto::router::{FromRouter, SinkSpec, ToRouter};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Records every call; answers checks at once, clones with real pipes.
#[derive(Default)]
struct FakeOs {
    checks: Vec<(StartId, CheckResult)>,
    removed_logs: Vec<PathBuf>,
    /// Write ends of the ready pipes handed out, by container id.
    ready_writers: Vec<(String, OwnedFd)>,
    watched: Vec<StartId>,
    unwatched: usize,
    kills: Vec<(i32, Signal)>,
    exits: Vec<(i32, InitExit)>,
    router_pid: i32,
    router_inbox: Vec<FromRouter>,
    router_closed: bool,
    routed: Vec<String>,
    sent: Vec<ToRouter>,
    restarts: usize,
    monitor: Vec<MonitorCommand>,
    next_pid: i32,
    /// Calls in order, for ordering checks.
    log: Vec<String>,
}

impl Os for FakeOs {
    fn check_rootfs(&mut self, start: StartId, path: PathBuf) {
        self.checks.push((start, Ok(path)));
    }
    fn finished_checks(&mut self) -> Vec<(StartId, CheckResult)> {
        std::mem::take(&mut self.checks)
    }
    fn remove_logs(&mut self, log: &Path) -> std::io::Result<()> {
        self.removed_logs.push(log.to_path_buf());
        Ok(())
    }
    fn spawn_init(&mut self, spec: &SpawnSpec) -> Result<InitChild, SpawnError> {
        let pipe = || nix::unistd::pipe().expect("pipe");
        let ((out, _), (err, _), (ready, w)) = (pipe(), pipe(), pipe());
        self.ready_writers.push((spec.id.clone(), w));
        self.next_pid += 1;
        Ok(InitChild {
            pid: nix::unistd::Pid::from_raw(1000 + self.next_pid),
            stdout: out,
            stderr: err,
            ready,
        })
    }
    fn watch_ready(&mut self, start: StartId, _fd: &OwnedFd) -> std::io::Result<()> {
        self.watched.push(start);
        Ok(())
    }
    fn unwatch_ready(&mut self, _fd: &OwnedFd) {
        self.unwatched += 1;
    }
    fn kill(&mut self, pid: i32, signal: Signal) {
        self.kills.push((pid, signal));
    }
    fn reap(&mut self) -> Vec<(i32, InitExit)> {
        std::mem::take(&mut self.exits)
    }
    fn router_pid(&self) -> i32 {
        self.router_pid
    }
    fn router_read(&mut self) -> Inbox {
        self.log.push("router_read".into());
        Inbox {
            messages: std::mem::take(&mut self.router_inbox),
            closed: self.router_closed,
        }
    }
    fn router_add(
        &mut self,
        id: &str,
        _log_path: &Path,
        _output: [BorrowedFd<'_>; 2],
        _sinks: &[SinkSpec],
    ) -> Result<(), RouterError> {
        self.routed.push(id.to_string());
        Ok(())
    }
    fn router_send(&mut self, msg: &ToRouter) -> Result<(), RouterError> {
        self.sent.push(msg.clone());
        Ok(())
    }
    fn router_restart(&mut self) -> Result<(), RouterError> {
        self.log.push("router_restart".into());
        self.restarts += 1;
        self.router_pid += 1;
        self.router_closed = false;
        Ok(())
    }
    fn router_kill(&mut self) {}
    fn monitor(&mut self, cmd: MonitorCommand) {
        self.monitor.push(cmd);
    }
}

fn driver() -> Driver<FakeOs> {
    let cfg = CoreConfig::new("/base".into(), "/logs".into(), Vec::new());
    let os = FakeOs {
        router_pid: 7,
        ..FakeOs::default()
    };
    Driver::new(Core::new(cfg, super::driver::now()), os)
}

fn start(id: &str) -> Input {
    Input::Request {
        conn: ConnId(1),
        frame: RequestFrame::new(Request::Start(StartSpec {
            id: id.into(),
            rootfs: format!("/roots/{id}"),
            command: Command::Shell("true".into()),
            soft_limit_bytes: 1,
            hard_limit_bytes: 2,
            nice: 0,
            log_opts: Vec::new(),
            remove_on_exit: false,
        })),
    }
}

/// The memory monitor accepts every registration asked so far.
fn accept_registrations(d: &mut Driver<FakeOs>) {
    let asked: Vec<_> = d
        .os_mut()
        .monitor
        .iter()
        .filter_map(|c| match c {
            MonitorCommand::Register(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    for t in asked {
        d.feed(Input::Monitor(MonitorEvent::Registered {
            id: t.id,
            pid: t.pid,
            error: None,
        }));
    }
}

#[test]
fn a_start_runs_through_check_clone_and_ready_pipe() {
    let mut d = driver();
    d.feed(start("a"));
    assert!(d.take_answers().is_empty());
    // The check's result arrives (the loop was woken): the init is cloned, its pipe watched.
    d.on_checks();
    let os = d.os_mut();
    assert_eq!(os.removed_logs, vec![PathBuf::from("/logs/a.log")]);
    assert_eq!(os.watched.len(), 1);
    let s = os.watched[0];
    // Nothing written yet: no answer.
    d.on_ready(s);
    assert!(d.take_answers().is_empty());
    // container-init execs the workload: EOF. Its output goes to the router; the answer
    // waits for the router's Added.
    d.os_mut().ready_writers.clear();
    d.on_ready(s);
    assert!(d.take_answers().is_empty());
    assert_eq!(d.os_mut().routed, vec!["a"]);
    d.os_mut()
        .router_inbox
        .push(FromRouter::Added { id: "a".into() });
    d.on_router_readable();
    // Then the memory monitor is asked; its answer (through the waker) completes the start.
    assert!(d.take_answers().is_empty());
    assert!(matches!(&d.os_mut().monitor[..], [MonitorCommand::Register(t)] if t.pid == 1001));
    accept_registrations(&mut d);
    let answers = d.take_answers();
    assert!(
        matches!(&answers[..], [(ConnId(1), Response::Container(i))] if i.state == ContainerState::Running && i.pid == 1001),
        "{answers:?}"
    );
    let os = d.os_mut();
    assert_eq!(os.routed, vec!["a"]);
    assert_eq!(os.unwatched, 1);

    // Reaped and drained: a Wait is answered.
    d.feed(Input::Request {
        conn: ConnId(2),
        frame: RequestFrame::new(Request::Wait { id: "a".into() }),
    });
    d.os_mut().exits.push((1001, InitExit::Code(4)));
    d.on_sigchld();
    assert!(d.take_answers().is_empty(), "not drained yet");
    d.os_mut()
        .router_inbox
        .push(FromRouter::Drained { id: "a".into() });
    d.on_router_readable();
    let answers = d.take_answers();
    assert!(
        matches!(&answers[..], [(ConnId(2), Response::Container(i))] if i.exit_status == Some(4)),
        "{answers:?}"
    );
}

#[test]
fn a_failure_report_waits_for_the_reap_for_its_exit_code() {
    let mut d = driver();
    d.feed(start("a"));
    d.on_checks();
    let s = d.os_mut().watched[0];
    let (_, w) = d.os_mut().ready_writers.pop().unwrap();
    nix::unistd::write(&w, b"exec nothere: No such file or directory\n").unwrap();
    drop(w);
    d.on_ready(s);
    assert!(d.take_answers().is_empty());
    d.os_mut().exits.push((1001, InitExit::Code(127)));
    d.on_sigchld();
    let answers = d.take_answers();
    assert!(
        matches!(&answers[..], [(_, Response::Error(e))] if e.code == proto::api::ErrorCode::CommandNotFound),
        "{answers:?}"
    );
}

#[test]
fn a_dead_router_is_read_to_the_end_then_restarted_and_handed_the_output_again() {
    let mut d = driver();
    d.feed(start("a"));
    d.feed(start("b"));
    d.on_checks();
    d.os_mut().ready_writers.clear();
    let watched = d.os_mut().watched.clone();
    for s in watched {
        d.on_ready(s);
    }
    d.os_mut().router_inbox = vec![
        FromRouter::Added { id: "a".into() },
        FromRouter::Added { id: "b".into() },
    ];
    d.on_router_readable();
    accept_registrations(&mut d);
    assert_eq!(d.take_answers().len(), 2);
    d.os_mut().log.clear();
    // The router stored all of a before dying: its last report is read before the restart.
    d.os_mut().router_inbox = vec![FromRouter::Drained { id: "a".into() }];
    d.os_mut().router_closed = true;
    d.os_mut().exits.push((7, InitExit::Signal(9)));
    d.on_sigchld();
    let os = d.os_mut();
    assert_eq!(os.log, vec!["router_read", "router_restart"]);
    assert_eq!(os.restarts, 1);
    os.routed.clear();
    os.router_inbox = vec![FromRouter::Ready];
    d.on_router_readable();
    assert_eq!(d.os_mut().routed, vec!["b"]);
}
