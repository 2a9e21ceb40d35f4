//! The local back end: buckets are directories under the root, objects plain files at their
//! keys, sidecars under `.sluice-meta/`. Every function here blocks (file I/O): callers run it on
//! the blocking pool.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::durable::{create_dirs, prune_empty_dirs, sync_dir, write_atomic};
use crate::list::{Entry, ListPage, ListQuery, Pager};
use crate::meta::{FileId, ObjectAttrs, ObjectMeta, Sidecar, SIDECAR_VERSION};
use crate::sse::{Header, Opener};
use crate::stage::TempFile;
use crate::{BucketInfo, ByteRange, Lake, LakeError};

const RESERVED: &str = ".sluice-";

fn bucket_dir(lake: &Lake, bucket: &str) -> PathBuf {
    lake.root().join(bucket)
}

fn meta_dir(lake: &Lake, bucket: &str) -> PathBuf {
    lake.root().join(".sluice-meta").join(bucket)
}

fn bucket_record(lake: &Lake, bucket: &str) -> PathBuf {
    meta_dir(lake, bucket).join(".sluice-bucket")
}

#[derive(Serialize, Deserialize)]
struct BucketRecord {
    v: u32,
    created_ms: i64,
}

pub(crate) fn create_bucket(lake: &Lake, bucket: &str) -> Result<(), LakeError> {
    let root = lake.root();
    std::fs::create_dir_all(root).map_err(|e| LakeError::io(root.to_path_buf(), e))?;
    let dir = bucket_dir(lake, bucket);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(LakeError::BucketAlreadyOwnedByYou(bucket.into()));
        }
        Err(e) => return Err(LakeError::io(dir, e)),
    }
    sync_dir(root).map_err(|e| LakeError::io(root.to_path_buf(), e))?;
    let meta = meta_dir(lake, bucket);
    std::fs::create_dir_all(&meta).map_err(|e| LakeError::io(meta.clone(), e))?;
    let record = BucketRecord {
        v: 1,
        created_ms: crate::clock::now_ms(),
    };
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    write_atomic(&lake.tmp_dir(), &bucket_record(lake, bucket), &bytes)
        .map_err(|e| LakeError::io(meta, e))
}

pub(crate) fn bucket_info(lake: &Lake, bucket: &str) -> Result<BucketInfo, LakeError> {
    let dir = bucket_dir(lake, bucket);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {
            let created_ms = std::fs::read(bucket_record(lake, bucket))
                .ok()
                .and_then(|b| serde_json::from_slice::<BucketRecord>(&b).ok())
                .map(|r| r.created_ms)
                .unwrap_or_else(|| FileId::of(&m).modified_ms());
            Ok(BucketInfo {
                name: bucket.into(),
                created_ms,
            })
        }
        Ok(_) => Err(LakeError::NoSuchBucket(bucket.into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(LakeError::NoSuchBucket(bucket.into()))
        }
        Err(e) => Err(LakeError::io(dir, e)),
    }
}

pub(crate) fn list_buckets(lake: &Lake) -> Result<Vec<BucketInfo>, LakeError> {
    let root = lake.root();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LakeError::io(root.to_path_buf(), e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| LakeError::io(root.to_path_buf(), e))?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if crate::check_bucket(&name).is_err() {
            continue;
        }
        match bucket_info(lake, &name) {
            Ok(b) => out.push(b),
            Err(LakeError::NoSuchBucket(_)) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub(crate) fn delete_bucket(lake: &Lake, bucket: &str) -> Result<(), LakeError> {
    bucket_info(lake, bucket)?;
    let dir = bucket_dir(lake, bucket);
    // Directories are removed bottom-up, each only if empty: a file anywhere (even one a
    // concurrent put just renamed in) stops it.
    match remove_empty_tree(&dir) {
        Ok(true) => {}
        Ok(false) => return Err(LakeError::BucketNotEmpty(bucket.into())),
        Err(e) => return Err(LakeError::io(dir, e)),
    }
    let _ = sync_dir(lake.root());
    let meta = meta_dir(lake, bucket);
    match std::fs::remove_dir_all(&meta) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LakeError::io(meta, e)),
    }
}

/// Removes `dir` if it holds nothing but empty directories; `false` if it holds a file.
fn remove_empty_tree(dir: &Path) -> io::Result<bool> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            if !remove_empty_tree(&e.path())? {
                return Ok(false);
            }
        } else {
            return Ok(false);
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(false),
        Err(e) => Err(e),
    }
}

fn read_sidecar(lake: &Lake, bucket: &str, key: &str) -> Option<Sidecar> {
    std::fs::read(meta_dir(lake, bucket).join(key))
        .ok()
        .and_then(|b| Sidecar::parse(&b))
}

