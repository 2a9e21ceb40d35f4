//! Enhanced fan-out against a real server: consumers registered with the AWS SDK for Rust,
//! SubscribeToShard over HTTP/2 (h2c) read with the sluice client's event-stream decoder (the
//! SDK for Rust has no SubscribeToShard), signed with SigV4.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use common::{sdk_client, wait_active, Server};
use serde_json::json;
use sluice_client::{Client, ClientError, SigningKey, Subscription, SubscriptionEvent};

const KEY: &str = "AKIDFANOUT";
const SECRET: &str = "fanout-secret";

fn client(endpoint: &str) -> Client {
    Client::new(
        endpoint,
        "us-east-1",
        Some(SigningKey {
            access_key_id: KEY.into(),
            secret_access_key: SECRET.into(),
            session_token: None,
        }),
    )
    .unwrap()
}

/// Reads events until `want` records have arrived or the deadline passes; returns the
/// records' (sequence number, data) and the last continuation sequence number.
async fn collect(sub: &mut Subscription, want: usize) -> (Vec<(String, String)>, Option<String>) {
    let mut got = Vec::new();
    let mut continuation = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < want {
        let ev = tokio::time::timeout_at(deadline, sub.next_event())
            .await
            .expect("records arrive within 20 s")
            .unwrap()
            .expect("the subscription is still open");
        let SubscriptionEvent::Shard(e) = ev else {
            panic!("initial-response comes first, once");
        };
        for r in e["Records"].as_array().unwrap() {
            got.push((
                r["SequenceNumber"].as_str().unwrap().to_string(),
                r["Data"].as_str().unwrap().to_string(),
            ));
        }
        continuation = e["ContinuationSequenceNumber"].as_str().map(str::to_string);
        assert!(
            continuation.is_some(),
            "an open shard always has a continuation"
        );
    }
    (got, continuation)
}

async fn subscribe(c: &Client, arn: &str, position: serde_json::Value) -> Subscription {
    let mut sub = c
        .subscribe_to_shard(arn, "shardId-000000000000", position)
        .await
        .unwrap();
    assert_eq!(
        sub.next_event().await.unwrap(),
        Some(SubscriptionEvent::Initial)
    );
    sub
}

