//! Real containers from `spawn()`: namespaces, rootfs layering, stdio pipes, exit status,
//! reaping, signal forwarding and set-up errors, checked from the inside by the `probe`
//! workload. Needs root, the built rootfs (`ENGINE_TEST_ROOTFS`, default
//! `<workspace>/target/rootfs`, from `make rootfs`) and `container-init`
//! (`ENGINE_BIN_DIR`, default `<workspace>/target/release`). Tests are serialised: some
//! count the descriptors and children of this process.

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use proto::api::Command;
use proto::exit::{InitExit, EXIT_COMMAND_NOT_EXECUTABLE, EXIT_COMMAND_NOT_FOUND};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use supervisor::container::spawn::{spawn, SpawnError, SpawnRequest, Spawned};

static SERIAL: Mutex<()> = Mutex::new(());

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| workspace().join(default), PathBuf::from)
}

/// The built rootfs and container-init, or `None` (test skipped) when not root.
struct Env {
    rootfs: PathBuf,
    init: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

fn env() -> Option<Env> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: spawn tests need root");
        return None;
    }
    let rootfs = env_path("ENGINE_TEST_ROOTFS", "target/rootfs");
    let init = env_path("ENGINE_BIN_DIR", "target/release").join("container-init");
    assert!(
        rootfs.join("usr/local/bin/probe").exists(),
        "no rootfs with probe at {} (run `make rootfs` or set ENGINE_TEST_ROOTFS)",
        rootfs.display()
    );
    assert!(
        init.exists(),
        "no container-init at {} (run `cargo build --release -p container-init` or set ENGINE_BIN_DIR)",
        init.display()
    );
    Some(Env {
        rootfs: rootfs.canonicalize().unwrap(),
        init: init.canonicalize().unwrap(),
        _serial: SERIAL.lock().unwrap_or_else(|e| e.into_inner()),
    })
}

fn argv(v: &[&str]) -> Command {
    Command::Argv(v.iter().map(|s| s.to_string()).collect())
}

fn sh(s: &str) -> Command {
    Command::Shell(s.into())
}

impl Env {
    fn spawn_in(&self, id: &str, rootfs: &Path, command: &Command) -> Result<Spawned, SpawnError> {
        spawn(&SpawnRequest {
            id,
            rootfs,
            base_rootfs: &self.rootfs,
            command,
            nice: 0,
            init_path: &self.init,
        })
    }

    fn start(&self, id: &str, command: &Command) -> Spawned {
        self.spawn_in(id, &self.rootfs, command).expect("spawn")
    }

    fn run_in(&self, id: &str, rootfs: &Path, command: &Command) -> Output {
        finish(self.spawn_in(id, rootfs, command).expect("spawn"))
    }

    fn run(&self, id: &str, command: &Command) -> Output {
        self.run_in(id, &self.rootfs, command)
    }
}

struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: WaitStatus,
}

impl Output {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn code(&self) -> i32 {
        InitExit::from_wait(self.status)
            .map(InitExit::status)
            .unwrap_or_else(|| panic!("unexpected status {:?}", self.status))
    }

    /// `key=value` lines; repeated keys keep the last value.
    fn keys(&self) -> BTreeMap<String, String> {
        self.text()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// Reads both pipes to EOF and reaps container-init.
fn finish(s: Spawned) -> Output {
    let mut err = std::fs::File::from(s.stderr);
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        err.read_to_end(&mut buf).unwrap();
        buf
    });
    let mut stdout = Vec::new();
    std::fs::File::from(s.stdout)
        .read_to_end(&mut stdout)
        .unwrap();
    let stderr = reader.join().unwrap();
    Output {
        stdout,
        stderr,
        status: waitpid(s.pid, None).unwrap(),
    }
}

/// Reads lines from `r` until `n` of them satisfy `pred`; returns those.
fn lines_until(r: &mut impl BufRead, n: usize, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut line = String::new();
    while found.len() < n {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "EOF after {found:?}");
        if pred(line.trim_end()) {
            found.push(line.trim_end().to_string());
        }
    }
    found
}

fn setup_error(r: Result<Spawned, SpawnError>) -> String {
    match r {
        Err(SpawnError::Setup(msg)) => msg,
        Err(e) => panic!("expected a setup error, got {e}"),
        Ok(s) => panic!("expected a setup error, got pid {}", s.pid),
    }
}

