//! The start rules, in two phases: the request is validated and its rootfs checked off the
//! loop, its `--log-opt` sinks validated by the log-router, then container-init is cloned;
//! the answer comes with container-init's ready report (and, for a failure, its exit status:
//! 127/126 mean the program was not found / not executable), in either order. A ready start
//! hands its output to the log-router and waits until the router added it (one whose log
//! cannot be stored, `AddFailed`, is refused and its init killed, as Docker refuses a
//! container whose log driver fails), then until the memory monitor has accepted the container
//! (a refusal fails the start: a container never runs unmonitored). A start that does not
//! finish within the ready timeout is answered with an error and its init killed.

use crate::core::effect::{Effect, SpawnSpec};
use crate::core::ending;
use crate::core::input::{ConnId, ReadyLost, RootfsCheckError, SpawnFailure, StartId};
use crate::core::records::Container;
use crate::core::router_state::Phase;
use crate::core::starts::{PendingStart, Routing, Stage};
use crate::core::world::World;
use crate::monitor::{MonitorCommand, Tracked};
use nix::sys::signal::Signal;
use proto::api::{Command, ContainerState, ErrorCode, Response, StartSpec};
use proto::exit::{command_error, InitExit};
use proto::init::report::Outcome;
use proto::limits;
use proto::router::ToRouter;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A refused request: the error code and the one-line message.
type Refusal = (ErrorCode, String);

fn invalid(message: String) -> Refusal {
    (ErrorCode::InvalidArgument, message)
}

/// Checks what needs no filesystem: the supervisor's state, id, limits, nice, command, path
/// syntax, `--log-opt` syntax, and an id that names any record or start (see [`id_taken`]).
fn admit(w: &World, spec: &StartSpec) -> Result<Vec<proto::router::SinkSpec>, Refusal> {
    if w.shutting_down {
        return Err((
            ErrorCode::ShuttingDown,
            "the supervisor is shutting down".into(),
        ));
    }
    limits::validate_id(&spec.id).map_err(invalid)?;
    limits::validate_limits(spec.soft_limit_bytes, spec.hard_limit_bytes).map_err(invalid)?;
    limits::validate_nice(spec.nice).map_err(invalid)?;
    let command_bytes = match &spec.command {
        Command::Shell(s) => s.len() + 1,
        Command::Argv(v) if v.is_empty() => return Err(invalid("empty command".into())),
        Command::Argv(v) => v.iter().map(|a| a.len() + 1).sum(),
    };
    limits::validate_command_size(command_bytes).map_err(invalid)?;
    if !Path::new(&spec.rootfs).is_absolute() {
        return Err(invalid(format!(
            "rootfs {} is not an absolute path",
            spec.rootfs
        )));
    }
    let sinks = proto::router::apply_log_opts(&w.cfg.default_sinks, &spec.log_opts)
        .map_err(|e| invalid(format!("--log-opt: {e}")))?;
    if let Some(refusal) = id_taken(w, &spec.id) {
        return Err(refusal);
    }
    if w.starts.checks_in_flight >= w.cfg.max_rootfs_checks {
        return Err((
            ErrorCode::SpawnFailed,
            format!(
                "cannot start {}: {} rootfs checks are still running (a filesystem is not \
                 answering); try again later",
                spec.id, w.starts.checks_in_flight
            ),
        ));
    }
    Ok(sinks)
}

/// Refuses an id that names any record (starting, running, ended, or its log files being
/// removed) until `rm` has removed it, as Docker does: a new container would otherwise
/// replace an ended one and its log.
fn id_taken(w: &World, id: &str) -> Option<Refusal> {
    let state = match w.records.get(id) {
        Some(c) => c.info.state.as_str(),
        None if w.starts.by_container(id).is_some() => "starting",
        None if w.removing.iter().any(|(_, i)| i.id == id) => "being removed",
        None => return None,
    };
    Some((
        ErrorCode::Conflict,
        format!(
            "container {id} already exists ({state}): remove it first with `engine rm -f {id}`"
        ),
    ))
}

