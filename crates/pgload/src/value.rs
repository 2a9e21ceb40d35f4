//! One value of a record converted for its column ([`convert`]) into a [`Cell`], which writes
//! PostgreSQL's binary form of the column's type.
//!
//! How values are read, by column type (Redshift's COPY rules where it has them):
//! - every type: a missing key or field, JSON `null`, and a delimited field equal to `NULL AS`
//!   load NULL; an empty or blank field loads NULL into every non-character column.
//! - character (`text`, `varchar(n)`, `char(n)`): JSON strings as their text, other JSON
//!   values as their JSON text (numbers as written, `true`, nested objects and arrays);
//!   `EMPTYASNULL`, `BLANKSASNULL`, `TRIMBLANKS`, and `TRUNCATECOLUMNS` (else a value longer
//!   than `n` characters fails its record). A NUL character fails its record (PostgreSQL
//!   text cannot hold it).
//! - `smallint` / `integer` / `bigint`: a number with an integer value (`12`, `12.0`, `1e3`),
//!   in range. `real` / `double precision`: any number, `NaN`, `Infinity`. `numeric`: the
//!   number's exact digits (the server rounds to the column's scale).
//! - `boolean`: JSON `true` / `false`, and `t`, `true`, `y`, `yes`, `on`, `1` and their
//!   opposites (any case).
//! - `timestamp` / `timestamptz`: ISO 8601 text (see `timestamp.rs`), or with
//!   `TIMEFORMAT 'epochsecs'` / `'epochmillisecs'` a number (or numeric string). A
//!   `timestamptz` without an offset is UTC; a `timestamp` keeps the wall-clock time written
//!   (an offset is dropped, as PostgreSQL drops it). `date`: ISO 8601 (a timestamp's date
//!   part), or an epoch under those TIMEFORMATs.
//! - `json` / `jsonb`: any JSON value as written (a JSON string stays a JSON string);
//!   delimited text must be valid JSON.
//! - `uuid`: 32 hex digits, with hyphens or braces.

use std::borrow::Cow;
use std::error::Error;

use bytes::{BufMut, BytesMut};
use serde_json::value::RawValue;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use crate::error::quote_value;
use crate::numeric::Decimal;
use crate::options::{CopyOptions, TimeFormat};
use crate::table::{Kind, TargetColumn};
use crate::timestamp;

/// A value ready for the binary COPY.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Text(String),
    Numeric(Decimal),
    /// Microseconds since 2000-01-01 (`timestamp`, `timestamptz`).
    Micros(i64),
    /// Days since 2000-01-01 (`date`).
    Days(i32),
    Json(String),
    Jsonb(String),
    Uuid([u8; 16]),
}

impl Cell {
    /// Bytes this value holds in memory beyond the enum itself (for batch sizing).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Cell::Text(s) | Cell::Json(s) | Cell::Jsonb(s) => s.len(),
            Cell::Numeric(_) => 32,
            _ => 0,
        }
    }
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        // The plan pairs each column's kind with the cell it converts to; a mismatch would be
        // a bug that corrupts the row, so it is refused rather than written.
        let fits = matches!(
            (self, Kind::of(ty)),
            (Cell::Null, _)
                | (Cell::Bool(_), Some(Kind::Bool))
                | (Cell::I16(_), Some(Kind::Int2))
                | (Cell::I32(_), Some(Kind::Int4))
                | (Cell::I64(_), Some(Kind::Int8))
                | (Cell::F32(_), Some(Kind::Float4))
                | (Cell::F64(_), Some(Kind::Float8))
                | (Cell::Text(_), Some(Kind::Text))
                | (Cell::Numeric(_), Some(Kind::Numeric))
                | (Cell::Micros(_), Some(Kind::Timestamp | Kind::TimestampTz))
                | (Cell::Days(_), Some(Kind::Date))
                | (Cell::Json(_), Some(Kind::Json))
                | (Cell::Jsonb(_), Some(Kind::Jsonb))
                | (Cell::Uuid(_), Some(Kind::Uuid))
        );
        if !fits {
            return Err(format!("a {self:?} value cannot be written as {ty}").into());
        }
        match self {
            Cell::Null => return Ok(IsNull::Yes),
            Cell::Bool(v) => out.put_u8(u8::from(*v)),
            Cell::I16(v) => out.put_i16(*v),
            Cell::I32(v) => out.put_i32(*v),
            Cell::I64(v) => out.put_i64(*v),
            Cell::F32(v) => out.put_f32(*v),
            Cell::F64(v) => out.put_f64(*v),
            Cell::Text(s) | Cell::Json(s) => out.put_slice(s.as_bytes()),
            Cell::Jsonb(s) => {
                // jsonb's binary form: a version byte, then the JSON text.
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            }
            Cell::Numeric(d) => d.encode(out),
            Cell::Micros(v) => out.put_i64(*v),
            Cell::Days(v) => out.put_i32(*v),
            Cell::Uuid(b) => out.put_slice(b),
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        Kind::of(ty).is_some()
    }

    to_sql_checked!();
}

