//! Firehose's `InputFormatConfiguration.Deserializer`: the OpenX JSON SerDe or the Hive JSON
//! SerDe, with their options, and the key rules they apply when a JSON record is read into
//! columns.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::error::ConfigError;
use crate::joda::JodaPattern;
use crate::limits;

/// How JSON records are read into columns.
#[derive(Debug, Clone)]
pub enum Deserializer {
    OpenX(OpenXJsonSerDe),
    Hive(HiveJsonSerDe),
}

impl Default for Deserializer {
    /// The OpenX JSON SerDe with Firehose's defaults (what Firehose advises when unsure).
    fn default() -> Self {
        Deserializer::OpenX(OpenXJsonSerDe::default())
    }
}

/// Firehose's `OpenXJsonSerDe`.
///
/// Keys match columns case-insensitively unless `case_insensitive` is false. Timestamps are
/// read from epoch seconds or milliseconds (integers; see [`limits::EPOCH_MILLIS_FROM`]),
/// floating-point epoch seconds, `yyyy-MM-dd'T'HH:mm:ss[.S]Z` (or an offset) and
/// `yyyy-[M]M-[d]d HH:mm:ss[.S]` (UTC), the fraction up to 9 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenXJsonSerDe {
    /// `CaseInsensitive` (default true): JSON keys are lowercased before they are matched.
    pub case_insensitive: bool,
    /// `ColumnToJsonKeyMappings`: column name → the JSON key read into it (at every level of
    /// nesting: a struct field of that name is read from that key too).
    pub column_to_json_key_mappings: BTreeMap<String, String>,
    /// `ConvertDotsInJsonKeysToUnderscores` (default false): `a.b` is read into column `a_b`.
    pub convert_dots_in_json_keys_to_underscores: bool,
}

impl Default for OpenXJsonSerDe {
    fn default() -> Self {
        OpenXJsonSerDe {
            case_insensitive: true,
            column_to_json_key_mappings: BTreeMap::new(),
            convert_dots_in_json_keys_to_underscores: false,
        }
    }
}

impl OpenXJsonSerDe {
    /// Checks the options as Firehose does (mapping keys and values 1 to 1,024 characters,
    /// keys without spaces, values not blank).
    pub fn check(&self) -> Result<(), ConfigError> {
        for (column, key) in &self.column_to_json_key_mappings {
            if column.is_empty()
                || column.chars().count() > limits::SERDE_STRING_CHARS_MAX
                || column.chars().any(char::is_whitespace)
            {
                return Err(ConfigError::BadString {
                    member: "ColumnToJsonKeyMappings key",
                    value: column.chars().take(64).collect(),
                    max: limits::SERDE_STRING_CHARS_MAX,
                });
            }
            if key.trim().is_empty() || key.chars().count() > limits::SERDE_STRING_CHARS_MAX {
                return Err(ConfigError::BadString {
                    member: "ColumnToJsonKeyMappings value",
                    value: key.chars().take(64).collect(),
                    max: limits::SERDE_STRING_CHARS_MAX,
                });
            }
        }
        Ok(())
    }
}

/// Firehose's `HiveJsonSerDe`: keys match columns case-insensitively; timestamps are read
/// with `TimestampFormats` (Joda-Time patterns, or `millis` for epoch milliseconds), tried in
/// order, then as `java.sql.Timestamp.valueOf` reads them (`yyyy-[m]m-[d]d hh:mm:ss[.f...]`),
/// which is all that is tried when there are no formats.
#[derive(Debug, Clone, Default)]
pub struct HiveJsonSerDe {
    formats: Vec<TimestampFormat>,
}

#[derive(Debug, Clone)]
pub(crate) enum TimestampFormat {
    Millis,
    Joda(JodaPattern),
}

impl HiveJsonSerDe {
    /// Compiles `TimestampFormats`; a pattern sluice cannot read (a Joda letter it does not
    /// support, such as week-based fields or zone names) is refused here, naming the letter.
    pub fn new(timestamp_formats: &[String]) -> Result<HiveJsonSerDe, ConfigError> {
        if timestamp_formats.len() > limits::TIMESTAMP_FORMATS_MAX {
            return Err(ConfigError::TooManyTimestampFormats {
                count: timestamp_formats.len(),
                max: limits::TIMESTAMP_FORMATS_MAX,
            });
        }
        let mut formats = Vec::with_capacity(timestamp_formats.len());
        for format in timestamp_formats {
            if format.trim().is_empty() || format.chars().count() > limits::SERDE_STRING_CHARS_MAX {
                return Err(ConfigError::BadString {
                    member: "TimestampFormats entry",
                    value: format.chars().take(64).collect(),
                    max: limits::SERDE_STRING_CHARS_MAX,
                });
            }
            formats.push(if format == "millis" {
                TimestampFormat::Millis
            } else {
                TimestampFormat::Joda(JodaPattern::compile(format).map_err(|reason| {
                    ConfigError::TimestampFormat {
                        format: format.clone(),
                        reason,
                    }
                })?)
            });
        }
        Ok(HiveJsonSerDe { formats })
    }

    /// The formats as given.
    pub fn timestamp_formats(&self) -> Vec<&str> {
        self.formats
            .iter()
            .map(|f| match f {
                TimestampFormat::Millis => "millis",
                TimestampFormat::Joda(pattern) => pattern.source(),
            })
            .collect()
    }

    pub(crate) fn formats(&self) -> &[TimestampFormat] {
        &self.formats
    }
}

impl Deserializer {
    fn case_insensitive(&self) -> bool {
        match self {
            Deserializer::OpenX(serde) => serde.case_insensitive,
            Deserializer::Hive(_) => true,
        }
    }

