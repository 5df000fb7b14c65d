//! A sink written in Rust outside the workspace, used by tests/plugins.rs.
//! Option `out=<path>`: each record is appended as "<stream> <flags> <len> <id>\n<data>\n".
//! Option `panic-on=<text>`: panics in `write` when a record contains that text.
//! Option `hang-on=<text>`: blocks in `write` for an hour when a record contains that text.
//! Option `sleep=<duration>`: sleeps that long in every `write` (a slow sink).

use sink_abi::{Config, ConfigError, Record, Sink, SinkError};
use std::fs::File;
use std::io::{BufWriter, Write};

struct Probe {
    out: BufWriter<File>,
    panic_on: Option<String>,
    hang_on: Option<String>,
    sleep: std::time::Duration,
}

impl Sink for Probe {
    fn validate(c: &Config) -> Result<(), ConfigError> {
        c.check_known(&["out", "panic-on", "hang-on", "sleep"])?;
        c.require("out").map(|_| ())
    }

    fn create(c: &Config) -> Result<Self, ConfigError> {
        Self::validate(c)?;
        let path = c.require("out")?;
        let f = File::options()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| ConfigError(format!("cannot open {path}: {e}")))?;
        Ok(Probe {
            out: BufWriter::new(f),
            panic_on: c.get("panic-on").map(str::to_string),
            hang_on: c.get("hang-on").map(str::to_string),
            sleep: c.duration_or("sleep", std::time::Duration::ZERO)?,
        })
    }

    fn write(&mut self, r: &Record<'_>) -> Result<(), SinkError> {
        if let Some(p) = &self.panic_on {
            if r.data.windows(p.len()).any(|w| w == p.as_bytes()) {
                panic!("asked to panic on {p}");
            }
        }
        if let Some(h) = &self.hang_on {
            if r.data.windows(h.len()).any(|w| w == h.as_bytes()) {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        std::thread::sleep(self.sleep);
        let flags = u32::from(r.partial);
        write!(
            self.out,
            "{} {} {} {}\n",
            r.stream.as_u32(),
            flags,
            r.data.len(),
            r.container_id
        )?;
        self.out.write_all(r.data)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}

sink_abi::export_sink!(Probe, "rust-test");
