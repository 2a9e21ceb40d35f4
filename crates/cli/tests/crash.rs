//! Crash test at the server level: `sluice serve` is killed with SIGKILL at a random moment
//! while producers write, then restarted on the same data directory. Every record the server
//! acknowledged must be readable, with the sequence number it was acknowledged with, in order,
//! and nothing else may be corrupt.

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
            "StreamName": "crash",
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

async fn read_shard(client: &Client, shard: &str) -> Vec<(String, Vec<u8>)> {
    let it = client
        .call(
            "GetShardIterator",
            &json!({"StreamName": "crash", "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
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
        it = r["NextShardIterator"].as_str().unwrap().to_string();
    }
    panic!("shard {shard} did not end within 10,000 reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    println!("crash seed {seed} (set CRASH_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
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
        let acked_now = acked.lock().unwrap().clone();
        let mut found = 0;
        for (shard, seq, data) in &acked_now {
            let recs = &stored[shard];
            let i = recs
                .binary_search_by(|(s, _)| s.cmp(seq))
                .unwrap_or_else(|_| panic!("round {round}: acknowledged {shard} {seq} missing"));
            assert_eq!(
                &recs[i].1, data,
                "round {round}: acknowledged record {seq} has other data"
            );
            found += 1;
        }
        println!(
            "round {round}: killed after {kill_after:?}; {found} acknowledged records all present"
        );
        assert!(found > 0, "the producers made progress before the kill");
    }
}
