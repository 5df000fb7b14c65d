//! `make install PREFIX=...`: the binaries, sinks, man pages and completion scripts land
//! under PREFIX; the installed `engine` (a symlink into PREFIX/libexec/engine) runs a
//! container with the helpers installed next to it; `man engine` finds engine(1); the bash
//! completion loads.

use harness::{bin_dir, stderr, TestSupervisor};
use std::path::Path;
use std::process::Command;

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn make_install_puts_everything_under_prefix() {
    let prefix = tempfile::tempdir().unwrap();
    let p = prefix.path();
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(workspace())
        .arg("install")
        .arg(format!("PREFIX={}", p.display()))
        .arg(format!("BIN={}", bin_dir().display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for f in [
        "bin/engine",
        "libexec/engine/engine",
        "libexec/engine/container-init",
        "libexec/engine/log-router",
        "libexec/engine/libengine_sink_file.so",
        "libexec/engine/libengine_sink_rotating.so",
        "libexec/engine/libengine_sink_tcp.so",
        "share/man/man1/engine.1",
        "share/man/man1/engine-start.1",
        "share/man/man1/engine-logs.1",
        "share/bash-completion/completions/engine",
        "share/zsh/site-functions/_engine",
        "share/fish/vendor_completions.d/engine.fish",
    ] {
        let len = std::fs::metadata(p.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{f} missing or empty");
    }

    // The bash completion parses and registers itself for `engine`.
    let bash = p.join("share/bash-completion/completions/engine");
    let out = Command::new("bash").arg("-n").arg(&bash).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {}; complete -p engine", bash.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("engine"));

    // `man engine` finds ours (first in the search path, as /usr/local/share/man is).
    if let Ok(out) = Command::new("man")
        .arg("-M")
        .arg(format!("{}:/usr/share/man", p.join("share/man").display()))
        .args(["-w", "engine"])
        .output()
    {
        let found = String::from_utf8_lossy(&out.stdout);
        assert!(found.trim_end().ends_with("man1/engine.1"), "{found}");
    }

    // The installed engine finds container-init, log-router and the sinks next to its real
    // binary: a container runs and its output is shown.
    std::env::set_var("ENGINE_BIN_DIR", p.join("bin"));
    let sup = TestSupervisor::start();
    let out = sup.run_container("installed", "echo from-prefix", &[]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), sup.log_text());
    assert_eq!(out.stdout, b"from-prefix\n");
}
