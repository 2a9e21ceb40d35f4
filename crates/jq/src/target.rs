//! [`JqTarget`]: a processor as the shard poller sees it. For each batch it transforms every
//! record (as [`Transform::apply`] does, through one `BatchRun` per batch: one blocking task,
//! parser state, buffers and variables kept from record to record) on the blocking pool and
//! writes the outputs, in input order, to the output stream, in puts of up to 500 records (up
//! to [`limits::PUTS_IN_FLIGHT_MAX`] of them sent before the first is durable, so the log
//! syncs them together; one at a time when throughput quotas are enforced, since a put may then
//! fail in part); a record the transform fails on becomes a dead-letter record.
//!
//! Delivery is at least once: a batch is acknowledged (and checkpointed by the poller) only
//! once every output and dead-letter record of it is durable. If a write fails (the output
//! stream is missing, over its throughput, its disk full) the batch is answered
//! [`Outcome::NotInvoked`] and the poller delivers it again, whole: outputs already written
//! by the failed attempt are written again (duplicates, in order after the first copies).
//! A crash between a write and the checkpoint does the same.
//!
//! Dead-letter record (JSON, the input's partition key):
//! `{"error", "processor", "stream", "shardId", "sequenceNumber", "partitionKey", "data"
//! (base64 of the input), "approximateArrivalTimestamp" (seconds, as in a Lambda Kinesis
//! event)}`; when the record would not fit a Kinesis record, `data` is null and
//! `"dataOmitted": true`. Without a dead-letter stream failed records are counted, and logged
//! (at most every [`limits::DROPPED_LOG_INTERVAL_MS`]) with a batch's first error. The
//! dead-letter stream is also the poller's on-failure destination: a batch the poller gives up
//! on (retries exhausted after the transform itself failed) lands there as Lambda's failure
//! record.
//!
//! Metrics, label `processor`: `sluice_processor_input_records_total`,
//! `sluice_processor_output_records_total`, `sluice_processor_dropped_records_total` (inputs
//! the program filtered out: no output), `sluice_processor_failed_records_total`; counted
//! once a batch is delivered.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use base64::Engine;
use bytes::Bytes;
use serde_json::json;
use sluice_poller::{Batch, BoxFuture, Outcome, Record, Target};
use sluice_streams::Streams;
use tokio::sync::{mpsc, oneshot};

use crate::limits;
use crate::transform::{BatchRun, Transform};
use crate::value::cut;

/// Where a processor reads from and writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorStreams {
    pub source: String,
    pub output: String,
    pub dead_letter: Option<String>,
}

/// A processor's poller target.
pub struct JqTarget {
    name: String,
    arn: String,
    streams: Arc<Streams>,
    ends: ProcessorStreams,
    transform: Arc<Transform>,
    metrics: Metrics,
    /// A write is failing: logged when it starts failing and when it works again.
    failing: AtomicBool,
    /// When records dropped for want of a dead-letter stream were last logged.
    dropped_logged: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for JqTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JqTarget")
            .field("name", &self.name)
            .field("ends", &self.ends)
            .finish_non_exhaustive()
    }
}

struct Metrics {
    input: metrics::Counter,
    output: metrics::Counter,
    dropped: metrics::Counter,
    failed: metrics::Counter,
}

impl Metrics {
    fn new(processor: &str) -> Metrics {
        let l = || [("processor", processor.to_string())];
        Metrics {
            input: metrics::counter!("sluice_processor_input_records_total", &l()),
            output: metrics::counter!("sluice_processor_output_records_total", &l()),
            dropped: metrics::counter!("sluice_processor_dropped_records_total", &l()),
            failed: metrics::counter!("sluice_processor_failed_records_total", &l()),
        }
    }
}

/// The ARN failure records name a processor by (`requestContext.functionArn`):
/// `arn:aws:sluice:<region>:<account>:processor/<name>`.
pub fn processor_arn(region: &str, account_id: &str, name: &str) -> String {
    format!("arn:aws:sluice:{region}:{account_id}:processor/{name}")
}

impl JqTarget {
    pub fn new(
        name: &str,
        arn: String,
        streams: Arc<Streams>,
        ends: ProcessorStreams,
        transform: Arc<Transform>,
    ) -> JqTarget {
        JqTarget {
            name: name.to_string(),
            arn,
            streams,
            ends,
            transform,
            metrics: Metrics::new(name),
            failing: AtomicBool::new(false),
            dropped_logged: Mutex::new(None),
        }
    }

