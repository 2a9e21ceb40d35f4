//! Reading one JSON record into the schema's columns under a deserializer's rules.
//!
//! A record is one JSON object, or several written one after another (`{"a":1}{"a":2}`,
//! Firehose accepts that), each a row; any other JSON is a `ParseError`. A record converts
//! whole or not at all: one value that does not fit its column makes the record a
//! `MalformedData` error and none of its rows is written.
//!
//! Values per column type (a JSON `null` or a missing key is a null of any type):
//! - `string`, `varchar(n)`, `char(n)`: a string as is; a number or boolean as its JSON text;
//!   an object or array as its JSON text. `varchar`/`char` cut longer values to `n`
//!   characters.
//! - `boolean`: `true`/`false`, or the strings `"true"`/`"false"` in any case.
//! - `tinyint`..`bigint`: an integer (or a number with no fraction, or a string holding an
//!   integer) within the type's range; otherwise an error (never wrapped or cut).
//! - `float`, `double`: a number, or a string holding one; a `float` out of its range is an
//!   error.
//! - `decimal(p,s)`: a number or numeric string, exactly, rounded half up to `s` digits; more
//!   than `p - s` integer digits is an error.
//! - `date`: `yyyy-[m]m-[d]d`; `timestamp`: per deserializer (`timestamp.rs`), years 0001 to
//!   9999, stored to the microsecond (finer fractions are cut).
//! - `binary`: a string's UTF-8 bytes (as Hive's JSON SerDe reads it).
//! - `array<T>`: an array; `map<K,V>`: an object, keys read as `K` (map keys are data: never
//!   lowercased or converted); `struct<...>`: an object, its keys matched to fields as
//!   top-level keys are to columns.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{Deserialize, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::column::Cell;
use crate::deserializer::Deserializer;
use crate::error::RecordErrorKind;
use crate::limits;
use crate::schema::Schema;
use crate::timestamp;
use crate::types::{ColumnType, StructField};

/// The schema and deserializer, prepared once: at every struct level, which normalized key
/// feeds which fields.
#[derive(Debug, Clone)]
pub(crate) struct RecordReader {
    deserializer: Deserializer,
    root: StructPlan,
}

#[derive(Debug, Clone)]
struct StructPlan {
    names: Vec<String>,
    types: Vec<TypePlan>,
    /// Normalized key → the fields read from it (more than one when a mapping reads a key
    /// that is also another field's name).
    index: KeyIndex,
}

#[derive(Debug, Clone)]
enum TypePlan {
    Scalar(ColumnType),
    Array(Box<TypePlan>),
    Map(ColumnType, Box<TypePlan>),
    Struct(StructPlan),
}

/// A record's documents as [`RecordReader::parse`] leaves them.
pub(crate) struct ParsedRecord<'p>(Vec<ParsedDoc<'p>>);

enum ParsedDoc<'p> {
    /// The values of the keys that feed columns, with the fields each feeds, in key order.
    Object(Vec<(&'p [usize], Value)>),
    /// A document that is not an object (an error when its rows are asked for).
    NotObject(Value),
}

/// One document of a record, read by [`RecordReader::parse`]: an object's fed values, or
/// `None` for any other JSON value (skipped whole).
struct DocSeed<'r> {
    reader: &'r RecordReader,
}

type FedValues<'r> = Vec<(&'r [usize], Value)>;

