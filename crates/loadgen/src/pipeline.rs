//! The `pipeline` mode: measures whatever runs between two streams (a jq processor, a Lambda
//! function behind an event source mapping, a consumer application elsewhere) through the
//! Kinesis API alone, so it works against any Kinesis-compatible endpoint.
//!
//! A run has up to three phases:
//! 1. raw (skipped when `raw_put_s` is 0): the same records, batch size and concurrency put into
//!    a scratch stream the run creates and deletes, for the PutRecords rate without a pipeline
//!    reading the source ([`PipelineReport::raw_put_records_per_s`]);
//! 2. pass-through (only when `passthrough_s` is above 0): the same puts and reads as the
//!    pipeline phase, with a scratch stream as both source and output, for what the puts and
//!    the reading alone reach, with nothing between them
//!    ([`PipelineReport::passthrough_records_per_s`]);
//! 3. pipeline: a reader on every shard of the output stream from LATEST (GetRecords loops, or
//!    SubscribeToShard with [`ReadMethod::Efo`]; shards that appear later, after a reshard, from
//!    TRIM_HORIZON), then producers putting JSON
//!    records stamped with an id and their send time ([`crate::stamp`]) into the source, at full
//!    speed or at `rate_per_s`, for `duration_s` or `records_max`; then a drain of at most
//!    `drain_timeout_s` for the acknowledged records not seen yet. The [`Tracker`] matches
//!    output records to sent ones by id: put-to-processed latency of each first sighting,
//!    duplicates, and records lost (acknowledged but not seen when the drain ends).
//!
//! Puts are bounded: `concurrency` producers, each with one PutRecords request of `batch`
//! records in flight. The output stream may be the source itself: then the run measures
//! put-to-get latency.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sluice_client::{Client, ClientError, Subscription, SubscriptionEvent};

use crate::stamp;
use crate::tracker::Tracker;
use crate::{
    consumer, count_failed, histogram, latency, prepare, Latency, LoadError, Mode, Options,
};

/// Seconds a drain or a raw phase lasts at most.
const PHASE_S_MAX: f64 = 600.0;
/// Records one GetRecords call asks for (Kinesis's maximum).
const GET_RECORDS_LIMIT: u32 = 10_000;
/// Pause after a GetRecords answer without records, so that idle readers do not spin.
const EMPTY_POLL_MS: u64 = 1;
/// Pause after a throttled GetRecords (AWS allows five calls a second per shard).
const READ_THROTTLED_MS: u64 = 200;
/// Pause after a failed request.
const ERROR_PAUSE_MS: u64 = 10;
/// How often the output stream's shards are listed again, for shards a reshard adds.
const LIST_SHARDS_INTERVAL_MS: u64 = 1_000;
/// How often the supervisor of the readers and the drain look at their state.
const TICK_MS: u64 = 10;
/// How long a new subscription may take to send its `initial-response`.
const SUBSCRIBE_WAIT_MS: u64 = 10_000;
/// The registered consumer of the output stream with [`ReadMethod::Efo`]; deregistered at the
/// end of the run, reused if an earlier run left it.
const CONSUMER_NAME: &str = "sluice-loadgen-pipeline";

/// How the output stream is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadMethod {
    /// A GetRecords loop per shard, pausing 1 ms after an empty answer: what any endpoint
    /// offers; the pause and the polling add about 1–2 ms to each latency.
    #[default]
    Poll,
    /// A SubscribeToShard subscription per shard (enhanced fan-out, HTTP/2), through a
    /// registered consumer: records are pushed as they are written.
    Efo,
}

/// Where a reader starts in its shard.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// Shards there when reading starts: what is written from now on.
    Latest,
    /// Shards that appear later (a reshard): all of it.
    TrimHorizon,
}

impl Start {
    fn name(self) -> &'static str {
        match self {
            Start::Latest => "LATEST",
            Start::TrimHorizon => "TRIM_HORIZON",
        }
    }
}

