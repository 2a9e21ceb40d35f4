//! Every bound of the conversion: Firehose's documented ranges, Glue's and Hive's type limits,
//! and sluice's own bounds on memory and recursion. Each is tested at the limit and one past it.

/// Longest column type string accepted (Glue's `Column.Type` length limit).
pub const TYPE_CHARS_MAX: usize = 131_072;

/// Deepest nesting of `array`, `map` and `struct` in one column type. Bounds the recursion of
/// the type parser, of record conversion and of schema inference.
pub const TYPE_DEPTH_MAX: usize = 32;

/// Most columns in a table, and most fields in one `struct`.
pub const COLUMNS_MAX: usize = 10_000;

/// Longest column or struct field name, in characters (Glue's `Column.Name` length limit).
pub const COLUMN_NAME_CHARS_MAX: usize = 255;

/// Longest `varchar(n)` (Hive).
pub const VARCHAR_LENGTH_MAX: u32 = 65_535;

/// Longest `char(n)` (Hive).
pub const CHAR_LENGTH_MAX: u32 = 255;

/// Largest `decimal(p,s)` precision (Hive; what a Parquet `DECIMAL` in 128 bits holds).
pub const DECIMAL_PRECISION_MAX: u8 = 38;

/// Precision and scale of a bare `decimal` (Hive's default).
pub const DECIMAL_DEFAULT: (u8, u8) = (10, 0);

/// Longest decimal literal read into a `decimal` column, in characters.
pub const DECIMAL_TEXT_CHARS_MAX: usize = 512;

/// Largest record converted; a larger one is a per-record `MalformedData` error. Firehose's own
/// record limit is 1,000 KiB; this leaves room for what a transformation returns, and keeps
/// every Arrow offset (32-bit) of one batch far from overflowing.
pub const RECORD_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Rows buffered in Arrow builders before they are handed to the Parquet writer as one batch.
pub const BATCH_ROWS_MAX: usize = 8_192;

/// Input bytes buffered in Arrow builders before they are handed to the Parquet writer.
pub const BATCH_INPUT_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Characters of an offending value quoted in a record error message.
pub const ERROR_VALUE_CHARS_MAX: usize = 64;

/// Firehose's `ParquetSerDe.BlockSizeBytes`: minimum and default (the row group size).
pub const BLOCK_SIZE_BYTES_MIN: u64 = 64 * 1024 * 1024;
pub const BLOCK_SIZE_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;

/// Firehose's `ParquetSerDe.PageSizeBytes`: minimum and default.
pub const PAGE_SIZE_BYTES_MIN: u64 = 64 * 1024;
pub const PAGE_SIZE_BYTES_DEFAULT: u64 = 1024 * 1024;

/// Largest `BlockSizeBytes` / `PageSizeBytes` / `MaxPaddingBytes` (the API's Integer).
pub const SIZE_BYTES_MAX: u64 = i32::MAX as u64;

/// Length of one `HiveJsonSerDe.TimestampFormats` entry and of a `ColumnToJsonKeyMappings` key
/// or value (Firehose: 1 to 1,024 characters).
pub const SERDE_STRING_CHARS_MAX: usize = 1024;

/// Most `TimestampFormats` entries (Firehose sets none; each is tried per value, so bounded).
pub const TIMESTAMP_FORMATS_MAX: usize = 64;

/// Epoch numbers read as timestamps (OpenX): an integer whose magnitude reaches this is epoch
/// milliseconds, below it epoch seconds. 10^11 seconds is the year 5138; 10^11 milliseconds
/// is March 1973.
pub const EPOCH_MILLIS_FROM: i64 = 100_000_000_000;

/// The most threads one conversion reads records with (`Converter::write`), CPUs allowing.
pub const CONVERT_THREADS_MAX: usize = 4;
