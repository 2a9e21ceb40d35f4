//! Encryption at rest (S3's server-side encryption, SSE-S3 `AES256` and SSE-KMS `aws:kms`) with
//! keys from local key files (`[[keys]]`, [`KeyConfig`]) playing KMS's role.
//!
//! Design (envelope encryption, AES-256-GCM from RustCrypto's `aes-gcm`):
//! - Each object gets a fresh random 256-bit data key. The data key encrypts the body in
//!   chunks of [`CHUNK_BYTES`]; the configured key (the "master", what a KMS key is) only wraps
//!   the data key (AES-256-GCM, random 96-bit nonce), once per object. Why not the configured
//!   key directly with a random nonce per chunk: GCM with random 96-bit nonces is safe for
//!   about 2^32 encryptions under one key, which a busy lake's chunks would approach; with a
//!   key per object, chunk nonces are a counter that cannot repeat, the configured key sees
//!   one encryption per object, and a later key rotation re-wraps 60 bytes per object instead
//!   of re-encrypting the data.
//! - Chunked (STREAM-like): chunk `i`'s nonce is `[0; 3] ‖ i (u64, big-endian) ‖ last (1
//!   byte)`, so chunks cannot be reordered, dropped, or the object truncated or extended
//!   without a failed tag. A range read decrypts only the chunks it covers; memory stays at
//!   one chunk whatever the object's size.
//! - The file is self-describing: a header names the algorithm, the kind of SSE, the key's ARN,
//!   the chunk size and the plaintext size, and holds the wrapped data key. The header (all of
//!   it before the wrap) is the wrap's associated data, so changing any field fails the unwrap.
//!   A file whose sidecar is missing (a crash between the rename and the sidecar) is still
//!   recognized by its magic and decrypted, never served as ciphertext.
//!
//! Layout of an encrypted file (integers big-endian):
//!
//! ```text
//! magic "SLUICE\xe5\x01" (8) | cipher u8 (1 = AES-256-GCM) | sse u8 (1 = AES256, 2 = aws:kms)
//! | chunk size u32 | plaintext size u64 | key ARN length u16 | key ARN
//! | wrap nonce (12) | wrapped data key (32 + 16 tag)
//! then the chunks: each chunk's ciphertext followed by its 16-byte tag
//! ```

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use serde::{Deserialize, Serialize};

use crate::LakeError;

/// Plaintext bytes per chunk.
pub const CHUNK_BYTES: u32 = 64 * 1024;
const TAG: usize = 16;
const MAGIC: &[u8; 8] = b"SLUICE\xe5\x01";
const CIPHER_AES_256_GCM: u8 = 1;
/// The header's fixed part before the key ARN.
const FIXED: usize = 8 + 1 + 1 + 4 + 8 + 2;
const WRAP: usize = 12 + 32 + TAG;

/// S3's `x-amz-server-side-encryption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SseAlgorithm {
    /// SSE-S3: the lake's default key.
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS: a configured key named by ARN, key id or alias (the default key if none).
    #[serde(rename = "aws:kms")]
    AwsKms,
}

impl SseAlgorithm {
    /// The header value S3 answers.
    pub fn as_str(self) -> &'static str {
        match self {
            SseAlgorithm::Aes256 => "AES256",
            SseAlgorithm::AwsKms => "aws:kms",
        }
    }

    fn code(self) -> u8 {
        match self {
            SseAlgorithm::Aes256 => 1,
            SseAlgorithm::AwsKms => 2,
        }
    }

    fn from_code(c: u8) -> Option<SseAlgorithm> {
        match c {
            1 => Some(SseAlgorithm::Aes256),
            2 => Some(SseAlgorithm::AwsKms),
            _ => None,
        }
    }
}

/// Server-side encryption of an object: as asked (a write's `key` is any reference to a
/// configured key, or `None` for the default key), and as recorded once written (`key` is the
/// key's ARN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sse {
    pub algorithm: SseAlgorithm,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Sse {
    /// SSE-S3 (`AES256`) with the default key.
    pub fn aes256() -> Sse {
        Sse {
            algorithm: SseAlgorithm::Aes256,
            key: None,
        }
    }

    /// SSE-KMS with the key `key` names (ARN, key id, alias name or alias ARN).
    pub fn kms(key: impl Into<String>) -> Sse {
        Sse {
            algorithm: SseAlgorithm::AwsKms,
            key: Some(key.into()),
        }
    }
}

