//! The Firehose operations. Each has one request parser (`parse(input)`) that reads the
//! members with `Input`'s getters and checks them with the model's constraints in AWS's
//! wording (ValidationException), then the operation (a [`Firehose`] method) looks the
//! delivery stream up, applies Firehose's own rules (InvalidArgumentException and the
//! others, through `error::api`) and answers.
//!
//! One file per family: `streams` (create, describe, list, delete, UpdateDestination,
//! encryption), `records` (PutRecord, PutRecordBatch), `tags`; this one has the service, its
//! state and the dispatch.

pub mod records;
mod streams;
mod tags;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use serde_json::Value as Json;
use sluice_aws::value::Input;
use sluice_aws::{ApiError, Format, NowMs, Reply};
use sluice_lake::Lake;
use sluice_streams::{
    Clock, ConsumerName, InitialPosition, LogConfig, StreamMode, StreamName, StreamSpec, Streams,
    StreamsConfig,
};

use crate::config::FirehoseConfig;
use crate::conversion::Catalog;
use crate::delivery::{Delivery, Runner, Source};
use crate::error::{api, FirehoseError};
use crate::metrics::StreamMetrics;
use crate::model::{DeliveryStream, Status, StreamType};
use crate::store::{Store, StoreError};
use crate::transform::{Pipeline, RecordTransformer};

/// Every operation of the Firehose API model; those sluice does not have answer with
/// [`ApiError::not_implemented`].
pub const OPERATIONS: &[&str] = &[
    "CreateDeliveryStream",
    "DeleteDeliveryStream",
    "DescribeDeliveryStream",
    "ListDeliveryStreams",
    "ListTagsForDeliveryStream",
    "PutRecord",
    "PutRecordBatch",
    "StartDeliveryStreamEncryption",
    "StopDeliveryStreamEncryption",
    "TagDeliveryStream",
    "UntagDeliveryStream",
    "UpdateDestination",
];

/// How the service is opened.
pub struct FirehoseOptions {
    pub config: FirehoseConfig,
    /// sluice's data directory: delivery streams live under `<data_dir>/firehose`.
    pub data_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    /// The storage settings of the durable buffers (sluice's `[storage]`).
    pub log: LogConfig,
    /// The Kinesis registry (sources of KinesisStreamAsSource delivery streams).
    pub streams: Arc<Streams>,
    pub lake: Lake,
    pub clock: Arc<dyn Clock>,
    /// The tables record format conversion knows (sluice's `[[tables]]`).
    pub tables: Vec<sluice_columnar::TableConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the delivery streams' buffers: {0}")]
    Buffers(#[from] sluice_streams::StreamsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a delivery stream: {0}")]
    DeliveryStream(#[from] FirehoseError),
    #[error("[[tables]]: {0}")]
    Tables(String),
}

pub(crate) struct Entry {
    ds: DeliveryStream,
    runner: Option<Runner>,
    metrics: StreamMetrics,
}

/// The Firehose service: delivery streams, their durable buffers and delivery tasks.
pub struct Firehose {
    config: FirehoseConfig,
    region: String,
    account: String,
    /// The private registry of buffer streams (one per DirectPut delivery stream).
    buffers: Arc<Streams>,
    source: Arc<Streams>,
    lake: Lake,
    store: Store,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Serializes changes to delivery streams (create, delete, update...).
    changes: tokio::sync::Mutex<()>,
    transformer: OnceLock<Arc<dyn RecordTransformer>>,
    /// Record format conversion: the `[[tables]]` and the inferred schemas.
    pub(crate) catalog: Catalog,
    now_ms: NowMs,
    /// Round-robin over buffer shards, one shard per put.
    next_shard: AtomicU64,
}

impl std::fmt::Debug for Firehose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Firehose").finish_non_exhaustive()
    }
}

