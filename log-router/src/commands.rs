//! Control messages from the supervisor: configuring default sinks, validating sinks, adding a
//! container (its pipes and sink threads), shutting down.

use crate::control::Packet;
use crate::event_loop::{stream_token, Router};
use crate::instance::SinkInstance;
use crate::pipe;
use crate::plan::{self, SinkPlan};
use crate::route::{Route, RouteId};
use crate::worker::SinkHandle;
use mio::unix::SourceFd;
use mio::Interest;
use proto::router::{FromRouter, SinkSpec, ToRouter};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

impl Router {
    pub(crate) fn on_packet(&mut self, p: Packet) {
        match p.message {
            ToRouter::Configure { sinks } => {
                let answer = match self.plans(&sinks) {
                    Ok(plans) => {
                        tracing::info!(sinks = plans.len(), "configured");
                        self.defaults = Some(plans);
                        FromRouter::Ready
                    }
                    Err(message) => FromRouter::ConfigError { message },
                };
                self.report(answer);
            }
            ToRouter::AddContainer {
                id,
                log_path,
                sinks,
            } => self.add(id, log_path, &sinks, p.fds),
            ToRouter::Validate { sinks } => {
                let error = self.plans(&sinks).err();
                self.report(FromRouter::Validated { error });
            }
            ToRouter::Shutdown => {
                tracing::info!(containers = self.routes.len(), "shutdown requested");
                self.shutting_down = true;
            }
        }
    }

    /// Loads and validates specs.
    pub(crate) fn plans(&mut self, specs: &[SinkSpec]) -> Result<Vec<SinkPlan>, String> {
        specs
            .iter()
            .map(|s| plan::plan(s, &mut self.registry).map_err(|e| e.to_string()))
            .collect()
    }

    pub(crate) fn add(
        &mut self,
        id: String,
        log_path: String,
        specs: &[SinkSpec],
        fds: Vec<OwnedFd>,
    ) {
        let Ok::<[OwnedFd; 2], _>([stdout, stderr]) = fds.try_into() else {
            let message = "AddContainer must carry exactly two fds (stdout, stderr)".to_string();
            self.report(FromRouter::AddFailed { id, message });
            return;
        };
        if self.routes.iter().any(|(_, r)| r.id == id) {
            let message = format!("container {id} is already routed");
            self.report(FromRouter::AddFailed { id, message });
            return;
        }
        if let Err(e) = pipe::prepare(stdout.as_fd()).and_then(|()| pipe::prepare(stderr.as_fd())) {
            let message = format!("container fds are not usable pipes: {e}");
            self.report(FromRouter::AddFailed { id, message });
            return;
        }
        self.serial += 1;
        let rid = RouteId {
            key: self.routes.vacant_key(),
            serial: self.serial,
        };
        let key = rid.key;
        let sinks = match self.start_sinks(rid, &id, &log_path, specs) {
            Ok(s) => s,
            Err(message) => {
                tracing::error!(%id, %message, "container output will be discarded");
                self.report(FromRouter::AddFailed {
                    id: id.clone(),
                    message,
                });
                Vec::new()
            }
        };
        for (idx, fd) in [&stdout, &stderr].into_iter().enumerate() {
            let reg = self.poll.registry().register(
                &mut SourceFd(&fd.as_raw_fd()),
                stream_token(key, idx),
                Interest::READABLE,
            );
            if let Err(e) = reg {
                tracing::error!(%id, error = %e, "cannot poll a container pipe; it is read on every turn");
            }
            self.ready.push_back((key, idx));
        }
        tracing::debug!(%id, route = key, sinks = sinks.len(), "container added");
        let inserted = self
            .routes
            .insert(Route::new(id, rid.serial, stdout, stderr, sinks));
        debug_assert_eq!(inserted, key);
    }

    /// Creates the container's sink instances and their threads.
    pub(crate) fn start_sinks(
        &mut self,
        rid: RouteId,
        id: &str,
        log_path: &str,
        specs: &[SinkSpec],
    ) -> Result<Vec<SinkHandle>, String> {
        if !log_path.starts_with('/') {
            return Err(format!("log path `{log_path}` is not absolute"));
        }
        let plans = if specs.is_empty() {
            self.defaults
                .clone()
                .ok_or_else(|| "the router is not configured yet".to_string())?
        } else {
            self.plans(specs)?
        };
        let mut handles = Vec::with_capacity(plans.len());
        for (i, plan) in plans.iter().enumerate() {
            let inst = SinkInstance::create(plan.lib, &plan.create_config(id, log_path))
                .map_err(|m| format!("sink `{}`: {m}", plan.label))?;
            let h = SinkHandle::spawn(inst, plan, rid, i, self.notifier.clone())
                .map_err(|e| format!("sink `{}`: cannot start its thread: {e}", plan.label))?;
            handles.push(h);
        }
        Ok(handles)
    }
}