impl<'de, 'r> DeserializeSeed<'de> for DocSeed<'r> {
    type Value = Option<FedValues<'r>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 'r> Visitor<'de> for DocSeed<'r> {
    type Value = Option<FedValues<'r>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (reader, plan) = (self.reader, &self.reader.root);
        let mut fed: Vec<(Cow<'de, str>, &'r [usize], Value)> = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            let normalized = reader.deserializer.normalize_key(&key);
            match plan.index.get(normalized.as_ref()) {
                Some(fields) => {
                    let value: Value = map.next_value()?;
                    fed.push((key, fields.as_slice(), value));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // Key order, stable: of equal keys the last one written comes last, and is kept.
        fed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut values = Vec::with_capacity(fed.len());
        let mut fed = fed.into_iter().peekable();
        while let Some((key, fields, value)) = fed.next() {
            if fed.peek().is_some_and(|next| next.0 == key) {
                continue;
            }
            values.push((fields, value));
        }
        Ok(Some(values))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A member's key, borrowed when the record holds it as is.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

fn not_an_object(value: &Value) -> RecordFailure {
    (
        RecordErrorKind::ParseError,
        format!(
            "a record must be a JSON object, got {}",
            excerpt(Input::Json(value))
        ),
    )
}

fn malformed(e: ValueError) -> RecordFailure {
    (
        RecordErrorKind::MalformedData,
        format!("column `{}`: {}", e.path, e.reason),
    )
}

/// A value that does not fit: where (`user.tags[2]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueError {
    pub(crate) path: String,
    pub(crate) reason: String,
}

impl ValueError {
    fn new(reason: String) -> ValueError {
        ValueError {
            path: String::new(),
            reason,
        }
    }

    fn within(mut self, name: &str) -> ValueError {
        self.path = if self.path.is_empty() {
            name.to_string()
        } else if self.path.starts_with('[') {
            format!("{name}{}", self.path)
        } else {
            format!("{name}.{}", self.path)
        };
        self
    }
}

/// Why a record was not converted, before it is given its index.
pub(crate) type RecordFailure = (RecordErrorKind, String);

/// What a map key or value is read from.
#[derive(Clone, Copy)]
enum Input<'v> {
    Json(&'v Value),
    Key(&'v str),
}

impl<'v> Input<'v> {
    fn as_str(self) -> Option<&'v str> {
        match self {
            Input::Json(Value::String(s)) => Some(s),
            Input::Key(s) => Some(s),
            Input::Json(_) => None,
        }
    }

    /// The value as a `serde_json::Value` for the date and timestamp readers (a map key is
    /// copied; they are rare).
    fn value(self) -> Cow<'v, Value> {
        match self {
            Input::Json(v) => Cow::Borrowed(v),
            Input::Key(s) => Cow::Owned(Value::String(s.to_string())),
        }
    }
}

/// A short, safe quotation of an offending value for an error message.
fn excerpt(input: Input<'_>) -> String {
    let text = match input {
        Input::Json(Value::String(s)) => format!("string {s:?}"),
        Input::Key(s) => format!("string {s:?}"),
        Input::Json(Value::Number(n)) => format!("number {n}"),
        Input::Json(Value::Bool(b)) => format!("boolean {b}"),
        Input::Json(Value::Null) => "null".to_string(),
        Input::Json(Value::Array(_)) => "an array".to_string(),
        Input::Json(Value::Object(_)) => "an object".to_string(),
    };
    if text.chars().count() > limits::ERROR_VALUE_CHARS_MAX {
        let mut cut: String = text.chars().take(limits::ERROR_VALUE_CHARS_MAX).collect();
        cut.push('…');
        cut
    } else {
        text
    }
}

/// The type's name in messages: a nested type by its kind only.
fn type_name(column_type: &ColumnType) -> String {
    match column_type {
        ColumnType::Array(_) => "array".to_string(),
        ColumnType::Map(..) => "map".to_string(),
        ColumnType::Struct(_) => "struct".to_string(),
        other => other.to_string(),
    }
}

fn expected(column_type: &ColumnType, input: Input<'_>) -> ValueError {
    ValueError::new(format!(
        "expected {}, got {}",
        type_name(column_type),
        excerpt(input)
    ))
}

/// At most `n` characters of `s`.
fn truncate(s: Cow<'_, str>, n: u32) -> Cow<'_, str> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    match s.char_indices().nth(n) {
        None => s,
        Some((cut, _)) => match s {
            Cow::Borrowed(b) => Cow::Borrowed(&b[..cut]),
            Cow::Owned(mut o) => {
                o.truncate(cut);
                Cow::Owned(o)
            }
        },
    }
}

impl RecordReader {
    pub(crate) fn new(schema: &Schema, deserializer: &Deserializer) -> RecordReader {
        let fields: Vec<(&str, &ColumnType)> = schema
            .columns()
            .iter()
            .map(|c| (c.name.as_str(), &c.column_type))
            .collect();
        RecordReader {
            deserializer: deserializer.clone(),
            root: plan_struct(&fields, deserializer),
        }
    }

    /// Reads a record as far as the columns need, in one pass: for each JSON object in it,
    /// only the values of keys that feed a column are built (the others are skipped), kept in
    /// key order with the last of equal keys (what iterating a `serde_json::Map` gives), so
    /// that outcomes are those of [`Self::read`] over the record's documents. A record holding
    /// a document that is not an object is read the reference way, which words the error.
    /// (Unlike the reference, a number too large for a double in a key no column reads does not
    /// make the record a ParseError.)
    pub(crate) fn parse<'p>(&'p self, record: &[u8]) -> Result<ParsedRecord<'p>, RecordFailure> {
        let not_json =
            |e: serde_json::Error| (RecordErrorKind::ParseError, format!("not valid JSON: {e}"));
        let mut de = serde_json::Deserializer::from_slice(record);
        let mut docs = Vec::new();
        while de.end().is_err() {
            match (DocSeed { reader: self }).deserialize(&mut de) {
                Ok(Some(values)) => docs.push(ParsedDoc::Object(values)),
                Ok(None) => return self.parse_values(crate::writer::parse_record(record)?),
                Err(e) => return Err(not_json(e)),
            }
        }
        if docs.is_empty() {
            return Err((
                RecordErrorKind::ParseError,
                "the record holds no JSON".to_string(),
            ));
        }
        Ok(ParsedRecord(docs))
    }

