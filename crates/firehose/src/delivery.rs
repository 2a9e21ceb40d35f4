//! Delivery: one task per delivery stream that reads its records and writes them, buffered,
//! into the lake.
//!
//! The records come from a durable log: the delivery stream's own buffer stream (DirectPut,
//! in the private registry under `<data_dir>/firehose`) or the source Kinesis stream
//! (KinesisStreamAsSource, de-aggregated). A named `StreamConsumer` (`firehose/<name>`) hands
//! out a lease per shard; a reader task per lease sends batches over a bounded channel to one
//! assembler, which runs the processors and puts each record in the buffer of its partition
//! (one buffer without dynamic partitioning; one per partition-key set with it; plus buffers
//! for the error output and the S3 backup). A buffer becomes an object when it reaches
//! `SizeInMBs` or when `IntervalInSeconds` have passed since its first record; memory past
//! `memory_bytes_max` delivers the largest buffer early.
//!
//! Checkpoints: a shard's checkpoint moves only past records that are in durably written
//! objects (or were dropped): after each object, the checkpoint of every shard is the point
//! before its oldest record still held in any buffer, or where its reads got to. A crash (or
//! an UpdateDestination, which restarts the task) delivers again at most what was in the
//! buffers: duplicates only from the buffer in flight, nothing acknowledged is lost.
//!
//! A failing write is retried with back-off (from 200 ms, doubling to
//! `retry_backoff_ms_max`) for `retry_duration_s`, then its records go to the error output
//! prefix (`delivery-failed`); writes of the error output itself are retried without end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use sluice_lake::{Lake, LakeError};
use sluice_streams::{
    Checkpoint, Checkpointer, ConsumeError, ConsumerName, InitialPosition, OnTrimmed,
    ReaderOptions, SequenceNumber, ShardBatch, ShardCheckpoint, ShardId, ShardLease,
    StreamConsumer, StreamConsumerOptions, Streams,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::FirehoseConfig;
use crate::conversion::{Conversion, ERROR_OUTPUT_TYPE, PARQUET_EXTENSION};
use crate::limits;
use crate::metrics::StreamMetrics;
use crate::model::S3Destination;
use crate::prefix::{object_suffix, Eval, Template};
use crate::transform::{Failed, Item, Pipeline};

/// Where a delivery stream's records come from.
pub struct Source {
    pub streams: Arc<Streams>,
    pub stream: String,
    pub consumer: ConsumerName,
    pub initial: InitialPosition,
    /// A Kinesis data stream: KPL-aggregated records are taken apart.
    pub kinesis: bool,
}

/// Everything a delivery task needs.
pub struct Delivery {
    pub name: String,
    pub version: u64,
    pub dest: S3Destination,
    pub source: Source,
    pub lake: Lake,
    pub pipeline: Pipeline,
    /// Record format conversion (DataFormatConversionConfiguration), when enabled.
    pub conversion: Option<Arc<Conversion>>,
    pub config: FirehoseConfig,
    pub metrics: StreamMetrics,
    pub now_ms: sluice_aws::NowMs,
    /// Encryption at rest of the objects written (`ops::streams::object_sse`).
    pub sse: Option<sluice_lake::Sse>,
    /// A Redshift destination: each staged destination object is then loaded (or gets an
    /// error manifest) before the checkpoint moves past its records.
    pub redshift: Option<Arc<crate::redshift::Target>>,
}

/// What the task has committed, per shard (for the backlog check of puts).
#[derive(Debug, Default)]
pub struct Progress {
    committed: Mutex<BTreeMap<u32, u64>>,
    opened: std::sync::atomic::AtomicBool,
}

impl Progress {
    /// The committed position of each shard, once the consumer has opened.
    pub fn committed(&self) -> Option<BTreeMap<u32, u64>> {
        self.opened
            .load(std::sync::atomic::Ordering::Acquire)
            .then(|| {
                self.committed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
    }

    fn set(&self, shard: u32, position: u64) {
        self.committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(shard, position);
    }
}

/// A running delivery task. Dropping it without [`Runner::stop`] aborts the task.
pub struct Runner {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub progress: Arc<Progress>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").finish_non_exhaustive()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Runner {
    /// Starts delivering (needs a tokio runtime).
    pub fn start(d: Delivery) -> Runner {
        let (stop, stop_rx) = watch::channel(false);
        let progress = Arc::new(Progress::default());
        let task = tokio::spawn(run(Arc::new(d), stop_rx, progress.clone()));
        Runner {
            stop,
            task: Some(task),
            progress,
        }
    }

    /// Stops the task: an object being written is finished and committed; what is still
    /// buffered is not, and the next task delivers it.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

async fn wait_stop(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Sleeps `ms`, or less if stopped; true when stopped.
async fn pause(stop: &watch::Receiver<bool>, ms: u64) -> bool {
    tokio::select! {
        _ = wait_stop(stop.clone()) => true,
        _ = tokio::time::sleep(Duration::from_millis(ms)) => *stop.borrow(),
    }
}

struct Msg {
    batch: ShardBatch,
    /// With a shard's last batch: its lease, held until the shard is committed finished.
    lease: Option<ShardLease>,
}

async fn read_shard(mut lease: ShardLease, tx: mpsc::Sender<Msg>) -> Result<(), ConsumeError> {
    loop {
        match lease.next_batch().await? {
            Some(batch) if batch.end.is_some() => {
                let _ = tx
                    .send(Msg {
                        batch,
                        lease: Some(lease),
                    })
                    .await;
                return Ok(());
            }
            Some(batch) => {
                if tx.send(Msg { batch, lease: None }).await.is_err() {
                    return Ok(());
                }
            }
            None => return Ok(()),
        }
    }
}

async fn run(d: Arc<Delivery>, stop: watch::Receiver<bool>, progress: Arc<Progress>) {
    let backoff_min = limits::WRITE_BACKOFF_MS_MIN;
    let mut backoff = backoff_min;
    let options = StreamConsumerOptions {
        initial_position: d.source.initial,
        reader: ReaderOptions {
            batch_records_max: 10_000,
            batch_bytes_max: 4 << 20,
            // Records past the buffer's retention are gone, as on Firehose after 24 hours.
            on_trimmed: OnTrimmed::Skip,
        },
    };
    let mut logged = false;
    while !*stop.borrow() {
        let opened = tokio::select! {
            _ = wait_stop(stop.clone()) => break,
            c = StreamConsumer::open(d.source.streams.clone(), Some(d.source.consumer.clone()), &d.source.stream, options) => c,
        };
        let consumer = match opened {
            Ok(c) => c,
            Err(e) => {
                if !logged {
                    tracing::warn!(delivery_stream = %d.name, source = %d.source.stream, error = %e, "cannot read the delivery stream's source; retrying");
                    logged = true;
                }
                if pause(&stop, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(d.config.retry_backoff_ms_max);
                continue;
            }
        };
        if logged {
            tracing::info!(delivery_stream = %d.name, source = %d.source.stream, "reading the delivery stream's source");
            logged = false;
        }
        backoff = backoff_min;
        for (shard, c) in consumer.checkpoints() {
            progress.set(shard.0, c.sequence_number.position);
        }
        progress
            .opened
            .store(true, std::sync::atomic::Ordering::Release);
        let (tx, mut rx) = mpsc::channel::<Msg>(4);
        let mut readers: JoinSet<Result<(), ConsumeError>> = JoinSet::new();
        let mut asm = Assembler::new(
            d.clone(),
            consumer.checkpointer(),
            progress.clone(),
            stop.clone(),
        );
        for (shard, c) in consumer.checkpoints() {
            asm.known_committed(shard.0, c);
        }
        let failure: Option<String> = loop {
            let deadline = asm.next_deadline();
            tokio::select! {
                _ = wait_stop(stop.clone()) => break None,
                lease = consumer.next_lease() => match lease {
                    Ok(lease) => {
                        readers.spawn(read_shard(lease, tx.clone()));
                    }
                    Err(e) => break Some(e.to_string()),
                },
                Some(msg) = rx.recv() => {
                    if let Err(e) = asm.add(msg).await {
                        break Some(e);
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    if let Err(e) = asm.flush_due().await {
                        break Some(e);
                    }
                }
                Some(joined) = readers.join_next(), if !readers.is_empty() => match joined {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => break Some(e.to_string()),
                    Err(e) => break Some(e.to_string()),
                },
            }
        };
        readers.abort_all();
        // Wait for the readers to be gone: they hold leases (and the registry).
        while readers.join_next().await.is_some() {}
        drop(asm);
        drop(consumer);
        if let Some(e) = failure {
            if *stop.borrow() {
                break;
            }
            tracing::warn!(delivery_stream = %d.name, error = %e, "delivery stopped; starting again from the last checkpoint");
            logged = true;
            if pause(&stop, backoff).await {
                break;
            }
            backoff = (backoff * 2).min(d.config.retry_backoff_ms_max);
        }
    }
}

/// What a buffer becomes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Records for the destination, with their partition keys (none without dynamic
    /// partitioning).
    Main {
        query: BTreeMap<String, String>,
        lambda: BTreeMap<String, String>,
    },
    /// Error records of one error output type.
    Error(&'static str),
    /// Source records for the S3 backup.
    Backup,
}

/// A buffered record's id, for the error record of a record that does not convert: made into
/// text only then.
enum MetaId {
    Text(String),
    Seq(SequenceNumber),
}

impl MetaId {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            MetaId::Text(t) => t.as_str().into(),
            MetaId::Seq(s) => s.to_string().into(),
        }
    }
}

/// One buffer.
struct Part {
    kind: Kind,
    records: Vec<Bytes>,
    bytes: usize,
    oldest_arrival_ms: i64,
    opened: Instant,
    /// Per shard, the lowest sequence position of a record held here.
    holds: BTreeMap<u32, u64>,
    /// With record format conversion, each record's arrival time and record id (for the
    /// error records of those that do not convert), in the order of `records`.
    meta: Vec<(i64, MetaId)>,
}

impl Part {
    /// `expect`: how many records the last buffer of the kind held (its vector is sized
    /// for that many at once instead of growing by doubling).
    fn new(kind: Kind, expect: usize) -> Part {
        Part {
            kind,
            records: Vec::with_capacity(expect.min(PART_RECORDS_RESERVE_MAX)),
            bytes: 0,
            oldest_arrival_ms: i64::MAX,
            opened: Instant::now(),
            holds: BTreeMap::new(),
            meta: Vec::new(),
        }
    }

    fn push(&mut self, data: Bytes, arrival_ms: i64, shard: u32, position: u64) {
        self.bytes += data.len();
        self.records.push(data);
        self.oldest_arrival_ms = self.oldest_arrival_ms.min(arrival_ms);
        let h = self.holds.entry(shard).or_insert(position);
        *h = (*h).min(position);
    }
}

#[derive(Default)]
struct ShardState {
    epoch: u64,
    read_upto: u64,
    committed: u64,
    ended: bool,
    lease: Option<ShardLease>,
}

struct Assembler {
    d: Arc<Delivery>,
    checkpointer: Checkpointer,
    progress: Arc<Progress>,
    stop: watch::Receiver<bool>,
    parts: BTreeMap<Kind, Part>,
    shards: BTreeMap<u32, ShardState>,
    bytes: usize,
    prefix: Template,
    error_prefix: Template,
    backup_prefix: Option<Template>,
    /// When a commit of shards with nothing held is due.
    commit_due: Option<Instant>,
    /// Records in the last main buffer written (the next one's reservation).
    last_part_records: usize,
}

const IDLE_COMMIT_MS: u64 = 1_000;
/// The most record slots a new buffer reserves up front (16 MiB of `Bytes` handles).
const PART_RECORDS_RESERVE_MAX: usize = 1 << 19;
const MB: usize = 1 << 20;

impl Assembler {
    fn new(
        d: Arc<Delivery>,
        checkpointer: Checkpointer,
        progress: Arc<Progress>,
        stop: watch::Receiver<bool>,
    ) -> Assembler {
        // Checked at CreateDeliveryStream / UpdateDestination: they parse.
        let parse = |s: Option<&str>| {
            Template::parse(s.unwrap_or("")).unwrap_or_else(|_| Template::empty())
        };
        let prefix = parse(d.dest.prefix.as_deref()).for_objects();
        let error_prefix = match d.dest.error_output_prefix.as_deref() {
            Some(e) if !e.is_empty() => parse(Some(e)),
            _ => Template::default_errors(&parse(d.dest.prefix.as_deref())),
        };
        let backup_prefix = d
            .dest
            .backup
            .as_ref()
            .map(|b| parse(b.prefix.as_deref()).for_objects());
        Assembler {
            d,
            checkpointer,
            progress,
            stop,
            parts: BTreeMap::new(),
            shards: BTreeMap::new(),
            bytes: 0,
            prefix,
            error_prefix,
            backup_prefix,
            commit_due: None,
            last_part_records: 0,
        }
    }

    fn known_committed(&mut self, shard: u32, c: Checkpoint) {
        let st = self.shards.entry(shard).or_default();
        st.epoch = c.sequence_number.shard_epoch;
        st.committed = c.sequence_number.position;
        st.read_upto = st.read_upto.max(c.sequence_number.position);
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn main_parts(&self) -> usize {
        self.parts
            .keys()
            .filter(|k| matches!(k, Kind::Main { .. }))
            .count()
    }

    /// The size and interval of a kind's buffers.
    fn hints(&self, kind: &Kind) -> (usize, u64) {
        match (kind, &self.d.dest.backup) {
            (Kind::Backup, Some(b)) => (b.size_mb as usize * MB, u64::from(b.interval_s) * 1000),
            _ => (
                self.d.dest.size_mb as usize * MB,
                u64::from(self.d.dest.interval_s) * 1000,
            ),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let parts = self.parts.values().map(|p| {
            let (_, interval_ms) = self.hints(&p.kind);
            p.opened + Duration::from_millis(interval_ms)
        });
        parts.chain(self.commit_due).min()
    }

    fn put(&mut self, kind: Kind, data: Bytes, arrival_ms: i64, shard: u32, position: u64) {
        self.bytes += data.len();
        self.parts
            .entry(kind.clone())
            .or_insert_with(|| {
                // One main buffer at a time without dynamic partitioning: it may reserve.
                let expect = match kind {
                    Kind::Main { .. } if !self.d.dest.dynamic_partitioning_enabled() => {
                        self.last_part_records
                    }
                    _ => 0,
                };
                Part::new(kind, expect)
            })
            .push(data, arrival_ms, shard, position);
    }

    fn fail(&mut self, f: Failed) {
        self.d.metrics.failed_records.increment(1);
        let line = Bytes::from(f.to_line((self.d.now_ms)()));
        self.put(
            Kind::Error(f.output_type),
            line,
            f.arrival_ms,
            f.shard,
            f.position,
        );
    }

    /// Takes in one batch of a shard.
    async fn add(&mut self, msg: Msg) -> Result<(), String> {
        let Msg { mut batch, lease } = msg;
        let shard = batch.shard_id.0;
        // Record ids are read by a transformation (and by conversion's error records, which
        // make them from the sequence number when they need one).
        let ids = !self.d.pipeline.is_identity();
        let epoch = batch.continuation.shard_epoch;
        let records = std::mem::take(&mut batch.records);
        let mut items = Vec::with_capacity(records.len());
        let (mut incoming, mut incoming_bytes) = (0u64, 0u64);
        for (seq, r) in records {
            let data = r.data;
            if self.d.source.kinesis {
                incoming += 1;
                incoming_bytes += data.len() as u64;
                let parts = crate::kpl::deaggregate(&data);
                let many = parts.len() > 1;
                for (k, part) in parts.into_iter().enumerate() {
                    items.push(item(
                        part,
                        r.arrival_ms,
                        &seq,
                        many.then_some(k),
                        ids || many,
                    ));
                }
            } else {
                items.push(item(data, r.arrival_ms, &seq, None, ids));
            }
        }
        if incoming > 0 {
            self.d.metrics.incoming_records.increment(incoming);
            self.d.metrics.incoming_bytes.increment(incoming_bytes);
        }
        if self.d.dest.backup_enabled && self.d.dest.backup.is_some() {
            for it in &items {
                self.put(
                    Kind::Backup,
                    it.data.clone(),
                    it.arrival_ms,
                    it.shard,
                    it.position,
                );
            }
        }
        let stop = self.stop.clone();
        let stopped = move || *stop.borrow();
        let (ok, failed) = if self.d.pipeline.is_identity() {
            (items, Vec::new())
        } else {
            match self.d.pipeline.run(items, &stopped).await {
                Some(r) => r,
                None => return Err("stopped".into()),
            }
        };
        for f in failed {
            self.fail(f);
        }
        let dynamic = self.d.dest.dynamic_partitioning_enabled();
        let (query_used, lambda_used) = self.prefix.partition_keys();
        let (query_used, lambda_used): (Vec<String>, Vec<String>) = (
            query_used.into_iter().map(str::to_string).collect(),
            lambda_used.into_iter().map(str::to_string).collect(),
        );
        for it in ok {
            let kind = if dynamic {
                let pick = |keys: &BTreeMap<String, String>, used: &[String]| {
                    used.iter()
                        .map(|k| keys.get(k).map(|v| (k.clone(), v.clone())))
                        .collect::<Option<BTreeMap<_, _>>>()
                };
                match (
                    pick(&it.query_keys, &query_used),
                    pick(&it.lambda_keys, &lambda_used),
                ) {
                    (Some(query), Some(lambda)) => Kind::Main { query, lambda },
                    _ => {
                        self.fail(Failed {
                            data: it.data,
                            arrival_ms: it.arrival_ms,
                            error_code: "DynamicPartitioning.MetadataExtractionFailed".into(),
                            error_message:
                                "A partition key the prefix uses was not extracted from the record."
                                    .into(),
                            attempts: 1,
                            lambda_arn: None,
                            output_type: "processing-failed",
                            shard: it.shard,
                            position: it.position,
                        });
                        continue;
                    }
                }
            } else {
                Kind::Main {
                    query: BTreeMap::new(),
                    lambda: BTreeMap::new(),
                }
            };
            if !self.parts.contains_key(&kind)
                && self.main_parts() >= self.d.config.active_partitions_max as usize
            {
                self.fail(Failed {
                    data: it.data,
                    arrival_ms: it.arrival_ms,
                    error_code: "DynamicPartitioning.ActivePartitionsLimitExceeded".into(),
                    error_message: format!(
                        "The delivery stream has {} active partitions, its limit.",
                        self.d.config.active_partitions_max
                    ),
                    attempts: 1,
                    lambda_arn: None,
                    output_type: "activePartitionExceeded",
                    shard: it.shard,
                    position: it.position,
                });
                continue;
            }
            self.put(kind.clone(), it.data, it.arrival_ms, it.shard, it.position);
            if self.d.conversion.is_some() {
                if let Some(p) = self.parts.get_mut(&kind) {
                    let id = if it.record_id.is_empty() {
                        MetaId::Seq(SequenceNumber {
                            shard_epoch: epoch,
                            shard_index: it.shard,
                            position: it.position,
                        })
                    } else {
                        MetaId::Text(it.record_id)
                    };
                    p.meta.push((it.arrival_ms, id));
                }
            }
            // A buffer is written as soon as it is full, not at the end of the batch.
            if self
                .parts
                .get(&kind)
                .is_some_and(|p| p.bytes >= self.hints(&kind).0)
            {
                self.flush(&kind).await?;
            }
        }
        let st = self.shards.entry(shard).or_default();
        st.epoch = batch.continuation.shard_epoch;
        st.read_upto = st.read_upto.max(batch.continuation.position);
        if batch.end.is_some() {
            st.ended = true;
            st.lease = lease;
        }
        if self.commit_due.is_none() {
            self.commit_due = Some(Instant::now() + Duration::from_millis(IDLE_COMMIT_MS));
        }
        // Full buffers, then memory.
        let full: Vec<Kind> = self
            .parts
            .iter()
            .filter(|(k, p)| p.bytes >= self.hints(k).0)
            .map(|(k, _)| k.clone())
            .collect();
        for k in full {
            self.flush(&k).await?;
        }
        while self.bytes as u64 > self.d.config.memory_bytes_max {
            let Some(largest) = self
                .parts
                .iter()
                .max_by_key(|(_, p)| p.bytes)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.flush(&largest).await?;
        }
        Ok(())
    }

    /// Flushes every buffer whose interval has passed, and commits shards with nothing held.
    async fn flush_due(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let due: Vec<Kind> = self
            .parts
            .iter()
            .filter(|(k, p)| p.opened + Duration::from_millis(self.hints(k).1) <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.flush(&k).await?;
        }
        if self.commit_due.is_some_and(|t| t <= now) {
            self.commit().await?;
        }
        Ok(())
    }

    /// The bucket, key and body of a buffer's object; `converted`: the Parquet body of a
    /// destination buffer with record format conversion.
    fn object(
        &self,
        part: &Part,
        converted: Option<&Bytes>,
    ) -> Result<(String, String, Bytes), String> {
        let none = BTreeMap::new();
        let d = &self.d.dest;
        let (query, lambda) = match &part.kind {
            Kind::Main { query, lambda } => (query, lambda),
            _ => (&none, &none),
        };
        let time_ms = if part.oldest_arrival_ms == i64::MAX {
            (self.d.now_ms)()
        } else {
            part.oldest_arrival_ms
        };
        let eval = |t: &Template, error: Option<&str>| {
            t.evaluate(&Eval {
                time_ms,
                error_output_type: error,
                query_keys: query,
                lambda_keys: lambda,
            })
        };
        let concat = || {
            let mut body = Vec::with_capacity(part.bytes);
            for r in &part.records {
                body.extend_from_slice(r);
            }
            body
        };
        match &part.kind {
            Kind::Main { .. } => {
                let prefix = eval(&self.prefix, None)?;
                let (body, default_ext) = match converted {
                    Some(body) => (body.clone(), PARQUET_EXTENSION.to_string()),
                    None => (
                        d.compression.compress_owned(concat())?,
                        d.compression.extension().to_string(),
                    ),
                };
                let ext = match d.file_extension.as_deref() {
                    Some(e) if !e.is_empty() => e.to_string(),
                    _ => default_ext,
                };
                let key = format!(
                    "{prefix}{}",
                    object_suffix(&self.d.name, self.d.version, time_ms, &ext)
                );
                Ok((d.bucket().to_string(), key, body))
            }
            Kind::Error(kind) => {
                let prefix = eval(&self.error_prefix, Some(kind))?;
                let key = format!(
                    "{prefix}{}",
                    object_suffix(&self.d.name, self.d.version, time_ms, "")
                );
                Ok((d.bucket().to_string(), key, Bytes::from(concat())))
            }
            Kind::Backup => {
                let b = d.backup.as_deref().ok_or("no backup destination")?;
                let t = self.backup_prefix.as_ref().ok_or("no backup prefix")?;
                let prefix = eval(t, None)?;
                let key = format!(
                    "{prefix}{}",
                    object_suffix(
                        &self.d.name,
                        self.d.version,
                        time_ms,
                        b.compression.extension()
                    )
                );
                Ok((
                    b.bucket().to_string(),
                    key,
                    b.compression.compress_owned(concat())?,
                ))
            }
        }
    }

    /// Writes one buffer as an object, then commits. `Err` only when stopped or the
    /// checkpoint store failed (the task then starts again from the last checkpoint).
    async fn flush(&mut self, kind: &Kind) -> Result<(), String> {
        let Some(mut part) = self.parts.remove(kind) else {
            return Ok(());
        };
        self.bytes -= part.bytes.min(self.bytes);
        if matches!(part.kind, Kind::Main { .. }) {
            self.last_part_records = part.records.len();
        }
        let converted = match (&part.kind, &self.d.conversion) {
            (Kind::Main { .. }, Some(c)) => {
                let body = self.convert(c.clone(), &mut part).await;
                if body.is_empty() {
                    // No record converted: they are all in the error output's buffer, which
                    // holds their checkpoint.
                    return self.commit().await;
                }
                Some(body)
            }
            _ => None,
        };
        let started = std::time::Instant::now();
        let mut wait_ms = limits::WRITE_BACKOFF_MS_MIN;
        let mut logged = false;
        let mut staged = None;
        loop {
            let attempt = match self.object(&part, converted.as_ref()) {
                Ok((bucket, key, body)) => {
                    let n = body.len();
                    staged = Some((bucket.clone(), key.clone(), body.clone()));
                    self.d
                        .lake
                        .put_object_sse(&bucket, &key, body, self.d.sse.clone())
                        .await
                        .map(|()| n)
                        .map_err(|e| {
                            (
                                matches!(
                                    e,
                                    LakeError::InvalidKey(_) | LakeError::InvalidBucketName(_)
                                ),
                                e.to_string(),
                            )
                        })
                }
                // A prefix that does not evaluate or records that do not convert: nothing to
                // retry.
                Err(e) => Err((true, e)),
            };
            match attempt {
                Ok(_) => {
                    if let Kind::Main { .. } = part.kind {
                        let m = &self.d.metrics;
                        m.delivered_records.increment(part.records.len() as u64);
                        m.delivered_bytes.increment(part.bytes as u64);
                        m.success.set(1.0);
                        if part.oldest_arrival_ms != i64::MAX {
                            m.freshness_seconds.set(
                                ((self.d.now_ms)() - part.oldest_arrival_ms).max(0) as f64 / 1000.0,
                            );
                        }
                    }
                    break;
                }
                Err((permanent, e)) => {
                    if let Kind::Main { .. } = part.kind {
                        self.d.metrics.success.set(0.0);
                    }
                    if !logged {
                        tracing::warn!(delivery_stream = %self.d.name, error = %e, "object write failed; retrying");
                        logged = true;
                    }
                    let expired = started.elapsed().as_secs() >= self.d.config.retry_duration_s;
                    let error_output = matches!(part.kind, Kind::Error(_));
                    if (permanent || expired) && !error_output {
                        // Give the records to the error output, which holds them (and the
                        // checkpoint) until it is written.
                        let code = if permanent {
                            "S3.InvalidObject"
                        } else {
                            "S3.DeliveryFailed"
                        };
                        for r in &part.records {
                            let f = Failed {
                                data: r.clone(),
                                arrival_ms: part.oldest_arrival_ms,
                                error_code: code.into(),
                                error_message: e.clone(),
                                attempts: 1,
                                lambda_arn: None,
                                output_type: if permanent {
                                    "processing-failed"
                                } else {
                                    "delivery-failed"
                                },
                                shard: 0,
                                position: 0,
                            };
                            self.d.metrics.failed_records.increment(1);
                            let line = Bytes::from(f.to_line((self.d.now_ms)()));
                            let kind = Kind::Error(f.output_type);
                            self.bytes += line.len();
                            let target = self
                                .parts
                                .entry(kind.clone())
                                .or_insert_with(|| Part::new(kind, 0));
                            target.bytes += line.len();
                            target.records.push(line);
                            target.oldest_arrival_ms =
                                target.oldest_arrival_ms.min(part.oldest_arrival_ms);
                        }
                        // The holds move with the records.
                        let kind = Kind::Error(if permanent {
                            "processing-failed"
                        } else {
                            "delivery-failed"
                        });
                        if let Some(target) = self.parts.get_mut(&kind) {
                            for (s, p) in &part.holds {
                                let h = target.holds.entry(*s).or_insert(*p);
                                *h = (*h).min(*p);
                            }
                        }
                        return Ok(());
                    }
                    if pause(&self.stop, wait_ms).await || self.stopped() {
                        return Err("stopped".into());
                    }
                    wait_ms = (wait_ms * 2).min(self.d.config.retry_backoff_ms_max);
                }
            }
        }
        // Redshift: the staged object is loaded (or listed in an error manifest) before the
        // checkpoint moves past its records.
        if let (Kind::Main { .. }, Some(rs), Some((bucket, key, body))) =
            (&part.kind, &self.d.redshift, staged)
        {
            let (records, bytes) = (part.records.len() as u64, part.bytes as u64);
            let d = &self.d;
            rs.deliver(
                &d.lake, &bucket, &key, body, records, bytes, &d.metrics, &d.now_ms, &self.stop,
            )
            .await?;
        }
        self.commit().await
    }

    /// Converts a destination buffer (on a blocking thread): the Parquet body, empty when no
    /// record converted. The records that do not convert go, as error records, to the
    /// `format-conversion-failed` error output's buffer, which takes the buffer's holds.
    async fn convert(&mut self, c: Arc<Conversion>, part: &mut Part) -> Bytes {
        let (out, records) = c.convert(std::mem::take(&mut part.records)).await;
        part.records = records;
        if out.failures.is_empty() {
            return out.body;
        }
        let now = (self.d.now_ms)();
        let kind = Kind::Error(ERROR_OUTPUT_TYPE);
        let mut lines = Vec::with_capacity(out.failures.len());
        for f in &out.failures {
            let data = part.records.get(f.index).map_or(&[][..], |r| r.as_ref());
            let (arrival_ms, record_id) = match part.meta.get(f.index) {
                Some((at, id)) if part.meta.len() == part.records.len() => (*at, Some(id.text())),
                _ => (part.oldest_arrival_ms, None),
            };
            lines.push((
                arrival_ms,
                Bytes::from(c.error_line(data, arrival_ms, record_id.as_deref(), f, now)),
            ));
        }
        self.d.metrics.failed_records.increment(lines.len() as u64);
        let target = self
            .parts
            .entry(kind.clone())
            .or_insert_with(|| Part::new(kind, 0));
        for (arrival_ms, line) in lines {
            self.bytes += line.len();
            target.bytes += line.len();
            target.records.push(line);
            target.oldest_arrival_ms = target.oldest_arrival_ms.min(arrival_ms);
        }
        for (s, p) in &part.holds {
            let h = target.holds.entry(*s).or_insert(*p);
            *h = (*h).min(*p);
        }
        out.body
    }

    /// Commits every shard whose checkpoint can move: to the point before its oldest record
    /// still held, or to where its reads got to.
    async fn commit(&mut self) -> Result<(), String> {
        self.commit_due = None;
        let mut rows = Vec::new();
        for (&index, st) in &self.shards {
            let hold = self
                .parts
                .values()
                .filter_map(|p| p.holds.get(&index))
                .min();
            let target = hold.map_or(st.read_upto, |p| p.saturating_sub(1));
            let finished = st.ended && hold.is_none();
            if target > st.committed || finished {
                rows.push(ShardCheckpoint {
                    shard_id: ShardId(index),
                    checkpoint: Checkpoint {
                        sequence_number: SequenceNumber {
                            shard_epoch: st.epoch,
                            shard_index: index,
                            position: target,
                        },
                        finished,
                    },
                });
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        self.checkpointer
            .commit(rows.clone(), Vec::new())
            .await
            .map_err(|e| format!("checkpoint commit failed: {e}"))?;
        for r in rows {
            let index = r.shard_id.0;
            self.progress
                .set(index, r.checkpoint.sequence_number.position);
            if r.checkpoint.finished {
                // Its children may start now; the lease goes with the state.
                self.shards.remove(&index);
            } else if let Some(st) = self.shards.get_mut(&index) {
                st.committed = r.checkpoint.sequence_number.position;
            }
        }
        Ok(())
    }
}

/// One record for the pipeline; `id`: whether it needs its record id (empty otherwise).
fn item(data: Bytes, arrival_ms: i64, seq: &SequenceNumber, sub: Option<usize>, id: bool) -> Item {
    Item {
        data,
        arrival_ms,
        record_id: match (id, sub) {
            (false, _) => String::new(),
            (true, Some(k)) => format!("{seq}:{k}"),
            (true, None) => seq.to_string(),
        },
        query_keys: BTreeMap::new(),
        lambda_keys: BTreeMap::new(),
        shard: seq.shard_index,
        position: seq.position,
    }
}
