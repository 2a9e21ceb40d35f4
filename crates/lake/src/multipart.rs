//! Multipart uploads, kept durably in `.sluice-uploads/<upload id>/` until completed or
//! aborted (with a remote store too: parts are staged locally and the object is uploaded at
//! completion): `upload.json` (bucket, key, attributes, initiation time), and per part
//! `NNNNN.part` (its bytes) with `NNNNN.json` (its MD5, and which file it describes: a part
//! replaced by a crash-interrupted upload is noticed and not used). Every function here
//! blocks.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::durable::{sync_dir, write_atomic};
use crate::limits::{MULTIPART_OBJECT_BYTES_MAX, PART_BYTES_MIN, PART_NUMBER_MAX, UPLOADS_MAX};
use crate::meta::{bare_etag, FileId, ObjectAttrs, ObjectMeta};
use crate::stage::{Digests, TempFile};
use crate::{Lake, LakeError};

/// An upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub attrs: ObjectAttrs,
    pub initiated_ms: i64,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    /// The MD5 of the part, hex, without quotes.
    pub etag: String,
    pub size: u64,
    pub modified_ms: i64,
}

/// One page of ListParts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartsPage {
    pub upload: UploadInfo,
    pub parts: Vec<PartInfo>,
    pub truncated: bool,
}

/// One page of ListMultipartUploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadsPage {
    pub uploads: Vec<UploadInfo>,
    pub truncated: bool,
}

/// A part chosen for completion.
#[derive(Debug, Clone)]
pub(crate) struct PartFile {
    pub path: PathBuf,
    pub md5: [u8; 16],
    pub size: u64,
}

const RECORD_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct UploadRecord {
    v: u32,
    bucket: String,
    key: String,
    #[serde(default)]
    attrs: ObjectAttrs,
    initiated_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct PartRecord {
    v: u32,
    file: FileId,
    md5: String,
    /// The part's size when the file is encrypted (an upload with SSE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plain: Option<u64>,
}

fn uploads_dir(lake: &Lake) -> PathBuf {
    lake.root().join(".sluice-uploads")
}

fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn no_upload(id: &str) -> LakeError {
    LakeError::NoSuchUpload {
        upload_id: id.into(),
    }
}

pub(crate) fn create(
    lake: &Lake,
    bucket: &str,
    key: &str,
    attrs: ObjectAttrs,
) -> Result<String, LakeError> {
    if !lake.is_remote() {
        crate::local::bucket_info(lake, bucket)?;
    }
    let dir = uploads_dir(lake);
    std::fs::create_dir_all(&dir).map_err(|e| LakeError::io(dir.clone(), e))?;
    let count = std::fs::read_dir(&dir)
        .map_err(|e| LakeError::io(dir.clone(), e))?
        .count();
    if count >= UPLOADS_MAX {
        return Err(LakeError::TooManyUploads { max: UPLOADS_MAX });
    }
    let id = format!("{:032x}", rand::random::<u128>());
    let updir = dir.join(&id);
    std::fs::create_dir(&updir).map_err(|e| LakeError::io(updir.clone(), e))?;
    let record = UploadRecord {
        v: RECORD_VERSION,
        bucket: bucket.into(),
        key: key.into(),
        attrs,
        initiated_ms: crate::clock::now_ms(),
    };
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    let result = write_atomic(&lake.tmp_dir(), &updir.join("upload.json"), &bytes)
        .and_then(|()| sync_dir(&dir));
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&updir);
        return Err(LakeError::io(updir, e));
    }
    Ok(id)
}

fn read_record(lake: &Lake, id: &str) -> Option<UploadRecord> {
    if !valid_id(id) {
        return None;
    }
    let b = std::fs::read(uploads_dir(lake).join(id).join("upload.json")).ok()?;
    serde_json::from_slice::<UploadRecord>(&b)
        .ok()
        .filter(|r| r.v == RECORD_VERSION)
}

fn info(id: &str, r: UploadRecord) -> UploadInfo {
    UploadInfo {
        upload_id: id.into(),
        bucket: r.bucket,
        key: r.key,
        attrs: r.attrs,
        initiated_ms: r.initiated_ms,
    }
}

