//! Sinks end to end through the real supervisor: per-container `--log-opt`, the rotating sink
//! with `logs --follow` across rotations, and the TCP sink to a real peer on 127.0.0.1.

use harness::{stderr, TestSupervisor};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::time::Duration;

#[test]
fn bad_log_opts_are_refused_at_start() {
    let mut sup = TestSupervisor::start();
    let root = sup.rootfs("x");
    let r = root.to_str().unwrap();
    for (opt, needle) in [
        ("nosuchsink", "nosuchsink"),
        ("rotating:max-size=banana", "max-size"),
        ("no-such-option=1", "no-such-option"),
        ("relative/sink.so", "relative/sink.so"),
        ("drain-timeout=soon", "drain-timeout"),
        (
            "tcp:address=127.0.0.1:1,connect-timeout=-1s",
            "connect-timeout",
        ),
    ] {
        let out = sup.engine(&["start", "x", r, "true", "--log-opt", opt]);
        assert!(!out.status.success(), "{opt} accepted");
        assert!(stderr(&out).contains(needle), "{opt}: {}", stderr(&out));
        assert!(sup.alive());
    }
    // Two sinks writing the same log file: every byte would be stored (and `run` would print
    // every line) twice.
    for opts in [["file", "rotating:max-size=1m"], ["rotating", "rotating"]] {
        let out = sup.engine(&[
            "start",
            "x",
            r,
            "true",
            "--log-opt",
            opts[0],
            "--log-opt",
            opts[1],
        ]);
        assert!(!out.status.success(), "{opts:?} accepted");
        assert!(
            stderr(&out).contains("would both write the container's log file"),
            "{opts:?}: {}",
            stderr(&out)
        );
    }
    assert!(sup.ps().is_empty(), "a refused start was recorded");
}

/// Durations in sink options take the grammar of `logs --since`: `1m30s`, `1.5s`, `2`.
#[test]
fn sink_durations_take_the_clis_grammar() {
    let sup = TestSupervisor::start();
    for (i, opt) in [
        "drain-timeout=1m30s",
        "drain-timeout=1.5s",
        "drain-timeout=2",
    ]
    .iter()
    .enumerate()
    {
        let out = sup.run_container(&format!("d{i}"), "echo ok", &["--log-opt", opt]);
        assert!(out.status.success(), "{opt}: {}", stderr(&out));
        assert_eq!(out.stdout, b"ok\n", "{opt}");
    }
}

