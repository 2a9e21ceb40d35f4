//! Resharding under concurrent writes, in process: every acknowledged record is read exactly
//! once by a reader that finishes parents before children, each key's records come out in the
//! order they were written, and lineage, closing points and sequence ranges hold. Then the same
//! after a restart (the catalog and the logs agree about what was closed where).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use sluice_streams::{
    Record, Reshard, SequenceNumber, ShardCursor, ShardId, ShardStart, StreamMode, StreamName,
    StreamSpec, Streams, StreamsConfig, SystemClock,
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

/// Puts one record and waits for its acknowledgement.
fn put(s: &Streams, stream: &str, key: &str, data: Vec<u8>) -> SequenceNumber {
    let (tx, rx) = mpsc::channel();
    s.put(
        stream,
        vec![Record {
            partition_key: key.as_bytes().to_vec().into(),
            explicit_hash_key: None,
            data: data.into(),
        }],
        Box::new(move |mut outcomes| drop(tx.send(outcomes.pop().unwrap()))),
    )
    .unwrap();
    rx.recv().unwrap().unwrap().sequence_number
}

/// Reads every shard to its end, parents before children; returns (shard, records in order).
type ShardRecords = Vec<(SequenceNumber, Vec<u8>)>;

fn read_by_lineage(s: &Streams, stream: &str) -> Vec<(u32, ShardRecords)> {
    let view = s.describe(stream).unwrap();
    let mut done: HashSet<u32> = HashSet::new();
    let mut out = Vec::new();
    while done.len() < view.shards.len() {
        let ready = view
            .shards
            .iter()
            .find(|sh| {
                !done.contains(&sh.meta.index)
                    && [sh.meta.parent, sh.meta.adjacent_parent]
                        .into_iter()
                        .flatten()
                        .all(|p| done.contains(&p))
            })
            .expect("lineage has no cycles");
        let index = sh_index(ready.shard_id());
        let mut cursor: ShardCursor = s
            .cursor(stream, ShardId(index), ShardStart::TrimHorizon)
            .unwrap();
        let mut records = Vec::new();
        loop {
            let r = s.read(&cursor, 1000, 1 << 20, false).unwrap();
            let empty = r.records.is_empty();
            records.extend(
                r.records
                    .into_iter()
                    .map(|(seq, rec)| (seq, rec.data.to_vec())),
            );
            match r.next {
                None => {
                    // The end of a closed shard names exactly its children.
                    let mut children: Vec<u32> = r.child_shards.iter().map(|c| c.index).collect();
                    children.sort_unstable();
                    let mut expected: Vec<u32> = view
                        .shards
                        .iter()
                        .filter(|c| c.meta.is_child_of(index))
                        .map(|c| c.meta.index)
                        .collect();
                    expected.sort_unstable();
                    assert_eq!(children, expected, "children of shard {index}");
                    assert!(!children.is_empty());
                    break;
                }
                Some(next) if empty => {
                    assert!(ready.meta.is_open(), "a closed shard ends with next = None");
                    let _ = next;
                    break;
                }
                Some(next) => cursor = next,
            }
        }
        if let Some(end) = ready.ending_sequence_number {
            if let Some((last, _)) = records.last() {
                assert!(*last < end, "EndingSequenceNumber is above every record");
            }
        }
        for p in [ready.meta.parent, ready.meta.adjacent_parent]
            .into_iter()
            .flatten()
        {
            let parent = view.shards.iter().find(|x| x.meta.index == p).unwrap();
            assert!(ready.starting_sequence_number > parent.ending_sequence_number.unwrap());
        }
        done.insert(index);
        out.push((index, records));
    }
    out
}

fn sh_index(id: ShardId) -> u32 {
    id.0
}

