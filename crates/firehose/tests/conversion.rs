//! Record format conversion end to end inside the library: a delivery stream with
//! DataFormatConversionConfiguration, records put through the API (good and bad ones), the
//! Parquet object and the `format-conversion-failed` error records read back from the lake
//! directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::{json, Value};
use sluice_firehose::{FirehoseConfig, TableConfig};

use common::{call, objects};

fn open(
    dir: &std::path::Path,
    tables: Vec<TableConfig>,
) -> std::sync::Arc<sluice_firehose::Firehose> {
    common::open(dir, FirehoseConfig::default(), tables)
}

fn conversion(table: &str, serializer: Value) -> Value {
    json!({
        "Enabled": true,
        "SchemaConfiguration": {
            "DatabaseName": "lake", "TableName": table,
            "RoleARN": "arn:aws:iam::000000000000:role/glue",
        },
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": serializer},
    })
}

fn create_body(name: &str, size_mb: u32, c: Value) -> Value {
    json!({
        "DeliveryStreamName": name,
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::000000000000:role/r",
            "BucketARN": "arn:aws:s3:::lake",
            "Prefix": "data/",
            "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": 1},
            "DataFormatConversionConfiguration": c,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_go_to_the_error_output_and_the_others_to_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let table: TableConfig = serde_json::from_value(json!({
        "database": "lake", "name": "clicks",
        "columns": [{"name": "id", "type": "int"}, {"name": "page", "type": "string"}],
    }))
    .unwrap();
    let fh = open(dir.path(), vec![table]);
    let c = conversion("clicks", json!({"ParquetSerDe": {"Compression": "GZIP"}}));
    call(&fh, "CreateDeliveryStream", create_body("s", 64, c))
        .await
        .unwrap();
    let lines = [
        r#"{"id": 1, "page": "/a"}"#,
        "{broken",
        r#"{"id": 2, "page": "/b"}"#,
        r#"{"id": "three"}"#,
    ];
    let records: Vec<Value> = lines
        .iter()
        .map(|l| json!({"Data": base64::engine::general_purpose::STANDARD.encode(l)}))
        .collect();
    let r = call(
        &fh,
        "PutRecordBatch",
        json!({"DeliveryStreamName": "s", "Records": records}),
    )
    .await
    .unwrap();
    assert_eq!(r["FailedPutCount"], 0);

    let start = Instant::now();
    let objs = loop {
        let objs = objects(dir.path());
        let errors = objs
            .keys()
            .filter(|k| k.starts_with("data/format-conversion-failed/"))
            .count();
        let data = objs.keys().filter(|k| k.ends_with(".parquet")).count();
        if (errors >= 1 && data >= 1) || start.elapsed() > Duration::from_secs(20) {
            break objs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let parquet: Vec<(&String, &Vec<u8>)> = objs
        .iter()
        .filter(|(k, _)| k.ends_with(".parquet"))
        .collect();
    assert_eq!(parquet.len(), 1, "{:?}", objs.keys().collect::<Vec<_>>());
    assert!(parquet[0].0.starts_with("data/"), "{}", parquet[0].0);
    let reader = SerializedFileReader::new(bytes::Bytes::from(parquet[0].1.clone())).unwrap();
    let meta = reader.metadata();
    assert_eq!(meta.file_metadata().num_rows(), 2);
    let column = meta.row_group(0).column(0);
    assert_eq!(
        column.compression(),
        parquet::basic::Compression::GZIP(Default::default())
    );

    let errors: Vec<&Vec<u8>> = objs
        .iter()
        .filter(|(k, _)| k.starts_with("data/format-conversion-failed/"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(errors.len(), 1);
    let mut got: Vec<Value> = String::from_utf8_lossy(errors[0])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    got.sort_by_key(|v| v["rawData"].as_str().unwrap().to_string());
    assert_eq!(got.len(), 2);
    let raw: Vec<String> = got
        .iter()
        .map(|v| {
            let b = base64::engine::general_purpose::STANDARD
                .decode(v["rawData"].as_str().unwrap())
                .unwrap();
            String::from_utf8(b).unwrap()
        })
        .collect();
    assert!(raw.contains(&"{broken".to_string()), "{raw:?}");
    assert!(raw.contains(&r#"{"id": "three"}"#.to_string()), "{raw:?}");
    // Each error record names the record by the RecordId its put was answered with.
    let ids = r["RequestResponses"].as_array().unwrap();
    for (v, text) in got.iter().zip(&raw) {
        let at = lines.iter().position(|l| l == text).unwrap();
        assert_eq!(v["sequenceNumber"], ids[at]["RecordId"], "{v}");
        assert_eq!(v["subSequenceNumber"], Value::Null, "{v}");
    }
    for v in &got {
        let code = v["lastErrorCode"].as_str().unwrap();
        assert!(code.starts_with("DataFormatConversion."), "{v}");
        assert_eq!(v["attemptsMade"], 1);
        assert!(v["arrivalTimestamp"].as_i64().unwrap() > 0);
        assert!(
            v["attemptEndingTimestamp"].as_i64().unwrap()
                >= v["arrivalTimestamp"].as_i64().unwrap()
        );
        assert!(v["sequenceNumber"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit()));
        assert_eq!(v["dataCatalogTable"]["tableName"], "clicks");
        assert_eq!(v["dataCatalogTable"]["databaseName"], "lake");
    }
    fh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refuses_what_firehose_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let fh = open(dir.path(), Vec::new());
    let orc = conversion("t", json!({"OrcSerDe": {}}));
    let e = call(&fh, "CreateDeliveryStream", create_body("o", 64, orc))
        .await
        .unwrap_err();
    assert_eq!(e.error_type.as_str(), "InvalidArgumentException");
    assert!(e.message.unwrap().contains("ORC"));
    let small = conversion("t", json!({"ParquetSerDe": {}}));
    let e = call(&fh, "CreateDeliveryStream", create_body("p", 63, small))
        .await
        .unwrap_err();
    assert_eq!(e.error_type.as_str(), "InvalidArgumentException");
    assert!(e.message.unwrap().contains("at least 64"));
    let bad = conversion("t", json!({"ParquetSerDe": {"PageSizeBytes": 1}}));
    let e = call(&fh, "CreateDeliveryStream", create_body("q", 64, bad))
        .await
        .unwrap_err();
    assert_eq!(e.error_type.as_str(), "InvalidArgumentException");
    // An unknown table is accepted (its schema is inferred from the first buffer).
    let ok = conversion("unknown", json!({"ParquetSerDe": {}}));
    call(&fh, "CreateDeliveryStream", create_body("r", 64, ok))
        .await
        .unwrap();
    // UpdateDestination checks the same rules.
    let d = call(
        &fh,
        "DescribeDeliveryStream",
        json!({"DeliveryStreamName": "r"}),
    )
    .await
    .unwrap();
    let version = d["DeliveryStreamDescription"]["VersionId"].clone();
    let e = call(
        &fh,
        "UpdateDestination",
        json!({
            "DeliveryStreamName": "r", "CurrentDeliveryStreamVersionId": version,
            "DestinationId": "destinationId-000000000001",
            "ExtendedS3DestinationUpdate": {
                "DataFormatConversionConfiguration": conversion("t", json!({"OrcSerDe": {}})),
            },
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type.as_str(), "InvalidArgumentException");
    fh.shutdown().await;
}
