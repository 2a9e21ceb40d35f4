//! Shard iterators and pagination tokens: opaque base64 strings that carry a position and the
//! time they were issued, with a checksum so that a damaged or made-up one is refused.
//!
//! Iterator bytes: `version(1) issued_ms(8) stream_uid(8) shard_index(4) offset(8)
//! name_len(1) name checksum(8)`, little-endian; the checksum is the first 8 bytes of SHA-256
//! of what precedes it.

use base64::Engine;
use sha2::{Digest, Sha256};
use sluice_streams::ShardCursor;

const VERSION: u8 = 1;
const CHECKSUM_BYTES: usize = 8;

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_BYTES] {
    Sha256::digest(bytes)[..CHECKSUM_BYTES].try_into().unwrap()
}

fn seal(mut bytes: Vec<u8>) -> String {
    let c = checksum(&bytes);
    bytes.extend_from_slice(&c);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn open(token: &str) -> Option<Vec<u8>> {
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    if bytes.len() < CHECKSUM_BYTES + 1 {
        return None;
    }
    let body_len = bytes.len() - CHECKSUM_BYTES;
    if checksum(&bytes[..body_len]) != bytes[body_len..] {
        return None;
    }
    bytes.truncate(body_len);
    Some(bytes)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIterator {
    pub cursor: ShardCursor,
    pub issued_ms: i64,
}

impl ShardIterator {
    pub fn encode(&self) -> String {
        let name = self.cursor.stream.as_bytes();
        assert!(
            name.len() <= u8::MAX as usize,
            "stream names are at most 128 bytes"
        );
        let mut b = Vec::with_capacity(38 + name.len() + CHECKSUM_BYTES);
        b.push(VERSION);
        b.extend_from_slice(&self.issued_ms.to_le_bytes());
        b.extend_from_slice(&self.cursor.stream_uid.to_le_bytes());
        b.extend_from_slice(&self.cursor.shard_index.to_le_bytes());
        b.extend_from_slice(&self.cursor.offset.to_le_bytes());
        b.push(name.len() as u8);
        b.extend_from_slice(name);
        seal(b)
    }

    pub fn decode(token: &str) -> Option<ShardIterator> {
        let b = open(token)?;
        if b.len() < 30 || b[0] != VERSION {
            return None;
        }
        let issued_ms = i64::from_le_bytes(b[1..9].try_into().ok()?);
        let stream_uid = u64::from_le_bytes(b[9..17].try_into().ok()?);
        let shard_index = u32::from_le_bytes(b[17..21].try_into().ok()?);
        let offset = u64::from_le_bytes(b[21..29].try_into().ok()?);
        let name_len = b[29] as usize;
        if b.len() != 30 + name_len {
            return None;
        }
        let stream = std::str::from_utf8(&b[30..]).ok()?.to_string();
        Some(ShardIterator {
            cursor: ShardCursor {
                stream,
                stream_uid,
                shard_index,
                offset,
            },
            issued_ms,
        })
    }
}

/// A pagination token: what the next page starts after, and when the token was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    pub scope: String,
    pub after: String,
    pub issued_ms: i64,
}

impl PageToken {
    pub fn encode(&self) -> String {
        let mut b = Vec::new();
        b.push(VERSION);
        b.extend_from_slice(&self.issued_ms.to_le_bytes());
        for s in [&self.scope, &self.after] {
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        seal(b)
    }

    pub fn decode(token: &str) -> Option<PageToken> {
        let b = open(token)?;
        if b.len() < 9 || b[0] != VERSION {
            return None;
        }
        let issued_ms = i64::from_le_bytes(b[1..9].try_into().ok()?);
        let mut at = 9;
        let mut strings = Vec::new();
        for _ in 0..2 {
            let len = u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize;
            at += 4;
            strings.push(std::str::from_utf8(b.get(at..at + len)?).ok()?.to_string());
            at += len;
        }
        if at != b.len() {
            return None;
        }
        let after = strings.pop()?;
        let scope = strings.pop()?;
        Some(PageToken {
            scope,
            after,
            issued_ms,
        })
    }
}

/// Java's `Date.toString()` in UTC (`Thu Jan 22 01:22:02 UTC 2015`), as AWS's expiry messages use.
pub fn java_date(ms: i64) -> String {
    const DOW: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = sluice_aws::civil::from_ms(ms);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DOW[c.weekday_from_thursday as usize],
        MON[(c.month - 1) as usize],
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.year
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterator_round_trip_and_tamper() {
        let it = ShardIterator {
            cursor: ShardCursor {
                stream: "x".repeat(128),
                stream_uid: 7,
                shard_index: 3,
                offset: 123_456,
            },
            issued_ms: 1_700_000_000_000,
        };
        let s = it.encode();
        assert!(s.len() <= crate::limits::SHARD_ITERATOR_CHARS_MAX);
        assert_eq!(ShardIterator::decode(&s), Some(it));
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&s)
            .unwrap();
        bytes[22] ^= 1;
        assert_eq!(
            ShardIterator::decode(&base64::engine::general_purpose::STANDARD.encode(bytes)),
            None
        );
        assert_eq!(ShardIterator::decode("not an iterator"), None);
    }

    #[test]
    fn page_token_round_trip() {
        let t = PageToken {
            scope: "s".into(),
            after: "shardId-000000000001".into(),
            issued_ms: 5,
        };
        assert_eq!(PageToken::decode(&t.encode()), Some(t));
    }

    #[test]
    fn java_dates() {
        assert_eq!(java_date(1_421_889_722_000), "Thu Jan 22 01:22:02 UTC 2015");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_709_164_800_000), "Thu Feb 29 00:00:00 UTC 2024");
    }
}
