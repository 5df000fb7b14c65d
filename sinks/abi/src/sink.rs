//! The Rust face of a sink: implement [`Sink`] and export it with [`crate::export_sink!`].

use crate::config::{Config, ConfigError};
use crate::ffi::{EngineSinkRecord, ENGINE_SINK_FLAG_PARTIAL, ENGINE_SINK_STREAM_STDERR};

/// Which output stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The workload's standard output (ABI value 1).
    Stdout,
    /// The workload's standard error (ABI value 2).
    Stderr,
}

impl Stream {
    /// The ABI number of the stream.
    pub fn as_u32(self) -> u32 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }

    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One record, borrowed for the duration of a [`Sink::write`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Container id.
    pub container_id: &'a str,
    /// Source stream.
    pub stream: Stream,
    /// When the router read the bytes, in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The record does not end with a line feed (the line continues in the next record of the
    /// same stream, unless the stream ended).
    pub partial: bool,
    /// The bytes as the container wrote them.
    pub data: &'a [u8],
}

impl<'a> Record<'a> {
    /// Views a C record.
    ///
    /// # Safety
    /// `rec` must point to a valid record whose pointers are valid for their lengths for `'a`.
    pub unsafe fn from_ffi(rec: *const EngineSinkRecord) -> Record<'a> {
        // SAFETY: guaranteed by the caller.
        let r = unsafe { &*rec };
        let bytes = |p: *const u8, len: usize| -> &'a [u8] {
            if p.is_null() || len == 0 {
                &[]
            } else {
                // SAFETY: the caller guarantees the pointer is valid for `len` bytes for 'a.
                unsafe { std::slice::from_raw_parts(p, len) }
            }
        };
        let id = bytes(r.container_id.cast::<u8>(), r.container_id_len);
        Record {
            container_id: std::str::from_utf8(id).unwrap_or(""),
            stream: if r.stream == ENGINE_SINK_STREAM_STDERR {
                Stream::Stderr
            } else {
                Stream::Stdout
            },
            timestamp_ns: r.timestamp_ns,
            partial: r.flags & ENGINE_SINK_FLAG_PARTIAL != 0,
            data: bytes(r.data, r.data_len),
        }
    }

    /// Builds the C view of this record; valid while `self`'s borrows are.
    pub fn to_ffi(&self) -> EngineSinkRecord {
        EngineSinkRecord {
            struct_size: std::mem::size_of::<EngineSinkRecord>() as u32,
            stream: self.stream.as_u32(),
            flags: if self.partial {
                ENGINE_SINK_FLAG_PARTIAL
            } else {
                0
            },
            reserved: 0,
            timestamp_ns: self.timestamp_ns,
            container_id: self.container_id.as_ptr().cast(),
            container_id_len: self.container_id.len(),
            data: self.data.as_ptr(),
            data_len: self.data.len(),
        }
    }
}

/// Several records handed over at once: consecutive slices of one buffer.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    records: &'a [EngineSinkRecord],
}

impl<'a> Batch<'a> {
    /// Views C records.
    ///
    /// # Safety
    /// Every record and the bytes it points to must be valid for `'a`, and the records must be
    /// consecutive slices of one buffer (as the ABI guarantees for `write_batch`).
    pub unsafe fn from_ffi(records: &'a [EngineSinkRecord]) -> Self {
        Self { records }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Record `i`.
    pub fn get(&self, i: usize) -> Option<Record<'a>> {
        // SAFETY: `from_ffi`'s contract makes every record valid for 'a.
        self.records.get(i).map(|r| unsafe { Record::from_ffi(r) })
    }

    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = Record<'a>> + '_ {
        // SAFETY: `from_ffi`'s contract makes every record valid for 'a.
        self.records.iter().map(|r| unsafe { Record::from_ffi(r) })
    }

    /// When every record has the same stream and timestamp: those, and all their bytes as one
    /// slice (what a plain file writer needs for a single `write(2)`).
    pub fn uniform_span(&self) -> Option<(Stream, u64, &'a [u8])> {
        let first = self.get(0)?;
        let mut len = 0usize;
        for r in self.iter() {
            if r.stream != first.stream || r.timestamp_ns != first.timestamp_ns {
                return None;
            }
            len += r.data.len();
        }
        // SAFETY: the records are consecutive slices of one buffer valid for 'a (contract of
        // `from_ffi`), so `len` bytes from the first record's start are all inside it.
        Some((first.stream, first.timestamp_ns, unsafe {
            std::slice::from_raw_parts(first.data.as_ptr(), len)
        }))
    }
}

/// A batch stopped after `taken` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    /// Records of the batch taken before the error.
    pub taken: usize,
    /// The error.
    pub error: SinkError,
}

/// Why a write or flush failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkError {
    /// Failed this time; the router retries later with back-off (`ENGINE_SINK_ERROR`), and
    /// meanwhile lets the container and the other sinks go on (this sink's queue is bounded,
    /// then records are dropped and counted).
    Failed(String),
    /// The destination is unavailable for now (`ENGINE_SINK_RETRY`): the router retries with
    /// back-off and, in blocking mode, holds the container's output meanwhile (nothing lost).
    Retry(String),
    /// The instance cannot continue; the router destroys it (`ENGINE_SINK_FATAL`).
    Fatal(String),
}

impl SinkError {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            SinkError::Failed(m) | SinkError::Retry(m) | SinkError::Fatal(m) => m,
        }
    }
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for SinkError {}

impl From<std::io::Error> for SinkError {
    fn from(e: std::io::Error) -> Self {
        SinkError::Failed(e.to_string())
    }
}

/// A sink: one value per container. The router never calls one instance from two threads at
/// once, so `&mut self` is sound; it may call it from different threads over its life (`Send`).
pub trait Sink: Send + Sized + 'static {
    /// Checks the user's options without side effects (no files, no connections).
    ///
    /// # Errors
    /// A one-line message naming the bad option.
    fn validate(config: &Config) -> Result<(), ConfigError>;

    /// Creates the instance for one container; `config` includes `container-id` and `log-path`.
    ///
    /// # Errors
    /// A one-line message; the router reports the container as not routed.
    fn create(config: &Config) -> Result<Self, ConfigError>;

    /// Takes one record. May buffer; the data must be stored once [`Sink::flush`] succeeds.
    ///
    /// # Errors
    /// [`SinkError`]; on `Failed` or `Retry` the same record is offered again later, so keep
    /// nothing of it (or it is stored twice): a record already buffered is taken (`Ok`), and
    /// the failure to store it is reported by [`Sink::flush`].
    fn write(&mut self, record: &Record<'_>) -> Result<(), SinkError>;

    /// Takes several records; the default calls [`Sink::write`] on each. Override it to store a
    /// whole batch at once (see [`Batch::uniform_span`]).
    ///
    /// # Errors
    /// [`BatchError`] with how many records were taken before the error; the others are
    /// offered again later, as for [`Sink::write`].
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), BatchError> {
        for (taken, r) in batch.iter().enumerate() {
            self.write(&r)
                .map_err(|error| BatchError { taken, error })?;
        }
        Ok(())
    }

    /// Stores everything written so far (for a file: `write(2)` completed).
    ///
    /// # Errors
    /// [`SinkError`]; on `Failed` or `Retry` flush is called again later.
    fn flush(&mut self) -> Result<(), SinkError>;
}
