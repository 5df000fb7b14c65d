//! [`FollowError`]: why following a log stopped.

use std::io;
use std::path::PathBuf;

/// Why [`super::Follower::poll`] failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// A file of the log (the current one or a rotated generation) could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it returned.
        #[source]
        source: io::Error,
    },
    /// Files kept moving while they were listed or read, on every attempt.
    #[error("{} rotates faster than it can be read", path.display())]
    TooFast {
        /// The log (its current file's path).
        path: PathBuf,
    },
}
