//! Durable file-system steps: a new directory or a renamed file survives a crash only once its
//! parent directory is fsynced, and a file's bytes only once the file is.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Fsyncs a directory (its entries: a rename or a new file in it).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Makes `base/rel` and every missing directory on the way, fsyncing each new directory's
/// parent. `base` must exist. An existing file in the way is `NotADirectory` (or
/// `AlreadyExists` from mkdir), which callers report as a key conflict.
pub(crate) fn create_dirs(base: &Path, rel: &Path) -> io::Result<()> {
    let mut dir = base.to_path_buf();
    for part in rel.components() {
        let parent = dir.clone();
        dir.push(part);
        match std::fs::create_dir(&dir) {
            Ok(()) => sync_dir(&parent)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !std::fs::metadata(&dir)?.is_dir() {
                    return Err(io::Error::from(io::ErrorKind::NotADirectory));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A fresh name for a temporary file in `tmp_dir`.
pub(crate) fn temp_path(tmp_dir: &Path) -> PathBuf {
    tmp_dir.join(format!("{:032x}", rand::random::<u128>()))
}

/// Writes `bytes` to `dest` atomically: a temporary file in `tmp_dir` (on the same file
/// system), fsync, rename, fsync of `dest`'s directory.
pub(crate) fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::create_dir_all(tmp_dir)?;
    let tmp = temp_path(tmp_dir);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest)?;
        match dest.parent() {
            Some(d) => sync_dir(d),
            None => Ok(()),
        }
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes empty directories from `dir` up to (not including) `stop`, fsyncing the parent of
/// each removed one. Stops at the first that is not empty (or that a concurrent writer just
/// filled).
pub(crate) fn prune_empty_dirs(stop: &Path, dir: &Path) {
    let mut d = dir.to_path_buf();
    while d.starts_with(stop) && d != stop {
        if std::fs::remove_dir(&d).is_err() {
            return;
        }
        let Some(parent) = d.parent() else { return };
        let _ = sync_dir(parent);
        d = parent.to_path_buf();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirs_are_made_and_pruned() {
        let t = tempfile::tempdir().unwrap();
        create_dirs(t.path(), Path::new("a/b/c")).unwrap();
        assert!(t.path().join("a/b/c").is_dir());
        std::fs::write(t.path().join("a/f"), b"x").unwrap();
        prune_empty_dirs(t.path(), &t.path().join("a/b/c"));
        assert!(!t.path().join("a/b").exists());
        assert!(t.path().join("a").is_dir());
        let e = create_dirs(t.path(), Path::new("a/f/g")).unwrap_err();
        assert!(matches!(
            e.kind(),
            io::ErrorKind::NotADirectory | io::ErrorKind::AlreadyExists
        ));
        write_atomic(&t.path().join(".tmp"), &t.path().join("a/g"), b"y").unwrap();
        assert_eq!(std::fs::read(t.path().join("a/g")).unwrap(), b"y");
        assert_eq!(std::fs::read_dir(t.path().join(".tmp")).unwrap().count(), 0);
    }
}
