//! Firehose's record format conversion (`DataFormatConversionConfiguration`) as a library:
//! JSON records read into a Hive / Glue table's columns and written as one Parquet file.
//!
//! - [`Schema`] is a table's columns, each with a [`ColumnType`] parsed from a Hive type string
//!   (`string`, `varchar(n)`, `char(n)`, `boolean`, `tinyint`, `smallint`, `int`, `bigint`,
//!   `float`, `double`, `decimal(p,s)`, `date`, `timestamp`, `binary`, `array<T>`, `map<K,V>`,
//!   `struct<a:T,...>`). A schema comes from a [`TableConfig`] (a `[[tables]]` entry of
//!   sluice's configuration, which is how a table is known until there is a Glue API) or, as
//!   sluice's documented extension for a table that does not exist, from
//!   [`Schema::infer`] over the first buffer.
//! - [`Deserializer`] is the input side: [`OpenXJsonSerDe`] (`CaseInsensitive`,
//!   `ColumnToJsonKeyMappings`, `ConvertDotsInJsonKeysToUnderscores`) or [`HiveJsonSerDe`]
//!   (`TimestampFormats`). `reader.rs` documents how each JSON value is read into each type.
//! - [`ParquetWriterConfig`] is the output side, Firehose's `ParquetSerDe` (`Compression`,
//!   `BlockSizeBytes`, `PageSizeBytes`, `EnableDictionaryCompression`, `MaxPaddingBytes`,
//!   `WriterVersion`); [`OutputFormat::Orc`] is refused with
//!   [`ConfigError::OrcNotSupported`].
//! - [`Converter`] puts the three together once per delivery stream; [`Converter::write`]
//!   (into any `Write`) and [`Converter::write_parquet`] (into `Bytes`) convert a buffer.
//!   A record that does not convert is a [`RecordError`] (its index, a
//!   [`RecordErrorKind`] whose `code()` is the error record's `lastErrorCode`, and a message
//!   naming the column) for the caller's `format-conversion-failed` error prefix; the other
//!   records are written. [`ConvertError`] is a failure of the whole batch.
//!
//! Parquet as written: one column per schema column, all optional; strings as UTF-8 byte
//! arrays, `tinyint`/`smallint` as INT32 with 8/16-bit annotations, `decimal` as Parquet
//! DECIMAL, `date` as DATE, `timestamp` as INT64 `TIMESTAMP(MICROS, UTC)` (Firehose writes
//! Hive's INT96; readers take both), lists / maps / structs in the spec's three-level layout
//! (`element`, `key_value`). Everything is synchronous: callers run it on a blocking thread.

mod column;
mod decimal;
mod deserializer;
mod error;
mod joda;
pub mod limits;
mod reader;
mod schema;
mod timestamp;
mod types;
mod writer;

pub use deserializer::{Deserializer, HiveJsonSerDe, OpenXJsonSerDe};
pub use error::{ConfigError, ConvertError, RecordError, RecordErrorKind, SchemaError, TypeError};
pub use schema::{Column, ColumnConfig, Schema, TableConfig};
pub use types::{ColumnType, StructField};
pub use writer::{
    write_parquet, Compression, Converter, OutputFormat, ParquetWriterConfig, WriterVersion,
    Written,
};
