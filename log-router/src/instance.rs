//! One live sink context: a safe wrapper over `create`/`write`/`write_batch`/`flush`/`destroy`.
//!
//! The wrapper is `Send` but not `Sync`: it is created on the router thread, then owned by one
//! worker thread, which is the threading rule of the ABI (calls for one context never overlap).

use crate::loader::LoadedSink;
use sink_abi::ffi::{
    EngineSinkRecord, ENGINE_SINK_ERROR_CAP, ENGINE_SINK_FATAL, ENGINE_SINK_OK, ENGINE_SINK_RETRY,
};
use std::ffi::{c_char, c_void, CStr};
use std::ptr::NonNull;

/// A failed call, with the sink's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// `ENGINE_SINK_ERROR` (or an unknown code): retry later.
    Failed(String),
    /// `ENGINE_SINK_RETRY`: unavailable for now; keep the data, retry later.
    Retry(String),
    /// `ENGINE_SINK_FATAL`: the context is done.
    Fatal(String),
}

impl CallError {
    /// The sink's message.
    pub fn message(&self) -> &str {
        match self {
            CallError::Failed(m) | CallError::Retry(m) | CallError::Fatal(m) => m,
        }
    }
}

/// An error buffer handed to a sink; reused across calls (only its first byte is reset).
struct ErrBuf(Box<[c_char; ENGINE_SINK_ERROR_CAP]>);

impl ErrBuf {
    fn new() -> Self {
        Self(Box::new([0; ENGINE_SINK_ERROR_CAP]))
    }

    /// The buffer, emptied, for one call.
    fn arm(&mut self) -> *mut c_char {
        self.0[0] = 0;
        self.0.as_mut_ptr()
    }

    /// The message, or `fallback` when the sink wrote none.
    fn message(&mut self, fallback: impl FnOnce() -> String) -> String {
        self.0[ENGINE_SINK_ERROR_CAP - 1] = 0;
        // SAFETY: the buffer is NUL-terminated (last byte forced to 0 above).
        let m = unsafe { CStr::from_ptr(self.0.as_ptr()) }.to_string_lossy();
        let m = m.trim();
        if m.is_empty() {
            fallback()
        } else {
            m.replace('\n', " ")
        }
    }

    /// Maps a return code to a result.
    fn status(&mut self, code: i32) -> Result<(), CallError> {
        if code == ENGINE_SINK_OK {
            return Ok(());
        }
        let m = self.message(|| format!("sink returned {code} without a message"));
        Err(match code {
            ENGINE_SINK_FATAL => CallError::Fatal(m),
            ENGINE_SINK_RETRY => CallError::Retry(m),
            _ => CallError::Failed(m),
        })
    }
}

/// Runs the library's `validate` on the user's options (a no-op when it has none).
///
/// # Errors
/// The sink's message.
pub fn validate(sink: &LoadedSink, config: &[u8]) -> Result<(), String> {
    let Some(f) = sink.validate else {
        return Ok(());
    };
    let mut err = ErrBuf::new();
    // SAFETY: the config and error buffers are valid for the lengths passed.
    let code = unsafe {
        f(
            config.as_ptr(),
            config.len(),
            err.arm(),
            ENGINE_SINK_ERROR_CAP,
        )
    };
    err.status(code).map_err(|e| e.message().to_string())
}

/// A created context, destroyed on drop.
pub struct SinkInstance {
    sink: &'static LoadedSink,
    ctx: NonNull<c_void>,
    err: ErrBuf,
}

impl std::fmt::Debug for SinkInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkInstance")
            .field("sink", &self.sink.name)
            .finish_non_exhaustive()
    }
}

// SAFETY: the ABI allows a context to be used from any thread as long as calls never overlap;
// `SinkInstance` is not `Sync` and all calls take `&mut self`, so they cannot overlap.
unsafe impl Send for SinkInstance {}

impl SinkInstance {
    /// Calls `create` with the full configuration bytes.
    ///
    /// # Errors
    /// The sink's message when it returns NULL.
    pub fn create(sink: &'static LoadedSink, config: &[u8]) -> Result<Self, String> {
        let mut err = ErrBuf::new();
        // SAFETY: the config and error buffers are valid for the lengths passed.
        let ctx = unsafe {
            (sink.create)(
                config.as_ptr(),
                config.len(),
                err.arm(),
                ENGINE_SINK_ERROR_CAP,
            )
        };
        match NonNull::new(ctx) {
            Some(ctx) => Ok(Self { sink, ctx, err }),
            None => Err(err.message(|| "create failed without a message".into())),
        }
    }

    /// The library this context belongs to.
    pub fn sink(&self) -> &'static LoadedSink {
        self.sink
    }

    /// Calls `write` with one record.
    ///
    /// # Errors
    /// [`CallError`].
    pub fn write(&mut self, record: &EngineSinkRecord) -> Result<(), CallError> {
        let err = self.err.arm();
        // SAFETY: ctx is live (destroyed only in Drop); the record and buffer are valid.
        let code =
            unsafe { (self.sink.write)(self.ctx.as_ptr(), record, err, ENGINE_SINK_ERROR_CAP) };
        self.err.status(code)
    }

    /// Hands over `records` (consecutive slices of one buffer): with `write_batch` when the
    /// sink has it, else `write` per record. Returns how many were taken, and the error that
    /// stopped the rest.
    pub fn write_records(
        &mut self,
        records: &[EngineSinkRecord],
    ) -> (usize, Result<(), CallError>) {
        let Some(batch) = self.sink.write_batch else {
            for (i, r) in records.iter().enumerate() {
                if let Err(e) = self.write(r) {
                    return (i, Err(e));
                }
            }
            return (records.len(), Ok(()));
        };
        let mut taken = 0usize;
        let err = self.err.arm();
        // SAFETY: ctx is live; the records, `taken` and the buffer are valid for the call.
        let code = unsafe {
            batch(
                self.ctx.as_ptr(),
                records.as_ptr(),
                records.len(),
                &mut taken,
                err,
                ENGINE_SINK_ERROR_CAP,
            )
        };
        let result = self.err.status(code);
        let taken = if result.is_ok() {
            records.len()
        } else {
            taken.min(records.len())
        };
        (taken, result)
    }

    /// Calls `flush`.
    ///
    /// # Errors
    /// [`CallError`].
    pub fn flush(&mut self) -> Result<(), CallError> {
        let err = self.err.arm();
        // SAFETY: ctx is live; the buffer is valid.
        let code = unsafe { (self.sink.flush)(self.ctx.as_ptr(), err, ENGINE_SINK_ERROR_CAP) };
        self.err.status(code)
    }
}

impl Drop for SinkInstance {
    fn drop(&mut self) {
        // SAFETY: ctx came from a successful create and is destroyed exactly once, here.
        unsafe { (self.sink.destroy)(self.ctx.as_ptr()) };
    }
}