/// What only the pipeline mode uses; the rest comes from [`Options`] (`stream` is the source).
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// The stream the pipeline writes to; the source stream itself measures put-to-get.
    pub output_stream: String,
    /// Records per second over all producers; `None`: as fast as the source takes them.
    pub rate_per_s: Option<u64>,
    /// How long after the last put the output is read for the records still missing.
    pub drain_timeout_s: f64,
    /// Length of the raw PutRecords phase; 0 skips it.
    pub raw_put_s: f64,
    /// Length of the pass-through phase's puts; 0 (the default) skips it.
    pub passthrough_s: f64,
    pub read: ReadMethod,
}

/// One phase of puts, as the producers saw it.
#[derive(Debug, Clone, Serialize)]
pub struct PutPhase {
    pub stream: String,
    /// From the first request to the last answer.
    pub elapsed_s: f64,
    /// Records the stream acknowledged.
    pub records: u64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub requests: u64,
    /// Requests that failed whole (transport or API error); their records are not counted.
    pub errors: u64,
    /// Records a PutRecords answer refused (throttled or failed); not counted either.
    pub failed_records: u64,
    /// Per PutRecords request.
    pub request_latency: Latency,
}

/// The pass-through phase: puts into a scratch stream that is also read.
#[derive(Debug, Clone, Serialize)]
pub struct PassthroughPhase {
    pub stream: String,
    pub records_put: u64,
    pub put_records_per_s: f64,
    pub records_processed: u64,
    pub processed_records_per_s: f64,
    pub latency: Latency,
    pub records_lost: u64,
    pub drain_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    pub mode: Mode,
    pub source_stream: String,
    pub output_stream: String,
    pub source_shards: usize,
    /// The output stream's shards when reading started.
    pub output_shards: usize,
    pub read: ReadMethod,
    pub record_bytes: usize,
    pub batch: usize,
    pub concurrency: usize,
    /// The producers' rate; `null`: as fast as possible.
    pub rate_per_s: Option<u64>,
    /// PutRecords rate of the raw phase: same records, batch and concurrency, into a scratch
    /// stream nothing reads; `null` when skipped.
    pub raw_put_records_per_s: Option<f64>,
    pub raw_put: Option<PutPhase>,
    /// Processed rate of the pass-through phase: the same puts and reads, a scratch stream
    /// as source and output, nothing between them; `null` when skipped.
    pub passthrough_records_per_s: Option<f64>,
    pub passthrough: Option<PassthroughPhase>,
    /// Records the source acknowledged during the pipeline phase.
    pub records_put: u64,
    pub put_records_per_s: f64,
    /// Distinct records of this run seen on the output.
    pub records_processed: u64,
    /// From the first put to the last record seen on the output for the first time.
    pub processed_elapsed_s: f64,
    pub processed_records_per_s: f64,
    /// Put-to-processed: from a record's send time (`ts_us`) to its first sighting.
    pub latency: Latency,
    /// Acknowledged by the source, not seen on the output when the drain ended.
    pub records_lost: u64,
    /// Sightings of a record after its first.
    pub duplicates: u64,
    /// Output records that are not this run's (another run's, or without an `id` and `ts_us`).
    pub foreign_records: u64,
    pub read_errors: u64,
    /// From the last put to the end of reading.
    pub drain_s: f64,
    /// From the last record seen for the first time to the end of reading; `null` if none
    /// was. Near 0 with records lost: the pipeline was still delivering when the drain timed
    /// out (a backlog, not a loss: lower the rate or raise the drain timeout).
    pub output_idle_at_end_s: Option<f64>,
    /// The pipeline phase's puts in detail.
    pub put: PutPhase,
}

/// Microseconds since the Unix epoch, from a monotonic clock: send and receive times in one
/// process, immune to clock steps during the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Instant,
    epoch_unix_us: u64,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            epoch: Instant::now(),
            epoch_unix_us: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
        }
    }

    fn now_us(&self) -> u64 {
        self.epoch_unix_us + self.epoch.elapsed().as_micros() as u64
    }
}

/// The tracker is only ever held for short, panic-free updates; a poisoned lock still holds
/// consistent counts.
pub(crate) fn lock(t: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn pause(ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(ms))
}