/// The COPY options that decide how a value converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueRules {
    pub empty_as_null: bool,
    pub blanks_as_null: bool,
    pub trim_blanks: bool,
    pub truncate_columns: bool,
    pub time_format: TimeFormat,
}

impl ValueRules {
    pub(crate) fn new(options: &CopyOptions) -> ValueRules {
        ValueRules {
            empty_as_null: options.empty_as_null,
            blanks_as_null: options.blanks_as_null,
            trim_blanks: options.trim_blanks,
            truncate_columns: options.truncate_columns,
            time_format: options.time_format,
        }
    }
}

/// One field of a record, as read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    /// A JSON member's value, as its source text.
    Json(&'a RawValue),
    /// A delimited field (quotes and escapes already removed).
    Text(&'a str),
}

/// Converts one field for its column; `Err` is the reason, for a [`crate::RecordError`].
pub(crate) fn convert(
    field: Option<Field<'_>>,
    column: &TargetColumn,
    rules: &ValueRules,
) -> Result<Cell, String> {
    let cell = match field {
        None => Cell::Null,
        Some(Field::Json(raw)) => from_json(raw.get(), column, rules)?,
        Some(Field::Text(text)) => from_text(text, column, rules)?,
    };
    if cell == Cell::Null && column.not_null {
        return Err("NULL (or no value) for a NOT NULL column".to_string());
    }
    Ok(cell)
}

fn from_json(raw: &str, column: &TargetColumn, rules: &ValueRules) -> Result<Cell, String> {
    let first = raw.as_bytes().first().copied().unwrap_or(b'n');
    if first == b'n' {
        return Ok(Cell::Null);
    }
    match column.kind {
        Kind::Json => return Ok(Cell::Json(raw.to_string())),
        Kind::Jsonb => return Ok(Cell::Jsonb(raw.to_string())),
        _ => {}
    }
    match first {
        b'"' => {
            let text: Cow<'_, str> =
                serde_json::from_str(raw).map_err(|e| format!("bad JSON string: {e}"))?;
            from_text(&text, column, rules)
        }
        b't' | b'f' => match column.kind {
            Kind::Bool => Ok(Cell::Bool(first == b't')),
            Kind::Text => text_cell(raw, column, rules),
            _ => Err(format!(
                "a JSON boolean cannot be loaded into a {} column",
                column.type_name
            )),
        },
        b'{' | b'[' => match column.kind {
            // Redshift loads a nested value into a character column as its JSON text.
            Kind::Text => text_cell(raw, column, rules),
            _ => Err(format!(
                "a JSON {} cannot be loaded into a {} column (use json, jsonb or a character \
                 type)",
                if first == b'{' { "object" } else { "array" },
                column.type_name
            )),
        },
        // A number: its text, read by the column's type.
        _ => match column.kind {
            Kind::Timestamp | Kind::TimestampTz | Kind::Date
                if rules.time_format == TimeFormat::Iso =>
            {
                Err(format!(
                    "{} is a number; set TIMEFORMAT 'epochsecs' or 'epochmillisecs' to load \
                     epoch times",
                    quote_value(raw)
                ))
            }
            _ => from_text(raw, column, rules),
        },
    }
}

/// A character column's value: the null rules, TRIMBLANKS, the length check or TRUNCATECOLUMNS.
fn text_cell(text: &str, column: &TargetColumn, rules: &ValueRules) -> Result<Cell, String> {
    if (rules.empty_as_null && text.is_empty())
        || (rules.blanks_as_null && !text.is_empty() && text.trim().is_empty())
    {
        return Ok(Cell::Null);
    }
    let text = if rules.trim_blanks {
        text.trim_end()
    } else {
        text
    };
    if text.contains('\0') {
        return Err("the value contains a NUL character, which PostgreSQL text cannot hold".into());
    }
    if let Some(max) = column.chars_max {
        let chars = text.chars().count();
        if chars > max {
            if rules.truncate_columns {
                return Ok(Cell::Text(text.chars().take(max).collect()));
            }
            return Err(format!(
                "{} has {chars} characters; the column holds {max} (TRUNCATECOLUMNS cuts it)",
                quote_value(text)
            ));
        }
    }
    Ok(Cell::Text(text.to_string()))
}

fn from_text(text: &str, column: &TargetColumn, rules: &ValueRules) -> Result<Cell, String> {
    if column.kind == Kind::Text {
        return text_cell(text, column, rules);
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        // Redshift: empty and blank fields load NULL into every non-character column.
        return Ok(Cell::Null);
    }
    let bad = |what: &str| format!("{} is not {what}", quote_value(text));
    match column.kind {
        Kind::Text => text_cell(text, column, rules),
        Kind::Int2 => {
            let v = integer(trimmed).ok_or_else(|| bad("an integer"))?;
            i16::try_from(v)
                .map(Cell::I16)
                .map_err(|_| format!("{} is out of range for smallint", quote_value(text)))
        }
        Kind::Int4 => {
            let v = integer(trimmed).ok_or_else(|| bad("an integer"))?;
            i32::try_from(v)
                .map(Cell::I32)
                .map_err(|_| format!("{} is out of range for integer", quote_value(text)))
        }
        Kind::Int8 => integer(trimmed)
            .map(Cell::I64)
            .ok_or_else(|| bad("an integer in bigint's range")),
        Kind::Float4 => {
            let v: f32 = trimmed.parse().map_err(|_| bad("a number"))?;
            if v.is_infinite() && !is_infinity_literal(trimmed) {
                return Err(format!("{} is out of range for real", quote_value(text)));
            }
            Ok(Cell::F32(v))
        }
        Kind::Float8 => {
            let v: f64 = trimmed.parse().map_err(|_| bad("a number"))?;
            if v.is_infinite() && !is_infinity_literal(trimmed) {
                return Err(format!(
                    "{} is out of range for double precision",
                    quote_value(text)
                ));
            }
            Ok(Cell::F64(v))
        }
        Kind::Numeric => Decimal::parse(trimmed).map(Cell::Numeric),
        Kind::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => Ok(Cell::Bool(true)),
            "f" | "false" | "n" | "no" | "off" | "0" => Ok(Cell::Bool(false)),
            _ => Err(bad("a boolean")),
        },
        Kind::Timestamp | Kind::TimestampTz => {
            let micros = match rules.time_format {
                TimeFormat::Iso => {
                    let t = timestamp::parse_timestamp(trimmed)?;
                    if column.kind == Kind::TimestampTz {
                        t.utc_micros()
                    } else {
                        t.wall_micros
                    }
                }
                TimeFormat::EpochSecs => timestamp::parse_epoch(trimmed, false)?,
                TimeFormat::EpochMillisecs => timestamp::parse_epoch(trimmed, true)?,
            };
            Ok(Cell::Micros(micros))
        }
        Kind::Date => {
            let epoch_millis = match rules.time_format {
                TimeFormat::Iso => None,
                TimeFormat::EpochSecs => Some(false),
                TimeFormat::EpochMillisecs => Some(true),
            };
            match epoch_millis {
                Some(millis) if Decimal::parse(trimmed).is_ok() => {
                    let micros = timestamp::parse_epoch(trimmed, millis)?;
                    let days = micros.div_euclid(86_400_000_000);
                    i32::try_from(days)
                        .map(Cell::Days)
                        .map_err(|_| bad("a date in range"))
                }
                _ => timestamp::parse_date(trimmed).map(Cell::Days),
            }
        }
        Kind::Json | Kind::Jsonb => {
            serde_json::from_str::<serde::de::IgnoredAny>(trimmed)
                .map_err(|e| format!("{} is not JSON: {e}", quote_value(text)))?;
            Ok(if column.kind == Kind::Json {
                Cell::Json(trimmed.to_string())
            } else {
                Cell::Jsonb(trimmed.to_string())
            })
        }
        Kind::Uuid => uuid(trimmed).map(Cell::Uuid).ok_or_else(|| bad("a UUID")),
    }
}

