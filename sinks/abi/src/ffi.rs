//! The C-compatible types of the sink ABI, version [`ENGINE_SINK_ABI_VERSION`].
//!
//! These mirror `include/engine_sink.h` field for field; `docs/sink-abi.md` is the contract.
//! A sink exports one function, [`ENGINE_SINK_ENTRY_SYMBOL`], returning a pointer to a static
//! [`EngineSinkEntry`]. The router reads `abi_version` and `struct_size` before anything else.

use std::ffi::{c_char, c_void};

/// The ABI version this crate describes.
pub const ENGINE_SINK_ABI_VERSION: u32 = 1;

/// Name of the exported entry function: `const engine_sink_entry_t *engine_sink_entry(void)`.
pub const ENGINE_SINK_ENTRY_SYMBOL: &str = "engine_sink_entry";

/// `stream` value of a record read from the workload's standard output.
pub const ENGINE_SINK_STREAM_STDOUT: u32 = 1;
/// `stream` value of a record read from the workload's standard error.
pub const ENGINE_SINK_STREAM_STDERR: u32 = 2;

/// Record flag: the record does not end with a line feed. The line continues in the next
/// record of the same stream, unless the stream ended.
pub const ENGINE_SINK_FLAG_PARTIAL: u32 = 1;

/// Largest record the router passes, in bytes. Longer lines arrive as several partial records.
pub const ENGINE_SINK_MAX_RECORD: usize = 16 * 1024;

/// Return code: success.
pub const ENGINE_SINK_OK: i32 = 0;
/// Return code: the call failed; the message is in the error buffer. The router reports it and
/// retries the same call later with back-off.
pub const ENGINE_SINK_ERROR: i32 = -1;
/// Return code: the destination is unavailable for now (peer down, reconnecting); the message
/// is in the error buffer. Like slowness: in blocking mode the router keeps the data in the
/// container's pipe and retries the same call later with back-off; nothing is dropped.
pub const ENGINE_SINK_RETRY: i32 = 1;
/// Return code: the instance cannot continue. The router reports it, calls `destroy`, and
/// routes nothing more to this instance.
pub const ENGINE_SINK_FATAL: i32 = -2;

/// Size of the error buffer the router passes, in bytes (message plus NUL).
pub const ENGINE_SINK_ERROR_CAP: usize = 512;

/// One piece of container output, borrowed for the duration of one `write` call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EngineSinkRecord {
    /// `size_of::<EngineSinkRecord>()` as the router built it; later versions only append.
    pub struct_size: u32,
    /// [`ENGINE_SINK_STREAM_STDOUT`] or [`ENGINE_SINK_STREAM_STDERR`].
    pub stream: u32,
    /// Bit set of `ENGINE_SINK_FLAG_*`.
    pub flags: u32,
    /// Always zero in version 1.
    pub reserved: u32,
    /// When the router read the bytes, in nanoseconds since the Unix epoch (UTC).
    pub timestamp_ns: u64,
    /// Container id (ASCII, not NUL-terminated).
    pub container_id: *const c_char,
    /// Length of `container_id`, in bytes.
    pub container_id_len: usize,
    /// The bytes exactly as the container wrote them (any byte values).
    pub data: *const u8,
    /// Length of `data`, in bytes; 1..=[`ENGINE_SINK_MAX_RECORD`].
    pub data_len: usize,
}

/// `int32_t validate(const uint8_t *config, size_t config_len, char *err, size_t err_cap)`.
pub type ValidateFn = unsafe extern "C" fn(
    config: *const u8,
    config_len: usize,
    err: *mut c_char,
    err_cap: usize,
) -> i32;
/// `void *create(const uint8_t *config, size_t config_len, char *err, size_t err_cap)`;
/// NULL on failure.
pub type CreateFn = unsafe extern "C" fn(
    config: *const u8,
    config_len: usize,
    err: *mut c_char,
    err_cap: usize,
) -> *mut c_void;
/// `int32_t write(void *ctx, const engine_sink_record_t *record, char *err, size_t err_cap)`.
pub type WriteFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    record: *const EngineSinkRecord,
    err: *mut c_char,
    err_cap: usize,
) -> i32;
/// `int32_t flush(void *ctx, char *err, size_t err_cap)`.
pub type FlushFn = unsafe extern "C" fn(ctx: *mut c_void, err: *mut c_char, err_cap: usize) -> i32;
/// `int32_t write_batch(void *ctx, const engine_sink_record_t *records, size_t count,
/// size_t *taken, char *err, size_t err_cap)`.
pub type WriteBatchFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    records: *const EngineSinkRecord,
    count: usize,
    taken: *mut usize,
    err: *mut c_char,
    err_cap: usize,
) -> i32;
/// `void destroy(void *ctx)`.
pub type DestroyFn = unsafe extern "C" fn(ctx: *mut c_void);
/// `const engine_sink_entry_t *engine_sink_entry(void)`.
pub type EntryFn = unsafe extern "C" fn() -> *const EngineSinkEntry;

