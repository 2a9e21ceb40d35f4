//! Record format conversion (`DataFormatConversionConfiguration`): JSON records written as one
//! Parquet object per buffer, with `sluice-columnar`.
//!
//! - [`Spec::parse`] reads the configuration as it was given (CreateDeliveryStream,
//!   UpdateDestination) and applies Firehose's rules: `SchemaConfiguration`,
//!   `InputFormatConfiguration.Deserializer` (exactly one of `OpenXJsonSerDe` /
//!   `HiveJsonSerDe`) and `OutputFormatConfiguration.Serializer` (`ParquetSerDe`; `OrcSerDe` is
//!   refused) are required when `Enabled` is true, and every SerDe option is checked with
//!   `sluice_columnar::ConfigError`, so a bad configuration is an InvalidArgumentException and
//!   never a delivery-time failure. `destination::check` calls it.
//! - [`Catalog`] is what sluice knows of tables: the `[[tables]]` of its configuration (there is
//!   no Glue API), and the directory (`<data_dir>/firehose/schemas`) where a schema inferred
//!   for a table it does not know is kept.
//! - [`Conversion`] is one delivery stream's conversion, made when its delivery task starts.
//!   [`Conversion::convert`] runs on a blocking thread; the schema is the `[[tables]]` entry
//!   that `DatabaseName` / `TableName` name or, sluice's extension, the one inferred from the
//!   first buffer (`sluice_columnar::Schema::infer_with`), written to
//!   `<data_dir>/firehose/schemas/<delivery stream>.json` before the first object, so it does
//!   not change across restarts. Records that do not convert become error records
//!   ([`Conversion::error_line`]) under the `format-conversion-failed` error output type; the
//!   others are written.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use sluice_columnar::{
    ColumnConfig, Compression, ConfigError, Converter, Deserializer, HiveJsonSerDe, OpenXJsonSerDe,
    ParquetWriterConfig, RecordErrorKind, Schema, TableConfig, WriterVersion,
};

/// The error output type of records that do not convert.
pub const ERROR_OUTPUT_TYPE: &str = "format-conversion-failed";

/// The extension of converted objects (unless `FileExtension` says otherwise).
pub const PARQUET_EXTENSION: &str = ".parquet";

/// `SchemaConfiguration` strings: 1 to 1,024 characters, no white space (`^\S+$`).
const SCHEMA_STRING_CHARS_MAX: usize = 1024;

/// JSON documents of the first buffer used to infer a schema, at most.
const INFER_SAMPLE_MAX: usize = 10_000;

/// The error code of a buffer that failed as a whole (a bug or an I/O error, not the records').
const INTERNAL_ERROR_CODE: &str = "DataFormatConversion.InternalError";

/// `SchemaConfiguration`, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRef {
    pub catalog_id: Option<String>,
    pub database: String,
    pub table: String,
    pub region: Option<String>,
    pub role_arn: String,
    pub version_id: Option<String>,
}

/// A checked `DataFormatConversionConfiguration` with `Enabled` true.
#[derive(Debug, Clone)]
pub struct Spec {
    pub schema: SchemaRef,
    pub deserializer: Deserializer,
    pub parquet: ParquetWriterConfig,
}

fn member<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|m| !m.is_null())
}

fn object<'a>(v: &'a Value, name: &str, path: &str) -> Result<Option<&'a Value>, String> {
    match member(v, name) {
        None => Ok(None),
        Some(m) if m.is_object() => Ok(Some(m)),
        Some(_) => Err(format!("{path}.{name} must be a structure.")),
    }
}

fn boolean(v: &Value, name: &str, path: &str) -> Result<Option<bool>, String> {
    match member(v, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{path}.{name} must be a boolean.")),
    }
}

fn size(v: &Value, name: &str, path: &str, default: u64) -> Result<u64, String> {
    match member(v, name) {
        None => Ok(default),
        Some(n) => match n.as_i64() {
            // A negative value is refused by the range check, as out of range.
            Some(i) => Ok(u64::try_from(i).unwrap_or(u64::MAX)),
            None => Err(format!("{path}.{name} must be an integer.")),
        },
    }
}

fn text<'a>(v: &'a Value, name: &str, path: &str) -> Result<Option<&'a str>, String> {
    match member(v, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("{path}.{name} must be a string.")),
    }
}

