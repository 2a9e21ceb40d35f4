//! `sluice-lake` is sluice's object store: buckets of objects, on local disk by default (a
//! bucket is a directory under the lake's root, an object a plain file at its key, so DuckDB or
//! pyarrow read them in place) or on any S3-compatible store through object_store
//! (`[lake] endpoint`, [`LakeConfig`]).
//!
//! The main types:
//! - [`Lake`]: buckets (create, head, list, delete), objects (put, open and read with a range,
//!   head, copy, delete; [`Lake::open_object`] then [`OpenObject::read`]), listings with S3's semantics ([`ListQuery`] → [`ListPage`]) and
//!   multipart uploads. Cheap to clone.
//! - [`ObjectWriter`] streams a body to a temporary file (bounded memory, hashed on the way);
//!   [`Staged`] is that file, fsynced, until [`Staged::commit`] makes it the object (rename and
//!   fsync of the directory locally, a completed upload remotely) or it is dropped.
//! - [`ObjectMeta`] / [`ObjectAttrs`]: size, ETag, time, content type, user metadata. Locally
//!   they live in a sidecar under `.sluice-meta/` (see `meta.rs`), never among the objects.
//! - [`LakeError`]: every situation by name; the S3 API maps it to S3's error codes.
//!
//! Layout of the local lake (the root is `<data_dir>/lake`; names starting `.sluice-` are
//! reserved, and no bucket name starts with a dot):
//!
//! ```text
//! <root>/<bucket>/<key>                 the objects, plain files
//! <root>/.sluice-meta/<bucket>/<key>    their sidecars (JSON)
//! <root>/.sluice-tmp/                   bodies being written (also staging for a remote)
//! <root>/.sluice-uploads/<upload id>/   multipart uploads in progress, with their parts
//! ```
//!
//! Writes are atomic and durable: a body is written to `.sluice-tmp/`, fsynced, renamed to its
//! key and the directory fsynced; a reader never sees part of an object, and an object is
//! acknowledged only once it is durable.

mod clock;
pub mod config;
mod durable;
pub mod limits;
pub mod list;
mod local;
pub mod meta;
mod multipart;
mod remote;
pub mod sse;
mod stage;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

pub use config::LakeConfig;
pub use list::{Cursor, ListPage, ListQuery};
pub use meta::{bare_etag, multipart_etag, ObjectAttrs, ObjectMeta};
pub use multipart::{PartInfo, PartsPage, UploadInfo, UploadsPage};
pub use sse::{KeyConfig, Keyring, Sse, SseAlgorithm};
pub use stage::{DigestKinds, Digests, ObjectWriter, Staged};

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("the bucket {0} does not exist")]
    NoSuchBucket(String),
    #[error("the object {bucket}/{key} does not exist")]
    NoSuchKey { bucket: String, key: String },
    #[error("invalid bucket name {0:?}")]
    InvalidBucketName(String),
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a background task failed: {0}")]
    Task(String),
    #[error("the bucket {0} exists already")]
    BucketAlreadyOwnedByYou(String),
    #[error("the bucket {0} is not empty")]
    BucketNotEmpty(String),
    /// The local lake keeps keys as paths: `a` and `a/b` cannot both be objects.
    #[error(
        "the key {key:?} of {bucket} conflicts with another key (one is a directory of the other)"
    )]
    KeyConflict { bucket: String, key: String },
    #[error("the key is longer than the store allows")]
    KeyTooLong,
    #[error("the body is larger than {size_max} bytes")]
    EntityTooLarge { size_max: u64 },
    #[error(
        "part {part_number} is {size} bytes; every part but the last must be at least {size_min}"
    )]
    EntityTooSmall {
        part_number: u32,
        size: u64,
        size_min: u64,
    },
    #[error("the multipart upload {upload_id} does not exist")]
    NoSuchUpload { upload_id: String },
    #[error("part {part_number} was not uploaded, or its ETag does not match")]
    InvalidPart { part_number: u32 },
    #[error("the parts are not in ascending order of part number")]
    InvalidPartOrder,
    #[error("part numbers run from 1 to {max}; got {part_number}")]
    InvalidPartNumber { part_number: u32, max: u32 },
    #[error("too many multipart uploads in progress (at most {max})")]
    TooManyUploads { max: usize },
    #[error("the lake's disk is full")]
    StorageFull,
    #[error("the object changed while it was read")]
    PreconditionFailed,
    #[error("the remote store refused access: {0}")]
    RemoteDenied(String),
    #[error("the remote store failed: {0}")]
    Remote(String),
    /// A write asked for a key that is not configured (`[[keys]]`).
    #[error("no configured key is named {0:?}")]
    KmsKeyNotFound(String),
    /// A write asked for SSE-S3 (or `aws:kms` without a key id) and no key is the default.
    #[error(
        "server-side encryption without a key id needs a default key ([[keys]] default = true)"
    )]
    NoDefaultKey,
    /// The object is encrypted under a key that is not configured.
    #[error("{object} is encrypted under the key {key_arn}, which is not configured ([[keys]])")]
    KeyUnavailable { object: String, key_arn: String },
    /// The object's encryption does not verify: altered on disk, or the key configured under
    /// its key's ARN is not the one it was written with. Nothing of it is served unverified.
    #[error("{object} could not be decrypted: it was altered on disk, or the key configured under its key id is not the one it was written with")]
    Damaged { object: String },
    /// Encryption at rest is the local lake's; a remote store's objects are not encrypted by
    /// sluice.
    #[error("server-side encryption is not supported with a remote lake ([lake] endpoint): use the store's own encryption")]
    EncryptionUnsupported,
}