pub(crate) async fn run(client: Client, o: &Options) -> Result<PipelineReport, LoadError> {
    let p = &o.pipeline;
    if p.output_stream.is_empty() {
        return Err(LoadError::Setup(
            "the pipeline mode needs an output stream".into(),
        ));
    }
    let phase_ok = |s: f64| (0.0..=PHASE_S_MAX).contains(&s);
    if !phase_ok(p.drain_timeout_s) || !phase_ok(p.raw_put_s) || !phase_ok(p.passthrough_s) {
        return Err(LoadError::Setup(format!(
            "the drain timeout, the raw phase and the pass-through phase are 0 to {PHASE_S_MAX} seconds"
        )));
    }
    if p.rate_per_s == Some(0) {
        return Err(LoadError::Setup("the rate must be positive".into()));
    }
    let run_id: u32 = rand::random();
    let source_shards = prepare(&client, &o.stream, o.shards).await?.len();
    if p.output_stream != o.stream {
        prepare(&client, &p.output_stream, o.shards).await?;
    }
    let raw_put = if p.raw_put_s > 0.0 {
        let shards = u32::try_from(source_shards).unwrap_or(o.shards).max(1);
        Some(raw_phase(&client, o, run_id, shards).await?)
    } else {
        None
    };
    let passthrough = if p.passthrough_s > 0.0 {
        let shards = u32::try_from(source_shards).unwrap_or(o.shards).max(1);
        Some(passthrough_phase(&client, o, run_id, shards).await?)
    } else {
        None
    };

    let (readers, measured) = read_and_measure(&client, o, run_id).await?;
    let (output_shards, put, drain_s, end_us) = measured;
    let tracker = &readers.tracker;

    let m = lock(tracker).matched();
    let processed_elapsed_s = m.processed_window_us as f64 / 1e6;
    Ok(PipelineReport {
        mode: Mode::Pipeline,
        source_stream: o.stream.clone(),
        output_stream: p.output_stream.clone(),
        source_shards,
        output_shards,
        read: p.read,
        record_bytes: o.record_bytes,
        batch: o.batch,
        concurrency: o.concurrency,
        rate_per_s: p.rate_per_s,
        raw_put_records_per_s: raw_put.as_ref().map(|r| r.records_per_s),
        raw_put,
        passthrough_records_per_s: passthrough.as_ref().map(|p| p.processed_records_per_s),
        passthrough,
        records_put: m.records_put,
        put_records_per_s: put.records_per_s,
        records_processed: m.records_processed,
        processed_elapsed_s,
        processed_records_per_s: per_s(m.records_processed, processed_elapsed_s),
        latency: m.latency,
        records_lost: m.records_lost,
        duplicates: m.duplicates,
        foreign_records: m.foreign_records,
        read_errors: readers.errors.load(Ordering::Relaxed),
        drain_s,
        output_idle_at_end_s: m
            .last_output_us
            .map(|last| end_us.saturating_sub(last) as f64 / 1e6),
        put,
    })
}

/// What [`measure`] returns: the output's shard count at the start, the puts, how long the
/// drain took and when reading ended.
type Measured = (usize, PutPhase, f64, u64);

/// Readers of `o.pipeline.output_stream` (through a registered consumer with
/// [`ReadMethod::Efo`], deregistered at the end), then [`measure`].
async fn read_and_measure(
    client: &Client,
    o: &Options,
    run_id: u32,
) -> Result<(Arc<Readers>, Measured), LoadError> {
    let p = &o.pipeline;
    let consumer_arn = match p.read {
        ReadMethod::Poll => None,
        ReadMethod::Efo => {
            let summary = client
                .call(
                    "DescribeStreamSummary",
                    &json!({"StreamName": p.output_stream}),
                )
                .await?;
            let stream_arn = summary["StreamDescriptionSummary"]["StreamARN"]
                .as_str()
                .unwrap_or_default();
            Some(consumer(client, stream_arn, CONSUMER_NAME).await?)
        }
    };
    let clock = Clock::new();
    let tracker = Arc::new(Mutex::new(Tracker::new(run_id)?));
    let readers = Arc::new(Readers {
        client: client.clone(),
        stream: p.output_stream.clone(),
        consumer_arn,
        clock,
        tracker,
        stop: AtomicBool::new(false),
        errors: AtomicU64::new(0),
    });
    let measured = measure(client.clone(), o, run_id, clock, readers.clone()).await;
    if let Some(arn) = &readers.consumer_arn {
        // Best effort: a consumer left behind is reused by the next run.
        let _ = client
            .call("DeregisterStreamConsumer", &json!({"ConsumerARN": arn}))
            .await;
    }
    Ok((readers, measured?))
}

