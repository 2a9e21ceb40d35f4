//! CreateEventSourceMapping, GetEventSourceMapping, ListEventSourceMappings,
//! UpdateEventSourceMapping and DeleteEventSourceMapping for Kinesis streams, and the
//! `EventSourceMappingConfiguration` shape.
//!
//! Checks run in this order: the model's constraints (ValidationException, all together),
//! members that do not apply to Kinesis, the event source, the starting position, the
//! settings' own rules, the function, the stream, then (under the writer lock) the state and
//! the duplicate check. A change is committed in a transitional state and answered 202;
//! `crate::mappings::settle` carries it out.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};
use sluice_aws::validate::Validator;
use sluice_aws::{ApiError, ErrorType};
use sluice_poller::{FailureDestination, Filter};
use sluice_streams::{StreamName, StreamStatus};

use super::Json;
use crate::error::{invalid_parameter, service, Failure};
use crate::limits;
use crate::mappings::{self, MappingRecord, MappingState};
use crate::names::{is_account, is_region, FunctionRef, Scope, LATEST};
use crate::service::{json_ok, percent_decode, Call, Lambda, COMPAT_DOC};

type Answer = Result<axum::response::Response, Failure>;

/// `EventSourcePosition`, in the order AWS lists it in its ValidationException.
const STARTING_POSITIONS: &[&str] = &["LATEST", "AT_TIMESTAMP", "TRIM_HORIZON"];
/// The model's `Arn` pattern (EventSourceArn).
const ARN_PATTERN: &str =
    "arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{2}(-gov)?-[a-z]+-\\d{1})?:(\\d{12})?:(.*)";
/// The model's `DestinationArn` pattern.
const DESTINATION_PATTERN: &str = "$|kafka://([^.]([a-zA-Z0-9\\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1})?:(\\d{12})?:(.*)";
const RESPONSE_TYPES: &[&str] = &["ReportBatchItemFailures"];
/// `StateTransitionReason` of every change sluice makes: they are all the user's.
const USER_ACTION: &str = "User action";
/// ResourceNotFoundException for a UUID no mapping has (AWS's text).
const NOT_FOUND: &str = "The resource you requested does not exist.";

/// Members of CreateEventSourceMapping / UpdateEventSourceMapping that belong to other
/// event sources or to services sluice does not have, with why. Refused, since accepting
/// them would pretend they act.
const NOT_FOR_KINESIS: &[(&str, &str)] = &[
    ("Topics", "it names Kafka topics"),
    ("Queues", "it names Amazon MQ queues"),
    (
        "SourceAccessConfigurations",
        "it configures Kafka, Amazon MQ and DocumentDB event sources",
    ),
    (
        "SelfManagedEventSource",
        "it names a self-managed Kafka cluster",
    ),
    (
        "AmazonManagedKafkaEventSourceConfig",
        "it configures Amazon MSK event sources",
    ),
    (
        "SelfManagedKafkaEventSourceConfig",
        "it configures self-managed Kafka event sources",
    ),
    (
        "DocumentDBEventSourceConfig",
        "it configures DocumentDB event sources",
    ),
    ("ScalingConfig", "it applies to SQS event sources"),
    (
        "ProvisionedPollerConfig",
        "provisioned mode applies to SQS and Kafka event sources",
    ),
    ("LoggingConfig", "it applies to Kafka event sources"),
    (
        "KMSKeyArn",
        "sluice has no KMS: filter criteria are stored as given",
    ),
];

/// MetricsConfig.Metrics values (the model's enum), and the one that applies to Kinesis.
const METRIC_TYPES: &[&str] = &["EventCount", "ErrorCount", "KafkaMetrics"];
const KINESIS_METRIC_TYPE: &str = "EventCount";

fn not_found() -> ApiError {
    ApiError {
        capital_message: true,
        ..ApiError::not_found(NOT_FOUND).with_status(StatusCode::NOT_FOUND)
    }
}

/// 400 ResourceInUseException `Cannot <verb> the event source mapping because it is in use.`
fn in_use(verb: &str) -> ApiError {
    ApiError {
        capital_message: true,
        ..ApiError::new(
            ErrorType::ResourceInUse,
            format!("Cannot {verb} the event source mapping because it is in use."),
        )
    }
}

/// The model's `Arn`: `arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:(region)?:(\d{12})?:(.*)`.
fn is_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[1]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !parts[2].is_empty()
        && parts[2]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && (parts[3].is_empty() || is_region(parts[3]))
        && (parts[4].is_empty() || is_account(parts[4]))
}

/// The model's `DestinationArn`: empty, `kafka://...` or an ARN.
fn is_destination_arn(s: &str) -> bool {
    s.is_empty() || s.starts_with("kafka://") || is_arn(s)
}

/// An S3 bucket name: 3 to 63 of a-z, 0-9, `.` and `-`, starting and ending with a letter or
/// digit.
fn is_bucket_name(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// What an event source ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Stream(String),
    /// A registered (enhanced fan-out) consumer: the stream, the consumer, its creation time
    /// in seconds (the ARN's suffix).
    Consumer(String, String, i64),
}

impl Source {
    fn stream(&self) -> &str {
        match self {
            Source::Stream(s) | Source::Consumer(s, _, _) => s,
        }
    }
}

/// `arn:aws:kinesis:<region>:<account>:stream/<name>[/consumer/<name>:<seconds>]`, split.
/// `None` for anything else.
fn kinesis_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "kinesis" {
        return None;
    }
    let resource = parts[5].strip_prefix("stream/")?;
    Some((parts[3], parts[4], resource))
}

/// The event source an ARN names, if it is a Kinesis stream or consumer of this server.
fn parse_source(scope: &Scope, arn: &str) -> Result<Source, ApiError> {
    let service_of = arn.split(':').nth(2).unwrap_or("");
    let Some((region, account, resource)) = kinesis_parts(arn) else {
        return Err(invalid_parameter(if service_of == "kinesis" {
            format!("Stream not found: {arn}")
        } else {
            format!(
                "sluice supports only Kinesis streams as event sources (arn:aws:kinesis:<region>:<account>:stream/<name>, or a registered consumer's ARN); {arn} is not one. See {COMPAT_DOC}."
            )
        }));
    };
    let stream_not_found = || invalid_parameter(format!("Stream not found: {arn}"));
    if region != scope.region || account != scope.account_id {
        return Err(stream_not_found());
    }
    let source = match resource.split_once("/consumer/") {
        None => Source::Stream(resource.to_string()),
        Some((stream, rest)) => {
            let (consumer, secs) = rest.rsplit_once(':').ok_or_else(stream_not_found)?;
            let secs: i64 = secs.parse().map_err(|_| stream_not_found())?;
            Source::Consumer(stream.to_string(), consumer.to_string(), secs)
        }
    };
    if StreamName::new(source.stream()).is_none() {
        return Err(stream_not_found());
    }
    Ok(source)
}

/// Checks that the source exists (an active stream, a registered consumer of it).
fn find_source(lambda: &Lambda, arn: &str, source: &Source) -> Result<(), ApiError> {
    let streams = &lambda.mappings.streams;
    let stream_not_found = || invalid_parameter(format!("Stream not found: {arn}"));
    match streams.describe(source.stream()) {
        Ok(v) if v.meta.status != StreamStatus::Deleting => {}
        _ => return Err(stream_not_found()),
    }
    if let Source::Consumer(stream, consumer, secs) = source {
        if streams
            .consumer(stream, consumer, Some(secs * 1000))
            .is_err()
        {
            return Err(invalid_parameter(format!(
                "Stream consumer not found: {arn}"
            )));
        }
    }
    Ok(())
}

