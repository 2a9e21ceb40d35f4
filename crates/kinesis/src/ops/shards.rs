//! Shards: ListShards, and resharding and capacity operations: SplitShard, MergeShards,
//! UpdateShardCount and UpdateStreamMode.

use sluice_streams::{ShardId, ShardView, StreamMode, StreamView, StreamsError};

use crate::error::ApiError;
use crate::limits::*;
use crate::ops::{present, stream_member, Reply, Service, StreamTarget};
use crate::validate::{self, Validator};
use sluice_aws::value::{Input, Out};
use sluice_streams::Reshard;

/// Reads a shard id the way AWS does: the number after the first '-' (or the whole id) is the
/// shard index; anything else names no shard of the stream.
pub(crate) fn parse_shard_id(
    shard: &str,
    stream: &str,
    account: &str,
) -> Result<ShardId, ApiError> {
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
            "Could not find shard {shard} in stream {stream} under account {account}."
        ))),
    }
}

/// The stream an ARN names, if it is of this server's account.
pub(crate) fn stream_from_arn(arn: &str, account: &str) -> Result<StreamTarget, ApiError> {
    match validate::parse_stream_arn(arn) {
        Some((arn_account, name)) if arn_account == account => Ok(StreamTarget(name.to_string())),
        Some((arn_account, name)) => Err(ApiError::not_found(format!(
            "Stream {name} under account {arn_account} not found."
        ))),
        None => Err(ApiError::invalid_argument(format!(
            "Invalid StreamARN: {arn}"
        ))),
    }
}

/// `StreamModeDetails.StreamMode`, once its constraints passed (absent means PROVISIONED).
fn stream_mode(mode: Option<&str>) -> StreamMode {
    if mode == Some("ON_DEMAND") {
        StreamMode::OnDemand
    } else {
        StreamMode::Provisioned
    }
}

/// ListShards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListShardsRequest {
    /// 1 to [`LIST_SHARDS_MAX_RESULTS_MAX`]; a page has at most [`LIST_SHARDS_PAGE_MAX`].
    pub max_results: Option<u32>,
    pub page: ListShardsPage,
}

/// Which page ListShards asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListShardsPage {
    /// The first page, of a stream.
    First {
        stream: StreamTarget,
        /// As written: shards are listed after it in the order of their ids' text.
        exclusive_start_shard_id: Option<String>,
        /// Epoch milliseconds; a stream created in another second is not found.
        stream_creation_timestamp_ms: Option<i64>,
        filter: Option<ShardFilter>,
    },
    /// A later page: the stream, the place and the first page's filter travel in the sealed
    /// token, which the operation opens with its key.
    Next { next_token: String },
}

/// ListShards' `ShardFilter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFilter {
    pub kind: ShardFilterType,
    /// As written (compared as text, like `ExclusiveStartShardId`); only AFTER_SHARD_ID reads
    /// it, and requires it on a first page.
    pub shard_id: Option<String>,
    /// Epoch milliseconds, as given; AT_TIMESTAMP and FROM_TIMESTAMP read it and require it.
    pub timestamp_ms: Option<i64>,
}

/// `ShardFilter.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardFilterType {
    AfterShardId,
    AtTrimHorizon,
    FromTrimHorizon,
    AtLatest,
    AtTimestamp,
    FromTimestamp,
}

