//! The ranges and defaults of Lambda's Kinesis event source mappings (Lambda developer guide,
//! CreateEventSourceMapping API reference).

/// BatchSize: 1 to 10,000, default 100.
pub const BATCH_SIZE_MIN: u32 = 1;
pub const BATCH_SIZE_MAX: u32 = 10_000;
pub const BATCH_SIZE_DEFAULT: u32 = 100;
/// MaximumBatchingWindowInSeconds: 0 to 300.
pub const BATCHING_WINDOW_S_MAX: u32 = 300;
/// ParallelizationFactor: 1 to 10.
pub const PARALLELIZATION_FACTOR_MAX: u32 = 10;
/// MaximumRetryAttempts: -1 (forever) or 0 to 10,000.
pub const RETRY_ATTEMPTS_MAX: i64 = 10_000;
/// MaximumRecordAgeInSeconds: -1 (forever) or 60 to 604,800.
pub const RECORD_AGE_S_MIN: i64 = 60;
pub const RECORD_AGE_S_MAX: i64 = 604_800;
/// TumblingWindowInSeconds: 0 to 900.
pub const TUMBLING_WINDOW_S_MAX: u32 = 900;
/// FilterCriteria: at most 5 filters (ORed), each pattern at most 4,096 characters.
pub const FILTERS_MAX: usize = 5;
pub const FILTER_PATTERN_CHARS_MAX: usize = 4096;
/// The synchronous invocation payload limit, which caps a batch's event.
pub const PAYLOAD_BYTES_MAX: usize = 6 * 1024 * 1024;
/// The most tumbling-window state carried between invocations (Lambda: 1 MB).
pub const WINDOW_STATE_BYTES_MAX: usize = 1024 * 1024;
/// Retry back-off: first and longest wait between attempts.
pub const RETRY_BACKOFF_FIRST_MS: u64 = 100;
pub const RETRY_BACKOFF_MAX_MS: u64 = 5_000;
/// Attempts to write one failure record to its destination before it is logged and dropped.
pub const FAILURE_DELIVERY_ATTEMPTS_MAX: u32 = 20;
