//! Reading shards as a consumer: the core under SubscribeToShard, event source mappings,
//! delivery streams and `sluice tail`.
//!
//! - [`ShardReader`] follows one shard from any starting position ([`ShardStart`]) to its end.
//!   It reads only when asked ([`ShardReader::next_batch`], pull-based), one batch of at most
//!   [`ReaderOptions::batch_records_max`] records and [`ReaderOptions::batch_bytes_max`] bytes
//!   at a time, and waits for new records on the shard's durable-end signal
//!   ([`Streams::watch`]): no polling, no timers. The last batch of a closed shard carries its
//!   children ([`ShardEnd`]); SubscribeToShard ends there and the client subscribes to them.
//!   [`ShardReader::into_channel`] turns it into a bounded channel of batches instead.
//! - [`StreamConsumer`] follows a whole stream: it hands out a [`ShardLease`] (a reader plus
//!   checkpointing) for every shard whose parents are all finished, from its checkpoint or the
//!   consumer's [`InitialPosition`], so shards are read in parallel and parents before
//!   children (a merge child waits for both parents). A parent counts as finished once its
//!   end batch is committed ([`ShardLease::commit`]); that commit is what lets its children
//!   start, so each key's records are processed in order across reshards.
//!
//! # Blocking work
//!
//! One rule: **every call into [`Streams`] that may touch a file runs on tokio's blocking pool
//! (`spawn_blocking`)**, never on an async worker. That is [`Streams::cursor`] (AT_TIMESTAMP
//! scans frames), [`Streams::read`] (`pread` on segment files) and every checkpoint load or
//! commit (redb; a commit fsyncs). Async code only awaits the watch signal, [`Notify`] and
//! channels, and takes the registry's short in-memory locks ([`Streams::watch`], stream
//! metadata look-ups).
//!
//! # Ending
//!
//! A reader ends with an error, never a panic, when its stream is deleted
//! ([`ConsumeError::StreamDeleted`]; deletion wakes waiting readers at once), when its closed
//! shard was removed past retention ([`ConsumeError::ShardExpired`]), or, by default, when
//! retention trimmed records it had not read yet ([`ConsumeError::Trimmed`]; with
//! [`OnTrimmed::Skip`] it goes on from the oldest record left).
//!
//! The futures of [`ShardReader::next_batch`], [`ShardReader::read_now`] and
//! [`StreamConsumer::next_lease`] are cancel-safe: dropping one loses nothing, the next call
//! reads from the same position.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, watch, Notify};

use crate::checkpoint::{Checkpoint, ConsumerName, ShardCheckpoint, StateWrite};
use crate::error::StreamsError;
use crate::meta::ShardMeta;
use crate::names::ShardId;
use crate::sequence::SequenceNumber;
use crate::streams::{ShardCursor, ShardStart, Streams};
use sluice_log::StoredRecord;

/// Why a reader or consumer stopped, or a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("stream {stream} was deleted")]
    StreamDeleted { stream: String },
    #[error("shard {shard_id} of stream {stream} is gone: retention removed it")]
    ShardExpired { stream: String, shard_id: ShardId },
    #[error("records of shard {shard_id} of stream {stream} after {after} were trimmed by retention before they were read; the oldest left is after {horizon}")]
    Trimmed {
        stream: String,
        shard_id: ShardId,
        /// Where the reader was.
        after: SequenceNumber,
        /// Where the oldest record left is (reading after this point reads it).
        horizon: SequenceNumber,
    },
    #[error("consumer {consumer} is already reading stream {stream} in this process")]
    ConsumerBusy { consumer: String, stream: String },
    #[error("a consumer state entry must have a key of 1 to 256 bytes and a value of at most 64 KiB: key {key_bytes} bytes, value {value_bytes} bytes")]
    StateTooLarge {
        key_bytes: usize,
        value_bytes: usize,
    },
    #[error("a checkpoint commit of {writes} writes exceeds {limit}")]
    CommitTooLarge { writes: usize, limit: usize },
    #[error(transparent)]
    Streams(#[from] StreamsError),
    #[error("a blocking read or commit did not finish: {0}")]
    Task(String),
}

