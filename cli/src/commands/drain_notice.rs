//! `engine run`'s one line on stderr when the container's end waits for a log sink: a blocking
//! sink that was failing (peer down) when the container's output ended is retried for up to
//! its `drain-timeout`, and `run` returns only after that. The line names the sink and the
//! longest wait, e.g. `waiting up to 10s for log sink tcp:address=127.0.0.1:5170 to drain`.

use crate::client::Client;
use proto::api::{ContainerInfo, Request, SinkWait};
use std::path::Path;
use std::time::Duration;

/// How often the container's record is looked at.
const POLL: Duration = Duration::from_millis(250);

/// The line for the sinks waited for, or `None` when there are none.
pub fn line(waits: &[SinkWait]) -> Option<String> {
    let longest = waits.iter().map(|w| w.timeout_ms).max()?;
    let names: Vec<&str> = waits.iter().map(|w| w.sink.as_str()).collect();
    let s = if names.len() == 1 { "" } else { "s" };
    Some(format!(
        "waiting up to {} for log sink{s} {} to drain",
        duration(longest),
        names.join(", ")
    ))
}

/// `10s`, `1.5s`, `250ms`.
fn duration(ms: u64) -> String {
    match (ms / 1000, ms % 1000) {
        (0, ms) => format!("{ms}ms"),
        (s, 0) => format!("{s}s"),
        (s, ms) => format!("{s}.{}s", format!("{ms:03}").trim_end_matches('0')),
    }
}

/// Watches container `id` from a thread until it ended, printing the line once if its end
/// waits for a sink. The thread is left to end with the process.
pub fn spawn(socket: &Path, id: &str) {
    let (socket, id) = (socket.to_path_buf(), id.to_string());
    std::thread::spawn(move || {
        let Ok(mut client) = Client::connect(&socket) else {
            return;
        };
        loop {
            std::thread::sleep(POLL);
            let info: ContainerInfo = match client.container(Request::Inspect { id: id.clone() }) {
                Ok(info) => info,
                Err(_) => return,
            };
            if info.state.is_ended() {
                return;
            }
            if let Some(l) = line(&info.draining) {
                eprintln!("{l}");
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(sink: &str, timeout_ms: u64) -> SinkWait {
        SinkWait {
            sink: sink.into(),
            timeout_ms,
        }
    }

    #[test]
    fn the_line_names_the_sinks_and_the_longest_wait() {
        assert_eq!(line(&[]), None);
        assert_eq!(
            line(&[wait("tcp:address=127.0.0.1:5170", 10_000)]).unwrap(),
            "waiting up to 10s for log sink tcp:address=127.0.0.1:5170 to drain"
        );
        assert_eq!(
            line(&[wait("a", 1500), wait("b", 250)]).unwrap(),
            "waiting up to 1.5s for log sinks a, b to drain"
        );
        assert_eq!(duration(250), "250ms");
    }
}
