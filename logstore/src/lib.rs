//! The container log store: the one owner of the on-disk log format, which the `file` and
//! `rotating` sinks write, `engine logs`/`engine run` read and the supervisor removes.
//!
//! `<state-dir>/logs/<id>.log` holds the container's bytes exactly as written (stdout and
//! stderr interleaved in read order, nothing added). `<id>.log.idx` ([`index`]) says which
//! [`Stream`] each run of bytes came from and when it was read; it serves `--timestamps`,
//! `--since`/`--until`, `--stream` and crash repair. Rotated files (`<id>.log.1`, … with their
//! own `.idx`) have the same format. See `docs/log-files.md`.
//!
//! - [`writer`]: appending with crash repair (used by the sinks).
//! - [`rotate`]: names, shifting and compression of rotated files.
//! - [`reader`]: runs and lines of one file.
//! - [`follow`]: every run of a log once, in order, across rotations, while it is written.
//! - [`remove()`]: a log with its index and every rotated generation.

pub mod follow;
pub mod index;
pub mod reader;
mod remove;
pub mod rotate;
pub mod stream;
pub mod writer;

pub use index::Entry;
pub use reader::{read_runs, Line, LineJoiner, Run};
pub use remove::remove;
pub use stream::Stream;
pub use writer::{LogWriter, Repair};
