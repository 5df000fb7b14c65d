//! Control messages between the supervisor and the log-router.
//!
//! They travel over a `SOCK_SEQPACKET` UNIX socketpair, one MessagePack map
//! (`rmp_serde::to_vec_named`) per packet, at most [`MAX_CONTROL_LEN`] bytes.
//! [`ToRouter::AddContainer`] carries the container's stdout and stderr read ends as two file
//! descriptors in an `SCM_RIGHTS` control message of the same packet, in that order.

use crate::api::SinkDrops;
use serde::{Deserialize, Serialize};

/// Largest control packet, in bytes.
pub const MAX_CONTROL_LEN: usize = 64 * 1024;

/// Output stream of a container. The numbers are the ones the sink ABI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// File descriptor 1 of the workload.
    Stdout = 1,
    /// File descriptor 2 of the workload.
    Stderr = 2,
}

/// A sink and its options, as given by `--log-sink NAME[:k=v,...]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkSpec {
    /// Built-in name (`file`, `rotating`, `tcp`) or absolute path of a sink `.so`.
    pub sink: String,
    /// Options in order, as `key=value` pairs.
    pub options: Vec<(String, String)>,
}

impl SinkSpec {
    /// Parses Docker-style `NAME[:key=value,key=value...]`, e.g. `file`,
    /// `rotating:max-size=10m,max-file=5` or `/abs/path/custom.so:key=value`. The name ends at
    /// the first `:`; values may contain `=` but neither `,` nor a line feed.
    ///
    /// # Errors
    /// [`SinkSpecError`] for an empty name, an option without `=` or with an empty key, or a
    /// line feed anywhere.
    pub fn parse(text: &str) -> Result<Self, SinkSpecError> {
        if text.contains('\n') {
            return Err(SinkSpecError::LineFeed);
        }
        let (name, opts) = match text.split_once(':') {
            Some((n, o)) => (n, Some(o)),
            None => (text, None),
        };
        if name.trim().is_empty() {
            return Err(SinkSpecError::EmptyName(text.to_string()));
        }
        let mut options = Vec::new();
        for opt in opts
            .into_iter()
            .filter(|o| !o.is_empty())
            .flat_map(|o| o.split(','))
        {
            let (k, v) = opt
                .split_once('=')
                .ok_or_else(|| SinkSpecError::BadOption(opt.to_string()))?;
            if k.is_empty() {
                return Err(SinkSpecError::BadOption(opt.to_string()));
            }
            options.push((k.to_string(), v.to_string()));
        }
        Ok(SinkSpec {
            sink: name.to_string(),
            options,
        })
    }

    /// The last value given for option `key`.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Display for SinkSpec {
    /// Formats back to `NAME[:key=value,...]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sink)?;
        for (i, (k, v)) in self.options.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { ':' } else { ',' })?;
        }
        Ok(())
    }
}

/// A container's sinks from the supervisor's defaults and `engine start --log-opt` values, in
/// Docker's spirit: an opt that names a sink (`NAME[:k=v,...]`: a `:` before any `=`, or no
/// `=` at all, e.g. `file`, `rotating:max-size=1m`, `/abs/sink.so:k=v`) replaces the defaults
/// (the first such opt) or adds a sink (the following ones); an opt `key=value` sets that
/// option on every sink of the result. No opts: the defaults.
///
/// # Errors
/// [`SinkSpecError`] for a malformed opt.
pub fn apply_log_opts(
    defaults: &[SinkSpec],
    opts: &[String],
) -> Result<Vec<SinkSpec>, SinkSpecError> {
    let names_sink = |o: &str| match (o.find(':'), o.find('=')) {
        (_, None) => true,
        (Some(c), Some(e)) => c < e,
        (None, Some(_)) => false,
    };
    let mut named: Vec<SinkSpec> = Vec::new();
    let mut settings: Vec<(String, String)> = Vec::new();
    for o in opts {
        if names_sink(o) {
            named.push(SinkSpec::parse(o)?);
        } else {
            let (k, v) = o
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| SinkSpecError::BadOption(o.clone()))?;
            if v.contains('\n') {
                return Err(SinkSpecError::LineFeed);
            }
            settings.push((k.to_string(), v.to_string()));
        }
    }
    let mut sinks = if named.is_empty() {
        defaults.to_vec()
    } else {
        named
    };
    for s in &mut sinks {
        for (k, v) in &settings {
            s.options.retain(|(ok, _)| ok != k);
            s.options.push((k.clone(), v.clone()));
        }
    }
    Ok(sinks)
}

/// Why a `--log-sink` text is not a sink spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkSpecError {
    /// Nothing before the `:`.
    #[error("sink spec `{0}` has no sink name")]
    EmptyName(String),
    /// An option is not `key=value`.
    #[error("sink option `{0}` is not key=value")]
    BadOption(String),
    /// Line feeds cannot be passed to a sink.
    #[error("sink spec contains a line feed")]
    LineFeed,
}

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
    /// A container's sinks could not be created; its output is not routed.
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
    /// Drop counters of the container's non-blocking sinks changed.
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
    fn sink_spec_parse_and_display() {
        let s = SinkSpec::parse("rotating:max-size=10m,max-file=5").unwrap();
        assert_eq!(s.sink, "rotating");
        assert_eq!(s.option("max-file"), Some("5"));
        assert_eq!(s.to_string(), "rotating:max-size=10m,max-file=5");
        let p = SinkSpec::parse("/abs/custom.so:url=a=b").unwrap();
        assert_eq!(
            (p.sink.as_str(), p.option("url")),
            ("/abs/custom.so", Some("a=b"))
        );
        assert_eq!(SinkSpec::parse("file").unwrap().options, vec![]);
        assert_eq!(SinkSpec::parse("file:").unwrap().options, vec![]);
        assert!(matches!(
            SinkSpec::parse(":a=b"),
            Err(SinkSpecError::EmptyName(_))
        ));
        assert!(matches!(
            SinkSpec::parse("tcp:address"),
            Err(SinkSpecError::BadOption(_))
        ));
        assert!(matches!(
            SinkSpec::parse("tcp:a=1,"),
            Err(SinkSpecError::BadOption(_))
        ));
        assert!(matches!(
            SinkSpec::parse("tcp:a=\n"),
            Err(SinkSpecError::LineFeed)
        ));
    }

    #[test]
    fn log_opts_replace_add_and_set() {
        let defaults = vec![SinkSpec::parse("rotating:max-size=10m,max-file=5").unwrap()];
        let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(apply_log_opts(&defaults, &[]).unwrap(), defaults);
        let r = apply_log_opts(&defaults, &o(&["max-size=1m"])).unwrap();
        assert_eq!(r[0].to_string(), "rotating:max-file=5,max-size=1m");
        let r = apply_log_opts(
            &defaults,
            &o(&["file", "tcp:address=h:1", "mode=non-blocking"]),
        )
        .unwrap();
        let shown: Vec<String> = r.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            shown,
            [
                "file:mode=non-blocking",
                "tcp:address=h:1,mode=non-blocking"
            ]
        );
        assert!(apply_log_opts(&defaults, &o(&["=x"])).is_err());
    }

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
}
