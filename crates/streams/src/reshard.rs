//! Resharding: SplitShard, MergeShards, UpdateShardCount (uniform scaling), UpdateStreamMode
//! and the ON_DEMAND scaler.
//!
//! A reshard is planned on a copy of the stream's metadata, then committed in one step while
//! the stream's topology is write-locked: no put can route to a parent any more, the parents'
//! writers drain (every record routed to them is durable), their end offsets become the
//! closing points, the catalog records parents and children in one transaction, and the new
//! routes go live. A crash before the catalog write leaves the old shards open and empty child
//! directories that the next open removes; a crash after it leaves the new ones.
//!
//! Children's sequence numbers are above their parents' because a child's epoch (the leading
//! part of its sequence numbers) is greater than each parent's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError};

use crate::error::StreamsError;
use crate::meta::{ShardMeta, StreamMeta, StreamMode, StreamStatus};
use crate::names::ShardId;
use crate::routing::even_ranges;
use crate::streams::{Stream, Streams, Topology};

/// UpdateShardCount calls allowed per stream in any 24 hours, as on AWS.
pub const SHARD_COUNT_UPDATES_PER_DAY: usize = 10;
const DAY_MS: i64 = 24 * 3_600_000;

/// A change of a stream's shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reshard {
    /// Split `shard` so that `new_starting_hash_key` and above go to the second child.
    Split {
        shard: ShardId,
        new_starting_hash_key: u128,
    },
    /// Merge two adjacent open shards into one.
    Merge { shard: ShardId, adjacent: ShardId },
    /// Split and merge until there are `target` open shards of equal ranges.
    Uniform { target: u32 },
}

/// Open shard counts before and after a reshard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReshardOutcome {
    pub previous_open: u32,
    pub open: u32,
}

/// Settings of the ON_DEMAND scaler. (De)serializes as the `[on_demand]` section of sluice's
/// configuration; check it with [`OnDemandScaling::validate`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnDemandScaling {
    /// A shard is hot while its offered load is above this fraction of a shard's write quota
    /// (1 MiB/s or 1,000 records/s, whichever is reached first). Default 0.8.
    pub split_load: f64,
    /// How long a shard must stay hot before it is split, in milliseconds. Default 30000.
    pub split_after_ms: i64,
    /// Two adjacent shards are cold while both are below this fraction. Default 0.1.
    pub merge_load: f64,
    /// How long both must stay cold before they are merged, in milliseconds. Default 900000
    /// (15 minutes).
    pub merge_after_ms: i64,
    /// An ON_DEMAND stream is never merged below this many open shards. Default 4.
    pub min_shards: u32,
}

impl OnDemandScaling {
    /// Needs `0 <= merge_load < split_load` (a shard cannot be hot and cold at once) and
    /// `min_shards >= 1`. The error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.merge_load.is_nan() || self.merge_load < 0.0 {
            return Err(format!(
                "merge_load must be at least 0, got {}",
                self.merge_load
            ));
        }
        if self.split_load.is_nan() || self.merge_load >= self.split_load {
            return Err(format!(
                "split_load ({}) must be above merge_load ({})",
                self.split_load, self.merge_load
            ));
        }
        if self.min_shards == 0 {
            return Err("min_shards must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for OnDemandScaling {
    fn default() -> Self {
        OnDemandScaling {
            split_load: 0.8,
            split_after_ms: 30_000,
            merge_load: 0.1,
            merge_after_ms: 15 * 60_000,
            min_shards: 4,
        }
    }
}

/// What the scaler remembers of a stream between ticks.
#[derive(Debug, Default)]
pub(crate) struct ScalingState {
    last_ms: Option<i64>,
    /// Per open shard: since when it has been hot, and since when cold.
    shards: HashMap<u32, (Option<i64>, Option<i64>)>,
}

/// Who asked for a reshard: API calls are refused while the stream is UPDATING; the scaler
/// only runs on ACTIVE streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Api,
    Scaler,
}

