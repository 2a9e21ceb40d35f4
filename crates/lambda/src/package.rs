//! Deployment packages: a `.zip` unpacked into a directory, safely (no entry may land outside
//! it), with Lambda's size limits; and the digest of a directory of code used in place.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::limits;

/// Why a package was refused or could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Not a zip archive, or a damaged one.
    #[error("not a readable zip archive: {0}")]
    NotZip(String),
    /// An entry whose path is absolute or climbs out of the package (zip-slip).
    #[error("entry {0:?} is outside the package")]
    Escapes(String),
    /// The unzipped contents are larger than Lambda allows.
    #[error("unzipped size is over the limit")]
    TooLarge,
    #[error("too many entries")]
    TooManyEntries,
    #[error("i/o error unpacking: {0}")]
    Io(#[from] io::Error),
}

/// What is known of a package once unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Base64 of the SHA-256 of the zip, as Lambda's `CodeSha256`.
    pub sha256: String,
    /// Bytes of the zip (`CodeSize`).
    pub size: u64,
}

/// `CodeSha256` of some bytes.
pub fn sha256_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// Checks that `zip` is an archive Lambda would take, without writing anything: the same
/// checks as [`unpack`] except for the unzipped size, which only unpacking measures.
pub fn check(zip: &[u8]) -> Result<Unpacked, PackageError> {
    let archive = zip::ZipArchive::new(io::Cursor::new(zip))
        .map_err(|e| PackageError::NotZip(e.to_string()))?;
    if archive.len() > limits::ZIP_ENTRIES_MAX {
        return Err(PackageError::TooManyEntries);
    }
    Ok(Unpacked {
        sha256: sha256_base64(zip),
        size: zip.len() as u64,
    })
}

/// Unpacks `zip` into `dir` (created; it must not exist). Regular files keep their Unix
/// permission bits (a top-level `bootstrap` is made executable when the archive carries no
/// mode, as zips made on Windows do); symbolic links are created last, and never inside a
/// path that goes through another link, so no write follows a link out of `dir`. The bytes
/// written are budgeted by [`limits::UNZIPPED_BYTES_MAX`] as they are inflated (a zip bomb
/// stops there, whatever its headers claim). Everything is flushed to disk before returning.
pub fn unpack(zip: &[u8], dir: &Path) -> Result<Unpacked, PackageError> {
    unpack_within(zip, dir, limits::UNZIPPED_BYTES_MAX)
}

/// [`unpack`] with `budget` bytes of unzipped contents at most.
fn unpack_within(zip: &[u8], dir: &Path, budget: u64) -> Result<Unpacked, PackageError> {
    let info = check(zip)?;
    let mut archive = zip::ZipArchive::new(io::Cursor::new(zip))
        .map_err(|e| PackageError::NotZip(e.to_string()))?;
    fs::create_dir_all(dir)?;
    let mut budget = budget;
    let mut links = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| PackageError::NotZip(e.to_string()))?;
        let raw_name = entry.name().map(|n| n.to_string()).unwrap_or_default();
        // An absolute name is refused too (the zip crate would make it relative).
        let absolute = raw_name.starts_with('/') || raw_name.starts_with('\\');
        let rel = entry
            .enclosed_name()
            .filter(|p| !absolute && is_plain_relative(p))
            .ok_or_else(|| PackageError::Escapes(raw_name.clone()))?;
        let path = dir.join(&rel);
        if entry.is_dir() {
            fs::create_dir_all(&path)?;
            continue;
        }
        if entry.is_symlink() {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|e| PackageError::NotZip(e.to_string()))?;
            links.push((rel, target));
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut out = fs::File::create(&path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut buf).map_err(|e| match e.kind() {
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
                    PackageError::NotZip(e.to_string())
                }
                _ => PackageError::NotZip(e.to_string()),
            })?;
            if n == 0 {
                break;
            }
            budget = budget.checked_sub(n as u64).ok_or(PackageError::TooLarge)?;
            out.write_all(&buf[..n])?;
        }
        let mode = match entry.unix_mode().map(|m| m & 0o777) {
            Some(m) if m != 0 => m | 0o600,
            _ if rel == Path::new("bootstrap") => 0o755,
            _ => 0o644,
        };
        set_mode(&out, mode)?;
    }
    for (rel, target) in links {
        // No parent of the link may be a link (created earlier by this archive).
        let mut at = dir.to_path_buf();
        for c in rel.parent().into_iter().flat_map(Path::components) {
            at.push(c);
            if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(PackageError::Escapes(rel.display().to_string()));
            }
        }
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(&target, &path)?;
    }
    // One syncfs for the whole tree rather than an fsync per file.
    let handle = fs::File::open(dir)?;
    rustix::fs::syncfs(&handle).map_err(io::Error::from)?;
    Ok(info)
}

