//! The log's metrics, through a recording `metrics` recorder installed for this test binary:
//! the names exist, carry no labels, and move when they should.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use sluice_log::fault::{Errno, Fault, FaultRule, FaultStorage, Op, SyncPoint};
use sluice_log::{Log, LogConfig, Record, SystemClock};

#[derive(Default)]
struct Values {
    counter: AtomicU64,
    gauge: Mutex<f64>,
    gauge_max: Mutex<f64>,
    samples: Mutex<Vec<f64>>,
}

impl CounterFn for Values {
    fn increment(&self, value: u64) {
        self.counter.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.counter.fetch_max(value, Ordering::SeqCst);
    }
}

impl Values {
    fn set_gauge(&self, f: impl FnOnce(f64) -> f64) {
        let mut g = self.gauge.lock().unwrap();
        *g = f(*g);
        let mut max = self.gauge_max.lock().unwrap();
        *max = max.max(*g);
    }
}

impl GaugeFn for Values {
    fn increment(&self, value: f64) {
        self.set_gauge(|g| g + value);
    }
    fn decrement(&self, value: f64) {
        self.set_gauge(|g| g - value);
    }
    fn set(&self, value: f64) {
        self.set_gauge(|_| value);
    }
}

impl HistogramFn for Values {
    fn record(&self, value: f64) {
        self.samples.lock().unwrap().push(value);
    }
}

#[derive(Default, Clone)]
struct Recording {
    metrics: Arc<Mutex<BTreeMap<String, Arc<Values>>>>,
    labelled: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    fn values(&self, key: &Key) -> Arc<Values> {
        if key.labels().next().is_some() {
            self.labelled.lock().unwrap().push(key.name().to_string());
        }
        self.metrics
            .lock()
            .unwrap()
            .entry(key.name().to_string())
            .or_default()
            .clone()
    }

    fn get(&self, name: &str) -> Arc<Values> {
        self.metrics
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("metric {name} was never recorded"))
    }
}

impl Recorder for Recording {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.values(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.values(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.values(key))
    }
}

fn rec(i: u64) -> Record {
    Record {
        partition_key: b"k".to_vec().into(),
        explicit_hash_key: None,
        data: vec![i as u8; 100].into(),
    }
}

#[test]
fn metrics_are_recorded_without_labels() {
    let recording = Recording::default();
    metrics::set_global_recorder(recording.clone()).expect("the only recorder of this binary");
    let storage = FaultStorage::new();
    let config = LogConfig {
        recovery_backoff_ms_min: 1,
        recovery_backoff_ms_max: 5,
        ..LogConfig::default()
    };
    let log = Log::open_with_storage(
        "/m/shard".as_ref(),
        config,
        Arc::new(SystemClock),
        Arc::new(storage.clone()),
    )
    .expect("open");
    log.append_blocking((0..3).map(rec).collect())
        .expect("append");
    log.append_blocking((3..5).map(rec).collect())
        .expect("append");

    let fsync = recording.get("sluice_log_fsync_seconds");
    assert_eq!(
        fsync.samples.lock().unwrap().len(),
        2,
        "one fsync per commit"
    );
    let records = recording.get("sluice_log_group_commit_records");
    assert_eq!(*records.samples.lock().unwrap(), vec![3.0, 2.0]);
    let bytes = recording.get("sluice_log_group_commit_bytes");
    let per_record = rec(0).frame_bytes() as f64;
    assert_eq!(
        *bytes.samples.lock().unwrap(),
        vec![3.0 * per_record, 2.0 * per_record]
    );
    let depth = recording.get("sluice_log_append_queue_depth");
    assert_eq!(*depth.gauge.lock().unwrap(), 0.0, "nothing queued now");
    assert_eq!(*depth.gauge_max.lock().unwrap(), 0.0);

    // Hold the writer inside an fsync while three more appends queue up: the depth reported
    // after that commit is 3, and 0 again once they are committed.
    let (inside_tx, inside_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let gate = Mutex::new(Some((inside_tx, go_rx)));
    storage.set_sync_hook(Some(Arc::new(move |_: &FaultStorage, _: &SyncPoint| {
        if let Some((inside, go)) = gate.lock().unwrap().take() {
            inside.send(()).unwrap();
            go.recv_timeout(Duration::from_secs(10)).unwrap();
        }
    })));
    let (done_tx, done_rx) = mpsc::channel();
    let append = |i: u64| {
        let done = done_tx.clone();
        log.append(
            vec![rec(i)],
            Box::new(move |r| done.send(r.is_ok()).unwrap()),
        );
    };
    append(10);
    inside_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    for i in 11..14 {
        append(i);
    }
    go_tx.send(()).unwrap();
    for _ in 0..4 {
        assert!(done_rx.recv_timeout(Duration::from_secs(10)).unwrap());
    }
    assert_eq!(*depth.gauge_max.lock().unwrap(), 3.0);
    // Reported before the commit's completions ran.
    assert_eq!(*depth.gauge.lock().unwrap(), 0.0, "depth back to 0");
    assert_eq!(
        records.samples.lock().unwrap()[2..],
        [1.0, 3.0],
        "the three queued appends formed one group commit"
    );

    storage.inject(FaultRule::new(Op::Write, Fault::Error(Errno::NoSpace)));
    assert!(log.append_blocking(vec![rec(5)]).is_err());
    assert_eq!(
        recording
            .get("sluice_log_no_space_total")
            .counter
            .load(Ordering::SeqCst),
        1
    );
    storage.inject(FaultRule::new(Op::Sync, Fault::Error(Errno::Eio)));
    assert!(log.append_blocking(vec![rec(6)]).is_err());
    assert_eq!(
        recording
            .get("sluice_log_poisoned_total")
            .counter
            .load(Ordering::SeqCst),
        1
    );
    drop(log);
    assert!(
        recording.labelled.lock().unwrap().is_empty(),
        "labelled metrics: {:?}",
        recording.labelled.lock().unwrap()
    );
}
