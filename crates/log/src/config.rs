/// When an append is acknowledged relative to `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// The default. Appends are acknowledged, and become visible to readers, only after the
    /// `fdatasync` that covers them. Concurrent appends share one `fdatasync` (group commit).
    GroupCommit,
    /// Explicit opt-in: appends are acknowledged once written to the OS, and `fdatasync` runs at
    /// most `interval_ms` later. A power loss can lose up to `interval_ms` of acknowledged
    /// records; a process crash (`kill -9`) loses nothing, because the page cache survives it.
    Interval { interval_ms: u64 },
}

/// Tunables of one shard's log. Every queue and buffer is bounded by one of these.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A segment is sealed and a new one started once it holds this many bytes.
    pub segment_bytes_max: u64,
    /// A segment is sealed once its first record is this old (so retention can trim it).
    pub segment_age_ms_max: i64,
    /// One offset-index entry per this many bytes of records.
    pub index_interval_bytes: u64,
    pub sync: SyncPolicy,
    /// Append requests waiting for the writer thread; further appends block until there is room.
    pub append_queue_depth_max: usize,
    /// Bytes of records one group commit takes from the queue at most.
    pub commit_bytes_max: usize,
    /// After a write or fsync error poisons the writer, it recovers by itself: the first attempt
    /// at once, then, while attempts (or the first commit after one) keep failing, after this
    /// delay, doubling each time up to `recovery_backoff_ms_max`. Appends fail fast meanwhile.
    pub recovery_backoff_ms_min: u64,
    pub recovery_backoff_ms_max: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes_max: 128 * 1024 * 1024,
            segment_age_ms_max: 60 * 60 * 1000,
            index_interval_bytes: 16 * 1024,
            sync: SyncPolicy::GroupCommit,
            append_queue_depth_max: 4096,
            commit_bytes_max: 32 * 1024 * 1024,
            recovery_backoff_ms_min: 100,
            recovery_backoff_ms_max: 30_000,
        }
    }
}
