//! The S3 destination members of CreateDeliveryStream and UpdateDestination
//! (`S3DestinationConfiguration`, `ExtendedS3DestinationConfiguration`, their `...Update`
//! forms): read and checked with the model's constraints ([`parse_s3`]), merged into what a
//! delivery stream has ([`S3Spec::apply`]), then checked with Firehose's own rules
//! ([`check`]): the custom-prefix rules, dynamic partitioning, the processors sluice runs, and
//! the features that are not there yet; record format conversion is checked by
//! [`crate::conversion::Spec::parse`].

use base64::Engine;
use serde_json::Value as Json;
use sluice_aws::validate::Validator;
use sluice_aws::value::{Input, Value};
use sluice_aws::ApiError;

use crate::compression::{Compression, COMPRESSION_NAMES};
use crate::limits;
use crate::model::{DynamicPartitioning, Processing, Processor, S3Destination};
use crate::prefix::Template;

pub const ROLE_ARN_PATTERN: &str = "arn:.*:iam::\\d{12}:role/[a-zA-Z_0-9+=,.@\\-_/]+";
pub const BUCKET_ARN_PATTERN: &str = "arn:.*:s3:::[\\w\\.\\-]{1,255}";
pub const KMS_ARN_PATTERN: &str =
    "arn:.*:kms:[a-zA-Z0-9\\-]+:\\d{12}:(key|alias)/[a-zA-Z_0-9+=,.@\\-_/]+";
pub const STREAM_ARN_PATTERN: &str =
    "arn:.*:kinesis:[a-zA-Z0-9\\-]+:\\d{12}:stream/[a-zA-Z0-9_.-]+";
const FILE_EXTENSION_PATTERN: &str = "^$|\\.[0-9a-z!\\-_.*'()]+";
const TIME_ZONE_PATTERN: &str = "^$|[a-zA-Z/_]+";
const PARAMETER_VALUE_PATTERN: &str = "^(?!\\s*$).+";

const PROCESSOR_TYPES: [&str; 6] = [
    "RecordDeAggregation",
    "Decompression",
    "CloudWatchLogProcessing",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
];
const PARAMETER_NAMES: [&str; 11] = [
    "LambdaArn",
    "NumberOfRetries",
    "MetadataExtractionQuery",
    "JsonParsingEngine",
    "RoleArn",
    "BufferSizeInMBs",
    "BufferIntervalInSeconds",
    "SubRecordType",
    "Delimiter",
    "CompressionFormat",
    "DataMessageExtraction",
];