/// The upload, if it exists and is of `bucket/key`.
pub(crate) fn load(
    lake: &Lake,
    bucket: &str,
    key: &str,
    id: &str,
) -> Result<UploadInfo, LakeError> {
    match read_record(lake, id) {
        Some(r) if r.bucket == bucket && r.key == key => Ok(info(id, r)),
        _ => Err(no_upload(id)),
    }
}

fn part_name(n: u32, ext: &str) -> String {
    format!("{n:05}.{ext}")
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn commit_part(
    lake: &Lake,
    bucket: &str,
    key: &str,
    id: &str,
    n: u32,
    file: &TempFile,
    digests: &Digests,
) -> Result<ObjectMeta, LakeError> {
    let _guard = lake.lock("", id);
    load(lake, bucket, key, id)?;
    let dir = uploads_dir(lake).join(id);
    let dest = dir.join(part_name(n, "part"));
    std::fs::rename(&file.path, &dest).map_err(|e| LakeError::io(dest.clone(), e))?;
    sync_dir(&dir).map_err(|e| LakeError::io(dir.clone(), e))?;
    let md5 = hex::encode(digests.md5);
    let record = PartRecord {
        v: RECORD_VERSION,
        file: file.id,
        md5: md5.clone(),
        plain: (file.plain_size != file.id.size).then_some(file.plain_size),
    };
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    let json = dir.join(part_name(n, "json"));
    write_atomic(&lake.tmp_dir(), &json, &bytes).map_err(|e| LakeError::io(json, e))?;
    Ok(ObjectMeta {
        key: key.into(),
        size: file.plain_size,
        etag: md5,
        modified_ms: file.id.modified_ms(),
        attrs: ObjectAttrs::default(),
        parts_count: None,
    })
}

/// The valid parts of an upload, by number.
fn parts(lake: &Lake, id: &str) -> Result<BTreeMap<u32, (PartInfo, PathBuf)>, LakeError> {
    let dir = uploads_dir(lake).join(id);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(no_upload(id)),
        Err(e) => return Err(LakeError::io(dir, e)),
    };
    let mut out = BTreeMap::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(".json"))
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|n| (1..=PART_NUMBER_MAX).contains(n))
        else {
            continue;
        };
        let Some(record) = std::fs::read(e.path())
            .ok()
            .and_then(|b| serde_json::from_slice::<PartRecord>(&b).ok())
            .filter(|r| r.v == RECORD_VERSION)
        else {
            continue;
        };
        let path = dir.join(part_name(n, "part"));
        let Ok(m) = std::fs::metadata(&path) else {
            continue;
        };
        if FileId::of(&m) != record.file {
            continue;
        }
        out.insert(
            n,
            (
                PartInfo {
                    part_number: n,
                    etag: record.md5,
                    size: record.plain.unwrap_or(record.file.size),
                    modified_ms: record.file.modified_ms(),
                },
                path,
            ),
        );
    }
    Ok(out)
}

/// Checks a CompleteMultipartUpload's part list against what was uploaded: ascending part
/// numbers, each uploaded with that ETag, each but the last at least 5 MiB.
pub(crate) fn check_complete(
    lake: &Lake,
    bucket: &str,
    key: &str,
    id: &str,
    wanted: &[(u32, String)],
) -> Result<(UploadInfo, Vec<PartFile>), LakeError> {
    let upload = load(lake, bucket, key, id)?;
    let have = parts(lake, id)?;
    let mut prev = 0;
    let mut out = Vec::with_capacity(wanted.len());
    let mut total: u64 = 0;
    for (i, (n, etag)) in wanted.iter().enumerate() {
        if !(1..=PART_NUMBER_MAX).contains(n) {
            return Err(LakeError::InvalidPartNumber {
                part_number: *n,
                max: PART_NUMBER_MAX,
            });
        }
        if *n <= prev {
            return Err(LakeError::InvalidPartOrder);
        }
        prev = *n;
        let (part, path) = match have.get(n) {
            Some(p) if p.0.etag == bare_etag(etag) => p,
            _ => return Err(LakeError::InvalidPart { part_number: *n }),
        };
        if i + 1 < wanted.len() && part.size < PART_BYTES_MIN {
            return Err(LakeError::EntityTooSmall {
                part_number: *n,
                size: part.size,
                size_min: PART_BYTES_MIN,
            });
        }
        total += part.size;
        let mut md5 = [0u8; 16];
        hex::decode_to_slice(&part.etag, &mut md5)
            .map_err(|_| LakeError::InvalidPart { part_number: *n })?;
        out.push(PartFile {
            path: path.clone(),
            md5,
            size: part.size,
        });
    }
    if out.is_empty() {
        return Err(LakeError::InvalidPart { part_number: 0 });
    }
    if total > MULTIPART_OBJECT_BYTES_MAX {
        return Err(LakeError::EntityTooLarge {
            size_max: MULTIPART_OBJECT_BYTES_MAX,
        });
    }
    Ok((upload, out))
}

