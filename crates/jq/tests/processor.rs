//! Processors end to end in-process: a `Poller` per processor over a real `Streams`, records
//! put into the source and read back from the output and dead-letter streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use sluice_jq::{ProcessorConfig, Processors, StartingPosition};
use sluice_streams::{
    Record, ShardId, ShardStart, StreamMode, StreamName, StreamSpec, Streams, StreamsConfig,
    SystemClock,
};

fn open(dir: &std::path::Path) -> Arc<Streams> {
    Arc::new(Streams::open(StreamsConfig::new(dir), Arc::new(SystemClock)).unwrap())
}

fn create(s: &Streams, name: &str, shards: u32) {
    s.create_stream(
        &StreamName::new(name).unwrap(),
        StreamSpec {
            shard_count: shards,
            mode: StreamMode::Provisioned,
            max_record_size_kib: 1024,
            tags: Default::default(),
        },
    )
    .unwrap();
}

async fn put(s: &Streams, stream: &str, records: &[(&str, Vec<u8>)]) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let records = records
        .iter()
        .map(|(k, d)| Record {
            partition_key: Bytes::copy_from_slice(k.as_bytes()),
            explicit_hash_key: None,
            data: Bytes::from(d.clone()),
        })
        .collect();
    s.put(stream, records, Box::new(move |o| drop(tx.send(o))))
        .unwrap();
    assert!(rx.await.unwrap().iter().all(Result::is_ok));
}

/// The records of every shard of `stream` (partition key, JSON), once there are `n` of them.
async fn wait_for(s: &Arc<Streams>, stream: &str, n: usize) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s2 = s.clone();
        let stream2 = stream.to_string();
        let got = tokio::task::spawn_blocking(move || {
            let Ok(view) = s2.describe(&stream2) else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for shard in &view.shards {
                let c = s2
                    .cursor(&stream2, ShardId(shard.meta.index), ShardStart::TrimHorizon)
                    .unwrap();
                let r = s2.read(&c, 10_000, 64 << 20, false).unwrap();
                for (_, rec) in r.records {
                    out.push((
                        String::from_utf8(rec.partition_key.to_vec()).unwrap(),
                        serde_json::from_slice(&rec.data).unwrap(),
                    ));
                }
            }
            out
        })
        .await
        .unwrap();
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{stream}: {} of {n} records: {got:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(name: &str) -> ProcessorConfig {
    ProcessorConfig {
        name: name.into(),
        source: "clicks".into(),
        program: Some(r#"select(.event_type == "click") | .processed_at = $arrival_ms"#.into()),
        program_file: None,
        partition_key: None,
        output: "clicks-processed".into(),
        dead_letter: Some("clicks-dead".into()),
        starting_position: StartingPosition::TrimHorizon,
        batch_size: 100,
        batching_window_ms: 0,
        parallelization_factor: 1,
        maximum_retry_attempts: -1,
        enabled: true,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_processor_transforms_its_source_into_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    for (name, shards) in [("clicks", 2), ("clicks-processed", 1), ("clicks-dead", 1)] {
        create(&s, name, shards);
    }
    let processors = Processors::prepare(&[config("p")], None, "us-east-1", "000000000000")
        .unwrap()
        .start(s.clone(), sluice_lake::Lake::local(dir.path().join("lake")));
    let mut records = Vec::new();
    for i in 0..30 {
        let kind = if i % 3 == 0 { "view" } else { "click" };
        let data = json!({"event_type": kind, "user_id": format!("u{}", i % 2), "n": i});
        records.push((
            if i % 2 == 0 { "u0" } else { "u1" },
            serde_json::to_vec(&data).unwrap(),
        ));
    }
    records.push(("u0", b"not json".to_vec()));
    put(&s, "clicks", &records).await;

    let out = wait_for(&s, "clicks-processed", 20).await;
    assert_eq!(out.len(), 20);
    for key in ["u0", "u1"] {
        let ns: Vec<i64> = out
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v["n"].as_i64().unwrap())
            .collect();
        let parity = if key == "u0" { 0 } else { 1 };
        let want: Vec<i64> = (0..30).filter(|i| i % 3 != 0 && i % 2 == parity).collect();
        assert_eq!(ns, want, "{key}");
    }
    assert!(out.iter().all(|(_, v)| v["processed_at"].is_i64()));
    let dead = wait_for(&s, "clicks-dead", 1).await;
    assert_eq!(dead[0].0, "u0");
    assert!(dead[0].1["error"].as_str().unwrap().contains("not JSON"));
    processors.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_processor_waits_for_streams_that_do_not_exist_yet() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let processors = Processors::prepare(&[config("late")], None, "us-east-1", "000000000000")
        .unwrap()
        .start(s.clone(), sluice_lake::Lake::local(dir.path().join("lake")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    create(&s, "clicks", 1);
    put(
        &s,
        "clicks",
        &[("k", br#"{"event_type":"click"}"#.to_vec())],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    create(&s, "clicks-processed", 1);
    create(&s, "clicks-dead", 1);
    let out = wait_for(&s, "clicks-processed", 1).await;
    assert_eq!(out[0].1["event_type"], "click");
    processors.stop().await;
}
