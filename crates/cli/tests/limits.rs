//! Every protocol limit of `sluice_kinesis::limits`, at the limit and one past it, against a
//! real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use serde_json::{json, Value};
use sluice_client::Client;
use sluice_kinesis::limits::*;

fn b64(n: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(vec![b'x'; n])
}

async fn err(c: &Client, op: &str, body: Value) -> (String, String) {
    match c.call(op, &body).await {
        Err(sluice_client::ClientError::Api {
            type_name, message, ..
        }) => (type_name, message),
        other => panic!("{op} should fail, got {other:?}"),
    }
}

async fn ok(c: &Client, op: &str, body: Value) -> Value {
    c.call(op, &body)
        .await
        .unwrap_or_else(|e| panic!("{op} should succeed: {e}"))
}

#[tokio::test]
async fn limits_at_and_past_the_edge() {
    let s = common::Server::start();
    let c = Client::new(&s.endpoint, "us-east-1", None).unwrap();

    // Stream names: 128 characters, not 129.
    ok(
        &c,
        "CreateStream",
        json!({"StreamName": "n".repeat(STREAM_NAME_CHARS_MAX), "ShardCount": 1}),
    )
    .await;
    let (t, m) = err(
        &c,
        "CreateStream",
        json!({"StreamName": "n".repeat(STREAM_NAME_CHARS_MAX + 1), "ShardCount": 1}),
    )
    .await;
    assert_eq!(t, "ValidationException");
    assert!(
        m.ends_with("Member must have length less than or equal to 128"),
        "{m}"
    );

    ok(
        &c,
        "CreateStream",
        json!({"StreamName": "lim", "ShardCount": 2}),
    )
    .await;
    ok(&c, "CreateStream", json!({"StreamName": "big", "ShardCount": 1, "MaxRecordSizeInKiB": MAX_RECORD_SIZE_KIB_MAX})).await;
    let (t, _) = err(&c, "CreateStream", json!({"StreamName": "big2", "ShardCount": 1, "MaxRecordSizeInKiB": MAX_RECORD_SIZE_KIB_MAX + 1})).await;
    assert_eq!(t, "ValidationException");

    // Partition keys: 256 characters, not 257.
    ok(&c, "PutRecord", json!({"StreamName": "lim", "PartitionKey": "k".repeat(PARTITION_KEY_CHARS_MAX), "Data": b64(1)})).await;
    let (t, _) = err(&c, "PutRecord", json!({"StreamName": "lim", "PartitionKey": "k".repeat(PARTITION_KEY_CHARS_MAX + 1), "Data": b64(1)})).await;
    assert_eq!(t, "ValidationException");

    // Record size on a default stream: partition key + data up to 1 MiB.
    let default_max = MAX_RECORD_SIZE_KIB_DEFAULT as usize * 1024;
    ok(
        &c,
        "PutRecord",
        json!({"StreamName": "lim", "PartitionKey": "k", "Data": b64(default_max - 1)}),
    )
    .await;
    let (t, _) = err(
        &c,
        "PutRecord",
        json!({"StreamName": "lim", "PartitionKey": "k", "Data": b64(default_max)}),
    )
    .await;
    assert_eq!(t, "ValidationException");

    // On a stream raised to 10 MiB records: data of the model maximum, and one byte more.
    ok(
        &c,
        "PutRecord",
        json!({"StreamName": "big", "PartitionKey": "k", "Data": b64(RECORD_DATA_BYTES_MAX - 1)}),
    )
    .await;
    let (t, m) = err(
        &c,
        "PutRecord",
        json!({"StreamName": "big", "PartitionKey": "k", "Data": b64(RECORD_DATA_BYTES_MAX + 1)}),
    )
    .await;
    assert_eq!(t, "ValidationException");
    assert!(
        m.contains(&format!("lim={} ", RECORD_DATA_BYTES_MAX + 1)),
        "{m}"
    );

    // PutRecords: 500 records, not 501.
    let recs = |n: usize, bytes: usize| {
        (0..n)
            .map(|i| json!({"PartitionKey": format!("k{i}"), "Data": b64(bytes)}))
            .collect::<Vec<_>>()
    };
    let r = ok(
        &c,
        "PutRecords",
        json!({"StreamName": "lim", "Records": recs(PUT_RECORDS_COUNT_MAX, 10)}),
    )
    .await;
    assert_eq!(r["FailedRecordCount"], 0);
    let (t, m) = err(
        &c,
        "PutRecords",
        json!({"StreamName": "lim", "Records": recs(PUT_RECORDS_COUNT_MAX + 1, 10)}),
    )
    .await;
    assert_eq!(t, "ValidationException");
    assert!(
        m.ends_with("Member must have length less than or equal to 500"),
        "{m}"
    );

    // PutRecords: 10 MiB of keys and data in all, not a byte more (on the 10 MiB stream).
    let per = PUT_RECORDS_BYTES_MAX / 10;
    assert_eq!(per * 10, PUT_RECORDS_BYTES_MAX);
    let mut at_limit: Vec<Value> = (0..10)
        .map(|i| json!({"PartitionKey": format!("{i}"), "Data": b64(per - 1)}))
        .collect();
    ok(
        &c,
        "PutRecords",
        json!({"StreamName": "big", "Records": at_limit.clone()}),
    )
    .await;
    at_limit.push(json!({"PartitionKey": "y", "Data": ""}));
    let (t, _) = err(
        &c,
        "PutRecords",
        json!({"StreamName": "big", "Records": at_limit}),
    )
    .await;
    assert_eq!(t, "InvalidArgumentException");

    // GetRecords Limit: 10000, not 10001; an iterator of 512 characters is checked, 513 is not.
    let it = ok(&c, "GetShardIterator", json!({"StreamName": "lim", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"})).await;
    let it = it["ShardIterator"].as_str().unwrap().to_string();
    ok(
        &c,
        "GetRecords",
        json!({"ShardIterator": it, "Limit": GET_RECORDS_COUNT_MAX}),
    )
    .await;
    let (t, _) = err(
        &c,
        "GetRecords",
        json!({"ShardIterator": it, "Limit": GET_RECORDS_COUNT_MAX + 1}),
    )
    .await;
    assert_eq!(t, "ValidationException");
    let (t, m) = err(
        &c,
        "GetRecords",
        json!({"ShardIterator": "A".repeat(SHARD_ITERATOR_CHARS_MAX)}),
    )
    .await;
    assert_eq!(
        (t.as_str(), m.as_str()),
        ("InvalidArgumentException", "Invalid ShardIterator.")
    );
    let (t, _) = err(
        &c,
        "GetRecords",
        json!({"ShardIterator": "A".repeat(SHARD_ITERATOR_CHARS_MAX + 1)}),
    )
    .await;
    assert_eq!(t, "ValidationException");

    // GetRecords returns at most 10 MiB of data: 11 records of 1 MiB - 1 on the big stream.
    for i in 0..11 {
        ok(&c, "PutRecord", json!({"StreamName": "lim", "PartitionKey": "s", "ExplicitHashKey": "0", "Data": b64(default_max - 1 - i % 2)})).await;
    }
    let it = ok(&c, "GetShardIterator", json!({"StreamName": "lim", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"})).await;
    let r = ok(
        &c,
        "GetRecords",
        json!({"ShardIterator": it["ShardIterator"]}),
    )
    .await;
    let bytes: usize = r["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            base64::engine::general_purpose::STANDARD
                .decode(r["Data"].as_str().unwrap())
                .unwrap()
                .len()
        })
        .sum();
    assert!(
        bytes <= GET_RECORDS_BYTES_MAX,
        "{bytes} bytes in one GetRecords"
    );
    assert!(
        bytes > GET_RECORDS_BYTES_MAX - default_max,
        "the read fills up to the limit: {bytes}"
    );

    // Retention: 24..=8760 hours.
    ok(
        &c,
        "IncreaseStreamRetentionPeriod",
        json!({"StreamName": "lim", "RetentionPeriodHours": RETENTION_HOURS_MAX}),
    )
    .await;
    let (t, _) = err(
        &c,
        "IncreaseStreamRetentionPeriod",
        json!({"StreamName": "lim", "RetentionPeriodHours": RETENTION_HOURS_MAX + 1}),
    )
    .await;
    assert_eq!(t, "InvalidArgumentException");
    ok(
        &c,
        "DecreaseStreamRetentionPeriod",
        json!({"StreamName": "lim", "RetentionPeriodHours": RETENTION_HOURS_MIN}),
    )
    .await;
    let (t, _) = err(
        &c,
        "DecreaseStreamRetentionPeriod",
        json!({"StreamName": "lim", "RetentionPeriodHours": RETENTION_HOURS_MIN - 1}),
    )
    .await;
    assert_eq!(t, "InvalidArgumentException");

    // Tags: 50 per stream; list limit 50; 50 keys per removal.
    let tags = |from: usize, n: usize| {
        (from..from + n)
            .map(|i| (format!("k{i:03}"), json!("v")))
            .collect::<serde_json::Map<_, _>>()
    };
    ok(
        &c,
        "AddTagsToStream",
        json!({"StreamName": "lim", "Tags": tags(0, sluice_streams::TAGS_MAX)}),
    )
    .await;
    let (t, m) = err(
        &c,
        "AddTagsToStream",
        json!({"StreamName": "lim", "Tags": tags(100, 1)}),
    )
    .await;
    assert_eq!(t, "InvalidArgumentException");
    assert!(m.contains("cannot have more than 50 tags"), "{m}");
    let l = ok(
        &c,
        "ListTagsForStream",
        json!({"StreamName": "lim", "Limit": LIST_TAGS_LIMIT_MAX}),
    )
    .await;
    assert_eq!(l["Tags"].as_array().unwrap().len(), 50);
    let (t, _) = err(
        &c,
        "ListTagsForStream",
        json!({"StreamName": "lim", "Limit": LIST_TAGS_LIMIT_MAX + 1}),
    )
    .await;
    assert_eq!(t, "ValidationException");
    let keys = |n: usize| (0..n).map(|i| format!("k{i:03}")).collect::<Vec<_>>();
    let (t, _) = err(
        &c,
        "RemoveTagsFromStream",
        json!({"StreamName": "lim", "TagKeys": keys(TAG_KEYS_PER_REMOVE_MAX + 1)}),
    )
    .await;
    assert_eq!(t, "ValidationException");
    ok(
        &c,
        "RemoveTagsFromStream",
        json!({"StreamName": "lim", "TagKeys": keys(TAG_KEYS_PER_REMOVE_MAX)}),
    )
    .await;

    // Listing limits: the model's maximum is accepted, one more is not.
    for (op, member, max, extra) in [
        ("ListStreams", "Limit", LIST_STREAMS_LIMIT_MAX, json!({})),
        (
            "ListShards",
            "MaxResults",
            LIST_SHARDS_MAX_RESULTS_MAX,
            json!({"StreamName": "lim"}),
        ),
        (
            "DescribeStream",
            "Limit",
            DESCRIBE_STREAM_LIMIT_MAX,
            json!({"StreamName": "lim"}),
        ),
    ] {
        let mut body = extra.clone();
        body[member] = json!(max);
        ok(&c, op, body.clone()).await;
        body[member] = json!(max + 1);
        let (t, _) = err(&c, op, body).await;
        assert_eq!(t, "ValidationException", "{op} {member}");
    }
}

#[tokio::test]
async fn request_body_limit_is_413() {
    use std::io::{Read, Write};
    let s = common::Server::start();
    let addr = s.endpoint.trim_start_matches("http://").to_string();
    // A body announced over the limit is refused before it is sent...
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        tcp,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: Kinesis_20131202.PutRecord\r\nContent-Length: {}\r\n\r\n{{",
        REQUEST_BODY_BYTES_MAX + 1
    )
    .unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    // ...and one at the limit is read and answered (here: it is not valid JSON).
    let c = Client::new(&s.endpoint, "us-east-1", None).unwrap();
    let body = vec![b' '; REQUEST_BODY_BYTES_MAX];
    match c.call_raw("PutRecord", body).await {
        Err(sluice_client::ClientError::Api {
            status, type_name, ..
        }) => assert_eq!(
            (status, type_name.as_str()),
            (400, "SerializationException")
        ),
        other => panic!("expected SerializationException, got {other:?}"),
    }
    // The server keeps serving.
    ok(&c, "ListStreams", json!({})).await;
}
