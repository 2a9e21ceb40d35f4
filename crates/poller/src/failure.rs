//! On-failure destinations: the record Lambda writes when it gives up on a batch, and where it
//! goes: an object-store bucket (as on AWS, with the invocation payload, under
//! `aws/lambda/<UUID>/<shardId>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>`) in sluice's lake, or, as
//! a sluice extension, a stream (one record per failure, partition key the shard id).
//!
//! Objects go through `sluice_lake::Lake`: written whole and durably, in the local lake
//! directory or on the S3-compatible store the lake is configured with.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use sluice_aws::civil;
use sluice_streams::{Record as PutRecord, Streams};

use crate::target::Batch;

/// Where failure records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureDestination {
    /// `arn:aws:s3:::<bucket>`: an object per failure in the lake.
    Bucket { arn: String, bucket: String },
    /// `arn:aws:kinesis:<region>:<account>:stream/<name>`: a record per failure.
    Stream { arn: String, stream: String },
}

impl FailureDestination {
    pub fn arn(&self) -> &str {
        match self {
            FailureDestination::Bucket { arn, .. } | FailureDestination::Stream { arn, .. } => arn,
        }
    }
}

/// `requestContext.condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// `responseContext` of the last invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseContext {
    pub status_code: u16,
    pub executed_version: String,
    pub function_error: Option<String>,
}

/// `2019-11-14T00:38:06.021Z`.
pub fn iso_ms(ms: i64) -> String {
    civil::iso8601_ms(ms)
}

/// Lambda's failure record for a Kinesis batch.
pub fn failure_record(
    function_arn: &str,
    condition: Condition,
    invoke_count: u32,
    response: Option<&ResponseContext>,
    batch: &Batch,
    now_ms: i64,
) -> Value {
    let mut record = json!({
        "requestContext": {
            "requestId": uuid4(),
            "functionArn": function_arn,
            "condition": condition.as_str(),
            "approximateInvokeCount": invoke_count,
        },
        "version": "1.0",
        "timestamp": iso_ms(now_ms),
    });
    if let Some(r) = response {
        let mut ctx = json!({
            "statusCode": r.status_code,
            "executedVersion": r.executed_version,
        });
        if let Some(e) = &r.function_error {
            ctx["functionError"] = json!(e);
        }
        record["responseContext"] = ctx;
    }
    let first = batch.records.first();
    let last = batch.records.last();
    record["KinesisBatchInfo"] = json!({
        "shardId": batch.shard_name,
        "startSequenceNumber": first.map(|r| r.sequence_number.to_string()),
        "endSequenceNumber": last.map(|r| r.sequence_number.to_string()),
        "approximateArrivalOfFirstRecord": first.map(|r| iso_ms(r.arrival_ms)),
        "approximateArrivalOfLastRecord": last.map(|r| iso_ms(r.arrival_ms)),
        "batchSize": batch.records.len(),
        "streamArn": batch.stream_arn,
    });
    record
}

/// A random version-4 UUID.
pub fn uuid4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The object key of a failure record: `aws/lambda/<UUID>/<shardId>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>`.
pub fn object_key(mapping_uuid: &str, shard_name: &str, now_ms: i64) -> String {
    let c = civil::from_ms(now_ms);
    format!(
        "aws/lambda/{mapping_uuid}/{shard_name}/{:04}/{:02}/{:02}/{:04}-{:02}-{:02}T{:02}.{:02}.{:02}-{}",
        c.year,
        c.month,
        c.day,
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        uuid4()
    )
}

/// What failure destinations write through.
pub struct FailureSinks {
    pub streams: Arc<Streams>,
    /// The lake (local directory or a remote S3-compatible store).
    pub lake: sluice_lake::Lake,
}

impl FailureSinks {
    /// Sends one failure record; for a bucket, with the invocation payload (as the string
    /// member `payload`, as Lambda adds it for S3 destinations).
    pub async fn send(
        &self,
        dest: &FailureDestination,
        mapping_uuid: &str,
        shard_name: &str,
        record: &Value,
        payload: Option<&[u8]>,
    ) -> Result<(), String> {
        match dest {
            FailureDestination::Bucket { bucket, .. } => {
                let mut doc = record.clone();
                if let Some(p) = payload {
                    doc["payload"] = json!(String::from_utf8_lossy(p));
                }
                let bytes = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
                let key = object_key(mapping_uuid, shard_name, self.streams.now_ms());
                self.lake
                    .put_object(bucket, &key, Bytes::from(bytes))
                    .await
                    .map_err(|e| e.to_string())
            }
            FailureDestination::Stream { stream, .. } => {
                let data = serde_json::to_vec(record).map_err(|e| e.to_string())?;
                let (tx, rx) = tokio::sync::oneshot::channel();
                self.streams
                    .put(
                        stream,
                        vec![PutRecord {
                            partition_key: Bytes::from(shard_name.to_string()),
                            explicit_hash_key: None,
                            data: Bytes::from(data),
                        }],
                        Box::new(move |outcomes| {
                            let _ = tx.send(outcomes);
                        }),
                    )
                    .map_err(|e| e.to_string())?;
                let outcomes = rx.await.map_err(|e| e.to_string())?;
                match outcomes.into_iter().next() {
                    Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(e.to_string()),
                    None => Err("the stream answered no outcome".into()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_keys_are_lambdas() {
        assert_eq!(iso_ms(1_573_691_886_021), "2019-11-14T00:38:06.021Z");
        let key = object_key("abc", "shardId-000000000000", 1_573_691_886_021);
        assert!(
            key.starts_with("aws/lambda/abc/shardId-000000000000/2019/11/14/2019-11-14T00.38.06-"),
            "{key}"
        );
        let u = uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
