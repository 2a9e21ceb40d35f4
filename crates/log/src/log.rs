//! One shard's log: recovery on open, the shared view readers use, reads and retention.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use crate::clock::Clock;
use crate::config::LogConfig;
use crate::error::LogError;
use crate::frame::{Record, StoredRecord, DATA_BYTES_MAX, KEY_BYTES_MAX};
use crate::segment::{self, Segment};
use crate::writer::{self, Request};

/// Called once with the outcome of an append, on the writer thread: keep it short.
pub type Completion = Box<dyn FnOnce(Result<AppendAck, LogError>) + Send>;

/// Told the new end offset each time records become visible.
pub type Listener = Box<dyn Fn(u64) + Send + Sync>;

/// Where an append landed: its records have offsets `first_offset..first_offset + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendAck {
    pub first_offset: u64,
    pub count: u64,
    pub arrival_ms: i64,
}

/// Records read from the log.
#[derive(Debug, Clone, Default)]
pub struct ReadBatch {
    pub records: Vec<StoredRecord>,
    /// The offset to read from next.
    pub next_offset: u64,
    /// One past the newest durable record when the read was made.
    pub end_offset: u64,
    /// Arrival time of the newest durable record, if any.
    pub last_arrival_ms: Option<i64>,
}

/// Counters about the log, for describe calls and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStats {
    pub start_offset: u64,
    pub end_offset: u64,
    pub segment_count: usize,
    pub bytes: u64,
}

pub(crate) struct State {
    /// Oldest first. Never empty: the last one is the active segment.
    pub segments: Vec<Segment>,
    /// The trim horizon: the first offset readers may see (retention moves it forward).
    pub start_offset: u64,
}

impl State {
    pub fn end_offset(&self) -> u64 {
        self.segments.last().map(|s| s.next_offset).unwrap_or(0)
    }
}

pub(crate) struct Shared {
    pub dir: PathBuf,
    pub config: LogConfig,
    pub clock: Arc<dyn Clock>,
    pub state: RwLock<State>,
    pub poisoned: AtomicBool,
    pub listener: RwLock<Option<Listener>>,
}

