//! Every protocol limit of the Firehose API (the API reference and the service model), in one
//! place; each is tested at the limit and one past it.

/// `DeliveryStreamName`: 1 to 64 characters of `[a-zA-Z0-9_.-]`.
pub const DELIVERY_STREAM_NAME_CHARS_MAX: usize = 64;
/// A record's data: 1,000 KiB before base64.
pub const RECORD_DATA_BYTES_MAX: usize = 1_024_000;
/// Records in one PutRecordBatch.
pub const PUT_RECORD_BATCH_RECORDS_MAX: usize = 500;
/// Data bytes in one PutRecordBatch (4 MiB).
pub const PUT_RECORD_BATCH_BYTES_MAX: usize = 4 << 20;
/// `BufferingHints.SizeInMBs`.
pub const BUFFER_SIZE_MB_MIN: i64 = 1;
pub const BUFFER_SIZE_MB_MAX: i64 = 128;
pub const BUFFER_SIZE_MB_DEFAULT: u32 = 5;
/// `BufferingHints.IntervalInSeconds`.
pub const BUFFER_INTERVAL_S_MIN: i64 = 0;
pub const BUFFER_INTERVAL_S_MAX: i64 = 900;
pub const BUFFER_INTERVAL_S_DEFAULT: u32 = 300;
/// `Prefix` / `ErrorOutputPrefix` as written.
pub const PREFIX_CHARS_MAX: usize = 1024;
/// A prefix once evaluated ("Custom Prefixes for Amazon S3 Objects", semantic rules).
pub const EVALUATED_PREFIX_CHARS_MAX: usize = 512;
/// `!{firehose:random-string}`.
pub const RANDOM_STRING_CHARS: usize = 11;
/// ARNs (`RoleARN`, `KinesisStreamARN`, `AWSKMSKeyARN`).
pub const ARN_CHARS_MAX: usize = 512;
/// `BucketARN`.
pub const BUCKET_ARN_CHARS_MAX: usize = 2048;
/// `FileExtension`.
pub const FILE_EXTENSION_CHARS_MAX: usize = 128;
/// `CustomTimeZone`.
pub const CUSTOM_TIME_ZONE_CHARS_MAX: usize = 50;
/// `ProcessorParameter.ParameterValue`.
pub const PROCESSOR_PARAMETER_VALUE_CHARS_MAX: usize = 5120;
/// `CurrentDeliveryStreamVersionId`.
pub const VERSION_ID_CHARS_MAX: usize = 50;
/// `DestinationId`.
pub const DESTINATION_ID_CHARS_MAX: usize = 100;
/// The one destination of a delivery stream.
pub const DESTINATION_ID: &str = "destinationId-000000000001";
/// Tags of one delivery stream, and of one TagDeliveryStream / UntagDeliveryStream call.
pub const TAGS_MAX: usize = 50;
pub const TAG_KEY_CHARS_MAX: usize = 128;
pub const TAG_VALUE_CHARS_MAX: usize = 256;
/// `ListDeliveryStreams.Limit` / `DescribeDeliveryStream.Limit`.
pub const LIST_LIMIT_MIN: i64 = 1;
pub const LIST_LIMIT_MAX: i64 = 10_000;
/// ListDeliveryStreams without a Limit.
pub const LIST_LIMIT_DEFAULT: usize = 10;
/// `ListTagsForDeliveryStream.Limit` (and its default).
pub const LIST_TAGS_LIMIT_MAX: i64 = 50;
/// `DirectPutSourceConfiguration.ThroughputHintInMBs`.
pub const THROUGHPUT_HINT_MB_MIN: i64 = 1;
pub const THROUGHPUT_HINT_MB_MAX: i64 = 100;
/// `DynamicPartitioningConfiguration.RetryOptions.DurationInSeconds`.
pub const RETRY_DURATION_S_MAX: i64 = 7200;
/// The Lambda processor's `NumberOfRetries`: 0 to 300, 3 by default.
pub const LAMBDA_RETRIES_MAX: u32 = 300;
pub const LAMBDA_RETRIES_DEFAULT: u32 = 3;
/// The Lambda processor's `BufferSizeInMBs` (of records per invocation): 0.2 to 3, 1 by
/// default (sluice takes whole MBs, 1 to 3).
pub const LAMBDA_BUFFER_MB_MAX: u32 = 3;
pub const LAMBDA_BUFFER_MB_DEFAULT: u32 = 1;
/// A Lambda invocation's payload (request and response): 6 MB.
pub const LAMBDA_PAYLOAD_BYTES_MAX: usize = 6 << 20;
/// Tries of one object write within a flush before the flush pauses (each try's error is
/// logged once).
pub const WRITE_BACKOFF_MS_MIN: u64 = 200;