fn is_plain_relative(p: &Path) -> bool {
    p.components().all(|c| matches!(c, Component::Normal(_))) && p.components().next().is_some()
}

fn set_mode(file: &fs::File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

/// `CodeSha256` and `CodeSize` of a directory of code used in place (a function declared in
/// the configuration file): SHA-256 over every regular file's relative path and contents, in
/// path order; the size is the sum of the files' sizes. Links are not followed.
pub fn digest_dir(dir: &Path) -> io::Result<Unpacked> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut hash = Sha256::new();
    let mut size = 0u64;
    for rel in files {
        let bytes = fs::read(dir.join(&rel))?;
        hash.update(rel.to_string_lossy().as_bytes());
        hash.update([0u8]);
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
        size += bytes.len() as u64;
    }
    Ok(Unpacked {
        sha256: base64::engine::general_purpose::STANDARD.encode(hash.finalize()),
        size,
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(root, &entry.path(), out)?;
        } else if kind.is_file() {
            if let Ok(rel) = entry.path().strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &[u8], Option<u32>)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        for (name, data, mode) in entries {
            let mut o = SimpleFileOptions::default();
            if let Some(m) = mode {
                o = o.unix_permissions(*m);
            }
            w.start_file(*name, o).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn unpacks_with_modes_and_digest() {
        let zip = zip_of(&[
            ("app.py", b"def h(e, c):\n    return e\n", None),
            ("bootstrap", b"#!/bin/sh\n", Some(0o755)),
            ("lib/util.py", b"X = 1\n", Some(0o644)),
        ]);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("code");
        let info = unpack(&zip, &dir).unwrap();
        assert_eq!(info.size, zip.len() as u64);
        assert_eq!(info.sha256, sha256_base64(&zip));
        assert_eq!(
            fs::read(dir.join("lib/util.py")).unwrap(),
            b"X = 1\n".to_vec()
        );
        let mode = fs::metadata(dir.join("bootstrap"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        let d1 = digest_dir(&dir).unwrap();
        let d2 = digest_dir(&dir).unwrap();
        assert_eq!(d1, d2);
        assert_eq!(d1.size, 26 + 10 + 6);
    }

    #[test]
    fn the_unzipped_budget_at_the_limit_and_past_it() {
        let zip = zip_of(&[("a", &[7u8; 1000], None), ("b", &[8u8; 24], None)]);
        let tmp = tempfile::tempdir().unwrap();
        unpack_within(&zip, &tmp.path().join("ok"), 1024).unwrap();
        let e = unpack_within(&zip, &tmp.path().join("over"), 1023).unwrap_err();
        assert!(matches!(e, PackageError::TooLarge), "{e}");
    }

    #[test]
    fn refuses_what_is_not_a_zip() {
        let tmp = tempfile::tempdir().unwrap();
        let e = unpack(b"definitely not a zip", &tmp.path().join("c")).unwrap_err();
        assert!(matches!(e, PackageError::NotZip(_)), "{e}");
        assert!(check(b"PK\x03\x04 truncated").is_err());
    }

    #[test]
    fn refuses_zip_slip() {
        for name in ["../evil.py", "/abs/evil.py", "a/../../evil.py"] {
            // The writer cleans names, so write a placeholder of the same length and patch
            // it in the local header and the central directory.
            let placeholder = "q".repeat(name.len());
            let mut zip = zip_of(&[(placeholder.as_str(), b"x", None)]);
            let mut i = 0;
            while let Some(at) = zip[i..]
                .windows(name.len())
                .position(|w| w == placeholder.as_bytes())
            {
                zip[i + at..i + at + name.len()].copy_from_slice(name.as_bytes());
                i += at + name.len();
            }
            let tmp = tempfile::tempdir().unwrap();
            let e = unpack(&zip, &tmp.path().join("code")).unwrap_err();
            assert!(matches!(e, PackageError::Escapes(_)), "{name}: {e}");
            assert!(!tmp.path().join("evil.py").exists());
        }
    }

    #[test]
    fn no_write_goes_through_a_link() {
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        w.add_symlink("out", "..", SimpleFileOptions::default())
            .unwrap();
        w.add_symlink("out/inner", "x", SimpleFileOptions::default())
            .unwrap();
        let zip = w.finish().unwrap().into_inner();
        let tmp = tempfile::tempdir().unwrap();
        let e = unpack(&zip, &tmp.path().join("code")).unwrap_err();
        assert!(matches!(e, PackageError::Escapes(_)), "{e}");
        assert!(!tmp.path().join("inner").exists());
    }
}
