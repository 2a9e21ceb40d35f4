//! The shard log as `sluice-streams` sees it: [`ShardLog`] (one shard's append-only log) and
//! [`ShardLogStore`] (where the logs of every stream live: open, remove, sweep). The registry
//! calls nothing else of the storage engine, so a replicated back end (NATS JetStream: one
//! stream per shard, or subjects per shard) can stand in for `sluice-log` by implementing
//! these two traits; [`LocalLogs`] is the `sluice-log` implementation, one directory per shard
//! under `<data dir>/streams/<stream uid>/<shard index>`.
//!
//! What an implementation must keep (the architecture invariants): an append is acknowledged,
//! and its records become visible to readers (and the listener is told the new end offset),
//! only once they are durable; offsets are dense and start at 0; [`ShardLog::sync`] returns once
//! everything queued before it is durable (a reshard's closing point depends on it); reads
//! return records in offset order from the trim horizon on, never below it.
//!
//! The put path makes one dynamic call per shard and put ([`ShardLog::try_append`]).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use sluice_log::{Clock, Completion, Listener, Log, LogConfig, LogError, ReadBatch, Record};

/// One shard's durable, append-only log.
pub trait ShardLog: Send + Sync + 'static {
    /// Queues `records` without blocking; `done` is called once, when they are durable and
    /// visible (or with the error that stopped them). With the queue full the records and
    /// `done` are handed back, and `done` is not called.
    #[allow(clippy::type_complexity)]
    fn try_append(
        &self,
        records: Vec<Record>,
        done: Completion,
    ) -> Result<(), (Vec<Record>, Completion)>;
    /// Waits until everything queued before the call is durable and visible.
    fn sync(&self) -> Result<(), LogError>;
    /// Visible records from `from_offset` (or the trim horizon, if that is later): at most
    /// `records_max`, and past the first at most `bytes_max` bytes of data.
    fn read(
        &self,
        from_offset: u64,
        records_max: usize,
        bytes_max: usize,
    ) -> Result<ReadBatch, LogError>;
    /// The trim horizon: the oldest offset still readable.
    fn start_offset(&self) -> u64;
    /// One past the newest visible record.
    fn end_offset(&self) -> u64;
    /// The offset of the first visible record that arrived at or after `arrival_ms`, or the
    /// end offset if none did.
    fn offset_at_time(&self, arrival_ms: i64) -> Result<u64, LogError>;
    /// Retention: hides (and may delete) every record that arrived before `cutoff_ms`.
    /// Returns the new trim horizon.
    fn trim_before(&self, cutoff_ms: i64) -> Result<u64, LogError>;
    /// Registers the function told the new end offset each time records become visible: what
    /// wakes readers ([`Streams::watch`](crate::Streams::watch)).
    fn set_listener(&self, listener: Listener);
    /// Stops taking appends once what is queued is done; reads go on.
    fn close(&self);
    /// True while a failed write keeps the log from taking appends.
    fn is_poisoned(&self) -> bool;
    /// The writer's state, for `/health` (by default only what [`ShardLog::is_poisoned`] says).
    fn health(&self) -> sluice_log::LogHealth {
        if self.is_poisoned() {
            sluice_log::LogHealth::Poisoned {
                reason: String::new(),
                since_ms: 0,
            }
        } else {
            sluice_log::LogHealth::Healthy
        }
    }
}

impl ShardLog for Log {
    fn try_append(
        &self,
        records: Vec<Record>,
        done: Completion,
    ) -> Result<(), (Vec<Record>, Completion)> {
        Log::try_append(self, records, done)
    }

    fn sync(&self) -> Result<(), LogError> {
        // An empty append is queued behind everything before it and acknowledged after them.
        self.append_blocking(Vec::new()).map(drop)
    }

    fn read(
        &self,
        from_offset: u64,
        records_max: usize,
        bytes_max: usize,
    ) -> Result<ReadBatch, LogError> {
        Log::read(self, from_offset, records_max, bytes_max)
    }

    fn start_offset(&self) -> u64 {
        Log::start_offset(self)
    }

    fn end_offset(&self) -> u64 {
        Log::end_offset(self)
    }

    fn offset_at_time(&self, arrival_ms: i64) -> Result<u64, LogError> {
        Log::offset_at_time(self, arrival_ms)
    }

