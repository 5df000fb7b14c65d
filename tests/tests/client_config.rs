//! The client's config file (`~/.config/engine/config.toml`): `socket` and the default `ps`
//! format; a flag wins over `ENGINE_SOCKET`, which wins over the file.

use harness::{engine_bin, stderr, stdout, TestSupervisor};
use std::path::Path;
use std::process::{Command, Output};

/// `engine ARGS` with `home` as HOME, no XDG_CONFIG_HOME, and ENGINE_SOCKET only if given.
fn engine_in(home: &Path, socket_env: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(engine_bin());
    c.args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("ENGINE_SOCKET");
    if let Some(s) = socket_env {
        c.env("ENGINE_SOCKET", s);
    }
    c.output().unwrap()
}

fn is_json(out: &Output) -> bool {
    serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok()
}

#[test]
fn flag_beats_env_beats_file() {
    let sup = TestSupervisor::start();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/engine");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(
        &file,
        format!("socket = {:?}\nformat = \"json\"\n", sup.socket),
    )
    .unwrap();
    let nowhere = Path::new("/nonexistent/engine.sock");

    // The file alone: its socket and its format.
    let out = engine_in(home.path(), None, &["ps"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(is_json(&out), "{}", stdout(&out));
    // The flag wins over the file's format.
    let out = engine_in(home.path(), None, &["ps", "--format", "table"]);
    assert!(stdout(&out).starts_with("ID"), "{}", stdout(&out));
    // ENGINE_SOCKET wins over the file...
    let out = engine_in(home.path(), Some(nowhere), &["ps"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("/nonexistent/engine.sock"),
        "{}",
        stderr(&out)
    );
    // ... and --socket over ENGINE_SOCKET.
    let sock = sup.socket.to_str().unwrap();
    let out = engine_in(home.path(), Some(nowhere), &["ps", "--socket", sock]);
    assert!(out.status.success(), "{}", stderr(&out));

    // XDG_CONFIG_HOME, when set, is where the file is.
    let xdg = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(xdg.path().join("engine")).unwrap();
    std::fs::write(
        xdg.path().join("engine/config.toml"),
        "format = \"table\"\n",
    )
    .unwrap();
    let out = Command::new(engine_bin())
        .args(["ps", "--socket", sock])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", xdg.path())
        .output()
        .unwrap();
    assert!(stdout(&out).starts_with("ID"), "{}", stdout(&out));

    // A broken file is the engine's error, named with its path.
    std::fs::write(&file, "colour = \"red\"\n").unwrap();
    let out = engine_in(home.path(), None, &["ps"]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(
        err.contains("colour") && err.contains("config.toml"),
        "{err}"
    );
}
