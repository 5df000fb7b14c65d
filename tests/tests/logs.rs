//! Output capture: every byte a container wrote is in its log before `run` returns and before
//! `ps` shows it ended; bytes are kept exactly.

use harness::{stderr, TestSupervisor};
use proto::api::ContainerState;
use std::io::{Read, Seek};

#[test]
fn five_hundred_runs_keep_both_writes() {
    let sup = TestSupervisor::start();
    for i in 0..500 {
        let id = format!("ab{i}");
        let out = sup.run_container(&id, "echo a; printf b", &[]);
        assert!(out.status.success(), "{id}: {}", stderr(&out));
        assert_eq!(sup.log_bytes(&id), b"a\nb", "{id}");
    }
}

#[test]
fn ended_in_ps_means_log_complete() {
    let sup = TestSupervisor::start();
    for i in 0..50 {
        let id = format!("fast{i}");
        sup.start_container(&id, "printf 'x%.0s' $(seq 1 1000); printf tail");
    }
    for i in 0..50 {
        let id = format!("fast{i}");
        let info = harness::wait_for(std::time::Duration::from_secs(30), || {
            let c = sup.info(&id);
            c.state.is_ended().then_some(c)
        })
        .expect("ended");
        assert_eq!(info.state, ContainerState::Exited);
        let log = sup.log_bytes(&id);
        assert_eq!(log.len(), 1004, "{id}");
        assert!(log.ends_with(b"tail"));
    }
}

