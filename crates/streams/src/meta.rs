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
    /// Hash-key range, inclusive. Stored as decimal strings (u128 does not fit JSON numbers);
    /// a damaged value fails the catalog's load at open, not a later use.
    #[serde(with = "decimal_u128")]
    pub hash_start: u128,
    #[serde(with = "decimal_u128")]
    pub hash_end: u128,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    /// The epoch part of this shard's sequence numbers (see `sequence`).
    pub epoch: u64,
    pub created_ms: i64,
    /// For a closed shard: one past its last offset.
    pub closed_end_offset: Option<u64>,
    /// When the shard was closed by a reshard; its data is gone, and the shard with it, one
    /// retention period later.
    #[serde(default)]
    pub closed_ms: Option<i64>,
}

impl ShardMeta {
    pub fn hash_range(&self) -> (u128, u128) {
        (self.hash_start, self.hash_end)
    }

    pub fn is_open(&self) -> bool {
        self.closed_end_offset.is_none()
    }

    /// Whether `index` is one of this shard's parents.
    pub fn is_child_of(&self, index: u32) -> bool {
        self.parent == Some(index) || self.adjacent_parent == Some(index)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsumerStatus {
    Creating,
    Active,
    Deleting,
}

impl ConsumerStatus {
    pub fn as_aws(&self) -> &'static str {
        match self {
            ConsumerStatus::Creating => "CREATING",
            ConsumerStatus::Active => "ACTIVE",
            ConsumerStatus::Deleting => "DELETING",
        }
    }
}

/// A registered (enhanced fan-out) consumer of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMeta {
    pub name: String,
    pub created_ms: i64,
    pub status: ConsumerStatus,
    pub status_ms: i64,
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
    /// The index the next new shard gets; indexes are never reused.
    #[serde(default)]
    pub next_shard_index: u32,
    #[serde(default)]
    pub consumers: Vec<ConsumerMeta>,
    /// When UpdateShardCount was called, over the last 24 hours (AWS allows 10 a day).
    #[serde(default)]
    pub shard_count_updates_ms: Vec<i64>,
    /// The shard-level metrics enabled for the stream (enhanced monitoring): names the API layer
    /// chose, kept here so they survive a restart.
    #[serde(default)]
    pub shard_level_metrics: Vec<String>,
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

    /// The open shards as `(start, end, index)`, in hash-key order.
    pub fn open_ranges(&self) -> Vec<(u128, u128, u32)> {
        let mut routes: Vec<(u128, u128, u32)> = self
            .shards
            .iter()
            .filter(|s| s.is_open())
            .map(|s| {
                let (a, b) = s.hash_range();
                (a, b, s.index)
            })
            .collect();
        routes.sort_unstable();
        routes
    }

    pub fn shard(&self, index: u32) -> Option<&ShardMeta> {
        self.shards
            .binary_search_by_key(&index, |s| s.index)
            .ok()
            .map(|i| &self.shards[i])
    }

    /// The shards whose parent (or adjacent parent) is `index`.
    pub fn children_of(&self, index: u32) -> Vec<ShardMeta> {
        self.shards
            .iter()
            .filter(|s| s.is_child_of(index))
            .cloned()
            .collect()
    }
}

/// A u128 as its decimal digits in a JSON string.
mod decimal_u128 {
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse()
            .map_err(|_| de::Error::custom(format!("hash key {text:?} is not a 128-bit decimal")))
    }
}