impl ShardFilterType {
    /// Every type, in the order of AWS's enum message.
    pub const ALL: [ShardFilterType; 6] = [
        ShardFilterType::AfterShardId,
        ShardFilterType::AtTrimHorizon,
        ShardFilterType::FromTrimHorizon,
        ShardFilterType::AtLatest,
        ShardFilterType::AtTimestamp,
        ShardFilterType::FromTimestamp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShardFilterType::AfterShardId => "AFTER_SHARD_ID",
            ShardFilterType::AtTrimHorizon => "AT_TRIM_HORIZON",
            ShardFilterType::FromTrimHorizon => "FROM_TRIM_HORIZON",
            ShardFilterType::AtLatest => "AT_LATEST",
            ShardFilterType::AtTimestamp => "AT_TIMESTAMP",
            ShardFilterType::FromTimestamp => "FROM_TIMESTAMP",
        }
    }

    pub fn parse(s: &str) -> Option<ShardFilterType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl ShardFilter {
    /// The members a filter's type requires (a later page's filter has no shard id: its place
    /// is in the token).
    fn check(&self, first_page: bool) -> Result<(), ApiError> {
        match self.kind {
            ShardFilterType::AfterShardId if self.shard_id.is_none() && first_page => {
                Err(ApiError::invalid_argument("ShardId must be supplied in a ShardFilter with a Type of AFTER_SHARD_ID"))
            }
            ShardFilterType::AtTimestamp | ShardFilterType::FromTimestamp
                if self.timestamp_ms.is_none() =>
            {
                Err(ApiError::invalid_argument("Timestamp must be supplied in a ShardFilter with a Type of FROM_TIMESTAMP or AT_TIMESTAMP"))
            }
            _ => Ok(()),
        }
    }
}

impl ListShardsRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<ListShardsRequest, ApiError> {
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
        let stream = stream_member(&mut v, input, false, account)?;
        v.str_len(token, "nextToken", 1, 1_048_576);
        if filter.is_some() {
            v.required(filter_type, "shardFilter.type");
            let allowed = ShardFilterType::ALL.map(ShardFilterType::as_str);
            v.one_of(filter_type, "shardFilter.type", &allowed);
        }
        v.finish()?;
        let page = match (token, stream) {
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
                ListShardsPage::Next {
                    next_token: t.to_string(),
                }
            }
            (None, Some(stream)) => {
                let filter = match filter {
                    Some(_) => {
                        let f = ShardFilter {
                            kind: present(filter_type.and_then(ShardFilterType::parse))?,
                            shard_id: filter_shard.map(str::to_string),
                            timestamp_ms: filter_ts,
                        };
                        f.check(true)?;
                        Some(f)
                    }
                    None => None,
                };
                ListShardsPage::First {
                    stream,
                    exclusive_start_shard_id: start.map(str::to_string),
                    stream_creation_timestamp_ms: created,
                    filter,
                }
            }
        };
        Ok(ListShardsRequest {
            max_results: max.map(|n| n as u32),
            page,
        })
    }
}

/// SplitShard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitShardRequest {
    pub stream: StreamTarget,
    pub shard_to_split: ShardId,
    /// 2^128 - 1 for a key past the hash space (see `past_hash_space`).
    pub new_starting_hash_key: u128,
    /// The key as written when it is past 2^128 - 1, which the pattern admits (39 digits).
    /// Such a key is above every shard's EndingHashKey: a split at 2^128 - 1 gets the same
    /// checks in the same order (stream, shard, closed, range), and the range message then
    /// shows the key as written, as AWS's does.
    pub past_hash_space: Option<String>,
}

impl SplitShardRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<SplitShardRequest, ApiError> {
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
        let stream = stream_member(&mut v, input, true, account)?;
        v.required(shard, "shardToSplit");
        v.name(shard, "shardToSplit", SHARD_ID_CHARS_MAX);
        v.finish()?;
        let (stream, shard, key) = (present(stream)?, present(shard)?, present(key)?);
        let shard_to_split = parse_shard_id(shard, stream.as_str(), account)?;
        let (new_starting_hash_key, past_hash_space) = match key.parse::<u128>() {
            Ok(k) => (k, None),
            Err(_) => (u128::MAX, Some(key.to_string())),
        };
        Ok(SplitShardRequest {
            stream,
            shard_to_split,
            new_starting_hash_key,
            past_hash_space,
        })
    }
}

/// MergeShards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeShardsRequest {
    pub stream: StreamTarget,
    pub shard_to_merge: ShardId,
    pub adjacent_shard_to_merge: ShardId,
}

