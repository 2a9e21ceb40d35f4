//! The record frame: how one record is laid out inside a segment file.
//!
//! ```text
//! 0      4      8        16          24        28       30     31   32
//! +------+------+--------+-----------+---------+--------+------+----+------------+-----+------+
//! | len  | crc  | offset | arrival_ms| data_len| key_len| flags| 0  | [hash key] | key | data |
//! +------+------+--------+-----------+---------+--------+------+----+------------+-----+------+
//! ```
//! `len` is the byte length of everything after `crc`; `crc` is CRC-32C of those bytes. All
//! integers little-endian. `flags` bit 0: a 16-byte explicit hash key follows the fixed header.

use bytes::Bytes;

/// Largest data blob of one record.
pub const DATA_BYTES_MAX: usize = 10 * 1024 * 1024;
/// Largest partition key, in bytes (256 characters of up to 4 UTF-8 bytes each).
pub const KEY_BYTES_MAX: usize = 1024;

/// Bytes before the body: `len` and `crc`.
pub(crate) const FRAME_PREFIX_BYTES: usize = 8;
/// Fixed part of the body.
pub(crate) const BODY_FIXED_BYTES: usize = 24;
pub(crate) const HASH_KEY_BYTES: usize = 16;
const FLAG_HASH_KEY: u8 = 1;
/// Largest body a valid frame can have; a larger `len` on disk is corruption, not a record.
pub(crate) const BODY_BYTES_MAX: usize =
    BODY_FIXED_BYTES + HASH_KEY_BYTES + KEY_BYTES_MAX + DATA_BYTES_MAX;

const _: () = assert!(FRAME_PREFIX_BYTES + BODY_FIXED_BYTES == 32);
const _: () = assert!(BODY_BYTES_MAX < u32::MAX as usize);

/// A record to append. Its bytes are shared slices ([`Bytes`]): a request's records can all
/// point into one buffer, so appending 500 records allocates (and frees, on the writer thread)
/// once, not a thousand times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition_key: Bytes,
    pub explicit_hash_key: Option<u128>,
    pub data: Bytes,
}

impl Record {
    /// Bytes this record takes on disk.
    pub fn frame_bytes(&self) -> usize {
        FRAME_PREFIX_BYTES
            + BODY_FIXED_BYTES
            + if self.explicit_hash_key.is_some() {
                HASH_KEY_BYTES
            } else {
                0
            }
            + self.partition_key.len()
            + self.data.len()
    }
}

/// A record read back from the log. Its key and data are slices of the buffer the log read
/// them into (one allocation a read, not two a record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: u64,
    pub arrival_ms: i64,
    pub partition_key: Bytes,
    pub explicit_hash_key: Option<u128>,
    pub data: Bytes,
}

/// A frame decoded in place: its fields, and where its key and data are in the bytes it was
/// decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) offset: u64,
    pub(crate) arrival_ms: i64,
    pub(crate) explicit_hash_key: Option<u128>,
    pub(crate) key: std::ops::Range<usize>,
    pub(crate) data: std::ops::Range<usize>,
}

impl Frame {
    /// The record, its key and data sliced from `buf`, where the frame starts at `at`.
    pub(crate) fn record(&self, buf: &Bytes, at: usize) -> StoredRecord {
        StoredRecord {
            offset: self.offset,
            arrival_ms: self.arrival_ms,
            partition_key: buf.slice(at + self.key.start..at + self.key.end),
            explicit_hash_key: self.explicit_hash_key,
            data: buf.slice(at + self.data.start..at + self.data.end),
        }
    }
}

/// The little-endian `u32` at `bytes[at..at + 4]` (the caller checked the length).
pub(crate) fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(a)
}

/// The little-endian `u64` at `bytes[at..at + 8]` (the caller checked the length).
pub(crate) fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Appends the frame of `record` to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, offset: u64, arrival_ms: i64, record: &Record) {
    assert!(record.data.len() <= DATA_BYTES_MAX);
    assert!(record.partition_key.len() <= KEY_BYTES_MAX);
    let start = buf.len();
    let body_len = record.frame_bytes() - FRAME_PREFIX_BYTES;
    buf.extend_from_slice(&(body_len as u32).to_le_bytes());
    buf.extend_from_slice(&[0u8; 4]); // crc, filled below
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&arrival_ms.to_le_bytes());
    buf.extend_from_slice(&(record.data.len() as u32).to_le_bytes());
    buf.extend_from_slice(&(record.partition_key.len() as u16).to_le_bytes());
    let flags = if record.explicit_hash_key.is_some() {
        FLAG_HASH_KEY
    } else {
        0
    };
    buf.push(flags);
    buf.push(0);
    if let Some(h) = record.explicit_hash_key {
        buf.extend_from_slice(&h.to_le_bytes());
    }
    buf.extend_from_slice(&record.partition_key);
    buf.extend_from_slice(&record.data);
    let body = &buf[start + FRAME_PREFIX_BYTES..];
    assert_eq!(body.len(), body_len);
    let crc = crc32c::crc32c(body);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What decoding the bytes at some position found.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A whole, valid frame of `frame_bytes` bytes.
    Frame { record: Frame, frame_bytes: usize },
    /// Fewer bytes than the frame needs: `needed` bytes would be required from the start.
    Short { needed: usize },
    /// The bytes are not a valid frame.
    Invalid(&'static str),
}