/// The consumer name a delivery stream reads its source under (`firehose/<name>`; a
/// delivery stream name, `[a-zA-Z0-9_.-]{1,64}`, always makes one).
pub(crate) fn consumer_name(name: &str) -> Option<ConsumerName> {
    ConsumerName::new(&format!("firehose/{name}"))
}

/// A JSON answer in the request's format.
pub(crate) fn reply(v: Json, format: Format) -> Reply {
    match format {
        Format::Json => Reply::Encoded(serde_json::to_vec(&v).unwrap_or_default()),
        Format::Cbor => {
            let mut out = Vec::new();
            match ciborium::into_writer(&v, &mut out) {
                Ok(()) => Reply::Encoded(out),
                Err(_) => Reply::Encoded(serde_json::to_vec(&v).unwrap_or_default()),
            }
        }
    }
}

impl Firehose {
    /// Opens the delivery streams and their buffers under `<data_dir>/firehose` (blocking),
    /// finishing deletions a crash interrupted. Nothing is delivered before
    /// [`Firehose::start`].
    pub fn open(o: FirehoseOptions) -> Result<Arc<Firehose>, OpenError> {
        let root = o.data_dir.join("firehose");
        let buffers_config = StreamsConfig {
            log: o.log.clone(),
            // One buffer stream per delivery stream: the quota is the delivery streams'.
            shard_limit: o
                .config
                .delivery_streams_max
                .saturating_mul(o.config.buffer_shards)
                .max(1),
            on_demand_stream_limit: 0,
            account_id: o.account_id.clone(),
            region: o.region.clone(),
            ..StreamsConfig::new(&root)
        };
        let buffers = Arc::new(Streams::open(buffers_config, o.clock.clone())?);
        let store = Store::open(root.join("delivery-streams"))?;
        let catalog = Catalog::new(&o.tables, root.join("schemas")).map_err(OpenError::Tables)?;
        let clock = o.clock.clone();
        let now_ms: NowMs = Arc::new(move || clock.now_ms());
        let fh = Firehose {
            config: o.config,
            region: o.region,
            account: o.account_id,
            buffers,
            source: o.streams,
            lake: o.lake,
            store,
            entries: Mutex::new(BTreeMap::new()),
            changes: tokio::sync::Mutex::new(()),
            transformer: OnceLock::new(),
            catalog,
            now_ms,
            next_shard: AtomicU64::new(0),
        };
        let mut known = std::collections::BTreeSet::new();
        for ds in fh.store.load_all()? {
            if ds.status == Status::Deleting {
                fh.finish_delete(&ds)?;
                continue;
            }
            if ds.stream_type == StreamType::DirectPut {
                fh.ensure_buffer(&ds.name)?;
            }
            known.insert(ds.name.clone());
            let metrics = StreamMetrics::new(&ds.name);
            fh.lock().insert(
                ds.name.clone(),
                Entry {
                    ds,
                    runner: None,
                    metrics,
                },
            );
        }
        // Buffers no delivery stream owns: a create that crashed before its file was written.
        for name in fh.buffers.names() {
            if !known.contains(&name) {
                let _ = fh.buffers.delete_stream(&name, true);
                if let Some(c) = consumer_name(&name) {
                    let _ = fh.buffers.delete_checkpoints(&c);
                }
            }
        }
        Ok(Arc::new(fh))
    }

    /// Runs transformation Lambda functions with `t` (set once, before [`Firehose::start`]).
    pub fn set_transformer(&self, t: Arc<dyn RecordTransformer>) {
        let _ = self.transformer.set(t);
    }

    /// Starts every delivery stream's delivery task (on a tokio runtime).
    pub fn start(&self) {
        let mut entries = self.lock();
        for e in entries.values_mut() {
            if e.runner.is_none() {
                e.runner = self.runner(&e.ds, e.metrics.clone());
            }
        }
    }