/// A `SchemaConfiguration` string: 1 to 1,024 characters matching `^\S+$`.
fn schema_string(v: &Value, name: &str, required: bool) -> Result<Option<String>, String> {
    let path = "DataFormatConversionConfiguration.SchemaConfiguration";
    match text(v, name, path)? {
        None if required => Err(format!(
            "{path}.{name} is required when data format conversion is enabled."
        )),
        None => Ok(None),
        Some(s) => {
            if s.is_empty()
                || s.chars().count() > SCHEMA_STRING_CHARS_MAX
                || s.chars().any(char::is_whitespace)
            {
                Err(format!(
                    "{path}.{name} must be 1 to {SCHEMA_STRING_CHARS_MAX} characters without white space."
                ))
            } else {
                Ok(Some(s.to_string()))
            }
        }
    }
}

fn config_error(e: ConfigError) -> String {
    format!("DataFormatConversionConfiguration: {e}")
}

impl Spec {
    /// Reads and checks a `DataFormatConversionConfiguration` as given: `Ok(None)` when it is
    /// not enabled, the reason (an InvalidArgumentException message) when it cannot be used.
    pub fn parse(c: &Value) -> Result<Option<Spec>, String> {
        const P: &str = "DataFormatConversionConfiguration";
        if !c.is_object() {
            return Err(format!("{P} must be a structure."));
        }
        let on = boolean(c, "Enabled", P)?.unwrap_or(true);
        let schema = object(c, "SchemaConfiguration", P)?;
        let input = object(c, "InputFormatConfiguration", P)?;
        let output = object(c, "OutputFormatConfiguration", P)?;
        if !on {
            return Ok(None);
        }
        let required =
            |name: &str| format!("{P}.{name} is required when data format conversion is enabled.");
        let schema = schema.ok_or_else(|| required("SchemaConfiguration"))?;
        let input = input.ok_or_else(|| required("InputFormatConfiguration"))?;
        let output = output.ok_or_else(|| required("OutputFormatConfiguration"))?;
        Ok(Some(Spec {
            schema: parse_schema(schema)?,
            deserializer: parse_deserializer(input)?,
            parquet: parse_serializer(output)?,
        }))
    }
}

fn parse_schema(s: &Value) -> Result<SchemaRef, String> {
    let database = schema_string(s, "DatabaseName", true)?;
    let table = schema_string(s, "TableName", true)?;
    let role_arn = schema_string(s, "RoleARN", true)?;
    Ok(SchemaRef {
        catalog_id: schema_string(s, "CatalogId", false)?,
        database: database.unwrap_or_default(),
        table: table.unwrap_or_default(),
        region: schema_string(s, "Region", false)?,
        role_arn: role_arn.unwrap_or_default(),
        version_id: schema_string(s, "VersionId", false)?,
    })
}