/// The pass-through phase: a scratch stream (same shard count as the source) as both source
/// and output, put into at full speed for `passthrough_s` and read as the pipeline phase reads
/// its output, drained, then deleted.
async fn passthrough_phase(
    client: &Client,
    o: &Options,
    run_id: u32,
    shards: u32,
) -> Result<PassthroughPhase, LoadError> {
    let scratch = format!("sluice-loadgen-passthrough-{run_id:08x}");
    prepare(client, &scratch, shards).await?;
    let mut scratch_o = o.clone();
    scratch_o.stream = scratch.clone();
    scratch_o.duration_s = o.pipeline.passthrough_s;
    scratch_o.records_max = None;
    scratch_o.pipeline.output_stream = scratch.clone();
    scratch_o.pipeline.rate_per_s = None;
    let result = read_and_measure(client, &scratch_o, run_id).await;
    let deleted = client
        .call(
            "DeleteStream",
            &json!({"StreamName": scratch, "EnforceConsumerDeletion": true}),
        )
        .await;
    let (readers, (_, put, drain_s, _)) = result?;
    deleted.map_err(|e| LoadError::Setup(format!("deleting the scratch stream {scratch}: {e}")))?;
    let m = lock(&readers.tracker).matched();
    let elapsed_s = m.processed_window_us as f64 / 1e6;
    Ok(PassthroughPhase {
        stream: scratch,
        records_put: m.records_put,
        put_records_per_s: put.records_per_s,
        records_processed: m.records_processed,
        processed_records_per_s: per_s(m.records_processed, elapsed_s),
        latency: m.latency,
        records_lost: m.records_lost,
        drain_s,
    })
}

/// The pipeline phase: readers, producers, drain. Returns the output's shard count at the
/// start, the puts, how long the drain took and when reading ended.
async fn measure(
    client: Client,
    o: &Options,
    run_id: u32,
    clock: Clock,
    readers: Arc<Readers>,
) -> Result<Measured, LoadError> {
    let p = &o.pipeline;
    let tracker = readers.tracker.clone();
    // Every reader holds its LATEST position before the first put.
    let (output_shards, supervisor) = readers.clone().start().await?;
    let producer = Producer::new(
        client,
        Sink::Stream,
        &o.stream,
        run_id,
        o,
        clock,
        tracker.clone(),
    );
    let put = Arc::new(producer)
        .run(
            o.concurrency,
            Duration::from_secs_f64(o.duration_s),
            p.rate_per_s,
            o.records_max,
        )
        .await;
    let put_end = Instant::now();
    let drain_deadline = put_end + Duration::from_secs_f64(p.drain_timeout_s);
    while put.is_ok() && lock(&tracker).missing() > 0 && Instant::now() < drain_deadline {
        pause(TICK_MS).await;
    }
    let drain_s = put_end.elapsed().as_secs_f64();
    let end_us = clock.now_us();
    readers.stop.store(true, Ordering::Relaxed);
    let _ = supervisor.await;
    Ok((output_shards, put?, drain_s, end_us))
}

pub(crate) fn per_s(count: u64, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        count as f64 / elapsed_s
    } else {
        0.0
    }
}

