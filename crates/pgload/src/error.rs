//! The crate's errors: a configuration that cannot be used (refused when a delivery stream is
//! created or updated), a record that does not convert, and a failed load, each failed load
//! with its [`ErrorClass`].

use std::fmt;
use std::time::Duration;

/// How a failed attempt is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The object cannot be loaded as it is (a record that does not convert, a constraint the
    /// rows break, a damaged GZIP stream). Retrying cannot change that, so the object fails at
    /// once and goes to the error manifest. Redshift's COPY fails the same way (MAXERROR 0).
    BadData,
    /// The server could not be reached or gave up on the transaction: connection refused or
    /// reset, the server shutting down or starting, a serialization failure or deadlock, too
    /// many connections, an attempt that timed out. Retried with back-off.
    Transient,
    /// The destination is not ready for the load: the table or a column does not exist, a
    /// column's type is not one sluice loads, authentication failed, no privilege. Firehose
    /// retries these for the whole retry duration too (a table may be created meanwhile).
    Destination,
}

impl ErrorClass {
    /// Whether an attempt that failed this way is tried again while the retry duration lasts.
    pub fn is_retried(self) -> bool {
        !matches!(self, ErrorClass::BadData)
    }
}

/// A `ClusterJDBCURL` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JdbcUrlError {
    #[error(
        "ClusterJDBCURL must be a PostgreSQL-protocol URL, jdbc:postgresql://host[:port]/database \
         or jdbc:redshift://host[:port]/database; got `{url}`"
    )]
    Scheme { url: String },
    #[error("ClusterJDBCURL is longer than {max} characters")]
    TooLong { max: usize },
    #[error("ClusterJDBCURL `{url}`: {reason}")]
    Invalid { url: String, reason: String },
    #[error(
        "ClusterJDBCURL `{url}` asks for TLS ({parameter}); sluice connects to PostgreSQL \
         without TLS, so use a server on loopback or a trusted network and drop the parameter"
    )]
    TlsRequired { url: String, parameter: String },
}

/// A `CopyCommand` (DataTableName, DataTableColumns, CopyOptions) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyCommandError {
    #[error("DataTableName must be 1 to {max} characters")]
    TableName { max: usize },
    #[error("{member} is longer than {max} characters")]
    TooLong { member: &'static str, max: usize },
    #[error("DataTableColumns: {reason}")]
    Columns { reason: String },
    #[error("CopyOptions: {reason}")]
    Syntax { reason: String },
    #[error("CopyOptions: {option} is not supported by sluice{hint}")]
    Unsupported { option: String, hint: String },
    #[error("CopyOptions: {first} cannot be used with {second}")]
    Conflict { first: String, second: String },
}

/// Where a record is in its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPosition {
    /// The record's ordinal in the object, from 1 (header lines are not counted).
    pub record: u64,
    /// The line the record starts on, from 1 (delimited text; JSON records are counted only).
    pub line: Option<u64>,
}

impl fmt::Display for RecordPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "record {} (line {line})", self.record),
            None => write!(f, "record {}", self.record),
        }
    }
}

/// A record that does not convert into the table's columns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}{}: {message}", column_part(.column, .type_name))]
pub struct RecordError {
    pub position: RecordPosition,
    /// The column whose value did not convert, when one did not.
    pub column: Option<String>,
    /// The column's type as PostgreSQL writes it (`integer`, `character varying(20)`).
    pub type_name: Option<String>,
    pub message: String,
}

fn column_part(column: &Option<String>, type_name: &Option<String>) -> String {
    match (column, type_name) {
        (Some(c), Some(t)) => format!(", column \"{c}\" ({t})"),
        (Some(c), None) => format!(", column \"{c}\""),
        _ => String::new(),
    }
}

/// Why a load failed (inside [`crate::LoadOutcome::Failed`]) or could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the object is {bytes} bytes; at most {max} are loaded")]
    ObjectTooLarge { bytes: usize, max: usize },
    #[error("object {object_key}: {source}")]
    Record {
        object_key: String,
        #[source]
        source: RecordError,
    },
    #[error("object {object_key}: {reason}")]
    Body { object_key: String, reason: String },
    #[error("table {table} does not exist (DataTableName; the table must exist before a load)")]
    TableNotFound { table: String },
    #[error("column \"{column}\" of table {table} does not exist (DataTableColumns)")]
    ColumnNotFound { table: String, column: String },
    #[error("column \"{column}\" is listed twice in DataTableColumns")]
    DuplicateColumn { column: String },
    #[error(
        "column \"{column}\" of table {table} has type {type_name}, which sluice does not load \
         (text, varchar, char, smallint, integer, bigint, real, double precision, numeric, \
         boolean, timestamp, timestamptz, date, json, jsonb, uuid, and domains over them)"
    )]
    UnsupportedColumnType {
        table: String,
        column: String,
        type_name: String,
    },
    #[error("table {table} has no column to load")]
    NoColumns { table: String },
    #[error(
        "columns \"{first}\" and \"{second}\" of table {table} differ only in case, so \
         JSON 'auto ignorecase' cannot tell their keys apart (list one in DataTableColumns)"
    )]
    AmbiguousColumns {
        table: String,
        first: String,
        second: String,
    },
    #[error("{during}: {}", describe(.source))]
    Postgres {
        during: &'static str,
        class: ErrorClass,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("the attempt took longer than {after:?} and was abandoned")]
    AttemptTimedOut { after: Duration },
}

