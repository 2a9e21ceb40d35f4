//! Records: PutRecord, PutRecords, GetShardIterator, GetRecords, and the record shapes
//! GetRecords and SubscribeToShard share.

use sluice_streams::{Record, SequenceNumber, ShardId, ShardStart, StreamStatus, StreamsError};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::iterator::{java_date, token_age, ShardIterator, TokenAge};
use crate::limits::*;
use crate::ops::shards::parse_shard_id;
use crate::ops::{present, stream_member, Deferred, Reply, Service, StreamTarget};
use crate::validate::{self, Validator};
use sluice_aws::value::{Input, Out};

impl Service {
    /// Checks one record's members; `index` is its 1-based place in PutRecords (`None` for
    /// PutRecord). Member paths are only formatted when a check fails: this runs per record.
    fn record_members(
        v: &mut Validator,
        r: Input<'_>,
        index: Option<usize>,
    ) -> Result<Member, ApiError> {
        let key = r.str("PartitionKey")?;
        let hash = r.str("ExplicitHashKey")?;
        let data = r.blob("Data")?;
        let key_ok = key.is_some_and(|k| {
            !k.is_empty()
                && (k.len() <= PARTITION_KEY_CHARS_MAX
                    || k.chars().count() <= PARTITION_KEY_CHARS_MAX)
        });
        let hash_ok = hash.is_none_or(validate::is_hash_key);
        let data_ok = data
            .as_ref()
            .is_some_and(|d| d.len() <= RECORD_DATA_BYTES_MAX);
        if !(key_ok && hash_ok && data_ok) {
            let prefix = index
                .map(|i| format!("records.{i}.member."))
                .unwrap_or_default();
            let p = |m: &str| format!("{prefix}{m}");
            v.required(key, &p("partitionKey"));
            v.str_len(key, &p("partitionKey"), 1, PARTITION_KEY_CHARS_MAX);
            v.pattern(
                hash,
                &p("explicitHashKey"),
                "0|([1-9]\\d{0,38})",
                validate::is_hash_key,
            );
            v.required(data.as_ref(), &p("data"));
            v.blob_len(
                data.as_ref().map(Vec::len),
                &p("data"),
                RECORD_DATA_BYTES_MAX,
            );
            return Ok(Member::Violation);
        }
        let (Some(key), Some(data)) = (key, data) else {
            return Ok(Member::Violation);
        };
        let explicit_hash_key = match hash {
            Some(h) => match h.parse::<u128>() {
                Ok(k) => Some(k),
                Err(_) => {
                    return Ok(Member::HashKeyOutOfRange(ApiError::invalid_argument(format!(
                        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {h}"
                    ))))
                }
            },
            None => None,
        };
        Ok(Member::Valid(Record {
            partition_key: bytes::Bytes::copy_from_slice(key.as_bytes()),
            explicit_hash_key,
            data: data.into(),
        }))
    }

    /// An error AWS finds after the request's constraints and the stream's existence (it
    /// checks them in the operation): the stream is looked up first, so that a missing stream
    /// is named as such.
    fn after_stream_lookup(&self, name: &str, e: ApiError) -> ApiError {
        match self.streams.describe(name) {
            Ok(view)
                if matches!(
                    view.meta.status,
                    StreamStatus::Active | StreamStatus::Updating
                ) =>
            {
                e
            }
            // Writes to a stream that is not ACTIVE answer as if it did not exist.
            Ok(_) => self.ctx().stream_not_found(name),
            Err(other) => self.ctx().map(other),
        }
    }

    async fn put(
        &self,
        op: crate::metrics::PutOp,
        stream: &str,
        records: Vec<Record>,
    ) -> Result<Vec<sluice_streams::PutOutcome>, ApiError> {
        let measure = self.metrics.put(op, stream, &records);
        let (tx, rx) = oneshot::channel();
        self.streams
            .put(
                stream,
                records,
                Box::new(move |outcomes| drop(tx.send(outcomes))),
            )
            .map_err(|e| match e {
                // Writes to a stream that is not ACTIVE answer as if it did not exist.
                StreamsError::StreamNotActive { name, .. } => self.ctx().stream_not_found(&name),
                e => self.ctx().map(e),
            })?;
        let outcomes = rx.await.map_err(|_| ApiError::internal())?;
        measure.done(&outcomes);
        Ok(outcomes)
    }