/// Opens the object: the file (kept open, so its bytes are this version's even if it is
/// replaced meanwhile), its metadata and, for an encrypted file, its header. An encrypted file
/// is known by its sidecar or, without a valid one (a crash between the rename and the
/// sidecar), by its magic: it is never served as it is on disk.
pub(crate) fn open(
    lake: &Lake,
    bucket: &str,
    key: &str,
) -> Result<(File, ObjectMeta, Option<Header>), LakeError> {
    let path = bucket_dir(lake, bucket).join(key);
    let no_key = || LakeError::NoSuchKey {
        bucket: bucket.into(),
        key: key.into(),
    };
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            return match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                    bucket_info(lake, bucket)?;
                    Err(no_key())
                }
                io::ErrorKind::InvalidFilename => Err(LakeError::KeyTooLong),
                _ => Err(LakeError::io(path, e)),
            };
        }
    };
    let m = file
        .metadata()
        .map_err(|e| LakeError::io(path.clone(), e))?;
    if !m.is_file() {
        return Err(no_key());
    }
    let id = FileId::of(&m);
    let sidecar = read_sidecar(lake, bucket, key).filter(|s| s.file == id);
    let described = sidecar.is_some();
    let mut meta = Sidecar::meta_for(sidecar, key, &id);
    let sealed = if described {
        meta.attrs.sse.is_some()
    } else {
        Header::has_magic(&file)
    };
    if !sealed {
        return Ok((file, meta, None));
    }
    let header = Header::read(&file, id.size).ok_or_else(|| LakeError::Damaged {
        object: format!("{bucket}/{key}"),
    })?;
    meta.size = header.plain_size;
    if !described {
        meta.attrs.sse = Some(header.sse());
    }
    Ok((file, meta, Some(header)))
}

/// Unwraps an encrypted object's data key: `KeyUnavailable` if its key is not configured,
/// `Damaged` if the unwrap fails.
pub(crate) fn opener(
    lake: &Lake,
    bucket: &str,
    key: &str,
    h: &Header,
) -> Result<Opener, LakeError> {
    h.open(&lake.keyring()).map_err(|e| match e {
        crate::sse::OpenError::NoKey => LakeError::KeyUnavailable {
            object: format!("{bucket}/{key}"),
            key_arn: h.key_arn.clone(),
        },
        crate::sse::OpenError::Damaged => LakeError::Damaged {
            object: format!("{bucket}/{key}"),
        },
    })
}

/// Renames a staged file into place as `bucket/key` and writes its sidecar.
pub(crate) fn commit_object(
    lake: &Lake,
    bucket: &str,
    key: &str,
    file: &TempFile,
    etag: String,
    parts: Option<u32>,
    attrs: ObjectAttrs,
) -> Result<ObjectMeta, LakeError> {
    bucket_info(lake, bucket)?;
    let dir = bucket_dir(lake, bucket);
    let dest = dir.join(key);
    let conflict = || LakeError::KeyConflict {
        bucket: bucket.into(),
        key: key.into(),
    };
    let map = |e: io::Error, path: &Path| match e.kind() {
        io::ErrorKind::NotADirectory
        | io::ErrorKind::IsADirectory
        | io::ErrorKind::AlreadyExists
        | io::ErrorKind::DirectoryNotEmpty => conflict(),
        io::ErrorKind::InvalidFilename => LakeError::KeyTooLong,
        _ => LakeError::io(path.to_path_buf(), e),
    };
    let parent_rel = Path::new(key).parent().unwrap_or(Path::new(""));
    let _guard = lake.lock(bucket, key);
    // A concurrent delete may prune a directory just made: make it again (a few times).
    let mut attempt = 0;
    loop {
        attempt += 1;
        create_dirs(&dir, parent_rel).map_err(|e| map(e, &dir))?;
        if std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
            return Err(conflict());
        }
        match std::fs::rename(&file.path, &dest) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 4 => continue,
            Err(e) => return Err(map(e, &dest)),
        }
    }
    let parent = dest.parent().unwrap_or(&dir);
    sync_dir(parent).map_err(|e| LakeError::io(parent.to_path_buf(), e))?;
    let sidecar = Sidecar {
        v: SIDECAR_VERSION,
        file: file.id,
        etag,
        parts,
        plain: (file.plain_size != file.id.size || attrs.sse.is_some()).then_some(file.plain_size),
        attrs,
    };
    write_sidecar(lake, bucket, key, &sidecar)?;
    Ok(Sidecar::meta_for(Some(sidecar), key, &file.id))
}

