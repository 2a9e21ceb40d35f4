//! Shard iterators and pagination tokens: opaque base64 strings that carry a position and the
//! time they were issued, sealed with a keyed MAC so that a client can neither make one nor
//! alter one it was given.
//!
//! The main types:
//! - [`TokenKey`] is the server's secret: 32 random bytes kept in the data directory
//!   (`token.key`), so that tokens stay valid across a restart and are worthless to any other
//!   data directory.
//! - [`ShardIterator`] and [`PageToken`] encode to and decode from the sealed strings;
//!   [`token_age`] says whether an issue time is fresh, expired or impossible.
//!
//! Iterator bytes: `version(1) issued_ms(8) stream_uid(8) shard_index(4) offset(8)
//! name_len(1) name tag(16)`, little-endian. The tag is the first 16 bytes of
//! HMAC-SHA256(key, kind || what precedes it), where `kind` (`I` or `P`) keeps an iterator
//! from being accepted as a page token or the other way round.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sluice_streams::ShardCursor;

/// 2: keyed tags (1 was an unkeyed checksum, which any client could recompute).
const VERSION: u8 = 2;
/// 128 bits of HMAC-SHA256: truncation to half the output is what RFC 2104 allows, and keeps
/// an iterator well under its 512-character limit.
const TAG_BYTES: usize = 16;
const KIND_ITERATOR: u8 = b'I';
const KIND_PAGE: u8 = b'P';

