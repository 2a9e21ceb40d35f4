//! CreateDeliveryStream, DescribeDeliveryStream, ListDeliveryStreams, DeleteDeliveryStream,
//! UpdateDestination, Start/StopDeliveryStreamEncryption.

use serde_json::{json, Value as Json};
use sluice_aws::validate::Validator;
use sluice_aws::value::Input;
use sluice_aws::ApiError;

use super::{name_member, present, Entry, Firehose};
use crate::destination::{self, parse_s3, S3Spec};
use crate::error::FirehoseError;
use crate::limits;
use crate::metrics::StreamMetrics;
use crate::model::{DeliveryStream, Encryption, KinesisSource, Status, StreamType};

const STREAM_TYPES: [&str; 4] = [
    "DirectPut",
    "KinesisStreamAsSource",
    "MSKAsSource",
    "DatabaseAsSource",
];
const KEY_TYPES: [&str; 2] = ["AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK"];

/// Destinations of the API model that sluice does not deliver to (yet).
const OTHER_DESTINATIONS: [&str; 7] = [
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "SplunkDestinationConfiguration",
    "HttpEndpointDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
];

fn not_supported(member: &str) -> ApiError {
    ApiError::invalid_argument(format!(
        "sluice does not support {member} yet. See docs/specs/firehose-compat.md."
    ))
}

/// `DeliveryStreamEncryptionConfigurationInput`.
fn parse_encryption_input(
    v: &mut Validator,
    e: Input<'_>,
    path: &str,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let key_type = e.str("KeyType")?;
    let key_arn = e.str("KeyARN")?;
    v.pattern(
        key_arn,
        &format!("{path}.keyARN"),
        destination::KMS_ARN_PATTERN,
        destination::is_kms_arn,
    );
    v.str_len(key_arn, &format!("{path}.keyARN"), 1, limits::ARN_CHARS_MAX);
    v.required(key_type, &format!("{path}.keyType"));
    v.one_of(key_type, &format!("{path}.keyType"), &KEY_TYPES);
    Ok((key_type.map(str::to_string), key_arn.map(str::to_string)))
}

/// The rule between KeyType and KeyARN.
fn check_key(key_type: Option<&str>, key_arn: Option<&str>) -> Result<(), ApiError> {
    match (key_type, key_arn) {
        (Some("CUSTOMER_MANAGED_CMK"), None) => Err(ApiError::invalid_argument(
            "KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK.",
        )),
        (Some("AWS_OWNED_CMK"), Some(_)) => Err(ApiError::invalid_argument(
            "KeyARN must not be specified when KeyType is AWS_OWNED_CMK.",
        )),
        _ => Ok(()),
    }
}

#[derive(Debug)]
pub struct CreateDeliveryStreamRequest {
    name: String,
    stream_type: StreamType,
    source: Option<(String, String)>,
    throughput_hint: Option<i64>,
    encryption: Option<(Option<String>, Option<String>)>,
    s3: S3Spec,
    legacy: bool,
    /// RedshiftDestinationConfiguration (`s3` is then its intermediate S3 location).
    redshift: Option<crate::redshift::RedshiftSpec>,
    tags: Vec<(String, String)>,
}

