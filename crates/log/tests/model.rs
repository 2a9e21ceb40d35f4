//! Property test: random appends, reads, time lookups, retention trims and reopens against a
//! `Vec` model of the shard.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use sluice_log::{Clock, Log, LogConfig, Record};

struct ManualClock(AtomicI64);
impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        count: usize,
        data_bytes: usize,
        advance_ms: i64,
    },
    Read {
        from_pct: u8,
        records_max: usize,
        bytes_max: usize,
    },
    AtTime {
        pct: u8,
    },
    Trim {
        pct: u8,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..20, 0usize..300, 0i64..5).prop_map(|(count, data_bytes, advance_ms)| Op::Append { count, data_bytes, advance_ms }),
        3 => (0u8..=110, 1usize..50, 1usize..5000).prop_map(|(from_pct, records_max, bytes_max)| Op::Read { from_pct, records_max, bytes_max }),
        1 => (0u8..=110).prop_map(|pct| Op::AtTime { pct }),
        1 => (0u8..=100).prop_map(|pct| Op::Trim { pct }),
        1 => Just(Op::Reopen),
    ]
}

struct ModelRecord {
    arrival_ms: i64,
    data: Vec<u8>,
    key: Vec<u8>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(1_000)));
        let config = LogConfig { segment_bytes_max: 2048, index_interval_bytes: 300, ..LogConfig::default() };
        let mut log = Log::open(dir.path(), config.clone(), clock.clone()).unwrap();
        let mut model: Vec<ModelRecord> = Vec::new();
        // Records before `horizon` may be hidden; a reopen may bring back those of a partly
        // trimmed segment, so the model tracks the lowest and highest horizon allowed.
        let mut horizon_min = 0u64;
        let mut horizon_max = 0u64;
        let mut counter = 0u64;
        for op in ops {
            match op {
                Op::Append { count, data_bytes, advance_ms } => {
                    clock.0.fetch_add(advance_ms, Ordering::SeqCst);
                    let records: Vec<Record> = (0..count).map(|_| {
                        counter += 1;
                        let mut data = counter.to_le_bytes().to_vec();
                        data.resize(8 + data_bytes, (counter % 251) as u8);
                        Record { partition_key: format!("k{}", counter % 5).into_bytes().into(), explicit_hash_key: None, data: data.into() }
                    }).collect();
                    let ack = log.append_blocking(records.clone()).unwrap();
                    prop_assert_eq!(ack.first_offset, model.len() as u64);
                    for r in records {
                        model.push(ModelRecord { arrival_ms: ack.arrival_ms, data: r.data.to_vec(), key: r.partition_key.to_vec() });
                    }
                }
                Op::Read { from_pct, records_max, bytes_max } => {
                    let from = (model.len() as u64 * from_pct as u64) / 100;
                    let b = log.read(from, records_max, bytes_max).unwrap();
                    let start = from.max(log.start_offset());
                    prop_assert!(log.start_offset() >= horizon_min && log.start_offset() <= horizon_max.max(horizon_min));
                    prop_assert_eq!(b.end_offset, model.len() as u64);
                    if start >= model.len() as u64 {
                        prop_assert!(b.records.is_empty());
                    } else {
                        prop_assert!(!b.records.is_empty());
                        prop_assert!(b.records.len() <= records_max);
                        let data_total: usize = b.records.iter().map(|r| r.data.len()).sum();
                        prop_assert!(b.records.len() == 1 || data_total <= bytes_max);
                        for (i, r) in b.records.iter().enumerate() {
                            let want = &model[(start as usize) + i];
                            prop_assert_eq!(r.offset, start + i as u64);
                            prop_assert_eq!(&r.data, &want.data);
                            prop_assert_eq!(&r.partition_key, &want.key);
                            prop_assert_eq!(r.arrival_ms, want.arrival_ms);
                        }
                        prop_assert_eq!(b.next_offset, start + b.records.len() as u64);
                    }
                }
                Op::AtTime { pct } => {
                    let now = clock.0.load(Ordering::SeqCst);
                    let t = 1_000 + ((now - 1_000) * pct as i64) / 100;
                    let got = log.offset_at_time(t).unwrap();
                    let start = log.start_offset();
                    let want = model.iter().enumerate().skip(start as usize).find(|(_, r)| r.arrival_ms >= t).map(|(i, _)| i as u64).unwrap_or(model.len() as u64);
                    prop_assert_eq!(got, want);
                }
                Op::Trim { pct } => {
                    let now = clock.0.load(Ordering::SeqCst);
                    let cutoff = 1_000 + ((now - 1_000) * pct as i64) / 100;
                    let prev = log.start_offset();
                    let h = log.trim_before(cutoff).unwrap();
                    let want = model.iter().position(|r| r.arrival_ms >= cutoff).unwrap_or(model.len()) as u64;
                    prop_assert_eq!(h, prev.max(want));
                    horizon_max = horizon_max.max(h);
                    prop_assert!(h >= horizon_min);
                    // Every record at or after the cutoff is still readable.
                    if want < model.len() as u64 {
                        let b = log.read(want, 1, 1 << 20).unwrap();
                        prop_assert_eq!(b.records[0].offset, want.max(h));
                    }
                }
                Op::Reopen => {
                    drop(log);
                    log = Log::open(dir.path(), config.clone(), clock.clone()).unwrap();
                    horizon_min = log.start_offset();
                    horizon_max = horizon_max.max(horizon_min);
                    prop_assert_eq!(log.end_offset(), model.len() as u64);
                }
            }
        }
    }
}
