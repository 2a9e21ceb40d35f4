//! Every limit of the lake, S3's where S3 has one.

/// The largest object one PutObject writes, and the default of `[lake] object_bytes_max`:
/// S3's 5 GiB. A body is streamed to a temporary file, never held in memory.
pub const OBJECT_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// The largest object a multipart upload makes (S3: 5 TiB).
pub const MULTIPART_OBJECT_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// Part numbers run from 1 to this (S3: 10,000).
pub const PART_NUMBER_MAX: u32 = 10_000;
/// Every part but the last is at least this large (S3: 5 MiB).
pub const PART_BYTES_MIN: u64 = 5 * 1024 * 1024;
/// The largest part (S3: 5 GiB).
pub const PART_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// The longest key, in bytes of UTF-8 (S3: 1,024).
pub const KEY_BYTES_MAX: usize = 1024;
/// Multipart uploads in progress at once across the lake; CreateMultipartUpload past it is
/// refused (SlowDown) until some complete or are aborted.
pub const UPLOADS_MAX: usize = 10_000;
/// Entries one listing call looks at, at most. A page that reaches it before it has its keys
/// ends early, truncated, with a cursor to go on from (S3 may also answer fewer keys than asked).
pub const LIST_SCAN_MAX: usize = 100_000;
/// The largest page a listing answers (S3: 1,000).
pub const LIST_KEYS_MAX: usize = 1000;
/// Temporary files older than this are removed by [`crate::Lake::sweep`] (a crash left them).
pub const TEMP_AGE_MS_MAX: u64 = 24 * 3600 * 1000;
/// Chunks a writer keeps in flight to its file (each at most [`WRITE_CHUNK_BYTES`]).
pub const WRITE_QUEUE_DEPTH: usize = 4;
/// A writer hands bytes to its file in chunks of at most this size.
pub const WRITE_CHUNK_BYTES: usize = 1024 * 1024;
/// A reader reads this much at a time, and keeps at most [`READ_QUEUE_DEPTH`] chunks ahead.
pub const READ_CHUNK_BYTES: usize = 256 * 1024;
pub const READ_QUEUE_DEPTH: usize = 2;
/// The remote back end uploads objects larger than this in parts of this size.
pub const REMOTE_PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts of one remote upload in flight at once.
pub const REMOTE_PARTS_IN_FLIGHT: usize = 4;
/// Remote buckets whose clients are kept (a client per bucket; the oldest go past this).
pub const REMOTE_BUCKET_CLIENTS_MAX: usize = 256;
/// The largest answer read from a remote's ListBuckets.
pub const REMOTE_LIST_BUCKETS_BYTES_MAX: usize = 4 * 1024 * 1024;
