//! Hive / Glue column types: parsed from their type strings (`array<struct<a:int>>`), printed
//! back in canonical form, and mapped to the Arrow types the Parquet writer takes.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

use crate::error::TypeError;
use crate::limits;

/// The time zone Arrow timestamps carry: values are instants, written as Parquet
/// `TIMESTAMP(isAdjustedToUTC=true, MICROS)`.
pub(crate) const TIMESTAMP_TZ: &str = "UTC";

/// Arrow's names for nested children, the ones the Parquet spec gives (and Hive, Spark and
/// Athena expect): `element` in lists, `key_value` / `key` / `value` in maps.
pub(crate) const LIST_ELEMENT: &str = "element";
pub(crate) const MAP_ENTRIES: &str = "key_value";
pub(crate) const MAP_KEY: &str = "key";
pub(crate) const MAP_VALUE: &str = "value";

/// One Hive / Glue column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    String,
    /// `varchar(n)`: longer values are cut to `n` characters.
    Varchar(u32),
    /// `char(n)`: longer values are cut to `n` characters (shorter ones are not padded).
    Char(u32),
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    Timestamp,
    Binary,
    Array(Box<ColumnType>),
    /// `map<K,V>`; `K` is a primitive type (JSON object keys are strings, read as `K`).
    Map(Box<ColumnType>, Box<ColumnType>),
    Struct(Vec<StructField>),
}

/// A named field of a `struct<...>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructField {
    pub name: String,
    pub field_type: ColumnType,
}

impl ColumnType {
    /// Parses a Hive type string (case-insensitive keywords, spaces allowed between tokens).
    pub fn parse(input: &str) -> Result<ColumnType, TypeError> {
        let chars: Vec<char> = input.chars().collect();
        let mut parser = Parser {
            input,
            chars: &chars,
            at: 0,
        };
        if chars.len() > limits::TYPE_CHARS_MAX {
            return Err(parser.error(format!(
                "type strings are at most {} characters",
                limits::TYPE_CHARS_MAX
            )));
        }
        let parsed = parser.column_type(1)?;
        parser.skip_spaces();
        if parser.at < chars.len() {
            return Err(parser.error("unexpected text after the type".to_string()));
        }
        Ok(parsed)
    }

    /// True for every type but `array`, `map` and `struct`.
    pub fn is_primitive(&self) -> bool {
        !matches!(
            self,
            ColumnType::Array(_) | ColumnType::Map(..) | ColumnType::Struct(_)
        )
    }

    /// The Arrow type values of this column are built as.
    pub fn arrow_type(&self) -> DataType {
        match self {
            ColumnType::String | ColumnType::Varchar(_) | ColumnType::Char(_) => DataType::Utf8,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::TinyInt => DataType::Int8,
            ColumnType::SmallInt => DataType::Int16,
            ColumnType::Int => DataType::Int32,
            ColumnType::BigInt => DataType::Int64,
            ColumnType::Float => DataType::Float32,
            ColumnType::Double => DataType::Float64,
            ColumnType::Decimal { precision, scale } => {
                // Precision and scale were checked at parse: scale <= precision <= 38.
                DataType::Decimal128(*precision, i8::try_from(*scale).unwrap_or(i8::MAX))
            }
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(TIMESTAMP_TZ)))
            }
            ColumnType::Binary => DataType::Binary,
            ColumnType::Array(element) => DataType::List(Arc::new(Field::new(
                LIST_ELEMENT,
                element.arrow_type(),
                true,
            ))),
            ColumnType::Map(key, value) => DataType::Map(map_entries_field(key, value), false),
            ColumnType::Struct(fields) => DataType::Struct(struct_fields(fields)),
        }
    }

    /// How deep `array` / `map` / `struct` nest in this type (1 for a primitive).
    pub fn depth(&self) -> usize {
        match self {
            ColumnType::Array(element) => 1 + element.depth(),
            ColumnType::Map(key, value) => 1 + key.depth().max(value.depth()),
            ColumnType::Struct(fields) => {
                1 + fields
                    .iter()
                    .map(|f| f.field_type.depth())
                    .max()
                    .unwrap_or(0)
            }
            _ => 1,
        }
    }
}

