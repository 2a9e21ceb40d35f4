//! The file-I/O seam of the log: every byte the log reads or writes goes through [`Storage`]
//! (directory operations) and [`StorageFile`] (one open file).
//!
//! [`FsStorage`] is the real thing: `std::fs` with positioned reads and writes (`pread` /
//! `pwrite`), `fdatasync` and `fsync`. It adds one dynamic call per operation and no copies,
//! and the writer makes one `pwrite` and one `fdatasync` per group commit, so the seam costs
//! nothing measurable. [`crate::fault::FaultStorage`] is the in-memory one tests use to inject
//! errors and take crash images.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Directory-level operations. Paths are the ones the log builds under its directory.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Creates `path` empty (truncating an existing file), open for reading and writing. The
    /// new directory entry is durable only after [`Storage::sync_dir`] of its directory.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// The names of the entries of `dir`; `NotFound` if it does not exist.
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// Creates `dir` and any missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Renames a file (atomically replacing `to`); durable after [`Storage::sync_dir`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file; durable after [`Storage::sync_dir`].
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// One open file. Reads and writes are positioned, so one handle serves the writer and any
/// number of readers at once.
pub trait StorageFile: Send + Sync + std::fmt::Debug + 'static {
    /// Reads up to `buf.len()` bytes at `position`; 0 at the end of the file.
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize>;
    /// Writes up to `buf.len()` bytes at `position`, returning how many it wrote (a short write
    /// is not an error: the caller writes the rest).
    fn write_at(&self, buf: &[u8], position: u64) -> io::Result<usize>;
    /// `fdatasync`: the file's data, and its length, are durable when this returns `Ok`.
    fn sync_data(&self) -> io::Result<()>;
    /// `fsync`: data and all metadata.
    fn sync_all(&self) -> io::Result<()>;
    /// Truncates (or extends with zeros) to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The current length of the file, in bytes.
    fn len_bytes(&self) -> io::Result<u64>;
}

/// Writes all of `buf` at `position`, continuing after short writes. On an error, a prefix of
/// `buf` may have been written: the caller undoes it.
pub(crate) fn write_all_at(file: &dyn StorageFile, buf: &[u8], position: u64) -> io::Result<()> {
    let mut done = 0usize;
    while done < buf.len() {
        match file.write_at(&buf[done..], position + done as u64) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the file took no bytes of a write",
                ))
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads into `buf` from `position` until it is full or the file ends; returns the bytes read.
pub(crate) fn read_up_to(
    file: &dyn StorageFile,
    buf: &mut [u8],
    position: u64,
) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], position + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads a whole (small) file.
pub(crate) fn read_whole(storage: &dyn Storage, path: &Path) -> io::Result<Vec<u8>> {
    let file = storage.open(path)?;
    let len = usize::try_from(file.len_bytes()?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large to read"))?;
    let mut buf = vec![0u8; len];
    let got = read_up_to(&*file, &mut buf, 0)?;
    buf.truncate(got);
    Ok(buf)
}

/// True for the errors that mean "no room": the disk is full or a quota is reached. They clear
/// by themselves once space is freed, unlike other write errors.
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsStorage;

impl Storage for FsStorage {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Arc::new(file))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(file))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect()
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

impl StorageFile for File {
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, position)
    }

    fn write_at(&self, buf: &[u8], position: u64) -> io::Result<usize> {
        FileExt::write_at(self, buf, position)
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn sync_all(&self) -> io::Result<()> {
        File::sync_all(self)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn len_bytes(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}
