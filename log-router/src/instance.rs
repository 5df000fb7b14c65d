//! One live sink context: a safe wrapper over `create`/`write`/`flush`/`destroy`.
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

/// An error buffer handed to a sink.
struct ErrBuf([c_char; ENGINE_SINK_ERROR_CAP]);

impl ErrBuf {
    fn new() -> Self {
        Self([0; ENGINE_SINK_ERROR_CAP])
    }

    fn ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr()
    }

    /// The message, or `fallback` when the sink wrote none.
    fn message(mut self, fallback: &str) -> String {
        self.0[ENGINE_SINK_ERROR_CAP - 1] = 0;
        // SAFETY: the buffer is NUL-terminated (last byte forced to 0 above).
        let m = unsafe { CStr::from_ptr(self.0.as_ptr()) }.to_string_lossy();
        let m = m.trim();
        if m.is_empty() {
            fallback.to_string()
        } else {
            m.replace('\n', " ")
        }
    }
}

/// Maps a return code to a result.
fn status(code: i32, err: ErrBuf) -> Result<(), CallError> {
    let fallback = format!("sink returned {code} without a message");
    match code {
        ENGINE_SINK_OK => Ok(()),
        ENGINE_SINK_FATAL => Err(CallError::Fatal(err.message(&fallback))),
        ENGINE_SINK_RETRY => Err(CallError::Retry(err.message(&fallback))),
        _ => Err(CallError::Failed(err.message(&fallback))),
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
            err.ptr(),
            ENGINE_SINK_ERROR_CAP,
        )
    };
    status(code, err).map_err(|e| e.message().to_string())
}

/// A created context, destroyed on drop.
#[derive(Debug)]
pub struct SinkInstance {
    sink: &'static LoadedSink,
    ctx: NonNull<c_void>,
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
                err.ptr(),
                ENGINE_SINK_ERROR_CAP,
            )
        };
        NonNull::new(ctx)
            .map(|ctx| Self { sink, ctx })
            .ok_or_else(|| err.message("create failed without a message"))
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
        let mut err = ErrBuf::new();
        // SAFETY: ctx is live (destroyed only in Drop); the record and buffer are valid.
        let code = unsafe {
            (self.sink.write)(self.ctx.as_ptr(), record, err.ptr(), ENGINE_SINK_ERROR_CAP)
        };
        status(code, err)
    }

    /// Calls `flush`.
    ///
    /// # Errors
    /// [`CallError`].
    pub fn flush(&mut self) -> Result<(), CallError> {
        let mut err = ErrBuf::new();
        // SAFETY: ctx is live; the buffer is valid.
        let code =
            unsafe { (self.sink.flush)(self.ctx.as_ptr(), err.ptr(), ENGINE_SINK_ERROR_CAP) };
        status(code, err)
    }
}

impl Drop for SinkInstance {
    fn drop(&mut self) {
        // SAFETY: ctx came from a successful create and is destroyed exactly once, here.
        unsafe { (self.sink.destroy)(self.ctx.as_ptr()) };
    }
}