fn is_infinity_literal(text: &str) -> bool {
    let t = text.trim_start_matches(['+', '-']);
    t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity")
}

/// An integer's value: plain digits, or a decimal whose value is whole (`12.0`, `1e3`).
fn integer(text: &str) -> Option<i64> {
    if let Ok(v) = text.parse::<i64>() {
        return Some(v);
    }
    let d = Decimal::parse(text).ok()?;
    if d.is_integer() {
        d.shifted_to_integer(0)
    } else {
        None
    }
}

/// 32 hex digits, optionally with hyphens and surrounding braces.
fn uuid(text: &str) -> Option<[u8; 16]> {
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    let mut out = [0u8; 16];
    let mut nibbles = 0usize;
    for c in inner.chars() {
        if c == '-' {
            continue;
        }
        let v = c.to_digit(16)? as u8;
        if nibbles >= 32 {
            return None;
        }
        out[nibbles / 2] |= if nibbles.is_multiple_of(2) { v << 4 } else { v };
        nibbles += 1;
    }
    (nibbles == 32).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(kind: Kind, pg_type: Type) -> TargetColumn {
        TargetColumn {
            name: "c".into(),
            kind,
            pg_type: pg_type.clone(),
            not_null: false,
            chars_max: None,
            type_name: pg_type.name().to_string(),
        }
    }

    fn rules() -> ValueRules {
        ValueRules::new(&CopyOptions::default())
    }

    fn json(raw: &str, kind: Kind, ty: Type) -> Result<Cell, String> {
        let raw: Box<RawValue> = serde_json::from_str(raw).unwrap();
        convert(Some(Field::Json(&raw)), &column(kind, ty), &rules())
    }

    fn text(value: &str, kind: Kind, ty: Type) -> Result<Cell, String> {
        convert(Some(Field::Text(value)), &column(kind, ty), &rules())
    }

    #[test]
    fn json_values_by_type() {
        assert_eq!(
            json("\"hi\"", Kind::Text, Type::TEXT),
            Ok(Cell::Text("hi".into()))
        );
        assert_eq!(
            json("12.50", Kind::Text, Type::TEXT),
            Ok(Cell::Text("12.50".into()))
        );
        assert_eq!(
            json("{\"a\": [1]}", Kind::Text, Type::TEXT),
            Ok(Cell::Text("{\"a\": [1]}".into()))
        );
        assert_eq!(
            json("true", Kind::Text, Type::TEXT),
            Ok(Cell::Text("true".into()))
        );
        assert_eq!(json("null", Kind::Int4, Type::INT4), Ok(Cell::Null));
        assert_eq!(json("42", Kind::Int4, Type::INT4), Ok(Cell::I32(42)));
        assert_eq!(json("\"42\"", Kind::Int2, Type::INT2), Ok(Cell::I16(42)));
        assert_eq!(json("1e3", Kind::Int8, Type::INT8), Ok(Cell::I64(1000)));
        assert_eq!(json("\"\"", Kind::Int8, Type::INT8), Ok(Cell::Null));
        assert!(json("1.5", Kind::Int8, Type::INT8).is_err());
        assert!(json("40000", Kind::Int2, Type::INT2)
            .unwrap_err()
            .contains("smallint"));
        assert_eq!(json("1.5", Kind::Float8, Type::FLOAT8), Ok(Cell::F64(1.5)));
        assert!(json("1e40", Kind::Float4, Type::FLOAT4).is_err());
        assert_eq!(
            json("\"NaN\"", Kind::Float4, Type::FLOAT4)
                .map(|c| matches!(c, Cell::F32(v) if v.is_nan())),
            Ok(true)
        );
        assert_eq!(
            json(
                "123456789012345678901234567890.5",
                Kind::Numeric,
                Type::NUMERIC
            ),
            Ok(Cell::Numeric(
                Decimal::parse("123456789012345678901234567890.5").unwrap()
            ))
        );
        assert_eq!(json("false", Kind::Bool, Type::BOOL), Ok(Cell::Bool(false)));
        assert_eq!(
            json("\"yes\"", Kind::Bool, Type::BOOL),
            Ok(Cell::Bool(true))
        );
        assert!(json("2", Kind::Bool, Type::BOOL).is_err());
        assert!(json("true", Kind::Int4, Type::INT4).is_err());
        assert!(json("[1]", Kind::Int4, Type::INT4)
            .unwrap_err()
            .contains("JSON array"));
        assert_eq!(
            json("{\"a\":1}", Kind::Jsonb, Type::JSONB),
            Ok(Cell::Jsonb("{\"a\":1}".into()))
        );
        assert_eq!(
            json("\"s\"", Kind::Json, Type::JSON),
            Ok(Cell::Json("\"s\"".into()))
        );
        assert_eq!(
            json(
                "\"2000-01-01T00:00:01+01:00\"",
                Kind::TimestampTz,
                Type::TIMESTAMPTZ
            ),
            Ok(Cell::Micros(1_000_000 - 3_600_000_000))
        );
        assert_eq!(
            json(
                "\"2000-01-01T00:00:01+01:00\"",
                Kind::Timestamp,
                Type::TIMESTAMP
            ),
            Ok(Cell::Micros(1_000_000))
        );
        assert!(json("946684800", Kind::Timestamp, Type::TIMESTAMP)
            .unwrap_err()
            .contains("epochsecs"));
        assert_eq!(
            json("\"2000-01-02\"", Kind::Date, Type::DATE),
            Ok(Cell::Days(1))
        );
        assert_eq!(
            json(
                "\"{00112233-4455-6677-8899-AABBCCDDEEFF}\"",
                Kind::Uuid,
                Type::UUID
            ),
            Ok(Cell::Uuid([
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ]))
        );
        assert!(json("\"0011\"", Kind::Uuid, Type::UUID).is_err());
    }

    #[test]
    fn epochs() {
        let mut r = rules();
        r.time_format = TimeFormat::EpochMillisecs;
        let raw: Box<RawValue> = serde_json::from_str("946684801000").unwrap();
        let c = column(Kind::TimestampTz, Type::TIMESTAMPTZ);
        assert_eq!(
            convert(Some(Field::Json(&raw)), &c, &r),
            Ok(Cell::Micros(1_000_000))
        );
        let c = column(Kind::Date, Type::DATE);
        assert_eq!(
            convert(Some(Field::Text("946771200000")), &c, &r),
            Ok(Cell::Days(1))
        );
        assert_eq!(
            convert(Some(Field::Text("2000-01-03")), &c, &r),
            Ok(Cell::Days(2))
        );
    }

    #[test]
    fn character_rules() {
        let mut c = column(Kind::Text, Type::VARCHAR);
        c.chars_max = Some(3);
        let mut r = rules();
        assert_eq!(
            convert(Some(Field::Text("abc")), &c, &r),
            Ok(Cell::Text("abc".into()))
        );
        assert!(convert(Some(Field::Text("abcd")), &c, &r)
            .unwrap_err()
            .contains("holds 3"));
        assert_eq!(
            convert(Some(Field::Text("")), &c, &r),
            Ok(Cell::Text(String::new()))
        );
        assert_eq!(
            convert(Some(Field::Text("  ")), &c, &r),
            Ok(Cell::Text("  ".into()))
        );
        r.truncate_columns = true;
        r.empty_as_null = true;
        r.blanks_as_null = true;
        r.trim_blanks = true;
        assert_eq!(
            convert(Some(Field::Text("abcd")), &c, &r),
            Ok(Cell::Text("abc".into()))
        );
        assert_eq!(
            convert(Some(Field::Text("ab  ")), &c, &r),
            Ok(Cell::Text("ab".into()))
        );
        assert_eq!(convert(Some(Field::Text("")), &c, &r), Ok(Cell::Null));
        assert_eq!(convert(Some(Field::Text("  ")), &c, &r), Ok(Cell::Null));
        assert!(convert(Some(Field::Text("a\0")), &c, &r).is_err());
    }

    #[test]
    fn not_null_columns_refuse_null() {
        let mut c = column(Kind::Int4, Type::INT4);
        c.not_null = true;
        assert!(convert(None, &c, &rules())
            .unwrap_err()
            .contains("NOT NULL"));
        assert!(convert(Some(Field::Text("")), &c, &rules()).is_err());
    }

    #[test]
    fn delimited_text_by_type() {
        assert_eq!(text(" 7 ", Kind::Int4, Type::INT4), Ok(Cell::I32(7)));
        assert_eq!(text("", Kind::Int4, Type::INT4), Ok(Cell::Null));
        assert_eq!(
            text("{\"k\":1}", Kind::Json, Type::JSON),
            Ok(Cell::Json("{\"k\":1}".into()))
        );
        assert!(text("{nope", Kind::Jsonb, Type::JSONB).is_err());
        assert_eq!(text("off", Kind::Bool, Type::BOOL), Ok(Cell::Bool(false)));
        assert!(text("maybe", Kind::Bool, Type::BOOL).is_err());
    }

    #[test]
    fn cells_refuse_the_wrong_type() {
        let mut out = BytesMut::new();
        assert!(Cell::I32(1).to_sql(&Type::INT8, &mut out).is_err());
        assert!(Cell::I64(1)
            .to_sql(&Type::INT8, &mut BytesMut::new())
            .is_ok());
        assert!(Cell::Null.to_sql(&Type::INT8, &mut BytesMut::new()).is_ok());
    }
}
