//! `sluice-log` is the storage engine of one shard: a durable, segmented, append-only record log.
//!
//! The main types:
//! - [`Log`] is one shard's log. [`Log::open`] recovers it (checksums verified, a torn tail cut),
//!   [`Log::append`] hands records to the shard's writer thread, which group-commits them, and
//!   [`Log::read`] returns durable records from any offset.
//! - [`Record`] is what a caller appends; [`StoredRecord`] is what a reader gets back, with the
//!   `offset` (ordinal in the shard) and the `arrival_ms` the writer stamped on it.
//! - [`LogConfig`] holds the segment sizes, the sync policy ([`SyncPolicy`]), the queue bounds
//!   and the recovery backoff.
//! - [`LogHealth`] is the writer's state ([`Log::health`]): healthy, out of space, poisoned, or
//!   recovering.
//! - [`Storage`] / [`StorageFile`] are the file-I/O seam: [`FsStorage`] is the real file system
//!   (`pread`/`pwrite`, `fdatasync`), used by [`Log::open`]; [`fault::FaultStorage`] is an
//!   in-memory one that injects errors and produces crash images, for tests
//!   ([`Log::open_with_storage`]).
//! - [`Clock`] lets tests control time.
//!
//! # Storage faults
//!
//! - **Disk full** (`ENOSPC`/`EDQUOT` while writing a batch, creating a segment or its index):
//!   that commit's appends fail with [`LogError::NoSpace`]; whatever part of the batch reached
//!   the file is cut off again (and the cut synced), so no garbage stays between records and
//!   the index is untouched. The log is not poisoned: [`Log::health`] says
//!   [`LogHealth::NoSpace`] until the next commit succeeds, which is the first append after
//!   space is freed; no reopen is needed.
//! - **fsync failure** (any error from `fdatasync`/`fsync`, `ENOSPC` included) and **any other
//!   write error** (`EIO`): the writer is poisoned. The failing commit's appends, and every
//!   append until recovery, fail with [`LogError::Poisoned`]. fsync is never retried. The
//!   writer recovers by itself: it cuts the active segment back to the end of the last
//!   acknowledged record (known in memory; anything past it was never acknowledged), writes
//!   again the bytes acknowledged but not yet synced (only with [`SyncPolicy::Interval`]: a
//!   failed fsync may have left their pages clean in the cache but not on disk), syncs, removes
//!   files a failed segment roll left, and reloads the log from disk verifying every frame of
//!   the active segment. The first attempt runs at once; while attempts fail,
//!   the next waits [`LogConfig::recovery_backoff_ms_min`], doubling up to
//!   [`LogConfig::recovery_backoff_ms_max`], so a broken disk costs one attempt per backoff.
//!   If the reload does not end exactly at the acknowledged end (acknowledged records
//!   damaged), recovery refuses and the log stays poisoned: only a reopen cuts acknowledged
//!   data.
//! - One `tracing` line when a log is poisoned, runs out of space, recovers, or has space again;
//!   none per record. Metrics (the `metrics` facade, no labels): `sluice_log_fsync_seconds`,
//!   `sluice_log_group_commit_records` and `sluice_log_group_commit_bytes` (histograms, per
//!   commit), `sluice_log_append_queue_depth` (gauge, summed over the process's logs, updated
//!   per batch), `sluice_log_poisoned_total` (poisonings) and `sluice_log_no_space_total`
//!   (commits refused for lack of space).
//!
//! The crate has no panic reachable from a caller but its integrity `assert!`s (records
//! contiguous, positions matching): they stop the writer rather than acknowledge a record at
//! a wrong place. Locks poisoned by such a panic are used as they are (see `log.rs`).
//!
//! The crate knows nothing of HTTP, async runtimes or any wire protocol: it speaks in offsets,
//! byte positions and milliseconds. The byte layout is specified in `docs/specs/storage-format.md`.

mod clock;
mod config;
mod error;
pub mod fault;
mod frame;
mod index;
mod log;
mod segment;
mod storage;
mod writer;

pub use clock::{Clock, SystemClock};
pub use config::{LogConfig, SyncPolicy};
pub use error::LogError;
pub use frame::{Record, StoredRecord, DATA_BYTES_MAX, KEY_BYTES_MAX};
pub use log::{AppendAck, Completion, Listener, Log, LogHealth, LogStats, ReadBatch};
pub use storage::{FsStorage, Storage, StorageFile};
