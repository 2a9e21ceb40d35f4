//! The Kinesis operations. Each has one request type (`CreateStreamRequest`,
//! `GetShardIteratorRequest`, ..., and `crate::subscribe::SubscribeToShardRequest`) built by one
//! parser, `parse(input, account)` (or `parse(input)` when no member names a stream), which
//! reads the members from the request tree, checks them in AWS's order with AWS's wording (the
//! getters' SerializationException as each member is read, then every constraint together in
//! one ValidationException, then the checks AWS makes before it looks anything up) and returns
//! validated types: [`StreamTarget`] or `StreamName`, `ShardId`, `SequenceNumber`, `StreamMode`,
//! enums for closed sets ([`ShardIteratorType`], [`ShardFilterType`], [`ScalingType`]), numbers
//! as the integers they are. A check AWS makes only after it has found the stream or consumer
//! is kept in the request as a [`Deferred`] value (or `PutRecordsRequest::deferred`), which the
//! operation answers with after its look-up. The operation (a `Service` method) takes the
//! request, calls into `sluice-streams` and shapes the response; what needs the service's state
//! (sealed NextTokens and shard iterators, the clock, the shard limit) it checks itself.
//!
//! One file per family: `streams` (lifecycle, describe, retention, limits), `records` (put,
//! iterators, get), `shards` (listing, resharding, capacity modes), `consumers` (registered
//! consumers), `tags`, `monitoring` (enhanced monitoring); this one has the service, the
//! dispatch and the members every family reads.

mod consumers;
mod monitoring;
mod records;
mod shards;
mod streams;
mod tags;

pub(crate) use consumers::{consumer_arn_member, consumer_from_arn};
pub use consumers::{
    ConsumerTarget, DeregisterStreamConsumerRequest, DescribeStreamConsumerRequest,
    ListStreamConsumersRequest, RegisterStreamConsumerRequest,
};
pub use monitoring::{
    DisableEnhancedMonitoringRequest, EnableEnhancedMonitoringRequest, EnhancedMonitoringRequest,
};
pub(crate) use records::{child_shards_out, record_out, sequence_out};
pub use records::{
    GetRecordsRequest, GetShardIteratorRequest, PutRecordRequest, PutRecordsRequest,
    ShardIteratorType, StartingPosition,
};
pub(crate) use shards::parse_shard_id;
pub use shards::{
    ListShardsPage, ListShardsRequest, MergeShardsRequest, ScalingType, ShardFilter,
    ShardFilterType, SplitShardRequest, UpdateShardCountRequest, UpdateStreamModeRequest,
};
pub use streams::{
    CreateStreamRequest, DecreaseStreamRetentionPeriodRequest, DeleteStreamRequest,
    DescribeStreamRequest, DescribeStreamSummaryRequest, IncreaseStreamRetentionPeriodRequest,
    ListStreamsRequest, StreamRetentionPeriodRequest,
};
pub(crate) use tags::check_tags;
pub use tags::{AddTagsToStreamRequest, ListTagsForStreamRequest, RemoveTagsFromStreamRequest};

use std::sync::Arc;

use sluice_streams::Streams;

use crate::error::{ApiError, Ctx};
use crate::iterator::{java_date, token_age, PageToken, TokenAge, TokenKey};
use crate::limits::*;
use crate::validate::{self, Validator};
use sluice_aws::value::Input;

