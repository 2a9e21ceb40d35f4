use crate::meta::{StreamMode, StreamStatus};

/// Errors of stream operations. Each variant is a distinct situation a client can be told about;
/// `sluice-kinesis` maps them, exhaustively, to AWS error types and messages.
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error("stream {name} not found")]
    StreamNotFound { name: String },
    #[error("stream {name} already exists")]
    StreamExists { name: String },
    #[error("stream {name} is {status:?}, not ACTIVE")]
    StreamNotActive { name: String, status: StreamStatus },
    #[error("shard {shard_id} not found in stream {stream}")]
    ShardNotFound { stream: String, shard_id: String },
    #[error(
        "the shard limit would be exceeded: {requested} more shards, {open} open, limit {limit}"
    )]
    ShardLimitExceeded {
        requested: u32,
        open: u32,
        limit: u32,
    },
    #[error("the on-demand stream limit {limit} would be exceeded")]
    OnDemandLimitExceeded { limit: u32 },
    #[error("retention {requested_hours} h is {direction} than the current {current_hours} h")]
    RetentionWrongDirection {
        stream: String,
        requested_hours: u32,
        current_hours: u32,
        direction: &'static str,
    },
    #[error(
        "sequence number {sequence_number} is not valid for shard {shard_id} of stream {stream}"
    )]
    SequenceNotInShard {
        stream: String,
        shard_id: String,
        sequence_number: String,
    },
    #[error("too many tags: {count} would exceed {limit}")]
    TooManyTags {
        stream: String,
        count: usize,
        limit: usize,
    },
    #[error("a record of {data_bytes} data bytes exceeds the stream's maximum record size of {limit_kib} KiB")]
    RecordTooLarge { data_bytes: usize, limit_kib: u32 },
    #[error("stream {name} has registered consumers")]
    StreamHasConsumers { name: String },
    #[error("shard {shard_id} of stream {stream} is closed")]
    ShardClosed { stream: String, shard_id: String },
    #[error("hash key {key} is not inside shard {shard_id}'s range {start}..={end} with room for two children")]
    SplitKeyOutOfRange {
        stream: String,
        shard_id: String,
        key: u128,
        start: u128,
        end: u128,
    },
    #[error("shards {shard_id} and {adjacent_shard_id} of stream {stream} are not adjacent")]
    ShardsNotAdjacent {
        stream: String,
        shard_id: String,
        adjacent_shard_id: String,
    },
    #[error("stream {stream} is in {mode:?} mode")]
    WrongMode { stream: String, mode: StreamMode },
    #[error("target shard count {target} is outside half to double the {current} open shards")]
    ShardCountOutOfRange {
        stream: String,
        current: u32,
        target: u32,
    },
    #[error("stream {stream} has had its shard count updated {limit} times in 24 hours")]
    ShardCountUpdatesExceeded { stream: String, limit: u32 },
    #[error("consumer {consumer} of stream {stream} already exists")]
    ConsumerExists { stream: String, consumer: String },
    #[error("consumer {consumer} of stream {stream} not found")]
    ConsumerNotFound { stream: String, consumer: String },
    #[error("stream {stream} has the maximum of {limit} consumers")]
    ConsumerLimitExceeded { stream: String, limit: u32 },
    #[error("stream {stream} has {limit} consumers being created")]
    ConsumersCreatingLimitExceeded { stream: String, limit: u32 },
    #[error("shard {shard_id} of stream {stream} is over its {} quota", if *write { "write" } else { "read" })]
    ThroughputExceeded {
        stream: String,
        shard_id: String,
        write: bool,
    },
    #[error("the shard's writer queue is full")]
    Busy,
    #[error("storage: {0}")]
    Log(#[from] sluice_log::LogError),
    #[error("catalog: {0}")]
    Catalog(String),
    /// A broken internal invariant (a bug, not bad input or damaged data), reported as an
    /// internal failure instead of a panic.
    #[error("internal inconsistency: {0}")]
    Internal(String),
}

impl StreamsError {
    pub(crate) fn catalog(e: impl std::fmt::Display) -> Self {
        StreamsError::Catalog(e.to_string())
    }

    /// A broken internal invariant: [`StreamsError::Internal`].
    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        StreamsError::Internal(what.to_string())
    }
}