    /// [`Self::parse`] from documents already parsed.
    fn parse_values<'p>(&'p self, values: Vec<Value>) -> Result<ParsedRecord<'p>, RecordFailure> {
        let docs = values
            .into_iter()
            .map(|value| match value {
                Value::Object(object) => ParsedDoc::Object(
                    object
                        .into_iter()
                        .filter_map(|(key, value)| {
                            let normalized = self.deserializer.normalize_key(&key);
                            let fields = self.root.index.get(normalized.as_ref())?;
                            Some((fields.as_slice(), value))
                        })
                        .collect(),
                ),
                other => ParsedDoc::NotObject(other),
            })
            .collect();
        Ok(ParsedRecord(docs))
    }

    /// The rows of a parsed record (one per JSON object in it).
    pub(crate) fn rows<'v>(
        &self,
        parsed: &'v ParsedRecord<'_>,
    ) -> Result<Vec<Vec<Cell<'v>>>, RecordFailure> {
        let plan = &self.root;
        let mut rows = Vec::with_capacity(parsed.0.len());
        for doc in &parsed.0 {
            let values = match doc {
                ParsedDoc::Object(values) => values,
                ParsedDoc::NotObject(value) => return Err(not_an_object(value)),
            };
            let mut cells = vec![Cell::Null; plan.types.len()];
            for (fields, value) in values {
                for &field in *fields {
                    cells[field] = self
                        .read_value(&plan.types[field], value)
                        .map_err(|e| malformed(e.within(&plan.names[field])))?;
                }
            }
            rows.push(cells);
        }
        Ok(rows)
    }

    /// Reads parsed JSON documents into their rows: the reference for [`Self::parse`] and
    /// [`Self::rows`], which must give the same outcome for every record.
    #[cfg(test)]
    pub(crate) fn read<'v>(
        &self,
        values: &'v [Value],
    ) -> Result<Vec<Vec<Cell<'v>>>, RecordFailure> {
        let mut rows = Vec::with_capacity(values.len());
        for value in values {
            let Value::Object(object) = value else {
                return Err(not_an_object(value));
            };
            rows.push(self.read_struct(&self.root, object).map_err(malformed)?);
        }
        Ok(rows)
    }

    fn read_struct<'v>(
        &self,
        plan: &StructPlan,
        object: &'v serde_json::Map<String, Value>,
    ) -> Result<Vec<Cell<'v>>, ValueError> {
        let mut cells = vec![Cell::Null; plan.types.len()];
        for (key, value) in object {
            let Some(fields) = plan
                .index
                .get(self.deserializer.normalize_key(key).as_ref())
            else {
                continue;
            };
            for &field in fields {
                cells[field] = self
                    .read_value(&plan.types[field], value)
                    .map_err(|e| e.within(&plan.names[field]))?;
            }
        }
        Ok(cells)
    }

    fn read_value<'v>(&self, plan: &TypePlan, value: &'v Value) -> Result<Cell<'v>, ValueError> {
        if value.is_null() {
            return Ok(Cell::Null);
        }
        match plan {
            TypePlan::Scalar(column_type) => self.read_scalar(column_type, Input::Json(value)),
            TypePlan::Array(element) => {
                let Value::Array(items) = value else {
                    return Err(ValueError::new(format!(
                        "expected array, got {}",
                        excerpt(Input::Json(value))
                    )));
                };
                let mut cells = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    cells.push(
                        self.read_value(element, item)
                            .map_err(|e| e.within(&format!("[{i}]")))?,
                    );
                }
                Ok(Cell::List(cells))
            }
            TypePlan::Map(key_type, value_plan) => {
                let Value::Object(object) = value else {
                    return Err(ValueError::new(format!(
                        "expected map (a JSON object), got {}",
                        excerpt(Input::Json(value))
                    )));
                };
                let mut entries = Vec::with_capacity(object.len());
                for (key, item) in object {
                    let where_ = || format!("[{key:?}]");
                    let key_cell = self.read_scalar(key_type, Input::Key(key)).map_err(|e| {
                        ValueError::new(format!("key: {}", e.reason)).within(&where_())
                    })?;
                    let value_cell = self
                        .read_value(value_plan, item)
                        .map_err(|e| e.within(&where_()))?;
                    entries.push((key_cell, value_cell));
                }
                Ok(Cell::Map(entries))
            }
            TypePlan::Struct(struct_plan) => {
                let Value::Object(object) = value else {
                    return Err(ValueError::new(format!(
                        "expected struct (a JSON object), got {}",
                        excerpt(Input::Json(value))
                    )));
                };
                Ok(Cell::Struct(self.read_struct(struct_plan, object)?))
            }
        }
    }

    fn read_scalar<'v>(
        &self,
        column_type: &ColumnType,
        input: Input<'v>,
    ) -> Result<Cell<'v>, ValueError> {
        match column_type {
            ColumnType::String => Ok(Cell::Str(as_text(input)?)),
            ColumnType::Varchar(n) | ColumnType::Char(n) => {
                Ok(Cell::Str(truncate(as_text(input)?, *n)))
            }
            ColumnType::Boolean => match input {
                Input::Json(Value::Bool(b)) => Ok(Cell::Bool(*b)),
                _ => match input.as_str() {
                    Some(s) if s.eq_ignore_ascii_case("true") => Ok(Cell::Bool(true)),
                    Some(s) if s.eq_ignore_ascii_case("false") => Ok(Cell::Bool(false)),
                    _ => Err(expected(column_type, input)),
                },
            },
            ColumnType::TinyInt => {
                integer(column_type, input, i64::from(i8::MIN), i64::from(i8::MAX))
            }
            ColumnType::SmallInt => {
                integer(column_type, input, i64::from(i16::MIN), i64::from(i16::MAX))
            }
            ColumnType::Int => {
                integer(column_type, input, i64::from(i32::MIN), i64::from(i32::MAX))
            }
            ColumnType::BigInt => integer(column_type, input, i64::MIN, i64::MAX),
            ColumnType::Float | ColumnType::Double => {
                let number = match input {
                    Input::Json(Value::Number(n)) => n.as_f64(),
                    _ => input.as_str().and_then(|s| s.trim().parse::<f64>().ok()),
                };
                let Some(number) = number else {
                    return Err(expected(column_type, input));
                };
                if *column_type == ColumnType::Float
                    && number.is_finite()
                    && number.abs() > f64::from(f32::MAX)
                {
                    return Err(ValueError::new(format!(
                        "{} is out of range for float",
                        excerpt(input)
                    )));
                }
                Ok(Cell::Float(number))
            }
            ColumnType::Decimal { precision, scale } => {
                let number;
                let text = match input {
                    Input::Json(Value::Number(n)) => {
                        number = n.to_string();
                        number.as_str()
                    }
                    _ => input.as_str().ok_or_else(|| expected(column_type, input))?,
                };
                crate::decimal::parse_decimal(text, *precision, *scale)
                    .map(Cell::Decimal)
                    .map_err(|reason| ValueError::new(format!("{}: {reason}", excerpt(input))))
            }
            ColumnType::Date => {
                let hive = match &self.deserializer {
                    Deserializer::Hive(serde) => Some(serde),
                    Deserializer::OpenX(_) => None,
                };
                timestamp::date(&input.value(), hive)
                    .map(Cell::Date)
                    .ok_or_else(|| {
                        ValueError::new(format!(
                            "cannot read {} as a date (yyyy-mm-dd)",
                            excerpt(input)
                        ))
                    })
            }
            ColumnType::Timestamp => {
                let value = input.value();
                let micros = match &self.deserializer {
                    Deserializer::OpenX(_) => timestamp::openx_timestamp(&value),
                    Deserializer::Hive(serde) => timestamp::hive_timestamp(serde, &value),
                };
                micros.map(Cell::Timestamp).ok_or_else(|| {
                    let how = match &self.deserializer {
                        Deserializer::OpenX(_) => {
                            "epoch seconds or milliseconds, or yyyy-MM-dd'T'HH:mm:ss[.S]Z or \
                             yyyy-MM-dd HH:mm:ss[.S]"
                                .to_string()
                        }
                        Deserializer::Hive(serde) => {
                            let mut formats = serde.timestamp_formats();
                            formats.push("yyyy-mm-dd hh:mm:ss[.f]");
                            formats.join(", ")
                        }
                    };
                    ValueError::new(format!(
                        "cannot read {} as a timestamp ({how})",
                        excerpt(input)
                    ))
                })
            }
            ColumnType::Binary => input
                .as_str()
                .map(|s| Cell::Bytes(s.as_bytes()))
                .ok_or_else(|| expected(column_type, input)),
            ColumnType::Array(_) | ColumnType::Map(..) | ColumnType::Struct(_) => {
                Err(expected(column_type, input))
            }
        }
    }
}

