//! The socket protocol under bad input: malformed and oversized frames, wrong versions,
//! non-root clients, stale and live sockets. The supervisor answers and stays up.

use harness::{base_rootfs, engine_bin, TestSupervisor};
use proto::api::{ErrorCode, Request, RequestFrame, Response};
use proto::frame::{self, MAX_FRAME_LEN};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

fn error_code(r: Option<Response>) -> ErrorCode {
    match r {
        Some(Response::Error(e)) => e.code,
        other => panic!("expected an error answer, got {other:?}"),
    }
}

#[test]
fn garbage_and_oversized_frames_get_an_error_and_a_close() {
    let mut sup = TestSupervisor::start();
    // Garbage body in a well-formed frame.
    let mut bytes = 5u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0xc1, 0xff, 0x13, 0x37, 0x00]);
    let (resp, closed) = sup.raw(&bytes);
    assert_eq!(error_code(resp), ErrorCode::BadRequest);
    assert!(closed);
    // Oversized header: refused before any body byte.
    let (resp, closed) = sup.raw(&((MAX_FRAME_LEN as u32) + 1).to_be_bytes());
    assert_eq!(error_code(resp), ErrorCode::BadRequest);
    assert!(closed);
    // A valid MessagePack value that is not a request.
    let (resp, closed) = sup.raw(&frame::encode(&"hello").unwrap());
    assert_eq!(error_code(resp), ErrorCode::BadRequest);
    assert!(closed);
    // Wrong protocol version.
    let mut f = RequestFrame::new(Request::Ps);
    f.version = 99;
    let (resp, _) = sup.raw(&frame::encode(&f).unwrap());
    assert_eq!(error_code(resp), ErrorCode::UnsupportedVersion);
    // An oversized frame actually sent in full does not hurt either.
    let mut big = ((MAX_FRAME_LEN as u32) * 2).to_be_bytes().to_vec();
    big.resize(2 * MAX_FRAME_LEN, 0x90);
    let (resp, _) = sup.raw(&big);
    assert_eq!(error_code(resp), ErrorCode::BadRequest);
    assert!(sup.alive());
    assert!(matches!(sup.request(Request::Ps), Response::Containers(_)));
}

#[test]
fn other_clients_are_unaffected_by_a_bad_one() {
    let sup = TestSupervisor::start();
    let mut good = UnixStream::connect(&sup.socket).unwrap();
    let _ = sup.raw(&[0xff; 3]);
    let _ = sup.raw(&((MAX_FRAME_LEN as u32) + 1).to_be_bytes());
    frame::write_frame(&mut good, &RequestFrame::new(Request::Ps)).unwrap();
    let r: Response = frame::read_frame(&mut good).unwrap().unwrap();
    assert!(matches!(r, Response::Containers(_)));
}

#[test]
fn unknown_ids_are_not_found() {
    let sup = TestSupervisor::start();
    for req in [
        Request::Inspect { id: "nope".into() },
        Request::Wait { id: "nope".into() },
        Request::Stop {
            id: "nope".into(),
            grace_ms: 1,
        },
    ] {
        assert_eq!(error_code(Some(sup.request(req))), ErrorCode::NotFound);
    }
}

/// `engine ps` run as uid 65534 against `socket`.
fn ps_as_nobody(socket: &std::path::Path) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(engine_bin())
        .args(["ps", "--socket"])
        .arg(socket)
        .output()
        .unwrap()
}

#[test]
fn socket_is_0600_and_non_root_clients_are_refused() {
    let sup = TestSupervisor::start();
    let mode = std::fs::metadata(&sup.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Through the file mode: a non-root uid cannot even connect.
    let out = ps_as_nobody(&sup.socket);
    assert!(!out.status.success());
    // Through SO_PEERCRED: open the file mode, connect as uid 65534, get refused.
    std::fs::set_permissions(&sup.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = ps_as_nobody(&sup.socket);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("permission denied: uid 65534"), "{err}");
}

#[test]
fn stale_socket_is_replaced_and_live_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    // A stale socket: bound, then its owner gone.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut first = std::process::Command::new(engine_bin())
        .arg("supervisor")
        .arg(base_rootfs())
        .arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .spawn()
        .unwrap();
    let up = harness::wait_for(std::time::Duration::from_secs(20), || {
        UnixStream::connect(&socket).ok()
    });
    assert!(up.is_some(), "supervisor did not replace the stale socket");
    // A second supervisor on the live socket exits with a clear error.
    let out = std::process::Command::new(engine_bin())
        .arg("supervisor")
        .arg(base_rootfs())
        .arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another supervisor is already running"));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    assert!(first.wait().unwrap().success());
    assert!(!socket.exists());
}

#[test]
fn ps_answers_beyond_one_mib_and_oversized_commands_are_refused() {
    let sup = TestSupervisor::start();
    // 40 records with 60 KiB commands: a `ps` answer of about 2.4 MiB.
    let arg = "x".repeat(60_000);
    for i in 0..40 {
        let id = format!("big{i}");
        let root = sup.rootfs(&id);
        let out = sup.engine(&["start", &id, root.to_str().unwrap(), "--", "true", &arg]);
        assert!(out.status.success(), "{}", harness::stderr(&out));
    }
    for i in 0..40 {
        sup.wait(&format!("big{i}"));
    }
    let out = sup.engine(&["ps", "--format", "json"]);
    assert!(out.status.success(), "{}", harness::stderr(&out));
    assert!(
        out.stdout.len() > MAX_FRAME_LEN,
        "answer of {} bytes",
        out.stdout.len()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 40);
    // A command past the limit is refused with a clear error.
    let root = sup.rootfs("huge");
    let out = sup.engine(&["start", "huge", root.to_str().unwrap(), &"y".repeat(70_000)]);
    assert!(!out.status.success());
    assert!(
        harness::stderr(&out).contains("too long"),
        "{}",
        harness::stderr(&out)
    );
}