impl ConsumeError {
    /// Whether trying again later may succeed (an I/O error, a full disk, a writer recovering
    /// from a failed write, a full queue, a quota), as
    /// opposed to a situation that stays (the stream or shard is gone, records were lost, a
    /// caller's mistake).
    pub fn is_transient(&self) -> bool {
        match self {
            ConsumeError::Streams(e) => matches!(
                e,
                StreamsError::Busy
                    | StreamsError::ThroughputExceeded { .. }
                    | StreamsError::Catalog(_)
                    | StreamsError::Log(
                        sluice_log::LogError::Io { .. }
                            | sluice_log::LogError::NoSpace { .. }
                            | sluice_log::LogError::Poisoned { .. }
                    )
            ),
            ConsumeError::StreamDeleted { .. }
            | ConsumeError::ShardExpired { .. }
            | ConsumeError::Trimmed { .. }
            | ConsumeError::ConsumerBusy { .. }
            | ConsumeError::StateTooLarge { .. }
            | ConsumeError::CommitTooLarge { .. }
            | ConsumeError::Task(_) => false,
        }
    }
}

/// What a reader does when retention trimmed records it had not read yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnTrimmed {
    /// End with [`ConsumeError::Trimmed`].
    #[default]
    Fail,
    /// Go on from the oldest record left (what GetRecords does on AWS).
    Skip,
}

/// Budgets and policies of a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Most records in one batch (at least 1).
    pub batch_records_max: usize,
    /// Most data bytes in one batch past its first record (at least 1): a record larger than
    /// this still comes, alone.
    pub batch_bytes_max: usize,
    pub on_trimmed: OnTrimmed,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            batch_records_max: 10_000,
            batch_bytes_max: 2 << 20,
            on_trimmed: OnTrimmed::Fail,
        }
    }
}

/// The end of a closed shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardEnd {
    /// The shards that took over its hash-key range (two after a split, one after a merge).
    pub child_shards: Vec<ShardMeta>,
}

/// Records read from one shard, in order.
#[derive(Debug, Clone)]
pub struct ShardBatch {
    pub shard_id: ShardId,
    pub records: Vec<(SequenceNumber, StoredRecord)>,
    /// Where the batch stopped: the last record's sequence number, or with no records the
    /// point the read was at. Reading AFTER it continues; committing it checkpoints the batch.
    pub continuation: SequenceNumber,
    /// How far the batch's last record is behind the shard's newest (0 when caught up).
    pub millis_behind_latest: i64,
    /// Set on the last batch of a closed shard, which has no records; nothing comes after it.
    pub end: Option<ShardEnd>,
}

impl ShardBatch {
    /// The first and last records' sequence numbers.
    pub fn sequence_range(&self) -> Option<(SequenceNumber, SequenceNumber)> {
        Some((self.records.first()?.0, self.records.last()?.0))
    }

    /// Data bytes in the batch.
    pub fn data_bytes(&self) -> usize {
        self.records.iter().map(|(_, r)| r.data.len()).sum()
    }

    /// What to commit once the batch is processed: its continuation, finished at the end.
    pub fn checkpoint(&self) -> ShardCheckpoint {
        ShardCheckpoint {
            shard_id: self.shard_id,
            checkpoint: Checkpoint {
                sequence_number: self.continuation,
                finished: self.end.is_some(),
            },
        }
    }
}

/// Counters of one reader, shared with whoever holds them (tests check that a waiting reader
/// does not read).
#[derive(Debug, Default)]
pub struct ReaderStats {
    reads: AtomicU64,
    records: AtomicU64,
}

impl ReaderStats {
    /// Reads of the log made so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Records handed out so far.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }
}

/// Runs blocking work on tokio's blocking pool (see the module documentation).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ConsumeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ConsumeError::Task(e.to_string()))
}

/// Follows one shard from a starting position to its end; see the module documentation.
pub struct ShardReader {
    streams: Arc<Streams>,
    cursor: ShardCursor,
    shard_epoch: u64,
    signal: watch::Receiver<u64>,
    options: ReaderOptions,
    ended: bool,
    /// Started at the trim horizon and not read yet: trimming before the first read is no loss.
    floating: bool,
    stats: Arc<ReaderStats>,
}

