//! The supervisor's `mio` event loop: fixed tokens for the listening socket, signals, the
//! actors' waker and the log-router link; a `Slab` of client connections; stop deadlines as
//! poll timeouts. The loop owns all container state; actors talk to it by messages.

use crate::config::SupervisorConfig;
use crate::connection::{Connection, Incoming, Pending};
use crate::listener;
use crate::monitor::{self, MonitorCommand, MonitorEvent, MonitorHandle};
use crate::router_link::{LiveContainer, RouterLink};
use crate::state::{InitExit, Registry};
use crate::SupervisorError;
use crossbeam_channel::Receiver;
use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use proto::api::{ErrorCode, Response};
use proto::router::{FromRouter, SinkSpec};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
const WAKER: Token = Token(2);
const ROUTER: Token = Token(3);
const CONN_BASE: usize = 16;

/// Delay before retrying a failed log-router restart.
const ROUTER_RETRY: Duration = Duration::from_secs(1);

/// The supervisor: every piece of state the loop owns.
pub struct Supervisor {
    pub(crate) config: SupervisorConfig,
    poll: Poll,
    listener: UnixListener,
    signals: Signals,
    pub(crate) conns: Slab<Connection>,
    pub(crate) registry: Registry,
    pub(crate) monitor: MonitorHandle,
    monitor_rx: Receiver<MonitorEvent>,
    pub(crate) router: RouterLink,
    /// Sinks of a container that names none of its own.
    pub(crate) default_sinks: Vec<SinkSpec>,
    router_retry_at: Option<Instant>,
    pub(crate) shutting_down: bool,
}

impl Supervisor {
    /// Binds the socket, starts the monitor actor and the log-router.
    ///
    /// # Errors
    /// [`SupervisorError`] when any of them cannot start.
    pub fn new(config: SupervisorConfig) -> Result<Self, SupervisorError> {
        let meta = std::fs::metadata(&config.base_rootfs).map_err(|e| {
            SupervisorError::BaseRootfs(format!("{}: {e}", config.base_rootfs.display()))
        })?;
        if !meta.is_dir() {
            return Err(SupervisorError::BaseRootfs(format!(
                "{}: not a directory",
                config.base_rootfs.display()
            )));
        }
        std::fs::create_dir_all(config.logs_dir()).map_err(|e| {
            SupervisorError::StateDir(format!("{}: {e}", config.logs_dir().display()))
        })?;
        let listener = listener::bind(&config.socket)?;
        let socket = config.socket.clone();
        Self::with_listener(config, listener).inspect_err(|_| {
            // Nothing serves the socket after a failed start: do not leave it behind.
            let _ = std::fs::remove_file(&socket);
        })
    }

    fn with_listener(
        config: SupervisorConfig,
        mut listener: UnixListener,
    ) -> Result<Self, SupervisorError> {
        let poll = Poll::new().map_err(SupervisorError::Poll)?;
        // Signals first: SIGCHLD of every child must be seen.
        let mut signals =
            Signals::new([SIGCHLD, SIGINT, SIGTERM]).map_err(SupervisorError::Poll)?;
        let reg = poll.registry();
        reg.register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(SupervisorError::Poll)?;
        reg.register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(SupervisorError::Poll)?;
        let waker = Arc::new(Waker::new(reg, WAKER).map_err(SupervisorError::Poll)?);

        let (tx, monitor_rx) = crossbeam_channel::unbounded();
        let (monitor, kind) = monitor::start(config.monitor.clone(), tx, waker)
            .map_err(|e| SupervisorError::Monitor(e.to_string()))?;
        tracing::info!(backend = ?kind, "memory monitor backend: {}", match kind {
            monitor::BackendKind::Kernel => "kernel (/dev/container_monitor)",
            monitor::BackendKind::Userspace => "userspace (/proc scan)",
        });

        let router_exe = config.libexec_dir.join(crate::router_link::ROUTER_BINARY);
        let sinks = if config.log_sinks.is_empty() {
            vec![SinkSpec {
                sink: "file".into(),
                options: Vec::new(),
            }]
        } else {
            config.log_sinks.clone()
        };
        let default_sinks = sinks.clone();
        let mut router = RouterLink::start(&router_exe, sinks)
            .map_err(|e| SupervisorError::Router(e.to_string()))?;
        router
            .register(reg, ROUTER)
            .map_err(SupervisorError::Poll)?;
        tracing::info!(
            socket = %config.socket.display(),
            base_rootfs = %config.base_rootfs.display(),
            state_dir = %config.state_dir.display(),
            router_pid = router.pid().as_raw(),
            "supervisor ready"
        );
        Ok(Self {
            config,
            poll,
            listener,
            signals,
            conns: Slab::new(),
            registry: Registry::default(),
            monitor,
            monitor_rx,
            router,
            default_sinks,
            router_retry_at: None,
            shutting_down: false,
        })
    }

