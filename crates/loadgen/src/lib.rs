//! `sluice-loadgen` drives any Kinesis-compatible endpoint and reports what it measured as JSON.
//!
//! Modes ([`Mode`]):
//! - `put`: PutRecords throughput (records/s, MB/s) and per-request latency, for a record size,
//!   batch size and concurrency.
//! - `e2e`: put-to-get latency: a producer puts records stamped with their send time at a fixed
//!   rate while one reader per shard polls GetRecords; each record's latency is receive − send.
//! - `read`: GetRecords throughput from TRIM_HORIZON over every shard.
//! - `efo`: put-to-push latency with enhanced fan-out: the same producer as `e2e`, while a
//!   registered consumer holds one SubscribeToShard subscription per shard (HTTP/2) and each
//!   record's latency is push − send.
//! - `pipeline`: a stream-to-stream pipeline (a processor between two streams) measured only
//!   through the Kinesis API: JSON records carrying an id and their send time are put into the
//!   source stream while every shard of the output stream is read, and output records are
//!   matched to sent ones by id (put-to-processed latency, records lost, duplicates), after a
//!   short raw PutRecords phase into a scratch stream for comparison ([`pipeline`]).
//!
//! - `delivery`: PutRecordBatch into a Firehose delivery stream (by default one the run creates,
//!   converting to Parquet) and the rate records reach objects, read from the endpoint's
//!   delivery metrics, after the same raw PutRecords phase ([`delivery`]).
//!
//! Every run is bounded by `duration_s` and, optionally, `records_max`; the pipeline and
//! delivery modes also by their drain timeout. [`run`] returns an [`Outcome`]: a [`Report`] for
//! the first four modes, a [`PipelineReport`] for `pipeline`, a [`DeliveryReport`] for
//! `delivery`.

pub mod delivery;
pub mod pipeline;
mod stamp;
mod tracker;

pub use delivery::{DeliveryFormat, DeliveryOptions, DeliveryReport};
pub use pipeline::{PipelineOptions, PipelineReport, PutPhase, ReadMethod};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;
use sluice_client::{Client, ClientError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Put,
    E2e,
    Read,
    Efo,
    Pipeline,
    Delivery,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub stream: String,
    /// Create the stream with this many shards if it does not exist.
    pub shards: u32,
    pub record_bytes: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub duration_s: f64,
    pub records_max: Option<u64>,
    /// e2e: records per second the producer sends.
    pub rate: u64,
    pub seed: u64,
    /// What only the pipeline mode uses.
    pub pipeline: PipelineOptions,
    /// What only the delivery mode uses.
    pub delivery: DeliveryOptions,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub samples: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: Mode,
    pub stream: String,
    pub shards: usize,
    pub record_bytes: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub elapsed_s: f64,
    pub records: u64,
    pub bytes: u64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub throttled_records: u64,
    /// put: per PutRecords request; e2e: per record, put to get; read: per GetRecords request;
    /// efo: per record, put to push.
    pub latency: Latency,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("{0}")]
    Setup(String),
    #[error("encoding a request: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("latency histogram: {0}")]
    Histogram(String),
}

/// An empty latency histogram (microseconds, 1 µs to 60 s). Tasks make theirs with
/// [`Histogram::new_from`], which reuses these (valid) bounds.
fn histogram() -> Result<Histogram<u64>, LoadError> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| LoadError::Histogram(e.to_string()))
}

/// Adds a task's latencies into the run's histogram. A task that did not finish (it panicked
/// or was cancelled) has none to add.
async fn merge(
    hist: &mut Histogram<u64>,
    task: tokio::task::JoinHandle<Histogram<u64>>,
) -> Result<(), LoadError> {
    if let Ok(local) = task.await {
        hist.add(&local)
            .map_err(|e| LoadError::Histogram(e.to_string()))?;
    }
    Ok(())
}

pub(crate) fn latency(h: &Histogram<u64>) -> Latency {
    let ms = |us: u64| us as f64 / 1000.0;
    Latency {
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
        samples: h.len(),
    }
}

/// What differs between the modes' reports.
struct Shape {
    shards: usize,
    record_bytes: usize,
    batch: usize,
    concurrency: usize,
    bytes: u64,
}

