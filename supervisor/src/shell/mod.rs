//! The supervisor's shell: the `mio` loop (listening socket, client connections, signals, the
//! actors' waker, the log-router's socket, container-init ready pipes). It turns readiness
//! into [`crate::core::Input`]s, and carries out the core's effects through [`os::Os`]
//! ([`driver`]). Nothing here waits on a child, the log-router or a filesystem: the poll
//! timeout is the core's next deadline.

pub mod driver;
pub mod os;

#[cfg(test)]
mod tests;

use crate::config::SupervisorConfig;
use crate::connection::{Connection, Incoming, MAX_QUEUED_BYTES};
use crate::core::{ConnId, Core, CoreConfig, Input, StartId};
use crate::listener;
use crate::monitor::{self, MonitorEvent};
use crate::router_link::RouterLink;
use crate::SupervisorError;
use crossbeam_channel::Receiver;
use driver::Driver;
use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token, Waker};
use os::RealOs;
use proto::api::{ErrorCode, Response};
use proto::router::SinkSpec;
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
const WAKER: Token = Token(2);
const ROUTER: Token = Token(3);
const CONN_BASE: usize = 16;
/// Token of a ready pipe: this plus the start's number (connections stay far below).
const READY_BASE: usize = 1 << 40;
/// Client connections served at once; one more is answered with an error and closed. Each
/// holds a socket and at most ~1 MiB of unread requests plus [`MAX_QUEUED_BYTES`] of
/// answers (and one answer beyond).
pub const MAX_CONNECTIONS: usize = 512;

/// The running supervisor: the poller, its sources and the driver.
pub struct Supervisor {
    config: SupervisorConfig,
    poll: Poll,
    listener: UnixListener,
    signals: Signals,
    conns: Slab<(ConnId, Connection)>,
    keys: HashMap<ConnId, usize>,
    /// Connections whose last request is not answered yet (their next requests wait).
    awaiting: HashSet<usize>,
    next_conn: u64,
    monitor_rx: Receiver<MonitorEvent>,
    driver: Driver<RealOs>,
}

impl Supervisor {
    /// Checks the base rootfs, binds the socket, starts the monitor actor and the log-router.
    ///
    /// # Errors
    /// [`SupervisorError`] when any of them cannot start.
    pub fn new(config: SupervisorConfig) -> Result<Self, SupervisorError> {
        let meta = std::fs::metadata(&config.base_rootfs).map_err(|source| {
            SupervisorError::BaseRootfs {
                path: config.base_rootfs.clone(),
                source: Some(source),
            }
        })?;
        if !meta.is_dir() {
            return Err(SupervisorError::BaseRootfs {
                path: config.base_rootfs.clone(),
                source: None,
            });
        }
        std::fs::create_dir_all(config.logs_dir()).map_err(|source| SupervisorError::StateDir {
            path: config.logs_dir(),
            source,
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
        let (monitor, kind) = monitor::start(config.monitor.clone(), tx, Arc::clone(&waker))
            .map_err(SupervisorError::Monitor)?;
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
        let mut router =
            RouterLink::start(&router_exe, sinks.clone()).map_err(SupervisorError::Router)?;
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
        let (checks_tx, checks_rx) = crossbeam_channel::unbounded();
        let os = RealOs {
            registry: reg.try_clone().map_err(SupervisorError::Poll)?,
            ready_base: READY_BASE,
            waker,
            checks_tx,
            checks_rx,
            router,
            monitor,
            base_rootfs: config.base_rootfs.clone(),
            init_path: config.libexec_dir.join("container-init"),
        };
        let core_config = CoreConfig::new(config.base_rootfs.clone(), config.logs_dir(), sinks);
        let driver = Driver::new(Core::new(core_config, driver::now()), os);
        Ok(Self {
            config,
            poll,
            listener,
            signals,
            conns: Slab::new(),
            keys: HashMap::new(),
            awaiting: HashSet::new(),
            next_conn: 0,
            monitor_rx,
            driver,
        })
    }

    /// Runs until a SIGINT/SIGTERM has stopped every container and the log-router, then shuts
    /// the monitor down and removes the socket.
    ///
    /// # Errors
    /// [`SupervisorError::Poll`] when polling itself fails.
    pub fn run(mut self) -> Result<(), SupervisorError> {
        let mut events = Events::with_capacity(256);
        while !self.driver.exiting() {
            let stalls = self
                .conns
                .iter()
                .filter_map(|(_, (_, c))| c.stall_deadline());
            let timeout = self
                .driver
                .next_deadline()
                .into_iter()
                .chain(stalls)
                .min()
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
                    WAKER => self.on_wake(),
                    ROUTER => self.driver.on_router_readable(),
                    Token(t) if t >= READY_BASE => {
                        self.driver.on_ready(StartId((t - READY_BASE) as u64))
                    }
                    // HUP: the peer closed both directions (a half-close is only RDHUP).
                    Token(t) => {
                        self.on_connection(t - CONN_BASE, ev.is_write_closed() || ev.is_error())
                    }
                }
            }
            self.driver.feed(Input::Tick);
            self.deliver_answers();
            while self.serve_connections() {}
            self.drop_stalled();
        }
        self.finish();
        Ok(())
    }