/// Reads only the frame's prefix: returns the total frame length, or why it cannot be a frame.
pub(crate) fn frame_len(prefix: &[u8]) -> Result<Option<usize>, &'static str> {
    if prefix.len() < FRAME_PREFIX_BYTES {
        return Ok(None);
    }
    let body_len = le_u32(prefix, 0) as usize;
    if !(BODY_FIXED_BYTES..=BODY_BYTES_MAX).contains(&body_len) {
        return Err("frame length out of range");
    }
    Ok(Some(FRAME_PREFIX_BYTES + body_len))
}

/// Decodes the frame that starts at `bytes[0]`, verifying its checksum and field lengths.
pub(crate) fn decode(bytes: &[u8]) -> Decoded {
    let total = match frame_len(bytes) {
        Ok(Some(n)) => n,
        Ok(None) => {
            return Decoded::Short {
                needed: FRAME_PREFIX_BYTES,
            }
        }
        Err(e) => return Decoded::Invalid(e),
    };
    if bytes.len() < total {
        return Decoded::Short { needed: total };
    }
    let crc = le_u32(bytes, 4);
    let body = &bytes[FRAME_PREFIX_BYTES..total];
    if crc32c::crc32c(body) != crc {
        return Decoded::Invalid("checksum mismatch");
    }
    let offset = le_u64(body, 0);
    let arrival_ms = le_u64(body, 8) as i64;
    let data_len = le_u32(body, 16) as usize;
    let key_len = u16::from_le_bytes([body[20], body[21]]) as usize;
    let flags = body[22];
    if flags & !FLAG_HASH_KEY != 0 || body[23] != 0 {
        return Decoded::Invalid("unknown flags");
    }
    let mut at = BODY_FIXED_BYTES;
    let explicit_hash_key = if flags & FLAG_HASH_KEY != 0 {
        if body.len() < at + HASH_KEY_BYTES {
            return Decoded::Invalid("field lengths disagree with frame length");
        }
        let mut h = [0u8; HASH_KEY_BYTES];
        h.copy_from_slice(&body[at..at + HASH_KEY_BYTES]);
        let h = u128::from_le_bytes(h);
        at += HASH_KEY_BYTES;
        Some(h)
    } else {
        None
    };
    if at + key_len + data_len != body.len() || data_len > DATA_BYTES_MAX || key_len > KEY_BYTES_MAX
    {
        return Decoded::Invalid("field lengths disagree with frame length");
    }
    let key_start = FRAME_PREFIX_BYTES + at;
    Decoded::Frame {
        record: Frame {
            offset,
            arrival_ms,
            explicit_hash_key,
            key: key_start..key_start + key_len,
            data: key_start + key_len..total,
        },
        frame_bytes: total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, hash: Option<u128>, data: &[u8]) -> Record {
        Record {
            partition_key: Bytes::copy_from_slice(key.as_bytes()),
            explicit_hash_key: hash,
            data: Bytes::copy_from_slice(data),
        }
    }

    #[test]
    fn round_trip_with_and_without_hash_key() {
        for r in [
            rec("k", None, b"hello"),
            rec("key-2", Some(u128::MAX - 7), b""),
            rec("", None, &[0u8; 300]),
        ] {
            let mut buf = Vec::new();
            encode(&mut buf, 42, 1_700_000_000_123, &r);
            assert_eq!(buf.len(), r.frame_bytes());
            match decode(&buf) {
                Decoded::Frame {
                    record,
                    frame_bytes,
                } => {
                    assert_eq!(frame_bytes, buf.len());
                    assert_eq!(record.offset, 42);
                    assert_eq!(record.arrival_ms, 1_700_000_000_123);
                    assert_eq!(buf[record.key], r.partition_key);
                    assert_eq!(record.explicit_hash_key, r.explicit_hash_key);
                    assert_eq!(buf[record.data], r.data);
                }
                other => panic!("decode failed: {other:?}"),
            }
        }
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, 99, &rec("pk", Some(5), b"some data"));
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    !matches!(decode(&bad), Decoded::Frame { .. }),
                    "flip at byte {byte} bit {bit} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn truncated_frame_is_short() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, 1, &rec("pk", None, b"0123456789"));
        for cut in 0..buf.len() {
            assert!(
                matches!(decode(&buf[..cut]), Decoded::Short { .. }),
                "cut at {cut}"
            );
        }
    }
}