/// One shard's durable log. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Log {
    shared: Arc<Shared>,
    tx: Mutex<Option<SyncSender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering it: sealed segments are checked
    /// against their index files, the active segment is scanned, and a torn or corrupt tail is cut.
    /// A brand-new log starts at offset 0.
    pub fn open(dir: &Path, config: LogConfig, clock: Arc<dyn Clock>) -> Result<Log, LogError> {
        assert!(config.segment_bytes_max > segment::SEGMENT_HEADER_BYTES);
        assert!(config.append_queue_depth_max > 0 && config.commit_bytes_max > 0);
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
            if let Some(parent) = dir.parent() {
                segment::fsync_dir(parent)?;
            }
        }
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
            let entry = entry.map_err(|e| LogError::io(dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".seg") {
                if let Ok(base) = stem.parse::<u64>() {
                    bases.push(base);
                }
            } else if name.ends_with(".tmp") {
                // A half-written index file from a crash during sealing: rebuilt below if needed.
                let _ = std::fs::remove_file(entry.path());
            }
        }
        bases.sort_unstable();
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
        for (i, base) in bases.iter().enumerate() {
            let last = i + 1 == bases.len();
            let path = segment::segment_path(dir, *base);
            let seg = Segment::open(&path, !last, last, config.index_interval_bytes)?;
            if seg.base_offset != *base {
                return Err(LogError::Corrupt {
                    path,
                    position: 0,
                    reason: "segment name disagrees with its header".into(),
                });
            }
            if let Some(prev) = segments.last() {
                if prev.next_offset != seg.base_offset {
                    return Err(LogError::Corrupt {
                        path,
                        position: 0,
                        reason: format!(
                            "gap between segments: {} then {}",
                            prev.next_offset, seg.base_offset
                        ),
                    });
                }
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            segments.push(Segment::create(dir, 0, clock.now_ms())?);
        }
        let start_offset = segments[0].base_offset;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            config: config.clone(),
            clock,
            state: RwLock::new(State {
                segments,
                start_offset,
            }),
            poisoned: AtomicBool::new(false),
            listener: RwLock::new(None),
        });
        let (tx, rx) = mpsc::sync_channel(config.append_queue_depth_max);
        let writer_shared = shared.clone();
        let name = format!(
            "log-writer-{}",
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || writer::run(writer_shared, rx))
            .map_err(|e| LogError::io(dir, e))?;
        Ok(Log {
            shared,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Registers a function called (on the writer thread) with the new end offset each time
    /// records become visible to readers.
    pub fn set_listener(&self, listener: Listener) {
        *self.shared.listener.write().unwrap() = Some(listener);
    }

    fn check(records: &[Record]) -> Result<(), LogError> {
        for r in records {
            if r.data.len() > DATA_BYTES_MAX {
                return Err(LogError::TooLarge {
                    what: "data",
                    len: r.data.len(),
                    max: DATA_BYTES_MAX,
                });
            }
            if r.partition_key.len() > KEY_BYTES_MAX {
                return Err(LogError::TooLarge {
                    what: "partition key",
                    len: r.partition_key.len(),
                    max: KEY_BYTES_MAX,
                });
            }
        }
        Ok(())
    }

    /// Queues `records` for the writer; `done` is called once they are durable (per the sync
    /// policy) and visible, or with the error that stopped them. Blocks while the queue is full.
    pub fn append(&self, records: Vec<Record>, done: Completion) {
        if let Err(e) = Self::check(&records) {
            return done(Err(e));
        }
        let tx = self.tx.lock().unwrap().clone();
        match tx {
            Some(tx) => {
                if let Err(mpsc::SendError(Request { done, .. })) =
                    tx.send(Request { records, done })
                {
                    done(Err(LogError::Closed));
                }
            }
            None => done(Err(LogError::Closed)),
        }
    }

    /// Like [`Log::append`], but never blocks: with the queue full, `done` is not called and
    /// the records are handed back.
    pub fn try_append(
        &self,
        records: Vec<Record>,
        done: Completion,
    ) -> Result<(), (Vec<Record>, Completion)> {
        if let Err(e) = Self::check(&records) {
            done(Err(e));
            return Ok(());
        }
        let tx = self.tx.lock().unwrap().clone();
        match tx {
            Some(tx) => match tx.try_send(Request { records, done }) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(Request { records, done })) => Err((records, done)),
                Err(TrySendError::Disconnected(Request { done, .. })) => {
                    done(Err(LogError::Closed));
                    Ok(())
                }
            },
            None => {
                done(Err(LogError::Closed));
                Ok(())
            }
        }
    }

    /// Appends and waits: for tests and tools that are not latency-sensitive.
    pub fn append_blocking(&self, records: Vec<Record>) -> Result<AppendAck, LogError> {
        let (tx, rx) = mpsc::channel();
        self.append(records, Box::new(move |r| drop(tx.send(r))));
        rx.recv().unwrap_or(Err(LogError::Closed))
    }

    /// The trim horizon: the oldest offset still readable.
    pub fn start_offset(&self) -> u64 {
        self.shared.state.read().unwrap().start_offset
    }

    /// One past the newest visible record.
    pub fn end_offset(&self) -> u64 {
        self.shared.state.read().unwrap().end_offset()
    }

    pub fn last_arrival_ms(&self) -> Option<i64> {
        let state = self.shared.state.read().unwrap();
        state.segments.iter().rev().find_map(|s| s.last_arrival_ms)
    }

    pub fn stats(&self) -> LogStats {
        let state = self.shared.state.read().unwrap();
        LogStats {
            start_offset: state.start_offset,
            end_offset: state.end_offset(),
            segment_count: state.segments.len(),
            bytes: state.segments.iter().map(|s| s.end_position).sum(),
        }
    }

    /// Reads visible records from `from_offset` (or the trim horizon, if that is later): at most
    /// `records_max` of them and, past the first, at most `bytes_max` bytes of data.
    pub fn read(
        &self,
        from_offset: u64,
        records_max: usize,
        bytes_max: usize,
    ) -> Result<ReadBatch, LogError> {
        // Take what the read needs under the lock, then do the I/O without it.
        let (plan, end_offset, last_arrival_ms, start) = {
            let state = self.shared.state.read().unwrap();
            let start = from_offset.max(state.start_offset);
            let end = state.end_offset();
            let last = state.segments.iter().rev().find_map(|s| s.last_arrival_ms);
            let first = state.segments.partition_point(|s| s.next_offset <= start);
            let plan: Vec<(Arc<std::fs::File>, PathBuf, u64, u64)> = state.segments
                [first.min(state.segments.len())..]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let position = if s.base_offset >= start {
                        segment::SEGMENT_HEADER_BYTES
                    } else {
                        s.position_for_offset(start)
                    };
                    (s.file.clone(), s.path.clone(), position, s.end_position)
                })
                .collect();
            (plan, end, last, start)
        };
        let mut batch = ReadBatch {
            records: Vec::new(),
            next_offset: start,
            end_offset,
            last_arrival_ms,
        };
        if start >= end_offset || records_max == 0 {
            batch.next_offset = start;
            return Ok(batch);
        }
        let mut bytes = 0usize;
        let mut full = false;
        for (file, path, position, end_position) in plan {
            segment::read_frames(
                &file,
                &path,
                position,
                end_position,
                bytes_max.saturating_sub(bytes),
                |record, _| {
                    if record.offset < start {
                        return true;
                    }
                    if batch.records.len() >= records_max
                        || (!batch.records.is_empty() && bytes + record.data.len() > bytes_max)
                    {
                        full = true;
                        return false;
                    }
                    bytes += record.data.len();
                    batch.next_offset = record.offset + 1;
                    batch.records.push(record);
                    true
                },
            )?;
            if full {
                break;
            }
        }
        if let Some(first) = batch.records.first() {
            assert!(
                first.offset >= start,
                "read returned a record before the requested offset"
            );
        } else {
            batch.next_offset = start;
        }
        Ok(batch)
    }

    /// The offset of the first visible record that arrived at or after `arrival_ms`, or the end
    /// offset if none did.
    pub fn offset_at_time(&self, arrival_ms: i64) -> Result<u64, LogError> {
        let (candidate, start, end) = {
            let state = self.shared.state.read().unwrap();
            let start = state.start_offset;
            let end = state.end_offset();
            let found = state
                .segments
                .iter()
                .find(|s| {
                    s.next_offset > start
                        && s.last_arrival_ms.is_some_and(|last| last >= arrival_ms)
                })
                .map(|s| {
                    (
                        s.file.clone(),
                        s.path.clone(),
                        s.position_for_time(arrival_ms),
                        s.end_position,
                    )
                });
            (found, start, end)
        };
        let Some((file, path, position, end_position)) = candidate else {
            return Ok(end);
        };
        let mut found = None;
        segment::read_frames(
            &file,
            &path,
            position,
            end_position,
            64 * 1024,
            |record, _| {
                if record.arrival_ms >= arrival_ms && record.offset >= start {
                    found = Some(record.offset);
                    false
                } else {
                    true
                }
            },
        )?;
        Ok(found.unwrap_or(end))
    }

    /// Retention: hides every record that arrived before `cutoff_ms` and deletes the sealed
    /// segments that hold only such records. Returns the new trim horizon.
    pub fn trim_before(&self, cutoff_ms: i64) -> Result<u64, LogError> {
        let horizon = self.offset_at_time(cutoff_ms)?;
        let doomed: Vec<PathBuf> = {
            let mut state = self.shared.state.write().unwrap();
            if horizon > state.start_offset {
                state.start_offset = horizon;
            }
            let start = state.start_offset;
            let mut doomed = Vec::new();
            while state.segments.len() > 1
                && state.segments[0].sealed
                && state.segments[0].next_offset <= start
            {
                doomed.push(state.segments.remove(0).path);
            }
            doomed
        };
        for path in &doomed {
            // Index first: a crash in between leaves a segment without index, which is rebuilt.
            let _ = std::fs::remove_file(segment::index_path(path));
            std::fs::remove_file(path).map_err(|e| LogError::io(path, e))?;
        }
        if !doomed.is_empty() {
            segment::fsync_dir(&self.shared.dir)?;
            tracing::debug!(dir = %self.shared.dir.display(), segments = doomed.len(), horizon, "retention trimmed segments");
        }
        Ok(self.start_offset())
    }

    /// Stops the writer after it has finished what is queued.
    pub fn close(&self) {
        self.tx.lock().unwrap().take();
        if let Some(handle) = self.writer.lock().unwrap().take() {
            let _ = handle.join();
        }
    }

    /// True after a failed write or fsync: appends fail until the log is reopened.
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.close();
    }
}
