//! The AWS SDK for Rust against a real sluice server: every supported operation, and the
//! errors a client sees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardFilter, ShardFilterType, ShardIteratorType,
};
use common::{md5_hash_key, wait_active, Server};

fn err_code<E: aws_sdk_kinesis::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("none").to_string()
}

#[tokio::test]
async fn create_describe_list_delete() {
    let s = Server::start();
    let c = s.sdk();
    c.create_stream()
        .stream_name("four")
        .shard_count(4)
        .send()
        .await
        .unwrap();
    wait_active(&c, "four").await;
    let d = c
        .describe_stream()
        .stream_name("four")
        .send()
        .await
        .unwrap();
    let d = d.stream_description().unwrap();
    assert_eq!(
        d.stream_arn(),
        "arn:aws:kinesis:us-east-1:000000000000:stream/four"
    );
    assert_eq!(d.retention_period_hours(), 24);
    let shards = d.shards();
    assert_eq!(shards.len(), 4);
    assert_eq!(shards[0].shard_id(), "shardId-000000000000");
    assert_eq!(shards[3].shard_id(), "shardId-000000000003");
    let mut next: u128 = 0;
    for s in shards {
        let r = s.hash_key_range().unwrap();
        assert_eq!(r.starting_hash_key().parse::<u128>().unwrap(), next);
        let end: u128 = r.ending_hash_key().parse().unwrap();
        next = end.wrapping_add(1);
        assert_eq!(
            s.sequence_number_range()
                .unwrap()
                .starting_sequence_number()
                .len(),
            56
        );
    }
    assert_eq!(next, 0, "the last range ends at 2^128-1");

    // DescribeStream paging.
    let p = c
        .describe_stream()
        .stream_name("four")
        .limit(3)
        .send()
        .await
        .unwrap();
    let p = p.stream_description().unwrap();
    assert_eq!(p.shards().len(), 3);
    assert!(p.has_more_shards());
    let p2 = c
        .describe_stream()
        .stream_name("four")
        .exclusive_start_shard_id("shardId-000000000002")
        .send()
        .await
        .unwrap();
    assert_eq!(p2.stream_description().unwrap().shards().len(), 1);

    for name in ["a1", "a2", "a3"] {
        c.create_stream()
            .stream_name(name)
            .shard_count(1)
            .send()
            .await
            .unwrap();
    }
    let l = c.list_streams().limit(2).send().await.unwrap();
    assert_eq!(l.stream_names(), ["a1", "a2"]);
    assert!(l.has_more_streams());
    let l2 = c
        .list_streams()
        .next_token(l.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(l2.stream_names(), ["a3", "four"]);
    assert!(!l2.has_more_streams());
    assert_eq!(l2.stream_summaries().len(), 2);
    let l3 = c
        .list_streams()
        .exclusive_start_stream_name("a2")
        .send()
        .await
        .unwrap();
    assert_eq!(l3.stream_names(), ["a3", "four"]);

    let summary = c
        .describe_stream_summary()
        .stream_name("four")
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary
            .stream_description_summary()
            .unwrap()
            .open_shard_count(),
        4
    );
    let limits = c.describe_limits().send().await.unwrap();
    assert_eq!(limits.open_shard_count(), 7);
    assert_eq!(limits.shard_limit(), 500);

    c.delete_stream().stream_name("a1").send().await.unwrap();
    let e = c
        .describe_stream()
        .stream_name("a1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_code(&e.into_service_error()),
        "ResourceNotFoundException"
    );
    let e = c
        .create_stream()
        .stream_name("four")
        .shard_count(1)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err_code(&e), "ResourceInUseException");
    assert!(e.to_string().contains("already exists"), "{e}");
}

