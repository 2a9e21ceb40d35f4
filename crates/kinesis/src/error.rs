//! Kinesis's errors: the one exhaustive mapping from the stream model's errors to the AWS error
//! a client sees ([`ApiError`], from `sluice-aws`), with Kinesis's wording.

use sluice_streams::StreamsError;

pub use sluice_aws::{ApiError, ErrorType};

/// An operation of the Kinesis API that sluice does not have yet.
pub fn not_implemented(operation: &str) -> ApiError {
    ApiError::not_implemented(operation, "docs/specs/kinesis-compat.md")
}

/// Naming context for messages: the account the server presents.
pub struct Ctx<'a> {
    pub account: &'a str,
    pub region: &'a str,
}

impl Ctx<'_> {
    pub fn stream_not_found(&self, stream: &str) -> ApiError {
        ApiError::not_found(format!(
            "Stream {stream} under account {} not found.",
            self.account
        ))
    }

    pub fn shard_not_found(&self, stream: &str, shard_id: &str) -> ApiError {
        ApiError::not_found(format!(
            "Shard {shard_id} in stream {stream} under account {} does not exist",
            self.account
        ))
    }

    /// SplitShard's NewStartingHashKey outside the shard; `key` as the client wrote it (it may
    /// be past 2^128 - 1).
    pub fn split_key_out_of_range(
        &self,
        stream: &str,
        shard_id: &str,
        key: &str,
        start: u128,
        end: u128,
    ) -> ApiError {
        ApiError::invalid_argument(format!(
            "NewStartingHashKey {key} used in SplitShard() on shard {shard_id} in stream {stream} under account {} is not both greater than one plus the shard's StartingHashKey {start} and less than the shard's EndingHashKey {end}.",
            self.account
        ))
    }

    /// The one mapping from stream-model errors to what clients see. No wildcard arm: a new
    /// error variant must be given its AWS form here.
    pub fn map(&self, e: StreamsError) -> ApiError {
        let account = self.account;
        let region = self.region;
        match e {
            StreamsError::StreamNotFound { name } => self.stream_not_found(&name),
            StreamsError::StreamExists { name } => ApiError::in_use(format!("Stream {name} under account {account} already exists.")),
            StreamsError::StreamNotActive { name, status } => {
                ApiError::in_use(format!("Stream {name} under account {account} not ACTIVE, instead in state {}", status.as_aws()))
            }
            StreamsError::ShardNotFound { stream, shard_id } => self.shard_not_found(&stream, &shard_id),
            StreamsError::ShardLimitExceeded { requested, open, limit } => ApiError::limit_exceeded(format!(
                "This request would exceed the shard limit for the account {account} in {region}. Current shard count for the account: {open}. Limit: {limit}. Number of additional shards that would have resulted from this request: {requested}. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits."
            )),
            StreamsError::OnDemandLimitExceeded { limit } => ApiError::limit_exceeded(format!(
                "This request would exceed the limit of {limit} on-demand streams for the account {account}."
            )),
            StreamsError::RetentionWrongDirection { stream, requested_hours, current_hours, direction } => {
                let other = if direction == "shorter" { "DecreaseRetentionPeriod" } else { "IncreaseRetentionPeriod" };
                ApiError::invalid_argument(format!(
                    "Requested retention period ({requested_hours} hours) for stream {stream} can not be {direction} than existing retention period ({current_hours} hours). Use {other} API."
                ))
            }
            StreamsError::SequenceNotInShard { stream, shard_id, sequence_number } => ApiError::invalid_argument(format!(
                "StartingSequenceNumber {sequence_number} used in GetShardIterator on shard {shard_id} in stream {stream} under account {account} is invalid because it did not come from this stream."
            )),
            StreamsError::TooManyTags { stream, limit, .. } => ApiError::invalid_argument(format!(
                "Failed to add tags to stream {stream} under account {account} because a given stream cannot have more than {limit} tags associated with it."
            )),
            StreamsError::RecordTooLarge { data_bytes, limit_kib } => ApiError::validation(format!(
                "1 validation error detected: Value '{}' at 'data' failed to satisfy constraint: Member must have length less than or equal to {} (the stream's MaxRecordSizeInKiB is {limit_kib}; the limit counts partition key and data)",
                crate::validate::show_blob(data_bytes),
                limit_kib as usize * 1024
            )),
            StreamsError::StreamHasConsumers { name } => ApiError::in_use(format!(
                "DeleteStream can’t delete {account}:{name} because there are consumers associated with this data stream. To delete {name} anyway, set the EnforceConsumerDeletion parameter to true to force the deletion of all the consumers that are associated with it."
            )),
            StreamsError::ShardClosed { stream, shard_id } => ApiError::invalid_argument(format!(
                "Shard {shard_id} in stream {stream} under account {account} has already been merged or split, and thus is not eligible for merging or splitting."
            )),
            StreamsError::SplitKeyOutOfRange { stream, shard_id, key, start, end } => {
                self.split_key_out_of_range(&stream, &shard_id, &key.to_string(), start, end)
            }
            StreamsError::ShardsNotAdjacent { stream, shard_id, adjacent_shard_id } => ApiError::invalid_argument(format!(
                "Shards {shard_id} and {adjacent_shard_id} in stream {stream} under account {account} are not an adjacent pair of shards eligible for merging"
            )),
            StreamsError::WrongMode { stream, .. } => ApiError::validation(format!(
                "Request is invalid. Stream {stream} under account {account} is in On-Demand mode."
            )),
            StreamsError::ShardCountOutOfRange { current, target, .. } => {
                let what = if target > current { "scale up over double" } else { "scale down below half" };
                ApiError::limit_exceeded(format!(
                    "UpdateShardCount cannot {what} your current open shard count. Current open shard count: {current}, Target shard count: {target}"
                ))
            }
            StreamsError::ShardCountUpdatesExceeded { stream, limit } => ApiError::limit_exceeded(format!(
                "UpdateShardCount cannot be called more than {limit} times in a rolling 24-hour period for stream {stream} under account {account}."
            )),
            StreamsError::ConsumerExists { stream, consumer } => ApiError::in_use(format!(
                "Consumer {consumer} under stream {stream} already exists for account {account}."
            )),
            StreamsError::ConsumerNotFound { stream, consumer } => ApiError::not_found(format!(
                "Consumer {consumer} under stream {stream} not found for account {account}."
            )),
            StreamsError::ConsumerLimitExceeded { stream, limit } => ApiError::limit_exceeded(format!(
                "Stream {stream} under account {account} already has {limit} registered consumers, the most a stream can have."
            )),
            StreamsError::ConsumersCreatingLimitExceeded { stream, limit } => ApiError::limit_exceeded(format!(
                "Stream {stream} under account {account} already has {limit} consumers in CREATING status; wait for one to become ACTIVE."
            )),
            StreamsError::ThroughputExceeded { stream, shard_id, write: true } => ApiError::throughput_exceeded(format!(
                "Rate exceeded for shard {shard_id} in stream {stream} under account {account}."
            )),
            StreamsError::ThroughputExceeded { stream, shard_id, write: false } => ApiError::throughput_exceeded(format!(
                "Rate exceeded for Shard - {account}/{stream}/{shard_id}"
            )),
            StreamsError::Busy => ApiError::throughput_exceeded("Rate exceeded for shard: the server's write queue for it is full."),
            StreamsError::Log(sluice_streams::LogError::NoSpace { .. }) => ApiError::new(
                sluice_aws::ErrorType::InternalFailure,
                "Internal Service Failure: the disk that holds sluice's data directory is full, so the records were not stored. Writes resume by themselves once space is freed.",
            )
            .with_status(http::StatusCode::INTERNAL_SERVER_ERROR),
            StreamsError::Log(sluice_streams::LogError::Poisoned { .. }) => ApiError::new(
                sluice_aws::ErrorType::InternalFailure,
                "Internal Service Failure: a storage error stopped writes to this shard and sluice is recovering it by itself; retry shortly.",
            )
            .with_status(http::StatusCode::INTERNAL_SERVER_ERROR),
            StreamsError::Log(e) => {
                tracing::error!(request_id = sluice_aws::current_request_id().as_deref().unwrap_or("-"), error = %e, "storage error");
                ApiError::internal()
            }
            StreamsError::Catalog(e) => {
                tracing::error!(request_id = sluice_aws::current_request_id().as_deref().unwrap_or("-"), error = %e, "catalog error");
                ApiError::internal()
            }
            StreamsError::Internal(e) => {
                tracing::error!(request_id = sluice_aws::current_request_id().as_deref().unwrap_or("-"), error = %e, "internal error");
                ApiError::internal()
            }
        }
    }
}
