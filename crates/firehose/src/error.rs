//! The one mapping from what goes wrong in a delivery stream operation ([`FirehoseError`]) to
//! the error a client sees ([`ApiError`]), in Firehose's types and wording.

use sluice_aws::{ApiError, ErrorType};
use sluice_streams::StreamsError;

use crate::model::Status;
use crate::store::StoreError;

/// What a delivery stream operation can fail with, past its member checks.
#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    #[error("delivery stream {name} not found")]
    NotFound { name: String },
    #[error("delivery stream {name} already exists")]
    AlreadyExists { name: String },
    #[error("delivery stream {name} is {status:?}")]
    NotActive { name: String, status: Status },
    #[error("delivery stream {name} reads a Kinesis data stream")]
    KinesisSource { name: String },
    #[error("version {given} of {name} is not the current {current}")]
    VersionMismatch {
        name: String,
        current: u64,
        given: String,
    },
    #[error("delivery stream {name} is behind")]
    Backlog { name: String },
    #[error("{count} delivery streams is the limit")]
    TooManyStreams { count: u32 },
    #[error("delivery stream {name} would have {count} tags")]
    TooManyTags { name: String, count: usize },
    /// A request Firehose refuses with InvalidArgumentException, and its message.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Buffer(#[from] StreamsError),
}

/// Firehose's answer for `e` (`account` is named in not-found messages).
pub fn api(e: FirehoseError, account: &str) -> ApiError {
    match e {
        FirehoseError::NotFound { name } => {
            ApiError::not_found(format!("Firehose {name} under account {account} not found."))
        }
        FirehoseError::AlreadyExists { name } => ApiError::in_use(format!(
            "Firehose {name} under accountId {account} already exists"
        )),
        FirehoseError::NotActive { name, status } => ApiError::in_use(format!(
            "Firehose {name} under accountId {account} is in {} state.",
            status.as_str()
        )),
        FirehoseError::KinesisSource { .. } => ApiError::invalid_argument(
            "This operation is not permitted on KinesisStreamAsSource delivery stream type.",
        ),
        FirehoseError::VersionMismatch {
            name,
            current,
            given,
        } => ApiError::new(
            ErrorType::ConcurrentModification,
            format!(
                "Cannot update firehose: {name} since the current version id: {current} and specified version id: {given} do not match"
            ),
        ),
        FirehoseError::Backlog { .. } => ApiError::unavailable("Slow down."),
        FirehoseError::TooManyStreams { count } => ApiError::limit_exceeded(format!(
            "You have already consumed your firehose quota of {count} hoses."
        )),
        FirehoseError::TooManyTags { name, count } => ApiError::limit_exceeded(format!(
            "Firehose {name} would have {count} tags; a delivery stream may have at most {}.",
            crate::limits::TAGS_MAX
        )),
        FirehoseError::Invalid(message) => ApiError::invalid_argument(message),
        FirehoseError::Store(e) => {
            tracing::error!(error = %e, "delivery stream store failed");
            ApiError::internal()
        }
        FirehoseError::Buffer(e) => buffer_error(&e),
    }
}

/// A durable buffer that could not take records: a full disk, a busy or recovering log are
/// the server asking for patience (ServiceUnavailableException), anything else internal.
pub fn buffer_error(e: &StreamsError) -> ApiError {
    match e {
        StreamsError::Busy
        | StreamsError::ThroughputExceeded { .. }
        | StreamsError::Log(
            sluice_streams::LogError::NoSpace { .. }
            | sluice_streams::LogError::Poisoned { .. }
            | sluice_streams::LogError::Io { .. },
        ) => ApiError::unavailable("Slow down."),
        other => {
            tracing::error!(error = %other, "delivery stream buffer failed");
            ApiError::internal()
        }
    }
}