/// The metadata-level plan of a reshard: the new metadata, and the pre-existing shards it
/// closes (their closing offsets are filled in at commit).
struct Plan {
    next: StreamMeta,
    closing: Vec<u32>,
    created: Vec<u32>,
}

impl Plan {
    fn new(meta: &StreamMeta) -> Plan {
        Plan {
            next: meta.clone(),
            closing: Vec::new(),
            created: Vec::new(),
        }
    }

    /// The error for a shard the plan should hold but does not: a bug in the plan.
    fn missing(&self, index: u32) -> StreamsError {
        StreamsError::internal(format!(
            "the reshard plan of stream {} has no shard {index}",
            self.next.name
        ))
    }

    fn shard(&self, index: u32) -> Result<&ShardMeta, StreamsError> {
        self.next.shard(index).ok_or_else(|| self.missing(index))
    }

    fn shard_mut(&mut self, index: u32) -> Result<&mut ShardMeta, StreamsError> {
        match self.next.shards.iter().position(|s| s.index == index) {
            Some(at) => Ok(&mut self.next.shards[at]),
            None => Err(self.missing(index)),
        }
    }

    fn open_range(&self, index: u32) -> Result<(u128, u128), StreamsError> {
        Ok(self.shard(index)?.hash_range())
    }

    fn close(&mut self, index: u32, now: i64) -> Result<(), StreamsError> {
        let created = self.created.contains(&index);
        let name = self.next.name.clone();
        let s = self.shard_mut(index)?;
        if !s.is_open() {
            return Err(StreamsError::internal(format!(
                "the reshard plan of stream {name} closes shard {index} twice"
            )));
        }
        s.closed_ms = Some(now);
        if created {
            // Made and closed within this reshard: it never takes a record.
            s.closed_end_offset = Some(0);
        } else {
            s.closed_end_offset = Some(u64::MAX); // filled in at commit
            self.closing.push(index);
        }
        Ok(())
    }

    fn create(
        &mut self,
        range: (u128, u128),
        parent: u32,
        adjacent: Option<u32>,
        now: i64,
    ) -> Result<u32, StreamsError> {
        let mut epoch_floor = 0;
        for p in [Some(parent), adjacent].into_iter().flatten() {
            epoch_floor = epoch_floor.max(self.shard(p)?.epoch + 1);
        }
        let index = self.next.next_shard_index;
        self.next.next_shard_index += 1;
        self.next.shards.push(ShardMeta {
            index,
            hash_start: range.0,
            hash_end: range.1,
            parent: Some(parent),
            adjacent_parent: adjacent,
            epoch: (now.max(0) as u64).max(epoch_floor),
            created_ms: now,
            closed_end_offset: None,
            closed_ms: None,
        });
        self.created.push(index);
        Ok(index)
    }

    fn split(&mut self, index: u32, at: u128, now: i64) -> Result<(u32, u32), StreamsError> {
        let (start, end) = self.open_range(index)?;
        debug_assert!(start < at && at <= end);
        self.close(index, now)?;
        let low = self.create((start, at - 1), index, None, now)?;
        let high = self.create((at, end), index, None, now)?;
        Ok((low, high))
    }

    fn merge(&mut self, index: u32, adjacent: u32, now: i64) -> Result<u32, StreamsError> {
        let (a, b) = (self.open_range(index)?, self.open_range(adjacent)?);
        debug_assert!(a.1.checked_add(1) == Some(b.0));
        self.close(index, now)?;
        self.close(adjacent, now)?;
        self.create((a.0.min(b.0), a.1.max(b.1)), index, Some(adjacent), now)
    }

