//! Kinesis's CloudWatch metrics as Prometheus series.
//!
//! [`Metrics`] belongs to one [`crate::Service`]. It holds, per stream, handles to the
//! stream-level series, registered once through the `metrics` facade, so a request costs one
//! map look-up and a few atomic adds, never a registration or a per-record call; and, for
//! streams with enhanced monitoring on, the shard-level counters.
//!
//! Names: `sluice_kinesis_` + the CloudWatch name in snake case (`PutRecords.FailedRecords` →
//! `sluice_kinesis_put_records_failed_records_total`), `_total` on counters, latencies and ages
//! in seconds; every series has the label `stream`. `docs/operations.md` maps each series to its
//! CloudWatch metric.
//!
//! Label cardinality is bounded: the first [`STREAM_LABELS_MAX`] stream names seen since start
//! get a `stream` label of their own, later ones are counted together under
//! `stream="(other)"` (a name no stream can have). A deleted stream's series stay until
//! restart (a stream made again under its name continues them).
//!
//! Shard-level series (label `shard` as well) exist only while enhanced monitoring is on for
//! their stream, and only for the metrics it names. They live here, not in the facade, which
//! cannot remove a series: disabling a metric, or deleting the stream, removes its series from
//! `/metrics` at once ([`Metrics::render_shard_level`] writes them). Their number is bounded by
//! the shards of the streams that have it on, which the shard quota bounds.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram};
use sluice_streams::{PutOutcome, ReadResult, Record, ShardCursor, ShardId, StreamsError};

/// Streams that get a `stream` label of their own; further names share [`OTHER_STREAMS`].
pub const STREAM_LABELS_MAX: usize = 1_000;
/// The `stream` label of the streams past [`STREAM_LABELS_MAX`]; not a valid stream name.
pub const OTHER_STREAMS: &str = "(other)";

/// The shard-level metrics of EnableEnhancedMonitoring, in the API reference's order (`ALL`
/// stands for all of them).
pub const SHARD_LEVEL_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

/// A set of [`SHARD_LEVEL_METRICS`]: bit `i` stands for `SHARD_LEVEL_METRICS[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShardLevelSet(u8);

impl ShardLevelSet {
    pub const NONE: ShardLevelSet = ShardLevelSet(0);
    pub const ALL: ShardLevelSet = ShardLevelSet((1 << SHARD_LEVEL_METRICS.len()) - 1);

    /// One metric by its AWS name, or every one for `ALL`.
    pub fn parse(name: &str) -> Option<ShardLevelSet> {
        if name == "ALL" {
            return Some(ShardLevelSet::ALL);
        }
        let i = SHARD_LEVEL_METRICS.iter().position(|m| *m == name)?;
        Some(ShardLevelSet(1 << i))
    }

    pub fn union(self, other: ShardLevelSet) -> ShardLevelSet {
        ShardLevelSet(self.0 | other.0)
    }

    pub fn minus(self, other: ShardLevelSet) -> ShardLevelSet {
        ShardLevelSet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn has(self, kind: Kind) -> bool {
        self.0 & (1 << kind as u8) != 0
    }

    /// The AWS names of the metrics in the set, in [`SHARD_LEVEL_METRICS`] order.
    pub fn names(self) -> Vec<&'static str> {
        SHARD_LEVEL_METRICS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, m)| *m)
            .collect()
    }
}

/// The shard-level metrics, as indexes into [`SHARD_LEVEL_METRICS`].
#[derive(Debug, Clone, Copy)]
enum Kind {
    IncomingBytes = 0,
    IncomingRecords = 1,
    OutgoingBytes = 2,
    OutgoingRecords = 3,
    WriteExceeded = 4,
    ReadExceeded = 5,
    IteratorAge = 6,
}

