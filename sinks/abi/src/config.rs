//! The configuration a sink instance receives: `key=value` lines, one per option.
//!
//! The router passes the user's options (minus the router's own `mode` and `max-buffer-size`)
//! followed by [`KEY_CONTAINER_ID`] and [`KEY_LOG_PATH`] to `create`; `validate` gets only the
//! user's options. Keys and values are UTF-8; values never contain a line feed.

use std::fmt;

/// Key of the container id, always given to `create`.
pub const KEY_CONTAINER_ID: &str = "container-id";
/// Key of the absolute path of the container's log file, always given to `create`.
pub const KEY_LOG_PATH: &str = "log-path";

/// Keys the router adds itself; a sink accepts them even if it does not use them.
pub const RESERVED_KEYS: [&str; 2] = [KEY_CONTAINER_ID, KEY_LOG_PATH];

/// A configuration error, one line, meant for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Parsed options, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// Parses `key=value\n` lines. Empty lines are skipped; a trailing line feed is optional.
    ///
    /// # Errors
    /// When the bytes are not UTF-8 or a non-empty line has no `=` or an empty key.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ConfigError("sink configuration is not UTF-8".into()))?;
        let mut entries = Vec::new();
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| ConfigError(format!("option `{line}` is not key=value")))?;
            if k.is_empty() {
                return Err(ConfigError(format!("option `{line}` has an empty key")));
            }
            entries.push((k.to_string(), v.to_string()));
        }
        Ok(Self { entries })
    }

    /// Builds a configuration from pairs (used by the router and by tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            entries: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Encodes as `key=value\n` lines, the form `create` and `validate` receive.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.entries {
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Appends an option.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.push((key.into(), value.into()));
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an error naming it.
    ///
    /// # Errors
    /// When the key is absent.
    pub fn require(&self, key: &str) -> Result<&str, ConfigError> {
        self.get(key)
            .ok_or_else(|| ConfigError(format!("missing option `{key}`")))
    }

    /// All options in order.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// Refuses any key outside `known` and [`RESERVED_KEYS`].
    ///
    /// # Errors
    /// Names the first unknown key and lists the known ones.
    pub fn check_known(&self, known: &[&str]) -> Result<(), ConfigError> {
        for (k, _) in &self.entries {
            if !known.contains(&k.as_str()) && !RESERVED_KEYS.contains(&k.as_str()) {
                let list = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                return Err(ConfigError(format!("unknown option `{k}` (known: {list})")));
            }
        }
        Ok(())
    }

    /// The value of `key` as a size in bytes (see [`parse_size`]), or `default`.
    ///
    /// # Errors
    /// When the value is not a size.
    pub fn size_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_size(v).map_err(|e| ConfigError(format!("option `{key}`: {e}"))),
        }
    }

    /// The value of `key` as a duration (see [`parse_duration`]), or `default`.
    ///
    /// # Errors
    /// When the value is not a duration.
    pub fn duration_or(
        &self,
        key: &str,
        default: std::time::Duration,
    ) -> Result<std::time::Duration, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_duration(v).map_err(|e| ConfigError(format!("option `{key}`: {e}"))),
        }
    }

    /// The value of `key` as an unsigned integer, or `default`.
    ///
    /// # Errors
    /// When the value is not a non-negative integer.
    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                ConfigError(format!(
                    "option `{key}`: `{v}` is not a non-negative integer"
                ))
            }),
        }
    }

    /// The value of `key` as a boolean (`true`/`false`/`1`/`0`), or `default`.
    ///
    /// # Errors
    /// When the value is not a boolean.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(v) => Err(ConfigError(format!(
                "option `{key}`: `{v}` is not true or false"
            ))),
        }
    }
}

/// Parses a size in Docker's style: a number with an optional unit `b`, `k`, `m`, `g`
/// (case-insensitive, optional trailing `b`/`ib`, powers of 1024), e.g. `4096`, `10m`, `1.5k`,
/// `2GiB`. Returns bytes.
///
/// # Errors
/// When the text is not such a size or overflows `u64`.
pub fn parse_size(text: &str) -> Result<u64, ConfigError> {
    let bad = || ConfigError(format!("`{text}` is not a size (e.g. 4096, 512k, 10m, 1g)"));
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    if num.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(bad);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    let bytes = f * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Parses a duration in the engine's one grammar ([`crate::duration`]): a bare number of
/// seconds (`3`) or Go-style spans (`500ms`, `10s`, `1m30s`, `1.5h`).
///
/// # Errors
/// When the text is not such a duration.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, ConfigError> {
    crate::duration::parse_duration(text).map_err(|e| ConfigError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_round_trips() {
        let c = Config::parse(b"max-size=10m\nmax-file=5\n\nlog-path=/a=b\n").unwrap();
        assert_eq!(c.get("max-size"), Some("10m"));
        assert_eq!(c.get("log-path"), Some("/a=b"));
        assert_eq!(Config::parse(&c.to_bytes()).unwrap(), c);
        assert!(Config::parse(b"novalue\n").is_err());
        assert!(Config::parse(b"=x\n").is_err());
        assert!(Config::parse(b"\xff=1").is_err());
    }

    #[test]
    fn unknown_keys_are_named() {
        let c = Config::from_pairs([("max-size", "1m"), ("container-id", "a"), ("colour", "red")]);
        let e = c.check_known(&["max-size"]).unwrap_err();
        assert!(e.0.contains("`colour`"), "{e}");
        assert!(c.check_known(&["max-size", "colour"]).is_ok());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("10m").unwrap(), 10 << 20);
        assert_eq!(parse_size("10MB").unwrap(), 10 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        for bad in ["", "m", "10x", "-1", "1.2.3k", "99999999999999999999g"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert_eq!(parse_duration("3").unwrap().as_secs(), 3);
        assert!(parse_duration("soon").is_err() && parse_duration("-1s").is_err());
        assert_eq!(parse_duration("1m30s").unwrap().as_secs(), 90);
        let c = Config::from_pairs([("drain-timeout", "1m30s")]);
        let d = c.duration_or("drain-timeout", std::time::Duration::ZERO);
        assert_eq!(d.unwrap().as_secs(), 90);
        let c = Config::from_pairs([("n", "x")]);
        assert!(c.u64_or("n", 1).is_err());
        assert_eq!(c.u64_or("m", 7).unwrap(), 7);
        assert!(c.bool_or("n", true).is_err());
    }
}