/// `arn:<partition>:<service>:<region>:<account>:<resource>` split, when `s` has six parts.
fn arn_parts(s: &str) -> Option<[&str; 6]> {
    let mut p = s.splitn(6, ':');
    Some([
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
    ])
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn all_in(s: &str, extra: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

pub fn is_role_arn(s: &str) -> bool {
    arn_parts(s).is_some_and(|[a, _, svc, region, acct, res]| {
        a == "arn"
            && svc == "iam"
            && region.is_empty()
            && is_account(acct)
            && res
                .strip_prefix("role/")
                .is_some_and(|r| all_in(r, "_+=,.@-/"))
    })
}

pub fn is_bucket_arn(s: &str) -> bool {
    s.split_once(":s3:::").is_some_and(|(head, bucket)| {
        head.starts_with("arn:")
            && (1..=255).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
    })
}

pub fn is_kms_arn(s: &str) -> bool {
    arn_parts(s).is_some_and(|[a, _, svc, region, acct, res]| {
        a == "arn"
            && svc == "kms"
            && all_in(region, "-")
            && is_account(acct)
            && (res
                .strip_prefix("key/")
                .or_else(|| res.strip_prefix("alias/")))
            .is_some_and(|r| all_in(r, "_+=,.@-/"))
    })
}

pub fn is_stream_arn(s: &str) -> bool {
    stream_arn_parts(s).is_some()
}

/// The (account, stream name) of a Kinesis stream ARN.
pub fn stream_arn_parts(s: &str) -> Option<(&str, &str)> {
    let [a, _, svc, region, acct, res] = arn_parts(s)?;
    let name = res.strip_prefix("stream/")?;
    (a == "arn"
        && svc == "kinesis"
        && all_in(region, "-")
        && is_account(acct)
        && sluice_aws::validate::is_resource_name(name))
    .then_some((acct, name))
}

fn is_file_extension(s: &str) -> bool {
    s.is_empty()
        || (s.len() > 1
            && s.starts_with('.')
            && s[1..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "!-_.*'()".contains(c)))
}

fn is_time_zone(s: &str) -> bool {
    s.is_empty() || all_in(s, "/_")
}

fn not_blank(s: &str) -> bool {
    !s.trim().is_empty() && !s.contains('\n')
}

/// A request value as JSON (members Firehose keeps as they were given).
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => i64::try_from(*i).map_or(Json::Null, Json::from),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

fn raw(input: &Input<'_>, name: &str) -> Option<Json> {
    input
        .members
        .iter()
        .rev()
        .find(|(k, v)| k == name && !matches!(v, Value::Null))
        .map(|(_, v)| to_json(v))
}

/// The members of one S3 destination structure, as given (every one optional: a
/// configuration's required members are checked by [`parse_s3`], an update's are not).
#[derive(Debug, Clone, Default)]
pub struct S3Spec {
    pub role_arn: Option<String>,
    pub bucket_arn: Option<String>,
    pub prefix: Option<String>,
    pub error_output_prefix: Option<String>,
    pub size_mb: Option<i64>,
    pub interval_s: Option<i64>,
    pub compression: Option<Compression>,
    /// `Some(None)`: NoEncryption; `Some(Some(arn))`: a KMS key.
    pub encryption: Option<Option<String>>,
    pub cloudwatch: Option<Json>,
    pub processing: Option<Processing>,
    pub backup_enabled: Option<bool>,
    pub backup: Option<Box<S3Spec>>,
    pub conversion: Option<Json>,
    pub dynamic: Option<DynamicPartitioning>,
    pub file_extension: Option<String>,
    pub custom_time_zone: Option<String>,
}

/// Reads an S3 destination structure at `path` (e.g. `extendedS3DestinationConfiguration`).
/// `required`: RoleARN and BucketARN must be there (configurations, not updates);
/// `extended`: the extended members are read.
pub fn parse_s3(
    v: &mut Validator,
    input: Input<'_>,
    path: &str,
    required: bool,
    extended: bool,
) -> Result<S3Spec, ApiError> {
    let p = |m: &str| format!("{path}.{m}");
    let role = input.str("RoleARN")?;
    let bucket = input.str("BucketARN")?;
    if required {
        v.required(role, &p("roleARN"));
        v.required(bucket, &p("bucketARN"));
    }
    v.pattern(role, &p("roleARN"), ROLE_ARN_PATTERN, is_role_arn);
    v.str_len(role, &p("roleARN"), 1, limits::ARN_CHARS_MAX);
    v.pattern(bucket, &p("bucketARN"), BUCKET_ARN_PATTERN, is_bucket_arn);
    v.str_len(bucket, &p("bucketARN"), 1, limits::BUCKET_ARN_CHARS_MAX);
    let prefix = input.str("Prefix")?;
    v.str_len(prefix, &p("prefix"), 0, limits::PREFIX_CHARS_MAX);
    let error_prefix = input.str("ErrorOutputPrefix")?;
    v.str_len(
        error_prefix,
        &p("errorOutputPrefix"),
        0,
        limits::PREFIX_CHARS_MAX,
    );
    let (mut size_mb, mut interval_s) = (None, None);
    if let Some(h) = input.structure("BufferingHints")? {
        size_mb = h.int("SizeInMBs")?;
        interval_s = h.int("IntervalInSeconds")?;
        v.range(
            size_mb,
            &p("bufferingHints.sizeInMBs"),
            Some(limits::BUFFER_SIZE_MB_MIN),
            Some(limits::BUFFER_SIZE_MB_MAX),
        );
        v.range(
            interval_s,
            &p("bufferingHints.intervalInSeconds"),
            Some(limits::BUFFER_INTERVAL_S_MIN),
            Some(limits::BUFFER_INTERVAL_S_MAX),
        );
    }
    let compression_text = input.str("CompressionFormat")?;
    v.one_of(
        compression_text,
        &p("compressionFormat"),
        &COMPRESSION_NAMES,
    );
    let mut encryption = None;
    if let Some(e) = input.structure("EncryptionConfiguration")? {
        let none = e.str("NoEncryptionConfig")?;
        v.one_of(
            none,
            &p("encryptionConfiguration.noEncryptionConfig"),
            &["NoEncryption"],
        );
        let kms = match e.structure("KMSEncryptionConfig")? {
            Some(k) => {
                let arn = k.str("AWSKMSKeyARN")?;
                let kp = p("encryptionConfiguration.kMSEncryptionConfig.aWSKMSKeyARN");
                v.required(arn, &kp);
                v.pattern(arn, &kp, KMS_ARN_PATTERN, is_kms_arn);
                v.str_len(arn, &kp, 1, limits::ARN_CHARS_MAX);
                arn.map(str::to_string)
            }
            None => None,
        };
        encryption = Some(kms);
    }
    let cloudwatch = raw(&input, "CloudWatchLoggingOptions");
    let mut spec = S3Spec {
        role_arn: role.map(str::to_string),
        bucket_arn: bucket.map(str::to_string),
        prefix: prefix.map(str::to_string),
        error_output_prefix: error_prefix.map(str::to_string),
        size_mb,
        interval_s,
        compression: compression_text.and_then(Compression::parse),
        encryption,
        cloudwatch,
        ..S3Spec::default()
    };
    if !extended {
        return Ok(spec);
    }
    if let Some(pc) = input.structure("ProcessingConfiguration")? {
        spec.processing = Some(parse_processing(v, pc, &p("processingConfiguration"))?);
    }
    let backup_mode = input.str("S3BackupMode")?;
    v.one_of(backup_mode, &p("s3BackupMode"), &["Disabled", "Enabled"]);
    spec.backup_enabled = backup_mode.map(|m| m == "Enabled");
    let backup_member = if required {
        "S3BackupConfiguration"
    } else {
        "S3BackupUpdate"
    };
    let backup_path = if required {
        "s3BackupConfiguration"
    } else {
        "s3BackupUpdate"
    };
    if let Some(b) = input.structure(backup_member)? {
        spec.backup = Some(Box::new(parse_s3(v, b, &p(backup_path), required, false)?));
    }
    spec.conversion = raw(&input, "DataFormatConversionConfiguration");
    if let Some(d) = input.structure("DynamicPartitioningConfiguration")? {
        let retry = match d.structure("RetryOptions")? {
            Some(r) => {
                let s = r.int("DurationInSeconds")?;
                v.range(
                    s,
                    &p("dynamicPartitioningConfiguration.retryOptions.durationInSeconds"),
                    Some(0),
                    Some(limits::RETRY_DURATION_S_MAX),
                );
                s
            }
            None => None,
        };
        spec.dynamic = Some(DynamicPartitioning {
            enabled: d.bool("Enabled")?,
            retry_duration_s: retry,
        });
    }
    let ext = input.str("FileExtension")?;
    v.pattern(
        ext,
        &p("fileExtension"),
        FILE_EXTENSION_PATTERN,
        is_file_extension,
    );
    v.str_len(
        ext,
        &p("fileExtension"),
        0,
        limits::FILE_EXTENSION_CHARS_MAX,
    );
    spec.file_extension = ext.map(str::to_string);
    let tz = input.str("CustomTimeZone")?;
    v.pattern(tz, &p("customTimeZone"), TIME_ZONE_PATTERN, is_time_zone);
    v.str_len(
        tz,
        &p("customTimeZone"),
        0,
        limits::CUSTOM_TIME_ZONE_CHARS_MAX,
    );
    spec.custom_time_zone = tz.map(str::to_string);
    Ok(spec)
}

pub fn parse_processing(
    v: &mut Validator,
    input: Input<'_>,
    path: &str,
) -> Result<Processing, ApiError> {
    let enabled = input.bool("Enabled")?;
    let mut processors = Vec::new();
    for (i, item) in input.list("Processors")?.unwrap_or(&[]).iter().enumerate() {
        let pi = Input::element(item, input.format)?;
        let pp = format!("{path}.processors.{}.member", i + 1);
        let kind = pi.str("Type")?;
        v.required(kind, &format!("{pp}.type"));
        v.one_of(kind, &format!("{pp}.type"), &PROCESSOR_TYPES);
        let mut parameters = Vec::new();
        for (j, param) in pi.list("Parameters")?.unwrap_or(&[]).iter().enumerate() {
            let pa = Input::element(param, input.format)?;
            let ppp = format!("{pp}.parameters.{}.member", j + 1);
            let name = pa.str("ParameterName")?;
            let value = pa.str("ParameterValue")?;
            v.required(name, &format!("{ppp}.parameterName"));
            v.one_of(name, &format!("{ppp}.parameterName"), &PARAMETER_NAMES);
            v.required(value, &format!("{ppp}.parameterValue"));
            v.pattern(
                value,
                &format!("{ppp}.parameterValue"),
                PARAMETER_VALUE_PATTERN,
                not_blank,
            );
            v.str_len(
                value,
                &format!("{ppp}.parameterValue"),
                1,
                limits::PROCESSOR_PARAMETER_VALUE_CHARS_MAX,
            );
            if let (Some(n), Some(val)) = (name, value) {
                parameters.push((n.to_string(), val.to_string()));
            }
        }
        processors.push(Processor {
            kind: kind.unwrap_or_default().to_string(),
            parameters,
        });
    }
    Ok(Processing {
        enabled,
        processors,
    })
}

impl S3Spec {
    /// The destination this spec makes from `base` (an update), or from nothing (a
    /// configuration: RoleARN and BucketARN were required).
    pub fn apply(self, base: Option<&S3Destination>) -> Result<S3Destination, ApiError> {
        let mut d = match base {
            Some(b) => b.clone(),
            None => S3Destination::new(
                self.role_arn.clone().ok_or_else(ApiError::internal)?,
                self.bucket_arn.clone().ok_or_else(ApiError::internal)?,
            ),
        };
        if let Some(r) = self.role_arn {
            d.role_arn = r;
        }
        if let Some(b) = self.bucket_arn {
            d.bucket_arn = b;
        }
        if let Some(p) = self.prefix {
            d.prefix = Some(p);
        }
        if let Some(p) = self.error_output_prefix {
            d.error_output_prefix = Some(p);
        }
        if let Some(s) = self.size_mb {
            d.size_mb = s as u32;
        }
        if let Some(s) = self.interval_s {
            d.interval_s = s as u32;
        }
        if let Some(c) = self.compression {
            d.compression = c;
        }
        if let Some(e) = self.encryption {
            d.kms_key_arn = e;
        }
        if let Some(c) = self.cloudwatch {
            d.cloudwatch = Some(c);
        }
        if let Some(p) = self.processing {
            d.processing = Some(p);
        }
        if let Some(b) = self.backup_enabled {
            d.backup_enabled = b;
        }
        if let Some(b) = self.backup {
            let base = d.backup.as_deref();
            if base.is_none() && (b.role_arn.is_none() || b.bucket_arn.is_none()) {
                return Err(ApiError::invalid_argument(
                    "S3BackupUpdate needs RoleARN and BucketARN when the destination has no backup configuration.",
                ));
            }
            d.backup = Some(Box::new(b.apply(base)?));
        }
        if let Some(c) = self.conversion {
            d.data_format_conversion = Some(c);
        }
        if let Some(dp) = self.dynamic {
            d.dynamic_partitioning = Some(dp);
        }
        if let Some(e) = self.file_extension {
            d.file_extension = Some(e);
        }
        if let Some(z) = self.custom_time_zone {
            d.custom_time_zone = Some(z);
        }
        Ok(d)
    }
}

/// Why a destination cannot be delivered as configured (an InvalidArgumentException).
pub fn check(d: &S3Destination) -> Result<(), String> {
    if sluice_lake::check_bucket(d.bucket()).is_err() {
        return Err(format!(
            "The bucket name {} is not a valid S3 bucket name.",
            d.bucket()
        ));
    }
    let prefix = Template::parse(d.prefix.as_deref().unwrap_or(""))
        .map_err(|e| format!("Prefix is invalid: {e}"))?;
    let error_prefix = Template::parse(d.error_output_prefix.as_deref().unwrap_or(""))
        .map_err(|e| format!("ErrorOutputPrefix is invalid: {e}"))?;
    if prefix.has_error_output_type() {
        return Err("Prefix can't contain !{firehose:error-output-type}.".into());
    }
    let error_prefix_empty = d.error_output_prefix.as_deref().unwrap_or("").is_empty();
    if prefix.has_expressions() && error_prefix_empty {
        return Err("ErrorOutputPrefix can't be null when Prefix contains expressions.".into());
    }
    if error_prefix.has_expressions() && !error_prefix.has_error_output_type() {
        return Err("ErrorOutputPrefix must contain !{firehose:error-output-type} when it contains expressions.".into());
    }
    if error_prefix.partition_keys() != (vec![], vec![]) {
        return Err("ErrorOutputPrefix can't contain partitionKeyFromQuery or partitionKeyFromLambda expressions.".into());
    }
    if let Some(z) = d.custom_time_zone.as_deref() {
        if !z.is_empty() && z != "UTC" {
            return Err(format!(
                "sluice evaluates prefixes in UTC only; CustomTimeZone {z} is not supported yet. See docs/specs/firehose-compat.md."
            ));
        }
    }
    let processors = d.processors();
    let has = |kind: &str| processors.iter().any(|p| p.kind == kind);
    let dynamic = d.dynamic_partitioning_enabled();
    let (query_keys, lambda_keys) = prefix.partition_keys();
    if !dynamic && (!query_keys.is_empty() || !lambda_keys.is_empty()) {
        return Err("Prefix contains partitionKeyFromQuery or partitionKeyFromLambda expressions, but dynamic partitioning is not enabled.".into());
    }
    if dynamic {
        if query_keys.is_empty() && lambda_keys.is_empty() {
            return Err("When dynamic partitioning is enabled, Prefix must contain at least one partitionKeyFromQuery or partitionKeyFromLambda expression.".into());
        }
        if d.size_mb < 64 {
            return Err("BufferingHints.SizeInMBs must be at least 64 when dynamic partitioning is enabled.".into());
        }
        if !query_keys.is_empty() && !has("MetadataExtraction") {
            return Err("Prefix contains partitionKeyFromQuery expressions, but no MetadataExtraction processor is enabled.".into());
        }
        if !lambda_keys.is_empty() && !has("Lambda") {
            return Err("Prefix contains partitionKeyFromLambda expressions, but no Lambda processor is enabled.".into());
        }
    }
    for p in processors {
        check_processor(p, dynamic)?;
    }
    if let Some(c) = &d.data_format_conversion {
        crate::conversion::Spec::parse(c)?;
    }
    if d.conversion_enabled() {
        if d.size_mb < 64 {
            return Err("BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled.".into());
        }
        if d.compression != Compression::Uncompressed {
            return Err(
                "CompressionFormat must be UNCOMPRESSED when data format conversion is enabled."
                    .into(),
            );
        }
    }
    if let Some(b) = &d.backup {
        if sluice_lake::check_bucket(b.bucket()).is_err() {
            return Err(format!(
                "The bucket name {} is not a valid S3 bucket name.",
                b.bucket()
            ));
        }
        Template::parse(b.prefix.as_deref().unwrap_or(""))
            .map_err(|e| format!("S3BackupConfiguration Prefix is invalid: {e}"))?;
    }
    if d.backup_enabled && d.backup.is_none() {
        return Err("S3BackupConfiguration is required when S3BackupMode is Enabled.".into());
    }
    Ok(())
}

fn check_processor(p: &Processor, dynamic: bool) -> Result<(), String> {
    let unsupported = |name: &str| {
        Err(format!(
            "sluice does not support the {name} processor yet. See docs/specs/firehose-compat.md."
        ))
    };
    match p.kind.as_str() {
        "Lambda" => {
            let arn = p
                .parameter("LambdaArn")
                .ok_or("The Lambda processor needs a LambdaArn parameter.")?;
            if !arn.starts_with("arn:") || !arn.contains(":lambda:") {
                return Err(format!("LambdaArn {arn} is not a Lambda function ARN."));
            }
            if let Some(n) = p.parameter("NumberOfRetries") {
                match n.parse::<u32>() {
                    Ok(n) if n <= limits::LAMBDA_RETRIES_MAX => {}
                    _ => {
                        return Err(format!(
                            "NumberOfRetries must be 0 to {}.",
                            limits::LAMBDA_RETRIES_MAX
                        ))
                    }
                }
            }
            if let Some(n) = p.parameter("BufferSizeInMBs") {
                match n.parse::<f64>() {
                    Ok(n) if (0.2..=3.0).contains(&n) => {}
                    _ => {
                        return Err(
                            "BufferSizeInMBs of the Lambda processor must be 0.2 to 3.".into()
                        )
                    }
                }
            }
            if let Some(n) = p.parameter("BufferIntervalInSeconds") {
                match n.parse::<u32>() {
                    Ok(n) if (60..=900).contains(&n) => {}
                    _ => {
                        return Err(
                            "BufferIntervalInSeconds of the Lambda processor must be 60 to 900."
                                .into(),
                        )
                    }
                }
            }
            Ok(())
        }
        "MetadataExtraction" => {
            if !dynamic {
                return Err(
                    "The MetadataExtraction processor needs dynamic partitioning enabled.".into(),
                );
            }
            let query = p.parameter("MetadataExtractionQuery").ok_or(
                "The MetadataExtraction processor needs a MetadataExtractionQuery parameter.",
            )?;
            match p.parameter("JsonParsingEngine") {
                Some("JQ-1.6") => {}
                _ => {
                    return Err(
                        "The MetadataExtraction processor needs JsonParsingEngine JQ-1.6.".into(),
                    )
                }
            }
            sluice_jq::Program::compile(query)
                .map(drop)
                .map_err(|e| format!("MetadataExtractionQuery does not compile: {e}"))
        }
        "RecordDeAggregation" => match p.parameter("SubRecordType") {
            Some("JSON") => Ok(()),
            Some("DELIMITED") => {
                let d = p.parameter("Delimiter").ok_or(
                    "A DELIMITED RecordDeAggregation processor needs a Delimiter (base64).",
                )?;
                match base64::engine::general_purpose::STANDARD.decode(d) {
                    Ok(b) if !b.is_empty() => Ok(()),
                    _ => Err("Delimiter must be base64 of at least one byte.".into()),
                }
            }
            _ => Err("RecordDeAggregation needs SubRecordType JSON or DELIMITED.".into()),
        },
        "AppendDelimiterToRecord" => Ok(()),
        other => unsupported(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(prefix: Option<&str>, error: Option<&str>) -> S3Destination {
        let mut d = S3Destination::new(
            "arn:aws:iam::000000000000:role/r".into(),
            "arn:aws:s3:::lake".into(),
        );
        d.prefix = prefix.map(str::to_string);
        d.error_output_prefix = error.map(str::to_string);
        d
    }

    #[test]
    fn arns() {
        assert!(is_role_arn(
            "arn:aws:iam::123456789012:role/firehose_delivery_role"
        ));
        assert!(!is_role_arn("arn:aws:iam::12345678901:role/x"));
        assert!(is_bucket_arn("arn:aws:s3:::my-bucket"));
        assert!(!is_bucket_arn("arn:aws:s3:::"));
        assert!(is_stream_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/s-1"
        ));
        assert!(!is_stream_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/"
        ));
        assert!(is_kms_arn("arn:aws:kms:us-east-1:000000000000:key/abc"));
        assert!(is_file_extension(".json.gz") && is_file_extension("") && !is_file_extension("gz"));
    }

    #[test]
    fn the_prefix_rules() {
        assert!(check(&dest(None, None)).is_ok());
        assert!(check(&dest(Some("plain/"), None)).is_ok());
        let e = check(&dest(Some("!{timestamp:yyyy}/"), None)).unwrap_err();
        assert!(e.contains("ErrorOutputPrefix can't be null"), "{e}");
        assert!(check(&dest(Some("!{timestamp:yyyy}/"), Some("err/"))).is_ok());
        let e = check(&dest(Some("x/"), Some("err/!{timestamp:yyyy}/"))).unwrap_err();
        assert!(e.contains("error-output-type"), "{e}");
        let e = check(&dest(Some("!{firehose:error-output-type}/"), Some("e/"))).unwrap_err();
        assert!(e.starts_with("Prefix can't contain"), "{e}");
        let e = check(&dest(Some("c=!{partitionKeyFromQuery:c}/"), Some("e/"))).unwrap_err();
        assert!(e.contains("dynamic partitioning is not enabled"), "{e}");
        let mut d = dest(None, None);
        d.data_format_conversion = Some(serde_json::json!({"Enabled": true}));
        let e = check(&d).unwrap_err();
        assert!(e.contains("SchemaConfiguration is required"), "{e}");
        d.data_format_conversion = Some(serde_json::json!({"Enabled": false}));
        assert!(check(&d).is_ok());
    }
}