fn parse_deserializer(input: &Value) -> Result<Deserializer, String> {
    const P: &str = "DataFormatConversionConfiguration.InputFormatConfiguration";
    let d = object(input, "Deserializer", P)?
        .ok_or_else(|| format!("{P}.Deserializer is required."))?;
    let path = format!("{P}.Deserializer");
    let openx = object(d, "OpenXJsonSerDe", &path)?;
    let hive = object(d, "HiveJsonSerDe", &path)?;
    match (openx, hive) {
        (Some(_), Some(_)) | (None, None) => Err(format!(
            "{path} must have exactly one of OpenXJsonSerDe and HiveJsonSerDe."
        )),
        (Some(o), None) => {
            let path = format!("{path}.OpenXJsonSerDe");
            let mut serde = OpenXJsonSerDe::default();
            if let Some(b) = boolean(o, "CaseInsensitive", &path)? {
                serde.case_insensitive = b;
            }
            if let Some(b) = boolean(o, "ConvertDotsInJsonKeysToUnderscores", &path)? {
                serde.convert_dots_in_json_keys_to_underscores = b;
            }
            match member(o, "ColumnToJsonKeyMappings") {
                None => {}
                Some(Value::Object(m)) => {
                    for (column, key) in m {
                        let key = key.as_str().ok_or_else(|| {
                            format!("{path}.ColumnToJsonKeyMappings values must be strings.")
                        })?;
                        serde
                            .column_to_json_key_mappings
                            .insert(column.clone(), key.to_string());
                    }
                }
                Some(_) => {
                    return Err(format!(
                        "{path}.ColumnToJsonKeyMappings must be a map of strings."
                    ))
                }
            }
            serde.check().map_err(config_error)?;
            Ok(Deserializer::OpenX(serde))
        }
        (None, Some(h)) => {
            let path = format!("{path}.HiveJsonSerDe");
            let formats = match member(h, "TimestampFormats") {
                None => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|f| {
                        f.as_str().map(str::to_string).ok_or_else(|| {
                            format!("{path}.TimestampFormats must be a list of strings.")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => return Err(format!("{path}.TimestampFormats must be a list.")),
            };
            Ok(Deserializer::Hive(
                HiveJsonSerDe::new(&formats).map_err(config_error)?,
            ))
        }
    }
}

fn parse_serializer(output: &Value) -> Result<ParquetWriterConfig, String> {
    const P: &str = "DataFormatConversionConfiguration.OutputFormatConfiguration";
    let s =
        object(output, "Serializer", P)?.ok_or_else(|| format!("{P}.Serializer is required."))?;
    let path = format!("{P}.Serializer");
    let parquet = object(s, "ParquetSerDe", &path)?;
    let orc = object(s, "OrcSerDe", &path)?;
    let p = match (parquet, orc) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{path} must have exactly one of ParquetSerDe and OrcSerDe."
            ))
        }
        (_, Some(_)) => return Err(config_error(ConfigError::OrcNotSupported)),
        (None, None) => {
            return Err(format!(
                "{path} must have ParquetSerDe (sluice does not support OrcSerDe)."
            ))
        }
        (Some(p), None) => p,
    };
    let path = format!("{path}.ParquetSerDe");
    let defaults = ParquetWriterConfig::default();
    let config = ParquetWriterConfig {
        compression: match text(p, "Compression", &path)? {
            Some(c) => c.parse::<Compression>().map_err(config_error)?,
            None => defaults.compression,
        },
        block_size_bytes: size(p, "BlockSizeBytes", &path, defaults.block_size_bytes)?,
        page_size_bytes: size(p, "PageSizeBytes", &path, defaults.page_size_bytes)?,
        enable_dictionary_compression: boolean(p, "EnableDictionaryCompression", &path)?
            .unwrap_or(defaults.enable_dictionary_compression),
        max_padding_bytes: size(p, "MaxPaddingBytes", &path, defaults.max_padding_bytes)?,
        writer_version: match text(p, "WriterVersion", &path)? {
            Some(w) => w.parse::<WriterVersion>().map_err(config_error)?,
            None => defaults.writer_version,
        },
    };
    config.check().map_err(config_error)?;
    Ok(config)
}

/// The tables sluice knows (`[[tables]]`) and where inferred schemas are kept.
#[derive(Debug, Clone)]
pub struct Catalog {
    tables: Vec<(TableConfig, Schema)>,
    dir: PathBuf,
}

impl Catalog {
    /// Checks every table (its columns parse; no two share a database and name, which are
    /// case-insensitive as in Glue).
    pub fn check_tables(tables: &[TableConfig]) -> Result<Vec<(TableConfig, Schema)>, String> {
        let mut out: Vec<(TableConfig, Schema)> = Vec::with_capacity(tables.len());
        for t in tables {
            let schema = t
                .schema()
                .map_err(|e| format!("table {}.{}: {e}", t.database, t.name))?;
            if out.iter().any(|(o, _)| o.is_named(&t.database, &t.name)) {
                return Err(format!(
                    "table {}.{} is declared twice (names are case-insensitive)",
                    t.database, t.name
                ));
            }
            out.push((t.clone(), schema));
        }
        Ok(out)
    }

    /// The catalog of `tables`, keeping inferred schemas under `dir` (made when first used).
    pub fn new(tables: &[TableConfig], dir: PathBuf) -> Result<Catalog, String> {
        Ok(Catalog {
            tables: Catalog::check_tables(tables)?,
            dir,
        })
    }

    /// The schema of a `[[tables]]` entry.
    pub fn table(&self, database: &str, table: &str) -> Option<&Schema> {
        self.tables
            .iter()
            .find(|(t, _)| t.is_named(database, table))
            .map(|(_, s)| s)
    }

    fn schema_file(&self, stream: &str) -> PathBuf {
        self.dir.join(format!("{stream}.json"))
    }

