//! Stream lifecycle and description: CreateStream, DeleteStream, DescribeStream,
//! DescribeStreamSummary, ListStreams, Increase/DecreaseStreamRetentionPeriod, DescribeLimits.

use std::collections::BTreeMap;

use sluice_streams::{ShardView, StreamMode, StreamName, StreamSpec, StreamStatus};

use crate::error::ApiError;
use crate::limits::*;
use crate::ops::check_tags;
use crate::ops::{present, stream_member, Deferred, Reply, Service, StreamTarget};
use crate::validate::{self, Validator};
use sluice_aws::value::{Input, Out};

/// CreateStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateStreamRequest {
    pub stream: StreamName,
    /// `None` only for an ON_DEMAND stream that gives none (it starts with four shards).
    pub shard_count: Option<u32>,
    pub mode: StreamMode,
    /// `None`: the default, [`MAX_RECORD_SIZE_KIB_DEFAULT`].
    pub max_record_size_kib: Option<u32>,
    /// A key given twice keeps its last value.
    pub tags: BTreeMap<String, String>,
}

impl CreateStreamRequest {
    pub fn parse(input: Input<'_>) -> Result<CreateStreamRequest, ApiError> {
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
        let stream = present(name.and_then(StreamName::new))?;
        let tags: BTreeMap<String, String> = tags.unwrap_or_default().into_iter().collect();
        validate::check_tag_characters(tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))?;
        Ok(CreateStreamRequest {
            stream,
            // At least 1, and an Integer (at most 2^31 - 1).
            shard_count: shard_count.map(|n| n as u32),
            mode: if on_demand {
                StreamMode::OnDemand
            } else {
                StreamMode::Provisioned
            },
            // Within [MAX_RECORD_SIZE_KIB_MIN, MAX_RECORD_SIZE_KIB_MAX].
            max_record_size_kib: max_kib.map(|k| k as u32),
            tags,
        })
    }
}

/// DeleteStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteStreamRequest {
    pub stream: StreamTarget,
    pub enforce_consumer_deletion: bool,
}

impl DeleteStreamRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<DeleteStreamRequest, ApiError> {
        let mut v = Validator::new();
        let enforce = input.bool("EnforceConsumerDeletion")?;
        let stream = stream_member(&mut v, input, true, account)?;
        v.finish()?;
        Ok(DeleteStreamRequest {
            stream: present(stream)?,
            enforce_consumer_deletion: enforce == Some(true),
        })
    }
}

/// DescribeStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeStreamRequest {
    pub stream: StreamTarget,
    /// 1 to [`DESCRIBE_STREAM_LIMIT_MAX`]; a page has at most [`DESCRIBE_STREAM_PAGE_MAX`].
    pub limit: Option<u32>,
    /// As written: shards are listed after it in the order of their ids' text.
    pub exclusive_start_shard_id: Option<String>,
}

impl DescribeStreamRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<DescribeStreamRequest, ApiError> {
        let mut v = Validator::new();
        let limit = input.int("Limit")?;
        let start = input.str("ExclusiveStartShardId")?;
        v.range(limit, "limit", Some(1), Some(DESCRIBE_STREAM_LIMIT_MAX));
        v.name(start, "exclusiveStartShardId", SHARD_ID_CHARS_MAX);
        let stream = stream_member(&mut v, input, true, account)?;
        v.finish()?;
        Ok(DescribeStreamRequest {
            stream: present(stream)?,
            limit: limit.map(|n| n as u32),
            exclusive_start_shard_id: start.map(str::to_string),
        })
    }
}

/// DescribeStreamSummary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeStreamSummaryRequest {
    pub stream: StreamTarget,
}

impl DescribeStreamSummaryRequest {
    pub fn parse(
        input: Input<'_>,
        account: &str,
    ) -> Result<DescribeStreamSummaryRequest, ApiError> {
        let mut v = Validator::new();
        let stream = stream_member(&mut v, input, true, account)?;
        v.finish()?;
        Ok(DescribeStreamSummaryRequest {
            stream: present(stream)?,
        })
    }
}

/// ListStreams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreamsRequest {
    /// 1 to [`LIST_STREAMS_LIMIT_MAX`]; a page has at most [`LIST_STREAMS_PAGE_MAX`].
    pub limit: Option<u32>,
    pub exclusive_start_stream_name: Option<StreamName>,
    /// Sealed: the operation opens it with its key (and its clock, for its age).
    pub next_token: Option<String>,
}

