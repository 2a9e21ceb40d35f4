//! The operations, one file per family: `functions` (create, read, update, delete, list),
//! `invoke`, `concurrency`, `tags`, `account`, `mappings` (event source mappings); `table` names every operation of the API for
//! the ones sluice does not serve yet. Shared here: reading a JSON body with Lambda's errors,
//! and finding the function a request names.

pub mod account;
pub mod concurrency;
pub mod functions;
pub mod invoke;
pub mod mappings;
pub mod table;
pub mod tags;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use sluice_aws::ApiError;

use crate::error::{function_not_found, invalid_content, invalid_parameter};
use crate::names::LATEST;
use crate::service::{percent_decode, Lambda};
use crate::store::Function;

/// A request body: a JSON object. Members that are `null` count as absent.
#[derive(Debug, Clone, Default)]
pub(crate) struct Json {
    map: Map<String, Value>,
}

fn parse_failure(detail: impl std::fmt::Display) -> ApiError {
    invalid_content(format!("Could not parse request body into json: {detail}"))
}

impl Json {
    /// An empty body is an empty object.
    pub fn parse(body: &[u8]) -> Result<Json, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Json::default());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Json { map }),
            Ok(_) => Err(parse_failure("the body is not a JSON object")),
            Err(e) => Err(parse_failure(e)),
        }
    }

    fn raw(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    pub fn str(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(wrong_type(name, v, "a String")),
        }
    }

    /// An Integer member: floored and clamped to the Java int range; a numeric string is
    /// taken, as Lambda's JSON reader does.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let clamp = |f: f64| f.floor().clamp(i32::MIN as f64, i32::MAX as f64) as i64;
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64().map(clamp)),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .map(|f| Some(clamp(f)))
                .map_err(|_| wrong_type(name, &Value::String(s.clone()), "an Integer")),
            Some(v) => Err(wrong_type(name, v, "an Integer")),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(wrong_type(name, v, "a Boolean")),
        }
    }

    pub fn object(&self, name: &str) -> Result<Option<Json>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Json { map: m.clone() })),
            Some(v) => Err(wrong_type(name, v, "a structure")),
        }
    }

    /// Whether a member is given with a value: not null, and not an empty string, list or
    /// structure.
    pub fn has_value(&self, name: &str) -> bool {
        match self.raw(name) {
            None => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(_) => true,
        }
    }

    /// A list of structures (null entries are skipped).
    pub fn object_list(&self, name: &str) -> Result<Option<Vec<Json>>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| match v {
                    Value::Object(m) => Ok(Json { map: m.clone() }),
                    other => Err(wrong_type(name, other, "a structure")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(wrong_type(name, v, "a list")),
        }
    }

    /// A Timestamp member as REST-JSON carries it: seconds since the epoch, a number (a
    /// numeric string is taken too).
    pub fn timestamp_s(&self, name: &str) -> Result<Option<f64>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| wrong_type(name, &Value::String(s.clone()), "a Timestamp")),
            Some(v) => Err(wrong_type(name, v, "a Timestamp")),
        }
    }

    pub fn string_map(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Object(m)) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    match v {
                        Value::String(s) => {
                            out.insert(k.clone(), s.clone());
                        }
                        Value::Null => {}
                        other => return Err(wrong_type(&format!("{name}.{k}"), other, "a String")),
                    }
                }
                Ok(Some(out))
            }
            Some(v) => Err(wrong_type(name, v, "a map")),
        }
    }

    pub fn string_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong_type(name, other, "a String")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(wrong_type(name, v, "a list")),
        }
    }
}

fn wrong_type(name: &str, v: &Value, wanted: &str) -> ApiError {
    let found = match v {
        Value::Null => "null",
        Value::Bool(_) => "a Boolean",
        Value::Number(_) => "a Number",
        Value::String(_) => "a String",
        Value::Array(_) => "a list",
        Value::Object(_) => "a structure",
    };
    parse_failure(format!("member {name} must be {wanted}, not {found}"))
}

