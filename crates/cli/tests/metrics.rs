//! `/metrics`, `/health` and enhanced monitoring against a real server: the per-stream series
//! count what the AWS SDK for Rust put and read and what a subscription pushed, shard-level
//! series come and go with Enable/DisableEnhancedMonitoring, and `/health` answers its JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{MetricsName, PutRecordsRequestEntry, ShardIteratorType};
use common::{md5_hash_key, wait_active, Server};
use serde_json::{json, Value};
use sluice_client::{Client, SubscriptionEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` over HTTP/1.1: (status, body).
async fn get(endpoint: &str, path: &str) -> (u16, String) {
    let addr = endpoint.strip_prefix("http://").unwrap();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut raw))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase().contains("content-length:"),
        "a whole body, not chunks: {head}"
    );
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The samples of a Prometheus text page: `name{labels}` → value.
async fn scrape(endpoint: &str) -> BTreeMap<String, f64> {
    let (status, body) = get(endpoint, "/metrics").await;
    assert_eq!(status, 200);
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn sample(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("{series} is not on /metrics"))
}

fn shard_series(m: &BTreeMap<String, f64>) -> Vec<&String> {
    m.keys()
        .filter(|k| k.starts_with("sluice_kinesis_shard_"))
        .collect()
}

#[tokio::test]
async fn metrics_count_puts_reads_and_pushes_and_follow_enhanced_monitoring() {
    let s = Server::start();
    let sdk = s.sdk();
    sdk.create_stream()
        .stream_name("obs")
        .shard_count(2)
        .send()
        .await
        .unwrap();
    wait_active(&sdk, "obs").await;
    // A put to a stream that does not exist makes no series (no label for any name sent).
    sdk.put_record()
        .stream_name("nope")
        .data(Blob::new("x"))
        .partition_key("k")
        .send()
        .await
        .unwrap_err();
    let before = scrape(&s.endpoint).await;
    assert!(!before.keys().any(|k| k.contains("stream=\"nope\"")));
    assert!(
        shard_series(&before).is_empty(),
        "no shard level until enabled"
    );

    // 20 records in one PutRecords, 1 by PutRecord.
    let entries: Vec<PutRecordsRequestEntry> = (0..20)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(format!("record-{i}")))
                .partition_key(format!("key-{i}"))
                .build()
                .unwrap()
        })
        .collect();
    let mut bytes: usize = (0..20)
        .map(|i| format!("record-{i}").len() + format!("key-{i}").len())
        .sum();
    let out = sdk
        .put_records()
        .stream_name("obs")
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count(), Some(0));
    sdk.put_record()
        .stream_name("obs")
        .data(Blob::new("single"))
        .partition_key("pk")
        .send()
        .await
        .unwrap();
    bytes += "single".len() + "pk".len();

    // Every record read back by GetRecords, shard by shard.
    let mut per_shard = Vec::new();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let it = sdk
            .get_shard_iterator()
            .stream_name("obs")
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let got = sdk
            .get_records()
            .shard_iterator(it.shard_iterator().unwrap())
            .send()
            .await
            .unwrap();
        per_shard.push(got.records().len());
    }
    assert_eq!(per_shard.iter().sum::<usize>(), 21);

    // A subscription to shard 0 pushes its records.
    let consumer = sdk
        .register_stream_consumer()
        .stream_arn("arn:aws:kinesis:us-east-1:000000000000:stream/obs")
        .consumer_name("watcher")
        .send()
        .await
        .unwrap();
    let arn = consumer.consumer().unwrap().consumer_arn().to_string();
    let c = Client::new(&s.endpoint, "us-east-1", None).unwrap();
    let mut sub = c
        .subscribe_to_shard(
            &arn,
            "shardId-000000000000",
            json!({"Type": "TRIM_HORIZON"}),
        )
        .await
        .unwrap();
    assert_eq!(
        sub.next_event().await.unwrap(),
        Some(SubscriptionEvent::Initial)
    );
    let mut pushed = 0;
    while pushed < per_shard[0] {
        let ev = tokio::time::timeout(Duration::from_secs(20), sub.next_event())
            .await
            .expect("records within 20 s")
            .unwrap()
            .unwrap();
        let SubscriptionEvent::Shard(e) = ev else {
            panic!("one initial response")
        };
        pushed += e["Records"].as_array().unwrap().len();
    }
    assert_eq!(pushed, per_shard[0]);

    let m = scrape(&s.endpoint).await;
    let st = |name: &str| sample(&m, &format!("{name}{{stream=\"obs\"}}"));
    assert_eq!(st("sluice_kinesis_incoming_records_total"), 21.0);
    assert_eq!(st("sluice_kinesis_incoming_bytes_total"), bytes as f64);
    assert_eq!(st("sluice_kinesis_put_records_success_total"), 1.0);
    assert_eq!(
        st("sluice_kinesis_put_records_successful_records_total"),
        20.0
    );
    assert_eq!(st("sluice_kinesis_put_records_total_records_total"), 20.0);
    assert_eq!(st("sluice_kinesis_put_records_failed_records_total"), 0.0);
    assert_eq!(
        st("sluice_kinesis_put_records_throttled_records_total"),
        0.0
    );
    assert_eq!(st("sluice_kinesis_put_record_success_total"), 1.0);
    assert_eq!(st("sluice_kinesis_put_record_bytes_total"), 8.0);
    assert_eq!(st("sluice_kinesis_put_record_latency_seconds_count"), 1.0);
    assert_eq!(st("sluice_kinesis_put_records_latency_seconds_count"), 1.0);
    assert_eq!(st("sluice_kinesis_get_records_success_total"), 2.0);
    assert_eq!(st("sluice_kinesis_get_records_records_total"), 21.0);
    assert_eq!(st("sluice_kinesis_get_records_bytes_total"), bytes as f64);
    assert_eq!(st("sluice_kinesis_get_records_latency_seconds_count"), 2.0);
    assert_eq!(
        st("sluice_kinesis_write_provisioned_throughput_exceeded_total"),
        0.0
    );
    assert_eq!(st("sluice_kinesis_subscribe_to_shard_success_total"), 1.0);
    assert_eq!(
        st("sluice_kinesis_subscribe_to_shard_event_records_total"),
        per_shard[0] as f64
    );
    assert!(st("sluice_kinesis_subscribe_to_shard_event_success_total") >= 1.0);
    assert!(st("sluice_kinesis_get_records_iterator_age_seconds") >= 0.0);
    assert_eq!(sample(&m, "sluice_subscriptions_open"), 1.0);
    assert_eq!(sample(&m, "sluice_shards_open"), 2.0);
    assert_eq!(sample(&m, "sluice_shards_poisoned"), 0.0);
    assert!(sample(&m, "sluice_data_dir_free_bytes") > 0.0);
    assert_eq!(
        sample(
            &m,
            "sluice_requests_total{service=\"kinesis\",operation=\"PutRecords\",status=\"2xx\"}"
        ),
        1.0
    );
    assert!(sample(&m, "sluice_log_group_commit_records_count") >= 1.0);
    drop(sub);

    // Enhanced monitoring: the shard-level series of the metrics asked for, from 0.
    let on = sdk
        .enable_enhanced_monitoring()
        .stream_name("obs")
        .shard_level_metrics(MetricsName::IncomingRecords)
        .shard_level_metrics(MetricsName::OutgoingRecords)
        .send()
        .await
        .unwrap();
    assert_eq!(on.stream_name(), Some("obs"));
    assert_eq!(
        on.stream_arn(),
        Some("arn:aws:kinesis:us-east-1:000000000000:stream/obs")
    );
    assert!(on.current_shard_level_metrics().is_empty());
    assert_eq!(
        on.desired_shard_level_metrics(),
        [MetricsName::IncomingRecords, MetricsName::OutgoingRecords]
    );
    let d = sdk
        .describe_stream()
        .stream_name("obs")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.stream_description().unwrap().enhanced_monitoring()[0].shard_level_metrics(),
        [MetricsName::IncomingRecords, MetricsName::OutgoingRecords]
    );
    let shard_of = |key: &str| {
        if md5_hash_key(key) <= u128::MAX / 2 {
            "shardId-000000000000"
        } else {
            "shardId-000000000001"
        }
    };
    let keys = ["a", "b", "c", "d", "e"];
    for k in keys {
        sdk.put_record()
            .stream_name("obs")
            .data(Blob::new("x"))
            .partition_key(k)
            .send()
            .await
            .unwrap();
    }
    let m = scrape(&s.endpoint).await;
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let want = keys.iter().filter(|k| shard_of(k) == shard).count();
        assert_eq!(
            sample(
                &m,
                &format!("sluice_kinesis_shard_incoming_records_total{{stream=\"obs\",shard=\"{shard}\"}}")
            ),
            want as f64
        );
        assert_eq!(
            sample(
                &m,
                &format!("sluice_kinesis_shard_outgoing_records_total{{stream=\"obs\",shard=\"{shard}\"}}")
            ),
            0.0
        );
    }
    assert_eq!(shard_series(&m).len(), 4, "two metrics on two shards");
    assert_eq!(
        sample(&m, "sluice_kinesis_incoming_records_total{stream=\"obs\"}"),
        26.0
    );

    // Disabling one metric removes its series; disabling ALL removes the rest.
    let off = sdk
        .disable_enhanced_monitoring()
        .stream_name("obs")
        .shard_level_metrics(MetricsName::IncomingRecords)
        .send()
        .await
        .unwrap();
    assert_eq!(
        off.current_shard_level_metrics(),
        [MetricsName::IncomingRecords, MetricsName::OutgoingRecords]
    );
    assert_eq!(
        off.desired_shard_level_metrics(),
        [MetricsName::OutgoingRecords]
    );
    let m = scrape(&s.endpoint).await;
    assert_eq!(shard_series(&m).len(), 2);
    assert!(shard_series(&m)
        .iter()
        .all(|k| k.starts_with("sluice_kinesis_shard_outgoing_records_total")));
    sdk.disable_enhanced_monitoring()
        .stream_name("obs")
        .shard_level_metrics(MetricsName::All)
        .send()
        .await
        .unwrap();
    assert!(shard_series(&scrape(&s.endpoint).await).is_empty());
    let summary = sdk
        .describe_stream_summary()
        .stream_name("obs")
        .send()
        .await
        .unwrap();
    assert!(summary
        .stream_description_summary()
        .unwrap()
        .enhanced_monitoring()[0]
        .shard_level_metrics()
        .is_empty());

    // A name that is not a shard-level metric.
    let e = sdk
        .enable_enhanced_monitoring()
        .stream_name("obs")
        .shard_level_metrics(MetricsName::from("Bogus"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        aws_sdk_kinesis::error::ProvideErrorMetadata::message(&e),
        Some("1 validation error detected: Value '[Bogus]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, IteratorAgeMilliseconds, ALL]]")
    );

    // Deleting a stream with enhanced monitoring on removes its shard-level series.
    sdk.enable_enhanced_monitoring()
        .stream_name("obs")
        .shard_level_metrics(MetricsName::All)
        .send()
        .await
        .unwrap();
    assert_eq!(shard_series(&scrape(&s.endpoint).await).len(), 14);
    sdk.delete_stream()
        .stream_name("obs")
        .enforce_consumer_deletion(true)
        .send()
        .await
        .unwrap();
    assert!(shard_series(&scrape(&s.endpoint).await).is_empty());
}

#[tokio::test]
async fn health_answers_json_with_every_shard_on_request() {
    let s = Server::start();
    let sdk = s.sdk();
    sdk.create_stream()
        .stream_name("h")
        .shard_count(3)
        .send()
        .await
        .unwrap();
    wait_active(&sdk, "h").await;
    let (status, body) = get(&s.endpoint, "/health").await;
    assert_eq!(status, 200);
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["ready"], true);
    assert_eq!(h["live"], true);
    assert_eq!(h["streams"], 1);
    assert_eq!(h["subscriptions"], 0);
    assert_eq!(
        h["shards"],
        json!({"open": 3, "closed": 0, "poisoned": [], "no_space": []})
    );
    assert!(h["data_dir"]["free_bytes"].as_u64().unwrap() > 0);
    assert!(h["uptime_seconds"].is_u64());

    let (status, body) = get(&s.endpoint, "/health?verbose=1").await;
    assert_eq!(status, 200);
    let h: Value = serde_json::from_str(&body).unwrap();
    let all = h["shards"]["all"].as_array().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[2],
        json!({"stream": "h", "shard": "shardId-000000000002", "open": true, "state": "ok"})
    );

    let (status, body) = get(&s.endpoint, "/health/live").await;
    assert_eq!((status, body.as_str()), (200, "{\"status\":\"live\"}\n"));
}
