//! The consumer core: shard readers woken by durable commits, bounded batches and
//! backpressure, stream consumers that read parents before children and resume from durable
//! checkpoints, and readers ended by stream deletion and retention.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_streams::{
    Checkpoint, ConsumeError, ConsumerName, InitialPosition, OnTrimmed, ReaderOptions, Record,
    Reshard, SequenceNumber, ShardBatch, ShardCheckpoint, ShardId, ShardReader, ShardStart,
    StateWrite, StreamConsumer, StreamConsumerOptions, StreamMode, StreamName, StreamSpec, Streams,
    StreamsConfig, StreamsError,
};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// A clock the test moves by hand.
struct ManualClock(AtomicI64);

impl sluice_streams::Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn open_manual(
    dir: &std::path::Path,
    f: impl FnOnce(&mut StreamsConfig),
) -> (Arc<Streams>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock(AtomicI64::new(1_700_000_000_000)));
    let mut config = StreamsConfig::new(dir);
    f(&mut config);
    (
        Arc::new(Streams::open(config, clock.clone()).unwrap()),
        clock,
    )
}

fn open(dir: &std::path::Path) -> Arc<Streams> {
    open_manual(dir, |_| {}).0
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

/// Puts records (key, data) and waits for their acknowledgement.
async fn put_all(
    s: &Streams,
    stream: &str,
    records: Vec<(String, Vec<u8>)>,
) -> Vec<SequenceNumber> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let records = records
        .into_iter()
        .map(|(key, data)| Record {
            partition_key: key.into_bytes().into(),
            explicit_hash_key: None,
            data: data.into(),
        })
        .collect();
    s.put(stream, records, Box::new(move |o| drop(tx.send(o))))
        .unwrap();
    rx.await
        .unwrap()
        .into_iter()
        .map(|o| o.unwrap().sequence_number)
        .collect()
}

async fn put(s: &Streams, stream: &str, key: &str, data: &[u8]) -> SequenceNumber {
    put_all(s, stream, vec![(key.to_string(), data.to_vec())]).await[0]
}

fn options(records: usize) -> ReaderOptions {
    ReaderOptions {
        batch_records_max: records,
        ..ReaderOptions::default()
    }
}

fn split(shard: u32, at: u128) -> Reshard {
    Reshard::Split {
        shard: ShardId(shard),
        new_starting_hash_key: at,
    }
}

/// `key:counter` records for keys `k0..k{keys}`, counters from `from`.
fn keyed(keys: u32, from: u32, count: u32) -> Vec<(String, Vec<u8>)> {
    (from..from + count)
        .map(|i| {
            let key = format!("k{}", i % keys);
            let data = format!("{key}:{i}").into_bytes();
            (key, data)
        })
        .collect()
}

/// What workers saw: (delivery order, shard, sequence number, data).
type Seen = Arc<Mutex<Vec<(u64, u32, SequenceNumber, Vec<u8>)>>>;

/// Runs a stream consumer until `expected` records have been delivered; each worker records
/// what it gets and commits each batch once recorded. Returns what was seen.
async fn consume_until(consumer: Arc<StreamConsumer>, seen: Seen, expected: usize) {
    let order = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    let deadline = Instant::now() + WAIT;
    while seen.lock().unwrap().len() < expected {
        assert!(
            Instant::now() < deadline,
            "consumer stalled at {} of {expected}",
            seen.lock().unwrap().len()
        );
        let lease = match timeout(Duration::from_millis(50), consumer.next_lease()).await {
            Ok(lease) => lease.unwrap(),
            Err(_) => continue,
        };
        let (seen, order) = (seen.clone(), order.clone());
        workers.push(tokio::spawn(async move {
            let mut lease = lease;
            while let Some(batch) = lease.next_batch().await.unwrap() {
                {
                    let mut seen = seen.lock().unwrap();
                    for (seq, r) in &batch.records {
                        let n = order.fetch_add(1, Ordering::SeqCst);
                        seen.push((n, batch.shard_id.0, *seq, r.data.to_vec()));
                    }
                }
                lease.commit(&batch).await.unwrap();
            }
        }));
    }
    for w in workers {
        w.abort();
    }
}