impl LakeError {
    pub(crate) fn io(path: PathBuf, source: std::io::Error) -> LakeError {
        if source.kind() == std::io::ErrorKind::StorageFull {
            return LakeError::StorageFull;
        }
        LakeError::Io { path, source }
    }
}

/// One object as listed by [`Lake::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Last modification, ms since the epoch.
    pub modified_ms: i64,
}

/// One bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: String,
    pub created_ms: i64,
}

/// A byte range of an object, `start..end` (end exclusive), already checked against its size.
pub type ByteRange = std::ops::Range<u64>;

/// The lake. Cheap to clone.
#[derive(Clone)]
pub struct Lake {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    remote: Option<remote::Remote>,
    object_bytes_max: u64,
    /// Commits, deletes and part uploads of one key (or upload) run one at a time: a lock per
    /// stripe of keys, so a rename and its sidecar are never interleaved with another's.
    stripes: Vec<Mutex<()>>,
    /// The keys of server-side encryption ([`Lake::set_keyring`]); none by default.
    keys: std::sync::RwLock<Keyring>,
}

const STRIPES: usize = 64;

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("root", &self.inner.root)
            .field("remote", &self.inner.remote.as_ref().map(|r| r.endpoint()))
            .finish()
    }
}

impl Lake {
    /// A lake on local disk under `root` (made if missing on first write).
    pub fn local(root: impl Into<PathBuf>) -> Lake {
        Lake::build(root.into(), None, limits::OBJECT_BYTES_MAX)
    }

    /// The lake `config` names: local under `<data_dir>/lake`, or the remote store at
    /// `config.endpoint` (with `<data_dir>/lake` for staging and multipart uploads).
    pub fn open(config: &LakeConfig, data_dir: &Path) -> Result<Lake, LakeError> {
        config
            .validate()
            .map_err(|e| LakeError::Remote(format!("[lake] {e}")))?;
        let root = data_dir.join("lake");
        let remote = if config.endpoint.is_empty() {
            None
        } else {
            Some(remote::Remote::new(config)?)
        };
        Ok(Lake::build(root, remote, config.object_bytes_max))
    }

    fn build(root: PathBuf, remote: Option<remote::Remote>, object_bytes_max: u64) -> Lake {
        Lake {
            inner: Arc::new(Inner {
                root,
                remote,
                object_bytes_max,
                stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                keys: std::sync::RwLock::new(Keyring::default()),
            }),
        }
    }

    /// The local root (where a bucket's directory is). With a remote store it only holds
    /// staging files and multipart uploads: write objects through the lake, not into it.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Sets the keys server-side encryption uses (`[[keys]]`), for every clone of this lake.
    pub fn set_keyring(&self, keys: Keyring) {
        *self.inner.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
    }

