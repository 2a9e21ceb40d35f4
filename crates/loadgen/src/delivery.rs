//! The `delivery` mode: PutRecordBatch into a Firehose delivery stream, and how long the records
//! take to be in objects (by default Parquet files written by record format conversion).
//!
//! A run has two phases:
//! 1. raw (skipped when `raw_put_s` is 0): PutRecords of the same records, batch size and
//!    concurrency into a scratch Kinesis stream, for the rate of the plain stream on the same
//!    endpoint in the same run;
//! 2. delivery: the delivery stream (created when missing, see [`DeliveryOptions`]) gets
//!    PutRecordBatch calls of stamped JSON records from `concurrency` producers, at full speed
//!    or at `rate_per_s`, for `duration_s` or `records_max`; then the run waits (at most
//!    `drain_timeout_s`) until the endpoint reports every acknowledged record delivered.
//!
//! "Delivered" is read from the endpoint's Prometheus metrics (`GET /metrics`,
//! `sluice_firehose_delivery_to_s3_records_total{delivery_stream="…"}`, Firehose's
//! DeliveryToS3.Records): a count that moves only once an object is durably written. An endpoint
//! without those metrics still gets the put figures; the delivery ones are then `null`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use sluice_client::Client;

use crate::pipeline::{lock, pause, per_s, raw_phase, Clock, Producer, PutPhase, Sink};
use crate::tracker::Tracker;
use crate::{LoadError, Mode, Options};

/// Seconds a drain or a raw phase lasts at most.
const PHASE_S_MAX: f64 = 600.0;
/// How often the metrics are read while waiting for delivery.
const SCRAPE_MS: u64 = 50;
/// The delivered-records counter, and the error-output one, with the stream's label.
const DELIVERED: &str = "sluice_firehose_delivery_to_s3_records_total";
const FAILED: &str = "sluice_firehose_error_output_records_total";

/// What the objects of a delivery stream the run creates are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryFormat {
    /// Parquet by record format conversion (OpenX JSON in, SNAPPY Parquet out); the table is
    /// unknown, so sluice infers its schema from the first buffer (sluice's extension).
    #[default]
    Parquet,
    /// The records as they are, concatenated (no conversion, no compression).
    Json,
}

