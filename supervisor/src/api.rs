//! Request handling: validates each client request and turns it into state changes, a spawn,
//! or a deferred answer. Every failure becomes an error response; nothing a client sends can
//! end the supervisor.

use crate::connection::Pending;
use crate::container::spawn::{spawn, SpawnError, SpawnRequest};
use crate::event_loop::Supervisor;
use crate::monitor::{MonitorCommand, Tracked};
use crate::state::{Container, NewContainer};
use proto::api::{
    Command, ErrorCode, Request, RequestFrame, Response, StartSpec, PROTOCOL_VERSION,
};
use proto::limits;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

impl Supervisor {
    /// Handles one request from connection `key`. `None` means the answer is deferred until
    /// the container ends (the connection's `pending` is set).
    pub(crate) fn handle(&mut self, key: usize, frame: RequestFrame) -> Option<Response> {
        if frame.version != PROTOCOL_VERSION {
            return Some(Response::error(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {} is not supported (this supervisor speaks {PROTOCOL_VERSION})",
                    frame.version
                ),
            ));
        }
        match frame.request {
            Request::Start(spec) => Some(self.start(spec)),
            Request::Ps => Some(Response::Containers(self.registry.infos())),
            Request::Inspect { id } => Some(match self.registry.get(&id) {
                Some(c) => Response::Container(c.info.clone()),
                None => not_found(&id),
            }),
            Request::Wait { id } => self.defer_until_ended(key, &id),
            Request::Remove { id } => Some(self.remove(&id)),
            Request::Stop { id, grace_ms } => {
                if self.registry.get(&id).is_none() {
                    return Some(not_found(&id));
                }
                self.request_stop(&id, Duration::from_millis(grace_ms));
                self.defer_until_ended(key, &id)
            }
        }
    }

    /// Forgets an ended container and deletes its log files; refuses a live one.
    fn remove(&mut self, id: &str) -> Response {
        match self.registry.get(id) {
            None => return not_found(id),
            Some(c) if c.is_live() => {
                return Response::error(
                    ErrorCode::Conflict,
                    format!("container {id} is running: stop it before removing it"),
                )
            }
            Some(_) => {}
        }
        let Some(c) = self.registry.remove(id) else {
            return not_found(id);
        };
        if let Err(e) = remove_log_files(Path::new(&c.info.log_path)) {
            // The record is gone either way; the files can be removed by hand.
            tracing::warn!(container = %id, error = %e, "cannot remove log files");
            return Response::error(
                ErrorCode::Internal,
                format!("removed {id}, but not its log {}: {e}", c.info.log_path),
            );
        }
        tracing::info!(container = %id, "container removed");
        Response::Container(c.info)
    }

    fn defer_until_ended(&mut self, key: usize, id: &str) -> Option<Response> {
        let c = match self.registry.get(id) {
            Some(c) => c,
            None => return Some(not_found(id)),
        };
        if !c.is_live() {
            return Some(Response::Container(c.info.clone()));
        }
        if let Some(conn) = self.conns.get_mut(key) {
            conn.pending = Some(Pending::Ended(id.to_string()));
        }
        None
    }

    fn start(&mut self, spec: StartSpec) -> Response {
        match self.try_start(spec) {
            Ok(r) => r,
            Err((code, message)) => Response::error(code, message),
        }
    }

    fn try_start(&mut self, spec: StartSpec) -> Result<Response, (ErrorCode, String)> {
        let invalid = |m: String| (ErrorCode::InvalidArgument, m);
        if self.shutting_down {
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
        let rootfs = Path::new(&spec.rootfs);
        if !rootfs.is_absolute() {
            return Err(invalid(format!(
                "rootfs {} is not an absolute path",
                spec.rootfs
            )));
        }
        let meta = std::fs::metadata(rootfs)
            .map_err(|e| invalid(format!("rootfs {}: {e}", spec.rootfs)))?;
        if !meta.is_dir() {
            return Err(invalid(format!(
                "rootfs {} is not a directory",
                spec.rootfs
            )));
        }
        let rootfs_key = rootfs
            .canonicalize()
            .map_err(|e| invalid(format!("rootfs {}: {e}", spec.rootfs)))?;
        let base = &self.config.base_rootfs;
        if rootfs_key != *base && (rootfs_key.starts_with(base) || base.starts_with(&rootfs_key)) {
            return Err(invalid(format!(
                "rootfs {} and the base rootfs {} overlap (one contains the other)",
                spec.rootfs,
                base.display()
            )));
        }
        if self.registry.get(&spec.id).is_some_and(|c| c.is_live()) {
            return Err((
                ErrorCode::Conflict,
                format!("container {} already exists and is running", spec.id),
            ));
        }
        if let Some(other) = self.registry.live_on_rootfs(&rootfs_key) {
            return Err((
                ErrorCode::Conflict,
                format!(
                    "rootfs {} is already used by running container {}",
                    spec.rootfs, other.info.id
                ),
            ));
        }
        let sinks = proto::router::apply_log_opts(&self.default_sinks, &spec.log_opts)
            .map_err(|e| invalid(format!("--log-opt: {e}")))?;
        if !spec.log_opts.is_empty() {
            // Unknown sinks and options are refused now, not after the container runs.
            self.router
                .validate(&sinks)
                .map_err(|e| invalid(format!("--log-opt: {e}")))?;
        }

        let log_path = self.config.log_path(&spec.id);
        // A new container with a reused id starts a new log: drop the old one's files.
        remove_log_files(&log_path).map_err(|e| {
            (
                ErrorCode::Internal,
                format!("cannot remove old log {}: {e}", log_path.display()),
            )
        })?;
        let init_path = self.config.libexec_dir.join("container-init");
        let spawned = spawn(&SpawnRequest {
            id: &spec.id,
            rootfs: &rootfs_key,
            base_rootfs: &self.config.base_rootfs,
            command: &spec.command,
            nice: spec.nice,
            init_path: &init_path,
        })
        .map_err(|e| {
            let code = match e {
                SpawnError::Command { exit_code, .. } => proto::exit::command_error(exit_code),
                _ => None,
            };
            let code = code.unwrap_or(ErrorCode::SpawnFailed);
            (code, format!("cannot start {}: {e}", spec.id))
        })?;
        let pid = spawned.pid.as_raw();
        let log_path_str = log_path.to_string_lossy().into_owned();
        if let Err(e) = self.router.add_container(
            &spec.id,
            &log_path,
            spawned.stdout.as_fd(),
            spawned.stderr.as_fd(),
            &sinks,
        ) {
            // The fds stay with the record; a restarted router is handed them again.
            tracing::error!(container = %spec.id, error = %e, "cannot hand output to log-router");
        }
        self.monitor.send(MonitorCommand::Register(Tracked {
            id: spec.id.clone(),
            pid,
            soft_limit_bytes: spec.soft_limit_bytes,
            hard_limit_bytes: spec.hard_limit_bytes,
        }));
        let container = Container::new(NewContainer {
            id: spec.id.clone(),
            pid,
            rootfs: spec.rootfs,
            rootfs_key,
            command: spec.command,
            soft_limit_bytes: spec.soft_limit_bytes,
            hard_limit_bytes: spec.hard_limit_bytes,
            log_path: log_path_str,
            output: (spawned.stdout, spawned.stderr),
            sinks,
        });
        let info = container.info.clone();
        tracing::info!(container = %info.id, pid, "container started");
        self.registry.insert(container);
        Ok(Response::Container(info))
    }
}

/// Removes a log, its index and its rotated generations (plain or compressed).
fn remove_log_files(log: &Path) -> std::io::Result<()> {
    logstore::remove(log)
}

fn not_found(id: &str) -> Response {
    Response::error(ErrorCode::NotFound, format!("no such container: {id}"))
}