/// The raw phase: puts into a scratch stream (same shard count as the source) for
/// `raw_put_s`, at full speed, then deletes it.
pub(crate) async fn raw_phase(
    client: &Client,
    o: &Options,
    run_id: u32,
    shards: u32,
) -> Result<PutPhase, LoadError> {
    let scratch = format!("sluice-loadgen-raw-{run_id:08x}");
    prepare(client, &scratch, shards).await?;
    let tracker = Arc::new(Mutex::new(Tracker::new(run_id)?));
    let producer = Producer::new(
        client.clone(),
        Sink::Stream,
        &scratch,
        run_id,
        o,
        Clock::new(),
        tracker,
    );
    let phase = Arc::new(producer)
        .run(
            o.concurrency,
            Duration::from_secs_f64(o.pipeline.raw_put_s),
            None,
            None,
        )
        .await;
    let deleted = client
        .call(
            "DeleteStream",
            &json!({"StreamName": scratch, "EnforceConsumerDeletion": true}),
        )
        .await;
    let phase = phase?;
    deleted.map_err(|e| LoadError::Setup(format!("deleting the scratch stream {scratch}: {e}")))?;
    Ok(phase)
}

/// What a [`Producer`] puts into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    /// A Kinesis stream, with PutRecords.
    Stream,
    /// A Firehose delivery stream, with PutRecordBatch (the client calls Firehose).
    Delivery,
}

impl Sink {
    fn operation(self) -> &'static str {
        match self {
            Sink::Stream => "PutRecords",
            Sink::Delivery => "PutRecordBatch",
        }
    }

    /// The answer's count of refused records and its per-record results.
    fn answer_keys(self) -> (&'static str, &'static str) {
        match self {
            Sink::Stream => ("FailedRecordCount", "Records"),
            Sink::Delivery => ("FailedPutCount", "RequestResponses"),
        }
    }
}

/// Puts stamped records with `concurrency` tasks, each with one request in flight.
pub(crate) struct Producer {
    client: Client,
    sink: Sink,
    stream: String,
    /// The stream name as a JSON string, written into every body.
    stream_json: String,
    run_id: u32,
    record_bytes: usize,
    batch: u64,
    clock: Clock,
    tracker: Arc<Mutex<Tracker>>,
    /// The next id to hand out; ids are claimed a batch at a time.
    next_id: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    failed_records: AtomicU64,
}

impl Producer {
    pub(crate) fn new(
        client: Client,
        sink: Sink,
        stream: &str,
        run_id: u32,
        o: &Options,
        clock: Clock,
        tracker: Arc<Mutex<Tracker>>,
    ) -> Producer {
        Producer {
            client,
            sink,
            stream: stream.to_string(),
            stream_json: Value::from(stream).to_string(),
            run_id,
            record_bytes: o.record_bytes,
            batch: o.batch as u64,
            clock,
            tracker,
            next_id: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            failed_records: AtomicU64::new(0),
        }
    }

