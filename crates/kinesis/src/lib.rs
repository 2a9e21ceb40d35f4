//! `sluice-kinesis` is the Kinesis Data Streams API of sluice: the only crate that spells
//! Kinesis shapes.
//!
//! The main types:
//! - [`Service`] runs operations against a [`sluice_streams::Streams`] registry.
//! - [`router`] is the axum router that serves it over HTTP (JSON 1.1 and CBOR 1.1).
//! - [`ApiError`] is an AWS error (type, status, message); [`error::Ctx::map`] is the one
//!   mapping from stream errors to it.
//! - [`Credentials`] verifies SigV4 signatures when access keys are configured.
//! - [`limits`] holds every protocol limit.
//! - `ops` has the stream and record operations, `ops_shards` resharding and capacity modes,
//!   `ops_consumers` registered consumers, and [`subscribe`] SubscribeToShard's event stream.

pub mod auth;
mod civil;
pub mod codec;
pub mod error;
pub mod iterator;
pub mod limits;
pub mod ops;
mod ops_consumers;
mod ops_shards;
mod server;
pub mod subscribe;
pub mod validate;
pub mod value;

pub use auth::Credentials;
pub use error::ApiError;
pub use ops::Service;
pub use server::{router, serve, serve_tls, tls_config};
