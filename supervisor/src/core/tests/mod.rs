//! Unit tests of the core: inputs in, effects out, no system call and no root. The clock is
//! a fixed instant plus the milliseconds each test gives.

mod ending;
mod kill;
mod router;
mod shutdown;
mod start;

use super::*;
use nix::sys::signal::Signal;
use proto::api::{
    Command, ContainerInfo, ContainerState, ErrorCode, Request, RequestFrame, Response, StartSpec,
    DEFAULT_HARD_LIMIT_BYTES, DEFAULT_SOFT_LIMIT_BYTES,
};
use proto::exit::InitExit;
use proto::init::report::Outcome;
use proto::router::{FromRouter, SinkSpec};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A core at a controllable time.
struct T {
    core: Core,
    t0: Instant,
    ms: u64,
    next_conn: u64,
}

fn config() -> CoreConfig {
    let file = SinkSpec {
        sink: "file".into(),
        options: Vec::new(),
    };
    CoreConfig::new("/base".into(), "/state/logs".into(), vec![file])
}

fn spec(id: &str, rootfs: &str) -> StartSpec {
    StartSpec {
        id: id.into(),
        rootfs: rootfs.into(),
        command: Command::Shell("true".into()),
        soft_limit_bytes: DEFAULT_SOFT_LIMIT_BYTES,
        hard_limit_bytes: DEFAULT_HARD_LIMIT_BYTES,
        nice: 0,
        log_opts: Vec::new(),
        remove_on_exit: false,
    }
}

impl T {
    fn new() -> Self {
        Self::with(config())
    }

    fn with(cfg: CoreConfig) -> Self {
        let t0 = Instant::now();
        let now = Now {
            at: t0,
            unix_ms: 1_000_000,
        };
        Self {
            core: Core::new(cfg, now),
            t0,
            ms: 0,
            next_conn: 0,
        }
    }

    fn now(&self) -> Now {
        Now {
            at: self.t0 + Duration::from_millis(self.ms),
            unix_ms: 1_000_000 + self.ms,
        }
    }

    /// Moves the clock forward by `ms` and ticks.
    fn advance(&mut self, ms: u64) -> Vec<Effect> {
        self.ms += ms;
        self.on(Input::Tick)
    }

    fn on(&mut self, input: Input) -> Vec<Effect> {
        let now = self.now();
        self.core.on(input, now)
    }

    fn conn(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId(self.next_conn)
    }

    /// Sends a request on a new connection.
    fn request(&mut self, request: Request) -> (ConnId, Vec<Effect>) {
        let conn = self.conn();
        let frame = RequestFrame::new(request);
        (conn, self.on(Input::Request { conn, frame }))
    }

    /// A request's immediate answer.
    fn ask(&mut self, request: Request) -> Response {
        let (conn, effects) = self.request(request);
        answer_to(conn, &effects).unwrap_or_else(|| panic!("no answer: {effects:?}"))
    }

    fn ps(&mut self) -> Vec<ContainerInfo> {
        match self.ask(Request::Ps) {
            Response::Containers(v) => v,
            other => panic!("{other:?}"),
        }
    }