/// Every record once, each key's records in counter order, and every record of a parent
/// delivered before any of its children's.
fn check_lineage_order(
    s: &Streams,
    stream: &str,
    seen: &[(u64, u32, SequenceNumber, Vec<u8>)],
    expected: usize,
) {
    let mut seqs = HashSet::new();
    for (_, _, seq, _) in seen {
        assert!(seqs.insert(*seq), "delivered twice: {seq}");
    }
    assert_eq!(seen.len(), expected, "nothing lost, nothing extra");
    let mut by_order = seen.to_vec();
    by_order.sort_by_key(|x| x.0);
    let mut last: HashMap<String, u32> = HashMap::new();
    let mut span: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for (n, shard, _, data) in &by_order {
        let text = String::from_utf8(data.clone()).unwrap();
        let (key, counter) = text.split_once(':').unwrap();
        let counter: u32 = counter.parse().unwrap();
        if let Some(prev) = last.insert(key.to_string(), counter) {
            assert!(counter > prev, "{key}: {counter} delivered after {prev}");
        }
        let e = span.entry(*shard).or_insert((*n, *n));
        e.1 = *n;
    }
    let view = s.describe(stream).unwrap();
    for child in &view.shards {
        for p in [child.meta.parent, child.meta.adjacent_parent]
            .into_iter()
            .flatten()
        {
            if let (Some(parent), Some(c)) = (span.get(&p), span.get(&child.meta.index)) {
                assert!(
                    parent.1 < c.0,
                    "shard {p} finished before its child {} started",
                    child.meta.index
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_consumer_from_trim_horizon_reads_every_record_once_parents_first_across_split_and_merge(
) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    create(&s, "lineage", 2);
    // Records before, between and after a split and a merge, the last while the consumer
    // reads: the whole lineage is there when it starts, so only its order keeps children back.
    put_all(&s, "lineage", keyed(10, 0, 80)).await;
    s.reshard("lineage", split(0, 1 << 126)).unwrap(); // 0 → 2, 3
    put_all(&s, "lineage", keyed(10, 80, 80)).await;
    s.reshard(
        "lineage",
        Reshard::Merge {
            shard: ShardId(3),
            adjacent: ShardId(1),
        },
    )
    .unwrap(); // 3 + 1 → 4
    let consumer = Arc::new(
        StreamConsumer::open(
            s.clone(),
            None,
            "lineage",
            StreamConsumerOptions {
                initial_position: InitialPosition::TrimHorizon,
                reader: options(7),
            },
        )
        .await
        .unwrap(),
    );
    let seen: Seen = Arc::default();
    let run = tokio::spawn(consume_until(consumer.clone(), seen.clone(), 240));
    for from in (160..240).step_by(20) {
        put_all(&s, "lineage", keyed(10, from, 20)).await;
    }
    timeout(WAIT, run).await.unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    check_lineage_order(&s, "lineage", &seen, 240);
    let shards: HashSet<u32> = seen.iter().map(|x| x.1).collect();
    assert_eq!(
        shards,
        HashSet::from([0, 1, 2, 3, 4]),
        "every shard was read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_child_is_leased_only_after_both_parents_finish() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    create(&s, "m", 2);
    put_all(&s, "m", keyed(4, 0, 20)).await;
    s.reshard(
        "m",
        Reshard::Merge {
            shard: ShardId(0),
            adjacent: ShardId(1),
        },
    )
    .unwrap(); // → 2
    let c = StreamConsumer::open(s.clone(), None, "m", StreamConsumerOptions::default())
        .await
        .unwrap();
    let mut a = c.try_lease().await.unwrap().unwrap();
    let mut b = c.try_lease().await.unwrap().unwrap();
    assert_eq!((a.shard_id(), b.shard_id()), (ShardId(0), ShardId(1)));
    assert!(
        c.try_lease().await.unwrap().is_none(),
        "the child waits for its parents"
    );
    // Read both parents to their ends; commit only the first's end.
    let mut ends = Vec::new();
    for lease in [&mut a, &mut b] {
        loop {
            let batch = lease.next_batch().await.unwrap().unwrap();
            if let Some(end) = &batch.end {
                assert_eq!(
                    end.child_shards.iter().map(|c| c.index).collect::<Vec<_>>(),
                    vec![2]
                );
                ends.push(batch);
                break;
            }
            lease.commit(&batch).await.unwrap();
        }
    }
    assert!(
        a.next_batch().await.unwrap().is_none(),
        "nothing after the end"
    );
    a.commit(&ends[0]).await.unwrap();
    assert!(
        c.try_lease().await.unwrap().is_none(),
        "one parent is not enough"
    );
    // The child is handed out to a waiting next_lease as soon as the second parent finishes.
    let waiting = {
        let c = Arc::new(c);
        let c2 = c.clone();
        (
            c,
            tokio::spawn(async move { c2.next_lease().await.map(|l| l.shard_id()) }),
        )
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.1.is_finished());
    b.commit(&ends[1]).await.unwrap();
    assert_eq!(
        timeout(WAIT, waiting.1).await.unwrap().unwrap().unwrap(),
        ShardId(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_reader_is_woken_by_commits_and_does_not_spin() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    create(&s, "w", 1);
    put(&s, "w", "k", b"before").await;
    let mut reader =
        ShardReader::open(s.clone(), "w", ShardId(0), ShardStart::Latest, options(100))
            .await
            .unwrap();
    let stats = reader.stats();
    let task = tokio::spawn(async move {
        let batch = reader.next_batch().await.unwrap().unwrap();
        (batch, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        stats.reads(),
        1,
        "one read found nothing, then the reader waits"
    );
    assert!(!task.is_finished());
    put(&s, "w", "k", b"after").await;
    let put_at = Instant::now();
    let (batch, got_at) = timeout(WAIT, task).await.unwrap().unwrap();
    assert!(got_at.duration_since(put_at) < Duration::from_millis(500));
    let data: Vec<&[u8]> = batch.records.iter().map(|(_, r)| &r.data[..]).collect();
    assert_eq!(data, vec![b"after".as_slice()]);
    assert_eq!(stats.reads(), 2);
    assert_eq!(batch.millis_behind_latest, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_reader_follows_one_shard_to_its_end_from_every_starting_position() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = open_manual(dir.path(), |_| {});
    create(&s, "one", 1);
    let mut seqs = Vec::new();
    for i in 0..5u8 {
        seqs.push(put(&s, "one", "k", &[i]).await);
        clock.0.fetch_add(1000, Ordering::SeqCst);
    }
    let t0 = 1_700_000_000_000;
    let open = |start| ShardReader::open(s.clone(), "one", ShardId(0), start, options(2));
    let firsts = [
        (ShardStart::TrimHorizon, Some(0u8)),
        (ShardStart::AtSequence(seqs[2]), Some(2)),
        (ShardStart::AfterSequence(seqs[2]), Some(3)),
        (ShardStart::AtTimestamp(t0 + 3000), Some(3)),
        (ShardStart::AtTimestamp(t0 + 2500), Some(3)),
    ];
    for (start, first) in firsts {
        let mut r = open(start).await.unwrap();
        let b = r.read_now().await.unwrap().unwrap();
        assert_eq!(
            b.records.first().map(|(_, r)| r.data[0]),
            first,
            "{start:?}"
        );
    }
    // Batches of at most two records, continuation = last record, then the end once split.
    let mut r = open(ShardStart::TrimHorizon).await.unwrap();
    let mut got = Vec::new();
    for want in [2, 2, 1] {
        let b = r.next_batch().await.unwrap().unwrap();
        assert_eq!(b.records.len(), want);
        assert_eq!(b.continuation, b.records.last().unwrap().0);
        assert_eq!(b.sequence_range(), Some((b.records[0].0, b.continuation)));
        assert!(b.end.is_none());
        got.extend(b.records.iter().map(|(seq, _)| *seq));
    }
    assert_eq!(got, seqs);
    assert_eq!(r.position(), seqs[4]);
    let waiting = tokio::spawn(async move { (r.next_batch().await, r) });
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.reshard("one", split(0, 1 << 127)).unwrap();
    let (end, mut r) = timeout(WAIT, waiting).await.unwrap().unwrap();
    let end = end.unwrap().unwrap();
    assert!(end.records.is_empty());
    let children: Vec<u32> = end
        .end
        .as_ref()
        .unwrap()
        .child_shards
        .iter()
        .map(|c| c.index)
        .collect();
    assert_eq!(children, vec![1, 2]);
    assert!(end.checkpoint().checkpoint.finished);
    assert!(r.is_ended());
    assert!(r.next_batch().await.unwrap().is_none());
    assert!(r.read_now().await.unwrap().is_none());
    // A starting position of another shard is refused as the registry refuses it.
    assert!(matches!(
        ShardReader::open(
            s.clone(),
            "one",
            ShardId(1),
            ShardStart::AfterSequence(seqs[0]),
            options(2)
        )
        .await,
        Err(ConsumeError::Streams(
            StreamsError::SequenceNotInShard { .. }
        ))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_a_reader_not_asked_reads_nothing_and_its_channel_holds_at_most_its_capacity()
{
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    create(&s, "bp", 1);
    let records: Vec<(String, Vec<u8>)> = (0..100)
        .map(|i| ("k".to_string(), vec![i as u8; 1024]))
        .collect();
    put_all(&s, "bp", records).await;
    let reader = ShardReader::open(
        s.clone(),
        "bp",
        ShardId(0),
        ShardStart::TrimHorizon,
        ReaderOptions {
            batch_records_max: 10,
            batch_bytes_max: 3000,
            on_trimmed: OnTrimmed::Fail,
        },
    )
    .await
    .unwrap();
    let stats = reader.stats();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        stats.reads(),
        0,
        "pull-based: nothing is read before it is asked for"
    );
    let mut rx = reader.into_channel(2);
    let deadline = Instant::now() + WAIT;
    while stats.reads() < 2 {
        assert!(Instant::now() < deadline, "the task fills the channel");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stats.reads(), 2, "then waits for room");
    assert_eq!(stats.records(), 4);
    let mut total = 0;
    while total < 100 {
        let b: ShardBatch = timeout(WAIT, rx.recv()).await.unwrap().unwrap().unwrap();
        // The byte budget: 1 KiB records, 3000 bytes past the first → two per batch.
        assert_eq!(b.records.len(), 2);
        assert!(b.data_bytes() <= 3000);
        total += b.records.len();
        assert!(
            stats.records() as usize <= total + 2 * 2 + 2,
            "read ahead at most the channel's capacity"
        );
    }
    // Dropping the receiver stops the task.
    drop(rx);
    let reads = stats.reads();
    put(&s, "bp", "k", b"x").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(stats.reads() <= reads + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_commit_atomically_with_consumer_state_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    create(&s, "cp", 2);
    let a = put(&s, "cp", "a", b"1").await;
    let other = if a.shard_index == 0 { 1 } else { 0 };
    let name = ConsumerName::new("esm/one").unwrap();
    let view = s.describe("cp").unwrap();
    let start_of = |i: u32| {
        view.shards
            .iter()
            .find(|v| v.meta.index == i)
            .unwrap()
            .starting_sequence_number
    };
    let checkpoints = vec![
        ShardCheckpoint {
            shard_id: ShardId(a.shard_index),
            checkpoint: Checkpoint {
                sequence_number: a,
                finished: false,
            },
        },
        ShardCheckpoint {
            shard_id: ShardId(other),
            checkpoint: Checkpoint {
                sequence_number: start_of(other),
                finished: true,
            },
        },
    ];
    s.commit_checkpoints(
        &name,
        "cp",
        &checkpoints,
        &[
            StateWrite::Put {
                key: "batch".into(),
                value: b"7".to_vec(),
            },
            StateWrite::Put {
                key: "gone".into(),
                value: b"x".to_vec(),
            },
        ],
    )
    .unwrap();
    s.commit_checkpoints(
        &name,
        "cp",
        &[],
        &[StateWrite::Delete { key: "gone".into() }],
    )
    .unwrap();
    // Refused as a whole: a sequence number of another shard, or state past its limits.
    let wrong = vec![ShardCheckpoint {
        shard_id: ShardId(other),
        checkpoint: Checkpoint {
            sequence_number: a,
            finished: false,
        },
    }];
    assert!(matches!(
        s.commit_checkpoints(
            &name,
            "cp",
            &wrong,
            &[StateWrite::Put {
                key: "batch".into(),
                value: b"8".to_vec()
            }]
        ),
        Err(ConsumeError::Streams(
            StreamsError::SequenceNotInShard { .. }
        ))
    ));
    let big = StateWrite::Put {
        key: "big".into(),
        value: vec![0; sluice_streams::CONSUMER_STATE_VALUE_BYTES_MAX + 1],
    };
    assert!(matches!(
        s.commit_checkpoints(&name, "cp", &[], &[big]),
        Err(ConsumeError::StateTooLarge { .. })
    ));
    let at_limit = StateWrite::Put {
        key: "k".repeat(256),
        value: vec![0; sluice_streams::CONSUMER_STATE_VALUE_BYTES_MAX],
    };
    s.commit_checkpoints(&name, "cp", &[], &[at_limit]).unwrap();
    s.commit_checkpoints(
        &name,
        "cp",
        &[],
        &[StateWrite::Delete {
            key: "k".repeat(256),
        }],
    )
    .unwrap();
    let too_many: Vec<StateWrite> = (0..10_001)
        .map(|i| StateWrite::Delete { key: i.to_string() })
        .collect();
    assert!(matches!(
        s.commit_checkpoints(&name, "cp", &[], &too_many),
        Err(ConsumeError::CommitTooLarge { .. })
    ));
    // Another consumer's rows are its own.
    let b = ConsumerName::new("esm/two").unwrap();
    s.commit_checkpoints(
        &b,
        "cp",
        &checkpoints[..1],
        &[StateWrite::Put {
            key: "batch".into(),
            value: b"9".to_vec(),
        }],
    )
    .unwrap();

    s.close();
    drop(s);
    let s = open(dir.path());
    let loaded = s.load_checkpoints(&name, "cp").unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[&ShardId(a.shard_index)], checkpoints[0].checkpoint);
    assert_eq!(loaded[&ShardId(other)], checkpoints[1].checkpoint);
    assert_eq!(
        s.consumer_state(&name, "batch").unwrap(),
        Some(b"7".to_vec())
    );
    assert_eq!(s.consumer_state(&name, "gone").unwrap(), None);
    assert_eq!(s.consumer_states(&name).unwrap().len(), 1);
    assert_eq!(s.list_checkpoints(&name).unwrap().len(), 2);
    assert_eq!(s.list_checkpoints(&b).unwrap().len(), 1);
    // Deleting a consumer's checkpoints leaves the others'.
    s.delete_checkpoints(&name).unwrap();
    assert!(s.list_checkpoints(&name).unwrap().is_empty());
    assert!(s.consumer_states(&name).unwrap().is_empty());
    assert_eq!(s.consumer_state(&b, "batch").unwrap(), Some(b"9".to_vec()));
    // Checkpoints go with their stream; a stream re-created under the name starts clean.
    s.delete_stream("cp", false).unwrap();
    assert!(s.list_checkpoints(&b).unwrap().is_empty());
    create(&s, "cp", 2);
    assert!(s.load_checkpoints(&b, "cp").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_consumer_resumes_from_checkpoints_after_reopen_and_redelivers_only_uncommitted_batches(
) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    create(&s, "resume", 2);
    put_all(&s, "resume", keyed(20, 0, 60)).await;
    s.reshard("resume", split(0, 1 << 126)).unwrap(); // 0 → 2, 3
    put_all(&s, "resume", keyed(20, 60, 60)).await;
    let name = ConsumerName::new("firehose:resume").unwrap();
    let opts = StreamConsumerOptions {
        initial_position: InitialPosition::TrimHorizon,
        reader: options(4),
    };
    let mut delivered: Vec<SequenceNumber> = Vec::new();
    let mut uncommitted: Vec<SequenceNumber> = Vec::new();
    {
        let c = StreamConsumer::open(s.clone(), Some(name.clone()), "resume", opts)
            .await
            .unwrap();
        assert!(matches!(
            StreamConsumer::open(s.clone(), Some(name.clone()), "resume", opts).await,
            Err(ConsumeError::ConsumerBusy { .. })
        ));
        // Shard 0 to its end, committed (so it is finished); shard 1: two batches, the second
        // not committed.
        let mut l0 = c.try_lease().await.unwrap().unwrap();
        assert_eq!(l0.shard_id(), ShardId(0));
        while let Some(b) = l0.next_batch().await.unwrap() {
            delivered.extend(b.records.iter().map(|(q, _)| *q));
            l0.commit(&b).await.unwrap();
        }
        let mut l1 = c.try_lease().await.unwrap().unwrap();
        assert_eq!(l1.shard_id(), ShardId(1));
        let b = l1.next_batch().await.unwrap().unwrap();
        delivered.extend(b.records.iter().map(|(q, _)| *q));
        l1.commit(&b).await.unwrap();
        let b = l1.next_batch().await.unwrap().unwrap();
        delivered.extend(b.records.iter().map(|(q, _)| *q));
        uncommitted.extend(b.records.iter().map(|(q, _)| *q));
        // A child of shard 0: one batch, not committed.
        let mut l2 = c.try_lease().await.unwrap().unwrap();
        assert_eq!(l2.shard_id(), ShardId(2));
        let b = l2.next_batch().await.unwrap().unwrap();
        delivered.extend(b.records.iter().map(|(q, _)| *q));
        uncommitted.extend(b.records.iter().map(|(q, _)| *q));
    }
    s.close();
    drop(s);
    let s = open(dir.path());
    let c = Arc::new(
        StreamConsumer::open(s.clone(), Some(name.clone()), "resume", opts)
            .await
            .unwrap(),
    );
    assert!(c.checkpoints()[&ShardId(0)].finished);
    let total = 120;
    let expected_second = total - delivered.len() + uncommitted.len();
    let seen: Seen = Arc::default();
    consume_until(c.clone(), seen.clone(), expected_second).await;
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|x| x.1 != 0),
        "a finished shard is not read again"
    );
    let again: HashSet<SequenceNumber> = seen
        .iter()
        .map(|x| x.2)
        .filter(|q| delivered.contains(q))
        .collect();
    assert_eq!(
        again,
        uncommitted.iter().copied().collect(),
        "only the uncommitted batches come again"
    );
    let all: HashSet<SequenceNumber> = delivered
        .iter()
        .copied()
        .chain(seen.iter().map(|x| x.2))
        .collect();
    assert_eq!(all.len(), total);
    assert_eq!(seen.len(), expected_second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_is_pinned_at_the_first_open_so_a_restart_loses_nothing_put_since() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    create(&s, "late", 1);
    put(&s, "late", "k", b"old").await;
    s.reshard("late", split(0, 1 << 127)).unwrap();
    put(&s, "late", "k", b"old too").await;
    let name = ConsumerName::new("tail-like").unwrap();
    let opts = StreamConsumerOptions {
        initial_position: InitialPosition::Latest,
        reader: options(10),
    };
    drop(
        StreamConsumer::open(s.clone(), Some(name.clone()), "late", opts)
            .await
            .unwrap(),
    );
    put(&s, "late", "k", b"new").await;
    s.close();
    drop(s);
    let s = open(dir.path());
    let c = StreamConsumer::open(s.clone(), Some(name), "late", opts)
        .await
        .unwrap();
    let mut got = Vec::new();
    // Holding each lease, so the next try_lease hands out another shard.
    let mut leases = Vec::new();
    while let Some(mut lease) = c.try_lease().await.unwrap() {
        let b = lease.reader().read_now().await.unwrap().unwrap();
        got.extend(b.records.into_iter().map(|(_, r)| r.data));
        leases.push(lease);
    }
    assert_eq!(
        leases.len(),
        2,
        "the closed shard was finished at the first open"
    );
    assert_eq!(got, vec![b"new".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_stream_ends_waiting_readers_and_the_consumer_with_an_error() {
    for delete_delay_ms in [0, 60_000] {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = open_manual(dir.path(), |c| c.delete_delay_ms = delete_delay_ms);
        create(&s, "gone", 2);
        let c = Arc::new(
            StreamConsumer::open(s.clone(), None, "gone", StreamConsumerOptions::default())
                .await
                .unwrap(),
        );
        let mut lease = c.try_lease().await.unwrap().unwrap();
        let reader = tokio::spawn(async move { lease.next_batch().await.map(|_| ()) });
        let mut plain = ShardReader::open(
            s.clone(),
            "gone",
            ShardId(1),
            ShardStart::Latest,
            options(10),
        )
        .await
        .unwrap();
        let plain = tokio::spawn(async move { plain.next_batch().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.delete_stream("gone", false).unwrap();
        for task in [reader, plain] {
            let ended = timeout(WAIT, task).await.unwrap().unwrap();
            assert!(
                matches!(ended, Err(ConsumeError::StreamDeleted { .. })),
                "{delete_delay_ms}: {ended:?}"
            );
        }
        assert!(matches!(
            c.next_lease().await,
            Err(ConsumeError::StreamDeleted { .. })
        ));
        assert!(!ConsumeError::StreamDeleted {
            stream: "gone".into()
        }
        .is_transient());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_trimming_under_a_reader_ends_it_with_an_error_or_skips_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = open_manual(dir.path(), |_| {});
    create(&s, "ret", 1);
    put_all(&s, "ret", keyed(1, 0, 5)).await;
    let open = |on_trimmed| {
        ShardReader::open(
            s.clone(),
            "ret",
            ShardId(0),
            ShardStart::TrimHorizon,
            ReaderOptions {
                batch_records_max: 1,
                batch_bytes_max: 1 << 20,
                on_trimmed,
            },
        )
    };
    let mut fail = open(OnTrimmed::Fail).await.unwrap();
    let mut skip = open(OnTrimmed::Skip).await.unwrap();
    for r in [&mut fail, &mut skip] {
        assert_eq!(r.next_batch().await.unwrap().unwrap().records.len(), 1);
    }
    clock.0.fetch_add(25 * 3_600_000, Ordering::SeqCst);
    let fresh = put(&s, "ret", "k0", b"fresh").await;
    s.tick();
    match fail.next_batch().await {
        Err(ConsumeError::Trimmed { after, horizon, .. }) => {
            assert_eq!(after.position, 1);
            assert_eq!(horizon.position, fresh.position - 1);
        }
        other => panic!("{other:?}"),
    }
    let b = skip.next_batch().await.unwrap().unwrap();
    assert_eq!(b.records[0].0, fresh);
    // A reader from the trim horizon opened now starts at what is left, without an error.
    let mut late = open(OnTrimmed::Fail).await.unwrap();
    assert_eq!(
        late.next_batch().await.unwrap().unwrap().records[0].0,
        fresh
    );

    // A closed shard removed past retention under its reader.
    s.reshard("ret", split(0, 1 << 127)).unwrap();
    let mut parent = open(OnTrimmed::Skip).await.unwrap();
    clock.0.fetch_add(25 * 3_600_000, Ordering::SeqCst);
    s.tick();
    assert!(matches!(
        parent.next_batch().await,
        Err(ConsumeError::ShardExpired { .. })
    ));
}
