//! What happens to records between the buffer and the objects: the processors of a
//! ProcessingConfiguration, run in Firehose's order on each batch read.
//!
//! 1. `RecordDeAggregation` splits a record into JSON documents (`SubRecordType` JSON) or at a
//!    delimiter (`DELIMITED`).
//! 2. `Lambda` sends the records to a function through Firehose's transformation protocol
//!    ([`lambda_event`], [`read_lambda_answer`]): `{invocationId, deliveryStreamArn, region,
//!    records: [{recordId, approximateArrivalTimestamp, data}]}` in, `{records: [{recordId,
//!    result: Ok | Dropped | ProcessingFailed, data, metadata.partitionKeys}]}` out. A call
//!    that fails is tried `NumberOfRetries` more times (3 by default); then its records go to
//!    the error output (`processing-failed`), as do ProcessingFailed ones.
//! 3. `MetadataExtraction` runs the jq query (`sluice_jq::Program`) on each record: its first
//!    output, an object, gives the `partitionKeyFromQuery` keys.
//! 4. `AppendDelimiterToRecord` adds a newline to each record.
//!
//! The function runs through a [`RecordTransformer`] (sluice's Lambda, wired in by the binary),
//! so this crate knows nothing of how functions run.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use sluice_jq::Program;

use crate::limits;
use crate::model::S3Destination;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs a transformation function: the JSON event in, the function's JSON answer out, or why
/// there is none (the function is missing, failed, timed out, was throttled).
pub trait RecordTransformer: Send + Sync + 'static {
    fn transform<'a>(
        &'a self,
        function_arn: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, String>>;
}

/// A record on its way from the buffer to an object.
#[derive(Debug, Clone)]
pub struct Item {
    pub data: Bytes,
    pub arrival_ms: i64,
    /// The Firehose record id (the buffer's sequence number, or the source's).
    pub record_id: String,
    pub query_keys: BTreeMap<String, String>,
    pub lambda_keys: BTreeMap<String, String>,
    /// Where it came from: the shard index and the record's sequence position, which the
    /// shard's checkpoint may not pass until the record is in an object.
    pub shard: u32,
    pub position: u64,
}

/// A record that could not be processed: what goes to the error output.
#[derive(Debug, Clone)]
pub struct Failed {
    pub data: Bytes,
    pub arrival_ms: i64,
    pub error_code: String,
    pub error_message: String,
    pub attempts: u32,
    pub lambda_arn: Option<String>,
    pub output_type: &'static str,
    pub shard: u32,
    pub position: u64,
}

