//! Behaviour of one shard log: append, read, reopen, roll, retention, recovery of a damaged tail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use sluice_log::{Clock, Log, LogConfig, Record, SyncPolicy};

struct ManualClock(AtomicI64);
impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn rec(i: usize) -> Record {
    Record {
        partition_key: format!("key-{}", i % 7).into_bytes().into(),
        explicit_hash_key: if i.is_multiple_of(3) {
            Some(i as u128 * 1_000_003)
        } else {
            None
        },
        data: format!("record number {i}")
            .repeat(1 + i % 5)
            .into_bytes()
            .into(),
    }
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes_max: 4096,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, config: LogConfig, clock: &Arc<ManualClock>) -> Log {
    Log::open(dir, config, clock.clone()).expect("open")
}

fn read_all(log: &Log) -> Vec<sluice_log::StoredRecord> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let batch = log.read(at, 1000, 1 << 20).unwrap();
        if batch.records.is_empty() {
            return out;
        }
        at = batch.next_offset;
        out.extend(batch.records);
    }
}

#[test]
fn append_read_reopen_across_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(1_000)));
    let log = open(dir.path(), small_segments(), &clock);
    for i in 0..300 {
        clock.0.fetch_add(1, Ordering::SeqCst);
        let ack = log.append_blocking(vec![rec(i)]).unwrap();
        assert_eq!(ack.first_offset, i as u64);
        assert_eq!(ack.arrival_ms, 1_001 + i as i64);
    }
    assert!(
        log.stats().segment_count > 5,
        "small segments must roll: {:?}",
        log.stats()
    );
    let check = |log: &Log| {
        let all = read_all(log);
        assert_eq!(all.len(), 300);
        for (i, r) in all.iter().enumerate() {
            let want = rec(i);
            assert_eq!(r.offset, i as u64);
            assert_eq!(r.data, want.data);
            assert_eq!(r.partition_key, want.partition_key);
            assert_eq!(r.explicit_hash_key, want.explicit_hash_key);
        }
        // Reads from every offset start exactly there.
        for from in [0u64, 1, 17, 150, 299] {
            let b = log.read(from, 3, 1 << 20).unwrap();
            assert_eq!(b.records[0].offset, from);
        }
        let past_end = log.read(300, 10, 1 << 20).unwrap();
        assert!(past_end.records.is_empty());
        assert_eq!(past_end.next_offset, 300);
        assert_eq!(past_end.end_offset, 300);
    };
    check(&log);
    drop(log);
    let log = open(dir.path(), small_segments(), &clock);
    check(&log);
    // Appends continue after the recovered end.
    assert_eq!(
        log.append_blocking(vec![rec(300)]).unwrap().first_offset,
        300
    );
}

#[test]
fn read_limits_records_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(5)));
    let log = open(dir.path(), LogConfig::default(), &clock);
    let big = |n: u8| Record {
        partition_key: b"k".to_vec().into(),
        explicit_hash_key: None,
        data: vec![n; 1000].into(),
    };
    log.append_blocking((0..10).map(big).collect()).unwrap();
    let b = log.read(0, 4, 1 << 20).unwrap();
    assert_eq!(b.records.len(), 4);
    assert_eq!(b.next_offset, 4);
    let b = log.read(0, 100, 2500).unwrap();
    assert_eq!(
        b.records.len(),
        2,
        "two 1000-byte records fit in 2500 bytes, three do not"
    );
    // The first record is returned even when it alone exceeds the byte budget.
    let b = log.read(3, 100, 10).unwrap();
    assert_eq!(b.records.len(), 1);
    assert_eq!(b.records[0].offset, 3);
}

#[test]
fn time_lookup_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(10_000)));
    let log = open(dir.path(), small_segments(), &clock);
    for i in 0..200 {
        clock.0.store(10_000 + (i as i64) * 10, Ordering::SeqCst);
        log.append_blocking(vec![rec(i)]).unwrap();
    }
    assert_eq!(log.offset_at_time(0).unwrap(), 0);
    assert_eq!(log.offset_at_time(10_000).unwrap(), 0);
    assert_eq!(log.offset_at_time(10_001).unwrap(), 1);
    assert_eq!(log.offset_at_time(10_500).unwrap(), 50);
    assert_eq!(log.offset_at_time(11_990).unwrap(), 199);
    assert_eq!(
        log.offset_at_time(11_991).unwrap(),
        200,
        "after the newest record: the end"
    );
    let segments_before = log.stats().segment_count;
    let horizon = log.trim_before(11_000).unwrap();
    assert_eq!(horizon, 100);
    assert_eq!(log.start_offset(), 100);
    assert!(
        log.stats().segment_count < segments_before,
        "whole expired segments are deleted"
    );
    let b = log.read(0, 5, 1 << 20).unwrap();
    assert_eq!(
        b.records[0].offset, 100,
        "a read before the trim horizon starts at it"
    );
    drop(log);
    // The horizon survives reopen to the segment boundary at least, and no record past it is lost.
    let log = open(dir.path(), small_segments(), &clock);
    let all = read_all(&log);
    assert_eq!(all.last().unwrap().offset, 199);
    assert!(all.first().unwrap().offset <= 100);
    assert_eq!(
        all.windows(2)
            .filter(|w| w[1].offset != w[0].offset + 1)
            .count(),
        0
    );
}

