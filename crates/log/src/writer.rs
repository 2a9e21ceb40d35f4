//! The writer thread of one shard: group commit, and what happens when the disk fails.
//!
//! It takes the first waiting request, then everything else already queued (up to
//! `commit_bytes_max`), writes the whole batch with one `pwrite`, makes it durable with one
//! `fdatasync`, publishes the new end to readers and only then completes the requests. While
//! it waits on the disk, new requests queue up and form the next batch, so concurrent
//! appenders share fsyncs and throughput grows with concurrency while every acknowledged
//! record is on disk.
//!
//! Failures:
//! - **No space** (`ENOSPC` / `EDQUOT` on a write, a file creation or a rename): the batch's
//!   bytes that reached the file are cut off again (truncate to the batch's start, made durable
//!   with `fdatasync`), the batch's appends fail with [`LogError::NoSpace`], and nothing else
//!   changes: the next batch writes from the same position and succeeds once space is free.
//! - **Anything else** (a failed `fdatasync`/`fsync`, `EIO` on a write, a failed undo): the
//!   writer is poisoned. The batch fails with [`LogError::Poisoned`], and so does every batch
//!   until the writer has recovered ([`crate::log::recover`]: cut to the acknowledged end,
//!   write again what was acknowledged but never synced (interval policy), sync, reload from
//!   disk). The first recovery attempt is immediate; while attempts (or the
//!   commits after them) keep failing, the next waits `recovery_backoff_ms_min`, doubling up to
//!   `recovery_backoff_ms_max`. A successful commit resets the backoff. The writer wakes up for
//!   an attempt by itself, with or without appends waiting.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::SyncPolicy;
use crate::error::{Failure, LogError};
use crate::frame::{self, Record};
use crate::log::{self, AppendAck, Completion, LogHealth, Shared};
use crate::segment::{Segment, SEGMENT_HEADER_BYTES};
use crate::storage::{self, StorageFile};

pub(crate) struct Request {
    pub records: Vec<Record>,
    pub done: Completion,
}

/// Set while the writer is poisoned.
struct Poison {
    since_ms: i64,
    /// When the next recovery attempt is due.
    attempt_at: Instant,
}

struct Writer {
    shared: Arc<Shared>,
    buf: Vec<u8>,
    batch: Vec<Request>,
    /// Interval policy: when the first record not yet synced was written.
    dirty_since: Option<Instant>,
    poison: Option<Poison>,
    /// Poisonings and failed recoveries since the last successful commit: sets the backoff.
    failures_in_row: u32,
    /// What this writer last added to the `sluice_log_append_queue_depth` gauge.
    depth_reported: usize,
    /// (base offset of the active segment, position): how far the active segment was last
    /// synced successfully. Behind the acknowledged end only with the interval policy.
    synced: (u64, u64),
}