/// For each [`Kind`]: the series name, its Prometheus type and its help text.
const SHARD_SERIES: [(&str, &str, &str); 7] = [
    ("sluice_kinesis_shard_incoming_bytes_total", "counter", "Bytes of records put to the shard (CloudWatch IncomingBytes, shard level; partition key and data)."),
    ("sluice_kinesis_shard_incoming_records_total", "counter", "Records put to the shard (CloudWatch IncomingRecords, shard level)."),
    ("sluice_kinesis_shard_outgoing_bytes_total", "counter", "Bytes of records read from the shard by GetRecords and SubscribeToShard (CloudWatch OutgoingBytes)."),
    ("sluice_kinesis_shard_outgoing_records_total", "counter", "Records read from the shard by GetRecords and SubscribeToShard (CloudWatch OutgoingRecords)."),
    ("sluice_kinesis_shard_write_provisioned_throughput_exceeded_total", "counter", "Records refused for the shard's write quota or a full append queue (CloudWatch WriteProvisionedThroughputExceeded, shard level)."),
    ("sluice_kinesis_shard_read_provisioned_throughput_exceeded_total", "counter", "GetRecords calls refused for the shard's read quota (CloudWatch ReadProvisionedThroughputExceeded, shard level)."),
    ("sluice_kinesis_shard_iterator_age_seconds", "gauge", "Age of the last record of the shard's latest GetRecords call, 0 with none (CloudWatch IteratorAgeMilliseconds, shard level)."),
];

/// Which operation a put serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutOp {
    PutRecord,
    PutRecords,
}

/// The stream-level series of one stream label.
struct StreamSeries {
    incoming_bytes: Counter,
    incoming_records: Counter,
    put_record_success: Counter,
    put_record_bytes: Counter,
    put_record_latency: Histogram,
    put_records_success: Counter,
    put_records_successful_records: Counter,
    put_records_total_records: Counter,
    put_records_bytes: Counter,
    put_records_latency: Histogram,
    put_records_failed_records: Counter,
    put_records_throttled_records: Counter,
    write_exceeded: Counter,
    read_exceeded: Counter,
    get_records_success: Counter,
    get_records_records: Counter,
    get_records_bytes: Counter,
    get_records_latency: Histogram,
    get_records_iterator_age: Gauge,
    subscribe_success: Counter,
    subscribe_rate_exceeded: Counter,
    event_success: Counter,
    event_records: Counter,
    event_bytes: Counter,
    event_behind_latest: Gauge,
}

impl StreamSeries {
    fn register(stream: &str) -> StreamSeries {
        let c = |name: &'static str| metrics::counter!(name, "stream" => stream.to_string());
        let h = |name: &'static str| metrics::histogram!(name, "stream" => stream.to_string());
        let g = |name: &'static str| metrics::gauge!(name, "stream" => stream.to_string());
        StreamSeries {
            incoming_bytes: c("sluice_kinesis_incoming_bytes_total"),
            incoming_records: c("sluice_kinesis_incoming_records_total"),
            put_record_success: c("sluice_kinesis_put_record_success_total"),
            put_record_bytes: c("sluice_kinesis_put_record_bytes_total"),
            put_record_latency: h("sluice_kinesis_put_record_latency_seconds"),
            put_records_success: c("sluice_kinesis_put_records_success_total"),
            put_records_successful_records: c(
                "sluice_kinesis_put_records_successful_records_total",
            ),
            put_records_total_records: c("sluice_kinesis_put_records_total_records_total"),
            put_records_bytes: c("sluice_kinesis_put_records_bytes_total"),
            put_records_latency: h("sluice_kinesis_put_records_latency_seconds"),
            put_records_failed_records: c("sluice_kinesis_put_records_failed_records_total"),
            put_records_throttled_records: c("sluice_kinesis_put_records_throttled_records_total"),
            write_exceeded: c("sluice_kinesis_write_provisioned_throughput_exceeded_total"),
            read_exceeded: c("sluice_kinesis_read_provisioned_throughput_exceeded_total"),
            get_records_success: c("sluice_kinesis_get_records_success_total"),
            get_records_records: c("sluice_kinesis_get_records_records_total"),
            get_records_bytes: c("sluice_kinesis_get_records_bytes_total"),
            get_records_latency: h("sluice_kinesis_get_records_latency_seconds"),
            get_records_iterator_age: g("sluice_kinesis_get_records_iterator_age_seconds"),
            subscribe_success: c("sluice_kinesis_subscribe_to_shard_success_total"),
            subscribe_rate_exceeded: c("sluice_kinesis_subscribe_to_shard_rate_exceeded_total"),
            event_success: c("sluice_kinesis_subscribe_to_shard_event_success_total"),
            event_records: c("sluice_kinesis_subscribe_to_shard_event_records_total"),
            event_bytes: c("sluice_kinesis_subscribe_to_shard_event_bytes_total"),
            event_behind_latest: g(
                "sluice_kinesis_subscribe_to_shard_event_millis_behind_latest_seconds",
            ),
        }
    }
}

