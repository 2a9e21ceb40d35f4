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
//! - [`consumer`] reads shards for consumers: [`ShardReader`] follows one shard from any
//!   [`ShardStart`] to its end (pull-based [`ShardReader::next_batch`] in [`ShardBatch`]es
//!   bounded by [`ReaderOptions`], woken by durable commits, ending with the [`ShardEnd`]'s
//!   children), what SubscribeToShard serves; [`StreamConsumer`] follows a whole stream, handing
//!   out a [`ShardLease`] per shard whose parents are finished, from its checkpoints, what event
//!   source mappings and delivery streams run on. The module states the one rule for blocking
//!   work (`spawn_blocking` for every call that touches a file).
//! - [`checkpoint`] keeps those consumers' durable [`Checkpoint`]s per (consumer, stream,
//!   shard) in the catalog, committed atomically with the consumer's own state
//!   ([`Streams::commit_checkpoints`]), and removed with their stream.
//! - [`shard_log`] is the seam to the storage engine: [`ShardLog`] (one shard's log) and
//!   [`ShardLogStore`] (where logs live), implemented by `sluice-log` ([`LocalLogs`]); a
//!   replicated back end plugs in through [`Streams::open_with_logs`].
//! - [`StreamName`], [`ShardId`] and [`SequenceNumber`] are validated identities.
//! - [`StreamMeta`] / [`ShardMeta`] are what the catalog stores of a stream.
//!
//! This crate speaks the stream model (shards, hash keys, sequence numbers) but no wire format:
//! error messages and JSON/CBOR shapes belong to `sluice-kinesis`.

pub mod catalog;
pub mod checkpoint;
mod config;
pub mod consumer;
mod consumers;
mod error;
mod health;
pub mod lineage;
mod meta;
mod names;
mod reshard;
mod routing;
mod sequence;
pub mod shard_log;
mod streams;
mod throughput;

pub use checkpoint::{
    Checkpoint, CheckpointRow, ConsumerName, ShardCheckpoint, StateWrite,
    CHECKPOINT_COMMIT_WRITES_MAX, CONSUMER_STATE_KEY_BYTES_MAX, CONSUMER_STATE_VALUE_BYTES_MAX,
};
pub use config::StreamsConfig;
pub use consumer::{
    Checkpointer, ConsumeError, InitialPosition, OnTrimmed, ReaderOptions, ReaderStats, ShardBatch,
    ShardEnd, ShardLease, ShardReader, StreamConsumer, StreamConsumerOptions,
};
pub use consumers::{ConsumerView, CONSUMERS_CREATING_MAX, CONSUMERS_MAX};
pub use error::StreamsError;
pub use health::{LogHealth, ShardHealth};
pub use meta::{
    ConsumerMeta, ConsumerStatus, ShardMeta, StreamMeta, StreamMode, StreamSpec, StreamStatus,
};
pub use names::{ShardId, StreamName};
pub use reshard::{OnDemandScaling, Reshard, ReshardOutcome, SHARD_COUNT_UPDATES_PER_DAY};
pub use routing::{even_ranges, hash_key_of, HASH_KEY_MAX};
pub use sequence::SequenceNumber;
pub use shard_log::{LocalLogs, ShardLog, ShardLogStore};
pub use sluice_log::{
    Clock, Completion, Listener, LogConfig, LogError, ReadBatch, Record, StoredRecord, SyncPolicy,
    SystemClock, DATA_BYTES_MAX,
};
pub use streams::{
    LimitsSummary, PutOutcome, PutResult, ReadResult, ShardCursor, ShardStart, ShardView,
    StreamView, Streams, TAGS_MAX,
};
pub use throughput::ThroughputConfig;