/// The message and exit code of a [`SpawnError::Command`].
fn command_error(r: Result<Spawned, SpawnError>) -> (String, i32) {
    match r {
        Err(SpawnError::Command { message, exit_code }) => (message, exit_code),
        Err(e) => panic!("expected a command error, got {e}"),
        Ok(s) => panic!("expected a command error, got pid {}", s.pid),
    }
}

/// Children of this process (any state).
fn children() -> Vec<i32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let after = stat.rsplit(')').next().unwrap_or("");
            after.split_whitespace().nth(1) == Some(me.as_str())
        })
        .collect()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn probe_sees_its_own_namespaces_and_a_clean_process() {
    let Some(env) = env() else { return };
    // A descriptor leaked without close-on-exec must not reach the workload.
    // SAFETY: dup of stdout; the new descriptor is closed below.
    let leaked = unsafe { libc::dup(1) };
    let cmd = argv(&["probe"]);
    let out = finish(
        spawn(&SpawnRequest {
            id: "probe-ns",
            rootfs: &env.rootfs,
            base_rootfs: &env.rootfs,
            command: &cmd,
            nice: 7,
            init_path: &env.init,
        })
        .unwrap(),
    );
    // SAFETY: closes the descriptor dup'ed above.
    unsafe { libc::close(leaked) };
    assert_eq!(
        out.code(),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let k = out.keys();
    assert_eq!(k["hostname"], "probe-ns");
    assert_eq!((k["pid"].as_str(), k["ppid"].as_str()), ("2", "1"));
    assert_eq!(
        k["pids"], "1,2",
        "only container-init and the probe are visible"
    );
    assert_eq!((k["pgid"].as_str(), k["sid"].as_str()), ("2", "2"));
    assert_eq!((k["cwd"].as_str(), k["uid"].as_str()), ("/", "0"));
    assert_eq!(k["nice"], "7");
    assert_eq!(k["fds"], "0,1,2");
    assert_eq!(k["sigblk"], "0000000000000000");
    let text = out.text();
    for line in [
        "env=HOSTNAME=probe-ns",
        "env=HOME=/",
        "env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    // Mounts under /proc are Docker's masked and read-only paths that this kernel has
    // (container-init's `masks`); the rest is the same on every host.
    let (proc_paths, mounts): (Vec<&str>, Vec<&str>) = text
        .lines()
        .filter_map(|l| l.strip_prefix("mount="))
        .partition(|m| m.split(' ').nth(1).is_some_and(|t| t.starts_with("/proc/")));
    assert_eq!(
        mounts,
        [
            "overlay / overlay",
            "proc /proc proc",
            "tmpfs /dev tmpfs",
            "devtmpfs /dev/null devtmpfs",
            "devtmpfs /dev/zero devtmpfs",
            "devtmpfs /dev/full devtmpfs",
            "devtmpfs /dev/random devtmpfs",
            "devtmpfs /dev/urandom devtmpfs",
            "devtmpfs /dev/tty devtmpfs",
            "devpts /dev/pts devpts",
            "tmpfs /dev/shm tmpfs",
            "mqueue /dev/mqueue mqueue",
            "tmpfs /tmp tmpfs",
        ]
    );
    assert!(
        proc_paths.contains(&"proc /proc/sys proc"),
        "{proc_paths:?}"
    );
    assert_ne!(nix::unistd::gethostname().unwrap(), "probe-ns");
}

#[test]
fn minimal_dev_works() {
    let Some(env) = env() else { return };
    let out = env.run(
        "dev",
        &sh(
            "head -c 4 /dev/zero | od -An -tx1; head -c 8 /dev/urandom | wc -c; \
             echo gone > /dev/null; echo > /dev/full || echo full-ok; ls /dev | tr '\\n' ' '",
        ),
    );
    assert_eq!(out.code(), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = out.text();
    assert!(text.contains("00 00 00 00"), "{text}");
    assert!(text.contains("full-ok"), "{text}");
    for node in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd",
    ] {
        assert!(
            text.split_whitespace().any(|w| w == node),
            "no /dev/{node}: {text}"
        );
    }
}

#[test]
fn stdout_and_stderr_arrive_on_separate_pipes_bytes_intact() {
    let Some(env) = env() else { return };
    let out = env.run(
        "stdio",
        &sh("echo out; echo err >&2; printf '\\377\\376tail'"),
    );
    assert_eq!(out.code(), 0);
    assert_eq!(out.stdout, b"out\n\xff\xfetail");
    assert_eq!(out.stderr, b"err\n");
}

#[test]
fn exit_status_is_carried() {
    let Some(env) = env() else { return };
    assert_eq!(env.run("exit0", &argv(&["true"])).code(), 0);
    assert_eq!(env.run("exit3", &sh("exit 3")).code(), 3);
    assert_eq!(env.run("exit137", &sh("kill -9 $$")).code(), 137);
    assert_eq!(
        env.run("exit-probe", &argv(&["probe", "exit", "42"]))
            .code(),
        42
    );
}

#[test]
fn orphaned_grandchildren_are_reaped() {
    let Some(env) = env() else { return };
    let out = env.run("orphan", &argv(&["probe", "orphan"]));
    assert_eq!(out.code(), 0);
    let k = out.keys();
    assert_eq!(k["orphan_reaped"], "yes", "{}", out.text());
    assert_eq!(k["zombies"], "0");
}

#[test]
fn signals_are_forwarded_to_every_process() {
    let Some(env) = env() else { return };
    let s = env.start("trap", &argv(&["probe", "trap", "2"]));
    let pid = s.pid;
    let mut r = BufReader::new(std::fs::File::from(s.stdout));
    lines_until(&mut r, 3, |l| l.starts_with("trap ready"));
    for sig in [
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
    ] {
        kill(pid, sig).unwrap();
        let want = format!("signal={}", sig as i32);
        let got = lines_until(&mut r, 3, |l| l.ends_with(&want));
        let pids: std::collections::BTreeSet<_> = got.iter().map(|l| l.split(' ').nth(1)).collect();
        assert_eq!(pids.len(), 3, "every process got {sig}: {got:?}");
    }
    assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 0));
}