    pub(crate) async fn put_record(&self, request: PutRecordRequest) -> Result<Reply, ApiError> {
        let name = request.stream.as_str();
        let record = request
            .record
            .map_err(|e| self.after_stream_lookup(name, e))?;
        // AWS checks SequenceNumberForOrdering after the stream and ExplicitHashKey.
        if let Some(Err(e)) = request.sequence_number_for_ordering {
            return Err(self.after_stream_lookup(name, e));
        }
        let mut outcomes = self
            .put(crate::metrics::PutOp::PutRecord, name, vec![record])
            .await?;
        let r = outcomes
            .pop()
            // One outcome per record.
            .ok_or_else(ApiError::internal)?
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Body(
            Out::map()
                .str("ShardId", r.shard_id.to_string())
                .str("SequenceNumber", r.sequence_number.to_string())
                .str("EncryptionType", "NONE")
                .done(),
        ))
    }

    pub(crate) async fn put_records(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let request = PutRecordsRequest::parse(input, &self.streams.config().account_id)?;
        if let Some(e) = request.deferred {
            return Err(self.after_stream_lookup(request.stream.as_str(), e));
        }
        self.put_records_checked(request.stream.as_str(), request.records, input.format)
            .await
    }

    /// PutRecords after the request-level checks: per-stream record sizes, the append, the
    /// per-record answers. A JSON answer is written straight into its body (one per request,
    /// up to 500 entries); CBOR goes through the response tree.
    pub async fn put_records_checked(
        &self,
        name: &str,
        records: Vec<Record>,
        format: sluice_aws::Format,
    ) -> Result<Reply, ApiError> {
        let outcomes = self
            .put(crate::metrics::PutOp::PutRecords, name, records)
            .await?;
        Ok(match format {
            sluice_aws::Format::Json => Reply::Encoded(self.put_records_json(outcomes)),
            sluice_aws::Format::Cbor => Reply::Body(self.put_records_out(outcomes)),
        })
    }

    /// A failed record's `ErrorCode` and `ErrorMessage`: throttling as AWS words it, anything
    /// else InternalFailure (with what went wrong when it is the client's business, such as a
    /// full disk).
    fn put_records_error(&self, e: StreamsError) -> (&'static str, String) {
        let e = self.ctx().map(e);
        if e.error_type == sluice_aws::ErrorType::ProvisionedThroughputExceeded {
            (e.type_name(), e.message.unwrap_or_default())
        } else {
            let message = e
                .message
                .filter(|m| m.starts_with("Internal Service Failure"))
                .unwrap_or_else(|| "Internal Service Failure".to_string());
            ("InternalFailure", message)
        }
    }

    fn put_records_out(&self, outcomes: Vec<sluice_streams::PutOutcome>) -> Out {
        let mut failed = 0;
        // Shard ids repeat across the records: format each once.
        let mut shard_ids: Vec<(ShardId, std::sync::Arc<str>)> = Vec::new();
        let out: Vec<Out> = outcomes
            .into_iter()
            .map(|o| match o {
                Ok(r) => {
                    let shard_id = match shard_ids.iter().find(|(id, _)| *id == r.shard_id) {
                        Some((_, s)) => s.clone(),
                        None => {
                            let s: std::sync::Arc<str> = r.shard_id.to_string().into();
                            shard_ids.push((r.shard_id, s.clone()));
                            s
                        }
                    };
                    Out::map()
                        .set("SequenceNumber", sequence_out(r.sequence_number))
                        .set("ShardId", Out::Shared(shard_id))
                        .done()
                }
                Err(e) => {
                    failed += 1;
                    let (code, message) = self.put_records_error(e);
                    Out::map()
                        .str("ErrorCode", code)
                        .str("ErrorMessage", message)
                        .done()
                }
            })
            .collect();
        Out::map()
            .int("FailedRecordCount", failed)
            .set("Records", Out::Array(out))
            .str("EncryptionType", "NONE")
            .done()
    }

    /// The same answer as [`Self::put_records_out`] encoded as JSON, byte for byte, written
    /// directly: no tree, no per-record allocation.
    fn put_records_json(&self, outcomes: Vec<sluice_streams::PutOutcome>) -> Vec<u8> {
        use std::io::Write;
        let failed = outcomes.iter().filter(|o| o.is_err()).count();
        // 56 digits of a sequence number, a shard id, and the member names and punctuation.
        let mut buf = Vec::with_capacity(64 + outcomes.len() * 120);
        let _ = write!(buf, "{{\"FailedRecordCount\":{failed},\"Records\":[");
        // Shard ids repeat across the records: format each once.
        let mut shard_ids: Vec<(ShardId, String)> = Vec::new();
        for (i, o) in outcomes.into_iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            match o {
                Ok(r) => {
                    buf.extend_from_slice(b"{\"SequenceNumber\":\"");
                    buf.extend_from_slice(&r.sequence_number.to_digits());
                    buf.extend_from_slice(b"\",\"ShardId\":\"");
                    match shard_ids.iter().find(|(id, _)| *id == r.shard_id) {
                        Some((_, text)) => buf.extend_from_slice(text.as_bytes()),
                        None => {
                            let text = r.shard_id.to_string();
                            buf.extend_from_slice(text.as_bytes());
                            shard_ids.push((r.shard_id, text));
                        }
                    }
                    buf.extend_from_slice(b"\"}");
                }
                Err(e) => {
                    let (code, message) = self.put_records_error(e);
                    buf.extend_from_slice(b"{\"ErrorCode\":");
                    sluice_aws::codec::json_str(&mut buf, code);
                    buf.extend_from_slice(b",\"ErrorMessage\":");
                    sluice_aws::codec::json_str(&mut buf, &message);
                    buf.push(b'}');
                }
            }
        }
        buf.extend_from_slice(b"],\"EncryptionType\":\"NONE\"}");
        buf
    }

    /// The cursor a GetShardIterator or SubscribeToShard starts from. The stream and the shard
    /// are checked first (ResourceNotFoundException), then the starting position, as AWS does:
    /// a sequence number given for a shard that does not exist names the shard, not the number.
    pub(crate) fn shard_cursor(
        &self,
        name: &str,
        shard_id: ShardId,
        position: &StartingPosition,
    ) -> Result<sluice_streams::ShardCursor, ApiError> {
        let ctx = self.ctx();
        let not_found = |e: StreamsError| match e {
            StreamsError::StreamNotFound { .. } | StreamsError::StreamNotActive { .. } => {
                ctx.shard_not_found(name, &shard_id.to_string())
            }
            e => ctx.map(e),
        };
        // Does the shard exist? (A trim-horizon cursor reads nothing but the shard's start.)
        self.streams
            .cursor(name, shard_id, ShardStart::TrimHorizon)
            .map_err(not_found)?;
        let start = position.start(
            shard_id,
            name,
            &self.streams.config().account_id,
            self.streams.now_ms(),
        )?;
        self.streams
            .cursor(name, shard_id, start)
            .map_err(not_found)
    }

    pub(crate) fn get_shard_iterator(
        &self,
        request: GetShardIteratorRequest,
    ) -> Result<Reply, ApiError> {
        let now = self.streams.now_ms();
        let cursor = self.shard_cursor(
            request.stream.as_str(),
            request.shard_id,
            &request.starting_position,
        )?;
        let it = ShardIterator {
            cursor,
            issued_ms: now,
        };
        Ok(Reply::Body(
            Out::map()
                .str("ShardIterator", it.encode(&self.tokens))
                .done(),
        ))
    }

    /// GetRecords. A JSON answer is written straight into its body (up to 10,000 records);
    /// CBOR goes through the response tree.
    pub(crate) async fn get_records(
        &self,
        request: GetRecordsRequest,
        format: sluice_aws::Format,
    ) -> Result<Reply, ApiError> {
        let invalid = || ApiError::invalid_argument("Invalid ShardIterator.");
        let it =
            ShardIterator::decode(&self.tokens, &request.shard_iterator).ok_or_else(invalid)?;
        let now = self.streams.now_ms();
        match token_age(it.issued_ms, now, SHARD_ITERATOR_TTL_MS) {
            TokenAge::Fresh => {}
            TokenAge::Expired => return Err(ApiError::expired_iterator(format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {SHARD_ITERATOR_TTL_MS} milliseconds.",
                java_date(it.issued_ms),
                java_date(now)
            ))),
            TokenAge::Invalid => return Err(invalid()),
        }
        if let Some(s) = &request.stream {
            if s.as_str() != it.cursor.stream {
                return Err(ApiError::invalid_argument("Invalid ShardIterator."));
            }
        }
        let streams = self.streams.clone();
        let cursor = it.cursor.clone();
        let records_max = request
            .limit
            .map_or(GET_RECORDS_COUNT_MAX as usize, |n| n as usize);
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            streams.read(&cursor, records_max, GET_RECORDS_BYTES_MAX, true)
        })
        .await
        .map_err(|_| ApiError::internal())?;
        self.metrics.get_records(&it.cursor, &result, started, now);
        let ctx = self.ctx();
        let shard_id = ShardId(it.cursor.shard_index).to_string();
        let result = result.map_err(|e| match e {
            StreamsError::StreamNotFound { .. } | StreamsError::StreamNotActive { .. } => {
                ctx.shard_not_found(&it.cursor.stream, &shard_id)
            }
            e => ctx.map(e),
        })?;
        let answer = GetRecordsAnswer {
            records: result.records,
            next: result.next.map(|cursor| {
                ShardIterator {
                    cursor,
                    issued_ms: now,
                }
                .encode(&self.tokens)
            }),
            millis_behind_latest: result.millis_behind_latest,
            children: result.child_shards,
        };
        Ok(match format {
            sluice_aws::Format::Json => Reply::Encoded(answer.json()),
            sluice_aws::Format::Cbor => Reply::Body(answer.out()),
        })
    }
}

