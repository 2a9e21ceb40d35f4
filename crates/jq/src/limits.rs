//! Every bound on the work one record, one batch and one program may cause.

/// Outputs one program run may produce for one input record; one more fails the record (a
/// `.items[]` split of a larger array, or a runaway `repeat`, ends here). PutRecords' limit.
pub const OUTPUTS_PER_RECORD_MAX: usize = 500;
/// Bytes of compact JSON all outputs of one input record may take together.
pub const OUTPUT_BYTES_PER_RECORD_MAX: usize = 5 * 1024 * 1024;
/// One output record, data plus partition key: a Kinesis stream's default maximum record size
/// (the smallest a stream may have), so every output fits any output stream.
pub const OUTPUT_RECORD_BYTES_MAX: usize = 1024 * 1024;
/// Nesting of an output value (serde_json reads inputs no deeper than 128 either).
pub const OUTPUT_DEPTH_MAX: usize = 128;
/// A partition key computed by a `partition_key` program: 1 to 256 characters (Kinesis).
pub const PARTITION_KEY_CHARS_MAX: usize = 256;
/// A program's source text.
pub const PROGRAM_BYTES_MAX: usize = 64 * 1024;
/// An error message kept in a dead-letter record or a log line; longer ones are cut (jq's
/// messages quote the offending value, which may be a whole record).
pub const ERROR_CHARS_MAX: usize = 1024;
/// Records, and bytes (data plus keys), one put to an output or dead-letter stream carries;
/// a batch's outputs go out in puts of at most this (PutRecords' limits).
pub const PUT_RECORDS_MAX: usize = 500;
pub const PUT_BYTES_MAX: usize = 5 * 1024 * 1024;
/// Puts of a batch prepared ahead of the one being sent. With [`PUTS_IN_FLIGHT_MAX`], what
/// bounds a batch's outputs in memory, whatever the batch size and the program's fan-out.
pub const PUTS_AHEAD_MAX: usize = 2;
/// Puts of one batch sent and not yet durable, at most (the log makes those waiting together
/// durable with one sync).
pub const PUTS_IN_FLIGHT_MAX: usize = 8;
/// A processor's name: 1 to 64 characters of `[a-zA-Z0-9_-]`.
pub const PROCESSOR_NAME_CHARS_MAX: usize = 64;
/// How long stopping waits for a processor's batch in flight.
pub const STOP_WAIT_MS: u64 = 10_000;
/// Records dropped for want of a dead-letter stream are logged at most this often.
pub const DROPPED_LOG_INTERVAL_MS: u64 = 10_000;
