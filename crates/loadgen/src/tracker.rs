//! [`Tracker`] matches the records seen on a pipeline's output to the ones put into its source,
//! by id: which ids were sent, which the source acknowledged, which came out (once, or more
//! often: duplicates), and each first sighting's put-to-processed latency.
//!
//! Producers and readers run concurrently, so a record may come out before its PutRecords
//! answer is read: sightings and acknowledgements are kept apart and counted against each
//! other whichever comes first.

use hdrhistogram::Histogram;

use crate::stamp::Stamp;
use crate::{Latency, LoadError};

/// Latencies from 1 µs to an hour: a pipeline that falls behind during the run is still
/// measured while it drains.
const LATENCY_US_MAX: u64 = 3_600_000_000;

/// A growable set of ids.
#[derive(Debug, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn get(&self, id: u64) -> bool {
        self.0
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set(&mut self, id: u64) {
        let word = (id / 64) as usize;
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (id % 64);
    }
}

#[derive(Debug)]
pub(crate) struct Tracker {
    run: u32,
    /// Ids below this were handed to a PutRecords request; a sighting of any other is not this
    /// run's (and cannot grow the sets without bound).
    ids_end: u64,
    acked: Bits,
    seen: Bits,
    records_acked: u64,
    /// Acknowledged records also seen.
    acked_seen: u64,
    /// Distinct ids seen.
    processed: u64,
    duplicates: u64,
    /// Output records that are not this run's: another run's, or without a stamp.
    foreign: u64,
    latency_us: Histogram<u64>,
    first_put_us: Option<u64>,
    last_output_us: Option<u64>,
}

/// What the matching found, for the report.
#[derive(Debug, Clone)]
pub(crate) struct Matched {
    pub records_put: u64,
    pub records_processed: u64,
    pub records_lost: u64,
    pub duplicates: u64,
    pub foreign_records: u64,
    pub latency: Latency,
    /// From the first put to the last first sighting; 0 without one.
    pub processed_window_us: u64,
    /// When a record was seen for the first time last.
    pub last_output_us: Option<u64>,
}

impl Tracker {
    pub fn new(run: u32) -> Result<Tracker, LoadError> {
        Ok(Tracker {
            run,
            ids_end: 0,
            acked: Bits::default(),
            seen: Bits::default(),
            records_acked: 0,
            acked_seen: 0,
            processed: 0,
            duplicates: 0,
            foreign: 0,
            latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
                .map_err(|e| LoadError::Histogram(e.to_string()))?,
            first_put_us: None,
            last_output_us: None,
        })
    }

    /// The ids `first..first + count` are about to be sent, at `at_us`.
    pub fn sending(&mut self, first: u64, count: u64, at_us: u64) {
        self.ids_end = self.ids_end.max(first + count);
        self.first_put_us = Some(self.first_put_us.map_or(at_us, |t| t.min(at_us)));
    }

    /// The source acknowledged record `id`.
    pub fn acked(&mut self, id: u64) {
        if id >= self.ids_end || self.acked.get(id) {
            return;
        }
        self.acked.set(id);
        self.records_acked += 1;
        if self.seen.get(id) {
            self.acked_seen += 1;
        }
    }

    /// An output record, read at `now_us`, with its stamp if it has one.
    pub fn seen(&mut self, stamp: Option<Stamp>, now_us: u64) {
        let Some(s) = stamp else {
            self.foreign += 1;
            return;
        };
        if s.run.is_some_and(|r| r != self.run) || s.id >= self.ids_end {
            self.foreign += 1;
            return;
        }
        if self.seen.get(s.id) {
            self.duplicates += 1;
            return;
        }
        self.seen.set(s.id);
        self.processed += 1;
        if self.acked.get(s.id) {
            self.acked_seen += 1;
        }
        self.latency_us
            .saturating_record(now_us.saturating_sub(s.ts_us).max(1));
        self.last_output_us = Some(self.last_output_us.map_or(now_us, |t| t.max(now_us)));
    }

    /// Acknowledged records not seen (yet).
    pub fn missing(&self) -> u64 {
        self.records_acked - self.acked_seen
    }

    pub fn records_acked(&self) -> u64 {
        self.records_acked
    }