    async fn deliver(&self, batch: Batch) -> Outcome {
        if batch.records.is_empty() {
            return success();
        }
        let (tx, mut rx) = mpsc::channel(limits::PUTS_AHEAD_MAX);
        let job = Job {
            processor: self.name.clone(),
            stream: self.ends.source.clone(),
            shard: batch.shard_name,
            records: batch.records,
            transform: self.transform.clone(),
            dead_letter: self.ends.dead_letter.is_some(),
        };
        // jq is CPU work of unbounded length: off the async workers.
        let work = tokio::task::spawn_blocking(move || job.run(&tx));
        // Puts are sent as chunks come and awaited oldest first, a few at a time: the log
        // makes the ones waiting together durable with one sync, in the order they were sent.
        // With throughput enforced, a put can fail in part while a later one gets through:
        // then one at a time, so that a failed batch's outputs that were written stay in order
        // before it is written again (as with puts that fail whole: a missing stream, a full
        // disk, where every later put fails too).
        let ahead = if self.streams.config().throughput.enforce {
            1
        } else {
            limits::PUTS_IN_FLIGHT_MAX
        };
        let mut in_flight = VecDeque::new();
        let mut write_error = None;
        'chunks: while let Some(chunk) = rx.recv().await {
            for (stream, records) in self.targets(chunk) {
                while in_flight.len() >= ahead {
                    if let Some(put) = in_flight.pop_front() {
                        if let Err(e) = wait(put).await {
                            write_error = Some(e);
                            break 'chunks;
                        }
                    }
                }
                match self.send(stream, records) {
                    Ok(Some(put)) => in_flight.push_back(put),
                    Ok(None) => {}
                    Err(e) => {
                        write_error = Some(e);
                        break 'chunks;
                    }
                }
            }
        }
        if write_error.is_none() {
            for put in in_flight {
                if let Err(e) = wait(put).await {
                    write_error = Some(e);
                    break;
                }
            }
        }
        // Ends the transform at its next put if a write failed.
        drop(rx);
        let tally = match work.await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(processor = %self.name, error = %e, "the transform failed");
                return Outcome::Failed {
                    status_code: 500,
                    function_error: "Unhandled".into(),
                    executed_version: "$LATEST".into(),
                };
            }
        };
        if let Some(reason) = write_error {
            if !self.failing.swap(true, Ordering::Relaxed) {
                tracing::warn!(processor = %self.name, error = %reason, "cannot write a batch's records; retrying until it can");
            }
            return Outcome::NotInvoked { reason };
        }
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(processor = %self.name, "writing again");
        }
        self.metrics.input.increment(tally.input);
        self.metrics.output.increment(tally.output);
        self.metrics.dropped.increment(tally.dropped);
        self.metrics.failed.increment(tally.failed);
        if tally.failed > 0 && self.ends.dead_letter.is_none() && self.may_log_dropped() {
            tracing::warn!(processor = %self.name, failed = tally.failed, first_error = tally.first_error.as_deref().unwrap_or(""), "records failed the transform and were dropped (no dead_letter stream; sluice_processor_failed_records_total counts them all)");
        }
        success()
    }

    /// At most one log line per [`limits::DROPPED_LOG_INTERVAL_MS`] about dropped records.
    fn may_log_dropped(&self) -> bool {
        let mut last = self
            .dropped_logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let due = last.is_none_or(|t| {
            now.duration_since(t).as_millis() >= u128::from(limits::DROPPED_LOG_INTERVAL_MS)
        });
        if due {
            *last = Some(now);
        }
        due
    }

    /// Where a chunk's records go: its outputs, then its dead-letter records.
    fn targets(&self, chunk: Chunk) -> Vec<(&str, Vec<sluice_streams::Record>)> {
        let mut puts = vec![(self.ends.output.as_str(), chunk.outputs)];
        if let Some(dl) = &self.ends.dead_letter {
            puts.push((dl.as_str(), chunk.dead));
        }
        puts
    }

    /// Sends a put; `None` when there is nothing to put.
    fn send(
        &self,
        stream: &str,
        records: Vec<sluice_streams::Record>,
    ) -> Result<Option<Put>, String> {
        if records.is_empty() {
            return Ok(None);
        }
        let count = records.len();
        let (tx, rx) = oneshot::channel();
        self.streams
            .put(
                stream,
                records,
                Box::new(move |outcomes| {
                    let _ = tx.send(outcomes);
                }),
            )
            .map_err(|e| format!("cannot write to stream {stream}: {e}"))?;
        Ok(Some(Put {
            stream: stream.to_string(),
            count,
            outcomes: rx,
        }))
    }
}

/// A put sent to a stream, not known durable yet.
struct Put {
    stream: String,
    count: usize,
    outcomes: oneshot::Receiver<Vec<sluice_streams::PutOutcome>>,
}

