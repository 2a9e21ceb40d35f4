//! A segment: one file of consecutive record frames behind a fixed header.
//!
//! ```text
//! 0          8         12            16            24           32                60      64
//! +----------+---------+-------------+-------------+------------+-----------------+-------+
//! | SLUICSEG | version | header_bytes| base_offset | created_ms | zero (28 bytes) | crc32c|
//! +----------+---------+-------------+-------------+------------+-----------------+-------+
//! ```
//! then frames (see `frame`). Named `<base_offset as 20 digits>.seg`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Failure, LogError};

use crate::frame::{self, le_u32, le_u64, Decoded, StoredRecord};
use crate::index::{self, IndexEntry, SealedIndex};
use crate::storage::{self, read_up_to, Storage, StorageFile};

pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"SLUICSEG";
pub(crate) const SEGMENT_VERSION: u32 = 1;
pub(crate) const SEGMENT_HEADER_BYTES: u64 = 64;

/// Bytes read from disk at a time while scanning.
const SCAN_CHUNK_BYTES: usize = 256 * 1024;

/// What is known of one segment. The active segment's fields move forward as the writer
/// commits; a sealed segment's never change.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub base_offset: u64,
    pub created_ms: i64,
    pub path: PathBuf,
    pub file: Arc<dyn StorageFile>,
    /// One past the last durable record.
    pub next_offset: u64,
    /// Byte position one past the last durable record.
    pub end_position: u64,
    /// Arrival time of the first and last record; `None` while empty.
    pub first_arrival_ms: Option<i64>,
    pub last_arrival_ms: Option<i64>,
    pub index: Vec<IndexEntry>,
    /// Bytes of records since the last index entry.
    pub bytes_since_index: u64,
    pub sealed: bool,
}

pub(crate) fn segment_path(dir: &Path, base_offset: u64) -> PathBuf {
    dir.join(format!("{base_offset:020}.seg"))
}

pub(crate) fn index_path(segment: &Path) -> PathBuf {
    segment.with_extension("idx")
}