fn report(
    o: &Options,
    shape: Shape,
    start: Instant,
    totals: &Totals,
    hist: &Histogram<u64>,
) -> Report {
    let elapsed = start.elapsed().as_secs_f64();
    let records = totals.records.load(Ordering::Relaxed);
    Report {
        mode: o.mode,
        stream: o.stream.clone(),
        shards: shape.shards,
        record_bytes: shape.record_bytes,
        batch: shape.batch,
        concurrency: shape.concurrency,
        elapsed_s: elapsed,
        records,
        bytes: shape.bytes,
        records_per_s: records as f64 / elapsed,
        mb_per_s: shape.bytes as f64 / elapsed / 1e6,
        requests: totals.requests.load(Ordering::Relaxed),
        errors: totals.errors.load(Ordering::Relaxed),
        throttled_records: totals.throttled.load(Ordering::Relaxed),
        latency: latency(hist),
    }
}

/// Makes sure the stream exists (created with `shards` shards if not) and is ACTIVE; returns
/// its shard ids.
async fn prepare(client: &Client, stream: &str, shards: u32) -> Result<Vec<String>, LoadError> {
    match client
        .call("DescribeStreamSummary", &json!({"StreamName": stream}))
        .await
    {
        Ok(_) => {}
        Err(e) if e.aws_type() == Some("ResourceNotFoundException") => {
            client
                .call(
                    "CreateStream",
                    &json!({"StreamName": stream, "ShardCount": shards}),
                )
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    for _ in 0..600 {
        let d = client
            .call("DescribeStreamSummary", &json!({"StreamName": stream}))
            .await?;
        if d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE" {
            let shards = client
                .call("ListShards", &json!({"StreamName": stream}))
                .await?;
            let ids = shards["Shards"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s["ShardId"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            return Ok(ids);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(LoadError::Setup(format!(
        "stream {stream} did not become ACTIVE within 60 s"
    )))
}

/// What a run reports: the shape depends on the mode.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// `put`, `e2e`, `read`, `efo`.
    Stream(Report),
    Pipeline(Box<PipelineReport>),
    Delivery(Box<DeliveryReport>),
}

pub async fn run(client: Client, o: Options) -> Result<Outcome, LoadError> {
    if o.batch == 0
        || o.batch > 500
        || o.concurrency == 0
        || !(o.duration_s.is_finite() && o.duration_s > 0.0)
    {
        return Err(LoadError::Setup(
            "batch must be 1..=500, concurrency and duration positive".into(),
        ));
    }
    let shards = || prepare(&client, &o.stream, o.shards);
    let report = match o.mode {
        Mode::Put => {
            let count = shards().await?.len();
            put(client, o, count).await
        }
        Mode::E2e => {
            let ids = shards().await?;
            e2e(client, o, ids).await
        }
        Mode::Read => {
            let ids = shards().await?;
            read(client, o, ids).await
        }
        Mode::Efo => {
            let ids = shards().await?;
            efo(client, o, ids).await
        }
        Mode::Pipeline => {
            return pipeline::run(client, &o)
                .await
                .map(|r| Outcome::Pipeline(Box::new(r)))
        }
        Mode::Delivery => {
            return delivery::run(client, &o)
                .await
                .map(|r| Outcome::Delivery(Box::new(r)))
        }
    };
    report.map(Outcome::Stream)
}

/// PutRecords bodies with random partition keys; the loop reuses them round-robin so the
/// generator spends its time sending, not encoding.
fn bodies(o: &Options, count: usize) -> Result<Vec<Vec<u8>>, LoadError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(o.seed);
    let data: Vec<u8> = (0..o.record_bytes)
        .map(|_| rng.gen_range(b'a'..=b'z'))
        .collect();
    let data_b64 = base64::engine::general_purpose::STANDARD.encode(&data);
    (0..count)
        .map(|_| {
            let records: Vec<_> = (0..o.batch).map(|_| json!({"Data": data_b64, "PartitionKey": format!("pk-{}", rng.gen::<u64>())})).collect();
            serde_json::to_vec(&json!({"StreamName": o.stream, "Records": records}))
                .map_err(LoadError::from)
        })
        .collect()
}

struct Totals {
    records: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    throttled: AtomicU64,
}

impl Totals {
    fn new() -> Arc<Totals> {
        Arc::new(Totals {
            records: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        })
    }
}

async fn put(client: Client, o: Options, shard_count: usize) -> Result<Report, LoadError> {
    let bodies = Arc::new(bodies(&o, 64)?);
    let totals = Totals::new();
    let mut hist = histogram()?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.duration_s);
    let tasks: Vec<_> = (0..o.concurrency)
        .map(|t| {
            let (client, bodies, totals, o) =
                (client.clone(), bodies.clone(), totals.clone(), o.clone());
            let mut local = Histogram::new_from(&hist);
            tokio::spawn(async move {
                let mut i = t;
                while Instant::now() < deadline
                    && o.records_max
                        .is_none_or(|m| totals.records.load(Ordering::Relaxed) < m)
                {
                    let body = bodies[i % bodies.len()].clone();
                    i += 1;
                    let sent = Instant::now();
                    match client.call_raw("PutRecords", body).await {
                        Ok(resp) => {
                            local.saturating_record(sent.elapsed().as_micros() as u64);
                            let failed = count_failed(&resp, "FailedRecordCount");
                            totals
                                .records
                                .fetch_add((o.batch - failed) as u64, Ordering::Relaxed);
                            totals.throttled.fetch_add(failed as u64, Ordering::Relaxed);
                        }
                        Err(_) => {
                            totals.errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    totals.requests.fetch_add(1, Ordering::Relaxed);
                }
                local
            })
        })
        .collect();
    for t in tasks {
        merge(&mut hist, t).await?;
    }
    let records = totals.records.load(Ordering::Relaxed);
    let shape = Shape {
        shards: shard_count,
        record_bytes: o.record_bytes,
        batch: o.batch,
        concurrency: o.concurrency,
        bytes: records * o.record_bytes as u64,
    };
    Ok(report(&o, shape, start, &totals, &hist))
}

/// The count a put answer gives under `key` (`FailedRecordCount`, or PutRecordBatch's
/// `FailedPutCount`), found without parsing the answer; 0 when absent.
pub(crate) fn count_failed(resp: &[u8], key: &str) -> usize {
    let key = format!("\"{key}\":");
    let key = key.as_bytes();
    resp.windows(key.len())
        .position(|w| w == key)
        .map(|at| {
            resp[at + key.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0usize, |n, b| n * 10 + (b - b'0') as usize)
        })
        .unwrap_or(0)
}

async fn iterator(
    client: &Client,
    stream: &str,
    shard: &str,
    kind: &str,
) -> Result<String, ClientError> {
    let r = client
        .call(
            "GetShardIterator",
            &json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": kind}),
        )
        .await?;
    Ok(r["ShardIterator"].as_str().unwrap_or_default().to_string())
}

async fn e2e(client: Client, o: Options, shards: Vec<String>) -> Result<Report, LoadError> {
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Totals::new();
    let hist = histogram()?;
    let mut readers = Vec::new();
    for shard in &shards {
        let it = iterator(&client, &o.stream, shard, "LATEST").await?;
        let (client, stop, totals) = (client.clone(), stop.clone(), totals.clone());
        let mut local = Histogram::new_from(&hist);
        readers.push(tokio::spawn(async move {
            let mut it = it;
            while !stop.load(Ordering::Relaxed) {
                let r = match client
                    .call("GetRecords", &json!({"ShardIterator": it}))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => {
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                };
                let now = epoch.elapsed().as_micros() as u64;
                for rec in r["Records"].as_array().into_iter().flatten() {
                    if let Some(sent) = rec["Data"].as_str().and_then(sent_at) {
                        local.saturating_record(now.saturating_sub(sent).max(1));
                        totals.records.fetch_add(1, Ordering::Relaxed);
                    }
                }
                match r["NextShardIterator"].as_str() {
                    Some(next) => it = next.to_string(),
                    None => break,
                }
            }
            local
        }));
    }
    produce_and_report(
        &client,
        &o,
        shards.len(),
        epoch,
        stop,
        readers,
        &totals,
        hist,
    )
    .await
}

/// The latency modes' second half: produce at the set rate while the readers run, let them
/// catch up, stop them and report their latencies.
#[allow(clippy::too_many_arguments)]
async fn produce_and_report(
    client: &Client,
    o: &Options,
    shards: usize,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    readers: Vec<tokio::task::JoinHandle<Histogram<u64>>>,
    totals: &Totals,
    mut hist: Histogram<u64>,
) -> Result<Report, LoadError> {
    let start = Instant::now();
    produce(client, o, epoch, totals).await;
    // Let the readers catch up with the last records.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        merge(&mut hist, r).await?;
    }
    let records = totals.records.load(Ordering::Relaxed);
    let record_bytes = o.record_bytes.max(8);
    let shape = Shape {
        shards,
        record_bytes,
        batch: 1,
        concurrency: 1,
        bytes: records * record_bytes as u64,
    };
    Ok(report(o, shape, start, totals, &hist))
}

/// The latency producer: one record per PutRecord, at `o.rate`, each stamped with its send
/// time (microseconds since `epoch`) in its first 8 bytes.
async fn produce(client: &Client, o: &Options, epoch: Instant, totals: &Totals) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.duration_s);
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(1) as f64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(o.seed);
    let mut next_send = Instant::now();
    let mut sent = 0u64;
    while Instant::now() < deadline && o.records_max.is_none_or(|m| sent < m) {
        let mut data = (epoch.elapsed().as_micros() as u64).to_le_bytes().to_vec();
        data.resize(o.record_bytes.max(8), b'x');
        let body = json!({"StreamName": o.stream, "PartitionKey": format!("pk-{}", rng.gen::<u32>()), "Data": base64::engine::general_purpose::STANDARD.encode(&data)});
        if client.call("PutRecord", &body).await.is_err() {
            totals.errors.fetch_add(1, Ordering::Relaxed);
        }
        totals.requests.fetch_add(1, Ordering::Relaxed);
        sent += 1;
        next_send += interval;
        let now = Instant::now();
        if next_send > now {
            tokio::time::sleep(next_send - now).await;
        }
    }
}

/// The send time stamped in a record's data (base64), if it has one.
fn sent_at(data_b64: &str) -> Option<u64> {
    base64::engine::general_purpose::STANDARD
        .decode(data_b64)
        .ok()
        .and_then(|d| d.first_chunk::<8>().map(|b| u64::from_le_bytes(*b)))
}

/// The loadgen's registered consumer `name` of the stream (registered if needed), once ACTIVE.
pub(crate) async fn consumer(
    client: &Client,
    stream_arn: &str,
    name: &str,
) -> Result<String, LoadError> {
    match client
        .call(
            "RegisterStreamConsumer",
            &json!({"StreamARN": stream_arn, "ConsumerName": name}),
        )
        .await
    {
        Ok(_) => {}
        Err(e) if e.aws_type() == Some("ResourceInUseException") => {}
        Err(e) => return Err(e.into()),
    }
    for _ in 0..600 {
        let d = client
            .call(
                "DescribeStreamConsumer",
                &json!({"StreamARN": stream_arn, "ConsumerName": name}),
            )
            .await?;
        let c = &d["ConsumerDescription"];
        if c["ConsumerStatus"] == "ACTIVE" {
            return Ok(c["ConsumerARN"].as_str().unwrap_or_default().to_string());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(LoadError::Setup(
        "consumer did not become ACTIVE within 60 s".into(),
    ))
}

async fn efo(client: Client, o: Options, shards: Vec<String>) -> Result<Report, LoadError> {
    let summary = client
        .call("DescribeStreamSummary", &json!({"StreamName": o.stream}))
        .await?;
    let stream_arn = summary["StreamDescriptionSummary"]["StreamARN"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let consumer_arn = consumer(&client, &stream_arn, "sluice-loadgen").await?;
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Totals::new();
    let hist = histogram()?;
    let mut readers = Vec::new();
    for shard in &shards {
        let mut sub = client
            .subscribe_to_shard(&consumer_arn, shard, json!({"Type": "LATEST"}))
            .await?;
        let (client, stop, totals, consumer_arn, shard) = (
            client.clone(),
            stop.clone(),
            totals.clone(),
            consumer_arn.clone(),
            shard.clone(),
        );
        let mut local = Histogram::new_from(&hist);
        readers.push(tokio::spawn(async move {
            let mut continuation: Option<String> = None;
            while !stop.load(Ordering::Relaxed) {
                let ev = tokio::select! {
                    ev = sub.next_event() => ev,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                };
                match ev {
                    Ok(Some(sluice_client::SubscriptionEvent::Shard(e))) => {
                        let now = epoch.elapsed().as_micros() as u64;
                        for rec in e["Records"].as_array().into_iter().flatten() {
                            if let Some(sent) = rec["Data"].as_str().and_then(sent_at) {
                                local.saturating_record(now.saturating_sub(sent).max(1));
                                totals.records.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        continuation = e["ContinuationSequenceNumber"].as_str().map(str::to_string);
                        if continuation.is_none() {
                            break; // the shard was closed
                        }
                    }
                    Ok(Some(sluice_client::SubscriptionEvent::Initial)) => {}
                    Ok(None) | Err(_) => {
                        // The subscription's 5 minutes are up (or it failed): resubscribe.
                        if !matches!(ev, Ok(None)) {
                            totals.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        let position = match &continuation {
                            Some(c) => {
                                json!({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": c})
                            }
                            None => json!({"Type": "LATEST"}),
                        };
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        match client
                            .subscribe_to_shard(&consumer_arn, &shard, position)
                            .await
                        {
                            Ok(s) => sub = s,
                            Err(_) => {
                                totals.errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
            local
        }));
    }
    produce_and_report(
        &client,
        &o,
        shards.len(),
        epoch,
        stop,
        readers,
        &totals,
        hist,
    )
    .await
}

async fn read(client: Client, o: Options, shards: Vec<String>) -> Result<Report, LoadError> {
    let totals = Totals::new();
    let bytes = Arc::new(AtomicU64::new(0));
    let mut hist = histogram()?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.duration_s);
    let mut tasks = Vec::new();
    for shard in &shards {
        let it = iterator(&client, &o.stream, shard, "TRIM_HORIZON").await?;
        let (client, totals, bytes, o) = (client.clone(), totals.clone(), bytes.clone(), o.clone());
        let mut local = Histogram::new_from(&hist);
        tasks.push(tokio::spawn(async move {
            let mut it = it;
            while Instant::now() < deadline
                && o.records_max
                    .is_none_or(|m| totals.records.load(Ordering::Relaxed) < m)
            {
                let sent = Instant::now();
                // A request that cannot be encoded counts as a failed one.
                let r = match serde_json::to_vec(&json!({"ShardIterator": it})) {
                    Ok(body) => client.call_raw("GetRecords", body).await.ok(),
                    Err(_) => None,
                };
                let Some(r) = r else {
                    totals.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                };
                local.saturating_record(sent.elapsed().as_micros() as u64);
                totals.requests.fetch_add(1, Ordering::Relaxed);
                let v: serde_json::Value = serde_json::from_slice(&r).unwrap_or_default();
                let Some(recs) = v["Records"].as_array().filter(|a| !a.is_empty()) else {
                    break; // caught up: the shard is read
                };
                totals
                    .records
                    .fetch_add(recs.len() as u64, Ordering::Relaxed);
                let b: usize = recs
                    .iter()
                    .map(|r| {
                        r["Data"].as_str().map_or(0, |d| {
                            d.len() / 4 * 3 - d.bytes().rev().take_while(|&b| b == b'=').count()
                        })
                    })
                    .sum();
                bytes.fetch_add(b as u64, Ordering::Relaxed);
                match v["NextShardIterator"].as_str() {
                    Some(n) => it = n.to_string(),
                    None => break,
                }
            }
            local
        }));
    }
    for t in tasks {
        merge(&mut hist, t).await?;
    }
    let records = totals.records.load(Ordering::Relaxed);
    let b = bytes.load(Ordering::Relaxed);
    let shape = Shape {
        shards: shards.len(),
        record_bytes: b.checked_div(records).unwrap_or(0) as usize,
        batch: 0,
        concurrency: shards.len(),
        bytes: b,
    };
    Ok(report(&o, shape, start, &totals, &hist))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_count_is_read() {
        assert_eq!(
            count_failed(
                br#"{"FailedRecordCount":0,"Records":[]}"#,
                "FailedRecordCount"
            ),
            0
        );
        assert_eq!(
            count_failed(
                br#"{"FailedRecordCount":17,"Records":[]}"#,
                "FailedRecordCount"
            ),
            17
        );
        assert_eq!(count_failed(b"{}", "FailedRecordCount"), 0);
        assert_eq!(
            count_failed(
                br#"{"FailedPutCount":3,"RequestResponses":[]}"#,
                "FailedPutCount"
            ),
            3
        );
    }
}
