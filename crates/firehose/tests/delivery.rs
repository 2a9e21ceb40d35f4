//! Delivery end to end inside the library: the service over a temporary data directory, records
//! put through the API, objects read back from the lake directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_firehose::{Firehose, FirehoseConfig};

use common::{call, objects};

fn open(dir: &Path, config: FirehoseConfig) -> Arc<Firehose> {
    common::open(dir, config, Vec::new())
}

fn create_body(name: &str, size_mb: u32, interval_s: u32) -> serde_json::Value {
    serde_json::json!({
        "DeliveryStreamName": name,
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::000000000000:role/r",
            "BucketARN": "arn:aws:s3:::lake",
            "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": interval_s}
        }
    })
}

async fn put(fh: &Firehose, name: &str, lines: &[String]) {
    use base64::Engine;
    for chunk in lines.chunks(500) {
        let records: Vec<_> = chunk
            .iter()
            .map(|l| serde_json::json!({"Data": base64::engine::general_purpose::STANDARD.encode(l)}))
            .collect();
        let r = call(
            fh,
            "PutRecordBatch",
            serde_json::json!({"DeliveryStreamName": name, "Records": records}),
        )
        .await
        .unwrap();
        assert_eq!(r["FailedPutCount"], 0);
    }
}

fn lines_of(objs: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut v: Vec<String> = objs
        .values()
        .flat_map(|b| {
            String::from_utf8_lossy(b)
                .split_inclusive('\n')
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    v.sort();
    v
}

async fn wait_for(dir: &Path, want: usize, timeout: Duration) -> BTreeMap<String, Vec<u8>> {
    let start = Instant::now();
    loop {
        let objs = objects(dir);
        if lines_of(&objs).len() >= want || start.elapsed() > timeout {
            return objs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interval_hint_writes_one_object_for_many_puts() {
    let dir = tempfile::tempdir().unwrap();
    let fh = open(dir.path(), FirehoseConfig::default());
    call(&fh, "CreateDeliveryStream", create_body("s", 5, 1))
        .await
        .unwrap();
    let lines: Vec<String> = (0..1000).map(|i| format!("r{i:04}\n")).collect();
    for chunk in lines.chunks(50) {
        put(&fh, "s", chunk).await;
    }
    let objs = wait_for(dir.path(), 1000, Duration::from_secs(10)).await;
    let mut want = lines.clone();
    want.sort();
    assert_eq!(lines_of(&objs), want);
    assert!(objs.len() <= 2, "{} objects for 20 puts", objs.len());
    fh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_hint_writes_before_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let fh = open(dir.path(), FirehoseConfig::default());
    call(&fh, "CreateDeliveryStream", create_body("s", 1, 900))
        .await
        .unwrap();
    let big: Vec<String> = (0..2500)
        .map(|i| format!("{i:05}{}\n", "z".repeat(994)))
        .collect(); // 2.5 MB
    put(&fh, "s", &big).await;
    let start = Instant::now();
    while objects(dir.path()).len() < 2 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let objs = objects(dir.path());
    assert_eq!(
        objs.len(),
        2,
        "two full 1 MB buffers, the rest waits for the 900 s interval"
    );
    assert!(objs.values().all(|b| b.len() >= 1 << 20));
    fh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_delivers_what_was_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..300).map(|i| format!("k{i:03}\n")).collect();
    {
        let fh = open(dir.path(), FirehoseConfig::default());
        call(&fh, "CreateDeliveryStream", create_body("s", 1, 900))
            .await
            .unwrap();
        put(&fh, "s", &lines).await;
        // Acknowledged, buffered in memory, no object yet: stopped before the interval.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(objects(dir.path()).is_empty());
        fh.shutdown().await;
    }
    let fh = open(dir.path(), FirehoseConfig::default());
    let d = call(
        &fh,
        "DescribeDeliveryStream",
        serde_json::json!({"DeliveryStreamName": "s"}),
    )
    .await
    .unwrap();
    assert_eq!(
        d["DeliveryStreamDescription"]["DeliveryStreamStatus"],
        "ACTIVE"
    );
    // A shorter interval now: the buffered records come out of the durable buffer.
    call(&fh, "UpdateDestination", serde_json::json!({
        "DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "1",
        "DestinationId": "destinationId-000000000001",
        "ExtendedS3DestinationUpdate": {"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}
    }))
    .await
    .unwrap();
    let objs = wait_for(dir.path(), 300, Duration::from_secs(10)).await;
    let mut want = lines.clone();
    want.sort();
    assert_eq!(lines_of(&objs), want);
    assert!(
        objs.keys().all(|k| k.contains("/s-2-")),
        "{:?}",
        objs.keys().collect::<Vec<_>>()
    );
    // Nothing is delivered twice after that: the checkpoint moved past the object.
    fh.shutdown().await;
    drop(fh);
    let fh = open(dir.path(), FirehoseConfig::default());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(lines_of(&objects(dir.path())).len(), 300);
    fh.shutdown().await;
}