/// One `[[keys]]` entry: a key file standing in for a KMS key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key's ARN, `arn:aws:kms:<region>:<account>:key/<key id>`: what
    /// `x-amz-server-side-encryption-aws-kms-key-id` answers and KMSEncryptionConfig names.
    /// The key id alone also names it.
    pub arn: String,
    /// An alias, `alias/<name>` (also accepted as `arn:aws:kms:<region>:<account>:alias/<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The key file: 32 random bytes written as 64 hex digits (surrounding whitespace and a
    /// final newline are ignored), e.g. `openssl rand -hex 32 > lake.key`. A relative path is
    /// relative to the configuration file's directory.
    pub file: PathBuf,
    /// The default key: SSE-S3 (`AES256`), `aws:kms` without a key id, and Firehose's
    /// AWS_OWNED_CMK use it. At most one key is the default.
    #[serde(default)]
    pub default: bool,
}

fn key_id_of(arn: &str) -> Option<&str> {
    let mut p = arn.splitn(6, ':');
    let (a, part, svc, region, account, res) = (
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
    );
    let ok = a == "arn"
        && !part.is_empty()
        && svc == "kms"
        && !region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit());
    let id = res.strip_prefix("key/")?;
    let id_ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (ok && id_ok).then_some(id)
}

fn alias_ok(alias: &str) -> bool {
    alias.strip_prefix("alias/").is_some_and(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
    })
}

impl KeyConfig {
    /// Checks what the types cannot, without reading the files: ARN and alias forms, no name
    /// given twice, at most one default.
    pub fn validate_all(keys: &[KeyConfig]) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for k in keys {
            let id = key_id_of(&k.arn).ok_or_else(|| {
                format!(
                    "arn {:?} is not a KMS key ARN (arn:aws:kms:<region>:<12-digit account>:key/<id>)",
                    k.arn
                )
            })?;
            if let Some(a) = &k.alias {
                if !alias_ok(a) {
                    return Err(format!(
                        "alias {a:?} must be alias/<name> (letters, digits, '/', '_', '-')"
                    ));
                }
                if !names.insert(a.clone()) {
                    return Err(format!("alias {a:?} is given twice"));
                }
            }
            if !names.insert(k.arn.clone()) || !names.insert(id.to_string()) {
                return Err(format!("the key {:?} is given twice", k.arn));
            }
            if k.file.as_os_str().is_empty() {
                return Err(format!("the key {:?} has no file", k.arn));
            }
        }
        if keys.iter().filter(|k| k.default).count() > 1 {
            return Err("at most one key can be the default".into());
        }
        Ok(())
    }
}

/// One configured key, loaded.
#[derive(Clone)]
pub(crate) struct MasterKey {
    pub arn: String,
    id: String,
    alias: Option<String>,
    cipher: Aes256Gcm,
    default: bool,
}

/// The configured keys. Cheap to clone; empty by default (then every encrypted write is
/// refused and encrypted objects cannot be read).
#[derive(Clone, Default)]
pub struct Keyring {
    keys: Arc<Vec<MasterKey>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.arn))
            .finish()
    }
}

/// Reads a key file: 64 hex digits, whitespace around them ignored.
fn read_key_file(path: &Path) -> Result<[u8; 32], String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let hex_text = String::from_utf8_lossy(&text);
    let hex_text = hex_text.trim();
    let mut key = [0u8; 32];
    if hex_text.len() != 64 || hex::decode_to_slice(hex_text, &mut key).is_err() {
        return Err(format!(
            "{}: a key file holds 32 bytes as 64 hex digits (openssl rand -hex 32); this one has {} characters{}",
            path.display(),
            hex_text.len(),
            if hex_text.len() == 64 { " that are not all hex digits" } else { "" }
        ));
    }
    Ok(key)
}