impl LoadError {
    /// How an attempt that failed with this error is treated.
    pub fn class(&self) -> ErrorClass {
        match self {
            LoadError::ObjectTooLarge { .. }
            | LoadError::Record { .. }
            | LoadError::Body { .. } => ErrorClass::BadData,
            LoadError::TableNotFound { .. }
            | LoadError::ColumnNotFound { .. }
            | LoadError::DuplicateColumn { .. }
            | LoadError::UnsupportedColumnType { .. }
            | LoadError::NoColumns { .. }
            | LoadError::AmbiguousColumns { .. } => ErrorClass::Destination,
            LoadError::Postgres { class, .. } => *class,
            LoadError::AttemptTimedOut { .. } => ErrorClass::Transient,
        }
    }

    /// The record error, when a record is why the load failed.
    pub fn record(&self) -> Option<&RecordError> {
        match self {
            LoadError::Record { source, .. } => Some(source),
            _ => None,
        }
    }

    pub(crate) fn postgres(during: &'static str, source: tokio_postgres::Error) -> LoadError {
        LoadError::Postgres {
            during,
            class: classify(&source),
            source,
        }
    }
}

/// A PostgreSQL error on one line: the server's message, SQLSTATE, detail, hint and context
/// (for a COPY, the row: `COPY t, line 2`), or the client's error and its causes.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        for (label, part) in [
            ("DETAIL", db.detail()),
            ("HINT", db.hint()),
            ("CONTEXT", db.where_()),
        ] {
            if let Some(part) = part {
                text.push_str(&format!("; {label}: {part}"));
            }
        }
        return text;
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Classes a PostgreSQL error by its SQLSTATE (or by having none: an I/O error, a closed
/// connection, a timeout while connecting).
pub(crate) fn classify(error: &tokio_postgres::Error) -> ErrorClass {
    let Some(code) = error.code() else {
        // No SQLSTATE: the connection failed (refused, reset, closed, timed out) or the
        // protocol broke. All of them are about reaching the server.
        return ErrorClass::Transient;
    };
    let code = code.code();
    match code {
        // serialization_failure, deadlock_detected
        "40001" | "40P01" => ErrorClass::Transient,
        // admin_shutdown, crash_shutdown, cannot_connect_now, idle_session_timeout
        "57P01" | "57P02" | "57P03" | "57P05" => ErrorClass::Transient,
        // too_many_connections, insufficient_resources, out_of_memory, disk_full
        "53300" | "53000" | "53200" | "53100" => ErrorClass::Transient,
        // lock_not_available, query_canceled (statement_timeout, pg_cancel_backend)
        "55P03" | "57014" => ErrorClass::Transient,
        _ if code.starts_with("08") => ErrorClass::Transient,
        // data_exception, integrity_constraint_violation: the rows themselves.
        _ if code.starts_with("22") || code.starts_with("23") => ErrorClass::BadData,
        _ => ErrorClass::Destination,
    }
}

/// Quotes at most [`crate::limits::ERROR_VALUE_CHARS_MAX`] characters of a value for a
/// message.
pub(crate) fn quote_value(value: &str) -> String {
    let max = crate::limits::ERROR_VALUE_CHARS_MAX;
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("`{head}…`")
    } else {
        format!("`{head}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_error_names_record_and_column() {
        let e = RecordError {
            position: RecordPosition {
                record: 3,
                line: Some(7),
            },
            column: Some("amount".into()),
            type_name: Some("integer".into()),
            message: "`abc` is not an integer".into(),
        };
        assert_eq!(
            e.to_string(),
            "record 3 (line 7), column \"amount\" (integer): `abc` is not an integer"
        );
    }

    #[test]
    fn quoted_values_are_cut_at_the_limit() {
        let max = crate::limits::ERROR_VALUE_CHARS_MAX;
        let at = "x".repeat(max);
        assert_eq!(quote_value(&at), format!("`{at}`"));
        let past = "x".repeat(max + 1);
        assert_eq!(quote_value(&past), format!("`{at}…`"));
    }

    #[test]
    fn only_bad_data_is_not_retried() {
        assert!(!ErrorClass::BadData.is_retried());
        assert!(ErrorClass::Transient.is_retried());
        assert!(ErrorClass::Destination.is_retried());
    }
}
