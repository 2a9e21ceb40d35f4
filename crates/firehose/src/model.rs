//! What sluice keeps of a delivery stream ([`DeliveryStream`], written as JSON by `store`) and
//! how DescribeDeliveryStream shows it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::compression::Compression;
use crate::limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamType {
    DirectPut,
    KinesisStreamAsSource,
}

impl StreamType {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::DirectPut => "DirectPut",
            StreamType::KinesisStreamAsSource => "KinesisStreamAsSource",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Creating,
    Active,
    Deleting,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "CREATING",
            Status::Active => "ACTIVE",
            Status::Deleting => "DELETING",
        }
    }
}

/// A Kinesis data stream source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KinesisSource {
    pub stream_arn: String,
    pub role_arn: String,
    /// DeliveryStartTimestamp: records that arrived from then on are delivered.
    pub start_ms: i64,
}

impl KinesisSource {
    /// The stream's name (the ARN's last part).
    pub fn stream_name(&self) -> &str {
        self.stream_arn
            .rsplit_once("stream/")
            .map_or("", |(_, name)| name)
    }
}

/// Server-side encryption of the delivery stream (Start/StopDeliveryStreamEncryption).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    pub enabled: bool,
    pub key_type: Option<String>,
    pub key_arn: Option<String>,
}

/// One processor of a ProcessingConfiguration, as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processor {
    pub kind: String,
    pub parameters: Vec<(String, String)>,
}

