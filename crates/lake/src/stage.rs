//! Staging: a body streamed into a temporary file in the local lake's `.sluice-tmp/`, hashed
//! on the way, fsynced, and only then committed (renamed into place locally, uploaded to a
//! remote store) or dropped. The writing and hashing run on the blocking pool; the async side
//! hands over chunks through a bounded channel, so a slow disk holds the client back instead of
//! filling memory.

use std::io::Read;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::limits::{WRITE_CHUNK_BYTES, WRITE_QUEUE_DEPTH};
use crate::meta::{FileId, ObjectAttrs, ObjectMeta};
use crate::sse::{Sealer, Sink};
use crate::{Lake, LakeError};

/// Which digests to compute besides the MD5 (always computed: it is the ETag).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DigestKinds {
    pub sha256: bool,
    pub crc32: bool,
    pub crc32c: bool,
}

/// The digests of a staged body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    pub md5: [u8; 16],
    pub sha256: Option<[u8; 32]>,
    pub crc32: Option<u32>,
    pub crc32c: Option<u32>,
}

/// What a staged file becomes on commit.
// One per write in flight, never in a collection: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Object {
        bucket: String,
        key: String,
        attrs: ObjectAttrs,
        /// The ETag and part count of a multipart upload's object (otherwise the MD5).
        multipart: Option<(String, u32)>,
    },
    Part {
        bucket: String,
        key: String,
        upload_id: String,
        part_number: u32,
    },
}

#[derive(Debug)]
pub(crate) struct TempFile {
    pub path: PathBuf,
    pub id: FileId,
    /// The body's size: the file's, or less for an encrypted file.
    pub plain_size: u64,
}

enum Msg {
    Data(Bytes),
    Finish,
}

struct Written {
    file: TempFile,
    digests: Digests,
}

/// Streams one body into a temporary file. Dropped before [`ObjectWriter::stage`], it removes
/// the file.
pub struct ObjectWriter {
    tx: Option<mpsc::Sender<Msg>>,
    task: Option<tokio::task::JoinHandle<Result<Written, LakeError>>>,
    buf: BytesMut,
    size: u64,
    size_max: u64,
    lake: Lake,
    target: Target,
}

impl ObjectWriter {
    /// With `sealer`, the body is encrypted as it is written (nothing of it reaches the disk
    /// in the clear).
    pub(crate) fn start(
        lake: Lake,
        target: Target,
        kinds: DigestKinds,
        size_max: u64,
        sealer: Option<Sealer>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE_DEPTH);
        let tmp_dir = lake.tmp_dir();
        let task = tokio::task::spawn_blocking(move || write_file(tmp_dir, kinds, rx, sealer));
        ObjectWriter {
            tx: Some(tx),
            task: Some(task),
            buf: BytesMut::new(),
            size: 0,
            size_max,
            lake,
            target,
        }
    }

    /// Bytes taken so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Takes the next piece of the body. Past the size limit: `EntityTooLarge`.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), LakeError> {
        self.size += chunk.len() as u64;
        if self.size > self.size_max {
            return Err(LakeError::EntityTooLarge {
                size_max: self.size_max,
            });
        }
        if self.buf.is_empty() && chunk.len() >= WRITE_CHUNK_BYTES {
            return self.send(Msg::Data(chunk)).await;
        }
        self.buf.extend_from_slice(&chunk);
        if self.buf.len() >= WRITE_CHUNK_BYTES {
            let full = self.buf.split().freeze();
            self.send(Msg::Data(full)).await?;
        }
        Ok(())
    }

    async fn send(&mut self, msg: Msg) -> Result<(), LakeError> {
        let sent = match &self.tx {
            Some(tx) => tx.send(msg).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writing task stopped: its error says why.
        self.tx = None;
        match self.task.take() {
            Some(t) => match t.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(w)) => {
                    remove_later(w.file.path);
                    Err(LakeError::Task("the writer stopped early".into()))
                }
                Err(e) => Err(LakeError::Task(e.to_string())),
            },
            None => Err(LakeError::Task("the writer stopped early".into())),
        }
    }

    /// Ends the body: the file is complete and fsynced, its digests known; nothing is visible
    /// until [`Staged::commit`].
    pub async fn stage(mut self) -> Result<Staged, LakeError> {
        if !self.buf.is_empty() {
            let rest = self.buf.split().freeze();
            self.send(Msg::Data(rest)).await?;
        }
        self.send(Msg::Finish).await?;
        self.tx = None;
        let task = self
            .task
            .take()
            .ok_or_else(|| LakeError::Task("the writer stopped early".into()))?;
        let w = task.await.map_err(|e| LakeError::Task(e.to_string()))??;
        Ok(Staged {
            size: w.file.plain_size,
            digests: w.digests,
            file: Some(w.file),
            lake: self.lake.clone(),
            target: self.target.clone(),
        })
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        // Closing the channel without `Finish` makes the task remove its file.
        self.tx = None;
    }
}

/// A body written and fsynced, not yet visible. Dropped without a commit, it is removed.
pub struct Staged {
    pub size: u64,
    pub digests: Digests,
    file: Option<TempFile>,
    lake: Lake,
    target: Target,
}

impl Staged {
    pub(crate) fn new(lake: Lake, target: Target, file: TempFile, digests: Digests) -> Staged {
        Staged {
            size: file.plain_size,
            digests,
            file: Some(file),
            lake,
            target,
        }
    }