/// Waits until a put's records are durable; an error names what failed.
async fn wait(put: Put) -> Result<(), String> {
    let Put {
        stream,
        count,
        outcomes,
    } = put;
    let outcomes = outcomes
        .await
        .map_err(|_| format!("the write to stream {stream} was dropped"))?;
    let mut errors = outcomes.iter().filter_map(|o| o.as_ref().err());
    match errors.next() {
        None => Ok(()),
        Some(e) => Err(format!(
            "{} of {count} records could not be written to stream {stream}: {e}",
            errors.count() + 1
        )),
    }
}

fn success() -> Outcome {
    Outcome::Success {
        item_failures: Vec::new(),
        state: None,
        unreadable: false,
    }
}

impl Target for JqTarget {
    fn invoke(&self, batch: Batch) -> BoxFuture<'_, Outcome> {
        Box::pin(self.deliver(batch))
    }

    fn payload(&self, _batch: &Batch) -> Option<Vec<u8>> {
        None
    }

    fn arn(&self) -> String {
        self.arn.clone()
    }
}

/// Records for one put to the output stream and one to the dead-letter stream.
#[derive(Default)]
struct Chunk {
    outputs: Vec<sluice_streams::Record>,
    output_bytes: usize,
    dead: Vec<sluice_streams::Record>,
    dead_bytes: usize,
}

impl Chunk {
    fn is_empty(&self) -> bool {
        self.outputs.is_empty() && self.dead.is_empty()
    }

    /// Whether a record of `bytes` more would take a put past its limits.
    fn full(records: usize, bytes: usize, more: usize) -> bool {
        records > 0 && (records >= limits::PUT_RECORDS_MAX || bytes + more > limits::PUT_BYTES_MAX)
    }
}

/// What a batch's transform counted.
#[derive(Debug, Default)]
struct Tally {
    input: u64,
    output: u64,
    dropped: u64,
    failed: u64,
    first_error: Option<String>,
}

/// One batch's transform, run on the blocking pool; hands chunks to the writer as they fill.
struct Job {
    processor: String,
    stream: String,
    shard: String,
    records: Vec<Record>,
    transform: Arc<Transform>,
    dead_letter: bool,
}

impl Job {
    fn run(self, tx: &mpsc::Sender<Chunk>) -> Tally {
        let mut tally = Tally::default();
        let mut chunk = Chunk::default();
        // Stops when the writer is gone (a write failed): the batch is retried whole.
        let send = |chunk: &mut Chunk| tx.blocking_send(std::mem::take(chunk)).is_ok();
        let mut run = BatchRun::new(&self.transform, &self.stream, &self.shard);
        let mut outputs = Vec::new();
        for r in &self.records {
            tally.input += 1;
            match run.apply(r, &mut outputs) {
                Ok(()) if outputs.is_empty() => tally.dropped += 1,
                Ok(()) => {
                    tally.output += outputs.len() as u64;
                    for (partition_key, data) in outputs.drain(..) {
                        let bytes = data.len() + partition_key.len();
                        if Chunk::full(chunk.outputs.len(), chunk.output_bytes, bytes)
                            && !send(&mut chunk)
                        {
                            return tally;
                        }
                        chunk.output_bytes += bytes;
                        chunk.outputs.push(sluice_streams::Record {
                            partition_key,
                            explicit_hash_key: None,
                            data,
                        });
                    }
                }
                Err(e) => {
                    tally.failed += 1;
                    let error = cut(e.to_string());
                    if self.dead_letter {
                        let data = self.dead_letter_record(r, &error);
                        let bytes = data.len() + r.partition_key.len();
                        if Chunk::full(chunk.dead.len(), chunk.dead_bytes, bytes)
                            && !send(&mut chunk)
                        {
                            return tally;
                        }
                        chunk.dead_bytes += bytes;
                        chunk.dead.push(sluice_streams::Record {
                            partition_key: Bytes::from(r.partition_key.clone()),
                            explicit_hash_key: None,
                            data: Bytes::from(data),
                        });
                    }
                    tally.first_error.get_or_insert(error);
                }
            }
        }
        if !chunk.is_empty() {
            send(&mut chunk);
        }
        tally
    }

    fn dead_letter_record(&self, r: &Record, error: &str) -> Vec<u8> {
        let mut doc = json!({
            "error": error,
            "processor": self.processor,
            "stream": self.stream,
            "shardId": self.shard,
            "sequenceNumber": r.sequence_number.to_string(),
            "partitionKey": r.partition_key,
            "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
            "approximateArrivalTimestamp": r.arrival_ms as f64 / 1000.0,
        });
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        if bytes.len() + r.partition_key.len() <= limits::OUTPUT_RECORD_BYTES_MAX {
            return bytes;
        }
        doc["data"] = serde_json::Value::Null;
        doc["dataOmitted"] = serde_json::Value::Bool(true);
        serde_json::to_vec(&doc).unwrap_or_default()
    }
}