pub(crate) fn map_entries_field(key: &ColumnType, value: &ColumnType) -> Arc<Field> {
    let entries = Fields::from(vec![
        Field::new(MAP_KEY, key.arrow_type(), false),
        Field::new(MAP_VALUE, value.arrow_type(), true),
    ]);
    Arc::new(Field::new(MAP_ENTRIES, DataType::Struct(entries), false))
}

pub(crate) fn struct_fields(fields: &[StructField]) -> Fields {
    fields
        .iter()
        .map(|f| Field::new(f.name.as_str(), f.field_type.arrow_type(), true))
        .collect()
}

impl FromStr for ColumnType {
    type Err = TypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ColumnType::parse(s)
    }
}

/// Canonical Hive spelling: lowercase keywords, no spaces, field names backquoted when they
/// are not plain identifiers. `ColumnType::parse` of the output gives the same type back.
impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::String => f.write_str("string"),
            ColumnType::Varchar(n) => write!(f, "varchar({n})"),
            ColumnType::Char(n) => write!(f, "char({n})"),
            ColumnType::Boolean => f.write_str("boolean"),
            ColumnType::TinyInt => f.write_str("tinyint"),
            ColumnType::SmallInt => f.write_str("smallint"),
            ColumnType::Int => f.write_str("int"),
            ColumnType::BigInt => f.write_str("bigint"),
            ColumnType::Float => f.write_str("float"),
            ColumnType::Double => f.write_str("double"),
            ColumnType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Timestamp => f.write_str("timestamp"),
            ColumnType::Binary => f.write_str("binary"),
            ColumnType::Array(element) => write!(f, "array<{element}>"),
            ColumnType::Map(key, value) => write!(f, "map<{key},{value}>"),
            ColumnType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    if is_plain_identifier(&field.name) {
                        f.write_str(&field.name)?;
                    } else {
                        write!(f, "`{}`", field.name.replace('`', "``"))?;
                    }
                    write!(f, ":{}", field.field_type)?;
                }
                f.write_str(">")
            }
        }
    }
}