impl std::fmt::Debug for ShardReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardReader")
            .field("cursor", &self.cursor)
            .field("ended", &self.ended)
            .finish()
    }
}

impl ShardReader {
    /// A reader of `shard_id` from `start`. Errors of the starting position (unknown stream
    /// or shard, a sequence number of another shard) are returned as
    /// [`ConsumeError::Streams`], unchanged.
    pub async fn open(
        streams: Arc<Streams>,
        stream: &str,
        shard_id: ShardId,
        start: ShardStart,
        options: ReaderOptions,
    ) -> Result<ShardReader, ConsumeError> {
        let s = streams.clone();
        let name = stream.to_string();
        let cursor = blocking(move || s.cursor(&name, shard_id, start)).await??;
        let mut reader = ShardReader::from_cursor(streams, cursor, options)?;
        reader.floating = start == ShardStart::TrimHorizon;
        Ok(reader)
    }

    /// A reader from a cursor made by [`Streams::cursor`] (or decoded from an iterator).
    /// Makes no blocking call.
    pub fn from_cursor(
        streams: Arc<Streams>,
        cursor: ShardCursor,
        options: ReaderOptions,
    ) -> Result<ShardReader, ConsumeError> {
        assert!(options.batch_records_max > 0 && options.batch_bytes_max > 0);
        let shard_id = ShardId(cursor.shard_index);
        let deleted = || ConsumeError::StreamDeleted {
            stream: cursor.stream.clone(),
        };
        let stream = streams.get_serving(&cursor.stream).map_err(|_| deleted())?;
        let shard_epoch = {
            let meta = stream.meta();
            if meta.uid != cursor.stream_uid {
                return Err(deleted());
            }
            meta.shard(shard_id.0)
                .ok_or_else(|| ConsumeError::ShardExpired {
                    stream: cursor.stream.clone(),
                    shard_id,
                })?
                .epoch
        };
        let signal = streams
            .watch(&cursor)
            .map_err(|_| ConsumeError::ShardExpired {
                stream: cursor.stream.clone(),
                shard_id,
            })?;
        Ok(ShardReader {
            streams,
            cursor,
            shard_epoch,
            signal,
            options,
            ended: false,
            floating: false,
            stats: Arc::default(),
        })
    }

    pub fn shard_id(&self) -> ShardId {
        ShardId(self.cursor.shard_index)
    }

    pub fn stream(&self) -> &str {
        &self.cursor.stream
    }

    /// Where the reader is: reading AFTER this point is what the next batch does.
    pub fn position(&self) -> SequenceNumber {
        SequenceNumber {
            shard_epoch: self.shard_epoch,
            shard_index: self.cursor.shard_index,
            position: self.cursor.offset,
        }
    }

    /// The cursor of the next read (what a shard iterator would encode).
    pub fn cursor(&self) -> &ShardCursor {
        &self.cursor
    }