pub(crate) fn run(shared: Arc<Shared>, rx: Receiver<Request>) {
    let mut w = Writer {
        shared,
        buf: Vec::with_capacity(1 << 20),
        batch: Vec::new(),
        dirty_since: None,
        poison: None,
        failures_in_row: 0,
        depth_reported: 0,
        synced: (0, 0),
    };
    w.synced = w.acked_end();
    loop {
        let first = match w.deadline() {
            None => match rx.recv() {
                Ok(r) => r,
                Err(_) => break,
            },
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => {
                    w.on_timer();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        let mut bytes: usize = first.records.iter().map(Record::frame_bytes).sum();
        w.batch.push(first);
        while bytes < w.shared.config.commit_bytes_max {
            match rx.try_recv() {
                Ok(r) => {
                    bytes += r.records.iter().map(Record::frame_bytes).sum::<usize>();
                    w.batch.push(r);
                }
                Err(_) => break,
            }
        }
        w.taken(w.batch.len());
        w.handle_batch(bytes);
        if w.buf.capacity() > 64 << 20 {
            w.buf = Vec::with_capacity(1 << 20);
        }
    }
    if w.dirty_since.is_some() && w.poison.is_none() {
        w.sync_active();
    }
    metrics::gauge!("sluice_log_append_queue_depth").decrement(w.depth_reported as f64);
}

impl Writer {
    /// The next moment the writer must wake up without a request: a recovery attempt, or the
    /// interval policy's sync.
    fn deadline(&self) -> Option<Instant> {
        let recovery = self.poison.as_ref().map(|p| p.attempt_at);
        let sync = match (self.shared.config.sync, self.dirty_since) {
            (SyncPolicy::Interval { interval_ms }, Some(t)) => {
                Some(t + Duration::from_millis(interval_ms))
            }
            _ => None,
        };
        match (recovery, sync) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// (base offset, end position) of the active segment: the acknowledged end.
    fn acked_end(&self) -> (u64, u64) {
        let state = self.shared.read_state();
        (state.active.base_offset, state.active.end_position)
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.poison.as_ref().is_some_and(|p| p.attempt_at <= now) {
            self.try_recover();
        }
        if self.poison.is_none() && self.dirty_since.is_some() {
            if let SyncPolicy::Interval { interval_ms } = self.shared.config.sync {
                if self
                    .dirty_since
                    .is_some_and(|t| t.elapsed() >= Duration::from_millis(interval_ms))
                {
                    self.sync_active();
                }
            }
        }
    }

    /// Accounts requests taken off the queue.
    fn taken(&self, n: usize) {
        self.shared.queued.fetch_sub(n, Ordering::Relaxed);
    }

    /// Reports, once per batch after its commit and before its completions, the requests
    /// waiting now: what queued up
    /// while the batch was on disk (0 when the writer is idle). Each log adds its own share,
    /// so the gauge is the sum over the process's logs, with no per-shard label.
    fn report_depth(&mut self) {
        let depth = self.shared.queued.load(Ordering::Relaxed);
        let delta = depth as f64 - self.depth_reported as f64;
        metrics::gauge!("sluice_log_append_queue_depth").increment(delta);
        self.depth_reported = depth;
    }

    fn handle_batch(&mut self, bytes: usize) {
        if let Some(p) = &self.poison {
            if p.attempt_at <= Instant::now() {
                self.try_recover();
            }
        }
        if self.poison.is_some() {
            self.report_depth();
            self.fail_batch(|path| LogError::Poisoned { path });
            return;
        }
        let outcome = commit(&self.shared, &mut self.buf, &self.batch, bytes);
        // Before the completions run, so that a caller who sees its ack also sees the depth
        // this commit left behind.
        self.report_depth();
        match outcome {
            Ok(acks) => {
                self.failures_in_row = 0;
                self.healthy_again();
                match self.shared.config.sync {
                    SyncPolicy::Interval { .. } => {
                        self.dirty_since.get_or_insert_with(Instant::now);
                    }
                    SyncPolicy::GroupCommit => self.synced = self.acked_end(),
                }
                let end = self.shared.read_state().end_offset();
                if let Some(listener) = self
                    .shared
                    .listener
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_ref()
                {
                    listener(end);
                }
                for (r, ack) in self.batch.drain(..).zip(acks) {
                    (r.done)(Ok(ack));
                }
            }
            Err(f) if f.no_space => {
                self.no_space(&f.error);
                self.fail_batch(|path| LogError::NoSpace { path });
            }
            Err(f) => {
                self.poison(&f.error.to_string());
                self.fail_batch(|path| LogError::Poisoned { path });
            }
        }
    }

    fn fail_batch(&mut self, error: impl Fn(std::path::PathBuf) -> LogError) {
        for r in self.batch.drain(..) {
            (r.done)(Err(error(self.shared.dir.clone())));
        }
    }

    /// After a successful commit: leaves the no-space state, if in it.
    fn healthy_again(&self) {
        let mut health = self.shared.health();
        if let LogHealth::NoSpace { since_ms } = *health {
            *health = LogHealth::Healthy;
            drop(health);
            tracing::info!(dir = %self.shared.dir.display(), since_ms, "shard log has space again; appends succeed");
        }
    }

    fn no_space(&self, error: &LogError) {
        self.shared.no_space_total.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_log_no_space_total").increment(1);
        let mut health = self.shared.health();
        if !matches!(*health, LogHealth::NoSpace { .. }) {
            *health = LogHealth::NoSpace {
                since_ms: self.shared.clock.now_ms(),
            };
            drop(health);
            tracing::warn!(dir = %self.shared.dir.display(), %error, "shard log out of disk space; appends fail until space is free");
        }
    }

    /// The delay before the next recovery attempt: none after a first failure, then growing.
    fn backoff(&self) -> Duration {
        let config = &self.shared.config;
        if self.failures_in_row <= 1 {
            return Duration::ZERO;
        }
        let exp = (self.failures_in_row - 2).min(32);
        let ms = config
            .recovery_backoff_ms_min
            .saturating_mul(1u64 << exp)
            .min(config.recovery_backoff_ms_max);
        Duration::from_millis(ms)
    }

    fn poison(&mut self, reason: &str) {
        let since_ms = self.shared.clock.now_ms();
        self.shared.poisoned.store(true, Ordering::Release);
        self.shared.poisoned_total.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_log_poisoned_total").increment(1);
        self.shared.set_health(LogHealth::Poisoned {
            reason: reason.to_string(),
            since_ms,
        });
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        self.dirty_since = None;
        let backoff = self.backoff();
        tracing::error!(dir = %self.shared.dir.display(), error = reason, backoff_ms = backoff.as_millis() as u64, "shard log poisoned by an i/o error; recovering by itself");
        self.poison = Some(Poison {
            since_ms,
            attempt_at: Instant::now() + backoff,
        });
    }

    fn try_recover(&mut self) {
        let Some(since_ms) = self.poison.as_ref().map(|p| p.since_ms) else {
            return;
        };
        self.shared.set_health(LogHealth::Recovering);
        // Bytes acknowledged but never synced (interval policy) are written again: after a
        // failed fsync the kernel may have marked their pages clean without writing them.
        let (active_base, _) = self.acked_end();
        let rewrite_from = if self.synced.0 == active_base {
            self.synced.1
        } else {
            // Rolled since: the roll synced the old segment and the new one's header.
            SEGMENT_HEADER_BYTES
        };
        match log::recover(&self.shared, rewrite_from) {
            Ok(()) => {
                self.synced = self.acked_end();
                self.poison = None;
                self.shared.set_health(LogHealth::Healthy);
                self.shared.poisoned.store(false, Ordering::Release);
                let state = self.shared.read_state();
                tracing::warn!(dir = %self.shared.dir.display(), end_offset = state.end_offset(), "shard log recovered: cut to the last acknowledged record and reloaded; appends resume");
            }
            Err(e) => {
                self.failures_in_row = self.failures_in_row.saturating_add(1);
                let backoff = self.backoff();
                let reason = format!("recovery failed: {e}");
                tracing::warn!(dir = %self.shared.dir.display(), error = %e, backoff_ms = backoff.as_millis() as u64, "shard log recovery failed; trying again later");
                self.shared
                    .set_health(LogHealth::Poisoned { reason, since_ms });
                self.poison = Some(Poison {
                    since_ms,
                    attempt_at: Instant::now() + backoff,
                });
            }
        }
    }

    /// The interval policy's sync of what was acknowledged since the last one.
    fn sync_active(&mut self) {
        let (file, path, end) = {
            let state = self.shared.read_state();
            (
                state.active.file.clone(),
                state.active.path.clone(),
                (state.active.base_offset, state.active.end_position),
            )
        };
        self.dirty_since = None;
        match timed_sync(&*file) {
            Ok(()) => self.synced = end,
            Err(e) => {
                let e = LogError::io(&path, e);
                self.poison(&e.to_string());
            }
        }
    }
}

/// `fdatasync`, timed into `sluice_log_fsync_seconds`.
fn timed_sync(file: &dyn StorageFile) -> std::io::Result<()> {
    let started = Instant::now();
    let r = file.sync_data();
    metrics::histogram!("sluice_log_fsync_seconds").record(started.elapsed().as_secs_f64());
    r
}

/// Writes and syncs one batch; returns each request's ack. On failure nothing is published,
/// and with `no_space` set, none of the batch's bytes are left in the file.
fn commit(
    shared: &Shared,
    buf: &mut Vec<u8>,
    batch: &[Request],
    bytes: usize,
) -> Result<Vec<AppendAck>, Failure> {
    let config = &shared.config;
    let (mut active, last_arrival) = {
        let state = shared.read_state();
        (ActiveView::of(&state.active), state.last_arrival_ms())
    };
    // Arrival times never go backwards within a shard, even if the wall clock does.
    let now = shared.clock.now_ms().max(last_arrival.unwrap_or(i64::MIN));

    let too_big = active.end_position - SEGMENT_HEADER_BYTES + bytes as u64
        > config.segment_bytes_max - SEGMENT_HEADER_BYTES;
    let too_old = now - active.created_ms >= config.segment_age_ms_max;
    if active.next_offset != active.base_offset && (too_big || too_old) {
        active = ActiveView::of(&roll(shared, now)?);
    }

    buf.clear();
    let start_position = active.end_position;
    let mut acks = Vec::with_capacity(batch.len());
    let mut notes = Vec::new();
    let mut offset = active.next_offset;
    for r in batch.iter() {
        acks.push(AppendAck {
            first_offset: offset,
            count: r.records.len() as u64,
            arrival_ms: now,
        });
        for rec in &r.records {
            let position = start_position + buf.len() as u64;
            frame::encode(buf, offset, now, rec);
            notes.push((
                offset,
                position,
                (start_position + buf.len() as u64) - position,
            ));
            offset += 1;
        }
    }
    if let Err(e) = storage::write_all_at(&*active.file, buf, start_position) {
        let failure = Failure::op(&active.path, e);
        if failure.no_space {
            undo_write(&active, start_position)?;
        }
        return Err(failure);
    }
    if config.sync == SyncPolicy::GroupCommit {
        timed_sync(&*active.file).map_err(|e| Failure::fatal(&active.path, e))?;
    }
    metrics::histogram!("sluice_log_group_commit_records").record(notes.len() as f64);
    metrics::histogram!("sluice_log_group_commit_bytes").record(buf.len() as f64);
    // Publish: readers see the records from here on.
    let mut state = shared.write_state();
    let seg = &mut state.active;
    // Integrity: only this thread replaces the active segment (roll, recovery), so it is the
    // one just written; publishing into another would index records at wrong positions.
    assert_eq!(
        seg.base_offset, active.base_offset,
        "the active segment changed under the writer"
    );
    for (offset, position, frame_bytes) in notes {
        seg.note_record(
            offset,
            position,
            now,
            frame_bytes,
            config.index_interval_bytes,
        );
    }
    assert_eq!(seg.end_position, start_position + buf.len() as u64);
    Ok(acks)
}

/// After a write ran out of space: cuts what part of it reached the file, durably, so neither
/// the next batch (which writes from `start_position` again) nor a crash leaves its bytes
/// between records. If the cut itself fails, the caller is poisoned instead.
fn undo_write(active: &ActiveView, start_position: u64) -> Result<(), Failure> {
    let file = &*active.file;
    let path = &active.path;
    let len = file.len_bytes().map_err(|e| Failure::fatal(path, e))?;
    if len > start_position {
        file.set_len(start_position)
            .map_err(|e| Failure::fatal(path, e))?;
        file.sync_data().map_err(|e| Failure::fatal(path, e))?;
    }
    Ok(())
}

/// What the writer needs of the active segment, without its index.
struct ActiveView {
    base_offset: u64,
    created_ms: i64,
    path: std::path::PathBuf,
    file: Arc<dyn StorageFile>,
    next_offset: u64,
    end_position: u64,
}

impl ActiveView {
    fn of(s: &Segment) -> ActiveView {
        ActiveView {
            base_offset: s.base_offset,
            created_ms: s.created_ms,
            path: s.path.clone(),
            file: s.file.clone(),
            next_offset: s.next_offset,
            end_position: s.end_position,
        }
    }
}

/// Seals the active segment (fsync, index file) and starts a new one after it. On failure the
/// state is unchanged: the old segment stays active (a later batch tries again).
fn roll(shared: &Shared, now: i64) -> Result<Segment, Failure> {
    // Only the writer changes the active segment, so this copy stays current while we seal it.
    let active = shared.read_state().active.clone();
    active
        .file
        .sync_all()
        .map_err(|e| Failure::fatal(&active.path, e))?;
    active.write_index(&*shared.storage)?;
    let next = Segment::create(&*shared.storage, &shared.dir, active.next_offset, now)?;
    let mut state = shared.write_state();
    assert_eq!(state.active.base_offset, active.base_offset);
    let mut sealed = std::mem::replace(&mut state.active, next.clone());
    sealed.sealed = true;
    state.sealed.push(sealed);
    tracing::debug!(dir = %shared.dir.display(), base_offset = next.base_offset, "segment rolled");
    Ok(next)
}