fn encode_header(base_offset: u64, created_ms: i64) -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut h = [0u8; SEGMENT_HEADER_BYTES as usize];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
    h[16..24].copy_from_slice(&base_offset.to_le_bytes());
    h[24..32].copy_from_slice(&created_ms.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

fn decode_header(h: &[u8], path: &Path) -> Result<(u64, i64), LogError> {
    let corrupt = |reason: &str| LogError::Corrupt {
        path: path.to_path_buf(),
        position: 0,
        reason: reason.to_string(),
    };
    if h.len() < SEGMENT_HEADER_BYTES as usize {
        return Err(corrupt("segment header is short"));
    }
    if &h[0..8] != SEGMENT_MAGIC {
        return Err(corrupt("not a sluice segment (bad magic)"));
    }
    let crc = le_u32(h, 60);
    if crc32c::crc32c(&h[0..60]) != crc {
        return Err(corrupt("segment header checksum mismatch"));
    }
    let version = le_u32(h, 8);
    if version != SEGMENT_VERSION {
        return Err(corrupt("unsupported segment version"));
    }
    let base_offset = le_u64(h, 16);
    let created_ms = le_u64(h, 24) as i64;
    Ok((base_offset, created_ms))
}

pub(crate) fn fsync_dir(storage: &dyn Storage, dir: &Path) -> Result<(), LogError> {
    storage.sync_dir(dir).map_err(|e| LogError::io(dir, e))
}

/// True when the last segment at `path` is what a segment creation that did not complete left
/// behind: it holds no record (it is no longer than a header: frames are written only after
/// the header and the directory entry are synced) and either its header is not valid (a crash
/// during the creation) or another segment precedes it (`preceded`). In the second case it
/// may be a creation that failed after writing its header (the writer then went on in the
/// previous segment, so this one may not even join it), or a real empty active segment: either
/// way it holds nothing, the previous segment becomes the active one again, and the writer
/// creates the next segment at its next roll. A longer file with a bad header is corruption.
pub(crate) fn is_leftover(
    storage: &dyn Storage,
    path: &Path,
    preceded: bool,
) -> Result<bool, LogError> {
    let file = storage.open(path).map_err(|e| LogError::io(path, e))?;
    let len = file.len_bytes().map_err(|e| LogError::io(path, e))?;
    if len > SEGMENT_HEADER_BYTES {
        return Ok(false);
    }
    if preceded {
        return Ok(true);
    }
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    let got = read_up_to(&*file, &mut header, 0).map_err(|e| LogError::io(path, e))?;
    Ok(decode_header(&header[..got], path).is_err())
}

impl Segment {
    /// Creates an empty segment file, durably (file and directory entry fsynced). If it fails
    /// before the header is synced, the file is removed again (best effort: a file left behind
    /// holds no valid header and is removed on open or overwritten by the next try).
    pub fn create(
        storage: &dyn Storage,
        dir: &Path,
        base_offset: u64,
        created_ms: i64,
    ) -> Result<Segment, Failure> {
        let path = segment_path(dir, base_offset);
        let file = storage.create(&path).map_err(|e| Failure::op(&path, e))?;
        let header = storage::write_all_at(&*file, &encode_header(base_offset, created_ms), 0)
            .map_err(|e| Failure::op(&path, e))
            .and_then(|()| file.sync_all().map_err(|e| Failure::fatal(&path, e)));
        if let Err(e) = header {
            let _ = storage.remove_file(&path);
            return Err(e);
        }
        storage.sync_dir(dir).map_err(|e| Failure::fatal(dir, e))?;
        Ok(Segment::empty(base_offset, created_ms, path, file, false))
    }

    /// A segment holding no records yet, behind its header.
    fn empty(
        base_offset: u64,
        created_ms: i64,
        path: PathBuf,
        file: Arc<dyn StorageFile>,
        sealed: bool,
    ) -> Segment {
        Segment {
            base_offset,
            created_ms,
            path,
            file,
            next_offset: base_offset,
            end_position: SEGMENT_HEADER_BYTES,
            first_arrival_ms: None,
            last_arrival_ms: None,
            index: Vec::new(),
            bytes_since_index: 0,
            sealed,
        }
    }

    /// Opens a segment. A sealed one with a valid index file is trusted as the index says; any
    /// other is scanned frame by frame. With `repair`, a scan that meets a torn or corrupt frame
    /// cuts the file there (the active segment after a crash); without, it is an error.
    pub fn open(
        storage: &dyn Storage,
        path: &Path,
        sealed: bool,
        repair: bool,
        index_interval_bytes: u64,
    ) -> Result<Segment, LogError> {
        let file = storage.open(path).map_err(|e| LogError::io(path, e))?;
        let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
        let header_len = read_up_to(&*file, &mut header, 0).map_err(|e| LogError::io(path, e))?;
        let (base_offset, created_ms) = decode_header(&header[..header_len], path)?;
        let mut segment = Segment::empty(base_offset, created_ms, path.to_path_buf(), file, sealed);
        if sealed {
            if let Some(idx) = index::load_sealed(storage, &index_path(path)) {
                let file_len = segment
                    .file
                    .len_bytes()
                    .map_err(|e| LogError::io(path, e))?;
                if idx.end_position == file_len
                    && idx.entries.first().is_none_or(|e| e.offset == base_offset)
                {
                    segment.next_offset = idx.next_offset;
                    segment.end_position = idx.end_position;
                    if !idx.entries.is_empty() {
                        segment.first_arrival_ms = Some(idx.first_arrival_ms);
                        segment.last_arrival_ms = Some(idx.last_arrival_ms);
                    }
                    segment.index = idx.entries;
                    return Ok(segment);
                }
            }
        }
        segment.scan(repair, index_interval_bytes)?;
        if sealed {
            segment.write_index(storage)?;
        }
        Ok(segment)
    }

    /// Reads every frame, verifying checksums and offset continuity, and rebuilds the index.
    fn scan(&mut self, repair: bool, index_interval_bytes: u64) -> Result<(), LogError> {
        let file_len = self
            .file
            .len_bytes()
            .map_err(|e| LogError::io(&self.path, e))?;
        let mut position = SEGMENT_HEADER_BYTES;
        let mut bad: Option<&'static str> = None;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_start = position;
        'outer: while position < file_len {
            // Make sure the buffer holds the whole frame at `position`.
            let at = (position - buf_start) as usize;
            let decoded = frame::decode(&buf[at..]);
            match decoded {
                Decoded::Frame {
                    record,
                    frame_bytes,
                } => {
                    if record.offset != self.next_offset {
                        bad = Some("offset out of sequence");
                        break 'outer;
                    }
                    if let Some(last) = self.last_arrival_ms {
                        if record.arrival_ms < last {
                            bad = Some("arrival time went backwards");
                            break 'outer;
                        }
                    }
                    self.note_record(
                        record.offset,
                        position,
                        record.arrival_ms,
                        frame_bytes as u64,
                        index_interval_bytes,
                    );
                    position += frame_bytes as u64;
                }
                Decoded::Short { needed } => {
                    if position + needed as u64 > file_len {
                        bad = Some("torn frame at the end of the file");
                        break 'outer;
                    }
                    let want = needed
                        .max(SCAN_CHUNK_BYTES)
                        .min((file_len - position) as usize);
                    buf.resize(want, 0);
                    let got = read_up_to(&*self.file, &mut buf, position)
                        .map_err(|e| LogError::io(&self.path, e))?;
                    buf.truncate(got);
                    buf_start = position;
                    if got < needed {
                        bad = Some("torn frame at the end of the file");
                        break 'outer;
                    }
                }
                Decoded::Invalid(reason) => {
                    bad = Some(reason);
                    break 'outer;
                }
            }
        }
        self.end_position = position;
        if let Some(reason) = bad {
            if !repair {
                return Err(LogError::Corrupt {
                    path: self.path.clone(),
                    position,
                    reason: reason.to_string(),
                });
            }
            tracing::warn!(
                segment = %self.path.display(),
                position,
                cut_bytes = file_len - position,
                reason,
                "cutting the log tail after the last valid record"
            );
            self.file
                .set_len(position)
                .map_err(|e| LogError::io(&self.path, e))?;
            self.file
                .sync_all()
                .map_err(|e| LogError::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Accounts one record the log now holds at `position`.
    pub fn note_record(
        &mut self,
        offset: u64,
        position: u64,
        arrival_ms: i64,
        frame_bytes: u64,
        index_interval_bytes: u64,
    ) {
        assert_eq!(offset, self.next_offset, "records must be contiguous");
        if self.index.is_empty() || self.bytes_since_index >= index_interval_bytes {
            self.index.push(IndexEntry {
                offset,
                position,
                arrival_ms,
            });
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += frame_bytes;
        if self.first_arrival_ms.is_none() {
            self.first_arrival_ms = Some(arrival_ms);
        }
        self.last_arrival_ms = Some(arrival_ms);
        self.next_offset = offset + 1;
        self.end_position = position + frame_bytes;
    }

    pub fn is_empty(&self) -> bool {
        self.next_offset == self.base_offset
    }

    pub fn write_index(&self, storage: &dyn Storage) -> Result<(), Failure> {
        index::write_sealed(
            storage,
            &index_path(&self.path),
            &SealedIndex {
                next_offset: self.next_offset,
                end_position: self.end_position,
                first_arrival_ms: self.first_arrival_ms.unwrap_or(0),
                last_arrival_ms: self.last_arrival_ms.unwrap_or(0),
                entries: self.index.clone(),
            },
        )
    }

    /// The byte position from which to scan for `offset` (which lies in this segment).
    pub fn position_for_offset(&self, offset: u64) -> u64 {
        index::entry_for_offset(&self.index, offset)
            .map(|e| e.position)
            .unwrap_or(SEGMENT_HEADER_BYTES)
    }

    /// The byte position from which to scan for the first record at or after `arrival_ms`.
    pub fn position_for_time(&self, arrival_ms: i64) -> u64 {
        index::entry_before_time(&self.index, arrival_ms)
            .map(|e| e.position)
            .unwrap_or(SEGMENT_HEADER_BYTES)
    }
}

/// Reads records of one segment from `position` (a frame boundary) up to `end_position`,
/// calling `visit` for each until it returns false.
pub(crate) fn read_frames(
    file: &dyn StorageFile,
    path: &Path,
    mut position: u64,
    end_position: u64,
    bytes_hint: usize,
    mut visit: impl FnMut(StoredRecord, u64) -> bool,
) -> Result<(), LogError> {
    // Records are slices of the buffer they were read into: a fresh one each read.
    let mut buf = Bytes::new();
    let mut buf_start = position;
    let mut at = 0usize;
    while position < end_position {
        match frame::decode(&buf[at..]) {
            Decoded::Frame {
                record,
                frame_bytes,
            } => {
                let stored = record.record(&buf, at);
                position += frame_bytes as u64;
                at += frame_bytes;
                if !visit(stored, frame_bytes as u64) {
                    return Ok(());
                }
            }
            Decoded::Short { needed } => {
                let remaining = (end_position - position) as usize;
                if needed > remaining {
                    return Err(LogError::Corrupt {
                        path: path.to_path_buf(),
                        position,
                        reason: "frame runs past the durable end".into(),
                    });
                }
                let want = needed
                    .max(bytes_hint.clamp(4096, SCAN_CHUNK_BYTES * 4))
                    .min(remaining);
                let mut fresh = vec![0u8; want];
                let got =
                    read_up_to(file, &mut fresh, position).map_err(|e| LogError::io(path, e))?;
                fresh.truncate(got);
                buf = Bytes::from(fresh);
                buf_start = position;
                at = 0;
                if got < needed {
                    return Err(LogError::Corrupt {
                        path: path.to_path_buf(),
                        position,
                        reason: "file shorter than its durable end".into(),
                    });
                }
            }
            Decoded::Invalid(reason) => {
                return Err(LogError::Corrupt {
                    path: path.to_path_buf(),
                    position,
                    reason: reason.into(),
                });
            }
        }
        debug_assert_eq!(buf_start + at as u64, position);
    }
    Ok(())
}