fn write_sidecar(lake: &Lake, bucket: &str, key: &str, s: &Sidecar) -> Result<(), LakeError> {
    let mdir = meta_dir(lake, bucket);
    let dest = mdir.join(key);
    let parent_rel = Path::new(key).parent().unwrap_or(Path::new(""));
    for attempt in 0..2 {
        std::fs::create_dir_all(&mdir).map_err(|e| LakeError::io(mdir.clone(), e))?;
        let result = create_dirs(&mdir, parent_rel)
            .and_then(|()| write_atomic(&lake.tmp_dir(), &dest, &s.to_bytes()));
        match result {
            Ok(()) => return Ok(()),
            // A stale sidecar (of a key deleted without its sidecar, or of a directory) is in
            // the way: the objects are the truth, so it goes.
            Err(e)
                if attempt == 0
                    && matches!(
                        e.kind(),
                        io::ErrorKind::NotADirectory
                            | io::ErrorKind::IsADirectory
                            | io::ErrorKind::AlreadyExists
                            | io::ErrorKind::DirectoryNotEmpty
                    ) =>
            {
                clear_meta_path(&mdir, key);
            }
            Err(e) => return Err(LakeError::io(dest, e)),
        }
    }
    Err(LakeError::io(
        dest,
        io::Error::other("the sidecar's path stays blocked"),
    ))
}

/// Removes whatever stands on the sidecar path of `key`: a file where a directory should be,
/// or a directory where the sidecar goes.
fn clear_meta_path(mdir: &Path, key: &str) {
    let mut p = mdir.to_path_buf();
    let parts: Vec<&str> = key.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        p.push(part);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() && last => {
                let _ = std::fs::remove_dir_all(&p);
            }
            Ok(m) if !m.is_dir() && !last => {
                let _ = std::fs::remove_file(&p);
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

pub(crate) fn delete(lake: &Lake, bucket: &str, key: &str) -> Result<(), LakeError> {
    let dir = bucket_dir(lake, bucket);
    let path = dir.join(key);
    let _guard = lake.lock(bucket, key);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            bucket_info(lake, bucket)?;
            return Ok(());
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidFilename => return Ok(()),
        Err(e) => return Err(LakeError::io(path, e)),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LakeError::io(path, e)),
    }
    let parent = path.parent().unwrap_or(&dir).to_path_buf();
    sync_dir(&parent).map_err(|e| LakeError::io(parent.clone(), e))?;
    let mdir = meta_dir(lake, bucket);
    let mpath = mdir.join(key);
    let _ = std::fs::remove_file(&mpath);
    // Empty directories left behind go, so the bucket reads as empty when it is.
    prune_empty_dirs(&dir, &parent);
    if let Some(mp) = mpath.parent() {
        prune_empty_dirs(&mdir, mp);
    }
    Ok(())
}

/// A directory's entries in key order: a directory sorts as its name followed by `/`.
fn read_sorted(dir: &Path) -> io::Result<Vec<(String, bool)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if name.starts_with(RESERVED) {
            continue;
        }
        let t = e.file_type()?;
        let is_dir = if t.is_symlink() {
            std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir())
        } else {
            t.is_dir()
        };
        out.push((name, is_dir));
    }
    out.sort_by(|a, b| {
        let ka =
            a.0.as_bytes()
                .iter()
                .chain(if a.1 { &b"/"[..] } else { &[] });
        let kb =
            b.0.as_bytes()
                .iter()
                .chain(if b.1 { &b"/"[..] } else { &[] });
        ka.cmp(kb)
    });
    Ok(out)
}

