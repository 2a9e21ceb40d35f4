//! A table's columns: declared in sluice's configuration (`[[tables]]`, `TableConfig`), or
//! inferred from records (`Schema::infer`, sluice's extension for a table that does not exist).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::deserializer::Deserializer;
use crate::error::SchemaError;
use crate::limits;
use crate::types::{ColumnType, StructField};

/// One column: its name as declared and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub column_type: ColumnType,
}

/// A table's columns, in order. Names are unique case-insensitively (as in Hive and Glue),
/// non-empty, at most 255 characters; there is at least one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    columns: Vec<Column>,
}

impl Schema {
    /// Checks the columns (see [`Schema`]).
    pub fn new(columns: Vec<Column>) -> Result<Schema, SchemaError> {
        if columns.is_empty() {
            return Err(SchemaError::NoColumns);
        }
        if columns.len() > limits::COLUMNS_MAX {
            return Err(SchemaError::TooManyColumns {
                count: columns.len(),
                max: limits::COLUMNS_MAX,
            });
        }
        for (i, column) in columns.iter().enumerate() {
            check_name(&column.name)?;
            if columns[..i]
                .iter()
                .any(|c| c.name.to_lowercase() == column.name.to_lowercase())
            {
                return Err(SchemaError::DuplicateColumn {
                    name: column.name.clone(),
                });
            }
        }
        Ok(Schema { columns })
    }