impl CreateDeliveryStreamRequest {
    pub fn parse(input: Input<'_>) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let name = input.str("DeliveryStreamName")?;
        name_member(&mut v, name, true);
        let stream_type = input.str("DeliveryStreamType")?;
        v.one_of(stream_type, "deliveryStreamType", &STREAM_TYPES);
        let mut throughput_hint = None;
        if let Some(d) = input.structure("DirectPutSourceConfiguration")? {
            throughput_hint = d.int("ThroughputHintInMBs")?;
            v.required(
                throughput_hint,
                "directPutSourceConfiguration.throughputHintInMBs",
            );
            v.range(
                throughput_hint,
                "directPutSourceConfiguration.throughputHintInMBs",
                Some(limits::THROUGHPUT_HINT_MB_MIN),
                Some(limits::THROUGHPUT_HINT_MB_MAX),
            );
        }
        let mut source = None;
        if let Some(k) = input.structure("KinesisStreamSourceConfiguration")? {
            let arn = k.str("KinesisStreamARN")?;
            let role = k.str("RoleARN")?;
            let p = "kinesisStreamSourceConfiguration";
            v.required(arn, &format!("{p}.kinesisStreamARN"));
            v.pattern(
                arn,
                &format!("{p}.kinesisStreamARN"),
                destination::STREAM_ARN_PATTERN,
                destination::is_stream_arn,
            );
            v.str_len(
                arn,
                &format!("{p}.kinesisStreamARN"),
                1,
                limits::ARN_CHARS_MAX,
            );
            v.required(role, &format!("{p}.roleARN"));
            v.pattern(
                role,
                &format!("{p}.roleARN"),
                destination::ROLE_ARN_PATTERN,
                destination::is_role_arn,
            );
            v.str_len(role, &format!("{p}.roleARN"), 1, limits::ARN_CHARS_MAX);
            source = Some((
                arn.unwrap_or_default().to_string(),
                role.unwrap_or_default().to_string(),
            ));
        }
        let mut encryption = None;
        if let Some(e) = input.structure("DeliveryStreamEncryptionConfigurationInput")? {
            encryption = Some(parse_encryption_input(
                &mut v,
                e,
                "deliveryStreamEncryptionConfigurationInput",
            )?);
        }
        let s3 = input.structure("S3DestinationConfiguration")?;
        let ext = input.structure("ExtendedS3DestinationConfiguration")?;
        let mut spec = None;
        if let Some(s) = s3 {
            spec = Some(parse_s3(
                &mut v,
                s,
                "s3DestinationConfiguration",
                true,
                false,
            )?);
        }
        let mut ext_spec = None;
        if let Some(e) = ext {
            ext_spec = Some(parse_s3(
                &mut v,
                e,
                "extendedS3DestinationConfiguration",
                true,
                true,
            )?);
        }
        let redshift = match input.structure("RedshiftDestinationConfiguration")? {
            Some(r) => Some(crate::redshift::parse(
                &mut v,
                r,
                "redshiftDestinationConfiguration",
                true,
            )?),
            None => None,
        };
        let tags = super::tags::parse_tags(&mut v, input, "tags")?;
        v.finish()?;
        // Past the model's constraints: Firehose's own checks.
        let name = present(name)?.to_string();
        let stream_type = match stream_type.unwrap_or("DirectPut") {
            "DirectPut" => StreamType::DirectPut,
            "KinesisStreamAsSource" => StreamType::KinesisStreamAsSource,
            other => return Err(not_supported(&format!("DeliveryStreamType {other}"))),
        };
        for member in OTHER_DESTINATIONS {
            if input.has(member) {
                return Err(not_supported(member));
            }
        }
        if input.has("MSKSourceConfiguration") || input.has("DatabaseSourceConfiguration") {
            return Err(not_supported(
                "MSKSourceConfiguration and DatabaseSourceConfiguration",
            ));
        }
        match (stream_type, &source) {
            (StreamType::KinesisStreamAsSource, None) => {
                return Err(ApiError::invalid_argument(
                    "KinesisStreamSourceConfiguration is required when DeliveryStreamType is KinesisStreamAsSource.",
                ))
            }
            (StreamType::DirectPut, Some(_)) => {
                return Err(ApiError::invalid_argument(
                    "KinesisStreamSourceConfiguration is only allowed when DeliveryStreamType is KinesisStreamAsSource.",
                ))
            }
            _ => {}
        }
        if stream_type == StreamType::KinesisStreamAsSource && encryption.is_some() {
            return Err(ApiError::invalid_argument(
                "Server-side encryption is not supported for a delivery stream whose source is a Kinesis data stream.",
            ));
        }
        if let Some((t, a)) = &encryption {
            check_key(t.as_deref(), a.as_deref())?;
        }
        if redshift.is_some() && (spec.is_some() || ext_spec.is_some()) {
            return Err(ApiError::invalid_argument(
                "Only one destination configuration can be specified: RedshiftDestinationConfiguration, S3DestinationConfiguration or ExtendedS3DestinationConfiguration.",
            ));
        }
        let (s3, legacy) = match (spec, ext_spec) {
            _ if redshift.is_some() => (S3Spec::default(), false),
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_argument(
                    "Only one destination configuration can be specified: S3DestinationConfiguration or ExtendedS3DestinationConfiguration.",
                ))
            }
            (Some(s), None) => (s, true),
            (None, Some(e)) => (e, false),
            (None, None) => {
                return Err(ApiError::invalid_argument(
                    "A destination configuration is required: ExtendedS3DestinationConfiguration or S3DestinationConfiguration.",
                ))
            }
        };
        Ok(CreateDeliveryStreamRequest {
            name,
            stream_type,
            source,
            throughput_hint,
            encryption,
            s3,
            legacy,
            redshift,
            tags,
        })
    }
}

