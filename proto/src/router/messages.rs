//! Control messages between the supervisor and the log-router, and their packet body codec
//! (one MessagePack map per packet, `rmp_serde::to_vec_named`).

use super::SinkSpec;
use crate::api::{SinkDrops, SinkWait};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Largest control packet, in bytes.
pub const MAX_CONTROL_LEN: usize = 64 * 1024;

/// Supervisor → log-router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToRouter {
    /// First message: the default sinks every container gets unless it overrides them.
    Configure {
        /// Default sinks.
        sinks: Vec<SinkSpec>,
    },
    /// Start routing a container's output; the packet carries two fds: stdout, stderr.
    AddContainer {
        /// Container id.
        id: String,
        /// Absolute path of the container's log file (used by the file-like sinks).
        log_path: String,
        /// Sinks for this container; empty means the configured defaults.
        sinks: Vec<SinkSpec>,
    },
    /// Finish every stream (read to end of file), flush, and exit.
    Shutdown,
    /// Check sinks (load, options) without creating anything; answered by
    /// [`FromRouter::Validated`]. Used for per-container sinks before the container starts.
    Validate {
        /// Sinks to check.
        sinks: Vec<SinkSpec>,
    },
}

impl ToRouter {
    /// `AddContainer` for container `id` whose log file is `log_path` (sent as a string, so a
    /// non-UTF-8 path is converted lossily), with `sinks` (empty: the configured defaults). The
    /// packet that carries it must also carry the container's stdout and stderr read ends, in
    /// that order.
    pub fn add_container(id: &str, log_path: &Path, sinks: &[SinkSpec]) -> Self {
        Self::AddContainer {
            id: id.to_string(),
            log_path: log_path.to_string_lossy().into_owned(),
            sinks: sinks.to_vec(),
        }
    }
}

/// Log-router → supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromRouter {
    /// Answer to `Configure`: every default sink loaded and validated.
    Ready,
    /// Answer to `Configure` when a sink cannot be loaded or an option is wrong.
    ConfigError {
        /// One-line reason.
        message: String,
    },
    /// Answer to `AddContainer`: the container's sinks were created and its output is routed.
    /// Every `AddContainer` is answered once, by `Added` or `AddFailed`, in order.
    Added {
        /// Container id.
        id: String,
    },
    /// Answer to `AddContainer` when the container's output cannot be stored: its sinks could
    /// not be created (its output is then read and discarded), or its fds did not arrive
    /// (wrong count, or the control message was truncated: the router is out of fds).
    AddFailed {
        /// Container id.
        id: String,
        /// One-line reason.
        message: String,
    },
    /// Both streams of the container reached end of file and every sink has flushed: the log is
    /// complete.
    Drained {
        /// Container id.
        id: String,
    },
    /// A sink failed for a container (reported once per failure episode).
    SinkError {
        /// Container id.
        id: String,
        /// Sink name or path.
        sink: String,
        /// One-line reason.
        message: String,
    },
    /// Answer to `Validate`.
    Validated {
        /// `None` when every sink is usable, else the one-line reason.
        error: Option<String>,
    },
    /// The container's output ended and its end now waits for these blocking sinks, which
    /// are failing: each is retried for up to its drain timeout (sent once per container).
    Draining {
        /// Container id.
        id: String,
        /// The sinks waited for.
        sinks: Vec<SinkWait>,
    },
    /// Drop counters of the container's sinks changed.
    Drops {
        /// Container id.
        id: String,
        /// Counters per sink.
        drops: Vec<SinkDrops>,
    },
}

/// Encodes a control message as one packet body.
///
/// # Errors
/// When serialization fails.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(msg)
}

/// Decodes one packet body.
///
/// # Errors
/// When the bytes are not the expected message.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_round_trip() {
        let m = ToRouter::AddContainer {
            id: "a".into(),
            log_path: "/x/a.log".into(),
            sinks: vec![SinkSpec {
                sink: "file".into(),
                options: vec![],
            }],
        };
        assert_eq!(decode::<ToRouter>(&encode(&m).unwrap()).unwrap(), m);
    }

    #[test]
    fn add_container_carries_id_path_and_sinks() {
        use std::os::unix::ffi::OsStrExt;
        let sinks = [SinkSpec::parse("file").unwrap()];
        let m = ToRouter::add_container("a", Path::new("/x/a.log"), &sinks);
        let want = ToRouter::AddContainer {
            id: "a".into(),
            log_path: "/x/a.log".into(),
            sinks: sinks.to_vec(),
        };
        assert_eq!(m, want);
        let odd = Path::new(std::ffi::OsStr::from_bytes(b"/x/\xff.log"));
        let ToRouter::AddContainer { log_path, .. } = ToRouter::add_container("b", odd, &[]) else {
            panic!("not an AddContainer");
        };
        assert_eq!(log_path, "/x/\u{fffd}.log");
    }
}
