//! The Redshift destination (RedshiftDestinationConfiguration), with PostgreSQL in Redshift's
//! place, loaded by `sluice-pgload`.
//!
//! - The API: [`parse`] reads a `RedshiftDestinationConfiguration` or a
//!   `RedshiftDestinationUpdate` with the model's constraints, [`RedshiftSpec::apply`] merges it
//!   into what the delivery stream has (an update of a Redshift destination merges; any other
//!   change of destination type needs every required member), and [`check`] applies
//!   Firehose's own rules (no SNAPPY / ZIP / HADOOP_SNAPPY in the intermediate S3 location,
//!   Username and Password, no SecretsManagerConfiguration) plus sluice's: the JDBC URL and
//!   the CopyCommand must be ones `sluice-pgload` can use. [`RedshiftDestination::describe`] is
//!   `RedshiftDestinationDescription` (no Password, as on AWS).
//! - The delivery: the intermediate S3 location is the delivery stream's `S3Destination` (its
//!   prefix, buffering hints, compression, processors and S3 backup), so objects are staged
//!   into the lake exactly as for an S3 destination. After an object is staged, the delivery
//!   task calls [`Target::deliver`]: the object is loaded in one transaction with its
//!   bookkeeping row (retried with back-off while `RetryOptions.DurationInSeconds` lasts), or,
//!   once the retries are spent or the data is bad, its COPY manifest is written under
//!   `<prefix>errors/manifests/YYYY/MM/dd/HH/` in the intermediate bucket. The delivery task
//!   commits its checkpoint only after that, so records move past the checkpoint only once
//!   their object is loaded or listed in an error manifest.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use sluice_aws::validate::Validator;
use sluice_aws::value::{Input, Value};
use sluice_aws::ApiError;
use sluice_lake::Lake;
use sluice_pgload::{CopyCommand, LoadOutcome, Loader, LoaderConfig};
use tokio::sync::watch;

use crate::compression::Compression;
use crate::destination::{self, parse_s3, S3Spec};
use crate::limits;
use crate::metrics::StreamMetrics;
use crate::model::S3Destination;
use crate::prefix::{Eval, Template};

/// How a sensitive member (Username, Password) is shown in a ValidationException.
const REDACTED: &str = "*** Sensitive Data Redacted ***";
/// `RetryOptions.DurationInSeconds` of the Redshift destination: 0 to 7200, 3600 by default.
pub const RETRY_DURATION_S_MAX: i64 = 7200;
pub const RETRY_DURATION_S_DEFAULT: i64 = 3600;
/// `Username`: 1 to 512 characters; `Password`: 6 to 512.
const USERNAME_CHARS_MAX: usize = 512;
const PASSWORD_CHARS_MIN: usize = 6;
const PASSWORD_CHARS_MAX: usize = 512;
/// `CopyCommand.DataTableName`: 1 to 512; `DataTableColumns` and `CopyOptions`: up to 204,800.
const TABLE_NAME_CHARS_MAX: usize = 512;
const COPY_STRING_CHARS_MAX: usize = 204_800;
/// `ClusterJDBCURL`: 1 to 512 characters.
const JDBC_URL_CHARS_MAX: usize = 512;

/// What sluice keeps of a Redshift destination beyond its intermediate S3 location (which is
/// the delivery stream's `S3Destination`, with the processors and the S3 backup).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RedshiftDestination {
    pub role_arn: String,
    pub cluster_jdbc_url: String,
    pub data_table_name: String,
    pub data_table_columns: Option<String>,
    pub copy_options: Option<String>,
    pub username: String,
    /// Kept in the delivery stream's file under the data directory; never described.
    pub password: String,
    /// `RetryOptions.DurationInSeconds` as given (`None`: 3600).
    pub retry_duration_s: Option<i64>,
    pub cloudwatch: Option<Json>,
}

