use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl StreamStatus {
    pub fn as_aws(&self) -> &'static str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
            StreamStatus::Deleting => "DELETING",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

/// What the catalog stores of one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMeta {
    pub index: u32,
    /// Hash-key range, inclusive, as decimal strings (u128 does not fit JSON numbers).
    pub hash_start: String,
    pub hash_end: String,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    /// The epoch part of this shard's sequence numbers (see `sequence`).
    pub epoch: u64,
    pub created_ms: i64,
    /// For a closed shard: one past its last offset.
    pub closed_end_offset: Option<u64>,
}

impl ShardMeta {
    pub fn hash_range(&self) -> (u128, u128) {
        (
            self.hash_start.parse().expect("catalog hash key"),
            self.hash_end.parse().expect("catalog hash key"),
        )
    }

    pub fn is_open(&self) -> bool {
        self.closed_end_offset.is_none()
    }
}

/// What the catalog stores of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMeta {
    pub name: String,
    /// Unique across the server's lifetime: names the stream's data directory, so a stream
    /// re-created under a deleted one's name never sees its data.
    pub uid: u64,
    pub status: StreamStatus,
    /// When the status last changed.
    pub status_ms: i64,
    pub created_ms: i64,
    pub retention_hours: u32,
    pub mode: StreamMode,
    pub shards: Vec<ShardMeta>,
    pub tags: BTreeMap<String, String>,
    /// Largest record (partition key + data) the stream accepts, in KiB.
    #[serde(default = "default_max_record_size_kib")]
    pub max_record_size_kib: u32,
}

fn default_max_record_size_kib() -> u32 {
    1024
}

/// What a new stream is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub shard_count: u32,
    pub mode: StreamMode,
    pub max_record_size_kib: u32,
    pub tags: BTreeMap<String, String>,
}

impl StreamMeta {
    pub fn open_shard_count(&self) -> u32 {
        self.shards.iter().filter(|s| s.is_open()).count() as u32
    }
}
