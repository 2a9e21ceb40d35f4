//! What the demo builds on the server: the streams, the jq processor (a `[[processors]]` entry
//! of the server's configuration), the table the Parquet files follow (`[[tables]]`) and the
//! Firehose delivery stream (CreateDeliveryStream) that writes them into the lake.

use serde_json::{json, Value};

pub const RAW_STREAM: &str = "clicks";
pub const RAW_SHARDS: u32 = 2;
pub const PROCESSED_STREAM: &str = "clicks-processed";
pub const DEAD_LETTER_STREAM: &str = "clicks-dead";
pub const PROCESSOR: &str = "clicks-enrich";
pub const DELIVERY_STREAM: &str = "clicks-to-lake";
pub const BUCKET: &str = "clickstream";
/// Where the delivered objects go in the bucket (the partitions below it).
pub const PREFIX_ROOT: &str = "clicks/";
pub const DATABASE: &str = "clickstream";
pub const TABLE: &str = "clicks";
const ROLE: &str = "arn:aws:iam::000000000000:role/sluice-demo";

/// The processor's jq program: drops crawlers and events that are not usable, and enriches
/// the rest with the partition fields (`dt`, `hour`, from the event's own time), the device
/// class, the referrer type and when it was processed. A record that is not JSON fails the
/// program and goes to the dead-letter stream.
pub const PROGRAM: &str = r#"# Drop crawlers and events a buggy client sent; enrich the rest.
select(type == "object")
| select((.user_agent // "") | test("bot|crawler|spider|headless"; "i") | not)
| select(.event_type == "page_view" or .event_type == "click"
         or .event_type == "add_to_cart" or .event_type == "purchase")
| select((.user_id | type) == "string" and (.session_id | type) == "string"
         and (.page | type) == "string")
| select((.timestamp | type) == "string"
         and (.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?Z$")))
| .dt = .timestamp[0:10]
| .hour = .timestamp[11:13]
| .device_class = (.user_agent
    | if test("iPad|Tablet") then "tablet"
      elif test("Mobile|iPhone|Android") then "mobile"
      else "desktop" end)
| .referrer_type = (.referrer // ""
    | if . == "" then "direct"
      elif test("google[.]|bing[.]|duckduckgo[.]") then "search"
      elif test("instagram[.]|facebook[.]|t[.]co/|tiktok[.]") then "social"
      elif test("utm_source=newsletter") then "email"
      else "referral" end)
| .processed_at = (now | floor | todate)
"#;

/// Firehose's MetadataExtraction query: the partition keys of each processed record.
pub const METADATA_QUERY: &str = "{event_type: .event_type, dt: .dt, hour: .hour}";

/// The Parquet files' columns (the `[[tables]]` entry). The partition keys (`event_type`,
/// `dt`, `hour`) are in the object's path, as in a Hive or Glue table, not in the file: readers
/// with hive partitioning (DuckDB, pyarrow, Athena) get them from the path.
pub const COLUMNS: [(&str, &str); 16] = [
    ("event_id", "string"),
    ("user_id", "string"),
    ("session_id", "string"),
    ("timestamp", "timestamp"),
    ("page", "string"),
    ("element", "string"),
    ("product_id", "string"),
    ("price", "double"),
    ("order_id", "string"),
    ("items", "int"),
    ("referrer", "string"),
    ("referrer_type", "string"),
    ("user_agent", "string"),
    ("device", "string"),
    ("device_class", "string"),
    ("processed_at", "timestamp"),
];

/// What the delivery stream writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Parquet, by Firehose's record format conversion (OpenXJsonSerDe to ParquetSerDe).
    Parquet,
    /// The processed JSON records, one per line (when the server cannot convert).
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => ".parquet",
            Format::Json => ".json",
        }
    }
}

/// A TOML string literal (basic string, escaped).
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The server's configuration file: the processor and, with `tables`, the table.
pub fn config_toml(tables: bool) -> String {
    let mut out = String::from(
        "# Written by `sluice demo`: the clickstream pipeline's processor and table.\n\n",
    );
    out.push_str("[[processors]]\n");
    out.push_str(&format!("name = {}\n", toml_str(PROCESSOR)));
    out.push_str(&format!("source = {}\n", toml_str(RAW_STREAM)));
    out.push_str(&format!("output = {}\n", toml_str(PROCESSED_STREAM)));
    out.push_str(&format!("dead_letter = {}\n", toml_str(DEAD_LETTER_STREAM)));
    out.push_str("starting_position = \"TRIM_HORIZON\"\n");
    out.push_str("batch_size = 500\n");
    out.push_str(&format!("program = {}\n", toml_str(PROGRAM)));
    if tables {
        out.push_str("\n[[tables]]\n");
        out.push_str(&format!("database = {}\n", toml_str(DATABASE)));
        out.push_str(&format!("name = {}\n", toml_str(TABLE)));
        out.push_str("columns = [\n");
        for (name, ty) in COLUMNS {
            out.push_str(&format!(
                "  {{ name = {}, type = {} }},\n",
                toml_str(name),
                toml_str(ty)
            ));
        }
        out.push_str("]\n");
    }
    out
}

/// CreateDeliveryStream's request: a KinesisStreamAsSource delivery stream reading the
/// processed stream, partitioned by event type, day and hour, written as `format`.
pub fn create_delivery_stream(
    region: &str,
    account: &str,
    format: Format,
    interval_s: u32,
) -> Value {
    let mut processors = vec![json!({
        "Type": "MetadataExtraction",
        "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": METADATA_QUERY},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}
        ]
    })];
    if format == Format::Json {
        processors.push(json!({"Type": "AppendDelimiterToRecord", "Parameters": []}));
    }
    let mut destination = json!({
        "RoleARN": ROLE,
        "BucketARN": format!("arn:aws:s3:::{BUCKET}"),
        "Prefix": format!("{PREFIX_ROOT}event_type=!{{partitionKeyFromQuery:event_type}}/dt=!{{partitionKeyFromQuery:dt}}/hour=!{{partitionKeyFromQuery:hour}}/"),
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/",
        // Dynamic partitioning and conversion both need at least 64 MB; the interval is what
        // writes the files during a short demo.
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": interval_s},
        "CompressionFormat": "UNCOMPRESSED",
        "FileExtension": format.extension(),
        "DynamicPartitioningConfiguration": {"Enabled": true, "RetryOptions": {"DurationInSeconds": 300}},
        "ProcessingConfiguration": {"Enabled": true, "Processors": processors},
    });
    if format == Format::Parquet {
        destination["DataFormatConversionConfiguration"] = json!({
            "Enabled": true,
            "SchemaConfiguration": {
                "DatabaseName": DATABASE,
                "TableName": TABLE,
                "RoleARN": ROLE,
                "Region": region,
            },
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}},
        });
    }
    json!({
        "DeliveryStreamName": DELIVERY_STREAM,
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {
            "KinesisStreamARN": format!("arn:aws:kinesis:{region}:{account}:stream/{PROCESSED_STREAM}"),
            "RoleARN": ROLE,
        },
        "ExtendedS3DestinationConfiguration": destination,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::generator::{Generator, Kind};
    use sluice_jq::{Program, Vars};

    fn vars() -> Vars {
        Vars {
            partition_key: "s-1".into(),
            sequence_number: "1".into(),
            arrival_ms: 1_767_348_000_000,
            shard_id: "shardId-000000000000".into(),
            stream: RAW_STREAM.into(),
        }
    }

    #[test]
    fn the_program_filters_and_enriches_what_the_generator_makes() {
        let program = Program::compile(PROGRAM).unwrap();
        let query = Program::compile(METADATA_QUERY).unwrap();
        let mut g = Generator::new(3, 3_000, 3 * 3_600_000, 1_767_348_000_000);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3_000 {
            let r = g.next_record();
            let out = program.run_bytes(&r.data, &vars());
            match r.kind {
                Kind::NotJson => assert!(out.is_err()),
                Kind::Bot | Kind::Malformed => {
                    assert_eq!(
                        out.unwrap().len(),
                        0,
                        "{}",
                        String::from_utf8_lossy(&r.data)
                    )
                }
                Kind::Valid => {
                    let out = out.unwrap();
                    assert_eq!(out.len(), 1);
                    let v: Value = serde_json::from_slice(&out[0]).unwrap();
                    assert_eq!(v["dt"], r.date_hour.0.as_str());
                    assert_eq!(v["hour"], r.date_hour.1.as_str());
                    assert!(v["processed_at"].as_str().unwrap().ends_with('Z'));
                    let class = v["device_class"].as_str().unwrap().to_string();
                    let referrer = v["referrer_type"].as_str().unwrap().to_string();
                    match v["device"].as_str().unwrap() {
                        "iPad" => assert_eq!(class, "tablet"),
                        "iPhone" | "Android phone" => assert_eq!(class, "mobile"),
                        _ => assert_eq!(class, "desktop"),
                    }
                    seen.insert(referrer);
                    let keys = query.run(v, &vars()).unwrap();
                    assert_eq!(
                        keys,
                        vec![
                            json!({"event_type": r.event_type, "dt": r.date_hour.0, "hour": r.date_hour.1})
                        ]
                    );
                }
            }
        }
        for t in ["direct", "search", "social", "email", "referral"] {
            assert!(seen.contains(t), "{t}: {seen:?}");
        }
    }

    #[test]
    fn the_config_parses_with_the_processor() {
        for tables in [false, true] {
            let t: toml::Table = toml::from_str(&config_toml(tables)).unwrap();
            let p = &t["processors"].as_array().unwrap()[0];
            assert_eq!(p["program"].as_str().unwrap(), PROGRAM);
            assert_eq!(t.contains_key("tables"), tables);
        }
        let t: toml::Table = toml::from_str(&config_toml(true)).unwrap();
        let columns = t["tables"].as_array().unwrap()[0]["columns"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(columns, COLUMNS.len());
    }

    #[test]
    fn the_delivery_stream_request() {
        let r = create_delivery_stream("us-east-1", "000000000000", Format::Parquet, 10);
        let d = &r["ExtendedS3DestinationConfiguration"];
        assert_eq!(d["BufferingHints"]["SizeInMBs"], 64);
        assert_eq!(
            d["Prefix"],
            "clicks/event_type=!{partitionKeyFromQuery:event_type}/dt=!{partitionKeyFromQuery:dt}/hour=!{partitionKeyFromQuery:hour}/"
        );
        assert_eq!(d["DataFormatConversionConfiguration"]["Enabled"], true);
        let r = create_delivery_stream("us-east-1", "000000000000", Format::Json, 10);
        let d = &r["ExtendedS3DestinationConfiguration"];
        assert!(d.get("DataFormatConversionConfiguration").is_none());
        assert_eq!(
            d["ProcessingConfiguration"]["Processors"][1]["Type"],
            "AppendDelimiterToRecord"
        );
    }
}
