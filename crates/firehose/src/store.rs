//! Delivery streams on disk: one JSON file per delivery stream under
//! `<data_dir>/firehose/delivery-streams/<name>.json`, written atomically (temporary file,
//! fsync, rename, fsync of the directory). Every function here touches files: call them where
//! blocking is allowed.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::model::DeliveryStream;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a delivery stream this version reads: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// The store under `dir` (made if missing).
    pub fn open(dir: PathBuf) -> Result<Store, StoreError> {
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(Store { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Every delivery stream, by name.
    pub fn load_all(&self) -> Result<Vec<DeliveryStream>, StoreError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let ds: DeliveryStream =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            out.push(ds);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn put(&self, ds: &DeliveryStream) -> Result<(), StoreError> {
        let path = self.path(&ds.name);
        let bytes = serde_json::to_vec_pretty(ds).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = self.dir.join(format!(".{}.json.tmp", ds.name));
        let result = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io(&path))
    }

    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => std::fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.dir)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }
}
