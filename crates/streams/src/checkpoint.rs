//! Durable checkpoints of stream consumers: per (consumer name, stream, shard) the point up to
//! which the consumer has processed the shard, and whether it has finished the shard (read it to
//! its end, so its children may start). Stored in the catalog's `checkpoints` table, beside a
//! `consumer_state` table where each consumer keeps its own bookkeeping; one
//! [`Streams::commit_checkpoints`] call is one redb write transaction over both, so a consumer
//! can move several shards and its own state forward atomically.
//!
//! A consumer name here is the identity of a [`StreamConsumer`](crate::StreamConsumer) (an event
//! source mapping's id, a delivery stream's name), not a registered (enhanced fan-out) consumer.
//!
//! Checkpoints of a deleted stream are removed with it, in the transaction that removes the
//! stream from the catalog. Every row also carries the stream's uid, and rows whose uid is not
//! the live stream's are ignored, so a commit racing a deletion can never apply to a stream
//! re-created under the same name; the next [`Streams::open`] removes such rows.
//!
//! Every function here writes or reads the catalog file (a commit fsyncs): call them from
//! blocking threads, never on an async worker (see [`consumer`](crate::consumer)).

use std::collections::BTreeMap;
use std::fmt;

use redb::{ReadableTable, TableDefinition};

use crate::catalog::Catalog;
use crate::consumer::ConsumeError;
use crate::error::StreamsError;
use crate::names::ShardId;
use crate::sequence::SequenceNumber;
use crate::streams::Streams;

/// (consumer name, stream name, shard index) → a [`ROW_BYTES`] row.
pub(crate) const CHECKPOINTS: TableDefinition<(&str, &str, u32), &[u8]> =
    TableDefinition::new("checkpoints");
/// (consumer name, key) → the consumer's bytes.
pub(crate) const CONSUMER_STATE: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("consumer_state");

/// Largest value of one consumer-state entry: a Lambda tumbling window's state (at most 1 MB)
/// with its envelope.
pub const CONSUMER_STATE_VALUE_BYTES_MAX: usize = (1 << 20) + 4096;
/// Longest consumer-state key.
pub const CONSUMER_STATE_KEY_BYTES_MAX: usize = 256;
/// Most shard checkpoints plus state writes in one commit.
pub const CHECKPOINT_COMMIT_WRITES_MAX: usize = 10_000;

const ROW_VERSION: u8 = 1;
const FLAG_FINISHED: u8 = 1;
/// version u8 | flags u8 | stream uid u64 | shard epoch u64 | position u64 | updated ms i64,
/// little-endian.
const ROW_BYTES: usize = 34;
const _: () = assert!(ROW_BYTES == 1 + 1 + 8 + 8 + 8 + 8);

/// The name a stream consumer checkpoints under: 1 to 256 characters of
/// `[a-zA-Z0-9_.:/@-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsumerName(String);

impl ConsumerName {
    pub const LEN_MAX: usize = 256;

    pub fn new(name: &str) -> Option<ConsumerName> {
        let ok = !name.is_empty()
            && name.len() <= Self::LEN_MAX
            && name.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'@' | b'-')
            });
        ok.then(|| ConsumerName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConsumerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How far a consumer got in one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every record up to this point has been processed: a record's sequence number, or a
    /// batch's continuation (a point between records). Reading resumes AFTER it.
    pub sequence_number: SequenceNumber,
    /// The shard was read to its end and everything in it processed: its children may start.
    pub finished: bool,
}

/// One shard's checkpoint in a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardCheckpoint {
    pub shard_id: ShardId,
    pub checkpoint: Checkpoint,
}

/// A change to the consumer's own state, committed with its checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWrite {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

/// A stored checkpoint, as listed for a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub stream: String,
    /// The uid of the stream the checkpoint was made in (see `StreamMeta::uid`).
    pub stream_uid: u64,
    pub shard_id: ShardId,
    pub checkpoint: Checkpoint,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    stream_uid: u64,
    checkpoint: Checkpoint,
    updated_ms: i64,
}

impl Row {
    fn encode(&self, shard_index: u32) -> [u8; ROW_BYTES] {
        let seq = self.checkpoint.sequence_number;
        assert_eq!(
            seq.shard_index, shard_index,
            "a checkpoint is of its own shard"
        );
        let mut out = [0u8; ROW_BYTES];
        out[0] = ROW_VERSION;
        out[1] = if self.checkpoint.finished {
            FLAG_FINISHED
        } else {
            0
        };
        out[2..10].copy_from_slice(&self.stream_uid.to_le_bytes());
        out[10..18].copy_from_slice(&seq.shard_epoch.to_le_bytes());
        out[18..26].copy_from_slice(&seq.position.to_le_bytes());
        out[26..34].copy_from_slice(&self.updated_ms.to_le_bytes());
        out
    }