impl Processor {
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processing {
    pub enabled: Option<bool>,
    pub processors: Vec<Processor>,
}

impl Processing {
    /// The processors that run: none unless Enabled is true.
    pub fn active(&self) -> &[Processor] {
        if self.enabled == Some(true) {
            &self.processors
        } else {
            &[]
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicPartitioning {
    pub enabled: Option<bool>,
    pub retry_duration_s: Option<i64>,
}

/// An S3 destination (S3DestinationConfiguration or ExtendedS3DestinationConfiguration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Destination {
    pub role_arn: String,
    pub bucket_arn: String,
    pub prefix: Option<String>,
    pub error_output_prefix: Option<String>,
    pub size_mb: u32,
    pub interval_s: u32,
    pub compression: Compression,
    /// `EncryptionConfiguration.KMSEncryptionConfig.AWSKMSKeyARN`; `None` is NoEncryption.
    pub kms_key_arn: Option<String>,
    pub cloudwatch: Option<Value>,
    pub processing: Option<Processing>,
    pub backup_enabled: bool,
    pub backup: Option<Box<S3Destination>>,
    pub data_format_conversion: Option<Value>,
    pub dynamic_partitioning: Option<DynamicPartitioning>,
    pub file_extension: Option<String>,
    pub custom_time_zone: Option<String>,
}

impl S3Destination {
    /// The bucket's name (the ARN's last part).
    pub fn bucket(&self) -> &str {
        self.bucket_arn
            .rsplit_once(":::")
            .map_or(self.bucket_arn.as_str(), |(_, b)| b)
    }

    pub fn dynamic_partitioning_enabled(&self) -> bool {
        self.dynamic_partitioning
            .as_ref()
            .is_some_and(|d| d.enabled == Some(true))
    }

    pub fn conversion_enabled(&self) -> bool {
        self.data_format_conversion
            .as_ref()
            .and_then(|c| c.get("Enabled"))
            .and_then(Value::as_bool)
            // Enabled defaults to true when the structure is given.
            .unwrap_or(self.data_format_conversion.is_some())
    }

    pub fn processors(&self) -> &[Processor] {
        self.processing.as_ref().map_or(&[], Processing::active)
    }

    /// An S3 destination with the defaults of an absent member.
    pub fn new(role_arn: String, bucket_arn: String) -> S3Destination {
        S3Destination {
            role_arn,
            bucket_arn,
            prefix: None,
            error_output_prefix: None,
            size_mb: limits::BUFFER_SIZE_MB_DEFAULT,
            interval_s: limits::BUFFER_INTERVAL_S_DEFAULT,
            compression: Compression::Uncompressed,
            kms_key_arn: None,
            cloudwatch: None,
            processing: None,
            backup_enabled: false,
            backup: None,
            data_format_conversion: None,
            dynamic_partitioning: None,
            file_extension: None,
            custom_time_zone: None,
        }
    }

    /// `S3DestinationDescription`.
    pub fn describe_basic(&self) -> Value {
        let mut m = Map::new();
        m.insert("RoleARN".into(), json!(self.role_arn));
        m.insert("BucketARN".into(), json!(self.bucket_arn));
        if let Some(p) = &self.prefix {
            m.insert("Prefix".into(), json!(p));
        }
        if let Some(p) = &self.error_output_prefix {
            m.insert("ErrorOutputPrefix".into(), json!(p));
        }
        m.insert(
            "BufferingHints".into(),
            json!({"SizeInMBs": self.size_mb, "IntervalInSeconds": self.interval_s}),
        );
        m.insert("CompressionFormat".into(), json!(self.compression.as_str()));
        m.insert(
            "EncryptionConfiguration".into(),
            match &self.kms_key_arn {
                Some(arn) => json!({"KMSEncryptionConfig": {"AWSKMSKeyARN": arn}}),
                None => json!({"NoEncryptionConfig": "NoEncryption"}),
            },
        );
        m.insert(
            "CloudWatchLoggingOptions".into(),
            self.cloudwatch
                .clone()
                .unwrap_or_else(|| json!({"Enabled": false})),
        );
        Value::Object(m)
    }

    /// `ExtendedS3DestinationDescription`.
    pub fn describe_extended(&self) -> Value {
        let mut v = self.describe_basic();
        if let Value::Object(m) = &mut v {
            if let Some(p) = &self.processing {
                m.insert(
                    "ProcessingConfiguration".into(),
                    json!({
                        "Enabled": p.enabled.unwrap_or(false),
                        "Processors": p.processors.iter().map(|pr| json!({
                            "Type": pr.kind,
                            "Parameters": pr.parameters.iter().map(|(n, v)| json!({
                                "ParameterName": n, "ParameterValue": v
                            })).collect::<Vec<_>>(),
                        })).collect::<Vec<_>>(),
                    }),
                );
            }
            m.insert(
                "S3BackupMode".into(),
                json!(if self.backup_enabled {
                    "Enabled"
                } else {
                    "Disabled"
                }),
            );
            if let Some(b) = &self.backup {
                m.insert("S3BackupDescription".into(), b.describe_basic());
            }
            if let Some(c) = &self.data_format_conversion {
                m.insert("DataFormatConversionConfiguration".into(), c.clone());
            }
            if let Some(d) = &self.dynamic_partitioning {
                let mut dp = Map::new();
                dp.insert("Enabled".into(), json!(d.enabled.unwrap_or(false)));
                dp.insert(
                    "RetryOptions".into(),
                    json!({"DurationInSeconds": d.retry_duration_s.unwrap_or(300)}),
                );
                m.insert("DynamicPartitioningConfiguration".into(), Value::Object(dp));
            }
            if let Some(e) = &self.file_extension {
                m.insert("FileExtension".into(), json!(e));
            }
            if let Some(z) = &self.custom_time_zone {
                m.insert("CustomTimeZone".into(), json!(z));
            }
        }
        v
    }
}

/// One delivery stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryStream {
    pub name: String,
    pub stream_type: StreamType,
    pub status: Status,
    pub status_ms: i64,
    pub created_ms: i64,
    pub last_update_ms: Option<i64>,
    /// VersionId: 1 at creation, one more at each UpdateDestination.
    pub version: u64,
    pub source: Option<KinesisSource>,
    pub throughput_hint_mb: Option<i64>,
    pub destination: S3Destination,
    /// Made with S3DestinationConfiguration (the older shape).
    pub legacy_s3: bool,
    /// A Redshift destination: `destination` is then its intermediate S3 location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redshift: Option<crate::redshift::RedshiftDestination>,
    pub encryption: Encryption,
    pub tags: Vec<(String, String)>,
}

/// Epoch milliseconds as JSON 1.1 writes a timestamp (epoch seconds).
pub fn timestamp(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

impl DeliveryStream {
    pub fn arn(&self, region: &str, account: &str) -> String {
        format!(
            "arn:aws:firehose:{region}:{account}:deliverystream/{}",
            self.name
        )
    }

    /// `DeliveryStreamDescription`, with `status` as it is now and the destination shown
    /// unless the page starts after it.
    pub fn describe(
        &self,
        region: &str,
        account: &str,
        status: Status,
        with_destination: bool,
    ) -> Value {
        let mut m = Map::new();
        m.insert("DeliveryStreamName".into(), json!(self.name));
        m.insert("DeliveryStreamARN".into(), json!(self.arn(region, account)));
        m.insert("DeliveryStreamStatus".into(), json!(status.as_str()));
        let mut enc = Map::new();
        if let Some(t) = &self.encryption.key_type {
            enc.insert("KeyType".into(), json!(t));
        }
        if let Some(a) = &self.encryption.key_arn {
            enc.insert("KeyARN".into(), json!(a));
        }
        enc.insert(
            "Status".into(),
            json!(if self.encryption.enabled {
                "ENABLED"
            } else {
                "DISABLED"
            }),
        );
        m.insert(
            "DeliveryStreamEncryptionConfiguration".into(),
            Value::Object(enc),
        );
        m.insert(
            "DeliveryStreamType".into(),
            json!(self.stream_type.as_str()),
        );
        m.insert("VersionId".into(), json!(self.version.to_string()));
        m.insert("CreateTimestamp".into(), timestamp(self.created_ms));
        if let Some(t) = self.last_update_ms {
            m.insert("LastUpdateTimestamp".into(), timestamp(t));
        }
        match (&self.source, self.throughput_hint_mb) {
            (Some(s), _) => {
                m.insert(
                    "Source".into(),
                    json!({"KinesisStreamSourceDescription": {
                        "KinesisStreamARN": s.stream_arn,
                        "RoleARN": s.role_arn,
                        "DeliveryStartTimestamp": timestamp(s.start_ms),
                    }}),
                );
            }
            (None, Some(hint)) => {
                m.insert(
                    "Source".into(),
                    json!({"DirectPutSourceDescription": {"ThroughputHintInMBs": hint}}),
                );
            }
            (None, None) => {}
        }
        let destinations = if let (true, Some(rs)) = (with_destination, &self.redshift) {
            vec![json!({
                "DestinationId": limits::DESTINATION_ID,
                "RedshiftDestinationDescription": rs.describe(&self.destination),
            })]
        } else if with_destination {
            vec![json!({
                "DestinationId": limits::DESTINATION_ID,
                "S3DestinationDescription": self.destination.describe_basic(),
                "ExtendedS3DestinationDescription": self.destination.describe_extended(),
            })]
        } else {
            Vec::new()
        };
        m.insert("Destinations".into(), Value::Array(destinations));
        m.insert("HasMoreDestinations".into(), json!(false));
        Value::Object(m)
    }
}
