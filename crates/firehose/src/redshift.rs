//! The seam for the Redshift destination (RedshiftDestinationConfiguration, with PostgreSQL
//! in Redshift's place): objects are staged in the lake as for an S3 destination, then each
//! is loaded by a [`Loader`] in one transaction, the load and its bookkeeping committed
//! together. Until a loader is plugged in, CreateDeliveryStream and UpdateDestination refuse
//! the configuration with InvalidArgumentException ("sluice does not support
//! RedshiftDestinationConfiguration yet").

use bytes::Bytes;

use crate::transform::BoxFuture;

/// Loads one staged object into a table (COPY).
pub trait Loader: Send + Sync + 'static {
    /// Loads `object` (the staged object's bytes, its records concatenated) under
    /// `copy_command` (the CopyCommand as given: DataTableName, DataTableColumns,
    /// CopyOptions); `Err` is retried until the destination's RetryOptions run out.
    fn load<'a>(
        &'a self,
        copy_command: &'a serde_json::Value,
        object_key: &'a str,
        object: Bytes,
    ) -> BoxFuture<'a, Result<(), String>>;
}
