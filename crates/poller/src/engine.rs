//! The poller: a supervisor task that opens the mapping's `StreamConsumer` and hands each
//! leased shard to a shard task; see the crate documentation for what a shard task does.
//!
//! Checkpoints: a shard task commits after every round (the records it took from its buffer,
//! split into lanes and batches, all delivered or given up on), at the round's last record,
//! or at the last read position when the buffer is empty (so records dropped by the filters
//! are passed too). A crash redelivers at most the round in flight. Tumbling-window state is
//! committed in the same transaction as the checkpoint.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use sluice_streams::{
    hash_key_of, Checkpoint, Checkpointer, ConsumeError, ConsumerName, InitialPosition, OnTrimmed,
    ReaderOptions, SequenceNumber, ShardBatch, ShardCheckpoint, ShardId, ShardLease, StateWrite,
    StreamConsumer, StreamConsumerOptions, Streams,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::failure::{Condition, FailureSinks, ResponseContext};
use crate::limits;
use crate::spec::{PollerSpec, StartingPosition};
use crate::target::{Batch, Outcome, Record, Target, Window};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollerState {
    Running,
    Stopped,
    /// It cannot read now (the stream is missing...): why. It keeps trying.
    Failing(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollerStatus {
    pub state: PollerState,
    /// Lambda's LastProcessingResult: `No records processed`, `OK`, `PROBLEM: ...`.
    pub last_processing_result: String,
}

/// A running mapping. Dropping it without [`Poller::stop`] aborts its tasks.
pub struct Poller {
    spec: PollerSpec,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    status: Arc<Mutex<PollerStatus>>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("uuid", &self.spec.uuid)
            .finish_non_exhaustive()
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

struct Ctx {
    streams: Arc<Streams>,
    spec: PollerSpec,
    target: Arc<dyn Target>,
    sinks: Arc<FailureSinks>,
    status: Arc<Mutex<PollerStatus>>,
    stop: watch::Receiver<bool>,
    metrics: Metrics,
}

/// Lambda's event-source-mapping metrics (CloudWatch names in snake case), label `mapping`.
struct Metrics {
    iterator_age: metrics::Gauge,
    polled: metrics::Counter,
    filtered_out: metrics::Counter,
    invoked: metrics::Counter,
    failed_invoke: metrics::Counter,
    dropped: metrics::Counter,
    on_failure_delivered: metrics::Counter,
}

impl Metrics {
    fn new(mapping: &str) -> Metrics {
        let l = || [("mapping", mapping.to_string())];
        Metrics {
            iterator_age: metrics::gauge!("sluice_mapping_iterator_age_seconds", &l()),
            polled: metrics::counter!("sluice_mapping_polled_event_count_total", &l()),
            filtered_out: metrics::counter!("sluice_mapping_filtered_out_event_count_total", &l()),
            invoked: metrics::counter!("sluice_mapping_invoked_event_count_total", &l()),
            failed_invoke: metrics::counter!(
                "sluice_mapping_failed_invoke_event_count_total",
                &l()
            ),
            dropped: metrics::counter!("sluice_mapping_dropped_event_count_total", &l()),
            on_failure_delivered: metrics::counter!(
                "sluice_mapping_on_failure_destination_delivered_event_count_total",
                &l()
            ),
        }
    }
}

impl Ctx {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    async fn wait_stop(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
    }

    /// Sleeps `ms`, or less if stopped; true when stopped.
    async fn pause(&self, ms: u64) -> bool {
        tokio::select! {
            _ = self.wait_stop() => true,
            _ = tokio::time::sleep(Duration::from_millis(ms)) => self.stopped(),
        }
    }

    fn set_status(&self, f: impl FnOnce(&mut PollerStatus)) {
        f(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn problem(&self, what: &str) {
        self.set_status(|s| {
            s.last_processing_result = format!("PROBLEM: {what}");
        });
    }

    fn now_ms(&self) -> i64 {
        self.streams.now_ms()
    }
}

impl Poller {
    /// Starts polling (needs a tokio runtime). Checkpoints live under `spec.consumer`: a
    /// poller started again under the same name resumes where the last one committed.
    pub fn start(
        streams: Arc<Streams>,
        spec: PollerSpec,
        target: Arc<dyn Target>,
        sinks: Arc<FailureSinks>,
    ) -> Poller {
        let (stop, stop_rx) = watch::channel(false);
        let status = Arc::new(Mutex::new(PollerStatus {
            state: PollerState::Running,
            last_processing_result: "No records processed".into(),
        }));
        let ctx = Arc::new(Ctx {
            streams,
            metrics: Metrics::new(&spec.uuid),
            spec: spec.clone(),
            target,
            sinks,
            status: status.clone(),
            stop: stop_rx,
        });
        let task = tokio::spawn(supervise(ctx));
        Poller {
            spec,
            stop,
            task: Some(task),
            status,
        }
    }

    pub fn spec(&self) -> &PollerSpec {
        &self.spec
    }

    pub fn status(&self) -> PollerStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops reading and waits for the shard tasks: each finishes the invocation in flight
    /// (retries and back-off are cut short; what is not finished is not checkpointed and is
    /// delivered again by the next poller of the mapping).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .state = PollerState::Stopped;
    }

    /// Removes a deleted mapping's checkpoints and state (blocking).
    pub fn forget(streams: &Streams, consumer: &ConsumerName) {
        if let Err(e) = streams.delete_checkpoints(consumer) {
            tracing::warn!(consumer = %consumer, error = %e, "could not remove a mapping's checkpoints");
        }
    }
}

/// Opens the consumer (again, after failures) and runs a shard task per lease.
async fn supervise(ctx: Arc<Ctx>) {
    let mut backoff = Backoff::new(200, 5_000);
    let spec = &ctx.spec;
    let factor = if spec.tumbling_window_s > 0 {
        1
    } else {
        spec.parallelization_factor.max(1)
    };
    let options = StreamConsumerOptions {
        initial_position: match spec.starting_position {
            StartingPosition::TrimHorizon => InitialPosition::TrimHorizon,
            StartingPosition::Latest => InitialPosition::Latest,
            StartingPosition::AtTimestamp(ms) => InitialPosition::AtTimestamp(ms),
        },
        reader: ReaderOptions {
            batch_records_max: (spec.batch_size.max(1) * factor) as usize,
            batch_bytes_max: limits::PAYLOAD_BYTES_MAX,
            // Records that expired before they were read are gone, as on AWS.
            on_trimmed: OnTrimmed::Skip,
        },
    };
    let mut logged = false;
    while !ctx.stopped() {
        let consumer = tokio::select! {
            _ = ctx.wait_stop() => break,
            c = StreamConsumer::open(ctx.streams.clone(), Some(spec.consumer.clone()), &spec.stream, options) => c,
        };
        let consumer = match consumer {
            Ok(c) => c,
            Err(e) => {
                if !logged {
                    tracing::warn!(mapping = %spec.uuid, stream = %spec.stream, error = %e, "cannot read the event source; retrying");
                    logged = true;
                }
                let what = describe(&e);
                ctx.set_status(|s| s.state = PollerState::Failing(what.clone()));
                ctx.problem(&what);
                if ctx.pause(backoff.next()).await {
                    break;
                }
                continue;
            }
        };
        if logged {
            tracing::info!(mapping = %spec.uuid, stream = %spec.stream, "reading the event source");
            logged = false;
        }
        ctx.set_status(|s| s.state = PollerState::Running);
        backoff.reset();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let failed = loop {
            tokio::select! {
                _ = ctx.wait_stop() => break None,
                lease = consumer.next_lease() => match lease {
                    Ok(lease) => {
                        let (ctx, cp) = (ctx.clone(), consumer.checkpointer());
                        tasks.spawn(async move {
                            let shard = lease.shard_id();
                            if let Err(e) = shard_task(&ctx, cp, lease).await {
                                tracing::warn!(mapping = %ctx.spec.uuid, shard = %shard, error = %e, "shard reader stopped; it will start again");
                                ctx.problem(&describe(&e));
                                // Keep a failing shard from spinning.
                                ctx.pause(1_000).await;
                            }
                        });
                    }
                    Err(e) => break Some(e),
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        };
        while tasks.join_next().await.is_some() {}
        drop(consumer);
        if let Some(e) = failed {
            tracing::warn!(mapping = %spec.uuid, stream = %spec.stream, error = %e, "the event source is gone; retrying");
            let what = describe(&e);
            ctx.set_status(|s| s.state = PollerState::Failing(what.clone()));
            ctx.problem(&what);
            logged = true;
            if ctx.pause(backoff.next()).await {
                break;
            }
        }
    }
}

fn describe(e: &ConsumeError) -> String {
    match e {
        ConsumeError::StreamDeleted { stream } => format!("Stream {stream} does not exist."),
        ConsumeError::Streams(sluice_streams::StreamsError::StreamNotFound { .. }) => {
            "The event source stream does not exist.".into()
        }
        e => e.to_string(),
    }
}

/// Growing waits between attempts.
struct Backoff {
    first: u64,
    max: u64,
    next: u64,
}

impl Backoff {
    fn new(first: u64, max: u64) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    fn next(&mut self) -> u64 {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }

    fn reset(&mut self) {
        self.next = self.first;
    }
}

/// A shard's records read but not processed yet.
struct Buffer {
    records: VecDeque<Record>,
    /// The continuation of the last read: every record up to it is in `records` or done.
    read_upto: Option<SequenceNumber>,
    ended: bool,
}

impl Buffer {
    fn push(&mut self, batch: ShardBatch, m: &Metrics) {
        m.polled.increment(batch.records.len() as u64);
        for (seq, r) in batch.records {
            self.records.push_back(Record {
                sequence_number: seq,
                partition_key: String::from_utf8_lossy(&r.partition_key).into_owned(),
                data: r.data,
                arrival_ms: r.arrival_ms,
            });
        }
        self.read_upto = Some(batch.continuation);
        if batch.end.is_some() {
            self.ended = true;
        }
    }
}

/// The event bytes a record adds to an invocation (base64 data, key, sequence number and
/// Lambda's fixed members).
fn event_bytes(r: &Record) -> usize {
    r.data.len().div_ceil(3) * 4 + r.partition_key.len() * 2 + 420
}

const WINDOW_STATE_KEY_PREFIX: &str = "window/";

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredWindow {
    start_ms: i64,
    state: Value,
}

/// What a shard task knows of its tumbling window.
struct OpenWindow {
    start_ms: i64,
    state: Value,
}

/// Reads one shard to its end (or until stopped), delivering round after round. Whatever
/// ends it, the last checkpoint is durable when it returns.
async fn shard_task(
    ctx: &Arc<Ctx>,
    checkpointer: Checkpointer,
    lease: ShardLease,
) -> Result<(), ConsumeError> {
    let mut commits = Commits {
        checkpointer,
        behind: None,
    };
    let result = rounds(ctx, &mut commits, lease).await;
    let flushed = commits.flush().await;
    result.and(flushed)
}

/// A shard task's checkpoint commits, in order. A round's checkpoint is committed while the
/// next round runs (the task waits for it before the next commit, and at its end): a crash
/// before it is durable delivers that round again, as a crash before an awaited commit would.
/// Commits with consumer state (tumbling windows) are awaited.
struct Commits {
    checkpointer: Checkpointer,
    behind: Option<tokio::task::JoinHandle<Result<(), ConsumeError>>>,
}

impl Commits {
    /// Waits for the commit running behind, if any.
    async fn flush(&mut self) -> Result<(), ConsumeError> {
        match self.behind.take() {
            None => Ok(()),
            Some(task) => task.await.map_err(|e| ConsumeError::Task(e.to_string()))?,
        }
    }

    async fn commit(
        &mut self,
        shard_id: &ShardId,
        buf: &Buffer,
        last: Option<SequenceNumber>,
        state: Vec<StateWrite>,
    ) -> Result<(), ConsumeError> {
        self.flush().await?;
        let checkpoints = checkpoints(shard_id, buf, last);
        if checkpoints.is_empty() && state.is_empty() {
            return Ok(());
        }
        self.checkpointer.commit(checkpoints, state).await
    }

    /// Starts a round's checkpoint commit, to run while the next round does.
    async fn commit_behind(
        &mut self,
        shard_id: &ShardId,
        buf: &Buffer,
        last: Option<SequenceNumber>,
    ) -> Result<(), ConsumeError> {
        self.flush().await?;
        let checkpoints = checkpoints(shard_id, buf, last);
        if checkpoints.is_empty() {
            return Ok(());
        }
        let checkpointer = self.checkpointer.clone();
        self.behind = Some(tokio::spawn(async move {
            checkpointer.commit(checkpoints, Vec::new()).await
        }));
        Ok(())
    }
}

async fn rounds(
    ctx: &Arc<Ctx>,
    commits: &mut Commits,
    mut lease: ShardLease,
) -> Result<(), ConsumeError> {
    let spec = &ctx.spec;
    let shard_id = lease.shard_id();
    let shard_name = shard_id.to_string();
    let window_len_ms = i64::from(spec.tumbling_window_s) * 1000;
    let window_key = format!("{WINDOW_STATE_KEY_PREFIX}{}", shard_id.0);
    let mut open_window: Option<OpenWindow> = None;
    if window_len_ms > 0 {
        let (s, c, k) = (
            ctx.streams.clone(),
            spec.consumer.clone(),
            window_key.clone(),
        );
        let stored = tokio::task::spawn_blocking(move || s.consumer_state(&c, &k))
            .await
            .map_err(|e| ConsumeError::Task(e.to_string()))??;
        if let Some(bytes) = stored {
            if let Ok(w) = serde_json::from_slice::<StoredWindow>(&bytes) {
                open_window = Some(OpenWindow {
                    start_ms: w.start_ms,
                    state: w.state,
                });
            }
        }
    }
    let factor = if window_len_ms > 0 {
        1
    } else {
        spec.parallelization_factor.max(1) as usize
    };
    let batch_size = spec.batch_size.max(1) as usize;
    let round_max = batch_size * factor;
    let mut buf = Buffer {
        records: VecDeque::new(),
        read_upto: None,
        ended: false,
    };
    loop {
        if ctx.stopped() {
            return Ok(());
        }
        // 1. Wait for records (or, with a window open, for its end).
        if buf.records.is_empty() && !buf.ended {
            ctx.metrics.iterator_age.set(0.0);
            let window_due = open_window
                .as_ref()
                .map(|w| (w.start_ms + window_len_ms - ctx.now_ms()).max(0) as u64);
            tokio::select! {
                _ = ctx.wait_stop() => return Ok(()),
                b = lease.next_batch() => match b? {
                    Some(b) => buf.push(b, &ctx.metrics),
                    None => buf.ended = true,
                },
                _ = tokio::time::sleep(Duration::from_millis(window_due.unwrap_or(0))), if window_due.is_some() => {
                    // The window is over and nothing else came: its final invocation.
                    if let Some(w) = open_window.take() {
                        if final_invoke(ctx, &shard_id, &shard_name, w, window_len_ms, false).await.is_none() {
                            return Ok(());
                        }
                        commits.commit(&shard_id, &buf, None, vec![StateWrite::Delete { key: window_key.clone() }]).await?;
                    }
                    continue;
                }
            }
        }
        // 2. The batching window: wait for more until the round is full or the window ends.
        if spec.batching_window_ms > 0 && !buf.ended && buf.records.len() < round_max {
            let deadline =
                tokio::time::Instant::now() + Duration::from_millis(spec.batching_window_ms);
            while !buf.ended && buf.records.len() < round_max {
                tokio::select! {
                    _ = ctx.wait_stop() => return Ok(()),
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = lease.reader().wait() => {
                        match lease.reader().read_now().await? {
                            Some(b) => buf.push(b, &ctx.metrics),
                            None => buf.ended = true,
                        }
                    }
                }
            }
        }
        // 3. The shard is done.
        if buf.records.is_empty() && buf.ended {
            let mut writes = Vec::new();
            if let Some(w) = open_window.take() {
                if final_invoke(ctx, &shard_id, &shard_name, w, window_len_ms, false)
                    .await
                    .is_none()
                {
                    return Ok(());
                }
                writes.push(StateWrite::Delete {
                    key: window_key.clone(),
                });
            }
            commits.commit(&shard_id, &buf, None, writes).await?;
            return Ok(());
        }
        if buf.records.is_empty() {
            continue;
        }
        // 4. A round.
        if window_len_ms > 0 {
            let first_window = window_start(buf.records[0].arrival_ms, window_len_ms);
            if let Some(w) = &open_window {
                if first_window > w.start_ms {
                    let Some(w) = open_window.take() else {
                        continue;
                    };
                    if final_invoke(ctx, &shard_id, &shard_name, w, window_len_ms, false)
                        .await
                        .is_none()
                    {
                        return Ok(());
                    }
                    commits
                        .commit(
                            &shard_id,
                            &buf,
                            None,
                            vec![StateWrite::Delete {
                                key: window_key.clone(),
                            }],
                        )
                        .await?;
                    continue;
                }
            }
            let start_ms = open_window.as_ref().map_or(first_window, |w| w.start_ms);
            // This window's records (arrival times are not strictly ordered: late ones join
            // the open window).
            let mut round = Vec::new();
            let mut bytes = 0;
            while let Some(r) = buf.records.front() {
                if window_start(r.arrival_ms, window_len_ms) > start_ms
                    || round.len() >= batch_size
                    || (!round.is_empty() && bytes + event_bytes(r) > limits::PAYLOAD_BYTES_MAX)
                {
                    break;
                }
                bytes += event_bytes(r);
                if let Some(r) = buf.records.pop_front() {
                    round.push(r);
                }
            }
            let last = round.last().map(|r| r.sequence_number);
            let kept = filter(ctx, round);
            let state = open_window
                .as_ref()
                .map_or_else(|| json!({}), |w| w.state.clone());
            let window = Window {
                start_ms,
                end_ms: start_ms + window_len_ms,
                state,
                is_final_invoke: false,
                terminated_early: false,
            };
            let state = if kept.is_empty() {
                Some(window.state.clone())
            } else {
                deliver(ctx, &shard_id, &shard_name, kept, Some(window))
                    .await
                    .map(|w| w.map_or_else(|| json!({}), |w| w.state))
            };
            let Some(mut state) = state else {
                return Ok(());
            };
            if serde_json::to_vec(&state).map_or(0, |v| v.len()) > limits::WINDOW_STATE_BYTES_MAX {
                // Past 1 MB the window ends early: a final invocation with what was built, then
                // the same window goes on with a fresh state.
                let w = OpenWindow { start_ms, state };
                if final_invoke(ctx, &shard_id, &shard_name, w, window_len_ms, true)
                    .await
                    .is_none()
                {
                    return Ok(());
                }
                state = json!({});
            }
            let stored = serde_json::to_vec(&StoredWindow {
                start_ms,
                state: state.clone(),
            })
            .unwrap_or_default();
            open_window = Some(OpenWindow { start_ms, state });
            commits
                .commit(
                    &shard_id,
                    &buf,
                    last,
                    vec![StateWrite::Put {
                        key: window_key.clone(),
                        value: stored,
                    }],
                )
                .await?;
            continue;
        }
        let mut round = Vec::with_capacity(round_max.min(buf.records.len()));
        while round.len() < round_max {
            match buf.records.pop_front() {
                Some(r) => round.push(r),
                None => break,
            }
        }
        let last = round.last().map(|r| r.sequence_number);
        let kept = filter(ctx, round);
        if !kept.is_empty() && !deliver_round(ctx, &shard_id, &shard_name, kept, factor).await {
            return Ok(());
        }
        commits.commit_behind(&shard_id, &buf, last).await?;
    }
}

/// The start of the tumbling window `arrival_ms` falls in.
fn window_start(arrival_ms: i64, len_ms: i64) -> i64 {
    arrival_ms - arrival_ms.rem_euclid(len_ms)
}

/// The shard's checkpoint: at the last read position when the buffer is empty (with the
/// shard finished if it ended), else at `last` (the round's last record).
fn checkpoints(
    shard_id: &ShardId,
    buf: &Buffer,
    last: Option<SequenceNumber>,
) -> Vec<ShardCheckpoint> {
    let at = if buf.records.is_empty() {
        buf.read_upto.map(|s| (s, buf.ended))
    } else {
        match last {
            Some(s) => Some((s, false)),
            // Just before the next unprocessed record.
            None => buf
                .records
                .front()
                .and_then(|next| previous(next.sequence_number))
                .map(|s| (s, false)),
        }
    };
    at.map(|(sequence_number, finished)| ShardCheckpoint {
        shard_id: *shard_id,
        checkpoint: Checkpoint {
            sequence_number,
            finished,
        },
    })
    .into_iter()
    .collect()
}

/// The point just before `seq` (reading after it reads `seq` first).
fn previous(seq: SequenceNumber) -> Option<SequenceNumber> {
    Some(SequenceNumber {
        position: seq.position.checked_sub(1)?,
        ..seq
    })
}

/// The records the filters keep (all of them without filters).
fn filter(ctx: &Ctx, round: Vec<Record>) -> Vec<Record> {
    if ctx.spec.filters.is_empty() {
        return round;
    }
    let before = round.len();
    let kept: Vec<Record> = round
        .into_iter()
        .filter(|r| {
            let view = crate::filter::kinesis_record_view(
                &r.partition_key,
                &r.sequence_number.to_string(),
                r.arrival_ms,
                &r.data,
            );
            ctx.spec.filters.iter().any(|f| f.matches(&view))
        })
        .collect();
    ctx.metrics
        .filtered_out
        .increment((before - kept.len()) as u64);
    kept
}

/// Splits a round into lanes by partition key and each lane into batches; lanes run
/// concurrently, each lane's batches in order. False when stopped before the end.
async fn deliver_round(
    ctx: &Arc<Ctx>,
    shard_id: &ShardId,
    shard_name: &str,
    records: Vec<Record>,
    factor: usize,
) -> bool {
    let mut lanes: Vec<Vec<Record>> = vec![Vec::new(); factor];
    for r in records {
        let lane = if factor == 1 {
            0
        } else {
            (hash_key_of(r.partition_key.as_bytes()) % factor as u128) as usize
        };
        lanes[lane].push(r);
    }
    let batches = |lane: Vec<Record>| -> Vec<Vec<Record>> {
        let mut out: Vec<Vec<Record>> = Vec::new();
        let mut cur = Vec::new();
        let mut bytes = 0;
        for r in lane {
            let b = event_bytes(&r);
            if !cur.is_empty()
                && (cur.len() >= ctx.spec.batch_size as usize
                    || bytes + b > limits::PAYLOAD_BYTES_MAX)
            {
                out.push(std::mem::take(&mut cur));
                bytes = 0;
            }
            bytes += b;
            cur.push(r);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    };
    let lanes: Vec<Vec<Vec<Record>>> = lanes
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(batches)
        .collect();
    if lanes.len() == 1 {
        for batch in lanes.into_iter().flatten() {
            if deliver(ctx, shard_id, shard_name, batch, None)
                .await
                .is_none()
            {
                return false;
            }
        }
        return true;
    }
    let mut set = JoinSet::new();
    for lane in lanes {
        let (ctx, shard_id, shard_name) = (ctx.clone(), *shard_id, shard_name.to_string());
        set.spawn(async move {
            for batch in lane {
                if deliver(&ctx, &shard_id, &shard_name, batch, None)
                    .await
                    .is_none()
                {
                    return false;
                }
            }
            true
        });
    }
    let mut all = true;
    while let Some(done) = set.join_next().await {
        all &= done.unwrap_or(false);
    }
    all
}

/// The final invocation of a tumbling window (no records). `None` when stopped first.
async fn final_invoke(
    ctx: &Arc<Ctx>,
    shard_id: &ShardId,
    shard_name: &str,
    w: OpenWindow,
    len_ms: i64,
    terminated_early: bool,
) -> Option<()> {
    let window = Window {
        start_ms: w.start_ms,
        end_ms: w.start_ms + len_ms,
        state: w.state,
        is_final_invoke: true,
        terminated_early,
    };
    deliver(ctx, shard_id, shard_name, Vec::new(), Some(window))
        .await
        .map(|_| ())
}

/// A part of a batch still to deliver, with the attempts (retries) it has used.
struct Part {
    records: Vec<Record>,
    retries: u32,
}

/// Delivers one batch: retries, bisects, honours item failures and record age, and sends
/// what it gives up on to the on-failure destination. Returns the window as it ends (its
/// last state), or `None` when stopped before the end (nothing may be checkpointed then).
async fn deliver(
    ctx: &Arc<Ctx>,
    shard_id: &ShardId,
    shard_name: &str,
    records: Vec<Record>,
    mut window: Option<Window>,
) -> Option<Option<Window>> {
    let spec = &ctx.spec;
    // Bisecting isolates records; a window's state runs through its batches in order, so a
    // window's batch is not split.
    let bisect = spec.bisect_on_error && window.is_none();
    let mut work = vec![Part {
        records,
        retries: 0,
    }];
    while let Some(mut part) = work.pop() {
        let mut backoff =
            Backoff::new(limits::RETRY_BACKOFF_FIRST_MS, limits::RETRY_BACKOFF_MAX_MS);
        let mut last_response: Option<ResponseContext> = None;
        loop {
            if ctx.stopped() {
                return None;
            }
            // Records past their maximum age are given up on before any attempt.
            if let Some(max_age) = spec.maximum_record_age_ms {
                let oldest_allowed = ctx.now_ms().saturating_sub(max_age as i64);
                let expired = part
                    .records
                    .iter()
                    .take_while(|r| r.arrival_ms < oldest_allowed)
                    .count();
                if expired > 0 {
                    let gone: Vec<Record> = part.records.drain(..expired).collect();
                    give_up(
                        ctx,
                        shard_id,
                        shard_name,
                        gone,
                        Condition::RecordAgeExceeded,
                        part.retries + u32::from(last_response.is_some()),
                        last_response.clone(),
                        window.as_ref(),
                    )
                    .await?;
                    if part.records.is_empty() {
                        break;
                    }
                }
            }
            let batch = Batch {
                shard_id: *shard_id,
                shard_name: shard_name.to_string(),
                stream_arn: spec.stream_arn.clone(),
                records: part.records.clone(),
                window: window.clone(),
            };
            if let Some(last) = part.records.last() {
                let age_ms = (ctx.now_ms() - last.arrival_ms).max(0);
                ctx.metrics.iterator_age.set(age_ms as f64 / 1000.0);
            }
            let outcome = ctx.target.invoke(batch).await;
            let failed_response = match outcome {
                Outcome::Success {
                    item_failures,
                    state,
                    unreadable,
                } => {
                    ctx.metrics.invoked.increment(part.records.len() as u64);
                    // Within a window an answer must carry `state`; without it the invocation
                    // failed (Lambda's rule). A final invocation's answer is not looked at.
                    let missing_state = window
                        .as_ref()
                        .is_some_and(|w| !w.is_final_invoke && state.is_none());
                    if let (Some(w), Some(s)) = (window.as_mut(), state) {
                        if !w.is_final_invoke {
                            w.state = s;
                        }
                    }
                    if missing_state {
                        ResponseContext {
                            status_code: 200,
                            executed_version: "$LATEST".into(),
                            function_error: None,
                        }
                    } else {
                        if !spec.report_batch_item_failures
                            || (item_failures.is_empty() && !unreadable)
                        {
                            ctx.set_status(|s| s.last_processing_result = "OK".into());
                            break;
                        }
                        // ReportBatchItemFailures: retry from the lowest failed record; an
                        // unreadable answer, an empty identifier or one not in the batch fails
                        // the whole batch.
                        let lowest = if unreadable {
                            None
                        } else {
                            item_failures
                                .iter()
                                .map(|id| {
                                    id.as_deref().filter(|s| !s.is_empty()).and_then(|id| {
                                        part.records
                                            .iter()
                                            .position(|r| r.sequence_number.to_string() == id)
                                    })
                                })
                                .try_fold(usize::MAX, |acc, p| p.map(|p| acc.min(p)))
                        };
                        if let Some(lowest) = lowest {
                            part.records.drain(..lowest);
                        }
                        ResponseContext {
                            status_code: 200,
                            executed_version: "$LATEST".into(),
                            function_error: None,
                        }
                    }
                }
                Outcome::Failed {
                    status_code,
                    function_error,
                    executed_version,
                } => {
                    ctx.metrics
                        .failed_invoke
                        .increment(part.records.len().max(1) as u64);
                    ResponseContext {
                        status_code,
                        executed_version,
                        function_error: Some(function_error),
                    }
                }
                Outcome::NotInvoked { reason } => {
                    // Not an attempt: wait and try again (until the records are too old).
                    ctx.problem(&reason);
                    if ctx.pause(backoff.next()).await {
                        return None;
                    }
                    continue;
                }
            };
            ctx.problem("Function call failed");
            last_response = Some(failed_response);
            if bisect && part.records.len() > 1 {
                // Splitting does not use a retry.
                let second = part.records.split_off(part.records.len() / 2);
                work.push(Part {
                    records: second,
                    retries: part.retries,
                });
                work.push(Part {
                    records: std::mem::take(&mut part.records),
                    retries: part.retries,
                });
                break;
            }
            let may_retry = spec
                .maximum_retry_attempts
                .is_none_or(|max| part.retries < max);
            if !may_retry {
                let gone = std::mem::take(&mut part.records);
                give_up(
                    ctx,
                    shard_id,
                    shard_name,
                    gone,
                    Condition::RetryAttemptsExhausted,
                    part.retries + 1,
                    last_response.clone(),
                    window.as_ref(),
                )
                .await?;
                break;
            }
            part.retries += 1;
            if ctx.pause(backoff.next()).await {
                return None;
            }
        }
    }
    Some(window)
}

/// Sends a failure record for `records` to the on-failure destination (if any) and counts
/// them dropped. `None` when stopped while the destination was failing.
#[allow(clippy::too_many_arguments)]
async fn give_up(
    ctx: &Arc<Ctx>,
    shard_id: &ShardId,
    shard_name: &str,
    records: Vec<Record>,
    condition: Condition,
    invoke_count: u32,
    response: Option<ResponseContext>,
    window: Option<&Window>,
) -> Option<()> {
    if records.is_empty() {
        // A window's final invocation carries no records: nothing to report.
        return Some(());
    }
    ctx.metrics.dropped.increment(records.len() as u64);
    let spec = &ctx.spec;
    tracing::warn!(mapping = %spec.uuid, shard = shard_name, records = records.len(), condition = condition.as_str(), "giving up on a batch");
    let Some(dest) = &spec.on_failure else {
        return Some(());
    };
    let batch = Batch {
        shard_id: *shard_id,
        shard_name: shard_name.to_string(),
        stream_arn: spec.stream_arn.clone(),
        records,
        window: window.cloned(),
    };
    let record = crate::failure::failure_record(
        &ctx.target.arn(),
        condition,
        invoke_count,
        response.as_ref(),
        &batch,
        ctx.now_ms(),
    );
    let payload = match dest {
        crate::failure::FailureDestination::Bucket { .. } => ctx.target.payload(&batch),
        crate::failure::FailureDestination::Stream { .. } => None,
    };
    let mut backoff = Backoff::new(limits::RETRY_BACKOFF_FIRST_MS, limits::RETRY_BACKOFF_MAX_MS);
    for attempt in 1..=limits::FAILURE_DELIVERY_ATTEMPTS_MAX {
        match ctx
            .sinks
            .send(dest, &spec.uuid, shard_name, &record, payload.as_deref())
            .await
        {
            Ok(()) => {
                ctx.metrics
                    .on_failure_delivered
                    .increment(batch.records.len() as u64);
                return Some(());
            }
            Err(e) => {
                tracing::warn!(mapping = %spec.uuid, destination = dest.arn(), attempt, error = %e, "on-failure destination failed");
                if ctx.pause(backoff.next()).await {
                    return None;
                }
            }
        }
    }
    tracing::error!(mapping = %spec.uuid, destination = dest.arn(), "on-failure destination kept failing; the failure record is lost");
    metrics::counter!("sluice_mapping_on_failure_destination_errors_total", "mapping" => spec.uuid.clone()).increment(1);
    Some(())
}
