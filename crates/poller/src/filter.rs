//! FilterCriteria: Lambda's event-filtering pattern syntax (`FilterCriteria.Filters[].Pattern`
//! of CreateEventSourceMapping), matched against a Kinesis record as Lambda filters it.
//!
//! Sources: the Lambda developer guide, "Control which events Lambda sends to your function"
//! (its "Filter rule syntax" comparison-operator table and notes) and "Using event filtering
//! with a Kinesis event source". Lambda describes its filter rules as EventBridge's event
//! pattern syntax; where the Lambda table and EventBridge differ, this follows the Lambda table.
//!
//! The pattern is a JSON object whose keys name the properties of the record (metadata such as
//! `partitionKey`, and `data`, the record's payload parsed as JSON) and whose values are either
//! a nested object (descend into that property) or an array of match values and operators (a
//! leaf rule). The fields of one object are ANDed; the entries of one leaf array are ORed;
//! `"$or": [ {..}, {..} ]` ORs whole sub-patterns.
//!
//! Supported (the rows of Lambda's "Filter rule syntax" table):
//!
//! | Comparison | Rule syntax |
//! | --- | --- |
//! | Null | `"UserID": [ null ]` |
//! | Empty | `"LastName": [ "" ]` |
//! | Equals | `"Name": [ "Alice" ]` (strings, numbers, booleans) |
//! | Equals (ignore case) | `"Name": [ { "equals-ignore-case": "alice" } ]` |
//! | And | `"Location": [ "New York" ], "Day": [ "Monday" ]` |
//! | Or | `"PaymentType": [ "Credit", "Debit" ]` |
//! | Or (multiple fields) | `"$or": [ { "Location": [ "New York" ] }, { "Day": [ "Monday" ] } ]` |
//! | Not | `"Weather": [ { "anything-but": [ "Raining" ] } ]` (also a single string or number) |
//! | Numeric (equals) | `"Price": [ { "numeric": [ "=", 100 ] } ]` |
//! | Numeric (range) | `"Price": [ { "numeric": [ ">", 10, "<=", 20 ] } ]` |
//! | Exists | `"ProductName": [ { "exists": true } ]` |
//! | Does not exist | `"ProductName": [ { "exists": false } ]` |
//! | Begins with | `"Region": [ { "prefix": "us-" } ]` |
//! | Ends with | `"FileName": [ { "suffix": ".png" } ]` |
//!
//! Not supported, and refused when compiling (so a mapping never silently filters differently
//! from Lambda): EventBridge's `wildcard` and `cidr`, `anything-but` with an object
//! (`prefix`/`suffix`/`equals-ignore-case`/`wildcard`), and `prefix`/`suffix` with
//! `equals-ignore-case`. None of them is in Lambda's table (EventBridge's own operator table
//! also marks the `anything-but` variants as unsupported by EventBridge Pipes).
//!
//! Matching rules (EventBridge's):
//! - strings match character by character, without case folding or normalisation; numbers in an
//!   exact match compare by representation (the Lambda guide: 300, 300.0 and 3.0e2 are not
//!   equal), while `numeric` compares values;
//! - a property whose value is an array matches when any element does (nested arrays are
//!   flattened); an object pattern over an array of objects matches when one element matches
//!   the whole sub-pattern;
//! - leaf rules only see leaf values (strings, numbers, booleans, null): `exists: true` does not
//!   match a property whose value is an object (the guide's "Exists only works on leaf nodes"),
//!   and `exists: false` matches when there is no leaf value there;
//! - `anything-but`, `prefix`, `suffix`, `numeric` and `equals-ignore-case` need a value: a
//!   missing property never matches them.
//!
//! For Kinesis, `data` is matched only when the payload is valid JSON: a pattern with a `data`
//! key does not match a record whose payload is not (Lambda drops it), while a pattern without
//! one filters on the metadata alone. The `data` key of a pattern must hold an object pattern;
//! Lambda refuses a filter whose pattern for data properties is not JSON.

use std::fmt::Display;

use serde_json::{Map, Number, Value};

/// The message of Lambda's `InvalidParameterValueException` for a pattern it refuses
/// ("Invalid filter pattern definition."); every [`FilterError`] starts with it.
pub const INVALID_PATTERN: &str = "Invalid filter pattern definition.";

/// The deepest nesting of object patterns (`$or` branches count as a level) a pattern may have,
/// so that neither compiling nor matching can recurse without bound.
pub const MAX_DEPTH: usize = 32;

/// A pattern Lambda would refuse: [`INVALID_PATTERN`] followed by what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

impl FilterError {
    fn new(detail: impl Display) -> FilterError {
        FilterError(format!("{INVALID_PATTERN} {detail}"))
    }

    fn at(path: &[String], detail: impl Display) -> FilterError {
        FilterError::new(format!("{}: {detail}", location(path)))
    }
}