    /// Forgets the schema inferred for a delivery stream (it is deleted; blocking).
    pub fn forget(&self, stream: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.schema_file(stream)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The conversion of delivery stream `stream` with destination conversion `c`, or `None`
    /// when it is not enabled. `region` / `account` are the defaults of `Region` and
    /// `CatalogId` in error records.
    pub fn conversion(
        &self,
        stream: &str,
        c: Option<&Value>,
        region: &str,
        account: &str,
    ) -> Result<Option<Arc<Conversion>>, String> {
        let Some(spec) = c.map(Spec::parse).transpose()?.flatten() else {
            return Ok(None);
        };
        let fixed = match self.table(&spec.schema.database, &spec.schema.table) {
            Some(schema) => Some(Arc::new(
                Converter::new(schema.clone(), spec.deserializer.clone(), &spec.parquet)
                    .map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        let catalog_id = spec
            .schema
            .catalog_id
            .clone()
            .unwrap_or_else(|| account.to_string());
        let region = spec
            .schema
            .region
            .clone()
            .unwrap_or_else(|| region.to_string());
        let table = json!({
            "catalogId": catalog_id,
            "databaseName": spec.schema.database,
            "tableName": spec.schema.table,
            "region": region,
            "versionId": spec.schema.version_id.as_deref().unwrap_or("LATEST"),
            "catalogArn": format!("arn:aws:glue:{region}:{catalog_id}:catalog"),
        });
        Ok(Some(Arc::new(Conversion {
            converter: Mutex::new(fixed),
            schema_file: self.schema_file(stream),
            data_catalog_table: table,
            spec,
        })))
    }
}

/// One record that did not convert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    /// Its position in the buffer.
    pub index: usize,
    /// The error record's `lastErrorCode`.
    pub code: &'static str,
    pub message: String,
}

/// A converted buffer: the Parquet object (empty when no record converted) and the records
/// that go to the error output.
#[derive(Debug, Default)]
pub struct Converted {
    pub body: Bytes,
    pub rows: u64,
    pub failures: Vec<RecordFailure>,
}

/// One delivery stream's record format conversion.
#[derive(Debug)]
pub struct Conversion {
    spec: Spec,
    /// The converter once the schema is known (from `[[tables]]`, the schema file, or
    /// inferred).
    converter: Mutex<Option<Arc<Converter>>>,
    schema_file: PathBuf,
    /// The error records' `dataCatalogTable`.
    data_catalog_table: Value,
}

impl Conversion {
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The schema in use, once known.
    pub fn schema(&self) -> Option<Schema> {
        self.converter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|c| c.schema().clone())
    }

    /// Converts one buffer on a blocking thread. Never fails: a buffer that cannot be
    /// converted as a whole (no schema could be inferred, an internal error) has every
    /// record in `failures`.
    /// Converts `records` on a blocking thread; they are handed back with the outcome.
    pub async fn convert(self: &Arc<Self>, records: Vec<Bytes>) -> (Converted, Vec<Bytes>) {
        let this = self.clone();
        let n = records.len();
        let work = tokio::task::spawn_blocking(move || {
            // A panic in the converter fails the records, which stay ours for the error output.
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                this.convert_blocking(&records)
            }))
            .unwrap_or_else(|_| {
                all_failed(n, INTERNAL_ERROR_CODE, "conversion stopped: it panicked")
            });
            (out, records)
        });
        match work.await {
            Ok(done) => done,
            // Only a cancelled task (the runtime shutting down) comes here.
            Err(e) => (
                all_failed(n, INTERNAL_ERROR_CODE, &format!("conversion stopped: {e}")),
                Vec::new(),
            ),
        }
    }

    /// [`Conversion::convert`], on the calling thread.
    pub fn convert_blocking(&self, records: &[Bytes]) -> Converted {
        let converter = match self.converter_for(records) {
            Ok(c) => c,
            Err((code, message)) => return all_failed(records.len(), code, &message),
        };
        match converter.write(Vec::new(), records.iter().map(|r| r.as_ref())) {
            Ok(written) => Converted {
                body: Bytes::from(written.out),
                rows: written.rows,
                failures: written
                    .errors
                    .into_iter()
                    .map(|e| RecordFailure {
                        index: e.index,
                        code: e.kind.code(),
                        message: e.message,
                    })
                    .collect(),
            },
            Err(e) => {
                tracing::error!(error = %e, "a buffer could not be converted to Parquet");
                all_failed(records.len(), INTERNAL_ERROR_CODE, &e.to_string())
            }
        }
    }

    /// The converter: known already, read from the schema file, or inferred from `records`
    /// and written to the schema file (blocking).
    fn converter_for(&self, records: &[Bytes]) -> Result<Arc<Converter>, (&'static str, String)> {
        let mut slot = self
            .converter
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let table = &self.spec.schema;
        let schema = match read_schema_file(&self.schema_file, &table.database, &table.table) {
            Some(schema) => schema,
            None => {
                let schema = infer(records, &self.spec.deserializer).map_err(|e| {
                    (
                        RecordErrorKind::MalformedData.code(),
                        format!(
                            "table {}.{} is not in sluice's [[tables]] and no schema could be inferred from the first buffer: {e}",
                            table.database, table.table
                        ),
                    )
                })?;
                write_schema_file(&self.schema_file, &table.database, &table.table, &schema)
                    .map_err(|e| {
                        (
                            INTERNAL_ERROR_CODE,
                            format!(
                                "the inferred schema could not be kept in {}: {e}",
                                self.schema_file.display()
                            ),
                        )
                    })?;
                tracing::info!(database = %table.database, table = %table.table, columns = schema.columns().len(), "inferred the table's schema from the first buffer");
                schema
            }
        };
        let converter = Arc::new(
            Converter::new(schema, self.spec.deserializer.clone(), &self.spec.parquet)
                .map_err(|e| (INTERNAL_ERROR_CODE, e.to_string()))?,
        );
        *slot = Some(converter.clone());
        Ok(converter)
    }

    /// The error record Firehose writes for a record that did not convert (one JSON document
    /// per line). `record_id` is sluice's record id (`<sequence number>[:<sub-sequence>]`).
    pub fn error_line(
        &self,
        data: &[u8],
        arrival_ms: i64,
        record_id: Option<&str>,
        failure: &RecordFailure,
        now_ms: i64,
    ) -> Vec<u8> {
        let (sequence, sub) = split_record_id(record_id);
        let v = json!({
            "attemptsMade": 1,
            "arrivalTimestamp": arrival_ms,
            "lastErrorCode": failure.code,
            "lastErrorMessage": failure.message,
            "attemptEndingTimestamp": now_ms,
            "rawData": base64::engine::general_purpose::STANDARD.encode(data),
            "sequenceNumber": sequence,
            "subSequenceNumber": sub,
            "dataCatalogTable": self.data_catalog_table,
        });
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// `sequenceNumber` and `subSequenceNumber` from a record id: the digits of the sequence
/// number, and the index after `:` of a de-aggregated KPL record.
fn split_record_id(record_id: Option<&str>) -> (Value, Value) {
    let Some(id) = record_id else {
        return (Value::Null, Value::Null);
    };
    let digits: String = id.chars().take_while(char::is_ascii_digit).collect();
    let sub = id
        .get(digits.len()..)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<u64>()
                .ok()
        });
    (
        if digits.is_empty() {
            Value::Null
        } else {
            Value::String(digits)
        },
        sub.map_or(Value::Null, Value::from),
    )
}