    /// The keys server-side encryption uses.
    pub fn keyring(&self) -> Keyring {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The sealer `sse` asks for (refused on a remote lake, or for a key not configured).
    fn sealer(&self, sse: Option<&Sse>) -> Result<Option<sse::Sealer>, LakeError> {
        let Some(sse) = sse else { return Ok(None) };
        if self.inner.remote.is_some() {
            return Err(LakeError::EncryptionUnsupported);
        }
        self.keyring().resolve(sse).map(Some)
    }

    /// `attrs` as they will be recorded (`sse` naming the key's ARN), and their sealer.
    fn seal(
        &self,
        mut attrs: ObjectAttrs,
    ) -> Result<(ObjectAttrs, Option<sse::Sealer>), LakeError> {
        let sealer = self.sealer(attrs.sse.as_ref())?;
        attrs.sse = sealer.as_ref().map(|s| s.recorded());
        Ok((attrs, sealer))
    }

    /// Whether objects live on a remote store.
    pub fn is_remote(&self) -> bool {
        self.inner.remote.is_some()
    }

    /// The largest body one put takes.
    pub fn object_bytes_max(&self) -> u64 {
        self.inner.object_bytes_max
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.inner.root.join(".sluice-tmp")
    }

    pub(crate) fn lock(&self, bucket: &str, key: &str) -> MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (bucket, key).hash(&mut h);
        let m = &self.inner.stripes[(h.finish() as usize) % STRIPES];
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- buckets ----------------------------------------------------------------------

    /// Makes the bucket if it does not exist (idempotent).
    pub async fn ensure_bucket(&self, bucket: &str) -> Result<(), LakeError> {
        if self.inner.remote.is_some() {
            // One HEAD rather than a CreateBucket per write.
            match self.head_bucket(bucket).await {
                Ok(_) => return Ok(()),
                Err(LakeError::NoSuchBucket(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match self.create_bucket(bucket).await {
            Ok(()) | Err(LakeError::BucketAlreadyOwnedByYou(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Makes a bucket; `BucketAlreadyOwnedByYou` if it exists.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), LakeError> {
        check_bucket(bucket)?;
        if let Some(r) = &self.inner.remote {
            return r.create_bucket(bucket).await;
        }
        let (lake, b) = (self.clone(), bucket.to_string());
        blocking(move || local::create_bucket(&lake, &b)).await
    }

    /// The bucket, or `NoSuchBucket`.
    pub async fn head_bucket(&self, bucket: &str) -> Result<BucketInfo, LakeError> {
        check_bucket(bucket)?;
        if let Some(r) = &self.inner.remote {
            return r.head_bucket(bucket).await;
        }
        let (lake, b) = (self.clone(), bucket.to_string());
        blocking(move || local::bucket_info(&lake, &b)).await
    }

    /// Every bucket, by name.
    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>, LakeError> {
        if let Some(r) = &self.inner.remote {
            return r.list_buckets().await;
        }
        let lake = self.clone();
        blocking(move || local::list_buckets(&lake)).await
    }

    /// Deletes an empty bucket (and its multipart uploads in progress); `BucketNotEmpty`
    /// while it holds an object.
    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), LakeError> {
        check_bucket(bucket)?;
        if let Some(r) = &self.inner.remote {
            r.delete_bucket(bucket).await?;
        } else {
            let (lake, b) = (self.clone(), bucket.to_string());
            blocking(move || local::delete_bucket(&lake, &b)).await?;
        }
        let (lake, b) = (self.clone(), bucket.to_string());
        blocking(move || multipart::abort_all(&lake, &b)).await
    }

    // ---- objects ----------------------------------------------------------------------

    /// Writes `body` as `bucket/key`, atomically and durably, making the bucket if needed.
    pub async fn put_object(&self, bucket: &str, key: &str, body: Bytes) -> Result<(), LakeError> {
        self.put_object_sse(bucket, key, body, None).await
    }

    /// [`Lake::put_object`], encrypted at rest as `sse` asks (`None`: not encrypted).
    pub async fn put_object_sse(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        sse: Option<Sse>,
    ) -> Result<(), LakeError> {
        // A key that is not configured is refused before the bucket is made.
        self.sealer(sse.as_ref())?;
        self.ensure_bucket(bucket).await?;
        let attrs = ObjectAttrs {
            sse,
            ..ObjectAttrs::default()
        };
        let mut w = self
            .writer(bucket, key, attrs, DigestKinds::default())
            .await?;
        w.write(body).await?;
        w.stage().await?.commit().await?;
        Ok(())
    }

    /// A writer for `bucket/key` (the bucket must exist). Write the body, then
    /// [`ObjectWriter::stage`] and [`Staged::commit`]. With `attrs.sse` the body is encrypted
    /// as it is written.
    pub async fn writer(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        kinds: DigestKinds,
    ) -> Result<ObjectWriter, LakeError> {
        check_bucket(bucket)?;
        check_key(key)?;
        let (attrs, sealer) = self.seal(attrs)?;
        // A missing bucket is refused before any body is read.
        self.head_bucket(bucket).await?;
        Ok(ObjectWriter::start(
            self.clone(),
            stage::Target::Object {
                bucket: bucket.into(),
                key: key.into(),
                attrs,
                multipart: None,
            },
            kinds,
            self.inner.object_bytes_max,
            sealer,
        ))
    }

    pub(crate) async fn commit(
        &self,
        target: stage::Target,
        file: stage::TempFile,
        digests: Digests,
    ) -> Result<ObjectMeta, LakeError> {
        match target {
            stage::Target::Part {
                bucket,
                key,
                upload_id,
                part_number,
            } => {
                let lake = self.clone();
                blocking(move || {
                    multipart::commit_part(
                        &lake,
                        &bucket,
                        &key,
                        &upload_id,
                        part_number,
                        &file,
                        &digests,
                    )
                })
                .await
            }
            stage::Target::Object {
                bucket,
                key,
                attrs,
                multipart,
            } => {
                let (etag, parts) = match multipart {
                    Some((etag, n)) => (etag, Some(n)),
                    None => (hex::encode(digests.md5), None),
                };
                if let Some(r) = &self.inner.remote {
                    let meta = r.put_file(&bucket, &key, &file, &attrs).await;
                    stage::remove_later(file.path);
                    return meta;
                }
                let lake = self.clone();
                blocking(move || {
                    local::commit_object(&lake, &bucket, &key, &file, etag, parts, attrs)
                })
                .await
            }
        }
    }

    /// The object's metadata.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta, LakeError> {
        check_bucket(bucket)?;
        check_key(key)?;
        if let Some(r) = &self.inner.remote {
            return r.head(bucket, key).await;
        }
        let (lake, b, k) = (self.clone(), bucket.to_string(), key.to_string());
        blocking(move || local::open(&lake, &b, &k).map(|(_, m, _)| m)).await
    }

    /// Opens the object: its metadata now, its bytes (or a range of them) when read. The bytes
    /// read are those of the version the metadata describes.
    pub async fn open_object(&self, bucket: &str, key: &str) -> Result<OpenObject, LakeError> {
        check_bucket(bucket)?;
        check_key(key)?;
        if let Some(r) = &self.inner.remote {
            let (meta, source) = r.open(bucket, key).await?;
            return Ok(OpenObject {
                meta,
                source: Source::Remote(source),
            });
        }
        let (lake, b, k) = (self.clone(), bucket.to_string(), key.to_string());
        let (file, meta, header) = blocking(move || local::open(&lake, &b, &k)).await?;
        let source = match header {
            None => Source::Local(file),
            Some(h) => Source::Sealed {
                opener: Box::new(local::opener(self, bucket, key, &h)?),
                file,
                object: format!("{bucket}/{key}"),
            },
        };
        Ok(OpenObject { meta, source })
    }

    /// The whole object (at most `object_bytes_max` bytes).
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<Bytes, LakeError> {
        let o = self.open_object(bucket, key).await?;
        if o.meta.size > self.inner.object_bytes_max {
            return Err(LakeError::EntityTooLarge {
                size_max: self.inner.object_bytes_max,
            });
        }
        let mut out = bytes::BytesMut::with_capacity(o.meta.size as usize);
        let mut r = o.read(None);
        while let Some(chunk) = r.next_chunk().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.freeze())
    }

    /// Deletes the object; deleting one that does not exist is not an error (as in S3).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), LakeError> {
        check_bucket(bucket)?;
        if check_key(key).is_err() {
            // No such key can exist; the bucket still must.
            self.head_bucket(bucket).await?;
            return Ok(());
        }
        if let Some(r) = &self.inner.remote {
            return r.delete(bucket, key).await;
        }
        let (lake, b, k) = (self.clone(), bucket.to_string(), key.to_string());
        blocking(move || local::delete(&lake, &b, &k)).await
    }

    /// Copies an object, with its attributes or with `attrs` in their place.
    pub async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        attrs: Option<ObjectAttrs>,
    ) -> Result<ObjectMeta, LakeError> {
        self.copy_object_sse(src_bucket, src_key, dst_bucket, dst_key, attrs, None)
            .await
    }

    /// [`Lake::copy_object`], the copy encrypted as `sse` asks; with `None`, as the source is
    /// (an encrypted source makes an encrypted copy, under the same key).
    pub async fn copy_object_sse(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        attrs: Option<ObjectAttrs>,
        sse: Option<Sse>,
    ) -> Result<ObjectMeta, LakeError> {
        check_bucket(src_bucket)?;
        check_key(src_key)?;
        check_bucket(dst_bucket)?;
        check_key(dst_key)?;
        if let Some(r) = &self.inner.remote {
            if sse.is_some() || attrs.as_ref().is_some_and(|a| a.sse.is_some()) {
                return Err(LakeError::EncryptionUnsupported);
            }
            return r
                .copy(self, src_bucket, src_key, dst_bucket, dst_key, attrs)
                .await;
        }
        // A key that is not configured is refused before anything is read.
        self.sealer(sse.as_ref())?;
        let lake = self.clone();
        let (sb, sk) = (src_bucket.to_string(), src_key.to_string());
        let db = dst_bucket.to_string();
        let max = self.inner.object_bytes_max;
        let (staged, dst_attrs) = blocking(move || {
            local::bucket_info(&lake, &db)?;
            let (file, meta, header) = local::open(&lake, &sb, &sk)?;
            if meta.size > max {
                return Err(LakeError::EntityTooLarge { size_max: max });
            }
            let src_sse = meta.attrs.sse.clone();
            let mut dst_attrs = attrs.unwrap_or(meta.attrs);
            dst_attrs.sse = sse.or(dst_attrs.sse).or(src_sse);
            let (dst_attrs, sealer) = lake.seal(dst_attrs)?;
            let reader: Box<dyn std::io::Read + Send> = match header {
                None => Box::new(file),
                Some(h) => Box::new(sse::PlainReader::new(
                    file,
                    local::opener(&lake, &sb, &sk, &h)?,
                )),
            };
            let (tmp, digests) = stage::copy_into_temp(
                &lake.tmp_dir(),
                &mut std::iter::once(Ok((format!("{sb}/{sk}"), reader))),
                sealer.as_ref(),
            )?;
            Ok(((tmp, digests), dst_attrs))
        })
        .await?;
        let (tmp, digests) = staged;
        Staged::new(
            self.clone(),
            stage::Target::Object {
                bucket: dst_bucket.into(),
                key: dst_key.into(),
                attrs: dst_attrs,
                multipart: None,
            },
            tmp,
            digests,
        )
        .commit()
        .await
    }

    // ---- listings ---------------------------------------------------------------------

    /// One page of the bucket's keys, with S3's semantics (see [`ListQuery`]).
    pub async fn list_page(&self, bucket: &str, q: &ListQuery) -> Result<ListPage, LakeError> {
        check_bucket(bucket)?;
        if let Some(r) = &self.inner.remote {
            return r.list_page(bucket, q).await;
        }
        let (lake, b, q) = (self.clone(), bucket.to_string(), q.clone());
        blocking(move || local::list_page(&lake, &b, &q, limits::LIST_SCAN_MAX)).await
    }

    /// Every object of the bucket whose key starts with `prefix`, in key order.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, LakeError> {
        let mut q = ListQuery {
            prefix: prefix.to_string(),
            max_keys: limits::LIST_KEYS_MAX,
            ..ListQuery::default()
        };
        let mut out = Vec::new();
        loop {
            let page = self.list_page(bucket, &q).await?;
            out.extend(page.objects.into_iter().map(|o| ObjectInfo {
                key: o.key,
                size: o.size,
                modified_ms: o.modified_ms,
            }));
            match (page.truncated, page.next) {
                (true, Some(next)) => q.after = Some(next),
                _ => return Ok(out),
            }
        }
    }

    // ---- multipart uploads ------------------------------------------------------------

    /// Starts a multipart upload of `bucket/key`; its id.
    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
    ) -> Result<String, LakeError> {
        check_bucket(bucket)?;
        check_key(key)?;
        let (attrs, _) = self.seal(attrs)?;
        if let Some(r) = &self.inner.remote {
            r.head_bucket(bucket).await?;
        }
        let (lake, b, k) = (self.clone(), bucket.to_string(), key.to_string());
        blocking(move || multipart::create(&lake, &b, &k, attrs)).await
    }

    /// A writer for one part of an upload: write it, stage it, commit it (the part's ETag is
    /// the answer's `etag`). A part uploaded again replaces the earlier one.
    pub async fn part_writer(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        kinds: DigestKinds,
    ) -> Result<ObjectWriter, LakeError> {
        check_bucket(bucket)?;
        check_key(key)?;
        if !(1..=limits::PART_NUMBER_MAX).contains(&part_number) {
            return Err(LakeError::InvalidPartNumber {
                part_number,
                max: limits::PART_NUMBER_MAX,
            });
        }
        let (lake, b, k, id) = (
            self.clone(),
            bucket.to_string(),
            key.to_string(),
            upload_id.to_string(),
        );
        let upload = blocking(move || multipart::load(&lake, &b, &k, &id)).await?;
        // The parts of an encrypted upload are encrypted too (under the upload's key).
        let sealer = self.sealer(upload.attrs.sse.as_ref())?;
        Ok(ObjectWriter::start(
            self.clone(),
            stage::Target::Part {
                bucket: bucket.into(),
                key: key.into(),
                upload_id: upload_id.into(),
                part_number,
            },
            kinds,
            limits::PART_BYTES_MAX.min(self.inner.object_bytes_max),
            sealer,
        ))
    }

    /// Completes an upload from the parts named (number and ETag, in ascending order): the
    /// object is made of them, its ETag `<md5 of the parts' md5s>-<count>` (locally).
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<ObjectMeta, LakeError> {
        check_bucket(bucket)?;
        check_key(key)?;
        let (lake, b, k, id, parts) = (
            self.clone(),
            bucket.to_string(),
            key.to_string(),
            upload_id.to_string(),
            parts.to_vec(),
        );
        let (upload, files) =
            blocking(move || multipart::check_complete(&lake, &b, &k, &id, &parts)).await?;
        let meta = if let Some(r) = &self.inner.remote {
            r.put_parts(bucket, key, &files, &upload.attrs).await?
        } else {
            let lake = self.clone();
            let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
            let sealer = self.sealer(upload.attrs.sse.as_ref())?;
            let (b, k) = (bucket.to_string(), key.to_string());
            let (tmp, digests) = blocking(move || {
                let keys = lake.keyring();
                let mut it = paths.iter().enumerate().map(|(i, p)| {
                    let what = format!("{b}/{k} (part {})", i + 1);
                    let file = std::fs::File::open(p).map_err(|e| LakeError::io(p.clone(), e))?;
                    if sealer.is_none() {
                        return Ok((what, Box::new(file) as Box<dyn std::io::Read + Send>));
                    }
                    let size = file
                        .metadata()
                        .map_err(|e| LakeError::io(p.clone(), e))?
                        .len();
                    let damaged = || LakeError::Damaged {
                        object: what.clone(),
                    };
                    let h = sse::Header::read(&file, size).ok_or_else(damaged)?;
                    let opener = h.open(&keys).map_err(|_| damaged())?;
                    Ok((
                        what,
                        Box::new(sse::PlainReader::new(file, opener))
                            as Box<dyn std::io::Read + Send>,
                    ))
                });
                stage::copy_into_temp(&lake.tmp_dir(), &mut it, sealer.as_ref())
            })
            .await?;
            let md5s: Vec<[u8; 16]> = files.iter().map(|f| f.md5).collect();
            Staged::new(
                self.clone(),
                stage::Target::Object {
                    bucket: bucket.into(),
                    key: key.into(),
                    attrs: upload.attrs.clone(),
                    multipart: Some((multipart_etag(&md5s), md5s.len() as u32)),
                },
                tmp,
                digests,
            )
            .commit()
            .await?
        };
        let (lake, id) = (self.clone(), upload_id.to_string());
        blocking(move || multipart::remove(&lake, &id)).await?;
        Ok(meta)
    }

    /// Aborts an upload, removing its parts.
    pub async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), LakeError> {
        let (lake, b, k, id) = (
            self.clone(),
            bucket.to_string(),
            key.to_string(),
            upload_id.to_string(),
        );
        blocking(move || {
            multipart::load(&lake, &b, &k, &id)?;
            multipart::remove(&lake, &id)
        })
        .await
    }