#[derive(Debug)]
pub struct DescribeDeliveryStreamRequest {
    name: String,
    limit: Option<i64>,
    exclusive_start: Option<String>,
}

impl DescribeDeliveryStreamRequest {
    pub fn parse(input: Input<'_>) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let name = input.str("DeliveryStreamName")?;
        name_member(&mut v, name, true);
        let limit = input.int("Limit")?;
        v.range(
            limit,
            "limit",
            Some(limits::LIST_LIMIT_MIN),
            Some(limits::LIST_LIMIT_MAX),
        );
        let start = input.str("ExclusiveStartDestinationId")?;
        v.pattern(start, "exclusiveStartDestinationId", "[a-zA-Z0-9-]+", |s| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        v.str_len(
            start,
            "exclusiveStartDestinationId",
            1,
            limits::DESTINATION_ID_CHARS_MAX,
        );
        v.finish()?;
        Ok(DescribeDeliveryStreamRequest {
            name: present(name)?.to_string(),
            limit,
            exclusive_start: start.map(str::to_string),
        })
    }
}

#[derive(Debug)]
pub struct ListDeliveryStreamsRequest {
    limit: usize,
    stream_type: Option<String>,
    exclusive_start: Option<String>,
}

impl ListDeliveryStreamsRequest {
    pub fn parse(input: Input<'_>) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let limit = input.int("Limit")?;
        v.range(
            limit,
            "limit",
            Some(limits::LIST_LIMIT_MIN),
            Some(limits::LIST_LIMIT_MAX),
        );
        let stream_type = input.str("DeliveryStreamType")?;
        v.one_of(stream_type, "deliveryStreamType", &STREAM_TYPES);
        let start = input.str("ExclusiveStartDeliveryStreamName")?;
        v.name(
            start,
            "exclusiveStartDeliveryStreamName",
            limits::DELIVERY_STREAM_NAME_CHARS_MAX,
        );
        v.finish()?;
        Ok(ListDeliveryStreamsRequest {
            limit: limit.map_or(limits::LIST_LIMIT_DEFAULT, |l| l as usize),
            stream_type: stream_type.map(str::to_string),
            exclusive_start: start.map(str::to_string),
        })
    }
}

#[derive(Debug)]
pub struct DeleteDeliveryStreamRequest {
    name: String,
}

impl DeleteDeliveryStreamRequest {
    pub fn parse(input: Input<'_>) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let name = input.str("DeliveryStreamName")?;
        name_member(&mut v, name, true);
        // AllowForceDelete changes nothing here: there is no KMS grant to give up.
        input.bool("AllowForceDelete")?;
        v.finish()?;
        Ok(DeleteDeliveryStreamRequest {
            name: present(name)?.to_string(),
        })
    }
}

#[derive(Debug)]
pub struct UpdateDestinationRequest {
    name: String,
    version: String,
    destination_id: String,
    s3: Option<S3Spec>,
    extended: Option<S3Spec>,
    redshift: Option<crate::redshift::RedshiftSpec>,
}

impl UpdateDestinationRequest {
    pub fn parse(input: Input<'_>) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let name = input.str("DeliveryStreamName")?;
        name_member(&mut v, name, true);
        let version = input.str("CurrentDeliveryStreamVersionId")?;
        v.required(version, "currentDeliveryStreamVersionId");
        v.pattern(version, "currentDeliveryStreamVersionId", "[0-9]+", |s| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
        });
        v.str_len(
            version,
            "currentDeliveryStreamVersionId",
            1,
            limits::VERSION_ID_CHARS_MAX,
        );
        let id = input.str("DestinationId")?;
        v.required(id, "destinationId");
        v.pattern(id, "destinationId", "[a-zA-Z0-9-]+", |s| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        v.str_len(id, "destinationId", 1, limits::DESTINATION_ID_CHARS_MAX);
        let s3 = match input.structure("S3DestinationUpdate")? {
            Some(s) => Some(parse_s3(&mut v, s, "s3DestinationUpdate", false, false)?),
            None => None,
        };
        let extended = match input.structure("ExtendedS3DestinationUpdate")? {
            Some(s) => Some(parse_s3(
                &mut v,
                s,
                "extendedS3DestinationUpdate",
                false,
                true,
            )?),
            None => None,
        };
        let redshift = match input.structure("RedshiftDestinationUpdate")? {
            Some(r) => Some(crate::redshift::parse(
                &mut v,
                r,
                "redshiftDestinationUpdate",
                false,
            )?),
            None => None,
        };
        v.finish()?;
        for member in OTHER_DESTINATIONS {
            let update = member.replace("Configuration", "Update");
            if input.has(&update) {
                return Err(not_supported(&update));
            }
        }
        Ok(UpdateDestinationRequest {
            name: present(name)?.to_string(),
            version: present(version)?.to_string(),
            destination_id: present(id)?.to_string(),
            s3,
            extended,
            redshift,
        })
    }
}

#[derive(Debug)]
pub struct EncryptionRequest {
    name: String,
    start: bool,
    key: Option<(Option<String>, Option<String>)>,
}

impl EncryptionRequest {
    pub fn parse(input: Input<'_>, start: bool) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let name = input.str("DeliveryStreamName")?;
        name_member(&mut v, name, true);
        let mut key = None;
        if start {
            if let Some(e) = input.structure("DeliveryStreamEncryptionConfigurationInput")? {
                key = Some(parse_encryption_input(
                    &mut v,
                    e,
                    "deliveryStreamEncryptionConfigurationInput",
                )?);
            }
        }
        v.finish()?;
        if let Some((t, a)) = &key {
            check_key(t.as_deref(), a.as_deref())?;
        }
        Ok(EncryptionRequest {
            name: present(name)?.to_string(),
            start,
            key,
        })
    }
}

impl Firehose {
    pub(crate) async fn create(&self, r: CreateDeliveryStreamRequest) -> Result<Json, ApiError> {
        let (dest, redshift) = match r.redshift {
            Some(spec) => {
                let (rs, staging) = spec.apply(None)?;
                (staging, Some(rs))
            }
            None => (r.s3.apply(None)?, None),
        };
        destination::check(&dest).map_err(ApiError::invalid_argument)?;
        self.check_kms_key(dest.kms_key_arn.as_deref())?;
        if let Some((_, a)) = &r.encryption {
            self.check_kms_key(a.as_deref())?;
        }
        if let Some(rs) = &redshift {
            crate::redshift::check(rs, &dest, false).map_err(ApiError::invalid_argument)?;
        }
        let _one_at_a_time = self.changes.lock().await;
        let now = self.now();
        let source = match &r.source {
            Some((arn, role)) => {
                let (account, stream) = destination::stream_arn_parts(arn).ok_or_else(|| {
                    ApiError::invalid_argument(format!("{arn} is not a Kinesis stream ARN."))
                })?;
                if account != self.account || self.source.describe(stream).is_err() {
                    return Err(ApiError::invalid_argument(format!(
                        "Stream {stream} under account {account} not found."
                    )));
                }
                Some(KinesisSource {
                    stream_arn: arn.clone(),
                    role_arn: role.clone(),
                    start_ms: now,
                })
            }
            None => None,
        };
        {
            let entries = self.lock();
            if entries.contains_key(&r.name) {
                return Err(self.fail(FirehoseError::AlreadyExists { name: r.name }));
            }
            if entries.len() >= self.config.delivery_streams_max as usize {
                return Err(self.fail(FirehoseError::TooManyStreams {
                    count: self.config.delivery_streams_max,
                }));
            }
        }
        let (key_type, key_arn) = r.encryption.clone().unwrap_or((None, None));
        let ds = DeliveryStream {
            name: r.name.clone(),
            stream_type: r.stream_type,
            status: if self.config.create_delay_ms > 0 {
                Status::Creating
            } else {
                Status::Active
            },
            status_ms: now,
            created_ms: now,
            last_update_ms: None,
            version: 1,
            source,
            throughput_hint_mb: r.throughput_hint,
            destination: dest,
            legacy_s3: r.legacy,
            redshift,
            encryption: Encryption {
                enabled: r.encryption.is_some(),
                key_type,
                key_arn,
            },
            tags: r.tags,
        };
        sluice_aws::blocking(|| -> Result<(), FirehoseError> {
            if ds.stream_type == StreamType::DirectPut {
                self.ensure_buffer(&ds.name)?;
            }
            self.store.put(&ds)?;
            Ok(())
        })
        .map_err(|e| self.fail(e))?;
        let metrics = StreamMetrics::new(&ds.name);
        let runner = self.runner(&ds, metrics.clone());
        let arn = self.arn(&ds);
        self.lock().insert(
            ds.name.clone(),
            Entry {
                ds,
                runner,
                metrics,
            },
        );
        tracing::info!(delivery_stream = %r.name, "delivery stream created");
        Ok(json!({ "DeliveryStreamARN": arn }))
    }