/// The shard-level counters of one shard; only the kinds its stream has on are counted.
#[derive(Default)]
struct ShardCounters {
    values: [AtomicU64; 7],
}

impl ShardCounters {
    fn add(&self, set: ShardLevelSet, kind: Kind, n: u64) {
        if set.has(kind) && n > 0 {
            self.values[kind as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    fn set(&self, set: ShardLevelSet, kind: Kind, n: u64) {
        if set.has(kind) {
            self.values[kind as usize].store(n, Ordering::Relaxed);
        }
    }
}

/// Enhanced monitoring of one stream: which metrics, and the shards' counters.
struct ShardLevel {
    set: AtomicU8,
    shards: Mutex<BTreeMap<u32, Arc<ShardCounters>>>,
}

impl ShardLevel {
    fn set(&self) -> ShardLevelSet {
        ShardLevelSet(self.set.load(Ordering::Relaxed))
    }

    fn shard(&self, index: u32) -> Arc<ShardCounters> {
        self.shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(index)
            .or_default()
            .clone()
    }
}

/// A stream with enhanced monitoring, as rendered: name, metrics on, shards' counters.
type StreamShards = (String, ShardLevelSet, Vec<(u32, Arc<ShardCounters>)>);

/// The metrics of one Kinesis service.
#[derive(Default)]
pub struct Metrics {
    streams: RwLock<HashMap<String, Arc<StreamSeries>>>,
    other: OnceLock<Arc<StreamSeries>>,
    /// Streams with enhanced monitoring on. Kept in memory: it is lost at restart (see
    /// docs/specs/kinesis-compat.md).
    enhanced: RwLock<HashMap<String, Arc<ShardLevel>>>,
    /// `enhanced.len()`, read without the lock: puts and reads skip the look-up while no
    /// stream has enhanced monitoring on.
    enhanced_count: AtomicUsize,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Record bytes as quotas count them: partition key and data.
fn record_bytes(partition_key: &[u8], data: &[u8]) -> u64 {
    (partition_key.len() + data.len()) as u64
}

fn seconds_of_ms(ms: i64) -> f64 {
    ms.max(0) as f64 / 1000.0
}

/// What a read returned, measured before its records are turned into a response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadSize {
    records: u64,
    bytes: u64,
    /// The last record's age at the read, 0 with none.
    last_age_ms: i64,
    millis_behind_latest: i64,
}

impl ReadSize {
    pub(crate) fn of(result: &ReadResult, now_ms: i64) -> ReadSize {
        ReadSize::of_records(&result.records, result.millis_behind_latest, now_ms)
    }

    pub(crate) fn of_records(
        records: &[(sluice_streams::SequenceNumber, sluice_streams::StoredRecord)],
        millis_behind_latest: i64,
        now_ms: i64,
    ) -> ReadSize {
        ReadSize {
            records: records.len() as u64,
            bytes: records
                .iter()
                .map(|(_, r)| record_bytes(&r.partition_key, &r.data))
                .sum(),
            last_age_ms: records
                .last()
                .map_or(0, |(_, r)| (now_ms - r.arrival_ms).max(0)),
            millis_behind_latest,
        }
    }
}

/// A put under way: [`PutMeasure::done`] counts its outcome.
/// The stream's series are looked up only at the end, once the put has reached the stream:
/// a put to a stream that does not exist registers no label.
pub(crate) struct PutMeasure<'a> {
    op: PutOp,
    metrics: &'a Metrics,
    stream: &'a str,
    /// Each record's bytes, in request order.
    sizes: Vec<u32>,
    started: Instant,
}

impl PutMeasure<'_> {
    /// Counts a put's outcomes: once per request, and once per shard with enhanced monitoring.
    pub(crate) fn done(self, outcomes: &[PutOutcome]) {
        assert_eq!(outcomes.len(), self.sizes.len(), "one outcome per record");
        let (mut ok_records, mut ok_bytes, mut throttled, mut failed) = (0u64, 0u64, 0u64, 0u64);
        // Per shard: (index, records, bytes, throttled); a request touches few shards.
        let mut shards: Vec<(u32, u64, u64, u64)> = Vec::new();
        fn shard(shards: &mut Vec<(u32, u64, u64, u64)>, index: u32) -> &mut (u32, u64, u64, u64) {
            let i = match shards.iter().position(|s| s.0 == index) {
                Some(i) => i,
                None => {
                    shards.push((index, 0, 0, 0));
                    shards.len() - 1
                }
            };
            &mut shards[i]
        }
        let shard_level = self.metrics.shard_level(self.stream);
        let per_shard = shard_level.is_some();
        for (outcome, size) in outcomes.iter().zip(&self.sizes) {
            match outcome {
                Ok(r) => {
                    ok_records += 1;
                    ok_bytes += *size as u64;
                    if per_shard {
                        let s = shard(&mut shards, r.shard_id.0);
                        s.1 += 1;
                        s.2 += *size as u64;
                    }
                }
                Err(StreamsError::ThroughputExceeded { shard_id, .. }) => {
                    throttled += 1;
                    if let Some(id) = ShardId::parse(shard_id).filter(|_| per_shard) {
                        shard(&mut shards, id.0).3 += 1;
                    }
                }
                // A full append queue answers ProvisionedThroughputExceededException too.
                Err(StreamsError::Busy) => throttled += 1,
                Err(_) => failed += 1,
            }
        }
        let s = self.metrics.series(self.stream);
        s.incoming_records.increment(ok_records);
        s.incoming_bytes.increment(ok_bytes);
        s.write_exceeded.increment(throttled);
        let latency = self.started.elapsed().as_secs_f64();
        match self.op {
            PutOp::PutRecord => {
                if ok_records > 0 {
                    s.put_record_success.increment(1);
                    s.put_record_bytes.increment(ok_bytes);
                    s.put_record_latency.record(latency);
                }
            }
            PutOp::PutRecords => {
                if ok_records > 0 {
                    s.put_records_success.increment(1);
                }
                s.put_records_successful_records.increment(ok_records);
                s.put_records_total_records.increment(outcomes.len() as u64);
                s.put_records_bytes.increment(ok_bytes);
                s.put_records_failed_records.increment(failed);
                s.put_records_throttled_records.increment(throttled);
                s.put_records_latency.record(latency);
            }
        }
        if let Some(level) = &shard_level {
            let set = level.set();
            for (index, records, bytes, throttled) in shards {
                let c = level.shard(index);
                c.add(set, Kind::IncomingRecords, records);
                c.add(set, Kind::IncomingBytes, bytes);
                c.add(set, Kind::WriteExceeded, throttled);
            }
        }
    }
}

impl Metrics {
    /// The series of `stream`'s label, registered on first use.
    fn series(&self, stream: &str) -> Arc<StreamSeries> {
        {
            let map = self.streams.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = map.get(stream) {
                return s.clone();
            }
            if map.len() >= STREAM_LABELS_MAX {
                return self.other();
            }
        }
        let mut map = self.streams.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= STREAM_LABELS_MAX && !map.contains_key(stream) {
            return self.other();
        }
        map.entry(stream.to_string())
            .or_insert_with(|| Arc::new(StreamSeries::register(stream)))
            .clone()
    }

