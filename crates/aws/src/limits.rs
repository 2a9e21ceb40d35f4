//! Limits of the protocol layer itself; each service keeps its own in its own `limits`.

/// The largest request body the one port reads (PutRecords' 10 MiB of data, base64-encoded,
/// plus members). A request that announces more is answered 413 before its body is read.
pub const REQUEST_BODY_BYTES_MAX: usize = 14 * 1024 * 1024;
