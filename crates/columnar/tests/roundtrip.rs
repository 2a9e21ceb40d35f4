//! Writes Parquet files through the public API and reads them back with the `parquet` crate's
//! own Arrow reader: values, types, nulls, nested columns, every compression and writer
//! version, row groups flushed at `block_size_bytes`, per-record errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};
use sluice_columnar::{
    write_parquet, Compression, Converter, Deserializer, HiveJsonSerDe, ParquetWriterConfig,
    RecordErrorKind, Schema, TableConfig, WriterVersion,
};

fn read_back(bytes: &Bytes) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    arrow_select_concat(&batches)
}

/// All batches as one (the tests write few rows; one batch is the common case).
fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
    assert!(!batches.is_empty());
    if batches.len() == 1 {
        return batches[0].clone();
    }
    let schema = batches[0].schema();
    let columns = (0..schema.fields().len())
        .map(|i| {
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            concat(&parts)
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

fn concat(parts: &[&dyn Array]) -> Arc<dyn Array> {
    // Only flat Int64 columns are concatenated in these tests.
    let values: Vec<Option<i64>> = parts
        .iter()
        .flat_map(|p| p.as_primitive::<Int64Type>().iter().collect::<Vec<_>>())
        .collect();
    Arc::new(arrow_array::Int64Array::from(values))
}

fn table() -> Schema {
    let toml_text = r#"
        database = "lake"
        name = "events"
        columns = [
          { name = "user", type = "string" },
          { name = "n", type = "bigint" },
          { name = "small", type = "smallint" },
          { name = "tiny", type = "tinyint" },
          { name = "i", type = "int" },
          { name = "price", type = "double" },
          { name = "ratio", type = "float" },
          { name = "ok", type = "boolean" },
          { name = "at", type = "timestamp" },
          { name = "day", type = "date" },
          { name = "amount", type = "decimal(10,2)" },
          { name = "code", type = "varchar(3)" },
          { name = "raw", type = "binary" },
          { name = "device", type = "struct<os:string,version:int>" },
          { name = "tags", type = "array<string>" },
          { name = "props", type = "map<string,bigint>" },
        ]
    "#;
    let table: TableConfig = toml::from_str(toml_text).unwrap();
    table.schema().unwrap()
}

const RECORDS: [&str; 4] = [
    r#"{"user":"ann","n":1,"small":-2,"tiny":3,"i":4,"price":1.5,"ratio":0.25,"ok":true,
        "at":"2018-02-07T15:13:01.5Z","day":"2018-02-07","amount":"12.345","code":"abcd",
        "raw":"hi","device":{"OS":"ios","version":17},"tags":["a","b"],"props":{"x":1}}"#,
    r#"{"user":"bob"}"#,
    r#"not json"#,
    r#"{"user":"cy","n":"nope"}"#,
];

#[test]
fn values_types_and_nulls_round_trip_for_every_compression() {
    let schema = table();
    for compression in [
        Compression::Snappy,
        Compression::Gzip,
        Compression::Uncompressed,
    ] {
        for writer_version in [WriterVersion::V1, WriterVersion::V2] {
            let config = ParquetWriterConfig {
                compression,
                writer_version,
                ..ParquetWriterConfig::default()
            };
            let records: Vec<Vec<u8>> = RECORDS
                .iter()
                .map(|r| r.replace('\n', " ").into_bytes())
                .collect();
            let (bytes, errors) = write_parquet(
                &schema,
                &Deserializer::default(),
                &config,
                records.iter().map(Vec::as_slice),
            )
            .unwrap();

            assert_eq!(errors.len(), 2);
            assert_eq!(errors[0].index, 2);
            assert_eq!(errors[0].kind, RecordErrorKind::ParseError);
            assert_eq!(errors[0].kind.code(), "DataFormatConversion.ParseError");
            assert_eq!(errors[1].index, 3);
            assert_eq!(errors[1].kind, RecordErrorKind::MalformedData);
            assert!(errors[1].message.starts_with("column `n`: expected bigint"));

            let file = SerializedFileReader::new(bytes.clone()).unwrap();
            let codec = file.metadata().row_group(0).column(0).compression();
            let expected = match compression {
                Compression::Snappy => "SNAPPY",
                Compression::Gzip => "GZIP",
                Compression::Uncompressed => "UNCOMPRESSED",
            };
            assert!(codec.to_string().starts_with(expected), "{codec}");

            let batch = read_back(&bytes);
            assert_eq!(batch.num_rows(), 2);
            let column = |name: &str| batch.column_by_name(name).unwrap().clone();

            let user = column("user");
            assert_eq!(user.as_string::<i32>().value(0), "ann");
            assert_eq!(user.as_string::<i32>().value(1), "bob");
            assert_eq!(column("n").as_primitive::<Int64Type>().value(0), 1);
            assert!(column("n").is_null(1));
            assert_eq!(column("small").as_primitive::<Int16Type>().value(0), -2);
            assert_eq!(column("tiny").as_primitive::<Int8Type>().value(0), 3);
            assert_eq!(column("i").as_primitive::<Int32Type>().value(0), 4);
            assert_eq!(column("price").as_primitive::<Float64Type>().value(0), 1.5);
            assert_eq!(column("ratio").as_primitive::<Float32Type>().value(0), 0.25);
            assert!(column("ok").as_boolean().value(0));
            let at = column("at");
            assert_eq!(
                at.data_type(),
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            );
            assert_eq!(
                at.as_primitive::<TimestampMicrosecondType>().value(0),
                1_518_016_381_500_000
            );
            assert!(at.is_null(1));
            assert_eq!(column("day").as_primitive::<Date32Type>().value(0), 17_569);
            let amount = column("amount");
            assert_eq!(amount.data_type(), &DataType::Decimal128(10, 2));
            assert_eq!(amount.as_primitive::<Decimal128Type>().value(0), 1235);
            assert_eq!(column("code").as_string::<i32>().value(0), "abc");
            assert_eq!(column("raw").as_binary::<i32>().value(0), b"hi");

            let device = column("device");
            let device = device.as_struct();
            assert_eq!(device.column(0).as_string::<i32>().value(0), "ios");
            assert_eq!(device.column(1).as_primitive::<Int32Type>().value(0), 17);
            assert!(device.is_null(1));

            let tags = column("tags");
            let tags = tags.as_list::<i32>();
            let first = tags.value(0);
            assert_eq!(first.as_string::<i32>().value(1), "b");
            assert!(tags.is_null(1));

            let props = column("props");
            let props = props.as_map();
            assert_eq!(props.keys().as_string::<i32>().value(0), "x");
            assert_eq!(props.values().as_primitive::<Int64Type>().value(0), 1);
            assert!(props.is_null(1));
        }
    }
}

#[test]
fn row_groups_flush_at_block_size_and_every_row_arrives() {
    let schema = Schema::parse([("id", "bigint"), ("pad", "string")]).unwrap();
    let config = ParquetWriterConfig {
        compression: Compression::Uncompressed,
        block_size_bytes: 256 * 1024,
        page_size_bytes: 8 * 1024,
        ..ParquetWriterConfig::default()
    };
    let converter = Converter::new(schema, Deserializer::default(), &config).unwrap();
    let rows = 60_000u64;
    let records: Vec<Vec<u8>> = (0..rows)
        .map(|i| format!(r#"{{"id":{i},"pad":"{}"}}"#, "p".repeat((i % 50) as usize)).into_bytes())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    let file = std::fs::File::create(&path).unwrap();
    let written = converter
        .write(file, records.iter().map(Vec::as_slice))
        .unwrap();
    assert_eq!(written.rows, rows);
    assert!(written.errors.is_empty());
    drop(written);

    let bytes = Bytes::from(std::fs::read(&path).unwrap());
    let file = SerializedFileReader::new(bytes.clone()).unwrap();
    let groups = file.metadata().num_row_groups();
    let sizes: Vec<i64> = (0..groups)
        .map(|i| file.metadata().row_group(i).compressed_size())
        .collect();
    // About 1.8 MB of column data: several row groups, each near the block size (the last
    // one smaller), none far past it.
    assert!(groups >= 5, "{sizes:?}");
    for size in &sizes[..groups - 1] {
        assert!(
            (230 * 1024..=290 * 1024).contains(size),
            "row group sizes {sizes:?}"
        );
    }
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let mut next = 0i64;
    for batch in reader {
        let batch = batch.unwrap();
        for id in batch.column(0).as_primitive::<Int64Type>().iter() {
            assert_eq!(id, Some(next));
            next += 1;
        }
    }
    assert_eq!(next as u64, rows);
}

#[test]
fn concatenated_documents_are_rows_and_a_bad_record_costs_only_itself() {
    let schema = Schema::parse([("a", "int")]).unwrap();
    let records: [&[u8]; 4] = [
        br#"{"a":1}{"a":2}"#,
        br#"{"a":3}{"a":"x"}"#,
        br#"[{"a":4}]"#,
        b"{\"a\":5}\n",
    ];
    let (bytes, errors) = write_parquet(
        &schema,
        &Deserializer::default(),
        &ParquetWriterConfig::default(),
        records,
    )
    .unwrap();
    let got: Vec<(usize, RecordErrorKind)> = errors.iter().map(|e| (e.index, e.kind)).collect();
    assert_eq!(
        got,
        vec![
            (1, RecordErrorKind::MalformedData),
            (2, RecordErrorKind::ParseError)
        ]
    );
    let batch = read_back(&bytes);
    let values: Vec<Option<i32>> = batch.column(0).as_primitive::<Int32Type>().iter().collect();
    assert_eq!(values, vec![Some(1), Some(2), Some(5)]);
}

#[test]
fn nothing_is_written_when_no_record_converts() {
    let schema = Schema::parse([("a", "int")]).unwrap();
    let records: [&[u8]; 2] = [b"nope", br#"{"a":"x"}"#];
    let (bytes, errors) = write_parquet(
        &schema,
        &Deserializer::default(),
        &ParquetWriterConfig::default(),
        records,
    )
    .unwrap();
    assert!(bytes.is_empty());
    assert_eq!(errors.len(), 2);
    let converter = Converter::new(
        schema,
        Deserializer::default(),
        &ParquetWriterConfig::default(),
    )
    .unwrap();
    let written = converter.write(Vec::new(), std::iter::empty()).unwrap();
    assert_eq!(written.rows, 0);
    assert!(written.out.is_empty());
}

#[test]
fn hive_deserializer_and_inferred_schema() {
    let records: Vec<&[u8]> = vec![
        br#"{"When":"07/02/2018 15:13:01","n":1,"user":{"id":7}}"#,
        br#"{"when":"1518016381000","n":2.5,"tags":["a"]}"#,
    ];
    let values: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::from_slice(r).unwrap())
        .collect();
    let inferred = Schema::infer(&values).unwrap();
    let described: Vec<String> = inferred
        .columns()
        .iter()
        .map(|c| format!("{}:{}", c.name, c.column_type))
        .collect();
    assert_eq!(
        described,
        vec![
            "When:string",
            "n:double",
            "user:struct<id:bigint>",
            "tags:array<string>"
        ]
    );

    let schema = Schema::parse([("when", "timestamp"), ("n", "double")]).unwrap();
    let hive = Deserializer::Hive(
        HiveJsonSerDe::new(&["dd/MM/yyyy HH:mm:ss".into(), "millis".into()]).unwrap(),
    );
    let (bytes, errors) =
        write_parquet(&schema, &hive, &ParquetWriterConfig::default(), records).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let batch = read_back(&bytes);
    let when: Vec<Option<i64>> = batch
        .column(0)
        .as_primitive::<TimestampMicrosecondType>()
        .iter()
        .collect();
    assert_eq!(
        when,
        vec![Some(1_518_016_381_000_000), Some(1_518_016_381_000_000)]
    );
}

#[test]
fn dictionary_setting_reaches_the_file() {
    let schema = Schema::parse([("s", "string")]).unwrap();
    let records: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!(r#"{{"s":"v{}"}}"#, i % 3).into_bytes())
        .collect();
    for dictionary in [false, true] {
        let config = ParquetWriterConfig {
            enable_dictionary_compression: dictionary,
            ..ParquetWriterConfig::default()
        };
        let (bytes, _) = write_parquet(
            &schema,
            &Deserializer::default(),
            &config,
            records.iter().map(Vec::as_slice),
        )
        .unwrap();
        let file = SerializedFileReader::new(bytes).unwrap();
        let column = file.metadata().row_group(0).column(0);
        assert_eq!(column.dictionary_page_offset().is_some(), dictionary);
    }
}

#[test]
fn a_converter_is_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Converter>();
    let schema = Schema::parse([("a", "int")]).unwrap();
    let converter = Converter::new(
        schema,
        Deserializer::default(),
        &ParquetWriterConfig::default(),
    )
    .unwrap();
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let converter = converter.clone();
            std::thread::spawn(move || {
                let record = format!(r#"{{"a":{i}}}"#);
                converter
                    .write_parquet([record.as_bytes()])
                    .unwrap()
                    .0
                    .len()
            })
        })
        .collect();
    for handle in handles {
        assert!(handle.join().unwrap() > 0);
    }
}