/// Operations that may wait on a disk: they write the catalog (one fsync'd transaction) or,
/// for a starting position AT_TIMESTAMP (GetShardIterator, SubscribeToShard), read a shard's
/// index. They run through
/// [`sluice_aws::blocking`].
const CATALOG_OPERATIONS: &[&str] = &[
    "SubscribeToShard",
    "CreateStream",
    "DeleteStream",
    "GetShardIterator",
    "IncreaseStreamRetentionPeriod",
    "DecreaseStreamRetentionPeriod",
    "AddTagsToStream",
    "RemoveTagsFromStream",
    "SplitShard",
    "MergeShards",
    "UpdateShardCount",
    "UpdateStreamMode",
    "RegisterStreamConsumer",
    "DeregisterStreamConsumer",
    "EnableEnhancedMonitoring",
    "DisableEnhancedMonitoring",
];

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
        let service = Service {
            streams,
            subscriptions: Default::default(),
            metrics: Default::default(),
            tokens,
        };
        service.restore_enhanced_monitoring();
        service
    }

    /// Shard-level metrics stay enabled across a restart: they are read back from the catalog.
    fn restore_enhanced_monitoring(&self) {
        for name in self.streams.names() {
            let Ok(view) = self.streams.describe(&name) else {
                continue;
            };
            let set = view
                .meta
                .shard_level_metrics
                .iter()
                .filter_map(|m| crate::metrics::ShardLevelSet::parse(m))
                .fold(crate::metrics::ShardLevelSet::NONE, |a, b| a.union(b));
            if !set.is_empty() {
                let open = view
                    .shards
                    .iter()
                    .filter(|s| s.meta.is_open())
                    .map(|s| s.meta.index);
                self.metrics.set_enhanced(&name, true, set, open);
            }
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
        let account = self.streams.config().account_id.as_str();
        if CATALOG_OPERATIONS.contains(&op) {
            // They write the catalog (an fsync) or read the log's index: off the async worker.
            return sluice_aws::blocking(|| self.call_blocking(op, input));
        }
        match op {
            "DescribeStream" => self.describe_stream(DescribeStreamRequest::parse(input, account)?),
            "DescribeStreamSummary" => {
                self.describe_stream_summary(DescribeStreamSummaryRequest::parse(input, account)?)
            }
            "ListStreams" => self.list_streams(ListStreamsRequest::parse(input)?),
            "ListShards" => self.list_shards(ListShardsRequest::parse(input, account)?),
            "PutRecord" => {
                self.put_record(PutRecordRequest::parse(input, account)?)
                    .await
            }
            "PutRecords" => self.put_records(input).await,
            "GetRecords" => {
                self.get_records(GetRecordsRequest::parse(input, account)?, input.format)
                    .await
            }
            "ListTagsForStream" => self.list_tags(ListTagsForStreamRequest::parse(input, account)?),
            "DescribeLimits" => Ok(self.describe_limits()),
            "DescribeStreamConsumer" => {
                self.describe_stream_consumer(DescribeStreamConsumerRequest::parse(input, account)?)
            }
            "ListStreamConsumers" => {
                self.list_stream_consumers(ListStreamConsumersRequest::parse(input, account)?)
            }
            other if OPERATIONS.contains(&other) => Err(crate::error::not_implemented(other)),
            _ => Err(ApiError::unknown_operation()),
        }
    }

    /// The operations of [`CATALOG_OPERATIONS`], run where blocking is allowed.
    fn call_blocking(&self, op: &str, input: Input<'_>) -> Result<Reply, ApiError> {
        let account = self.streams.config().account_id.as_str();
        match op {
            "CreateStream" => self.create_stream(CreateStreamRequest::parse(input)?),
            "DeleteStream" => self.delete_stream(DeleteStreamRequest::parse(input, account)?),
            "GetShardIterator" => {
                self.get_shard_iterator(GetShardIteratorRequest::parse(input, account)?)
            }
            "IncreaseStreamRetentionPeriod" => self.retention(
                IncreaseStreamRetentionPeriodRequest::parse(input, account)?,
                true,
            ),
            "DecreaseStreamRetentionPeriod" => self.retention(
                DecreaseStreamRetentionPeriodRequest::parse(input, account)?,
                false,
            ),
            "AddTagsToStream" => self.add_tags(AddTagsToStreamRequest::parse(input, account)?),
            "RemoveTagsFromStream" => {
                self.remove_tags(RemoveTagsFromStreamRequest::parse(input, account)?)
            }
            "SplitShard" => self.split_shard(SplitShardRequest::parse(input, account)?),
            "MergeShards" => self.merge_shards(MergeShardsRequest::parse(input, account)?),
            "UpdateShardCount" => {
                self.update_shard_count(UpdateShardCountRequest::parse(input, account)?)
            }
            "UpdateStreamMode" => {
                self.update_stream_mode(UpdateStreamModeRequest::parse(input, account)?)
            }
            "RegisterStreamConsumer" => {
                self.register_stream_consumer(RegisterStreamConsumerRequest::parse(input, account)?)
            }
            "DeregisterStreamConsumer" => self.deregister_stream_consumer(
                DeregisterStreamConsumerRequest::parse(input, account)?,
            ),
            "EnableEnhancedMonitoring" => self.enhanced_monitoring_change(
                EnableEnhancedMonitoringRequest::parse(input, account)?,
                true,
            ),
            "DisableEnhancedMonitoring" => self.enhanced_monitoring_change(
                DisableEnhancedMonitoringRequest::parse(input, account)?,
                false,
            ),
            "SubscribeToShard" => self.subscribe_to_shard(
                crate::subscribe::SubscribeToShardRequest::parse(input, account)?,
                input.format,
            ),
            _ => Err(ApiError::unknown_operation()),
        }
    }

    /// A NextToken for the page after `after`, sealed for `scope` (the operation).
    pub(crate) fn next_token_out(&self, scope: &str, after: String) -> sluice_aws::Out {
        sluice_aws::Out::Str(
            PageToken {
                scope: scope.into(),
                after,
                issued_ms: self.streams.now_ms(),
            }
            .encode(&self.tokens),
        )
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
}

/// A member that passed the request's constraints but has a check of its own that AWS makes
/// only once it has found the stream (or the consumer): the value, or the error to answer with
/// after that look-up.
pub type Deferred<T> = Result<T, ApiError>;

/// A required member once [`Validator::finish`] has passed: always there (the validator refused
/// the request otherwise), without a panic reachable from a request.
pub(crate) fn present<T>(member: Option<T>) -> Result<T, ApiError> {
    member.ok_or_else(ApiError::internal)
}

/// The stream a request names, by `StreamName` or `StreamARN` (of this account), after the
/// member checks: only the member parsers (`stream_member`, `stream_from_arn`) make one. It
/// need not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTarget(pub(crate) String);

impl StreamTarget {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The checks of a `StreamARN` member (its pattern and length), in the `streamARN` position of
/// AWS's order.
pub(crate) fn stream_arn_member(v: &mut Validator, arn: Option<&str>, required: bool) {
    if required {
        v.required(arn, "streamARN");
    }
    v.pattern(
        arn,
        "streamARN",
        "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
        validate::is_stream_arn,
    );
    v.str_len(arn, "streamARN", 1, STREAM_ARN_CHARS_MAX);
}

/// Reads `StreamName`/`StreamARN`: their constraints go to `v` (in the `streamName` position of
/// AWS's order); a name and an ARN that disagree, or an ARN of another account, are errors of
/// their own.
pub(crate) fn stream_member(
    v: &mut Validator,
    input: Input<'_>,
    required: bool,
    account: &str,
) -> Result<Option<StreamTarget>, ApiError> {
    let name = input.str("StreamName")?;
    let arn = input.str("StreamARN")?;
    if required && name.is_none() && arn.is_none() {
        v.required(None::<&str>, "streamName");
    }
    v.name(name, "streamName", STREAM_NAME_CHARS_MAX);
    stream_arn_member(v, arn, false);
    Ok(
        match (
            name,
            arn.and_then(|a| Some((a, validate::parse_stream_arn(a)?))),
        ) {
            (Some(n), Some((arn, (_, from_arn)))) if n != from_arn => {
                return Err(ApiError::invalid_argument(format!(
                    "StreamARN {arn} and StreamName {n} do not refer to the same stream."
                )))
            }
            (_, Some((_, (arn_account, from_arn)))) if arn_account != account => {
                // Another account's stream cannot exist here.
                return Err(ApiError::not_found(format!(
                    "Stream {from_arn} under account {arn_account} not found."
                )));
            }
            (Some(n), _) => Some(StreamTarget(n.to_string())),
            (None, Some((_, (_, from_arn)))) => Some(StreamTarget(from_arn.to_string())),
            (None, None) => None,
        },
    )
}

/// A JSON request body as the tree the parsers read (tests of the request types).
#[cfg(test)]
pub(crate) fn json_tree(body: &str) -> sluice_aws::value::Value {
    sluice_aws::codec::decode(body.as_bytes(), sluice_aws::Format::Json).unwrap()
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
        let request = PutRecordsRequest::decode_json(body)?;
        Some(Box::pin(async move {
            self.put_records_checked(
                request.stream.as_str(),
                request.records,
                sluice_aws::Format::Json,
            )
            .await
        }))
    }
}
