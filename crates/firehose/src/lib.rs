//! `sluice-firehose` is the Firehose API of sluice and the delivery behind it: the only crate
//! that spells Firehose shapes.
//!
//! The main types:
//! - [`Firehose`] is the service, a [`sluice_aws::JsonService`] (target prefix
//!   `Firehose_20150804.`, signing name `firehose`): delivery streams kept as JSON files
//!   (`store`), each DirectPut one with a durable buffer, a stream of its own in a private
//!   `sluice_streams::Streams` registry under `<data_dir>/firehose` (not visible to the
//!   Kinesis API); a put is acknowledged once its records are durable there.
//! - [`delivery`] runs one task per delivery stream: a named `StreamConsumer` over the buffer
//!   (or over the source Kinesis stream, de-aggregating KPL records: [`kpl`]), buffers per
//!   partition bounded in memory, objects written into the lake ([`sluice_lake::Lake`]) when a
//!   buffering hint is reached, checkpoints committed only past records that are in an object.
//! - [`prefix`] evaluates custom prefixes and names objects as Firehose does; [`compression`]
//!   writes GZIP, ZIP, Snappy and HADOOP_SNAPPY objects; [`transform`] runs the processors
//!   (Lambda through a [`RecordTransformer`], MetadataExtraction with jq, record
//!   de-aggregation, delimiters); [`conversion`] is record format conversion
//!   (DataFormatConversionConfiguration: JSON to Parquet with `sluice-columnar`, the schema
//!   from sluice's `[[tables]]` or inferred from the first buffer, records that do not
//!   convert under `format-conversion-failed`).
//! - [`destination`] reads and checks S3 destination configurations; [`error::api`] is the one
//!   mapping to Firehose's errors; [`limits`] holds every protocol limit; [`config`] is
//!   `[firehose]`; [`metrics`] the CloudWatch metrics as Prometheus series.
//! - [`redshift`] is the Redshift destination (RedshiftDestinationConfiguration) with
//!   PostgreSQL in Redshift's place: objects staged in the intermediate bucket as for S3, then
//!   each loaded with `sluice-pgload` (one transaction with its bookkeeping row, retried for
//!   RetryOptions.DurationInSeconds) or listed in an error manifest under `errors/`, before
//!   the checkpoint moves past its records.

pub mod compression;
pub mod config;
pub mod conversion;
pub mod delivery;
pub mod destination;
pub mod error;
pub mod kpl;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod prefix;
pub mod redshift;
mod store;
pub mod transform;

pub use config::FirehoseConfig;
pub use ops::{Firehose, FirehoseOptions, OpenError, OPERATIONS};
pub use sluice_columnar::TableConfig;
pub use transform::{BoxFuture, RecordTransformer};
