//! Validation of user-supplied container parameters, shared by the CLI (early, friendly
//! errors) and the supervisor (authoritative check).

/// Longest container id, in bytes: the kmod ABI's [`CONTAINER_ID_MAX_LEN`] (31 bytes and
/// a NUL fill its 32-byte field), so an id that passes here always reaches the module whole.
///
/// [`CONTAINER_ID_MAX_LEN`]: crate::kmod_abi::CONTAINER_ID_MAX_LEN
pub const MAX_ID_LEN: usize = crate::kmod_abi::CONTAINER_ID_MAX_LEN;

/// Checks a container id against `[A-Za-z0-9][A-Za-z0-9_.-]{0,30}` (at most [`MAX_ID_LEN`]
/// bytes).
///
/// # Errors
/// A one-line message saying what is wrong (too long, or which characters are allowed).
pub fn validate_id(id: &str) -> Result<(), String> {
    let bytes = id.as_bytes();
    if bytes.len() > MAX_ID_LEN {
        return Err(format!(
            "invalid container id {id:?}: {} bytes long, at most {MAX_ID_LEN} allowed",
            bytes.len()
        ));
    }
    let ok_first = bytes.first().is_some_and(|b| b.is_ascii_alphanumeric());
    let ok_rest = bytes[1.min(bytes.len())..]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok_first && ok_rest {
        Ok(())
    } else {
        Err(format!(
            "invalid container id {id:?}: must match [A-Za-z0-9][A-Za-z0-9_.-]{{0,{}}}",
            MAX_ID_LEN - 1
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
        for good in ["a", "alpha", "A1_b.c-d", &"x".repeat(31)] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", ".a", "a b", "a/b", &"x".repeat(33), "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_valid_id_fits_the_kmod_abi_field() {
        let longest = "x".repeat(MAX_ID_LEN);
        assert!(validate_id(&longest).is_ok());
        assert!(crate::kmod_abi::id_field(longest.as_bytes()).is_some());
        let err = validate_id(&"x".repeat(32)).unwrap_err();
        assert!(err.contains("32 bytes long, at most 31"), "{err}");
        assert!(validate_id("-a").unwrap_err().contains("{0,30}"));
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