/// What GetRecords answers.
pub(crate) struct GetRecordsAnswer {
    pub(crate) records: Vec<(SequenceNumber, sluice_streams::StoredRecord)>,
    pub(crate) next: Option<String>,
    pub(crate) millis_behind_latest: i64,
    pub(crate) children: Vec<sluice_streams::ShardMeta>,
}

impl GetRecordsAnswer {
    fn out(self) -> Out {
        let records = self
            .records
            .into_iter()
            .map(|(seq, r)| record_out(seq, r))
            .collect();
        let children = (!self.children.is_empty()).then(|| child_shards_out(&self.children));
        Out::map()
            .set("Records", Out::Array(records))
            .opt("NextShardIterator", self.next.map(Out::Str))
            .int("MillisBehindLatest", self.millis_behind_latest)
            .opt("ChildShards", children)
            .done()
    }

    /// The same answer as [`Self::out`] encoded as JSON, byte for byte, written directly: no
    /// tree, no allocation per record.
    fn json(self) -> Vec<u8> {
        use base64::Engine;
        use std::io::Write;
        let data_bytes: usize = self.records.iter().map(|(_, r)| r.data.len()).sum();
        let mut buf = Vec::with_capacity(
            128 + data_bytes.div_ceil(3) * 4
                + self
                    .records
                    .iter()
                    .map(|(_, r)| 140 + r.partition_key.len())
                    .sum::<usize>(),
        );
        buf.extend_from_slice(b"{\"Records\":[");
        for (i, (seq, r)) in self.records.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(b"{\"SequenceNumber\":\"");
            buf.extend_from_slice(&seq.to_digits());
            let (secs, millis) = (r.arrival_ms.div_euclid(1000), r.arrival_ms.rem_euclid(1000));
            let _ = write!(
                buf,
                "\",\"ApproximateArrivalTimestamp\":{secs}.{millis:03},\"Data\":\""
            );
            let start = buf.len();
            buf.resize(
                start + base64::encoded_len(r.data.len(), true).unwrap_or(0),
                0,
            );
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(&r.data, &mut buf[start..])
                .unwrap_or(0);
            buf.truncate(start + written);
            buf.extend_from_slice(b"\",\"PartitionKey\":");
            sluice_aws::codec::json_str(
                &mut buf,
                std::str::from_utf8(&r.partition_key).unwrap_or_default(),
            );
            buf.push(b'}');
        }
        buf.push(b']');
        if let Some(next) = &self.next {
            buf.extend_from_slice(b",\"NextShardIterator\":");
            sluice_aws::codec::json_str(&mut buf, next);
        }
        let _ = write!(buf, ",\"MillisBehindLatest\":{}", self.millis_behind_latest);
        if !self.children.is_empty() {
            buf.extend_from_slice(b",\"ChildShards\":");
            buf.extend_from_slice(&sluice_aws::codec::encode(
                &child_shards_out(&self.children),
                sluice_aws::Format::Json,
            ));
        }
        buf.push(b'}');
        buf
    }
}