impl std::fmt::Debug for RedshiftDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedshiftDestination")
            .field("cluster_jdbc_url", &self.cluster_jdbc_url)
            .field("data_table_name", &self.data_table_name)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl RedshiftDestination {
    pub fn retry_duration_s(&self) -> i64 {
        self.retry_duration_s.unwrap_or(RETRY_DURATION_S_DEFAULT)
    }

    /// The CopyCommand as `sluice-pgload` applies it.
    pub fn copy_command(&self) -> Result<CopyCommand, String> {
        CopyCommand::new(
            &self.data_table_name,
            self.data_table_columns.as_deref(),
            self.copy_options.as_deref(),
        )
        .map_err(|e| format!("CopyCommand is invalid: {e}"))
    }

    /// The loader's settings for delivery stream `name`.
    pub fn loader_config(&self, name: &str) -> Result<LoaderConfig, String> {
        LoaderConfig::new(
            name,
            &self.cluster_jdbc_url,
            &self.username,
            &self.password,
            Some(self.retry_duration_s()),
        )
        .map_err(|e| format!("ClusterJDBCURL is invalid: {e}"))
    }

    /// `RedshiftDestinationDescription`, `staging` being the intermediate S3 location (with
    /// the processors and the S3 backup).
    pub fn describe(&self, staging: &S3Destination) -> Json {
        let mut m = Map::new();
        m.insert("RoleARN".into(), json!(self.role_arn));
        m.insert("ClusterJDBCURL".into(), json!(self.cluster_jdbc_url));
        let mut copy = Map::new();
        copy.insert("DataTableName".into(), json!(self.data_table_name));
        if let Some(c) = &self.data_table_columns {
            copy.insert("DataTableColumns".into(), json!(c));
        }
        if let Some(o) = &self.copy_options {
            copy.insert("CopyOptions".into(), json!(o));
        }
        m.insert("CopyCommand".into(), Json::Object(copy));
        m.insert("Username".into(), json!(self.username));
        m.insert(
            "RetryOptions".into(),
            json!({"DurationInSeconds": self.retry_duration_s()}),
        );
        m.insert("S3DestinationDescription".into(), staging.describe_basic());
        let extended = staging.describe_extended();
        for member in [
            "ProcessingConfiguration",
            "S3BackupMode",
            "S3BackupDescription",
        ] {
            if let Some(v) = extended.get(member) {
                m.insert(member.into(), v.clone());
            }
        }
        m.insert(
            "CloudWatchLoggingOptions".into(),
            self.cloudwatch
                .clone()
                .unwrap_or_else(|| json!({"Enabled": false})),
        );
        Json::Object(m)
    }
}

/// The members of a `RedshiftDestinationConfiguration` or `RedshiftDestinationUpdate`, as
/// given.
#[derive(Default)]
pub struct RedshiftSpec {
    role_arn: Option<String>,
    cluster_jdbc_url: Option<String>,
    copy_command: Option<(Option<String>, Option<String>, Option<String>)>,
    username: Option<String>,
    password: Option<String>,
    retry_duration_s: Option<i64>,
    cloudwatch: Option<Json>,
    secrets_manager: bool,
    /// The intermediate S3 location (S3Configuration / S3Update), with the Redshift
    /// destination's ProcessingConfiguration, S3BackupMode and S3 backup merged in.
    staging: S3Spec,
    /// Whether S3Configuration / S3Update was given.
    staging_given: bool,
}

impl std::fmt::Debug for RedshiftSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedshiftSpec")
            .field("cluster_jdbc_url", &self.cluster_jdbc_url)
            .finish_non_exhaustive()
    }
}

fn raw(input: &Input<'_>, name: &str) -> Option<Json> {
    input
        .members
        .iter()
        .rev()
        .find(|(k, v)| k == name && !matches!(v, Value::Null))
        .map(|(_, v)| destination::to_json(v))
}