fn as_text<'v>(input: Input<'v>) -> Result<Cow<'v, str>, ValueError> {
    Ok(match input {
        Input::Key(s) => Cow::Borrowed(s),
        Input::Json(Value::String(s)) => Cow::Borrowed(s.as_str()),
        Input::Json(Value::Bool(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Input::Json(Value::Number(n)) => Cow::Owned(n.to_string()),
        Input::Json(other) => {
            Cow::Owned(serde_json::to_string(other).map_err(|e| ValueError::new(e.to_string()))?)
        }
    })
}

fn integer<'v>(
    column_type: &ColumnType,
    input: Input<'v>,
    min: i64,
    max: i64,
) -> Result<Cell<'v>, ValueError> {
    let out_of_range = || {
        ValueError::new(format!(
            "{} is out of range for {}",
            excerpt(input),
            type_name(column_type)
        ))
    };
    let value = match input {
        Input::Json(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                i
            } else if n.is_u64() {
                return Err(out_of_range());
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() != 0.0 || !f.is_finite() {
                    return Err(ValueError::new(format!(
                        "expected {}, got {} (not an integer)",
                        type_name(column_type),
                        excerpt(input)
                    )));
                }
                // 2^63 as f64; anything at or past it does not fit.
                if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                    return Err(out_of_range());
                }
                f as i64
            }
        }
        _ => {
            let text = input.as_str().ok_or_else(|| expected(column_type, input))?;
            let text = text.trim();
            match text.parse::<i64>() {
                Ok(i) => i,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
                    ) =>
                {
                    return Err(out_of_range())
                }
                Err(_) => return Err(expected(column_type, input)),
            }
        }
    };
    if value < min || value > max {
        return Err(out_of_range());
    }
    Ok(Cell::Int(value))
}

