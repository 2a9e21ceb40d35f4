//! `sluice-log` is the storage engine of one shard: a durable, segmented, append-only record log.
//!
//! The main types:
//! - [`Log`] is one shard's log. [`Log::open`] recovers it (checksums verified, a torn tail cut),
//!   [`Log::append`] hands records to the shard's writer thread, which group-commits them, and
//!   [`Log::read`] returns durable records from any offset.
//! - [`Record`] is what a caller appends; [`StoredRecord`] is what a reader gets back, with the
//!   `offset` (ordinal in the shard) and the `arrival_ms` the writer stamped on it.
//! - [`LogConfig`] holds the segment sizes, the sync policy ([`SyncPolicy`]) and the queue bounds.
//! - [`Clock`] lets tests control time.
//!
//! The crate knows nothing of HTTP, async runtimes or any wire protocol: it speaks in offsets,
//! byte positions and milliseconds. The byte layout is specified in `docs/specs/storage-format.md`.

mod clock;
mod config;
mod error;
mod frame;
mod index;
mod log;
mod segment;
mod writer;

pub use clock::{Clock, SystemClock};
pub use config::{LogConfig, SyncPolicy};
pub use error::LogError;
pub use frame::{Record, StoredRecord, DATA_BYTES_MAX, KEY_BYTES_MAX};
pub use log::{AppendAck, Completion, Listener, Log, LogStats, ReadBatch};
