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
///
/// (De)serializes as the `[storage]` section of sluice's configuration: every field is a key
/// of its own (the defaults and units are on `LogConfigToml` below), the sync policy as
/// `sync = "group_commit" | "interval"` plus `sync_interval_ms`. A missing key takes its
/// default, an unknown key or a value out of range is an error naming the key.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "LogConfigToml", into = "LogConfigToml")]
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

/// [`SyncPolicy`] as the `sync` key spells it.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum SyncMode {
    GroupCommit,
    Interval,
}

/// `sync_interval_ms` when the file does not say (and what a `group_commit` config writes).
const SYNC_INTERVAL_MS_DEFAULT: u64 = 100;

/// [`LogConfig`] as the keys of the `[storage]` section. Every key is optional; the defaults are
/// [`LogConfig::default`]'s.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
struct LogConfigToml {
    /// `group_commit` (the default: acknowledged after the `fdatasync` that covers it) or
    /// `interval` (acknowledged once written; `fdatasync` at most `sync_interval_ms` later).
    sync: SyncMode,
    /// With `sync = "interval"`: the longest time, in milliseconds, between a write and its
    /// `fdatasync`. Default 100.
    sync_interval_ms: u64,
    /// A segment is sealed at this size, in bytes. Default 134217728 (128 MiB); at least 4096.
    segment_bytes_max: u64,
    /// A segment is sealed once its first record is this old, in milliseconds. Default 3600000
    /// (one hour).
    segment_age_ms_max: i64,
    /// One offset-index entry per this many bytes of records. Default 16384.
    index_interval_bytes: u64,
    /// Appends waiting per shard for the writer thread. Default 4096; at least 1.
    append_queue_depth_max: usize,
    /// Bytes of records one group commit takes from the queue at most. Default 33554432
    /// (32 MiB); at least 1.
    commit_bytes_max: usize,
    /// The first delay, in milliseconds, between failing recovery attempts of a poisoned
    /// writer. Default 100; at least 1.
    recovery_backoff_ms_min: u64,
    /// The longest delay, in milliseconds, between recovery attempts. Default 30000; at least
    /// `recovery_backoff_ms_min`.
    recovery_backoff_ms_max: u64,
}

impl Default for LogConfigToml {
    fn default() -> Self {
        LogConfig::default().into()
    }
}

impl From<LogConfig> for LogConfigToml {
    fn from(c: LogConfig) -> Self {
        // Destructured, so that a field added to `LogConfig` does not build until it has a key.
        let LogConfig {
            segment_bytes_max,
            segment_age_ms_max,
            index_interval_bytes,
            sync,
            append_queue_depth_max,
            commit_bytes_max,
            recovery_backoff_ms_min,
            recovery_backoff_ms_max,
        } = c;
        let (sync, sync_interval_ms) = match sync {
            SyncPolicy::GroupCommit => (SyncMode::GroupCommit, SYNC_INTERVAL_MS_DEFAULT),
            SyncPolicy::Interval { interval_ms } => (SyncMode::Interval, interval_ms),
        };
        LogConfigToml {
            sync,
            sync_interval_ms,
            segment_bytes_max,
            segment_age_ms_max,
            index_interval_bytes,
            append_queue_depth_max,
            commit_bytes_max,
            recovery_backoff_ms_min,
            recovery_backoff_ms_max,
        }
    }
}

impl TryFrom<LogConfigToml> for LogConfig {
    type Error = String;

    fn try_from(t: LogConfigToml) -> Result<Self, String> {
        if t.segment_bytes_max < 4096 {
            return Err(format!(
                "segment_bytes_max must be at least 4096, got {}",
                t.segment_bytes_max
            ));
        }
        if t.append_queue_depth_max == 0 {
            return Err("append_queue_depth_max must be at least 1".into());
        }
        if t.commit_bytes_max == 0 {
            return Err("commit_bytes_max must be at least 1".into());
        }
        if t.recovery_backoff_ms_min == 0 {
            return Err("recovery_backoff_ms_min must be at least 1".into());
        }
        if t.recovery_backoff_ms_max < t.recovery_backoff_ms_min {
            return Err(format!(
                "recovery_backoff_ms_max ({}) must be at least recovery_backoff_ms_min ({})",
                t.recovery_backoff_ms_max, t.recovery_backoff_ms_min
            ));
        }
        Ok(LogConfig {
            segment_bytes_max: t.segment_bytes_max,
            segment_age_ms_max: t.segment_age_ms_max,
            index_interval_bytes: t.index_interval_bytes,
            sync: match t.sync {
                SyncMode::GroupCommit => SyncPolicy::GroupCommit,
                SyncMode::Interval => SyncPolicy::Interval {
                    interval_ms: t.sync_interval_ms,
                },
            },
            append_queue_depth_max: t.append_queue_depth_max,
            commit_bytes_max: t.commit_bytes_max,
            recovery_backoff_ms_min: t.recovery_backoff_ms_min,
            recovery_backoff_ms_max: t.recovery_backoff_ms_max,
        })
    }
}