    /// Stops every delivery task (each finishes the object it is writing).
    pub async fn shutdown(&self) {
        let runners: Vec<Runner> = self
            .lock()
            .values_mut()
            .filter_map(|e| e.runner.take())
            .collect();
        for r in runners {
            r.stop().await;
        }
        let buffers = self.buffers.clone();
        let _ = tokio::task::spawn_blocking(move || buffers.close()).await;
    }

    /// Time-driven work (the host calls it periodically, off the async workers): deletions
    /// past their delay, CREATING streams becoming ACTIVE on disk, retention of the buffers.
    pub fn tick(&self) {
        let now = (self.now_ms)();
        let due: Vec<DeliveryStream> = self
            .lock()
            .values()
            .filter(|e| {
                e.ds.status == Status::Deleting
                    && now >= e.ds.status_ms + self.config.delete_delay_ms
            })
            .map(|e| e.ds.clone())
            .collect();
        for ds in due {
            if let Err(e) = self.finish_delete(&ds) {
                tracing::error!(delivery_stream = %ds.name, error = %e, "could not finish deleting");
                continue;
            }
            self.lock().remove(&ds.name);
        }
        self.buffers.tick();
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn now(&self) -> i64 {
        (self.now_ms)()
    }

    pub(crate) fn fail(&self, e: FirehoseError) -> ApiError {
        api(e, &self.account)
    }

    pub(crate) fn arn(&self, ds: &DeliveryStream) -> String {
        ds.arn(&self.region, &self.account)
    }

    /// The status a delivery stream shows now.
    pub(crate) fn status(&self, ds: &DeliveryStream) -> Status {
        match ds.status {
            Status::Creating if self.now() >= ds.status_ms + self.config.create_delay_ms => {
                Status::Active
            }
            s => s,
        }
    }

    /// The buffer stream of a DirectPut delivery stream, made if missing (blocking).
    fn ensure_buffer(&self, name: &str) -> Result<(), FirehoseError> {
        if self.buffers.describe(name).is_ok() {
            return Ok(());
        }
        let stream = StreamName::new(name)
            .ok_or_else(|| FirehoseError::Invalid(format!("{name} is not a valid name")))?;
        self.buffers.create_stream(
            &stream,
            StreamSpec {
                shard_count: self.config.buffer_shards,
                mode: StreamMode::Provisioned,
                max_record_size_kib: 1024,
                tags: BTreeMap::new(),
            },
        )?;
        let hours = self.config.buffer_retention_hours;
        if hours != 24 {
            self.buffers.set_retention(name, hours, hours > 24)?;
        }
        Ok(())
    }

    /// Removes what a deleted delivery stream leaves: its buffer, checkpoints and file
    /// (blocking).
    fn finish_delete(&self, ds: &DeliveryStream) -> Result<(), FirehoseError> {
        let consumer = consumer_name(&ds.name);
        match ds.stream_type {
            StreamType::DirectPut => {
                match self.buffers.delete_stream(&ds.name, true) {
                    Ok(()) | Err(sluice_streams::StreamsError::StreamNotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                if let Some(c) = &consumer {
                    self.buffers.delete_checkpoints(c)?;
                }
            }
            StreamType::KinesisStreamAsSource => {
                if let Some(c) = &consumer {
                    self.source.delete_checkpoints(c)?;
                }
            }
        }
        self.store.remove(&ds.name)?;
        if let Err(e) = self.catalog.forget(&ds.name) {
            tracing::warn!(delivery_stream = %ds.name, error = %e, "could not remove the inferred schema");
        }
        Ok(())
    }

    /// A delivery task for `ds` (`None` only for a name that makes no consumer name, which
    /// the name checks exclude).
    fn runner(&self, ds: &DeliveryStream, metrics: StreamMetrics) -> Option<Runner> {
        let consumer = consumer_name(&ds.name)?;
        let (source, initial, kinesis, stream) = match &ds.source {
            Some(s) => (
                self.source.clone(),
                InitialPosition::AtTimestamp(s.start_ms),
                true,
                s.stream_name().to_string(),
            ),
            None => (
                self.buffers.clone(),
                InitialPosition::TrimHorizon,
                false,
                ds.name.clone(),
            ),
        };
        let pipeline = Pipeline::new(
            &ds.destination,
            self.transformer.get().cloned(),
            self.arn(ds),
            self.region.clone(),
            self.config.retry_backoff_ms_max,
        )
        .unwrap_or_else(|e| {
            // Checked when the destination was set; a failure here is logged and the
            // records go through unprocessed rather than stopping delivery.
            tracing::error!(delivery_stream = %ds.name, error = %e, "processors do not load");
            Pipeline::identity()
        });
        let conversion = self
            .catalog
            .conversion(
                &ds.name,
                ds.destination
                    .data_format_conversion
                    .as_ref()
                    .filter(|_| ds.destination.conversion_enabled()),
                &self.region,
                &self.account,
            )
            .unwrap_or_else(|e| {
                // Checked when the destination was set (and the tables when sluice started).
                tracing::error!(delivery_stream = %ds.name, error = %e, "record format conversion does not load");
                None
            });
        Some(Runner::start(Delivery {
            name: ds.name.clone(),
            version: ds.version,
            dest: ds.destination.clone(),
            source: Source {
                streams: source,
                stream,
                consumer,
                initial,
                kinesis,
            },
            lake: self.lake.clone(),
            pipeline,
            conversion,
            config: self.config.clone(),
            metrics,
            now_ms: self.now_ms.clone(),
            // A remote lake does not encrypt (KMS keys are refused for it at create).
            sse: streams::object_sse(ds, &self.lake.keyring()).filter(|_| !self.lake.is_remote()),
            redshift: ds.redshift.as_ref().map(|rs| {
                Arc::new(crate::redshift::Target::new(
                    &ds.name,
                    rs,
                    &ds.destination,
                    &self.config,
                ))
            }),
        }))
    }

    /// Runs one operation.
    pub async fn call(&self, op: &str, input: Input<'_>) -> Result<Reply, ApiError> {
        let format = input.format;
        let v = match op {
            "CreateDeliveryStream" => {
                self.create(streams::CreateDeliveryStreamRequest::parse(input)?)
                    .await?
            }
            "DescribeDeliveryStream" => {
                self.describe(streams::DescribeDeliveryStreamRequest::parse(input)?)?
            }
            "ListDeliveryStreams" => self.list(streams::ListDeliveryStreamsRequest::parse(input)?),
            "DeleteDeliveryStream" => {
                self.delete(streams::DeleteDeliveryStreamRequest::parse(input)?)
                    .await?
            }
            "UpdateDestination" => {
                self.update_destination(streams::UpdateDestinationRequest::parse(input)?)
                    .await?
            }
            "StartDeliveryStreamEncryption" => {
                self.encryption(streams::EncryptionRequest::parse(input, true)?)
                    .await?
            }
            "StopDeliveryStreamEncryption" => {
                self.encryption(streams::EncryptionRequest::parse(input, false)?)
                    .await?
            }
            "PutRecord" => {
                self.put_record(records::PutRecordRequest::parse(input)?)
                    .await?
            }
            "PutRecordBatch" => {
                return self
                    .put_record_batch(records::PutRecordBatchRequest::parse(input)?, format)
                    .await;
            }
            "TagDeliveryStream" => self.tag(tags::TagRequest::parse(input)?).await?,
            "UntagDeliveryStream" => self.untag(tags::UntagRequest::parse(input)?).await?,
            "ListTagsForDeliveryStream" => self.list_tags(tags::ListTagsRequest::parse(input)?)?,
            other if OPERATIONS.contains(&other) => {
                return Err(ApiError::not_implemented(
                    other,
                    "docs/specs/firehose-compat.md",
                ))
            }
            _ => return Err(ApiError::unknown_operation()),
        };
        Ok(reply(v, format))
    }
}

/// The one check of a `DeliveryStreamName` member.
pub(crate) fn name_member(
    v: &mut sluice_aws::validate::Validator,
    name: Option<&str>,
    required: bool,
) {
    if required {
        v.required(name, "deliveryStreamName");
    }
    v.name(
        name,
        "deliveryStreamName",
        crate::limits::DELIVERY_STREAM_NAME_CHARS_MAX,
    );
}

/// A required member once the validator has passed.
pub(crate) fn present<T>(member: Option<T>) -> Result<T, ApiError> {
    member.ok_or_else(ApiError::internal)
}

impl sluice_aws::JsonService for Firehose {
    fn target_prefix(&self) -> &'static str {
        "Firehose_20150804."
    }

    fn signing_name(&self) -> &'static str {
        "firehose"
    }

    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    fn call<'a>(
        &'a self,
        call: sluice_aws::Call<'a>,
    ) -> sluice_aws::BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(Firehose::call(self, call.op, call.input))
    }

    /// A well-formed JSON PutRecordBatch skips the generic request tree.
    fn fast<'a>(
        &'a self,
        op: &str,
        format: Format,
        body: &bytes::Bytes,
    ) -> Option<sluice_aws::BoxFuture<'a, Result<Reply, ApiError>>> {
        if op != "PutRecordBatch" || format != Format::Json {
            return None;
        }
        let request = records::PutRecordBatchRequest::decode_json(body)?;
        Some(Box::pin(async move {
            self.put_record_batch(request, Format::Json).await
        }))
    }
}