    pub(crate) fn describe(&self, r: DescribeDeliveryStreamRequest) -> Result<Json, ApiError> {
        let entries = self.lock();
        let e = entries.get(&r.name).ok_or_else(|| {
            self.fail(FirehoseError::NotFound {
                name: r.name.clone(),
            })
        })?;
        // One destination: a page starting after it (or of no size) has none.
        let with_destination = r.exclusive_start.as_deref() != Some(limits::DESTINATION_ID)
            && r.limit.is_none_or(|l| l > 0);
        Ok(json!({
            "DeliveryStreamDescription": e.ds.describe(&self.region, &self.account, self.status(&e.ds), with_destination)
        }))
    }

    pub(crate) fn list(&self, r: ListDeliveryStreamsRequest) -> Json {
        let entries = self.lock();
        let matching: Vec<&String> = entries
            .iter()
            .filter(|(_, e)| {
                r.stream_type
                    .as_deref()
                    .is_none_or(|t| e.ds.stream_type.as_str() == t)
            })
            .filter(|(name, _)| {
                r.exclusive_start
                    .as_deref()
                    .is_none_or(|s| name.as_str() > s)
            })
            .map(|(name, _)| name)
            .collect();
        let more = matching.len() > r.limit;
        let names: Vec<&String> = matching.into_iter().take(r.limit).collect();
        json!({ "DeliveryStreamNames": names, "HasMoreDeliveryStreams": more })
    }

