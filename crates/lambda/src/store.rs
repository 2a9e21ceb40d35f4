//! The durable function store: every function's configuration and unpacked code under
//! `<data_dir>/lambda/`, and the functions declared in the configuration file.
//!
//! Layout (one directory per function, the name being a valid function name):
//!
//! ```text
//! lambda/functions/<name>/function.json     the configuration (FunctionRecord, JSON)
//! lambda/functions/<name>/code/<revision>/  the unpacked package function.json names
//! lambda/logs/<name>.log                    what the function's processes print
//! ```
//!
//! `function.json` is the commit point of every change: it is written to a temporary file,
//! fsynced, renamed over the old one and the directory fsynced. Code is unpacked (and synced)
//! into a new revision directory before the record that names it is committed, so a crash
//! leaves either the old function or the new one; at open, revisions no record names and
//! directories without a record (a create that did not finish) are removed.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::config::DeclaredFunction;
use crate::names::FunctionName;
use crate::package::{self, PackageError};

const RECORD_FILE: &str = "function.json";
const FORMAT_VERSION: u32 = 1;

/// One function's configuration as stored (`function.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionRecord {
    pub format_version: u32,
    pub name: String,
    pub runtime: String,
    pub role: String,
    pub handler: String,
    pub description: String,
    pub timeout_s: u32,
    pub memory_mb: u32,
    pub environment: BTreeMap<String, String>,
    /// `x86_64` or `arm64` (shown, not acted on).
    pub architecture: String,
    pub tags: BTreeMap<String, String>,
    /// `CodeSha256`: base64 of the SHA-256 of the zip.
    pub code_sha256: String,
    /// `CodeSize`: bytes of the zip.
    pub code_size: u64,
    /// The directory under `code/` that holds the unpacked package.
    pub code_revision: String,
    pub last_modified_ms: i64,
    /// `RevisionId`, new at every change.
    pub revision_id: String,
    /// `ReservedConcurrentExecutions`, if set.
    pub reserved_concurrency: Option<u32>,
}