/// Normalized key → fields, sorted by key: a binary search of a few short keys is cheaper
/// than hashing every key of every record.
#[derive(Debug, Clone)]
struct KeyIndex(Vec<(String, Vec<usize>)>);

impl KeyIndex {
    fn get(&self, key: &str) -> Option<&Vec<usize>> {
        let i = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        self.0.get(i).map(|(_, fields)| fields)
    }
}

fn plan_struct(fields: &[(&str, &ColumnType)], deserializer: &Deserializer) -> StructPlan {
    let mut index: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (name, _)) in fields.iter().enumerate() {
        let key = deserializer.key_for_column(name);
        let normalized = if key == *name {
            deserializer.normalize_column(name).into_owned()
        } else {
            deserializer.normalize_key(key).into_owned()
        };
        index.entry(normalized).or_default().push(i);
    }
    StructPlan {
        names: fields.iter().map(|(n, _)| n.to_string()).collect(),
        types: fields
            .iter()
            .map(|(_, t)| plan_type(t, deserializer))
            .collect(),
        index: KeyIndex(index.into_iter().collect()),
    }
}

fn plan_type(column_type: &ColumnType, deserializer: &Deserializer) -> TypePlan {
    match column_type {
        ColumnType::Array(element) => TypePlan::Array(Box::new(plan_type(element, deserializer))),
        ColumnType::Map(key, value) => {
            TypePlan::Map((**key).clone(), Box::new(plan_type(value, deserializer)))
        }
        ColumnType::Struct(fields) => {
            let fields: Vec<(&str, &ColumnType)> = fields
                .iter()
                .map(|StructField { name, field_type }| (name.as_str(), field_type))
                .collect();
            TypePlan::Struct(plan_struct(&fields, deserializer))
        }
        scalar => TypePlan::Scalar(scalar.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deserializer::{HiveJsonSerDe, OpenXJsonSerDe};
    use serde_json::json;

    fn reader(columns: &[(&str, &str)], deserializer: Deserializer) -> RecordReader {
        RecordReader::new(
            &Schema::parse(columns.iter().copied()).unwrap(),
            &deserializer,
        )
    }

    fn row<'v>(reader: &RecordReader, value: &'v Value) -> Vec<Cell<'v>> {
        let mut rows = reader.read(std::slice::from_ref(value)).unwrap();
        assert_eq!(rows.len(), 1);
        rows.remove(0)
    }

    fn failure(reader: &RecordReader, value: &Value) -> RecordFailure {
        reader.read(std::slice::from_ref(value)).unwrap_err()
    }

    #[test]
    fn openx_matches_keys_case_insensitively_by_default() {
        let r = reader(
            &[("userid", "bigint"), ("Name", "string")],
            Deserializer::default(),
        );
        let v = json!({"UserId": 7, "NAME": "x", "other": 1});
        assert_eq!(row(&r, &v), vec![Cell::Int(7), Cell::Str("x".into())]);

        let sensitive = Deserializer::OpenX(OpenXJsonSerDe {
            case_insensitive: false,
            ..OpenXJsonSerDe::default()
        });
        let r = reader(&[("userid", "bigint"), ("Name", "string")], sensitive);
        assert_eq!(row(&r, &v), vec![Cell::Null, Cell::Null]);
        let exact = json!({"userid": 7, "Name": "x"});
        assert_eq!(row(&r, &exact), vec![Cell::Int(7), Cell::Str("x".into())]);
    }

    #[test]
    fn openx_mappings_and_dots() {
        let mut serde = OpenXJsonSerDe {
            convert_dots_in_json_keys_to_underscores: true,
            ..OpenXJsonSerDe::default()
        };
        serde
            .column_to_json_key_mappings
            .insert("ts".into(), "timestamp".into());
        let r = reader(
            &[
                ("ts", "bigint"),
                ("a_b", "int"),
                ("timestamp", "bigint"),
                ("s", "struct<x_y:int>"),
            ],
            Deserializer::OpenX(serde),
        );
        let v = json!({"Timestamp": 5, "a.b": 1, "s": {"X.Y": 2}});
        assert_eq!(
            row(&r, &v),
            vec![
                Cell::Int(5),
                Cell::Int(1),
                Cell::Int(5),
                Cell::Struct(vec![Cell::Int(2)])
            ]
        );
        // Without the option, dotted keys do not match.
        let r = reader(&[("a_b", "int")], Deserializer::default());
        assert_eq!(row(&r, &json!({"a.b": 1})), vec![Cell::Null]);
    }

    #[test]
    fn missing_keys_and_nulls_are_nulls() {
        let r = reader(
            &[("a", "int"), ("b", "struct<c:string>"), ("d", "array<int>")],
            Deserializer::default(),
        );
        assert_eq!(
            row(&r, &json!({"b": {}, "d": [1, null]})),
            vec![
                Cell::Null,
                Cell::Struct(vec![Cell::Null]),
                Cell::List(vec![Cell::Int(1), Cell::Null])
            ]
        );
        assert_eq!(
            row(&r, &json!({"a": null, "b": null, "d": null})),
            vec![Cell::Null, Cell::Null, Cell::Null]
        );
    }

    #[test]
    fn scalar_conversions() {
        let r = reader(
            &[
                ("s", "string"),
                ("v", "varchar(3)"),
                ("c", "char(2)"),
                ("b", "boolean"),
                ("t", "tinyint"),
                ("i", "int"),
                ("f", "float"),
                ("d", "double"),
                ("m", "decimal(6,2)"),
                ("dt", "date"),
                ("bin", "binary"),
            ],
            Deserializer::default(),
        );
        let v = json!({"s": {"x": [1, true]}, "v": "héllo", "c": 12345, "b": "TRUE", "t": "-128",
                       "i": 3.0, "f": "1.5", "d": 2, "m": 1234.005, "dt": "2018-02-07",
                       "bin": "hi"});
        assert_eq!(
            row(&r, &v),
            vec![
                Cell::Str(r#"{"x":[1,true]}"#.into()),
                Cell::Str("hél".into()),
                Cell::Str("12".into()),
                Cell::Bool(true),
                Cell::Int(-128),
                Cell::Int(3),
                Cell::Float(1.5),
                Cell::Float(2.0),
                Cell::Decimal(123_401),
                Cell::Date(17_569),
                Cell::Bytes(b"hi"),
            ]
        );
        let v = json!({"s": 1.5, "b": false, "i": "  42 "});
        let cells = row(&r, &v);
        assert_eq!(cells[0], Cell::Str("1.5".into()));
        assert_eq!(cells[3], Cell::Bool(false));
        assert_eq!(cells[5], Cell::Int(42));
    }

    #[test]
    fn integer_ranges_at_their_limits() {
        let r = reader(
            &[
                ("t", "tinyint"),
                ("s", "smallint"),
                ("i", "int"),
                ("b", "bigint"),
            ],
            Deserializer::default(),
        );
        let at = json!({"t": 127, "s": -32768, "i": 2147483647, "b": i64::MIN});
        assert_eq!(
            row(&r, &at),
            vec![
                Cell::Int(127),
                Cell::Int(-32768),
                Cell::Int(2_147_483_647),
                Cell::Int(i64::MIN)
            ]
        );
        for (column, past) in [
            ("t", json!(128)),
            ("t", json!(-129)),
            ("s", json!(32768)),
            ("i", json!(2_147_483_648i64)),
            ("i", json!("-2147483649")),
            ("b", json!(9_223_372_036_854_775_808u64)),
            ("b", json!("9223372036854775808")),
            ("b", json!(1e19)),
        ] {
            let (kind, message) = failure(&r, &json!({ column: past }));
            assert_eq!(kind, RecordErrorKind::MalformedData);
            assert!(
                message.contains("out of range"),
                "{column} {past}: {message}"
            );
            assert!(
                message.starts_with(&format!("column `{column}`")),
                "{message}"
            );
        }
    }

    #[test]
    fn values_that_do_not_fit() {
        let r = reader(
            &[
                ("i", "int"),
                ("b", "boolean"),
                ("f", "float"),
                ("m", "decimal(3,1)"),
                ("dt", "date"),
                ("ts", "timestamp"),
                ("a", "array<int>"),
                ("st", "struct<x:int>"),
                ("mp", "map<int,string>"),
                ("bin", "binary"),
            ],
            Deserializer::default(),
        );
        let cases = [
            (
                json!({"i": 1.5}),
                "column `i`: expected int, got number 1.5 (not an integer)",
            ),
            (
                json!({"i": "x"}),
                "column `i`: expected int, got string \"x\"",
            ),
            (json!({"i": [1]}), "column `i`: expected int, got an array"),
            (
                json!({"b": 1}),
                "column `b`: expected boolean, got number 1",
            ),
            (
                json!({"f": 1e39}),
                "column `f`: number 1e+39 is out of range for float",
            ),
            (
                json!({"m": 100}),
                "column `m`: number 100: out of range for decimal(3,1)",
            ),
            (
                json!({"dt": "07/02/2018"}),
                "column `dt`: cannot read string \"07/02/2018\" as a date",
            ),
            (
                json!({"ts": "soon"}),
                "column `ts`: cannot read string \"soon\" as a timestamp",
            ),
            (
                json!({"a": {"x": 1}}),
                "column `a`: expected array, got an object",
            ),
            (
                json!({"a": [1, "x"]}),
                "column `a[1]`: expected int, got string \"x\"",
            ),
            (
                json!({"st": 1}),
                "column `st`: expected struct (a JSON object), got number 1",
            ),
            (
                json!({"st": {"x": true}}),
                "column `st.x`: expected int, got boolean true",
            ),
            (
                json!({"mp": {"k": "v"}}),
                "column `mp[\"k\"]`: key: expected int, got string \"k\"",
            ),
            (
                json!({"bin": 5}),
                "column `bin`: expected binary, got number 5",
            ),
        ];
        for (value, want) in cases {
            let (kind, message) = failure(&r, &value);
            assert_eq!(kind, RecordErrorKind::MalformedData, "{value}");
            assert!(message.starts_with(want), "{value}: {message}");
        }
        let long = "x".repeat(1000);
        let (_, message) = failure(&r, &json!({ "i": long }));
        assert!(message.chars().count() < 120, "{message}");
        let (kind, _) = failure(&r, &json!([1]));
        assert_eq!(kind, RecordErrorKind::ParseError);
    }

    #[test]
    fn maps_with_typed_keys() {
        let r = reader(&[("m", "map<int,array<string>>")], Deserializer::default());
        assert_eq!(
            row(&r, &json!({"m": {"1": ["a"], "2": null}})),
            vec![Cell::Map(vec![
                (Cell::Int(1), Cell::List(vec![Cell::Str("a".into())])),
                (Cell::Int(2), Cell::Null)
            ])]
        );
        // Map keys are data: never lowercased.
        let r = reader(&[("m", "map<string,int>")], Deserializer::default());
        assert_eq!(
            row(&r, &json!({"M": {"KeY": 1}})),
            vec![Cell::Map(vec![(Cell::Str("KeY".into()), Cell::Int(1))])]
        );
    }

    #[test]
    fn hive_timestamps_use_their_formats() {
        let hive = Deserializer::Hive(HiveJsonSerDe::new(&["dd/MM/yyyy HH:mm:ss".into()]).unwrap());
        let r = reader(&[("ts", "timestamp"), ("Up", "int")], hive);
        assert_eq!(
            row(&r, &json!({"ts": "07/02/2018 15:13:01", "UP": 1})),
            vec![Cell::Timestamp(1_518_016_381_000_000), Cell::Int(1)]
        );
        let (_, message) = failure(&r, &json!({"ts": 1_518_016_381_000i64}));
        assert!(
            message.contains("dd/MM/yyyy HH:mm:ss, yyyy-mm-dd hh:mm:ss[.f]"),
            "{message}"
        );
    }
}

/// The records' reading as the writer does it (`parse_record`, `parse`, `rows`) against the
/// reference (every document parsed into a `serde_json::Value`, then `read`): the same rows or
/// the same error for every generated record.
#[cfg(test)]
mod parity {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;
    use serde_json::Value;

    use super::RecordReader;
    use crate::deserializer::{Deserializer, HiveJsonSerDe, OpenXJsonSerDe};
    use crate::error::RecordErrorKind;
    use crate::schema::Schema;

    const KEYS: &[&str] = &[
        "id",
        "ID",
        "Id",
        "name",
        "Name",
        "NAME",
        "n\\u0061me",
        "user.id",
        "user_id",
        "ts",
        "tags",
        "m",
        "s",
        "other",
        "Other",
        "x.y",
        "",
    ];
    const VALUES: &[&str] = &[
        "1",
        "-5",
        "3.5",
        "0",
        "12345678901234567890",
        "1e3",
        "\"text\"",
        "\"12\"",
        "\"true\"",
        "true",
        "false",
        "null",
        "[1,2]",
        "[1,\"x\"]",
        "[]",
        "{\"a\":1}",
        "{\"A\":\"2\",\"a\":3}",
        "{\"Name\":\"x\"}",
        "\"2024-01-02 03:04:05\"",
        "\"2024-01-02T03:04:05.123Z\"",
        "1704164645123",
        "\"\\u00e9t\\u00e9\"",
        "{}",
        "{\"k\":{\"a\":1}}",
    ];

    fn reader(deserializer: Deserializer) -> RecordReader {
        let schema = Schema::parse([
            ("id", "int"),
            ("name", "string"),
            ("user_id", "bigint"),
            ("ts", "timestamp"),
            ("tags", "array<int>"),
            ("m", "map<string,int>"),
            ("s", "struct<a:int,name:string>"),
            ("x_y", "double"),
        ])
        .unwrap();
        RecordReader::new(&schema, &deserializer)
    }

    fn object() -> impl Strategy<Value = String> {
        prop::collection::vec((0..KEYS.len(), 0..VALUES.len()), 0..7).prop_map(|members| {
            let body: Vec<String> = members
                .into_iter()
                .map(|(k, v)| format!("\"{}\":{}", KEYS[k], VALUES[v]))
                .collect();
            format!("{{{}}}", body.join(","))
        })
    }

    fn document() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => object(),
            1 => (0..VALUES.len()).prop_map(|v| VALUES[v].to_string()),
        ]
    }

    fn record() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(document(), 0..4),
            prop::sample::select(vec!["", " ", "\n", "\r\n"]),
            prop::sample::select(vec!["", "", "", " x", "}", "{\"a\":", ","]),
        )
            .prop_map(|(docs, sep, tail)| format!("{}{tail}", docs.join(sep)))
    }

    /// The reference: `serde_json::Value` documents read by `read`.
    fn reference(r: &RecordReader, record: &[u8]) -> String {
        let mut values = Vec::new();
        for v in serde_json::Deserializer::from_slice(record).into_iter::<Value>() {
            match v {
                Ok(v) => values.push(v),
                Err(e) => return format!("{:?}: not valid JSON: {e}", RecordErrorKind::ParseError),
            }
        }
        if values.is_empty() {
            return format!(
                "{:?}: the record holds no JSON",
                RecordErrorKind::ParseError
            );
        }
        match r.read(&values) {
            Ok(rows) => format!("{rows:?}"),
            Err((kind, message)) => format!("{kind:?}: {message}"),
        }
    }

    fn writer_path(r: &RecordReader, record: &[u8]) -> String {
        let parsed = match crate::writer::check_size(record).and_then(|()| r.parse(record)) {
            Ok(p) => p,
            Err((kind, message)) => return format!("{kind:?}: {message}"),
        };
        match r.rows(&parsed) {
            Ok(rows) => format!("{rows:?}"),
            Err((kind, message)) => format!("{kind:?}: {message}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn the_writer_reads_records_as_the_reference_does(record in record(), hive in any::<bool>(), dots in any::<bool>(), insensitive in any::<bool>()) {
            let r = reader(if hive {
                Deserializer::Hive(HiveJsonSerDe::new(&["millis".to_string()]).unwrap())
            } else {
                Deserializer::OpenX(OpenXJsonSerDe {
                    case_insensitive: insensitive,
                    convert_dots_in_json_keys_to_underscores: dots,
                    ..OpenXJsonSerDe::default()
                })
            });
            prop_assert_eq!(writer_path(&r, record.as_bytes()), reference(&r, record.as_bytes()), "record: {}", record);
        }
    }
}
