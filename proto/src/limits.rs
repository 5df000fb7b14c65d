//! Validation of user-supplied container parameters, shared by the CLI (early, friendly
//! errors) and the supervisor (authoritative check).

/// Longest container id, in bytes. Matches the kmod ABI's 32-byte NUL-terminated field.
pub const MAX_ID_LEN: usize = 32;

/// Checks a container id against `[A-Za-z0-9][A-Za-z0-9_.-]{0,31}`.
///
/// # Errors
/// A one-line message saying what is wrong.
pub fn validate_id(id: &str) -> Result<(), String> {
    let bytes = id.as_bytes();
    let ok_first = bytes.first().is_some_and(|b| b.is_ascii_alphanumeric());
    let ok_rest = bytes[1.min(bytes.len())..]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok_first && ok_rest && bytes.len() <= MAX_ID_LEN {
        Ok(())
    } else {
        Err(format!(
            "invalid container id {id:?}: must match [A-Za-z0-9][A-Za-z0-9_.-]{{0,31}}"
        ))
    }
}

/// Largest workload command, in bytes: the shell string, or the argv's arguments together
/// (each counted with its terminating NUL). Keeps every container record small.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Checks the size of a workload command (see [`MAX_COMMAND_BYTES`]).
///
/// # Errors
/// A one-line message.
pub fn validate_command_size(bytes: usize) -> Result<(), String> {
    if bytes > MAX_COMMAND_BYTES {
        Err(format!(
            "command of {bytes} bytes is too long (at most {MAX_COMMAND_BYTES} bytes)"
        ))
    } else {
        Ok(())
    }
}

/// Checks a nice value: -20..=19, as setpriority(2) accepts.
///
/// # Errors
/// A one-line message.
pub fn validate_nice(nice: i32) -> Result<(), String> {
    if (-20..=19).contains(&nice) {
        Ok(())
    } else {
        Err(format!("invalid nice value {nice}: must be in -20..19"))
    }
}

/// Checks soft and hard RSS limits, in bytes: both positive, soft ≤ hard.
///
/// # Errors
/// A one-line message.
pub fn validate_limits(soft_bytes: u64, hard_bytes: u64) -> Result<(), String> {
    if soft_bytes == 0 || hard_bytes == 0 {
        return Err("memory limits must be greater than zero".into());
    }
    if soft_bytes > hard_bytes {
        return Err(format!(
            "soft limit ({} MiB) is greater than hard limit ({} MiB)",
            soft_bytes >> 20,
            hard_bytes >> 20
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for good in ["a", "alpha", "A1_b.c-d", &"x".repeat(32)] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", ".a", "a b", "a/b", &"x".repeat(33), "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nice_and_limits() {
        assert!(validate_nice(-20).is_ok() && validate_nice(19).is_ok());
        assert!(validate_nice(20).is_err() && validate_nice(-21).is_err());
        assert!(validate_limits(1, 1).is_ok());
        assert!(validate_limits(2, 1).is_err());
        assert!(validate_limits(0, 1).is_err());
    }
}