/// A `Start` request: admitted starts have their rootfs checked; others are answered now.
pub fn begin(w: &mut World, conn: ConnId, spec: StartSpec) {
    let sinks = match admit(w, &spec) {
        Ok(s) => s,
        Err((code, message)) => return w.error(conn, code, message),
    };
    let path = PathBuf::from(&spec.rootfs);
    let start = w.starts.insert(PendingStart {
        conn: Some(conn),
        spec,
        stage: Stage::Checking,
        deadline: w.now.at + w.cfg.ready_timeout,
        requested_ms: w.now.unix_ms,
        rootfs_key: None,
        sinks,
        pid: None,
        report: None,
        exit: None,
        abandoned: false,
        stop_grace: None,
        routing: Routing::NotAsked,
        drained: false,
    });
    w.starts.checks_in_flight += 1;
    w.out.push(Effect::CheckRootfs { start, path });
}

/// The rootfs check of `start` finished.
pub fn on_checked(w: &mut World, start: StartId, result: Result<PathBuf, RootfsCheckError>) {
    w.starts.checks_in_flight = w.starts.checks_in_flight.saturating_sub(1);
    let Some(p) = w.starts.get(start).filter(|p| !p.abandoned) else {
        return;
    };
    let key = match result {
        Ok(key) => key,
        Err(e) => return abandon(w, start, invalid(e.to_string())),
    };
    if let Err(refusal) = check_key(w, &p.spec, &key) {
        return abandon(w, start, refusal);
    }
    let p = w.starts.get_mut(start).expect("looked up above");
    p.rootfs_key = Some(key);
    if p.spec.log_opts.is_empty() {
        return spawn(w, start);
    }
    if w.router.phase != Phase::Up {
        return abandon(
            w,
            start,
            (
                ErrorCode::Internal,
                "--log-opt cannot be checked now: the log-router is restarting; try again".into(),
            ),
        );
    }
    // Unknown sinks and options are refused now, not after the container runs.
    p.stage = Stage::Validating;
    let sinks = p.sinks.clone();
    w.router.validations.push_back(start);
    w.out.push(Effect::RouterSend(ToRouter::Validate { sinks }));
}

/// Refuses a rootfs that overlaps the base rootfs or is used by a live or starting container.
fn check_key(w: &World, spec: &StartSpec, key: &Path) -> Result<(), Refusal> {
    let base = &w.cfg.base_rootfs;
    if key != base && (key.starts_with(base) || base.starts_with(key)) {
        return Err(invalid(format!(
            "rootfs {} and the base rootfs {} overlap (one contains the other)",
            spec.rootfs,
            base.display()
        )));
    }
    let user = w
        .records
        .live_on_rootfs(key)
        .map(|c| c.info.id.clone())
        .or_else(|| w.starts.on_rootfs(key).map(|p| p.spec.id.clone()));
    match user {
        Some(other) => Err((
            ErrorCode::Conflict,
            format!(
                "rootfs {} is already used by running container {other}",
                spec.rootfs
            ),
        )),
        None => Ok(()),
    }
}

/// The log-router answered the `Validate` of `start` (`error` is its one-line reason).
pub fn on_validated(w: &mut World, start: StartId, error: Option<String>) {
    if w.starts.get(start).is_none_or(|p| p.abandoned) {
        return;
    }
    match error {
        None => spawn(w, start),
        Some(message) => abandon(w, start, invalid(format!("--log-opt: {message}"))),
    }
}

fn spawn(w: &mut World, start: StartId) {
    let Some(p) = w.starts.get_mut(start) else {
        return;
    };
    p.stage = Stage::Spawning;
    let spec = SpawnSpec {
        id: p.spec.id.clone(),
        rootfs: p.rootfs_key.clone().expect("checked before the spawn"),
        command: p.spec.command.clone(),
        nice: p.spec.nice,
        log_path: w.cfg.log_path(&p.spec.id),
    };
    w.out.push(Effect::Spawn { start, spec });
}

