//! `[firehose]`: the settings of delivery streams in sluice.

use serde::{Deserialize, Serialize};

/// The `[firehose]` section of sluice's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirehoseConfig {
    /// Delivery streams allowed (AWS's per-Region quota). Default 5000.
    pub delivery_streams_max: u32,
    /// How long a new delivery stream stays CREATING, in milliseconds. Default 0.
    pub create_delay_ms: i64,
    /// How long a deleted delivery stream stays DELETING, in milliseconds. Default 0.
    pub delete_delay_ms: i64,
    /// Shards of each delivery stream's durable buffer (a sluice stream of its own, not
    /// visible to the Kinesis API). Default 1.
    pub buffer_shards: u32,
    /// How long records wait in a delivery stream's durable buffer at most, delivered or not
    /// (Firehose keeps undelivered data 24 hours). Default 24.
    pub buffer_retention_hours: u32,
    /// Records accepted but not yet delivered past which PutRecord and PutRecordBatch answer
    /// ServiceUnavailableException ("Slow down."), as Firehose does when its destination is
    /// behind. Default 1000000.
    pub backlog_records_max: u64,
    /// Bytes one delivery stream keeps in memory for its buffers (every partition's), at most:
    /// past it the largest buffer is delivered early. Default 268435456 (256 MiB).
    pub memory_bytes_max: u64,
    /// Active partitions of a delivery stream with dynamic partitioning, at most; records of
    /// further partitions go to the error output prefix (activePartitionExceeded). Default 500.
    pub active_partitions_max: u32,
    /// How long a failing object write is retried before its records go to the error output
    /// prefix, in seconds (Firehose retries S3 for 24 hours). Default 86400.
    pub retry_duration_s: u64,
    /// The longest wait between two tries of a failing write or Lambda call, in milliseconds
    /// (the waits double from 200 ms). Default 5000.
    pub retry_backoff_ms_max: u64,
}

impl Default for FirehoseConfig {
    fn default() -> Self {
        FirehoseConfig {
            delivery_streams_max: 5000,
            create_delay_ms: 0,
            delete_delay_ms: 0,
            buffer_shards: 1,
            buffer_retention_hours: 24,
            backlog_records_max: 1_000_000,
            memory_bytes_max: 256 << 20,
            active_partitions_max: 500,
            retry_duration_s: 86_400,
            retry_backoff_ms_max: 5_000,
        }
    }
}

impl FirehoseConfig {
    /// The checks the types cannot make.
    pub fn validate(&self) -> Result<(), String> {
        if self.delivery_streams_max == 0 {
            return Err("delivery_streams_max must be at least 1".into());
        }
        if !(1..=64).contains(&self.buffer_shards) {
            return Err("buffer_shards must be 1 to 64".into());
        }
        if !(1..=8760).contains(&self.buffer_retention_hours) {
            return Err("buffer_retention_hours must be 1 to 8760".into());
        }
        if self.backlog_records_max == 0 {
            return Err("backlog_records_max must be at least 1".into());
        }
        if self.memory_bytes_max < 1 << 20 {
            return Err("memory_bytes_max must be at least 1048576".into());
        }
        if self.active_partitions_max == 0 {
            return Err("active_partitions_max must be at least 1".into());
        }
        if self.retry_backoff_ms_max < crate::limits::WRITE_BACKOFF_MS_MIN {
            return Err("retry_backoff_ms_max must be at least 200".into());
        }
        if self.create_delay_ms < 0 || self.delete_delay_ms < 0 {
            return Err("create_delay_ms and delete_delay_ms must not be negative".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_checked() {
        FirehoseConfig::default().validate().unwrap();
        let bad = FirehoseConfig {
            buffer_shards: 0,
            ..FirehoseConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("buffer_shards"));
    }
}