impl Failed {
    /// The error record Firehose writes for it (one JSON document per line).
    pub fn to_line(&self, now_ms: i64) -> Vec<u8> {
        let mut v = json!({
            "attemptsMade": self.attempts,
            "arrivalTimestamp": self.arrival_ms,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "attemptEndingTimestamp": now_ms,
            "rawData": base64::engine::general_purpose::STANDARD.encode(&self.data),
        });
        if let (Some(arn), Value::Object(m)) = (&self.lambda_arn, &mut v) {
            m.insert("lambdaArn".into(), json!(arn));
        }
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

struct LambdaStep {
    arn: String,
    retries: u32,
    payload_bytes_max: usize,
}

enum Split {
    Json,
    Delimited(Vec<u8>),
}

/// The processors of one destination, ready to run.
pub struct Pipeline {
    split: Option<Split>,
    lambda: Option<LambdaStep>,
    extraction: Option<Arc<Program>>,
    append_delimiter: bool,
    transformer: Option<Arc<dyn RecordTransformer>>,
    stream_arn: String,
    region: String,
    backoff_ms_max: u64,
}

impl Pipeline {
    /// The pipeline of `d` (checked by `destination::check`, so every parameter reads).
    pub fn new(
        d: &S3Destination,
        transformer: Option<Arc<dyn RecordTransformer>>,
        stream_arn: String,
        region: String,
        backoff_ms_max: u64,
    ) -> Result<Pipeline, String> {
        let mut p = Pipeline {
            split: None,
            lambda: None,
            extraction: None,
            append_delimiter: false,
            transformer,
            stream_arn,
            region,
            backoff_ms_max,
        };
        for pr in d.processors() {
            match pr.kind.as_str() {
                "RecordDeAggregation" => {
                    p.split = Some(match pr.parameter("SubRecordType") {
                        Some("DELIMITED") => Split::Delimited(
                            base64::engine::general_purpose::STANDARD
                                .decode(pr.parameter("Delimiter").unwrap_or(""))
                                .map_err(|e| e.to_string())?,
                        ),
                        _ => Split::Json,
                    })
                }
                "Lambda" => {
                    let mb = pr
                        .parameter("BufferSizeInMBs")
                        .and_then(|s| s.parse::<f64>().ok())
                        .unwrap_or(limits::LAMBDA_BUFFER_MB_DEFAULT as f64);
                    p.lambda = Some(LambdaStep {
                        arn: pr.parameter("LambdaArn").unwrap_or("").to_string(),
                        retries: pr
                            .parameter("NumberOfRetries")
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(limits::LAMBDA_RETRIES_DEFAULT),
                        payload_bytes_max: ((mb * 1_048_576.0) as usize)
                            .clamp(1, limits::LAMBDA_PAYLOAD_BYTES_MAX / 2),
                    })
                }
                "MetadataExtraction" => {
                    let q = pr.parameter("MetadataExtractionQuery").unwrap_or(".");
                    p.extraction = Some(Arc::new(Program::compile(q).map_err(|e| e.to_string())?));
                }
                "AppendDelimiterToRecord" => p.append_delimiter = true,
                _ => {}
            }
        }
        Ok(p)
    }

    /// No processors.
    pub fn identity() -> Pipeline {
        Pipeline {
            split: None,
            lambda: None,
            extraction: None,
            append_delimiter: false,
            transformer: None,
            stream_arn: String::new(),
            region: String::new(),
            backoff_ms_max: limits::WRITE_BACKOFF_MS_MIN,
        }
    }

    /// Whether the pipeline changes records at all.
    pub fn is_identity(&self) -> bool {
        self.split.is_none()
            && self.lambda.is_none()
            && self.extraction.is_none()
            && !self.append_delimiter
    }

    /// Runs every processor on `items`: the records to deliver and those that failed.
    /// `stopped` cuts retries short (the batch is then not delivered: `None`).
    pub async fn run(
        &self,
        items: Vec<Item>,
        stopped: &(dyn Fn() -> bool + Send + Sync),
    ) -> Option<(Vec<Item>, Vec<Failed>)> {
        let mut failed = Vec::new();
        let mut items = match &self.split {
            Some(s) => split(items, s),
            None => items,
        };
        if let Some(step) = &self.lambda {
            let mut out = Vec::with_capacity(items.len());
            for chunk in chunks(items, step.payload_bytes_max) {
                let (ok, bad) = self.invoke(step, chunk, stopped).await?;
                out.extend(ok);
                failed.extend(bad);
            }
            items = out;
        }
        if let Some(program) = &self.extraction {
            let program = program.clone();
            let (ok, bad) = tokio::task::spawn_blocking(move || extract(&program, items))
                .await
                .ok()?;
            items = ok;
            failed.extend(bad);
        }
        if self.append_delimiter {
            for it in &mut items {
                let mut d = Vec::with_capacity(it.data.len() + 1);
                d.extend_from_slice(&it.data);
                d.push(b'\n');
                it.data = Bytes::from(d);
            }
        }
        Some((items, failed))
    }

    async fn invoke(
        &self,
        step: &LambdaStep,
        items: Vec<Item>,
        stopped: &(dyn Fn() -> bool + Send + Sync),
    ) -> Option<(Vec<Item>, Vec<Failed>)> {
        let fail_all = |items: Vec<Item>, code: &str, message: &str, attempts: u32| {
            let failed = items
                .into_iter()
                .map(|it| Failed {
                    data: it.data,
                    arrival_ms: it.arrival_ms,
                    error_code: code.to_string(),
                    error_message: message.to_string(),
                    attempts,
                    lambda_arn: Some(step.arn.clone()),
                    output_type: "processing-failed",
                    shard: it.shard,
                    position: it.position,
                })
                .collect();
            Some((Vec::new(), failed))
        };
        let Some(transformer) = &self.transformer else {
            return fail_all(
                items,
                "Lambda.FunctionError",
                "No Lambda service to run the function.",
                1,
            );
        };
        let payload = Bytes::from(lambda_event(&self.stream_arn, &self.region, &items));
        let mut wait_ms = limits::WRITE_BACKOFF_MS_MIN;
        let mut last = String::new();
        for attempt in 1..=step.retries + 1 {
            if stopped() {
                return None;
            }
            match transformer.transform(&step.arn, payload.clone()).await {
                Ok(answer) => match read_lambda_answer(&answer, &items) {
                    Ok(outcomes) => return Some(apply(items, outcomes, &step.arn, attempt)),
                    Err(e) => last = e,
                },
                Err(e) => last = e,
            }
            if attempt <= step.retries {
                tracing::debug!(function = %step.arn, attempt, error = %last, "transformation failed; retrying");
                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                wait_ms = (wait_ms * 2).min(self.backoff_ms_max);
            }
        }
        tracing::warn!(function = %step.arn, error = %last, "transformation failed; records go to the error output");
        fail_all(items, "Lambda.FunctionError", &last, step.retries + 1)
    }
}

/// Splits `items` at `max` bytes of base64 data per call (at least one record each).
fn chunks(items: Vec<Item>, max: usize) -> Vec<Vec<Item>> {
    let mut out: Vec<Vec<Item>> = Vec::new();
    let mut bytes = 0;
    for it in items {
        let n = it.data.len().div_ceil(3) * 4 + it.record_id.len() + 64;
        match out.last_mut() {
            Some(last) if bytes + n <= max => {
                last.push(it);
                bytes += n;
            }
            _ => {
                out.push(vec![it]);
                bytes = n;
            }
        }
    }
    out
}

/// Firehose's transformation event for `items`.
pub fn lambda_event(stream_arn: &str, region: &str, items: &[Item]) -> Vec<u8> {
    let records: Vec<Value> = items
        .iter()
        .map(|it| {
            json!({
                "recordId": it.record_id,
                "approximateArrivalTimestamp": it.arrival_ms,
                "data": base64::engine::general_purpose::STANDARD.encode(&it.data),
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "invocationId": crate::prefix::uuid_v4(),
        "deliveryStreamArn": stream_arn,
        "region": region,
        "records": records,
    }))
    .unwrap_or_default()
}

/// What the function said of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok {
        data: Bytes,
        partition_keys: BTreeMap<String, String>,
    },
    Dropped,
    ProcessingFailed,
}

/// Reads the function's answer: one verdict per input record, in input order. An answer that
/// is not JSON, misses a record, names one that was not sent or has an unknown result fails
/// the whole call (which is then retried), as on Firehose.
pub fn read_lambda_answer(answer: &[u8], items: &[Item]) -> Result<Vec<Verdict>, String> {
    let v: Value = serde_json::from_slice(answer)
        .map_err(|e| format!("The Lambda function's response is not valid JSON: {e}"))?;
    let records = v
        .get("records")
        .and_then(Value::as_array)
        .ok_or("The Lambda function's response has no records list.")?;
    let mut by_id: BTreeMap<&str, Verdict> = BTreeMap::new();
    for r in records {
        let id = r
            .get("recordId")
            .and_then(Value::as_str)
            .ok_or("A record of the Lambda function's response has no recordId.")?;
        let verdict = match r.get("result").and_then(Value::as_str) {
            Some("Ok") => {
                let data = r.get("data").and_then(Value::as_str).unwrap_or("");
                let data = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|_| format!("The data of record {id} is not base64."))?;
                let mut keys = BTreeMap::new();
                if let Some(Value::Object(m)) =
                    r.get("metadata").and_then(|m| m.get("partitionKeys"))
                {
                    for (k, v) in m {
                        keys.insert(k.clone(), key_text(v));
                    }
                }
                Verdict::Ok {
                    data: Bytes::from(data),
                    partition_keys: keys,
                }
            }
            Some("Dropped") => Verdict::Dropped,
            Some("ProcessingFailed") => Verdict::ProcessingFailed,
            other => {
                return Err(format!(
                    "Record {id} has result {other:?}; it must be Ok, Dropped or ProcessingFailed."
                ))
            }
        };
        by_id.insert(id, verdict);
    }
    if by_id.len() != items.len() || records.len() != items.len() {
        return Err(format!(
            "The Lambda function returned {} records for {} sent.",
            records.len(),
            items.len()
        ));
    }
    items
        .iter()
        .map(|it| {
            by_id.remove(it.record_id.as_str()).ok_or_else(|| {
                format!(
                    "The Lambda function's response misses record {}.",
                    it.record_id
                )
            })
        })
        .collect()
}

