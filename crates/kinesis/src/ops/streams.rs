//! Stream lifecycle and description: CreateStream, DeleteStream, DescribeStream,
//! DescribeStreamSummary, ListStreams, Increase/DecreaseStreamRetentionPeriod, DescribeLimits.

use sluice_streams::{ShardView, StreamMode, StreamName, StreamSpec, StreamStatus};

use crate::error::ApiError;
use crate::iterator::PageToken;
use crate::limits::*;
use crate::ops::check_tags;
use crate::ops::{Reply, Service};
use crate::validate::{self, Validator};
use sluice_aws::value::{Input, Out};

impl Service {
    pub(crate) fn create_stream(&self, input: Input<'_>) -> Result<Reply, ApiError> {
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

    pub(crate) fn delete_stream(&self, input: Input<'_>) -> Result<Reply, ApiError> {
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

    pub(crate) fn describe_stream(&self, input: Input<'_>) -> Result<Reply, ApiError> {
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

    pub(crate) fn describe_stream_summary(&self, input: Input<'_>) -> Result<Reply, ApiError> {
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

    pub(crate) fn list_streams(&self, input: Input<'_>) -> Result<Reply, ApiError> {
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

    pub(crate) fn retention(&self, input: Input<'_>, increase: bool) -> Result<Reply, ApiError> {
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
