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
    /// A write or fsync failed, so the writer refuses appends until it has recovered: it cuts
    /// the log back to the last acknowledged record and reloads it from disk, by itself (see
    /// [`crate::LogHealth`]). fsync is never retried: after a failed fsync the page cache state
    /// is unknown, so what it covered is cut, not synced again.
    #[error("the log at {path} is poisoned by an i/o error; it recovers by itself")]
    Poisoned { path: PathBuf },
    /// The disk (or a quota) is full. Only the appends of that commit failed, and none of their
    /// bytes stay in the log; the next append tries again, and succeeds once space is free.
    #[error("no space left for the log at {path}: the disk is full")]
    NoSpace { path: PathBuf },
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

/// A failure inside the writer's file work, with what decides its handling: a lack of space
/// (on a create, write or rename) fails one commit; anything else, a failed sync above all,
/// poisons the writer.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: LogError,
    pub no_space: bool,
}

impl Failure {
    /// A failed operation that is not a sync: `ENOSPC` / `EDQUOT` mean no space.
    pub fn op(path: impl Into<PathBuf>, e: std::io::Error) -> Failure {
        Failure {
            no_space: crate::storage::is_no_space(&e),
            error: LogError::io(path, e),
        }
    }

    /// A failure that poisons whatever its error: a failed sync (an `ENOSPC` from fsync too),
    /// or a failed undo of a write.
    pub fn fatal(path: impl Into<PathBuf>, e: std::io::Error) -> Failure {
        Failure {
            no_space: false,
            error: LogError::io(path, e),
        }
    }
}

impl From<LogError> for Failure {
    fn from(error: LogError) -> Failure {
        Failure {
            error,
            no_space: false,
        }
    }
}

impl From<Failure> for LogError {
    fn from(f: Failure) -> LogError {
        f.error
    }
}
