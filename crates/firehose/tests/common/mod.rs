//! What the Firehose integration tests share: the service over a temporary data directory,
//! an operation called through the API, and the lake directory's objects.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use sluice_aws::value::Input;
use sluice_aws::{Format, Reply};
use sluice_firehose::{Firehose, FirehoseConfig, FirehoseOptions, TableConfig};
use sluice_streams::{Streams, StreamsConfig, SystemClock};

/// The service over `dir` (streams under `kinesis/`, the local lake under `lake/`), started.
pub fn open(dir: &Path, config: FirehoseConfig, tables: Vec<TableConfig>) -> Arc<Firehose> {
    let streams = Arc::new(
        Streams::open(
            StreamsConfig::new(dir.join("kinesis")),
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    let fh = Firehose::open(FirehoseOptions {
        config,
        data_dir: dir.to_path_buf(),
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        log: Default::default(),
        streams,
        lake: sluice_lake::Lake::local(dir.join("lake")),
        clock: Arc::new(SystemClock),
        tables,
    })
    .unwrap();
    fh.start();
    fh
}

/// Runs `op` with a JSON body, as the gateway would; the JSON answer.
pub async fn call(fh: &Firehose, op: &str, body: Value) -> Result<Value, sluice_aws::ApiError> {
    let tree = sluice_aws::codec::decode(body.to_string().as_bytes(), Format::Json).unwrap();
    match fh
        .call(op, Input::root(&tree, Format::Json).unwrap())
        .await?
    {
        Reply::Encoded(b) => Ok(serde_json::from_slice(&b).unwrap()),
        other => panic!("{other:?}"),
    }
}

/// Every object of the bucket `lake`: key → bytes.
pub fn objects(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let root = dir.join("lake").join("lake");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !e.file_name().to_string_lossy().starts_with(".sluice-") {
                let key = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(key, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}
