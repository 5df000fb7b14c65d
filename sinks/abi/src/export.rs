//! C entry points generated for a Rust [`Sink`]: every body runs inside `catch_unwind`, so a
//! panic becomes an error return with the panic message and never unwinds into the router.

use crate::config::Config;
use crate::ffi::{
    write_error, EngineSinkEntry, EngineSinkRecord, ENGINE_SINK_ABI_VERSION, ENGINE_SINK_ERROR,
    ENGINE_SINK_FATAL, ENGINE_SINK_OK, ENGINE_SINK_RETRY,
};
use crate::sink::{Batch, BatchError, Record, Sink, SinkError};
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Exports `$ty` (a [`Sink`]) as this library's sink, named `$name` in messages:
/// defines `engine_sink_entry`, the symbol the router looks up.
///
/// ```ignore
/// sink_abi::export_sink!(MySink, "my-sink");
/// ```
#[macro_export]
macro_rules! export_sink {
    ($ty:ty, $name:literal) => {
        /// Entry point of this sink library (engine sink ABI).
        #[unsafe(no_mangle)]
        pub extern "C" fn engine_sink_entry() -> *const $crate::ffi::EngineSinkEntry {
            static ENTRY: $crate::ffi::EngineSinkEntry =
                $crate::export::entry_for::<$ty>(concat!($name, "\0"));
            &ENTRY
        }
    };
}

/// The entry table for `S`; `name` must end with a NUL byte.
pub const fn entry_for<S: Sink>(name: &'static str) -> EngineSinkEntry {
    EngineSinkEntry {
        abi_version: ENGINE_SINK_ABI_VERSION,
        struct_size: std::mem::size_of::<EngineSinkEntry>() as u32,
        name: name.as_ptr().cast(),
        validate: Some(validate::<S>),
        create: Some(create::<S>),
        write: Some(write::<S>),
        flush: Some(flush::<S>),
        destroy: Some(destroy::<S>),
        write_batch: Some(write_batch::<S>),
    }
}

/// Text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown payload".into());
    format!("sink panicked: {what}")
}

/// Parses the config bytes handed over by the router.
///
/// # Safety
/// `config` must be NULL with `len == 0`, or valid for `len` bytes.
unsafe fn config_from(config: *const u8, len: usize) -> Result<Config, String> {
    let bytes = if config.is_null() || len == 0 {
        &[][..]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(config, len) }
    };
    Config::parse(bytes).map_err(|e| e.0)
}

/// Maps a sink result (or a caught panic) to a return code and the error buffer.
///
/// # Safety
/// `err` must be NULL or valid for `cap` bytes.
unsafe fn status(
    r: std::thread::Result<Result<(), SinkError>>,
    err: *mut c_char,
    cap: usize,
) -> i32 {
    let (code, msg) = match r {
        Ok(Ok(())) => return ENGINE_SINK_OK,
        Ok(Err(SinkError::Failed(m))) => (ENGINE_SINK_ERROR, m),
        Ok(Err(SinkError::Retry(m))) => (ENGINE_SINK_RETRY, m),
        Ok(Err(SinkError::Fatal(m))) => (ENGINE_SINK_FATAL, m),
        Err(p) => (ENGINE_SINK_FATAL, panic_message(&*p)),
    };
    // SAFETY: guaranteed by the caller.
    unsafe { write_error(err, cap, &msg) };
    code
}

unsafe extern "C" fn validate<S: Sink>(
    config: *const u8,
    len: usize,
    err: *mut c_char,
    cap: usize,
) -> i32 {
    let r = catch_unwind(|| {
        // SAFETY: the ABI requires the router to pass a valid config buffer.
        let c = unsafe { config_from(config, len) }.map_err(SinkError::Failed)?;
        S::validate(&c).map_err(|e| SinkError::Failed(e.0))
    });
    // SAFETY: the ABI requires a valid error buffer.
    unsafe { status(r, err, cap) }
}

unsafe extern "C" fn create<S: Sink>(
    config: *const u8,
    len: usize,
    err: *mut c_char,
    cap: usize,
) -> *mut c_void {
    let r = catch_unwind(|| {
        // SAFETY: the ABI requires the router to pass a valid config buffer.
        let c = unsafe { config_from(config, len) }?;
        S::create(&c).map_err(|e| e.0)
    });
    let msg = match r {
        Ok(Ok(sink)) => return Box::into_raw(Box::new(sink)).cast(),
        Ok(Err(m)) => m,
        Err(p) => panic_message(&*p),
    };
    // SAFETY: the ABI requires a valid error buffer.
    unsafe { write_error(err, cap, &msg) };
    std::ptr::null_mut()
}

unsafe extern "C" fn write<S: Sink>(
    ctx: *mut c_void,
    record: *const EngineSinkRecord,
    err: *mut c_char,
    cap: usize,
) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` came from `create::<S>` and the router never shares it between threads.
        let sink = unsafe { &mut *ctx.cast::<S>() };
        // SAFETY: the ABI requires a valid record for the duration of the call.
        let rec = unsafe { Record::from_ffi(record) };
        sink.write(&rec)
    }));
    // SAFETY: the ABI requires a valid error buffer.
    unsafe { status(r, err, cap) }
}

unsafe extern "C" fn write_batch<S: Sink>(
    ctx: *mut c_void,
    records: *const EngineSinkRecord,
    count: usize,
    taken: *mut usize,
    err: *mut c_char,
    cap: usize,
) -> i32 {
    let mut done = 0;
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` came from `create::<S>` and the router never shares it between threads.
        let sink = unsafe { &mut *ctx.cast::<S>() };
        let recs = if records.is_null() || count == 0 {
            &[][..]
        } else {
            // SAFETY: the ABI requires `count` valid records for the duration of the call.
            unsafe { std::slice::from_raw_parts(records, count) }
        };
        // SAFETY: the ABI guarantees valid, consecutive records for the call.
        let batch = unsafe { Batch::from_ffi(recs) };
        match sink.write_batch(&batch) {
            Ok(()) => {
                done = count;
                Ok(())
            }
            Err(BatchError { taken, error }) => {
                done = taken.min(count);
                Err(error)
            }
        }
    }));
    if !taken.is_null() {
        // SAFETY: the ABI requires `taken` to be NULL or valid for a write.
        unsafe { *taken = done };
    }
    // SAFETY: the ABI requires a valid error buffer.
    unsafe { status(r, err, cap) }
}

unsafe extern "C" fn flush<S: Sink>(ctx: *mut c_void, err: *mut c_char, cap: usize) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` came from `create::<S>` and the router never shares it between threads.
        let sink = unsafe { &mut *ctx.cast::<S>() };
        sink.flush()
    }));
    // SAFETY: the ABI requires a valid error buffer.
    unsafe { status(r, err, cap) }
}

unsafe extern "C" fn destroy<S: Sink>(ctx: *mut c_void) {
    if ctx.is_null() {
        return;
    }
    // A panic in Drop is swallowed here: there is nobody left to report it to but the log.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` came from `Box::into_raw` in `create::<S>` and is destroyed once.
        drop(unsafe { Box::from_raw(ctx.cast::<S>()) });
    }));
}
