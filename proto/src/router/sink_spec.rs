//! Sink specifications: `--log-sink NAME[:k=v,...]` and `--log-opt` values, parsed into the
//! [`SinkSpec`]s that [`super::ToRouter`] carries.

use serde::{Deserialize, Serialize};

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
}