impl Keyring {
    /// Loads the keys: each file must exist and hold a 32-byte key. A file others can read is
    /// loaded with a warning. Relative paths are relative to `base`.
    pub fn load(keys: &[KeyConfig], base: Option<&Path>) -> Result<Keyring, String> {
        use std::os::unix::fs::PermissionsExt;
        KeyConfig::validate_all(keys)?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let path = match base {
                Some(b) if k.file.is_relative() => b.join(&k.file),
                _ => k.file.clone(),
            };
            let key = read_key_file(&path).map_err(|e| format!("key {}: {e}", k.arn))?;
            if let Ok(m) = std::fs::metadata(&path) {
                if m.permissions().mode() & 0o004 != 0 {
                    tracing::warn!(key = %k.arn, file = %path.display(),
                        "the key file is world-readable: chmod 600 it");
                }
            }
            out.push(Keyring::entry(k, &key));
        }
        Ok(Keyring {
            keys: Arc::new(out),
        })
    }

    fn entry(k: &KeyConfig, key: &[u8; 32]) -> MasterKey {
        MasterKey {
            arn: k.arn.clone(),
            id: key_id_of(&k.arn).unwrap_or(&k.arn).to_string(),
            alias: k.alias.clone(),
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
            default: k.default,
        }
    }

    /// A keyring of keys given in memory (tests, embedders): `(config, key bytes)`; the
    /// configs' `file` is not read.
    pub fn from_keys(keys: &[(KeyConfig, [u8; 32])]) -> Result<Keyring, String> {
        let configs: Vec<KeyConfig> = keys.iter().map(|(c, _)| c.clone()).collect();
        KeyConfig::validate_all(&configs)?;
        Ok(Keyring {
            keys: Arc::new(keys.iter().map(|(c, k)| Keyring::entry(c, k)).collect()),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key a reference names: its ARN, its key id, its alias (`alias/<name>`) or the
    /// alias's ARN (`arn:aws:kms:<region>:<account>:alias/<name>`).
    pub(crate) fn find(&self, reference: &str) -> Option<&MasterKey> {
        let alias_of_arn = reference
            .split_once(":alias/")
            .filter(|(p, _)| p.starts_with("arn:") && p.contains(":kms:"))
            .map(|(_, n)| format!("alias/{n}"));
        self.keys.iter().find(|k| {
            k.arn == reference
                || k.id == reference
                || k.alias.as_deref() == Some(reference)
                || (alias_of_arn.is_some() && k.alias == alias_of_arn)
        })
    }

    /// Whether `reference` names a configured key.
    pub fn has_key(&self, reference: &str) -> bool {
        self.find(reference).is_some()
    }

    /// The ARN of the key `reference` names.
    pub fn arn_of(&self, reference: &str) -> Option<&str> {
        self.find(reference).map(|k| k.arn.as_str())
    }

    /// The ARN of the default key, if one is configured.
    pub fn default_arn(&self) -> Option<&str> {
        self.default_key().map(|k| k.arn.as_str())
    }

    fn default_key(&self) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.default)
    }

    /// The key `sse` asks for, and `sse` as it will be recorded (the key's ARN).
    pub(crate) fn resolve(&self, sse: &Sse) -> Result<Sealer, LakeError> {
        let key = match (&sse.key, sse.algorithm) {
            (Some(r), _) => self
                .find(r)
                .ok_or_else(|| LakeError::KmsKeyNotFound(r.clone()))?,
            (None, SseAlgorithm::Aes256) => self.default_key().ok_or(LakeError::NoDefaultKey)?,
            (None, SseAlgorithm::AwsKms) => self.default_key().ok_or(LakeError::NoDefaultKey)?,
        };
        Ok(Sealer {
            master: key.clone(),
            algorithm: sse.algorithm,
        })
    }
}

/// What encrypts one object: the configured key and the kind of SSE.
#[derive(Clone)]
pub(crate) struct Sealer {
    master: MasterKey,
    algorithm: SseAlgorithm,
}

impl Sealer {
    /// The SSE recorded with the object.
    pub fn recorded(&self) -> Sse {
        Sse {
            algorithm: self.algorithm,
            key: Some(self.master.arn.clone()),
        }
    }
}

fn chunk_nonce(i: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&i.to_be_bytes());
    n[11] = u8::from(last);
    n
}

fn header_bytes(algorithm: SseAlgorithm, arn: &str, plain_size: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(FIXED + arn.len() + WRAP);
    h.extend_from_slice(MAGIC);
    h.push(CIPHER_AES_256_GCM);
    h.push(algorithm.code());
    h.extend_from_slice(&CHUNK_BYTES.to_be_bytes());
    h.extend_from_slice(&plain_size.to_be_bytes());
    h.extend_from_slice(&(arn.len() as u16).to_be_bytes());
    h.extend_from_slice(arn.as_bytes());
    h
}

fn crypto_err() -> io::Error {
    io::Error::other("encryption failed")
}

/// Writes an encrypted file: plaintext in, header and chunks out. The header is written with
/// the final size by [`SealWriter::finish`].
pub(crate) struct SealWriter {
    file: File,
    sealer: Sealer,
    data_key: [u8; 32],
    cipher: Aes256Gcm,
    buf: Vec<u8>,
    index: u64,
    size: u64,
    header_len: u64,
}