/// container-init of `start` was cloned.
pub fn on_spawned(w: &mut World, start: StartId, pid: i32) {
    let Some(p) = w.starts.get_mut(start) else {
        return;
    };
    p.pid = Some(pid);
    p.stage = Stage::Cloned;
    if p.abandoned {
        let id = p.spec.id.clone();
        w.out.push(Effect::DropStart { start, id });
        w.out.push(Effect::Kill {
            pid,
            signal: Signal::SIGKILL,
        });
    }
}

/// Nothing was cloned for `start`.
pub fn on_spawn_failed(w: &mut World, start: StartId, error: SpawnFailure) {
    let Some(p) = w.starts.get(start) else {
        return;
    };
    if p.abandoned {
        w.starts.remove(start);
        return;
    }
    let refusal = match &error {
        SpawnFailure::OldLogs { .. } => (ErrorCode::Internal, error.to_string()),
        SpawnFailure::Spawn(e) => (
            ErrorCode::SpawnFailed,
            format!("cannot start {}: {e}", p.spec.id),
        ),
    };
    abandon(w, start, refusal);
    // Nothing was cloned: nothing to reap.
    w.starts.remove(start);
}

/// container-init's ready pipe of `start` reported.
pub fn on_report(w: &mut World, start: StartId, outcome: Outcome) {
    if let Some(p) = w.starts.get_mut(start) {
        p.report = Some(outcome);
        settle(w, start);
    }
}

/// The ready pipe of `start` cannot be read: the start fails (its init is killed).
pub fn on_ready_lost(w: &mut World, start: StartId, error: &ReadyLost) {
    let Some(p) = w.starts.get(start).filter(|p| !p.abandoned) else {
        return;
    };
    let message = format!("cannot start {}: {error}", p.spec.id);
    abandon(w, start, (ErrorCode::SpawnFailed, message));
}

/// container-init of `start` was reaped.
pub fn on_exit(w: &mut World, start: StartId, exit: InitExit) {
    if let Some(p) = w.starts.get_mut(start) {
        p.exit = Some(exit);
        settle(w, start);
    }
}

/// Answers or finishes `start` once what it needs has arrived: the report for a ready init,
/// the report and the exit status for a failed one.
fn settle(w: &mut World, start: StartId) {
    let Some(p) = w.starts.get(start) else {
        return;
    };
    if p.abandoned {
        if p.exit.is_some() {
            w.starts.remove(start);
        }
        return;
    }
    let id = p.spec.id.clone();
    match (&p.report, p.exit) {
        (None, _) => {}
        (Some(Outcome::Ready), exit) => match p.routing {
            Routing::NotAsked => route(w, start),
            Routing::Asked => {}
            // Ended already: nothing to monitor (a registration in flight is undone when its
            // answer comes).
            Routing::Added if exit.is_some() => become_container(w, start),
            Routing::Added => register(w, start),
        },
        (Some(Outcome::ChildFailed(m)), _) => {
            let message = format!("cannot start {id}: container setup failed: {m}");
            abandon(w, start, (ErrorCode::SpawnFailed, message));
        }
        (Some(Outcome::Failed(_)), None) => {}
        (Some(Outcome::Failed(m)), Some(exit)) => {
            // container-init's own exit status says whether the workload's program was missing.
            let command = match exit {
                InitExit::Code(status) => command_error(status),
                InitExit::Signal(_) => None,
            };
            let refusal = match command {
                Some(code) => (code, format!("cannot start {id}: {m}")),
                None => (
                    ErrorCode::SpawnFailed,
                    format!("cannot start {id}: container setup failed: {m}"),
                ),
            };
            abandon(w, start, refusal);
        }
    }
}

/// Asks the memory monitor to track the workload of `start`; its answer
/// ([`on_registered`]) makes the start a container or fails it.
fn register(w: &mut World, start: StartId) {
    let Some(p) = w.starts.get_mut(start) else {
        return;
    };
    let Some(pid) = p.pid.filter(|_| p.stage != Stage::Registering) else {
        return;
    };
    p.stage = Stage::Registering;
    let tracked = Tracked {
        id: p.spec.id.clone(),
        pid,
        soft_limit_bytes: p.spec.soft_limit_bytes,
        hard_limit_bytes: p.spec.hard_limit_bytes,
    };
    w.out
        .push(Effect::Monitor(MonitorCommand::Register(tracked)));
}

