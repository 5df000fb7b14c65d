//! The log-router rules: its reports (drained logs, validations, drops), its death (fail the
//! waiting validations, restart it), its restart (wait for `Ready` with a deadline, then hand
//! it every live container whose log is not drained; retry after a growing delay on failure).

use crate::core::effect::Effect;
use crate::core::ending;
use crate::core::router_state::Phase;
use crate::core::start;
use crate::core::world::World;
use proto::api::ErrorCode;
use proto::router::FromRouter;

/// A report from the log-router.
pub fn on_message(w: &mut World, msg: FromRouter) {
    match msg {
        FromRouter::Drained { id } => ending::on_drained(w, &id),
        FromRouter::Added { id } => start::on_add_answer(w, &id, Ok(())),
        FromRouter::Validated { error } => match w.router.validations.pop_front() {
            Some(s) => start::on_validated(w, s, error),
            None => tracing::warn!("log-router answered a validation nobody asked for"),
        },
        FromRouter::Ready => on_ready(w),
        FromRouter::ConfigError { message } => {
            tracing::error!(%message, "log-router refused its configuration");
            if matches!(w.router.phase, Phase::Starting { .. }) {
                w.out.push(Effect::KillRouter);
                retry_later(w);
            }
        }
        FromRouter::AddFailed { id, message } => start::on_add_answer(w, &id, Err(message)),
        FromRouter::SinkError { id, sink, message } => {
            tracing::warn!(container = %id, %sink, %message, "sink error");
        }
        FromRouter::Drops { id, drops } => {
            if let Some(c) = w.records.get_mut(&id) {
                c.set_drops(drops);
            }
        }
        FromRouter::Draining { id, sinks } => {
            if let Some(c) = w.records.get_mut(&id) {
                c.set_draining(sinks);
            }
        }
    }
}

fn on_ready(w: &mut World) {
    if !matches!(w.router.phase, Phase::Starting { .. }) {
        return;
    }
    w.router.phase = Phase::Up;
    w.router.failures = 0;
    tracing::info!("log-router ready");
    // Bytes still in the pipes are read by the new router; bytes the old one had not stored
    // are still in the pipes too (it consumes only what its sinks stored).
    let again: Vec<Effect> = w
        .records
        .live()
        .filter(|c| !c.drained)
        .map(|c| Effect::RouteOutput {
            id: c.info.id.clone(),
            log_path: c.info.log_path.clone().into(),
            sinks: c.sinks.clone(),
        })
        .collect();
    w.out.extend(again);
    start::route_ready_starts(w);
}

/// The current log-router process was reaped (its last reports were read before).
pub fn on_exited(w: &mut World) {
    match w.router.phase {
        Phase::Stopping { .. } => finish(w),
        // Killed after a failed start: the retry timer restarts it.
        Phase::Retry { .. } | Phase::Done => {}
        Phase::Starting { .. } => {
            tracing::error!("log-router died before it was ready; retrying");
            fail_validations(w);
            retry_later(w);
        }
        Phase::Up => {
            tracing::error!("log-router died; restarting it");
            fail_validations(w);
            restart(w);
        }
    }
}

/// The log-router's control socket reached EOF: at shutdown, that is its end.
pub fn on_closed(w: &mut World) {
    if matches!(w.router.phase, Phase::Stopping { .. }) {
        finish(w);
    }
}

/// A (re)start failed before the router could be configured.
pub fn on_start_failed(w: &mut World, error: &crate::router_link::RouterError) {
    tracing::error!(%error, "log-router restart failed; retrying");
    if matches!(w.router.phase, Phase::Starting { .. }) {
        retry_later(w);
    }
}

/// Deadlines of a restart (give up and retry), a retry (start again) and a shutdown (kill and
/// exit).
pub fn on_deadlines(w: &mut World) {
    let now = w.now.at;
    match w.router.phase {
        Phase::Starting { deadline } if deadline <= now => {
            tracing::error!("log-router did not become ready in time; retrying");
            w.out.push(Effect::KillRouter);
            fail_validations(w);
            retry_later(w);
        }
        Phase::Retry { at } if at <= now => restart(w),
        Phase::Stopping { deadline } if deadline <= now => {
            tracing::warn!("log-router did not exit in time; killing it");
            w.out.push(Effect::KillRouter);
            finish(w);
        }
        _ => {}
    }
}

/// Starts a new router (the old one is killed by the shell if it still runs).
pub fn restart(w: &mut World) {
    w.router.phase = Phase::Starting {
        deadline: w.now.at + w.cfg.router_ready_timeout,
    };
    w.out.push(Effect::StartRouter);
}

/// Tells the router to finish every stream and exit; its socket's EOF is awaited.
pub fn shut_down(w: &mut World) {
    match w.router.phase {
        Phase::Up => {
            w.router.phase = Phase::Stopping {
                deadline: w.now.at + w.cfg.router_shutdown_timeout,
            };
            w.out
                .push(Effect::RouterSend(proto::router::ToRouter::Shutdown));
        }
        Phase::Starting { .. } | Phase::Retry { .. } => {
            w.out.push(Effect::KillRouter);
            finish(w);
        }
        Phase::Stopping { .. } | Phase::Done => {}
    }
}

fn finish(w: &mut World) {
    w.router.phase = Phase::Done;
    w.out.push(Effect::Exit);
}

/// Waits before the next start: the retry delay, doubled for each failure in a row (capped).
fn retry_later(w: &mut World) {
    let doublings = w.router.failures.min(16);
    w.router.failures = w.router.failures.saturating_add(1);
    let delay = w
        .cfg
        .router_retry
        .saturating_mul(1 << doublings)
        .min(w.cfg.router_retry_max);
    w.router.phase = Phase::Retry {
        at: w.now.at + delay,
    };
}

/// Answers every start waiting for a validation the dead router will never give.
fn fail_validations(w: &mut World) {
    while let Some(s) = w.router.validations.pop_front() {
        start::abandon(
            w,
            s,
            (
                ErrorCode::InvalidArgument,
                "--log-opt: the log-router exited before checking the options".into(),
            ),
        );
    }
}