/// Where failure records of a mapping go, from its `DestinationConfig.OnFailure.Destination`:
/// an S3 bucket (in sluice's lake) or, as a sluice extension, a Kinesis stream of this server.
pub(crate) fn destination(scope: &Scope, arn: &str) -> Result<FailureDestination, ApiError> {
    let service_of = arn.split(':').nth(2).unwrap_or("");
    match service_of {
        "s3" => {
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            match parts.as_slice() {
                ["arn", _, "s3", "", "", bucket] if is_bucket_name(bucket) => {
                    Ok(FailureDestination::Bucket {
                        arn: arn.to_string(),
                        bucket: bucket.to_string(),
                    })
                }
                _ => Err(invalid_parameter(format!(
                    "The on-failure destination {arn} is not an S3 bucket ARN (arn:aws:s3:::<bucket>)."
                ))),
            }
        }
        "kinesis" => match kinesis_parts(arn) {
            Some((region, account, name))
                if region == scope.region
                    && account == scope.account_id
                    && StreamName::new(name).is_some() =>
            {
                Ok(FailureDestination::Stream {
                    arn: arn.to_string(),
                    stream: name.to_string(),
                })
            }
            _ => Err(invalid_parameter(format!("Stream not found: {arn}"))),
        },
        "sqs" | "sns" => Err(invalid_parameter(format!(
            "sluice does not support SQS queues or SNS topics as on-failure destinations yet: use an S3 bucket (arn:aws:s3:::<bucket>, written to sluice's lake) or, as a sluice extension, a Kinesis stream ARN. See {COMPAT_DOC}."
        ))),
        _ => Err(invalid_parameter(format!(
            "The on-failure destination {arn} is not one a Kinesis event source mapping can have: use an S3 bucket ARN (arn:aws:s3:::<bucket>) or, as a sluice extension, a Kinesis stream ARN. See {COMPAT_DOC}."
        ))),
    }
}

/// The members Create and Update share, as given.
#[derive(Debug, Default)]
struct Settings {
    function: Option<FunctionRef>,
    enabled: Option<bool>,
    batch_size: Option<i64>,
    batching_window_s: Option<i64>,
    parallelization_factor: Option<i64>,
    bisect: Option<bool>,
    retry_attempts: Option<i64>,
    record_age_s: Option<i64>,
    tumbling_window_s: Option<i64>,
    response_types: Option<Vec<String>>,
    /// MetricsConfig given: its Metrics.
    metrics: Option<Vec<String>>,
    /// FilterCriteria given: its patterns (none clears the filters).
    filters: Option<Vec<String>>,
    /// DestinationConfig given: its OnFailure destination (none, or empty, clears it).
    on_failure: Option<Option<String>>,
    on_success: bool,
}

/// Reads the shared members and checks the model's constraints into `v`.
fn read_settings(body: &Json, v: &mut Validator) -> Result<Settings, ApiError> {
    let name = body.str("FunctionName")?;
    // The name's own errors come first, as its member does.
    let function = name
        .map(|n| {
            FunctionRef::parse(
                n,
                "functionName",
                limits::FUNCTION_REF_CHARS_MAX,
                crate::names::NAMESPACED_FUNCTION_NAME_PATTERN,
            )
        })
        .transpose()?;
    let batch_size = body.int("BatchSize")?;
    v.range(
        batch_size,
        "batchSize",
        Some(limits::BATCH_SIZE_MIN),
        Some(limits::BATCH_SIZE_MAX),
    );
    let batching_window_s = body.int("MaximumBatchingWindowInSeconds")?;
    v.range(
        batching_window_s,
        "maximumBatchingWindowInSeconds",
        Some(0),
        Some(limits::BATCHING_WINDOW_S_MAX),
    );
    let parallelization_factor = body.int("ParallelizationFactor")?;
    v.range(
        parallelization_factor,
        "parallelizationFactor",
        Some(1),
        Some(limits::PARALLELIZATION_FACTOR_MAX),
    );
    let filters = match body.object("FilterCriteria")? {
        None => None,
        Some(fc) => {
            let list = fc.object_list("Filters")?.unwrap_or_default();
            let mut patterns = Vec::with_capacity(list.len());
            for (i, f) in list.iter().enumerate() {
                let p = f.str("Pattern")?;
                v.str_len(
                    p,
                    &format!("filterCriteria.filters.{}.member.pattern", i + 1),
                    0,
                    limits::FILTER_PATTERN_CHARS_MAX,
                );
                patterns.push(p.unwrap_or("").to_string());
            }
            Some(patterns)
        }
    };
    let (on_failure, on_success) = match body.object("DestinationConfig")? {
        None => (None, false),
        Some(dc) => {
            let on_success = dc.has_value("OnSuccess");
            let dest = match dc.object("OnFailure")? {
                Some(f) => f.str("Destination")?.map(str::to_string),
                None => None,
            };
            let path = "destinationConfig.onFailure.destination";
            v.str_len(dest.as_deref(), path, 0, limits::DESTINATION_ARN_CHARS_MAX);
            v.pattern(
                dest.as_deref(),
                path,
                DESTINATION_PATTERN,
                is_destination_arn,
            );
            (Some(dest.filter(|d| !d.is_empty())), on_success)
        }
    };
    let record_age_s = body.int("MaximumRecordAgeInSeconds")?;
    v.range(
        record_age_s,
        "maximumRecordAgeInSeconds",
        Some(-1),
        Some(limits::RECORD_AGE_S_MAX),
    );
    let retry_attempts = body.int("MaximumRetryAttempts")?;
    v.range(
        retry_attempts,
        "maximumRetryAttempts",
        Some(-1),
        Some(limits::RETRY_ATTEMPTS_MAX),
    );
    let tumbling_window_s = body.int("TumblingWindowInSeconds")?;
    v.range(
        tumbling_window_s,
        "tumblingWindowInSeconds",
        Some(0),
        Some(limits::TUMBLING_WINDOW_S_MAX),
    );
    let response_types = body.string_list("FunctionResponseTypes")?;
    if let Some(types) = &response_types {
        let shown = || format!("[{}]", types.join(", "));
        v.count(types.len(), "functionResponseTypes", 0, 1, shown);
        if types.iter().any(|t| !RESPONSE_TYPES.contains(&t.as_str())) {
            v.fail(
                Some(&shown()),
                "functionResponseTypes",
                &format!(
                    "Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                    RESPONSE_TYPES.join(", ")
                ),
            );
        }
    }
    let metrics = match body.object("MetricsConfig")? {
        None => None,
        Some(m) => {
            let list = m.string_list("Metrics")?.unwrap_or_default();
            let shown = || format!("[{}]", list.join(", "));
            v.count(list.len(), "metricsConfig.metrics", 0, 3, shown);
            if list.iter().any(|t| !METRIC_TYPES.contains(&t.as_str())) {
                v.fail(
                    Some(&shown()),
                    "metricsConfig.metrics",
                    &format!(
                        "Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                        METRIC_TYPES.join(", ")
                    ),
                );
            }
            Some(list)
        }
    };
    Ok(Settings {
        function,
        enabled: body.bool("Enabled")?,
        metrics,
        batch_size,
        batching_window_s,
        parallelization_factor,
        bisect: body.bool("BisectBatchOnFunctionError")?,
        retry_attempts,
        record_age_s,
        tumbling_window_s,
        response_types,
        filters,
        on_failure,
        on_success,
    })
}

/// Members that belong to other event sources or services: InvalidParameterValueException.
fn refuse_not_for_kinesis(body: &Json) -> Result<(), ApiError> {
    for (member, why) in NOT_FOR_KINESIS {
        if body.has_value(member) {
            return Err(invalid_parameter(format!(
                "sluice does not support {member} on event source mappings ({why}); its event sources are Kinesis streams. See {COMPAT_DOC}."
            )));
        }
    }
    Ok(())
}

