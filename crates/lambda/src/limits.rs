//! Every protocol limit of the Lambda API that sluice enforces, in one place, with its source
//! (the API reference or the quotas page). Each is tested at the limit and one past it (unit
//! tests here and tests/python/test_lambda.py).

/// A function name (the last part of its ARN): `[a-zA-Z0-9-_]+`, 1 to 64 characters.
pub const FUNCTION_NAME_CHARS_MAX: usize = 64;
/// The `FunctionName` member when it is an ARN (CreateFunction, the mutating operations).
pub const FUNCTION_NAME_MEMBER_CHARS_MAX: usize = 140;
/// The `FunctionName` path parameter of the reading operations and Invoke.
pub const FUNCTION_REF_CHARS_MAX: usize = 256;
pub const QUALIFIER_CHARS_MAX: usize = 128;
pub const HANDLER_CHARS_MAX: usize = 128;
pub const DESCRIPTION_CHARS_MAX: usize = 256;

/// `Timeout`, seconds: at least 1 (the model), at most 900 (the service: 15 minutes).
pub const TIMEOUT_S_MIN: i64 = 1;
pub const TIMEOUT_S_MAX: i64 = 900;
pub const TIMEOUT_S_DEFAULT: u32 = 3;
/// `MemorySize`, MB: 128 to 10,240 (the service's bound; the model allows 32,768).
pub const MEMORY_MB_MIN: i64 = 128;
pub const MEMORY_MB_MAX: i64 = 10_240;
pub const MEMORY_MB_DEFAULT: u32 = 128;

/// All environment variables of a function, measured as Lambda does (their JSON): 4 KB.
pub const ENVIRONMENT_BYTES_MAX: usize = 4 * 1024;

/// A deployment package uploaded directly (`ZipFile`), zipped: 50 MB.
pub const ZIP_FILE_BYTES_MAX: usize = 50 * 1024 * 1024;
/// The request body of CreateFunction / UpdateFunctionCode (a 50 MB zip in base64 and JSON),
/// as AWS words its RequestEntityTooLargeException. sluice's one port refuses bodies past
/// `sluice_aws::limits::REQUEST_BODY_BYTES_MAX` (14 MiB) before they get here.
pub const CODE_REQUEST_BYTES_MAX: usize = 69_905_067;
/// A deployment package unzipped: 250 MB.
pub const UNZIPPED_BYTES_MAX: u64 = 262_144_000;
/// Entries of one deployment package (a bound on the work of one unpack; AWS has none
/// documented, its 250 MB unzipped is the practical one).
pub const ZIP_ENTRIES_MAX: usize = 100_000;

/// Invoke payload, RequestResponse: 6 MB.
pub const SYNC_PAYLOAD_BYTES_MAX: usize = 6 * 1024 * 1024;
/// Invoke payload, Event: 1 MB (the API reference since AWS raised it from 256 KB).
pub const ASYNC_PAYLOAD_BYTES_MAX: usize = 1024 * 1024;
/// InvokeAsync (deprecated): 256 KB.
pub const INVOKE_ASYNC_PAYLOAD_BYTES_MAX: usize = 256 * 1024;
/// `LogType: Tail` returns at most the last 4 KB of the invocation's log.
pub const LOG_TAIL_BYTES_MAX: usize = 4 * 1024;
/// `X-Amz-Client-Context`: base64 of at most 3,583 bytes of JSON.
pub const CLIENT_CONTEXT_BYTES_MAX: usize = 3583;

/// The account's concurrency (AWS's default quota) and the part of it that must stay
/// unreserved: reserved concurrency across all functions is at most 900.
pub const ACCOUNT_CONCURRENCY_MAX: u32 = 1000;
pub const UNRESERVED_CONCURRENCY_MIN: u32 = 100;

/// ListFunctions `MaxItems`: 1 to 10,000 in the model; a page has at most 50.
pub const LIST_MAX_ITEMS_MIN: i64 = 1;
pub const LIST_MAX_ITEMS_MAX: i64 = 10_000;
pub const LIST_PAGE_MAX: usize = 50;

/// Tags of one function.
pub const TAGS_PER_FUNCTION_MAX: usize = 50;
pub const TAG_KEY_CHARS_MAX: usize = 128;
pub const TAG_VALUE_CHARS_MAX: usize = 256;

/// Total code storage of the account (GetAccountSettings), 75 GB.
pub const ACCOUNT_CODE_BYTES_MAX: u64 = 80_530_636_800;

/// Event source mappings (CreateEventSourceMapping / UpdateEventSourceMapping for Kinesis):
/// the model's ranges, and the service's where it is narrower. The poller's own copy of these
/// (`sluice_poller::limits`) is what it runs with; the values are the same.
/// BatchSize: 1 to 10,000 (Kinesis), default 100.
pub const BATCH_SIZE_MIN: i64 = 1;
pub const BATCH_SIZE_MAX: i64 = sluice_poller::limits::BATCH_SIZE_MAX as i64;
pub const BATCH_SIZE_DEFAULT: u32 = sluice_poller::limits::BATCH_SIZE_DEFAULT;
/// MaximumBatchingWindowInSeconds: 0 to 300, default 0 for streams.
pub const BATCHING_WINDOW_S_MAX: i64 = sluice_poller::limits::BATCHING_WINDOW_S_MAX as i64;
/// ParallelizationFactor: 1 to 10, default 1.
pub const PARALLELIZATION_FACTOR_MAX: i64 =
    sluice_poller::limits::PARALLELIZATION_FACTOR_MAX as i64;
/// MaximumRetryAttempts: -1 (until the records expire) or 0 to 10,000; default -1.
pub const RETRY_ATTEMPTS_MAX: i64 = sluice_poller::limits::RETRY_ATTEMPTS_MAX;
/// MaximumRecordAgeInSeconds: -1 (no limit) or 60 to 604,800; default -1. The model allows
/// -1 to 604,800; the service refuses 0 to 59.
pub const RECORD_AGE_S_MIN: i64 = sluice_poller::limits::RECORD_AGE_S_MIN;
pub const RECORD_AGE_S_MAX: i64 = sluice_poller::limits::RECORD_AGE_S_MAX;
/// TumblingWindowInSeconds: 0 (none) to 900.
pub const TUMBLING_WINDOW_S_MAX: i64 = sluice_poller::limits::TUMBLING_WINDOW_S_MAX as i64;
/// FilterCriteria.Filters: at most 5 (AWS's default quota), each Pattern at most 4,096
/// characters (the model).
pub const FILTERS_MAX: usize = sluice_poller::limits::FILTERS_MAX;
pub const FILTER_PATTERN_CHARS_MAX: usize = sluice_poller::limits::FILTER_PATTERN_CHARS_MAX;
/// DestinationConfig.OnFailure.Destination: at most 350 characters (the model).
pub const DESTINATION_ARN_CHARS_MAX: usize = 350;
/// ListEventSourceMappings: `MaxItems` 1 to 10,000 in the model; a page has at most 100.
pub const MAPPING_PAGE_MAX: usize = 100;
/// Tags of one event source mapping (as of a function).
pub const TAGS_PER_MAPPING_MAX: usize = 50;
/// Event source mappings in all: a bound on the work of one list and on the pollers running
/// (AWS has no documented quota on mappings per account).
pub const MAPPINGS_MAX: usize = 1_000;