fn all_failed(n: usize, code: &'static str, message: &str) -> Converted {
    Converted {
        body: Bytes::new(),
        rows: 0,
        failures: (0..n)
            .map(|index| RecordFailure {
                index,
                code,
                message: message.to_string(),
            })
            .collect(),
    }
}

/// The schema of the first buffer (every JSON document of every record, up to
/// `INFER_SAMPLE_MAX`; records that are not JSON are skipped).
fn infer(records: &[Bytes], deserializer: &Deserializer) -> Result<Schema, String> {
    let mut sample = Vec::new();
    'records: for r in records {
        for value in serde_json::Deserializer::from_slice(r).into_iter::<Value>() {
            let Ok(value) = value else { break };
            sample.push(value);
            if sample.len() >= INFER_SAMPLE_MAX {
                break 'records;
            }
        }
    }
    Schema::infer_with(&sample, deserializer).map_err(|e| e.to_string())
}

fn read_schema_file(path: &Path, database: &str, table: &str) -> Option<Schema> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read an inferred schema; inferring again");
            return None;
        }
    };
    let parsed = serde_json::from_slice::<TableConfig>(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            if t.is_named(database, table) {
                t.schema().map(Some).map_err(|e| e.to_string())
            } else {
                // Kept for another table (UpdateDestination changed it): infer again.
                Ok(None)
            }
        });
    match parsed {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "an inferred schema does not read; inferring again");
            None
        }
    }
}