/// One compiled filter pattern.
#[derive(Debug, Clone)]
pub struct Filter {
    source: String,
    root: ObjectPattern,
}

/// The fields of one object level (ANDed) and its `$or` alternatives.
#[derive(Debug, Clone)]
struct ObjectPattern {
    fields: Vec<Field>,
    /// Each entry is one `$or`: at least one of its sub-patterns must match this same object.
    any_of: Vec<Vec<ObjectPattern>>,
}

#[derive(Debug, Clone)]
struct Field {
    key: String,
    node: Node,
    /// The top-level `data`: absent (a payload that is not JSON) means no match, whatever the
    /// sub-pattern says (Lambda drops the record).
    must_exist: bool,
}

#[derive(Debug, Clone)]
enum Node {
    /// A leaf rule: any of these.
    Leaf(Vec<Rule>),
    Object(ObjectPattern),
}

#[derive(Debug, Clone)]
enum Rule {
    /// A string, number, boolean or null, equal to the value (numbers by representation).
    Exact(Value),
    /// Lowercased.
    EqualsIgnoreCase(String),
    Prefix(String),
    Suffix(String),
    AnythingBut {
        strings: Vec<String>,
        numbers: Vec<f64>,
    },
    /// All of these comparisons hold.
    Numeric(Vec<(Cmp, f64)>),
    Exists(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn parse(op: &str) -> Option<Cmp> {
        match op {
            "=" => Some(Cmp::Eq),
            "<" => Some(Cmp::Lt),
            "<=" => Some(Cmp::Le),
            ">" => Some(Cmp::Gt),
            ">=" => Some(Cmp::Ge),
            _ => None,
        }
    }

    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Cmp::Eq => value == bound,
            Cmp::Lt => value < bound,
            Cmp::Le => value <= bound,
            Cmp::Gt => value > bound,
            Cmp::Ge => value >= bound,
        }
    }

    fn is_lower(self) -> bool {
        matches!(self, Cmp::Gt | Cmp::Ge)
    }

    fn is_upper(self) -> bool {
        matches!(self, Cmp::Lt | Cmp::Le)
    }
}

impl Filter {
    /// Compiles one `Filters[].Pattern`. Errors carry Lambda's message
    /// ([`INVALID_PATTERN`]) followed by what is wrong and where.
    pub fn parse(pattern: &str) -> Result<Filter, FilterError> {
        let value: Value = serde_json::from_str(pattern)
            .map_err(|e| FilterError::new(format!("The pattern is not valid JSON: {e}.")))?;
        let Value::Object(object) = value else {
            return Err(FilterError::new(format!(
                "The pattern must be a JSON object, not {}.",
                kind(&value)
            )));
        };
        let mut path = Vec::new();
        let root = compile_object(&object, &mut path, 1, true)?;
        Ok(Filter {
            source: pattern.to_owned(),
            root,
        })
    }

    /// The pattern as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `record` matches.
    ///
    /// `record` is the record's filtering view, as [`kinesis_record_view`] builds it: the
    /// properties of the event record's `kinesis` object at the top level (the level Lambda's
    /// Kinesis filter examples name them at, e.g. `{"partitionKey": ["1"], "data": {...}}`),
    /// with `data` decoded from base64 and parsed as JSON, and left out when it is not JSON:
    ///
    /// ```json
    /// {
    ///     "kinesisSchemaVersion": "1.0",
    ///     "partitionKey": "1",
    ///     "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
    ///     "approximateArrivalTimestamp": 1545084650.987,
    ///     "data": {"City": "Seattle", "Temperature": 46}
    /// }
    /// ```
    ///
    /// A pattern with a top-level `data` key never matches a view without `data`.
    pub fn matches(&self, record: &Value) -> bool {
        object_matches(&self.root, Some(record))
    }
}

/// The value [`Filter::matches`] expects for one Kinesis record: `data` is the record's raw
/// payload (not base64), included parsed when it is valid JSON (UTF-8) and left out otherwise;
/// `arrival_ms` becomes `approximateArrivalTimestamp` in seconds with a fractional part, as
/// Lambda puts it in the event.
pub fn kinesis_record_view(
    partition_key: &str,
    sequence_number: &str,
    arrival_ms: i64,
    data: &[u8],
) -> Value {
    let mut view = Map::new();
    view.insert("kinesisSchemaVersion".to_owned(), Value::from("1.0"));
    view.insert("partitionKey".to_owned(), Value::from(partition_key));
    view.insert("sequenceNumber".to_owned(), Value::from(sequence_number));
    let arrival_s = Number::from_f64(arrival_ms as f64 / 1000.0).map_or(Value::Null, Value::Number);
    view.insert("approximateArrivalTimestamp".to_owned(), arrival_s);
    if let Ok(parsed) = serde_json::from_slice::<Value>(data) {
        view.insert("data".to_owned(), parsed);
    }
    Value::Object(view)
}

