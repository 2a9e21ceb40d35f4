//! `sluice-poller` runs shard pollers: what Lambda's event source mappings for Kinesis do,
//! for any [`Target`] (a Lambda function in `sluice-lambda`, a jq program in `sluice-jq`).
//!
//! A [`Poller`] reads a stream through the consumer core (`sluice_streams::StreamConsumer`,
//! named after the mapping, so its checkpoints are durable), one task per shard, parents
//! before children, and for each shard:
//! - gathers batches of up to `batch_size` records and [`limits::PAYLOAD_BYTES_MAX`], waiting
//!   up to `batching_window_ms` for a batch to fill;
//! - drops records the [`filter`]s do not match (they are checkpointed);
//! - splits each batch into `parallelization_factor` lanes by partition key, invoked
//!   concurrently, so records of one key keep their order;
//! - on a function error retries (`maximum_retry_attempts`, `maximum_record_age_ms`), bisects
//!   the batch when asked (not counted as a retry), honours `ReportBatchItemFailures`, and
//!   sends what it gives up on to the on-failure destination ([`failure`]) in Lambda's shape;
//! - with a tumbling window, groups records by window and carries the target's `state`
//!   between invocations (durably, with the checkpoint), ending each window with a final
//!   invocation that has no records; a window's batches run in one lane and are not bisected,
//!   since the state runs through them in order;
//! - commits the shard's checkpoint after each round is done (at most the round in flight is
//!   delivered again after a crash).
//!
//! The crate knows shards and sequence numbers, Lambda's Kinesis event-source-mapping rules
//! and failure-record shape; it knows nothing of HTTP or of how a target runs.

pub mod engine;
pub mod failure;
pub mod filter;
pub mod limits;
pub mod spec;
pub mod target;

pub use engine::{Poller, PollerState, PollerStatus};
pub use failure::{FailureDestination, FailureSinks};
pub use filter::{Filter, FilterError};
pub use spec::{PollerSpec, StartingPosition};
pub use target::{Batch, BoxFuture, Outcome, Record, Target, Window};
