//! `sluice-kinesis` is the Kinesis Data Streams API of sluice: the only crate that spells
//! Kinesis shapes.
//!
//! The main types:
//! - [`Service`] runs operations against a [`sluice_streams::Streams`] registry; it is a
//!   [`sluice_aws::JsonService`] (target prefix `Kinesis_20131202.`, signing name `kinesis`),
//!   served on the one port by `sluice_aws::Gateway`, which also decodes, verifies SigV4 and
//!   writes responses.
//! - [`error::Ctx::map`] is the one mapping from stream errors to [`ApiError`].
//! - [`limits`] holds every protocol limit.
//! - [`ops`] has the operations, one file per family (streams, records, shards, consumers,
//!   tags, monitoring), and [`subscribe`] SubscribeToShard's event stream. Each operation has
//!   one request type (e.g. [`ops::CreateStreamRequest`], [`ops::GetShardIteratorRequest`],
//!   [`subscribe::SubscribeToShardRequest`]) built by one `parse` from the decoded request:
//!   every member check in AWS's order and wording, yielding validated types
//!   ([`ops::StreamTarget`], `StreamName`, `ShardId`, [`ops::ShardIteratorType`], ...); the
//!   operation takes the request. Checks AWS makes only after a look-up travel in the request
//!   as [`ops::Deferred`] values.
//! - [`metrics::Metrics`] counts each stream's CloudWatch metrics as Prometheus series.

pub mod error;
pub mod iterator;
pub mod limits;
pub mod metrics;
pub mod ops;
pub mod subscribe;
pub mod validate;

pub use error::ApiError;
pub use ops::Service;
