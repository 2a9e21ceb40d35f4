//! The stream registry: lifecycle, metadata changes and the data path.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use sluice_log::{Clock, Log, Record, StoredRecord};

use crate::catalog::Catalog;
use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::meta::{ShardMeta, StreamMeta, StreamMode, StreamSpec, StreamStatus};
use crate::names::{ShardId, StreamName};
use crate::routing::{even_ranges, hash_key_of};
use crate::sequence::SequenceNumber;

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

struct Shard {
    meta: ShardMeta,
    log: Log,
}

struct Stream {
    meta: RwLock<StreamMeta>,
    /// Indexed by shard index.
    shards: Vec<Arc<Shard>>,
    /// Open shards sorted by range start: `(start, end, shard index)`.
    routes: Vec<(u128, u128, u32)>,
}

impl Stream {
    fn route(&self, hash_key: u128) -> u32 {
        let i = self.routes.partition_point(|r| r.0 <= hash_key);
        assert!(i > 0, "open shards cover the whole hash-key space");
        let (start, end, index) = self.routes[i - 1];
        assert!(start <= hash_key && hash_key <= end);
        index
    }
}

// Locks here recover from poisoning: every change to the state they guard is made with a
// single assignment after the catalog write, so a panicking request leaves no half-done change
// behind, and must not take the whole registry down with it.

