//! One shard's log: recovery on open, the shared view readers use, reads and retention, health,
//! and the in-process recovery the writer runs after an i/o error.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use crate::clock::Clock;
use crate::config::LogConfig;
use crate::error::LogError;
use crate::frame::{Record, StoredRecord, DATA_BYTES_MAX, KEY_BYTES_MAX};
use crate::segment::{self, Segment};
use crate::storage::{FsStorage, Storage, StorageFile};
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

/// The state of a shard's writer, for health checks. The server reports it per shard; metrics
/// count the transitions (`sluice_log_poisoned_total`, `sluice_log_no_space_total`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogHealth {
    /// Appends are being committed.
    Healthy,
    /// The last commit failed because the disk is full (since `since_ms`, the first such
    /// failure in a row). The log is not poisoned: every append tries again and the first one
    /// that fits returns the log to `Healthy`.
    NoSpace { since_ms: i64 },
    /// A write or fsync failed at `since_ms`: appends fail with [`LogError::Poisoned`] until the
    /// writer has recovered, which it attempts by itself (at once, then with a growing backoff
    /// while attempts fail). `reason` is the error that poisoned it, or the last recovery
    /// attempt's.
    Poisoned { reason: String, since_ms: i64 },
    /// The writer is recovering right now: cutting the log back to the last acknowledged
    /// record and reloading it from disk.
    Recovering,
}

pub(crate) struct State {
    /// Sealed segments, oldest first.
    pub sealed: Vec<Segment>,
    /// The segment the writer appends to.
    pub active: Segment,
    /// The trim horizon: the first offset readers may see (retention moves it forward).
    pub start_offset: u64,
}

impl State {
    pub fn end_offset(&self) -> u64 {
        self.active.next_offset
    }

    /// Every segment, oldest first.
    pub fn segments(&self) -> impl DoubleEndedIterator<Item = &Segment> {
        self.sealed.iter().chain(std::iter::once(&self.active))
    }

    pub fn last_arrival_ms(&self) -> Option<i64> {
        self.segments().rev().find_map(|s| s.last_arrival_ms)
    }
}

pub(crate) struct Shared {
    pub dir: PathBuf,
    pub config: LogConfig,
    pub clock: Arc<dyn Clock>,
    pub storage: Arc<dyn Storage>,
    pub state: RwLock<State>,
    /// Set by the writer when a write or fsync fails, cleared when it has recovered.
    pub poisoned: AtomicBool,
    pub health: Mutex<LogHealth>,
    pub poisoned_total: AtomicU64,
    pub no_space_total: AtomicU64,
    pub listener: RwLock<Option<Listener>>,
    /// Held while segment files are removed (retention) or the directory is reloaded
    /// (recovery), so recovery never sees a file that retention is taking away.
    pub files: Mutex<()>,
    /// Append requests handed to the queue and not yet taken by the writer.
    pub queued: AtomicUsize,
}

// A lock poisoned by a panic is used as is. The state is changed under the write lock only by
// publishing a commit (after its fsync, so whatever part of it is visible is durable), by
// retention (dropping whole segments) and by recovery (one assignment), and the only panics
// there are the integrity asserts; the lock then holds a state that is durable on disk, which
// readers may keep reading. The other locks guard plain values.
impl Shared {
    pub fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn health(&self) -> MutexGuard<'_, LogHealth> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_health(&self, health: LogHealth) {
        *self.health() = health;
    }
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

fn invalid_config(dir: &Path, reason: &str) -> LogError {
    LogError::io(
        dir,
        std::io::Error::new(std::io::ErrorKind::InvalidInput, reason.to_string()),
    )
}

