//! What a poller invokes: a [`Target`] takes a [`Batch`] of one shard's records (and, with a
//! tumbling window, the window and its state) and answers an [`Outcome`].

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use serde_json::Value;
use sluice_streams::{SequenceNumber, ShardId};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One record as a target sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub sequence_number: SequenceNumber,
    pub partition_key: String,
    pub data: Bytes,
    /// ApproximateArrivalTimestamp, ms since the epoch.
    pub arrival_ms: i64,
}

/// A tumbling window's part of an invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// `[start_ms, end_ms)`, aligned to the window length since the epoch.
    pub start_ms: i64,
    pub end_ms: i64,
    /// What the target returned as `state` the last time in this window (`{}` at first).
    pub state: Value,
    pub is_final_invoke: bool,
    pub terminated_early: bool,
}

/// What one invocation carries.
#[derive(Debug, Clone)]
pub struct Batch {
    pub shard_id: ShardId,
    /// `shardId-000000000000`.
    pub shard_name: String,
    pub stream_arn: String,
    pub records: Vec<Record>,
    pub window: Option<Window>,
}

/// How an invocation went.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The target ran and returned normally. `item_failures` is the `batchItemFailures` list
    /// (only looked at under ReportBatchItemFailures): each entry's `itemIdentifier`, `None`
    /// when it was null, missing or not a string. `state` is a tumbling window's new state.
    Success {
        item_failures: Vec<Option<String>>,
        state: Option<Value>,
        /// The response could not be read as Lambda expects it (not JSON, wrong shape): under
        /// ReportBatchItemFailures that fails the whole batch.
        unreadable: bool,
    },
    /// The target ran and failed (a function error, a timeout, a crash): an attempt.
    Failed {
        /// responseContext.statusCode and functionError of a failure record.
        status_code: u16,
        function_error: String,
        executed_version: String,
    },
    /// The target was not run (throttled, not found, stopped): retried until the records
    /// expire, not counted as an attempt.
    NotInvoked { reason: String },
}

/// A function, a transform: anything a poller hands batches to.
pub trait Target: Send + Sync + 'static {
    /// Runs one batch.
    fn invoke(&self, batch: Batch) -> BoxFuture<'_, Outcome>;

    /// The invocation payload of `batch` as the target receives it, for on-failure
    /// destinations that carry it (object stores). `None` when it has none.
    fn payload(&self, batch: &Batch) -> Option<Vec<u8>>;

    /// `requestContext.functionArn` of failure records.
    fn arn(&self) -> String;
}