impl ListStreamsRequest {
    pub fn parse(input: Input<'_>) -> Result<ListStreamsRequest, ApiError> {
        let mut v = Validator::new();
        let limit = input.int("Limit")?;
        let start = input.str("ExclusiveStartStreamName")?;
        let token = input.str("NextToken")?;
        v.range(limit, "limit", Some(1), Some(LIST_STREAMS_LIMIT_MAX));
        v.name(start, "exclusiveStartStreamName", STREAM_NAME_CHARS_MAX);
        v.str_len(token, "nextToken", 1, 1_048_576);
        v.finish()?;
        let exclusive_start_stream_name = match start {
            Some(s) => Some(present(StreamName::new(s))?),
            None => None,
        };
        Ok(ListStreamsRequest {
            limit: limit.map(|n| n as u32),
            exclusive_start_stream_name,
            next_token: token.map(str::to_string),
        })
    }
}

/// IncreaseStreamRetentionPeriod and DecreaseStreamRetentionPeriod (the same members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRetentionPeriodRequest {
    pub stream: StreamTarget,
    /// Hours; out of [`RETENTION_HOURS_MIN`, `RETENTION_HOURS_MAX`] is reported once the
    /// stream is found, as on AWS.
    pub retention_period_hours: Deferred<u32>,
}

pub type IncreaseStreamRetentionPeriodRequest = StreamRetentionPeriodRequest;
pub type DecreaseStreamRetentionPeriodRequest = StreamRetentionPeriodRequest;

impl StreamRetentionPeriodRequest {
    pub fn parse(
        input: Input<'_>,
        account: &str,
    ) -> Result<StreamRetentionPeriodRequest, ApiError> {
        let mut v = Validator::new();
        let hours = input.int("RetentionPeriodHours")?;
        v.required(hours, "retentionPeriodHours");
        let stream = stream_member(&mut v, input, true, account)?;
        v.finish()?;
        let hours = present(hours)?;
        let retention_period_hours = if hours < RETENTION_HOURS_MIN {
            Err(ApiError::invalid_argument(format!(
                "Minimum allowed retention period is {RETENTION_HOURS_MIN} hours. Requested retention period ({hours} hours) is too short."
            )))
        } else if hours > RETENTION_HOURS_MAX {
            Err(ApiError::invalid_argument(format!(
                "Maximum allowed retention period is {RETENTION_HOURS_MAX} hours. Requested retention period ({hours} hours) is too long."
            )))
        } else {
            Ok(hours as u32)
        };
        Ok(StreamRetentionPeriodRequest {
            stream: present(stream)?,
            retention_period_hours,
        })
    }
}

