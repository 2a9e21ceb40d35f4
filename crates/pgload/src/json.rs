//! JSON records as `JSON 'auto'` reads them: a stream of concatenated JSON values (with or
//! without whitespace or newlines between them, as Firehose concatenates records), each an
//! object whose top-level keys are matched to column names, exactly (`'auto'`) or ignoring
//! case (`'auto ignorecase'`). Keys that match no column are ignored; a column whose key is
//! missing loads NULL. Members are kept as their source text ([`RawValue`]) until their
//! column's type reads them.

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::LoadError;
use crate::table::TargetColumn;

/// Which column each key names.
#[derive(Debug, Clone)]
pub(crate) struct JsonPlan {
    exact: HashMap<String, usize>,
    /// Lower-cased column names, for `'auto ignorecase'`.
    folded: Option<HashMap<String, usize>>,
}

impl JsonPlan {
    pub(crate) fn new(
        table: &str,
        columns: &[TargetColumn],
        ignore_case: bool,
    ) -> Result<JsonPlan, LoadError> {
        let exact = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let folded = if ignore_case {
            let mut folded = HashMap::with_capacity(columns.len());
            for (i, c) in columns.iter().enumerate() {
                if let Some(j) = folded.insert(c.name.to_lowercase(), i) {
                    return Err(LoadError::AmbiguousColumns {
                        table: table.to_string(),
                        first: columns[j].name.clone(),
                        second: c.name.clone(),
                    });
                }
            }
            Some(folded)
        } else {
            None
        };
        Ok(JsonPlan { exact, folded })
    }

    fn lookup(&self, key: &str) -> Option<usize> {
        match &self.folded {
            None => self.exact.get(key).copied(),
            Some(folded) => self
                .exact
                .get(key)
                .or_else(|| folded.get(&key.to_lowercase()))
                .copied(),
        }
    }
}

/// Reads one record (a JSON value's text) into `slots`, one per column: the member's value, or
/// `None` when the record has no such key. A key that appears twice keeps its last value.
pub(crate) fn read_record<'de>(
    text: &'de str,
    plan: &JsonPlan,
    slots: &mut [Option<&'de RawValue>],
) -> Result<(), String> {
    slots.iter_mut().for_each(|s| *s = None);
    match text.trim_start().as_bytes().first() {
        Some(b'{') => {}
        Some(b'[') => {
            return Err(
                "the record is a JSON array; JSON 'auto' loads objects (one per row)".into(),
            )
        }
        _ => {
            return Err(format!(
                "the record is {}, not a JSON object",
                crate::error::quote_value(text)
            ))
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(ObjectVisitor { plan, slots })
        .map_err(|e| format!("bad JSON object: {e}"))?;
    de.end().map_err(|e| format!("bad JSON object: {e}"))
}

struct ObjectVisitor<'a, 'de> {
    plan: &'a JsonPlan,
    slots: &'a mut [Option<&'de RawValue>],
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(index) = map.next_key_seed(KeySeed { plan: self.plan })? {
            match index {
                Some(i) => self.slots[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key, looked up without keeping it.
struct KeySeed<'a> {
    plan: &'a JsonPlan,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.plan.lookup(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Kind;
    use tokio_postgres::types::Type;

    fn columns(names: &[&str]) -> Vec<TargetColumn> {
        names
            .iter()
            .map(|n| TargetColumn {
                name: n.to_string(),
                kind: Kind::Text,
                pg_type: Type::TEXT,
                not_null: false,
                chars_max: None,
                type_name: "text".into(),
            })
            .collect()
    }

    fn read(text: &str, plan: &JsonPlan, n: usize) -> Result<Vec<Option<String>>, String> {
        let mut slots = vec![None; n];
        read_record(text, plan, &mut slots)?;
        Ok(slots
            .iter()
            .map(|s| s.map(|r| r.get().to_string()))
            .collect())
    }

    #[test]
    fn auto_matches_keys_exactly() {
        let plan = JsonPlan::new("t", &columns(&["id", "name"]), false).unwrap();
        assert_eq!(
            read(r#"{"name":"a","id":1,"other":{"x":[1,2]}}"#, &plan, 2).unwrap(),
            [Some("1".to_string()), Some("\"a\"".to_string())]
        );
        // Redshift's 'auto' is case-sensitive: `ID` is not `id`.
        assert_eq!(read(r#"{"ID":1}"#, &plan, 2).unwrap(), [None, None]);
        // Escaped keys are read.
        assert_eq!(
            read(r#"{"n\u0061me":"x"}"#, &plan, 2).unwrap(),
            [None, Some("\"x\"".to_string())]
        );
        // The last of a repeated key wins.
        assert_eq!(
            read(r#"{"id":1,"id":2}"#, &plan, 2).unwrap()[0].as_deref(),
            Some("2")
        );
    }

    #[test]
    fn auto_ignorecase_folds_keys() {
        let plan = JsonPlan::new("t", &columns(&["id", "Name"]), true).unwrap();
        assert_eq!(
            read(r#"{"ID":1,"NAME":"a"}"#, &plan, 2).unwrap(),
            [Some("1".to_string()), Some("\"a\"".to_string())]
        );
        assert!(JsonPlan::new("t", &columns(&["a", "A"]), true).is_err());
        assert!(JsonPlan::new("t", &columns(&["a", "A"]), false).is_ok());
    }

    #[test]
    fn non_objects_are_refused() {
        let plan = JsonPlan::new("t", &columns(&["id"]), false).unwrap();
        assert!(read("[1]", &plan, 1).unwrap_err().contains("JSON array"));
        assert!(read("5", &plan, 1)
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(read("\"x\"", &plan, 1).is_err());
    }
}
