//! The engine sink plugin ABI (version 1): a C ABI that lets the log-router load sinks from
//! shared objects, plus the Rust side that makes writing a sink a few lines.
//!
//! - [`ffi`]: the `#[repr(C)]` types, constants and return codes (mirrors
//!   `include/engine_sink.h`; the contract is `docs/sink-abi.md`).
//! - [`config`]: the `key=value` configuration a sink receives, with size parsing.
//! - [`duration`]: the engine's one duration grammar (sink options and the CLI).
//! - [`sink`]: the [`Sink`] trait and [`Record`] view for Rust sinks.
//! - [`export`]: the generated C entry points; use [`export_sink!`].
//!
//! ```ignore
//! struct Count(u64);
//! impl sink_abi::Sink for Count {
//!     fn validate(c: &sink_abi::Config) -> Result<(), sink_abi::ConfigError> { c.check_known(&[]) }
//!     fn create(_: &sink_abi::Config) -> Result<Self, sink_abi::ConfigError> { Ok(Count(0)) }
//!     fn write(&mut self, r: &sink_abi::Record<'_>) -> Result<(), sink_abi::SinkError> {
//!         self.0 += r.data.len() as u64; Ok(())
//!     }
//!     fn flush(&mut self) -> Result<(), sink_abi::SinkError> { Ok(()) }
//! }
//! sink_abi::export_sink!(Count, "count");
//! ```

pub mod config;
pub mod duration;
pub mod export;
pub mod ffi;
pub mod sink;

pub use config::{parse_duration, parse_size, Config, ConfigError};
pub use ffi::*;
pub use sink::{Batch, BatchError, Record, Sink, SinkError, Stream};

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::{c_char, CStr};

    struct Probe {
        seen: Vec<u8>,
    }

    impl Sink for Probe {
        fn validate(c: &Config) -> Result<(), ConfigError> {
            c.check_known(&["boom"])
        }
        fn create(c: &Config) -> Result<Self, ConfigError> {
            if c.get("boom") == Some("create") {
                panic!("create exploded");
            }
            c.require(config::KEY_CONTAINER_ID)?;
            Ok(Probe { seen: Vec::new() })
        }
        fn write(&mut self, r: &Record<'_>) -> Result<(), SinkError> {
            match r.data {
                b"panic" => panic!("write exploded"),
                b"fail" => Err(SinkError::Failed("disk full".into())),
                d => {
                    self.seen.extend_from_slice(d);
                    Ok(())
                }
            }
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    static ENTRY: EngineSinkEntry = export::entry_for::<Probe>("probe\0");

    fn err_text(buf: &[c_char]) -> String {
        // SAFETY: write_error always NUL-terminates within the buffer.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn generated_entry_catches_panics_and_reports_errors() {
        let mut err = [0 as c_char; ENGINE_SINK_ERROR_CAP];
        assert_eq!(ENTRY.abi_version, ENGINE_SINK_ABI_VERSION);
        let validate = ENTRY.validate.unwrap();
        let cfg = b"colour=red\n";
        // SAFETY: valid buffers.
        let rc = unsafe { validate(cfg.as_ptr(), cfg.len(), err.as_mut_ptr(), err.len()) };
        assert_eq!(rc, ENGINE_SINK_ERROR);
        assert!(err_text(&err).contains("colour"));

        let create = ENTRY.create.unwrap();
        let cfg = b"boom=create\ncontainer-id=a\n";
        // SAFETY: valid buffers.
        let ctx = unsafe { create(cfg.as_ptr(), cfg.len(), err.as_mut_ptr(), err.len()) };
        assert!(ctx.is_null());
        assert!(
            err_text(&err).contains("create exploded"),
            "{}",
            err_text(&err)
        );

        let cfg = b"container-id=a\n";
        // SAFETY: valid buffers.
        let ctx = unsafe { create(cfg.as_ptr(), cfg.len(), err.as_mut_ptr(), err.len()) };
        assert!(!ctx.is_null());
        let write = ENTRY.write.unwrap();
        let mut call = |data: &[u8]| {
            let rec = Record {
                container_id: "a",
                stream: Stream::Stderr,
                timestamp_ns: 1,
                partial: true,
                data,
            }
            .to_ffi();
            // SAFETY: ctx is live, the record borrows live data.
            unsafe { write(ctx, &rec, err.as_mut_ptr(), err.len()) }
        };
        assert_eq!(call(b"ok"), ENGINE_SINK_OK);
        assert_eq!(call(b"fail"), ENGINE_SINK_ERROR);
        assert_eq!(call(b"panic"), ENGINE_SINK_FATAL);
        assert!(err_text(&err).contains("write exploded"));
        // SAFETY: ctx came from create and is destroyed once.
        unsafe {
            assert_eq!((*ctx.cast::<Probe>()).seen, b"ok");
            ENTRY.destroy.unwrap()(ctx);
        }
    }

    #[test]
    fn record_round_trips_through_ffi() {
        let r = Record {
            container_id: "c1",
            stream: Stream::Stderr,
            timestamp_ns: 42,
            partial: true,
            data: b"\xffx",
        };
        let f = r.to_ffi();
        // SAFETY: `f` borrows `r`'s live data.
        assert_eq!(unsafe { Record::from_ffi(&f) }, r);
    }
}
