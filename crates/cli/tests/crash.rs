//! Crash test at the server level: `sluice serve` is killed with SIGKILL at a random moment
//! while producers write, then restarted on the same data directory. Every record the server
//! acknowledged must be readable, with the sequence number it was acknowledged with, in order,
//! and nothing else may be corrupt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sluice_client::Client;

type Acked = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

async fn produce(client: Client, writer: usize, acked: Acked) {
    produce_to(client, "crash", writer, acked).await
}

async fn produce_to(client: Client, stream: &str, writer: usize, acked: Acked) {
    for batch in 0u64.. {
        let records: Vec<(String, Vec<u8>)> = (0..20)
            .map(|i| {
                (
                    format!("w{writer}-{i}"),
                    format!("writer {writer} batch {batch} record {i}").into_bytes(),
                )
            })
            .collect();
        let body = json!({
            "StreamName": stream,
            "Records": records.iter().map(|(k, d)| json!({"PartitionKey": k, "Data": base64::engine::general_purpose::STANDARD.encode(d)})).collect::<Vec<_>>(),
        });
        let Ok(r) = client.call("PutRecords", &body).await else {
            return;
        };
        let mut a = acked.lock().unwrap();
        for (res, (_, data)) in r["Records"].as_array().unwrap().iter().zip(records) {
            if let (Some(shard), Some(seq)) =
                (res["ShardId"].as_str(), res["SequenceNumber"].as_str())
            {
                a.push((shard.to_string(), seq.to_string(), data));
            }
        }
    }
}

/// Every acknowledged record is in what was read back, with its sequence number and data;
/// returns how many were checked.
fn assert_acked_present(
    round: usize,
    stored: &HashMap<String, Vec<(String, Vec<u8>)>>,
    acked: &Acked,
) -> usize {
    let acked = acked.lock().unwrap().clone();
    for (shard, seq, data) in &acked {
        let recs = stored.get(shard).unwrap_or_else(|| {
            panic!("round {round}: shard {shard} of an acknowledged record is gone")
        });
        let i = recs
            .binary_search_by(|(s, _)| s.cmp(seq))
            .unwrap_or_else(|_| panic!("round {round}: acknowledged {shard} {seq} missing"));
        assert_eq!(
            &recs[i].1, data,
            "round {round}: record {seq} has other data"
        );
    }
    acked.len()
}

/// A random source seeded from `CRASH_SEED`, or at random (printed, to replay a failure).
fn seeded_rng() -> rand::rngs::StdRng {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    println!("crash seed {seed} (set CRASH_SEED to replay)");
    rand::rngs::StdRng::seed_from_u64(seed)
}

async fn read_shard(client: &Client, shard: &str) -> Vec<(String, Vec<u8>)> {
    read_stream_shard(client, "crash", shard).await
}