#[test]
fn non_utf8_and_stderr_are_kept_byte_for_byte() {
    let sup = TestSupervisor::start();
    let out = sup.run_container(
        "bytes",
        "printf '\\377\\376\\000ok\\r\\033[0m'; printf 'err\\n' >&2",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let log = sup.log_bytes("bytes");
    assert!(
        log.windows(8).any(|w| w == b"\xff\xfe\x00ok\r\x1b["),
        "{log:?}"
    );
    assert!(log.windows(4).any(|w| w == b"err\n"), "{log:?}");
    assert_eq!(log.len(), 10 + 4);
    // `engine logs` prints the same bytes, stdout to stdout and stderr to stderr (as
    // `docker logs`); `run` did the same live.
    let out = sup.engine(&["logs", "bytes"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"\xff\xfe\x00ok\r\x1b[0m");
    assert_eq!(out.stderr, b"err\n");
    let run = sup.run_container("bytes2", "printf 'o\\377'; printf 'err\\n' >&2", &[]);
    assert_eq!(
        (&run.stdout[..], &run.stderr[..]),
        (&b"o\xff"[..], &b"err\n"[..])
    );
}

/// Split output keeps each stream's order; `--timestamps` and `--escape` apply to both; one
/// `--stream` goes to stdout; both on one file (`2>&1`) show the log's own order.
#[test]
fn logs_split_streams_like_docker_logs() {
    let sup = TestSupervisor::start();
    let out = sup.run_container(
        "split",
        "for i in 1 2 3; do echo out$i; echo err$i >&2; done; printf 'e\\033\\n' >&2",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sup.engine(&["logs", "split"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out1\nout2\nout3\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "err1\nerr2\nerr3\ne\x1b\n"
    );
    let out = sup.engine(&["logs", "split", "-t", "--escape"]);
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(lines, ["err1", "err2", "err3", "e\\x1b"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);
    let out = sup.engine(&["logs", "split", "--stream", "stderr"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "err1\nerr2\nerr3\ne\x1b\n"
    );
    assert!(out.stderr.is_empty());
    // One file behind both: the bytes in the log's order.
    let file = tempfile::tempfile().unwrap();
    let out = sup
        .cmd(&["logs", "split"])
        .stdout(file.try_clone().unwrap())
        .stderr(file.try_clone().unwrap())
        .status()
        .unwrap();
    assert!(out.success());
    let mut both = Vec::new();
    let mut file = file;
    file.rewind().unwrap();
    file.read_to_end(&mut both).unwrap();
    assert_eq!(both, sup.log_bytes("split"));
}

#[test]
fn logs_of_a_running_container() {
    let sup = TestSupervisor::start();
    sup.start_container("pulse", "echo first; sleep 1000");
    let seen = harness::wait_for(std::time::Duration::from_secs(10), || {
        let out = sup.engine(&["logs", "pulse"]);
        (out.stdout == b"first\n").then_some(())
    });
    assert!(seen.is_some());
    assert!(sup
        .engine(&["stop", "--time", "1", "pulse"])
        .status
        .success());
}

#[test]
fn large_output_is_complete() {
    let sup = TestSupervisor::start();
    // 8 MiB through the pipe, router and file sink.
    let out = sup.run_container("big", "dd if=/dev/zero bs=65536 count=128 2>/dev/null", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sup.log_bytes("big").len(), 8 << 20);
}

#[test]
fn follow_ends_with_the_container_and_prints_the_last_byte() {
    let sup = TestSupervisor::start();
    sup.start_container(
        "follow",
        "echo start; sleep 1; echo middle; sleep 0.5; printf end-without-newline",
    );
    let out = sup.engine(&["logs", "-f", "follow"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"start\nmiddle\nend-without-newline");
}

#[test]
fn tail_stream_timestamps_and_since() {
    let sup = TestSupervisor::start();
    let out = sup.run_container(
        "filters",
        "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; printf last",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = |args: &[&str]| {
        let mut a = vec!["logs", "filters"];
        a.extend_from_slice(args);
        let out = sup.engine(&a);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        text(&["--stream", "stderr"]),
        "err1\nerr2\nerr3\nerr4\nerr5\n"
    );
    assert_eq!(text(&["--stream", "stdout", "-n", "2"]), "out5\nlast");
    let stamped = text(&["-t", "--stream", "stdout", "--tail", "1"]);
    let (ts, rest) = stamped.split_once(' ').unwrap();
    assert_eq!(rest, "last");
    assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
    assert!(ts.len() > 25, "nanosecond precision: {ts}");
    assert_eq!(
        text(&["--since", "1h", "--stream", "stderr", "-n", "1"]),
        "err5\n"
    );
    assert_eq!(text(&["--until", "1h"]), "");
    // Docker's other forms: `--tail all`, Unix seconds, dates and zone-less (local) times.
    let all_err = "err1\nerr2\nerr3\nerr4\nerr5\n";
    assert_eq!(text(&["--tail", "all", "--stream", "stderr"]), all_err);
    assert_eq!(text(&["--since", "0", "--stream", "stderr"]), all_err);
    assert_eq!(
        text(&["--since", "1000000000.5", "--stream", "stderr"]),
        all_err
    );
    assert_eq!(text(&["--since", "1m30s", "--stream", "stderr"]), all_err);
    assert_eq!(text(&["--since", "2999-01-01", "--stream", "stderr"]), "");
    assert_eq!(
        text(&["--until", "2999-01-01T00:00", "--stream", "stderr"]),
        all_err
    );
    assert_eq!(text(&["--until", "2000-01-01T00:00:00+01:00"]), "");
    let out = sup.engine(&["logs", "filters", "--since", "yesterday"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("invalid time"));
}

#[test]
fn escaped_view_is_an_option() {
    let sup = TestSupervisor::start();
    let out = sup.run_container("esc", "printf 'a\\033[0m\\377\\n'", &[]);
    assert!(out.status.success());
    assert_eq!(sup.engine(&["logs", "esc"]).stdout, b"a\x1b[0m\xff\n");
    assert_eq!(
        sup.engine(&["logs", "esc", "--escape"]).stdout,
        b"a\\x1b[0m\\xff\n"
    );
}

#[test]
fn long_lines_are_kept_whole() {
    let sup = TestSupervisor::start();
    // One 100 KiB line (no newline until the end), then a short one.
    let out = sup.run_container(
        "long",
        "head -c 102400 /dev/zero | tr '\\0' x; echo; echo short",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sup.engine(&["logs", "long", "--stream", "stdout"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].len(), 102_400);
    assert_eq!(lines[1], "short");
}

#[test]
fn reused_id_starts_a_new_log() {
    let sup = TestSupervisor::start();
    let root = sup.rootfs("again");
    for word in ["first", "second"] {
        // The id is free again once `rm` removed the first record (and its log).
        sup.engine(&["rm", "again"]);
        let out = sup.engine(&[
            "run",
            "again",
            root.to_str().unwrap(),
            &format!("echo {word}"),
        ]);
        assert!(out.status.success());
    }
    assert_eq!(sup.engine(&["logs", "again"]).stdout, b"second\n");
    assert_eq!(
        sup.engine(&["logs", "again", "-t"])
            .stdout
            .split(|&b| b == b' ')
            .nth(1),
        Some(&b"second\n"[..])
    );
}