impl Service {
    pub(crate) fn create_stream(&self, request: CreateStreamRequest) -> Result<Reply, ApiError> {
        let spec = StreamSpec {
            // An on-demand stream starts with four shards, as on AWS.
            shard_count: request.shard_count.unwrap_or(4),
            mode: request.mode,
            max_record_size_kib: request
                .max_record_size_kib
                .unwrap_or(MAX_RECORD_SIZE_KIB_DEFAULT),
            tags: request.tags,
        };
        self.streams
            .create_stream(&request.stream, spec)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    pub(crate) fn delete_stream(&self, request: DeleteStreamRequest) -> Result<Reply, ApiError> {
        let name = request.stream.as_str();
        self.streams
            .delete_stream(name, request.enforce_consumer_deletion)
            .map_err(|e| self.ctx().map(e))?;
        self.metrics.forget_stream(name);
        Ok(Reply::Empty)
    }

    pub(crate) fn mode_out(mode: StreamMode) -> Out {
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

    pub(crate) fn describe_stream(
        &self,
        request: DescribeStreamRequest,
    ) -> Result<Reply, ApiError> {
        let view = self
            .streams
            .describe(request.stream.as_str())
            .map_err(|e| self.ctx().map(e))?;
        let start = request.exclusive_start_shard_id.as_deref();
        let page = (request.limit.unwrap_or(100) as usize).min(DESCRIBE_STREAM_PAGE_MAX);
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

    pub(crate) fn describe_stream_summary(
        &self,
        request: DescribeStreamSummaryRequest,
    ) -> Result<Reply, ApiError> {
        let view = self
            .streams
            .describe(request.stream.as_str())
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

    pub(crate) fn list_streams(&self, request: ListStreamsRequest) -> Result<Reply, ApiError> {
        let after = match &request.next_token {
            Some(t) => Some(self.page_token(t, "ListStreams")?.after),
            None => request
                .exclusive_start_stream_name
                .map(|s| s.as_str().to_string()),
        };
        let page = (request.limit.unwrap_or(100) as usize).min(LIST_STREAMS_PAGE_MAX);
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
        let next = has_more
            .then(|| self.next_token_out("ListStreams", names.last().cloned().unwrap_or_default()));
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

    /// IncreaseStreamRetentionPeriod (`increase`) or DecreaseStreamRetentionPeriod.
    pub(crate) fn retention(
        &self,
        request: StreamRetentionPeriodRequest,
        increase: bool,
    ) -> Result<Reply, ApiError> {
        let name = request.stream.as_str();
        // The stream must exist before the range is checked, as on AWS.
        self.streams.describe(name).map_err(|e| self.ctx().map(e))?;
        let hours = request.retention_period_hours?;
        self.streams
            .set_retention(name, hours, increase)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    pub(crate) fn describe_limits(&self) -> Reply {
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

#[cfg(test)]
mod tests {
    use sluice_aws::{ErrorType, Format};

    use super::*;
    use crate::ops::json_tree;

    const ACCOUNT: &str = "123456789012";

    fn create(body: &str) -> Result<CreateStreamRequest, ApiError> {
        CreateStreamRequest::parse(Input::root(&json_tree(body), Format::Json)?)
    }

    #[test]
    fn create_stream_members_are_typed() {
        let r = create(
            r#"{"StreamName":"s1","StreamModeDetails":{"StreamMode":"ON_DEMAND"},
                "Tags":{"k":"a","k2":"b"},"MaxRecordSizeInKiB":2048}"#,
        )
        .unwrap();
        assert_eq!(r.stream, StreamName::new("s1").unwrap());
        assert_eq!(r.shard_count, None);
        assert_eq!(r.mode, StreamMode::OnDemand);
        assert_eq!(r.max_record_size_kib, Some(2048));
        assert_eq!(
            r.tags.into_iter().collect::<Vec<_>>(),
            [("k".into(), "a".into()), ("k2".into(), "b".into())]
        );
        let r = create(r#"{"StreamName":"s1","ShardCount":3}"#).unwrap();
        assert_eq!((r.shard_count, r.mode), (Some(3), StreamMode::Provisioned));
    }

    #[test]
    fn create_stream_reports_violations_in_aws_order() {
        let e = create(r#"{"StreamName":"bad name","ShardCount":0,"MaxRecordSizeInKiB":1}"#)
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::Validation);
        assert_eq!(
            e.message.as_deref(),
            Some("3 validation errors detected: Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; Value 'bad name' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '1' at 'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value greater than or equal to 1024")
        );
        // A member of the wrong type is refused before any constraint, in reading order.
        let e = create(r#"{"StreamName":1,"ShardCount":"x"}"#).unwrap_err();
        assert_eq!(e.error_type, ErrorType::Serialization);
        assert_eq!(
            e.message.as_deref(),
            Some("class java.lang.String can not be converted to an Integer")
        );
        // Tag characters are checked after the constraints, before the stream exists.
        let e = create(r#"{"StreamName":"s1","ShardCount":1,"Tags":{"k":"a;b"}}"#).unwrap_err();
        assert_eq!(e.error_type, ErrorType::InvalidArgument);
    }

    #[test]
    fn retention_range_is_deferred_past_the_stream() {
        let parse = |body: &str| {
            StreamRetentionPeriodRequest::parse(
                Input::root(&json_tree(body), Format::Json).unwrap(),
                ACCOUNT,
            )
        };
        let r = parse(r#"{"StreamName":"s1","RetentionPeriodHours":48}"#).unwrap();
        assert_eq!(r.stream.as_str(), "s1");
        assert_eq!(r.retention_period_hours, Ok(48));
        let r = parse(r#"{"StreamName":"s1","RetentionPeriodHours":2}"#).unwrap();
        assert_eq!(
            r.retention_period_hours.unwrap_err().message.as_deref(),
            Some("Minimum allowed retention period is 24 hours. Requested retention period (2 hours) is too short.")
        );
        let e = parse(r#"{"StreamARN":"arn:aws:kinesis:us-east-1:210987654321:stream/s1","RetentionPeriodHours":48}"#)
            .unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Stream s1 under account 210987654321 not found.")
        );
        let e = parse("{}").unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("2 validation errors detected: Value null at 'retentionPeriodHours' failed to satisfy constraint: Member must not be null; Value null at 'streamName' failed to satisfy constraint: Member must not be null")
        );
    }
}