/// Reads the segments of `dir` from disk, oldest first, checking that they join. With
/// `repair` (open after a crash), empty last segments left by segment creations that did not
/// complete are removed and a torn or corrupt tail of the last segment is cut; without
/// (recovery in process, after the tail was cut to the acknowledged end), any damage is an
/// error. Half-written index files are removed. Empty when the directory holds no segment.
pub(crate) fn load_segments(
    storage: &dyn Storage,
    dir: &Path,
    config: &LogConfig,
    repair: bool,
) -> Result<Vec<Segment>, LogError> {
    let mut bases = Vec::new();
    for name in storage.list(dir).map_err(|e| LogError::io(dir, e))? {
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".seg") {
            if let Ok(base) = stem.parse::<u64>() {
                bases.push(base);
            }
        } else if name.ends_with(".tmp") {
            // A half-written index file from a crash during sealing: rebuilt below if needed.
            let _ = storage.remove_file(&dir.join(&*name));
        }
    }
    bases.sort_unstable();
    if repair {
        let mut removed = false;
        while let Some(&last) = bases.last() {
            let path = segment::segment_path(dir, last);
            if !segment::is_leftover(storage, &path, bases.len() > 1)? {
                break;
            }
            tracing::warn!(segment = %path.display(), "removing an empty last segment, left by a segment creation that did not complete");
            storage
                .remove_file(&path)
                .map_err(|e| LogError::io(&path, e))?;
            removed = true;
            bases.pop();
        }
        if removed {
            segment::fsync_dir(storage, dir)?;
        }
    }
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
    for (i, base) in bases.iter().enumerate() {
        let last = i + 1 == bases.len();
        let path = segment::segment_path(dir, *base);
        let seg = Segment::open(
            storage,
            &path,
            !last,
            repair && last,
            config.index_interval_bytes,
        )?;
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
    Ok(segments)
}

/// The writer's recovery after a failed write or fsync, on the writer thread (so nothing
/// commits meanwhile): what the log acknowledged is known in memory (the published end), and
/// everything on disk past it was never acknowledged, so it is cut, durably, and the log is
/// reloaded from disk with every frame of the active segment verified. Recovery does not retry
/// the failed fsync: whatever that fsync covered is cut, and the new fsync covers the cut.
///
/// `rewrite_from` is the position of the active segment up to which it was synced; bytes
/// acknowledged past it (only with the interval policy) are read back and written again before
/// the sync, because a failed fsync may have left their pages clean in the page cache but not
/// on disk, and a sync writes only dirty pages.
///
/// Fails, leaving the state as it was, if any step fails or if the reloaded log does not end
/// exactly at the acknowledged end (acknowledged records damaged: never dropped silently; a
/// reopen cuts them).
pub(crate) fn recover(shared: &Shared, rewrite_from: u64) -> Result<(), LogError> {
    let storage = &*shared.storage;
    let dir = &shared.dir;
    let _files = shared.files.lock().unwrap_or_else(PoisonError::into_inner);
    let (active_base, active_path, acked_next, acked_end) = {
        let state = shared.read_state();
        (
            state.active.base_offset,
            state.active.path.clone(),
            state.active.next_offset,
            state.active.end_position,
        )
    };
    // 1. What a failed roll may have left: segments after the active one (they hold no
    //    record), and half-written index files.
    let mut removed = false;
    for name in storage.list(dir).map_err(|e| LogError::io(dir, e))? {
        let name = name.to_string_lossy();
        let path = dir.join(&*name);
        let stray = match name.strip_suffix(".seg") {
            Some(stem) => stem.parse::<u64>().is_ok_and(|base| base > active_base),
            None => name.ends_with(".tmp"),
        };
        if stray {
            storage
                .remove_file(&path)
                .map_err(|e| LogError::io(&path, e))?;
            removed = true;
        }
    }
    // 2. Cut the active segment back to the acknowledged end, and make the cut durable.
    let file = storage
        .open(&active_path)
        .map_err(|e| LogError::io(&active_path, e))?;
    let len = file
        .len_bytes()
        .map_err(|e| LogError::io(&active_path, e))?;
    if len > acked_end {
        file.set_len(acked_end)
            .map_err(|e| LogError::io(&active_path, e))?;
    }
    rewrite(&*file, rewrite_from, acked_end.min(len)).map_err(|e| LogError::io(&active_path, e))?;
    file.sync_all().map_err(|e| LogError::io(&active_path, e))?;
    if removed {
        segment::fsync_dir(storage, dir)?;
    }
    // 3. Reload, verifying, and check the log ends where the acknowledged records end.
    let mut segments = load_segments(storage, dir, &shared.config, false)?;
    let active = segments.pop().ok_or_else(|| LogError::Corrupt {
        path: dir.clone(),
        position: 0,
        reason: "recovery found no segment".into(),
    })?;
    if active.base_offset != active_base
        || active.next_offset != acked_next
        || active.end_position != acked_end
    {
        let damage = if active.next_offset < acked_next {
            ": acknowledged records are damaged; reopening the log cuts them"
        } else {
            ""
        };
        return Err(LogError::Corrupt {
            path: active.path.clone(),
            position: active.end_position,
            reason: format!(
                "recovery found the log ending at offset {} (segment {}), not at the acknowledged end {} (segment {}){damage}",
                active.next_offset, active.base_offset, acked_next, active_base
            ),
        });
    }
    let first_base = segments
        .first()
        .map_or(active.base_offset, |s| s.base_offset);
    let mut state = shared.write_state();
    state.start_offset = state.start_offset.max(first_base);
    state.sealed = segments;
    state.active = active;
    Ok(())
}