    /// Whether the end of the shard has been handed out.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn stats(&self) -> Arc<ReaderStats> {
        self.stats.clone()
    }

    fn classify(&self, e: StreamsError) -> ConsumeError {
        match e {
            StreamsError::StreamNotFound { .. } => ConsumeError::StreamDeleted {
                stream: self.cursor.stream.clone(),
            },
            StreamsError::ShardNotFound { .. } => ConsumeError::ShardExpired {
                stream: self.cursor.stream.clone(),
                shard_id: self.shard_id(),
            },
            e => ConsumeError::Streams(e),
        }
    }

    /// One read, on the blocking pool. The reader's position moves only once the read is back,
    /// so dropping this future loses nothing.
    async fn read_once(&mut self) -> Result<ShardBatch, ConsumeError> {
        let streams = self.streams.clone();
        let cursor = self.cursor.clone();
        let (records_max, bytes_max) =
            (self.options.batch_records_max, self.options.batch_bytes_max);
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        let result = blocking(move || streams.read(&cursor, records_max, bytes_max, false))
            .await?
            .map_err(|e| self.classify(e))?;
        // The log reads from the trim horizon when asked for less: a gap means retention
        // removed records this reader had not seen.
        let got = result
            .records
            .first()
            .map_or(result.continuation.position, |(seq, _)| seq.position - 1);
        assert!(got >= self.cursor.offset, "a read never goes backwards");
        if got > self.cursor.offset {
            let horizon = SequenceNumber {
                position: got,
                ..self.position()
            };
            if !self.floating && self.options.on_trimmed == OnTrimmed::Fail {
                return Err(ConsumeError::Trimmed {
                    stream: self.cursor.stream.clone(),
                    shard_id: self.shard_id(),
                    after: self.position(),
                    horizon,
                });
            }
            tracing::debug!(stream = %self.cursor.stream, shard = %self.shard_id(), from = self.cursor.offset, to = got, "reader skipped records trimmed by retention");
        }
        self.floating = false;
        let end = match result.next {
            Some(next) => {
                self.cursor = next;
                None
            }
            None => {
                self.ended = true;
                self.cursor.offset = result.continuation.position;
                Some(ShardEnd {
                    child_shards: result.child_shards,
                })
            }
        };
        self.stats
            .records
            .fetch_add(result.records.len() as u64, Ordering::Relaxed);
        Ok(ShardBatch {
            shard_id: self.shard_id(),
            records: result.records,
            continuation: result.continuation,
            millis_behind_latest: result.millis_behind_latest,
            end,
        })
    }

    /// The next batch: waits until the shard has records past the reader (woken by their
    /// commit) or has ended. `None` once the end has been handed out.
    pub async fn next_batch(&mut self) -> Result<Option<ShardBatch>, ConsumeError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            // Mark what has been seen before reading: anything durable after this wakes us.
            self.signal.borrow_and_update();
            let batch = self.read_once().await?;
            if !batch.records.is_empty() || batch.end.is_some() {
                return Ok(Some(batch));
            }
            if self.signal.changed().await.is_err() {
                // The shard itself is gone (its stream deleted, or it expired): the read says
                // which.
                let batch = self.read_once().await?;
                if !batch.records.is_empty() || batch.end.is_some() {
                    return Ok(Some(batch));
                }
                return Err(ConsumeError::ShardExpired {
                    stream: self.cursor.stream.clone(),
                    shard_id: self.shard_id(),
                });
            }
        }
    }

    /// One read without waiting: a batch, possibly empty (a subscription's first event and
    /// heartbeats). `None` once the end has been handed out.
    pub async fn read_now(&mut self) -> Result<Option<ShardBatch>, ConsumeError> {
        if self.ended {
            return Ok(None);
        }
        self.signal.borrow_and_update();
        self.read_once().await.map(Some)
    }

    /// Resolves once the shard may have records past the reader, or has ended or gone (then
    /// the next read says so). For callers that wait on more than the reader in one `select!`.
    pub async fn wait(&mut self) {
        if !self.ended && self.signal.has_changed().is_ok_and(|c| !c) {
            let _ = self.signal.changed().await;
        }
    }

    /// Moves the reader to a task that reads ahead into a channel of `capacity` batches; the
    /// task reads a batch only once the channel has room for it, so at most `capacity`
    /// batches are ever buffered. The channel ends after the shard's end or an error, and
    /// the task stops when the receiver is dropped. Needs a tokio runtime.
    pub fn into_channel(
        mut self,
        capacity: usize,
    ) -> mpsc::Receiver<Result<ShardBatch, ConsumeError>> {
        assert!(capacity > 0);
        let (tx, rx) = mpsc::channel(capacity);
        tokio::spawn(async move {
            loop {
                let Ok(permit) = tx.reserve().await else {
                    return;
                };
                let next = tokio::select! {
                    next = self.next_batch() => next,
                    _ = tx.closed() => return,
                };
                match next {
                    Ok(Some(batch)) => {
                        let end = batch.end.is_some();
                        permit.send(Ok(batch));
                        if end {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        permit.send(Err(e));
                        return;
                    }
                }
            }
        });
        rx
    }
}

