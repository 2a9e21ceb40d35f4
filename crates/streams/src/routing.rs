//! Hash-key routing: a partition key's MD5, read as a 128-bit big-endian integer, picks the
//! shard whose `[start, end]` range holds it.

use md5::{Digest, Md5};

/// The largest hash key, 2^128 - 1.
pub const HASH_KEY_MAX: u128 = u128::MAX;

pub fn hash_key_of(partition_key: &[u8]) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key).into())
}

/// Splits `0..=2^128-1` into `count` contiguous ranges the way Kinesis does: each of width
/// `floor(2^128 / count)`, the last one taking the remainder.
pub fn even_ranges(count: u32) -> Vec<(u128, u128)> {
    assert!(count > 0);
    if count == 1 {
        return vec![(0, u128::MAX)];
    }
    let n = count as u128;
    // floor(2^128 / n) without overflowing: 2^128 = MAX + 1.
    let step = u128::MAX / n + u128::from((u128::MAX % n) + 1 == n);
    (0..n)
        .map(|i| {
            let start = i * step;
            let end = if i + 1 == n {
                u128::MAX
            } else {
                (i + 1) * step - 1
            };
            (start, end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_routing_matches_known_values() {
        // md5("123") = 202cb962ac59075b964b07152d234b70
        assert_eq!(hash_key_of(b"123"), 0x202cb962ac59075b964b07152d234b70);
    }

    #[test]
    fn ranges_split_like_kinesis() {
        assert_eq!(even_ranges(1), vec![(0, u128::MAX)]);
        let two = even_ranges(2);
        assert_eq!(two[0], (0, 170141183460469231731687303715884105727));
        assert_eq!(two[1], (170141183460469231731687303715884105728, u128::MAX));
        let three = even_ranges(3);
        assert_eq!(three[0].1, 113427455640312821154458202477256070484);
        assert_eq!(three[1].0, 113427455640312821154458202477256070485);
        for n in [1u32, 2, 3, 4, 7, 10, 64, 500] {
            let r = even_ranges(n);
            assert_eq!(r.len(), n as usize);
            assert_eq!(r[0].0, 0);
            assert_eq!(r.last().unwrap().1, u128::MAX);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
    }
}