#[test]
fn every_record_once_and_per_key_order_across_splits_merges_and_uniform_scaling() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    create(&s, "r", 2);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (s, stop) = (s.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut counter = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{w}-k{}", counter % 7);
                let data = format!("{key}:{counter}").into_bytes();
                let seq = put(&s, "r", &key, data.clone());
                acked.push((seq, data));
                counter += 1;
            }
            acked
        }));
    }
    let steps = [
        Reshard::Split {
            shard: ShardId(0),
            new_starting_hash_key: 1 << 120,
        },
        Reshard::Merge {
            shard: ShardId(2),
            adjacent: ShardId(3),
        },
        Reshard::Uniform { target: 4 },
        Reshard::Uniform { target: 3 },
        Reshard::Uniform { target: 5 },
    ];
    for step in steps {
        std::thread::sleep(Duration::from_millis(60));
        s.reshard("r", step)
            .unwrap_or_else(|e| panic!("{step:?}: {e}"));
    }
    std::thread::sleep(Duration::from_millis(60));
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(SequenceNumber, Vec<u8>)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(acked.len() > 100, "writers made progress: {}", acked.len());
    assert_eq!(s.describe("r").unwrap().meta.open_shard_count(), 5);

    check(&s, &acked);
    // After a restart, the catalog and the logs agree about what was closed where.
    s.close();
    drop(s);
    check(&open(dir.path()), &acked);
}

fn check(s: &Streams, acked: &[(SequenceNumber, Vec<u8>)]) {
    let shards = read_by_lineage(s, "r");
    let mut seen: HashMap<SequenceNumber, Vec<u8>> = HashMap::new();
    let mut last_counter: BTreeMap<String, u32> = BTreeMap::new();
    for (_, records) in &shards {
        for (seq, data) in records {
            assert!(
                seen.insert(*seq, data.clone()).is_none(),
                "read twice: {seq}"
            );
            let text = String::from_utf8(data.clone()).unwrap();
            let (key, counter) = text.split_once(':').unwrap();
            let counter: u32 = counter.parse().unwrap();
            if let Some(prev) = last_counter.insert(key.to_string(), counter) {
                assert!(counter > prev, "{key}: {counter} read after {prev}");
            }
        }
    }
    assert_eq!(seen.len(), acked.len(), "nothing lost, nothing extra");
    for (seq, data) in acked {
        assert_eq!(seen.get(seq), Some(data), "acknowledged {seq} is readable");
    }
}

#[test]
fn reshard_rules() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    create(&s, "rules", 2);
    let half = 1u128 << 127;
    // The split key must leave both children at least... AWS's bounds: start+1 < key < end.
    for bad in [0, 1, half - 1] {
        assert!(s
            .reshard(
                "rules",
                Reshard::Split {
                    shard: ShardId(0),
                    new_starting_hash_key: bad
                }
            )
            .is_err());
    }
    // Merge takes the lower shard first.
    assert!(s
        .reshard(
            "rules",
            Reshard::Merge {
                shard: ShardId(1),
                adjacent: ShardId(0)
            }
        )
        .is_err());
    s.reshard(
        "rules",
        Reshard::Merge {
            shard: ShardId(0),
            adjacent: ShardId(1),
        },
    )
    .unwrap();
    // A closed shard cannot be split again.
    assert!(s
        .reshard(
            "rules",
            Reshard::Split {
                shard: ShardId(0),
                new_starting_hash_key: 1 << 100
            }
        )
        .is_err());
    // Half to double of the open count.
    assert!(s.reshard("rules", Reshard::Uniform { target: 3 }).is_err());
    s.reshard("rules", Reshard::Uniform { target: 2 }).unwrap();
    for _ in 0..9 {
        s.reshard("rules", Reshard::Uniform { target: 2 }).unwrap();
    }
    // Ten UpdateShardCount calls a day.
    assert!(s.reshard("rules", Reshard::Uniform { target: 2 }).is_err());
}

/// A clock the test moves by hand.
struct ManualClock(std::sync::atomic::AtomicI64);

impl sluice_streams::Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn open_manual(
    dir: &std::path::Path,
    f: impl FnOnce(&mut StreamsConfig),
) -> (Arc<Streams>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock(std::sync::atomic::AtomicI64::new(
        1_700_000_000_000,
    )));
    let mut config = StreamsConfig::new(dir);
    f(&mut config);
    (
        Arc::new(Streams::open(config, clock.clone()).unwrap()),
        clock,
    )
}

