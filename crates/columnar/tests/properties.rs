//! Property tests: type strings print and parse back to the same type; arbitrary JSON records
//! against a schema of every type convert or fail per record, never panic, and every record is
//! accounted for (a row in the file or an error).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use parquet::file::reader::{FileReader, SerializedFileReader};
use proptest::prelude::*;
use serde_json::{json, Value};
use sluice_columnar::{
    ColumnType, Converter, Deserializer, HiveJsonSerDe, ParquetWriterConfig, Schema, StructField,
};

fn column_type() -> impl Strategy<Value = ColumnType> {
    let leaf = prop_oneof![
        Just(ColumnType::String),
        (1u32..=65_535).prop_map(ColumnType::Varchar),
        (1u32..=255).prop_map(ColumnType::Char),
        Just(ColumnType::Boolean),
        Just(ColumnType::TinyInt),
        Just(ColumnType::SmallInt),
        Just(ColumnType::Int),
        Just(ColumnType::BigInt),
        Just(ColumnType::Float),
        Just(ColumnType::Double),
        (1u8..=38)
            .prop_flat_map(|p| (Just(p), 0..=p))
            .prop_map(|(precision, scale)| ColumnType::Decimal { precision, scale }),
        Just(ColumnType::Date),
        Just(ColumnType::Timestamp),
        Just(ColumnType::Binary),
    ];
    let primitive = leaf.clone();
    leaf.prop_recursive(4, 24, 4, move |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| ColumnType::Array(Box::new(t))),
            (primitive.clone(), inner.clone())
                .prop_map(|(k, v)| ColumnType::Map(Box::new(k), Box::new(v))),
            prop::collection::vec(("[a-z_][a-z0-9_ .]{0,6}", inner), 1..4).prop_map(|fields| {
                let mut seen = std::collections::HashSet::new();
                ColumnType::Struct(
                    fields
                        .into_iter()
                        .filter(|(name, _)| seen.insert(name.to_lowercase()))
                        .map(|(name, field_type)| StructField { name, field_type })
                        .collect(),
                )
            }),
        ]
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "[a-zA-Z0-9 .:+\\-TZ/]{0,24}".prop_map(Value::String),
        Just(json!("2018-02-07T15:13:01Z")),
        Just(json!("2018-02-07")),
        Just(json!("12.5")),
        Just(json!(1_518_016_381_000i64)),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-eA-E.]{1,3}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn wide_schema() -> Schema {
    Schema::parse([
        ("a", "string"),
        ("b", "boolean"),
        ("c", "tinyint"),
        ("d", "bigint"),
        ("e", "float"),
        ("A.b", "double"),
        ("ab", "decimal(12,3)"),
        ("ba", "date"),
        ("bb", "timestamp"),
        ("cc", "binary"),
        ("dd", "array<struct<a:int,b:array<string>>>"),
        ("ee", "map<string,map<int,timestamp>>"),
        (
            "ca",
            "struct<a:varchar(2),b:struct<c:double>,d:map<bigint,boolean>>",
        ),
    ])
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn type_strings_round_trip(t in column_type()) {
        let printed = t.to_string();
        let parsed = ColumnType::parse(&printed).unwrap();
        prop_assert_eq!(&parsed, &t);
        // The Arrow type of every parsed type can be built (a builder per column).
        let _ = parsed.arrow_type();
    }

    #[test]
    fn arbitrary_records_are_rows_or_errors(
        records in prop::collection::vec(json_value(), 1..40),
        hive in any::<bool>(),
        garbage in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let deserializer = if hive {
            Deserializer::Hive(HiveJsonSerDe::new(&["millis".into(), "yyyy-MM-dd'T'HH:mm:ssZ".into()]).unwrap())
        } else {
            Deserializer::default()
        };
        let converter = Converter::new(wide_schema(), deserializer, &ParquetWriterConfig::default()).unwrap();
        let mut inputs: Vec<Vec<u8>> = records.iter().map(|r| serde_json::to_vec(r).unwrap()).collect();
        inputs.push(garbage);
        let written = converter.write(Vec::new(), inputs.iter().map(Vec::as_slice)).unwrap();
        // Every record is one row (each is a single JSON value) or one error, in order.
        let errors: Vec<usize> = written.errors.iter().map(|e| e.index).collect();
        prop_assert!(errors.windows(2).all(|w| w[0] < w[1]));
        prop_assert_eq!(written.rows as usize + errors.len(), inputs.len());
        for (i, record) in records.iter().enumerate() {
            if !record.is_object() {
                prop_assert!(errors.contains(&i));
            }
        }
        if written.rows == 0 {
            prop_assert!(written.out.is_empty());
        } else {
            let file = SerializedFileReader::new(Bytes::from(written.out)).unwrap();
            prop_assert_eq!(file.metadata().file_metadata().num_rows() as u64, written.rows);
        }
    }
}
