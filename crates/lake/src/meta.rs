//! What the lake knows of an object besides its bytes: the attributes S3 keeps (content type,
//! user metadata, ...), the ETag, the size and the time. On local disk they live in a sidecar
//! file under `.sluice-meta/` (never among the objects, so a reader of the bucket's directory
//! sees plain files only); the sidecar names the file it describes by inode, size and mtime, so
//! a sidecar left stale by a crash, or missing for a file put there by another program, is
//! noticed and the file still served (with a derived ETag and default attributes).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// The attributes S3 keeps with an object and answers with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectAttrs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// User metadata (`x-amz-meta-<name>`): names lowercased, without the prefix.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    /// Server-side encryption: asked for by a write (any reference to a configured key, or
    /// none for the default key), recorded once written (the algorithm and the key's ARN; the
    /// file is then encrypted, see `sse.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sse: Option<crate::sse::Sse>,
}

/// One object: what HeadObject answers, and a listing's entry (whose `attrs` are empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// The entity tag, without quotes: the MD5 of the bytes in hex, `<hex>-<parts>` for a
    /// multipart upload's object, or, for a file the lake did not write, one derived from its
    /// inode, size and mtime.
    pub etag: String,
    /// Last modification, ms since the epoch.
    pub modified_ms: i64,
    pub attrs: ObjectAttrs,
    /// The number of parts of an object made by a multipart upload.
    pub parts_count: Option<u32>,
}

/// Which file a sidecar describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileId {
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

impl FileId {
    pub fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            ino: m.ino(),
            size: m.len(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        }
    }

    pub fn modified_ms(&self) -> i64 {
        (self.mtime_ns / 1_000_000) as i64
    }

    /// The ETag of a file without a valid sidecar: stable while the file is unchanged.
    pub fn derived_etag(&self) -> String {
        let mut h = Md5::new();
        h.update(format!(
            "sluice-file:{}:{}:{}",
            self.ino, self.size, self.mtime_ns
        ));
        hex::encode(h.finalize())
    }
}

/// The sidecar's version; a sidecar of another version is ignored (as if missing).
pub(crate) const SIDECAR_VERSION: u32 = 1;

/// The sidecar file (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sidecar {
    pub v: u32,
    pub file: FileId,
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
    #[serde(default)]
    pub attrs: ObjectAttrs,
    /// The object's size when the file is not its bytes as they are (an encrypted file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<u64>,
}

impl Sidecar {
    pub fn parse(bytes: &[u8]) -> Option<Sidecar> {
        serde_json::from_slice::<Sidecar>(bytes)
            .ok()
            .filter(|s| s.v == SIDECAR_VERSION)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The object's metadata, if this sidecar describes `file`; otherwise the derived one.
    pub fn meta_for(this: Option<Sidecar>, key: &str, file: &FileId) -> ObjectMeta {
        match this.filter(|s| s.file == *file) {
            Some(s) => ObjectMeta {
                key: key.to_string(),
                size: s.plain.unwrap_or(file.size),
                etag: s.etag,
                modified_ms: file.modified_ms(),
                attrs: s.attrs,
                parts_count: s.parts,
            },
            None => ObjectMeta {
                key: key.to_string(),
                size: file.size,
                etag: file.derived_etag(),
                modified_ms: file.modified_ms(),
                attrs: ObjectAttrs::default(),
                parts_count: None,
            },
        }
    }
}

/// A multipart object's ETag: the MD5 of the parts' MD5s, then `-` and the count.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut h = Md5::new();
    for m in part_md5s {
        h.update(m);
    }
    format!("{}-{}", hex::encode(h.finalize()), part_md5s.len())
}

/// An ETag as a client sends it (quoted or not, `W/` or not) in the lake's form (bare).
pub fn bare_etag(etag: &str) -> &str {
    let e = etag.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etags_are_md5_of_md5s() {
        let a: [u8; 16] = Md5::digest(b"a").into();
        let b: [u8; 16] = Md5::digest(b"b").into();
        let mut cat = Vec::new();
        cat.extend_from_slice(&a);
        cat.extend_from_slice(&b);
        assert_eq!(
            multipart_etag(&[a, b]),
            format!("{}-2", hex::encode(Md5::digest(&cat)))
        );
        assert_eq!(bare_etag("\"abc\""), "abc");
        assert_eq!(bare_etag("W/\"abc\""), "abc");
        assert_eq!(bare_etag("abc"), "abc");
    }

    #[test]
    fn a_sidecar_only_describes_its_own_file() {
        let file = FileId {
            ino: 7,
            size: 3,
            mtime_ns: 1_500_000_000,
        };
        let s = Sidecar {
            v: SIDECAR_VERSION,
            file,
            etag: "e".into(),
            parts: None,
            attrs: ObjectAttrs {
                content_type: Some("text/plain".into()),
                ..ObjectAttrs::default()
            },
            plain: None,
        };
        let back = Sidecar::parse(&s.to_bytes()).unwrap();
        assert_eq!(back, s);
        let m = Sidecar::meta_for(Some(back.clone()), "k", &file);
        assert_eq!((m.etag.as_str(), m.modified_ms), ("e", 1500));
        let other = FileId { ino: 8, ..file };
        let m = Sidecar::meta_for(Some(back), "k", &other);
        assert_eq!(m.etag, other.derived_etag());
        assert_eq!(m.attrs, ObjectAttrs::default());
        assert!(Sidecar::parse(b"{\"v\":2}").is_none());
    }
}
