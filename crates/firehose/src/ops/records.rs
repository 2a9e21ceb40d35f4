//! PutRecord and PutRecordBatch: records are acknowledged once they are durable in the
//! delivery stream's buffer (a sluice log; `Streams::put` completes after the fsync).

use bytes::Bytes;
use serde_json::{json, Value as Json};
use sluice_aws::validate::Validator;
use sluice_aws::value::{Format, Input};
use sluice_aws::ApiError;
use sluice_aws::Reply;
use sluice_streams::{even_ranges, Record, ShardId, ShardStart, StreamsError};

use super::{name_member, present, Firehose};
use crate::error::{buffer_error, FirehoseError};
use crate::limits;
use crate::model::{Status, StreamType};

#[derive(Debug)]
pub struct PutRecordRequest {
    name: String,
    data: Bytes,
}

impl PutRecordRequest {
    pub fn parse(input: Input<'_>) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let name = input.str("DeliveryStreamName")?;
        name_member(&mut v, name, true);
        let record = input.structure("Record")?;
        v.required(record.as_ref(), "record");
        let mut data = None;
        if let Some(r) = record {
            data = r.blob("Data")?;
            v.required(data.as_ref(), "record.data");
            v.blob_len(
                data.as_ref().map(Vec::len),
                "record.data",
                limits::RECORD_DATA_BYTES_MAX,
            );
        }
        v.finish()?;
        Ok(PutRecordRequest {
            name: present(name)?.to_string(),
            data: Bytes::from(present(data)?),
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct PutRecordBatchRequest {
    name: String,
    records: Vec<Bytes>,
}

impl PutRecordBatchRequest {
    pub fn parse(input: Input<'_>) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let name = input.str("DeliveryStreamName")?;
        name_member(&mut v, name, true);
        let list = input.list("Records")?;
        v.required(list, "records");
        let mut records = Vec::new();
        if let Some(list) = list {
            let shown = || {
                format!(
                    "[{}]",
                    vec!["com.amazonaws.firehose.v20150804.Record@6e4a4d3"; list.len()].join(", ")
                )
            };
            v.count(
                list.len(),
                "records",
                1,
                limits::PUT_RECORD_BATCH_RECORDS_MAX,
                shown,
            );
            for (i, e) in list.iter().enumerate() {
                let r = Input::element(e, input.format)?;
                let data = r.blob("Data")?;
                let path = format!("records.{}.member.data", i + 1);
                v.required(data.as_ref(), &path);
                v.blob_len(
                    data.as_ref().map(Vec::len),
                    &path,
                    limits::RECORD_DATA_BYTES_MAX,
                );
                if let Some(d) = data {
                    records.push(Bytes::from(d));
                }
            }
        }
        v.finish()?;
        let total: usize = records.iter().map(Bytes::len).sum();
        if total > limits::PUT_RECORD_BATCH_BYTES_MAX {
            return Err(ApiError::invalid_argument(format!(
                "Records size exceeds 4 MiB limit: the records of this request take {total} bytes."
            )));
        }
        Ok(PutRecordBatchRequest {
            name: present(name)?.to_string(),
            records,
        })
    }

    /// The fast decoder: a JSON body read straight into records, skipping the request tree.
    /// It answers only for a body that is plainly valid (`None` otherwise, and [`Self::parse`]
    /// decides, with its exact messages), and then exactly what [`Self::parse`] would.
    pub fn decode_json(body: &[u8]) -> Option<PutRecordBatchRequest> {
        use sluice_aws::value::Object;
        #[derive(serde::Deserialize)]
        struct Entry<'a> {
            #[serde(rename = "Data", borrow)]
            data: &'a str,
        }
        #[derive(serde::Deserialize)]
        struct Request<'a> {
            #[serde(rename = "DeliveryStreamName", borrow)]
            name: &'a str,
            #[serde(rename = "Records", borrow)]
            records: Vec<Object<Entry<'a>>>,
        }
        let Object(req) = serde_json::from_slice::<Object<Request<'_>>>(body).ok()?;
        let name_ok = sluice_aws::validate::is_resource_name(req.name)
            && req.name.chars().count() <= limits::DELIVERY_STREAM_NAME_CHARS_MAX;
        let count = req.records.len();
        if !name_ok || count == 0 || count > limits::PUT_RECORD_BATCH_RECORDS_MAX {
            return None;
        }
        // Every record's bytes are slices of one buffer.
        let arena_bytes: usize = req
            .records
            .iter()
            .map(|Object(e)| e.data.len() / 4 * 3)
            .sum();
        let mut arena = bytes::BytesMut::with_capacity(arena_bytes);
        let mut records = Vec::with_capacity(count);
        let mut total = 0;
        for Object(e) in &req.records {
            if !sluice_aws::value::decode_base64_into(e.data, &mut arena)
                || arena.len() > limits::RECORD_DATA_BYTES_MAX
            {
                return None;
            }
            total += arena.len();
            records.push(arena.split().freeze());
        }
        if total > limits::PUT_RECORD_BATCH_BYTES_MAX {
            return None;
        }
        Some(PutRecordBatchRequest {
            name: req.name.to_string(),
            records,
        })
    }
}

impl Firehose {
    /// Checks that `name` takes puts now, and that its backlog leaves room.
    fn admit(&self, name: &str) -> Result<(bool, crate::metrics::StreamMetrics), ApiError> {
        let (ds_type, status, encrypted, metrics, committed) = {
            let entries = self.lock();
            let e = entries.get(name).ok_or_else(|| {
                self.fail(FirehoseError::NotFound {
                    name: name.to_string(),
                })
            })?;
            (
                e.ds.stream_type,
                self.status(&e.ds),
                e.ds.encryption.enabled,
                e.metrics.clone(),
                e.runner.as_ref().and_then(|r| r.progress.committed()),
            )
        };
        match status {
            Status::Active => {}
            Status::Deleting => {
                return Err(self.fail(FirehoseError::NotFound {
                    name: name.to_string(),
                }))
            }
            s => {
                return Err(self.fail(FirehoseError::NotActive {
                    name: name.to_string(),
                    status: s,
                }))
            }
        }
        if ds_type == StreamType::KinesisStreamAsSource {
            return Err(self.fail(FirehoseError::KinesisSource {
                name: name.to_string(),
            }));
        }
        if let Some(committed) = committed {
            let mut backlog = 0u64;
            for shard in 0..self.config.buffer_shards {
                if let Ok(c) = self
                    .buffers
                    .cursor(name, ShardId(shard), ShardStart::Latest)
                {
                    backlog += c
                        .offset
                        .saturating_sub(committed.get(&shard).copied().unwrap_or(0));
                }
            }
            metrics.backlog_records.set(backlog as f64);
            if backlog >= self.config.backlog_records_max {
                return Err(self.fail(FirehoseError::Backlog {
                    name: name.to_string(),
                }));
            }
        }
        Ok((encrypted, metrics))
    }

    /// Appends `records` to the buffer of `name` on one shard (round-robin): one outcome per
    /// record once they are durable.
    async fn append(
        &self,
        name: &str,
        records: Vec<Bytes>,
    ) -> Result<Vec<Result<String, StreamsError>>, ApiError> {
        let n = self.config.buffer_shards.max(1);
        let shard = (self
            .next_shard
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % u64::from(n)) as usize;
        let hash = even_ranges(n).get(shard).map(|r| r.0);
        let records = records
            .into_iter()
            .map(|data| Record {
                partition_key: Bytes::from_static(b"firehose"),
                explicit_hash_key: hash,
                data,
            })
            .collect();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.buffers
            .put(
                name,
                records,
                Box::new(move |outcomes| {
                    let _ = tx.send(outcomes);
                }),
            )
            .map_err(|e| self.fail(FirehoseError::Buffer(e)))?;
        let outcomes = rx.await.map_err(|_| ApiError::internal())?;
        Ok(outcomes
            .into_iter()
            .map(|o| o.map(|r| r.sequence_number.to_string()))
            .collect())
    }

    pub(crate) async fn put_record(&self, r: PutRecordRequest) -> Result<Json, ApiError> {
        let (encrypted, metrics) = self.admit(&r.name)?;
        let bytes = r.data.len() as u64;
        let mut outcomes = self.append(&r.name, vec![r.data]).await?;
        match outcomes.pop() {
            Some(Ok(id)) => {
                metrics.incoming_records.increment(1);
                metrics.incoming_bytes.increment(bytes);
                Ok(json!({ "RecordId": id, "Encrypted": encrypted }))
            }
            Some(Err(e)) => Err(buffer_error(&e)),
            None => Err(ApiError::internal()),
        }
    }

    pub(crate) async fn put_record_batch(
        &self,
        r: PutRecordBatchRequest,
        format: Format,
    ) -> Result<Reply, ApiError> {
        let (encrypted, metrics) = self.admit(&r.name)?;
        let sizes: Vec<u64> = r.records.iter().map(|d| d.len() as u64).collect();
        let outcomes = self.append(&r.name, r.records).await?;
        let mut failed = 0u64;
        let (mut ok_records, mut ok_bytes) = (0u64, 0u64);
        let responses: Vec<Result<String, ApiError>> = outcomes
            .into_iter()
            .zip(sizes)
            .map(|(o, size)| match o {
                Ok(id) => {
                    ok_records += 1;
                    ok_bytes += size;
                    Ok(id)
                }
                Err(e) => {
                    failed += 1;
                    Err(buffer_error(&e))
                }
            })
            .collect();
        metrics.incoming_records.increment(ok_records);
        metrics.incoming_bytes.increment(ok_bytes);
        if format == Format::Json {
            return Ok(Reply::Encoded(batch_json(failed, encrypted, &responses)));
        }
        let responses: Vec<Json> = responses
            .into_iter()
            .map(|o| match o {
                Ok(id) => json!({ "RecordId": id }),
                Err(api) => json!({
                    "ErrorCode": api.type_name(),
                    "ErrorMessage": api.message.unwrap_or_default(),
                }),
            })
            .collect();
        Ok(super::reply(
            json!({
                "FailedPutCount": failed,
                "Encrypted": encrypted,
                "RequestResponses": responses,
            }),
            format,
        ))
    }
}

/// PutRecordBatch's answer in JSON, written directly (the hot path: no tree of 500 maps).
/// The same members, in the same order, as the tree the CBOR answer is made from.
fn batch_json(failed: u64, encrypted: bool, responses: &[Result<String, ApiError>]) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(64 + responses.len() * 80);
    let _ = write!(
        out,
        "{{\"FailedPutCount\":{failed},\"Encrypted\":{encrypted},\"RequestResponses\":["
    );
    let string = |out: &mut String, s: &str| {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    };
    for (i, r) in responses.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match r {
            Ok(id) => {
                out.push_str("{\"RecordId\":");
                string(&mut out, id);
            }
            Err(api) => {
                out.push_str("{\"ErrorCode\":");
                string(&mut out, api.type_name());
                out.push_str(",\"ErrorMessage\":");
                string(&mut out, api.message.as_deref().unwrap_or_default());
            }
        }
        out.push('}');
    }
    out.push_str("]}");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_aws::ErrorType;

    #[test]
    fn batch_json_is_the_tree_written_directly() {
        let responses = vec![
            Ok("49000000000000000000000000000000000000000000000000000001".to_string()),
            Err(ApiError::new(
                ErrorType::ServiceUnavailable,
                "Slow down. \"quoted\" \\ and\nnewline",
            )),
            Ok("2".to_string()),
        ];
        let got: Json = serde_json::from_slice(&batch_json(1, true, &responses)).unwrap();
        assert_eq!(
            got,
            json!({
                "FailedPutCount": 1,
                "Encrypted": true,
                "RequestResponses": [
                    {"RecordId": "49000000000000000000000000000000000000000000000000000001"},
                    {"ErrorCode": "ServiceUnavailableException",
                     "ErrorMessage": "Slow down. \"quoted\" \\ and\nnewline"},
                    {"RecordId": "2"},
                ],
            })
        );
        let empty: Json = serde_json::from_slice(&batch_json(0, false, &[])).unwrap();
        assert_eq!(
            empty,
            json!({"FailedPutCount": 0, "Encrypted": false, "RequestResponses": []})
        );
    }
}
