use crate::meta::StreamStatus;

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
    #[error("the shard's writer queue is full")]
    Busy,
    #[error("storage: {0}")]
    Log(#[from] sluice_log::LogError),
    #[error("catalog: {0}")]
    Catalog(String),
}

impl StreamsError {
    pub(crate) fn catalog(e: impl std::fmt::Display) -> Self {
        StreamsError::Catalog(e.to_string())
    }
}
