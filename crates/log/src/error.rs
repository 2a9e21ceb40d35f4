use std::path::PathBuf;

/// Errors of the shard log. Messages name the shard directory relative to the data directory
/// at most; callers that face users map them to their own error types.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An earlier write or fsync failed; the writer refuses appends until the log is reopened
    /// and recovered. fsync is never retried: after a failed fsync the page cache state is unknown.
    #[error("the log at {path} is poisoned by an earlier i/o error; reopen to recover")]
    Poisoned { path: PathBuf },
    #[error("corrupt data in {path} at position {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("record too large: {what} is {len} bytes, at most {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("the log is closed")]
    Closed,
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }
}