async fn read_stream_shard(client: &Client, stream: &str, shard: &str) -> Vec<(String, Vec<u8>)> {
    let it = client
        .call(
            "GetShardIterator",
            &json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await
        .unwrap();
    let mut it = it["ShardIterator"].as_str().unwrap().to_string();
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let r = client
            .call("GetRecords", &json!({"ShardIterator": it}))
            .await
            .unwrap();
        let recs = r["Records"].as_array().unwrap();
        if recs.is_empty() {
            return out;
        }
        for rec in recs {
            out.push((
                rec["SequenceNumber"].as_str().unwrap().to_string(),
                base64::engine::general_purpose::STANDARD
                    .decode(rec["Data"].as_str().unwrap())
                    .unwrap(),
            ));
        }
        match r["NextShardIterator"].as_str() {
            Some(next) => it = next.to_string(),
            None => return out, // a closed shard, read to its end
        }
    }
    panic!("shard {shard} did not end within 10,000 reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    let mut rng = seeded_rng();
    let mut server = common::Server::start();
    let _dir = server.take_dir();
    let data_dir = server.data_dir.clone();
    let c = Client::new(&server.endpoint, "us-east-1", None).unwrap();
    c.call(
        "CreateStream",
        &json!({"StreamName": "crash", "ShardCount": 3}),
    )
    .await
    .unwrap();
    let acked: Acked = Arc::new(Mutex::new(Vec::new()));
    for round in 0..3 {
        let c = Client::new(&server.endpoint, "us-east-1", None).unwrap();
        let writers: Vec<_> = (0..4)
            .map(|w| tokio::spawn(produce(c.clone(), w, acked.clone())))
            .collect();
        let kill_after = Duration::from_millis(rng.gen_range(200..800));
        tokio::time::sleep(kill_after).await;
        server.kill9();
        for w in writers {
            let _ = w.await;
        }
        server = common::Server::start_in(&data_dir, &[]);
        let c = Client::new(&server.endpoint, "us-east-1", None).unwrap();
        let mut stored: HashMap<String, Vec<(String, Vec<u8>)>> = HashMap::new();
        for shard in [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002",
        ] {
            let recs = read_shard(&c, shard).await;
            // In order, and every record is one a writer made, intact.
            assert!(
                recs.windows(2).all(|w| w[0].0 < w[1].0),
                "round {round}: {shard} out of order"
            );
            for (_, d) in &recs {
                let text = String::from_utf8(d.clone()).expect("record data intact");
                assert!(
                    text.starts_with("writer "),
                    "round {round}: unexpected record {text:?}"
                );
            }
            stored.insert(shard.to_string(), recs);
        }
        let found = assert_acked_present(round, &stored, &acked);
        println!(
            "round {round}: killed after {kill_after:?}; {found} acknowledged records all present"
        );
        assert!(found > 0, "the producers made progress before the kill");
    }
}

/// Splits and merges in a loop: the widest open shard is split at its middle, or, past five
/// open shards, the first adjacent pair is merged.
async fn reshard_loop(client: Client) {
    loop {
        let Ok(r) = client
            .call(
                "ListShards",
                &json!({"StreamName": "reshard", "ShardFilter": {"Type": "AT_LATEST"}}),
            )
            .await
        else {
            return;
        };
        let mut open: Vec<(u128, u128, String)> = r["Shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let range = &s["HashKeyRange"];
                (
                    range["StartingHashKey"].as_str().unwrap().parse().unwrap(),
                    range["EndingHashKey"].as_str().unwrap().parse().unwrap(),
                    s["ShardId"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        open.sort();
        let call = if open.len() > 5 {
            client
                .call(
                    "MergeShards",
                    &json!({"StreamName": "reshard", "ShardToMerge": open[0].2, "AdjacentShardToMerge": open[1].2}),
                )
                .await
        } else {
            let (start, end, id) = open.iter().max_by_key(|(a, b, _)| b - a).unwrap();
            client
                .call(
                    "SplitShard",
                    &json!({"StreamName": "reshard", "ShardToSplit": id, "NewStartingHashKey": (start + (end - start) / 2 + 1).to_string()}),
                )
                .await
        };
        if call.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9_during_resharding() {
    let mut rng = seeded_rng();
    let mut server = common::Server::start();
    let _dir = server.take_dir();
    let data_dir = server.data_dir.clone();
    let c = Client::new(&server.endpoint, "us-east-1", None).unwrap();
    c.call(
        "CreateStream",
        &json!({"StreamName": "reshard", "ShardCount": 2}),
    )
    .await
    .unwrap();
    let acked: Acked = Arc::new(Mutex::new(Vec::new()));
    for round in 0..3 {
        let c = Client::new(&server.endpoint, "us-east-1", None).unwrap();
        let mut tasks: Vec<_> = (0..3)
            .map(|w| tokio::spawn(produce_to(c.clone(), "reshard", w, acked.clone())))
            .collect();
        tasks.push(tokio::spawn(reshard_loop(c.clone())));
        let kill_after = Duration::from_millis(rng.gen_range(200..800));
        tokio::time::sleep(kill_after).await;
        server.kill9();
        for t in tasks {
            let _ = t.await;
        }
        server = common::Server::start_in(&data_dir, &[]);
        let c = Client::new(&server.endpoint, "us-east-1", None).unwrap();
        let shards = c
            .call("ListShards", &json!({"StreamName": "reshard"}))
            .await
            .unwrap();
        let mut stored: HashMap<String, Vec<(String, Vec<u8>)>> = HashMap::new();
        let mut open = 0;
        for sh in shards["Shards"].as_array().unwrap() {
            let id = sh["ShardId"].as_str().unwrap();
            if sh["SequenceNumberRange"]
                .get("EndingSequenceNumber")
                .is_none()
            {
                open += 1;
            }
            let recs = read_stream_shard(&c, "reshard", id).await;
            assert!(
                recs.windows(2).all(|w| w[0].0 < w[1].0),
                "round {round}: {id} out of order"
            );
            stored.insert(id.to_string(), recs);
        }
        assert!(open >= 2, "open shards still cover the hash-key space");
        let found = assert_acked_present(round, &stored, &acked);
        // Writes still work after the restart, routed to open shards only.
        c.call(
            "PutRecord",
            &json!({"StreamName": "reshard", "PartitionKey": "after", "Data": "YQ=="}),
        )
        .await
        .unwrap();
        println!(
            "round {round}: killed after {kill_after:?}; {} shards, {} acknowledged records all present",
            stored.len(),
            found
        );
    }
}