#[test]
fn rotating_sink_follow_sees_every_line_across_rotations() {
    let sup = TestSupervisor::start();
    let root = sup.rootfs("rot");
    const LINES: usize = 20_000;
    // Waits so that the follower attaches first, then writes ~500 KB through 64 KiB files.
    let cmd = format!("sleep 1; i=0; while [ $i -lt {LINES} ]; do echo line-$i; i=$((i+1)); done");
    let out = sup.engine(&[
        "start",
        "rot",
        root.to_str().unwrap(),
        &cmd,
        "--log-opt",
        "rotating:max-size=64k,max-file=3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let follow = sup.engine(&["logs", "-f", "rot"]);
    assert!(follow.status.success(), "{}", stderr(&follow));
    let text = String::from_utf8(follow.stdout).unwrap();
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got.len(), LINES, "lines lost or repeated by follow");
    for (i, l) in got.iter().enumerate() {
        assert_eq!(*l, format!("line-{i}"));
    }
    // At most three files are kept, none over the limit by more than a line, no line split.
    let logs = sup.state_dir.join("logs");
    let files: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rot.log") && !n.ends_with(".idx"))
        .collect();
    assert!(files.len() <= 3 && files.len() >= 2, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(logs.join(f)).unwrap();
        assert!(
            bytes.len() <= 64 * 1024 + 64,
            "{f} is {} bytes",
            bytes.len()
        );
        assert!(
            bytes.starts_with(b"line-") && bytes.ends_with(b"\n"),
            "{f} splits a line"
        );
    }
    // Plain `logs` prints what is kept, oldest first, ending with the last line.
    let kept = sup.engine(&["logs", "rot"]).stdout;
    assert!(kept.ends_with(format!("line-{}\n", LINES - 1).as_bytes()));
}

/// Followers of a container writing as fast as it can through many rotations (none deleted)
/// print every line once, in order, as does `run`.
#[test]
fn fast_writer_followers_see_every_line_once_across_rotations() {
    let sup = TestSupervisor::start();
    let root = sup.rootfs("fast");
    const LINES: usize = 500_000;
    let opt = "rotating:max-size=16k,max-file=1000";
    let cmd = format!("sleep 0.5; seq 0 {}", LINES - 1);
    let out = sup.engine(&[
        "start",
        "fast",
        root.to_str().unwrap(),
        &cmd,
        "--log-opt",
        opt,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let followers: Vec<_> = (0..2)
        .map(|_| {
            sup.cmd(&["logs", "-f", "fast"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let expected: String = (0..LINES).map(|i| format!("{i}\n")).collect();
    for f in followers {
        let out = f.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text == expected,
            "follower: {} lines, not the {LINES} in order",
            text.lines().count()
        );
    }
    let files = std::fs::read_dir(sup.state_dir.join("logs"))
        .unwrap()
        .count();
    assert!(files > 100, "{files} files: the test did not rotate enough");
    let rr = sup.rootfs("fast-run");
    let cmd = format!("seq 0 {}", LINES - 1);
    let out = sup.engine(&[
        "run",
        "--rm",
        "fast-run",
        rr.to_str().unwrap(),
        &cmd,
        "--log-opt",
        opt,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8(out.stdout).unwrap() == expected,
        "run lost or repeated lines"
    );
}

/// A supervisor whose containers log to the file sink and `sink`.
fn with_file_and(sink: &str) -> TestSupervisor {
    TestSupervisor::start_with(&[
        "--monitor",
        "userspace",
        "--log-sink",
        "file",
        "--log-sink",
        sink,
    ])
}

#[test]
fn tcp_sink_delivers_json_lines_to_a_real_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = format!("tcp:address={addr},format=json_lines");
    let sup = with_file_and(&sink);
    let out = sup.run_container("net", "echo hello; printf 'bad\\377\\n' >&2", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    listener.set_nonblocking(false).unwrap();
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut lines = BufReader::new(conn).lines();
    let mut got = Vec::new();
    for _ in 0..2 {
        let l = lines.next().expect("a record").unwrap();
        got.push(serde_json::from_str::<serde_json::Value>(&l).unwrap());
    }
    got.sort_by_key(|v| v["stream"].as_str().unwrap().to_string());
    assert_eq!(got[0]["container"], "net");
    assert_eq!(got[0]["stream"], "stderr");
    assert!(
        got[0].get("log_base64").is_some(),
        "invalid UTF-8 kept losslessly: {}",
        got[0]
    );
    assert_eq!(got[1]["stream"], "stdout");
    assert_eq!(got[1]["log"], "hello\n");
    assert!(got[1]["time"].as_str().unwrap().ends_with('Z'));
    // The file sink got the same bytes.
    let log = sup.log_bytes("net");
    assert!(log.windows(6).any(|w| w == b"hello\n"));
}

#[test]
fn a_non_blocking_sink_whose_peer_never_reads_drops_and_counts_without_blocking() {
    // A peer that accepts nothing: connections queue in the backlog, nothing is ever read.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = format!("tcp:address={addr},mode=non-blocking,max-buffer-size=64k");
    let sup = with_file_and(&sink);
    // 16 MiB of output: far more than the socket buffers and the 64 KiB queue hold.
    let out = sup.run_container(
        "flood",
        "head -c 16777216 /dev/zero | tr '\\0' 'x' | fold -w 1023",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let info = sup.info("flood");
    // The blocking file sink has every byte; the TCP sink dropped and counted.
    let log = sup.log_bytes("flood");
    assert_eq!(log.iter().filter(|&&b| b == b'x').count(), 16 << 20);
    let tcp = info
        .dropped
        .iter()
        .find(|d| d.sink.starts_with("tcp"))
        .unwrap_or_else(|| panic!("no tcp drops in {:?}", info.dropped));
    assert!(tcp.dropped_records > 0 && tcp.dropped_bytes > 0, "{tcp:?}");
    let json = sup.engine(&["ps", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        v[0]["dropped"][0]["dropped_bytes"].as_u64().unwrap() > 0,
        "{v}"
    );
    drop(listener);
}