    /// Splits at every boundary of `target` equal ranges, then merges the pieces within each
    /// range: every step is a legal split or merge, so lineage stays parent/adjacent-parent.
    fn uniform(&mut self, target: u32, now: i64) -> Result<(), StreamsError> {
        let targets = even_ranges(target);
        let open = self.next.open_ranges();
        let mut pieces = Vec::new();
        for (start, end, index) in open {
            let mut current = index;
            for boundary in targets.iter().skip(1).map(|t| t.0) {
                if start < boundary && boundary <= end {
                    let (low, high) = self.split(current, boundary, now)?;
                    pieces.push(low);
                    current = high;
                }
            }
            pieces.push(current);
        }
        // Pieces are in hash order and each lies inside one target range.
        let mut by_target: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        for p in pieces {
            let start = self.open_range(p)?.0;
            let t = targets.partition_point(|r| r.0 <= start) - 1;
            by_target.entry(t).or_default().push(p);
        }
        for (_, group) in by_target {
            let mut it = group.into_iter();
            // A group is only made by pushing a piece into it, so it is never empty.
            let Some(mut acc) = it.next() else {
                continue;
            };
            for p in it {
                acc = self.merge(acc, p, now)?;
            }
        }
        Ok(())
    }
}

impl Streams {
    /// Changes a stream's shards as `op` says, checking AWS's rules first.
    pub fn reshard(&self, name: &str, op: Reshard) -> Result<ReshardOutcome, StreamsError> {
        self.reshard_from(name, op, Origin::Api)
    }

    fn reshard_from(
        &self,
        name: &str,
        op: Reshard,
        origin: Origin,
    ) -> Result<ReshardOutcome, StreamsError> {
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let stream = self.get(name)?;
        let now = self.now_ms();
        let meta = stream.meta().clone();
        let status = self.effective_status(&meta, now);
        if status != StreamStatus::Active {
            return Err(StreamsError::StreamNotActive {
                name: name.to_string(),
                status,
            });
        }
        let previous_open = meta.open_shard_count();
        let open_shard = |id: ShardId| -> Result<&ShardMeta, StreamsError> {
            let s = meta
                .shard(id.0)
                .ok_or_else(|| StreamsError::ShardNotFound {
                    stream: name.to_string(),
                    shard_id: id.to_string(),
                })?;
            if !s.is_open() {
                return Err(StreamsError::ShardClosed {
                    stream: name.to_string(),
                    shard_id: id.to_string(),
                });
            }
            Ok(s)
        };
        if origin == Origin::Api && meta.mode == StreamMode::OnDemand {
            return Err(StreamsError::WrongMode {
                stream: name.to_string(),
                mode: meta.mode,
            });
        }
        let mut plan = Plan::new(&meta);
        match op {
            Reshard::Split {
                shard,
                new_starting_hash_key: at,
            } => {
                let (start, end) = open_shard(shard)?.hash_range();
                // AWS's rule: StartingHashKey + 1 < NewStartingHashKey < EndingHashKey.
                if at <= start.saturating_add(1) || at >= end {
                    return Err(StreamsError::SplitKeyOutOfRange {
                        stream: name.to_string(),
                        shard_id: shard.to_string(),
                        key: at,
                        start,
                        end,
                    });
                }
                self.check_shard_limit(1)?;
                plan.split(shard.0, at, now)?;
            }
            Reshard::Merge { shard, adjacent } => {
                let a = open_shard(shard)?.hash_range();
                let b = open_shard(adjacent)?.hash_range();
                // AWS takes the pair in hash order only: ShardToMerge is the lower one.
                if a.1.checked_add(1) != Some(b.0) {
                    return Err(StreamsError::ShardsNotAdjacent {
                        stream: name.to_string(),
                        shard_id: shard.to_string(),
                        adjacent_shard_id: adjacent.to_string(),
                    });
                }
                plan.merge(shard.0, adjacent.0, now)?;
            }
            Reshard::Uniform { target } => {
                if origin == Origin::Api {
                    if target.saturating_mul(2) < previous_open
                        || target > previous_open.saturating_mul(2)
                    {
                        return Err(StreamsError::ShardCountOutOfRange {
                            stream: name.to_string(),
                            current: previous_open,
                            target,
                        });
                    }
                    let recent = meta
                        .shard_count_updates_ms
                        .iter()
                        .filter(|t| **t > now - DAY_MS)
                        .count();
                    if recent >= SHARD_COUNT_UPDATES_PER_DAY {
                        return Err(StreamsError::ShardCountUpdatesExceeded {
                            stream: name.to_string(),
                            limit: SHARD_COUNT_UPDATES_PER_DAY as u32,
                        });
                    }
                    plan.next
                        .shard_count_updates_ms
                        .retain(|t| *t > now - DAY_MS);
                    plan.next.shard_count_updates_ms.push(now);
                }
                if target > previous_open {
                    self.check_shard_limit(target - previous_open)?;
                }
                plan.uniform(target, now)?;
            }
        }
        plan.next.status = StreamStatus::Updating;
        plan.next.status_ms = now;
        let open = plan.next.open_shard_count();
        self.commit(&stream, plan)?;
        tracing::info!(stream = %name, ?op, from = previous_open, to = open, origin = ?origin, "stream resharded");
        Ok(ReshardOutcome {
            previous_open,
            open,
        })
    }