    /// The parts of an upload after part number `after`, at most `max`.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<PartsPage, LakeError> {
        let (lake, b, k, id) = (
            self.clone(),
            bucket.to_string(),
            key.to_string(),
            upload_id.to_string(),
        );
        blocking(move || multipart::list_parts(&lake, &b, &k, &id, after, max)).await
    }

    /// The uploads in progress in a bucket, by key then initiation, after `(key, upload id)`.
    pub async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(String, Option<String>)>,
        max: usize,
    ) -> Result<UploadsPage, LakeError> {
        self.head_bucket(bucket).await?;
        let (lake, b, p) = (self.clone(), bucket.to_string(), prefix.to_string());
        blocking(move || multipart::list_uploads(&lake, &b, &p, after, max)).await
    }

    // ---- upkeep -----------------------------------------------------------------------

    /// Removes temporary files a crash left (older than a day). Runs on the blocking pool.
    pub async fn sweep(&self) -> Result<usize, LakeError> {
        let lake = self.clone();
        blocking(move || local::sweep_temps(&lake, limits::TEMP_AGE_MS_MAX)).await
    }
}

/// An opened object: its metadata, and its bytes to read.
pub struct OpenObject {
    pub meta: ObjectMeta,
    source: Source,
}

enum Source {
    Local(std::fs::File),
    /// An encrypted file, decrypted as it is read.
    Sealed {
        file: std::fs::File,
        opener: Box<sse::Opener>,
        object: String,
    },
    Remote(remote::RemoteSource),
}

