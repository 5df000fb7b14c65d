//! From a `SinkSpec` (`NAME[:k=v,...]`) to a loaded, validated plan for creating instances.
//!
//! The router keeps three options for itself and does not pass them to the sink:
//! `mode` (`blocking`, the default, or `non-blocking`), `max-buffer-size` (bytes queued for
//! the sink before records are dropped in non-blocking mode, or while the sink is failing) and
//! `drain-timeout` (how long a failing sink is retried after its container's output ended).
//! A set of sinks ([`plan_all`]: the defaults, or one container's) may hold at most one that
//! writes the log file ([`LOG_FILE_SINKS`]).

use crate::instance;
use crate::loader::{LoadError, LoadedSink, SinkCatalog};
use proto::router::SinkSpec;
use sink_abi::config::{KEY_CONTAINER_ID, KEY_LOG_PATH, RESERVED_KEYS};
use sink_abi::Config;
use std::time::Duration;

/// Option key of the delivery mode.
pub const KEY_MODE: &str = "mode";
/// Option key of the queue bound.
pub const KEY_MAX_BUFFER: &str = "max-buffer-size";
/// Option key of how long a failing sink is retried after its container's output ended.
pub const KEY_DRAIN_TIMEOUT: &str = "drain-timeout";
/// Default queue bound, in bytes (as Docker's `max-buffer-size`).
pub const DEFAULT_MAX_BUFFER: usize = 1 << 20;
/// Default drain timeout.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Sinks, by the name their library reports, that write the container's log file
/// (`log-path`): at most one of them per container, or every byte would be stored twice.
pub const LOG_FILE_SINKS: [&str; 2] = ["file", "rotating"];

/// How records reach a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A slow sink slows the container: nothing is dropped while the sink works.
    Blocking,
    /// Records are queued up to `max-buffer-size` bytes; beyond that they are dropped and counted.
    NonBlocking,
}

/// A sink ready to be instantiated per container.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    /// The sink as configured (name or path), used in reports.
    pub label: String,
    /// The sink and its options as configured, router options left out
    /// (`tcp:address=127.0.0.1:5170`): what a person waiting for it is shown.
    pub shown: String,
    /// The loaded library.
    pub lib: &'static LoadedSink,
    /// The user's options, without the router's own.
    pub options: Config,
    /// Delivery mode.
    pub mode: Mode,
    /// Queue bound, in bytes.
    pub max_buffer: usize,
    /// How long a failing or unavailable sink keeps being retried once the container's output
    /// ended; what it still holds is then dropped and counted.
    pub drain_timeout: Duration,
}

/// Why a sink spec cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The library cannot be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A router option or a reserved key is wrong.
    #[error("sink `{sink}`: {message}")]
    Option {
        /// Sink label.
        sink: String,
        /// What is wrong.
        message: String,
    },
    /// Two sinks of one set would write the same log file.
    #[error(
        "sinks `{first}` and `{second}` would both write the container's log file; keep one of them"
    )]
    SameLogFile {
        /// The first such sink, as configured.
        first: String,
        /// The second one.
        second: String,
    },
    /// The sink's `validate` refused the options.
    #[error("sink `{sink}`: {message}")]
    Invalid {
        /// Sink label.
        sink: String,
        /// The sink's message.
        message: String,
    },
}