/// A function as the API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: FunctionName,
    pub record: FunctionRecord,
    /// The code the processes run (LAMBDA_TASK_ROOT).
    pub code_dir: PathBuf,
    /// Declared in the configuration file: read-only through the API.
    pub declared: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("function {0} not found")]
    NotFound(FunctionName),
    #[error("function {0} already exists")]
    Exists(FunctionName),
    /// A function declared in the configuration file cannot be changed through the API.
    #[error("function {0} is declared in the configuration file")]
    Declared(FunctionName),
    #[error("deployment package: {0}")]
    Package(#[from] PackageError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A record that does not parse, or a declaration that collides with a stored function.
    #[error("{0}")]
    Corrupt(String),
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

/// The functions, on disk and in memory.
#[derive(Debug)]
pub struct Store {
    /// `<data_dir>/lambda`.
    root: PathBuf,
    functions: Mutex<BTreeMap<FunctionName, Arc<Function>>>,
    /// Held across every change (async, so that waiting for it does not hold a worker).
    writer: tokio::sync::Mutex<()>,
}

impl Store {
    /// Opens (creating) `<data_dir>/lambda`, loads every stored function, cleans up what an
    /// interrupted change left, and adds the declared functions. Blocking.
    pub fn open(
        data_dir: &Path,
        declared: &[DeclaredFunction],
        now_ms: i64,
    ) -> Result<Store, StoreError> {
        let root = data_dir.join("lambda");
        let functions_dir = root.join("functions");
        fs::create_dir_all(&functions_dir)
            .map_err(io_err(format!("creating {}", functions_dir.display())))?;
        fs::create_dir_all(root.join("logs"))
            .map_err(io_err(format!("creating {}/logs", root.display())))?;
        let mut functions = BTreeMap::new();
        let entries = fs::read_dir(&functions_dir)
            .map_err(io_err(format!("reading {}", functions_dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_err("reading the function directory"))?;
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(name) = FunctionName::new(&file_name) else {
                // `.deleted-*` (a delete that did not finish) and other leftovers.
                tracing::info!(path = %path.display(), "removing a leftover in the function store");
                remove_any(&path);
                continue;
            };
            let record_path = path.join(RECORD_FILE);
            let text = match fs::read(&record_path) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    tracing::info!(function = %name, "removing a function whose creation did not finish");
                    remove_any(&path);
                    continue;
                }
                Err(e) => return Err(io_err(format!("reading {}", record_path.display()))(e)),
            };
            let record: FunctionRecord = serde_json::from_slice(&text)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", record_path.display())))?;
            if record.format_version != FORMAT_VERSION || record.name != file_name {
                return Err(StoreError::Corrupt(format!(
                    "{}: format version {} for function {:?}",
                    record_path.display(),
                    record.format_version,
                    record.name
                )));
            }
            // Revisions no record names: an update that did not finish, or an old revision
            // whose delayed removal did not run.
            if let Ok(revisions) = fs::read_dir(path.join("code")) {
                for r in revisions.flatten() {
                    if r.file_name().to_string_lossy() != record.code_revision {
                        remove_any(&r.path());
                    }
                }
            }
            let code_dir = path.join("code").join(&record.code_revision);
            functions.insert(
                name.clone(),
                Arc::new(Function {
                    name,
                    record,
                    code_dir,
                    declared: false,
                }),
            );
        }
        for d in declared {
            let name = FunctionName::new(&d.name)
                .ok_or_else(|| StoreError::Corrupt(format!("bad function name {:?}", d.name)))?;
            if functions.contains_key(&name) {
                return Err(StoreError::Corrupt(format!(
                    "function {name} is declared in [[lambda.functions]] and was also created through the API (in {}); remove one of them",
                    functions_dir.join(name.as_str()).display()
                )));
            }
            let code_dir = d.code_dir.canonicalize().map_err(io_err(format!(
                "function {name}: code_dir {}",
                d.code_dir.display()
            )))?;
            let digest = package::digest_dir(&code_dir).map_err(io_err(format!(
                "function {name}: reading code_dir {}",
                code_dir.display()
            )))?;
            let record = FunctionRecord {
                format_version: FORMAT_VERSION,
                name: d.name.clone(),
                runtime: d.runtime.clone(),
                role: String::new(),
                handler: d.handler.clone(),
                description: String::new(),
                timeout_s: d.timeout_s,
                memory_mb: d.memory_mb,
                environment: d.environment.clone(),
                architecture: "x86_64".into(),
                tags: BTreeMap::new(),
                code_sha256: digest.sha256,
                code_size: digest.size,
                code_revision: String::new(),
                last_modified_ms: now_ms,
                revision_id: new_revision_id(),
                reserved_concurrency: None,
            };
            functions.insert(
                name.clone(),
                Arc::new(Function {
                    name,
                    record,
                    code_dir,
                    declared: true,
                }),
            );
        }
        Ok(Store {
            root,
            functions: Mutex::new(functions),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<FunctionName, Arc<Function>>> {
        // A panic while holding this lock cannot leave the map half-changed (each change is
        // one insert or remove), so a poisoned lock is used as it is.
        self.functions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, name: &FunctionName) -> Option<Arc<Function>> {
        self.map().get(name).cloned()
    }

    /// Every function, by name.
    pub fn list(&self) -> Vec<Arc<Function>> {
        self.map().values().cloned().collect()
    }

    /// Serializes changes: hold the guard across a read-modify-write.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    pub fn log_file(&self, name: &FunctionName) -> PathBuf {
        log_file(&self.root, name.as_str())
    }

    fn function_dir(&self, name: &FunctionName) -> PathBuf {
        self.root.join("functions").join(name.as_str())
    }

    /// Creates a function from a zip. Blocking; call with the writer lock held.
    pub fn create(
        &self,
        mut record: FunctionRecord,
        zip: &[u8],
    ) -> Result<Arc<Function>, StoreError> {
        let name = FunctionName::new(&record.name)
            .ok_or_else(|| StoreError::Corrupt(format!("bad function name {:?}", record.name)))?;
        if self.get(&name).is_some() {
            return Err(StoreError::Exists(name));
        }
        let dir = self.function_dir(&name);
        // A directory without a record is a create that did not finish.
        if dir.exists() {
            remove_any(&dir);
        }
        record.format_version = FORMAT_VERSION;
        record.code_revision = new_code_revision(record.last_modified_ms);
        let code_dir = dir.join("code").join(&record.code_revision);
        let unpacked = match package::unpack(zip, &code_dir) {
            Ok(u) => u,
            Err(e) => {
                remove_any(&dir);
                return Err(e.into());
            }
        };
        record.code_sha256 = unpacked.sha256;
        record.code_size = unpacked.size;
        if let Err(e) = write_record(&dir, &record) {
            remove_any(&dir);
            return Err(e);
        }
        sync_dir(&self.root.join("functions"))?;
        let f = Arc::new(Function {
            name: name.clone(),
            record,
            code_dir,
            declared: false,
        });
        self.map().insert(name, f.clone());
        Ok(f)
    }

    /// Replaces a function's record (a configuration change). Blocking; call with the writer
    /// lock held.
    pub fn put(&self, record: FunctionRecord) -> Result<Arc<Function>, StoreError> {
        let current = self.writable(&record.name)?;
        let dir = self.function_dir(&current.name);
        write_record(&dir, &record)?;
        let f = Arc::new(Function {
            record,
            ..(*current).clone()
        });
        self.map().insert(current.name.clone(), f.clone());
        Ok(f)
    }

    /// Unpacks new code and commits `record` naming it. Returns the function and the
    /// directory of the previous code, which the caller removes once no invocation can still
    /// be running from it ([`Store::remove_code`]). Blocking; call with the writer lock held.
    pub fn update_code(
        &self,
        mut record: FunctionRecord,
        zip: &[u8],
    ) -> Result<(Arc<Function>, PathBuf), StoreError> {
        let current = self.writable(&record.name)?;
        let dir = self.function_dir(&current.name);
        record.code_revision = new_code_revision(record.last_modified_ms);
        let code_dir = dir.join("code").join(&record.code_revision);
        let unpacked = match package::unpack(zip, &code_dir) {
            Ok(u) => u,
            Err(e) => {
                remove_any(&code_dir);
                return Err(e.into());
            }
        };
        record.code_sha256 = unpacked.sha256;
        record.code_size = unpacked.size;
        if let Err(e) = write_record(&dir, &record) {
            remove_any(&code_dir);
            return Err(e);
        }
        let f = Arc::new(Function {
            name: current.name.clone(),
            record,
            code_dir,
            declared: false,
        });
        self.map().insert(current.name.clone(), f.clone());
        Ok((f, current.code_dir.clone()))
    }

    /// Removes a code directory that is no longer the function's. Blocking.
    pub fn remove_code(&self, name: &FunctionName, code_dir: &Path) {
        let current = self.get(name);
        if current.is_some_and(|f| f.code_dir == code_dir) {
            return;
        }
        if code_dir.starts_with(self.function_dir(name)) {
            remove_any(code_dir);
        }
    }

    /// Deletes a function (its log stays). Blocking; call with the writer lock held.
    pub fn delete(&self, name: &FunctionName) -> Result<Arc<Function>, StoreError> {
        let current = self.writable(name.as_str())?;
        let dir = self.function_dir(name);
        let functions = self.root.join("functions");
        // The rename is the commit point; what is left of `.deleted-*` is swept at open.
        let trash = functions.join(format!(".deleted-{}-{}", name, new_revision_id()));
        fs::rename(&dir, &trash).map_err(io_err(format!("deleting function {name}")))?;
        sync_dir(&functions)?;
        self.map().remove(name);
        remove_any(&trash);
        Ok(current)
    }

    /// The function, if it may be changed through the API.
    fn writable(&self, name: &str) -> Result<Arc<Function>, StoreError> {
        let name = FunctionName::new(name)
            .ok_or_else(|| StoreError::Corrupt(format!("bad function name {name:?}")))?;
        let f = self.get(&name).ok_or(StoreError::NotFound(name.clone()))?;
        if f.declared {
            return Err(StoreError::Declared(name));
        }
        Ok(f)
    }
}

/// `<data_dir>/lambda/logs/<name>.log` for `root` = `<data_dir>/lambda`.
pub fn log_file(root: &Path, name: &str) -> PathBuf {
    root.join("logs").join(format!("{name}.log"))
}

/// A fresh `RevisionId` (a random UUID, version 4).
pub fn new_revision_id() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

fn new_code_revision(now_ms: i64) -> String {
    format!("r{now_ms}-{:08x}", rand::random::<u32>())
}

fn write_record(dir: &Path, record: &FunctionRecord) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| StoreError::Corrupt(format!("encoding function {}: {e}", record.name)))?;
    write_atomic(&dir.join(RECORD_FILE), &bytes)
        .map_err(io_err(format!("writing function {}", record.name)))
}