/// Removes an upload and its parts (already gone: fine).
pub(crate) fn remove(lake: &Lake, id: &str) -> Result<(), LakeError> {
    if !valid_id(id) {
        return Err(no_upload(id));
    }
    let _guard = lake.lock("", id);
    let root = uploads_dir(lake);
    let dir = root.join(id);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {
            let _ = sync_dir(&root);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LakeError::io(dir, e)),
    }
}

fn all_uploads(lake: &Lake) -> Result<Vec<UploadInfo>, LakeError> {
    let root = uploads_dir(lake);
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LakeError::io(root, e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Ok(id) = e.file_name().into_string() else {
            continue;
        };
        if let Some(r) = read_record(lake, &id) {
            out.push(info(&id, r));
        }
    }
    Ok(out)
}

/// Aborts every upload into `bucket` (the bucket is being deleted).
pub(crate) fn abort_all(lake: &Lake, bucket: &str) -> Result<(), LakeError> {
    for u in all_uploads(lake)? {
        if u.bucket == bucket {
            remove(lake, &u.upload_id)?;
        }
    }
    Ok(())
}

pub(crate) fn list_parts(
    lake: &Lake,
    bucket: &str,
    key: &str,
    id: &str,
    after: u32,
    max: usize,
) -> Result<PartsPage, LakeError> {
    let upload = load(lake, bucket, key, id)?;
    let mut parts: Vec<PartInfo> = parts(lake, id)?
        .into_values()
        .map(|(p, _)| p)
        .filter(|p| p.part_number > after)
        .collect();
    let truncated = parts.len() > max;
    parts.truncate(max);
    Ok(PartsPage {
        upload,
        parts,
        truncated,
    })
}

pub(crate) fn list_uploads(
    lake: &Lake,
    bucket: &str,
    prefix: &str,
    after: Option<(String, Option<String>)>,
    max: usize,
) -> Result<UploadsPage, LakeError> {
    let mut all: Vec<UploadInfo> = all_uploads(lake)?
        .into_iter()
        .filter(|u| u.bucket == bucket && u.key.starts_with(prefix))
        .collect();
    all.sort_by(|a, b| {
        (a.key.as_str(), a.initiated_ms, a.upload_id.as_str()).cmp(&(
            b.key.as_str(),
            b.initiated_ms,
            b.upload_id.as_str(),
        ))
    });
    let start = match &after {
        None => 0,
        Some((k, None)) => all.partition_point(|u| u.key.as_str() <= k.as_str()),
        Some((k, Some(id))) => match all.iter().position(|u| u.key == *k && u.upload_id == *id) {
            Some(i) => i + 1,
            None => all.partition_point(|u| u.key.as_str() <= k.as_str()),
        },
    };
    let mut uploads: Vec<UploadInfo> = all.into_iter().skip(start).collect();
    let truncated = uploads.len() > max;
    uploads.truncate(max);
    Ok(UploadsPage { uploads, truncated })
}

/// Where an upload's parts are (for tests).
#[cfg(test)]
pub(crate) fn dir_of(lake: &Lake, id: &str) -> PathBuf {
    uploads_dir(lake).join(id)
}