impl OpenObject {
    /// Reads the bytes in `range` (all of them with `None`), in chunks.
    pub fn read(self, range: Option<ByteRange>) -> ObjectReader {
        let range = range.unwrap_or(0..self.meta.size);
        match self.source {
            Source::Local(file) => ObjectReader::Local(local::read(file, range)),
            Source::Sealed {
                file,
                opener,
                object,
            } => ObjectReader::Local(local::read_sealed(file, *opener, range, object)),
            Source::Remote(src) => ObjectReader::Remote(src.read(range)),
        }
    }
}

/// The bytes of an object, in chunks (at most a few read ahead).
pub enum ObjectReader {
    Local(tokio::sync::mpsc::Receiver<Result<Bytes, LakeError>>),
    Remote(futures_util::stream::BoxStream<'static, Result<Bytes, LakeError>>),
}

impl ObjectReader {
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, LakeError>> {
        use futures_util::StreamExt;
        match self {
            ObjectReader::Local(rx) => rx.recv().await,
            ObjectReader::Remote(s) => s.next().await,
        }
    }

    /// The chunks as a stream (for an HTTP body).
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<Bytes, LakeError>> + Send {
        futures_util::stream::unfold(
            self,
            |mut r| async move { r.next_chunk().await.map(|c| (c, r)) },
        )
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LakeError> + Send + 'static,
) -> Result<T, LakeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LakeError::Task(e.to_string()))?
}

/// S3's bucket naming rules: 3-63 characters of lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit.
pub fn check_bucket(bucket: &str) -> Result<(), LakeError> {
    let b = bucket.as_bytes();
    let ok = (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(LakeError::InvalidBucketName(bucket.to_string()))
    }
}

/// A key the local store can hold as a path inside its bucket: no empty, `.` or `..`
/// segment, no NUL, at most 1,024 bytes (S3's limit, `KeyTooLong` past it), and no segment
/// named like sluice's own files (`.sluice-*`).
pub fn check_key(key: &str) -> Result<(), LakeError> {
    if key.len() > limits::KEY_BYTES_MAX {
        return Err(LakeError::KeyTooLong);
    }
    let ok = !key.is_empty()
        && !key.contains('\0')
        && key
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != ".." && !p.starts_with(".sluice-"));
    if ok {
        Ok(())
    } else {
        Err(LakeError::InvalidKey(key.to_string()))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sse;