#[tokio::test]
async fn put_routes_by_md5_and_reads_back_with_every_iterator_type() {
    let s = Server::start();
    let c = s.sdk();
    c.create_stream()
        .stream_name("route")
        .shard_count(4)
        .send()
        .await
        .unwrap();
    wait_active(&c, "route").await;
    let shards = c.list_shards().stream_name("route").send().await.unwrap();
    let ranges: Vec<(u128, u128, String)> = shards
        .shards()
        .iter()
        .map(|s| {
            let r = s.hash_key_range().unwrap();
            (
                r.starting_hash_key().parse().unwrap(),
                r.ending_hash_key().parse().unwrap(),
                s.shard_id().to_string(),
            )
        })
        .collect();
    let t0 = DateTime::from_millis(chrono_now_ms() - 1000);
    let mut puts = Vec::new();
    for i in 0..40 {
        let key = format!("user-{i}");
        let r = c
            .put_record()
            .stream_name("route")
            .partition_key(&key)
            .data(Blob::new(format!("event {i}")))
            .send()
            .await
            .unwrap();
        let h = md5_hash_key(&key);
        let want = ranges.iter().find(|(a, b, _)| *a <= h && h <= *b).unwrap();
        assert_eq!(r.shard_id(), want.2, "record {key} routed by MD5");
        puts.push((
            key,
            r.shard_id().to_string(),
            r.sequence_number().to_string(),
        ));
    }
    // Explicit hash key overrides the partition key.
    let r = c
        .put_record()
        .stream_name("route")
        .partition_key("x")
        .explicit_hash_key("0")
        .data(Blob::new("low"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.shard_id(), "shardId-000000000000");
    let r = c
        .put_record()
        .stream_name("route")
        .partition_key("x")
        .explicit_hash_key("340282366920938463463374607431768211455")
        .data(Blob::new("high"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.shard_id(), "shardId-000000000003");

    // Sequence numbers grow per shard.
    for shard in ranges.iter().map(|r| &r.2) {
        let seqs: Vec<u128> = puts
            .iter()
            .filter(|p| &p.1 == shard)
            .map(|p| p.2[20..].parse::<u128>().unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    }

    let read_all = |it: String| {
        let c = c.clone();
        async move {
            let mut out = Vec::new();
            let mut it = Some(it);
            for _ in 0..100 {
                let r = c
                    .get_records()
                    .shard_iterator(it.take().unwrap())
                    .limit(7)
                    .send()
                    .await
                    .unwrap();
                if r.records().is_empty() {
                    assert_eq!(r.millis_behind_latest(), Some(0));
                    break;
                }
                out.extend(r.records().iter().map(|r| {
                    (
                        r.sequence_number().to_string(),
                        String::from_utf8(r.data().as_ref().to_vec()).unwrap(),
                    )
                }));
                it = r.next_shard_iterator().map(str::to_string);
            }
            out
        }
    };
    let shard0 = "shardId-000000000000";
    let in_shard0: Vec<&(String, String, String)> = puts.iter().filter(|p| p.1 == shard0).collect();
    assert!(
        in_shard0.len() >= 3,
        "40 keys over 4 shards put several in shard 0"
    );
    let iterator = |kind: ShardIteratorType, seq: Option<&str>, ts: Option<DateTime>| {
        c.get_shard_iterator()
            .stream_name("route")
            .shard_id(shard0)
            .shard_iterator_type(kind)
            .set_starting_sequence_number(seq.map(str::to_string))
            .set_timestamp(ts)
            .send()
    };
    let it = iterator(ShardIteratorType::TrimHorizon, None, None)
        .await
        .unwrap();
    let all = read_all(it.shard_iterator().unwrap().to_string()).await;
    assert_eq!(
        all.len(),
        in_shard0.len() + 1,
        "shard 0 holds its keys plus the explicit-hash 'low' record"
    );
    let seq2 = &in_shard0[1].2;
    let at = iterator(ShardIteratorType::AtSequenceNumber, Some(seq2), None)
        .await
        .unwrap();
    let from_at = read_all(at.shard_iterator().unwrap().to_string()).await;
    assert_eq!(&from_at[0].0, seq2);
    let after = iterator(ShardIteratorType::AfterSequenceNumber, Some(seq2), None)
        .await
        .unwrap();
    let from_after = read_all(after.shard_iterator().unwrap().to_string()).await;
    assert_eq!(from_after.len(), from_at.len() - 1);
    let ts = iterator(ShardIteratorType::AtTimestamp, None, Some(t0))
        .await
        .unwrap();
    assert_eq!(
        read_all(ts.shard_iterator().unwrap().to_string())
            .await
            .len(),
        all.len()
    );
    let latest = iterator(ShardIteratorType::Latest, None, None)
        .await
        .unwrap();
    let latest_it = latest.shard_iterator().unwrap().to_string();
    c.put_record()
        .stream_name("route")
        .partition_key("x")
        .explicit_hash_key("1")
        .data(Blob::new("after latest"))
        .send()
        .await
        .unwrap();
    let r = c
        .get_records()
        .shard_iterator(latest_it)
        .send()
        .await
        .unwrap();
    assert_eq!(r.records().len(), 1);
    assert_eq!(r.records()[0].data().as_ref(), b"after latest");

    // StreamARN instead of StreamName.
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/route";
    c.put_record()
        .stream_arn(arn)
        .partition_key("k")
        .data(Blob::new("via arn"))
        .send()
        .await
        .unwrap();
    c.describe_stream_summary()
        .stream_arn(arn)
        .send()
        .await
        .unwrap();

    // A sequence number of another shard.
    let other = puts.iter().find(|p| p.1 != shard0).unwrap();
    let e = c
        .get_shard_iterator()
        .stream_name("route")
        .shard_id(shard0)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(&other.2)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err_code(&e), "InvalidArgumentException");
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn put_records_batches_and_list_shards() {
    let s = Server::start();
    let c = s.sdk();
    c.create_stream()
        .stream_name("batch")
        .shard_count(3)
        .send()
        .await
        .unwrap();
    wait_active(&c, "batch").await;
    let entries: Vec<PutRecordsRequestEntry> = (0..500)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("k{i}"))
                .data(Blob::new(format!("r{i}")))
                .build()
                .unwrap()
        })
        .collect();
    let r = c
        .put_records()
        .stream_name("batch")
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(r.failed_record_count(), Some(0));
    assert_eq!(r.records().len(), 500);
    let mut per_shard = std::collections::HashMap::new();
    for (i, rec) in r.records().iter().enumerate() {
        per_shard
            .entry(rec.shard_id().unwrap().to_string())
            .or_insert_with(Vec::new)
            .push((rec.sequence_number().unwrap().to_string(), format!("r{i}")));
    }
    assert_eq!(per_shard.len(), 3);
    // Each shard returns its records in put order.
    for (shard, want) in &per_shard {
        let it = c
            .get_shard_iterator()
            .stream_name("batch")
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let got = c
            .get_records()
            .shard_iterator(it.shard_iterator().unwrap())
            .send()
            .await
            .unwrap();
        let got: Vec<(String, String)> = got
            .records()
            .iter()
            .map(|r| {
                (
                    r.sequence_number().to_string(),
                    String::from_utf8(r.data().as_ref().to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(&got, want);
    }

    let page = c
        .list_shards()
        .stream_name("batch")
        .max_results(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.shards().len(), 2);
    let rest = c
        .list_shards()
        .next_token(page.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.shards().len(), 1);
    assert_eq!(rest.shards()[0].shard_id(), "shardId-000000000002");
    assert!(rest.next_token().is_none());
    let after = c
        .list_shards()
        .stream_name("batch")
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AfterShardId)
                .shard_id("shardId-000000000000")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(after.shards().len(), 2);
    let e = c
        .list_shards()
        .stream_name("batch")
        .next_token(page.next_token().unwrap())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err_code(&e), "InvalidArgumentException");
}

#[tokio::test]
async fn retention_and_tags() {
    let s = Server::start();
    let c = s.sdk();
    c.create_stream()
        .stream_name("ret")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    wait_active(&c, "ret").await;
    c.increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(48)
        .send()
        .await
        .unwrap();
    let e = c
        .increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(24)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err_code(&e), "InvalidArgumentException");
    assert_eq!(
        e.to_string(),
        "InvalidArgumentException: Requested retention period (24 hours) for stream ret can not be shorter than existing retention period (48 hours). Use DecreaseRetentionPeriod API."
    );
    let e = c
        .increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(8761)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e
        .to_string()
        .contains("Maximum allowed retention period is 8760 hours"));
    c.increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(8760)
        .send()
        .await
        .unwrap();
    c.decrease_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(24)
        .send()
        .await
        .unwrap();
    let e = c
        .decrease_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(23)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e
        .to_string()
        .contains("Minimum allowed retention period is 24 hours"));
    let d = c
        .describe_stream_summary()
        .stream_name("ret")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.stream_description_summary()
            .unwrap()
            .retention_period_hours(),
        24
    );

    c.add_tags_to_stream()
        .stream_name("ret")
        .tags("team", "data")
        .tags("env", "dev")
        .send()
        .await
        .unwrap();
    let t = c
        .list_tags_for_stream()
        .stream_name("ret")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = t.tags().iter().map(|t| t.key()).collect();
    assert_eq!(keys, ["env", "team"]);
    c.remove_tags_from_stream()
        .stream_name("ret")
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    let t = c
        .list_tags_for_stream()
        .stream_name("ret")
        .send()
        .await
        .unwrap();
    assert_eq!(t.tags().len(), 1);
    assert_eq!(t.tags()[0].value(), Some("data"));
    let e = c
        .add_tags_to_stream()
        .stream_name("ret")
        .tags("bad;key", "v")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err_code(&e), "InvalidArgumentException");
}