/// The settings' own rules (past the model's ranges), and the destination's existence.
fn check_settings(lambda: &Lambda, s: &Settings) -> Result<(), ApiError> {
    if let Some(m) = s
        .metrics
        .iter()
        .flatten()
        .find(|m| *m != KINESIS_METRIC_TYPE)
    {
        return Err(invalid_parameter(format!(
            "Unsupported MetricsConfig metric type {m} for Kinesis event sources: only {KINESIS_METRIC_TYPE} applies to Kinesis; {m} is for Amazon MSK and self-managed Apache Kafka."
        )));
    }
    if let Some(age) = s.record_age_s {
        if age != -1 && age < limits::RECORD_AGE_S_MIN {
            return Err(invalid_parameter(format!(
                "MaximumRecordAgeInSeconds must be either -1 (forever) or between {} and {} (inclusive)",
                limits::RECORD_AGE_S_MIN,
                limits::RECORD_AGE_S_MAX
            )));
        }
    }
    if s.on_success {
        return Err(invalid_parameter(
            "Unsupported DestinationConfig parameter for given event source mapping type.",
        ));
    }
    if let Some(Some(arn)) = &s.on_failure {
        if let FailureDestination::Stream { stream, .. } = destination(&lambda.scope, arn)? {
            let found = lambda.mappings.streams.describe(&stream);
            if !matches!(found, Ok(v) if v.meta.status != StreamStatus::Deleting) {
                return Err(invalid_parameter(format!("Stream not found: {arn}")));
            }
        }
    }
    if let Some(patterns) = &s.filters {
        if patterns.len() > limits::FILTERS_MAX {
            return Err(invalid_parameter(format!(
                "sluice allows at most {} filters in FilterCriteria (AWS's default quota); {} were given.",
                limits::FILTERS_MAX,
                patterns.len()
            )));
        }
        for p in patterns {
            if let Err(e) = Filter::parse(p) {
                return Err(invalid_parameter(format!(
                    "Invalid filter pattern definition. {e}"
                )));
            }
        }
    }
    Ok(())
}

/// The function a mapping names: it must exist here (only `$LATEST`).
fn resolve_function(lambda: &Lambda, r: &FunctionRef) -> Result<(), ApiError> {
    let missing = || invalid_parameter("Function does not exist");
    if !r.in_scope(&lambda.scope) || lambda.store.get(&r.name).is_none() {
        return Err(missing());
    }
    match r.qualifier.as_deref() {
        None | Some(LATEST) => Ok(()),
        Some(_) => Err(invalid_parameter(
            "Function does not exist (sluice has only $LATEST: versions and aliases are not supported yet)",
        )),
    }
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    super::check_tags(tags, limits::TAGS_PER_MAPPING_MAX, "event source mapping")
}

/// The mapping of the same source and function, other than `except`.
fn duplicate<'a>(
    all: &'a [Arc<MappingRecord>],
    source_arn: &str,
    function_arn: &str,
    scope: &Scope,
    except: &str,
) -> Option<&'a MappingRecord> {
    all.iter().map(Arc::as_ref).find(|m| {
        m.uuid != except
            && m.event_source_arn == source_arn
            && m.function_arn(scope) == function_arn
    })
}

fn conflict(source_arn: &str, function: &str, uuid: &str) -> ApiError {
    crate::error::conflict(format!(
        "The event source arn (\" {source_arn} \") and function (\" {function} \") provided mapping already exists. Please update or delete the existing mapping with UUID {uuid}"
    ))
}

/// Applies the settings given to `r`.
fn apply(r: &mut MappingRecord, s: Settings) {
    if let Some(f) = s.function {
        r.function_name = f.name.to_string();
        r.qualifier = f.qualifier;
    }
    if let Some(x) = s.enabled {
        r.enabled = x;
    }
    let u32_of = |x: i64| u32::try_from(x).unwrap_or(0);
    if let Some(x) = s.batch_size {
        r.batch_size = u32_of(x);
    }
    if let Some(x) = s.batching_window_s {
        r.batching_window_s = u32_of(x);
    }
    if let Some(x) = s.parallelization_factor {
        r.parallelization_factor = u32_of(x);
    }
    if let Some(x) = s.bisect {
        r.bisect_batch_on_function_error = x;
    }
    if let Some(x) = s.retry_attempts {
        r.maximum_retry_attempts = x;
    }
    if let Some(x) = s.record_age_s {
        r.maximum_record_age_s = x;
    }
    if let Some(x) = s.tumbling_window_s {
        r.tumbling_window_s = u32_of(x);
    }
    if let Some(x) = s.response_types {
        r.report_batch_item_failures = !x.is_empty();
    }
    if let Some(mut x) = s.metrics {
        x.dedup();
        r.metrics = x;
    }
    if let Some(x) = s.filters {
        r.filter_patterns = x;
    }
    if let Some(x) = s.on_failure {
        r.on_failure = x;
    }
}

/// StartingPositionTimestamp (seconds) as milliseconds, checked against the position.
fn starting_timestamp(
    position: &str,
    timestamp_s: Option<f64>,
    now_ms: i64,
) -> Result<Option<i64>, ApiError> {
    match (position, timestamp_s) {
        ("AT_TIMESTAMP", None) => Err(invalid_parameter("Need to specify a timestamp")),
        ("AT_TIMESTAMP", Some(s)) if s < 0.0 => Err(invalid_parameter(
            "Received Exception while reading from provided stream. class java.lang.Long can not be converted to a Timestamp",
        )),
        ("AT_TIMESTAMP", Some(s)) => {
            let ms = (s * 1000.0).floor().min(i64::MAX as f64) as i64;
            if ms > now_ms {
                return Err(invalid_parameter(
                    "StartingPositionTimestamp cannot be in the future.",
                ));
            }
            Ok(Some(ms))
        }
        (_, Some(_)) => Err(invalid_parameter(
            "Timestamp only valid with StartingPosition AT_TIMESTAMP",
        )),
        (_, None) => Ok(None),
    }
}

pub(crate) async fn create(lambda: &Arc<Lambda>, call: Call<'_>) -> Answer {
    let body = Json::parse(&call.body)?;
    let mut v = Validator::new();
    let source_arn = body.str("EventSourceArn")?;
    v.pattern(source_arn, "eventSourceArn", ARN_PATTERN, is_arn);
    v.required(body.str("FunctionName")?, "functionName");
    let settings = read_settings(&body, &mut v)?;
    let position = body.str("StartingPosition")?;
    v.one_of(position, "startingPosition", STARTING_POSITIONS);
    let timestamp_s = body.timestamp_s("StartingPositionTimestamp")?;
    let tags = body.string_map("Tags")?.unwrap_or_default();
    v.finish()?;
    refuse_not_for_kinesis(&body)?;
    let Some(source_arn) = source_arn else {
        return Err(invalid_parameter("Unrecognized event source.").into());
    };
    let source = parse_source(&lambda.scope, source_arn)?;
    let Some(position) = position else {
        return Err(invalid_parameter(
            "1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null.",
        )
        .into());
    };
    let now = (lambda.now_ms)();
    let timestamp_ms = starting_timestamp(position, timestamp_s, now)?;
    check_settings(lambda, &settings)?;
    let Some(function) = settings.function.clone() else {
        return Err(ApiError::validation("FunctionName").into());
    };
    resolve_function(lambda, &function)?;
    find_source(lambda, source_arn, &source)?;
    check_tags(&tags)?;
    let mut record = MappingRecord {
        format_version: 0,
        uuid: crate::store::new_revision_id(),
        function_name: String::new(),
        qualifier: None,
        event_source_arn: source_arn.to_string(),
        stream: source.stream().to_string(),
        starting_position: position.to_string(),
        starting_position_timestamp_ms: timestamp_ms,
        created_ms: Some(now),
        batch_size: limits::BATCH_SIZE_DEFAULT,
        batching_window_s: 0,
        parallelization_factor: 1,
        bisect_batch_on_function_error: false,
        maximum_retry_attempts: -1,
        maximum_record_age_s: -1,
        report_batch_item_failures: false,
        filter_patterns: Vec::new(),
        tumbling_window_s: 0,
        metrics: Vec::new(),
        on_failure: None,
        enabled: true,
        state: MappingState::Creating,
        last_modified_ms: now,
        last_processing_result: "No records processed".into(),
        tags,
    };
    apply(&mut record, settings);
    let _writer = lambda.mappings.lock().await;
    let all = lambda.mappings.list();
    let function_arn = record.function_arn(&lambda.scope);
    if let Some(other) = duplicate(&all, source_arn, &function_arn, &lambda.scope, "") {
        return Err(conflict(source_arn, &record.function_name, &other.uuid).into());
    }
    if all.len() >= limits::MAPPINGS_MAX {
        return Err(invalid_parameter(format!(
            "sluice allows at most {} event source mappings.",
            limits::MAPPINGS_MAX
        ))
        .into());
    }
    let r = sluice_aws::blocking(|| lambda.mappings.commit(record)).map_err(|e| service(&e))?;
    mappings::schedule(lambda, r.uuid.clone());
    tracing::info!(
        mapping = r.uuid,
        function = r.function_name,
        stream = r.stream,
        "event source mapping created"
    );
    Ok(json_ok(
        StatusCode::ACCEPTED,
        &configuration(lambda, &r),
        call.request_id,
    ))
}