    /// Runs until a SIGINT/SIGTERM has stopped every container, then shuts the actors down
    /// and removes the socket.
    ///
    /// # Errors
    /// [`SupervisorError::Poll`] when polling itself fails.
    pub fn run(mut self) -> Result<(), SupervisorError> {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(SupervisorError::Poll(e));
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    SIGNALS => self.on_signals(),
                    WAKER => self.on_monitor_events(),
                    ROUTER => self.on_router_readable(),
                    Token(t) => self.on_connection(t - CONN_BASE),
                }
            }
            self.on_deadlines();
            self.serve_connections();
            if self.shutting_down && self.registry.live_count() == 0 {
                break;
            }
        }
        self.finish();
        Ok(())
    }

    fn finish(mut self) {
        for (_, c) in self.conns.iter_mut() {
            let _ = c.flush();
        }
        let inbox = self.router.shutdown(Duration::from_secs(10));
        if !inbox.closed {
            tracing::warn!("log-router did not shut down cleanly");
        }
        self.on_router_messages(inbox.messages);
        // Reap the router (and anything else left) so nothing outlives the supervisor.
        let _ = waitpid(self.router.pid(), None);
        self.monitor.shutdown();
        if let Err(e) = std::fs::remove_file(&self.config.socket) {
            tracing::warn!(error = %e, "cannot remove socket");
        }
        tracing::info!("supervisor stopped");
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.registry
            .live()
            .filter_map(|c| c.kill_deadline)
            .chain(self.router_retry_at)
            .min()
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    if let Err(uid) = listener::check_peer(&stream) {
                        tracing::warn!(uid, "refusing client: not root nor the supervisor's uid");
                        let mut c = Connection::new(stream);
                        c.respond(&Response::error(
                            ErrorCode::PermissionDenied,
                            format!("permission denied: uid {uid} may not use this supervisor"),
                        ));
                        continue;
                    }
                    let entry = self.conns.vacant_entry();
                    let token = Token(CONN_BASE + entry.key());
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        tracing::error!(error = %e, "cannot register connection");
                        continue;
                    }
                    entry.insert(Connection::new(stream));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::error!(error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    fn on_connection(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let ok = conn.fill().is_ok() && conn.flush().is_ok();
        if !ok {
            self.drop_connection(key);
        }
    }

    fn drop_connection(&mut self, key: usize) {
        if let Some(mut c) = self.conns.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

    /// Answers every buffered request of every connection, then drops finished connections.
    fn serve_connections(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            while let Some(incoming) = self.conns.get_mut(key).and_then(|c| c.next_request()) {
                match incoming {
                    Incoming::Request(frame) => {
                        let answer = self.handle(key, frame);
                        if let (Some(resp), Some(c)) = (answer, self.conns.get_mut(key)) {
                            c.respond(&resp);
                        }
                    }
                    Incoming::Malformed(e) => {
                        tracing::warn!(error = %e, "bad request frame; closing connection");
                        if let Some(c) = self.conns.get_mut(key) {
                            c.respond(&Response::error(
                                ErrorCode::BadRequest,
                                format!("bad request: {e}"),
                            ));
                            c.close_after_flush = true;
                        }
                    }
                }
            }
            if self.conns.get(key).is_some_and(|c| c.is_done()) {
                self.drop_connection(key);
            }
        }
    }

    fn on_signals(&mut self) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for sig in pending {
            match sig {
                SIGCHLD => self.reap(),
                SIGINT | SIGTERM => self.begin_shutdown(sig),
                _ => {}
            }
        }
    }

    fn begin_shutdown(&mut self, sig: i32) {
        if !self.shutting_down {
            tracing::info!(
                signal = sig,
                live = self.registry.live_count(),
                "shutting down"
            );
        }
        self.shutting_down = true;
        let grace = Duration::from_millis(proto::api::DEFAULT_STOP_GRACE_MS);
        let ids: Vec<String> = self.registry.live().map(|c| c.info.id.clone()).collect();
        for id in ids {
            self.request_stop(&id, grace);
        }
    }

    /// Marks a stop and sends SIGTERM to container-init, which forwards it to every process of
    /// the container; SIGKILL follows at the deadline.
    pub(crate) fn request_stop(&mut self, id: &str, grace: Duration) {
        let Some(c) = self.registry.get_mut(id) else {
            return;
        };
        if !c.is_live() || c.init_exit.is_some() {
            c.stop_requested |= c.is_live();
            return;
        }
        let deadline = Instant::now() + grace;
        if !c.stop_requested {
            c.stop_requested = true;
            tracing::info!(
                container = id,
                grace_ms = grace.as_millis() as u64,
                "stopping"
            );
            let _ = kill(Pid::from_raw(c.info.pid), Signal::SIGTERM);
        }
        c.kill_deadline = Some(c.kill_deadline.map_or(deadline, |d| d.min(deadline)));
    }

    fn on_deadlines(&mut self) {
        let now = Instant::now();
        for c in self.registry.live_mut() {
            if c.kill_deadline.is_some_and(|d| d <= now) && c.init_exit.is_none() {
                tracing::info!(container = %c.info.id, "grace period over: SIGKILL");
                let _ = kill(Pid::from_raw(c.info.pid), Signal::SIGKILL);
                c.kill_deadline = None;
            }
        }
        if self.router_retry_at.is_some_and(|t| t <= now) {
            self.router_retry_at = None;
            self.restart_router();
        }
    }

    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.on_child_exit(pid, InitExit::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.on_child_exit(pid, InitExit::Signal(sig as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    tracing::error!(error = %e, "waitpid failed");
                    return;
                }
            }
        }
    }

    fn on_child_exit(&mut self, pid: Pid, exit: InitExit) {
        if pid == self.router.pid() {
            tracing::error!(?exit, "log-router died; restarting it");
            self.restart_router();
            return;
        }
        let Some(c) = self.registry.by_pid_mut(pid.as_raw()) else {
            tracing::debug!(pid = pid.as_raw(), "reaped unknown child");
            return;
        };
        c.init_exit = Some(exit);
        c.kill_deadline = None;
        let (id, hard) = (c.info.id.clone(), c.hard_limit_killed);
        tracing::info!(container = %id, ?exit, "container init exited");
        if !hard {
            self.monitor.send(MonitorCommand::Unregister {
                id: id.clone(),
                pid: pid.as_raw(),
            });
        }
        self.finalize(&id);
    }

    fn restart_router(&mut self) {
        let live: Vec<LiveContainer<'_>> = self
            .registry
            .live()
            .filter(|c| !c.drained)
            .filter_map(|c| {
                c.output.as_ref().map(|(out, err)| LiveContainer {
                    id: &c.info.id,
                    log_path: std::path::Path::new(&c.info.log_path),
                    stdout: out.as_fd(),
                    stderr: err.as_fd(),
                    sinks: &c.sinks,
                })
            })
            .collect();
        match self.router.restart(live) {
            Ok(last) => self.on_router_messages(last),
            Err(e) => {
                tracing::error!(error = %e, "log-router restart failed; retrying");
                self.router_retry_at = Some(Instant::now() + ROUTER_RETRY);
            }
        }
    }

    fn on_router_readable(&mut self) {
        // A closed socket means the router died; its reaped pid triggers the restart.
        let inbox = self.router.read_messages();
        self.on_router_messages(inbox.messages);
    }

    fn on_router_messages(&mut self, msgs: Vec<FromRouter>) {
        for msg in msgs {
            match msg {
                FromRouter::Drained { id } => {
                    if let Some(c) = self.registry.get_mut(&id) {
                        c.drained = true;
                        c.output = None;
                        c.set_draining(Vec::new());
                    }
                    self.finalize(&id);
                }
                FromRouter::AddFailed { id, message } => {
                    tracing::error!(container = %id, %message, "log-router cannot route output");
                }
                FromRouter::SinkError { id, sink, message } => {
                    tracing::warn!(container = %id, %sink, %message, "sink error");
                }
                FromRouter::Draining { id, sinks } => {
                    if let Some(c) = self.registry.get_mut(&id) {
                        c.set_draining(sinks);
                    }
                }
                FromRouter::Drops { id, drops } => {
                    if let Some(c) = self.registry.get_mut(&id) {
                        c.set_drops(drops);
                    }
                }
                FromRouter::Ready
                | FromRouter::ConfigError { .. }
                | FromRouter::Validated { .. } => {}
            }
        }
    }

    fn on_monitor_events(&mut self) {
        while let Ok(ev) = self.monitor_rx.try_recv() {
            match ev {
                MonitorEvent::Rss { id, rss_bytes } => {
                    if let Some(c) = self.registry.get_mut(&id) {
                        c.info.rss_bytes = Some(rss_bytes);
                    }
                }
                MonitorEvent::SoftLimit { id, rss_bytes, .. } => {
                    if let Some(c) = self.registry.get_mut(&id) {
                        c.info.rss_bytes = Some(rss_bytes);
                    }
                }
                MonitorEvent::HardLimitKilled { id, rss_bytes, .. } => {
                    if let Some(c) = self.registry.get_mut(&id) {
                        c.info.rss_bytes = Some(rss_bytes);
                        c.hard_limit_killed = true;
                    }
                }
                MonitorEvent::Error { id, message } => {
                    // A container that ended before the monitor saw it is not a monitor fault.
                    let ended = id
                        .as_deref()
                        .and_then(|i| self.registry.get(i))
                        .is_some_and(|c| c.init_exit.is_some());
                    if ended {
                        tracing::debug!(container = ?id, %message, "memory monitor: container already ended");
                    } else {
                        tracing::warn!(container = ?id, %message, "memory monitor");
                    }
                }
            }
        }
    }

    /// Makes a container's record final if it has ended, and answers those waiting for it.
    pub(crate) fn finalize(&mut self, id: &str) {
        let Some(c) = self.registry.get_mut(id) else {
            return;
        };
        if !c.try_finalize() {
            return;
        }
        let info = c.info.clone();
        tracing::info!(
            container = %id,
            state = info.state.as_str(),
            reason = %info.reason.map(|r| r.to_display()).unwrap_or_default(),
            "container ended"
        );
        let waiting = Pending::Ended(id.to_string());
        for (_, conn) in self.conns.iter_mut() {
            if conn.pending.as_ref() == Some(&waiting) {
                conn.pending = None;
                conn.respond(&Response::Container(info.clone()));
            }
        }
    }
}