    /// Columns from `(name, type string)` pairs, e.g. `[("ts", "timestamp"), ("tags",
    /// "array<string>")]`.
    pub fn parse<'a>(
        columns: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Schema, SchemaError> {
        let mut parsed = Vec::new();
        for (name, type_string) in columns {
            let column_type =
                ColumnType::parse(type_string).map_err(|source| SchemaError::Type {
                    column: name.to_string(),
                    source,
                })?;
            parsed.push(Column {
                name: name.to_string(),
                column_type,
            });
        }
        Schema::new(parsed)
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The Arrow schema of the record batches written (every field nullable, as Hive's are).
    pub fn arrow_schema(&self) -> arrow_schema::SchemaRef {
        let fields: Vec<arrow_schema::Field> = self
            .columns
            .iter()
            .map(|c| arrow_schema::Field::new(c.name.as_str(), c.column_type.arrow_type(), true))
            .collect();
        Arc::new(arrow_schema::Schema::new(fields))
    }

    /// Infers a schema from sample records (sluice's extension when the table named in
    /// `SchemaConfiguration` does not exist: the first buffer is the sample), with the default
    /// deserializer's key rules. See [`Schema::infer_with`] for the rules.
    pub fn infer(records: &[Value]) -> Result<Schema, SchemaError> {
        Schema::infer_with(records, &Deserializer::default())
    }

    /// Infers a schema from sample records, naming columns as `deserializer` will look them up
    /// (keys with dots become `a_b` under OpenX's `ConvertDotsInJsonKeysToUnderscores`, a key
    /// that `ColumnToJsonKeyMappings` maps gets its column's name). The rules:
    ///
    /// - Every top-level JSON object contributes its keys; other records are skipped. Columns
    ///   come in the order keys are first seen (serde_json lists an object's keys sorted).
    ///   Keys equal but for case are one column (the first spelling); empty keys are skipped.
    /// - A value's type: `true`/`false` → `boolean`; an integer that fits 64 bits signed →
    ///   `bigint`; any other number → `double`; a string → `string` (no date or timestamp
    ///   detection); an object → `struct<...>` of its keys, by the same rules; an array →
    ///   `array<T>` with `T` merged over its elements; `null` says nothing.
    /// - Types seen for one key are merged: `bigint` and `double` → `double`; two structs →
    ///   the struct of both their fields; two arrays → the array of their merged elements;
    ///   anything else that differs → `string` (the value's JSON text is stored).
    /// - What is still unknown at the end (only `null`s, empty arrays' elements) is `string`;
    ///   so is a struct with no fields (Parquet has no empty groups) and anything nested deeper
    ///   than 32 levels.
    ///
    /// Fails only if no record has a usable key (`SchemaError::NoColumns`).
    pub fn infer_with(
        records: &[Value],
        deserializer: &Deserializer,
    ) -> Result<Schema, SchemaError> {
        let mut top = Inferred::Struct(Vec::new());
        for record in records {
            if let Value::Object(object) = record {
                let sample = infer_object(object, deserializer, 1);
                top = merge(top, sample);
            }
        }
        let Inferred::Struct(fields) = top else {
            return Err(SchemaError::NoColumns);
        };
        let columns = fields
            .into_iter()
            .take(limits::COLUMNS_MAX)
            .map(|(name, inferred)| Column {
                name,
                column_type: inferred.finish(),
            })
            .collect();
        Schema::new(columns)
    }
}

fn check_name(name: &str) -> Result<(), SchemaError> {
    if name.is_empty() {
        return Err(SchemaError::EmptyName);
    }
    if name.chars().count() > limits::COLUMN_NAME_CHARS_MAX {
        return Err(SchemaError::NameTooLong {
            name: name.chars().take(limits::COLUMN_NAME_CHARS_MAX).collect(),
            max: limits::COLUMN_NAME_CHARS_MAX,
        });
    }
    Ok(())
}

/// A type while inference is under way: `Unknown` until a non-null value is seen.
#[derive(Debug, Clone, PartialEq)]
enum Inferred {
    Unknown,
    Boolean,
    BigInt,
    Double,
    String,
    Array(Box<Inferred>),
    Struct(Vec<(String, Inferred)>),
}

impl Inferred {
    fn finish(self) -> ColumnType {
        match self {
            Inferred::Unknown | Inferred::String => ColumnType::String,
            Inferred::Boolean => ColumnType::Boolean,
            Inferred::BigInt => ColumnType::BigInt,
            Inferred::Double => ColumnType::Double,
            Inferred::Array(element) => ColumnType::Array(Box::new(element.finish())),
            Inferred::Struct(fields) if fields.is_empty() => ColumnType::String,
            Inferred::Struct(fields) => ColumnType::Struct(
                fields
                    .into_iter()
                    .map(|(name, inferred)| StructField {
                        name,
                        field_type: inferred.finish(),
                    })
                    .collect(),
            ),
        }
    }
}

fn infer_value(value: &Value, deserializer: &Deserializer, depth: usize) -> Inferred {
    if depth > limits::TYPE_DEPTH_MAX && (value.is_array() || value.is_object()) {
        return Inferred::String;
    }
    match value {
        Value::Null => Inferred::Unknown,
        Value::Bool(_) => Inferred::Boolean,
        Value::Number(n) if n.is_i64() => Inferred::BigInt,
        Value::Number(_) => Inferred::Double,
        Value::String(_) => Inferred::String,
        Value::Array(items) => {
            let mut element = Inferred::Unknown;
            for item in items {
                element = merge(element, infer_value(item, deserializer, depth + 1));
            }
            Inferred::Array(Box::new(element))
        }
        Value::Object(object) => infer_object(object, deserializer, depth + 1),
    }
}

fn infer_object(
    object: &serde_json::Map<String, Value>,
    deserializer: &Deserializer,
    depth: usize,
) -> Inferred {
    let mut fields: Vec<(String, Inferred)> = Vec::new();
    for (key, value) in object {
        let name = deserializer.column_name_for_key(key);
        if name.is_empty() || name.chars().count() > limits::COLUMN_NAME_CHARS_MAX {
            continue;
        }
        let inferred = infer_value(value, deserializer, depth);
        add_field(&mut fields, name, inferred);
    }
    Inferred::Struct(fields)
}

fn add_field(fields: &mut Vec<(String, Inferred)>, name: String, inferred: Inferred) {
    let lower = name.to_lowercase();
    if let Some(slot) = fields.iter_mut().find(|(n, _)| n.to_lowercase() == lower) {
        let previous = std::mem::replace(&mut slot.1, Inferred::Unknown);
        slot.1 = merge(previous, inferred);
    } else if fields.len() < limits::COLUMNS_MAX {
        fields.push((name, inferred));
    }
}

fn merge(a: Inferred, b: Inferred) -> Inferred {
    match (a, b) {
        (Inferred::Unknown, other) | (other, Inferred::Unknown) => other,
        (Inferred::BigInt, Inferred::Double) | (Inferred::Double, Inferred::BigInt) => {
            Inferred::Double
        }
        (Inferred::Array(x), Inferred::Array(y)) => Inferred::Array(Box::new(merge(*x, *y))),
        (Inferred::Struct(mut x), Inferred::Struct(y)) => {
            for (name, inferred) in y {
                add_field(&mut x, name, inferred);
            }
            Inferred::Struct(x)
        }
        (x, y) if x == y => x,
        _ => Inferred::String,
    }
}

/// A table declared in sluice's configuration, the way a schema is known until there is a
/// Glue API: `[[tables]]` with `database`, `name` and `columns = [{ name, type }]`. A delivery
/// stream's `SchemaConfiguration` (`DatabaseName`, `TableName`) names one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub database: String,
    pub name: String,
    pub columns: Vec<ColumnConfig>,
}

/// One `{ name, type }` of a `[[tables]]` entry; `type` is a Hive type string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: String,
}

