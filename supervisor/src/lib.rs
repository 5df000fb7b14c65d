//! The engine supervisor: a core that owns container state and decides ([`core`], no I/O),
//! and a shell that does the I/O ([`shell`]: a `mio` loop over the socket, signals, ready
//! pipes, the log-router link and the memory monitor actor).
//!
//! Entry point: [`run`] with a [`SupervisorConfig`].

pub mod config;
pub mod connection;
pub mod container;
pub mod core;
pub mod listener;
pub mod monitor;
pub mod router_link;
pub mod router_outbox;
pub mod shell;

pub use config::SupervisorConfig;

/// Why the supervisor could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The base rootfs is missing (`source`) or not a directory (no `source`).
    #[error("base rootfs {}: {}", path.display(), source.as_ref().map_or("not a directory".to_string(), ToString::to_string))]
    BaseRootfs {
        /// The path.
        path: std::path::PathBuf,
        /// Why it cannot be read.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The state directory cannot be created.
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        /// The logs directory.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The socket cannot be set up (or another supervisor owns it).
    #[error(transparent)]
    Listener(#[from] listener::ListenerError),
    /// Polling, signal or waker setup failed.
    #[error("event loop: {0}")]
    Poll(#[source] std::io::Error),
    /// The memory monitor cannot start.
    #[error("memory monitor: {0}")]
    Monitor(#[source] monitor::MonitorError),
    /// The log-router cannot start.
    #[error("log-router: {0}")]
    Router(#[source] router_link::RouterError),
}

/// Runs the supervisor until SIGINT/SIGTERM has stopped every container.
///
/// # Errors
/// [`SupervisorError`] when start-up fails or the event loop breaks.
pub fn run(config: SupervisorConfig) -> Result<(), SupervisorError> {
    raise_open_files_limit();
    shell::Supervisor::new(config)?.run()
}

/// Raises the soft limit of open files to the hard one: the supervisor and the log-router
/// (which inherits it) hold four descriptors per container, and a login shell's soft limit
/// of 1024 would stop them at about 250 containers.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open files limit"),
            Err(e) => tracing::warn!(error = %e, soft, "cannot raise the open files limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open files limit"),
    }
}
