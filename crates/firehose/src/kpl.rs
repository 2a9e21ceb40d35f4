//! De-aggregation of records the Kinesis Producer Library aggregated, as Firehose does for a
//! Kinesis data stream source.
//!
//! An aggregated record is the magic `F3 89 9A C2`, a protobuf `AggregatedRecord` (proto2):
//!
//! ```text
//! message AggregatedRecord { repeated string partition_key_table = 1;
//!                            repeated string explicit_hash_key_table = 2;
//!                            repeated Record records = 3; }
//! message Record { required uint64 partition_key_index = 1;
//!                  optional uint64 explicit_hash_key_index = 2;
//!                  required bytes data = 3; repeated Tag tags = 4; }
//! ```
//!
//! and the MD5 of the protobuf bytes. The three messages are read here by hand, with a
//! bounded reader that never panics: a record that lacks the magic, whose digest does not
//! match or whose protobuf does not parse is a plain record, delivered as it is (what the
//! Kinesis Client Library does).

use bytes::Bytes;
use md5::{Digest, Md5};

pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_BYTES: usize = 16;

/// One user record of an aggregated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: String,
    pub data: Bytes,
}

/// The user records `data` holds: several for an aggregated record, else `data` itself.
pub fn deaggregate(data: &Bytes) -> Vec<Bytes> {
    match parse(data) {
        Some(records) => records.into_iter().map(|r| r.data).collect(),
        None => vec![data.clone()],
    }
}

/// The user records of an aggregated record, or `None` when `data` is not one.
pub fn parse(data: &Bytes) -> Option<Vec<UserRecord>> {
    if data.len() < MAGIC.len() + DIGEST_BYTES || data[..4] != MAGIC {
        return None;
    }
    let body = data.slice(4..data.len() - DIGEST_BYTES);
    let digest = &data[data.len() - DIGEST_BYTES..];
    if Md5::digest(&body).as_slice() != digest {
        return None;
    }
    let mut keys = Vec::new();
    let mut raw_records = Vec::new();
    let mut r = Reader { buf: &body, at: 0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, 2) => keys.push(String::from_utf8(r.bytes()?.to_vec()).ok()?),
            (3, 2) => {
                let (start, end) = r.span()?;
                raw_records.push(body.slice(start..end));
            }
            _ => r.skip(wire)?,
        }
    }
    let mut out = Vec::with_capacity(raw_records.len());
    for raw in raw_records {
        let mut r = Reader { buf: &raw, at: 0 };
        let mut key_index = None;
        let mut payload = None;
        while !r.done() {
            let (field, wire) = r.key()?;
            match (field, wire) {
                (1, 0) => key_index = Some(r.varint()?),
                (3, 2) => {
                    let (start, end) = r.span()?;
                    payload = Some(raw.slice(start..end));
                }
                _ => r.skip(wire)?,
            }
        }
        let partition_key = keys.get(usize::try_from(key_index?).ok()?)?.clone();
        out.push(UserRecord {
            partition_key,
            data: payload?,
        });
    }
    Some(out)
}

/// A bounded protobuf reader: every read checks the length first.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.at)?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn key(&mut self) -> Option<(u64, u8)> {
        let k = self.varint()?;
        Some((k >> 3, (k & 7) as u8))
    }

    /// The span of a length-delimited field's bytes.
    fn span(&mut self) -> Option<(usize, usize)> {
        let n = usize::try_from(self.varint()?).ok()?;
        let end = self.at.checked_add(n)?;
        if end > self.buf.len() {
            return None;
        }
        let start = self.at;
        self.at = end;
        Some((start, end))
    }

    fn bytes(&mut self) -> Option<&[u8]> {
        let (s, e) = self.span()?;
        self.buf.get(s..e)
    }

    fn skip(&mut self, wire: u8) -> Option<()> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.advance(8),
            2 => self.span().map(drop),
            5 => self.advance(4),
            _ => None,
        }
    }

    fn advance(&mut self, n: usize) -> Option<()> {
        let end = self.at.checked_add(n)?;
        if end > self.buf.len() {
            return None;
        }
        self.at = end;
        Some(())
    }
}

/// Aggregates records the way the KPL does (tests, and tools that want to write them).
pub fn aggregate(records: &[(&str, &[u8])]) -> Bytes {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
        varint(out, number << 3 | 2);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    let mut keys: Vec<&str> = Vec::new();
    let mut body = Vec::new();
    for (k, _) in records {
        if !keys.contains(k) {
            keys.push(k);
            field(&mut body, 1, k.as_bytes());
        }
    }
    for (k, d) in records {
        let mut rec = Vec::new();
        varint(&mut rec, 1 << 3);
        varint(
            &mut rec,
            keys.iter().position(|x| x == k).unwrap_or(0) as u64,
        );
        field(&mut rec, 3, d);
        field(&mut body, 3, &rec);
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_records_come_apart() {
        let agg = aggregate(&[("a", b"one"), ("b", b"two"), ("a", b""), ("c", b"three")]);
        let got = parse(&agg).unwrap();
        let pairs: Vec<(&str, &[u8])> = got
            .iter()
            .map(|r| (r.partition_key.as_str(), &r.data[..]))
            .collect();
        assert_eq!(
            pairs,
            [
                ("a", &b"one"[..]),
                ("b", b"two"),
                ("a", b""),
                ("c", b"three")
            ]
        );
        assert_eq!(deaggregate(&agg).len(), 4);
    }

    #[test]
    fn anything_else_is_a_plain_record() {
        let plain = Bytes::from_static(b"{\"not\":\"aggregated\"}");
        assert_eq!(deaggregate(&plain), vec![plain.clone()]);
        // A bad digest, a truncated body, garbage after the magic: never a panic.
        let mut agg = aggregate(&[("a", b"one")]).to_vec();
        let last = agg.len() - 1;
        agg[last] ^= 1;
        assert!(parse(&Bytes::from(agg.clone())).is_none());
        for cut in 0..agg.len() {
            let _ = parse(&Bytes::from(agg[..cut].to_vec()));
        }
        let mut junk = MAGIC.to_vec();
        junk.extend_from_slice(&[0xff; 40]);
        let body = junk[4..junk.len() - 16].to_vec();
        let n = junk.len();
        junk[n - 16..].copy_from_slice(&Md5::digest(&body));
        assert!(parse(&Bytes::from(junk)).is_none());
    }
}