fn apply(
    items: Vec<Item>,
    verdicts: Vec<Verdict>,
    arn: &str,
    attempts: u32,
) -> (Vec<Item>, Vec<Failed>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (mut it, v) in items.into_iter().zip(verdicts) {
        match v {
            Verdict::Ok {
                data,
                partition_keys,
            } => {
                it.data = data;
                it.lambda_keys = partition_keys;
                ok.push(it);
            }
            Verdict::Dropped => {}
            Verdict::ProcessingFailed => failed.push(Failed {
                data: it.data,
                arrival_ms: it.arrival_ms,
                error_code: "Lambda.ProcessingFailed".into(),
                error_message: "The Lambda function returned ProcessingFailed for the record."
                    .into(),
                attempts,
                lambda_arn: Some(arn.to_string()),
                output_type: "processing-failed",
                shard: it.shard,
                position: it.position,
            }),
        }
    }
    (ok, failed)
}

fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// MetadataExtraction: the query's first output must be an object of keys.
fn extract(program: &Program, items: Vec<Item>) -> (Vec<Item>, Vec<Failed>) {
    let mut ok = Vec::with_capacity(items.len());
    let mut failed = Vec::new();
    for mut it in items {
        let result = serde_json::from_slice::<Value>(&it.data)
            .map_err(|e| format!("The record is not valid JSON: {e}"))
            .and_then(|input| {
                program
                    .run_first(input, &sluice_jq::Vars::default())
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(Some(Value::Object(m))) => {
                it.query_keys = m
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), key_text(v)))
                    .collect();
                ok.push(it);
            }
            Ok(other) => failed.push(Failed {
                data: it.data,
                arrival_ms: it.arrival_ms,
                error_code: "DynamicPartitioning.MetadataExtractionFailed".into(),
                error_message: format!(
                    "The MetadataExtractionQuery did not produce a JSON object: {}",
                    other.map_or("no output".to_string(), |v| v.to_string())
                ),
                attempts: 1,
                lambda_arn: None,
                output_type: "processing-failed",
                shard: it.shard,
                position: it.position,
            }),
            Err(e) => failed.push(Failed {
                data: it.data,
                arrival_ms: it.arrival_ms,
                error_code: "DynamicPartitioning.MetadataExtractionFailed".into(),
                error_message: e,
                attempts: 1,
                lambda_arn: None,
                output_type: "processing-failed",
                shard: it.shard,
                position: it.position,
            }),
        }
    }
    (ok, failed)
}

