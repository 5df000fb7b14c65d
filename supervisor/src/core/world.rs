//! The core's state, shared by its rule modules: records, starts in flight, waiters, the
//! log-router's phase, and the effects produced by the input being handled.

use crate::core::config::CoreConfig;
use crate::core::effect::Effect;
use crate::core::input::{ConnId, Now};
use crate::core::records::Records;
use crate::core::router_state::RouterState;
use crate::core::starts::Starts;
use proto::api::{ContainerInfo, ErrorCode, Response};

/// All of the core's state.
#[derive(Debug)]
pub struct World {
    /// Settings.
    pub cfg: CoreConfig,
    /// Containers, live and ended.
    pub records: Records,
    /// Starts in flight.
    pub starts: Starts,
    /// Connections waiting for a container to end (`wait`, `stop`), with its id.
    pub waits: Vec<(ConnId, String)>,
    /// Records removed (by `rm`, or `run --rm` with no connection to answer) whose log files
    /// are being removed; their ids stay taken until then.
    pub removing: Vec<(Option<ConnId>, ContainerInfo)>,
    /// The log-router.
    pub router: RouterState,
    /// SIGINT/SIGTERM was received.
    pub shutting_down: bool,
    /// Effects of the current input.
    pub out: Vec<Effect>,
    /// Time of the current input.
    pub now: Now,
}

impl World {
    /// An empty world with a configured log-router.
    pub fn new(cfg: CoreConfig, now: Now) -> Self {
        Self {
            cfg,
            records: Records::default(),
            starts: Starts::default(),
            waits: Vec::new(),
            removing: Vec::new(),
            router: RouterState::up(),
            shutting_down: false,
            out: Vec::new(),
            now,
        }
    }

    /// Queues an answer.
    pub fn answer(&mut self, conn: ConnId, response: Response) {
        self.out.push(Effect::Answer { conn, response });
    }

    /// Queues an error answer.
    pub fn error(&mut self, conn: ConnId, code: ErrorCode, message: String) {
        self.answer(conn, Response::error(code, message));
    }

    /// Makes a container's record final if it has ended, and answers those waiting for it;
    /// a `run --rm` record whose client is gone is then removed.
    pub fn finalize(&mut self, id: &str) {
        let now_ms = self.now.unix_ms;
        let Some(c) = self.records.get_mut(id) else {
            return;
        };
        if !c.try_finalize(now_ms) {
            return;
        }
        let info = c.info.clone();
        tracing::info!(
            container = %id,
            state = info.state.as_str(),
            reason = %info.reason.map(|r| r.to_display()).unwrap_or_default(),
            "container ended"
        );
        let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waits)
            .into_iter()
            .partition(|(_, w)| w == id);
        self.waits = rest;
        for (conn, _) in done {
            self.answer(conn, Response::Container(info.clone()));
        }
        if self.records.get(id).is_some_and(|c| c.due_for_removal()) {
            self.remove_record(None, id);
        }
    }

    /// Forgets an ended record and has its log files removed; `conn` (the `rm` request's) is
    /// answered once they are gone ([`crate::core::Input::LogsRemoved`]).
    pub fn remove_record(&mut self, conn: Option<ConnId>, id: &str) {
        let Some(c) = self.records.remove(id) else {
            return;
        };
        tracing::debug!(container = %id, "removing record and log files");
        self.out.push(Effect::RemoveLogs {
            id: id.to_string(),
            log_path: c.info.log_path.clone().into(),
        });
        self.removing.push((conn, c.info));
    }
}

/// The answer for an unknown id.
pub fn not_found(id: &str) -> Response {
    Response::error(ErrorCode::NotFound, format!("no such container: {id}"))
}
