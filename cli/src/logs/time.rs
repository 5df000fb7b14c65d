//! The times `engine logs --since/--until` take, as `docker logs` takes them (moby's
//! `api/types/time.GetTimestamp`):
//!
//! - a duration before now, in the engine's one grammar ([`sink_abi::duration`]): `10m`,
//!   `1m30s`, `1.5h`;
//! - Unix seconds, with an optional fraction of up to 9 digits: `1764410400`,
//!   `1764410400.5`;
//! - RFC 3339 with a zone (`Z` or `±HH:MM`): `2026-11-29T10:00:00Z`,
//!   `2026-11-29T10:00:00.5+01:00`; or without one, read as the client's local time:
//!   `2026-11-29T10:00:00`; minutes and seconds may be left out (`2026-11-29T10`,
//!   `2026-11-29T10:00`);
//! - a date alone, the start of that day: `2026-11-29` (local), `2026-11-29Z`.

use sink_abi::duration::{is_bare_number, parse_duration};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// A time `--since`/`--until` cannot use.
#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    /// None of the forms parses.
    #[error(
        "invalid time {0:?}: use RFC 3339 (2026-11-29T10:00:00Z; without a zone, local time), \
         a date (2026-11-29), Unix seconds (1764410400.5) or a duration before now (10m, 1m30s)"
    )]
    Invalid(String),
    /// A zone-less time that the local zone cannot place (mktime(3) failed).
    #[error("invalid time {0:?}: not a local time")]
    NotLocal(String),
}

/// A wall-clock date and time, without a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year, e.g. 2026.
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
}

impl Civil {
    /// Seconds since the Unix epoch of this wall time read as UTC (days from civil, after
    /// H. Hinnant's `chrono`-compatible date algorithms).
    pub fn unix_secs_utc(&self) -> i64 {
        let y = if self.month <= 2 {
            self.year - 1
        } else {
            self.year
        };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

/// Parses `--since`/`--until` (the forms above) against `now`, zone-less times in the local
/// zone. Returns ns since the Unix epoch (times before it become 0).
///
/// # Errors
/// [`TimeError`] when no form parses.
pub fn parse_time(text: &str, now: SystemTime) -> Result<u64, TimeError> {
    parse_time_in(text, now, local_unix_secs)
}

/// [`parse_time`] with `local` placing a zone-less wall time (seconds since the epoch, or
/// `None` when it cannot).
///
/// # Errors
/// As [`parse_time`].
pub fn parse_time_in(
    text: &str,
    now: SystemTime,
    local: impl Fn(&Civil) -> Option<i64>,
) -> Result<u64, TimeError> {
    let t = text.trim();
    let invalid = || TimeError::Invalid(text.to_string());
    let ns = if is_bare_number(t) {
        unix_seconds(t).ok_or_else(invalid)?
    } else if let Ok(d) = parse_duration(t) {
        since_epoch(now).saturating_sub(d).as_nanos() as i128
    } else {
        let (civil, nanos, zone) = parse_rfc3339ish(t).ok_or_else(invalid)?;
        let secs = match zone {
            Some(offset) => civil.unix_secs_utc() - offset,
            None => local(&civil).ok_or_else(|| TimeError::NotLocal(text.to_string()))?,
        };
        i128::from(secs) * NANOS_PER_SEC + i128::from(nanos)
    };
    Ok(ns.clamp(0, i128::from(u64::MAX)) as u64)
}

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
}

/// `SECS[.FRACTION]` as ns; `None` when the fraction has more than 9 digits or overflows.
fn unix_seconds(t: &str) -> Option<i128> {
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    let secs: i128 = if secs.is_empty() {
        0
    } else {
        secs.parse().ok()?
    };
    Some(secs.checked_mul(NANOS_PER_SEC)? + i128::from(fraction_nanos(frac)?))
}

/// Up to 9 decimal digits after a point, as ns.
fn fraction_nanos(digits: &str) -> Option<u32> {
    if digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    Some(digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32))
}

/// Takes `n` ASCII digits from the front of `s`.
fn digits(s: &mut &str, n: usize) -> Option<u32> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    *s = &s[n..];
    head.parse().ok()
}

/// Takes `c` from the front of `s` when it is there.
fn eat(s: &mut &str, c: &[char]) -> bool {
    match s.strip_prefix(c) {
        Some(rest) => {
            *s = rest;
            true
        }
        None => false,
    }
}

