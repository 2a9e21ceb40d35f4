//! The poller against real streams in a temporary directory and scripted targets: ordering,
//! checkpoints across restarts, retries, bisect, item failures, record age, on-failure
//! destinations, parallelization, filters and tumbling windows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sluice_poller::{
    Batch, BoxFuture, FailureDestination, FailureSinks, Filter, Outcome, Poller, PollerSpec,
    StartingPosition, Target,
};
use sluice_streams::{
    ConsumerName, Record, ShardId, ShardStart, StreamMode, StreamName, StreamSpec, Streams,
    StreamsConfig,
};

const WAIT: Duration = Duration::from_secs(20);

struct ManualClock(AtomicI64);

impl sluice_streams::Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl ManualClock {
    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

struct Env {
    _dir: tempfile::TempDir,
    streams: Arc<Streams>,
    clock: Arc<ManualClock>,
    sinks: Arc<FailureSinks>,
    lake: std::path::PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(1_700_000_000_000)));
    let streams = Arc::new(Streams::open(StreamsConfig::new(dir.path()), clock.clone()).unwrap());
    let lake = dir.path().join("lake");
    let sinks = Arc::new(FailureSinks {
        streams: streams.clone(),
        lake: sluice_lake::Lake::local(lake.clone()),
    });
    Env {
        _dir: dir,
        streams,
        clock,
        sinks,
        lake,
    }
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

async fn put(s: &Streams, stream: &str, records: Vec<(String, Vec<u8>)>) {
    assert!(put_may(s, stream, records).await, "the put failed");
}

/// `k<i % keys>` / `{"key": .., "n": i}` records.
fn keyed(keys: u32, from: u32, count: u32) -> Vec<(String, Vec<u8>)> {
    (from..from + count)
        .map(|i| {
            let key = format!("k{}", i % keys);
            let data = json!({"key": key, "n": i}).to_string().into_bytes();
            (key, data)
        })
        .collect()
}

fn spec(uuid: &str, stream: &str) -> PollerSpec {
    let mut s = PollerSpec::new(
        uuid,
        ConsumerName::new(&format!("test/{uuid}")).unwrap(),
        stream,
        &format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}"),
    );
    s.starting_position = StartingPosition::TrimHorizon;
    s
}

/// One invocation as the target saw it.
#[derive(Debug, Clone)]
struct Call {
    shard: String,
    data: Vec<Value>,
    window: Option<sluice_poller::Window>,
    outcome: Outcome,
}

type Script = dyn Fn(&Batch, usize) -> Outcome + Send + Sync;

/// A target that answers by a script (given the batch and how many calls came before) and
/// remembers every call.
struct Scripted {
    calls: Mutex<Vec<Call>>,
    script: Box<Script>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    delay: Duration,
}

impl Scripted {
    fn new(script: impl Fn(&Batch, usize) -> Outcome + Send + Sync + 'static) -> Arc<Scripted> {
        Arc::new(Scripted {
            calls: Mutex::new(Vec::new()),
            script: Box::new(script),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            delay: Duration::ZERO,
        })
    }