    pub(crate) async fn delete(&self, r: DeleteDeliveryStreamRequest) -> Result<Json, ApiError> {
        let _one_at_a_time = self.changes.lock().await;
        let (runner, ds) = {
            let mut entries = self.lock();
            let e = entries.get_mut(&r.name).ok_or_else(|| {
                self.fail(FirehoseError::NotFound {
                    name: r.name.clone(),
                })
            })?;
            match self.status(&e.ds) {
                Status::Creating => {
                    return Err(self.fail(FirehoseError::NotActive {
                        name: r.name.clone(),
                        status: Status::Creating,
                    }))
                }
                Status::Deleting => return Ok(json!({})),
                Status::Active => {}
            }
            e.ds.status = Status::Deleting;
            e.ds.status_ms = self.now();
            (e.runner.take(), e.ds.clone())
        };
        if let Some(runner) = runner {
            runner.stop().await;
        }
        let done = sluice_aws::blocking(|| -> Result<bool, FirehoseError> {
            self.store.put(&ds)?;
            if self.config.delete_delay_ms <= 0 {
                self.finish_delete(&ds)?;
                return Ok(true);
            }
            Ok(false)
        })
        .map_err(|e| self.fail(e))?;
        if done {
            self.lock().remove(&ds.name);
        }
        tracing::info!(delivery_stream = %r.name, "delivery stream deleted");
        Ok(json!({}))
    }

