//! The stream registry: lifecycle, metadata changes and the data path.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::sync::watch;

use sluice_log::{Clock, Record, StoredRecord};

use crate::catalog::Catalog;
use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::meta::{ShardMeta, StreamMeta, StreamMode, StreamSpec, StreamStatus};
use crate::names::{ShardId, StreamName};
use crate::routing::{even_ranges, hash_key_of};
use crate::sequence::SequenceNumber;
use crate::shard_log::{LocalLogs, ShardLog, ShardLogStore};
use crate::throughput::ShardThroughput;

/// Tags one stream may carry.
pub const TAGS_MAX: usize = 50;

/// Where a record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutResult {
    pub shard_id: ShardId,
    pub sequence_number: SequenceNumber,
}

pub type PutOutcome = Result<PutResult, StreamsError>;

/// A reader's position in one shard: what a shard iterator stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCursor {
    pub stream: String,
    pub stream_uid: u64,
    pub shard_index: u32,
    pub offset: u64,
}

/// Where a new cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardStart {
    TrimHorizon,
    Latest,
    AtSequence(SequenceNumber),
    AfterSequence(SequenceNumber),
    AtTimestamp(i64),
}

/// Records read from a shard, with their sequence numbers.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub records: Vec<(SequenceNumber, StoredRecord)>,
    /// Where to read next; `None` once a closed shard has been read to its end.
    pub next: Option<ShardCursor>,
    pub millis_behind_latest: i64,
    /// Where the read stopped, as a sequence number to read AFTER from: the last record's, or,
    /// with no records, the point the read started from.
    pub continuation: SequenceNumber,
    /// Once a closed shard has been read to its end: the shards that took over its range.
    pub child_shards: Vec<ShardMeta>,
}

#[derive(Debug, Clone)]
pub struct ShardView {
    pub meta: ShardMeta,
    pub starting_sequence_number: SequenceNumber,
    pub ending_sequence_number: Option<SequenceNumber>,
}

impl ShardView {
    pub fn shard_id(&self) -> ShardId {
        ShardId(self.meta.index)
    }
}

#[derive(Debug, Clone)]
pub struct StreamView {
    pub meta: StreamMeta,
    pub shards: Vec<ShardView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsSummary {
    pub shard_limit: u32,
    pub open_shard_count: u32,
    pub on_demand_stream_count: u32,
    pub on_demand_stream_count_limit: u32,
}

pub(crate) struct Shard {
    pub index: u32,
    pub epoch: u64,
    pub log: Arc<dyn ShardLog>,
    /// One past the last offset once the shard is closed; `u64::MAX` while open.
    pub closed_end: AtomicU64,
    pub throughput: ShardThroughput,
    /// The end offset, sent each time records become durable (and when the shard closes):
    /// what subscriptions wait on.
    pub end_tx: watch::Sender<u64>,
}

impl Shard {
    pub fn closed_end(&self) -> Option<u64> {
        match self.closed_end.load(Ordering::Acquire) {
            u64::MAX => None,
            end => Some(end),
        }
    }

    /// Closes the shard at `end`: readers stop there, subscriptions are woken, and the
    /// writer thread ends (nothing is routed to a closed shard; reads need no writer).
    pub fn close_at(&self, end: u64) {
        self.closed_end.store(end, Ordering::Release);
        self.end_tx.send_replace(end);
        self.log.close();
    }
}

/// The shards of a stream as the data path sees them: replaced whole by a reshard.
pub(crate) struct Topology {
    /// Every shard that still has a log, open or closed, by index.
    pub shards: BTreeMap<u32, Arc<Shard>>,
    /// Open shards sorted by range start: `(start, end, shard index)`.
    pub routes: Vec<(u128, u128, u32)>,
}

impl Topology {
    pub fn new(shards: BTreeMap<u32, Arc<Shard>>, meta: &StreamMeta) -> Topology {
        let routes = meta.open_ranges();
        Topology { shards, routes }
    }

