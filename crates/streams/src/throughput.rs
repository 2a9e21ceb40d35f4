//! Per-shard throughput: AWS's shard quotas as token buckets (enforced only when the server is
//! told to), and the load meter on-demand scaling reads (always on).
//!
//! The buckets run on the registry's [`Clock`](sluice_log::Clock) milliseconds, so tests can
//! drive them with a manual clock. Each holds at most one second of its rate: a shard may
//! burst to a full second's quota at once, as Kinesis allows, and no further.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// AWS's per-shard quotas, and whether sluice enforces them. (De)serializes as the
/// `[throughput]` section of sluice's configuration; check it with [`ThroughputConfig::validate`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThroughputConfig {
    /// Refuse what goes over the quotas with ProvisionedThroughputExceededException. Off by
    /// default: a sluice shard is not a fixed slice of someone else's fleet, and the limits
    /// are there to reproduce AWS's throttling in tests, not to protect the server.
    pub enforce: bool,
    /// Bytes of record data (partition keys included) a shard takes per second. Default
    /// 1048576 (1 MiB).
    pub write_bytes_per_sec: u64,
    /// Records a shard takes per second. Default 1000.
    pub write_records_per_sec: u64,
    /// GetRecords calls per shard per second. Default 5.
    pub read_calls_per_sec: u64,
    /// Bytes GetRecords returns per shard per second. Default 2097152 (2 MiB).
    pub read_bytes_per_sec: u64,
}

impl ThroughputConfig {
    /// Every quota must be above zero (a zero rate would refuse everything, enforced or not:
    /// the load meter divides by the write quotas). The error names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("write_bytes_per_sec", self.write_bytes_per_sec),
            ("write_records_per_sec", self.write_records_per_sec),
            ("read_calls_per_sec", self.read_calls_per_sec),
            ("read_bytes_per_sec", self.read_bytes_per_sec),
        ] {
            if value == 0 {
                return Err(format!("{key} must be above zero"));
            }
        }
        Ok(())
    }
}

impl Default for ThroughputConfig {
    fn default() -> Self {
        ThroughputConfig {
            enforce: false,
            write_bytes_per_sec: 1 << 20,
            write_records_per_sec: 1000,
            read_calls_per_sec: 5,
            read_bytes_per_sec: 2 << 20,
        }
    }
}

/// A token bucket holding up to one second of `rate`. `level` may go below zero when a
/// caller takes more than is there ([`Bucket::charge`]): the debt is paid off before anything
/// else is let through, which is how a 10 MiB GetRecords blocks the next few seconds of reads.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: f64,
    level: f64,
    at_ms: i64,
}

impl Bucket {
    fn new(rate: u64, now_ms: i64) -> Bucket {
        Bucket {
            rate: rate as f64,
            level: rate as f64,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: i64) {
        if now_ms > self.at_ms {
            let gained = (now_ms - self.at_ms) as f64 * self.rate / 1000.0;
            self.level = (self.level + gained).min(self.rate);
            self.at_ms = now_ms;
        }
    }

    fn has(&self, amount: f64) -> bool {
        self.level >= amount
    }

    fn charge(&mut self, amount: f64) {
        self.level -= amount;
    }
}

struct Buckets {
    write_bytes: Bucket,
    write_records: Bucket,
    read_calls: Bucket,
    read_bytes: Bucket,
}

/// One shard's quotas and load meter.
pub(crate) struct ShardThroughput {
    buckets: Mutex<Buckets>,
    /// Records and bytes offered to the shard (accepted or not) since the last [`take_load`].
    offered_records: AtomicU64,
    offered_bytes: AtomicU64,
}

impl ShardThroughput {
    pub fn new(config: &ThroughputConfig, now_ms: i64) -> ShardThroughput {
        ShardThroughput {
            buckets: Mutex::new(Buckets {
                write_bytes: Bucket::new(config.write_bytes_per_sec, now_ms),
                write_records: Bucket::new(config.write_records_per_sec, now_ms),
                read_calls: Bucket::new(config.read_calls_per_sec, now_ms),
                read_bytes: Bucket::new(config.read_bytes_per_sec, now_ms),
            }),
            offered_records: AtomicU64::new(0),
            offered_bytes: AtomicU64::new(0),
        }
    }

