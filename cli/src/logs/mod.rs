//! Presenting a container's log for `engine logs`: the filters and formatting ([`view`]). The
//! log itself is read through the `logstore` crate.

pub mod view;