    fn route(&self, hash_key: u128) -> u32 {
        let i = self.routes.partition_point(|r| r.0 <= hash_key);
        assert!(i > 0, "open shards cover the whole hash-key space");
        let (start, end, index) = self.routes[i - 1];
        assert!(start <= hash_key && hash_key <= end);
        index
    }
}

pub(crate) struct Stream {
    pub meta: RwLock<StreamMeta>,
    /// Puts hold the read side from routing until their records are queued, so a reshard,
    /// which takes the write side, sees every record routed to a parent before it closes it.
    pub topo: RwLock<Arc<Topology>>,
    pub scaling: Mutex<crate::reshard::ScalingState>,
}

impl Stream {
    pub fn meta(&self) -> std::sync::RwLockReadGuard<'_, StreamMeta> {
        self.meta.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn topo(&self) -> Arc<Topology> {
        self.topo
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

// Locks here recover from poisoning: every change to the state they guard is made with a
// single assignment after the catalog write, so a panicking request leaves no half-done change
// behind, and must not take the whole registry down with it.

/// Every stream of one server.
pub struct Streams {
    pub(crate) config: StreamsConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) catalog: Catalog,
    pub(crate) logs: Arc<dyn ShardLogStore>,
    pub(crate) streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    /// Serializes metadata changes, so checks (limits, existence) and writes are atomic.
    pub(crate) changes: Mutex<()>,
    /// Named stream consumers open in this process, as (consumer, stream): one of each.
    pub(crate) open_consumers: Mutex<HashSet<(String, String)>>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("data_dir", &self.config.data_dir)
            .finish()
    }
}

impl Streams {
    /// Opens the registry in `config.data_dir`: loads the catalog, recovers every shard log,
    /// finishes deletions a crash interrupted and removes data no stream owns.
    pub fn open(config: StreamsConfig, clock: Arc<dyn Clock>) -> Result<Streams, StreamsError> {
        let logs = LocalLogs::new(
            config.data_dir.join("streams"),
            config.log.clone(),
            clock.clone(),
        )?;
        Streams::open_with_logs(config, clock, Arc::new(logs))
    }