/// What only the delivery mode uses; the rest comes from [`Options`].
#[derive(Debug, Clone, Default)]
pub struct DeliveryOptions {
    /// The delivery stream; created when missing (DirectPut, ExtendedS3 into `bucket`, prefix
    /// `bench/`, `format`, `buffer_mb` / `buffer_interval_s`). An existing one is used as it is.
    pub delivery_stream: String,
    pub bucket: String,
    pub format: DeliveryFormat,
    /// BufferingHints.SizeInMBs of a created stream (Parquet needs at least 64).
    pub buffer_mb: u32,
    /// BufferingHints.IntervalInSeconds of a created stream.
    pub buffer_interval_s: u32,
    /// Records per second over all producers; `None`: as fast as the stream takes them.
    pub rate_per_s: Option<u64>,
    /// How long after the last put to wait for the records to be delivered.
    pub drain_timeout_s: f64,
    /// Length of the raw PutRecords phase; 0 skips it.
    pub raw_put_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryReport {
    pub mode: Mode,
    pub delivery_stream: String,
    /// Whether the run created the delivery stream (with `format`), or used one that existed.
    pub created: bool,
    pub format: DeliveryFormat,
    pub record_bytes: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub rate_per_s: Option<u64>,
    /// PutRecords rate of the raw phase: same records, batch and concurrency, into a scratch
    /// Kinesis stream; `null` when skipped.
    pub raw_put_records_per_s: Option<f64>,
    pub raw_put: Option<PutPhase>,
    /// The PutRecordBatch phase (its `stream` is the delivery stream).
    pub put: PutPhase,
    /// Records of this run delivered into objects when the wait ended; `null` when the
    /// endpoint has no delivery metrics.
    pub records_delivered: Option<u64>,
    /// Records of this run sent to the error output (e.g. format-conversion-failed).
    pub records_to_error_output: Option<u64>,
    /// From the first put until every acknowledged record was delivered (or the wait ended).
    pub delivered_elapsed_s: Option<f64>,
    /// `records_delivered / delivered_elapsed_s`: the rate records reach objects.
    pub delivered_records_per_s: Option<f64>,
    /// `delivered_records_per_s / raw_put_records_per_s`.
    pub delivered_vs_raw: Option<f64>,
    /// Every acknowledged record was delivered (or sent to the error output) in time.
    pub complete: bool,
    /// From the last put to the end of the wait.
    pub drain_s: f64,
}

pub(crate) async fn run(client: Client, o: &Options) -> Result<DeliveryReport, LoadError> {
    let d = &o.delivery;
    let phase_ok = |s: f64| (0.0..=PHASE_S_MAX).contains(&s);
    if !phase_ok(d.drain_timeout_s) || !phase_ok(d.raw_put_s) {
        return Err(LoadError::Setup(format!(
            "the drain timeout and the raw phase are 0 to {PHASE_S_MAX} seconds"
        )));
    }
    if d.rate_per_s == Some(0) {
        return Err(LoadError::Setup("the rate must be positive".into()));
    }
    if d.delivery_stream.is_empty() {
        return Err(LoadError::Setup(
            "the delivery mode needs a delivery stream name".into(),
        ));
    }
    let firehose = client.with_service("Firehose_20150804", "firehose");
    let run_id: u32 = rand::random();
    let created = prepare_delivery(&firehose, d).await?;
    let raw_put = if d.raw_put_s > 0.0 {
        let mut raw = o.clone();
        raw.pipeline.raw_put_s = d.raw_put_s;
        Some(raw_phase(&client, &raw, run_id, o.shards.max(1)).await?)
    } else {
        None
    };

    let metrics = Metrics {
        client: client.clone(),
        stream: d.delivery_stream.clone(),
    };
    let before = metrics.read().await;
    let tracker = Arc::new(Mutex::new(Tracker::new(run_id)?));
    let producer = Producer::new(
        firehose,
        Sink::Delivery,
        &d.delivery_stream,
        run_id,
        o,
        Clock::new(),
        tracker.clone(),
    );
    let start = Instant::now();
    let put = Arc::new(producer)
        .run(
            o.concurrency,
            Duration::from_secs_f64(o.duration_s),
            d.rate_per_s,
            o.records_max,
        )
        .await?;
    let acked = lock(&tracker).records_acked();
    let put_end = Instant::now();
    let deadline = put_end + Duration::from_secs_f64(d.drain_timeout_s);

    // Wait for delivered + error output to cover what was acknowledged.
    let mut last = metrics.read().await;
    let mut done_at = None;
    if let (Some(b), Some(_)) = (before, last) {
        loop {
            if let Some(now) = last {
                if now.since(b).total() >= acked {
                    done_at = Some(Instant::now());
                    break;
                }
            }
            if Instant::now() >= deadline {
                break;
            }
            pause(SCRAPE_MS).await;
            last = metrics.read().await.or(last);
        }
    }
    let drain_s = put_end.elapsed().as_secs_f64();
    let counts = before.zip(last).map(|(b, now)| now.since(b));
    let delivered_elapsed_s = counts.map(|_| {
        done_at
            .unwrap_or_else(Instant::now)
            .duration_since(start)
            .as_secs_f64()
    });
    let delivered_records_per_s = counts
        .zip(delivered_elapsed_s)
        .map(|(c, s)| per_s(c.delivered, s));
    let raw_put_records_per_s = raw_put.as_ref().map(|r| r.records_per_s);
    Ok(DeliveryReport {
        mode: Mode::Delivery,
        delivery_stream: d.delivery_stream.clone(),
        created,
        format: d.format,
        record_bytes: o.record_bytes,
        batch: o.batch,
        concurrency: o.concurrency,
        rate_per_s: d.rate_per_s,
        raw_put_records_per_s,
        raw_put,
        put,
        records_delivered: counts.map(|c| c.delivered),
        records_to_error_output: counts.map(|c| c.failed),
        delivered_elapsed_s,
        delivered_records_per_s,
        delivered_vs_raw: delivered_records_per_s
            .zip(raw_put_records_per_s)
            .filter(|(_, raw)| *raw > 0.0)
            .map(|(d, raw)| d / raw),
        complete: done_at.is_some(),
        drain_s,
    })
}

/// Makes sure the delivery stream exists and is ACTIVE; returns whether it was created.
async fn prepare_delivery(firehose: &Client, d: &DeliveryOptions) -> Result<bool, LoadError> {
    let name = json!({"DeliveryStreamName": d.delivery_stream});
    let created = match firehose.call("DescribeDeliveryStream", &name).await {
        Ok(_) => false,
        Err(e) if e.aws_type() == Some("ResourceNotFoundException") => {
            firehose
                .call("CreateDeliveryStream", &create_request(d))
                .await?;
            true
        }
        Err(e) => return Err(e.into()),
    };
    for _ in 0..600 {
        let v = firehose.call("DescribeDeliveryStream", &name).await?;
        if v["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE" {
            return Ok(created);
        }
        pause(100).await;
    }
    Err(LoadError::Setup(format!(
        "delivery stream {} did not become ACTIVE within 60 s",
        d.delivery_stream
    )))
}

/// CreateDeliveryStream for a stream the run makes: DirectPut into `bucket` under `bench/`.
fn create_request(d: &DeliveryOptions) -> Value {
    let mut dest = json!({
        "RoleARN": "arn:aws:iam::000000000000:role/sluice-loadgen",
        "BucketARN": format!("arn:aws:s3:::{}", d.bucket),
        "Prefix": "bench/",
        "ErrorOutputPrefix": "bench-errors/",
        "BufferingHints": {
            "SizeInMBs": d.buffer_mb,
            "IntervalInSeconds": d.buffer_interval_s,
        },
        "CompressionFormat": "UNCOMPRESSED",
    });
    if d.format == DeliveryFormat::Parquet {
        dest["DataFormatConversionConfiguration"] = json!({
            "Enabled": true,
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}},
            "SchemaConfiguration": {
                "RoleARN": "arn:aws:iam::000000000000:role/sluice-loadgen",
                "DatabaseName": "loadgen",
                "TableName": "records",
            },
        });
    }
    json!({
        "DeliveryStreamName": d.delivery_stream,
        "DeliveryStreamType": "DirectPut",
        "ExtendedS3DestinationConfiguration": dest,
    })
}