/// PutRecord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordRequest {
    pub stream: StreamTarget,
    /// The record; an ExplicitHashKey past 2^128 - 1 (within the pattern's 39 digits) is
    /// reported once the stream is found, as on AWS.
    pub record: Deferred<Record>,
    /// AWS checks that it is a sequence number after the stream and the ExplicitHashKey.
    pub sequence_number_for_ordering: Option<Deferred<SequenceNumber>>,
}

impl PutRecordRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<PutRecordRequest, ApiError> {
        let mut v = Validator::new();
        let ordering = input.str("SequenceNumberForOrdering")?;
        v.pattern(
            ordering,
            "sequenceNumberForOrdering",
            "0|([1-9]\\d{0,128})",
            validate::is_sequence_number,
        );
        let record = Service::record_members(&mut v, input, None)?;
        let stream = stream_member(&mut v, input, true, account)?;
        v.finish()?;
        let stream = present(stream)?;
        let record = match record {
            Member::Valid(r) => Ok(r),
            Member::HashKeyOutOfRange(e) => Err(e),
            // v.finish() refused it.
            Member::Violation => return Err(ApiError::internal()),
        };
        // The rule GetShardIterator applies to StartingSequenceNumber, with the message AWS
        // gives for this member.
        let sequence_number_for_ordering = ordering.map(|o| {
            SequenceNumber::parse(o).ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "ExclusiveMinimumSequenceNumber {o} used in PutRecord on stream {} under account {account} is invalid.",
                    stream.as_str()
                ))
            })
        });
        Ok(PutRecordRequest {
            stream,
            record,
            sequence_number_for_ordering,
        })
    }
}

/// `ShardIteratorType` of GetShardIterator, and `StartingPosition.Type` of SubscribeToShard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardIteratorType {
    AtSequenceNumber,
    AfterSequenceNumber,
    TrimHorizon,
    Latest,
    AtTimestamp,
}

impl ShardIteratorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ShardIteratorType::AtSequenceNumber => "AT_SEQUENCE_NUMBER",
            ShardIteratorType::AfterSequenceNumber => "AFTER_SEQUENCE_NUMBER",
            ShardIteratorType::TrimHorizon => "TRIM_HORIZON",
            ShardIteratorType::Latest => "LATEST",
            ShardIteratorType::AtTimestamp => "AT_TIMESTAMP",
        }
    }

    pub fn parse(s: &str) -> Option<ShardIteratorType> {
        [
            ShardIteratorType::AtSequenceNumber,
            ShardIteratorType::AfterSequenceNumber,
            ShardIteratorType::TrimHorizon,
            ShardIteratorType::Latest,
            ShardIteratorType::AtTimestamp,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// Where a read of a shard starts: GetShardIterator's `ShardIteratorType`,
/// `StartingSequenceNumber` and `Timestamp`, or SubscribeToShard's `StartingPosition`. Whether
/// they go together is AWS's check once it has found the shard ([`StartingPosition::start`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartingPosition {
    pub kind: ShardIteratorType,
    /// As written (it matched `0|([1-9]\d{0,128})`): whether the type takes one and whether it
    /// is a sequence number of the shard are checked after the shard is found, and the
    /// messages show it as written.
    pub sequence_number: Option<String>,
    /// Epoch milliseconds.
    pub timestamp_ms: Option<i64>,
}

impl StartingPosition {
    /// Where a read of `shard_id` of `stream` starts, with AWS's messages for a mismatched
    /// combination; `now` (epoch ms) refuses a timestamp in the future.
    pub fn start(
        &self,
        shard_id: ShardId,
        stream: &str,
        account: &str,
        now: i64,
    ) -> Result<ShardStart, ApiError> {
        let kind = self.kind.as_str();
        let seq = self.sequence_number.as_deref();
        let mixed = |what: &str| {
            ApiError::invalid_argument(format!(
                "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and {what}."
            ))
        };
        let parse_seq = |s: &str| -> Result<SequenceNumber, ApiError> {
            let n = SequenceNumber::parse(s).ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "StartingSequenceNumber {s} used in GetShardIterator on shard {shard_id} in stream {stream} under account {account} is invalid."
                ))
            })?;
            if n.shard_index != shard_id.0 {
                return Err(ApiError::invalid_argument(format!(
                    "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {shard_id}",
                    ShardId(n.shard_index)
                )));
            }
            Ok(n)
        };
        Ok(match self.kind {
            ShardIteratorType::TrimHorizon | ShardIteratorType::Latest if seq.is_some() => {
                return Err(mixed("also a StartingSequenceNumber"))
            }
            ShardIteratorType::TrimHorizon => ShardStart::TrimHorizon,
            ShardIteratorType::Latest => ShardStart::Latest,
            ShardIteratorType::AtSequenceNumber => ShardStart::AtSequence(parse_seq(
                seq.ok_or_else(|| mixed("no StartingSequenceNumber"))?,
            )?),
            ShardIteratorType::AfterSequenceNumber => ShardStart::AfterSequence(parse_seq(
                seq.ok_or_else(|| mixed("no StartingSequenceNumber"))?,
            )?),
            ShardIteratorType::AtTimestamp => {
                let ts = self.timestamp_ms.ok_or_else(|| {
                    ApiError::invalid_argument("Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.")
                })?;
                if ts > now {
                    return Err(ApiError::invalid_argument(format!(
                        "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {ts}, currentTimestampInMillis: {now}"
                    )));
                }
                ShardStart::AtTimestamp(ts)
            }
        })
    }
}

/// GetShardIterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetShardIteratorRequest {
    pub stream: StreamTarget,
    pub shard_id: ShardId,
    pub starting_position: StartingPosition,
}

impl GetShardIteratorRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<GetShardIteratorRequest, ApiError> {
        let mut v = Validator::new();
        let shard = input.str("ShardId")?;
        let kind = input.str("ShardIteratorType")?;
        let seq = input.str("StartingSequenceNumber")?;
        let ts = input.timestamp_ms("Timestamp")?;
        v.required(shard, "shardId");
        v.name(shard, "shardId", SHARD_ID_CHARS_MAX);
        v.required(kind, "shardIteratorType");
        v.one_of(
            kind,
            "shardIteratorType",
            &[
                "AFTER_SEQUENCE_NUMBER",
                "LATEST",
                "AT_TIMESTAMP",
                "AT_SEQUENCE_NUMBER",
                "TRIM_HORIZON",
            ],
        );
        v.pattern(
            seq,
            "startingSequenceNumber",
            "0|([1-9]\\d{0,128})",
            validate::is_sequence_number,
        );
        let stream = stream_member(&mut v, input, true, account)?;
        v.finish()?;
        let stream = present(stream)?;
        let shard_id = parse_shard_id(present(shard)?, stream.as_str(), account)?;
        Ok(GetShardIteratorRequest {
            stream,
            shard_id,
            starting_position: StartingPosition {
                kind: present(kind.and_then(ShardIteratorType::parse))?,
                sequence_number: seq.map(str::to_string),
                timestamp_ms: ts,
            },
        })
    }
}

/// GetRecords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRecordsRequest {
    /// Sealed: the operation opens it with its key (and its clock, for its age).
    pub shard_iterator: String,
    /// 1 to [`GET_RECORDS_COUNT_MAX`].
    pub limit: Option<u32>,
    /// `StreamName`/`StreamARN`, optional: when given, it must be the iterator's stream.
    pub stream: Option<StreamTarget>,
}

impl GetRecordsRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<GetRecordsRequest, ApiError> {
        let mut v = Validator::new();
        let limit = input.int("Limit")?;
        let token = input.str("ShardIterator")?;
        v.range(limit, "limit", Some(1), Some(GET_RECORDS_COUNT_MAX));
        v.required(token, "shardIterator");
        v.str_len(token, "shardIterator", 1, SHARD_ITERATOR_CHARS_MAX);
        let stream = stream_member(&mut v, input, false, account)?;
        v.finish()?;
        Ok(GetRecordsRequest {
            shard_iterator: present(token)?.to_string(),
            limit: limit.map(|n| n as u32),
            stream,
        })
    }
}

/// One record of PutRecord / PutRecords after its member checks.
enum Member {
    Valid(Record),
    /// It failed a constraint; the validator holds the violations.
    Violation,
    /// Within the constraints, but its ExplicitHashKey is past 2^128 - 1: AWS reports that
    /// after the request's violations and the stream's existence.
    HashKeyOutOfRange(ApiError),
}

/// A record as GetRecords and SubscribeToShardEvent show it.
/// A sequence number as a response member: its 56 digits, kept inline.
pub(crate) fn sequence_out(n: SequenceNumber) -> Out {
    let digits = n.to_digits();
    match sluice_aws::value::InlineStr::new(&digits) {
        Some(s) => Out::Inline(s),
        None => Out::Str(String::from_utf8_lossy(&digits).into_owned()),
    }
}

pub(crate) fn record_out(seq: SequenceNumber, r: sluice_streams::StoredRecord) -> Out {
    Out::map()
        .set("SequenceNumber", sequence_out(seq))
        .set("ApproximateArrivalTimestamp", Out::Timestamp(r.arrival_ms))
        .set("Data", Out::Blob(r.data))
        .str(
            "PartitionKey",
            std::str::from_utf8(&r.partition_key)
                .unwrap_or_default()
                .to_string(),
        )
        .done()
}