/// Whether a directory holds a file anywhere below it (looking at a bounded number of entries;
/// past that it says yes).
fn has_file(dir: &Path, budget: &mut usize) -> io::Result<bool> {
    for (name, is_dir) in read_sorted(dir)? {
        if *budget == 0 {
            return Ok(true);
        }
        *budget -= 1;
        if !is_dir || has_file(&dir.join(name), budget)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Walks the bucket in key order, feeding the pager the entries the query can use: only
/// directories that can hold keys with the prefix and after the cursor are read, and with the
/// delimiter `/` a directory that is a common prefix as a whole is given as one.
pub(crate) fn list_page(
    lake: &Lake,
    bucket: &str,
    q: &ListQuery,
    scan_max: usize,
) -> Result<ListPage, LakeError> {
    bucket_info(lake, bucket)?;
    let dir = bucket_dir(lake, bucket);
    let io_err = |e: io::Error| LakeError::io(dir.clone(), e);
    let mut pager = Pager::new(q, scan_max);
    let slash_rollup = q.delimiter.as_deref() == Some("/");
    let mut stack: Vec<(String, std::vec::IntoIter<(String, bool)>)> = vec![(
        String::new(),
        read_sorted(&dir).map_err(io_err)?.into_iter(),
    )];
    let mut ids: std::collections::HashMap<String, FileId> = std::collections::HashMap::new();
    'walk: while let Some((rel, it)) = stack.last_mut() {
        let Some((name, is_dir)) = it.next() else {
            stack.pop();
            continue;
        };
        let key = format!("{rel}{name}");
        if is_dir {
            let d = format!("{key}/");
            if !(d.starts_with(q.prefix.as_str()) || q.prefix.starts_with(d.as_str())) {
                continue;
            }
            if q.after.as_ref().is_some_and(|c| c.skips_all_under(&d)) {
                continue;
            }
            let whole = slash_rollup
                && d.len() > q.prefix.len()
                && d.starts_with(q.prefix.as_str())
                && !d[q.prefix.len()..d.len() - 1].contains('/')
                && q.after
                    .as_ref()
                    .is_none_or(|c| d.as_str() > c.key.as_str() && !c.key.starts_with(d.as_str()));
            if whole {
                let mut budget = crate::limits::LIST_SCAN_MAX;
                if has_file(&dir.join(&d), &mut budget).map_err(io_err)?
                    && !pager.push(Entry::Prefix(d))
                {
                    break 'walk;
                }
                continue;
            }
            let entries = read_sorted(&dir.join(&d)).map_err(io_err)?;
            stack.push((d, entries.into_iter()));
        } else {
            if !key.starts_with(q.prefix.as_str())
                || q.after.as_ref().is_some_and(|c| c.skips(&key))
            {
                continue;
            }
            let m = match std::fs::metadata(dir.join(&key)) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(e)),
            };
            let id = FileId::of(&m);
            ids.insert(key.clone(), id);
            let lite = ObjectMeta {
                key,
                size: id.size,
                etag: String::new(),
                modified_ms: id.modified_ms(),
                attrs: ObjectAttrs::default(),
                parts_count: None,
            };
            if !pager.push(Entry::Object(Box::new(lite))) {
                break 'walk;
            }
        }
    }
    let mut page = pager.finish();
    // ETags only for what is on the page: one sidecar read per object answered.
    for o in &mut page.objects {
        let Some(id) = ids.get(&o.key).copied() else {
            continue;
        };
        let m = Sidecar::meta_for(read_sidecar(lake, bucket, &o.key), &o.key, &id);
        o.size = m.size;
        o.etag = m.etag;
        o.parts_count = m.parts_count;
    }
    Ok(page)
}

/// Reads `range` of an open file on the blocking pool, a chunk at a time, at most a few ahead.
pub(crate) fn read(
    file: File,
    range: ByteRange,
) -> tokio::sync::mpsc::Receiver<Result<Bytes, LakeError>> {
    use crate::limits::{READ_CHUNK_BYTES, READ_QUEUE_DEPTH};
    let (tx, rx) = tokio::sync::mpsc::channel(READ_QUEUE_DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut pos = range.start;
        while pos < range.end {
            let n = ((range.end - pos) as usize).min(READ_CHUNK_BYTES);
            let mut buf = vec![0u8; n];
            let chunk = match file.read_exact_at(&mut buf, pos) {
                Ok(()) => Ok(Bytes::from(buf)),
                Err(e) => Err(LakeError::io(PathBuf::from("(object)"), e)),
            };
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
            pos += n as u64;
        }
    });
    rx
}

/// Reads `range` of an encrypted file's plaintext on the blocking pool, a chunk at a time
/// (each decrypted and checked before it is sent), at most a few ahead. A chunk that fails
/// authentication ends the stream with `Damaged`.
pub(crate) fn read_sealed(
    file: File,
    opener: Opener,
    range: ByteRange,
    object: String,
) -> tokio::sync::mpsc::Receiver<Result<Bytes, LakeError>> {
    use crate::limits::READ_QUEUE_DEPTH;
    let (tx, rx) = tokio::sync::mpsc::channel(READ_QUEUE_DEPTH);
    tokio::task::spawn_blocking(move || {
        let result = opener.read_range(&file, range, |piece| {
            tx.blocking_send(Ok(Bytes::from(piece))).is_ok()
        });
        if let Err(e) = result {
            let e = if e.kind() == io::ErrorKind::InvalidData {
                LakeError::Damaged { object }
            } else {
                LakeError::io(PathBuf::from("(object)"), e)
            };
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

/// Removes files in `.sluice-tmp/` older than `age_ms`.
pub(crate) fn sweep_temps(lake: &Lake, age_ms: u64) -> Result<usize, LakeError> {
    let dir = lake.tmp_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(LakeError::io(dir, e)),
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for e in entries.flatten() {
        let old = e
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|d| d.as_millis() as u64 > age_ms);
        if old && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}
