//! The writer thread of one shard: group commit.
//!
//! It takes the first waiting request, then everything else already queued (up to
//! `commit_bytes_max`), writes the whole batch with one `pwrite`, makes it durable with one
//! `fdatasync`, publishes the new end to readers and only then completes the requests. While
//! it waits on the disk, new requests queue up and form the next batch, so concurrent
//! appenders share fsyncs and throughput grows with concurrency while every acknowledged
//! record is on disk.

use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::SyncPolicy;
use crate::error::LogError;
use crate::frame::{self, Record};
use crate::log::{AppendAck, Completion, Shared};
use crate::segment::{Segment, SEGMENT_HEADER_BYTES};

pub(crate) struct Request {
    pub records: Vec<Record>,
    pub done: Completion,
}

pub(crate) fn run(shared: Arc<Shared>, rx: Receiver<Request>) {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut batch: Vec<Request> = Vec::new();
    let mut dirty_since: Option<Instant> = None;
    loop {
        let first = match shared.config.sync {
            SyncPolicy::GroupCommit => match rx.recv() {
                Ok(r) => r,
                Err(_) => return,
            },
            SyncPolicy::Interval { interval_ms } => {
                let wait = match dirty_since {
                    Some(t) => Duration::from_millis(interval_ms).saturating_sub(t.elapsed()),
                    None => Duration::from_secs(3600),
                };
                match rx.recv_timeout(wait) {
                    Ok(r) => r,
                    Err(RecvTimeoutError::Timeout) => {
                        sync_active(&shared);
                        dirty_since = None;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        if dirty_since.is_some() {
                            sync_active(&shared);
                        }
                        return;
                    }
                }
            }
        };
        let mut bytes: usize = first.records.iter().map(Record::frame_bytes).sum();
        batch.push(first);
        while bytes < shared.config.commit_bytes_max {
            match rx.try_recv() {
                Ok(r) => {
                    bytes += r.records.iter().map(Record::frame_bytes).sum::<usize>();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        if shared.poisoned.load(Ordering::Acquire) {
            for r in batch.drain(..) {
                (r.done)(Err(LogError::Poisoned {
                    path: shared.dir.clone(),
                }));
            }
            continue;
        }
        match commit(&shared, &mut buf, &mut batch, bytes) {
            Ok(acks) => {
                if let SyncPolicy::Interval { .. } = shared.config.sync {
                    dirty_since.get_or_insert_with(Instant::now);
                }
                let end = shared.state.read().unwrap().end_offset();
                if let Some(listener) = shared.listener.read().unwrap().as_ref() {
                    listener(end);
                }
                for (r, ack) in batch.drain(..).zip(acks) {
                    (r.done)(Ok(ack));
                }
            }
            Err(e) => {
                tracing::error!(dir = %shared.dir.display(), error = %e, "shard log write failed; the log is poisoned until reopened");
                shared.poisoned.store(true, Ordering::Release);
                let path = shared.dir.clone();
                for r in batch.drain(..) {
                    (r.done)(Err(LogError::Poisoned { path: path.clone() }));
                }
            }
        }
        if buf.capacity() > 64 << 20 {
            buf = Vec::with_capacity(1 << 20);
        }
    }
}

fn sync_active(shared: &Shared) {
    let (file, path) = {
        let state = shared.state.read().unwrap();
        let s = state
            .segments
            .last()
            .expect("a log always has an active segment");
        (s.file.clone(), s.path.clone())
    };
    if let Err(e) = file.sync_data() {
        tracing::error!(segment = %path.display(), error = %e, "fdatasync failed; the log is poisoned until reopened");
        shared.poisoned.store(true, Ordering::Release);
    }
}

/// Writes and syncs one batch; returns each request's ack.
fn commit(
    shared: &Shared,
    buf: &mut Vec<u8>,
    batch: &mut [Request],
    bytes: usize,
) -> Result<Vec<AppendAck>, LogError> {
    let config = &shared.config;
    let (mut active, last_arrival) = {
        let state = shared.state.read().unwrap();
        let active = ActiveView::of(
            state
                .segments
                .last()
                .expect("a log always has an active segment"),
        );
        let last = state.segments.iter().rev().find_map(|s| s.last_arrival_ms);
        (active, last)
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
    active
        .file
        .write_all_at(buf, start_position)
        .map_err(|e| LogError::io(&active.path, e))?;
    if config.sync == SyncPolicy::GroupCommit {
        active
            .file
            .sync_data()
            .map_err(|e| LogError::io(&active.path, e))?;
    }
    // Publish: readers see the records from here on.
    let mut state = shared.state.write().unwrap();
    let seg = state
        .segments
        .last_mut()
        .expect("a log always has an active segment");
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

/// What the writer needs of the active segment, without its index.
struct ActiveView {
    base_offset: u64,
    created_ms: i64,
    path: std::path::PathBuf,
    file: Arc<std::fs::File>,
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

/// Seals the active segment (fsync, index file) and starts a new one after it.
fn roll(shared: &Shared, now: i64) -> Result<Segment, LogError> {
    // Only the writer changes the active segment, so this copy stays current while we seal it.
    let active = shared
        .state
        .read()
        .unwrap()
        .segments
        .last()
        .expect("a log always has an active segment")
        .clone();
    active
        .file
        .sync_all()
        .map_err(|e| LogError::io(&active.path, e))?;
    active.write_index()?;
    let next = Segment::create(&shared.dir, active.next_offset, now)?;
    let mut state = shared.state.write().unwrap();
    let last = state
        .segments
        .last_mut()
        .expect("a log always has an active segment");
    assert_eq!(last.base_offset, active.base_offset);
    last.sealed = true;
    state.segments.push(next.clone());
    tracing::debug!(dir = %shared.dir.display(), base_offset = next.base_offset, "segment rolled");
    Ok(next)
}