    pub fn matched(&self) -> Matched {
        let window = match (self.first_put_us, self.last_output_us) {
            (Some(first), Some(last)) => last.saturating_sub(first),
            _ => 0,
        };
        Matched {
            records_put: self.records_acked,
            records_processed: self.processed,
            records_lost: self.missing(),
            duplicates: self.duplicates,
            foreign_records: self.foreign,
            latency: crate::latency(&self.latency_us),
            processed_window_us: window,
            last_output_us: self.last_output_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(id: u64, ts_us: u64) -> Option<Stamp> {
        Some(Stamp {
            id,
            ts_us,
            run: Some(1),
        })
    }

    #[test]
    fn bits_grow_on_set() {
        let mut b = Bits::default();
        assert!(!b.get(0) && !b.get(1_000_000));
        b.set(0);
        b.set(63);
        b.set(64);
        b.set(100_000);
        assert!(b.get(0) && b.get(63) && b.get(64) && b.get(100_000));
        assert!(!b.get(1) && !b.get(65) && !b.get(99_999) && !b.get(100_001));
    }

    #[test]
    fn lost_duplicates_and_foreign_records_are_counted() {
        let mut t = Tracker::new(1).unwrap();
        t.sending(0, 10, 1_000);
        // 0..8 acknowledged; 8 and 9 failed (throttled): never counted as put or lost.
        for id in 0..8 {
            t.acked(id);
        }
        // An acknowledgement is counted once.
        t.acked(3);
        // Seen: 0..5, 2 twice, 4 three times; 5..8 never.
        for id in 0..5 {
            t.seen(stamp(id, 1_000), 2_000);
        }
        t.seen(stamp(2, 1_000), 2_500);
        t.seen(stamp(4, 1_000), 2_600);
        t.seen(stamp(4, 1_000), 2_700);
        // Another run's record, an id never sent, a record without a stamp.
        t.seen(
            Some(Stamp {
                id: 1,
                ts_us: 1_000,
                run: Some(2),
            }),
            2_000,
        );
        t.seen(stamp(10, 1_000), 2_000);
        t.seen(None, 2_000);
        let m = t.matched();
        assert_eq!(m.records_put, 8);
        assert_eq!(m.records_processed, 5);
        assert_eq!(m.records_lost, 3);
        assert_eq!(m.duplicates, 3);
        assert_eq!(m.foreign_records, 3);
        assert_eq!(m.latency.samples, 5);
        assert_eq!(m.processed_window_us, 1_000);
    }

    #[test]
    fn a_record_seen_before_its_acknowledgement_is_not_lost() {
        let mut t = Tracker::new(1).unwrap();
        t.sending(0, 2, 0);
        t.seen(stamp(0, 0), 500);
        assert_eq!(t.missing(), 0);
        t.acked(0);
        t.acked(1);
        assert_eq!(t.missing(), 1);
        t.seen(stamp(1, 0), 900);
        assert_eq!(t.missing(), 0);
        // A stamp without `run` (a transform dropped it) is taken as this run's.
        t.sending(2, 1, 1_000);
        t.acked(2);
        t.seen(
            Some(Stamp {
                id: 2,
                ts_us: 1_000,
                run: None,
            }),
            1_100,
        );
        let m = t.matched();
        assert_eq!(
            (m.records_put, m.records_processed, m.records_lost),
            (3, 3, 0)
        );
        assert_eq!(m.duplicates, 0);
    }

    #[test]
    fn percentiles_come_from_first_sightings() {
        let mut t = Tracker::new(1).unwrap();
        t.sending(0, 1000, 0);
        // Latencies 1 ms, 2 ms, ... 1000 ms; duplicates (much later) must not count.
        for id in 0..1000 {
            t.acked(id);
            t.seen(stamp(id, 0), (id + 1) * 1_000);
        }
        for id in 0..100 {
            t.seen(stamp(id, 0), 5_000_000);
        }
        let m = t.matched();
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        assert!(near(m.latency.p50_ms, 500.0), "{:?}", m.latency);
        assert!(near(m.latency.p90_ms, 900.0), "{:?}", m.latency);
        assert!(near(m.latency.p99_ms, 990.0), "{:?}", m.latency);
        assert!(near(m.latency.p999_ms, 999.0), "{:?}", m.latency);
        assert!(near(m.latency.max_ms, 1000.0), "{:?}", m.latency);
        assert_eq!(m.latency.samples, 1000);
        assert_eq!(m.duplicates, 100);
        assert_eq!(m.processed_window_us, 1_000_000);
        assert_eq!(m.last_output_us, Some(1_000_000));
    }
}