/// `ChildShards` of GetRecords and SubscribeToShardEvent.
pub(crate) fn child_shards_out(children: &[sluice_streams::ShardMeta]) -> Out {
    Out::Array(
        children
            .iter()
            .map(|c| {
                let parents = [c.parent, c.adjacent_parent]
                    .into_iter()
                    .flatten()
                    .map(|p| Out::Str(ShardId(p).to_string()))
                    .collect();
                Out::map()
                    .str("ShardId", ShardId(c.index).to_string())
                    .set("ParentShards", Out::Array(parents))
                    .set(
                        "HashKeyRange",
                        Out::map()
                            .str("StartingHashKey", c.hash_start.to_string())
                            .str("EndingHashKey", c.hash_end.to_string())
                            .done(),
                    )
                    .done()
            })
            .collect(),
    )
}

/// PutRecords as the operation acts on it: the one request type both decoders produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsRequest {
    pub stream: StreamTarget,
    pub records: Vec<Record>,
    /// An error AWS reports only after it has found the stream (an ExplicitHashKey past
    /// 2^128 - 1): the operation looks the stream up first.
    pub deferred: Option<ApiError>,
}

impl PutRecordsRequest {
    /// The one parser, over the request tree (JSON or CBOR): every check in AWS's order, with
    /// AWS's messages.
    pub fn parse(input: Input<'_>, account: &str) -> Result<PutRecordsRequest, ApiError> {
        let mut v = Validator::new();
        let list = input.list("Records")?;
        v.required(list, "records");
        if let Some(list) = list {
            let shown = || {
                format!(
                    "[{}]",
                    vec![
                        "com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310";
                        list.len()
                    ]
                    .join(", ")
                )
            };
            v.count(list.len(), "records", 1, PUT_RECORDS_COUNT_MAX, shown);
        }
        let mut records =
            Vec::with_capacity(list.map_or(0, |l| l.len().min(PUT_RECORDS_COUNT_MAX)));
        let mut deferred = None;
        if let Some(list) = list {
            // Past 500 records AWS still reports the members' violations after the list's, up
            // to ten in all: the request fails either way, so the reading stops once nine bad
            // records (each at least one violation) follow the list's own.
            let too_many = list.len() > PUT_RECORDS_COUNT_MAX;
            let mut bad = 0;
            for (i, e) in list.iter().enumerate() {
                let r = Input::element(e, input.format)?;
                match Service::record_members(&mut v, r, Some(i + 1))? {
                    Member::Valid(rec) if !too_many => records.push(rec),
                    Member::Valid(_) => {}
                    Member::Violation => bad += 1,
                    Member::HashKeyOutOfRange(e) => {
                        deferred.get_or_insert(e);
                    }
                }
                if too_many && bad == 9 {
                    break;
                }
            }
        }
        let stream = stream_member(&mut v, input, true, account)?;
        v.finish()?;
        let Some(stream) = stream else {
            // v.finish() refused a request without a stream.
            return Err(ApiError::serialization_bare());
        };
        if deferred.is_none() {
            check_put_records_bytes(&records)?;
        }
        Ok(PutRecordsRequest {
            stream,
            records,
            deferred,
        })
    }

    /// The fast decoder: a JSON body read straight into records, skipping the request tree.
    /// It answers only for a body that is plainly valid (`None` otherwise, and [`Self::parse`]
    /// decides, with its exact messages), and then exactly what [`Self::parse`] would.
    pub fn decode_json(body: &[u8]) -> Option<PutRecordsRequest> {
        #[derive(serde::Deserialize)]
        struct Entry<'a> {
            #[serde(rename = "Data", borrow)]
            data: &'a str,
            #[serde(rename = "PartitionKey", borrow)]
            partition_key: &'a str,
            #[serde(rename = "ExplicitHashKey", borrow, default)]
            explicit_hash_key: Option<&'a str>,
        }
        #[derive(serde::Deserialize)]
        struct Request<'a> {
            #[serde(rename = "Records", borrow)]
            records: Vec<sluice_aws::value::Object<Entry<'a>>>,
            #[serde(rename = "StreamName", borrow, default)]
            stream_name: Option<&'a str>,
            /// Any StreamARN (even null) is left to the generic path, which checks it against
            /// the name and the account.
            #[serde(rename = "StreamARN", default)]
            stream_arn: Option<serde::de::IgnoredAny>,
        }
        let sluice_aws::value::Object(req) =
            serde_json::from_slice::<sluice_aws::value::Object<Request<'_>>>(body).ok()?;
        if req.stream_arn.is_some() {
            return None;
        }
        let name = req
            .stream_name
            .filter(|n| validate::is_stream_name(n) && n.len() <= STREAM_NAME_CHARS_MAX)?;
        if req.records.is_empty() || req.records.len() > PUT_RECORDS_COUNT_MAX {
            return None;
        }
        // Every key and blob goes into one buffer; each record's bytes are slices of it.
        let arena_bytes: usize = req
            .records
            .iter()
            .map(|sluice_aws::value::Object(e)| e.partition_key.len() + e.data.len() / 4 * 3)
            .sum();
        let mut arena = bytes::BytesMut::with_capacity(arena_bytes);
        let mut records = Vec::with_capacity(req.records.len());
        for sluice_aws::value::Object(e) in &req.records {
            let key_ok = !e.partition_key.is_empty()
                && e.partition_key.chars().count() <= PARTITION_KEY_CHARS_MAX;
            if !key_ok || !e.explicit_hash_key.is_none_or(validate::is_hash_key) {
                return None;
            }
            let explicit_hash_key = match e.explicit_hash_key {
                Some(h) => Some(h.parse::<u128>().ok()?),
                None => None,
            };
            arena.extend_from_slice(e.partition_key.as_bytes());
            let partition_key = arena.split().freeze();
            if !sluice_aws::value::decode_base64_into(e.data, &mut arena) {
                return None;
            }
            if arena.len() > RECORD_DATA_BYTES_MAX {
                return None;
            }
            let data = arena.split().freeze();
            records.push(Record {
                partition_key,
                explicit_hash_key,
                data,
            });
        }
        check_put_records_bytes(&records).ok()?;
        Some(PutRecordsRequest {
            stream: StreamTarget(name.to_string()),
            records,
            deferred: None,
        })
    }
}