    /// Sends `Start` and returns its connection and start id (its rootfs check is asked).
    fn begin(&mut self, s: StartSpec) -> (ConnId, StartId) {
        let (conn, effects) = self.request(Request::Start(s));
        let start = effects
            .iter()
            .find_map(|e| match e {
                Effect::CheckRootfs { start, .. } => Some(*start),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no check: {effects:?}"));
        (conn, start)
    }

    /// Reports a good rootfs check (canonical = as given) and returns the effects.
    fn checked(&mut self, start: StartId, key: &str) -> Vec<Effect> {
        self.on(Input::RootfsChecked {
            start,
            result: Ok(PathBuf::from(key)),
        })
    }

    /// Takes a start through its check and clone: container-init runs as `pid`.
    fn cloned(&mut self, id: &str, pid: i32) -> (ConnId, StartId) {
        let rootfs = format!("/roots/{id}");
        let (conn, start) = self.begin(spec(id, &rootfs));
        let effects = self.checked(start, &rootfs);
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::Spawn { start: s, .. } if *s == start)),
            "{effects:?}"
        );
        let effects = self.on(Input::InitSpawned { start, pid });
        assert_eq!(
            answer_to(conn, &effects),
            None,
            "answered before the report"
        );
        (conn, start)
    }

    /// A running container `id` whose init is `pid`: reported ready, then added by the
    /// log-router.
    fn running(&mut self, id: &str, pid: i32) -> ContainerInfo {
        let (conn, start) = self.cloned(id, pid);
        self.ready(conn, start);
        let effects = self.added(id);
        match answer_to(conn, &effects) {
            Some(Response::Container(info)) => info,
            other => panic!("{other:?} / {effects:?}"),
        }
    }

    /// Reports container-init of `start` ready: its output is handed to the log-router, and
    /// the start is not answered before the router added it.
    fn ready(&mut self, conn: ConnId, start: StartId) -> Vec<Effect> {
        let effects = self.on(Input::InitReport {
            start,
            outcome: Outcome::Ready,
        });
        assert_eq!(answer_to(conn, &effects), None, "answered before Added");
        effects
    }

    /// container-init of `start` (container `id`) reports ready, the log-router adds it and
    /// the memory monitor accepts it: the effects of all three.
    fn up(&mut self, id: &str, start: StartId) -> Vec<Effect> {
        let mut effects = self.on(Input::InitReport {
            start,
            outcome: Outcome::Ready,
        });
        effects.extend(self.added(id));
        effects
    }

    /// The log-router added container `id`, and the memory monitor accepts the registration
    /// the core then asks for; the effects of both.
    fn added(&mut self, id: &str) -> Vec<Effect> {
        let mut effects = self.added_only(id);
        let asked = effects.iter().find_map(|e| match e {
            Effect::Monitor(crate::monitor::MonitorCommand::Register(t)) => Some(t.clone()),
            _ => None,
        });
        if let Some(t) = asked {
            effects.extend(self.registered(&t.id, t.pid, None));
        }
        effects
    }

    /// The log-router added container `id` (the monitor's answer is left to the test).
    fn added_only(&mut self, id: &str) -> Vec<Effect> {
        self.on(Input::Router(FromRouter::Added { id: id.into() }))
    }

    /// The memory monitor's answer to a registration.
    fn registered(&mut self, id: &str, pid: i32, error: Option<&str>) -> Vec<Effect> {
        self.on(Input::Monitor(crate::monitor::MonitorEvent::Registered {
            id: id.into(),
            pid,
            error: error.map(str::to_owned),
        }))
    }

    fn exit(&mut self, pid: i32, exit: InitExit) -> Vec<Effect> {
        self.on(Input::ChildExited { pid, exit })
    }

    fn drained(&mut self, id: &str) -> Vec<Effect> {
        self.on(Input::Router(FromRouter::Drained { id: id.into() }))
    }

    fn info(&mut self, id: &str) -> ContainerInfo {
        match self.ask(Request::Inspect { id: id.into() }) {
            Response::Container(c) => c,
            other => panic!("{other:?}"),
        }
    }
}

/// The answer to `conn` among `effects`.
fn answer_to(conn: ConnId, effects: &[Effect]) -> Option<Response> {
    effects.iter().find_map(|e| match e {
        Effect::Answer { conn: c, response } if *c == conn => Some(response.clone()),
        _ => None,
    })
}

/// The error code and message of an answer.
fn error_of(r: Option<Response>) -> (ErrorCode, String) {
    match r {
        Some(Response::Error(e)) => (e.code, e.message),
        other => panic!("not an error: {other:?}"),
    }
}

fn kills(effects: &[Effect]) -> Vec<(i32, Signal)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Kill { pid, signal } => Some((*pid, *signal)),
            _ => None,
        })
        .collect()
}

#[test]
fn other_protocol_versions_are_refused() {
    let mut t = T::new();
    let conn = t.conn();
    let mut frame = RequestFrame::new(Request::Ps);
    frame.version += 1;
    let effects = t.on(Input::Request { conn, frame });
    assert_eq!(
        error_of(answer_to(conn, &effects)).0,
        ErrorCode::UnsupportedVersion
    );
}

#[test]
fn unknown_ids_are_not_found() {
    let mut t = T::new();
    for r in [
        Request::Inspect { id: "x".into() },
        Request::Wait { id: "x".into() },
        Request::Remove { id: "x".into() },
        Request::Stop {
            id: "x".into(),
            grace_ms: 1,
        },
    ] {
        let (code, msg) = error_of(Some(t.ask(r)));
        assert_eq!(code, ErrorCode::NotFound);
        assert!(msg.contains("no such container: x"), "{msg}");
    }
}

#[test]
fn next_deadline_is_the_earliest() {
    let mut t = T::new();
    assert_eq!(t.core.next_deadline(), None);
    let (_, _) = t.begin(spec("a", "/roots/a"));
    let start_deadline = t.t0 + config().ready_timeout;
    assert_eq!(t.core.next_deadline(), Some(start_deadline));
    t.ms = 10;
    let info = t.running("b", 20);
    assert_eq!(info.state, ContainerState::Running);
    t.request(Request::Stop {
        id: "b".into(),
        grace_ms: 500,
    });
    assert_eq!(
        t.core.next_deadline(),
        Some(t.t0 + Duration::from_millis(510))
    );
}