// ---- compiling ----

fn location(path: &[String]) -> String {
    if path.is_empty() {
        "At the top level".to_owned()
    } else {
        format!("At \"{}\"", path.join("."))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn compile_object(
    object: &Map<String, Value>,
    path: &mut Vec<String>,
    depth: usize,
    top: bool,
) -> Result<ObjectPattern, FilterError> {
    if depth > MAX_DEPTH {
        return Err(FilterError::at(
            path,
            format!("the pattern is nested deeper than {MAX_DEPTH} levels."),
        ));
    }
    if object.is_empty() {
        return Err(FilterError::at(
            path,
            "an object pattern must name at least one field.",
        ));
    }
    let mut fields = Vec::with_capacity(object.len());
    let mut any_of = Vec::new();
    for (key, value) in object {
        if key == "$or" {
            let Value::Array(branches) = value else {
                return Err(FilterError::at(
                    path,
                    format!(
                        "\"$or\" must be an array of object patterns, not {}.",
                        kind(value)
                    ),
                ));
            };
            if branches.is_empty() {
                return Err(FilterError::at(path, "\"$or\" must not be empty."));
            }
            let mut alternatives = Vec::with_capacity(branches.len());
            for branch in branches {
                let Value::Object(branch) = branch else {
                    return Err(FilterError::at(
                        path,
                        format!(
                            "each item of \"$or\" must be an object pattern, not {}.",
                            kind(branch)
                        ),
                    ));
                };
                alternatives.push(compile_object(branch, path, depth + 1, top)?);
            }
            any_of.push(alternatives);
            continue;
        }
        let is_data = top && key == "data";
        path.push(key.clone());
        let node = match value {
            Value::Array(_) if is_data => {
                return Err(FilterError::at(
                    path,
                    "a Kinesis record's data is filtered as JSON, so \"data\" must hold an \
                     object pattern, not a list of values.",
                ));
            }
            Value::Array(rules) => Node::Leaf(compile_rules(rules, path)?),
            Value::Object(sub) => Node::Object(compile_object(sub, path, depth + 1, false)?),
            other => {
                return Err(FilterError::at(
                    path,
                    format!(
                        "a field must hold an array of match values or an object pattern, not {}.",
                        kind(other)
                    ),
                ));
            }
        };
        path.pop();
        fields.push(Field {
            key: key.clone(),
            node,
            must_exist: is_data,
        });
    }
    Ok(ObjectPattern { fields, any_of })
}

fn compile_rules(rules: &[Value], path: &[String]) -> Result<Vec<Rule>, FilterError> {
    if rules.is_empty() {
        return Err(FilterError::at(
            path,
            "a list of match values must not be empty.",
        ));
    }
    rules
        .iter()
        .map(|rule| match rule {
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
                Ok(Rule::Exact(rule.clone()))
            }
            Value::Array(_) => Err(FilterError::at(
                path,
                "a list of match values must not contain an array.",
            )),
            Value::Object(operator) => compile_operator(operator, path),
        })
        .collect()
}

fn compile_operator(operator: &Map<String, Value>, path: &[String]) -> Result<Rule, FilterError> {
    let mut entries = operator.iter();
    let (Some((name, arg)), None) = (entries.next(), entries.next()) else {
        return Err(FilterError::at(
            path,
            format!(
                "an operator object must have exactly one key, not {}.",
                operator.len()
            ),
        ));
    };
    match name.as_str() {
        "equals-ignore-case" => match arg {
            Value::String(s) => Ok(Rule::EqualsIgnoreCase(s.to_lowercase())),
            other => Err(FilterError::at(
                path,
                format!(
                    "\"equals-ignore-case\" takes a string, not {}.",
                    kind(other)
                ),
            )),
        },
        "prefix" | "suffix" => match arg {
            Value::String(s) if name == "prefix" => Ok(Rule::Prefix(s.clone())),
            Value::String(s) => Ok(Rule::Suffix(s.clone())),
            Value::Object(_) => Err(FilterError::at(
                path,
                format!(
                    "\"{name}\" with an object (such as equals-ignore-case) is not part of \
                     Lambda's filter rule syntax; give a string."
                ),
            )),
            other => Err(FilterError::at(
                path,
                format!("\"{name}\" takes a string, not {}.", kind(other)),
            )),
        },
        "anything-but" => compile_anything_but(arg, path),
        "numeric" => compile_numeric(arg, path),
        "exists" => match arg {
            Value::Bool(b) => Ok(Rule::Exists(*b)),
            other => Err(FilterError::at(
                path,
                format!("\"exists\" takes true or false, not {}.", kind(other)),
            )),
        },
        "wildcard" | "cidr" => Err(FilterError::at(
            path,
            format!(
                "\"{name}\" is an EventBridge operator that Lambda's filter rule syntax does \
                 not include."
            ),
        )),
        other => Err(FilterError::at(
            path,
            format!(
                "unknown operator \"{other}\" (expected one of equals-ignore-case, prefix, \
                 suffix, anything-but, numeric, exists)."
            ),
        )),
    }
}

fn compile_anything_but(arg: &Value, path: &[String]) -> Result<Rule, FilterError> {
    let mut strings = Vec::new();
    let mut numbers = Vec::new();
    let mut add = |value: &Value| -> Result<(), FilterError> {
        match value {
            Value::String(s) => strings.push(s.clone()),
            Value::Number(n) => numbers.push(number(n, path)?),
            other => {
                return Err(FilterError::at(
                    path,
                    format!(
                        "\"anything-but\" takes strings or numbers, not {}.",
                        kind(other)
                    ),
                ));
            }
        }
        Ok(())
    };
    match arg {
        Value::Array(values) if values.is_empty() => {
            return Err(FilterError::at(path, "\"anything-but\" must not be empty."));
        }
        Value::Array(values) => {
            for value in values {
                add(value)?;
            }
        }
        Value::Object(_) => {
            return Err(FilterError::at(
                path,
                "\"anything-but\" with an object (prefix, suffix, equals-ignore-case, \
                 wildcard) is not part of Lambda's filter rule syntax; give a value or a list \
                 of values.",
            ));
        }
        value => add(value)?,
    }
    Ok(Rule::AnythingBut { strings, numbers })
}

fn number(n: &Number, path: &[String]) -> Result<f64, FilterError> {
    match n.as_f64() {
        Some(f) if f.is_finite() => Ok(f),
        _ => Err(FilterError::at(
            path,
            format!("{n} is not a usable number."),
        )),
    }
}

fn compile_numeric(arg: &Value, path: &[String]) -> Result<Rule, FilterError> {
    const SHAPE: &str = "\"numeric\" takes [op, number] or [lower-op, number, upper-op, number], \
                         with op one of =, <, <=, >, >= (lower-op > or >=, upper-op < or <=).";
    let Value::Array(items) = arg else {
        return Err(FilterError::at(path, SHAPE));
    };
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return Err(FilterError::at(path, SHAPE));
    }
    let mut conditions = Vec::with_capacity(items.len() / 2);
    for pair in items.chunks(2) {
        let (op, bound) = match pair {
            [Value::String(op), Value::Number(bound)] => (op, bound),
            [Value::String(_), other] => {
                return Err(FilterError::at(
                    path,
                    format!(
                        "\"numeric\" compares with numbers, not {} ({other}).",
                        kind(other)
                    ),
                ));
            }
            _ => return Err(FilterError::at(path, SHAPE)),
        };
        let Some(cmp) = Cmp::parse(op) else {
            return Err(FilterError::at(
                path,
                format!("\"{op}\" is not a numeric operator; {SHAPE}"),
            ));
        };
        conditions.push((cmp, number(bound, path)?));
    }
    if let [(first, a), (second, b)] = conditions.as_slice() {
        let (lower, upper) = if first.is_lower() && second.is_upper() {
            ((*first, *a), (*second, *b))
        } else if first.is_upper() && second.is_lower() {
            ((*second, *b), (*first, *a))
        } else {
            return Err(FilterError::at(path, SHAPE));
        };
        let empty =
            lower.1 > upper.1 || (lower.1 == upper.1 && (lower.0 == Cmp::Gt || upper.0 == Cmp::Lt));
        if empty {
            return Err(FilterError::at(
                path,
                format!(
                    "the numeric range from {} to {} is empty.",
                    lower.1, upper.1
                ),
            ));
        }
    }
    Ok(Rule::Numeric(conditions))
}

