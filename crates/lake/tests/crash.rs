//! `kill -9` of a process writing into the lake, at a random moment, then the lake read back:
//! every object whose commit was acknowledged is there, whole, with its ETag; every object there
//! is one whole version (never part of a body); a key being replaced holds the old version or
//! the new one.
//!
//! The writer is this test binary itself, run as a child with `SLUICE_LAKE_CRASH_CHILD` set
//! (`child_writer` returns at once without it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use md5::{Digest, Md5};
use sluice_lake::{DigestKinds, Lake, ObjectAttrs};

const CHILD_ENV: &str = "SLUICE_LAKE_CRASH_CHILD";
const BUCKET: &str = "crash";

/// Version `i`'s bytes: its number first, then a length and a pattern of its own.
fn content(i: u64) -> Vec<u8> {
    let len = 8 + (i * 7919 % 400_000) as usize;
    let mut v = i.to_le_bytes().to_vec();
    v.extend((0..len - 8).map(|j| (j as u64 ^ i.wrapping_mul(31)) as u8));
    v
}

fn version_of(bytes: &[u8]) -> Option<u64> {
    let v = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    (content(v) == bytes).then_some(v)
}

#[test]
fn child_writer() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let lake = Lake::local(&root);
        lake.ensure_bucket(BUCKET).await.unwrap();
        let mut out = std::io::stdout();
        for i in 0u64.. {
            // A new key, and the key `over` replaced, each in chunks.
            for key in [format!("k/{:02}/{i}", i % 5), "over".to_string()] {
                let mut w = lake
                    .writer(BUCKET, &key, ObjectAttrs::default(), DigestKinds::default())
                    .await
                    .unwrap();
                for chunk in content(i).chunks(64 * 1024) {
                    w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
                }
                w.stage().await.unwrap().commit().await.unwrap();
                writeln!(out, "ack {key} {i}").unwrap();
                out.flush().unwrap();
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_writer_leaves_every_acknowledged_object_whole() {
    let seed: u64 = std::env::var("SLUICE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (SLUICE_CRASH_SEED={seed} repeats it)");
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lake");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for a few acknowledgements, then a random moment more.
        let mut acks: Vec<(String, u64)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let wanted = 3 + (next() % 20) as usize;
        while acks.len() < wanted && Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                if let Some(rest) = line.strip_prefix("ack ") {
                    let (k, v) = rest.rsplit_once(' ').unwrap();
                    acks.push((k.to_string(), v.parse().unwrap()));
                }
            }
        }
        std::thread::sleep(Duration::from_micros(next() % 50_000));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(line) = rx.try_recv() {
            if let Some(rest) = line.strip_prefix("ack ") {
                let (k, v) = rest.rsplit_once(' ').unwrap();
                acks.push((k.to_string(), v.parse().unwrap()));
            }
        }
        assert!(
            acks.len() >= 3,
            "seed {seed} round {round}: the child acknowledged too little"
        );

        let lake = Lake::local(&root);
        let ctx = format!("seed {seed} round {round}");
        let last_over = acks
            .iter()
            .filter(|(k, _)| k == "over")
            .map(|(_, v)| *v)
            .max()
            .unwrap();
        for (key, v) in &acks {
            if key == "over" {
                continue;
            }
            let bytes = lake.get_object(BUCKET, key).await.unwrap();
            assert!(
                bytes[..] == content(*v)[..],
                "{ctx}: {key} is not version {v}"
            );
            let head = lake.head(BUCKET, key).await.unwrap();
            assert_eq!(
                head.etag,
                hex::encode(Md5::digest(&bytes)),
                "{ctx}: {key}'s ETag"
            );
        }
        // Every object there is one whole version; `over` is the last acknowledged version or
        // the one after it.
        for info in lake.list(BUCKET, "").await.unwrap() {
            let bytes = lake.get_object(BUCKET, &info.key).await.unwrap();
            let v = version_of(&bytes);
            assert!(v.is_some(), "{ctx}: {} holds part of a body", info.key);
            if info.key == "over" {
                let v = v.unwrap();
                assert!(
                    v == last_over || v == last_over + 1,
                    "{ctx}: over is version {v}, last acknowledged {last_over}"
                );
            }
        }
    }
}