/// Delivered and error-output records of one delivery stream, as the metrics count them.
#[derive(Debug, Clone, Copy)]
struct Counts {
    delivered: u64,
    failed: u64,
}

impl Counts {
    fn since(self, before: Counts) -> Counts {
        Counts {
            delivered: self.delivered.saturating_sub(before.delivered),
            failed: self.failed.saturating_sub(before.failed),
        }
    }

    fn total(self) -> u64 {
        self.delivered + self.failed
    }
}

struct Metrics {
    client: Client,
    stream: String,
}

impl Metrics {
    /// The counts now, or `None` when the endpoint has no metrics page. A stream that has not
    /// delivered anything yet has no series: 0.
    async fn read(&self) -> Option<Counts> {
        let text = self.client.get_text("/metrics").await.ok()?;
        Some(Counts {
            delivered: series(&text, DELIVERED, &self.stream),
            failed: series(&text, FAILED, &self.stream),
        })
    }
}

/// The value of `name{delivery_stream="<stream>"}` in a Prometheus text page; 0 when absent.
fn series(text: &str, name: &str, stream: &str) -> u64 {
    let label = format!("delivery_stream=\"{stream}\"");
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') && rest.contains(&label))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_read_by_name_and_label() {
        let page = "# TYPE sluice_firehose_delivery_to_s3_records_total counter\n\
            sluice_firehose_delivery_to_s3_records_total{delivery_stream=\"a\"} 1200\n\
            sluice_firehose_delivery_to_s3_records_total{delivery_stream=\"ab\"} 7\n\
            sluice_firehose_delivery_to_s3_records_total_other{delivery_stream=\"a\"} 9\n\
            sluice_firehose_error_output_records_total{delivery_stream=\"a\"} 3\n";
        assert_eq!(series(page, DELIVERED, "a"), 1200);
        assert_eq!(series(page, DELIVERED, "ab"), 7);
        assert_eq!(series(page, FAILED, "a"), 3);
        assert_eq!(series(page, FAILED, "b"), 0);
    }

    #[test]
    fn created_streams_convert_to_parquet_only_when_asked() {
        let mut d = DeliveryOptions {
            delivery_stream: "bench".into(),
            bucket: "lake".into(),
            buffer_mb: 64,
            buffer_interval_s: 1,
            ..DeliveryOptions::default()
        };
        let v = create_request(&d);
        let dest = &v["ExtendedS3DestinationConfiguration"];
        assert_eq!(dest["BucketARN"], "arn:aws:s3:::lake");
        assert_eq!(dest["BufferingHints"]["SizeInMBs"], 64);
        assert_eq!(dest["DataFormatConversionConfiguration"]["Enabled"], true);
        d.format = DeliveryFormat::Json;
        let v = create_request(&d);
        assert!(v["ExtendedS3DestinationConfiguration"]
            .get("DataFormatConversionConfiguration")
            .is_none());
    }
}