    fn decode(shard_index: u32, bytes: &[u8]) -> Result<Row, StreamsError> {
        if bytes.len() != ROW_BYTES || bytes[0] != ROW_VERSION || bytes[1] & !FLAG_FINISHED != 0 {
            return Err(StreamsError::Catalog(format!(
                "checkpoint row of {} bytes, version {:?}: not one this version reads",
                bytes.len(),
                bytes.first()
            )));
        }
        // In range after the length check above; an error rather than a panic all the same.
        let u64_at = |i: usize| {
            bytes
                .get(i..i + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
                .ok_or_else(|| {
                    StreamsError::Catalog(format!(
                        "checkpoint row of {} bytes has no 8 bytes at {i}",
                        bytes.len()
                    ))
                })
        };
        Ok(Row {
            stream_uid: u64_at(2)?,
            checkpoint: Checkpoint {
                sequence_number: SequenceNumber {
                    shard_epoch: u64_at(10)?,
                    shard_index,
                    position: u64_at(18)?,
                },
                finished: bytes[1] & FLAG_FINISHED != 0,
            },
            updated_ms: u64_at(26)? as i64,
        })
    }
}

impl Catalog {
    /// Removes every checkpoint of `stream` (whatever its uid): part of removing the stream.
    pub(crate) fn remove_checkpoints_of(
        tx: &redb::WriteTransaction,
        stream: &str,
    ) -> Result<(), StreamsError> {
        let mut table = tx.open_table(CHECKPOINTS).map_err(StreamsError::catalog)?;
        table
            .retain(|(_, s, _), _| s != stream)
            .map_err(StreamsError::catalog)
    }

    /// Removes checkpoints whose stream is not `live` (name → uid): rows a commit wrote while
    /// their stream was being deleted.
    pub(crate) fn remove_stale_checkpoints(
        &self,
        live: &BTreeMap<String, u64>,
    ) -> Result<usize, StreamsError> {
        let stale = |stream: &str, index: u32, v: &[u8]| {
            !Row::decode(index, v).is_ok_and(|row| live.get(stream) == Some(&row.stream_uid))
        };
        // Look first: opening should not cost a catalog commit when there is nothing to do.
        {
            let tx = self.db.begin_read().map_err(StreamsError::catalog)?;
            let table = tx.open_table(CHECKPOINTS).map_err(StreamsError::catalog)?;
            let mut any = false;
            for row in table.iter().map_err(StreamsError::catalog)? {
                let (k, v) = row.map_err(StreamsError::catalog)?;
                let (_, stream, index) = k.value();
                if stale(stream, index, v.value()) {
                    any = true;
                    break;
                }
            }
            if !any {
                return Ok(0);
            }
        }
        let tx = self.db.begin_write().map_err(StreamsError::catalog)?;
        let mut removed = 0;
        {
            let mut table = tx.open_table(CHECKPOINTS).map_err(StreamsError::catalog)?;
            table
                .retain(|(_, stream, index), v| {
                    let keep = !stale(stream, index, v);
                    removed += usize::from(!keep);
                    keep
                })
                .map_err(StreamsError::catalog)?;
        }
        tx.commit().map_err(StreamsError::catalog)?;
        Ok(removed)
    }
}

fn check_state_write(w: &StateWrite) -> Result<(), ConsumeError> {
    let (key, value_bytes) = match w {
        StateWrite::Put { key, value } => (key, value.len()),
        StateWrite::Delete { key } => (key, 0),
    };
    if key.is_empty()
        || key.len() > CONSUMER_STATE_KEY_BYTES_MAX
        || value_bytes > CONSUMER_STATE_VALUE_BYTES_MAX
    {
        return Err(ConsumeError::StateTooLarge {
            key_bytes: key.len(),
            value_bytes,
        });
    }
    Ok(())
}

impl Streams {
    /// The consumer's checkpoints in the live `stream`, by shard. Rows of an older stream of
    /// the same name are not returned.
    pub fn load_checkpoints(
        &self,
        consumer: &ConsumerName,
        stream: &str,
    ) -> Result<BTreeMap<ShardId, Checkpoint>, StreamsError> {
        let uid = self.get(stream)?.meta().uid;
        let tx = self
            .catalog
            .db
            .begin_read()
            .map_err(StreamsError::catalog)?;
        let table = tx.open_table(CHECKPOINTS).map_err(StreamsError::catalog)?;
        let mut out = BTreeMap::new();
        let rows = table
            .range((consumer.as_str(), stream, 0u32)..=(consumer.as_str(), stream, u32::MAX))
            .map_err(StreamsError::catalog)?;
        for row in rows {
            let (k, v) = row.map_err(StreamsError::catalog)?;
            let (_, _, index) = k.value();
            let row = Row::decode(index, v.value())?;
            if row.stream_uid == uid {
                out.insert(ShardId(index), row.checkpoint);
            }
        }
        Ok(out)
    }