impl SealWriter {
    pub fn new(mut file: File, sealer: &Sealer) -> io::Result<SealWriter> {
        let data_key: [u8; 32] = rand::random();
        let arn = &sealer.master.arn;
        if arn.len() > u16::MAX as usize {
            return Err(io::Error::other("key ARN too long"));
        }
        let header_len = (FIXED + arn.len() + WRAP) as u64;
        // A placeholder of the header's length; the real one once the size is known.
        file.write_all(&vec![0u8; header_len as usize])?;
        Ok(SealWriter {
            file,
            sealer: sealer.clone(),
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key)),
            data_key,
            buf: Vec::with_capacity(CHUNK_BYTES as usize),
            index: 0,
            size: 0,
            header_len,
        })
    }

    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        let nonce = chunk_nonce(self.index, last);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), self.buf.as_slice())
            .map_err(|_| crypto_err())?;
        self.file.write_all(&ct)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    pub fn write_all(&mut self, mut b: &[u8]) -> io::Result<()> {
        self.size += b.len() as u64;
        while !b.is_empty() {
            // A full chunk is sealed only once more bytes follow: the last one is flagged.
            if self.buf.len() == CHUNK_BYTES as usize {
                self.seal_chunk(false)?;
            }
            let n = (CHUNK_BYTES as usize - self.buf.len()).min(b.len());
            self.buf.extend_from_slice(&b[..n]);
            b = &b[n..];
        }
        Ok(())
    }

    /// Seals the last chunk and writes the header; the file (not yet fsynced) and the
    /// plaintext size.
    pub fn finish(mut self) -> io::Result<(File, u64)> {
        self.seal_chunk(true)?;
        let mut h = header_bytes(self.sealer.algorithm, &self.sealer.master.arn, self.size);
        let wrap_nonce: [u8; 12] = rand::random();
        let wrapped = self
            .sealer
            .master
            .cipher
            .encrypt(
                Nonce::from_slice(&wrap_nonce),
                Payload {
                    msg: &self.data_key,
                    aad: &h,
                },
            )
            .map_err(|_| crypto_err())?;
        h.extend_from_slice(&wrap_nonce);
        h.extend_from_slice(&wrapped);
        debug_assert_eq!(h.len() as u64, self.header_len);
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&h)?;
        self.file.seek(SeekFrom::End(0))?;
        self.data_key = [0; 32];
        Ok((self.file, self.size))
    }
}

/// The header of an encrypted file, parsed (not yet unwrapped).
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub algorithm: SseAlgorithm,
    pub key_arn: String,
    pub chunk: u64,
    pub plain_size: u64,
    aad: Vec<u8>,
    wrap_nonce: [u8; 12],
    wrapped: Vec<u8>,
}

impl Header {
    /// Whether the file starts as an encrypted file does.
    pub fn has_magic(file: &File) -> bool {
        let mut m = [0u8; 8];
        file.read_exact_at(&mut m, 0).is_ok() && &m == MAGIC
    }

    /// Reads and checks the header; `None` if it is not one (or does not fit the file's size).
    pub fn read(file: &File, file_size: u64) -> Option<Header> {
        let mut fixed = [0u8; FIXED];
        file.read_exact_at(&mut fixed, 0).ok()?;
        if &fixed[..8] != MAGIC || fixed[8] != CIPHER_AES_256_GCM {
            return None;
        }
        let algorithm = SseAlgorithm::from_code(fixed[9])?;
        let chunk = u32::from_be_bytes(fixed[10..14].try_into().ok()?) as u64;
        let plain_size = u64::from_be_bytes(fixed[14..22].try_into().ok()?);
        let arn_len = u16::from_be_bytes(fixed[22..24].try_into().ok()?) as usize;
        if chunk == 0 {
            return None;
        }
        let mut rest = vec![0u8; arn_len + WRAP];
        file.read_exact_at(&mut rest, FIXED as u64).ok()?;
        let key_arn = String::from_utf8(rest[..arn_len].to_vec()).ok()?;
        let mut aad = fixed.to_vec();
        aad.extend_from_slice(&rest[..arn_len]);
        let wrap_nonce: [u8; 12] = rest[arn_len..arn_len + 12].try_into().ok()?;
        let wrapped = rest[arn_len + 12..].to_vec();
        let h = Header {
            algorithm,
            key_arn,
            chunk,
            plain_size,
            aad,
            wrap_nonce,
            wrapped,
        };
        (h.file_size() == Some(file_size)).then_some(h)
    }

    fn header_len(&self) -> u64 {
        (self.aad.len() + WRAP) as u64
    }

    fn chunks(&self) -> u64 {
        self.plain_size.div_ceil(self.chunk).max(1)
    }

    /// The encrypted file's size for this header.
    fn file_size(&self) -> Option<u64> {
        self.header_len()
            .checked_add(self.plain_size)?
            .checked_add(self.chunks().checked_mul(TAG as u64)?)
    }