impl MergeShardsRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<MergeShardsRequest, ApiError> {
        let mut v = Validator::new();
        let shard = input.str("ShardToMerge")?;
        let adjacent = input.str("AdjacentShardToMerge")?;
        let stream = stream_member(&mut v, input, true, account)?;
        v.required(shard, "shardToMerge");
        v.name(shard, "shardToMerge", SHARD_ID_CHARS_MAX);
        v.required(adjacent, "adjacentShardToMerge");
        v.name(adjacent, "adjacentShardToMerge", SHARD_ID_CHARS_MAX);
        v.finish()?;
        let stream = present(stream)?;
        let shard_to_merge = parse_shard_id(present(shard)?, stream.as_str(), account)?;
        let adjacent_shard_to_merge = parse_shard_id(present(adjacent)?, stream.as_str(), account)?;
        Ok(MergeShardsRequest {
            stream,
            shard_to_merge,
            adjacent_shard_to_merge,
        })
    }
}

/// UpdateShardCount's `ScalingType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalingType {
    UniformScaling,
}

/// UpdateShardCount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateShardCountRequest {
    pub stream: StreamTarget,
    /// At least 1; past the shard limit is reported once the stream is found (its message has
    /// the stream's open shard count).
    pub target_shard_count: u32,
    pub scaling_type: ScalingType,
}

impl UpdateShardCountRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<UpdateShardCountRequest, ApiError> {
        let mut v = Validator::new();
        let target = input.int("TargetShardCount")?;
        let scaling = input.str("ScalingType")?;
        let stream = stream_member(&mut v, input, true, account)?;
        v.required(target, "targetShardCount");
        v.range(target, "targetShardCount", Some(1), None);
        v.required(scaling, "scalingType");
        v.one_of(scaling, "scalingType", &["UNIFORM_SCALING"]);
        v.finish()?;
        Ok(UpdateShardCountRequest {
            stream: present(stream)?,
            // At least 1, and an Integer (at most 2^31 - 1).
            target_shard_count: present(target)? as u32,
            scaling_type: ScalingType::UniformScaling,
        })
    }
}

/// UpdateStreamMode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStreamModeRequest {
    pub stream: StreamTarget,
    pub mode: StreamMode,
}

impl UpdateStreamModeRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<UpdateStreamModeRequest, ApiError> {
        let mut v = Validator::new();
        let arn = input.str("StreamARN")?;
        let details = input.structure("StreamModeDetails")?;
        let mode = match details {
            Some(d) => d.str("StreamMode")?,
            None => None,
        };
        crate::ops::stream_arn_member(&mut v, arn, true);
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
        Ok(UpdateStreamModeRequest {
            stream: stream_from_arn(present(arn)?, account)?,
            mode: stream_mode(mode),
        })
    }
}

impl Service {
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

    pub(crate) fn split_shard(&self, request: SplitShardRequest) -> Result<Reply, ApiError> {
        let name = request.stream.as_str();
        self.streams
            .reshard(
                name,
                Reshard::Split {
                    shard: request.shard_to_split,
                    new_starting_hash_key: request.new_starting_hash_key,
                },
            )
            .map_err(|e| match (e, &request.past_hash_space) {
                (
                    StreamsError::SplitKeyOutOfRange {
                        stream,
                        shard_id,
                        start,
                        end,
                        ..
                    },
                    Some(key),
                ) => self
                    .ctx()
                    .split_key_out_of_range(&stream, &shard_id, key, start, end),
                (e, _) => self.reshard_error(e),
            })?;
        Ok(Reply::Empty)
    }

    pub(crate) fn merge_shards(&self, request: MergeShardsRequest) -> Result<Reply, ApiError> {
        self.streams
            .reshard(
                request.stream.as_str(),
                Reshard::Merge {
                    shard: request.shard_to_merge,
                    adjacent: request.adjacent_shard_to_merge,
                },
            )
            .map_err(|e| self.reshard_error(e))?;
        Ok(Reply::Empty)
    }