/// The function a path names (name, partial or full ARN, with or without a qualifier) and
/// the `Qualifier` query parameter, if the operation takes one. Only `$LATEST` exists.
pub(crate) fn lookup(
    lambda: &Lambda,
    raw: &str,
    query_qualifier: Option<&str>,
) -> Result<Arc<Function>, ApiError> {
    let r = lambda.function_ref(&percent_decode(raw))?;
    if let Some(q) = query_qualifier {
        let mut v = sluice_aws::validate::Validator::new();
        v.str_len(Some(q), "qualifier", 1, crate::limits::QUALIFIER_CHARS_MAX);
        v.pattern(
            Some(q),
            "qualifier",
            "\\$(LATEST(\\.PUBLISHED)?)|[a-zA-Z0-9-_$]+",
            |s| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_$.".contains(&b))
            },
        );
        v.finish()?;
    }
    let qualifier = match (r.qualifier.as_deref(), query_qualifier) {
        (Some(a), Some(b)) if a != b => return Err(invalid_parameter(
            "The derived qualifier from the function name does not match the specified qualifier.",
        )),
        (a, b) => a.or(b),
    };
    let not_found = || function_not_found(&r.arn(&lambda.scope, qualifier));
    if !r.in_scope(&lambda.scope) {
        return Err(not_found());
    }
    let f = lambda.store.get(&r.name).ok_or_else(not_found)?;
    match qualifier {
        None => Ok(f),
        Some(q) if q == LATEST => Ok(f),
        Some(q) => Err(function_not_found(&format!(
            "{} (sluice has only {LATEST}: versions and aliases are not supported yet)",
            r.arn(&lambda.scope, Some(q))
        ))),
    }
}

/// Lambda's `LastModified`: `2024-05-01T12:34:56.789+0000`.
pub(crate) fn last_modified(ms: i64) -> String {
    let c = sluice_aws::civil::from_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        ms.rem_euclid(1000)
    )
}

/// At most `max` tags, each key 1-128 and value 0-256 characters (Lambda's limits).
pub(crate) fn check_tags(
    tags: &BTreeMap<String, String>,
    max: usize,
    resource: &str,
) -> Result<(), ApiError> {
    if tags.len() > max {
        return Err(invalid_parameter(format!(
            "The number of tags exceeds the limit of {max} tags per {resource}."
        )));
    }
    let mut v = sluice_aws::validate::Validator::new();
    for (k, val) in tags {
        v.str_len(Some(k), "tags.key", 1, crate::limits::TAG_KEY_CHARS_MAX);
        v.str_len(
            Some(val),
            "tags.value",
            0,
            crate::limits::TAG_VALUE_CHARS_MAX,
        );
    }
    v.finish()
}

/// The list operations' `MaxItems` query parameter: an integer (else
/// InvalidParameterValueException), its range checked with the request's other members.
pub(crate) fn max_items(
    call: &crate::service::Call<'_>,
    v: &mut sluice_aws::validate::Validator,
) -> Result<Option<i64>, ApiError> {
    let max_items = match call.query("MaxItems") {
        Some(s) => Some(
            s.trim()
                .parse::<i64>()
                .map_err(|_| invalid_parameter(format!("Invalid value for MaxItems: {s}")))?,
        ),
        None => None,
    };
    v.range(
        max_items,
        "maxItems",
        Some(crate::limits::LIST_MAX_ITEMS_MIN),
        Some(crate::limits::LIST_MAX_ITEMS_MAX),
    );
    Ok(max_items)
}

/// The list operations' `Marker`: where the last page ended (an opaque base64 of the last
/// name listed).
pub(crate) fn marker(call: &crate::service::Call<'_>) -> Result<Option<String>, ApiError> {
    use base64::Engine;
    match call.query("Marker") {
        Some(m) if !m.is_empty() => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(m)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| invalid_parameter("Invalid Marker")),
        _ => Ok(None),
    }
}

/// The `NextMarker` after a page that ended with `last`.
pub(crate) fn next_marker(last: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_members() {
        let j =
            Json::parse(br#"{"A":"x","N":"7","F":3.9,"B":"TRUE","Z":null,"M":{"k":"v"}}"#).unwrap();
        assert_eq!(j.str("A").unwrap(), Some("x"));
        assert_eq!(j.int("N").unwrap(), Some(7));
        assert_eq!(j.int("F").unwrap(), Some(3));
        assert_eq!(j.bool("B").unwrap(), Some(true));
        assert!(!j.has("Z"));
        assert_eq!(j.string_map("M").unwrap().unwrap()["k"], "v");
        let e = j.int("A").unwrap_err();
        assert_eq!(e.type_name(), "InvalidRequestContentException");
        assert!(Json::parse(b"").is_ok());
        let e = Json::parse(b"{nope").unwrap_err();
        assert!(e
            .message
            .unwrap()
            .starts_with("Could not parse request body into json: "));
    }

    #[test]
    fn last_modified_format() {
        assert_eq!(
            last_modified(1_700_000_000_123),
            "2023-11-14T22:13:20.123+0000"
        );
    }
}
