//! Every CLI error of the start contract: a clear one-line message, exit 125 (the engine's
//! own error, as `docker run`), and a supervisor that keeps running.

use harness::{engine_bin, stderr, stdout, TestSupervisor};

fn assert_refused(sup: &mut TestSupervisor, args: &[&str], needle: &str) {
    let out = sup.engine(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err:?}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err:?}");
    assert!(sup.alive(), "supervisor died after {args:?}");
}

#[test]
fn start_errors_are_clear_and_harmless() {
    let mut sup = TestSupervisor::start();
    let r = sup.rootfs("r1");
    let r = r.to_str().unwrap();
    assert_refused(
        &mut sup,
        &[
            "start",
            "a",
            r,
            "true",
            "--soft-mib",
            "65",
            "--hard-mib",
            "64",
        ],
        "soft limit",
    );
    assert_refused(&mut sup, &["start", "a", r, "true", "--nice", "20"], "nice");
    assert_refused(
        &mut sup,
        &["start", "a", r, "true", "--nice", "-21"],
        "nice",
    );
    assert_refused(
        &mut sup,
        &["start", ".bad", r, "true"],
        "invalid container id",
    );
    assert_refused(
        &mut sup,
        &["start", "bad/id", r, "true"],
        "invalid container id",
    );
    assert_refused(
        &mut sup,
        &["start", &"x".repeat(33), r, "true"],
        "invalid container id",
    );
    assert_refused(
        &mut sup,
        &["start", "a", "/nonexistent/rootfs", "true"],
        "/nonexistent/rootfs",
    );
    assert_refused(&mut sup, &["start", "a", r], "missing command");
    assert_refused(&mut sup, &["stop", "ghost"], "no such container: ghost");
    assert_refused(&mut sup, &["logs", "ghost"], "no such container: ghost");

    // A live duplicate id, and a rootfs already in use.
    let out = sup.engine(&["start", "live", r, "sleep 1000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r2 = sup.rootfs("r2");
    assert_refused(
        &mut sup,
        &["start", "live", r2.to_str().unwrap(), "true"],
        "already exists",
    );
    assert_refused(
        &mut sup,
        &["start", "other", r, "true"],
        "already used by running container live",
    );
    // Nothing was recorded for the refused requests.
    let ids: Vec<String> = sup.ps().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec!["live".to_string()]);
    assert!(sup
        .engine(&["stop", "--time", "1", "live"])
        .status
        .success());
    // Once ended, the rootfs may be used again; the id only once `rm` removed the record.
    let out = sup.engine(&["run", "other", r, "echo again"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_refused(
        &mut sup,
        &["run", "live", r2.to_str().unwrap(), "true"],
        "container live already exists (stopped)",
    );
    assert!(sup.engine(&["rm", "live"]).status.success());
    let out = sup.engine(&["run", "live", r, "echo again"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A program that is missing or cannot be executed: exit 127 / 126 as `docker run` and a shell
/// do, with the reason on one line, for `run` and `start` alike; nothing is recorded.
#[test]
fn missing_or_non_executable_commands_exit_127_and_126() {
    let mut sup = TestSupervisor::start();
    let r = sup.rootfs("r1");
    let r = r.to_str().unwrap();
    for verb in ["run", "start"] {
        for (argv, code, needle) in [
            (["--", "nothere"], 127, "exec nothere: No such file"),
            (
                ["--", "/etc/passwd"],
                126,
                "exec /etc/passwd: Permission denied",
            ),
            (["--", "/etc"], 126, "exec /etc: Permission denied"),
        ] {
            let args = [verb, "c", r, argv[0], argv[1]];
            let out = sup.engine(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
            assert!(err.contains(needle), "{args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err:?}");
        }
    }
    // A shell command that is not found is the shell's 127, a normal exit of the container.
    let out = sup.engine(&["run", "c", r, "nothere"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(sup.alive());
    let ids: Vec<String> = sup.ps().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec!["c".to_string()], "only the shell run is recorded");
}

#[test]
fn relative_rootfs_resolves_against_client_cwd() {
    let sup = TestSupervisor::start();
    let root = sup.rootfs("rel");
    let out = sup
        .cmd(&["run", "rel", "rel", "echo relative-ok"])
        .current_dir(root.parent().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sup.log_bytes("rel"), b"relative-ok\n");
}

#[test]
fn no_arguments_prints_usage_with_every_verb() {
    let out = std::process::Command::new(engine_bin()).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    for verb in ["supervisor", "start", "run", "ps", "logs", "stop", "rm"] {
        assert!(text.contains(verb), "usage lacks {verb}: {text}");
    }
}

#[test]
fn ps_with_no_containers_exits_zero() {
    let sup = TestSupervisor::start();
    let out = sup.engine(&["ps"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("ID"));
    let out = sup.engine(&["ps", "--format", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));
}

#[test]
fn client_without_supervisor_fails_clearly() {
    let out = std::process::Command::new(engine_bin())
        .args(["ps", "--socket", "/nonexistent/engine.sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("cannot connect to the supervisor"));
}

/// Usage errors are the engine's (125, not clap's 2); `--help` and `--version` succeed.
#[test]
fn usage_errors_exit_125_and_help_exits_0() {
    let engine = |args: &[&str]| {
        std::process::Command::new(engine_bin())
            .args(args)
            .env("ENGINE_SOCKET", "/nonexistent/engine.sock")
            .output()
            .unwrap()
    };
    for args in [
        &["ps", "--no-such-flag"][..],
        &["no-such-verb"],
        &["start", "only-an-id"],
        &["stop", "x", "--time", "soon"],
        &["logs"],
    ] {
        let out = engine(args);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?}");
    }
    for args in [&["--help"][..], &["--version"], &["logs", "--help"]] {
        let out = engine(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(!stdout(&out).is_empty(), "{args:?}");
    }
}

/// The workload's own statuses pass through `run` untouched, so a script can tell them from
/// the engine's 125; `start` prints only the id, for `id=$(engine start ...)`.
#[test]
fn run_keeps_the_workloads_status_and_start_prints_the_id() {
    let sup = TestSupervisor::start();
    for code in [0, 1, 2, 3, 124] {
        let out = sup.run_container(&format!("exit{code}"), &format!("exit {code}"), &[]);
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    }
    let out = sup.start_container("quiet", "sleep 1000");
    assert_eq!(stdout(&out), "quiet\n");
    assert!(sup.engine(&["stop", "-t", "1", "quiet"]).status.success());
}

#[test]
fn supervisor_refuses_bad_sinks_and_config_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    // A supervisor that wrongly accepts its arguments is stopped (SIGTERM) after 20 s, so the
    // test fails instead of hanging.
    let run = |extra: &[&str]| {
        std::process::Command::new("timeout")
            .arg("20")
            .arg(engine_bin())
            .arg("supervisor")
            .arg(harness::base_rootfs())
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(extra)
            .output()
            .unwrap()
    };
    for (args, needle) in [
        (vec!["--log-sink", "nosuchsink"], "nosuchsink"),
        (vec!["--log-sink", "file:bogus-option=1"], "bogus-option"),
        (vec!["--log-sink", "relative/sink.so"], "relative/sink.so"),
        // Two sinks writing the same log file: every byte would be stored twice.
        (
            vec!["--log-sink", "file", "--log-sink", "rotating:max-size=1m"],
            "would both write the container's log file",
        ),
        (
            vec![
                "--log-sink",
                "rotating",
                "--log-sink",
                "rotating:max-file=2",
            ],
            "would both write the container's log file",
        ),
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert!(!socket.exists(), "socket left behind after {args:?}");
    }
    let cfg = dir.path().join("engine.toml");
    std::fs::write(&cfg, "log-sinks = [\"nosuchsink\"]\n").unwrap();
    let out = run(&["--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nosuchsink"), "{}", stderr(&out));
    std::fs::write(&cfg, "no-such-key = 1\n").unwrap();
    let out = run(&["--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no-such-key"), "{}", stderr(&out));
}