    /// Stores `checkpoints` of shards of `stream` and applies `state` to the consumer's own
    /// state, in one transaction: all of it is durable when this returns, or none of it.
    /// A checkpoint may move backwards (a consumer rewinding on purpose); its sequence number
    /// must be of its shard.
    pub fn commit_checkpoints(
        &self,
        consumer: &ConsumerName,
        stream: &str,
        checkpoints: &[ShardCheckpoint],
        state: &[StateWrite],
    ) -> Result<(), ConsumeError> {
        let writes = checkpoints.len() + state.len();
        if writes > CHECKPOINT_COMMIT_WRITES_MAX {
            return Err(ConsumeError::CommitTooLarge {
                writes,
                limit: CHECKPOINT_COMMIT_WRITES_MAX,
            });
        }
        state.iter().try_for_each(check_state_write)?;
        let now = self.now_ms();
        let mut rows = Vec::with_capacity(checkpoints.len());
        {
            let s = self.get(stream)?;
            let meta = s.meta();
            for c in checkpoints {
                let shard =
                    meta.shard(c.shard_id.0)
                        .ok_or_else(|| StreamsError::ShardNotFound {
                            stream: stream.to_string(),
                            shard_id: c.shard_id.to_string(),
                        })?;
                let seq = c.checkpoint.sequence_number;
                if seq.shard_index != shard.index || seq.shard_epoch != shard.epoch {
                    return Err(StreamsError::SequenceNotInShard {
                        stream: stream.to_string(),
                        shard_id: c.shard_id.to_string(),
                        sequence_number: seq.to_string(),
                    }
                    .into());
                }
                let row = Row {
                    stream_uid: meta.uid,
                    checkpoint: c.checkpoint,
                    updated_ms: now,
                };
                rows.push((shard.index, row.encode(shard.index)));
            }
        }
        let tx = self
            .catalog
            .db
            .begin_write()
            .map_err(StreamsError::catalog)?;
        {
            let mut table = tx.open_table(CHECKPOINTS).map_err(StreamsError::catalog)?;
            for (index, row) in &rows {
                table
                    .insert((consumer.as_str(), stream, *index), row.as_slice())
                    .map_err(StreamsError::catalog)?;
            }
            let mut table = tx
                .open_table(CONSUMER_STATE)
                .map_err(StreamsError::catalog)?;
            for w in state {
                match w {
                    StateWrite::Put { key, value } => table
                        .insert((consumer.as_str(), key.as_str()), value.as_slice())
                        .map(drop),
                    StateWrite::Delete { key } => {
                        table.remove((consumer.as_str(), key.as_str())).map(drop)
                    }
                }
                .map_err(StreamsError::catalog)?;
            }
        }
        tx.commit().map_err(StreamsError::catalog)?;
        Ok(())
    }

    /// Every checkpoint the consumer has, in every stream, including rows of deleted streams
    /// not yet removed (their `stream_uid` is not the live stream's).
    pub fn list_checkpoints(
        &self,
        consumer: &ConsumerName,
    ) -> Result<Vec<CheckpointRow>, StreamsError> {
        let tx = self
            .catalog
            .db
            .begin_read()
            .map_err(StreamsError::catalog)?;
        let table = tx.open_table(CHECKPOINTS).map_err(StreamsError::catalog)?;
        let mut out = Vec::new();
        for row in table
            .range((consumer.as_str(), "", 0u32)..)
            .map_err(StreamsError::catalog)?
        {
            let (k, v) = row.map_err(StreamsError::catalog)?;
            let (c, stream, index) = k.value();
            if c != consumer.as_str() {
                break;
            }
            let row = Row::decode(index, v.value())?;
            out.push(CheckpointRow {
                stream: stream.to_string(),
                stream_uid: row.stream_uid,
                shard_id: ShardId(index),
                checkpoint: row.checkpoint,
                updated_ms: row.updated_ms,
            });
        }
        Ok(out)
    }

