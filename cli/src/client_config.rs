//! The client's optional config file, `$XDG_CONFIG_HOME/engine/config.toml` (else
//! `~/.config/engine/config.toml`): defaults for the client verbs. A flag wins over the
//! environment (`ENGINE_SOCKET`), which wins over the file.
//!
//! ```toml
//! socket = "/run/engine/engine.sock"   # the supervisor's socket
//! format = "json"                      # default output of `engine ps`: table | json
//! ```
//!
//! The supervisor's own settings are in its `--config` file ([`crate::config_file`]).

use crate::args::PsFormat;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Settings read from the client's config file; every key is optional.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClientConfig {
    /// The supervisor's socket.
    pub socket: Option<PathBuf>,
    /// Default output format of `engine ps`.
    pub format: Option<PsFormat>,
}

/// A config file that exists but cannot be used (other than for want of permission).
#[derive(Debug, thiserror::Error)]
pub enum ClientConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read config file {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Invalid TOML, an unknown key or a wrong type.
    #[error("config file {}: {}", .path.display(), .source.message().trim_end())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        #[source]
        source: toml::de::Error,
    },
}

/// Where the file is: `$XDG_CONFIG_HOME/engine/config.toml` when that variable is an absolute
/// path (XDG Base Directory spec), else `$HOME/.config/engine/config.toml`; `None` when
/// neither variable is usable. `var` reads the environment.
pub fn path(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    absolute("XDG_CONFIG_HOME")
        .or_else(|| absolute("HOME").map(|h| h.join(".config")))
        .map(|dir| dir.join("engine").join("config.toml"))
}

/// Reads the file at [`path`] of this process's environment; a missing file is an empty
/// config.
///
/// # Errors
/// [`ClientConfigError`] for a file that exists but is unreadable or invalid.
pub fn load() -> Result<ClientConfig, ClientConfigError> {
    match path(|name| std::env::var_os(name)) {
        Some(p) => load_from(&p),
        None => Ok(ClientConfig::default()),
    }
}

/// Reads `path`; a missing file is an empty config, and so is one this user may not read (a
/// warning, as git gives: e.g. under `setpriv`/`su` with another user's `HOME`).
///
/// # Errors
/// As [`load`].
pub fn load_from(path: &Path) -> Result<ClientConfig, ClientConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ClientConfig::default()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            tracing::warn!(path = %path.display(), error = %e, "config file ignored");
            return Ok(ClientConfig::default());
        }
        Err(source) => {
            return Err(ClientConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    toml::from_str(&text).map_err(|source| ClientConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn path_follows_xdg_then_home() {
        let p = |pairs: &[(&str, &str)]| path(env(pairs));
        assert_eq!(
            p(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]),
            Some(PathBuf::from("/x/engine/config.toml"))
        );
        assert_eq!(
            p(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")]),
            Some(PathBuf::from("/h/.config/engine/config.toml"))
        );
        assert_eq!(p(&[]), None);
    }

    #[test]
    fn reads_keys_and_refuses_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        assert_eq!(load_from(&f).unwrap(), ClientConfig::default());
        std::fs::write(&f, "socket = \"/s.sock\"\nformat = \"json\"\n").unwrap();
        let c = load_from(&f).unwrap();
        assert_eq!(c.socket, Some(PathBuf::from("/s.sock")));
        assert_eq!(c.format, Some(PsFormat::Json));
        std::fs::write(&f, "sockets = \"/s.sock\"\n").unwrap();
        let e = load_from(&f).unwrap_err().to_string();
        assert!(e.contains("sockets") && e.contains("config.toml"), "{e}");
        std::fs::write(&f, "format = \"yaml\"\n").unwrap();
        assert!(load_from(&f).is_err());
        // A directory in its place cannot be read: an error, not an empty config.
        std::fs::remove_file(&f).unwrap();
        std::fs::create_dir(&f).unwrap();
        assert!(matches!(load_from(&f), Err(ClientConfigError::Read { .. })));
    }
}