/// Where a [`StreamConsumer`] starts in shards it has no checkpoint for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPosition {
    /// Every shard from its oldest record, parents before children.
    TrimHorizon,
    /// Only what is put after the consumer first opens: at that first open every shard gets a
    /// checkpoint (open shards at their end, closed ones finished), so a restart resumes from
    /// there; shards made later are read from their start.
    Latest,
    /// Every shard from its first record that arrived at or after this time (ms since the
    /// epoch).
    AtTimestamp(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConsumerOptions {
    pub initial_position: InitialPosition,
    pub reader: ReaderOptions,
}

impl Default for StreamConsumerOptions {
    fn default() -> Self {
        StreamConsumerOptions {
            initial_position: InitialPosition::TrimHorizon,
            reader: ReaderOptions::default(),
        }
    }
}

/// What a consumer knows of its shards.
#[derive(Default)]
struct Lineage {
    /// Committed checkpoints, by shard index.
    checkpoints: BTreeMap<u32, Checkpoint>,
    /// Shards with a live lease.
    leased: BTreeSet<u32>,
}

impl Lineage {
    fn finished(&self, index: u32) -> bool {
        self.checkpoints.get(&index).is_some_and(|c| c.finished)
    }
}

struct Inner {
    streams: Arc<Streams>,
    name: Option<ConsumerName>,
    stream: String,
    stream_uid: u64,
    options: StreamConsumerOptions,
    lineage: Mutex<Lineage>,
    /// Told when a shard finishes or a lease is given back.
    changed: Notify,
    /// Commits one at a time, so memory follows the catalog's order.
    commits: tokio::sync::Mutex<()>,
}

impl Inner {
    fn lineage(&self) -> std::sync::MutexGuard<'_, Lineage> {
        self.lineage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn deleted(&self) -> ConsumeError {
        ConsumeError::StreamDeleted {
            stream: self.stream.clone(),
        }
    }

    /// The stream's shards now, or why the consumer cannot go on.
    fn shards(&self) -> Result<Vec<ShardMeta>, ConsumeError> {
        let stream = self
            .streams
            .get_serving(&self.stream)
            .map_err(|e| match e {
                StreamsError::StreamNotFound { .. } => self.deleted(),
                e => ConsumeError::Streams(e),
            })?;
        let meta = stream.meta();
        if meta.uid != self.stream_uid {
            return Err(self.deleted());
        }
        Ok(meta.shards.clone())
    }

    async fn commit(
        &self,
        checkpoints: Vec<ShardCheckpoint>,
        state: Vec<StateWrite>,
    ) -> Result<(), ConsumeError> {
        let _one_at_a_time = self.commits.lock().await;
        if let Some(name) = &self.name {
            let (streams, name, stream) = (self.streams.clone(), name.clone(), self.stream.clone());
            let rows = checkpoints.clone();
            blocking(move || streams.commit_checkpoints(&name, &stream, &rows, &state))
                .await?
                .map_err(|e| match e {
                    ConsumeError::Streams(StreamsError::StreamNotFound { .. }) => self.deleted(),
                    e => e,
                })?;
        }
        let mut lineage = self.lineage();
        let mut finished = false;
        for c in checkpoints {
            finished |= c.checkpoint.finished;
            lineage.checkpoints.insert(c.shard_id.0, c.checkpoint);
        }
        drop(lineage);
        if finished {
            self.changed.notify_waiters();
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(name) = &self.name {
            self.streams
                .open_consumers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&(name.as_str().to_string(), self.stream.clone()));
        }
    }
}

/// Follows a whole stream, parents before children; see the module documentation.
pub struct StreamConsumer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StreamConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConsumer")
            .field("name", &self.inner.name)
            .field("stream", &self.inner.stream)
            .finish()
    }
}