    /// The SSE recorded in the header.
    pub fn sse(&self) -> Sse {
        Sse {
            algorithm: self.algorithm,
            key: Some(self.key_arn.clone()),
        }
    }

    /// Unwraps the data key with the configured key the header names.
    pub fn open(&self, keys: &Keyring) -> Result<Opener, OpenError> {
        let master = keys
            .keys
            .iter()
            .find(|k| k.arn == self.key_arn)
            .ok_or(OpenError::NoKey)?;
        let mut dk = master
            .cipher
            .decrypt(
                Nonce::from_slice(&self.wrap_nonce),
                Payload {
                    msg: &self.wrapped,
                    aad: &self.aad,
                },
            )
            .map_err(|_| OpenError::Damaged)?;
        let cipher = Aes256Gcm::new_from_slice(&dk).map_err(|_| OpenError::Damaged)?;
        dk.fill(0);
        Ok(Opener {
            cipher,
            header: self.clone(),
        })
    }
}

/// Why a header does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The key it names is not configured.
    NoKey,
    /// The unwrap failed: the header was altered, or the key under that name is another.
    Damaged,
}

/// Decrypts an encrypted file's chunks.
#[derive(Clone)]
pub(crate) struct Opener {
    cipher: Aes256Gcm,
    pub header: Header,
}

impl Opener {
    /// The plaintext of chunk `i`; an error if it was altered.
    pub fn chunk(&self, file: &File, i: u64) -> io::Result<Vec<u8>> {
        let h = &self.header;
        let n = h.chunks();
        if i >= n {
            return Err(io::Error::other("chunk out of range"));
        }
        let start = i * h.chunk;
        let len = (h.plain_size - start.min(h.plain_size)).min(h.chunk);
        let mut ct = vec![0u8; len as usize + TAG];
        file.read_exact_at(&mut ct, h.header_len() + i * (h.chunk + TAG as u64))?;
        self.cipher
            .decrypt(
                Nonce::from_slice(&chunk_nonce(i, i + 1 == n)),
                ct.as_slice(),
            )
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, DAMAGED))
    }

    /// Sends the plaintext of `range` (already within the size) to `emit`, a chunk at a time;
    /// stops early when `emit` says so.
    pub fn read_range(
        &self,
        file: &File,
        range: std::ops::Range<u64>,
        mut emit: impl FnMut(Vec<u8>) -> bool,
    ) -> io::Result<()> {
        let c = self.header.chunk;
        let mut pos = range.start;
        while pos < range.end {
            let i = pos / c;
            let pt = self.chunk(file, i)?;
            let from = (pos - i * c) as usize;
            let to = ((range.end - i * c) as usize).min(pt.len());
            if from >= to {
                return Err(io::Error::other("short chunk"));
            }
            pos += (to - from) as u64;
            let piece = if from == 0 && to == pt.len() {
                pt
            } else {
                pt[from..to].to_vec()
            };
            if !emit(piece) {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// The message of a chunk that fails its tag.
pub(crate) const DAMAGED: &str = "an encrypted chunk failed authentication (altered on disk?)";

/// Reads an encrypted file's plaintext in order (`std::io::Read`), for copies and for
/// completing multipart uploads.
pub(crate) struct PlainReader {
    file: File,
    opener: Opener,
    next: u64,
    buf: Vec<u8>,
    at: usize,
}

impl PlainReader {
    pub fn new(file: File, opener: Opener) -> PlainReader {
        PlainReader {
            file,
            opener,
            next: 0,
            buf: Vec::new(),
            at: 0,
        }
    }
}

impl io::Read for PlainReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.buf.len() {
            if self.next >= self.opener.header.chunks() {
                return Ok(0);
            }
            self.buf = self.opener.chunk(&self.file, self.next)?;
            self.at = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Where a staged body goes: a plain file, or an encrypted one.
pub(crate) enum Sink {
    Plain(File),
    Sealed(Box<SealWriter>),
}

impl Sink {
    pub fn new(file: File, sealer: Option<&Sealer>) -> io::Result<Sink> {
        Ok(match sealer {
            None => Sink::Plain(file),
            Some(s) => Sink::Sealed(Box::new(SealWriter::new(file, s)?)),
        })
    }

    pub fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(f) => f.write_all(b),
            Sink::Sealed(w) => w.write_all(b),
        }
    }

    /// The file, complete but not fsynced, and the plaintext size (`None`: as the file's).
    pub fn finish(self) -> io::Result<(File, Option<u64>)> {
        match self {
            Sink::Plain(f) => Ok((f, None)),
            Sink::Sealed(w) => w.finish().map(|(f, n)| (f, Some(n))),
        }
    }
}