fn active_segment(dir: &Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

#[test]
fn torn_tail_is_cut_on_open() {
    for cut in [1u64, 5, 9, 33] {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(1)));
        let log = open(dir.path(), LogConfig::default(), &clock);
        for i in 0..20 {
            log.append_blocking(vec![rec(i)]).unwrap();
        }
        drop(log);
        let seg = active_segment(dir.path());
        let len = std::fs::metadata(&seg).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - cut).unwrap();
        drop(f);
        let log = open(dir.path(), LogConfig::default(), &clock);
        let all = read_all(&log);
        assert_eq!(
            all.len(),
            19,
            "cutting {cut} bytes loses exactly the torn last record"
        );
        assert_eq!(log.append_blocking(vec![rec(99)]).unwrap().first_offset, 19);
        assert_eq!(read_all(&log).last().unwrap().data, rec(99).data);
    }
}

#[test]
fn bit_flip_in_tail_is_detected_and_cut() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(1)));
    let log = open(dir.path(), LogConfig::default(), &clock);
    for i in 0..10 {
        log.append_blocking(vec![rec(i)]).unwrap();
    }
    drop(log);
    let seg = active_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() - 3; // inside the last record's data
    bytes[at] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let log = open(dir.path(), LogConfig::default(), &clock);
    let all = read_all(&log);
    assert_eq!(all.len(), 9);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.data, rec(i).data);
    }
}

#[test]
fn garbage_after_the_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(1)));
    let log = open(dir.path(), LogConfig::default(), &clock);
    log.append_blocking((0..5).map(rec).collect()).unwrap();
    drop(log);
    let seg = active_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0xFF; 100]);
    std::fs::write(&seg, &bytes).unwrap();
    let log = open(dir.path(), LogConfig::default(), &clock);
    assert_eq!(read_all(&log).len(), 5);
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len() as usize,
        bytes.len() - 100
    );
}

#[test]
fn lost_index_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(1)));
    let log = open(dir.path(), small_segments(), &clock);
    for i in 0..400 {
        log.append_blocking(vec![rec(i)]).unwrap();
    }
    drop(log);
    let mut removed = 0;
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "idx") {
            if removed % 2 == 0 {
                std::fs::remove_file(&p).unwrap();
            } else {
                std::fs::write(&p, b"SLUICIDX broken").unwrap();
            }
            removed += 1;
        }
    }
    assert!(removed > 2);
    let log = open(dir.path(), small_segments(), &clock);
    let all = read_all(&log);
    assert_eq!(all.len(), 400);
    assert_eq!(log.read(57, 1, 1 << 20).unwrap().records[0].offset, 57);
}

#[test]
fn concurrent_appenders_share_commits_and_get_distinct_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        Log::open(
            dir.path(),
            LogConfig::default(),
            Arc::new(sluice_log::SystemClock),
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut offsets = Vec::new();
                for i in 0..200 {
                    let r = Record {
                        partition_key: format!("t{t}").into_bytes().into(),
                        explicit_hash_key: None,
                        data: format!("{t}:{i}").into_bytes().into(),
                    };
                    offsets.push(log.append_blocking(vec![r]).unwrap().first_offset);
                }
                offsets
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..1600).collect::<Vec<_>>());
    // Each thread's records are in its own order.
    let records = read_all(&log);
    for t in 0..8 {
        let mine: Vec<_> = records
            .iter()
            .filter(|r| r.partition_key == format!("t{t}").into_bytes())
            .map(|r| r.data.clone())
            .collect();
        let want: Vec<_> = (0..200).map(|i| format!("{t}:{i}").into_bytes()).collect();
        assert_eq!(mine, want);
    }
}

#[test]
fn interval_policy_acknowledges_and_persists_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(1)));
    let config = LogConfig {
        sync: SyncPolicy::Interval { interval_ms: 50 },
        ..LogConfig::default()
    };
    let log = open(dir.path(), config.clone(), &clock);
    log.append_blocking((0..50).map(rec).collect()).unwrap();
    drop(log);
    let log = open(dir.path(), config, &clock);
    assert_eq!(read_all(&log).len(), 50);
}

#[test]
fn oversized_record_is_refused_and_log_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(1)));
    let log = open(dir.path(), LogConfig::default(), &clock);
    let at_limit = Record {
        partition_key: b"k".to_vec().into(),
        explicit_hash_key: None,
        data: vec![1; sluice_log::DATA_BYTES_MAX].into(),
    };
    let over = Record {
        partition_key: b"k".to_vec().into(),
        explicit_hash_key: None,
        data: vec![1; sluice_log::DATA_BYTES_MAX + 1].into(),
    };
    assert!(log.append_blocking(vec![over]).is_err());
    assert_eq!(log.append_blocking(vec![at_limit]).unwrap().first_offset, 0);
    let b = log.read(0, 1, 1).unwrap();
    assert_eq!(b.records[0].data.len(), sluice_log::DATA_BYTES_MAX);
}
