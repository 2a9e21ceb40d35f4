//! Sequence numbers: 56-digit decimal strings, as Kinesis's look, strictly increasing per shard.
//!
//! ```text
//! 49 | shard epoch (20 digits) | shard index (10 digits) | position (24 digits)
//! ```
//! The shard epoch is fixed when the shard is created and is greater than its parents', so a
//! child's sequence numbers are above every parent's. The position counts the points between
//! records: the record at log offset `n` has position `n + 1`, and position 0 (the shard's
//! StartingSequenceNumber) is below every record, as on AWS. So "after sequence number p"
//! reads from offset `p`, for a record's number and for a point with no record alike (what a
//! subscription's ContinuationSequenceNumber is when no record has arrived yet). Fixed width
//! makes string order equal numeric order.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber {
    pub shard_epoch: u64,
    pub shard_index: u32,
    pub position: u64,
}

impl SequenceNumber {
    pub const DIGITS: usize = 56;

    /// The sequence number of the record at log offset `offset`.
    pub fn of_record(shard_epoch: u64, shard_index: u32, offset: u64) -> SequenceNumber {
        SequenceNumber {
            shard_epoch,
            shard_index,
            position: offset + 1,
        }
    }

    const PREFIX: &'static str = "49";

    /// Parses a sluice sequence number; `None` for any other digit string.
    pub fn parse(s: &str) -> Option<SequenceNumber> {
        if s.len() != Self::DIGITS
            || !s.bytes().all(|b| b.is_ascii_digit())
            || !s.starts_with(Self::PREFIX)
        {
            return None;
        }
        let shard_epoch = s[2..22].parse().ok()?;
        let shard_index = s[22..32].parse().ok()?;
        let position = s[32..56].parse().ok()?;
        Some(SequenceNumber {
            shard_epoch,
            shard_index,
            position,
        })
    }
}

const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `n` as exactly `out.len()` decimal digits, zero-padded, two digits at a time.
fn digits(out: &mut [u8], mut n: u64) {
    let mut end = out.len();
    while end >= 2 {
        let pair = (n % 100) as usize * 2;
        out[end - 2..end].copy_from_slice(&PAIRS[pair..pair + 2]);
        n /= 100;
        end -= 2;
    }
    if end == 1 {
        out[0] = b'0' + (n % 10) as u8;
    }
}

impl SequenceNumber {
    /// The 56 ASCII digits, without the formatting machinery: this runs once per record on
    /// the write path.
    pub fn to_digits(&self) -> [u8; Self::DIGITS] {
        let mut out = [0u8; Self::DIGITS];
        out[..2].copy_from_slice(Self::PREFIX.as_bytes());
        digits(&mut out[2..22], self.shard_epoch);
        digits(&mut out[22..32], self.shard_index as u64);
        digits(&mut out[32..56], self.position);
        out
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The digits are ASCII, so this borrows them unchanged; no replacement ever happens.
        f.write_str(&String::from_utf8_lossy(&self.to_digits()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let a = SequenceNumber {
            shard_epoch: 1_700_000_000_000,
            shard_index: 3,
            position: 0,
        };
        let b = SequenceNumber { position: 10, ..a };
        let sa = a.to_string();
        assert_eq!(sa.len(), 56);
        assert_eq!(SequenceNumber::parse(&sa), Some(a));
        assert!(sa < b.to_string());
        assert_eq!(
            sa,
            format!(
                "49{:020}{:010}{:024}",
                a.shard_epoch, a.shard_index, a.position
            )
        );
        assert_eq!(
            sa,
            format!(
                "49{:020}{:010}{:024}",
                a.shard_epoch, a.shard_index, a.position
            )
        );
        let nines = SequenceNumber {
            shard_epoch: u64::MAX,
            shard_index: u32::MAX,
            position: u64::MAX,
        }
        .to_string();
        assert_eq!(nines.len(), 56);
        assert_eq!(SequenceNumber::parse("12345"), None);
        assert_eq!(SequenceNumber::parse(&"1".repeat(56)), None);
    }
}