    /// Puts until `duration` has passed or `records_max` ids are handed out.
    pub(crate) async fn run(
        self: Arc<Self>,
        concurrency: usize,
        duration: Duration,
        rate_per_s: Option<u64>,
        records_max: Option<u64>,
    ) -> Result<PutPhase, LoadError> {
        let mut hist = histogram()?;
        let start = Instant::now();
        let deadline = start + duration;
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let local = Histogram::new_from(&hist);
                tokio::spawn(
                    self.clone()
                        .task(local, start, deadline, rate_per_s, records_max),
                )
            })
            .collect();
        let mut end: Option<Instant> = None;
        for t in tasks {
            // A task that panicked has nothing to add.
            if let Ok((local, last)) = t.await {
                hist.add(&local)
                    .map_err(|e| LoadError::Histogram(e.to_string()))?;
                end = end.max(last);
            }
        }
        let elapsed_s = end
            .unwrap_or_else(Instant::now)
            .duration_since(start)
            .as_secs_f64();
        let records = lock(&self.tracker).records_acked();
        Ok(PutPhase {
            stream: self.stream.clone(),
            elapsed_s,
            records,
            records_per_s: per_s(records, elapsed_s),
            mb_per_s: per_s(records * self.record_bytes as u64, elapsed_s) / 1e6,
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            failed_records: self.failed_records.load(Ordering::Relaxed),
            request_latency: latency(&hist),
        })
    }

    /// One producer: returns its request latencies and when its last answer came.
    async fn task(
        self: Arc<Self>,
        mut local: Histogram<u64>,
        start: Instant,
        deadline: Instant,
        rate_per_s: Option<u64>,
        records_max: Option<u64>,
    ) -> (Histogram<u64>, Option<Instant>) {
        let mut last = None;
        while Instant::now() < deadline {
            let first = self.next_id.fetch_add(self.batch, Ordering::Relaxed);
            let count = match records_max {
                Some(m) if first >= m => break,
                Some(m) => self.batch.min(m - first),
                None => self.batch,
            };
            if let Some(rate) = rate_per_s {
                // Record `first` is due `first / rate` seconds after the start.
                let due = start + Duration::from_secs_f64(first as f64 / rate as f64);
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
            }
            let ts_us = self.clock.now_us();
            lock(&self.tracker).sending(first, count, ts_us);
            let body = match self.sink {
                Sink::Stream => stamp::put_records_body(
                    &self.stream_json,
                    first,
                    count,
                    ts_us,
                    self.run_id,
                    self.record_bytes,
                ),
                Sink::Delivery => stamp::put_record_batch_body(
                    &self.stream_json,
                    first,
                    count,
                    ts_us,
                    self.run_id,
                    self.record_bytes,
                ),
            };
            let sent = Instant::now();
            let answer = self.client.call_raw(self.sink.operation(), body).await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            match answer {
                Ok(resp) => {
                    local.saturating_record(sent.elapsed().as_micros() as u64);
                    last = Some(Instant::now());
                    self.acknowledge(first, count, &resp);
                }
                Err(_) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    pause(ERROR_PAUSE_MS).await;
                }
            }
        }
        (local, last)
    }

    /// Marks the records of a PutRecords (PutRecordBatch) answer that the stream took.
    fn acknowledge(&self, first: u64, count: u64, resp: &[u8]) {
        let (failed_key, results_key) = self.sink.answer_keys();
        if count_failed(resp, failed_key) == 0 {
            let mut t = lock(&self.tracker);
            (first..first + count).for_each(|id| t.acked(id));
            return;
        }
        let v: Value = serde_json::from_slice(resp).unwrap_or_default();
        let results = v[results_key]
            .as_array()
            .filter(|r| r.len() as u64 == count);
        let Some(results) = results else {
            // An answer that does not say which records were taken: none are counted.
            self.errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut t = lock(&self.tracker);
        for (id, r) in (first..).zip(results) {
            if r.get("ErrorCode").is_some() {
                self.failed_records.fetch_add(1, Ordering::Relaxed);
            } else {
                t.acked(id);
            }
        }
    }
}

/// The members of a GetRecords answer the readers use.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetRecordsPage<'a> {
    #[serde(default, borrow)]
    records: Vec<OutputRecord<'a>>,
    next_shard_iterator: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OutputRecord<'a> {
    /// Borrowed from the answer (base64 has nothing to escape).
    #[serde(borrow)]
    data: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    sequence_number: std::borrow::Cow<'a, str>,
}

/// The output stream's readers: one GetRecords loop or one subscription per shard.
struct Readers {
    client: Client,
    stream: String,
    /// With [`ReadMethod::Efo`]: the registered consumer that subscribes.
    consumer_arn: Option<String>,
    clock: Clock,
    tracker: Arc<Mutex<Tracker>>,
    stop: AtomicBool,
    errors: AtomicU64,
}