/// Writes `path` whole or not at all: temporary file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))?;
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("syncing {}", dir.display())))
}

/// Removes a file or a tree, logging (not failing) if it cannot: what is left is swept at the
/// next open.
pub(crate) fn remove_any(path: &Path) {
    let r = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = r {
        tracing::warn!(path = %path.display(), error = %e, "could not remove");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use zip::write::SimpleFileOptions;

    fn zip_of(body: &[u8]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("app.py", SimpleFileOptions::default())
            .unwrap();
        w.write_all(body).unwrap();
        w.finish().unwrap().into_inner()
    }

    fn record(name: &str) -> FunctionRecord {
        FunctionRecord {
            format_version: FORMAT_VERSION,
            name: name.into(),
            runtime: "python3.12".into(),
            role: "arn:aws:iam::000000000000:role/r".into(),
            handler: "app.h".into(),
            description: String::new(),
            timeout_s: 3,
            memory_mb: 128,
            environment: BTreeMap::new(),
            architecture: "x86_64".into(),
            tags: BTreeMap::new(),
            code_sha256: String::new(),
            code_size: 0,
            code_revision: String::new(),
            last_modified_ms: 1,
            revision_id: new_revision_id(),
            reserved_concurrency: None,
        }
    }

    #[test]
    fn survives_reopen_and_sweeps_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), &[], 0).unwrap();
        let f = store.create(record("f1"), &zip_of(b"v1")).unwrap();
        assert_eq!(fs::read(f.code_dir.join("app.py")).unwrap(), b"v1");
        assert!(matches!(
            store.create(record("f1"), &zip_of(b"x")),
            Err(StoreError::Exists(_))
        ));
        let mut r = f.record.clone();
        r.timeout_s = 30;
        let (g, old) = store.update_code(r, &zip_of(b"v2")).unwrap();
        assert_ne!(g.code_dir, old);
        assert_eq!(fs::read(g.code_dir.join("app.py")).unwrap(), b"v2");
        // Leftovers: an interrupted create, an unreferenced revision, a half delete.
        fs::create_dir_all(tmp.path().join("lambda/functions/half")).unwrap();
        fs::create_dir_all(tmp.path().join("lambda/functions/.deleted-x-1")).unwrap();
        drop(store);
        let store = Store::open(tmp.path(), &[], 0).unwrap();
        let names: Vec<_> = store.list().iter().map(|f| f.name.to_string()).collect();
        assert_eq!(names, ["f1"]);
        let f = store.get(&FunctionName::new("f1").unwrap()).unwrap();
        assert_eq!(f.record.timeout_s, 30);
        assert_eq!(fs::read(f.code_dir.join("app.py")).unwrap(), b"v2");
        assert!(!old.exists());
        assert!(!tmp.path().join("lambda/functions/half").exists());
        assert!(!tmp.path().join("lambda/functions/.deleted-x-1").exists());
        store.delete(&f.name).unwrap();
        drop(store);
        let store = Store::open(tmp.path(), &[], 0).unwrap();
        assert!(store.list().is_empty());
    }

    #[test]
    fn a_bad_zip_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), &[], 0).unwrap();
        assert!(matches!(
            store.create(record("f"), b"nope"),
            Err(StoreError::Package(_))
        ));
        assert!(!tmp.path().join("lambda/functions/f").exists());
        assert!(store.list().is_empty());
    }

    #[test]
    fn declared_functions_are_loaded_in_place_and_read_only() {
        let tmp = tempfile::tempdir().unwrap();
        let code = tmp.path().join("src");
        fs::create_dir_all(&code).unwrap();
        fs::write(code.join("app.py"), b"x").unwrap();
        let declared = DeclaredFunction {
            name: "decl".into(),
            runtime: "python3.12".into(),
            handler: "app.h".into(),
            code_dir: code.clone(),
            environment: BTreeMap::new(),
            timeout_s: 5,
            memory_mb: 256,
        };
        let store = Store::open(tmp.path(), std::slice::from_ref(&declared), 0).unwrap();
        let f = store.get(&FunctionName::new("decl").unwrap()).unwrap();
        assert!(f.declared);
        assert_eq!(f.code_dir, code.canonicalize().unwrap());
        assert_eq!(f.record.code_size, 1);
        assert!(matches!(
            store.delete(&f.name),
            Err(StoreError::Declared(_))
        ));
        // A stored function of the same name is a startup error.
        let other = tempfile::tempdir().unwrap();
        let s = Store::open(other.path(), &[], 0).unwrap();
        s.create(record("decl"), &zip_of(b"y")).unwrap();
        drop(s);
        assert!(matches!(
            Store::open(other.path(), &[declared], 0),
            Err(StoreError::Corrupt(_))
        ));
    }
}