// ---- matching ----

/// The non-array values at `value`, arrays (nested ones too) flattened, without recursion.
fn flatten(value: Option<&Value>) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = value.into_iter().collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items.iter().rev()),
            other => out.push(other),
        }
    }
    out
}

fn object_matches(pattern: &ObjectPattern, value: Option<&Value>) -> bool {
    if let Some(Value::Array(_)) = value {
        let elements = flatten(value);
        if elements.is_empty() {
            return object_matches_one(pattern, None);
        }
        return elements
            .into_iter()
            .any(|element| object_matches_one(pattern, Some(element)));
    }
    object_matches_one(pattern, value)
}

/// `value` is not an array here.
fn object_matches_one(pattern: &ObjectPattern, value: Option<&Value>) -> bool {
    let object = value.and_then(Value::as_object);
    let fields = pattern.fields.iter().all(|field| {
        let child = object.and_then(|o| o.get(&field.key));
        if field.must_exist && child.is_none() {
            return false;
        }
        match &field.node {
            Node::Leaf(rules) => leaf_matches(rules, child),
            Node::Object(sub) => object_matches(sub, child),
        }
    });
    fields
        && pattern.any_of.iter().all(|alternatives| {
            alternatives
                .iter()
                .any(|alternative| object_matches_one(alternative, value))
        })
}