/// A JSON request body as the tree the parsers read (tests).
#[cfg(test)]
pub(crate) fn json_tree(body: &str) -> sluice_aws::value::Value {
    sluice_aws::codec::decode(body.as_bytes(), Format::Json).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits;
    use sluice_aws::ErrorType;

    fn input(v: &sluice_aws::value::Value) -> Input<'_> {
        Input::root(v, Format::Json).unwrap()
    }

    fn batch(n: usize, size: usize) -> String {
        let data = base64_of(&vec![b'x'; size]);
        let recs: Vec<String> = (0..n).map(|_| format!("{{\"Data\":\"{data}\"}}")).collect();
        format!(
            "{{\"DeliveryStreamName\":\"s\",\"Records\":[{}]}}",
            recs.join(",")
        )
    }

    fn base64_of(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn put_record_batch_limits() {
        let ok = json_tree(&batch(500, 1));
        assert!(records::PutRecordBatchRequest::parse(input(&ok)).is_ok());
        let e =
            records::PutRecordBatchRequest::parse(input(&json_tree(&batch(501, 1)))).unwrap_err();
        assert_eq!(e.error_type, ErrorType::Validation);
        assert!(e.message.unwrap().contains("at 'records' failed to satisfy constraint: Member must have length less than or equal to 500"));
        assert!(
            records::PutRecordBatchRequest::parse(input(&json_tree(&batch(
                1,
                limits::RECORD_DATA_BYTES_MAX
            ))))
            .is_ok()
        );
        let e = records::PutRecordBatchRequest::parse(input(&json_tree(&batch(
            1,
            limits::RECORD_DATA_BYTES_MAX + 1,
        ))))
        .unwrap_err();
        assert_eq!(
            e.message.unwrap(),
            "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' at 'records.1.member.data' failed to satisfy constraint: Member must have length less than or equal to 1024000"
        );
        // 4 MiB per call: 4 records of 1 MiB are exactly at the limit, one byte more is past it.
        assert!(
            records::PutRecordBatchRequest::parse(input(&json_tree(&batch(4, 1 << 20)))).is_err()
        ); // 1 MiB > 1,000 KiB
        let at = json_tree(&batch(5, (4 << 20) / 5));
        assert!(records::PutRecordBatchRequest::parse(input(&at)).is_ok());
        let past = format!(
            "{{\"DeliveryStreamName\":\"s\",\"Records\":[{}, {{\"Data\":\"{}\"}}]}}",
            (0..4)
                .map(|_| format!("{{\"Data\":\"{}\"}}", base64_of(&vec![0u8; 1_000_000])))
                .collect::<Vec<_>>()
                .join(","),
            base64_of(&vec![0u8; (4 << 20) - 4_000_000 + 1])
        );
        let e = records::PutRecordBatchRequest::parse(input(&json_tree(&past))).unwrap_err();
        assert_eq!(e.error_type, ErrorType::InvalidArgument);
        let e = records::PutRecordBatchRequest::parse(input(&json_tree(&batch(0, 1)))).unwrap_err();
        assert!(e
            .message
            .unwrap()
            .contains("Member must have length greater than or equal to 1"));
    }

    #[test]
    fn names_and_hints_are_checked() {
        let long = "a".repeat(65);
        let t = json_tree(&format!("{{\"DeliveryStreamName\":\"{long}\"}}"));
        let e = streams::DescribeDeliveryStreamRequest::parse(input(&t)).unwrap_err();
        assert!(e.message.unwrap().contains("at 'deliveryStreamName' failed to satisfy constraint: Member must have length less than or equal to 64"));
        let t = json_tree(&format!(
            "{{\"DeliveryStreamName\":\"{}\"}}",
            "a".repeat(64)
        ));
        assert!(streams::DescribeDeliveryStreamRequest::parse(input(&t)).is_ok());
        let create = |size: i64, interval: i64| {
            format!(
                "{{\"DeliveryStreamName\":\"s\",\"ExtendedS3DestinationConfiguration\":{{\"RoleARN\":\"arn:aws:iam::000000000000:role/r\",\"BucketARN\":\"arn:aws:s3:::lake\",\"BufferingHints\":{{\"SizeInMBs\":{size},\"IntervalInSeconds\":{interval}}}}}}}"
            )
        };
        for (size, interval, ok) in [
            (1, 0, true),
            (128, 900, true),
            (0, 0, false),
            (129, 0, false),
            (1, 901, false),
            (1, -1, false),
        ] {
            let t = json_tree(&create(size, interval));
            assert_eq!(
                streams::CreateDeliveryStreamRequest::parse(input(&t)).is_ok(),
                ok,
                "{size} {interval}"
            );
        }
        let e = streams::CreateDeliveryStreamRequest::parse(input(&json_tree(&create(129, 901))))
            .unwrap_err();
        assert_eq!(
            e.message.unwrap(),
            "2 validation errors detected: Value '129' at 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to satisfy constraint: Member must have value less than or equal to 128; Value '901' at 'extendedS3DestinationConfiguration.bufferingHints.intervalInSeconds' failed to satisfy constraint: Member must have value less than or equal to 900"
        );
        let e = streams::CreateDeliveryStreamRequest::parse(input(&json_tree(
            "{\"DeliveryStreamName\":\"s\"}",
        )))
        .unwrap_err();
        assert_eq!(e.error_type, ErrorType::InvalidArgument);
    }

    #[test]
    fn tags_limits() {
        let tags = |n: usize| {
            let t: Vec<String> = (0..n)
                .map(|i| format!("{{\"Key\":\"k{i}\",\"Value\":\"v\"}}"))
                .collect();
            format!(
                "{{\"DeliveryStreamName\":\"s\",\"Tags\":[{}]}}",
                t.join(",")
            )
        };
        assert!(tags::TagRequest::parse(input(&json_tree(&tags(50)))).is_ok());
        assert!(tags::TagRequest::parse(input(&json_tree(&tags(51)))).is_err());
        let bad = "{\"DeliveryStreamName\":\"s\",\"Tags\":[{\"Key\":\"aws:x\"}]}";
        assert!(tags::TagRequest::parse(input(&json_tree(bad))).is_err());
    }
}