/// The 10 MiB limit on a PutRecords request's partition keys and data together.
fn check_put_records_bytes(records: &[Record]) -> Result<(), ApiError> {
    let total: usize = records
        .iter()
        .map(|r| r.data.len() + r.partition_key.len())
        .sum();
    if total > PUT_RECORDS_BYTES_MAX {
        return Err(ApiError::invalid_argument(format!(
            "Records size exceeds {} MB limit: the request's partition keys and data total {total} bytes.",
            PUT_RECORDS_BYTES_MAX / (1024 * 1024)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_streams::{PutResult, SequenceNumber, ShardId, Streams, StreamsConfig, SystemClock};

    use super::*;

    /// The hand-written JSON answer is byte for byte what the response tree encodes to.
    #[test]
    fn the_direct_json_answer_matches_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let streams =
            Arc::new(Streams::open(StreamsConfig::new(dir.path()), Arc::new(SystemClock)).unwrap());
        let service = Service::new(streams).unwrap();
        let outcomes = || {
            vec![
                Ok(PutResult {
                    shard_id: ShardId(0),
                    sequence_number: SequenceNumber::of_record(1, 0, 7),
                }),
                Ok(PutResult {
                    shard_id: ShardId(0),
                    sequence_number: SequenceNumber::of_record(1, 0, 8),
                }),
                Err(StreamsError::ThroughputExceeded {
                    stream: "s\"q".into(),
                    shard_id: "shardId-000000000003".into(),
                    write: true,
                }),
                Ok(PutResult {
                    shard_id: ShardId(12),
                    sequence_number: SequenceNumber::of_record(2, 12, 0),
                }),
                Err(StreamsError::Busy),
                Err(StreamsError::Log(sluice_streams::LogError::NoSpace {
                    path: "/x".into(),
                })),
                Ok(PutResult {
                    shard_id: ShardId(0),
                    sequence_number: SequenceNumber::of_record(1, 0, 9),
                }),
            ]
        };
        let tree = sluice_aws::codec::encode(
            &service.put_records_out(outcomes()),
            sluice_aws::Format::Json,
        );
        let direct = service.put_records_json(outcomes());
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            String::from_utf8(tree).unwrap()
        );
        assert_eq!(
            service.put_records_json(Vec::new()),
            br#"{"FailedRecordCount":0,"Records":[],"EncryptionType":"NONE"}"#
        );
    }

    /// GetRecords' JSON answer written directly is the response tree's, byte for byte.
    #[test]
    fn get_records_json_is_the_tree_encoded() {
        use bytes::Bytes;
        use sluice_streams::{ShardMeta, StoredRecord};
        let record = |seq: SequenceNumber, key: &str, data: &[u8], arrival_ms: i64| {
            (
                seq,
                StoredRecord {
                    offset: 0,
                    arrival_ms,
                    partition_key: Bytes::copy_from_slice(key.as_bytes()),
                    explicit_hash_key: None,
                    data: Bytes::copy_from_slice(data),
                },
            )
        };
        let child = |index, parent, adjacent_parent| ShardMeta {
            index,
            hash_start: 0,
            hash_end: u128::MAX,
            parent,
            adjacent_parent,
            epoch: 1,
            created_ms: 5,
            closed_end_offset: None,
            closed_ms: None,
        };
        let answers = || {
            vec![
                GetRecordsAnswer {
                    records: vec![
                        record(
                            SequenceNumber::of_record(1, 0, 0),
                            "k",
                            b"hello",
                            1_764_300_000_123,
                        ),
                        record(
                            SequenceNumber::of_record(1, 0, 1),
                            "cl\u{e9} \"q\" \\ \n",
                            b"",
                            1_000,
                        ),
                        record(
                            SequenceNumber::of_record(7, 3, 99),
                            "\u{1f600}",
                            &[0, 255, 1],
                            7,
                        ),
                        record(
                            SequenceNumber::of_record(2, 12, 5),
                            "x",
                            &[7u8; 1000],
                            1_764_300_000_999,
                        ),
                    ],
                    next: Some("AAAA+/=token".into()),
                    millis_behind_latest: 1234,
                    children: Vec::new(),
                },
                GetRecordsAnswer {
                    records: Vec::new(),
                    next: None,
                    millis_behind_latest: 0,
                    children: vec![child(4, Some(1), None), child(5, Some(1), Some(2))],
                },
                GetRecordsAnswer {
                    records: vec![record(SequenceNumber::of_record(1, 0, 3), "k", b"d", 0)],
                    next: Some("t".into()),
                    millis_behind_latest: 0,
                    children: vec![child(2, Some(0), None)],
                },
            ]
        };
        for (tree, direct) in answers().into_iter().zip(answers()) {
            let tree = sluice_aws::codec::encode(&tree.out(), sluice_aws::Format::Json);
            assert_eq!(
                String::from_utf8(direct.json()).unwrap(),
                String::from_utf8(tree).unwrap()
            );
        }
    }
}

/// The request types of PutRecord, GetShardIterator and GetRecords.
#[cfg(test)]
mod request_tests {
    use sluice_aws::{ErrorType, Format};

    use super::*;
    use crate::ops::json_tree;

    const ACCOUNT: &str = "123456789012";

    fn iterator(body: &str) -> Result<GetShardIteratorRequest, ApiError> {
        GetShardIteratorRequest::parse(Input::root(&json_tree(body), Format::Json)?, ACCOUNT)
    }

    #[test]
    fn get_shard_iterator_members_are_typed() {
        let seq = SequenceNumber::of_record(1, 3, 7).to_string();
        let r = iterator(&format!(
            r#"{{"StreamName":"s1","ShardId":"shardId-000000000003","ShardIteratorType":"AFTER_SEQUENCE_NUMBER","StartingSequenceNumber":"{seq}"}}"#
        ))
        .unwrap();
        assert_eq!(r.stream.as_str(), "s1");
        assert_eq!(r.shard_id, ShardId(3));
        assert_eq!(
            r.starting_position.kind,
            ShardIteratorType::AfterSequenceNumber
        );
        assert_eq!(
            r.starting_position.start(r.shard_id, "s1", ACCOUNT, 0),
            Ok(ShardStart::AfterSequence(
                SequenceNumber::parse(&seq).unwrap()
            ))
        );
        // A number of another shard is refused once the shard is known.
        let e = r
            .starting_position
            .start(ShardId(4), "s1", ACCOUNT, 0)
            .unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Invalid StartingSequenceNumber. It encodes shardId-000000000003, while it was used in a call to a shard with shardId-000000000004")
        );
        let r = iterator(
            r#"{"StreamName":"s1","ShardId":"1","ShardIteratorType":"AT_TIMESTAMP","Timestamp":5}"#,
        )
        .unwrap();
        assert_eq!(r.shard_id, ShardId(1));
        assert_eq!(
            r.starting_position.start(r.shard_id, "s1", ACCOUNT, 5_000),
            Ok(ShardStart::AtTimestamp(5_000))
        );
        assert!(r
            .starting_position
            .start(r.shard_id, "s1", ACCOUNT, 4_999)
            .is_err());
    }

    #[test]
    fn get_shard_iterator_checks_keep_aws_order() {
        let e =
            iterator(r#"{"ShardIteratorType":"NEXT","StartingSequenceNumber":"01"}"#).unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("4 validation errors detected: Value null at 'shardId' failed to satisfy constraint: Member must not be null; Value 'NEXT' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]; Value '01' at 'startingSequenceNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128}); Value null at 'streamName' failed to satisfy constraint: Member must not be null")
        );
        // An unreadable shard id names the shard, before the type and number are compared.
        let e = iterator(r#"{"StreamName":"s1","ShardId":"shardId-x","ShardIteratorType":"LATEST","StartingSequenceNumber":"1"}"#)
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::ResourceNotFound);
        let r = iterator(r#"{"StreamName":"s1","ShardId":"shardId-1","ShardIteratorType":"LATEST","StartingSequenceNumber":"1"}"#)
            .unwrap();
        assert!(r
            .starting_position
            .start(r.shard_id, "s1", ACCOUNT, 0)
            .unwrap_err()
            .message
            .unwrap()
            .ends_with("Request specified LATEST and also a StartingSequenceNumber."));
    }

    #[test]
    fn put_record_defers_what_aws_checks_after_the_stream() {
        let parse = |body: &str| {
            PutRecordRequest::parse(
                Input::root(&json_tree(body), Format::Json).unwrap(),
                ACCOUNT,
            )
        };
        let r =
            parse(r#"{"StreamName":"s1","PartitionKey":"k","Data":"YWJj","ExplicitHashKey":"5"}"#)
                .unwrap();
        let record = r.record.unwrap();
        assert_eq!(record.explicit_hash_key, Some(5));
        assert_eq!(&record.data[..], b"abc");
        assert_eq!(r.sequence_number_for_ordering, None);
        let key = "9".repeat(39);
        let r = parse(&format!(
            r#"{{"StreamName":"s1","PartitionKey":"k","Data":"YWJj","ExplicitHashKey":"{key}","SequenceNumberForOrdering":"1"}}"#
        ))
        .unwrap();
        assert_eq!(r.record.unwrap_err().error_type, ErrorType::InvalidArgument);
        assert_eq!(
            r.sequence_number_for_ordering.unwrap().unwrap_err().message.as_deref(),
            Some("ExclusiveMinimumSequenceNumber 1 used in PutRecord on stream s1 under account 123456789012 is invalid.")
        );
    }
}
