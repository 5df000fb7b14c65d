//! The supervisor's optional TOML config file (`engine supervisor --config FILE`). Command-line
//! options win over the file; `--log-sink` on the command line replaces the file's list.
//!
//! ```toml
//! state-dir = "/var/lib/engine"
//! monitor = "auto"                 # auto | kernel | userspace
//! monitor-interval-ms = 200
//! log-sinks = ["file", "rotating:max-size=10m,max-file=5"]
//! ```

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Settings read from the config file; every key is optional.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    /// Socket path.
    pub socket: Option<PathBuf>,
    /// State directory.
    pub state_dir: Option<PathBuf>,
    /// `auto`, `kernel` or `userspace`.
    pub monitor: Option<String>,
    /// Scan interval, in ms.
    pub monitor_interval_ms: Option<u64>,
    /// Default sinks, `NAME[:key=value,...]` each.
    pub log_sinks: Option<Vec<String>>,
}

/// Reads and parses the file.
///
/// # Errors
/// Unreadable file, invalid TOML, unknown keys or wrong types, with the file's path.
pub fn load(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    parse(&text).with_context(|| format!("config file {}", path.display()))
}

/// Parses config text.
///
/// # Errors
/// Invalid TOML, unknown keys or wrong types.
pub fn parse(text: &str) -> Result<FileConfig> {
    toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key() {
        let c = parse(
            "state-dir = \"/s\"\nmonitor = \"userspace\"\nmonitor-interval-ms = 50\nlog-sinks = [\"file\", \"tcp:address=127.0.0.1:1\"]\n",
        )
        .unwrap();
        assert_eq!(c.state_dir, Some(PathBuf::from("/s")));
        assert_eq!(c.monitor_interval_ms, Some(50));
        assert_eq!(c.log_sinks.unwrap().len(), 2);
    }

    #[test]
    fn unknown_key_is_an_error() {
        let e = parse("log-sink = \"file\"\n").unwrap_err();
        assert!(e.to_string().contains("log-sink"), "{e}");
    }
}
