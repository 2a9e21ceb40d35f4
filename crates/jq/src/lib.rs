//! `sluice-jq` runs jq programs over JSON records, with jaq (a jq interpreter in Rust).
//!
//! The main types:
//! - [`Program`] is a compiled jq program: [`Program::compile`] once (errors name the line and
//!   column), then [`Program::run`] (all outputs), [`Program::run_first`] (one value, e.g. a
//!   partition key) or [`Program::run_bytes`] (a record's bytes in, compact JSON out) from any
//!   thread, with the record's [`Vars`] (`$partition_key`, `$sequence_number`,
//!   `$arrival_ms`, `$shard_id`, `$stream`). Every run is bounded ([`limits`]).
//! - [`Transform`] is what a processor does to one record: parse, run, key each output.
//! - [`JqTarget`] is a processor as a `sluice_poller::Target`: it transforms each batch of
//!   its source stream and writes the outputs, in order, to its output stream, the records it
//!   fails on to its dead-letter stream. Through the poller it gets the consumer core's
//!   durable checkpoints, batching, parallelization and retries, as a Lambda event source
//!   mapping does, with no process or HTTP hop in between.
//! - [`ProcessorConfig`] is one `[[processors]]` table of the configuration file;
//!   [`Processors`] prepares (checks, compiles) and starts them.
//!
//! The crate knows JSON, jq, records and streams; it knows nothing of HTTP or AWS wire shapes.

pub mod limits;
mod plan;
mod processor;
mod program;
mod read;
mod target;
#[cfg(test)]
mod timing;
mod transform;
mod value;

pub use processor::{
    validate_all, ProcessorConfig, ProcessorError, Processors, Running, StartingPosition,
};
pub use program::{JqError, Program, Vars, VAR_NAMES};
pub use target::{processor_arn, JqTarget, ProcessorStreams};
pub use transform::{Output, Transform};