    fn check_shard_limit(&self, more: u32) -> Result<(), StreamsError> {
        let open = self.open_shard_count();
        if open + more > self.config.shard_limit {
            return Err(StreamsError::ShardLimitExceeded {
                requested: more,
                open,
                limit: self.config.shard_limit,
            });
        }
        Ok(())
    }

    /// Makes a planned reshard real; see the module documentation for the order of steps.
    fn commit(&self, stream: &Stream, mut plan: Plan) -> Result<(), StreamsError> {
        let uid = plan.next.uid;
        let mut created = BTreeMap::new();
        for index in &plan.created {
            let meta = plan.shard(*index)?.clone();
            created.insert(*index, self.open_shard(uid, &meta, true)?);
        }
        let mut meta = stream.meta.write().unwrap_or_else(PoisonError::into_inner);
        let mut topo = stream.topo.write().unwrap_or_else(PoisonError::into_inner);
        let closing = std::mem::take(&mut plan.closing);
        let mut ends = Vec::with_capacity(closing.len());
        for index in closing {
            let shard = &topo.shards[&index];
            // Everything queued before the write lock was taken is durable after this.
            shard.log.sync()?;
            let end = shard.log.end_offset();
            ends.push((index, end));
            plan.shard_mut(index)?.closed_end_offset = Some(end);
        }
        self.catalog.put(&plan.next)?;
        let mut shards = topo.shards.clone();
        for (index, end) in ends {
            shards[&index].close_at(end);
        }
        for (index, shard) in created {
            if let Some(end) = plan.next.shard(index).and_then(|s| s.closed_end_offset) {
                shard.close_at(end);
            }
            shards.insert(index, shard);
        }
        *topo = Arc::new(Topology::new(shards, &plan.next));
        *meta = plan.next;
        Ok(())
    }

    /// Switches a stream between PROVISIONED and ON_DEMAND. The shards stay as they are; an
    /// ON_DEMAND stream is then scaled by sluice.
    pub fn update_mode(&self, name: &str, mode: StreamMode) -> Result<(), StreamsError> {
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let stream = self.get(name)?;
        let now = self.now_ms();
        let on_demand = self.on_demand_count();
        let mut meta = stream.meta.write().unwrap_or_else(PoisonError::into_inner);
        let status = self.effective_status(&meta, now);
        if status != StreamStatus::Active {
            return Err(StreamsError::StreamNotActive {
                name: name.to_string(),
                status,
            });
        }
        if meta.mode == mode {
            // Nothing to change; AWS tools call this to converge, so it is not an error.
            return Ok(());
        }
        if mode == StreamMode::OnDemand && on_demand >= self.config.on_demand_stream_limit {
            return Err(StreamsError::OnDemandLimitExceeded {
                limit: self.config.on_demand_stream_limit,
            });
        }
        let mut next = meta.clone();
        next.mode = mode;
        next.status = StreamStatus::Updating;
        next.status_ms = now;
        self.catalog.put(&next)?;
        *meta = next;
        tracing::info!(stream = %name, ?mode, "stream capacity mode changed");
        Ok(())
    }

