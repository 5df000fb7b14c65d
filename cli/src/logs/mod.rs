//! Presenting a container's log for `engine logs`: the filters and formatting ([`view`]), the
//! times of `--since`/`--until` ([`time`]). The log itself is read through the `logstore`
//! crate.

pub mod time;
pub mod view;
