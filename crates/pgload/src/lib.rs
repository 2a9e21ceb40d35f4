//! Firehose's Redshift destination with PostgreSQL in Redshift's place: a staged object (the
//! records of one buffer, concatenated, as Firehose stages them in S3) loaded into a table as
//! Redshift's `COPY` would load it, with PostgreSQL's binary COPY (`tokio-postgres`).
//!
//! - [`JdbcUrl`] reads `ClusterJDBCURL` (`jdbc:postgresql://host:port/db` or
//!   `jdbc:redshift://host:port/db`); connections use no TLS (`NoTls`), so the server is on
//!   loopback or a network the operator trusts, and a URL that asks for TLS is refused.
//! - [`CopyCommand`] is `DataTableName`, `DataTableColumns` and `CopyOptions` checked once;
//!   [`CopyOptions`] documents which of Redshift's COPY parameters are applied (JSON
//!   `'auto'` / `'auto ignorecase'`, CSV, delimited text, GZIP, TIMEFORMAT, NULL handling,
//!   MAXERROR, ...) and which are refused.
//! - [`Loader`] (with its [`LoaderConfig`]: the JDBC URL, Username, Password,
//!   `RetryOptions.DurationInSeconds`) loads one object per [`Loader::load`]: the table's
//!   columns and types read from the catalog, the object parsed on the blocking pool and
//!   streamed into `COPY ... FROM STDIN (FORMAT binary)` in bounded batches, and a row in the
//!   bookkeeping table [`BOOKKEEPING_TABLE`] committed in the same transaction, so a retried
//!   load of the same object (after a crash, a lost commit answer, a PostgreSQL restart)
//!   neither loses nor duplicates rows: the load is then reported
//!   [`LoadOutcome::AlreadyLoaded`]. Failed attempts are retried with back-off while the
//!   retry duration lasts, unless the data itself is bad ([`ErrorClass`]).
//! - [`error_manifest`] and [`error_manifest_key`] are what the caller writes for an object
//!   that failed for good ([`LoadOutcome::Failed`]): Firehose's COPY manifest under
//!   `errors/manifests/`.
//!
//! `value.rs` documents how each JSON or delimited value is read into each column type
//! (`text`/`varchar`/`char`, `smallint`/`integer`/`bigint`, `real`/`double precision`,
//! `numeric`, `boolean`, `timestamp`/`timestamptz`, `date`, `json`/`jsonb`, `uuid`, and
//! domains over them). It knows nothing of Firehose's API shapes, S3 or HTTP.

mod delimited;
mod error;
mod jdbc;
mod json;
pub mod limits;
mod loader;
mod manifest;
mod numeric;
mod options;
mod rows;
mod table;
mod timestamp;
mod value;

pub use error::{
    CopyCommandError, ErrorClass, JdbcUrlError, LoadError, RecordError, RecordPosition,
};
pub use jdbc::{JdbcScheme, JdbcUrl};
pub use loader::{LoadOutcome, Loader, LoaderConfig, LoaderConfigError, BOOKKEEPING_TABLE};
pub use manifest::{error_manifest, error_manifest_key};
pub use options::{CopyCommand, CopyOptions, Format, TimeFormat};