#[test]
fn closed_shards_go_once_their_data_is_past_retention_and_updating_blocks_a_second_reshard() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = open_manual(dir.path(), |c| c.update_delay_ms = 500);
    create(&s, "old", 1);
    put(&s, "old", "k", b"in the parent".to_vec());
    s.reshard(
        "old",
        Reshard::Split {
            shard: ShardId(0),
            new_starting_hash_key: 1 << 127,
        },
    )
    .unwrap();
    // UPDATING for update_delay_ms: another reshard is refused, data keeps flowing.
    assert!(matches!(
        s.reshard("old", Reshard::Uniform { target: 3 }),
        Err(sluice_streams::StreamsError::StreamNotActive { .. })
    ));
    put(&s, "old", "k", b"in a child".to_vec());
    clock.0.fetch_add(500, Ordering::SeqCst);
    s.reshard("old", Reshard::Uniform { target: 2 }).unwrap();
    clock.0.fetch_add(500, Ordering::SeqCst);
    // Still listed a day later minus a minute, gone a day later plus a minute.
    clock.0.fetch_add(24 * 3_600_000 - 60_000, Ordering::SeqCst);
    s.tick();
    assert!(s
        .describe("old")
        .unwrap()
        .shards
        .iter()
        .any(|v| v.meta.index == 0));
    clock.0.fetch_add(120_000, Ordering::SeqCst);
    s.tick();
    let shards: Vec<u32> = s
        .describe("old")
        .unwrap()
        .shards
        .iter()
        .map(|v| v.meta.index)
        .collect();
    assert!(!shards.contains(&0), "{shards:?}");
    assert!(s
        .cursor("old", ShardId(0), ShardStart::TrimHorizon)
        .is_err());
    // Its directory is gone too, and a restart agrees.
    let uid = s.describe("old").unwrap().meta.uid;
    let shard_dir = dir.path().join("streams").join(uid.to_string());
    assert!(!shard_dir.join("000000000000").exists());
    assert!(shard_dir.join(format!("{:012}", shards[0])).exists());
    s.close();
    drop(s);
    let (s, _) = open_manual(dir.path(), |_| {});
    assert_eq!(
        s.describe("old").unwrap().shards.len(),
        shards.len(),
        "the catalog keeps what the tick decided"
    );
}

#[test]
fn an_on_demand_stream_splits_a_hot_shard_and_quotas_refuse_the_excess() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = open_manual(dir.path(), |c| {
        c.throughput.enforce = true;
        c.on_demand.split_after_ms = 2_000;
    });
    s.create_stream(
        &StreamName::new("od").unwrap(),
        StreamSpec {
            shard_count: 4,
            mode: StreamMode::OnDemand,
            max_record_size_kib: 1024,
            tags: Default::default(),
        },
    )
    .unwrap();
    s.tick();
    // 1,500 records a second offered to shard 0 (hash keys in its range): 1,000 accepted.
    for _ in 0..4 {
        let records: Vec<Record> = (0..1500)
            .map(|i| Record {
                partition_key: b"hot".to_vec().into(),
                explicit_hash_key: Some(i),
                data: vec![b'x'; 10].into(),
            })
            .collect();
        let (tx, rx) = mpsc::channel();
        s.put("od", records, Box::new(move |o| drop(tx.send(o))))
            .unwrap();
        let outcomes = rx.recv().unwrap();
        let refused = outcomes
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    Err(sluice_streams::StreamsError::ThroughputExceeded { write: true, .. })
                )
            })
            .count();
        assert_eq!(refused, 500);
        assert!(outcomes.iter().filter(|o| o.is_ok()).count() == 1000);
        clock.0.fetch_add(1000, Ordering::SeqCst);
        s.tick();
    }
    let view = s.describe("od").unwrap();
    assert_eq!(view.meta.open_shard_count(), 5, "shard 0 was split once");
    assert!(view
        .shards
        .iter()
        .any(|v| v.meta.parent == Some(0) && v.meta.is_open()));
    // Reads: five calls a second per shard.
    let c = s.cursor("od", ShardId(1), ShardStart::TrimHorizon).unwrap();
    for _ in 0..5 {
        s.read(&c, 10, 1 << 20, true).unwrap();
    }
    assert!(matches!(
        s.read(&c, 10, 1 << 20, true),
        Err(sluice_streams::StreamsError::ThroughputExceeded { write: false, .. })
    ));
    // Subscriptions are not metered.
    s.read(&c, 10, 1 << 20, false).unwrap();
}