impl StreamConsumer {
    /// Opens the consumer `name` of `stream`, loading its checkpoints. With `name` `None` the
    /// checkpoints live only in memory (`sluice tail`): nothing is written, and a new consumer
    /// starts over from the initial position. One consumer of a name per stream may be open
    /// in a process at a time ([`ConsumeError::ConsumerBusy`]).
    pub async fn open(
        streams: Arc<Streams>,
        name: Option<ConsumerName>,
        stream: &str,
        options: StreamConsumerOptions,
    ) -> Result<StreamConsumer, ConsumeError> {
        assert!(options.reader.batch_records_max > 0 && options.reader.batch_bytes_max > 0);
        let (stream_uid, shards) = {
            let s = streams.get_serving(stream)?;
            let meta = s.meta();
            (meta.uid, meta.shards.clone())
        };
        if let Some(name) = &name {
            let fresh = streams
                .open_consumers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert((name.as_str().to_string(), stream.to_string()));
            if !fresh {
                return Err(ConsumeError::ConsumerBusy {
                    consumer: name.to_string(),
                    stream: stream.to_string(),
                });
            }
        }
        // From here on, dropping `inner` gives the name back.
        let inner = Arc::new(Inner {
            streams: streams.clone(),
            name: name.clone(),
            stream: stream.to_string(),
            stream_uid,
            options,
            lineage: Mutex::new(Lineage::default()),
            changed: Notify::new(),
            commits: tokio::sync::Mutex::new(()),
        });
        let loaded = match &name {
            Some(name) => {
                let (s, name, stream) = (streams.clone(), name.clone(), stream.to_string());
                blocking(move || s.load_checkpoints(&name, &stream)).await??
            }
            None => BTreeMap::new(),
        };
        inner.lineage().checkpoints = loaded.iter().map(|(id, c)| (id.0, *c)).collect();
        if loaded.is_empty() && options.initial_position == InitialPosition::Latest {
            // Pin LATEST down now, so that a restart resumes here rather than at a later end.
            let (s, stream) = (streams.clone(), stream.to_string());
            let pinned = blocking(move || -> Result<Vec<ShardCheckpoint>, StreamsError> {
                let mut out = Vec::with_capacity(shards.len());
                for shard in &shards {
                    let (position, finished) = match shard.closed_end_offset {
                        Some(end) => (end, true),
                        None => (
                            s.cursor(&stream, ShardId(shard.index), ShardStart::Latest)?
                                .offset,
                            false,
                        ),
                    };
                    out.push(ShardCheckpoint {
                        shard_id: ShardId(shard.index),
                        checkpoint: Checkpoint {
                            sequence_number: SequenceNumber {
                                shard_epoch: shard.epoch,
                                shard_index: shard.index,
                                position,
                            },
                            finished,
                        },
                    });
                }
                Ok(out)
            })
            .await??;
            inner.commit(pinned, Vec::new()).await?;
        }
        Ok(StreamConsumer { inner })
    }

    pub fn stream(&self) -> &str {
        &self.inner.stream
    }

    pub fn name(&self) -> Option<&ConsumerName> {
        self.inner.name.as_ref()
    }

    /// The committed checkpoints, by shard.
    pub fn checkpoints(&self) -> BTreeMap<ShardId, Checkpoint> {
        self.inner
            .lineage()
            .checkpoints
            .iter()
            .map(|(i, c)| (ShardId(*i), *c))
            .collect()
    }

    /// A handle that commits checkpoints of several shards, with the consumer's own state, in
    /// one transaction.
    pub fn checkpointer(&self) -> Checkpointer {
        Checkpointer {
            inner: self.inner.clone(),
        }
    }

    /// The next shard to read: waits until a shard that is neither leased nor finished has
    /// all its parents finished (parents removed past retention count as finished). Shards
    /// come lowest index first. Ends with [`ConsumeError::StreamDeleted`] once the stream is
    /// gone; it learns that when it is woken (a lease given back or a shard finished), so
    /// drop leases whose readers fail.
    pub async fn next_lease(&self) -> Result<ShardLease, ConsumeError> {
        loop {
            let woken = self.inner.changed.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Some(lease) = self.try_lease().await? {
                return Ok(lease);
            }
            woken.await;
        }
    }

