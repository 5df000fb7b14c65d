//! The client requests: each is answered now (`ps`, `inspect`, `kill`), or later (a start,
//! `wait`, `stop`, `rm`).
//! Nothing a client sends can end the supervisor.

use crate::core::effect::Effect;
use crate::core::ending;
use crate::core::input::ConnId;
use crate::core::start;
use crate::core::world::{not_found, World};
use proto::api::{ContainerInfo, ErrorCode, Request, RequestFrame, Response, PROTOCOL_VERSION};
use proto::init::FORWARDED_SIGNALS;
use std::time::Duration;

/// Handles one request from `conn`.
pub fn handle(w: &mut World, conn: ConnId, frame: RequestFrame) {
    if frame.version != PROTOCOL_VERSION {
        return w.error(
            conn,
            ErrorCode::UnsupportedVersion,
            format!(
                "protocol version {} is not supported (this supervisor speaks {PROTOCOL_VERSION})",
                frame.version
            ),
        );
    }
    match frame.request {
        Request::Start(spec) => start::begin(w, conn, spec),
        Request::Ps => {
            let ps = ps(w);
            w.answer(conn, Response::Containers(ps));
        }
        Request::Inspect { id } => {
            let r = match starting(w, &id).or_else(|| w.records.get(&id).map(|c| c.info.clone())) {
                Some(info) => Response::Container(info),
                None => not_found(&id),
            };
            w.answer(conn, r);
        }
        Request::Wait { id } => defer_until_ended(w, conn, &id),
        Request::Remove { id } => remove(w, conn, &id),
        Request::Kill { id, signal } => kill(w, conn, &id, signal),
        Request::Stop { id, grace_ms } => {
            let grace = Duration::from_millis(grace_ms);
            match w
                .starts
                .by_container(&id)
                .filter(|_| starting(w, &id).is_some())
            {
                // Stopped as soon as it runs (a failed start answers the stop with its error).
                Some(s) => start::stop_when_started(w, s, grace),
                None => ending::request_stop(w, &id, grace),
            }
            defer_until_ended(w, conn, &id);
        }
    }
}

/// Every record, and every start in flight (state `starting`), sorted by start time then id.
fn ps(w: &World) -> Vec<ContainerInfo> {
    let mut v: Vec<ContainerInfo> = w.records.infos().cloned().collect();
    v.extend(
        w.starts
            .iter()
            .filter(|(_, p)| !p.abandoned)
            .map(|(_, p)| p.info(&w.cfg.log_path(&p.spec.id))),
    );
    v.sort_by(|a, b| (a.started_at_ms, &a.id).cmp(&(b.started_at_ms, &b.id)));
    v
}

/// The `starting` record of a start of `id` in flight.
fn starting(w: &World, id: &str) -> Option<ContainerInfo> {
    let p = w.starts.by_container(id).and_then(|s| w.starts.get(s))?;
    (!p.abandoned).then(|| p.info(&w.cfg.log_path(id)))
}

/// Answers when container `id` has ended; for a start in flight, when the container it
/// becomes has ended (or with the start's error).
fn defer_until_ended(w: &mut World, conn: ConnId, id: &str) {
    if starting(w, id).is_some() {
        return w.waits.push((conn, id.to_string()));
    }
    match w.records.get(id) {
        None => w.answer(conn, not_found(id)),
        Some(c) if !c.is_live() => {
            let info = c.info.clone();
            w.answer(conn, Response::Container(info));
        }
        Some(_) => w.waits.push((conn, id.to_string())),
    }
}

/// Sends a forwardable signal to a running container's init (which passes it on to every
/// process of the container); answers with the record at once.
fn kill(w: &mut World, conn: ConnId, id: &str, signal: i32) {
    let Some(sig) = FORWARDED_SIGNALS.into_iter().find(|s| *s as i32 == signal) else {
        return w.error(
            conn,
            ErrorCode::InvalidArgument,
            format!(
                "signal {signal} cannot be sent to a container (only SIGTERM, SIGINT, SIGHUP, \
                 SIGUSR1, SIGUSR2, SIGQUIT, SIGWINCH; `engine stop` ends one)"
            ),
        );
    };
    if starting(w, id).is_some() {
        return w.error(
            conn,
            ErrorCode::Conflict,
            format!("container {id} is starting: it cannot be signalled yet"),
        );
    }
    let (pid, info) = match w.records.get(id) {
        None => return w.answer(conn, not_found(id)),
        Some(c) if !c.is_live() || c.init_exit.is_some() => {
            return w.error(
                conn,
                ErrorCode::Conflict,
                format!("container {id} is not running"),
            )
        }
        Some(c) => (c.info.pid, c.info.clone()),
    };
    tracing::info!(container = %id, signal = %sig, "forwarding a signal");
    w.out.push(Effect::Kill { pid, signal: sig });
    w.answer(conn, Response::Container(info));
}

/// Forgets an ended container and has its log files deleted; refuses a live one.
fn remove(w: &mut World, conn: ConnId, id: &str) {
    if starting(w, id).is_some() {
        return w.error(
            conn,
            ErrorCode::Conflict,
            format!("container {id} is starting: stop it before removing it"),
        );
    }
    match w.records.get(id) {
        None => return w.answer(conn, not_found(id)),
        Some(c) if c.is_live() => {
            return w.error(
                conn,
                ErrorCode::Conflict,
                format!("container {id} is running: stop it before removing it"),
            )
        }
        Some(_) => {}
    }
    w.remove_record(Some(conn), id);
}

/// The log files of a removed container are gone (or not); the `rm` that asked, if any and
/// still there, is answered.
pub fn on_logs_removed(w: &mut World, id: &str, result: std::io::Result<()>) {
    let Some(at) = w.removing.iter().position(|(_, i)| i.id == id) else {
        return;
    };
    let (conn, info) = w.removing.remove(at);
    let answer = match result {
        Ok(()) => {
            tracing::info!(container = %id, "container removed");
            Response::Container(info)
        }
        Err(e) => {
            // The record is gone either way; the files can be removed by hand.
            tracing::warn!(container = %id, error = %e, "cannot remove log files");
            Response::error(
                ErrorCode::Internal,
                format!("removed {id}, but not its log {}: {e}", info.log_path),
            )
        }
    };
    if let Some(conn) = conn {
        w.answer(conn, answer);
    }
}

/// A connection is gone: drop what waited on it; `run --rm` records it started are removed
/// once ended.
pub fn forget_conn(w: &mut World, conn: ConnId) {
    w.waits.retain(|(c, _)| *c != conn);
    for (c, _) in &mut w.removing {
        if *c == Some(conn) {
            *c = None;
        }
    }
    let mut due = Vec::new();
    for c in w.records.owned_by(conn) {
        c.owner = None;
        if c.due_for_removal() {
            due.push(c.info.id.clone());
        }
    }
    for id in due {
        w.remove_record(None, &id);
    }
    start::forget_conn(w, conn);
}