/// The memory monitor answered the registration of container `id` (init `pid`): the start
/// becomes a container, or fails with the backend's reason (its init killed). An answer no
/// start waits for (failed, or ended, meanwhile) is undone.
pub fn on_registered(w: &mut World, id: &str, pid: i32, error: Option<String>) {
    let Some(start) = w.starts.registering(pid) else {
        if error.is_none() {
            let id = id.to_string();
            w.out
                .push(Effect::Monitor(MonitorCommand::Unregister { id, pid }));
        }
        return;
    };
    match error {
        None => become_container(w, start),
        Some(m) => {
            tracing::warn!(container = %id, error = %m, "memory monitor refused the container");
            let message = format!("cannot start {id}: the memory monitor refused it: {m}");
            abandon(w, start, (ErrorCode::SpawnFailed, message));
        }
    }
}

/// Hands the output of a ready `start` to the log-router, if it is up (else its `Ready`
/// does, see [`route_ready_starts`]); the start is answered on `Added`.
fn route(w: &mut World, start: StartId) {
    if w.router.phase != Phase::Up {
        return;
    }
    let Some(p) = w.starts.get_mut(start) else {
        return;
    };
    p.routing = Routing::Asked;
    let (id, sinks) = (p.spec.id.clone(), p.sinks.clone());
    let log_path = w.cfg.log_path(&id);
    w.out.push(Effect::RouteOutput {
        id,
        log_path,
        sinks,
    });
}

/// A (re)started router is ready: the ready starts it was not asked for, or whose answer the
/// old router took with it, are handed to it.
pub fn route_ready_starts(w: &mut World) {
    let ready: Vec<StartId> = w
        .starts
        .iter()
        .filter(|(_, p)| !p.abandoned && matches!(p.report, Some(Outcome::Ready)))
        .map(|(s, _)| s)
        .collect();
    for s in ready {
        route(w, s);
    }
}

/// The log-router answered the `AddContainer` of container `id`: `Ok` when it added it, else
/// its one-line reason. A start waiting for it is answered (refused on a failure); other
/// answers (a running container handed to a restarted router) are only logged.
pub fn on_add_answer(w: &mut World, id: &str, result: Result<(), String>) {
    let waiting = w.starts.by_container(id).filter(|s| {
        w.starts
            .get(*s)
            .is_some_and(|p| !p.abandoned && p.routing == Routing::Asked)
    });
    match (waiting, result) {
        (Some(start), Ok(())) => {
            if let Some(p) = w.starts.get_mut(start) {
                p.routing = Routing::Added;
            }
            settle(w, start);
        }
        (Some(start), Err(message)) => {
            let message = format!("cannot start {id}: its log cannot be stored: {message}");
            abandon(w, start, (ErrorCode::SpawnFailed, message));
        }
        (None, Ok(())) => {}
        (None, Err(message)) => {
            tracing::error!(container = %id, %message, "log-router cannot route output");
        }
    }
}

/// A `stop` of a container still starting: it is stopped as soon as it runs (the shortest
/// grace of several stops wins).
pub fn stop_when_started(w: &mut World, start: StartId, grace: Duration) {
    if let Some(p) = w.starts.get_mut(start) {
        p.stop_grace = Some(p.stop_grace.map_or(grace, |g| g.min(grace)));
    }
}

