//! Shards: ListShards, and resharding and capacity operations: SplitShard, MergeShards,
//! UpdateShardCount and UpdateStreamMode.

use sluice_streams::{ShardId, ShardView, StreamMode, StreamView, StreamsError};

use crate::error::ApiError;
use crate::iterator::PageToken;
use crate::limits::*;
use crate::ops::{Reply, Service};
use crate::validate::{self, Validator};
use sluice_aws::value::{Input, Out};
use sluice_streams::Reshard;

impl Service {
    /// Reads a shard id the way AWS does: the number after the first '-' (or the whole id) is
    /// the shard index; anything else names no shard of the stream.
    pub(crate) fn parse_shard_id(&self, shard: &str, stream: &str) -> Result<ShardId, ApiError> {
        let digits = shard.split_once('-').map_or(shard, |(_, d)| d);
        match digits.parse::<u32>() {
            Ok(i)
                if i <= i32::MAX as u32
                    && !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Ok(ShardId(i))
            }
            _ => Err(ApiError::not_found(format!(
                "Could not find shard {shard} in stream {stream} under account {}.",
                self.streams.config().account_id
            ))),
        }
    }

    /// Split and Merge name a missing shard the way GetShardIterator does.
    fn reshard_error(&self, e: StreamsError) -> ApiError {
        match e {
            StreamsError::ShardNotFound { stream, shard_id } => ApiError::not_found(format!(
                "Could not find shard {shard_id} in stream {stream} under account {}.",
                self.streams.config().account_id
            )),
            e => self.ctx().map(e),
        }
    }

    pub(crate) fn split_shard(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let shard = input.str("ShardToSplit")?;
        let key = input.str("NewStartingHashKey")?;
        v.required(key, "newStartingHashKey");
        v.pattern(
            key,
            "newStartingHashKey",
            "0|([1-9]\\d{0,38})",
            validate::is_hash_key,
        );
        let name = self.require_stream(input, &mut v)?;
        v.required(shard, "shardToSplit");
        v.name(shard, "shardToSplit", SHARD_ID_CHARS_MAX);
        v.finish()?;
        let (shard, key) = (shard.unwrap(), key.unwrap());
        let shard = self.parse_shard_id(shard, &name)?;
        // The pattern admits 39 digits, so a key may be past 2^128 - 1. Such a key is above
        // every shard's EndingHashKey: asking for a split at 2^128 - 1 gets the same checks in
        // the same order (stream, shard, closed, range), and the range message then shows
        // the key as written, as AWS's does.
        let (new_starting_hash_key, past_hash_space) = match key.parse::<u128>() {
            Ok(k) => (k, false),
            Err(_) => (u128::MAX, true),
        };
        self.streams
            .reshard(
                &name,
                Reshard::Split {
                    shard,
                    new_starting_hash_key,
                },
            )
            .map_err(|e| match e {
                StreamsError::SplitKeyOutOfRange {
                    stream,
                    shard_id,
                    start,
                    end,
                    ..
                } if past_hash_space => self
                    .ctx()
                    .split_key_out_of_range(&stream, &shard_id, key, start, end),
                e => self.reshard_error(e),
            })?;
        Ok(Reply::Empty)
    }

    pub(crate) fn merge_shards(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let shard = input.str("ShardToMerge")?;
        let adjacent = input.str("AdjacentShardToMerge")?;
        let name = self.require_stream(input, &mut v)?;
        v.required(shard, "shardToMerge");
        v.name(shard, "shardToMerge", SHARD_ID_CHARS_MAX);
        v.required(adjacent, "adjacentShardToMerge");
        v.name(adjacent, "adjacentShardToMerge", SHARD_ID_CHARS_MAX);
        v.finish()?;
        let shard = self.parse_shard_id(shard.unwrap(), &name)?;
        let adjacent = self.parse_shard_id(adjacent.unwrap(), &name)?;
        self.streams
            .reshard(&name, Reshard::Merge { shard, adjacent })
            .map_err(|e| self.reshard_error(e))?;
        Ok(Reply::Empty)
    }

    pub(crate) fn update_shard_count(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let target = input.int("TargetShardCount")?;
        let scaling = input.str("ScalingType")?;
        let name = self.require_stream(input, &mut v)?;
        v.required(target, "targetShardCount");
        v.range(target, "targetShardCount", Some(1), None);
        v.required(scaling, "scalingType");
        v.one_of(scaling, "scalingType", &["UNIFORM_SCALING"]);
        v.finish()?;
        let target = target.unwrap();
        let limit = self.streams.config().shard_limit.min(STREAM_SHARDS_MAX) as i64;
        if target > limit {
            let open = self
                .streams
                .describe(&name)
                .map(|v| v.meta.open_shard_count())
                .map_err(|e| self.ctx().map(e))?;
            return Err(ApiError::limit_exceeded(format!(
                "Target shard count or number of open shards cannot be greater than {limit}. Current open shard count: {open}, Target shard count: {target}"
            )));
        }
        let outcome = self
            .streams
            .reshard(
                &name,
                Reshard::Uniform {
                    target: target as u32,
                },
            )
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Body(
            Out::map()
                .str("StreamName", name.clone())
                .int("CurrentShardCount", outcome.previous_open as i64)
                .int("TargetShardCount", outcome.open as i64)
                .str("StreamARN", self.arn(&name))
                .done(),
        ))
    }

    pub(crate) fn update_stream_mode(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let arn = input.str("StreamARN")?;
        let details = input.structure("StreamModeDetails")?;
        let mode = match details {
            Some(d) => d.str("StreamMode")?,
            None => None,
        };
        v.required(arn, "streamARN");
        v.pattern(
            arn,
            "streamARN",
            "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
            validate::is_stream_arn,
        );
        v.str_len(arn, "streamARN", 1, STREAM_ARN_CHARS_MAX);
        v.required(details, "streamModeDetails");
        if details.is_some() {
            v.required(mode, "streamModeDetails.streamMode");
            v.one_of(
                mode,
                "streamModeDetails.streamMode",
                &["PROVISIONED", "ON_DEMAND"],
            );
        }
        v.finish()?;
        let name = self.stream_from_arn(arn.unwrap())?;
        let mode = if mode == Some("ON_DEMAND") {
            StreamMode::OnDemand
        } else {
            StreamMode::Provisioned
        };
        self.streams
            .update_mode(&name, mode)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    /// The stream an ARN names, if it is of this server's account.
    pub(crate) fn stream_from_arn(&self, arn: &str) -> Result<String, ApiError> {
        match validate::parse_stream_arn(arn) {
            Some((account, name)) if account == self.streams.config().account_id => {
                Ok(name.to_string())
            }
            Some((account, name)) => Err(ApiError::not_found(format!(
                "Stream {name} under account {account} not found."
            ))),
            None => Err(ApiError::invalid_argument(format!(
                "Invalid StreamARN: {arn}"
            ))),
        }
    }
}

impl Service {
    pub(crate) fn list_shards(&self, input: Input<'_>) -> Result<Reply, ApiError> {
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

    pub(crate) fn shard_out(&self, s: &ShardView) -> Out {
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
}