    fn other(&self) -> Arc<StreamSeries> {
        self.other
            .get_or_init(|| Arc::new(StreamSeries::register(OTHER_STREAMS)))
            .clone()
    }

    fn shard_level(&self, stream: &str) -> Option<Arc<ShardLevel>> {
        if self.enhanced_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.enhanced
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream)
            .cloned()
    }

    /// Starts measuring a put of `records` to `stream`.
    pub(crate) fn put<'a>(
        &'a self,
        op: PutOp,
        stream: &'a str,
        records: &[Record],
    ) -> PutMeasure<'a> {
        PutMeasure {
            op,
            metrics: self,
            stream,
            sizes: records
                .iter()
                .map(|r| record_bytes(&r.partition_key, &r.data) as u32)
                .collect(),
            started: Instant::now(),
        }
    }

    /// Counts a GetRecords read (`result` before it is mapped to the answer).
    pub(crate) fn get_records(
        &self,
        cursor: &ShardCursor,
        result: &Result<ReadResult, StreamsError>,
        started: Instant,
        now_ms: i64,
    ) {
        // Only a read that reached the stream has its series looked up (and maybe registered).
        let series_and_shard = || {
            let shard = self
                .shard_level(&cursor.stream)
                .map(|l| (l.set(), l.shard(cursor.shard_index)));
            (self.series(&cursor.stream), shard)
        };
        match result {
            Ok(r) => {
                let (s, shard) = series_and_shard();
                let size = ReadSize::of(r, now_ms);
                s.get_records_success.increment(1);
                s.get_records_records.increment(size.records);
                s.get_records_bytes.increment(size.bytes);
                s.get_records_latency
                    .record(started.elapsed().as_secs_f64());
                s.get_records_iterator_age
                    .set(seconds_of_ms(size.last_age_ms));
                if let Some((set, c)) = shard {
                    c.add(set, Kind::OutgoingRecords, size.records);
                    c.add(set, Kind::OutgoingBytes, size.bytes);
                    c.set(set, Kind::IteratorAge, size.last_age_ms as u64);
                }
            }
            Err(StreamsError::ThroughputExceeded { write: false, .. }) => {
                let (s, shard) = series_and_shard();
                s.read_exceeded.increment(1);
                if let Some((set, c)) = shard {
                    c.add(set, Kind::ReadExceeded, 1);
                }
            }
            Err(_) => {}
        }
    }

    /// Counts a SubscribeToShard call that got as far as starting its subscription: `started`
    /// is false when another subscription of the consumer to the shard held it off.
    pub(crate) fn subscribed(&self, stream: &str, started: bool) {
        let s = self.series(stream);
        if started {
            s.subscribe_success.increment(1);
        } else {
            s.subscribe_rate_exceeded.increment(1);
        }
    }

    /// Counts one SubscribeToShardEvent sent to its client.
    pub(crate) fn event_sent(&self, stream: &str, shard_index: u32, size: ReadSize) {
        let s = self.series(stream);
        s.event_success.increment(1);
        s.event_records.increment(size.records);
        s.event_bytes.increment(size.bytes);
        s.event_behind_latest
            .set(seconds_of_ms(size.millis_behind_latest));
        if let Some(level) = self.shard_level(stream) {
            let (set, c) = (level.set(), level.shard(shard_index));
            c.add(set, Kind::OutgoingRecords, size.records);
            c.add(set, Kind::OutgoingBytes, size.bytes);
        }
    }

    /// The shard-level metrics on for `stream`.
    pub fn enhanced(&self, stream: &str) -> ShardLevelSet {
        self.shard_level(stream)
            .map_or(ShardLevelSet::NONE, |l| l.set())
    }

    /// Turns shard-level metrics on (`enable`) or off for `stream`; returns the set before and
    /// after. `shards` are the stream's shards now: their series start at 0. A metric turned
    /// off loses its series (and starts from 0 if turned on again).
    pub fn set_enhanced(
        &self,
        stream: &str,
        enable: bool,
        change: ShardLevelSet,
        shards: impl IntoIterator<Item = u32>,
    ) -> (ShardLevelSet, ShardLevelSet) {
        let mut map = self
            .enhanced
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let current = map.get(stream).map_or(ShardLevelSet::NONE, |l| l.set());
        let desired = if enable {
            current.union(change)
        } else {
            current.minus(change)
        };
        if desired.is_empty() {
            map.remove(stream);
        } else {
            let level = map.entry(stream.to_string()).or_insert_with(|| {
                Arc::new(ShardLevel {
                    set: AtomicU8::new(0),
                    shards: Mutex::new(BTreeMap::new()),
                })
            });
            level.set.store(desired.0, Ordering::Relaxed);
            let mut counters = level.shards.lock().unwrap_or_else(PoisonError::into_inner);
            for c in counters.values() {
                for (i, v) in c.values.iter().enumerate() {
                    if desired.0 & (1 << i) == 0 {
                        v.store(0, Ordering::Relaxed);
                    }
                }
            }
            for index in shards {
                counters.entry(index).or_default();
            }
        }
        self.enhanced_count.store(map.len(), Ordering::Relaxed);
        (current, desired)
    }

    /// A deleted stream: its shard-level series go, and enhanced monitoring is off for a
    /// stream made again under its name.
    pub fn forget_stream(&self, stream: &str) {
        let mut map = self
            .enhanced
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        map.remove(stream);
        self.enhanced_count.store(map.len(), Ordering::Relaxed);
    }

    /// Writes the shard-level series in the Prometheus text format.
    pub fn render_shard_level(&self, out: &mut String) {
        let mut streams: Vec<StreamShards> = self
            .enhanced
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, level)| {
                let shards = level
                    .shards
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .map(|(i, c)| (*i, c.clone()))
                    .collect();
                (name.clone(), level.set(), shards)
            })
            .collect();
        streams.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, (name, kind, help)) in SHARD_SERIES.iter().enumerate() {
            let mut header = false;
            for (stream, set, shards) in &streams {
                if set.0 & (1 << k) == 0 {
                    continue;
                }
                for (index, c) in shards {
                    if !header {
                        let _ = writeln!(out, "# HELP {name} {help}");
                        let _ = writeln!(out, "# TYPE {name} {kind}");
                        header = true;
                    }
                    let v = c.values[k].load(Ordering::Relaxed);
                    // Stream names and shard ids need no escaping: [a-zA-Z0-9_.-]+.
                    let _ = write!(
                        out,
                        "{name}{{stream=\"{stream}\",shard=\"{}\"}} ",
                        ShardId(*index)
                    );
                    if *kind == "gauge" {
                        let _ = writeln!(out, "{}", seconds_of_ms(v as i64));
                    } else {
                        let _ = writeln!(out, "{v}");
                    }
                }
            }
            if header {
                out.push('\n');
            }
        }
    }
}