    /// Like [`Streams::open`], with the shard logs kept by `logs` (see [`crate::shard_log`]);
    /// the catalog stays in `config.data_dir`.
    pub fn open_with_logs(
        config: StreamsConfig,
        clock: Arc<dyn Clock>,
        logs: Arc<dyn ShardLogStore>,
    ) -> Result<Streams, StreamsError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StreamsError::Log(sluice_log::LogError::Io {
                path: config.data_dir.clone(),
                source: e,
            })
        })?;
        let catalog = Catalog::open(&config.data_dir.join("catalog.redb"))?;
        let registry = Streams {
            config,
            clock,
            catalog,
            logs,
            streams: RwLock::new(BTreeMap::new()),
            changes: Mutex::new(()),
            open_consumers: Mutex::new(HashSet::new()),
        };
        let mut known = HashSet::new();
        for meta in registry.catalog.load_all()? {
            known.insert(meta.uid);
            if meta.status == StreamStatus::Deleting {
                registry.catalog.remove(&meta.name)?;
                registry.logs.remove_stream(meta.uid);
                continue;
            }
            let stream = registry.open_stream(meta, false)?;
            let name = stream.meta().name.clone();
            registry
                .streams
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name, stream);
        }
        registry.logs.retain_streams(&known);
        // Checkpoints a consumer committed while their stream was being deleted.
        let live = registry
            .streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, s)| (name.clone(), s.meta().uid))
            .collect();
        let stale = registry.catalog.remove_stale_checkpoints(&live)?;
        if stale > 0 {
            tracing::info!(rows = stale, "removed checkpoints of deleted streams");
        }
        Ok(registry)
    }

    pub fn config(&self) -> &StreamsConfig {
        &self.config
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Opens (creating if needed) the log of one shard and wires its end-offset signal.
    pub(crate) fn open_shard(
        &self,
        uid: u64,
        meta: &ShardMeta,
        fresh: bool,
    ) -> Result<Arc<Shard>, StreamsError> {
        // Fresh: anything under its name was left by a reshard that crashed before its
        // catalog write, and nothing was acknowledged into it.
        let log = self.logs.open(uid, meta.index, fresh)?;
        let (end_tx, _) = watch::channel(log.end_offset());
        let shard = Arc::new(Shard {
            index: meta.index,
            epoch: meta.epoch,
            log,
            closed_end: AtomicU64::new(meta.closed_end_offset.unwrap_or(u64::MAX)),
            throughput: ShardThroughput::new(&self.config.throughput, self.now_ms()),
            end_tx,
        });
        let weak = Arc::downgrade(&shard);
        shard.log.set_listener(Box::new(move |end| {
            if let Some(s) = weak.upgrade() {
                s.end_tx.send_replace(end);
            }
        }));
        Ok(shard)
    }

    fn open_stream(&self, mut meta: StreamMeta, fresh: bool) -> Result<Arc<Stream>, StreamsError> {
        let mut shards = BTreeMap::new();
        for s in &meta.shards {
            let shard = self.open_shard(meta.uid, s, fresh)?;
            if s.closed_end_offset.is_some() {
                shard.log.close();
            }
            shards.insert(s.index, shard);
        }
        if meta.next_shard_index == 0 {
            meta.next_shard_index = meta.shards.iter().map(|s| s.index + 1).max().unwrap_or(0);
        }
        // Shard logs the catalog does not know: a reshard that crashed before its catalog
        // write, or a closed shard whose removal was cut short.
        let known: BTreeSet<u32> = shards.keys().copied().collect();
        self.logs.retain_shards(meta.uid, &known);
        let topo = Topology::new(shards, &meta);
        Ok(Arc::new(Stream {
            meta: RwLock::new(meta),
            topo: RwLock::new(Arc::new(topo)),
            scaling: Mutex::new(Default::default()),
        }))
    }

    pub(crate) fn effective_status(&self, meta: &StreamMeta, now: i64) -> StreamStatus {
        match meta.status {
            StreamStatus::Creating if now >= meta.status_ms + self.config.create_delay_ms => {
                StreamStatus::Active
            }
            StreamStatus::Updating if now >= meta.status_ms + self.config.update_delay_ms => {
                StreamStatus::Active
            }
            s => s,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Result<Arc<Stream>, StreamsError> {
        self.streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| StreamsError::StreamNotFound {
                name: name.to_string(),
            })
    }

    /// The stream, if it is ACTIVE (or UPDATING, which serves data too).
    pub(crate) fn get_serving(&self, name: &str) -> Result<Arc<Stream>, StreamsError> {
        let stream = self.get(name)?;
        let status = self.effective_status(&stream.meta(), self.now_ms());
        match status {
            StreamStatus::Active | StreamStatus::Updating => Ok(stream),
            StreamStatus::Deleting => Err(StreamsError::StreamNotFound {
                name: name.to_string(),
            }),
            StreamStatus::Creating => Err(StreamsError::StreamNotActive {
                name: name.to_string(),
                status,
            }),
        }
    }

    pub fn create_stream(&self, name: &StreamName, spec: StreamSpec) -> Result<(), StreamsError> {
        let StreamSpec {
            shard_count,
            mode,
            max_record_size_kib,
            tags,
        } = spec;
        assert!(shard_count > 0);
        if tags.len() > TAGS_MAX {
            return Err(StreamsError::TooManyTags {
                stream: name.to_string(),
                count: tags.len(),
                limit: TAGS_MAX,
            });
        }
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        if self
            .streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name.as_str())
        {
            return Err(StreamsError::StreamExists {
                name: name.to_string(),
            });
        }
        let open = self.open_shard_count();
        if open + shard_count > self.config.shard_limit {
            return Err(StreamsError::ShardLimitExceeded {
                requested: shard_count,
                open,
                limit: self.config.shard_limit,
            });
        }
        if mode == StreamMode::OnDemand
            && self.on_demand_count() >= self.config.on_demand_stream_limit
        {
            return Err(StreamsError::OnDemandLimitExceeded {
                limit: self.config.on_demand_stream_limit,
            });
        }
        let now = self.now_ms();
        let uid = self.catalog.next_id("stream")?;
        let shards = even_ranges(shard_count)
            .into_iter()
            .enumerate()
            .map(|(i, (start, end))| ShardMeta {
                index: i as u32,
                hash_start: start,
                hash_end: end,
                parent: None,
                adjacent_parent: None,
                epoch: now as u64,
                created_ms: now,
                closed_end_offset: None,
                closed_ms: None,
            })
            .collect();
        let meta = StreamMeta {
            name: name.to_string(),
            uid,
            status: StreamStatus::Creating,
            status_ms: now,
            created_ms: now,
            retention_hours: 24,
            mode,
            shards,
            tags,
            max_record_size_kib,
            next_shard_index: shard_count,
            consumers: Vec::new(),
            shard_count_updates_ms: Vec::new(),
            shard_level_metrics: Vec::new(),
        };
        // Shard directories first: a crash before the catalog write leaves only orphan
        // directories, removed on the next open.
        let stream = self.open_stream(meta.clone(), true)?;
        self.catalog.put(&meta)?;
        self.streams
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), stream);
        tracing::info!(stream = %name, shards = shard_count, "stream created");
        Ok(())
    }

    /// Deletes a stream. With registered consumers, only when `enforce_consumer_deletion`.
    pub fn delete_stream(
        &self,
        name: &str,
        enforce_consumer_deletion: bool,
    ) -> Result<(), StreamsError> {
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let stream = self.get(name)?;
        {
            let mut meta = stream.meta.write().unwrap_or_else(PoisonError::into_inner);
            if meta.status == StreamStatus::Deleting {
                return Ok(());
            }
            let mut settled = meta.clone();
            self.settle_consumers(&mut settled, self.now_ms());
            if !settled.consumers.is_empty() && !enforce_consumer_deletion {
                return Err(StreamsError::StreamHasConsumers {
                    name: name.to_string(),
                });
            }
            let mut next = meta.clone();
            next.status = StreamStatus::Deleting;
            next.status_ms = self.now_ms();
            self.catalog.put(&next)?;
            *meta = next;
        }
        // Wake waiting readers: their next read finds the stream gone.
        for s in stream.topo().shards.values() {
            s.end_tx.send_modify(|_| {});
        }
        if self.config.delete_delay_ms <= 0 {
            self.finish_delete(name)?;
        }
        tracing::info!(stream = %name, "stream deleted");
        Ok(())
    }

    fn finish_delete(&self, name: &str) -> Result<(), StreamsError> {
        let Some(stream) = self
            .streams
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
        else {
            return Ok(());
        };
        let uid = stream.meta().uid;
        for s in stream.topo().shards.values() {
            s.log.close();
            s.close_at(s.log.end_offset());
        }
        self.catalog.remove(name)?;
        self.logs.remove_stream(uid);
        Ok(())
    }

    /// Moves time-driven state forward: CREATING and UPDATING streams become ACTIVE, DELETING
    /// ones go, consumers finish registering and deregistering, records past retention are
    /// trimmed, closed shards past retention are dropped, and ON_DEMAND streams are scaled.
    /// The server calls it periodically.
    pub fn tick(&self) {
        let now = self.now_ms();
        let streams: Vec<Arc<Stream>> = self
            .streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for stream in streams {
            let (name, status) = {
                let m = stream.meta();
                (m.name.clone(), m.status)
            };
            let effective = self.effective_status(&stream.meta(), now);
            match status {
                StreamStatus::Deleting
                    if now >= stream.meta().status_ms + self.config.delete_delay_ms =>
                {
                    let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Err(e) = self.finish_delete(&name) {
                        tracing::error!(stream = %name, error = %e, "could not finish deleting stream");
                    }
                    continue;
                }
                StreamStatus::Deleting => continue,
                _ => {}
            }
            let settled = self.settle(&stream, now);
            if status != effective || settled {
                let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
                let mut m = stream.meta.write().unwrap_or_else(PoisonError::into_inner);
                let mut next = m.clone();
                next.status = self.effective_status(&next, now);
                if next.status != m.status {
                    next.status_ms = now;
                }
                self.settle_consumers(&mut next, now);
                if next != *m {
                    match self.catalog.put(&next) {
                        Ok(()) => *m = next,
                        Err(e) => {
                            tracing::error!(stream = %name, error = %e, "could not record a state change")
                        }
                    }
                }
            }
            self.apply_retention(&stream, now);
            if effective == StreamStatus::Active {
                self.scale_on_demand(&stream, now);
            }
        }
    }

    /// Whether any consumer of the stream has a state change due.
    fn settle(&self, stream: &Stream, now: i64) -> bool {
        let mut m = stream.meta().clone();
        self.settle_consumers(&mut m, now)
    }

    fn apply_retention(&self, stream: &Stream, now: i64) {
        let (name, retention_ms) = {
            let m = stream.meta();
            (m.name.clone(), m.retention_hours as i64 * 3_600_000)
        };
        let cutoff = now - retention_ms;
        for shard in stream.topo().shards.values() {
            if let Err(e) = shard.log.trim_before(cutoff) {
                tracing::error!(stream = %name, shard = shard.index, error = %e, "retention trim failed");
            }
        }
        // Closed shards go once everything in them is past retention.
        let expired: Vec<u32> = stream
            .meta()
            .shards
            .iter()
            .filter(|s| s.closed_ms.is_some_and(|c| c <= cutoff))
            .map(|s| s.index)
            .collect();
        if expired.is_empty() {
            return;
        }
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut m = stream.meta.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = m.clone();
        next.shards.retain(|s| !expired.contains(&s.index));
        if let Err(e) = self.catalog.put(&next) {
            tracing::error!(stream = %name, error = %e, "could not drop expired shards");
            return;
        }
        let mut topo = stream.topo.write().unwrap_or_else(PoisonError::into_inner);
        let mut shards = topo.shards.clone();
        for index in &expired {
            if let Some(s) = shards.remove(index) {
                s.log.close();
                self.logs.remove_shard(next.uid, *index);
            }
            tracing::info!(stream = %name, shard = %ShardId(*index), "closed shard past retention removed");
        }
        *topo = Arc::new(Topology::new(shards, &next));
        *m = next;
    }

    pub(crate) fn open_shard_count(&self) -> u32 {
        self.streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|s| {
                s.meta
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .open_shard_count()
            })
            .sum()
    }

    pub(crate) fn on_demand_count(&self) -> u32 {
        self.streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|s| {
                s.meta.read().unwrap_or_else(PoisonError::into_inner).mode == StreamMode::OnDemand
            })
            .count() as u32
    }

    pub fn limits(&self) -> LimitsSummary {
        LimitsSummary {
            shard_limit: self.config.shard_limit,
            open_shard_count: self.open_shard_count(),
            on_demand_stream_count: self.on_demand_count(),
            on_demand_stream_count_limit: self.config.on_demand_stream_limit,
        }
    }

    /// Every stream's name, in order.
    pub fn names(&self) -> Vec<String> {
        self.streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    pub fn describe(&self, name: &str) -> Result<StreamView, StreamsError> {
        let stream = self.get(name)?;
        let now = self.now_ms();
        let mut meta = stream.meta().clone();
        meta.status = self.effective_status(&meta, now);
        self.settle_consumers(&mut meta, now);
        let shards = meta.shards.iter().map(shard_view).collect();
        Ok(StreamView { meta, shards })
    }

    /// Changes the retention period; `increase` says which of the two AWS calls asked.
    pub fn set_retention(
        &self,
        name: &str,
        hours: u32,
        increase: bool,
    ) -> Result<(), StreamsError> {
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let stream = self.get_serving(name)?;
        let mut meta = stream.meta.write().unwrap_or_else(PoisonError::into_inner);
        let current = meta.retention_hours;
        if increase && hours < current {
            return Err(StreamsError::RetentionWrongDirection {
                stream: name.to_string(),
                requested_hours: hours,
                current_hours: current,
                direction: "shorter",
            });
        }
        if !increase && hours > current {
            return Err(StreamsError::RetentionWrongDirection {
                stream: name.to_string(),
                requested_hours: hours,
                current_hours: current,
                direction: "longer",
            });
        }
        let mut next = meta.clone();
        next.retention_hours = hours;
        self.catalog.put(&next)?;
        *meta = next;
        Ok(())
    }

    pub fn add_tags(&self, name: &str, tags: BTreeMap<String, String>) -> Result<(), StreamsError> {
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let stream = self.get(name)?;
        let mut meta = stream.meta.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = meta.clone();
        next.tags.extend(tags);
        if next.tags.len() > TAGS_MAX {
            return Err(StreamsError::TooManyTags {
                stream: name.to_string(),
                count: next.tags.len(),
                limit: TAGS_MAX,
            });
        }
        self.catalog.put(&next)?;
        *meta = next;
        Ok(())
    }

    /// Records which shard-level metrics the stream has (enhanced monitoring), durably.
    pub fn set_shard_level_metrics(
        &self,
        name: &str,
        metrics: Vec<String>,
    ) -> Result<(), StreamsError> {
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let stream = self.get(name)?;
        let mut meta = stream.meta.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = meta.clone();
        next.shard_level_metrics = metrics;
        self.catalog.put(&next)?;
        *meta = next;
        Ok(())
    }

    pub fn remove_tags(&self, name: &str, keys: &[String]) -> Result<(), StreamsError> {
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let stream = self.get(name)?;
        let mut meta = stream.meta.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = meta.clone();
        for k in keys {
            next.tags.remove(k);
        }
        self.catalog.put(&next)?;
        *meta = next;
        Ok(())
    }

    /// Routes each record to its shard and appends it. Stream-level problems, and a record
    /// larger than the stream's maximum record size (partition key + data), are returned at
    /// once, before anything is written; otherwise `done` is called once, with one outcome per
    /// record, in request order, when every shard involved has made its records durable.
    /// With throughput enforcement on, records over their shard's quota fail alone with
    /// [`StreamsError::ThroughputExceeded`]; the others are written.
    pub fn put(
        &self,
        name: &str,
        records: Vec<Record>,
        done: Box<dyn FnOnce(Vec<PutOutcome>) + Send>,
    ) -> Result<(), StreamsError> {
        let stream = self.get_serving(name)?;
        let limit_kib = stream.meta().max_record_size_kib;
        if let Some(r) = records
            .iter()
            .find(|r| r.data.len() + r.partition_key.len() > limit_kib as usize * 1024)
        {
            return Err(StreamsError::RecordTooLarge {
                data_bytes: r.data.len(),
                limit_kib,
            });
        }
        let count = records.len();
        if count == 0 {
            done(Vec::new());
            return Ok(());
        }
        // Held until every record is queued: see `Stream::topo`.
        let topo = stream.topo.read().unwrap_or_else(PoisonError::into_inner);
        // Group by shard, remembering each record's place in the request.
        let mut groups: BTreeMap<u32, (Vec<usize>, Vec<Record>)> = BTreeMap::new();
        for (i, r) in records.into_iter().enumerate() {
            let hash = r
                .explicit_hash_key
                .unwrap_or_else(|| hash_key_of(&r.partition_key));
            let g = groups.entry(topo.route(hash)).or_default();
            g.0.push(i);
            g.1.push(r);
        }
        struct Pending {
            results: Vec<Option<PutOutcome>>,
            groups_left: usize,
            done: Option<Box<dyn FnOnce(Vec<PutOutcome>) + Send>>,
        }
        impl Pending {
            fn finish_group(&mut self) {
                self.groups_left -= 1;
                if self.groups_left == 0 {
                    // `done` is taken here only, once, when the last group finishes.
                    let Some(done) = self.done.take() else {
                        return;
                    };
                    // Every group sets its records' outcomes before it finishes.
                    let results = std::mem::take(&mut self.results)
                        .into_iter()
                        .enumerate()
                        .map(|(i, r)| {
                            r.unwrap_or_else(|| {
                                Err(StreamsError::internal(format!(
                                    "record {i} of a put has no outcome"
                                )))
                            })
                        })
                        .collect();
                    done(results);
                }
            }
        }
        let pending = Arc::new(Mutex::new(Pending {
            results: (0..count).map(|_| None).collect(),
            groups_left: groups.len(),
            done: Some(done),
        }));
        let now = self.now_ms();
        let enforce = self.config.throughput.enforce;
        for (shard_index, (mut places, mut recs)) in groups {
            // Routes come from this same topology, so the shard is there; if it were not, its
            // records fail alone instead of the server panicking.
            let Some(shard) = topo.shards.get(&shard_index).cloned() else {
                let mut p = pending.lock().unwrap_or_else(PoisonError::into_inner);
                for place in places {
                    p.results[place] = Some(Err(StreamsError::internal(format!(
                        "stream {name} routes to shard {shard_index}, which it does not have"
                    ))));
                }
                p.finish_group();
                continue;
            };
            let size = |r: &Record| r.data.len() + r.partition_key.len();
            shard.throughput.offer(
                recs.len() as u64,
                recs.iter().map(size).sum::<usize>() as u64,
            );
            let (epoch, shard_id) = (shard.epoch, ShardId(shard_index));
            if enforce {
                let admitted = shard.throughput.admit_writes(recs.iter().map(size), now);
                if admitted.iter().any(|a| !a) {
                    let mut p = pending.lock().unwrap_or_else(PoisonError::into_inner);
                    // One verdict per record, in order.
                    let mut kept_places = Vec::with_capacity(places.len());
                    let mut kept_recs = Vec::with_capacity(recs.len());
                    for ((place, rec), admit) in places.into_iter().zip(recs).zip(admitted) {
                        if admit {
                            kept_places.push(place);
                            kept_recs.push(rec);
                        } else {
                            p.results[place] = Some(Err(StreamsError::ThroughputExceeded {
                                stream: name.to_string(),
                                shard_id: shard_id.to_string(),
                                write: true,
                            }));
                        }
                    }
                    places = kept_places;
                    recs = kept_recs;
                    if recs.is_empty() {
                        p.finish_group();
                        continue;
                    }
                }
            }
            let p = pending.clone();
            let places_for_busy = places.clone();
            let completion: sluice_log::Completion = Box::new(move |outcome| {
                let mut p = p.lock().unwrap_or_else(PoisonError::into_inner);
                match outcome {
                    Ok(ack) => {
                        for (k, place) in places.into_iter().enumerate() {
                            let sequence_number = SequenceNumber::of_record(
                                epoch,
                                shard_index,
                                ack.first_offset + k as u64,
                            );
                            p.results[place] = Some(Ok(PutResult {
                                shard_id,
                                sequence_number,
                            }));
                        }
                    }
                    Err(e) => {
                        for place in places {
                            p.results[place] = Some(Err(log_error_copy(&e)));
                        }
                    }
                }
                p.finish_group();
            });
            if let Err((_, _completion)) = shard.log.try_append(recs, completion) {
                let mut p = pending.lock().unwrap_or_else(PoisonError::into_inner);
                for place in places_for_busy {
                    p.results[place] = Some(Err(StreamsError::Busy));
                }
                p.finish_group();
            }
        }
        Ok(())
    }

    fn shard(topo: &Topology, name: &str, shard_id: ShardId) -> Result<Arc<Shard>, StreamsError> {
        topo.shards
            .get(&shard_id.0)
            .cloned()
            .ok_or_else(|| StreamsError::ShardNotFound {
                stream: name.to_string(),
                shard_id: shard_id.to_string(),
            })
    }

    /// A cursor for reading `shard_id` from `start`.
    pub fn cursor(
        &self,
        name: &str,
        shard_id: ShardId,
        start: ShardStart,
    ) -> Result<ShardCursor, StreamsError> {
        let stream = self.get_serving(name)?;
        let shard = Self::shard(&stream.topo(), name, shard_id)?;
        let in_shard = |seq: SequenceNumber| {
            if seq.shard_index == shard.index && seq.shard_epoch == shard.epoch {
                Ok(seq.position)
            } else {
                Err(StreamsError::SequenceNotInShard {
                    stream: name.to_string(),
                    shard_id: shard_id.to_string(),
                    sequence_number: seq.to_string(),
                })
            }
        };
        let offset = match start {
            ShardStart::TrimHorizon => shard.log.start_offset(),
            ShardStart::Latest => shard.log.end_offset(),
            // Position p is the point just after record p - 1: at record p - 1, or after it.
            ShardStart::AtSequence(seq) => in_shard(seq)?.saturating_sub(1),
            ShardStart::AfterSequence(seq) => in_shard(seq)?,
            ShardStart::AtTimestamp(ms) => shard.log.offset_at_time(ms)?,
        };
        let uid = stream.meta().uid;
        Ok(ShardCursor {
            stream: name.to_string(),
            stream_uid: uid,
            shard_index: shard_id.0,
            offset,
        })
    }

    fn cursor_stream(&self, cursor: &ShardCursor) -> Result<Arc<Stream>, StreamsError> {
        let stream = self.get_serving(&cursor.stream)?;
        if stream.meta().uid != cursor.stream_uid {
            // The stream was deleted and another made under its name.
            return Err(StreamsError::StreamNotFound {
                name: cursor.stream.clone(),
            });
        }
        Ok(stream)
    }

    /// Reads from `cursor`: at most `records_max` records and, past the first, `bytes_max`
    /// bytes. A GetRecords read (`metered`) counts against the shard's read quotas when they
    /// are enforced; a subscription's does not (each consumer has its own pipe, as on AWS).
    pub fn read(
        &self,
        cursor: &ShardCursor,
        records_max: usize,
        bytes_max: usize,
        metered: bool,
    ) -> Result<ReadResult, StreamsError> {
        let stream = self.cursor_stream(cursor)?;
        let shard = Self::shard(&stream.topo(), &cursor.stream, ShardId(cursor.shard_index))?;
        let metered = metered && self.config.throughput.enforce;
        if metered && !shard.throughput.admit_read(self.now_ms()) {
            return Err(StreamsError::ThroughputExceeded {
                stream: cursor.stream.clone(),
                shard_id: ShardId(cursor.shard_index).to_string(),
                write: false,
            });
        }
        // Read the closing point first: records below it are all in the log by then.
        let closed_end = shard.closed_end();
        let batch = shard.log.read(cursor.offset, records_max, bytes_max)?;
        if metered {
            shard.throughput.charge_read(
                batch
                    .records
                    .iter()
                    .map(|r| r.data.len() + r.partition_key.len())
                    .sum(),
            );
        }
        let now = self.now_ms();
        let millis_behind_latest = if batch.next_offset >= batch.end_offset {
            0
        } else {
            batch
                .records
                .last()
                .map(|r| (now - r.arrival_ms).max(0))
                .unwrap_or(0)
        };
        // A closed shard ends on an empty read past its closing point: its last records come
        // with a next position, as on AWS, so a reader that stops at the end loses none.
        let (next, child_shards) = match closed_end {
            Some(end) if batch.next_offset >= end && batch.records.is_empty() => {
                (None, stream.meta().children_of(shard.index))
            }
            _ => (
                Some(ShardCursor {
                    offset: batch.next_offset,
                    ..cursor.clone()
                }),
                Vec::new(),
            ),
        };
        let (epoch, index) = (shard.epoch, shard.index);
        let records = batch
            .records
            .into_iter()
            .map(|r| (SequenceNumber::of_record(epoch, index, r.offset), r))
            .collect();
        Ok(ReadResult {
            records,
            continuation: SequenceNumber {
                shard_epoch: epoch,
                shard_index: index,
                position: batch.next_offset,
            },
            next,
            millis_behind_latest,
            child_shards,
        })
    }

    /// A signal of the shard's end offset, sent each time records become durable and when the
    /// shard closes: subscriptions wait on it instead of polling.
    pub fn watch(&self, cursor: &ShardCursor) -> Result<watch::Receiver<u64>, StreamsError> {
        let stream = self.cursor_stream(cursor)?;
        let shard = Self::shard(&stream.topo(), &cursor.stream, ShardId(cursor.shard_index))?;
        Ok(shard.end_tx.subscribe())
    }

    /// Stops every shard writer after what it has queued.
    pub fn close(&self) {
        for stream in self
            .streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            for s in stream.topo().shards.values() {
                s.log.close();
            }
        }
    }
}

pub(crate) fn shard_view(s: &ShardMeta) -> ShardView {
    let seq = |position| SequenceNumber {
        shard_epoch: s.epoch,
        shard_index: s.index,
        position,
    };
    ShardView {
        meta: s.clone(),
        // Below every record of the shard; the ending one, once closed, above every record
        // (the shard's largest sequence number, as on AWS).
        starting_sequence_number: seq(0),
        ending_sequence_number: s.closed_end_offset.map(|_| seq(u64::MAX)),
    }
}

fn log_error_copy(e: &sluice_log::LogError) -> StreamsError {
    use sluice_log::LogError as L;
    StreamsError::Log(match e {
        L::Io { path, source } => L::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        L::Poisoned { path } => L::Poisoned { path: path.clone() },
        L::NoSpace { path } => L::NoSpace { path: path.clone() },
        L::Corrupt {
            path,
            position,
            reason,
        } => L::Corrupt {
            path: path.clone(),
            position: *position,
            reason: reason.clone(),
        },
        L::TooLarge { what, len, max } => L::TooLarge {
            what,
            len: *len,
            max: *max,
        },
        L::Closed => L::Closed,
    })
}
