//! Third-party sinks loaded into a running supervisor: one written in C against
//! `sinks/abi/include/engine_sink.h` (built here with `cc`) and one in Rust outside the
//! workspace (built here with cargo against `sinks/abi`); every record reaches both, next to
//! the file sink. The sources are the log-router's test plugins.

use harness::plugins::{build_c_sink, build_rust_sink};
use harness::{stderr, TestSupervisor};

/// The bytes of one stream from "<stream> <flags> <len> <id>\n<data>\n" records, checking the
/// container id of each.
fn stream_bytes(records: &[u8], stream: u32, id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = records;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let head = String::from_utf8(rest[..nl].to_vec()).unwrap();
        let f: Vec<&str> = head.split(' ').collect();
        let len: usize = f[2].parse().unwrap();
        assert_eq!(f[3], id);
        if f[0].parse::<u32>().unwrap() == stream {
            out.extend_from_slice(&rest[nl + 1..nl + 1 + len]);
        }
        rest = &rest[nl + 2 + len..];
    }
    out
}

#[test]
fn c_and_rust_third_party_sinks_get_every_record_in_a_running_supervisor() {
    let dir = tempfile::tempdir().unwrap();
    let c_so = build_c_sink(dir.path(), "libc_sink.so", &[]);
    let rs_so = build_rust_sink(dir.path());
    let c_out = dir.path().join("c.out");
    let rs_out = dir.path().join("rs.out");
    let c_spec = format!("{}:out={}", c_so.display(), c_out.display());
    let rs_spec = format!("{}:out={}", rs_so.display(), rs_out.display());
    let sup = TestSupervisor::start_with(&[
        "--monitor",
        "userspace",
        "--log-sink",
        "file",
        "--log-sink",
        &c_spec,
        "--log-sink",
        &rs_spec,
    ]);
    let cmd = "i=0; while [ $i -lt 300 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done; printf '\\377tail'";
    let out = sup.run_container("plug", cmd, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut want_out: Vec<u8> = (0..300)
        .flat_map(|i| format!("out-{i}\n").into_bytes())
        .collect();
    want_out.extend_from_slice(b"\xfftail");
    let want_err: Vec<u8> = (0..300)
        .flat_map(|i| format!("err-{i}\n").into_bytes())
        .collect();
    for file in [&c_out, &rs_out] {
        let records = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(
            stream_bytes(&records, 1, "plug"),
            want_out,
            "{}",
            file.display()
        );
        assert_eq!(
            stream_bytes(&records, 2, "plug"),
            want_err,
            "{}",
            file.display()
        );
    }
}