    fn finish(mut self) {
        self.deliver_answers();
        for (_, (_, c)) in self.conns.iter_mut() {
            let _ = c.flush();
        }
        let os = self.driver.into_os();
        // The router closed its socket (or was killed): reap it so nothing outlives us.
        os.router.kill();
        let _ = nix::sys::wait::waitpid(os.router.pid(), None);
        os.monitor.shutdown();
        if let Err(e) = std::fs::remove_file(&self.config.socket) {
            tracing::warn!(error = %e, "cannot remove socket");
        }
        tracing::info!("supervisor stopped");
    }

    fn on_signals(&mut self) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for sig in pending {
            match sig {
                SIGCHLD => self.driver.on_sigchld(),
                SIGINT | SIGTERM => self.driver.feed(Input::Shutdown { signal: sig }),
                _ => {}
            }
        }
    }

    fn on_wake(&mut self) {
        while let Ok(ev) = self.monitor_rx.try_recv() {
            self.driver.feed(Input::Monitor(ev));
        }
        self.driver.on_checks();
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
                    if self.conns.len() >= MAX_CONNECTIONS {
                        // A burst of clients that already left: their hang-ups are not
                        // handled yet.
                        self.drop_hung_up();
                    }
                    if self.conns.len() >= MAX_CONNECTIONS {
                        tracing::warn!(
                            max = MAX_CONNECTIONS,
                            "refusing client: too many connections"
                        );
                        let mut c = Connection::new(stream);
                        c.respond(&Response::error(
                            ErrorCode::Internal,
                            format!(
                                "the supervisor serves {MAX_CONNECTIONS} connections already; \
                                 try again later"
                            ),
                        ));
                        continue;
                    }
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        Token(CONN_BASE + key),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        tracing::error!(error = %e, "cannot register connection");
                        continue;
                    }
                    self.next_conn += 1;
                    let id = ConnId(self.next_conn);
                    entry.insert((id, Connection::new(stream)));
                    self.keys.insert(id, key);
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

    /// A connection is readable or writable; `gone` when its peer has closed it entirely (or
    /// it failed): nothing more can be answered, so it is dropped at once, even with a request
    /// in flight (the core forgets what waited on it).
    fn on_connection(&mut self, key: usize, gone: bool) {
        let Some((_, conn)) = self.conns.get_mut(key) else {
            return;
        };
        let ok = !gone && conn.flush().is_ok() && conn.fill().is_ok();
        if !ok {
            self.drop_connection(key);
        }
    }

    /// Drops every connection whose peer has closed it entirely (one `poll(2)` over all of
    /// them, not waiting), before their events are handled.
    fn drop_hung_up(&mut self) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        let gone: Vec<usize> = {
            let mut fds: Vec<PollFd> = self
                .conns
                .iter()
                .map(|(_, (_, c))| PollFd::new(c.stream.as_fd(), PollFlags::empty()))
                .collect();
            if poll(&mut fds, PollTimeout::ZERO).is_err() {
                return;
            }
            fds.iter()
                .zip(&keys)
                .filter(|(f, _)| {
                    f.revents()
                        .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
                })
                .map(|(_, k)| *k)
                .collect()
        };
        for key in gone {
            self.drop_connection(key);
        }
    }

    /// Drops every connection whose client has not read its answers for too long.
    fn drop_stalled(&mut self) {
        let now = Instant::now();
        let stalled: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, (_, c))| c.stall_deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| k)
            .collect();
        for key in stalled {
            tracing::warn!(
                queued_over = MAX_QUEUED_BYTES,
                "dropping a client that does not read its answers"
            );
            self.drop_connection(key);
        }
    }

    fn drop_connection(&mut self, key: usize) {
        if let Some((id, mut c)) = self.conns.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.keys.remove(&id);
            self.awaiting.remove(&key);
            self.driver.feed(Input::Disconnected { conn: id });
        }
    }

    /// Sends the driver's answers; their connections may take their next request.
    fn deliver_answers(&mut self) {
        for (id, response) in self.driver.take_answers() {
            let Some(&key) = self.keys.get(&id) else {
                continue;
            };
            self.awaiting.remove(&key);
            if let Some((_, c)) = self.conns.get_mut(key) {
                c.respond(&response);
            }
        }
    }

    /// Hands every buffered request of every free connection to the core, then drops finished
    /// connections. Returns whether any request was handed over.
    fn serve_connections(&mut self) -> bool {
        let mut served = false;
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let mut took = false;
            while !self.awaiting.contains(&key) {
                let Some((id, c)) = self.conns.get_mut(key) else {
                    break;
                };
                let id = *id;
                match c.next_request() {
                    None => break,
                    Some(Incoming::Request(frame)) => {
                        served = true;
                        took = true;
                        self.awaiting.insert(key);
                        self.driver.feed(Input::Request { conn: id, frame });
                        self.deliver_answers();
                    }
                    Some(Incoming::Malformed(e)) => {
                        tracing::warn!(error = %e, "bad request frame; closing connection");
                        c.respond(&Response::error(
                            ErrorCode::BadRequest,
                            format!("bad request: {e}"),
                        ));
                        c.close_after_flush = true;
                    }
                }
            }
            // Requests left in the socket (the reader stops at one frame's bound; a full
            // queue paused it) are read now: edge-triggered readiness will not repeat.
            if took {
                if let Some((_, c)) = self.conns.get_mut(key) {
                    if c.fill().is_err() {
                        c.broken = true;
                    }
                }
            }
            let (done, broken) = self
                .conns
                .get(key)
                .map_or((false, false), |(_, c)| (c.is_done(), c.broken));
            if broken || (done && !self.awaiting.contains(&key)) {
                self.drop_connection(key);
            }
        }
        served
    }
}