    /// Counts records offered to the shard, for on-demand scaling.
    pub fn offer(&self, records: u64, bytes: u64) {
        self.offered_records.fetch_add(records, Ordering::Relaxed);
        self.offered_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The load offered since the last call: `(records, bytes)`.
    pub fn take_load(&self) -> (u64, u64) {
        (
            self.offered_records.swap(0, Ordering::Relaxed),
            self.offered_bytes.swap(0, Ordering::Relaxed),
        )
    }

    /// Admits each record whose size (`sizes[i]` bytes) still fits the write quotas, in order;
    /// `false` marks a record refused. A refused record takes nothing from the buckets.
    pub fn admit_writes(&self, sizes: impl Iterator<Item = usize>, now_ms: i64) -> Vec<bool> {
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        b.write_bytes.refill(now_ms);
        b.write_records.refill(now_ms);
        sizes
            .map(|size| {
                let ok = b.write_records.has(1.0) && b.write_bytes.has(size as f64);
                if ok {
                    b.write_records.charge(1.0);
                    b.write_bytes.charge(size as f64);
                }
                ok
            })
            .collect()
    }

    /// Admits one GetRecords call: there must be a call token and no byte debt.
    pub fn admit_read(&self, now_ms: i64) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        b.read_calls.refill(now_ms);
        b.read_bytes.refill(now_ms);
        let ok = b.read_calls.has(1.0) && b.read_bytes.has(f64::MIN_POSITIVE);
        if ok {
            b.read_calls.charge(1.0);
        }
        ok
    }

    /// Charges the bytes a GetRecords call returned; may leave a debt.
    pub fn charge_read(&self, bytes: usize) {
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        b.read_bytes.charge(bytes as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ThroughputConfig {
        ThroughputConfig {
            enforce: true,
            ..ThroughputConfig::default()
        }
    }

    #[test]
    fn writes_past_a_second_of_quota_are_refused_until_it_refills() {
        let t = ShardThroughput::new(&config(), 0);
        let admitted = t.admit_writes(std::iter::repeat_n(10, 1500), 0);
        assert_eq!(admitted.iter().filter(|a| **a).count(), 1000);
        assert!(admitted[..1000].iter().all(|a| *a));
        // Half a second later, half the record quota is back.
        let admitted = t.admit_writes(std::iter::repeat_n(10, 1000), 500);
        assert_eq!(admitted.iter().filter(|a| **a).count(), 500);
    }

    #[test]
    fn the_byte_quota_refuses_a_large_record_but_lets_a_small_one_after_it() {
        let t = ShardThroughput::new(&config(), 0);
        let admitted = t.admit_writes([700_000, 700_000, 300_000].into_iter(), 0);
        assert_eq!(admitted, vec![true, false, true]);
    }

    #[test]
    fn five_reads_a_second_and_a_large_read_blocks_the_next_ones() {
        let t = ShardThroughput::new(&config(), 0);
        assert!((0..5).all(|_| t.admit_read(0)));
        assert!(!t.admit_read(0));
        assert!(t.admit_read(1000));
        // 10 MiB read: five seconds of the 2 MiB/s quota owed.
        t.charge_read(10 << 20);
        assert!(!t.admit_read(2000));
        assert!(!t.admit_read(5000));
        assert!(t.admit_read(6100));
    }

    #[test]
    fn the_meter_counts_offered_load_and_resets() {
        let t = ShardThroughput::new(&config(), 0);
        t.offer(3, 300);
        t.offer(2, 200);
        assert_eq!(t.take_load(), (5, 500));
        assert_eq!(t.take_load(), (0, 0));
    }
}