    /// A JSON key as it is compared with column names (and with mapped keys).
    pub(crate) fn normalize_key<'k>(&self, key: &'k str) -> Cow<'k, str> {
        let dots = matches!(self, Deserializer::OpenX(s) if s.convert_dots_in_json_keys_to_underscores)
            && key.contains('.');
        let lower = self.case_insensitive() && key.chars().any(char::is_uppercase);
        match (lower, dots) {
            (false, false) => Cow::Borrowed(key),
            (true, false) => Cow::Owned(key.to_lowercase()),
            (false, true) => Cow::Owned(key.replace('.', "_")),
            (true, true) => Cow::Owned(key.to_lowercase().replace('.', "_")),
        }
    }

    /// A column name as it is compared with normalized keys.
    pub(crate) fn normalize_column<'k>(&self, name: &'k str) -> Cow<'k, str> {
        if self.case_insensitive() && name.chars().any(char::is_uppercase) {
            Cow::Owned(name.to_lowercase())
        } else {
            Cow::Borrowed(name)
        }
    }

    /// The JSON key a column (or struct field) is read from: its mapping, or its own name.
    pub(crate) fn key_for_column<'c>(&'c self, name: &'c str) -> &'c str {
        match self {
            Deserializer::OpenX(serde) => serde
                .column_to_json_key_mappings
                .get(name)
                .or_else(|| {
                    serde
                        .column_to_json_key_mappings
                        .iter()
                        .find(|(column, _)| column.eq_ignore_ascii_case(name))
                        .map(|(_, key)| key)
                })
                .map_or(name, String::as_str),
            Deserializer::Hive(_) => name,
        }
    }

    /// The column a JSON key is read into when the schema is inferred: the mapped column if
    /// a mapping names this key, else the key with dots converted when that option is set
    /// (case kept as written).
    pub(crate) fn column_name_for_key(&self, key: &str) -> String {
        if let Deserializer::OpenX(serde) = self {
            let normalized = self.normalize_key(key);
            for (column, mapped) in &serde.column_to_json_key_mappings {
                if self.normalize_key(mapped) == normalized {
                    return column.clone();
                }
            }
            if serde.convert_dots_in_json_keys_to_underscores {
                return key.replace('.', "_");
            }
        }
        key.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openx_key_rules() {
        let default = Deserializer::default();
        assert_eq!(default.normalize_key("UserId"), "userid");
        assert_eq!(default.normalize_key("a.b"), "a.b");
        assert!(matches!(default.normalize_key("plain"), Cow::Borrowed(_)));
        let sensitive = Deserializer::OpenX(OpenXJsonSerDe {
            case_insensitive: false,
            convert_dots_in_json_keys_to_underscores: true,
            ..OpenXJsonSerDe::default()
        });
        assert_eq!(sensitive.normalize_key("User.Id"), "User_Id");
        assert_eq!(sensitive.normalize_column("User_Id"), "User_Id");
        let hive = Deserializer::Hive(HiveJsonSerDe::default());
        assert_eq!(hive.normalize_key("A.B"), "a.b");
    }

    #[test]
    fn mappings_are_checked() {
        let mut serde = OpenXJsonSerDe::default();
        serde
            .column_to_json_key_mappings
            .insert("ts".into(), "timestamp".into());
        assert!(serde.check().is_ok());
        serde
            .column_to_json_key_mappings
            .insert("bad column".into(), "k".into());
        assert!(matches!(serde.check(), Err(ConfigError::BadString { .. })));
        let mut serde = OpenXJsonSerDe::default();
        serde
            .column_to_json_key_mappings
            .insert("c".into(), " ".into());
        assert!(matches!(serde.check(), Err(ConfigError::BadString { .. })));
        let mut serde = OpenXJsonSerDe::default();
        let at_limit = "k".repeat(limits::SERDE_STRING_CHARS_MAX);
        serde
            .column_to_json_key_mappings
            .insert("c".into(), at_limit.clone());
        assert!(serde.check().is_ok());
        serde
            .column_to_json_key_mappings
            .insert("c".into(), format!("{at_limit}k"));
        assert!(serde.check().is_err());
    }

    #[test]
    fn hive_formats_are_compiled_and_checked() {
        let serde = HiveJsonSerDe::new(&["millis".into(), "yyyy-MM-dd'T'HH:mm:ss".into()]).unwrap();
        assert_eq!(
            serde.timestamp_formats(),
            vec!["millis", "yyyy-MM-dd'T'HH:mm:ss"]
        );
        let e = HiveJsonSerDe::new(&["xxxx-ww".into()]).unwrap_err();
        assert!(e.to_string().contains("`x`"), "{e}");
        assert!(HiveJsonSerDe::new(&["  ".into()]).is_err());
        let many = vec!["millis".to_string(); limits::TIMESTAMP_FORMATS_MAX];
        assert!(HiveJsonSerDe::new(&many).is_ok());
        let too_many = vec!["millis".to_string(); limits::TIMESTAMP_FORMATS_MAX + 1];
        assert!(matches!(
            HiveJsonSerDe::new(&too_many),
            Err(ConfigError::TooManyTimestampFormats { .. })
        ));
        let long = format!("'{}'", "y".repeat(limits::SERDE_STRING_CHARS_MAX - 2));
        assert!(HiveJsonSerDe::new(std::slice::from_ref(&long)).is_ok());
        let longer = format!("'{}'", "y".repeat(limits::SERDE_STRING_CHARS_MAX - 1));
        assert!(HiveJsonSerDe::new(&[longer]).is_err());
    }
}