/// `YYYY-MM-DD[THH[:MM[:SS[.F]]]][Z|±HH:MM]`: the wall time, its ns, and the zone's offset
/// east of UTC in seconds (`None`: no zone).
fn parse_rfc3339ish(t: &str) -> Option<(Civil, u32, Option<i64>)> {
    let mut s = t;
    let year = digits(&mut s, 4)?;
    let month = eat(&mut s, &['-']).then(|| digits(&mut s, 2))??;
    let day = eat(&mut s, &['-']).then(|| digits(&mut s, 2))??;
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    if eat(&mut s, &['T', 't']) {
        hour = digits(&mut s, 2)?;
        if eat(&mut s, &[':']) {
            minute = digits(&mut s, 2)?;
            if eat(&mut s, &[':']) {
                second = digits(&mut s, 2)?;
                if eat(&mut s, &['.', ',']) {
                    let n = s.bytes().take_while(u8::is_ascii_digit).count();
                    nanos = fraction_nanos(&s[..n]).filter(|_| n > 0)?;
                    s = &s[n..];
                }
            }
        }
    }
    let zone = if s.is_empty() {
        None
    } else if eat(&mut s, &['Z', 'z']) {
        Some(0)
    } else {
        let sign = if eat(&mut s, &['+']) {
            1
        } else if eat(&mut s, &['-']) {
            -1
        } else {
            return None;
        };
        let h = digits(&mut s, 2)?;
        let m = eat(&mut s, &[':']).then(|| digits(&mut s, 2))??;
        if h >= 24 || m >= 60 {
            return None;
        }
        Some(sign * i64::from(h * 3600 + m * 60))
    };
    let civil = Civil {
        year: i64::from(year),
        month,
        day,
        hour,
        minute,
        second,
    };
    let valid = s.is_empty()
        && (1..=12).contains(&month)
        && (1..=days_in_month(civil.year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    valid.then_some((civil, nanos, zone))
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Places a zone-less wall time in the local zone (`TZ`, else `/etc/localtime`) with
/// mktime(3), daylight saving time decided by the zone's rules.
fn local_unix_secs(c: &Civil) -> Option<i64> {
    use nix::libc;
    // SAFETY: `libc::tm` is plain old data (integers and a nullable pointer); all zeros is a
    // valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = libc::c_int::try_from(c.year - 1900).ok()?;
    tm.tm_mon = c.month as libc::c_int - 1;
    tm.tm_mday = c.day as libc::c_int;
    tm.tm_hour = c.hour as libc::c_int;
    tm.tm_min = c.minute as libc::c_int;
    tm.tm_sec = c.second as libc::c_int;
    tm.tm_isdst = -1;
    // SAFETY: `tm` is a valid, initialised struct this frame owns; mktime(3) reads and
    // normalises it in place and keeps no pointer to it.
    let t = unsafe { libc::mktime(&mut tm) };
    // `time_t` is `i64` here, narrower on some other targets.
    #[allow(clippy::useless_conversion)]
    (t != -1).then_some(i64::from(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Parses with the local zone fixed at UTC+2.
    fn at(text: &str) -> Result<u64, TimeError> {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        parse_time_in(text, now, |c| Some(c.unix_secs_utc() - 7200))
    }

    #[test]
    fn durations_are_before_now() {
        assert_eq!(at("10s").unwrap(), 990 * S);
        assert_eq!(at("1m30s").unwrap(), 910 * S);
        assert_eq!(at("1.5m").unwrap(), 910 * S);
        assert_eq!(at("2h").unwrap(), 0, "before the epoch clamps to 0");
    }

    #[test]
    fn unix_seconds_with_fractions() {
        assert_eq!(at("1764410400").unwrap(), 1_764_410_400 * S);
        assert_eq!(at("1764410400.5").unwrap(), 1_764_410_400 * S + S / 2);
        assert_eq!(at("0.000000001").unwrap(), 1);
        assert!(at("1.0000000001").is_err(), "more than 9 fraction digits");
    }

    #[test]
    fn rfc3339_with_zones() {
        let base = 1_764_410_400; // 2025-11-29T10:00:00Z
        assert_eq!(at("2025-11-29T10:00:00Z").unwrap(), base * S);
        assert_eq!(at("2025-11-29t10:00:00z").unwrap(), base * S);
        assert_eq!(at("2025-11-29T11:00:00+01:00").unwrap(), base * S);
        assert_eq!(at("2025-11-29T05:30:00-04:30").unwrap(), base * S);
        assert_eq!(at("2025-11-29T10:00:00.25Z").unwrap(), base * S + S / 4);
        assert_eq!(at("2025-11-29T10Z").unwrap(), base * S);
        assert_eq!(at("2025-11-29T10:00Z").unwrap(), base * S);
        assert_eq!(at("2025-11-29Z").unwrap(), (base - 10 * 3600) * S);
        assert_eq!(at("1970-01-01T00:00:05Z").unwrap(), 5 * S);
        assert_eq!(at("2024-02-29T00:00:00Z").unwrap(), 1_709_164_800 * S);
    }

    #[test]
    fn no_zone_is_local_time() {
        let base = 1_764_410_400;
        assert_eq!(at("2025-11-29T12:00:00").unwrap(), base * S);
        assert_eq!(at("2025-11-29T12:00").unwrap(), base * S);
        assert_eq!(at("2025-11-29T12").unwrap(), base * S);
        assert_eq!(at("2025-11-29T12:00:00.5").unwrap(), base * S + S / 2);
        assert_eq!(at("2025-11-29").unwrap(), (base - 12 * 3600) * S);
    }

    #[test]
    fn the_real_local_zone_is_used() {
        let now = SystemTime::now();
        let utc = parse_time("2025-11-29T10:00:00Z", now).unwrap();
        let local = parse_time("2025-11-29T10:00:00.5", now).unwrap();
        // The zone's offset is whole minutes, at most 14 h, whatever the machine's zone.
        let offset = local as i128 - utc as i128 - i128::from(S / 2);
        assert_eq!(offset % (60 * S as i128), 0, "{offset}");
        assert!(offset.abs() <= 14 * 3600 * S as i128, "{offset}");
    }

    #[test]
    fn refusals() {
        for bad in [
            "yesterday",
            "2025-13-01",
            "2025-02-30",
            "2025-11-29T24:00:00Z",
            "2025-11-29T10:00:60Z",
            "2025-11-29T10:00:00+1",
            "2025-11-29T10:00:00.Z",
            "2025-11-29 10:00:00",
            "25-11-29",
            "1.2.3",
        ] {
            let e = at(bad).unwrap_err();
            assert!(e.to_string().contains("invalid time"), "{bad}: {e}");
        }
    }
}
