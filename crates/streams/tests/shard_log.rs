//! The shard-log seam: a registry opened over another `ShardLogStore` runs the data path through
//! it, with one dynamic append call per shard and put, and hands it the removals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use sluice_streams::{
    Completion, Listener, LocalLogs, LogConfig, LogError, ReadBatch, Record, ShardId, ShardLog,
    ShardLogStore, ShardStart, StreamMode, StreamName, StreamSpec, Streams, StreamsConfig,
    SystemClock,
};

#[derive(Default)]
struct Counts {
    appends: AtomicU64,
    reads: AtomicU64,
    removed_streams: AtomicU64,
}

/// Local logs, counted.
struct Counted {
    inner: LocalLogs,
    counts: Arc<Counts>,
}

struct CountedLog {
    inner: Arc<dyn ShardLog>,
    counts: Arc<Counts>,
}

impl ShardLog for CountedLog {
    fn try_append(
        &self,
        records: Vec<Record>,
        done: Completion,
    ) -> Result<(), (Vec<Record>, Completion)> {
        self.counts.appends.fetch_add(1, Ordering::SeqCst);
        self.inner.try_append(records, done)
    }
    fn sync(&self) -> Result<(), LogError> {
        self.inner.sync()
    }
    fn read(&self, from: u64, records_max: usize, bytes_max: usize) -> Result<ReadBatch, LogError> {
        self.counts.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read(from, records_max, bytes_max)
    }
    fn start_offset(&self) -> u64 {
        self.inner.start_offset()
    }
    fn end_offset(&self) -> u64 {
        self.inner.end_offset()
    }
    fn offset_at_time(&self, arrival_ms: i64) -> Result<u64, LogError> {
        self.inner.offset_at_time(arrival_ms)
    }
    fn trim_before(&self, cutoff_ms: i64) -> Result<u64, LogError> {
        self.inner.trim_before(cutoff_ms)
    }
    fn set_listener(&self, listener: Listener) {
        self.inner.set_listener(listener)
    }
    fn close(&self) {
        self.inner.close()
    }
    fn is_poisoned(&self) -> bool {
        self.inner.is_poisoned()
    }
}

impl ShardLogStore for Counted {
    fn open(&self, uid: u64, index: u32, fresh: bool) -> Result<Arc<dyn ShardLog>, LogError> {
        Ok(Arc::new(CountedLog {
            inner: self.inner.open(uid, index, fresh)?,
            counts: self.counts.clone(),
        }))
    }
    fn remove_shard(&self, uid: u64, index: u32) {
        self.inner.remove_shard(uid, index)
    }
    fn remove_stream(&self, uid: u64) {
        self.counts.removed_streams.fetch_add(1, Ordering::SeqCst);
        self.inner.remove_stream(uid)
    }
    fn retain_streams(&self, known: &HashSet<u64>) {
        self.inner.retain_streams(known)
    }
    fn retain_shards(&self, uid: u64, known: &BTreeSet<u32>) {
        self.inner.retain_shards(uid, known)
    }
}

#[test]
fn a_registry_over_another_store_puts_reads_and_removes_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let counts = Arc::new(Counts::default());
    let clock = Arc::new(SystemClock);
    let store = Counted {
        inner: LocalLogs::new(
            dir.path().join("streams"),
            LogConfig::default(),
            clock.clone(),
        )
        .unwrap(),
        counts: counts.clone(),
    };
    let s =
        Streams::open_with_logs(StreamsConfig::new(dir.path()), clock, Arc::new(store)).unwrap();
    s.create_stream(
        &StreamName::new("seam").unwrap(),
        StreamSpec {
            shard_count: 2,
            mode: StreamMode::Provisioned,
            max_record_size_kib: 1024,
            tags: Default::default(),
        },
    )
    .unwrap();
    let records: Vec<Record> = (0..100)
        .map(|i| Record {
            partition_key: format!("k{i}").into_bytes().into(),
            explicit_hash_key: None,
            data: vec![1; 10].into(),
        })
        .collect();
    let (tx, rx) = mpsc::channel();
    s.put("seam", records, Box::new(move |o| drop(tx.send(o))))
        .unwrap();
    assert!(rx.recv().unwrap().iter().all(|o| o.is_ok()));
    assert_eq!(
        counts.appends.load(Ordering::SeqCst),
        2,
        "one append per shard"
    );
    let mut total = 0;
    for shard in 0..2 {
        let c = s
            .cursor("seam", ShardId(shard), ShardStart::TrimHorizon)
            .unwrap();
        total += s.read(&c, 1000, 1 << 20, false).unwrap().records.len();
    }
    assert_eq!(total, 100);
    assert_eq!(counts.reads.load(Ordering::SeqCst), 2);
    s.delete_stream("seam", false).unwrap();
    assert_eq!(counts.removed_streams.load(Ordering::SeqCst), 1);
}
