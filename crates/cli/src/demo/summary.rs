//! What the lake holds once the pipeline has drained, read back from the files themselves:
//! rows per event type and per hour (the partitions in each object's path), sessions, users,
//! devices and revenue (columns of the rows).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use arrow_array::{
    Array, Float64Array, LargeStringArray, RecordBatch, StringArray, StringViewArray,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::pipeline::Format;

#[derive(Debug, Default)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
    pub rows: u64,
    pub by_type: BTreeMap<String, u64>,
    /// (`dt`, `hour`) partition → rows.
    pub by_hour: BTreeMap<(String, String), u64>,
    pub sessions: HashSet<String>,
    pub users: HashSet<String>,
    pub event_ids: HashSet<String>,
    pub device_classes: BTreeMap<String, u64>,
    /// Sum of `price` over purchases (an order's total).
    pub revenue: f64,
}

/// One row's columns the summary uses.
#[derive(Default)]
struct Row {
    event_id: Option<String>,
    user_id: Option<String>,
    session_id: Option<String>,
    device_class: Option<String>,
    price: Option<f64>,
}

impl Summary {
    /// Reads every file with `format`'s extension under `root` (the objects under the
    /// delivery stream's prefix), each in its `event_type=/dt=/hour=` partition.
    pub fn read(root: &Path, format: Format) -> anyhow::Result<Summary> {
        let mut s = Summary::default();
        let mut files = Vec::new();
        collect(root, format.extension(), &mut files);
        files.sort();
        for path in files {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let mut event_type = String::new();
            let (mut dt, mut hour) = (String::new(), String::new());
            for part in rel.iter().map(|p| p.to_string_lossy()) {
                if let Some(v) = part.strip_prefix("event_type=") {
                    event_type = v.to_string();
                } else if let Some(v) = part.strip_prefix("dt=") {
                    dt = v.to_string();
                } else if let Some(v) = part.strip_prefix("hour=") {
                    hour = v.to_string();
                }
            }
            s.files += 1;
            s.bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let rows = match format {
                Format::Parquet => read_parquet(&path),
                Format::Json => read_json(&path),
            }
            .with_context(|| format!("reading {}", path.display()))?;
            let n = rows.len() as u64;
            s.rows += n;
            *s.by_type.entry(event_type.clone()).or_default() += n;
            *s.by_hour.entry((dt, hour)).or_default() += n;
            for r in rows {
                if let Some(v) = r.event_id {
                    s.event_ids.insert(v);
                }
                if let Some(v) = r.user_id {
                    s.users.insert(v);
                }
                if let Some(v) = r.session_id {
                    s.sessions.insert(v);
                }
                if let Some(v) = r.device_class {
                    *s.device_classes.entry(v).or_default() += 1;
                }
                if event_type == "purchase" {
                    s.revenue += r.price.unwrap_or(0.0);
                }
            }
        }
        Ok(s)
    }
}

fn collect(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => collect(&path, extension, out),
            Ok(t) if t.is_file() && e.file_name().to_string_lossy().ends_with(extension) => {
                out.push(path)
            }
            _ => {}
        }
    }
}

fn read_parquet(path: &Path) -> anyhow::Result<Vec<Row>> {
    let file = File::open(path)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch?;
        let event_id = strings(&batch, "event_id");
        let user_id = strings(&batch, "user_id");
        let session_id = strings(&batch, "session_id");
        let device_class = strings(&batch, "device_class");
        let price = batch
            .column_by_name("price")
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>().cloned());
        for i in 0..batch.num_rows() {
            let at = |c: &Option<Vec<Option<String>>>| c.as_ref().and_then(|v| v[i].clone());
            rows.push(Row {
                event_id: at(&event_id),
                user_id: at(&user_id),
                session_id: at(&session_id),
                device_class: at(&device_class),
                price: price
                    .as_ref()
                    .and_then(|p| (!p.is_null(i)).then(|| p.value(i))),
            });
        }
    }
    Ok(rows)
}

/// A string column's values, whichever of Arrow's string arrays the file has.
fn strings(batch: &RecordBatch, name: &str) -> Option<Vec<Option<String>>> {
    let c = batch.column_by_name(name)?;
    let any = c.as_any();
    if let Some(a) = any.downcast_ref::<StringArray>() {
        return Some(a.iter().map(|v| v.map(str::to_string)).collect());
    }
    if let Some(a) = any.downcast_ref::<StringViewArray>() {
        return Some(a.iter().map(|v| v.map(str::to_string)).collect());
    }
    if let Some(a) = any.downcast_ref::<LargeStringArray>() {
        return Some(a.iter().map(|v| v.map(str::to_string)).collect());
    }
    None
}

fn read_json(path: &Path) -> anyhow::Result<Vec<Row>> {
    let text = std::fs::read_to_string(path)?;
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let s = |k: &str| v[k].as_str().map(str::to_string);
        rows.push(Row {
            event_id: s("event_id"),
            user_id: s("user_id"),
            session_id: s("session_id"),
            device_class: s("device_class"),
            price: v["price"].as_f64(),
        });
    }
    Ok(rows)
}
