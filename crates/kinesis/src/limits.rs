//! Every protocol limit of the Kinesis API, in one place. Each is tested at the limit and one
//! past it (tests/limits.rs and tests/python).

/// Largest data blob of a record the API accepts at all (`Data` max in the AWS model).
pub const RECORD_DATA_BYTES_MAX: usize = sluice_streams::DATA_BYTES_MAX;
/// A stream's default maximum record size (partition key + data), `MaxRecordSizeInKiB`.
pub const MAX_RECORD_SIZE_KIB_DEFAULT: u32 = 1024;
pub const MAX_RECORD_SIZE_KIB_MIN: i64 = 1024;
pub const MAX_RECORD_SIZE_KIB_MAX: i64 = 10240;
pub const PARTITION_KEY_CHARS_MAX: usize = 256;
pub const PUT_RECORDS_COUNT_MAX: usize = 500;
/// Sum of data and partition keys of one PutRecords request.
pub const PUT_RECORDS_BYTES_MAX: usize = 10 * 1024 * 1024;
pub const GET_RECORDS_COUNT_MAX: i64 = 10_000;
pub const GET_RECORDS_BYTES_MAX: usize = 10 * 1024 * 1024;
pub const SHARD_ITERATOR_CHARS_MAX: usize = 512;
pub const SHARD_ITERATOR_TTL_MS: i64 = 300_000;
pub const NEXT_TOKEN_TTL_MS: i64 = 300_000;
pub const RETENTION_HOURS_MIN: i64 = 24;
pub const RETENTION_HOURS_MAX: i64 = 8760;
pub const STREAM_NAME_CHARS_MAX: usize = 128;
pub const STREAM_ARN_CHARS_MAX: usize = 2048;
pub const SHARD_ID_CHARS_MAX: usize = 128;
pub const TAG_KEY_CHARS_MAX: usize = 128;
pub const TAG_VALUE_CHARS_MAX: usize = 256;
pub const TAGS_PER_CALL_MAX: usize = 200;
pub const TAG_KEYS_PER_REMOVE_MAX: usize = 50;
pub const LIST_TAGS_LIMIT_MAX: i64 = 50;
/// DescribeStream `Limit`: the model allows 10000, the service returns at most 100.
pub const DESCRIBE_STREAM_LIMIT_MAX: i64 = 10_000;
pub const DESCRIBE_STREAM_PAGE_MAX: usize = 100;
pub const LIST_STREAMS_LIMIT_MAX: i64 = 10_000;
pub const LIST_STREAMS_PAGE_MAX: usize = 100;
pub const LIST_SHARDS_MAX_RESULTS_MAX: i64 = 10_000;
pub const LIST_SHARDS_PAGE_MAX: usize = 1000;
/// Open shards one stream may have (UpdateShardCount's ceiling).
pub const STREAM_SHARDS_MAX: u32 = 10_000;
pub const CONSUMER_NAME_CHARS_MAX: usize = 128;
pub const LIST_CONSUMERS_MAX_RESULTS_MAX: i64 = 10_000;
/// A SubscribeToShard subscription ends after this long; the client subscribes again.
pub const SUBSCRIPTION_MS: u64 = 300_000;
/// A subscription with nothing new still sends an event this often.
pub const SUBSCRIPTION_HEARTBEAT_MS: u64 = 5_000;
/// A request body larger than this is refused with 413 before it is parsed (by the one port,
/// `sluice_aws`): a 10 MiB PutRecords base64-encodes to about 13.4 MiB.
pub use sluice_aws::limits::REQUEST_BODY_BYTES_MAX;

const _: () = assert!(RECORD_DATA_BYTES_MAX == 10 * 1024 * 1024);
const _: () = assert!(REQUEST_BODY_BYTES_MAX > PUT_RECORDS_BYTES_MAX / 3 * 4 + 64 * 1024);