/// Writes the schema atomically: a temporary file, fsync, rename, fsync of the directory.
fn write_schema_file(
    path: &Path,
    database: &str,
    table: &str,
    schema: &Schema,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let config = TableConfig {
        database: database.to_string(),
        name: table.to_string(),
        columns: schema
            .columns()
            .iter()
            .map(|c| ColumnConfig {
                name: c.name.clone(),
                column_type: c.column_type.to_string(),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&config).map_err(std::io::Error::other)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(deserializer: Value, serializer: Value) -> Value {
        json!({
            "Enabled": true,
            "SchemaConfiguration": {
                "DatabaseName": "lake",
                "TableName": "clicks",
                "RoleARN": "arn:aws:iam::000000000000:role/glue",
            },
            "InputFormatConfiguration": {"Deserializer": deserializer},
            "OutputFormatConfiguration": {"Serializer": serializer},
        })
    }

    fn openx() -> Value {
        json!({"OpenXJsonSerDe": {}})
    }

    fn parquet() -> Value {
        json!({"ParquetSerDe": {}})
    }

    fn refused(c: Value) -> String {
        match Spec::parse(&c) {
            Err(e) => e,
            Ok(s) => panic!("accepted: {s:?}"),
        }
    }

    #[test]
    fn a_full_configuration_reads() {
        let c = json!({
            "SchemaConfiguration": {
                "CatalogId": "123456789012", "DatabaseName": "lake", "TableName": "clicks",
                "Region": "eu-west-1", "RoleARN": "arn:aws:iam::000000000000:role/glue",
                "VersionId": "3",
            },
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {
                "CaseInsensitive": false, "ConvertDotsInJsonKeysToUnderscores": true,
                "ColumnToJsonKeyMappings": {"ts": "timestamp"},
            }}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {
                "Compression": "GZIP", "BlockSizeBytes": 67_108_864, "PageSizeBytes": 65_536,
                "EnableDictionaryCompression": true, "MaxPaddingBytes": 0, "WriterVersion": "V2",
            }}},
        });
        // Enabled defaults to true.
        let spec = Spec::parse(&c).unwrap().unwrap();
        assert_eq!(spec.schema.catalog_id.as_deref(), Some("123456789012"));
        assert_eq!(spec.schema.version_id.as_deref(), Some("3"));
        assert_eq!(spec.parquet.compression, Compression::Gzip);
        assert_eq!(spec.parquet.writer_version, WriterVersion::V2);
        assert!(spec.parquet.enable_dictionary_compression);
        match &spec.deserializer {
            Deserializer::OpenX(o) => {
                assert!(!o.case_insensitive && o.convert_dots_in_json_keys_to_underscores);
                assert_eq!(
                    o.column_to_json_key_mappings.get("ts").unwrap(),
                    "timestamp"
                );
            }
            other => panic!("{other:?}"),
        }
        // Defaults: SNAPPY, as Firehose.
        let spec = Spec::parse(&config(openx(), parquet())).unwrap().unwrap();
        assert_eq!(spec.parquet, ParquetWriterConfig::default());
        assert_eq!(spec.parquet.compression, Compression::Snappy);
        let hive = json!({"HiveJsonSerDe": {"TimestampFormats": ["millis", "yyyy-MM-dd"]}});
        let spec = Spec::parse(&config(hive, parquet())).unwrap().unwrap();
        assert!(matches!(spec.deserializer, Deserializer::Hive(_)));
    }

    #[test]
    fn disabled_needs_nothing_else() {
        assert!(Spec::parse(&json!({"Enabled": false})).unwrap().is_none());
        let e = refused(json!({"Enabled": "yes"}));
        assert!(e.contains("Enabled must be a boolean"), "{e}");
    }

    #[test]
    fn what_firehose_requires() {
        let e = refused(json!({"Enabled": true}));
        assert!(e.contains("SchemaConfiguration is required"), "{e}");
        let mut c = config(openx(), parquet());
        c["InputFormatConfiguration"] = json!({});
        assert!(refused(c).contains("Deserializer is required"));
        let e = refused(config(json!({}), parquet()));
        assert!(
            e.contains("exactly one of OpenXJsonSerDe and HiveJsonSerDe"),
            "{e}"
        );
        let both = json!({"OpenXJsonSerDe": {}, "HiveJsonSerDe": {}});
        assert!(refused(config(both, parquet())).contains("exactly one"));
        for member in ["DatabaseName", "TableName", "RoleARN"] {
            let mut c = config(openx(), parquet());
            c["SchemaConfiguration"]
                .as_object_mut()
                .unwrap()
                .remove(member);
            let e = refused(c);
            assert!(
                e.contains(&format!("SchemaConfiguration.{member} is required")),
                "{e}"
            );
        }
        let mut c = config(openx(), parquet());
        c["SchemaConfiguration"]["TableName"] = json!("has space");
        assert!(refused(c).contains("without white space"));
        let mut c = config(openx(), parquet());
        c["SchemaConfiguration"]["VersionId"] = json!("");
        assert!(refused(c).contains("VersionId must be 1 to 1024"));
        let mut c = config(openx(), parquet());
        c["SchemaConfiguration"]["CatalogId"] = json!("x".repeat(SCHEMA_STRING_CHARS_MAX));
        assert!(Spec::parse(&c).is_ok());
        c["SchemaConfiguration"]["CatalogId"] = json!("x".repeat(SCHEMA_STRING_CHARS_MAX + 1));
        assert!(refused(c).contains("CatalogId"));
    }

    #[test]
    fn orc_is_refused_clearly() {
        let e = refused(config(openx(), json!({"OrcSerDe": {}})));
        assert!(
            e.contains("ORC output (OrcSerDe) is not supported by sluice"),
            "{e}"
        );
        let e = refused(config(openx(), json!({})));
        assert!(e.contains("must have ParquetSerDe"), "{e}");
    }

    #[test]
    fn serde_options_are_checked_at_create_time() {
        let p = |o: Value| config(openx(), json!({"ParquetSerDe": o}));
        let e = refused(p(json!({"BlockSizeBytes": 67_108_863})));
        assert!(
            e.contains("ParquetSerDe.BlockSizeBytes must be between 67108864"),
            "{e}"
        );
        assert!(Spec::parse(&p(json!({"BlockSizeBytes": 67_108_864}))).is_ok());
        let e = refused(p(json!({"PageSizeBytes": 65_535})));
        assert!(e.contains("PageSizeBytes"), "{e}");
        assert!(refused(p(json!({"MaxPaddingBytes": -1}))).contains("MaxPaddingBytes"));
        let e = refused(p(json!({"Compression": "ZSTD"})));
        assert!(e.contains("UNCOMPRESSED, GZIP, SNAPPY"), "{e}");
        assert!(refused(p(json!({"WriterVersion": "V3"}))).contains("V1, V2"));
        assert!(refused(p(json!({"BlockSizeBytes": "big"}))).contains("must be an integer"));
        let hive = |f: Value| config(json!({"HiveJsonSerDe": {"TimestampFormats": f}}), parquet());
        let e = refused(hive(json!(["xxxx-ww"])));
        assert!(e.contains("timestamp format `xxxx-ww`"), "{e}");
        assert!(refused(hive(json!([""]))).contains("TimestampFormats entry"));
        assert!(refused(hive(json!([1]))).contains("list of strings"));
        let bad_key = json!({"OpenXJsonSerDe": {"ColumnToJsonKeyMappings": {"a b": "k"}}});
        assert!(refused(config(bad_key, parquet())).contains("ColumnToJsonKeyMappings key"));
    }

    #[test]
    fn tables_are_checked() {
        let t = |db: &str, name: &str, ty: &str| TableConfig {
            database: db.into(),
            name: name.into(),
            columns: vec![ColumnConfig {
                name: "c".into(),
                column_type: ty.into(),
            }],
        };
        assert!(Catalog::check_tables(&[t("a", "b", "int"), t("a", "c", "string")]).is_ok());
        let e = Catalog::check_tables(&[t("a", "b", "int"), t("A", "B", "int")]).unwrap_err();
        assert!(e.contains("declared twice"), "{e}");
        let e = Catalog::check_tables(&[t("a", "b", "arr<int>")]).unwrap_err();
        assert!(e.starts_with("table a.b: column `c`"), "{e}");
    }

    fn records(items: &[&str]) -> Vec<Bytes> {
        items.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    #[test]
    fn a_known_table_converts_and_bad_records_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let table = TableConfig {
            database: "lake".into(),
            name: "clicks".into(),
            columns: vec![
                ColumnConfig {
                    name: "id".into(),
                    column_type: "int".into(),
                },
                ColumnConfig {
                    name: "name".into(),
                    column_type: "string".into(),
                },
            ],
        };
        let catalog = Catalog::new(&[table], dir.path().join("schemas")).unwrap();
        let c = catalog
            .conversion(
                "s",
                Some(&config(openx(), parquet())),
                "us-east-1",
                "000000000000",
            )
            .unwrap()
            .unwrap();
        let out = c.convert_blocking(&records(&[
            r#"{"id": 1, "name": "a"}"#,
            "not json",
            r#"{"id": "x"}"#,
            r#"{"ID": 4}"#,
        ]));
        assert_eq!(out.rows, 2);
        assert!(out.body.starts_with(b"PAR1"));
        let failed: Vec<(usize, &str)> = out.failures.iter().map(|f| (f.index, f.code)).collect();
        assert_eq!(
            failed,
            vec![
                (1, "DataFormatConversion.ParseError"),
                (2, "DataFormatConversion.MalformedData")
            ]
        );
        // A known table writes no schema file.
        assert!(!dir.path().join("schemas/s.json").exists());

        let line = c.error_line(b"not json", 7, Some("4900:2"), &out.failures[0], 9);
        assert_eq!(line.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["attemptsMade"], 1);
        assert_eq!(v["arrivalTimestamp"], 7);
        assert_eq!(v["attemptEndingTimestamp"], 9);
        assert_eq!(v["lastErrorCode"], "DataFormatConversion.ParseError");
        assert!(v["lastErrorMessage"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"));
        assert_eq!(v["rawData"], "bm90IGpzb24=");
        assert_eq!(v["sequenceNumber"], "4900");
        assert_eq!(v["subSequenceNumber"], 2);
        assert_eq!(
            v["dataCatalogTable"],
            json!({"catalogId": "000000000000", "databaseName": "lake", "tableName": "clicks",
                   "region": "us-east-1", "versionId": "LATEST",
                   "catalogArn": "arn:aws:glue:us-east-1:000000000000:catalog"})
        );
        let line = c.error_line(b"x", 7, Some("4900"), &out.failures[0], 9);
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["sequenceNumber"], "4900");
        assert_eq!(v["subSequenceNumber"], Value::Null);
    }

    #[test]
    fn an_unknown_table_is_inferred_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let schemas = dir.path().join("schemas");
        let catalog = Catalog::new(&[], schemas.clone()).unwrap();
        let conf = config(openx(), parquet());
        let c = catalog
            .conversion("s", Some(&conf), "us-east-1", "000000000000")
            .unwrap()
            .unwrap();
        // Nothing to infer from: every record fails, no schema is kept.
        let out = c.convert_blocking(&records(&["[1]", "nope"]));
        assert!(out.body.is_empty());
        assert_eq!(out.failures.len(), 2);
        assert!(out.failures[0]
            .message
            .contains("no schema could be inferred"));
        assert!(c.schema().is_none() && !schemas.join("s.json").exists());

        let out = c.convert_blocking(&records(&[r#"{"id": 1, "price": 2.5, "tags": ["a"]}"#]));
        assert_eq!((out.rows, out.failures.len()), (1, 0));
        let kept = std::fs::read_to_string(schemas.join("s.json")).unwrap();
        assert!(
            kept.contains("\"bigint\"") && kept.contains("array<string>"),
            "{kept}"
        );
        // A later buffer does not change the schema: a string id is malformed now.
        let out = c.convert_blocking(&records(&[r#"{"id": "x", "other": true}"#]));
        assert_eq!(out.failures.len(), 1);
        assert_eq!(out.failures[0].code, "DataFormatConversion.MalformedData");

        // After a restart (a new Conversion), the kept schema is read, not inferred again.
        let again = catalog
            .conversion("s", Some(&conf), "us-east-1", "000000000000")
            .unwrap()
            .unwrap();
        let out = again.convert_blocking(&records(&[r#"{"id": "x"}"#, r#"{"id": 2}"#]));
        assert_eq!((out.rows, out.failures.len()), (1, 1));
        let names: Vec<String> = again
            .schema()
            .unwrap()
            .columns()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(names, vec!["id", "price", "tags"]);

        // Another table (an UpdateDestination) infers again; deletion forgets the file.
        let mut other = conf.clone();
        other["SchemaConfiguration"]["TableName"] = json!("views");
        let c = catalog
            .conversion("s", Some(&other), "us-east-1", "000000000000")
            .unwrap()
            .unwrap();
        let out = c.convert_blocking(&records(&[r#"{"id": "x"}"#]));
        assert_eq!((out.rows, out.failures.len()), (1, 0));
        catalog.forget("s").unwrap();
        assert!(!schemas.join("s.json").exists());
        catalog.forget("s").unwrap();
    }

    #[test]
    fn record_ids() {
        assert_eq!(split_record_id(None), (Value::Null, Value::Null));
        assert_eq!(split_record_id(Some("12:3")), (json!("12"), json!(3)));
        assert_eq!(split_record_id(Some("12.3")), (json!("12"), Value::Null));
        assert_eq!(split_record_id(Some("r")), (Value::Null, Value::Null));
    }
}
