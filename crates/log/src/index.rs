//! The sparse index of a segment and its file form.
//!
//! One entry per `index_interval_bytes` of records (and always the segment's first record):
//! `(offset, position, arrival_ms)`. Offsets and arrival times both only grow within a shard, so
//! the one list, sorted by either key, answers both "where is offset N" and "which is the first
//! record that arrived at or after T": a binary search finds the nearest entry at or before the
//! target, and a short forward scan (at most one interval of bytes) finds the record.
//!
//! A sealed segment's index is written to `<base>.idx` once, at sealing, and fsynced. The active
//! segment's index lives in memory and is rebuilt by scanning on open.

use std::path::Path;

use crate::error::Failure;
use crate::frame::{le_u32, le_u64};
use crate::storage::{self, Storage};

pub(crate) const INDEX_MAGIC: &[u8; 8] = b"SLUICIDX";
pub(crate) const INDEX_VERSION: u32 = 1;
pub(crate) const INDEX_HEADER_BYTES: usize = 48;
pub(crate) const INDEX_ENTRY_BYTES: usize = 24;
const _: () = assert!(INDEX_HEADER_BYTES == 8 + 4 + 4 + 8 + 8 + 8 + 8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub offset: u64,
    pub position: u64,
    pub arrival_ms: i64,
}

/// What a sealed segment's index file records about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SealedIndex {
    pub next_offset: u64,
    pub end_position: u64,
    pub first_arrival_ms: i64,
    pub last_arrival_ms: i64,
    pub entries: Vec<IndexEntry>,
}

/// The last entry at or before `offset`.
pub(crate) fn entry_for_offset(entries: &[IndexEntry], offset: u64) -> Option<IndexEntry> {
    let i = entries.partition_point(|e| e.offset <= offset);
    if i == 0 {
        None
    } else {
        Some(entries[i - 1])
    }
}

/// The last entry that arrived strictly before `arrival_ms`: the first record at or after
/// `arrival_ms` lies at or after it.
pub(crate) fn entry_before_time(entries: &[IndexEntry], arrival_ms: i64) -> Option<IndexEntry> {
    let i = entries.partition_point(|e| e.arrival_ms < arrival_ms);
    if i == 0 {
        None
    } else {
        Some(entries[i - 1])
    }
}

pub(crate) fn encode_sealed(index: &SealedIndex) -> Vec<u8> {
    let mut buf =
        Vec::with_capacity(INDEX_HEADER_BYTES + index.entries.len() * INDEX_ENTRY_BYTES + 4);
    buf.extend_from_slice(INDEX_MAGIC);
    buf.extend_from_slice(&INDEX_VERSION.to_le_bytes());
    buf.extend_from_slice(&(index.entries.len() as u32).to_le_bytes());
    buf.extend_from_slice(&index.next_offset.to_le_bytes());
    buf.extend_from_slice(&index.end_position.to_le_bytes());
    buf.extend_from_slice(&index.first_arrival_ms.to_le_bytes());
    buf.extend_from_slice(&index.last_arrival_ms.to_le_bytes());
    assert_eq!(buf.len(), INDEX_HEADER_BYTES);
    for e in &index.entries {
        buf.extend_from_slice(&e.offset.to_le_bytes());
        buf.extend_from_slice(&e.position.to_le_bytes());
        buf.extend_from_slice(&e.arrival_ms.to_le_bytes());
    }
    let crc = crc32c::crc32c(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// Decodes an index file; `None` when it is not a complete, valid one (the caller rebuilds).
pub(crate) fn decode_sealed(bytes: &[u8]) -> Option<SealedIndex> {
    if bytes.len() < INDEX_HEADER_BYTES + 4 || &bytes[0..8] != INDEX_MAGIC {
        return None;
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body) != le_u32(crc, 0) {
        return None;
    }
    let u32_at = |at: usize| le_u32(body, at);
    let u64_at = |at: usize| le_u64(body, at);
    if u32_at(8) != INDEX_VERSION {
        return None;
    }
    let count = u32_at(12) as usize;
    if body.len() != INDEX_HEADER_BYTES + count * INDEX_ENTRY_BYTES {
        return None;
    }
    let entries = (0..count)
        .map(|i| {
            let at = INDEX_HEADER_BYTES + i * INDEX_ENTRY_BYTES;
            IndexEntry {
                offset: u64_at(at),
                position: u64_at(at + 8),
                arrival_ms: u64_at(at + 16) as i64,
            }
        })
        .collect();
    Some(SealedIndex {
        next_offset: u64_at(16),
        end_position: u64_at(24),
        first_arrival_ms: u64_at(32) as i64,
        last_arrival_ms: u64_at(40) as i64,
        entries,
    })
}

/// Writes `<name>.idx.tmp`, syncs it and renames it over `path`. The rename becomes durable
/// with the next sync of the directory (the new segment's creation); until then a crash leaves
/// no index, or the `.tmp`, and the segment is scanned and its index rebuilt on open.
pub(crate) fn write_sealed(
    storage: &dyn Storage,
    path: &Path,
    index: &SealedIndex,
) -> Result<(), Failure> {
    let bytes = encode_sealed(index);
    let tmp = path.with_extension("idx.tmp");
    let written = storage
        .create(&tmp)
        .map_err(|e| Failure::op(&tmp, e))
        .and_then(|f| {
            storage::write_all_at(&*f, &bytes, 0).map_err(|e| Failure::op(&tmp, e))?;
            f.sync_all().map_err(|e| Failure::fatal(&tmp, e))
        })
        .and_then(|()| storage.rename(&tmp, path).map_err(|e| Failure::op(path, e)));
    if written.is_err() {
        // Best effort: a `.tmp` left behind is removed on open and overwritten by the next try.
        let _ = storage.remove_file(&tmp);
    }
    written
}

/// Reads and decodes an index file; `None` when it is missing, unreadable or invalid.
pub(crate) fn load_sealed(storage: &dyn Storage, path: &Path) -> Option<SealedIndex> {
    let bytes = storage::read_whole(storage, path).ok()?;
    decode_sealed(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_index_round_trips_and_rejects_damage() {
        let idx = SealedIndex {
            next_offset: 10,
            end_position: 4096,
            first_arrival_ms: 5,
            last_arrival_ms: 9,
            entries: vec![
                IndexEntry {
                    offset: 0,
                    position: 64,
                    arrival_ms: 5,
                },
                IndexEntry {
                    offset: 6,
                    position: 2000,
                    arrival_ms: 8,
                },
            ],
        };
        let bytes = encode_sealed(&idx);
        assert_eq!(decode_sealed(&bytes), Some(idx));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert_eq!(decode_sealed(&bad), None, "damage at {i} accepted");
        }
        assert_eq!(decode_sealed(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn lookups() {
        let e = |offset, arrival_ms| IndexEntry {
            offset,
            position: offset * 10,
            arrival_ms,
        };
        let entries = vec![e(0, 100), e(5, 100), e(9, 200), e(20, 300)];
        assert_eq!(entry_for_offset(&entries, 0), Some(e(0, 100)));
        assert_eq!(entry_for_offset(&entries, 8), Some(e(5, 100)));
        assert_eq!(entry_for_offset(&entries, 100), Some(e(20, 300)));
        assert_eq!(entry_before_time(&entries, 100), None);
        assert_eq!(entry_before_time(&entries, 150), Some(e(5, 100)));
        assert_eq!(entry_before_time(&entries, 300), Some(e(9, 200)));
    }
}