#[test]
fn term_ignoring_workload_survives_sigterm_until_sigkill() {
    let Some(env) = env() else { return };
    let s = env.start("ignore", &argv(&["probe", "ignore-term"]));
    let mut r = BufReader::new(std::fs::File::from(s.stdout));
    lines_until(&mut r, 1, |l| l == "ignoring-term");
    kill(s.pid, Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        waitpid(s.pid, Some(WaitPidFlag::WNOHANG)).unwrap(),
        WaitStatus::StillAlive
    );
    kill(s.pid, Signal::SIGKILL).unwrap();
    assert_eq!(
        waitpid(s.pid, None).unwrap(),
        WaitStatus::Signaled(s.pid, Signal::SIGKILL, false)
    );
}

#[test]
fn setup_errors_are_reported_and_reaped() {
    let Some(env) = env() else { return };
    let (msg, code) =
        command_error(env.spawn_in("missing", &env.rootfs, &argv(&["no-such-binary"])));
    assert!(
        msg.contains("no-such-binary") && msg.contains("No such file"),
        "{msg}"
    );
    assert_eq!(code, EXIT_COMMAND_NOT_FOUND);
    let (msg, code) = command_error(env.spawn_in("missing2", &env.rootfs, &argv(&["/nope/x"])));
    assert!(msg.contains("/nope/x"), "{msg}");
    assert_eq!(code, EXIT_COMMAND_NOT_FOUND);
    // A file that is not executable, and a directory.
    for path in ["/etc/passwd", "/etc"] {
        let (msg, code) = command_error(env.spawn_in("noexec", &env.rootfs, &argv(&[path])));
        assert!(msg.contains(path), "{msg}");
        assert_eq!(code, EXIT_COMMAND_NOT_EXECUTABLE, "{path}: {msg}");
    }
    let nowhere = Path::new("/nonexistent/rootfs");
    let msg = setup_error(env.spawn_in("norootfs", nowhere, &sh("true")));
    assert!(
        msg.contains("rootfs") && msg.contains("/nonexistent/rootfs"),
        "{msg}"
    );
    let cmd = sh("true");
    let msg = setup_error(spawn(&SpawnRequest {
        id: "noinit",
        rootfs: &env.rootfs,
        base_rootfs: &env.rootfs,
        command: &cmd,
        nice: 0,
        init_path: Path::new("/nonexistent/container-init"),
    }));
    assert_eq!(
        msg,
        "exec container-init: ENOENT: No such file or directory"
    );
    assert_eq!(
        children(),
        Vec::<i32>::new(),
        "failed spawns leave no child"
    );
}