    /// The next shard to read if one is ready now.
    pub async fn try_lease(&self) -> Result<Option<ShardLease>, ConsumeError> {
        loop {
            let shards = self.inner.shards()?;
            let present: HashSet<u32> = shards.iter().map(|s| s.index).collect();
            let picked = {
                let mut lineage = self.inner.lineage();
                let ready = shards
                    .iter()
                    .find(|s| {
                        !lineage.finished(s.index)
                            && !lineage.leased.contains(&s.index)
                            && crate::lineage::is_ready(
                                [s.parent, s.adjacent_parent],
                                |p| present.contains(&p),
                                |p| lineage.finished(p),
                            )
                    })
                    .map(|s| s.index);
                ready.map(|index| {
                    lineage.leased.insert(index);
                    let start = match lineage.checkpoints.get(&index) {
                        Some(c) => ShardStart::AfterSequence(c.sequence_number),
                        // Under LATEST every shard that existed at the first open has a
                        // checkpoint: shards without one are newer, read from their start.
                        None => match self.inner.options.initial_position {
                            InitialPosition::TrimHorizon | InitialPosition::Latest => {
                                ShardStart::TrimHorizon
                            }
                            InitialPosition::AtTimestamp(ms) => ShardStart::AtTimestamp(ms),
                        },
                    };
                    (ShardId(index), start)
                })
            };
            let Some((shard_id, start)) = picked else {
                return Ok(None);
            };
            // Given back if opening fails.
            let guard = LeaseGuard {
                inner: self.inner.clone(),
                shard_id,
            };
            let opened = ShardReader::open(
                self.inner.streams.clone(),
                &self.inner.stream,
                shard_id,
                start,
                self.inner.options.reader,
            )
            .await;
            match opened {
                Ok(reader) => return Ok(Some(ShardLease { reader, guard })),
                Err(ConsumeError::Streams(StreamsError::ShardNotFound { .. }))
                    if !self.inner.shards()?.iter().any(|s| s.index == shard_id.0) =>
                {
                    // Removed past retention between the look-up and the open: look again.
                    tracing::warn!(stream = %self.inner.stream, shard = %shard_id, "shard expired before it was read");
                    continue;
                }
                Err(ConsumeError::Streams(StreamsError::StreamNotFound { .. })) => {
                    return Err(self.inner.deleted())
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Gives a shard back to its consumer when its lease ends.
struct LeaseGuard {
    inner: Arc<Inner>,
    shard_id: ShardId,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.inner.lineage().leased.remove(&self.shard_id.0);
        self.inner.changed.notify_waiters();
    }
}

/// One shard handed to a worker by a [`StreamConsumer`]: read it, process each batch, commit
/// it. Dropping the lease gives the shard back; the next lease of it starts at its last
/// commit.
pub struct ShardLease {
    reader: ShardReader,
    guard: LeaseGuard,
}

impl std::fmt::Debug for ShardLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardLease")
            .field("reader", &self.reader)
            .finish()
    }
}

impl ShardLease {
    pub fn shard_id(&self) -> ShardId {
        self.guard.shard_id
    }

    pub fn reader(&mut self) -> &mut ShardReader {
        &mut self.reader
    }

    /// See [`ShardReader::next_batch`].
    pub async fn next_batch(&mut self) -> Result<Option<ShardBatch>, ConsumeError> {
        self.reader.next_batch().await
    }

    /// Commits `batch` as processed (durably, for a named consumer). Committing the shard's
    /// end batch finishes the shard and lets its children be leased.
    pub async fn commit(&self, batch: &ShardBatch) -> Result<(), ConsumeError> {
        assert_eq!(
            batch.shard_id,
            self.shard_id(),
            "a lease commits its own shard"
        );
        self.guard
            .inner
            .commit(vec![batch.checkpoint()], Vec::new())
            .await
    }
}

/// Commits checkpoints of several shards of one consumer together, with changes to the
/// consumer's own state ([`Streams::consumer_state`]), in one catalog transaction.
#[derive(Clone)]
pub struct Checkpointer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl Checkpointer {
    pub async fn commit(
        &self,
        checkpoints: Vec<ShardCheckpoint>,
        state: Vec<StateWrite>,
    ) -> Result<(), ConsumeError> {
        self.inner.commit(checkpoints, state).await
    }
}
