//! The Kinesis operations: member checks in AWS's order, then the call into `sluice-streams`,
//! then the response shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_streams::{
    Record, SequenceNumber, ShardId, ShardStart, ShardView, StreamMode, StreamName, StreamSpec,
    StreamStatus, StreamView, Streams, StreamsError,
};
use tokio::sync::oneshot;

use crate::error::{ApiError, Ctx};
use crate::iterator::{java_date, token_age, PageToken, ShardIterator, TokenAge, TokenKey};
use crate::limits::*;
use crate::validate::{self, Validator};
use sluice_aws::value::{Input, Out};

/// Every operation of the Kinesis API model; those sluice does not have answer with
/// [`ApiError::not_implemented`], anything else with UnknownOperationException.
pub const OPERATIONS: &[&str] = &[
    "AddTagsToStream",
    "CreateStream",
    "DecreaseStreamRetentionPeriod",
    "DeleteResourcePolicy",
    "DeleteStream",
    "DeregisterStreamConsumer",
    "DescribeAccountSettings",
    "DescribeLimits",
    "DescribeStream",
    "DescribeStreamConsumer",
    "DescribeStreamSummary",
    "DisableEnhancedMonitoring",
    "EnableEnhancedMonitoring",
    "GetRecords",
    "GetResourcePolicy",
    "GetShardIterator",
    "IncreaseStreamRetentionPeriod",
    "ListShards",
    "ListStreamConsumers",
    "ListStreams",
    "ListTagsForResource",
    "ListTagsForStream",
    "MergeShards",
    "PutRecord",
    "PutRecords",
    "PutResourcePolicy",
    "RegisterStreamConsumer",
    "RemoveTagsFromStream",
    "SplitShard",
    "StartStreamEncryption",
    "StopStreamEncryption",
    "SubscribeToShard",
    "TagResource",
    "UntagResource",
    "UpdateAccountSettings",
    "UpdateMaxRecordSize",
    "UpdateShardCount",
    "UpdateStreamMode",
    "UpdateStreamWarmThroughput",
];

pub use sluice_aws::Reply;

/// The Kinesis service over one stream registry.
pub struct Service {
    pub streams: Arc<Streams>,
    /// Live SubscribeToShard subscriptions.
    pub subscriptions: Arc<crate::subscribe::Subscriptions>,
    /// The per-stream series of `/metrics` and enhanced monitoring.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Seals shard iterators and NextTokens.
    pub(crate) tokens: TokenKey,
}

impl Service {
    /// The service over `streams`, with the token key of its data directory (made there on
    /// first start).
    pub fn new(streams: Arc<Streams>) -> Result<Service, crate::iterator::TokenKeyError> {
        let tokens = TokenKey::load_or_create(&streams.config().data_dir)?;
        Ok(Service::with_token_key(streams, tokens))
    }

    /// The service with a given token key (tests, or a key kept elsewhere).
    pub fn with_token_key(streams: Arc<Streams>, tokens: TokenKey) -> Service {
        Service {
            streams,
            subscriptions: Default::default(),
            metrics: Default::default(),
            tokens,
        }
    }