#[test]
fn container_layer_wins_and_writes_do_not_leak() {
    let Some(env) = env() else { return };
    let layer = tempfile::tempdir().unwrap();
    // A path with ',' and ':' would break overlay options if passed as text.
    let top = layer.path().join("a,b:c");
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/hostname"), "layer-wins\n").unwrap();
    std::fs::write(top.join("only-layer"), "mine\n").unwrap();
    let out = env.run_in(
        "layers",
        &top,
        &sh(
            "cat /etc/hostname /only-layer; test -x /bin/busybox && echo base-visible; \
             echo x > /written; echo y >> /etc/hostname; rm /only-layer; mkdir /newdir; \
             echo z > /usr/local/bin/probe; cat /etc/hostname",
        ),
    );
    assert_eq!(out.code(), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        out.text(),
        "layer-wins\nmine\nbase-visible\nlayer-wins\ny\n"
    );
    assert_eq!(
        std::fs::read_to_string(top.join("etc/hostname")).unwrap(),
        "layer-wins\n"
    );
    assert!(top.join("only-layer").exists());
    for dir in [&top, &env.rootfs] {
        assert!(!dir.join("written").exists() && !dir.join("newdir").exists());
    }
    assert!(
        std::fs::metadata(env.rootfs.join("usr/local/bin/probe"))
            .unwrap()
            .len()
            > 1000
    );

    // Rootfs == base: a single lower layer, equally protected.
    let out = env.run("single", &sh("echo x > /written && ls /written"));
    assert_eq!(out.text(), "/written\n");
    assert!(!env.rootfs.join("written").exists());
}

#[test]
fn repeated_spawns_leak_no_descriptors_or_children() {
    let Some(env) = env() else { return };
    let before = open_fds();
    for i in 0..30 {
        let out = env.run(&format!("rep{i}"), &sh("echo a; printf b"));
        assert_eq!(out.stdout, b"a\nb");
    }
    assert_eq!(open_fds(), before);
    assert_eq!(children(), Vec::<i32>::new());
}

#[test]
fn spawn_is_safe_while_other_threads_allocate() {
    let Some(env) = env() else { return };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let v: Vec<Vec<u8>> = (0..64).map(|n| vec![1; n * 97]).collect();
                    std::hint::black_box(v);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|scope| {
        for t in 0..3 {
            let env = &env;
            scope.spawn(move || {
                for i in 0..10 {
                    let out = env.run(&format!("mt{t}-{i}"), &argv(&["true"]));
                    assert_eq!(out.code(), 0);
                }
            });
        }
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churners.into_iter().for_each(|c| c.join().unwrap());
    assert!(Instant::now() < deadline, "spawns were too slow");
}

/// The reference runtime (runc, else crun: crun 1.8 refuses hybrid cgroup hosts) passes the
/// same isolation checks on the same rootfs.
#[test]
fn reference_runtime_sees_the_same_isolation() {
    let Some(env) = env() else { return };
    let Some(runtime) = ["runc", "crun"].into_iter().find_map(which) else {
        eprintln!("skipped: neither runc nor crun installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{"ociVersion":"1.0.2",
        "process":{{"terminal":false,"user":{{"uid":0,"gid":0}},"args":["probe"],
          "env":["PATH=/usr/local/bin:/bin"],"cwd":"/"}},
        "root":{{"path":"{}","readonly":true}},
        "hostname":"ref-oci",
        "mounts":[{{"destination":"/proc","type":"proc","source":"proc"}},
          {{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]}},
          {{"destination":"/tmp","type":"tmpfs","source":"tmpfs"}}],
        "linux":{{"namespaces":[{{"type":"pid"}},{{"type":"uts"}},{{"type":"mount"}}]}}}}"#,
        env.rootfs.display()
    );
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let out = std::process::Command::new(&runtime)
        .arg("--root")
        .arg(dir.path().join("state"))
        .args(["run", "--bundle"])
        .arg(dir.path())
        .arg(format!("engine-ref-{}", std::process::id()))
        .output()
        .unwrap();
    let name = runtime.display();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let k: BTreeMap<_, _> = text.lines().filter_map(|l| l.split_once('=')).collect();
    // The OCI runtimes run no init: the workload itself is PID 1.
    assert_eq!(
        (k["hostname"], k["pid"], k["pids"], k["cwd"]),
        ("ref-oci", "1", "1", "/")
    );
    assert_eq!(k["fds"], "0,1,2");
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