/// RecordDeAggregation: each JSON document, or each piece between delimiters, of a record.
fn split(items: Vec<Item>, how: &Split) -> Vec<Item> {
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let pieces: Vec<Bytes> = match how {
            Split::Json => {
                let mut pieces = Vec::new();
                let mut stream = serde_json::Deserializer::from_slice(&it.data)
                    .into_iter::<serde::de::IgnoredAny>();
                let mut start = 0;
                while let Some(Ok(_)) = stream.next() {
                    let end = stream.byte_offset();
                    let piece = it.data.slice(start..end);
                    let trimmed = piece
                        .iter()
                        .position(|b| !b.is_ascii_whitespace())
                        .unwrap_or(piece.len());
                    pieces.push(piece.slice(trimmed..));
                    start = end;
                }
                if start < it.data.len() && !it.data[start..].iter().all(u8::is_ascii_whitespace) {
                    // What does not parse stays as it is.
                    pieces.push(it.data.slice(start..));
                }
                pieces
            }
            Split::Delimited(d) => {
                let mut pieces = Vec::new();
                let mut start = 0;
                let data = &it.data;
                let mut i = 0;
                while !d.is_empty() && i + d.len() <= data.len() {
                    if &data[i..i + d.len()] == d.as_slice() {
                        pieces.push(data.slice(start..i));
                        i += d.len();
                        start = i;
                    } else {
                        i += 1;
                    }
                }
                if start < data.len() {
                    pieces.push(data.slice(start..));
                }
                pieces
            }
        };
        let n = pieces.len();
        for (k, piece) in pieces.into_iter().enumerate() {
            out.push(Item {
                data: piece,
                record_id: if n > 1 {
                    format!("{}.{k}", it.record_id)
                } else {
                    it.record_id.clone()
                },
                ..it.clone()
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, data: &str) -> Item {
        Item {
            data: Bytes::from(data.to_string()),
            arrival_ms: 1,
            record_id: id.into(),
            query_keys: BTreeMap::new(),
            lambda_keys: BTreeMap::new(),
            shard: 0,
            position: 1,
        }
    }

    #[test]
    fn the_lambda_answer_is_read_per_record() {
        let items = vec![item("a", "1"), item("b", "2"), item("c", "3")];
        let ev: Value =
            serde_json::from_slice(&lambda_event("arn:x", "us-east-1", &items)).unwrap();
        assert_eq!(ev["records"][1]["recordId"], "b");
        assert_eq!(ev["records"][1]["data"], "Mg==");
        assert_eq!(ev["deliveryStreamArn"], "arn:x");
        let answer = br#"{"records":[
            {"recordId":"c","result":"ProcessingFailed"},
            {"recordId":"a","result":"Ok","data":"eA==","metadata":{"partitionKeys":{"k":"v","n":5}}},
            {"recordId":"b","result":"Dropped"}]}"#;
        let v = read_lambda_answer(answer, &items).unwrap();
        assert_eq!(
            v[0],
            Verdict::Ok {
                data: Bytes::from_static(b"x"),
                partition_keys: BTreeMap::from([
                    ("k".into(), "v".into()),
                    ("n".into(), "5".into())
                ]),
            }
        );
        assert_eq!(v[1], Verdict::Dropped);
        assert_eq!(v[2], Verdict::ProcessingFailed);
        for bad in [
            &br#"{"records":[{"recordId":"a","result":"Ok","data":"eA=="}]}"#[..],
            br#"{"records":[{"recordId":"a","result":"Maybe"},{"recordId":"b","result":"Ok"},{"recordId":"c","result":"Ok"}]}"#,
            br#"not json"#,
        ] {
            assert!(read_lambda_answer(bad, &items).is_err());
        }
    }

    #[test]
    fn splitting_json_and_delimited_records() {
        let got = split(vec![item("r", "{\"a\":1} {\"b\":2}\n[3]")], &Split::Json);
        let texts: Vec<&[u8]> = got.iter().map(|i| &i.data[..]).collect();
        assert_eq!(texts, [&b"{\"a\":1}"[..], b"{\"b\":2}", b"[3]"]);
        assert_eq!(got[2].record_id, "r.2");
        let got = split(
            vec![item("r", "a##b##c")],
            &Split::Delimited(b"##".to_vec()),
        );
        let texts: Vec<&[u8]> = got.iter().map(|i| &i.data[..]).collect();
        assert_eq!(texts, [&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn metadata_extraction_gives_keys_or_fails() {
        let p = Program::compile("{customer_id: .customer_id, n: .n}").unwrap();
        let (ok, bad) = extract(
            &p,
            vec![
                item("a", r#"{"customer_id":"c1","n":2}"#),
                item("b", "nope"),
            ],
        );
        assert_eq!(ok[0].query_keys["customer_id"], "c1");
        assert_eq!(ok[0].query_keys["n"], "2");
        assert_eq!(bad.len(), 1);
        assert_eq!(
            bad[0].error_code,
            "DynamicPartitioning.MetadataExtractionFailed"
        );
        let line: Value = serde_json::from_slice(&bad[0].to_line(5)).unwrap();
        assert_eq!(line["rawData"], "bm9wZQ==");
        assert_eq!(line["attemptEndingTimestamp"], 5);
    }

    #[test]
    fn lambda_calls_are_chunked() {
        let items: Vec<Item> = (0..10)
            .map(|i| item(&i.to_string(), &"x".repeat(300)))
            .collect();
        let c = chunks(items, 1000);
        assert!(c.len() > 1 && c.iter().all(|c| !c.is_empty()));
        assert_eq!(c.iter().map(Vec::len).sum::<usize>(), 10);
    }
}