/// Loads the library of `spec`, splits off the router's options and validates the rest.
///
/// # Errors
/// [`PlanError`].
pub fn plan(spec: &SinkSpec, catalog: &mut SinkCatalog) -> Result<SinkPlan, PlanError> {
    let label = spec.sink.clone();
    let opt_err = |message: String| PlanError::Option {
        sink: label.clone(),
        message,
    };
    let lib = catalog.get(&spec.sink)?;
    let mut mode = Mode::Blocking;
    let mut max_buffer = DEFAULT_MAX_BUFFER;
    let mut drain_timeout = DEFAULT_DRAIN_TIMEOUT;
    let mut options = Config::default();
    for (k, v) in &spec.options {
        match k.as_str() {
            KEY_MODE => {
                mode = match v.as_str() {
                    "blocking" => Mode::Blocking,
                    "non-blocking" => Mode::NonBlocking,
                    _ => {
                        return Err(opt_err(format!(
                            "mode `{v}` is not blocking or non-blocking"
                        )))
                    }
                }
            }
            KEY_MAX_BUFFER => {
                let n = sink_abi::parse_size(v)
                    .map_err(|e| opt_err(format!("{KEY_MAX_BUFFER}: {e}")))?;
                max_buffer = usize::try_from(n).unwrap_or(usize::MAX).max(1);
            }
            KEY_DRAIN_TIMEOUT => {
                drain_timeout = sink_abi::parse_duration(v)
                    .map_err(|e| opt_err(format!("{KEY_DRAIN_TIMEOUT}: {e}")))?;
            }
            k if RESERVED_KEYS.contains(&k) => {
                return Err(opt_err(format!("option `{k}` is set by the router")));
            }
            _ => options.push(k.clone(), v.clone()),
        }
    }
    instance::validate(lib, &options.to_bytes()).map_err(|message| PlanError::Invalid {
        sink: label.clone(),
        message,
    })?;
    let shown = SinkSpec {
        sink: label.clone(),
        options: options.entries().to_vec(),
    }
    .to_string();
    Ok(SinkPlan {
        label,
        shown,
        lib,
        options,
        mode,
        max_buffer,
        drain_timeout,
    })
}

/// Plans every sink of one set (the supervisor's defaults, or one container's sinks) and
/// checks that at most one of them writes the log file ([`LOG_FILE_SINKS`]).
///
/// # Errors
/// The first sink's [`PlanError`], or [`PlanError::SameLogFile`].
pub fn plan_all(specs: &[SinkSpec], catalog: &mut SinkCatalog) -> Result<Vec<SinkPlan>, PlanError> {
    let plans = specs
        .iter()
        .map(|s| plan(s, catalog))
        .collect::<Result<Vec<_>, _>>()?;
    one_log_writer(
        plans
            .iter()
            .map(|p| (p.label.as_str(), p.lib.name.as_str())),
    )?;
    Ok(plans)
}

/// Refuses a set of sinks, given as `(label, library name)`, in which two write the log file.
///
/// # Errors
/// [`PlanError::SameLogFile`] naming the first two.
pub fn one_log_writer<'a>(
    sinks: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), PlanError> {
    let mut writers = sinks
        .into_iter()
        .filter(|(_, name)| LOG_FILE_SINKS.contains(name));
    match (writers.next(), writers.next()) {
        (Some((first, _)), Some((second, _))) => Err(PlanError::SameLogFile {
            first: first.to_string(),
            second: second.to_string(),
        }),
        _ => Ok(()),
    }
}

impl SinkPlan {
    /// The bytes passed to `create` for one container: the user's options, then `container-id`
    /// and `log-path`.
    pub fn create_config(&self, container_id: &str, log_path: &str) -> Vec<u8> {
        let mut c = self.options.clone();
        c.push(KEY_CONTAINER_ID, container_id);
        c.push(KEY_LOG_PATH, log_path);
        c.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_one_sink_writes_the_log_file() {
        assert!(one_log_writer([]).is_ok());
        assert!(one_log_writer([("file", "file"), ("tcp", "tcp")]).is_ok());
        assert!(one_log_writer([("/x/custom.so", "custom"), ("rotating", "rotating")]).is_ok());
        for pair in [
            [("file", "file"), ("rotating", "rotating")],
            [("rotating", "rotating"), ("rotating", "rotating")],
            [("file", "file"), ("/opt/libengine_sink_file.so", "file")],
        ] {
            let e = one_log_writer(pair).unwrap_err();
            let msg = e.to_string();
            assert!(
                matches!(e, PlanError::SameLogFile { .. })
                    && msg.contains(pair[0].0)
                    && msg.contains(pair[1].0)
                    && msg.contains("log file"),
                "{msg}"
            );
        }
    }
}