    /// Makes the body visible: the object (or part) it was written for, durably. For a part,
    /// the answer's `key` is the upload's key and its ETag the part's.
    pub async fn commit(mut self) -> Result<ObjectMeta, LakeError> {
        let file = self
            .file
            .take()
            .ok_or_else(|| LakeError::Task("already committed".into()))?;
        let path = file.path.clone();
        let result = self
            .lake
            .commit(self.target.clone(), file, self.digests)
            .await;
        if result.is_err() {
            remove_later(path);
        }
        result
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            remove_later(f.path);
        }
    }
}

/// Removes a temporary file off the async workers (or at once, outside a runtime).
pub(crate) fn remove_later(path: PathBuf) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn_blocking(move || {
                let _ = std::fs::remove_file(&path);
            });
        }
        Err(_) => {
            let _ = std::fs::remove_file(&path);
        }
    }
}

struct Hashers {
    md5: Md5,
    sha256: Option<Sha256>,
    crc32: Option<crc32fast::Hasher>,
    crc32c: Option<u32>,
}

impl Hashers {
    fn new(kinds: DigestKinds) -> Hashers {
        Hashers {
            md5: Md5::new(),
            sha256: kinds.sha256.then(Sha256::new),
            crc32: kinds.crc32.then(crc32fast::Hasher::new),
            crc32c: kinds.crc32c.then_some(0),
        }
    }

    fn update(&mut self, b: &[u8]) {
        self.md5.update(b);
        if let Some(h) = &mut self.sha256 {
            h.update(b);
        }
        if let Some(h) = &mut self.crc32 {
            h.update(b);
        }
        if let Some(c) = &mut self.crc32c {
            *c = crc32c::crc32c_append(*c, b);
        }
    }

    fn finish(self) -> Digests {
        Digests {
            md5: self.md5.finalize().into(),
            sha256: self.sha256.map(|h| h.finalize().into()),
            crc32: self.crc32.map(|h| h.finalize()),
            crc32c: self.crc32c,
        }
    }
}

fn write_file(
    tmp_dir: PathBuf,
    kinds: DigestKinds,
    mut rx: mpsc::Receiver<Msg>,
    sealer: Option<Sealer>,
) -> Result<Written, LakeError> {
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |source| LakeError::io(path, source)
    };
    std::fs::create_dir_all(&tmp_dir).map_err(io(&tmp_dir))?;
    let path = crate::durable::temp_path(&tmp_dir);
    let result = (|| {
        let f = std::fs::File::create(&path).map_err(io(&path))?;
        let mut sink = Sink::new(f, sealer.as_ref()).map_err(io(&path))?;
        let mut h = Hashers::new(kinds);
        loop {
            match rx.blocking_recv() {
                Some(Msg::Data(b)) => {
                    sink.write_all(&b).map_err(io(&path))?;
                    h.update(&b);
                }
                Some(Msg::Finish) => break,
                None => return Err(LakeError::Task("the body ended early".into())),
            }
        }
        let (f, plain) = sink.finish().map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
        let m = f.metadata().map_err(io(&path))?;
        Ok((FileId::of(&m), plain, h.finish()))
    })();
    match result {
        Ok((id, plain, digests)) => Ok(Written {
            file: TempFile {
                path,
                id,
                plain_size: plain.unwrap_or(id.size),
            },
            digests,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

/// One source of [`copy_into_temp`]: what it is (for errors) and its bytes (decrypted).
pub(crate) type Source = (String, Box<dyn std::io::Read + Send>);

/// Copies the sources' bytes, one after another, into a new temporary file (encrypted with
/// `sealer`), hashing them: the staging of CopyObject and of a completed multipart upload's
/// pieces. A source that fails authentication is `Damaged`.
pub(crate) fn copy_into_temp(
    tmp_dir: &std::path::Path,
    sources: &mut dyn Iterator<Item = Result<Source, LakeError>>,
    sealer: Option<&Sealer>,
) -> Result<(TempFile, Digests), LakeError> {
    std::fs::create_dir_all(tmp_dir).map_err(|e| LakeError::io(tmp_dir.to_path_buf(), e))?;
    let path = crate::durable::temp_path(tmp_dir);
    let io = |source| LakeError::io(path.clone(), source);
    let result = (|| {
        let out = std::fs::File::create(&path).map_err(io)?;
        let mut sink = Sink::new(out, sealer).map_err(io)?;
        let mut h = Hashers::new(DigestKinds::default());
        let mut buf = vec![0u8; WRITE_CHUNK_BYTES];
        for src in sources {
            let (what, mut src) = src?;
            loop {
                let n = match src.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        return Err(LakeError::Damaged { object: what });
                    }
                    Err(e) => return Err(io(e)),
                };
                if n == 0 {
                    break;
                }
                sink.write_all(&buf[..n]).map_err(io)?;
                h.update(&buf[..n]);
            }
        }
        let (out, plain) = sink.finish().map_err(io)?;
        out.sync_all().map_err(io)?;
        let m = out.metadata().map_err(io)?;
        Ok((FileId::of(&m), plain, h.finish()))
    })();
    match result {
        Ok((id, plain, d)) => Ok((
            TempFile {
                path,
                id,
                plain_size: plain.unwrap_or(id.size),
            },
            d,
        )),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}
