//! `engine run`: start a container, wait for it to end, exit with its status. Signals to this
//! client are forwarded to the container as themselves, as `docker run`'s signal proxy does
//! (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH: the list container-init
//! forwards); it keeps waiting for the final status. A SIGKILL to this client leaves the
//! container running. While it waits it prints the container's output (stdout to stdout,
//! stderr to stderr), as `docker run` does.

use crate::args::RunArgs;
use crate::client::Client;
use crate::logs::view::ViewOptions;
use anyhow::Result;
use proto::api::{ContainerInfo, Reason, Request};
use proto::init::FORWARDED_SIGNALS;
use signal_hook::iterator::Signals;
use std::path::{Path, PathBuf};

/// Runs `engine run`; returns the container's exit status (code, or 128+signal).
///
/// # Errors
/// Invalid arguments, the supervisor's refusal, or a lost connection.
pub fn run(socket: &Path, args: &RunArgs) -> Result<i32> {
    let mut spec = super::start::spec(&args.start)?;
    // The supervisor removes the record and log once the container has ended and this
    // client's connection is closed, whatever becomes of this process.
    spec.remove_on_exit = args.rm;
    let id = spec.id.clone();
    // Catch the signals before the container exists, so none is missed.
    let mut signals = Signals::new(FORWARDED_SIGNALS.map(|s| s as i32))?;
    let handle = signals.handle();
    let mut client = Client::connect(socket)?;
    let info = client.container(Request::Start(spec))?;
    let forwarder = {
        let socket: PathBuf = socket.to_path_buf();
        let id = id.clone();
        std::thread::spawn(move || {
            let mut client: Option<Client> = None;
            for sig in signals.forever() {
                tracing::info!(signal = sig, container = %id, "forwarding");
                let kill = Request::Kill {
                    id: id.clone(),
                    signal: sig,
                };
                // Answered at once; one connection serves every signal.
                let sent = match client.as_mut() {
                    Some(c) => c.call(kill),
                    None => Client::connect(&socket).and_then(|mut c| {
                        let r = c.call(kill);
                        client = Some(c);
                        r
                    }),
                };
                if let Err(e) = sent {
                    // The container may have just ended; `run` reports its status anyway.
                    tracing::debug!(error = %e, signal = sig, "signal not forwarded");
                    client = None;
                }
            }
        })
    };
    // Attached like `docker run`: the container's stdout and stderr, as stored in its log,
    // each to ours (not locked: the forwarder thread may log).
    let mut attached = super::logs::Printed::new(
        ViewOptions::default(),
        std::io::stdout(),
        std::io::stderr(),
        true,
    );
    // The `Start` connection carries the `Wait` from here on; its answer ends the walk.
    let watch = super::logs::EndWatch::with_client(client, &id);
    super::drain_notice::spawn(socket, &id);
    let shown = super::logs::walk(Path::new(&info.log_path), Some(&watch), &mut attached)
        .and_then(|()| Ok(attached.finish()?));
    if let Err(e) = shown {
        // A reader that went away (`engine run ... | head`) is not worth a warning; `run`
        // still reports the container's status.
        let gone = e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
        if !gone {
            tracing::warn!(error = %e, "cannot show the container's output");
        }
    }
    let info = watch.end()?;
    if let Some(note) = end_note(&info) {
        eprintln!("{note}");
    }
    handle.close();
    let _ = forwarder.join();
    Ok(info.exit_status.unwrap_or(1))
}

/// The line `run` prints on stderr when the container's end needs telling beyond its status:
/// `killed: hard limit of <bytes> bytes exceeded (rss <bytes> bytes)` for a hard-limit kill
/// (the record, which says so too, may be gone with `--rm`).
fn end_note(info: &ContainerInfo) -> Option<String> {
    if info.reason != Some(Reason::HardLimitKilled) {
        return None;
    }
    let rss = info
        .rss_bytes
        .map(|r| format!(" (rss {r} bytes)"))
        .unwrap_or_default();
    Some(format!(
        "killed: hard limit of {} bytes exceeded{rss}",
        info.hard_limit_bytes
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::api::{Command, ContainerState};

    fn ended(reason: Reason, rss_bytes: Option<u64>) -> ContainerInfo {
        ContainerInfo {
            id: "a".into(),
            pid: 1,
            state: ContainerState::Killed,
            reason: Some(reason),
            started_at_ms: 0,
            ended_at_ms: Some(1),
            soft_limit_bytes: 1,
            hard_limit_bytes: 32 << 20,
            rss_bytes,
            log_path: "/l".into(),
            rootfs: "/r".into(),
            command: Command::Shell("true".into()),
            exit_status: Some(137),
            dropped: Vec::new(),
            draining: Vec::new(),
        }
    }

    #[test]
    fn a_hard_limit_kill_is_told_with_the_limit() {
        let note = end_note(&ended(Reason::HardLimitKilled, Some(40 << 20)));
        assert_eq!(
            note.as_deref(),
            Some("killed: hard limit of 33554432 bytes exceeded (rss 41943040 bytes)")
        );
        let note = end_note(&ended(Reason::HardLimitKilled, None)).unwrap();
        assert_eq!(note, "killed: hard limit of 33554432 bytes exceeded");
    }

    #[test]
    fn other_ends_are_told_by_the_status_alone() {
        assert_eq!(end_note(&ended(Reason::Exit(137), None)), None);
        assert_eq!(end_note(&ended(Reason::Stopped, None)), None);
    }
}