impl Readers {
    /// Starts a reader on every shard from LATEST, and a supervisor that starts one from
    /// TRIM_HORIZON on each shard listed later and, once `stop` is set, waits for them all.
    /// Returns the shard count at the start and the supervisor.
    async fn start(self: Arc<Self>) -> Result<(usize, tokio::task::JoinHandle<()>), LoadError> {
        let shards = self.list_shards().await?;
        let mut known = HashSet::new();
        let mut tasks = Vec::new();
        for shard in &shards {
            match self.open(shard.clone(), Start::Latest).await {
                Ok(task) => tasks.push(task),
                Err(e) => {
                    self.stop.store(true, Ordering::Relaxed);
                    for t in tasks {
                        let _ = t.await;
                    }
                    return Err(e.into());
                }
            }
            known.insert(shard.clone());
        }
        let supervisor = tokio::spawn(async move {
            let mut listed = Instant::now();
            while !self.stop.load(Ordering::Relaxed) {
                pause(TICK_MS).await;
                if listed.elapsed() < Duration::from_millis(LIST_SHARDS_INTERVAL_MS) {
                    continue;
                }
                listed = Instant::now();
                let Ok(now) = self.list_shards().await else {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let new: Vec<String> = now.into_iter().filter(|s| !known.contains(s)).collect();
                for shard in new {
                    match self.open(shard.clone(), Start::TrimHorizon).await {
                        Ok(task) => {
                            known.insert(shard);
                            tasks.push(task);
                        }
                        Err(_) => {
                            self.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            for t in tasks {
                let _ = t.await;
            }
        });
        Ok((shards.len(), supervisor))
    }

    /// Starts reading `shard` from `start`; returns once the position is fixed.
    async fn open(
        self: &Arc<Self>,
        shard: String,
        start: Start,
    ) -> Result<tokio::task::JoinHandle<()>, ClientError> {
        match &self.consumer_arn {
            None => {
                let position = json!({"ShardIteratorType": start.name()});
                let it = self.iterator(&shard, position).await?;
                Ok(tokio::spawn(self.clone().follow(shard, it)))
            }
            Some(arn) => {
                let sub = self
                    .subscribe(arn, &shard, json!({"Type": start.name()}))
                    .await?;
                Ok(tokio::spawn(self.clone().push(shard, sub, start)))
            }
        }
    }

    /// Every shard id of the stream, through ListShards' pages.
    async fn list_shards(&self) -> Result<Vec<String>, ClientError> {
        let mut ids = Vec::new();
        let mut req = json!({"StreamName": self.stream});
        loop {
            let page = self.client.call("ListShards", &req).await?;
            ids.extend(
                page["Shards"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["ShardId"].as_str().map(str::to_string)),
            );
            match page["NextToken"].as_str() {
                Some(t) => req = json!({"NextToken": t}),
                None => return Ok(ids),
            }
        }
    }

    /// A shard iterator; `position` holds `ShardIteratorType` and its members.
    async fn iterator(&self, shard: &str, mut position: Value) -> Result<String, ClientError> {
        position["StreamName"] = json!(self.stream);
        position["ShardId"] = json!(shard);
        let r = self.client.call("GetShardIterator", &position).await?;
        Ok(r["ShardIterator"].as_str().unwrap_or_default().to_string())
    }

    /// Reads one shard until `stop`, or to its end if it is closed.
    async fn follow(self: Arc<Self>, shard: String, mut it: String) {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut last_sequence: Option<String> = None;
        // A record's data, base64-decoded (one buffer for all).
        let mut decoded = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            let body = json!({"ShardIterator": it, "Limit": GET_RECORDS_LIMIT}).to_string();
            let answer = self.client.call_raw("GetRecords", body.into_bytes()).await;
            let now_us = self.clock.now_us();
            let bytes = match answer {
                Ok(bytes) => bytes,
                Err(e) => {
                    match e.aws_type() {
                        Some("ProvisionedThroughputExceededException") => {
                            pause(READ_THROTTLED_MS).await;
                        }
                        Some("ExpiredIteratorException") => {
                            let position = match &last_sequence {
                                Some(seq) => json!({
                                    "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                                    "StartingSequenceNumber": seq,
                                }),
                                None => json!({"ShardIteratorType": "LATEST"}),
                            };
                            match self.iterator(&shard, position).await {
                                Ok(next) => it = next,
                                Err(_) => {
                                    self.errors.fetch_add(1, Ordering::Relaxed);
                                    pause(ERROR_PAUSE_MS).await;
                                }
                            }
                        }
                        _ => {
                            self.errors.fetch_add(1, Ordering::Relaxed);
                            pause(ERROR_PAUSE_MS).await;
                        }
                    }
                    continue;
                }
            };
            let Ok(page) = serde_json::from_slice::<GetRecordsPage<'_>>(&bytes) else {
                self.errors.fetch_add(1, Ordering::Relaxed);
                pause(ERROR_PAUSE_MS).await;
                continue;
            };
            if !page.records.is_empty() {
                let stamps: Vec<_> = page
                    .records
                    .iter()
                    .map(|r| {
                        decoded.clear();
                        b64.decode_vec(r.data.as_bytes(), &mut decoded)
                            .ok()
                            .and_then(|()| stamp::decode(&decoded))
                    })
                    .collect();
                let mut t = lock(&self.tracker);
                stamps.into_iter().for_each(|s| t.seen(s, now_us));
            }
            let empty = page.records.is_empty();
            if let Some(r) = page.records.last() {
                last_sequence = Some(r.sequence_number.to_string());
            }
            match page.next_shard_iterator {
                Some(next) => it = next,
                None => return, // the shard is closed and read to its end
            }
            if empty {
                pause(EMPTY_POLL_MS).await;
            }
        }
    }
}

impl Readers {
    /// A subscription of the consumer to `shard` from `position`, once its `initial-response`
    /// came: the server fixes the position before sending it.
    async fn subscribe(
        &self,
        arn: &str,
        shard: &str,
        position: Value,
    ) -> Result<Subscription, ClientError> {
        let mut sub = self.client.subscribe_to_shard(arn, shard, position).await?;
        let first =
            tokio::time::timeout(Duration::from_millis(SUBSCRIBE_WAIT_MS), sub.next_event()).await;
        match first {
            Ok(Ok(Some(SubscriptionEvent::Initial))) => Ok(sub),
            Ok(Ok(Some(SubscriptionEvent::Shard(_)))) => Err(ClientError::Decode(
                "a subscription's first event was not its initial-response".into(),
            )),
            Ok(Ok(None)) => Err(ClientError::Transport(
                "the subscription ended before its initial-response".into(),
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Transport(format!(
                "no initial-response within {SUBSCRIBE_WAIT_MS} ms"
            ))),
        }
    }

    /// Takes one shard's pushed records until `stop`, or to its end if it is closed; a
    /// subscription that ends (after 5 minutes) or fails is opened again after the last
    /// record it delivered.
    async fn push(self: Arc<Self>, shard: String, mut sub: Subscription, start: Start) {
        let b64 = base64::engine::general_purpose::STANDARD;
        let Some(arn) = self.consumer_arn.clone() else {
            return;
        };
        let mut continuation: Option<String> = None;
        while !self.stop.load(Ordering::Relaxed) {
            // next_event is cancel-safe: a frame is only taken whole.
            let event = tokio::select! {
                e = sub.next_event() => e,
                _ = pause(TICK_MS * 10) => continue,
            };
            match event {
                Ok(Some(SubscriptionEvent::Shard(e))) => {
                    let now_us = self.clock.now_us();
                    let records = e["Records"].as_array();
                    if let Some(records) = records.filter(|r| !r.is_empty()) {
                        let stamps: Vec<_> = records
                            .iter()
                            .map(|r| {
                                let data = r["Data"].as_str().unwrap_or_default();
                                b64.decode(data).ok().and_then(|d| stamp::decode(&d))
                            })
                            .collect();
                        let mut t = lock(&self.tracker);
                        stamps.into_iter().for_each(|s| t.seen(s, now_us));
                    }
                    match e["ContinuationSequenceNumber"].as_str() {
                        Some(c) => continuation = Some(c.to_string()),
                        None => return, // the shard is closed and read to its end
                    }
                }
                Ok(Some(SubscriptionEvent::Initial)) => {}
                Ok(None) | Err(_) => {
                    if event.is_err() {
                        self.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let position = match &continuation {
                        Some(c) => json!({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": c}),
                        None => json!({"Type": start.name()}),
                    };
                    match self.subscribe(&arn, &shard, position).await {
                        Ok(next) => sub = next,
                        Err(_) => {
                            self.errors.fetch_add(1, Ordering::Relaxed);
                            // A subscription taken over less than 5 s ago is refused
                            // (ResourceInUseException): wait before the next attempt.
                            pause(READ_THROTTLED_MS).await;
                        }
                    }
                }
            }
        }
    }
}
