//! A read-only view of every shard's health, for the server's `/health` and `/metrics`.

use std::sync::PoisonError;

pub use sluice_log::LogHealth;

use crate::meta::StreamStatus;
use crate::names::ShardId;
use crate::streams::Streams;

/// One shard's state, as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardHealth {
    pub stream: String,
    pub shard_id: ShardId,
    /// Routed to (not closed by a reshard).
    pub open: bool,
    /// The shard log's writer: healthy, out of space, poisoned or recovering.
    pub log: LogHealth,
}

impl ShardHealth {
    /// Takes appends (a closed shard takes none, and needs none).
    pub fn is_writable(&self) -> bool {
        !self.open || self.log == LogHealth::Healthy
    }
}

impl Streams {
    /// Every shard that still has a log, of every stream not being deleted, in stream name
    /// and shard order. Takes each stream's locks briefly, one stream at a time.
    pub fn shard_health(&self) -> Vec<ShardHealth> {
        let streams: Vec<_> = self
            .streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, s)| (name.clone(), s.clone()))
            .collect();
        let mut out = Vec::new();
        for (name, stream) in streams {
            if stream.meta().status == StreamStatus::Deleting {
                continue;
            }
            for (index, shard) in &stream.topo().shards {
                out.push(ShardHealth {
                    stream: name.clone(),
                    shard_id: ShardId(*index),
                    open: shard.closed_end().is_none(),
                    log: shard.log.health(),
                });
            }
        }
        out
    }
}
