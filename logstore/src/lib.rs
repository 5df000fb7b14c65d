//! The container log store: the on-disk format the `file` and `rotating` sinks write and `engine logs` reads.
//!
//! `<state-dir>/logs/<id>.log` holds the container's bytes exactly as written (stdout and
//! stderr interleaved in read order, nothing added). `<id>.log.idx` ([`index`]) says which
//! stream each run of bytes came from and when it was read; it serves `--timestamps`,
//! `--since`/`--until`, `--stream` and crash repair. Rotated files (`<id>.log.1`, … with their
//! own `.idx`) have the same format. See `docs/log-files.md`.
//!
//! - [`writer`]: appending with crash repair (used by the sinks).
//! - [`reader`]: runs and lines for readers.
//! - [`rotate`]: names, shifting and compression of rotated files.

pub mod index;
pub mod reader;
pub mod rotate;
pub mod stream;
pub mod writer;

pub use index::Entry;
pub use reader::{read_runs, Line, LineJoiner, Run};
pub use stream::Stream;
pub use writer::{LogWriter, Repair};