/// Every stream of one server.
pub struct Streams {
    config: StreamsConfig,
    clock: Arc<dyn Clock>,
    catalog: Catalog,
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    /// Serializes metadata changes, so checks (limits, existence) and writes are atomic.
    changes: Mutex<()>,
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
        std::fs::create_dir_all(config.data_dir.join("streams")).map_err(|e| {
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
            streams: RwLock::new(BTreeMap::new()),
            changes: Mutex::new(()),
        };
        let mut known = HashSet::new();
        for meta in registry.catalog.load_all()? {
            known.insert(meta.uid.to_string());
            if meta.status == StreamStatus::Deleting {
                registry.catalog.remove(&meta.name)?;
                let _ = std::fs::remove_dir_all(registry.stream_dir(meta.uid));
                continue;
            }
            let stream = registry.open_stream(meta)?;
            let name = stream
                .meta
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .name
                .clone();
            registry
                .streams
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name, stream);
        }
        if let Ok(dirs) = std::fs::read_dir(registry.config.data_dir.join("streams")) {
            for d in dirs.flatten() {
                if !known.contains(&*d.file_name().to_string_lossy()) {
                    tracing::info!(dir = %d.path().display(), "removing data of a stream the catalog does not know");
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
        }
        Ok(registry)
    }

    pub fn config(&self) -> &StreamsConfig {
        &self.config
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn stream_dir(&self, uid: u64) -> PathBuf {
        self.config.data_dir.join("streams").join(uid.to_string())
    }

    fn open_stream(&self, meta: StreamMeta) -> Result<Arc<Stream>, StreamsError> {
        let dir = self.stream_dir(meta.uid);
        let mut shards = Vec::with_capacity(meta.shards.len());
        for (i, s) in meta.shards.iter().enumerate() {
            assert_eq!(s.index as usize, i, "shard indexes are dense");
            let log = Log::open(
                &dir.join(format!("{:012}", s.index)),
                self.config.log.clone(),
                self.clock.clone(),
            )?;
            shards.push(Arc::new(Shard {
                meta: s.clone(),
                log,
            }));
        }
        let mut routes: Vec<(u128, u128, u32)> = meta
            .shards
            .iter()
            .filter(|s| s.is_open())
            .map(|s| {
                let (a, b) = s.hash_range();
                (a, b, s.index)
            })
            .collect();
        routes.sort_unstable();
        Ok(Arc::new(Stream {
            meta: RwLock::new(meta),
            shards,
            routes,
        }))
    }

    fn effective_status(&self, meta: &StreamMeta, now: i64) -> StreamStatus {
        match meta.status {
            StreamStatus::Creating if now >= meta.status_ms + self.config.create_delay_ms => {
                StreamStatus::Active
            }
            s => s,
        }
    }

    fn get(&self, name: &str) -> Result<Arc<Stream>, StreamsError> {
        self.streams
            .read()
            .unwrap()
            .get(name)
            .cloned()
            .ok_or_else(|| StreamsError::StreamNotFound {
                name: name.to_string(),
            })
    }

    /// The stream, if it is ACTIVE (or UPDATING, which serves data too).
    fn get_serving(&self, name: &str) -> Result<Arc<Stream>, StreamsError> {
        let stream = self.get(name)?;
        let status = self.effective_status(
            &stream.meta.read().unwrap_or_else(PoisonError::into_inner),
            self.now_ms(),
        );
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
                hash_start: start.to_string(),
                hash_end: end.to_string(),
                parent: None,
                adjacent_parent: None,
                epoch: now as u64,
                created_ms: now,
                closed_end_offset: None,
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
        };
        // Shard directories first: a crash before the catalog write leaves only orphan
        // directories, removed on the next open.
        let stream = self.open_stream(meta.clone())?;
        self.catalog.put(&meta)?;
        self.streams
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), stream);
        tracing::info!(stream = %name, shards = shard_count, "stream created");
        Ok(())
    }

    pub fn delete_stream(&self, name: &str) -> Result<(), StreamsError> {
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let stream = self.get(name)?;
        {
            let mut meta = stream.meta.write().unwrap_or_else(PoisonError::into_inner);
            if meta.status == StreamStatus::Deleting {
                return Ok(());
            }
            meta.status = StreamStatus::Deleting;
            meta.status_ms = self.now_ms();
            self.catalog.put(&meta)?;
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
        let uid = stream
            .meta
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .uid;
        for s in &stream.shards {
            s.log.close();
        }
        self.catalog.remove(name)?;
        let _ = std::fs::remove_dir_all(self.stream_dir(uid));
        Ok(())
    }

    /// Moves time-driven state forward: CREATING streams become ACTIVE, DELETING ones go, and
    /// records past retention are trimmed. The server calls it periodically.
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
            let (name, status, status_ms, retention_hours) = {
                let m = stream.meta.read().unwrap_or_else(PoisonError::into_inner);
                (m.name.clone(), m.status, m.status_ms, m.retention_hours)
            };
            match status {
                StreamStatus::Creating if now >= status_ms + self.config.create_delay_ms => {
                    let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
                    let mut m = stream.meta.write().unwrap_or_else(PoisonError::into_inner);
                    if m.status == StreamStatus::Creating {
                        m.status = StreamStatus::Active;
                        m.status_ms = now;
                        if let Err(e) = self.catalog.put(&m) {
                            tracing::error!(stream = %name, error = %e, "could not record stream activation");
                        }
                    }
                }
                StreamStatus::Deleting if now >= status_ms + self.config.delete_delay_ms => {
                    let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Err(e) = self.finish_delete(&name) {
                        tracing::error!(stream = %name, error = %e, "could not finish deleting stream");
                    }
                    continue;
                }
                _ => {}
            }
            let cutoff = now - retention_hours as i64 * 3_600_000;
            for shard in &stream.shards {
                if let Err(e) = shard.log.trim_before(cutoff) {
                    tracing::error!(stream = %name, shard = shard.meta.index, error = %e, "retention trim failed");
                }
            }
        }
    }

    fn open_shard_count(&self) -> u32 {
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

    fn on_demand_count(&self) -> u32 {
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
        let mut meta = stream
            .meta
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        meta.status = self.effective_status(&meta, now);
        let shards = stream
            .shards
            .iter()
            .map(|s| ShardView {
                meta: s.meta.clone(),
                starting_sequence_number: SequenceNumber {
                    shard_epoch: s.meta.epoch,
                    shard_index: s.meta.index,
                    offset: 0,
                },
                ending_sequence_number: s.meta.closed_end_offset.map(|end| SequenceNumber {
                    shard_epoch: s.meta.epoch,
                    shard_index: s.meta.index,
                    offset: end.saturating_sub(1),
                }),
            })
            .collect();
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
    /// once, before anything is written; otherwise `done` is called once, with one outcome per record, in request order,
    /// when every shard involved has made its records durable.
    pub fn put(
        &self,
        name: &str,
        records: Vec<Record>,
        done: Box<dyn FnOnce(Vec<PutOutcome>) + Send>,
    ) -> Result<(), StreamsError> {
        let stream = self.get_serving(name)?;
        let limit_kib = stream
            .meta
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .max_record_size_kib;
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
        // Group by shard, remembering each record's place in the request.
        let mut groups: BTreeMap<u32, (Vec<usize>, Vec<Record>)> = BTreeMap::new();
        for (i, r) in records.into_iter().enumerate() {
            let hash = r
                .explicit_hash_key
                .unwrap_or_else(|| hash_key_of(&r.partition_key));
            let g = groups.entry(stream.route(hash)).or_default();
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
                    let results = std::mem::take(&mut self.results)
                        .into_iter()
                        .map(|r| r.expect("every record has an outcome"))
                        .collect();
                    (self.done.take().expect("done is called once"))(results);
                }
            }
        }
        let pending = Arc::new(Mutex::new(Pending {
            results: (0..count).map(|_| None).collect(),
            groups_left: groups.len(),
            done: Some(done),
        }));
        for (shard_index, (places, recs)) in groups {
            let shard = stream.shards[shard_index as usize].clone();
            let (epoch, shard_id) = (shard.meta.epoch, ShardId(shard_index));
            let p = pending.clone();
            let places_for_busy = places.clone();
            let completion: sluice_log::Completion = Box::new(move |outcome| {
                let mut p = p.lock().unwrap_or_else(PoisonError::into_inner);
                match outcome {
                    Ok(ack) => {
                        for (k, place) in places.into_iter().enumerate() {
                            let sequence_number = SequenceNumber {
                                shard_epoch: epoch,
                                shard_index,
                                offset: ack.first_offset + k as u64,
                            };
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

    fn shard(
        &self,
        stream: &Stream,
        name: &str,
        shard_id: ShardId,
    ) -> Result<Arc<Shard>, StreamsError> {
        stream
            .shards
            .get(shard_id.0 as usize)
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
        let shard = self.shard(&stream, name, shard_id)?;
        let in_shard = |seq: SequenceNumber| {
            if seq.shard_index == shard.meta.index && seq.shard_epoch == shard.meta.epoch {
                Ok(seq.offset)
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
            ShardStart::AtSequence(seq) => in_shard(seq)?,
            ShardStart::AfterSequence(seq) => in_shard(seq)? + 1,
            ShardStart::AtTimestamp(ms) => shard.log.offset_at_time(ms)?,
        };
        let uid = stream
            .meta
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .uid;
        Ok(ShardCursor {
            stream: name.to_string(),
            stream_uid: uid,
            shard_index: shard_id.0,
            offset,
        })
    }

    /// Reads from `cursor`: at most `records_max` records and, past the first, `bytes_max` bytes.
    pub fn read(
        &self,
        cursor: &ShardCursor,
        records_max: usize,
        bytes_max: usize,
    ) -> Result<ReadResult, StreamsError> {
        let stream = self.get_serving(&cursor.stream)?;
        if stream
            .meta
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .uid
            != cursor.stream_uid
        {
            // The stream was deleted and another made under its name.
            return Err(StreamsError::StreamNotFound {
                name: cursor.stream.clone(),
            });
        }
        let shard = self.shard(&stream, &cursor.stream, ShardId(cursor.shard_index))?;
        let batch = shard.log.read(cursor.offset, records_max, bytes_max)?;
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
        let next = match shard.meta.closed_end_offset {
            Some(end) if batch.next_offset >= end => None,
            _ => Some(ShardCursor {
                offset: batch.next_offset,
                ..cursor.clone()
            }),
        };
        let (epoch, index) = (shard.meta.epoch, shard.meta.index);
        let records = batch
            .records
            .into_iter()
            .map(|r| {
                (
                    SequenceNumber {
                        shard_epoch: epoch,
                        shard_index: index,
                        offset: r.offset,
                    },
                    r,
                )
            })
            .collect();
        Ok(ReadResult {
            records,
            next,
            millis_behind_latest,
        })
    }

    /// Stops every shard writer after what it has queued.
    pub fn close(&self) {
        for stream in self
            .streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            for s in &stream.shards {
                s.log.close();
            }
        }
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
