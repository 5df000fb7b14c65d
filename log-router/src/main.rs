//! `log-router --control-fd N`: started by the supervisor with one end of its control
//! socketpair as fd N. Logs go to stderr (`ENGINE_LOG` or `RUST_LOG` filter, default `info`).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: log-router --control-fd N");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let filter = std::env::var("ENGINE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fd: RawFd = match args.as_slice() {
        [flag, n] if flag == "--control-fd" => match n.parse() {
            Ok(n) if n >= 0 => n,
            _ => return usage(),
        },
        _ => return usage(),
    };
    // Terminal signals are for the supervisor; it tells the router when to stop.
    // SAFETY: setting a signal disposition to SIG_IGN has no handler to race with.
    if let Err(e) = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGINT,
            nix::sys::signal::SigHandler::SigIgn,
        )
    } {
        tracing::warn!(error = %e, "cannot ignore SIGINT");
    }
    // SAFETY: F_GETFD only queries the descriptor table; an unused number yields EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        eprintln!("log-router: fd {fd} is not open");
        return ExitCode::from(2);
    }
    // SAFETY: the fd was checked open above and was handed to this process to own.
    let control = unsafe { OwnedFd::from_raw_fd(fd) };
    match log_router::run(control, log_router::loader::libexec_dirs()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "log-router failed");
            ExitCode::FAILURE
        }
    }
}