/// The table a sink exports. Only appended to in later versions; `struct_size` tells the router
/// how much of it the sink provides.
#[repr(C)]
#[derive(Debug)]
pub struct EngineSinkEntry {
    /// [`ENGINE_SINK_ABI_VERSION`] the sink was built against.
    pub abi_version: u32,
    /// `size_of::<EngineSinkEntry>()` as the sink was built.
    pub struct_size: u32,
    /// Short name of the sink for messages, NUL-terminated, static.
    pub name: *const c_char,
    /// Checks options without creating anything; may be NULL.
    pub validate: Option<ValidateFn>,
    /// Creates one instance (one per container); required.
    pub create: Option<CreateFn>,
    /// Writes one record; required.
    pub write: Option<WriteFn>,
    /// Makes every record written so far durable in the sink's sense; required.
    pub flush: Option<FlushFn>,
    /// Frees the instance; required. Called exactly once per successful `create`.
    pub destroy: Option<DestroyFn>,
    /// Takes several records at once; optional (NULL: the router calls `write` per record).
    /// Present when `struct_size` covers it. The records of one batch are consecutive slices
    /// of one buffer (`records[i + 1].data == records[i].data + records[i].data_len`). Sets
    /// `*taken` to the number of records taken (all of them on `ENGINE_SINK_OK`); on an error
    /// the router retries from the first record not taken.
    pub write_batch: Option<WriteBatchFn>,
}

/// Size of the version-1 entry without `write_batch` (the smallest table the router
/// accepts), in bytes.
pub const ENGINE_SINK_ENTRY_MIN_SIZE: usize = std::mem::offset_of!(EngineSinkEntry, write_batch);

// SAFETY: the entry is immutable static data (integers, a pointer to a static NUL-terminated
// string, and function pointers); sharing it between threads cannot race.
unsafe impl Sync for EngineSinkEntry {}

/// Writes `msg` into a C error buffer as a NUL-terminated string, truncated on a UTF-8 boundary
/// to fit `cap` bytes. Does nothing when `buf` is NULL or `cap` is 0.
///
/// # Safety
/// `buf` must be NULL or valid for writes of `cap` bytes.
pub unsafe fn write_error(buf: *mut c_char, cap: usize, msg: &str) {
    if buf.is_null() || cap == 0 {
        return;
    }
    let mut n = msg.len().min(cap - 1);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: the caller guarantees `buf` is valid for `cap` bytes and `n + 1 <= cap`; the source
    // is a live `&str` that cannot overlap a buffer handed to us for writing.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_c_header() {
        // x86_64 / aarch64 LP64 layout documented in engine_sink.h.
        assert_eq!(std::mem::size_of::<EngineSinkRecord>(), 56);
        assert_eq!(std::mem::size_of::<EngineSinkEntry>(), 64);
        assert_eq!(ENGINE_SINK_ENTRY_MIN_SIZE, 56);
        assert_eq!(std::mem::offset_of!(EngineSinkEntry, create), 24);
        assert_eq!(std::mem::offset_of!(EngineSinkRecord, timestamp_ns), 16);
    }

    #[test]
    fn error_is_truncated_and_terminated() {
        let mut buf = [0x55 as c_char; 6];
        // SAFETY: the buffer is 6 bytes long.
        unsafe { write_error(buf.as_mut_ptr(), buf.len(), "héllo world") };
        let bytes: Vec<u8> = buf.iter().map(|&c| c as u8).collect();
        assert_eq!(&bytes[..], b"h\xc3\xa9ll\0");
        let mut small = [0x55 as c_char; 3];
        // SAFETY: the buffer is 3 bytes long.
        unsafe { write_error(small.as_mut_ptr(), small.len(), "héllo") };
        assert_eq!(
            small[..2].iter().map(|&c| c as u8).collect::<Vec<_>>(),
            b"h\0"
        );
    }
}