/// Describes every Kinesis series (the `# HELP` lines). Call once, after installing the
/// recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("sluice_kinesis_incoming_bytes_total", Unit::Bytes, "Bytes of records put to the stream by PutRecord and PutRecords, partition keys and data (CloudWatch IncomingBytes).");
    describe_counter!(
        "sluice_kinesis_incoming_records_total",
        Unit::Count,
        "Records put to the stream (CloudWatch IncomingRecords)."
    );
    describe_counter!(
        "sluice_kinesis_put_record_success_total",
        Unit::Count,
        "Successful PutRecord calls (CloudWatch PutRecord.Success)."
    );
    describe_counter!(
        "sluice_kinesis_put_record_bytes_total",
        Unit::Bytes,
        "Bytes put by PutRecord (CloudWatch PutRecord.Bytes)."
    );
    describe_histogram!("sluice_kinesis_put_record_latency_seconds", Unit::Seconds, "Time of successful PutRecord calls, until the record is durable (CloudWatch PutRecord.Latency).");
    describe_counter!(
        "sluice_kinesis_put_records_success_total",
        Unit::Count,
        "PutRecords calls with at least one record put (CloudWatch PutRecords.Success)."
    );
    describe_counter!("sluice_kinesis_put_records_successful_records_total", Unit::Count, "Records put by PutRecords (CloudWatch PutRecords.SuccessfulRecords and PutRecords.Records).");
    describe_counter!("sluice_kinesis_put_records_total_records_total", Unit::Count, "Records sent in PutRecords calls that reached the stream (CloudWatch PutRecords.TotalRecords).");
    describe_counter!(
        "sluice_kinesis_put_records_bytes_total",
        Unit::Bytes,
        "Bytes put by PutRecords (CloudWatch PutRecords.Bytes)."
    );
    describe_histogram!("sluice_kinesis_put_records_latency_seconds", Unit::Seconds, "Time of PutRecords calls that reached the stream, until their records are durable (CloudWatch PutRecords.Latency).");
    describe_counter!(
        "sluice_kinesis_put_records_failed_records_total",
        Unit::Count,
        "PutRecords records refused by an internal failure (CloudWatch PutRecords.FailedRecords)."
    );
    describe_counter!("sluice_kinesis_put_records_throttled_records_total", Unit::Count, "PutRecords records refused with ProvisionedThroughputExceededException (CloudWatch PutRecords.ThrottledRecords).");
    describe_counter!("sluice_kinesis_write_provisioned_throughput_exceeded_total", Unit::Count, "Records refused with ProvisionedThroughputExceededException by PutRecord and PutRecords (CloudWatch WriteProvisionedThroughputExceeded).");
    describe_counter!("sluice_kinesis_read_provisioned_throughput_exceeded_total", Unit::Count, "GetRecords calls refused with ProvisionedThroughputExceededException (CloudWatch ReadProvisionedThroughputExceeded).");
    describe_counter!(
        "sluice_kinesis_get_records_success_total",
        Unit::Count,
        "Successful GetRecords calls (CloudWatch GetRecords.Success)."
    );
    describe_counter!(
        "sluice_kinesis_get_records_records_total",
        Unit::Count,
        "Records returned by GetRecords (CloudWatch GetRecords.Records)."
    );
    describe_counter!(
        "sluice_kinesis_get_records_bytes_total",
        Unit::Bytes,
        "Bytes returned by GetRecords, partition keys and data (CloudWatch GetRecords.Bytes)."
    );
    describe_histogram!(
        "sluice_kinesis_get_records_latency_seconds",
        Unit::Seconds,
        "Time of the read of successful GetRecords calls (CloudWatch GetRecords.Latency)."
    );
    describe_gauge!("sluice_kinesis_get_records_iterator_age_seconds", Unit::Seconds, "Age of the last record of the stream's latest GetRecords call, 0 with none (CloudWatch GetRecords.IteratorAgeMilliseconds).");
    describe_counter!(
        "sluice_kinesis_subscribe_to_shard_success_total",
        Unit::Count,
        "SubscribeToShard calls that started a subscription (CloudWatch SubscribeToShard.Success)."
    );
    describe_counter!("sluice_kinesis_subscribe_to_shard_rate_exceeded_total", Unit::Count, "SubscribeToShard calls refused because the consumer already has a subscription to the shard (CloudWatch SubscribeToShard.RateExceeded).");
    describe_counter!(
        "sluice_kinesis_subscribe_to_shard_event_success_total",
        Unit::Count,
        "SubscribeToShardEvents sent (CloudWatch SubscribeToShardEvent.Success)."
    );
    describe_counter!(
        "sluice_kinesis_subscribe_to_shard_event_records_total",
        Unit::Count,
        "Records sent in SubscribeToShardEvents (CloudWatch SubscribeToShardEvent.Records)."
    );
    describe_counter!("sluice_kinesis_subscribe_to_shard_event_bytes_total", Unit::Bytes, "Bytes sent in SubscribeToShardEvents, partition keys and data (CloudWatch SubscribeToShardEvent.Bytes).");
    describe_gauge!("sluice_kinesis_subscribe_to_shard_event_millis_behind_latest_seconds", Unit::Seconds, "MillisBehindLatest of the stream's latest SubscribeToShardEvent, in seconds (CloudWatch SubscribeToShardEvent.MillisBehindLatest).");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_level_sets() {
        assert_eq!(ShardLevelSet::parse("ALL"), Some(ShardLevelSet::ALL));
        assert_eq!(ShardLevelSet::ALL.names(), SHARD_LEVEL_METRICS.to_vec());
        assert_eq!(ShardLevelSet::parse("Nope"), None);
        let a = ShardLevelSet::parse("IteratorAgeMilliseconds").unwrap();
        let b = ShardLevelSet::parse("IncomingBytes").unwrap();
        assert_eq!(
            a.union(b).names(),
            ["IncomingBytes", "IteratorAgeMilliseconds"]
        );
        assert_eq!(
            ShardLevelSet::ALL.minus(ShardLevelSet::ALL),
            ShardLevelSet::NONE
        );
        assert_eq!(SHARD_SERIES.len(), SHARD_LEVEL_METRICS.len());
    }

    #[test]
    fn shard_level_series_come_and_go_with_enhanced_monitoring() {
        let m = Metrics::default();
        let mut out = String::new();
        m.render_shard_level(&mut out);
        assert!(out.is_empty());
        let bytes = ShardLevelSet::parse("IncomingBytes").unwrap();
        assert_eq!(
            m.set_enhanced("s", true, bytes, [0, 1]),
            (ShardLevelSet::NONE, bytes)
        );
        let records = vec![Record {
            partition_key: b"k".to_vec().into(),
            explicit_hash_key: None,
            data: b"abc".to_vec().into(),
        }];
        let measure = m.put(PutOp::PutRecord, "s", &records);
        measure.done(&[Ok(sluice_streams::PutResult {
            shard_id: ShardId(1),
            sequence_number: sluice_streams::SequenceNumber {
                shard_epoch: 1,
                shard_index: 1,
                position: 0,
            },
        })]);
        m.render_shard_level(&mut out);
        assert!(out.contains("# TYPE sluice_kinesis_shard_incoming_bytes_total counter\n"));
        assert!(out.contains(
            "sluice_kinesis_shard_incoming_bytes_total{stream=\"s\",shard=\"shardId-000000000000\"} 0\n"
        ));
        assert!(out.contains(
            "sluice_kinesis_shard_incoming_bytes_total{stream=\"s\",shard=\"shardId-000000000001\"} 4\n"
        ));
        assert!(
            !out.contains("incoming_records"),
            "only the metrics enabled"
        );
        let (before, after) = m.set_enhanced("s", false, ShardLevelSet::ALL, []);
        assert_eq!((before, after), (bytes, ShardLevelSet::NONE));
        out.clear();
        m.render_shard_level(&mut out);
        assert!(out.is_empty());
        m.set_enhanced("s", true, ShardLevelSet::ALL, [0]);
        m.forget_stream("s");
        assert_eq!(m.enhanced("s"), ShardLevelSet::NONE);
    }
}
