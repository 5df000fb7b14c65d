//! The supervisor's UNIX socket: probing a leftover socket file, binding with mode 0600, and
//! checking a client's credentials (SO_PEERCRED).

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::sys::stat::{umask, Mode};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Errors of setting up the socket.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// Another supervisor answers on the socket.
    #[error("another supervisor is already running on {0}")]
    InUse(PathBuf),
    /// Creating the directory, removing a stale file or binding failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ListenerError + 'a {
    move |source| ListenerError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Binds the listening socket at `path` with mode 0600.
///
/// A file already at `path` is probed: if a supervisor answers, this fails with
/// [`ListenerError::InUse`]; a dead socket (connection refused) is removed first.
///
/// # Errors
/// [`ListenerError`].
pub fn bind(path: &Path) -> Result<mio::net::UnixListener, ListenerError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err("cannot create socket directory", dir))?;
    }
    if path.symlink_metadata().is_ok() {
        match UnixStream::connect(path) {
            Ok(_) => return Err(ListenerError::InUse(path.to_path_buf())),
            Err(_) => {
                tracing::info!(socket = %path.display(), "removing stale socket");
                std::fs::remove_file(path).map_err(io_err("cannot remove stale socket", path))?;
            }
        }
    }
    // The socket file takes its mode from the umask at bind(2): create it 0600 atomically.
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = mio::net::UnixListener::bind(path);
    umask(old);
    bound.map_err(io_err("cannot bind socket", path))
}

/// Whether a connected client may use the supervisor: its uid (SO_PEERCRED) must be root or
/// the supervisor's own uid. Returns the peer's uid on refusal.
///
/// # Errors
/// The uid that was refused, or `u32::MAX` when the credentials cannot be read.
pub fn check_peer(stream: &impl AsFd) -> Result<(), u32> {
    let creds = getsockopt(stream, PeerCredentials).map_err(|_| u32::MAX)?;
    let uid = creds.uid();
    if uid == 0 || uid == nix::unistd::geteuid().as_raw() {
        Ok(())
    } else {
        Err(uid)
    }
}