/// Reads `from..to` of `file` and writes it back in place, a chunk at a time, so the pages are
/// dirty again and the next sync writes them.
fn rewrite(file: &dyn StorageFile, from: u64, to: u64) -> std::io::Result<()> {
    const CHUNK_BYTES: u64 = 1 << 20;
    let mut buf = Vec::new();
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK_BYTES) as usize;
        buf.resize(n, 0);
        let got = crate::storage::read_up_to(file, &mut buf, at)?;
        if got == 0 {
            break;
        }
        crate::storage::write_all_at(file, &buf[..got], at)?;
        at += got as u64;
    }
    Ok(())
}

impl Log {
    /// Opens (creating if needed) the log in `dir` on the real file system, recovering it:
    /// sealed segments are checked against their index files, the active segment is scanned,
    /// and a torn or corrupt tail is cut. A brand-new log starts at offset 0.
    pub fn open(dir: &Path, config: LogConfig, clock: Arc<dyn Clock>) -> Result<Log, LogError> {
        Log::open_with_storage(dir, config, clock, Arc::new(FsStorage))
    }

    /// Like [`Log::open`], with the file I/O going through `storage` (for tests:
    /// [`crate::fault::FaultStorage`]).
    pub fn open_with_storage(
        dir: &Path,
        config: LogConfig,
        clock: Arc<dyn Clock>,
        storage: Arc<dyn Storage>,
    ) -> Result<Log, LogError> {
        if config.segment_bytes_max <= segment::SEGMENT_HEADER_BYTES {
            return Err(invalid_config(
                dir,
                "segment_bytes_max must exceed the 64-byte segment header",
            ));
        }
        if config.append_queue_depth_max == 0 || config.commit_bytes_max == 0 {
            return Err(invalid_config(
                dir,
                "append_queue_depth_max and commit_bytes_max must be positive",
            ));
        }
        match storage.list(dir) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                storage
                    .create_dir_all(dir)
                    .map_err(|e| LogError::io(dir, e))?;
                if let Some(parent) = dir.parent() {
                    segment::fsync_dir(&*storage, parent)?;
                }
            }
            Err(e) => return Err(LogError::io(dir, e)),
        }
        let mut segments = load_segments(&*storage, dir, &config, true)?;
        let active = match segments.pop() {
            Some(active) => active,
            None => Segment::create(&*storage, dir, 0, clock.now_ms())?,
        };
        let start_offset = segments.first().unwrap_or(&active).base_offset;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            config: config.clone(),
            clock,
            storage,
            state: RwLock::new(State {
                sealed: segments,
                active,
                start_offset,
            }),
            poisoned: AtomicBool::new(false),
            health: Mutex::new(LogHealth::Healthy),
            poisoned_total: AtomicU64::new(0),
            no_space_total: AtomicU64::new(0),
            listener: RwLock::new(None),
            files: Mutex::new(()),
            queued: AtomicUsize::new(0),
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
        *self
            .shared
            .listener
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(listener);
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

    fn sender(&self) -> Option<SyncSender<Request>> {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Queues `records` for the writer; `done` is called once they are durable (per the sync
    /// policy) and visible, or with the error that stopped them. Blocks while the queue is full.
    pub fn append(&self, records: Vec<Record>, done: Completion) {
        if let Err(e) = Self::check(&records) {
            return done(Err(e));
        }
        match self.sender() {
            Some(tx) => {
                self.shared.queued.fetch_add(1, Ordering::Relaxed);
                if let Err(mpsc::SendError(Request { done, .. })) =
                    tx.send(Request { records, done })
                {
                    self.shared.queued.fetch_sub(1, Ordering::Relaxed);
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
        match self.sender() {
            Some(tx) => {
                self.shared.queued.fetch_add(1, Ordering::Relaxed);
                let sent = tx.try_send(Request { records, done });
                if sent.is_err() {
                    self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                }
                match sent {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(Request { records, done })) => Err((records, done)),
                    Err(TrySendError::Disconnected(Request { done, .. })) => {
                        done(Err(LogError::Closed));
                        Ok(())
                    }
                }
            }
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
        self.shared.read_state().start_offset
    }

    /// One past the newest visible record.
    pub fn end_offset(&self) -> u64 {
        self.shared.read_state().end_offset()
    }

    pub fn last_arrival_ms(&self) -> Option<i64> {
        self.shared.read_state().last_arrival_ms()
    }

    pub fn stats(&self) -> LogStats {
        let state = self.shared.read_state();
        LogStats {
            start_offset: state.start_offset,
            end_offset: state.end_offset(),
            segment_count: state.sealed.len() + 1,
            bytes: state.segments().map(|s| s.end_position).sum(),
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
            let state = self.shared.read_state();
            let start = from_offset.max(state.start_offset);
            let end = state.end_offset();
            let last = state.last_arrival_ms();
            let first = state.sealed.partition_point(|s| s.next_offset <= start);
            let plan: Vec<(Arc<dyn StorageFile>, PathBuf, u64, u64)> = state.sealed[first..]
                .iter()
                .chain(std::iter::once(&state.active))
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
                &*file,
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
            // Integrity: a read never returns records before the one asked for.
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
            let state = self.shared.read_state();
            let start = state.start_offset;
            let end = state.end_offset();
            let found = state
                .segments()
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
            &*file,
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
        let storage = &*self.shared.storage;
        let _files = self
            .shared
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let horizon = self.offset_at_time(cutoff_ms)?;
        let doomed: Vec<PathBuf> = {
            let mut state = self.shared.write_state();
            if horizon > state.start_offset {
                state.start_offset = horizon;
            }
            let start = state.start_offset;
            let keep = state.sealed.partition_point(|s| s.next_offset <= start);
            state.sealed.drain(..keep).map(|s| s.path).collect()
        };
        for path in &doomed {
            // Index first: a crash in between leaves a segment without index, which is rebuilt.
            let _ = storage.remove_file(&segment::index_path(path));
            storage
                .remove_file(path)
                .map_err(|e| LogError::io(path, e))?;
        }
        if !doomed.is_empty() {
            segment::fsync_dir(storage, &self.shared.dir)?;
            tracing::debug!(dir = %self.shared.dir.display(), segments = doomed.len(), horizon, "retention trimmed segments");
        }
        Ok(self.start_offset())
    }

    /// Stops the writer after it has finished what is queued.
    pub fn close(&self) {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// True from a failed write or fsync until the writer has recovered: appends fail
    /// meanwhile with [`LogError::Poisoned`].
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }

    /// The writer's state: healthy, out of space, poisoned or recovering.
    pub fn health(&self) -> LogHealth {
        self.shared.health().clone()
    }

    /// How many times this log's writer was poisoned since it was opened.
    pub fn poisoned_count(&self) -> u64 {
        self.shared.poisoned_total.load(Ordering::Relaxed)
    }

    /// How many commits failed for lack of space since the log was opened.
    pub fn no_space_count(&self) -> u64 {
        self.shared.no_space_total.load(Ordering::Relaxed)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.close();
    }
}
