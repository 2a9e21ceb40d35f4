//! `sluice-streams` turns shard logs into streams: named sets of shards that own hash-key ranges.
//!
//! The main types:
//! - [`Streams`] is the registry of every stream of one server: create, describe, list, delete,
//!   retention and tags, persisted in the [`catalog`] (an embedded ACID store), and the data
//!   path: [`Streams::put`] routes records to shards by the MD5 of their partition key,
//!   [`Streams::read`] reads a shard from a [`ShardCursor`], [`Streams::watch`] signals new
//!   durable records to subscriptions.
//! - [`reshard`](Streams::reshard) splits and merges shards (SplitShard, MergeShards,
//!   UpdateShardCount) and scales ON_DEMAND streams; `throughput` holds the per-shard quotas.
//! - [`Streams::register_consumer`] and its siblings keep the registered (enhanced fan-out)
//!   consumers.
//! - [`StreamName`], [`ShardId`] and [`SequenceNumber`] are validated identities.
//! - [`StreamMeta`] / [`ShardMeta`] are what the catalog stores of a stream.
//!
//! This crate speaks the stream model (shards, hash keys, sequence numbers) but no wire format:
//! error messages and JSON/CBOR shapes belong to `sluice-kinesis`.

pub mod catalog;
mod config;
mod consumers;
mod error;
mod meta;
mod names;
mod reshard;
mod routing;
mod sequence;
mod streams;
mod throughput;

pub use config::StreamsConfig;
pub use consumers::{ConsumerView, CONSUMERS_CREATING_MAX, CONSUMERS_MAX};
pub use error::StreamsError;
pub use meta::{
    ConsumerMeta, ConsumerStatus, ShardMeta, StreamMeta, StreamMode, StreamSpec, StreamStatus,
};
pub use names::{ShardId, StreamName};
pub use reshard::{OnDemandScaling, Reshard, ReshardOutcome, SHARD_COUNT_UPDATES_PER_DAY};
pub use routing::{even_ranges, hash_key_of, HASH_KEY_MAX};
pub use sequence::SequenceNumber;
pub use sluice_log::{
    Clock, LogConfig, Record, StoredRecord, SyncPolicy, SystemClock, DATA_BYTES_MAX,
};
pub use streams::{
    LimitsSummary, PutOutcome, PutResult, ReadResult, ShardCursor, ShardStart, ShardView,
    StreamView, Streams, TAGS_MAX,
};
pub use throughput::ThroughputConfig;
