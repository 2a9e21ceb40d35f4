//! Resharding and capacity operations: SplitShard, MergeShards, UpdateShardCount and
//! UpdateStreamMode.

use sluice_streams::{Reshard, ShardId, StreamMode, StreamsError};

use crate::error::ApiError;
use crate::limits::*;
use crate::ops::{Reply, Service};
use crate::validate::{self, Validator};
use sluice_aws::value::{Input, Out};

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