/// The ready report said the workload runs: the start becomes a running container.
fn become_container(w: &mut World, start: StartId) {
    let p = w.starts.remove(start).expect("settled start");
    let pid = p.pid.expect("reported after the clone");
    let log_path = w.cfg.log_path(&p.spec.id);
    let mut info = p.info(&log_path);
    info.state = ContainerState::Running;
    info.started_at_ms = w.now.unix_ms;
    let id = info.id.clone();
    let mut record = Container::new(
        info.clone(),
        p.rootfs_key.expect("checked"),
        p.sinks.clone(),
    );
    record.init_exit = p.exit;
    record.remove_on_exit = p.spec.remove_on_exit;
    record.owner = p.conn.filter(|_| p.spec.remove_on_exit);
    tracing::info!(container = %id, pid, "container started");
    if let Some(conn) = p.conn {
        w.answer(conn, Response::Container(info));
    }
    w.records.insert(record);
    // Its log was complete before it was monitored (the workload closed its output early).
    if p.drained {
        ending::on_drained(w, &id);
    }
    if let Some(grace) = p.stop_grace {
        ending::request_stop(w, &id, grace);
    }
}

/// Answers `start` with an error and lets go of it: its ready pipe and output are dropped,
/// its init (if any and still running) killed; it is forgotten once its init is reaped.
pub fn abandon(w: &mut World, start: StartId, (code, message): Refusal) {
    let Some(p) = w.starts.get_mut(start) else {
        return;
    };
    p.abandoned = true;
    let conn = p.conn.take();
    let (id, stage, pid, exit) = (p.spec.id.clone(), p.stage, p.pid, p.exit);
    tracing::info!(container = %id, ?code, %message, "start failed");
    // Those waiting for the container (`wait`, `stop`) get the start's error too.
    let (waiting, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut w.waits)
        .into_iter()
        .partition(|(_, i)| *i == id);
    w.waits = rest;
    for c in conn.into_iter().chain(waiting.into_iter().map(|(c, _)| c)) {
        w.error(c, code, message.clone());
    }
    if matches!(stage, Stage::Spawning | Stage::Cloned | Stage::Registering) {
        w.out.push(Effect::DropStart {
            start,
            id: id.clone(),
        });
    }
    match (pid, exit) {
        (Some(pid), None) => w.out.push(Effect::Kill {
            pid,
            signal: Signal::SIGKILL,
        }),
        // The clone's result is still to come: killed then (see `on_spawned`).
        (None, _) if stage == Stage::Spawning => {}
        _ => {
            w.starts.remove(start);
        }
    }
}

fn timeout_message(w: &World, start: StartId) -> String {
    let ms = w.cfg.ready_timeout.as_millis();
    let Some(p) = w.starts.get(start) else {
        return format!("start did not finish within {ms} ms");
    };
    let id = &p.spec.id;
    match p.stage {
        Stage::Checking => format!(
            "cannot start {id}: rootfs {} did not answer within {ms} ms",
            p.spec.rootfs
        ),
        Stage::Validating => format!("--log-opt: the log-router did not answer within {ms} ms"),
        Stage::Cloned if matches!(p.report, Some(Outcome::Ready)) => format!(
            "cannot start {id}: the log-router did not add its log {} within {ms} ms",
            w.cfg.log_path(id).display()
        ),
        Stage::Spawning | Stage::Cloned => {
            format!("cannot start {id}: container setup failed: container-init did not report within {ms} ms")
        }
        Stage::Registering => {
            format!("cannot start {id}: the memory monitor did not answer within {ms} ms")
        }
    }
}

/// Answers every start whose ready timeout has passed with an error (and kills its init).
pub fn on_deadlines(w: &mut World) {
    let now = w.now.at;
    let due: Vec<StartId> = w
        .starts
        .iter()
        .filter(|(_, p)| !p.abandoned && p.deadline <= now)
        .map(|(s, _)| s)
        .collect();
    for start in due {
        let code = match w.starts.get(start).map(|p| p.stage) {
            Some(Stage::Validating) => ErrorCode::InvalidArgument,
            _ => ErrorCode::SpawnFailed,
        };
        let message = timeout_message(w, start);
        abandon(w, start, (code, message));
    }
}

/// The connection of a start went away: the start goes on, unanswered.
pub fn forget_conn(w: &mut World, conn: ConnId) {
    let ids: Vec<StartId> = w.starts.iter().map(|(s, _)| s).collect();
    for s in ids {
        if let Some(p) = w.starts.get_mut(s) {
            if p.conn == Some(conn) {
                p.conn = None;
            }
        }
    }
}