/// The secret that seals tokens.
#[derive(Clone)]
pub struct TokenKey([u8; TokenKey::BYTES]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// Loading or creating the token key failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    #[error("reading the token key {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token key {path} is {len} bytes, not {expected}; remove it to make a new one (outstanding shard iterators and NextTokens become invalid)", expected = TokenKey::BYTES)]
    Length { path: PathBuf, len: u64 },
    #[error("writing the token key {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("drawing random bytes for the token key")]
    Random(#[source] rand::Error),
}

impl TokenKey {
    pub const BYTES: usize = 32;
    pub const FILE_NAME: &'static str = "token.key";

    pub fn new(bytes: [u8; TokenKey::BYTES]) -> TokenKey {
        TokenKey(bytes)
    }

    /// A fresh key from the operating system's random source.
    pub fn random() -> Result<TokenKey, TokenKeyError> {
        use rand::RngCore;
        let mut bytes = [0u8; TokenKey::BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(TokenKeyError::Random)?;
        Ok(TokenKey(bytes))
    }

    /// The key of data directory `dir`: read from `token.key`, or made and written there on
    /// first start (mode 0600; temp file, fsync, rename, fsync of the directory, so a crash
    /// leaves either no key or the whole key under that name).
    pub fn load_or_create(dir: &Path) -> Result<TokenKey, TokenKeyError> {
        let path = dir.join(Self::FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let len = bytes.len() as u64;
                let bytes: [u8; TokenKey::BYTES] = bytes
                    .try_into()
                    .map_err(|_| TokenKeyError::Length { path, len })?;
                Ok(TokenKey(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = TokenKey::random()?;
                key.write(dir, &path)
                    .map_err(|source| TokenKeyError::Write { path, source })?;
                Ok(key)
            }
            Err(source) => Err(TokenKeyError::Read { path, source }),
        }
    }

    fn write(&self, dir: &Path, path: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{}.tmp", Self::FILE_NAME));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        // A temp file left by an earlier crash keeps its old mode: set it again.
        #[cfg(unix)]
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        f.write_all(&self.0)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    }

    fn mac(&self, kind: u8, body: &[u8]) -> Hmac<Sha256> {
        // HMAC pads a key shorter than the hash's block with zeros; doing it here gives the
        // same MAC as a 32-byte key and a constructor that cannot fail.
        let mut block = [0u8; 64];
        block[..TokenKey::BYTES].copy_from_slice(&self.0);
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
        mac.update(&[kind]);
        mac.update(body);
        mac
    }

    fn seal(&self, kind: u8, mut bytes: Vec<u8>) -> String {
        let tag = self.mac(kind, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_BYTES]);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// The body of a token this key sealed as `kind`, or `None` for anything else (damaged,
    /// truncated, made up, or sealed by another key).
    fn open(&self, kind: u8, token: &str) -> Option<Vec<u8>> {
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()?;
        let body_len = bytes.len().checked_sub(TAG_BYTES)?;
        if body_len == 0 {
            return None;
        }
        // Constant-time comparison of the tag.
        self.mac(kind, &bytes[..body_len])
            .verify_truncated_left(&bytes[body_len..])
            .ok()?;
        bytes.truncate(body_len);
        Some(bytes)
    }
}

/// What a token's issue time says about it at `now_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAge {
    Fresh,
    /// Older than its time to live.
    Expired,
    /// Issued more than a time to live in the future, or so far from now that the difference
    /// does not fit an `i64`: no token this server issued looks like that.
    Invalid,
}

/// Checked arithmetic only: `issued_ms` comes from the client (under the MAC, but a check that
/// cannot overflow does not depend on that). A token issued up to `ttl_ms` in the future is
/// tolerated, for a wall clock that stepped back.
pub fn token_age(issued_ms: i64, now_ms: i64, ttl_ms: i64) -> TokenAge {
    match now_ms.checked_sub(issued_ms) {
        None => TokenAge::Invalid,
        Some(age) if age < ttl_ms.saturating_neg() => TokenAge::Invalid,
        Some(age) if age > ttl_ms => TokenAge::Expired,
        Some(_) => TokenAge::Fresh,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIterator {
    pub cursor: ShardCursor,
    pub issued_ms: i64,
}

impl ShardIterator {
    pub fn encode(&self, key: &TokenKey) -> String {
        let name = self.cursor.stream.as_bytes();
        assert!(
            name.len() <= u8::MAX as usize,
            "stream names are at most 128 bytes"
        );
        let mut b = Vec::with_capacity(30 + name.len() + TAG_BYTES);
        b.push(VERSION);
        b.extend_from_slice(&self.issued_ms.to_le_bytes());
        b.extend_from_slice(&self.cursor.stream_uid.to_le_bytes());
        b.extend_from_slice(&self.cursor.shard_index.to_le_bytes());
        b.extend_from_slice(&self.cursor.offset.to_le_bytes());
        b.push(name.len() as u8);
        b.extend_from_slice(name);
        key.seal(KIND_ITERATOR, b)
    }

    pub fn decode(key: &TokenKey, token: &str) -> Option<ShardIterator> {
        let b = key.open(KIND_ITERATOR, token)?;
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
    pub fn encode(&self, key: &TokenKey) -> String {
        let mut b = Vec::new();
        b.push(VERSION);
        b.extend_from_slice(&self.issued_ms.to_le_bytes());
        for s in [&self.scope, &self.after] {
            // Stream names and shard ids: far below 4 GiB.
            let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(&s.as_bytes()[..len as usize]);
        }
        key.seal(KIND_PAGE, b)
    }

    pub fn decode(key: &TokenKey, token: &str) -> Option<PageToken> {
        let b = key.open(KIND_PAGE, token)?;
        if b.len() < 9 || b[0] != VERSION {
            return None;
        }
        let issued_ms = i64::from_le_bytes(b[1..9].try_into().ok()?);
        let mut at: usize = 9;
        let mut strings = Vec::new();
        for _ in 0..2 {
            let len_end = at.checked_add(4)?;
            let len =
                usize::try_from(u32::from_le_bytes(b.get(at..len_end)?.try_into().ok()?)).ok()?;
            let end = len_end.checked_add(len)?;
            strings.push(std::str::from_utf8(b.get(len_end..end)?).ok()?.to_string());
            at = end;
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

    /// The zero-padded key block gives exactly HMAC-SHA256 under the 32-byte key.
    #[test]
    fn the_mac_is_hmac_sha256_of_the_key() {
        let bytes = [7u8; TokenKey::BYTES];
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).unwrap();
        reference.update(&[1]);
        reference.update(b"body");
        assert_eq!(
            TokenKey::new(bytes).mac(1, b"body").finalize().into_bytes(),
            reference.finalize().into_bytes()
        );
    }

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
        let key = TokenKey::new([7; 32]);
        let s = it.encode(&key);
        assert!(s.len() <= crate::limits::SHARD_ITERATOR_CHARS_MAX);
        assert_eq!(ShardIterator::decode(&key, &s), Some(it));
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&s)
            .unwrap();
        bytes[22] ^= 1;
        assert_eq!(
            ShardIterator::decode(
                &key,
                &base64::engine::general_purpose::STANDARD.encode(bytes)
            ),
            None
        );
        assert_eq!(ShardIterator::decode(&key, "not an iterator"), None);
    }

    #[test]
    fn page_token_round_trip() {
        let t = PageToken {
            scope: "s".into(),
            after: "shardId-000000000001".into(),
            issued_ms: 5,
        };
        let key = TokenKey::new([7; 32]);
        assert_eq!(PageToken::decode(&key, &t.encode(&key)), Some(t));
    }

    fn iterator(issued_ms: i64) -> ShardIterator {
        ShardIterator {
            cursor: ShardCursor {
                stream: "s".into(),
                stream_uid: 42,
                shard_index: 0,
                offset: 10,
            },
            issued_ms,
        }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn unb64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    /// The unkeyed scheme tokens used to be sealed with: anyone could compute it.
    fn old_seal(body: &[u8]) -> String {
        use sha2::Digest;
        let mut b = body.to_vec();
        b.extend_from_slice(&Sha256::digest(body)[..8]);
        b64(&b)
    }

    #[test]
    fn forged_tags_are_refused() {
        let key = TokenKey::new([1; 32]);
        let good = iterator(1_700_000_000_000).encode(&key);
        let bytes = unb64(&good);
        let body = &bytes[..bytes.len() - TAG_BYTES];
        // Every single-bit change, anywhere, is refused.
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert_eq!(
                    ShardIterator::decode(&key, &b64(&b)),
                    None,
                    "byte {i} bit {bit}"
                );
            }
        }
        // Truncated or extended, or the body alone.
        for len in 0..bytes.len() {
            assert_eq!(
                ShardIterator::decode(&key, &b64(&bytes[..len])),
                None,
                "{len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(ShardIterator::decode(&key, &b64(&longer)), None);
        // A changed offset under the old, unkeyed checksum; a zero tag; the old version.
        let mut moved = body.to_vec();
        moved[21] ^= 0xff;
        assert_eq!(ShardIterator::decode(&key, &old_seal(&moved)), None);
        let mut zero_tag = body.to_vec();
        zero_tag.extend_from_slice(&[0; TAG_BYTES]);
        assert_eq!(ShardIterator::decode(&key, &b64(&zero_tag)), None);
        let mut v1 = body.to_vec();
        v1[0] = 1;
        assert_eq!(ShardIterator::decode(&key, &old_seal(&v1)), None);
        assert_eq!(ShardIterator::decode(&key, ""), None);
        assert_eq!(
            ShardIterator::decode(&key, &good),
            Some(iterator(1_700_000_000_000))
        );
    }

    #[test]
    fn tokens_of_another_key_or_kind_are_refused() {
        let (a, b) = (TokenKey::new([1; 32]), TokenKey::new([2; 32]));
        let it = iterator(5).encode(&a);
        assert_eq!(ShardIterator::decode(&b, &it), None);
        let page = PageToken {
            scope: "ListStreams".into(),
            after: "x".into(),
            issued_ms: 5,
        };
        assert_eq!(PageToken::decode(&b, &page.encode(&a)), None);
        // One key, but an iterator is not a page token and a page token not an iterator.
        assert_eq!(PageToken::decode(&a, &it), None);
        assert_eq!(ShardIterator::decode(&a, &page.encode(&a)), None);
        // Random keys differ.
        let (r1, r2) = (TokenKey::random().unwrap(), TokenKey::random().unwrap());
        assert_ne!(r1.0, r2.0);
        assert_eq!(ShardIterator::decode(&r2, &iterator(5).encode(&r1)), None);
    }

    #[test]
    fn page_token_lengths_are_checked() {
        let key = TokenKey::new([3; 32]);
        // A string length past the end, and one that would overflow a 32-bit offset.
        for len in [1u32, 100, u32::MAX] {
            let mut body = vec![VERSION];
            body.extend_from_slice(&5i64.to_le_bytes());
            body.extend_from_slice(&len.to_le_bytes());
            let sealed = key.seal(KIND_PAGE, body);
            assert_eq!(PageToken::decode(&key, &sealed), None, "{len}");
        }
    }

    #[test]
    fn issue_times_at_the_ends_of_i64() {
        let ttl = crate::limits::SHARD_ITERATOR_TTL_MS;
        let now = 1_700_000_000_000;
        let key = TokenKey::new([4; 32]);
        for issued in [i64::MIN, i64::MAX, i64::MIN + 1, -1, 0] {
            // They round-trip (the MAC does not care), and the age check does not overflow.
            let it = iterator(issued);
            assert_eq!(ShardIterator::decode(&key, &it.encode(&key)), Some(it));
            for now in [now, i64::MIN, i64::MAX, 0] {
                let _ = token_age(issued, now, ttl);
                let _ = java_date(issued);
            }
        }
        assert_eq!(token_age(i64::MIN, now, ttl), TokenAge::Invalid);
        assert_eq!(token_age(i64::MAX, now, ttl), TokenAge::Invalid);
        assert_eq!(token_age(i64::MIN, i64::MAX, ttl), TokenAge::Invalid);
        assert_eq!(token_age(0, now, ttl), TokenAge::Expired);
        assert_eq!(token_age(now - ttl - 1, now, ttl), TokenAge::Expired);
        assert_eq!(token_age(now - ttl, now, ttl), TokenAge::Fresh);
        assert_eq!(token_age(now, now, ttl), TokenAge::Fresh);
        assert_eq!(token_age(now + ttl, now, ttl), TokenAge::Fresh);
        assert_eq!(token_age(now + ttl + 1, now, ttl), TokenAge::Invalid);
    }

    #[test]
    fn key_file_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = TokenKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(TokenKey::FILE_NAME);
        assert_eq!(std::fs::read(&path).unwrap(), a.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [TokenKey::FILE_NAME]);
        let b = TokenKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.0, b.0);
        let token = iterator(9).encode(&a);
        assert_eq!(ShardIterator::decode(&b, &token), Some(iterator(9)));
        // A damaged key file is an error, not a silent new key.
        std::fs::write(&path, [0u8; 31]).unwrap();
        let e = TokenKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, TokenKeyError::Length { len: 31, .. }), "{e}");
        // A leftover temp file from a crash does not matter.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(dir.path().join("token.key.tmp"), b"junk").unwrap();
        let c = TokenKey::load_or_create(dir.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), c.0);
        assert!(!dir.path().join("token.key.tmp").exists());
    }

    #[test]
    fn java_dates() {
        assert_eq!(java_date(1_421_889_722_000), "Thu Jan 22 01:22:02 UTC 2015");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_709_164_800_000), "Thu Feb 29 00:00:00 UTC 2024");
    }
}
