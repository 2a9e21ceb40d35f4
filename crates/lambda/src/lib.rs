//! `sluice-lambda` serves the Lambda control-plane API (functions, reserved concurrency, tags,
//! Invoke, event source mappings) over a durable function store, under the REST paths `/2015-03-31/...` and the
//! other version dates of the API; handlers run in `sluice-runtime`'s process pools.
//!
//! The main types:
//! - [`Lambda`]: the service. [`Lambda::open`] loads the store, [`Lambda::router`] is the axum
//!   router to register with `Gateway::rest` under each of [`PATH_PREFIXES`]; it verifies
//!   SigV4 itself (signing name `lambda`) and writes Lambda's REST-JSON errors.
//! - [`store::Store`]: every function's configuration (`function.json`, written atomically) and
//!   unpacked code under `<data_dir>/lambda/`, plus the functions declared in the
//!   configuration file ([`LambdaConfig::functions`]), whose code is used in place.
//! - [`package`]: unpacking a deployment package safely (no entry outside its directory).
//! - [`events::EventQueues`]: the bounded per-function queues of Event invocations.
//! - [`mappings`]: event source mappings for Kinesis streams: each one's settings, stored
//!   durably (`<data_dir>/lambda/mappings/<uuid>.json`), and the `sluice-poller` pollers of
//!   the enabled ones, started by [`Lambda::start_mappings`]; [`target::FunctionTarget`] is
//!   what they invoke (Lambda's Kinesis event, run as Invoke RequestResponse runs).
//! - [`metrics`]: Lambda's CloudWatch function metrics (Invocations, Errors, Throttles,
//!   Duration) as Prometheus series.
//!
//! This is the only crate that spells Lambda's shapes, members and error types; its errors
//! reach clients through the one mapping in [`error`].

pub mod config;
pub mod error;
pub mod events;
pub mod limits;
pub mod mappings;
pub mod metrics;
pub mod names;
mod ops;
pub mod package;
mod service;
pub mod store;
pub mod target;

pub use config::{DeclaredFunction, LambdaConfig};
pub use service::{log_file, Lambda, LambdaOptions, COMPAT_DOC, PATH_PREFIXES};