fn leaf_matches(rules: &[Rule], value: Option<&Value>) -> bool {
    let leaves: Vec<&Value> = flatten(value)
        .into_iter()
        .filter(|v| !v.is_object())
        .collect();
    rules.iter().any(|rule| match rule {
        Rule::Exists(wanted) => leaves.is_empty() != *wanted,
        other => leaves.iter().any(|leaf| other.matches_leaf(leaf)),
    })
}

impl Rule {
    /// `leaf` is a string, number, boolean or null.
    fn matches_leaf(&self, leaf: &Value) -> bool {
        match self {
            Rule::Exact(expected) => expected == leaf,
            Rule::EqualsIgnoreCase(lower) => {
                leaf.as_str().is_some_and(|s| s.to_lowercase() == *lower)
            }
            Rule::Prefix(prefix) => leaf
                .as_str()
                .is_some_and(|s| s.starts_with(prefix.as_str())),
            Rule::Suffix(suffix) => leaf.as_str().is_some_and(|s| s.ends_with(suffix.as_str())),
            Rule::AnythingBut { strings, numbers } => match leaf {
                Value::String(s) => !strings.contains(s),
                Value::Number(n) => n.as_f64().is_none_or(|f| !numbers.contains(&f)),
                _ => true,
            },
            Rule::Numeric(conditions) => match leaf {
                Value::Number(n) => n
                    .as_f64()
                    .is_some_and(|f| conditions.iter().all(|(cmp, bound)| cmp.holds(f, *bound))),
                _ => false,
            },
            Rule::Exists(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(pattern: &str) -> Filter {
        match Filter::parse(pattern) {
            Ok(f) => f,
            Err(e) => panic!("{pattern}: {e}"),
        }
    }

    fn yes(pattern: &str, record: Value) {
        assert!(
            filter(pattern).matches(&record),
            "{pattern} should match {record}"
        );
    }

    fn no(pattern: &str, record: Value) {
        assert!(
            !filter(pattern).matches(&record),
            "{pattern} should not match {record}"
        );
    }

    fn invalid(pattern: &str, needle: &str) {
        match Filter::parse(pattern) {
            Ok(_) => panic!("{pattern} should be refused"),
            Err(FilterError(message)) => {
                assert!(message.starts_with(INVALID_PATTERN), "{message}");
                assert!(
                    message.contains(needle),
                    "{pattern}: {message} lacks {needle:?}"
                );
            }
        }
    }

    // The rows of the Lambda guide's "Filter rule syntax" table.

    #[test]
    fn null_and_empty() {
        let p = r#"{"UserID": [ null ]}"#;
        yes(p, json!({"UserID": null}));
        no(p, json!({"UserID": "u1"}));
        no(p, json!({}));
        let p = r#"{"LastName": [""]}"#;
        yes(p, json!({"LastName": ""}));
        no(p, json!({"LastName": "Doe"}));
        no(p, json!({"LastName": null}));
    }

    #[test]
    fn equals_and_ignore_case() {
        let p = r#"{"Name": [ "Alice" ]}"#;
        yes(p, json!({"Name": "Alice"}));
        no(p, json!({"Name": "alice"}));
        no(p, json!({"Name": "Alice "}));
        let p = r#"{"Name": [ { "equals-ignore-case": "alice" } ]}"#;
        yes(p, json!({"Name": "ALICE"}));
        yes(p, json!({"Name": "Alice"}));
        no(p, json!({"Name": "Alicia"}));
        no(p, json!({"Name": 1}));
        // Booleans match exactly too.
        yes(r#"{"ok": [true]}"#, json!({"ok": true}));
        no(r#"{"ok": [true]}"#, json!({"ok": "true"}));
    }

    #[test]
    fn and_or_and_dollar_or() {
        let p = r#"{"Location": [ "New York" ], "Day": ["Monday"]}"#;
        yes(p, json!({"Location": "New York", "Day": "Monday"}));
        no(p, json!({"Location": "New York", "Day": "Tuesday"}));
        no(p, json!({"Location": "New York"}));
        let p = r#"{"PaymentType": [ "Credit", "Debit"]}"#;
        yes(p, json!({"PaymentType": "Credit"}));
        yes(p, json!({"PaymentType": "Debit"}));
        no(p, json!({"PaymentType": "Cash"}));
        let p = r#"{"$or": [ { "Location": [ "New York" ] }, { "Day": [ "Monday" ] } ]}"#;
        yes(p, json!({"Location": "New York", "Day": "Sunday"}));
        yes(p, json!({"Location": "Boston", "Day": "Monday"}));
        no(p, json!({"Location": "Boston", "Day": "Sunday"}));
        // $or is ANDed with its siblings.
        let p = r#"{"Kind": ["order"], "$or": [ { "Location": [ "New York" ] }, { "Day": [ "Monday" ] } ]}"#;
        yes(p, json!({"Kind": "order", "Day": "Monday"}));
        no(p, json!({"Kind": "refund", "Day": "Monday"}));
    }

    #[test]
    fn anything_but() {
        let p = r#"{"Weather": [ { "anything-but": [ "Raining" ] } ]}"#;
        yes(p, json!({"Weather": "Sunny"}));
        no(p, json!({"Weather": "Raining"}));
        no(p, json!({}));
        let p = r#"{"state": [ { "anything-but": "initializing" } ]}"#;
        yes(p, json!({"state": "running"}));
        no(p, json!({"state": "initializing"}));
        let p = r#"{"code": [ { "anything-but": [ 100, 200 ] } ]}"#;
        yes(p, json!({"code": 300}));
        no(p, json!({"code": 200}));
        no(p, json!({"code": 200.0}));
    }

    #[test]
    fn numeric() {
        let p = r#"{"Price": [ { "numeric": [ "=", 100 ] } ]}"#;
        yes(p, json!({"Price": 100}));
        yes(p, json!({"Price": 100.0}));
        no(p, json!({"Price": 101}));
        no(p, json!({"Price": "100"}));
        let p = r#"{"Price": [ { "numeric": [ ">", 10, "<=", 20 ] } ]}"#;
        yes(p, json!({"Price": 20}));
        yes(p, json!({"Price": 10.5}));
        no(p, json!({"Price": 10}));
        no(p, json!({"Price": 20.01}));
        no(p, json!({}));
        // Bounds in either order; one-sided.
        yes(
            r#"{"n": [{"numeric": ["<", 0, ">=", -5]}]}"#,
            json!({"n": -5}),
        );
        yes(r#"{"n": [{"numeric": [">=", 1e3]}]}"#, json!({"n": 1000}));
        no(r#"{"n": [{"numeric": ["<", -1]}]}"#, json!({"n": -1}));
    }

    #[test]
    fn exact_numbers_compare_by_representation() {
        // The guide: "300, 300.0, and 3.0e2 are not considered equal".
        let p = r#"{"n": [300]}"#;
        yes(p, json!({"n": 300}));
        no(p, json!({"n": 300.0}));
        no(p, json!({"n": "300"}));
    }

    #[test]
    fn exists() {
        let p = r#"{"ProductName": [ { "exists": true } ]}"#;
        yes(p, json!({"ProductName": "Widget"}));
        yes(p, json!({"ProductName": null}));
        no(p, json!({"Other": "x"}));
        let p = r#"{"ProductName": [ { "exists": false } ]}"#;
        yes(p, json!({"Other": "x"}));
        no(p, json!({"ProductName": "Widget"}));
        // Exists only works on leaf nodes (the guide's person/address example).
        let p = r#"{"person": {"address": [ { "exists": true } ]}}"#;
        no(p, json!({"person": {"address": {"street": "Main"}}}));
        yes(p, json!({"person": {"address": "1 Main St"}}));
        // Under a missing parent there is no leaf either.
        yes(r#"{"a": {"b": [{"exists": false}]}}"#, json!({}));
        yes(r#"{"tags": [{"exists": false}]}"#, json!({"tags": []}));
    }

    #[test]
    fn prefix_and_suffix() {
        let p = r#"{"Region": [ {"prefix": "us-" } ]}"#;
        yes(p, json!({"Region": "us-east-1"}));
        no(p, json!({"Region": "eu-west-1"}));
        no(p, json!({"Region": "US-east-1"}));
        let p = r#"{"FileName": [ { "suffix": ".png" } ]}"#;
        yes(p, json!({"FileName": "cat.png"}));
        no(p, json!({"FileName": "cat.jpg"}));
        no(p, json!({"FileName": 7}));
    }

    #[test]
    fn event_arrays_match_any_element() {
        let p = r#"{"tags": ["red"]}"#;
        yes(p, json!({"tags": ["blue", "red"]}));
        yes(p, json!({"tags": [["blue"], ["red"]]}));
        no(p, json!({"tags": ["blue"]}));
        no(p, json!({"tags": []}));
        // An object pattern over an array of objects: one element matches it all.
        let p = r#"{"items": {"sku": ["A"], "qty": [{"numeric": [">", 1]}]}}"#;
        yes(
            p,
            json!({"items": [{"sku": "B", "qty": 5}, {"sku": "A", "qty": 2}]}),
        );
        no(
            p,
            json!({"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 5}]}),
        );
    }

    // The Kinesis examples, through the record view.

    fn kinesis(partition_key: &str, data: &[u8]) -> Value {
        kinesis_record_view(
            partition_key,
            "49590338271490256608559692538361571095921575989136588898",
            1_545_084_650_987,
            data,
        )
    }

    #[test]
    fn kinesis_view_shape() {
        let view = kinesis("1", br#"{"City": "Seattle"}"#);
        assert_eq!(
            view,
            json!({
                "kinesisSchemaVersion": "1.0",
                "partitionKey": "1",
                "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                "approximateArrivalTimestamp": 1_545_084_650.987,
                "data": {"City": "Seattle"}
            })
        );
        assert!(kinesis("1", b"not json").get("data").is_none());
        assert!(kinesis("1", b"").get("data").is_none());
        assert!(kinesis("1", &[0xff, 0xfe]).get("data").is_none());
    }

    #[test]
    fn kinesis_guide_examples() {
        let p = r#"{ "partitionKey": [ "1" ], "data": { "Location": [ "Los Angeles" ] }}"#;
        yes(p, kinesis("1", br#"{"Location": "Los Angeles"}"#));
        no(p, kinesis("2", br#"{"Location": "Los Angeles"}"#));
        no(p, kinesis("1", br#"{"Location": "Seattle"}"#));
        let p = r#"{ "data": { "Temperature": [ {"numeric": [ ">", 50, "<=", 60 ] } ]}}"#;
        yes(p, kinesis("1", br#"{"Temperature": 55}"#));
        no(p, kinesis("1", br#"{"Temperature": 61}"#));
        let p = r#"{ "data" : { "order" : { "type" : [ "buy" ] } } }"#;
        let buy =
            br#"{"record": 12345, "order": {"type": "buy", "stock": "ANYCO", "quantity": 1000}}"#;
        yes(p, kinesis("1", buy));
        no(
            p,
            kinesis("1", br#"{"record": 1, "order": {"type": "sell"}}"#),
        );
        let p = r#"{"approximateArrivalTimestamp": [{"numeric": [">", 1545084650]}]}"#;
        yes(p, kinesis("1", b"x"));
    }

    #[test]
    fn kinesis_non_json_data() {
        // A data pattern drops a record whose payload is not JSON, even one that would hold
        // for a missing field.
        no(r#"{"data": {"a": ["b"]}}"#, kinesis("1", b"plain text"));
        no(
            r#"{"data": {"a": [{"exists": false}]}}"#,
            kinesis("1", b"plain text"),
        );
        yes(
            r#"{"data": {"a": [{"exists": false}]}}"#,
            kinesis("1", b"{}"),
        );
        // Without one, metadata alone decides.
        yes(r#"{"partitionKey": ["1"]}"#, kinesis("1", b"plain text"));
        // A data pattern inside a top-level $or only fails its own branch.
        let p = r#"{"$or": [{"data": {"a": ["b"]}}, {"partitionKey": ["1"]}]}"#;
        yes(p, kinesis("1", b"plain text"));
        no(p, kinesis("2", b"plain text"));
        yes(p, kinesis("2", br#"{"a": "b"}"#));
    }

    #[test]
    fn invalid_patterns() {
        invalid("not json", "not valid JSON");
        invalid(r#"["a"]"#, "must be a JSON object");
        invalid(r#""a""#, "must be a JSON object");
        invalid("{}", "at least one field");
        invalid(r#"{"a": {}}"#, "At \"a\"");
        invalid(r#"{"a": "b"}"#, "array of match values");
        invalid(r#"{"a": 1}"#, "array of match values");
        invalid(r#"{"a": []}"#, "must not be empty");
        invalid(r#"{"a": [["b"]]}"#, "must not contain an array");
        invalid(r#"{"a": [{"regex": "b"}]}"#, "unknown operator \"regex\"");
        invalid(
            r#"{"a": [{"prefix": "b", "suffix": "c"}]}"#,
            "exactly one key",
        );
        invalid(r#"{"a": [{}]}"#, "exactly one key");
        invalid(r#"{"a": [{"prefix": 1}]}"#, "takes a string");
        invalid(
            r#"{"a": [{"prefix": {"equals-ignore-case": "x"}}]}"#,
            "not part of",
        );
        invalid(
            r#"{"a": [{"equals-ignore-case": ["x"]}]}"#,
            "takes a string",
        );
        invalid(r#"{"a": [{"exists": "yes"}]}"#, "true or false");
        invalid(r#"{"a": [{"anything-but": []}]}"#, "must not be empty");
        invalid(r#"{"a": [{"anything-but": [null]}]}"#, "strings or numbers");
        invalid(
            r#"{"a": [{"anything-but": {"prefix": "x"}}]}"#,
            "not part of",
        );
        invalid(r#"{"a": [{"wildcard": "*.png"}]}"#, "EventBridge operator");
        invalid(
            r#"{"a": [{"cidr": "10.0.0.0/24"}]}"#,
            "EventBridge operator",
        );
        invalid(
            r#"{"a": [{"numeric": ["!=", 1]}]}"#,
            "not a numeric operator",
        );
        invalid(
            r#"{"a": [{"numeric": [">", 1, "<"]}]}"#,
            "\"numeric\" takes",
        );
        invalid(r#"{"a": [{"numeric": []}]}"#, "\"numeric\" takes");
        invalid(
            r#"{"a": [{"numeric": [">", "1"]}]}"#,
            "compares with numbers",
        );
        invalid(
            r#"{"a": [{"numeric": [">", 1, ">", 2]}]}"#,
            "\"numeric\" takes",
        );
        invalid(
            r#"{"a": [{"numeric": ["=", 1, "<", 2]}]}"#,
            "\"numeric\" takes",
        );
        invalid(r#"{"a": [{"numeric": [">", 5, "<", 1]}]}"#, "is empty");
        invalid(
            r#"{"a": [{"numeric": [">", 1, "<", 2, ">", 0]}]}"#,
            "\"numeric\" takes",
        );
        invalid(r#"{"a": [{"numeric": 5}]}"#, "\"numeric\" takes");
        invalid(r#"{"$or": {"a": ["b"]}}"#, "\"$or\" must be an array");
        invalid(r#"{"$or": []}"#, "\"$or\" must not be empty");
        invalid(r#"{"$or": ["a"]}"#, "each item of \"$or\"");
        invalid(r#"{"data": ["x"]}"#, "object pattern");
        invalid(
            r#"{"$or": [{"data": [{"exists": true}]}]}"#,
            "object pattern",
        );
        invalid(r#"{"x": {"y": {"z": [{"bogus": 1}]}}}"#, "At \"x.y.z\"");
        // The exact wording starts with Lambda's message.
        let Err(FilterError(message)) = Filter::parse("[]") else {
            panic!("accepted");
        };
        assert!(
            message.starts_with("Invalid filter pattern definition. "),
            "{message}"
        );
        // Nested "data" below the top level is an ordinary field.
        yes(r#"{"x": {"data": ["y"]}}"#, json!({"x": {"data": "y"}}));
    }

    fn nested(levels: usize) -> String {
        let mut pattern = "[\"v\"]".to_owned();
        for _ in 0..levels {
            pattern = format!("{{\"k\": {pattern}}}");
        }
        pattern
    }

    #[test]
    fn depth_bound() {
        // MAX_DEPTH object levels compile and match; one more is refused.
        let ok = filter(&nested(MAX_DEPTH));
        let mut record = json!("v");
        for _ in 0..MAX_DEPTH {
            record = json!({ "k": record });
        }
        assert!(ok.matches(&record));
        invalid(&nested(MAX_DEPTH + 1), "deeper than 32");
        // Far deeper than serde_json's own limit: an error, not a stack overflow.
        let deep = format!("{}{}", "{\"k\":".repeat(10_000), "}".repeat(10_000));
        invalid(&deep, "not valid JSON");
        // $or branches count as a level.
        let mut pattern = "{\"k\": [\"v\"]}".to_owned();
        for _ in 0..MAX_DEPTH {
            pattern = format!("{{\"$or\": [{pattern}]}}");
        }
        invalid(&pattern, "deeper than 32");
    }

    #[test]
    fn fuzzish_records_never_panic() {
        let f = filter(
            r#"{"partitionKey": [{"prefix": "p"}], "data": {"a": {"b": [{"numeric": [">=", 0]}, {"anything-but": "x"}, {"exists": false}]}}}"#,
        );
        // Deeply nested payload: past serde_json's recursion limit it is simply not JSON.
        let deep_data = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
        assert!(!f.matches(&kinesis("p1", deep_data.as_bytes())));
        // Deeply nested arrays under a matched field (within the limit) are flattened.
        let arrays = format!(
            "{{\"a\": {{\"b\": {}3{}}}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(f.matches(&kinesis("p1", arrays.as_bytes())));
        // Odd shapes everywhere.
        for record in [
            json!(null),
            json!(1),
            json!("s"),
            json!([]),
            json!([{"partitionKey": "p", "data": {"a": {"b": 1}}}]),
            json!({"partitionKey": ["p"], "data": [{"a": [{"b": [null, true, "x"]}]}]}),
            json!({"partitionKey": {"x": "p"}, "data": {"a": 5}}),
            json!({"partitionKey": "p", "data": {"a": {"b": {"c": 1}}}}),
            json!({"partitionKey": "p", "data": {"a": {"b": 1.0e300}}}),
            json!({"partitionKey": "p", "data": {"a": {"b": u64::MAX}}}),
        ] {
            let _ = f.matches(&record);
        }
        assert!(f.matches(&json!({"partitionKey": "p", "data": {"a": {"b": u64::MAX}}})));
        assert!(!f.matches(&json!(null)));
        assert!(f.matches(
            &json!({"partitionKey": ["q", "p"], "data": [{"a": [{"b": [null, true, "x"]}]}]})
        ));
    }

    #[test]
    fn source_is_kept() {
        let text = r#"{ "data": { "a": [ "b" ] } }"#;
        assert_eq!(filter(text).source(), text);
    }
}