    fn slow(
        delay: Duration,
        script: impl Fn(&Batch, usize) -> Outcome + Send + Sync + 'static,
    ) -> Arc<Scripted> {
        Arc::new(Scripted {
            calls: Mutex::new(Vec::new()),
            script: Box::new(script),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            delay,
        })
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The `n` of every record of every successful call, in call order.
    fn delivered(&self) -> Vec<u64> {
        self.calls()
            .iter()
            .filter(|c| ok(&c.outcome))
            .flat_map(|c| c.data.iter().map(|d| d["n"].as_u64().unwrap()))
            .collect()
    }

    async fn wait_for(&self, what: &str, f: impl Fn(&[Call]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if f(&self.calls()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; calls: {:?}",
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn success() -> Outcome {
    Outcome::Success {
        item_failures: Vec::new(),
        state: None,
        unreadable: false,
    }
}

fn failed() -> Outcome {
    Outcome::Failed {
        status_code: 200,
        function_error: "Unhandled".into(),
        executed_version: "$LATEST".into(),
    }
}

fn ok(o: &Outcome) -> bool {
    matches!(o, Outcome::Success { item_failures, unreadable: false, .. } if item_failures.is_empty())
}

impl Target for Scripted {
    fn invoke(&self, batch: Batch) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            let n = self.calls.lock().unwrap().len();
            let outcome = (self.script)(&batch, n);
            self.calls.lock().unwrap().push(Call {
                shard: batch.shard_name.clone(),
                data: batch
                    .records
                    .iter()
                    .map(|r| serde_json::from_slice(&r.data).unwrap_or(Value::Null))
                    .collect(),
                window: batch.window.clone(),
                outcome: outcome.clone(),
            });
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            outcome
        })
    }

    fn payload(&self, batch: &Batch) -> Option<Vec<u8>> {
        Some(format!("{{\"records\":{}}}", batch.records.len()).into_bytes())
    }

    fn arn(&self) -> String {
        "arn:aws:lambda:us-east-1:000000000000:function:scripted".into()
    }
}

fn has(batch: &Batch, n: u64) -> bool {
    batch
        .records
        .iter()
        .any(|r| serde_json::from_slice::<Value>(&r.data).unwrap()["n"].as_u64() == Some(n))
}

/// Every object under `dir`, parsed.
fn objects(dir: &std::path::Path) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let key = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((
                    key,
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_once_in_key_order_and_a_restart_resumes_from_the_checkpoint() {
    let e = env();
    create(&e.streams, "s", 2);
    put(&e.streams, "s", keyed(10, 0, 500)).await;
    let target = Scripted::new(|_, _| success());
    let mut sp = spec("m1", "s");
    sp.batch_size = 50;
    let poller = Poller::start(
        e.streams.clone(),
        sp.clone(),
        target.clone(),
        e.sinks.clone(),
    );
    target
        .wait_for("500 records", |c| {
            c.iter().map(|c| c.data.len()).sum::<usize>() >= 500
        })
        .await;
    // Settled: the last commit is made once the call returns.
    tokio::time::sleep(Duration::from_millis(200)).await;
    poller.stop().await;
    let calls = target.calls();
    assert!(calls
        .iter()
        .all(|c| c.data.len() <= 50 && !c.data.is_empty()));
    let shards: std::collections::BTreeSet<_> = calls.iter().map(|c| c.shard.clone()).collect();
    assert_eq!(shards.len(), 2, "both shards are read");
    let delivered = target.delivered();
    assert_eq!(delivered.len(), 500, "each record exactly once");
    let mut per_key: HashMap<u64, Vec<u64>> = HashMap::new();
    for n in &delivered {
        per_key.entry(n % 10).or_default().push(*n);
    }
    for (k, ns) in per_key {
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "key {k} out of order: {ns:?}"
        );
    }

    // Started again under the same name: only what came after.
    put(&e.streams, "s", keyed(10, 500, 100)).await;
    let again = Scripted::new(|_, _| success());
    let poller = Poller::start(e.streams.clone(), sp, again.clone(), e.sinks.clone());
    again
        .wait_for("100 more", |c| {
            c.iter().map(|c| c.data.len()).sum::<usize>() >= 100
        })
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    poller.stop().await;
    let mut got = again.delivered();
    got.sort();
    assert_eq!(got, (500..600).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_starts_at_the_end_and_the_batching_window_fills_batches() {
    let e = env();
    create(&e.streams, "s", 1);
    put(&e.streams, "s", keyed(1, 0, 10)).await;
    let target = Scripted::new(|_, _| success());
    let mut sp = spec("m2", "s");
    sp.starting_position = StartingPosition::Latest;
    sp.batching_window_ms = 400;
    sp.batch_size = 1000;
    let poller = Poller::start(e.streams.clone(), sp, target.clone(), e.sinks.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        put(&e.streams, "s", keyed(1, 10 + i * 4, 4)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    target
        .wait_for("20 records", |c| {
            c.iter().map(|c| c.data.len()).sum::<usize>() >= 20
        })
        .await;
    poller.stop().await;
    let delivered = target.delivered();
    assert_eq!(
        delivered,
        (10..30).collect::<Vec<_>>(),
        "LATEST skips what was there"
    );
    assert!(
        target.calls().len() <= 2,
        "a 400 ms window gathers the five puts: {} calls",
        target.calls().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisect_isolates_a_bad_record_and_its_failure_record_lands_in_the_bucket() {
    let e = env();
    create(&e.streams, "s", 1);
    put(&e.streams, "s", keyed(3, 0, 16)).await;
    // Record 11 always fails.
    let target = Scripted::new(|b, _| if has(b, 11) { failed() } else { success() });
    let mut sp = spec("m3", "s");
    sp.batch_size = 16;
    sp.bisect_on_error = true;
    sp.maximum_retry_attempts = Some(2);
    sp.on_failure = Some(FailureDestination::Bucket {
        arn: "arn:aws:s3:::failures".into(),
        bucket: "failures".into(),
    });
    let poller = Poller::start(e.streams.clone(), sp, target.clone(), e.sinks.clone());
    target
        .wait_for("the batch after the bad record", |c| {
            c.iter()
                .filter(|c| c.data.len() == 1 && c.data[0]["n"] == 11)
                .count()
                >= 3
        })
        .await;
    put(&e.streams, "s", keyed(3, 16, 4)).await;
    target
        .wait_for("records after the failure", |c| {
            c.iter()
                .any(|c| c.data.iter().any(|d| d["n"] == 19) && ok(&c.outcome))
        })
        .await;
    poller.stop().await;
    let mut good = target.delivered();
    good.sort();
    good.dedup();
    let expected: Vec<u64> = (0..20).filter(|n| *n != 11).collect();
    assert_eq!(good, expected, "every good record is processed");
    // The bad record alone: the first attempt plus two retries.
    let alone = target
        .calls()
        .iter()
        .filter(|c| c.data.len() == 1 && c.data[0]["n"] == 11)
        .count();
    assert_eq!(alone, 3);
    let objs = objects(&e.lake.join("failures"));
    assert_eq!(objs.len(), 1, "{objs:?}");
    let (key, rec) = &objs[0];
    assert!(
        key.starts_with("aws/lambda/m3/shardId-000000000000/"),
        "{key}"
    );
    assert_eq!(rec["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(rec["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(
        rec["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:scripted"
    );
    assert_eq!(rec["responseContext"]["functionError"], "Unhandled");
    assert_eq!(rec["responseContext"]["statusCode"], 200);
    assert_eq!(rec["version"], "1.0");
    let info = &rec["KinesisBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["shardId"], "shardId-000000000000");
    assert_eq!(info["startSequenceNumber"], info["endSequenceNumber"]);
    assert_eq!(
        info["streamArn"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/s"
    );
    assert!(info["approximateArrivalOfFirstRecord"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(rec["payload"], "{\"records\":1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded_without_bisect_and_not_invoked_is_not_an_attempt() {
    let e = env();
    create(&e.streams, "s", 1);
    create(&e.streams, "dlq", 1);
    put(&e.streams, "s", keyed(1, 0, 4)).await;
    // Three throttles, then a function error every time.
    let target = Scripted::new(|_, n| {
        if n < 3 {
            Outcome::NotInvoked {
                reason: "throttled".into(),
            }
        } else {
            failed()
        }
    });
    let mut sp = spec("m4", "s");
    sp.maximum_retry_attempts = Some(1);
    sp.on_failure = Some(FailureDestination::Stream {
        arn: "arn:aws:kinesis:us-east-1:000000000000:stream/dlq".into(),
        stream: "dlq".into(),
    });
    let poller = Poller::start(e.streams.clone(), sp, target.clone(), e.sinks.clone());
    put(&e.streams, "s", vec![]).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let record = loop {
        let cursor = e
            .streams
            .cursor("dlq", ShardId(0), ShardStart::TrimHorizon)
            .unwrap();
        let read = e.streams.read(&cursor, 10, 1 << 20, false).unwrap();
        if let Some((_, r)) = read.records.first() {
            break serde_json::from_slice::<Value>(&r.data).unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "no failure record");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    poller.stop().await;
    let calls = target.calls();
    assert_eq!(calls.len(), 5, "3 throttles, the attempt and one retry");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(record["KinesisBatchInfo"]["batchSize"], 4);
    assert!(record.get("payload").is_none(), "streams get no payload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_batch_item_failures_retries_from_the_lowest_failed_record() {
    let e = env();
    create(&e.streams, "s", 1);
    put(&e.streams, "s", keyed(1, 0, 10)).await;
    let seqs: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();
    let seen = seqs.clone();
    // First call: records 6 and 4 fail (reported out of order); second call: an empty
    // identifier (the whole batch fails); then success.
    let target = Scripted::new(move |b, n| {
        for r in &b.records {
            let v: Value = serde_json::from_slice(&r.data).unwrap();
            seen.lock()
                .unwrap()
                .insert(v["n"].as_u64().unwrap(), r.sequence_number.to_string());
        }
        let id = |k: u64| seen.lock().unwrap().get(&k).cloned();
        match n {
            0 => Outcome::Success {
                item_failures: vec![id(6), id(4)],
                state: None,
                unreadable: false,
            },
            1 => Outcome::Success {
                item_failures: vec![Some(String::new())],
                state: None,
                unreadable: false,
            },
            _ => success(),
        }
    });
    let mut sp = spec("m5", "s");
    sp.report_batch_item_failures = true;
    let poller = Poller::start(e.streams.clone(), sp, target.clone(), e.sinks.clone());
    target.wait_for("three calls", |c| c.len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    poller.stop().await;
    let calls = target.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    let ns = |c: &Call| -> Vec<u64> { c.data.iter().map(|d| d["n"].as_u64().unwrap()).collect() };
    assert_eq!(ns(&calls[0]), (0..10).collect::<Vec<_>>());
    assert_eq!(
        ns(&calls[1]),
        (4..10).collect::<Vec<_>>(),
        "from the lowest failure"
    );
    assert_eq!(
        ns(&calls[2]),
        (4..10).collect::<Vec<_>>(),
        "an empty id fails it all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_past_their_maximum_age_go_to_the_destination_uninvoked() {
    let e = env();
    create(&e.streams, "s", 1);
    put(&e.streams, "s", keyed(1, 0, 3)).await;
    e.clock.advance(120_000);
    put(&e.streams, "s", keyed(1, 3, 2)).await;
    let target = Scripted::new(|_, _| success());
    let mut sp = spec("m6", "s");
    sp.maximum_record_age_ms = Some(60_000);
    sp.on_failure = Some(FailureDestination::Bucket {
        arn: "arn:aws:s3:::old".into(),
        bucket: "old".into(),
    });
    let poller = Poller::start(e.streams.clone(), sp, target.clone(), e.sinks.clone());
    target
        .wait_for("the young records", |c| !c.is_empty())
        .await;
    poller.stop().await;
    assert_eq!(target.delivered(), vec![3, 4]);
    let objs = objects(&e.lake.join("old"));
    assert_eq!(objs.len(), 1);
    assert_eq!(
        objs[0].1["requestContext"]["condition"],
        "RecordAgeExceeded"
    );
    assert_eq!(objs[0].1["requestContext"]["approximateInvokeCount"], 0);
    assert_eq!(objs[0].1["KinesisBatchInfo"]["batchSize"], 3);
    assert!(objs[0].1.get("responseContext").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallelization_runs_lanes_concurrently_and_keeps_each_keys_order() {
    let e = env();
    create(&e.streams, "s", 1);
    put(&e.streams, "s", keyed(40, 0, 2000)).await;
    let target = Scripted::slow(Duration::from_millis(5), |_, _| success());
    let mut sp = spec("m7", "s");
    sp.parallelization_factor = 10;
    sp.batch_size = 20;
    let poller = Poller::start(e.streams.clone(), sp, target.clone(), e.sinks.clone());
    target
        .wait_for("2000 records", |c| {
            c.iter().map(|c| c.data.len()).sum::<usize>() >= 2000
        })
        .await;
    poller.stop().await;
    let delivered = target.delivered();
    assert_eq!(delivered.len(), 2000);
    let mut per_key: HashMap<u64, Vec<u64>> = HashMap::new();
    for n in &delivered {
        per_key.entry(n % 40).or_default().push(*n);
    }
    for (k, ns) in per_key {
        assert!(ns.windows(2).all(|w| w[0] < w[1]), "key {k} out of order");
    }
    assert!(
        target.most_in_flight.load(Ordering::SeqCst) > 1,
        "lanes run concurrently"
    );
    assert!(target.calls().iter().all(|c| c.data.len() <= 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_skip_unmatched_records_and_checkpoint_past_them() {
    let e = env();
    create(&e.streams, "s", 1);
    let records: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| {
            let kind = if i % 2 == 0 { "click" } else { "view" };
            (
                "k".to_string(),
                json!({"n": i, "kind": kind}).to_string().into_bytes(),
            )
        })
        .chain(std::iter::once(("k".to_string(), b"not json".to_vec())))
        .collect();
    put(&e.streams, "s", records).await;
    let target = Scripted::new(|_, _| success());
    let mut sp = spec("m8", "s");
    sp.filters = vec![Arc::new(
        Filter::parse(r#"{"data": {"kind": ["click"]}}"#).unwrap(),
    )];
    let poller = Poller::start(
        e.streams.clone(),
        sp.clone(),
        target.clone(),
        e.sinks.clone(),
    );
    target.wait_for("the clicks", |c| !c.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    poller.stop().await;
    assert_eq!(target.delivered(), vec![0, 2, 4, 6, 8]);
    // The checkpoint is past the unmatched tail: a new poller gets nothing.
    let again = Scripted::new(|_, _| success());
    let poller = Poller::start(e.streams.clone(), sp, again.clone(), e.sinks.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    poller.stop().await;
    assert!(again.calls().is_empty(), "{:?}", again.calls());
}

/// A windowed function that counts its window's records in its state (`{"total": n}`).
fn summing() -> Arc<Scripted> {
    Scripted::new(|b, _| {
        let w = b.window.as_ref().unwrap();
        let total =
            w.state.get("total").and_then(Value::as_u64).unwrap_or(0) + b.records.len() as u64;
        Outcome::Success {
            item_failures: Vec::new(),
            state: Some(json!({ "total": total })),
            unreadable: false,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tumbling_windows_carry_state_and_end_with_a_final_invocation() {
    let e = env();
    create(&e.streams, "s", 1);
    // Align the clock to a window start.
    let now = e.clock.0.load(Ordering::SeqCst);
    e.clock.advance(60_000 - now.rem_euclid(60_000));
    put(&e.streams, "s", keyed(1, 0, 3)).await;
    e.clock.advance(1_000);
    put(&e.streams, "s", keyed(1, 3, 2)).await;
    // The function sums in its state.
    let target = summing();
    let mut sp = spec("m9", "s");
    sp.tumbling_window_s = 60;
    sp.batch_size = 3;
    let poller = Poller::start(
        e.streams.clone(),
        sp.clone(),
        target.clone(),
        e.sinks.clone(),
    );
    target.wait_for("two batches", |c| c.len() >= 2).await;
    // The next window's record ends the first window.
    e.clock.advance(60_000);
    put(&e.streams, "s", keyed(1, 5, 1)).await;
    target
        .wait_for("the final call and the next window", |c| c.len() >= 4)
        .await;
    poller.stop().await;
    let calls = target.calls();
    let w0 = calls[0].window.clone().unwrap();
    assert_eq!(w0.end_ms - w0.start_ms, 60_000);
    assert_eq!(w0.state, json!({}));
    assert!(!w0.is_final_invoke);
    assert_eq!(calls[0].data.len(), 3);
    let w1 = calls[1].window.clone().unwrap();
    assert_eq!(w1.start_ms, w0.start_ms);
    assert_eq!(w1.state, json!({"total": 3}), "state carried");
    let fin = calls[2].window.clone().unwrap();
    assert!(fin.is_final_invoke);
    assert!(calls[2].data.is_empty());
    assert_eq!(fin.state, json!({"total": 5}));
    let next = calls[3].window.clone().unwrap();
    assert_eq!(next.start_ms, w0.start_ms + 60_000);
    assert_eq!(next.state, json!({}), "a new window starts empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_state_survives_a_restart() {
    let e = env();
    create(&e.streams, "s", 1);
    let now = e.clock.0.load(Ordering::SeqCst);
    e.clock.advance(60_000 - now.rem_euclid(60_000));
    put(&e.streams, "s", keyed(1, 0, 2)).await;
    let mut sp = spec("m10", "s");
    sp.tumbling_window_s = 60;
    let first = summing();
    let poller = Poller::start(
        e.streams.clone(),
        sp.clone(),
        first.clone(),
        e.sinks.clone(),
    );
    first.wait_for("a call", |c| !c.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    poller.stop().await;
    put(&e.streams, "s", keyed(1, 2, 1)).await;
    let second = summing();
    let poller = Poller::start(e.streams.clone(), sp, second.clone(), e.sinks.clone());
    second.wait_for("a call", |c| !c.is_empty()).await;
    poller.stop().await;
    let w = second.calls()[0].window.clone().unwrap();
    assert_eq!(
        w.state,
        json!({"total": 2}),
        "state from before the restart"
    );
    assert_eq!(second.delivered(), vec![2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resharded_stream_is_followed_parent_before_child() {
    let e = env();
    create(&e.streams, "s", 1);
    put(&e.streams, "s", keyed(20, 0, 300)).await;
    let target = Scripted::slow(Duration::from_millis(2), |_, _| success());
    let mut sp = spec("m11", "s");
    sp.batch_size = 25;
    let poller = Poller::start(e.streams.clone(), sp, target.clone(), e.sinks.clone());
    e.streams
        .reshard(
            "s",
            sluice_streams::Reshard::Split {
                shard: ShardId(0),
                new_starting_hash_key: 1 << 127,
            },
        )
        .unwrap();
    // Wait for the children to be ACTIVE (the reshard completes on the maintenance tick).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = e.streams.clone();
        tokio::task::spawn_blocking(move || s.tick()).await.unwrap();
        if put_may(&e.streams, "s", keyed(20, 300, 300)).await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the split did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    target
        .wait_for("600 records", |c| {
            c.iter().map(|c| c.data.len()).sum::<usize>() >= 600
        })
        .await;
    poller.stop().await;
    let calls = target.calls();
    let shards: std::collections::BTreeSet<_> = calls.iter().map(|c| c.shard.clone()).collect();
    assert_eq!(shards.len(), 3, "the parent and both children: {shards:?}");
    let delivered = target.delivered();
    assert_eq!(delivered.len(), 600);
    let mut per_key: HashMap<u64, Vec<u64>> = HashMap::new();
    for n in &delivered {
        per_key.entry(n % 20).or_default().push(*n);
    }
    for (k, ns) in per_key {
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "key {k} out of order across the split"
        );
    }
}

/// Puts if the stream takes writes now (false while it is UPDATING).
async fn put_may(s: &Streams, stream: &str, records: Vec<(String, Vec<u8>)>) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let records = records
        .into_iter()
        .map(|(key, data)| Record {
            partition_key: key.into_bytes().into(),
            explicit_hash_key: None,
            data: data.into(),
        })
        .collect();
    if s.put(stream, records, Box::new(move |o| drop(tx.send(o))))
        .is_err()
    {
        return false;
    }
    rx.await.unwrap().into_iter().all(|o| o.is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_a_window_an_answer_without_state_fails_and_a_huge_state_ends_it_early() {
    let e = env();
    create(&e.streams, "s", 1);
    let now = e.clock.0.load(Ordering::SeqCst);
    e.clock.advance(60_000 - now.rem_euclid(60_000));
    put(&e.streams, "s", keyed(1, 0, 1)).await;
    // First answer has no state (a failure, retried); the second a state over 1 MB.
    let big = "x".repeat(1_100_000);
    let target = Scripted::new(move |b, n| {
        let w = b.window.as_ref().unwrap();
        match n {
            0 => success(),
            _ if w.is_final_invoke => success(),
            _ => Outcome::Success {
                item_failures: Vec::new(),
                state: Some(json!({ "big": big })),
                unreadable: false,
            },
        }
    });
    let mut sp = spec("m12", "s");
    sp.tumbling_window_s = 60;
    let poller = Poller::start(e.streams.clone(), sp, target.clone(), e.sinks.clone());
    target.wait_for("the early end", |c| c.len() >= 3).await;
    poller.stop().await;
    let calls = target.calls();
    assert_eq!(calls[0].data.len(), 1);
    assert_eq!(calls[1].data.len(), 1, "retried: no state is a failure");
    let fin = calls[2].window.clone().unwrap();
    assert!(fin.is_final_invoke && fin.terminated_early);
    assert_eq!(fin.start_ms, calls[1].window.clone().unwrap().start_ms);
    assert!(calls[2].data.is_empty());
}