    /// Removes every checkpoint and every state entry of the consumer (an event source mapping
    /// or delivery stream was deleted), in one transaction.
    pub fn delete_checkpoints(&self, consumer: &ConsumerName) -> Result<(), StreamsError> {
        let name = consumer.as_str();
        let tx = self
            .catalog
            .db
            .begin_write()
            .map_err(StreamsError::catalog)?;
        {
            let mut table = tx.open_table(CHECKPOINTS).map_err(StreamsError::catalog)?;
            table
                .retain_in((name, "", 0u32).., |(c, _, _), _| c != name)
                .map_err(StreamsError::catalog)?;
            let mut table = tx
                .open_table(CONSUMER_STATE)
                .map_err(StreamsError::catalog)?;
            table
                .retain_in((name, "").., |(c, _), _| c != name)
                .map_err(StreamsError::catalog)?;
        }
        tx.commit().map_err(StreamsError::catalog)
    }

    /// One entry of the consumer's own state.
    pub fn consumer_state(
        &self,
        consumer: &ConsumerName,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StreamsError> {
        let tx = self
            .catalog
            .db
            .begin_read()
            .map_err(StreamsError::catalog)?;
        let table = tx
            .open_table(CONSUMER_STATE)
            .map_err(StreamsError::catalog)?;
        Ok(table
            .get((consumer.as_str(), key))
            .map_err(StreamsError::catalog)?
            .map(|v| v.value().to_vec()))
    }

    /// The consumer's whole state, by key.
    pub fn consumer_states(
        &self,
        consumer: &ConsumerName,
    ) -> Result<BTreeMap<String, Vec<u8>>, StreamsError> {
        let tx = self
            .catalog
            .db
            .begin_read()
            .map_err(StreamsError::catalog)?;
        let table = tx
            .open_table(CONSUMER_STATE)
            .map_err(StreamsError::catalog)?;
        let mut out = BTreeMap::new();
        for row in table
            .range((consumer.as_str(), "")..)
            .map_err(StreamsError::catalog)?
        {
            let (k, v) = row.map_err(StreamsError::catalog)?;
            let (c, key) = k.value();
            if c != consumer.as_str() {
                break;
            }
            out.insert(key.to_string(), v.value().to_vec());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableTableMetadata;

    #[test]
    fn rows_round_trip_and_unknown_versions_are_refused() {
        let row = Row {
            stream_uid: 7,
            checkpoint: Checkpoint {
                sequence_number: SequenceNumber {
                    shard_epoch: 1_700_000_000_000,
                    shard_index: 3,
                    position: 42,
                },
                finished: true,
            },
            updated_ms: -5,
        };
        let bytes = row.encode(3);
        assert_eq!(Row::decode(3, &bytes).unwrap(), row);
        let mut v2 = bytes;
        v2[0] = 2;
        assert!(Row::decode(3, &v2).is_err());
        assert!(Row::decode(3, &bytes[..33]).is_err());
    }

    #[test]
    fn rows_of_streams_that_are_gone_or_re_created_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.redb")).unwrap();
        let row = |uid| {
            Row {
                stream_uid: uid,
                checkpoint: Checkpoint {
                    sequence_number: SequenceNumber {
                        shard_epoch: 1,
                        shard_index: 0,
                        position: 1,
                    },
                    finished: false,
                },
                updated_ms: 0,
            }
            .encode(0)
        };
        let tx = catalog.db.begin_write().unwrap();
        {
            let mut t = tx.open_table(CHECKPOINTS).unwrap();
            t.insert(("c", "live", 0), row(2).as_slice()).unwrap();
            t.insert(("c", "recreated", 0), row(3).as_slice()).unwrap();
            t.insert(("c", "gone", 0), row(4).as_slice()).unwrap();
        }
        tx.commit().unwrap();
        let live = BTreeMap::from([("live".to_string(), 2), ("recreated".to_string(), 9)]);
        assert_eq!(catalog.remove_stale_checkpoints(&live).unwrap(), 2);
        assert_eq!(catalog.remove_stale_checkpoints(&live).unwrap(), 0);
        let tx = catalog.db.begin_read().unwrap();
        let t = tx.open_table(CHECKPOINTS).unwrap();
        assert_eq!(t.len().unwrap(), 1);
        assert!(t.get(("c", "live", 0)).unwrap().is_some());
    }

    #[test]
    fn consumer_names() {
        assert!(ConsumerName::new("esm/6f1c2a4e-0d1b-4c4e-9f57-3c2b1a0d9e8f").is_some());
        assert!(ConsumerName::new("firehose:orders@eu").is_some());
        assert!(ConsumerName::new(&"x".repeat(256)).is_some());
        assert!(ConsumerName::new(&"x".repeat(257)).is_none());
        assert!(ConsumerName::new("").is_none());
        assert!(ConsumerName::new("no space").is_none());
    }
}