    pub(crate) fn update_shard_count(
        &self,
        request: UpdateShardCountRequest,
    ) -> Result<Reply, ApiError> {
        let name = request.stream.as_str();
        let target = request.target_shard_count;
        let limit = self.streams.config().shard_limit.min(STREAM_SHARDS_MAX);
        if target > limit {
            let open = self
                .streams
                .describe(name)
                .map(|v| v.meta.open_shard_count())
                .map_err(|e| self.ctx().map(e))?;
            return Err(ApiError::limit_exceeded(format!(
                "Target shard count or number of open shards cannot be greater than {limit}. Current open shard count: {open}, Target shard count: {target}"
            )));
        }
        let outcome = self
            .streams
            .reshard(name, Reshard::Uniform { target })
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Body(
            Out::map()
                .str("StreamName", name)
                .int("CurrentShardCount", outcome.previous_open as i64)
                .int("TargetShardCount", outcome.open as i64)
                .str("StreamARN", self.arn(name))
                .done(),
        ))
    }

    pub(crate) fn update_stream_mode(
        &self,
        request: UpdateStreamModeRequest,
    ) -> Result<Reply, ApiError> {
        self.streams
            .update_mode(request.stream.as_str(), request.mode)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }
}

impl Service {
    pub(crate) fn list_shards(&self, request: ListShardsRequest) -> Result<Reply, ApiError> {
        // A later page keeps the first page's filter: it travels in the NextToken.
        let (name, after, filter, created) = match request.page {
            ListShardsPage::Next { next_token } => {
                let t = self.page_token(&next_token, "ListShards")?;
                let mut parts = t.after.split('\n');
                let stream = parts.next().unwrap_or_default().to_string();
                let after = parts.next().unwrap_or_default().to_string();
                let kind = parts.next().and_then(ShardFilterType::parse);
                let ts = parts.next().and_then(|f| f.parse::<i64>().ok());
                let filter = kind.map(|kind| ShardFilter {
                    kind,
                    shard_id: None,
                    timestamp_ms: ts,
                });
                if let Some(f) = &filter {
                    f.check(false)?;
                }
                (stream, Some(after), filter, None)
            }
            ListShardsPage::First {
                stream,
                exclusive_start_shard_id,
                stream_creation_timestamp_ms,
                filter,
            } => {
                let after = match &filter {
                    Some(ShardFilter {
                        kind: ShardFilterType::AfterShardId,
                        shard_id: Some(s),
                        ..
                    }) => Some(s.clone()).max(exclusive_start_shard_id),
                    _ => exclusive_start_shard_id,
                };
                (
                    stream.as_str().to_string(),
                    after,
                    filter,
                    stream_creation_timestamp_ms,
                )
            }
        };
        let view: StreamView = self
            .streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        if let Some(c) = created {
            if c / 1000 != view.meta.created_ms / 1000 {
                return Err(self.ctx().stream_not_found(&name));
            }
        }
        let filter_type = filter.as_ref().map(|f| f.kind);
        let filter_ts = filter.as_ref().and_then(|f| f.timestamp_ms);
        // The trim horizon in time: older data is gone.
        let now = self.streams.now_ms();
        let trim = (now - view.meta.retention_hours as i64 * 3_600_000).max(view.meta.created_ms);
        let open_or_closed_since = |s: &ShardView, t: i64| s.meta.closed_ms.is_none_or(|c| c >= t);
        let ts = filter_ts.unwrap_or(now);
        let shards: Vec<&ShardView> = view
            .shards
            .iter()
            .filter(|s| after.as_ref().is_none_or(|a| s.shard_id().to_string() > *a))
            .filter(|s| match filter_type {
                Some(ShardFilterType::AtLatest) => s.meta.is_open(),
                Some(ShardFilterType::AtTrimHorizon) => {
                    s.meta.created_ms <= trim && open_or_closed_since(s, trim)
                }
                Some(ShardFilterType::FromTrimHorizon) => open_or_closed_since(s, trim),
                Some(ShardFilterType::AtTimestamp) => {
                    s.meta.created_ms <= ts && open_or_closed_since(s, ts)
                }
                Some(ShardFilterType::FromTimestamp) => open_or_closed_since(s, ts.max(trim)),
                Some(ShardFilterType::AfterShardId) | None => true,
            })
            .collect();
        let page = (request.max_results.unwrap_or(1000) as usize).min(LIST_SHARDS_PAGE_MAX);
        let has_more = shards.len() > page;
        let out: Vec<Out> = shards
            .iter()
            .take(page)
            .map(|s| self.shard_out(s))
            .collect();
        let next = has_more.then(|| {
            let last = shards[page - 1].shard_id().to_string();
            self.next_token_out(
                "ListShards",
                format!(
                    "{name}\n{last}\n{}\n{}",
                    filter_type.map(ShardFilterType::as_str).unwrap_or_default(),
                    filter_ts.map(|t| t.to_string()).unwrap_or_default()
                ),
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

#[cfg(test)]
mod tests {
    use sluice_aws::{ErrorType, Format};

    use super::*;
    use crate::ops::json_tree;

    const ACCOUNT: &str = "123456789012";

    fn list(body: &str) -> Result<ListShardsRequest, ApiError> {
        ListShardsRequest::parse(Input::root(&json_tree(body), Format::Json)?, ACCOUNT)
    }

    #[test]
    fn list_shards_members_are_typed() {
        let r = list(
            r#"{"StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s1","MaxResults":5,
                "ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":1700000000.5}}"#,
        )
        .unwrap();
        assert_eq!(r.max_results, Some(5));
        assert_eq!(
            r.page,
            ListShardsPage::First {
                stream: StreamTarget("s1".into()),
                exclusive_start_shard_id: None,
                stream_creation_timestamp_ms: None,
                filter: Some(ShardFilter {
                    kind: ShardFilterType::AtTimestamp,
                    shard_id: None,
                    timestamp_ms: Some(1_700_000_000_500),
                }),
            }
        );
        let r = list(r#"{"NextToken":"abc"}"#).unwrap();
        assert_eq!(
            r.page,
            ListShardsPage::Next {
                next_token: "abc".into()
            }
        );
    }

    #[test]
    fn list_shards_checks_in_aws_order() {
        let message = |body: &str| list(body).unwrap_err().message.unwrap_or_default();
        // Constraints first, all of them, in member order (the stream between the start shard
        // and the token).
        assert_eq!(
            message(r#"{"MaxResults":0,"NextToken":"","StreamName":"a b","ShardFilter":{"Type":"X"}}"#),
            "4 validation errors detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1; Value 'a b' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'nextToken' failed to satisfy constraint: Member must have length greater than or equal to 1; Value 'X' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]"
        );
        // Then which members go together, then what the filter's type requires.
        assert_eq!(
            message(r#"{"NextToken":"t","StreamName":"s1"}"#),
            "NextToken and StreamName cannot be provided together."
        );
        assert_eq!(
            message(r#"{"NextToken":"t","ShardFilter":{"Type":"AT_LATEST"}}"#),
            "NextToken and ShardFilter cannot be provided together."
        );
        assert_eq!(
            message(r#"{"StreamName":"s1","ShardFilter":{"Type":"AFTER_SHARD_ID"}}"#),
            "ShardId must be supplied in a ShardFilter with a Type of AFTER_SHARD_ID"
        );
        assert_eq!(
            message("{}"),
            "Either NextToken or StreamName should be provided."
        );
    }

    #[test]
    fn split_shard_parses_the_shard_and_the_key() {
        let split = |body: &str| {
            SplitShardRequest::parse(
                Input::root(&json_tree(body), Format::Json).unwrap(),
                ACCOUNT,
            )
        };
        let r = split(r#"{"StreamName":"s1","ShardToSplit":"shardId-000000000002","NewStartingHashKey":"42"}"#)
            .unwrap();
        assert_eq!(
            (r.shard_to_split, r.new_starting_hash_key, r.past_hash_space),
            (ShardId(2), 42, None)
        );
        let key = "9".repeat(39);
        let r = split(&format!(
            r#"{{"StreamName":"s1","ShardToSplit":"7","NewStartingHashKey":"{key}"}}"#
        ))
        .unwrap();
        assert_eq!(
            (r.shard_to_split, r.new_starting_hash_key, r.past_hash_space),
            (ShardId(7), u128::MAX, Some(key))
        );
        let e = split(r#"{"StreamName":"s1","ShardToSplit":"shardId-x","NewStartingHashKey":"1"}"#)
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::ResourceNotFound);
        assert_eq!(
            e.message.as_deref(),
            Some("Could not find shard shardId-x in stream s1 under account 123456789012.")
        );
    }
}
