//! `sluice-aws` is the AWS protocol layer every sluice service plugs into: what AWS JSON and
//! CBOR services share, and one port that serves them all.
//!
//! The main types:
//! - [`Gateway`] builds the router for the one port: [`JsonService`]s dispatched by
//!   `X-Amz-Target` prefix, REST services by path, CORS ([`Cors`]), request ids, body limits.
//!   [`serve`] runs the accept loop (HTTP/1.1, h2c, TLS with ALPN), bounded in connections.
//! - [`value::Input`] reads a decoded request with AWS's SerializationException for wrong
//!   types; [`value::Out`] is a response tree; [`codec`] reads and writes JSON 1.1 and CBOR 1.1.
//! - [`ApiError`] is an AWS error: an [`ErrorType`] (an enum, never compared as a string), a
//!   status and a message. [`validate::Validator`] collects ValidationException messages in
//!   AWS's wording.
//! - [`Credentials`] verifies SigV4 (header or presigned), with the service name taken from the
//!   credential scope.
//!
//! A service crate (sluice-kinesis, later Firehose and Lambda) names its operations and maps its
//! own domain errors to [`ApiError`]; nothing here knows any one service's shapes.

pub mod auth;
pub mod civil;
pub mod codec;
pub mod cors;
pub mod error;
pub mod limits;
mod server;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;
pub mod value;

pub use auth::{Caller, Credentials};
pub use cors::Cors;
pub use error::{ApiError, ErrorType};
pub use server::{
    current_request_id, request_id, serve, tls_config, BoxFuture, Call, Gateway, JsonService,
    ListenerLimits, NowMs, Reply,
};
pub use value::{Format, Input, Out};

/// Runs `f`, which may wait on a file or the catalog, from async code without stalling the
/// runtime: on a multi-threaded runtime the worker hands its other tasks to the rest first
/// (`block_in_place`); elsewhere (a current-thread runtime in a test, or no runtime) it runs
/// inline. Operations that write the catalog go through here: the blocking-work rule of
/// ARCHITECTURE.md.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
