//! The engine's one duration grammar, shared by the sink options (`drain-timeout`,
//! `connect-timeout`...) and the CLI (`engine logs --since 1m30s`).
//!
//! A duration is either a bare non-negative decimal number of seconds (`3`, `2.5`) or what
//! [`humantime::parse_duration`] accepts: Go-style concatenated spans as `docker` takes them
//! (`1m30s`, `1.5h`, `500ms`, `250us`, `10ns`), with optional spaces (`1h 30m`) and longer
//! unit names (`2days`, `1week`). Negative durations are refused.

use std::time::Duration;

/// A text that is not a duration; `Display` is one line for the user.
#[derive(Debug, thiserror::Error)]
#[error("`{text}` is not a duration (e.g. 500ms, 10s, 1m30s, 1.5h)")]
pub struct DurationError {
    /// The text given.
    pub text: String,
    /// What the duration parser said.
    #[source]
    pub source: humantime::DurationError,
}

/// Whether `text` is a bare non-negative decimal number (`3`, `2.5`, `.5`).
pub fn is_bare_number(text: &str) -> bool {
    let mut dots = 0;
    let mut digits = 0;
    for c in text.chars() {
        match c {
            '0'..='9' => digits += 1,
            '.' => dots += 1,
            _ => return false,
        }
    }
    digits > 0 && dots <= 1
}

/// Parses a duration in the grammar above (surrounding spaces ignored).
///
/// # Errors
/// [`DurationError`] when the text is not such a duration or overflows.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let parsed = if is_bare_number(t) {
        humantime::parse_duration(&format!("{t}s"))
    } else {
        humantime::parse_duration(t)
    };
    parsed.map_err(|source| DurationError {
        text: text.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> u128 {
        parse_duration(text).unwrap().as_millis()
    }

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(ms("3"), 3000);
        assert_eq!(ms("2.5"), 2500);
        assert_eq!(ms(" 0 "), 0);
        assert!(is_bare_number(".5") && !is_bare_number("1.2.3") && !is_bare_number("."));
    }

    #[test]
    fn go_style_spans_as_docker_takes_them() {
        assert_eq!(ms("1m30s"), 90_000);
        assert_eq!(ms("1h30m"), 5_400_000);
        assert_eq!(ms("1.5h"), 5_400_000);
        assert_eq!(ms("500ms"), 500);
        assert_eq!(parse_duration("250us").unwrap().as_micros(), 250);
        assert_eq!(parse_duration("10ns").unwrap().as_nanos(), 10);
        assert_eq!(ms("1h 30m"), 5_400_000);
        assert_eq!(ms("2days"), 2 * 86_400_000);
    }

    #[test]
    fn refusals_name_the_text() {
        for bad in ["", "soon", "-1s", "10x", "1.2.3", "s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
    }
}
