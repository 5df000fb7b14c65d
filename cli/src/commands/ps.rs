//! `engine ps`: a table or JSON of every container, live and ended.

use crate::args::PsFormat;
use crate::client::Client;
use anyhow::{bail, Result};
use proto::api::{ContainerInfo, Request, Response};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// Column titles of the table.
pub const COLUMNS: [&str; 9] = [
    "ID", "PID", "STATE", "REASON", "STARTED", "SOFT", "HARD", "RSS", "LOG",
];

/// Runs `engine ps` with the output `format` (the flag's, else the client config's).
///
/// # Errors
/// A lost connection.
pub fn run(socket: &Path, format: PsFormat) -> Result<i32> {
    let list = match Client::connect(socket)?.call(Request::Ps)? {
        Response::Containers(list) => list,
        other => bail!("unexpected answer from the supervisor: {other:?}"),
    };
    let text = match format {
        PsFormat::Json => serde_json::to_string_pretty(&list)? + "\n",
        PsFormat::Table => table(&list),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(0)
}

/// Bytes as MiB with one decimal, e.g. `40.0MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn row(c: &ContainerInfo) -> [String; 9] {
    let started =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(c.started_at_ms));
    [
        c.id.clone(),
        c.pid.to_string(),
        c.state.as_str().to_string(),
        c.reason
            .map(|r| r.to_display())
            .unwrap_or_else(|| "-".into()),
        started.to_string(),
        mib(c.soft_limit_bytes),
        mib(c.hard_limit_bytes),
        c.rss_bytes.map(mib).unwrap_or_else(|| "-".into()),
        c.log_path.clone(),
    ]
}

/// The aligned table, header first.
pub fn table(list: &[ContainerInfo]) -> String {
    let rows: Vec<[String; 9]> = list.iter().map(row).collect();
    let mut widths = COLUMNS.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let header = COLUMNS.map(String::from);
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_is_header_only() {
        let t = table(&[]);
        assert_eq!(t.lines().count(), 1);
        assert!(t.starts_with("ID  PID  STATE  REASON  STARTED  SOFT  HARD  RSS  LOG"));
    }

    #[test]
    fn mib_format() {
        assert_eq!(mib(40 * 1024 * 1024), "40.0MiB");
    }
}
