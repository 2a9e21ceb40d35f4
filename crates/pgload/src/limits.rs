//! Every bound of a load: Firehose's and Redshift's documented ranges and sluice's own bounds
//! on memory, time and retries. Each is tested at the limit and one past it.

use std::time::Duration;

/// Largest staged object a load accepts, in bytes (as stored: compressed when `GZIP`).
/// Firehose's largest buffer (`BufferingHints.SizeInMBs`) is 128 MiB; an object is held once,
/// by the caller, and parsed in place.
pub const OBJECT_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Largest decompressed size of a `GZIP` object. The decompressed bytes are streamed, never
/// held whole; this bounds the work a small, highly compressed object can cause.
pub const DECOMPRESSED_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Largest single record (one JSON value, or one delimited line with its quoted newlines).
/// Redshift's COPY refuses rows over 4 MB ("the maximum size of a single input row").
pub const RECORD_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Rows parsed ahead of the COPY, per batch handed from the parsing thread to the connection.
pub const BATCH_ROWS_MAX: usize = 1024;

/// Bytes of values parsed ahead of the COPY, per batch (a batch is handed over at whichever of
/// this and [`BATCH_ROWS_MAX`] comes first).
pub const BATCH_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Batches in flight between the parsing thread and the connection (the channel's capacity).
/// At most `BATCHES_IN_FLIGHT_MAX + 2` batches exist at once (one being parsed, one being
/// written), whatever the object's size.
pub const BATCHES_IN_FLIGHT_MAX: usize = 2;

/// Firehose's `RetryOptions.DurationInSeconds`: range and default.
pub const RETRY_DURATION_SECONDS_MAX: u32 = 7200;
pub const RETRY_DURATION_SECONDS_DEFAULT: u32 = 3600;

/// Longest a single attempt (connect, COPY, commit) may take before it is abandoned (its
/// connection dropped, so the server rolls the transaction back) and counted as a transient
/// failure. Firehose does not cut a first attempt short at the retry duration; this bound only
/// keeps a hung server from holding a delivery stream forever.
pub const ATTEMPT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);

/// Connecting (TCP and authentication) to the server: the default, and the most a URL's
/// `connectTimeout` may ask for.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECT_TIMEOUT_MAX: Duration = Duration::from_secs(60);

/// Back-off between attempts: the first wait, doubled after each failed attempt up to the
/// maximum, with up to 25% of jitter.
pub const BACKOFF_MS_MIN: u64 = 200;
pub const BACKOFF_MS_MAX: u64 = 5_000;

/// Most attempts of one load, whatever the retry duration (with [`BACKOFF_MS_MAX`] this is
/// more than 7200 s of back-off, so the duration is what ends retries in practice).
pub const ATTEMPTS_MAX: u32 = 2_000;

/// Firehose's `CopyCommand` members: `DataTableName` 1 to 512 characters,
/// `DataTableColumns` and `CopyOptions` at most 204,800.
pub const TABLE_NAME_CHARS_MAX: usize = 512;
pub const COPY_STRING_CHARS_MAX: usize = 204_800;

/// Most columns loaded by one COPY (PostgreSQL's own limit on a table's columns).
pub const COLUMNS_MAX: usize = 1600;

/// `IGNOREHEADER`: the most header lines skipped.
pub const IGNORE_HEADER_LINES_MAX: u64 = 1_000_000;

/// `MAXERROR`: Redshift's largest value.
pub const MAX_ERRORS_MAX: u64 = 100_000;

/// Records that failed under `MAXERROR` and were skipped, kept in the outcome (the count is
/// always exact).
pub const SKIPPED_RECORDS_KEPT_MAX: usize = 100;

/// Characters of an offending value quoted in an error message.
pub const ERROR_VALUE_CHARS_MAX: usize = 64;

/// Largest `ClusterJDBCURL` (Firehose: 1 to 512 characters).
pub const JDBC_URL_CHARS_MAX: usize = 512;

/// Digits of a decimal literal loaded into a `numeric` column (PostgreSQL's numeric holds up
/// to 131,072 digits before the point and 16,383 after; records are far smaller).
pub const NUMERIC_TEXT_CHARS_MAX: usize = 1024;