#[tokio::test]
async fn errors_a_client_sees() {
    let s = Server::start();
    let c = s.sdk();
    let e = c
        .put_record()
        .stream_name("missing")
        .partition_key("k")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err_code(&e), "ResourceNotFoundException");
    assert_eq!(
        e.to_string(),
        "ResourceNotFoundException: Stream missing under account 000000000000 not found."
    );
    let e = c
        .create_stream()
        .stream_name("has space")
        .shard_count(1)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err_code(&e), "ValidationException");
    assert_eq!(
        e.to_string(),
        "ValidationException: 1 validation error detected: Value 'has space' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    );
    let e = c
        .get_records()
        .shard_iterator("bm90IGFuIGl0ZXJhdG9y")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err_code(&e), "InvalidArgumentException");
    assert_eq!(
        e.to_string(),
        "InvalidArgumentException: Invalid ShardIterator."
    );
    let e = c
        .get_shard_iterator()
        .stream_name("missing")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.to_string(), "ResourceNotFoundException: Shard shardId-000000000000 in stream missing under account 000000000000 does not exist");
    let e = c
        .split_shard()
        .stream_name("x")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("1")
        .send()
        .await
        .unwrap_err();
    let e = e.into_service_error();
    assert_eq!(
        e.to_string(),
        "ResourceNotFoundException: Stream x under account 000000000000 not found."
    );
    // EnableEnhancedMonitoring is implemented now (tests/metrics.rs): a missing stream is
    // ResourceNotFoundException, as on AWS.
    let e = c
        .enable_enhanced_monitoring()
        .stream_name("x")
        .shard_level_metrics(aws_sdk_kinesis::types::MetricsName::All)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err_code(&e), "ResourceNotFoundException");
}