#[tokio::test]
async fn two_consumers_each_get_every_record_in_order_and_resume_without_gaps() {
    let s = Server::start_with(&[
        ("SLUICE_ACCESS_KEY_ID", KEY),
        ("SLUICE_SECRET_ACCESS_KEY", SECRET),
    ]);
    let sdk = sdk_client(&s.endpoint, KEY, SECRET);
    sdk.create_stream()
        .stream_name("fan")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    wait_active(&sdk, "fan").await;
    let stream_arn = "arn:aws:kinesis:us-east-1:000000000000:stream/fan";
    let mut arns = Vec::new();
    for name in ["alpha", "beta"] {
        let c = sdk
            .register_stream_consumer()
            .stream_arn(stream_arn)
            .consumer_name(name)
            .send()
            .await
            .unwrap();
        arns.push(c.consumer().unwrap().consumer_arn().to_string());
    }
    let c = client(&s.endpoint);
    // Both subscribe before anything is written: every record is pushed to both.
    let mut subs = Vec::new();
    for arn in &arns {
        subs.push(subscribe(&c, arn, json!({"Type": "TRIM_HORIZON"})).await);
    }
    let mut written = Vec::new();
    for batch in 0..4 {
        let entries: Vec<PutRecordsRequestEntry> = (0..50)
            .map(|i| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(format!("r{batch}-{i}")))
                    .partition_key(format!("k{i}"))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = sdk
            .put_records()
            .stream_name("fan")
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_record_count(), Some(0));
        for (i, r) in out.records().iter().enumerate() {
            written.push((
                r.sequence_number().unwrap().to_string(),
                base64_of(&format!("r{batch}-{i}")),
            ));
        }
    }
    let mut continuations = Vec::new();
    for sub in &mut subs {
        let (got, cont) = collect(sub, written.len()).await;
        assert_eq!(got, written, "every record, once, in order");
        continuations.push(cont.unwrap());
    }
    // A second subscription for the same consumer and shard within 5 s is refused.
    let e = c
        .subscribe_to_shard(&arns[0], "shardId-000000000000", json!({"Type": "LATEST"}))
        .await
        .unwrap_err();
    assert_eq!(e.aws_type(), Some("ResourceInUseException"));
    assert!(e.to_string().contains(
        "Another active subscription exists for this consumer: 000000000000:fan:shardId-000000000000:alpha"
    ));
    drop(subs);

    // More records while nobody listens; resuming AFTER the continuation loses and repeats
    // nothing. (Waiting out the 5 s takeover rule first.)
    let mut more = Vec::new();
    for i in 0..30 {
        let r = sdk
            .put_record()
            .stream_name("fan")
            .data(Blob::new(format!("later-{i}")))
            .partition_key("k")
            .send()
            .await
            .unwrap();
        more.push((
            r.sequence_number().to_string(),
            base64_of(&format!("later-{i}")),
        ));
    }
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    for (arn, cont) in arns.iter().zip(&continuations) {
        let mut sub = subscribe(
            &c,
            arn,
            json!({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": cont}),
        )
        .await;
        let (got, _) = collect(&mut sub, more.len()).await;
        assert_eq!(got, more);
    }
}

#[tokio::test]
async fn a_subscription_ends_at_a_split_with_child_shards_and_errors_are_typed() {
    let s = Server::start();
    let sdk = s.sdk();
    sdk.create_stream()
        .stream_name("ends")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    wait_active(&sdk, "ends").await;
    let arn = sdk
        .register_stream_consumer()
        .stream_arn("arn:aws:kinesis:us-east-1:000000000000:stream/ends")
        .consumer_name("reader")
        .send()
        .await
        .unwrap()
        .consumer()
        .unwrap()
        .consumer_arn()
        .to_string();
    let c = Client::new(&s.endpoint, "us-east-1", None).unwrap();
    let mut sub = subscribe(&c, &arn, json!({"Type": "LATEST"})).await;
    sdk.put_record()
        .stream_name("ends")
        .data(Blob::new("before split"))
        .partition_key("p")
        .send()
        .await
        .unwrap();
    let (got, _) = collect(&mut sub, 1).await;
    assert_eq!(got[0].1, base64_of("before split"));
    sdk.split_shard()
        .stream_name("ends")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("170141183460469231731687303715884105728")
        .send()
        .await
        .unwrap();
    // The end of the shard: no continuation, both children, then the stream ends.
    let last = loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next_event())
            .await
            .expect("the end of the shard is pushed")
            .unwrap()
        {
            Some(SubscriptionEvent::Shard(e)) if e.get("ChildShards").is_some() => break e,
            Some(SubscriptionEvent::Shard(e)) => {
                assert!(e["Records"].as_array().unwrap().is_empty())
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(last.get("ContinuationSequenceNumber").is_none());
    let children: Vec<&str> = last["ChildShards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ShardId"].as_str().unwrap())
        .collect();
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);
    assert_eq!(
        last["ChildShards"][0]["ParentShards"],
        json!(["shardId-000000000000"])
    );
    assert_eq!(sub.next_event().await.unwrap(), None);

    // Errors before the stream starts are ordinary JSON errors.
    let e = c
        .subscribe_to_shard(
            "arn:aws:kinesis:us-east-1:000000000000:stream/ends/consumer/nobody:1",
            "shardId-000000000000",
            json!({"Type": "LATEST"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(&e, ClientError::Api { status: 400, .. }), "{e}");
    assert_eq!(e.aws_type(), Some("ResourceNotFoundException"));
    let e = c
        .subscribe_to_shard(&arn, "shardId-000000000007", json!({"Type": "LATEST"}))
        .await
        .unwrap_err();
    assert_eq!(e.aws_type(), Some("ResourceNotFoundException"));
    let e = c
        .subscribe_to_shard(
            &arn,
            "shardId-000000000001",
            json!({"Type": "AT_SEQUENCE_NUMBER"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.aws_type(), Some("InvalidArgumentException"));
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