    /// One step of ON_DEMAND scaling for `stream`: measures each open shard's offered load
    /// since the last tick, splits a shard that has been hot long enough, or else merges two
    /// adjacent shards that have both been cold long enough. At most one reshard per tick.
    pub(crate) fn scale_on_demand(&self, stream: &Stream, now: i64) {
        let (name, mode, open) = {
            let m = stream.meta();
            let open: Vec<(u128, u128, u32)> = stream.topo().routes.clone();
            (m.name.clone(), m.mode, open)
        };
        let topo = stream.topo();
        let mut state = stream
            .scaling
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let elapsed = state.last_ms.map_or(0, |t| now - t);
        state.last_ms = Some(now);
        // Drain the meters of every shard, scaled or not, so old load never counts later.
        let loads: Vec<(u32, u64, u64)> = topo
            .shards
            .values()
            .map(|s| {
                let (r, b) = s.throughput.take_load();
                (s.index, r, b)
            })
            .collect();
        if mode != StreamMode::OnDemand || elapsed <= 0 {
            state.shards.clear();
            return;
        }
        let quota = self.config.throughput;
        let cfg = self.config.on_demand;
        state
            .shards
            .retain(|index, _| open.iter().any(|r| r.2 == *index));
        for (index, records, bytes) in loads {
            if !open.iter().any(|r| r.2 == index) {
                continue;
            }
            let per_sec = |n: u64| n as f64 * 1000.0 / elapsed as f64;
            let load = (per_sec(records) / quota.write_records_per_sec as f64)
                .max(per_sec(bytes) / quota.write_bytes_per_sec as f64);
            let e = state.shards.entry(index).or_default();
            e.0 = if load > cfg.split_load {
                e.0.or(Some(now))
            } else {
                None
            };
            e.1 = if load < cfg.merge_load {
                e.1.or(Some(now))
            } else {
                None
            };
        }
        let hot = open.iter().find(|r| {
            state
                .shards
                .get(&r.2)
                .and_then(|e| e.0)
                .is_some_and(|since| now - since >= cfg.split_after_ms)
        });
        let op = if let Some(&(start, end, index)) = hot {
            (end - start > 3).then(|| Reshard::Split {
                shard: ShardId(index),
                new_starting_hash_key: start + (end - start) / 2 + 1,
            })
        } else if open.len() as u32 > cfg.min_shards {
            let cold = |i: u32| {
                state
                    .shards
                    .get(&i)
                    .and_then(|e| e.1)
                    .is_some_and(|since| now - since >= cfg.merge_after_ms)
            };
            open.windows(2)
                .find(|w| cold(w[0].2) && cold(w[1].2))
                .map(|w| Reshard::Merge {
                    shard: ShardId(w[0].2),
                    adjacent: ShardId(w[1].2),
                })
        } else {
            None
        };
        let Some(op) = op else { return };
        state.shards.clear();
        drop(state);
        match self.reshard_from(&name, op, Origin::Scaler) {
            Ok(o) => {
                tracing::info!(stream = %name, ?op, from = o.previous_open, to = o.open, "on-demand scaling")
            }
            Err(e) => {
                tracing::warn!(stream = %name, ?op, error = %e, "on-demand scaling step failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::StreamMode;

    fn meta(count: u32) -> StreamMeta {
        StreamMeta {
            name: "s".into(),
            uid: 1,
            status: StreamStatus::Active,
            status_ms: 0,
            created_ms: 0,
            retention_hours: 24,
            mode: StreamMode::Provisioned,
            shards: even_ranges(count)
                .into_iter()
                .enumerate()
                .map(|(i, (a, b))| ShardMeta {
                    index: i as u32,
                    hash_start: a,
                    hash_end: b,
                    parent: None,
                    adjacent_parent: None,
                    epoch: 10,
                    created_ms: 0,
                    closed_end_offset: None,
                    closed_ms: None,
                })
                .collect(),
            tags: Default::default(),
            max_record_size_kib: 1024,
            next_shard_index: count,
            consumers: Vec::new(),
            shard_count_updates_ms: Vec::new(),
            shard_level_metrics: Vec::new(),
        }
    }

    fn open_ranges(m: &StreamMeta) -> Vec<(u128, u128)> {
        let mut r: Vec<_> = m
            .shards
            .iter()
            .filter(|s| s.is_open())
            .map(|s| s.hash_range())
            .collect();
        r.sort_unstable();
        r
    }

    #[test]
    fn uniform_scaling_reaches_even_ranges_through_legal_steps() {
        for from in 1..=12u32 {
            for to in from.div_ceil(2)..=from * 2 {
                let mut plan = Plan::new(&meta(from));
                plan.uniform(to, 100).unwrap();
                assert_eq!(open_ranges(&plan.next), even_ranges(to), "{from} -> {to}");
                // Every new shard's parents are closed, and a child's epoch is above them.
                for s in &plan.next.shards {
                    for p in [s.parent, s.adjacent_parent].into_iter().flatten() {
                        let parent = plan.next.shard(p).unwrap();
                        assert!(!parent.is_open());
                        assert!(s.epoch > parent.epoch);
                    }
                }
                // Indexes stay sorted for binary search.
                assert!(plan.next.shards.windows(2).all(|w| w[0].index < w[1].index));
            }
        }
    }

    #[test]
    fn uniform_scaling_from_uneven_ranges_after_splits_and_merges() {
        // A small deterministic generator: the test needs variety, not a dependency.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let mut plan = Plan::new(&meta(1 + (next() % 4) as u32));
            for _ in 0..(next() % 6) {
                let open = plan.next.open_ranges();
                let (start, end, index) = open[(next() as usize) % open.len()];
                if end - start > 4 && next() % 3 != 0 {
                    let at = start + 2 + (next() as u128 % (end - start - 3));
                    plan.split(index, at, 100).unwrap();
                } else if open.len() > 1 {
                    let i = (next() as usize) % (open.len() - 1);
                    plan.merge(open[i].2, open[i + 1].2, 100).unwrap();
                }
            }
            let n = plan.next.open_shard_count();
            let target = n.div_ceil(2) + (next() as u32 % (2 * n - n.div_ceil(2) + 1));
            let before = plan.next.shards.len();
            plan.uniform(target, 200).unwrap();
            assert_eq!(open_ranges(&plan.next), even_ranges(target));
            for s in &plan.next.shards[before..] {
                let parents: Vec<&ShardMeta> = [s.parent, s.adjacent_parent]
                    .into_iter()
                    .flatten()
                    .map(|p| plan.next.shard(p).unwrap())
                    .collect();
                assert!(!parents.is_empty() && parents.iter().all(|p| !p.is_open()));
                // A child covers exactly its parents' ranges.
                let lo = parents.iter().map(|p| p.hash_range().0).min().unwrap();
                let hi = parents.iter().map(|p| p.hash_range().1).max().unwrap();
                let (a, b) = s.hash_range();
                if parents.len() == 2 {
                    assert_eq!((a, b), (lo, hi));
                } else {
                    assert!(lo <= a && b <= hi);
                }
            }
        }
    }

    #[test]
    fn doubling_splits_each_shard_once() {
        let mut plan = Plan::new(&meta(2));
        plan.uniform(4, 100).unwrap();
        assert_eq!(plan.next.shards.len(), 6);
        assert_eq!(plan.closing, vec![0, 1]);
        let mut plan = Plan::new(&meta(4));
        plan.uniform(2, 100).unwrap();
        assert_eq!(plan.next.shards.len(), 6);
        assert_eq!(plan.next.shards[4].parent, Some(0));
        assert_eq!(plan.next.shards[4].adjacent_parent, Some(1));
    }
}