impl TableConfig {
    /// The table's schema, or why it cannot be used (checked when the configuration loads).
    pub fn schema(&self) -> Result<Schema, SchemaError> {
        if self.database.trim().is_empty() {
            return Err(SchemaError::EmptyTableName { what: "database" });
        }
        if self.name.trim().is_empty() {
            return Err(SchemaError::EmptyTableName { what: "name" });
        }
        Schema::parse(
            self.columns
                .iter()
                .map(|c| (c.name.as_str(), c.column_type.as_str())),
        )
    }

    /// Whether this is the table `DatabaseName` / `TableName` name (Glue's names are
    /// case-insensitive).
    pub fn is_named(&self, database: &str, table: &str) -> bool {
        self.database.eq_ignore_ascii_case(database) && self.name.eq_ignore_ascii_case(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deserializer::OpenXJsonSerDe;
    use serde_json::json;

    fn types(schema: &Schema) -> Vec<(String, String)> {
        schema
            .columns()
            .iter()
            .map(|c| (c.name.clone(), c.column_type.to_string()))
            .collect()
    }

    #[test]
    fn schema_checks_names() {
        assert_eq!(
            Schema::parse([("a", "int"), ("A", "string")]).unwrap_err(),
            SchemaError::DuplicateColumn { name: "A".into() }
        );
        assert_eq!(
            Schema::parse([("", "int")]).unwrap_err(),
            SchemaError::EmptyName
        );
        assert_eq!(Schema::parse([]).unwrap_err(), SchemaError::NoColumns);
        let long = "x".repeat(limits::COLUMN_NAME_CHARS_MAX);
        assert!(Schema::parse([(long.as_str(), "int")]).is_ok());
        let longer = "x".repeat(limits::COLUMN_NAME_CHARS_MAX + 1);
        assert!(matches!(
            Schema::parse([(longer.as_str(), "int")]),
            Err(SchemaError::NameTooLong { .. })
        ));
        let e = Schema::parse([("ok", "int"), ("bad", "arr<int>")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("column `bad`: invalid column type `arr<int>`"),
            "{e}"
        );
    }

    #[test]
    fn column_count_at_its_limit() {
        let names: Vec<String> = (0..=limits::COLUMNS_MAX).map(|i| format!("c{i}")).collect();
        let at = Schema::parse(
            names[..limits::COLUMNS_MAX]
                .iter()
                .map(|n| (n.as_str(), "int")),
        );
        assert!(at.is_ok());
        let past = Schema::parse(names.iter().map(|n| (n.as_str(), "int")));
        assert!(matches!(past, Err(SchemaError::TooManyColumns { .. })));
    }

    #[test]
    fn inference_rules() {
        let records = vec![
            json!({"id": 1, "price": 2, "name": "a", "ok": true, "user": {"id": 7}, "tags": ["x"],
                   "mixed": 1, "nothing": null, "empty": [], "obj": {}}),
            json!({"id": 2, "price": 2.5, "user": {"name": "n", "ID": 8}, "tags": [], "mixed": "s",
                   "late": [1, 2.5], "Name": "b"}),
            json!(["not", "an", "object"]),
            json!({"big": 18446744073709551615u64, "nested": {"deep": [{"a": 1}, {"b": true}]},
                   "clash": [1], "": 1}),
            json!({"clash": {"a": 1}}),
        ];
        let schema = Schema::infer(&records).unwrap();
        let mut got = types(&schema);
        got.sort();
        let mut want: Vec<(String, String)> = [
            ("big", "double"),
            ("clash", "string"),
            ("empty", "array<string>"),
            ("id", "bigint"),
            ("late", "array<double>"),
            ("mixed", "string"),
            ("name", "string"),
            ("nested", "struct<deep:array<struct<a:bigint,b:boolean>>>"),
            ("nothing", "string"),
            ("obj", "string"),
            ("ok", "boolean"),
            ("price", "double"),
            ("tags", "array<string>"),
            ("user", "struct<id:bigint,name:string>"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn inference_uses_the_deserializers_key_rules() {
        let mut serde = OpenXJsonSerDe {
            convert_dots_in_json_keys_to_underscores: true,
            ..OpenXJsonSerDe::default()
        };
        serde
            .column_to_json_key_mappings
            .insert("ts".into(), "timestamp".into());
        let deserializer = Deserializer::OpenX(serde);
        let schema =
            Schema::infer_with(&[json!({"a.b": 1, "timestamp": "x"})], &deserializer).unwrap();
        assert_eq!(
            types(&schema),
            vec![
                ("a_b".into(), "bigint".into()),
                ("ts".into(), "string".into())
            ]
        );
    }

    #[test]
    fn inference_without_keys_fails() {
        assert_eq!(Schema::infer(&[]).unwrap_err(), SchemaError::NoColumns);
        assert_eq!(
            Schema::infer(&[json!(1), json!({})]).unwrap_err(),
            SchemaError::NoColumns
        );
    }

    #[test]
    fn inference_depth_is_bounded() {
        let mut value = json!(1);
        for _ in 0..(limits::TYPE_DEPTH_MAX + 5) {
            value = json!({ "n": value });
        }
        let schema = Schema::infer(&[value]).unwrap();
        let column_type = &schema.columns()[0].column_type;
        assert!(column_type.depth() <= limits::TYPE_DEPTH_MAX + 1);
        // The inferred type is one the parser accepts back.
        assert_eq!(
            &ColumnType::parse(&column_type.to_string()).unwrap(),
            column_type
        );
    }

    #[test]
    fn table_config_from_toml() {
        let text = r#"
            [[tables]]
            database = "lake"
            name = "clicks"
            columns = [
              { name = "user", type = "string" },
              { name = "at", type = "timestamp" },
              { name = "props", type = "map<string,string>" },
            ]
        "#;
        #[derive(Deserialize)]
        struct File {
            tables: Vec<TableConfig>,
        }
        let file: File = toml::from_str(text).unwrap();
        let table = &file.tables[0];
        assert!(table.is_named("LAKE", "Clicks"));
        assert!(!table.is_named("lake", "other"));
        let schema = table.schema().unwrap();
        assert_eq!(schema.columns().len(), 3);
        assert_eq!(schema.columns()[1].column_type, ColumnType::Timestamp);

        let unknown = r#"
            [[tables]]
            database = "lake"
            name = "clicks"
            columns = [{ name = "user", type = "string", comment = "no" }]
        "#;
        assert!(toml::from_str::<File>(unknown).is_err());

        let bad = TableConfig {
            database: " ".into(),
            name: "t".into(),
            columns: vec![],
        };
        assert_eq!(
            bad.schema().unwrap_err(),
            SchemaError::EmptyTableName { what: "database" }
        );
    }
}