pub(crate) async fn get(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let r = lambda
        .mappings
        .get(&percent_decode(raw))
        .ok_or_else(not_found)?;
    Ok(json_ok(
        StatusCode::OK,
        &configuration(lambda, &r),
        call.request_id,
    ))
}

pub(crate) async fn list(lambda: &Arc<Lambda>, call: Call<'_>) -> Answer {
    let mut v = Validator::new();
    let source = call.query("EventSourceArn");
    v.pattern(source, "eventSourceArn", ARN_PATTERN, is_arn);
    let function = call
        .query("FunctionName")
        .map(|n| {
            FunctionRef::parse(
                n,
                "functionName",
                limits::FUNCTION_REF_CHARS_MAX,
                crate::names::NAMESPACED_FUNCTION_NAME_PATTERN,
            )
        })
        .transpose()?;
    let max_items = super::max_items(&call, &mut v)?;
    v.finish()?;
    let page = max_items
        .map(|n| n as usize)
        .unwrap_or(limits::MAPPING_PAGE_MAX)
        .min(limits::MAPPING_PAGE_MAX);
    let after = super::marker(&call)?;
    let rest: Vec<Arc<MappingRecord>> = lambda
        .mappings
        .list()
        .into_iter()
        .filter(|r| source.is_none_or(|s| r.event_source_arn == s))
        .filter(|r| {
            function.as_ref().is_none_or(|f| {
                f.in_scope(&lambda.scope)
                    && r.function_name == f.name.as_str()
                    && f.qualifier
                        .as_ref()
                        .is_none_or(|q| r.qualifier.as_ref() == Some(q))
            })
        })
        .filter(|r| after.as_deref().is_none_or(|a| r.uuid.as_str() > a))
        .collect();
    let shown: Vec<Value> = rest
        .iter()
        .take(page)
        .map(|r| configuration(lambda, r))
        .collect();
    let mut out = json!({ "EventSourceMappings": shown });
    if rest.len() > page {
        if let Some(last) = rest.get(page.saturating_sub(1)) {
            out["NextMarker"] = json!(super::next_marker(&last.uuid));
        }
    }
    Ok(json_ok(StatusCode::OK, &out, call.request_id))
}

pub(crate) async fn update(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let body = Json::parse(&call.body)?;
    let mut v = Validator::new();
    let settings = read_settings(&body, &mut v)?;
    v.finish()?;
    let uuid = percent_decode(raw);
    if lambda.mappings.get(&uuid).is_none() {
        return Err(not_found().into());
    }
    refuse_not_for_kinesis(&body)?;
    let _writer = lambda.mappings.lock().await;
    let current = lambda.mappings.get(&uuid).ok_or_else(not_found)?;
    if !current.state.is_settled() {
        return Err(in_use("update").into());
    }
    check_settings(lambda, &settings)?;
    if let Some(f) = &settings.function {
        resolve_function(lambda, f)?;
    }
    let mut next = (*current).clone();
    apply(&mut next, settings);
    let function_arn = next.function_arn(&lambda.scope);
    let all = lambda.mappings.list();
    if let Some(other) = duplicate(
        &all,
        &next.event_source_arn,
        &function_arn,
        &lambda.scope,
        &next.uuid,
    ) {
        return Err(conflict(&next.event_source_arn, &next.function_name, &other.uuid).into());
    }
    next.state = match (current.enabled, next.enabled) {
        (false, true) => MappingState::Enabling,
        (true, false) => MappingState::Disabling,
        _ => MappingState::Updating,
    };
    next.last_modified_ms = (lambda.now_ms)();
    let r = sluice_aws::blocking(|| lambda.mappings.commit(next)).map_err(|e| service(&e))?;
    mappings::schedule(lambda, r.uuid.clone());
    Ok(json_ok(
        StatusCode::ACCEPTED,
        &configuration(lambda, &r),
        call.request_id,
    ))
}

pub(crate) async fn delete(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let uuid = percent_decode(raw);
    let _writer = lambda.mappings.lock().await;
    let current = lambda.mappings.get(&uuid).ok_or_else(not_found)?;
    if !current.state.is_settled() {
        return Err(in_use("delete").into());
    }
    let mut next = (*current).clone();
    next.state = MappingState::Deleting;
    next.last_modified_ms = (lambda.now_ms)();
    let r = sluice_aws::blocking(|| lambda.mappings.commit(next)).map_err(|e| service(&e))?;
    mappings::schedule(lambda, r.uuid.clone());
    Ok(json_ok(
        StatusCode::ACCEPTED,
        &configuration(lambda, &r),
        call.request_id,
    ))
}