    pub(crate) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            account: &self.streams.config().account_id,
            region: &self.streams.config().region,
        }
    }

    pub(crate) fn arn(&self, name: &str) -> String {
        let c = self.streams.config();
        format!(
            "arn:aws:kinesis:{}:{}:stream/{name}",
            c.region, c.account_id
        )
    }

    pub async fn call(&self, op: &str, input: Input<'_>) -> Result<Reply, ApiError> {
        match op {
            "CreateStream" => self.create_stream(input),
            "DeleteStream" => self.delete_stream(input),
            "DescribeStream" => self.describe_stream(input),
            "DescribeStreamSummary" => self.describe_stream_summary(input),
            "ListStreams" => self.list_streams(input),
            "ListShards" => self.list_shards(input),
            "PutRecord" => self.put_record(input).await,
            "PutRecords" => self.put_records(input).await,
            "GetShardIterator" => self.get_shard_iterator(input),
            "GetRecords" => self.get_records(input).await,
            "IncreaseStreamRetentionPeriod" => self.retention(input, true),
            "DecreaseStreamRetentionPeriod" => self.retention(input, false),
            "AddTagsToStream" => self.add_tags(input),
            "RemoveTagsFromStream" => self.remove_tags(input),
            "ListTagsForStream" => self.list_tags(input),
            "DescribeLimits" => Ok(self.describe_limits()),
            "SplitShard" => self.split_shard(input),
            "MergeShards" => self.merge_shards(input),
            "UpdateShardCount" => self.update_shard_count(input),
            "UpdateStreamMode" => self.update_stream_mode(input),
            "RegisterStreamConsumer" => self.register_stream_consumer(input),
            "DeregisterStreamConsumer" => self.deregister_stream_consumer(input),
            "DescribeStreamConsumer" => self.describe_stream_consumer(input),
            "ListStreamConsumers" => self.list_stream_consumers(input),
            "SubscribeToShard" => self.subscribe_to_shard(input),
            "EnableEnhancedMonitoring" => self.enhanced_monitoring_change(input, true),
            "DisableEnhancedMonitoring" => self.enhanced_monitoring_change(input, false),
            other if OPERATIONS.contains(&other) => Err(crate::error::not_implemented(other)),
            _ => Err(ApiError::unknown_operation()),
        }
    }

    /// Reads `StreamName`/`StreamARN` (checked in the `streamName` position of the order).
    fn stream_member(
        &self,
        v: &mut Validator,
        input: Input<'_>,
        required: bool,
    ) -> Result<Option<String>, ApiError> {
        let name = input.str("StreamName")?;
        let arn = input.str("StreamARN")?;
        if required && name.is_none() && arn.is_none() {
            v.required(None::<&str>, "streamName");
        }
        v.name(name, "streamName", STREAM_NAME_CHARS_MAX);
        v.pattern(
            arn,
            "streamARN",
            "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
            validate::is_stream_arn,
        );
        v.str_len(arn, "streamARN", 1, STREAM_ARN_CHARS_MAX);
        Ok(match (name, arn.and_then(validate::parse_stream_arn)) {
            (Some(n), Some((_, from_arn))) if n != from_arn => {
                return Err(ApiError::invalid_argument(format!(
                    "StreamARN {} and StreamName {n} do not refer to the same stream.",
                    arn.unwrap()
                )))
            }
            (_, Some((account, from_arn))) if account != self.streams.config().account_id => {
                // Another account's stream cannot exist here.
                return Err(ApiError::not_found(format!(
                    "Stream {from_arn} under account {account} not found."
                )));
            }
            (Some(n), _) => Some(n.to_string()),
            (None, Some((_, from_arn))) => Some(from_arn.to_string()),
            (None, None) => None,
        })
    }

    pub(crate) fn require_stream(
        &self,
        input: Input<'_>,
        v: &mut Validator,
    ) -> Result<String, ApiError> {
        let s = self.stream_member(v, input, true)?;
        Ok(s.unwrap_or_default())
    }

    fn create_stream(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let shard_count = input.int("ShardCount")?;
        let mode = match input.structure("StreamModeDetails")? {
            Some(d) => Some(d.str("StreamMode")?),
            None => None,
        };
        let tags = input.string_map("Tags")?;
        let max_kib = input.int("MaxRecordSizeInKiB")?;
        v.range(shard_count, "shardCount", Some(1), None);
        let name = input.str("StreamName")?;
        v.required(name, "streamName");
        v.name(name, "streamName", STREAM_NAME_CHARS_MAX);
        if let Some(m) = mode {
            v.required(m, "streamModeDetails.streamMode");
            v.one_of(
                m,
                "streamModeDetails.streamMode",
                &["PROVISIONED", "ON_DEMAND"],
            );
        }
        let on_demand = mode == Some(Some("ON_DEMAND"));
        if !on_demand && shard_count.is_none() {
            v.required(None::<&str>, "shardCount");
        }
        if let Some(t) = &tags {
            check_tags(&mut v, t, "tags");
        }
        v.range(
            max_kib,
            "maxRecordSizeInKiB",
            Some(MAX_RECORD_SIZE_KIB_MIN),
            Some(MAX_RECORD_SIZE_KIB_MAX),
        );
        v.finish()?;
        let name = StreamName::new(name.unwrap()).expect("validated above");
        let spec = StreamSpec {
            // An on-demand stream starts with four shards, as on AWS.
            shard_count: shard_count.unwrap_or(4) as u32,
            mode: if on_demand {
                StreamMode::OnDemand
            } else {
                StreamMode::Provisioned
            },
            max_record_size_kib: max_kib
                .map(|k| k as u32)
                .unwrap_or(MAX_RECORD_SIZE_KIB_DEFAULT),
            tags: tags.unwrap_or_default().into_iter().collect(),
        };
        validate::check_tag_characters(
            spec.tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]),
        )?;
        self.streams
            .create_stream(&name, spec)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    fn delete_stream(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let enforce = input.bool("EnforceConsumerDeletion")?;
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        self.streams
            .delete_stream(&name, enforce == Some(true))
            .map_err(|e| self.ctx().map(e))?;
        self.metrics.forget_stream(&name);
        Ok(Reply::Empty)
    }

    fn shard_out(&self, s: &ShardView) -> Out {
        let range = Out::map()
            .str("StartingHashKey", s.meta.hash_start.to_string())
            .str("EndingHashKey", s.meta.hash_end.to_string())
            .done();
        let seq = Out::map()
            .str(
                "StartingSequenceNumber",
                s.starting_sequence_number.to_string(),
            )
            .opt(
                "EndingSequenceNumber",
                s.ending_sequence_number.map(|e| Out::Str(e.to_string())),
            )
            .done();
        Out::map()
            .str("ShardId", s.shard_id().to_string())
            .opt(
                "ParentShardId",
                s.meta.parent.map(|p| Out::Str(ShardId(p).to_string())),
            )
            .opt(
                "AdjacentParentShardId",
                s.meta
                    .adjacent_parent
                    .map(|p| Out::Str(ShardId(p).to_string())),
            )
            .set("HashKeyRange", range)
            .set("SequenceNumberRange", seq)
            .done()
    }

    fn mode_out(mode: StreamMode) -> Out {
        Out::map()
            .str(
                "StreamMode",
                if mode == StreamMode::OnDemand {
                    "ON_DEMAND"
                } else {
                    "PROVISIONED"
                },
            )
            .done()
    }

    fn describe_stream(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let limit = input.int("Limit")?;
        let start = input.str("ExclusiveStartShardId")?;
        v.range(limit, "limit", Some(1), Some(DESCRIBE_STREAM_LIMIT_MAX));
        v.name(start, "exclusiveStartShardId", SHARD_ID_CHARS_MAX);
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        let view = self
            .streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        let page = (limit.unwrap_or(100) as usize).min(DESCRIBE_STREAM_PAGE_MAX);
        let visible: Vec<&ShardView> = if view.meta.status == StreamStatus::Creating {
            Vec::new()
        } else {
            view.shards
                .iter()
                .filter(|s| start.is_none_or(|st| s.shard_id().to_string().as_str() > st))
                .collect()
        };
        let has_more = visible.len() > page;
        let shards = visible
            .iter()
            .take(page)
            .map(|s| self.shard_out(s))
            .collect();
        let d = Out::map()
            .str("StreamName", view.meta.name.clone())
            .str("StreamARN", self.arn(&view.meta.name))
            .str("StreamStatus", view.meta.status.as_aws())
            .set("StreamModeDetails", Self::mode_out(view.meta.mode))
            .set("Shards", Out::Array(shards))
            .bool("HasMoreShards", has_more)
            .int("RetentionPeriodHours", view.meta.retention_hours as i64)
            .set(
                "StreamCreationTimestamp",
                Out::Timestamp(view.meta.created_ms),
            )
            .set(
                "EnhancedMonitoring",
                self.enhanced_monitoring(&view.meta.name),
            )
            .str("EncryptionType", "NONE")
            .done();
        Ok(Reply::Body(Out::map().set("StreamDescription", d).done()))
    }

    fn describe_stream_summary(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        let view = self
            .streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        let open = if view.meta.status == StreamStatus::Creating {
            0
        } else {
            view.meta.open_shard_count()
        };
        let d = Out::map()
            .str("StreamName", view.meta.name.clone())
            .str("StreamARN", self.arn(&view.meta.name))
            .str("StreamStatus", view.meta.status.as_aws())
            .set("StreamModeDetails", Self::mode_out(view.meta.mode))
            .int("RetentionPeriodHours", view.meta.retention_hours as i64)
            .set(
                "StreamCreationTimestamp",
                Out::Timestamp(view.meta.created_ms),
            )
            .set(
                "EnhancedMonitoring",
                self.enhanced_monitoring(&view.meta.name),
            )
            .str("EncryptionType", "NONE")
            .int("OpenShardCount", open as i64)
            .int("ConsumerCount", view.meta.consumers.len() as i64)
            .int("MaxRecordSizeInKiB", view.meta.max_record_size_kib as i64)
            .done();
        Ok(Reply::Body(
            Out::map().set("StreamDescriptionSummary", d).done(),
        ))
    }

    pub(crate) fn page_token(&self, token: &str, scope: &str) -> Result<PageToken, ApiError> {
        let invalid = || ApiError::invalid_argument(format!("Invalid NextToken: {token}"));
        let t = PageToken::decode(&self.tokens, token)
            .filter(|t| t.scope == scope)
            .ok_or_else(invalid)?;
        match token_age(t.issued_ms, self.streams.now_ms(), NEXT_TOKEN_TTL_MS) {
            TokenAge::Fresh => Ok(t),
            TokenAge::Expired => Err(ApiError::expired_next_token(format!(
                "The NextToken has expired: it was issued at {} and is valid for 300 seconds.",
                java_date(t.issued_ms)
            ))),
            TokenAge::Invalid => Err(invalid()),
        }
    }

    fn list_streams(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let limit = input.int("Limit")?;
        let start = input.str("ExclusiveStartStreamName")?;
        let token = input.str("NextToken")?;
        v.range(limit, "limit", Some(1), Some(LIST_STREAMS_LIMIT_MAX));
        v.name(start, "exclusiveStartStreamName", STREAM_NAME_CHARS_MAX);
        v.str_len(token, "nextToken", 1, 1_048_576);
        v.finish()?;
        let after = match token {
            Some(t) => Some(self.page_token(t, "ListStreams")?.after),
            None => start.map(str::to_string),
        };
        let page = (limit.unwrap_or(100) as usize).min(LIST_STREAMS_PAGE_MAX);
        let names: Vec<String> = self
            .streams
            .names()
            .into_iter()
            .filter(|n| after.as_ref().is_none_or(|a| n > a))
            .collect();
        let has_more = names.len() > page;
        let names: Vec<String> = names.into_iter().take(page).collect();
        let mut summaries = Vec::with_capacity(names.len());
        for n in &names {
            // A stream deleted between the two calls is left out.
            if let Ok(view) = self.streams.describe(n) {
                summaries.push(
                    Out::map()
                        .str("StreamName", n.clone())
                        .str("StreamARN", self.arn(n))
                        .str("StreamStatus", view.meta.status.as_aws())
                        .set("StreamModeDetails", Self::mode_out(view.meta.mode))
                        .set(
                            "StreamCreationTimestamp",
                            Out::Timestamp(view.meta.created_ms),
                        )
                        .done(),
                );
            }
        }
        let next = has_more.then(|| {
            Out::Str(
                PageToken {
                    scope: "ListStreams".into(),
                    after: names.last().cloned().unwrap_or_default(),
                    issued_ms: self.streams.now_ms(),
                }
                .encode(&self.tokens),
            )
        });
        Ok(Reply::Body(
            Out::map()
                .set(
                    "StreamNames",
                    Out::Array(names.into_iter().map(Out::Str).collect()),
                )
                .bool("HasMoreStreams", has_more)
                .opt("NextToken", next)
                .set("StreamSummaries", Out::Array(summaries))
                .done(),
        ))
    }

    fn list_shards(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let max = input.int("MaxResults")?;
        let start = input.str("ExclusiveStartShardId")?;
        let token = input.str("NextToken")?;
        let created = input.timestamp_ms("StreamCreationTimestamp")?;
        let filter = input.structure("ShardFilter")?;
        let (filter_type, filter_shard, filter_ts) = match filter {
            Some(f) => (
                f.str("Type")?,
                f.str("ShardId")?,
                f.timestamp_ms("Timestamp")?,
            ),
            None => (None, None, None),
        };
        v.range(
            max,
            "maxResults",
            Some(1),
            Some(LIST_SHARDS_MAX_RESULTS_MAX),
        );
        v.name(start, "exclusiveStartShardId", SHARD_ID_CHARS_MAX);
        let name = self.stream_member(&mut v, input, false)?;
        v.str_len(token, "nextToken", 1, 1_048_576);
        if filter.is_some() {
            v.required(filter_type, "shardFilter.type");
            v.one_of(
                filter_type,
                "shardFilter.type",
                &[
                    "AFTER_SHARD_ID",
                    "AT_TRIM_HORIZON",
                    "FROM_TRIM_HORIZON",
                    "AT_LATEST",
                    "AT_TIMESTAMP",
                    "FROM_TIMESTAMP",
                ],
            );
        }
        v.finish()?;
        // A later page keeps the first page's filter: it travels in the NextToken.
        let (name, after, filter_type, filter_ts) = match (token, name) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_argument(
                    "NextToken and StreamName cannot be provided together.",
                ))
            }
            (None, None) => {
                return Err(ApiError::invalid_argument(
                    "Either NextToken or StreamName should be provided.",
                ))
            }
            (Some(t), None) => {
                if start.is_some() {
                    return Err(ApiError::invalid_argument(
                        "NextToken and ExclusiveStartShardId cannot be provided together.",
                    ));
                }
                if created.is_some() {
                    return Err(ApiError::invalid_argument(
                        "NextToken and StreamCreationTimestamp cannot be provided together.",
                    ));
                }
                if filter.is_some() {
                    return Err(ApiError::invalid_argument(
                        "NextToken and ShardFilter cannot be provided together.",
                    ));
                }
                let t = self.page_token(t, "ListShards")?;
                let mut parts = t.after.split('\n');
                let stream = parts.next().unwrap_or_default().to_string();
                let after = parts.next().unwrap_or_default().to_string();
                let ftype = parts.next().filter(|f| !f.is_empty()).map(str::to_string);
                let fts = parts.next().and_then(|f| f.parse::<i64>().ok());
                (stream, Some(after), ftype, fts)
            }
            (None, Some(n)) => (
                n,
                start.map(str::to_string),
                filter_type.map(str::to_string),
                filter_ts,
            ),
        };
        match filter_type.as_deref() {
            Some("AFTER_SHARD_ID") if filter_shard.is_none() && token.is_none() => {
                return Err(ApiError::invalid_argument("ShardId must be supplied in a ShardFilter with a Type of AFTER_SHARD_ID"))
            }
            Some("AT_TIMESTAMP" | "FROM_TIMESTAMP") if filter_ts.is_none() => {
                return Err(ApiError::invalid_argument("Timestamp must be supplied in a ShardFilter with a Type of FROM_TIMESTAMP or AT_TIMESTAMP"))
            }
            _ => {}
        }
        let view: StreamView = self
            .streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        if let Some(c) = created {
            if c / 1000 != view.meta.created_ms / 1000 {
                return Err(self.ctx().stream_not_found(&name));
            }
        }
        let after = match (filter_type.as_deref(), filter_shard) {
            (Some("AFTER_SHARD_ID"), Some(s)) => Some(s.to_string()).max(after),
            _ => after,
        };
        // The trim horizon in time: older data is gone.
        let now = self.streams.now_ms();
        let trim = (now - view.meta.retention_hours as i64 * 3_600_000).max(view.meta.created_ms);
        let open_or_closed_since = |s: &ShardView, t: i64| s.meta.closed_ms.is_none_or(|c| c >= t);
        let ts = filter_ts.unwrap_or(now);
        let shards: Vec<&ShardView> = view
            .shards
            .iter()
            .filter(|s| after.as_ref().is_none_or(|a| s.shard_id().to_string() > *a))
            .filter(|s| match filter_type.as_deref() {
                Some("AT_LATEST") => s.meta.is_open(),
                Some("AT_TRIM_HORIZON") => {
                    s.meta.created_ms <= trim && open_or_closed_since(s, trim)
                }
                Some("FROM_TRIM_HORIZON") => open_or_closed_since(s, trim),
                Some("AT_TIMESTAMP") => s.meta.created_ms <= ts && open_or_closed_since(s, ts),
                Some("FROM_TIMESTAMP") => open_or_closed_since(s, ts.max(trim)),
                _ => true,
            })
            .collect();
        let page = (max.unwrap_or(1000) as usize).min(LIST_SHARDS_PAGE_MAX);
        let has_more = shards.len() > page;
        let out: Vec<Out> = shards
            .iter()
            .take(page)
            .map(|s| self.shard_out(s))
            .collect();
        let next = has_more.then(|| {
            let last = shards[page - 1].shard_id().to_string();
            Out::Str(
                PageToken {
                    scope: "ListShards".into(),
                    after: format!(
                        "{name}\n{last}\n{}\n{}",
                        filter_type.as_deref().unwrap_or_default(),
                        filter_ts.map(|t| t.to_string()).unwrap_or_default()
                    ),
                    issued_ms: self.streams.now_ms(),
                }
                .encode(&self.tokens),
            )
        });
        Ok(Reply::Body(
            Out::map()
                .set("Shards", Out::Array(out))
                .opt("NextToken", next)
                .done(),
        ))
    }

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
            partition_key: key.as_bytes().to_vec(),
            explicit_hash_key,
            data,
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

    async fn put_record(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let ordering = input.str("SequenceNumberForOrdering")?;
        v.pattern(
            ordering,
            "sequenceNumberForOrdering",
            "0|([1-9]\\d{0,128})",
            validate::is_sequence_number,
        );
        let record = Self::record_members(&mut v, input, None)?;
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        let record = match record {
            Member::Valid(r) => r,
            Member::HashKeyOutOfRange(e) => return Err(self.after_stream_lookup(&name, e)),
            Member::Violation => unreachable!("validated above"),
        };
        // The rule GetShardIterator applies to StartingSequenceNumber, with the message AWS
        // gives for this member (which it checks after the stream and ExplicitHashKey).
        if let Some(o) = ordering.filter(|o| SequenceNumber::parse(o).is_none()) {
            let e = ApiError::invalid_argument(format!(
                "ExclusiveMinimumSequenceNumber {o} used in PutRecord on stream {name} under account {} is invalid.",
                self.streams.config().account_id
            ));
            return Err(self.after_stream_lookup(&name, e));
        }
        let mut outcomes = self
            .put(crate::metrics::PutOp::PutRecord, &name, vec![record])
            .await?;
        let r = outcomes
            .pop()
            .expect("one outcome per record")
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Body(
            Out::map()
                .str("ShardId", r.shard_id.to_string())
                .str("SequenceNumber", r.sequence_number.to_string())
                .str("EncryptionType", "NONE")
                .done(),
        ))
    }

    async fn put_records(&self, input: Input<'_>) -> Result<Reply, ApiError> {
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
        let mut out_of_range = None;
        if let Some(list) = list {
            // Past 500 records AWS still reports the members' violations after the list's, up
            // to ten in all: the request fails either way, so the reading stops once nine bad
            // records (each at least one violation) follow the list's own.
            let too_many = list.len() > PUT_RECORDS_COUNT_MAX;
            let mut bad = 0;
            for (i, e) in list.iter().enumerate() {
                let r = Input::element(e, input.format)?;
                match Self::record_members(&mut v, r, Some(i + 1))? {
                    Member::Valid(rec) if !too_many => records.push(rec),
                    Member::Valid(_) => {}
                    Member::Violation => bad += 1,
                    Member::HashKeyOutOfRange(e) => {
                        out_of_range.get_or_insert(e);
                    }
                }
                if too_many && bad == 9 {
                    break;
                }
            }
        }
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        if let Some(e) = out_of_range {
            return Err(self.after_stream_lookup(&name, e));
        }
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
        self.put_records_checked(&name, records).await
    }

    /// PutRecords after the request-level checks: per-stream record sizes, the append, the
    /// per-record answers.
    pub async fn put_records_checked(
        &self,
        name: &str,
        records: Vec<Record>,
    ) -> Result<Reply, ApiError> {
        let outcomes = self
            .put(crate::metrics::PutOp::PutRecords, name, records)
            .await?;
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
                    let e = self.ctx().map(e);
                    let (code, message) =
                        if e.error_type == sluice_aws::ErrorType::ProvisionedThroughputExceeded {
                            (e.type_name(), e.message.unwrap_or_default())
                        } else {
                            // InternalFailure, with what went wrong when it is the client's
                            // business (a full disk).
                            let message = e
                                .message
                                .filter(|m| m.starts_with("Internal Service Failure"))
                                .unwrap_or_else(|| "Internal Service Failure".to_string());
                            ("InternalFailure", message)
                        };
                    Out::map()
                        .str("ErrorCode", code)
                        .str("ErrorMessage", message)
                        .done()
                }
            })
            .collect();
        Ok(Reply::Body(
            Out::map()
                .int("FailedRecordCount", failed)
                .set("Records", Out::Array(out))
                .str("EncryptionType", "NONE")
                .done(),
        ))
    }

    /// Reads a well-formed JSON PutRecords request straight into records, skipping the generic
    /// tree. Returns `None` (and the generic path runs, with its exact error messages) for
    /// anything that is not plainly valid.
    pub fn parse_put_records_fast(body: &[u8]) -> Option<(String, Vec<Record>)> {
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
            records: Vec<Object<Entry<'a>>>,
            #[serde(rename = "StreamName", borrow, default)]
            stream_name: Option<&'a str>,
        }
        let Object(req) = serde_json::from_slice::<Object<Request<'_>>>(body).ok()?;
        let name = req
            .stream_name
            .filter(|n| validate::is_stream_name(n) && n.len() <= STREAM_NAME_CHARS_MAX)?;
        if req.records.is_empty() || req.records.len() > PUT_RECORDS_COUNT_MAX {
            return None;
        }
        let mut records = Vec::with_capacity(req.records.len());
        let mut total = 0;
        for Object(e) in &req.records {
            let key_ok = !e.partition_key.is_empty()
                && e.partition_key.chars().count() <= PARTITION_KEY_CHARS_MAX;
            if !key_ok || !e.explicit_hash_key.is_none_or(validate::is_hash_key) {
                return None;
            }
            let data = sluice_aws::value::decode_base64(e.data).ok()?;
            if data.len() > RECORD_DATA_BYTES_MAX {
                return None;
            }
            let explicit_hash_key = match e.explicit_hash_key {
                Some(h) => Some(h.parse::<u128>().ok()?),
                None => None,
            };
            total += data.len() + e.partition_key.len();
            records.push(Record {
                partition_key: e.partition_key.as_bytes().to_vec(),
                explicit_hash_key,
                data,
            });
        }
        if total > PUT_RECORDS_BYTES_MAX {
            return None;
        }
        Some((name.to_string(), records))
    }

    /// The cursor a GetShardIterator or SubscribeToShard starts from. The stream and the shard
    /// are checked first (ResourceNotFoundException), then the starting position, as AWS does:
    /// a sequence number given for a shard that does not exist names the shard, not the number.
    pub(crate) fn shard_cursor(
        &self,
        name: &str,
        shard_id: ShardId,
        kind: &str,
        seq: Option<&str>,
        ts: Option<i64>,
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
        let start = self.shard_start(kind, seq, ts, shard_id, name)?;
        self.streams
            .cursor(name, shard_id, start)
            .map_err(not_found)
    }

    /// Where a GetShardIterator or SubscribeToShard starts, from its type, sequence number and
    /// timestamp members, with AWS's messages for a mismatched combination.
    pub(crate) fn shard_start(
        &self,
        kind: &str,
        seq: Option<&str>,
        ts: Option<i64>,
        shard_id: ShardId,
        name: &str,
    ) -> Result<ShardStart, ApiError> {
        let account = &self.streams.config().account_id;
        let mixed = |what: &str| {
            ApiError::invalid_argument(format!(
                "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and {what}."
            ))
        };
        let parse_seq = |s: &str| -> Result<SequenceNumber, ApiError> {
            let n = SequenceNumber::parse(s).ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "StartingSequenceNumber {s} used in GetShardIterator on shard {shard_id} in stream {name} under account {account} is invalid."
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
        let now = self.streams.now_ms();
        Ok(match kind {
            "TRIM_HORIZON" | "LATEST" if seq.is_some() => {
                return Err(mixed("also a StartingSequenceNumber"))
            }
            "TRIM_HORIZON" => ShardStart::TrimHorizon,
            "LATEST" => ShardStart::Latest,
            "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER" => {
                let s = seq.ok_or_else(|| mixed("no StartingSequenceNumber"))?;
                let n = parse_seq(s)?;
                if kind == "AT_SEQUENCE_NUMBER" {
                    ShardStart::AtSequence(n)
                } else {
                    ShardStart::AfterSequence(n)
                }
            }
            _ => {
                let ts = ts.ok_or_else(|| {
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

    fn get_shard_iterator(&self, input: Input<'_>) -> Result<Reply, ApiError> {
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
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        let (shard, kind) = (shard.unwrap(), kind.unwrap());
        let shard_id = self.parse_shard_id(shard, &name)?;
        let now = self.streams.now_ms();
        let cursor = self.shard_cursor(&name, shard_id, kind, seq, ts)?;
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

    async fn get_records(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let limit = input.int("Limit")?;
        let token = input.str("ShardIterator")?;
        v.range(limit, "limit", Some(1), Some(GET_RECORDS_COUNT_MAX));
        v.required(token, "shardIterator");
        v.str_len(token, "shardIterator", 1, SHARD_ITERATOR_CHARS_MAX);
        let arn_stream = self.stream_member(&mut v, input, false)?;
        v.finish()?;
        let invalid = || ApiError::invalid_argument("Invalid ShardIterator.");
        let it = ShardIterator::decode(&self.tokens, token.unwrap()).ok_or_else(invalid)?;
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
        if let Some(s) = arn_stream {
            if s != it.cursor.stream {
                return Err(ApiError::invalid_argument("Invalid ShardIterator."));
            }
        }
        let streams = self.streams.clone();
        let cursor = it.cursor.clone();
        let records_max = limit.unwrap_or(GET_RECORDS_COUNT_MAX) as usize;
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
        let records = result
            .records
            .into_iter()
            .map(|(seq, r)| record_out(seq, r))
            .collect();
        let next = result.next.map(|cursor| {
            Out::Str(
                ShardIterator {
                    cursor,
                    issued_ms: now,
                }
                .encode(&self.tokens),
            )
        });
        let children =
            (!result.child_shards.is_empty()).then(|| child_shards_out(&result.child_shards));
        Ok(Reply::Body(
            Out::map()
                .set("Records", Out::Array(records))
                .opt("NextShardIterator", next)
                .int("MillisBehindLatest", result.millis_behind_latest)
                .opt("ChildShards", children)
                .done(),
        ))
    }

    fn retention(&self, input: Input<'_>, increase: bool) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let hours = input.int("RetentionPeriodHours")?;
        v.required(hours, "retentionPeriodHours");
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        let hours = hours.unwrap();
        // The stream must exist before the range is checked, as on AWS.
        self.streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        if hours < RETENTION_HOURS_MIN {
            return Err(ApiError::invalid_argument(format!(
                "Minimum allowed retention period is {RETENTION_HOURS_MIN} hours. Requested retention period ({hours} hours) is too short."
            )));
        }
        if hours > RETENTION_HOURS_MAX {
            return Err(ApiError::invalid_argument(format!(
                "Maximum allowed retention period is {RETENTION_HOURS_MAX} hours. Requested retention period ({hours} hours) is too long."
            )));
        }
        self.streams
            .set_retention(&name, hours as u32, increase)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    fn add_tags(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let tags = input.string_map("Tags")?;
        v.required(tags.as_ref(), "tags");
        if let Some(t) = &tags {
            check_tags(&mut v, t, "tags");
        }
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        let tags = tags.unwrap();
        // The stream is looked up before the tags are read, as on AWS.
        self.streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        validate::check_tag_characters(tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))?;
        self.streams
            .add_tags(&name, tags.into_iter().collect::<BTreeMap<_, _>>())
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    fn remove_tags(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let keys = input.list("TagKeys")?;
        v.required(keys, "tagKeys");
        let keys: Vec<String> = match keys {
            Some(list) => list
                .iter()
                .map(|k| Input::string_element(k).map(str::to_string))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        if input.has("TagKeys") {
            let shown = format!("[{}]", keys.join(", "));
            v.count(keys.len(), "tagKeys", 1, TAG_KEYS_PER_REMOVE_MAX, || {
                shown.clone()
            });
            if keys
                .iter()
                .any(|k| k.is_empty() || k.chars().count() > TAG_KEY_CHARS_MAX)
            {
                v.fail(
                    Some(&shown),
                    "tagKeys",
                    &format!("Member must satisfy constraint: [Member must have length less than or equal to {TAG_KEY_CHARS_MAX}, Member must have length greater than or equal to 1]"),
                );
            }
        }
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        self.streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        validate::check_tag_characters(keys.iter().map(String::as_str))?;
        self.streams
            .remove_tags(&name, &keys)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    fn list_tags(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let limit = input.int("Limit")?;
        let start = input.str("ExclusiveStartTagKey")?;
        v.range(limit, "limit", Some(1), Some(LIST_TAGS_LIMIT_MAX));
        v.str_len(start, "exclusiveStartTagKey", 1, TAG_KEY_CHARS_MAX);
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        let view = self
            .streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        let page = limit.unwrap_or(LIST_TAGS_LIMIT_MAX) as usize;
        let tags: Vec<(&String, &String)> = view
            .meta
            .tags
            .iter()
            .filter(|(k, _)| start.is_none_or(|s| k.as_str() > s))
            .collect();
        let has_more = tags.len() > page;
        let out = tags
            .into_iter()
            .take(page)
            .map(|(k, v)| {
                Out::map()
                    .str("Key", k.clone())
                    .str("Value", v.clone())
                    .done()
            })
            .collect();
        Ok(Reply::Body(
            Out::map()
                .set("Tags", Out::Array(out))
                .bool("HasMoreTags", has_more)
                .done(),
        ))
    }

    fn describe_limits(&self) -> Reply {
        let l = self.streams.limits();
        Reply::Body(
            Out::map()
                .int("ShardLimit", l.shard_limit as i64)
                .int("OpenShardCount", l.open_shard_count as i64)
                .int("OnDemandStreamCount", l.on_demand_stream_count as i64)
                .int(
                    "OnDemandStreamCountLimit",
                    l.on_demand_stream_count_limit as i64,
                )
                .done(),
        )
    }
}

/// A structure read only from a JSON object. serde's derived structs also read a JSON array
/// (fields in order), which the generic path refuses with a SerializationException; the fast
/// path must refuse it too (by leaving the request to the generic path).
struct Object<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapOnly<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for MapOnly<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(MapOnly(std::marker::PhantomData))
            .map(Object)
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
            String::from_utf8(r.partition_key).unwrap_or_default(),
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

pub(crate) fn check_tags(v: &mut Validator, tags: &[(String, String)], path: &str) {
    let shown = || {
        format!(
            "{{{}}}",
            tags.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    v.count(tags.len(), path, 1, TAGS_PER_CALL_MAX, shown);
    if tags
        .iter()
        .any(|(k, _)| k.is_empty() || k.chars().count() > TAG_KEY_CHARS_MAX)
    {
        v.fail(
            Some(&shown()),
            path,
            &format!("Map keys must satisfy constraint: [Member must have length less than or equal to {TAG_KEY_CHARS_MAX}, Member must have length greater than or equal to 1]"),
        );
    }
    if tags
        .iter()
        .any(|(_, val)| val.chars().count() > TAG_VALUE_CHARS_MAX)
    {
        v.fail(
            Some(&shown()),
            path,
            &format!("Map value must satisfy constraint: [Member must have length less than or equal to {TAG_VALUE_CHARS_MAX}, Member must have length greater than or equal to 0]"),
        );
    }
}

impl sluice_aws::JsonService for Service {
    fn target_prefix(&self) -> &'static str {
        "Kinesis_20131202."
    }

    fn signing_name(&self) -> &'static str {
        "kinesis"
    }

    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    fn call<'a>(
        &'a self,
        call: sluice_aws::Call<'a>,
    ) -> sluice_aws::BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(Service::call(self, call.op, call.input))
    }

    /// A well-formed JSON PutRecords skips the generic request tree.
    fn fast<'a>(
        &'a self,
        op: &str,
        format: sluice_aws::Format,
        body: &bytes::Bytes,
    ) -> Option<sluice_aws::BoxFuture<'a, Result<Reply, ApiError>>> {
        if op != "PutRecords" || format != sluice_aws::Format::Json {
            return None;
        }
        let (stream, records) = Service::parse_put_records_fast(body)?;
        Some(Box::pin(async move {
            self.put_records_checked(&stream, records).await
        }))
    }
}