/// A sensitive string's length, checked without showing it.
fn sensitive_len(v: &mut Validator, s: Option<&str>, path: &str, min: usize, max: usize) {
    if let Some(s) = s {
        let n = s.chars().count();
        if n < min {
            v.fail(
                Some(REDACTED),
                path,
                &format!("Member must have length greater than or equal to {min}"),
            );
        }
        if n > max {
            v.fail(
                Some(REDACTED),
                path,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
    }
}

/// Reads a Redshift destination structure at `path` (`redshiftDestinationConfiguration` or
/// `redshiftDestinationUpdate`); `create`: a configuration (its required members checked,
/// `S3Configuration` / `S3BackupConfiguration`), not an update (`S3Update` /
/// `S3BackupUpdate`).
pub fn parse(
    v: &mut Validator,
    input: Input<'_>,
    path: &str,
    create: bool,
) -> Result<RedshiftSpec, ApiError> {
    let p = |m: &str| format!("{path}.{m}");
    let role = input.str("RoleARN")?;
    let url = input.str("ClusterJDBCURL")?;
    if create {
        v.required(role, &p("roleARN"));
        v.required(url, &p("clusterJDBCURL"));
    }
    v.pattern(
        role,
        &p("roleARN"),
        destination::ROLE_ARN_PATTERN,
        destination::is_role_arn,
    );
    v.str_len(role, &p("roleARN"), 1, limits::ARN_CHARS_MAX);
    // The model's pattern only admits `*.redshift.*` hosts; sluice reads the URL itself
    // (`check`), so a PostgreSQL server anywhere can be named.
    v.str_len(url, &p("clusterJDBCURL"), 1, JDBC_URL_CHARS_MAX);
    let copy = input.structure("CopyCommand")?;
    if create {
        v.required(copy.as_ref(), &p("copyCommand"));
    }
    let copy_command = match copy {
        Some(c) => {
            let table = c.str("DataTableName")?;
            let columns = c.str("DataTableColumns")?;
            let options = c.str("CopyOptions")?;
            v.required(table, &p("copyCommand.dataTableName"));
            v.str_len(
                table,
                &p("copyCommand.dataTableName"),
                1,
                TABLE_NAME_CHARS_MAX,
            );
            v.str_len(
                columns,
                &p("copyCommand.dataTableColumns"),
                0,
                COPY_STRING_CHARS_MAX,
            );
            v.str_len(
                options,
                &p("copyCommand.copyOptions"),
                0,
                COPY_STRING_CHARS_MAX,
            );
            Some((
                table.map(str::to_string),
                columns.map(str::to_string),
                options.map(str::to_string),
            ))
        }
        None => None,
    };
    let username = input.str("Username")?;
    sensitive_len(v, username, &p("username"), 1, USERNAME_CHARS_MAX);
    let password = input.str("Password")?;
    sensitive_len(
        v,
        password,
        &p("password"),
        PASSWORD_CHARS_MIN,
        PASSWORD_CHARS_MAX,
    );
    let mut retry_duration_s = None;
    if let Some(r) = input.structure("RetryOptions")? {
        retry_duration_s = r.int("DurationInSeconds")?;
        v.range(
            retry_duration_s,
            &p("retryOptions.durationInSeconds"),
            Some(0),
            Some(RETRY_DURATION_S_MAX),
        );
    }
    let (s3_member, s3_path, backup_member, backup_path) = if create {
        (
            "S3Configuration",
            "s3Configuration",
            "S3BackupConfiguration",
            "s3BackupConfiguration",
        )
    } else {
        ("S3Update", "s3Update", "S3BackupUpdate", "s3BackupUpdate")
    };
    let s3 = input.structure(s3_member)?;
    if create {
        v.required(s3.as_ref(), &p(s3_path));
    }
    let staging_given = s3.is_some();
    let mut staging = match s3 {
        Some(s) => parse_s3(v, s, &p(s3_path), create, false)?,
        None => S3Spec::default(),
    };
    if let Some(pc) = input.structure("ProcessingConfiguration")? {
        staging.processing = Some(destination::parse_processing(
            v,
            pc,
            &p("processingConfiguration"),
        )?);
    }
    let backup_mode = input.str("S3BackupMode")?;
    v.one_of(backup_mode, &p("s3BackupMode"), &["Disabled", "Enabled"]);
    staging.backup_enabled = backup_mode.map(|m| m == "Enabled");
    if let Some(b) = input.structure(backup_member)? {
        staging.backup = Some(Box::new(parse_s3(v, b, &p(backup_path), create, false)?));
    }
    let secrets_manager = match input.structure("SecretsManagerConfiguration")? {
        Some(s) => s.bool("Enabled")?.unwrap_or(false),
        None => false,
    };
    Ok(RedshiftSpec {
        role_arn: role.map(str::to_string),
        cluster_jdbc_url: url.map(str::to_string),
        copy_command,
        username: username.map(str::to_string),
        password: password.map(str::to_string),
        retry_duration_s,
        cloudwatch: raw(&input, "CloudWatchLoggingOptions"),
        secrets_manager,
        staging,
        staging_given,
    })
}

impl RedshiftSpec {
    /// The destination this spec makes: merged into `base` (the delivery stream's Redshift
    /// destination and intermediate S3 location, when it has one), or from nothing, every
    /// required member then needed (a configuration, or an update that changes the
    /// destination type: Firehose merges nothing then).
    pub fn apply(
        self,
        base: Option<(&RedshiftDestination, &S3Destination)>,
    ) -> Result<(RedshiftDestination, S3Destination), ApiError> {
        if self.secrets_manager {
            return Err(ApiError::invalid_argument(
                "sluice does not support SecretsManagerConfiguration yet: give Username and Password. See docs/specs/firehose-compat.md.",
            ));
        }
        let (mut rs, staging_base) = match base {
            Some((rs, staging)) => (rs.clone(), Some(staging)),
            None => {
                let missing = |what: &str| {
                    ApiError::invalid_argument(format!(
                        "{what} is required when the destination is not already Amazon Redshift."
                    ))
                };
                let copy = self
                    .copy_command
                    .as_ref()
                    .ok_or_else(|| missing("CopyCommand"))?;
                if !self.staging_given
                    || self.staging.role_arn.is_none()
                    || self.staging.bucket_arn.is_none()
                {
                    return Err(missing("S3Configuration with RoleARN and BucketARN"));
                }
                (
                    RedshiftDestination {
                        role_arn: self.role_arn.clone().ok_or_else(|| missing("RoleARN"))?,
                        cluster_jdbc_url: self
                            .cluster_jdbc_url
                            .clone()
                            .ok_or_else(|| missing("ClusterJDBCURL"))?,
                        data_table_name: copy
                            .0
                            .clone()
                            .ok_or_else(|| missing("CopyCommand.DataTableName"))?,
                        data_table_columns: None,
                        copy_options: None,
                        username: String::new(),
                        password: String::new(),
                        retry_duration_s: None,
                        cloudwatch: None,
                    },
                    None,
                )
            }
        };
        if let Some(r) = self.role_arn {
            rs.role_arn = r;
        }
        if let Some(u) = self.cluster_jdbc_url {
            rs.cluster_jdbc_url = u;
        }
        if let Some((table, columns, options)) = self.copy_command {
            // A CopyCommand replaces the one there: its optional members are not merged.
            if let Some(t) = table {
                rs.data_table_name = t;
            }
            rs.data_table_columns = columns;
            rs.copy_options = options;
        }
        if let Some(u) = self.username {
            rs.username = u;
        }
        if let Some(p) = self.password {
            rs.password = p;
        }
        if let Some(r) = self.retry_duration_s {
            rs.retry_duration_s = Some(r);
        }
        if let Some(c) = self.cloudwatch {
            rs.cloudwatch = Some(c);
        }
        let staging = self.staging.apply(staging_base)?;
        Ok((rs, staging))
    }
}

/// Why a Redshift destination cannot be delivered as configured (an
/// InvalidArgumentException): Firehose's rules, then what `sluice-pgload` can use. `update`:
/// the request was an UpdateDestination (the messages name its members).
pub fn check(
    rs: &RedshiftDestination,
    staging: &S3Destination,
    update: bool,
) -> Result<(), String> {
    if matches!(
        staging.compression,
        Compression::Snappy | Compression::Zip | Compression::HadoopSnappy
    ) {
        let member = if update {
            "RedshiftDestinationUpdate.S3Update"
        } else {
            "RedshiftDestinationConfiguration.S3Configuration"
        };
        return Err(format!(
            "The compression formats SNAPPY or ZIP cannot be specified in {member} because the Amazon Redshift COPY operation that reads from the S3 bucket doesn't support these compression formats."
        ));
    }
    if rs.username.is_empty() || rs.password.is_empty() {
        return Err(
            "Username and Password are required when SecretsManagerConfiguration is not enabled."
                .into(),
        );
    }
    if !(0..=RETRY_DURATION_S_MAX).contains(&rs.retry_duration_s()) {
        return Err(format!(
            "RetryOptions.DurationInSeconds must be between 0 and {RETRY_DURATION_S_MAX}."
        ));
    }
    rs.loader_config("check")?;
    rs.copy_command()?;
    Ok(())
}

/// One delivery task's Redshift loads: the loader (its connection kept between loads), the
/// CopyCommand, and where error manifests go.
pub struct Target {
    name: String,
    /// `Err`: the stored configuration does not load (checked when it was set, so only a
    /// hand-edited file): every object then gets an error manifest.
    loader: Result<(Loader, CopyCommand), String>,
    /// The intermediate S3 location's Prefix, for the error manifests' keys.
    prefix: Template,
    /// How long an error manifest's write is retried (Firehose retries S3 for 24 hours).
    manifest_retry: Duration,
    backoff_max_ms: u64,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

async fn stopped(stop: &watch::Receiver<bool>) {
    let _ = stop.clone().wait_for(|s| *s).await;
}

impl Target {
    pub fn new(
        name: &str,
        rs: &RedshiftDestination,
        staging: &S3Destination,
        config: &crate::config::FirehoseConfig,
    ) -> Target {
        let loader = rs
            .loader_config(name)
            .and_then(|c| Ok((Loader::new(c), rs.copy_command()?)));
        if let Err(e) = &loader {
            tracing::error!(delivery_stream = %name, error = %e, "the Redshift destination does not load; objects get error manifests");
        }
        Target {
            name: name.to_string(),
            loader,
            prefix: Template::parse(staging.prefix.as_deref().unwrap_or(""))
                .unwrap_or_else(|_| Template::empty()),
            manifest_retry: Duration::from_secs(config.retry_duration_s),
            backoff_max_ms: config.retry_backoff_ms_max,
        }
    }

    /// Loads the staged object `bucket`/`key` (`body`, holding `records` records of `bytes`
    /// bytes before compression), or writes its error manifest. `Err` only when `stop` is
    /// set first: nothing is then known delivered, and the caller must not commit.
    #[allow(clippy::too_many_arguments)]
    pub async fn deliver(
        &self,
        lake: &Lake,
        bucket: &str,
        key: &str,
        body: Bytes,
        records: u64,
        bytes: u64,
        metrics: &StreamMetrics,
        now_ms: &sluice_aws::NowMs,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), String> {
        let failure = match &self.loader {
            Ok((loader, copy)) => {
                let outcome = tokio::select! {
                    _ = stopped(stop) => return Err("stopped".into()),
                    o = loader.load(key, body, copy) => o,
                };
                match outcome {
                    Ok(LoadOutcome::Loaded {
                        rows,
                        attempts,
                        skipped_records,
                        skipped,
                    }) => {
                        if skipped_records > 0 {
                            tracing::warn!(delivery_stream = %self.name, object_key = key, skipped_records, first = ?skipped.first().map(ToString::to_string), "records skipped under MAXERROR");
                        }
                        tracing::debug!(delivery_stream = %self.name, object_key = key, rows, attempts, "object loaded");
                        None
                    }
                    Ok(LoadOutcome::AlreadyLoaded { rows, .. }) => {
                        tracing::info!(delivery_stream = %self.name, object_key = key, rows, "object was already loaded");
                        None
                    }
                    Ok(LoadOutcome::Failed { error, attempts }) => {
                        Some(format!("{error} (after {attempts} attempts)"))
                    }
                    Err(e) => Some(e.to_string()),
                }
            }
            Err(e) => Some(e.clone()),
        };
        match failure {
            None => {
                metrics.redshift_records.increment(records);
                metrics.redshift_bytes.increment(bytes);
                metrics.redshift_success.set(1.0);
                Ok(())
            }
            Some(error) => {
                metrics.redshift_success.set(0.0);
                self.write_manifest(lake, bucket, key, &error, now_ms, stop)
                    .await
            }
        }
    }

    /// The error manifest of a skipped object, retried with back-off for the S3 retry
    /// duration (then given up, logged). `Err` only when stopped.
    async fn write_manifest(
        &self,
        lake: &Lake,
        bucket: &str,
        key: &str,
        error: &str,
        now_ms: &sluice_aws::NowMs,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), String> {
        let now = now_ms();
        let none = BTreeMap::new();
        let prefix = self
            .prefix
            .evaluate(&Eval {
                time_ms: now,
                error_output_type: None,
                query_keys: &none,
                lambda_keys: &none,
            })
            .unwrap_or_default();
        let manifest_key = sluice_pgload::error_manifest_key(&prefix, now, key);
        let manifest = sluice_pgload::error_manifest(bucket, &[key]);
        let body = Bytes::from(serde_json::to_vec(&manifest).unwrap_or_default());
        tracing::warn!(delivery_stream = %self.name, object_key = key, manifest = %manifest_key, %error, "load failed; the object is skipped and listed in an error manifest");
        let started = std::time::Instant::now();
        let mut wait_ms = limits::WRITE_BACKOFF_MS_MIN;
        loop {
            match lake.put_object(bucket, &manifest_key, body.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if started.elapsed() >= self.manifest_retry => {
                    tracing::error!(delivery_stream = %self.name, object_key = key, error = %e, "the error manifest could not be written; giving up");
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(delivery_stream = %self.name, error = %e, "error manifest write failed; retrying");
                }
            }
            tokio::select! {
                _ = stopped(stop) => return Err("stopped".into()),
                _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
            }
            wait_ms = (wait_ms * 2).min(self.backoff_max_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_aws::Format;

    fn spec(body: &str, create: bool) -> Result<RedshiftSpec, ApiError> {
        let tree = crate::ops::json_tree(body);
        let input = Input::root(&tree, Format::Json).unwrap();
        let mut v = Validator::new();
        let r = parse(&mut v, input, "redshiftDestinationConfiguration", create)?;
        v.finish()?;
        Ok(r)
    }

    const FULL: &str = r#"{"RoleARN":"arn:aws:iam::000000000000:role/r",
        "ClusterJDBCURL":"jdbc:postgresql://127.0.0.1:5432/db",
        "CopyCommand":{"DataTableName":"t","CopyOptions":"json 'auto'"},
        "Username":"u","Password":"secret1",
        "S3Configuration":{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::lake","Prefix":"p/"}}"#;

    #[test]
    fn a_configuration_reads_checks_and_describes() {
        let (rs, staging) = spec(FULL, true).unwrap().apply(None).unwrap();
        check(&rs, &staging, false).unwrap();
        let d = rs.describe(&staging);
        assert_eq!(d["ClusterJDBCURL"], "jdbc:postgresql://127.0.0.1:5432/db");
        assert_eq!(d["Username"], "u");
        assert!(d.get("Password").is_none());
        assert_eq!(d["RetryOptions"]["DurationInSeconds"], 3600);
        assert_eq!(d["S3DestinationDescription"]["Prefix"], "p/");
        assert_eq!(d["S3BackupMode"], "Disabled");
        assert!(!format!("{rs:?}").contains("secret1"));
    }

    #[test]
    fn limits_and_rules() {
        let with =
            |member: &str| FULL.replacen("\"Username\"", &format!("{member},\"Username\""), 1);
        for (retry, ok) in [(0, true), (7200, true), (-1, false), (7201, false)] {
            let body = with(&format!(
                "\"RetryOptions\":{{\"DurationInSeconds\":{retry}}}"
            ));
            assert_eq!(spec(&body, true).is_ok(), ok, "{retry}");
        }
        let short = FULL.replace("secret1", "12345");
        let e = spec(&short, true).unwrap_err().message.unwrap();
        assert!(e.contains(REDACTED) && !e.contains("12345"), "{e}");
        assert!(spec(&FULL.replace("secret1", "123456"), true).is_ok());
        let (rs, mut staging) = spec(FULL, true).unwrap().apply(None).unwrap();
        for c in [
            Compression::Snappy,
            Compression::Zip,
            Compression::HadoopSnappy,
        ] {
            staging.compression = c;
            let e = check(&rs, &staging, false).unwrap_err();
            assert!(
                e.starts_with("The compression formats SNAPPY or ZIP"),
                "{e}"
            );
        }
        staging.compression = Compression::Gzip;
        check(&rs, &staging, false).unwrap();
        let mut bad = rs.clone();
        bad.cluster_jdbc_url = "jdbc:mysql://h/db".into();
        assert!(check(&bad, &staging, false)
            .unwrap_err()
            .contains("ClusterJDBCURL"));
        let mut bad = rs.clone();
        bad.copy_options = Some("parquet".into());
        assert!(check(&bad, &staging, false)
            .unwrap_err()
            .contains("CopyCommand"));
        let e = spec(&FULL.replace("\"CopyCommand\"", "\"X\""), true).unwrap_err();
        assert!(e.message.unwrap().contains("copyCommand"));
    }

    #[tokio::test]
    async fn an_object_that_does_not_load_gets_an_error_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::local(dir.path());
        lake.ensure_bucket("lake").await.unwrap();
        // Nothing listens on port 1; no retry.
        let body = FULL.replace("127.0.0.1:5432", "127.0.0.1:1").replace(
            "\"Username\"",
            "\"RetryOptions\":{\"DurationInSeconds\":0},\"Username\"",
        );
        let (rs, staging) = spec(&body, true).unwrap().apply(None).unwrap();
        let target = Target::new(
            "s",
            &rs,
            &staging,
            &crate::config::FirehoseConfig::default(),
        );
        let metrics = StreamMetrics::new("redshift-test");
        let now: sluice_aws::NowMs = std::sync::Arc::new(|| 1_714_558_830_000);
        let (_tx, stop) = watch::channel(false);
        let key = "p/2024/05/01/10/s-1-2024-05-01-10-20-30-u";
        target
            .deliver(
                &lake,
                "lake",
                key,
                Bytes::from_static(b"{}"),
                1,
                2,
                &metrics,
                &now,
                &stop,
            )
            .await
            .unwrap();
        let manifest = lake
            .get_object(
                "lake",
                "p/errors/manifests/2024/05/01/10/s-1-2024-05-01-10-20-30-u",
            )
            .await
            .unwrap();
        let manifest: Json = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(
            manifest,
            json!({"entries": [{"url": format!("s3://lake/{key}"), "mandatory": true}]})
        );
        // Stopped first: nothing is written and the caller is told not to commit.
        let (tx, stop) = watch::channel(false);
        tx.send(true).unwrap();
        let slow = FULL.replace("127.0.0.1:5432", "127.0.0.1:1");
        let (rs, staging) = spec(&slow, true).unwrap().apply(None).unwrap();
        let target = Target::new(
            "s",
            &rs,
            &staging,
            &crate::config::FirehoseConfig::default(),
        );
        assert!(target
            .deliver(
                &lake,
                "lake",
                "other",
                Bytes::new(),
                0,
                0,
                &metrics,
                &now,
                &stop
            )
            .await
            .is_err());
    }

    #[test]
    fn updates_merge_and_type_changes_need_everything() {
        let (rs, staging) = spec(FULL, true).unwrap().apply(None).unwrap();
        let update = r#"{"Password":"another1","RetryOptions":{"DurationInSeconds":5},"S3Update":{"Prefix":"q/"}}"#;
        let (merged, staged) = spec(update, false)
            .unwrap()
            .apply(Some((&rs, &staging)))
            .unwrap();
        assert_eq!(merged.password, "another1");
        assert_eq!(merged.retry_duration_s(), 5);
        assert_eq!(merged.data_table_name, "t");
        assert_eq!(staged.prefix.as_deref(), Some("q/"));
        assert_eq!(staged.bucket_arn, "arn:aws:s3:::lake");
        let e = spec(update, false).unwrap().apply(None).unwrap_err();
        assert!(e.message.unwrap().contains("required"));
    }
}
