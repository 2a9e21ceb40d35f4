//! The crate's errors: a bad configuration (refused when a delivery stream is created), a bad
//! record (reported per record, the batch goes on) and a failed batch.

use std::fmt;

/// A column type string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid column type `{input}`: {reason} at character {position}")]
pub struct TypeError {
    /// The type string, cut to its first 128 characters.
    pub input: String,
    /// Character offset (0-based) where parsing stopped.
    pub position: usize,
    pub reason: String,
}

/// A schema (a table's columns) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("a table needs at least one column")]
    NoColumns,
    #[error("the table has {count} columns; at most {max} are supported")]
    TooManyColumns { count: usize, max: usize },
    #[error("a column name must not be empty")]
    EmptyName,
    #[error("column name `{name}` is longer than {max} characters")]
    NameTooLong { name: String, max: usize },
    #[error("column `{name}` is declared twice (column names are case-insensitive)")]
    DuplicateColumn { name: String },
    #[error("column `{column}`: {source}")]
    Type {
        column: String,
        #[source]
        source: TypeError,
    },
    #[error("the table's {what} must not be empty")]
    EmptyTableName { what: &'static str },
}

/// A conversion setting out of Firehose's range, or one sluice does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "ORC output (OrcSerDe) is not supported by sluice; use ParquetSerDe as the \
         OutputFormatConfiguration serializer"
    )]
    OrcNotSupported,
    #[error("{member} must be between {min} and {max}, got {value}")]
    OutOfRange {
        member: &'static str,
        value: i64,
        min: u64,
        max: u64,
    },
    #[error("{member} must be one of {allowed}, got `{value}`")]
    NotOneOf {
        member: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("{member} must be 1 to {max} characters and not blank, got `{value}`")]
    BadString {
        member: &'static str,
        value: String,
        max: usize,
    },
    #[error("TimestampFormats has {count} formats; at most {max} are supported")]
    TooManyTimestampFormats { count: usize, max: usize },
    #[error("timestamp format `{format}`: {reason}")]
    TimestampFormat { format: String, reason: String },
}

/// Why one record could not be converted, as Firehose classes it in the `lastErrorCode` of the
/// error record it writes under the `format-conversion-failed` error output type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordErrorKind {
    /// Not JSON, or JSON that is not an object (or a run of objects).
    ParseError,
    /// JSON whose values do not fit the schema's column types.
    MalformedData,
}

impl RecordErrorKind {
    /// The error code written into the error record's `lastErrorCode`.
    pub fn code(self) -> &'static str {
        match self {
            RecordErrorKind::ParseError => "DataFormatConversion.ParseError",
            RecordErrorKind::MalformedData => "DataFormatConversion.MalformedData",
        }
    }
}

/// One record that was not converted: the caller writes it to the error output prefix
/// (`format-conversion-failed`); the others are in the Parquet file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Position of the record in the input, from 0.
    pub index: usize,
    pub kind: RecordErrorKind,
    /// What was wrong, naming the column (`user.tags[2]`) where that applies. Never contains
    /// more than a short excerpt of the record.
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {}: {}: {}",
            self.index,
            self.kind.code(),
            self.message
        )
    }
}

impl std::error::Error for RecordError {}

/// A batch that failed as a whole (no file): not the records' fault, so the caller retries or
/// surfaces it, and sends nothing to the error prefix.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A state the conversion never reaches (a bug), reported rather than panicking.
    #[error("internal error: {0}")]
    Internal(&'static str),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("building Arrow arrays: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("writing Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}