/// An `EventSourceMappingConfiguration`, as AWS shapes one of a Kinesis mapping.
pub(crate) fn configuration(lambda: &Lambda, r: &MappingRecord) -> Value {
    let destination = match &r.on_failure {
        Some(arn) => json!({ "Destination": arn }),
        None => json!({}),
    };
    let response_types: Vec<&str> = if r.report_batch_item_failures {
        RESPONSE_TYPES.to_vec()
    } else {
        Vec::new()
    };
    let mut out = json!({
        "UUID": r.uuid,
        "StartingPosition": r.starting_position,
        "BatchSize": r.batch_size,
        "MaximumBatchingWindowInSeconds": r.batching_window_s,
        "ParallelizationFactor": r.parallelization_factor,
        "EventSourceArn": r.event_source_arn,
        "FunctionArn": r.function_arn(&lambda.scope),
        "LastModified": r.last_modified_ms as f64 / 1000.0,
        "LastProcessingResult": lambda.mappings.last_processing_result(r),
        "State": r.state.as_str(),
        "StateTransitionReason": USER_ACTION,
        "DestinationConfig": { "OnFailure": destination },
        "MaximumRecordAgeInSeconds": r.maximum_record_age_s,
        "BisectBatchOnFunctionError": r.bisect_batch_on_function_error,
        "MaximumRetryAttempts": r.maximum_retry_attempts,
        "TumblingWindowInSeconds": r.tumbling_window_s,
        "FunctionResponseTypes": response_types,
        "EventSourceMappingArn": r.arn(&lambda.scope),
    });
    if let Some(ms) = r.starting_position_timestamp_ms {
        out["StartingPositionTimestamp"] = json!(ms as f64 / 1000.0);
    }
    if !r.filter_patterns.is_empty() {
        let filters: Vec<Value> = r
            .filter_patterns
            .iter()
            .map(|p| json!({ "Pattern": p }))
            .collect();
        out["FilterCriteria"] = json!({ "Filters": filters });
    }
    if !r.metrics.is_empty() {
        out["MetricsConfig"] = json!({ "Metrics": r.metrics });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
        }
    }

    #[test]
    fn arns() {
        assert!(is_arn("arn:aws:kinesis:us-east-1:000000000000:stream/s"));
        assert!(is_arn("arn:aws:s3:::bucket"));
        assert!(is_arn("arn:aws-cn:sqs:cn-north-1:000000000000:q"));
        assert!(!is_arn("arn:aws:kinesis:us-east-1:0000:stream/s"));
        assert!(!is_arn("arn:gcp:kinesis:us-east-1:000000000000:stream/s"));
        assert!(!is_arn("stream/s"));
        assert!(is_destination_arn(""));
        assert!(is_destination_arn("kafka://topic"));
        assert!(!is_destination_arn("s3://bucket"));
    }

    #[test]
    fn event_sources() {
        let s = scope();
        assert_eq!(
            parse_source(&s, "arn:aws:kinesis:us-east-1:000000000000:stream/s1").unwrap(),
            Source::Stream("s1".into())
        );
        assert_eq!(
            parse_source(
                &s,
                "arn:aws:kinesis:us-east-1:000000000000:stream/s1/consumer/c1:1700000000"
            )
            .unwrap(),
            Source::Consumer("s1".into(), "c1".into(), 1_700_000_000)
        );
        let e = parse_source(&s, "arn:aws:kinesis:eu-west-1:000000000000:stream/s1").unwrap_err();
        assert_eq!(
            e.message.unwrap(),
            "Stream not found: arn:aws:kinesis:eu-west-1:000000000000:stream/s1"
        );
        let e = parse_source(&s, "arn:aws:sqs:us-east-1:000000000000:q").unwrap_err();
        assert_eq!(e.type_name(), "InvalidParameterValueException");
        assert!(e
            .message
            .unwrap()
            .starts_with("sluice supports only Kinesis streams"));
        let e = parse_source(&s, "arn:aws:kinesis:us-east-1:000000000000:table/t").unwrap_err();
        assert!(e.message.unwrap().starts_with("Stream not found"));
    }

    #[test]
    fn destinations() {
        let s = scope();
        assert_eq!(
            destination(&s, "arn:aws:s3:::my-bucket").unwrap(),
            FailureDestination::Bucket {
                arn: "arn:aws:s3:::my-bucket".into(),
                bucket: "my-bucket".into()
            }
        );
        assert_eq!(
            destination(&s, "arn:aws:kinesis:us-east-1:000000000000:stream/dlq").unwrap(),
            FailureDestination::Stream {
                arn: "arn:aws:kinesis:us-east-1:000000000000:stream/dlq".into(),
                stream: "dlq".into()
            }
        );
        for bad in [
            "arn:aws:s3:::B",
            "arn:aws:s3:::ab",
            "arn:aws:s3:us-east-1::bucket",
            "arn:aws:kinesis:us-east-1:111111111111:stream/dlq",
        ] {
            assert_eq!(
                destination(&s, bad).unwrap_err().type_name(),
                "InvalidParameterValueException",
                "{bad}"
            );
        }
        let e = destination(&s, "arn:aws:sqs:us-east-1:000000000000:dlq").unwrap_err();
        assert!(e
            .message
            .unwrap()
            .starts_with("sluice does not support SQS queues or SNS topics"));
        assert!(destination(&s, "arn:aws:sns:us-east-1:000000000000:t").is_err());
    }

    #[test]
    fn starting_timestamps() {
        let now = 1_700_000_000_000;
        assert_eq!(starting_timestamp("LATEST", None, now).unwrap(), None);
        assert_eq!(
            starting_timestamp("AT_TIMESTAMP", Some(1_600_000_000.5), now).unwrap(),
            Some(1_600_000_000_500)
        );
        let msg = |p, t| starting_timestamp(p, t, now).unwrap_err().message.unwrap();
        assert_eq!(msg("AT_TIMESTAMP", None), "Need to specify a timestamp");
        assert_eq!(
            msg("LATEST", Some(1.0)),
            "Timestamp only valid with StartingPosition AT_TIMESTAMP"
        );
        assert_eq!(
            msg("AT_TIMESTAMP", Some(1_800_000_000.0)),
            "StartingPositionTimestamp cannot be in the future."
        );
        assert!(msg("AT_TIMESTAMP", Some(-1.0)).starts_with("Received Exception"));
    }

    #[test]
    fn settings_are_checked_against_the_model() {
        let read = |body: &str| {
            let j = Json::parse(body.as_bytes()).unwrap();
            let mut v = Validator::new();
            let s = read_settings(&j, &mut v);
            s.and_then(|s| v.finish().map(|_| s))
        };
        // At each limit.
        let ok = read(
            r#"{"BatchSize": 10000, "MaximumBatchingWindowInSeconds": 300, "ParallelizationFactor": 10,
                "MaximumRecordAgeInSeconds": 604800, "MaximumRetryAttempts": 10000,
                "TumblingWindowInSeconds": 900, "FunctionResponseTypes": ["ReportBatchItemFailures"]}"#,
        )
        .unwrap();
        assert_eq!(ok.batch_size, Some(10_000));
        let ok = read(
            r#"{"BatchSize": 1, "MaximumBatchingWindowInSeconds": 0, "ParallelizationFactor": 1,
                "MaximumRecordAgeInSeconds": -1, "MaximumRetryAttempts": -1,
                "TumblingWindowInSeconds": 0, "FunctionResponseTypes": []}"#,
        )
        .unwrap();
        assert_eq!(ok.retry_attempts, Some(-1));
        // One past each.
        let e = read(
            r#"{"BatchSize": 10001, "MaximumBatchingWindowInSeconds": 301, "ParallelizationFactor": 11,
                "MaximumRecordAgeInSeconds": 604801, "MaximumRetryAttempts": 10001,
                "TumblingWindowInSeconds": 901}"#,
        )
        .unwrap_err();
        let m = e.message.unwrap();
        assert!(m.starts_with("6 validation errors detected: Value '10001' at 'batchSize' failed to satisfy constraint: Member must have value less than or equal to 10000; "), "{m}");
        for part in [
            "Value '301' at 'maximumBatchingWindowInSeconds'",
            "Value '11' at 'parallelizationFactor'",
            "Value '604801' at 'maximumRecordAgeInSeconds'",
            "Value '10001' at 'maximumRetryAttempts'",
            "Value '901' at 'tumblingWindowInSeconds'",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
        let e = read(
            r#"{"BatchSize": 0, "MaximumBatchingWindowInSeconds": -1, "ParallelizationFactor": 0,
                "MaximumRecordAgeInSeconds": -2, "MaximumRetryAttempts": -2,
                "TumblingWindowInSeconds": -1}"#,
        )
        .unwrap_err();
        assert!(e
            .message
            .unwrap()
            .starts_with("6 validation errors detected"));
        let e = read(r#"{"FunctionResponseTypes": ["Nope"]}"#).unwrap_err();
        assert_eq!(
            e.message.unwrap(),
            "1 validation error detected: Value '[Nope]' at 'functionResponseTypes' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [ReportBatchItemFailures]]"
        );
        let long = "x".repeat(limits::FILTER_PATTERN_CHARS_MAX + 1);
        let e = read(&format!(
            r#"{{"FilterCriteria": {{"Filters": [{{"Pattern": "{{}}"}}, {{"Pattern": "{long}"}}]}}}}"#
        ))
        .unwrap_err();
        assert!(e
            .message
            .unwrap()
            .contains("at 'filterCriteria.filters.2.member.pattern' failed to satisfy constraint: Member must have length less than or equal to 4096"));
        let s = read(r#"{"DestinationConfig": {"OnFailure": {"Destination": ""}}}"#).unwrap();
        assert_eq!(s.on_failure, Some(None));
        let s = read(r#"{"DestinationConfig": {"OnFailure": {}}}"#).unwrap();
        assert_eq!(s.on_failure, Some(None));
        let e =
            read(r#"{"DestinationConfig": {"OnFailure": {"Destination": "s3://b"}}}"#).unwrap_err();
        assert_eq!(e.type_name(), "ValidationException");
        let e = read(r#"{"FunctionName": "bad name"}"#).unwrap_err();
        assert_eq!(e.type_name(), "ValidationException");
    }

    #[test]
    fn members_for_other_sources_are_refused() {
        for member in NOT_FOR_KINESIS.iter().map(|(m, _)| m) {
            let j = Json::parse(format!(r#"{{"{member}": {{"x": 1}}}}"#).as_bytes()).unwrap();
            let e = refuse_not_for_kinesis(&j).unwrap_err();
            assert!(e.message.unwrap().starts_with(&format!(
                "sluice does not support {member} on event source mappings"
            )));
        }
        // Empty values are as good as absent.
        let j = Json::parse(
            br#"{"KMSKeyArn": "", "SourceAccessConfigurations": [], "ScalingConfig": {}}"#,
        )
        .unwrap();
        assert!(refuse_not_for_kinesis(&j).is_ok());
    }
}

/// The operations through the router, against a real stream registry (the pollers run, on
/// an empty stream).
#[cfg(test)]
mod api {
    use std::time::Duration;

    use axum::body::Body;
    use http::Request;
    use sluice_aws::Credentials;
    use sluice_runtime::Runtimes;
    use sluice_streams::{StreamMode, StreamSpec, Streams, StreamsConfig, SystemClock};
    use tower::ServiceExt;

    use super::*;
    use crate::config::LambdaConfig;
    use crate::service::LambdaOptions;
    use crate::store::FunctionRecord;

    const STREAM: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s1";
    const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";

    struct Harness {
        lambda: Arc<Lambda>,
        streams: Arc<Streams>,
        dir: tempfile::TempDir,
    }

    fn open(dir: &std::path::Path, streams: &Arc<Streams>, delay_ms: u64) -> Arc<Lambda> {
        let clock = streams.clone();
        let config = LambdaConfig {
            mapping_state_delay_ms: delay_ms,
            ..LambdaConfig::default()
        };
        let runtimes = Arc::new(Runtimes::new(config.runtimes_config()));
        Lambda::open(
            LambdaOptions {
                config,
                data_dir: dir.to_path_buf(),
                region: "us-east-1".into(),
                account_id: "000000000000".into(),
                credentials: Credentials::new(Vec::new()),
                handler_access_key: ("test".into(), "test".into()),
                now_ms: Arc::new(move || clock.now_ms()),
                streams: streams.clone(),
                lake: sluice_lake::Lake::local(dir.join("lake")),
            },
            runtimes,
        )
        .unwrap()
    }

    fn zip() -> Vec<u8> {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("app.py", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"def h(e, c):\n    return {}\n").unwrap();
        w.finish().unwrap().into_inner()
    }

    fn harness(delay_ms: u64) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let streams = Arc::new(
            Streams::open(
                StreamsConfig::new(dir.path().join("streams")),
                Arc::new(SystemClock),
            )
            .unwrap(),
        );
        for name in ["s1", "s2", "dlq"] {
            streams
                .create_stream(
                    &StreamName::new(name).unwrap(),
                    StreamSpec {
                        shard_count: 1,
                        mode: StreamMode::Provisioned,
                        max_record_size_kib: 1024,
                        tags: BTreeMap::new(),
                    },
                )
                .unwrap();
        }
        let lambda = open(dir.path(), &streams, delay_ms);
        for name in ["f", "g"] {
            let record = FunctionRecord {
                format_version: 0,
                name: name.into(),
                runtime: "python3.12".into(),
                role: "arn:aws:iam::000000000000:role/lambda-role".into(),
                handler: "app.h".into(),
                description: String::new(),
                timeout_s: 3,
                memory_mb: 128,
                environment: BTreeMap::new(),
                architecture: "x86_64".into(),
                tags: BTreeMap::new(),
                code_sha256: String::new(),
                code_size: 0,
                code_revision: String::new(),
                last_modified_ms: 1,
                revision_id: crate::store::new_revision_id(),
                reserved_concurrency: None,
            };
            lambda.store.create(record, &zip()).unwrap();
        }
        Harness {
            lambda,
            streams,
            dir,
        }
    }

    async fn call(
        lambda: &Arc<Lambda>,
        method: &str,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(if body.is_null() {
                Vec::new()
            } else {
                serde_json::to_vec(&body).unwrap()
            }))
            .unwrap();
        let resp = lambda.router().oneshot(req).await.unwrap();
        let status = resp.status();
        let error_type = resp
            .headers()
            .get("x-amzn-ErrorType")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, v, error_type)
    }

    async fn create(lambda: &Arc<Lambda>, body: Value) -> (StatusCode, Value, String) {
        call(lambda, "POST", "/2015-03-31/event-source-mappings/", body).await
    }

    /// The error's message (`message` or `Message`, as the type spells it).
    fn message(v: &Value) -> &str {
        v.get("message")
            .or_else(|| v.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    async fn wait_state(lambda: &Arc<Lambda>, uuid: &str, want: &str) -> Value {
        let path = format!("/2015-03-31/event-source-mappings/{uuid}");
        for _ in 0..500 {
            let (status, v, _) = call(lambda, "GET", &path, Value::Null).await;
            if want == "gone" && status == StatusCode::NOT_FOUND {
                return v;
            }
            if v["State"] == want {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("mapping {uuid} never reached {want}");
    }

    fn basic() -> Value {
        json!({"EventSourceArn": STREAM, "FunctionName": "f", "StartingPosition": "LATEST"})
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn metrics_config_takes_event_count_only() {
        let h = harness(0);
        let mut body = basic();
        body["MetricsConfig"] = json!({"Metrics": ["EventCount"]});
        let (status, v, _) = create(&h.lambda, body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["MetricsConfig"], json!({"Metrics": ["EventCount"]}));
        let uuid = v["UUID"].as_str().unwrap().to_string();
        let got = wait_state(&h.lambda, &uuid, "Enabled").await;
        assert_eq!(got["MetricsConfig"], json!({"Metrics": ["EventCount"]}));
        // An update with an empty list clears it; Get then shows no MetricsConfig.
        let path = format!("/2015-03-31/event-source-mappings/{uuid}");
        let (status, v, _) = call(
            &h.lambda,
            "PUT",
            &path,
            json!({"MetricsConfig": {"Metrics": []}}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        assert!(v.get("MetricsConfig").is_none(), "{v}");
        // Kafka's metric types do not apply to a Kinesis source; unknown ones fail validation.
        for (metric, error) in [
            ("ErrorCount", "InvalidParameterValueException"),
            ("KafkaMetrics", "InvalidParameterValueException"),
            ("Nope", "ValidationException"),
        ] {
            let mut body = basic();
            body["MetricsConfig"] = json!({ "Metrics": [metric] });
            let (status, v, error_type) = create(&h.lambda, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{metric}: {v}");
            assert!(error_type.starts_with(error), "{metric}: {error_type}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn lifecycle_shapes_and_states() {
        let h = harness(0);
        let (status, v, _) = create(&h.lambda, basic()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        let uuid = v["UUID"].as_str().unwrap().to_string();
        assert_eq!(
            v,
            json!({
                "UUID": uuid,
                "StartingPosition": "LATEST",
                "BatchSize": 100,
                "MaximumBatchingWindowInSeconds": 0,
                "ParallelizationFactor": 1,
                "EventSourceArn": STREAM,
                "FunctionArn": FUNCTION_ARN,
                "LastModified": v["LastModified"],
                "LastProcessingResult": "No records processed",
                "State": "Creating",
                "StateTransitionReason": "User action",
                "DestinationConfig": {"OnFailure": {}},
                "MaximumRecordAgeInSeconds": -1,
                "BisectBatchOnFunctionError": false,
                "MaximumRetryAttempts": -1,
                "TumblingWindowInSeconds": 0,
                "FunctionResponseTypes": [],
                "EventSourceMappingArn": format!("arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{uuid}"),
            })
        );
        assert!(v["LastModified"].as_f64().unwrap() > 1.6e9);
        let file = h.dir.path().join(format!("lambda/mappings/{uuid}.json"));
        assert!(file.exists());
        wait_state(&h.lambda, &uuid, "Enabled").await;

        // List, with and without filters.
        let (_, all, _) = call(
            &h.lambda,
            "GET",
            "/2015-03-31/event-source-mappings/",
            Value::Null,
        )
        .await;
        assert_eq!(all["EventSourceMappings"].as_array().unwrap().len(), 1);
        let path = format!("/2015-03-31/event-source-mappings/?FunctionName={FUNCTION_ARN}&EventSourceArn={STREAM}");
        let (_, some, _) = call(&h.lambda, "GET", &path, Value::Null).await;
        assert_eq!(some["EventSourceMappings"][0]["UUID"], uuid);
        let (_, none, _) = call(
            &h.lambda,
            "GET",
            "/2015-03-31/event-source-mappings/?FunctionName=g",
            Value::Null,
        )
        .await;
        assert_eq!(none, json!({"EventSourceMappings": []}));

        // Update: Updating, then Enabled with the new settings.
        let path = format!("/2015-03-31/event-source-mappings/{uuid}");
        let (status, v, _) = call(
            &h.lambda,
            "PUT",
            &path,
            json!({"BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"],
                   "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:s3:::failures"}},
                   "FilterCriteria": {"Filters": []}}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["State"], "Updating");
        assert_eq!(v["BatchSize"], 10);
        assert_eq!(
            v["FunctionResponseTypes"],
            json!(["ReportBatchItemFailures"])
        );
        assert_eq!(
            v["DestinationConfig"],
            json!({"OnFailure": {"Destination": "arn:aws:s3:::failures"}})
        );
        let v = wait_state(&h.lambda, &uuid, "Enabled").await;
        assert_eq!(v["BatchSize"], 10);
        assert!(h.lambda.mappings.running().contains_key(&uuid));

        // Disable: Disabling, then Disabled, its poller stopped.
        let (_, v, _) = call(&h.lambda, "PUT", &path, json!({"Enabled": false})).await;
        assert_eq!(v["State"], "Disabling");
        wait_state(&h.lambda, &uuid, "Disabled").await;
        assert!(!h.lambda.mappings.running().contains_key(&uuid));
        let (_, v, _) = call(&h.lambda, "PUT", &path, json!({"Enabled": true})).await;
        assert_eq!(v["State"], "Enabling");
        wait_state(&h.lambda, &uuid, "Enabled").await;

        // Delete: Deleting, then gone with its record.
        let (status, v, _) = call(&h.lambda, "DELETE", &path, Value::Null).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(v["State"], "Deleting");
        let gone = wait_state(&h.lambda, &uuid, "gone").await;
        assert_eq!(
            gone,
            json!({"Type": "User", "Message": "The resource you requested does not exist."})
        );
        assert!(!file.exists());
        assert!(h.lambda.mappings.running().is_empty());
        for method in ["PUT", "DELETE"] {
            let (status, _, kind) = call(&h.lambda, method, &path, json!({})).await;
            assert_eq!(
                (status, kind.as_str()),
                (StatusCode::NOT_FOUND, "ResourceNotFoundException")
            );
        }
        h.lambda.shutdown().await;
        h.streams.close();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn errors_are_lambdas() {
        let h = harness(0);
        let with = |extra: Value| {
            let mut b = basic();
            for (k, v) in extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            b
        };
        let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
            (with(json!({"FunctionName": "nope"})), StatusCode::BAD_REQUEST, "InvalidParameterValueException", "Function does not exist"),
            (with(json!({"FunctionName": "arn:aws:lambda:eu-west-1:000000000000:function:f"})), StatusCode::BAD_REQUEST, "InvalidParameterValueException", "Function does not exist"),
            (with(json!({"EventSourceArn": "arn:aws:kinesis:us-east-1:000000000000:stream/nope"})), StatusCode::BAD_REQUEST, "InvalidParameterValueException", "Stream not found: arn:aws:kinesis:us-east-1:000000000000:stream/nope"),
            (with(json!({"EventSourceArn": "arn:aws:kinesis:us-east-1:000000000000:stream/s1/consumer/c:1700000000"})), StatusCode::BAD_REQUEST, "InvalidParameterValueException", "Stream consumer not found: arn:aws:kinesis:us-east-1:000000000000:stream/s1/consumer/c:1700000000"),
            (json!({"FunctionName": "f", "StartingPosition": "LATEST"}), StatusCode::BAD_REQUEST, "InvalidParameterValueException", "Unrecognized event source."),
            (json!({"FunctionName": "f", "EventSourceArn": STREAM}), StatusCode::BAD_REQUEST, "InvalidParameterValueException", "1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null."),
            (with(json!({"StartingPosition": "EARLIEST"})), StatusCode::BAD_REQUEST, "ValidationException", "1 validation error detected: Value 'EARLIEST' at 'startingPosition' failed to satisfy constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]"),
            (with(json!({"MaximumRecordAgeInSeconds": 59})), StatusCode::BAD_REQUEST, "InvalidParameterValueException", "MaximumRecordAgeInSeconds must be either -1 (forever) or between 60 and 604800 (inclusive)"),
            (with(json!({"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:s3:::b"}}})), StatusCode::BAD_REQUEST, "InvalidParameterValueException", "Unsupported DestinationConfig parameter for given event source mapping type."),
            (with(json!({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:kinesis:us-east-1:000000000000:stream/nope"}}})), StatusCode::BAD_REQUEST, "InvalidParameterValueException", "Stream not found: arn:aws:kinesis:us-east-1:000000000000:stream/nope"),
            (json!({"EventSourceArn": STREAM, "StartingPosition": "LATEST"}), StatusCode::BAD_REQUEST, "ValidationException", "1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null"),
            (with(json!({"EventSourceArn": "not-an-arn"})), StatusCode::BAD_REQUEST, "ValidationException", ""),
        ];
        for (body, status, kind, msg) in cases {
            let (s, v, k) = create(&h.lambda, body.clone()).await;
            assert_eq!((s, k.as_str()), (status, kind), "{body}: {v}");
            if !msg.is_empty() {
                assert_eq!(message(&v), msg, "{body}");
            }
        }
        // Members for other event sources, an SQS destination, too many filters, a pattern
        // the filter compiler refuses: sluice's own messages.
        let (_, v, k) = create(
            &h.lambda,
            with(json!({"ScalingConfig": {"MaximumConcurrency": 2}})),
        )
        .await;
        assert_eq!(k, "InvalidParameterValueException");
        assert!(
            message(&v).starts_with("sluice does not support ScalingConfig"),
            "{v}"
        );
        let (_, v, _) = create(&h.lambda, with(json!({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:q"}}}))).await;
        assert!(
            message(&v).starts_with("sluice does not support SQS queues or SNS topics"),
            "{v}"
        );
        let six: Vec<Value> = (0..6).map(|_| json!({"Pattern": "{}"})).collect();
        let (_, v, k) = create(&h.lambda, with(json!({"FilterCriteria": {"Filters": six}}))).await;
        assert_eq!(k, "InvalidParameterValueException", "{v}");
        let (_, v, k) = create(
            &h.lambda,
            with(json!({"FilterCriteria": {"Filters": [{"Pattern": "{not json"}]}})),
        )
        .await;
        assert_eq!(k, "InvalidParameterValueException", "{v}");
        assert!(
            message(&v).starts_with("Invalid filter pattern definition."),
            "{v}"
        );
        // Timestamps.
        let (_, v, _) = create(&h.lambda, with(json!({"StartingPosition": "AT_TIMESTAMP"}))).await;
        assert_eq!(message(&v), "Need to specify a timestamp");
        let (_, v, _) = create(
            &h.lambda,
            with(json!({"StartingPositionTimestamp": 1_600_000_000})),
        )
        .await;
        assert_eq!(
            message(&v),
            "Timestamp only valid with StartingPosition AT_TIMESTAMP"
        );
        let (s, v, _) = create(&h.lambda, with(json!({"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 1_600_000_000.25}))).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["StartingPositionTimestamp"], 1_600_000_000.25);
        assert_eq!(v["StartingPosition"], "AT_TIMESTAMP");

        // A second mapping of the same function and stream.
        let first = v["UUID"].as_str().unwrap().to_string();
        let (s, v, k) = create(&h.lambda, basic()).await;
        assert_eq!(
            (s, k.as_str()),
            (StatusCode::CONFLICT, "ResourceConflictException")
        );
        assert_eq!(
            message(&v),
            format!("The event source arn (\" {STREAM} \") and function (\" f \") provided mapping already exists. Please update or delete the existing mapping with UUID {first}")
        );
        // Another function on the same stream is fine; moving it onto `f` is the conflict.
        let (s, v, _) = create(&h.lambda, with(json!({"FunctionName": "g"}))).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let second = v["UUID"].as_str().unwrap().to_string();
        wait_state(&h.lambda, &second, "Enabled").await;
        let (s, _, k) = call(
            &h.lambda,
            "PUT",
            &format!("/2015-03-31/event-source-mappings/{second}"),
            json!({"FunctionName": "f"}),
        )
        .await;
        assert_eq!(
            (s, k.as_str()),
            (StatusCode::CONFLICT, "ResourceConflictException")
        );
        let (s, v, _) = call(
            &h.lambda,
            "GET",
            "/2015-03-31/event-source-mappings/nope",
            Value::Null,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(message(&v), "The resource you requested does not exist.");
        h.lambda.shutdown().await;
        h.streams.close();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_mapping_in_transition_is_in_use() {
        let h = harness(60_000);
        let (_, v, _) = create(&h.lambda, basic()).await;
        let uuid = v["UUID"].as_str().unwrap().to_string();
        let path = format!("/2015-03-31/event-source-mappings/{uuid}");
        let (_, v, _) = call(&h.lambda, "GET", &path, Value::Null).await;
        assert_eq!(v["State"], "Creating");
        let (s, v, k) = call(&h.lambda, "PUT", &path, json!({"BatchSize": 5})).await;
        assert_eq!(
            (s, k.as_str()),
            (StatusCode::BAD_REQUEST, "ResourceInUseException")
        );
        assert_eq!(
            v,
            json!({"Type": "User", "Message": "Cannot update the event source mapping because it is in use."})
        );
        let (s, v, k) = call(&h.lambda, "DELETE", &path, Value::Null).await;
        assert_eq!(
            (s, k.as_str()),
            (StatusCode::BAD_REQUEST, "ResourceInUseException")
        );
        assert_eq!(
            message(&v),
            "Cannot delete the event source mapping because it is in use."
        );
        h.lambda.shutdown().await;
        drop(h.lambda);
        // A restart (the task never ran: as after a crash) settles it by its Enabled flag.
        let lambda = open(h.dir.path(), &h.streams, 0);
        let (_, v, _) = call(&lambda, "GET", &path, Value::Null).await;
        assert_eq!(v["State"], "Enabled");
        lambda.start_mappings();
        assert!(lambda.mappings.running().contains_key(&uuid));
        lambda.shutdown().await;
        assert!(lambda.mappings.running().is_empty());
        h.streams.close();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn list_pages_with_marker() {
        let h = harness(0);
        let mut made = Vec::new();
        for (f, s) in [("f", "s1"), ("f", "s2"), ("g", "s1")] {
            let arn = format!("arn:aws:kinesis:us-east-1:000000000000:stream/{s}");
            let (_, v, _) = create(&h.lambda, json!({"EventSourceArn": arn, "FunctionName": f, "StartingPosition": "TRIM_HORIZON", "Enabled": false})).await;
            made.push(v["UUID"].as_str().unwrap().to_string());
        }
        made.sort();
        let mut seen = Vec::new();
        let mut marker = String::new();
        for _ in 0..5 {
            let path = format!("/2015-03-31/event-source-mappings/?MaxItems=2&Marker={marker}");
            let (s, v, _) = call(&h.lambda, "GET", &path, Value::Null).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            for m in v["EventSourceMappings"].as_array().unwrap() {
                seen.push(m["UUID"].as_str().unwrap().to_string());
            }
            match v["NextMarker"].as_str() {
                Some(m) => marker = m.to_string(),
                None => break,
            }
        }
        assert_eq!(seen, made);
        let (_, v, _) = call(
            &h.lambda,
            "GET",
            &format!("/2015-03-31/event-source-mappings/?EventSourceArn={STREAM}"),
            Value::Null,
        )
        .await;
        assert_eq!(v["EventSourceMappings"].as_array().unwrap().len(), 2);
        for bad in ["MaxItems=0", "MaxItems=10001"] {
            let (s, _, k) = call(
                &h.lambda,
                "GET",
                &format!("/2015-03-31/event-source-mappings/?{bad}"),
                Value::Null,
            )
            .await;
            assert_eq!(
                (s, k.as_str()),
                (StatusCode::BAD_REQUEST, "ValidationException"),
                "{bad}"
            );
        }
        h.lambda.shutdown().await;
        h.streams.close();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn mappings_take_tags() {
        let h = harness(0);
        let (_, v, _) = create(&h.lambda, {
            let mut b = basic();
            b["Tags"] = json!({"team": "a"});
            b
        })
        .await;
        let arn = v["EventSourceMappingArn"].as_str().unwrap().to_string();
        let path = format!("/2017-03-31/tags/{}", arn.replace(':', "%3A"));
        let (_, v, _) = call(&h.lambda, "GET", &path, Value::Null).await;
        assert_eq!(v, json!({"Tags": {"team": "a"}}));
        let (s, _, _) = call(&h.lambda, "POST", &path, json!({"Tags": {"env": "dev"}})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _, _) = call(
            &h.lambda,
            "DELETE",
            &format!("{path}?tagKeys=team"),
            Value::Null,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, v, _) = call(&h.lambda, "GET", &path, Value::Null).await;
        assert_eq!(v, json!({"Tags": {"env": "dev"}}));
        let missing = arn.replace(&arn[arn.len() - 4..], "0000");
        let (s, _, k) = call(
            &h.lambda,
            "GET",
            &format!("/2017-03-31/tags/{missing}"),
            Value::Null,
        )
        .await;
        assert_eq!(
            (s, k.as_str()),
            (StatusCode::NOT_FOUND, "ResourceNotFoundException")
        );
        h.lambda.shutdown().await;
        h.streams.close();
    }
}