    pub(crate) async fn update_destination(
        &self,
        r: UpdateDestinationRequest,
    ) -> Result<Json, ApiError> {
        let _one_at_a_time = self.changes.lock().await;
        let mut ds = {
            let entries = self.lock();
            let e = entries.get(&r.name).ok_or_else(|| {
                self.fail(FirehoseError::NotFound {
                    name: r.name.clone(),
                })
            })?;
            e.ds.clone()
        };
        if self.status(&ds) != Status::Active {
            return Err(self.fail(FirehoseError::NotActive {
                name: r.name.clone(),
                status: self.status(&ds),
            }));
        }
        if r.version != ds.version.to_string() {
            return Err(self.fail(FirehoseError::VersionMismatch {
                name: r.name.clone(),
                current: ds.version,
                given: r.version.clone(),
            }));
        }
        if r.destination_id != limits::DESTINATION_ID {
            return Err(ApiError::invalid_argument(format!(
                "Destination Id {} not found.",
                r.destination_id
            )));
        }
        if r.redshift.is_some() && (r.s3.is_some() || r.extended.is_some()) {
            return Err(ApiError::invalid_argument(
                "Only one destination update can be specified: RedshiftDestinationUpdate, S3DestinationUpdate or ExtendedS3DestinationUpdate.",
            ));
        }
        let switching_to_s3 = ds.redshift.is_some() && (r.s3.is_some() || r.extended.is_some());
        let redshift_spec = r.redshift;
        let spec = match (r.s3, r.extended) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_argument(
                    "Only one destination update can be specified: S3DestinationUpdate or ExtendedS3DestinationUpdate.",
                ))
            }
            (Some(s), None) | (None, Some(s)) => s,
            (None, None) => S3Spec::default(),
        };
        let was_dynamic = ds.destination.dynamic_partitioning_enabled();
        // A change of destination type merges nothing (Firehose): every required member of
        // the new destination must be given.
        let (dest, redshift) = match redshift_spec {
            Some(rs) => {
                let base = ds.redshift.as_ref().map(|b| (b, &ds.destination));
                let (rs, staging) = rs.apply(base)?;
                crate::redshift::check(&rs, &staging, true).map_err(ApiError::invalid_argument)?;
                (staging, Some(rs))
            }
            None if switching_to_s3 => {
                if spec.role_arn.is_none() || spec.bucket_arn.is_none() {
                    return Err(ApiError::invalid_argument(
                        "RoleARN and BucketARN are required when the destination is not already Amazon S3.",
                    ));
                }
                (spec.apply(None)?, None)
            }
            None => (spec.apply(Some(&ds.destination))?, ds.redshift.clone()),
        };
        if was_dynamic != dest.dynamic_partitioning_enabled() {
            return Err(ApiError::invalid_argument(
                "Dynamic partitioning can only be enabled when a delivery stream is created, and cannot be disabled.",
            ));
        }
        destination::check(&dest).map_err(ApiError::invalid_argument)?;
        self.check_kms_key(dest.kms_key_arn.as_deref())?;
        ds.destination = dest;
        ds.redshift = redshift;
        ds.version += 1;
        ds.last_update_ms = Some(self.now());
        sluice_aws::blocking(|| self.store.put(&ds)).map_err(|e| self.fail(e.into()))?;
        // The delivery task starts again with the new destination, from its checkpoint: the
        // records it had buffered are delivered under the new configuration.
        let (old, metrics) = {
            let mut entries = self.lock();
            match entries.get_mut(&r.name) {
                Some(e) => {
                    e.ds = ds.clone();
                    (e.runner.take(), e.metrics.clone())
                }
                None => return Err(ApiError::internal()),
            }
        };
        if let Some(old) = old {
            old.stop().await;
        }
        let runner = self.runner(&ds, metrics);
        if let Some(e) = self.lock().get_mut(&r.name) {
            e.runner = runner;
        }
        Ok(json!({}))
    }

    pub(crate) async fn encryption(&self, r: EncryptionRequest) -> Result<Json, ApiError> {
        let _one_at_a_time = self.changes.lock().await;
        let mut ds = {
            let entries = self.lock();
            entries
                .get(&r.name)
                .ok_or_else(|| {
                    self.fail(FirehoseError::NotFound {
                        name: r.name.clone(),
                    })
                })?
                .ds
                .clone()
        };
        if ds.stream_type == StreamType::KinesisStreamAsSource {
            return Err(ApiError::invalid_argument(
                "Server-side encryption is not supported for a delivery stream whose source is a Kinesis data stream.",
            ));
        }
        if self.status(&ds) != Status::Active {
            return Err(self.fail(FirehoseError::NotActive {
                name: r.name.clone(),
                status: self.status(&ds),
            }));
        }
        if let Some((_, a)) = &r.key {
            self.check_kms_key(a.as_deref())?;
        }
        if r.start {
            let (t, a) = r.key.unwrap_or((Some("AWS_OWNED_CMK".into()), None));
            ds.encryption = Encryption {
                enabled: true,
                key_type: t.or_else(|| Some("AWS_OWNED_CMK".into())),
                key_arn: a,
            };
        } else {
            ds.encryption.enabled = false;
        }
        sluice_aws::blocking(|| self.store.put(&ds)).map_err(|e| self.fail(e.into()))?;
        // When the objects' encryption changes, the delivery task starts again from its
        // checkpoint (as after UpdateDestination): what it had buffered is written the new way.
        let keys = self.lake.keyring();
        let (old, metrics) = {
            let mut entries = self.lock();
            let Some(e) = entries.get_mut(&r.name) else {
                return Ok(json!({}));
            };
            let before = object_sse(&e.ds, &keys);
            e.ds.encryption = ds.encryption.clone();
            if before == object_sse(&e.ds, &keys) {
                return Ok(json!({}));
            }
            (e.runner.take(), e.metrics.clone())
        };
        if let Some(old) = old {
            old.stop().await;
        }
        let ds = match self.lock().get(&r.name) {
            Some(e) => e.ds.clone(),
            None => return Ok(json!({})),
        };
        let runner = self.runner(&ds, metrics);
        if let Some(e) = self.lock().get_mut(&r.name) {
            e.runner = runner;
        }
        Ok(json!({}))
    }

    /// A KMS key named by a destination's KMSEncryptionConfig or a CUSTOMER_MANAGED_CMK must
    /// be one of the lake's keys (`[[keys]]`): otherwise InvalidKMSResourceException, as
    /// Firehose answers for a key KMS cannot find.
    fn check_kms_key(&self, arn: Option<&str>) -> Result<(), ApiError> {
        match arn {
            Some(_) if self.lake.is_remote() => Err(ApiError::invalid_argument(
                "sluice encrypts objects at rest in its local lake only; with a remote lake ([lake] endpoint) use the store's own encryption.",
            )),
            Some(a) if !self.lake.keyring().has_key(a) => Err(ApiError::new(
                sluice_aws::ErrorType::InvalidKmsResource,
                format!("KMS key {a} is not found: sluice's KMS keys are the [[keys]] of its configuration (docs/operations.md)."),
            )),
            _ => Ok(()),
        }
    }
}

/// How a delivery stream's objects are encrypted at rest:
/// - the destination's `KMSEncryptionConfig.AWSKMSKeyARN`: SSE-KMS (`aws:kms`) with that key;
/// - otherwise, with stream encryption ENABLED: CUSTOMER_MANAGED_CMK is SSE-KMS with its
///   KeyARN, AWS_OWNED_CMK is SSE-S3 (`AES256`) with the lake's default key, or nothing when
///   no default key is configured (the status is then only shown);
/// - otherwise not encrypted.
pub(crate) fn object_sse(
    ds: &crate::model::DeliveryStream,
    keys: &sluice_lake::Keyring,
) -> Option<sluice_lake::Sse> {
    if let Some(arn) = &ds.destination.kms_key_arn {
        return Some(sluice_lake::Sse::kms(arn.clone()));
    }
    let e = &ds.encryption;
    if !e.enabled {
        return None;
    }
    match (e.key_type.as_deref(), &e.key_arn) {
        (Some("CUSTOMER_MANAGED_CMK"), Some(arn)) => Some(sluice_lake::Sse::kms(arn.clone())),
        _ => keys.default_arn().map(|_| sluice_lake::Sse::aes256()),
    }
}