    fn trim_before(&self, cutoff_ms: i64) -> Result<u64, LogError> {
        Log::trim_before(self, cutoff_ms)
    }

    fn set_listener(&self, listener: Listener) {
        Log::set_listener(self, listener)
    }

    fn close(&self) {
        Log::close(self)
    }

    fn is_poisoned(&self) -> bool {
        Log::is_poisoned(self)
    }

    fn health(&self) -> sluice_log::LogHealth {
        Log::health(self)
    }
}

/// Where the shard logs of every stream live.
pub trait ShardLogStore: Send + Sync + 'static {
    /// Opens (recovering) the log of a shard. `fresh`: the shard is being created, so anything
    /// left under its name (a reshard or creation that crashed before its catalog write) is
    /// removed first.
    fn open(
        &self,
        stream_uid: u64,
        shard_index: u32,
        fresh: bool,
    ) -> Result<Arc<dyn ShardLog>, LogError>;
    /// Removes a closed shard's data (its log is closed first by the caller).
    fn remove_shard(&self, stream_uid: u64, shard_index: u32);
    /// Removes all of a deleted stream's data.
    fn remove_stream(&self, stream_uid: u64);
    /// Removes the data of every stream not in `known` (on open: left by a crash).
    fn retain_streams(&self, known: &HashSet<u64>);
    /// Removes the data of every shard of the stream not in `known`.
    fn retain_shards(&self, stream_uid: u64, known: &BTreeSet<u32>);
}

/// `sluice-log` logs in the data directory: `streams/<stream uid>/<shard index, 12 digits>`.
pub struct LocalLogs {
    root: PathBuf,
    config: LogConfig,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LocalLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLogs")
            .field("root", &self.root)
            .finish()
    }
}

impl LocalLogs {
    /// The logs under `root` (the data directory's `streams`), created if missing.
    pub fn new(root: PathBuf, config: LogConfig, clock: Arc<dyn Clock>) -> Result<Self, LogError> {
        std::fs::create_dir_all(&root).map_err(|e| LogError::Io {
            path: root.clone(),
            source: e,
        })?;
        Ok(LocalLogs {
            root,
            config,
            clock,
        })
    }

    fn stream_dir(&self, uid: u64) -> PathBuf {
        self.root.join(uid.to_string())
    }

    fn shard_dir(&self, uid: u64, index: u32) -> PathBuf {
        self.stream_dir(uid).join(format!("{index:012}"))
    }
}

impl ShardLogStore for LocalLogs {
    fn open(
        &self,
        stream_uid: u64,
        shard_index: u32,
        fresh: bool,
    ) -> Result<Arc<dyn ShardLog>, LogError> {
        let dir = self.shard_dir(stream_uid, shard_index);
        if fresh && dir.exists() {
            // Nothing was acknowledged into it: see the trait documentation.
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(Arc::new(Log::open(
            &dir,
            self.config.clone(),
            self.clock.clone(),
        )?))
    }

    fn remove_shard(&self, stream_uid: u64, shard_index: u32) {
        let _ = std::fs::remove_dir_all(self.shard_dir(stream_uid, shard_index));
    }

    fn remove_stream(&self, stream_uid: u64) {
        let _ = std::fs::remove_dir_all(self.stream_dir(stream_uid));
    }

    fn retain_streams(&self, known: &HashSet<u64>) {
        let Ok(dirs) = std::fs::read_dir(&self.root) else {
            return;
        };
        for d in dirs.flatten() {
            // Exactly a uid's decimal form: anything else is not a stream's.
            let is_known = d.file_name().to_str().is_some_and(|n| {
                n.parse::<u64>()
                    .is_ok_and(|uid| uid.to_string() == n && known.contains(&uid))
            });
            if !is_known {
                tracing::info!(dir = %d.path().display(), "removing data of a stream the catalog does not know");
                let _ = std::fs::remove_dir_all(d.path());
            }
        }
    }

    fn retain_shards(&self, stream_uid: u64, known: &BTreeSet<u32>) {
        let Ok(dirs) = std::fs::read_dir(self.stream_dir(stream_uid)) else {
            return;
        };
        for d in dirs.flatten() {
            let is_known = d
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|i| known.contains(&i));
            if !is_known {
                let _ = std::fs::remove_dir_all(d.path());
            }
        }
    }
}