fn is_plain_identifier(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Characters that end an unquoted struct field name.
fn ends_name(c: char) -> bool {
    c.is_whitespace() || matches!(c, ':' | ',' | '<' | '>' | '(' | ')' | '`')
}

struct Parser<'a> {
    input: &'a str,
    chars: &'a [char],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, reason: String) -> TypeError {
        TypeError {
            input: self.input.chars().take(128).collect(),
            position: self.at,
            reason,
        }
    }

    fn skip_spaces(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_spaces();
        self.chars.get(self.at).copied()
    }

    fn expect(&mut self, wanted: char) -> Result<(), TypeError> {
        match self.peek() {
            Some(c) if c == wanted => {
                self.at += 1;
                Ok(())
            }
            Some(c) => Err(self.error(format!("expected `{wanted}`, found `{c}`"))),
            None => Err(self.error(format!("expected `{wanted}`, found the end"))),
        }
    }

    /// A keyword: letters, digits and `_`.
    fn word(&mut self) -> String {
        self.skip_spaces();
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn number(&mut self, what: &str) -> Result<u32, TypeError> {
        self.skip_spaces();
        let start = self.at;
        while self.chars.get(self.at).is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        let digits: String = self.chars[start..self.at].iter().collect();
        if digits.is_empty() {
            self.at = start;
            return Err(self.error(format!("expected the {what} (a number)")));
        }
        digits.parse::<u32>().map_err(|_| {
            self.at = start;
            self.error(format!("the {what} `{digits}` is too large"))
        })
    }

    /// `(n)` of `varchar(n)` / `char(n)`, checked against `1..=max`.
    fn length(&mut self, keyword: &str, max: u32) -> Result<u32, TypeError> {
        self.expect('(')?;
        let start = self.at;
        let n = self.number("length")?;
        if n == 0 || n > max {
            self.at = start;
            return Err(self.error(format!("{keyword} length must be 1 to {max}, got {n}")));
        }
        self.expect(')')?;
        Ok(n)
    }

    fn decimal(&mut self) -> Result<ColumnType, TypeError> {
        let (mut precision, mut scale) = (
            u32::from(limits::DECIMAL_DEFAULT.0),
            u32::from(limits::DECIMAL_DEFAULT.1),
        );
        if self.peek() == Some('(') {
            self.at += 1;
            let start = self.at;
            precision = self.number("precision")?;
            let max = u32::from(limits::DECIMAL_PRECISION_MAX);
            if precision == 0 || precision > max {
                self.at = start;
                return Err(self.error(format!(
                    "decimal precision must be 1 to {max}, got {precision}"
                )));
            }
            scale = 0;
            if self.peek() == Some(',') {
                self.at += 1;
                let start = self.at;
                scale = self.number("scale")?;
                if scale > precision {
                    self.at = start;
                    return Err(self.error(format!(
                        "decimal scale must be 0 to the precision ({precision}), got {scale}"
                    )));
                }
            }
            self.expect(')')?;
        }
        // Both fit in u8: precision <= 38 was checked, scale <= precision.
        Ok(ColumnType::Decimal {
            precision: u8::try_from(precision).unwrap_or(limits::DECIMAL_PRECISION_MAX),
            scale: u8::try_from(scale).unwrap_or(0),
        })
    }

    fn field_name(&mut self) -> Result<String, TypeError> {
        self.skip_spaces();
        if self.chars.get(self.at) == Some(&'`') {
            self.at += 1;
            let mut name = String::new();
            loop {
                match self.chars.get(self.at) {
                    Some('`') if self.chars.get(self.at + 1) == Some(&'`') => {
                        name.push('`');
                        self.at += 2;
                    }
                    Some('`') => {
                        self.at += 1;
                        break;
                    }
                    Some(c) => {
                        name.push(*c);
                        self.at += 1;
                    }
                    None => return Err(self.error("unclosed backquote".to_string())),
                }
            }
            return Ok(name);
        }
        let start = self.at;
        while self.chars.get(self.at).is_some_and(|c| !ends_name(*c)) {
            self.at += 1;
        }
        Ok(self.chars[start..self.at].iter().collect())
    }

    fn column_type(&mut self, depth: usize) -> Result<ColumnType, TypeError> {
        let start = self.at;
        let word = self.word();
        let keyword = word.to_ascii_lowercase();
        let nested = matches!(keyword.as_str(), "array" | "map" | "struct");
        if nested && depth > limits::TYPE_DEPTH_MAX {
            self.at = start;
            return Err(self.error(format!(
                "types nest at most {} levels deep",
                limits::TYPE_DEPTH_MAX
            )));
        }
        Ok(match keyword.as_str() {
            "string" => ColumnType::String,
            "varchar" => ColumnType::Varchar(self.length("varchar", limits::VARCHAR_LENGTH_MAX)?),
            "char" => ColumnType::Char(self.length("char", limits::CHAR_LENGTH_MAX)?),
            "boolean" => ColumnType::Boolean,
            "tinyint" => ColumnType::TinyInt,
            "smallint" => ColumnType::SmallInt,
            "int" | "integer" => ColumnType::Int,
            "bigint" => ColumnType::BigInt,
            "float" => ColumnType::Float,
            "double" => ColumnType::Double,
            "decimal" | "numeric" => self.decimal()?,
            "date" => ColumnType::Date,
            "timestamp" => ColumnType::Timestamp,
            "binary" => ColumnType::Binary,
            "array" => {
                self.expect('<')?;
                let element = self.column_type(depth + 1)?;
                self.expect('>')?;
                ColumnType::Array(Box::new(element))
            }
            "map" => {
                self.expect('<')?;
                let key_at = self.at;
                let key = self.column_type(depth + 1)?;
                if !key.is_primitive() {
                    self.at = key_at;
                    return Err(
                        self.error(format!("map keys must be a primitive type, got `{key}`"))
                    );
                }
                self.expect(',')?;
                let value = self.column_type(depth + 1)?;
                self.expect('>')?;
                ColumnType::Map(Box::new(key), Box::new(value))
            }
            "struct" => self.struct_fields(depth)?,
            "" => {
                return Err(match self.peek() {
                    Some(c) => self.error(format!("expected a type, found `{c}`")),
                    None => self.error("expected a type, found the end".to_string()),
                });
            }
            "uniontype" | "interval_year_month" | "interval_day_time" | "void" => {
                self.at = start;
                return Err(self.error(format!("type `{word}` is not supported")));
            }
            _ => {
                self.at = start;
                return Err(self.error(format!("unknown type `{word}`")));
            }
        })
    }

    fn struct_fields(&mut self, depth: usize) -> Result<ColumnType, TypeError> {
        self.expect('<')?;
        let mut fields: Vec<StructField> = Vec::new();
        loop {
            let name_at = {
                self.skip_spaces();
                self.at
            };
            let name = self.field_name()?;
            if name.is_empty() {
                return Err(self.error("expected a struct field name".to_string()));
            }
            if name.chars().count() > limits::COLUMN_NAME_CHARS_MAX {
                self.at = name_at;
                return Err(self.error(format!(
                    "struct field names are at most {} characters",
                    limits::COLUMN_NAME_CHARS_MAX
                )));
            }
            if fields.iter().any(|f| f.name.eq_ignore_ascii_case(&name)) {
                self.at = name_at;
                return Err(self.error(format!("struct field `{name}` is declared twice")));
            }
            if fields.len() == limits::COLUMNS_MAX {
                self.at = name_at;
                return Err(self.error(format!(
                    "a struct has at most {} fields",
                    limits::COLUMNS_MAX
                )));
            }
            self.expect(':')?;
            let field_type = self.column_type(depth + 1)?;
            fields.push(StructField { name, field_type });
            match self.peek() {
                Some(',') => self.at += 1,
                Some('>') => {
                    self.at += 1;
                    return Ok(ColumnType::Struct(fields));
                }
                Some(c) => return Err(self.error(format!("expected `,` or `>`, found `{c}`"))),
                None => return Err(self.error("expected `,` or `>`, found the end".to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ColumnType {
        ColumnType::parse(s).unwrap()
    }

    fn err(s: &str) -> TypeError {
        ColumnType::parse(s).unwrap_err()
    }

    #[test]
    fn primitives_parse_case_insensitively() {
        let cases = [
            ("string", ColumnType::String),
            ("STRING", ColumnType::String),
            ("varchar(10)", ColumnType::Varchar(10)),
            ("char( 3 )", ColumnType::Char(3)),
            ("boolean", ColumnType::Boolean),
            ("tinyint", ColumnType::TinyInt),
            ("smallint", ColumnType::SmallInt),
            ("int", ColumnType::Int),
            ("Integer", ColumnType::Int),
            ("bigint", ColumnType::BigInt),
            ("float", ColumnType::Float),
            ("double", ColumnType::Double),
            (
                "decimal",
                ColumnType::Decimal {
                    precision: 10,
                    scale: 0,
                },
            ),
            (
                "decimal(5)",
                ColumnType::Decimal {
                    precision: 5,
                    scale: 0,
                },
            ),
            (
                "DECIMAL(38, 10)",
                ColumnType::Decimal {
                    precision: 38,
                    scale: 10,
                },
            ),
            ("date", ColumnType::Date),
            ("timestamp", ColumnType::Timestamp),
            ("binary", ColumnType::Binary),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input), expected, "{input}");
        }
    }

    #[test]
    fn nested_types_parse_and_print_back() {
        let t =
            parse("struct< a : int, `b c`:array<map<string, struct<x:double>>>, Ts:timestamp >");
        assert_eq!(
            t.to_string(),
            "struct<a:int,`b c`:array<map<string,struct<x:double>>>,Ts:timestamp>"
        );
        assert_eq!(ColumnType::parse(&t.to_string()).unwrap(), t);
        assert_eq!(t.depth(), 5);
        assert_eq!(
            parse("map<int,array<string>>"),
            ColumnType::Map(
                Box::new(ColumnType::Int),
                Box::new(ColumnType::Array(Box::new(ColumnType::String)))
            )
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = err("map<string>");
        assert_eq!(e.position, 10);
        assert!(e.reason.contains("expected `,`"), "{e}");
        assert!(err("strin").reason.contains("unknown type `strin`"));
        assert!(err("array<int").reason.contains("found the end"));
        assert!(err("int int").reason.contains("unexpected text"));
        assert!(err("").reason.contains("expected a type"));
        assert!(err("struct<a:int,a:string>")
            .reason
            .contains("declared twice"));
        assert!(err("struct<A:int,a:string>")
            .reason
            .contains("declared twice"));
        assert!(err("struct<:int>").reason.contains("field name"));
        assert!(err("map<array<int>,int>").reason.contains("primitive"));
        assert!(err("uniontype<int,string>")
            .reason
            .contains("not supported"));
        assert!(err("decimal(10,11)").reason.contains("scale"));
        assert!(err("decimal(0)").reason.contains("precision"));
        assert!(err("varchar").reason.contains("expected `(`"));
        assert!(err("varchar(99999999999)").reason.contains("too large"));
        let shown = err("struct<a int>").to_string();
        assert!(
            shown.starts_with("invalid column type `struct<a int>`"),
            "{shown}"
        );
    }

    #[test]
    fn lengths_and_precision_at_their_limits() {
        assert_eq!(parse("varchar(65535)"), ColumnType::Varchar(65535));
        assert!(err("varchar(65536)").reason.contains("1 to 65535"));
        assert!(err("varchar(0)").reason.contains("1 to 65535"));
        assert_eq!(parse("char(255)"), ColumnType::Char(255));
        assert!(err("char(256)").reason.contains("1 to 255"));
        assert!(matches!(
            parse("decimal(38,38)"),
            ColumnType::Decimal {
                precision: 38,
                scale: 38
            }
        ));
        assert!(err("decimal(39,0)").reason.contains("1 to 38"));
    }

    #[test]
    fn nesting_depth_at_its_limit() {
        let nest = |levels: usize| {
            let mut s = String::from("int");
            for _ in 0..levels {
                s = format!("array<{s}>");
            }
            s
        };
        let deepest = parse(&nest(limits::TYPE_DEPTH_MAX));
        assert_eq!(deepest.depth(), limits::TYPE_DEPTH_MAX + 1);
        assert!(err(&nest(limits::TYPE_DEPTH_MAX + 1))
            .reason
            .contains("nest at most"));
    }

    #[test]
    fn type_string_length_at_its_limit() {
        let fields = |n: usize| {
            (0..n)
                .map(|i| format!("f{i}:int"))
                .collect::<Vec<_>>()
                .join(",")
        };
        // Pad with spaces to exactly the limit, then one past it.
        let base = format!("struct<{}>", fields(10));
        let pad = limits::TYPE_CHARS_MAX - base.len();
        let at_limit = format!("{}{base}", " ".repeat(pad));
        assert!(ColumnType::parse(&at_limit).is_ok());
        let past = format!(" {at_limit}");
        assert!(err(&past).reason.contains("at most 131072 characters"));
    }

    #[test]
    fn arrow_types_follow_the_parquet_spec_names() {
        let t = parse(
            "struct<tags:array<string>,attrs:map<string,bigint>,ts:timestamp,d:decimal(9,2)>",
        );
        let DataType::Struct(fields) = t.arrow_type() else {
            panic!("not a struct");
        };
        let DataType::List(element) = fields[0].data_type() else {
            panic!("not a list");
        };
        assert_eq!(element.name(), "element");
        let DataType::Map(entries, false) = fields[1].data_type() else {
            panic!("not a map");
        };
        assert_eq!(entries.name(), "key_value");
        assert_eq!(
            fields[2].data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(fields[3].data_type(), &DataType::Decimal128(9, 2));
    }
}
