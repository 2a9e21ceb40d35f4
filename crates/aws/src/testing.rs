//! Generators for the property tests that hold a service's fast JSON decoder equal to the
//! generic parser (Kinesis PutRecords, Firehose PutRecordBatch): members written as JSON text,
//! valid and not. Behind the `testing` feature; services take it as a dev-dependency.

use proptest::prelude::*;

/// `s` as a JSON string.
pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A string written with every character as a `\uXXXX` escape (what serde's borrowed `&str`
/// cannot take, so a fast path must give up or agree).
pub fn escaped(s: &str) -> String {
    let mut out = String::from("\"");
    for u in s.encode_utf16() {
        out.push_str(&format!("\\u{u:04x}"));
    }
    out.push('"');
    out
}

/// A blob member's value: base64 of every length, padded or not, escaped, bad alphabet, and
/// other JSON types.
pub fn base64_data() -> BoxedStrategy<String> {
    prop_oneof![
        6 => "[A-Za-z0-9+/]{0,12}".prop_map(|s| {
            let n = s.len() / 4 * 4;
            json_str(&s[..n])
        }),
        1 => Just(json_str("aGVsbG8=")),
        1 => Just("\"aGVsbG8\\u003d\"".to_string()),
        1 => Just(json_str("aGVsbG8")),
        1 => Just(json_str("a*==")),
        1 => Just(json_str("aGVsbG9=")),
        1 => Just("null".to_string()),
        1 => Just("12".to_string()),
        1 => Just("{}".to_string()),
    ]
    .boxed()
}

/// A list member of `entry`s: short lists, 500 and 501 of one entry, and values that are not
/// lists.
pub fn list_of(entry: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![
        20 => proptest::collection::vec(entry.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
        1 => entry.clone().prop_map(|e| format!("[{}]", vec![e; 500].join(","))),
        1 => entry.prop_map(|e| format!("[{}]", vec![e; 501].join(","))),
        1 => Just("{}".to_string()),
        1 => Just("null".to_string()),
        1 => Just("\"records\"".to_string()),
    ]
    .boxed()
}

/// Request bodies: mostly `object` (members joined into an object), sometimes JSON that is
/// not an object or not JSON.
pub fn body(object: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![
        30 => object,
        1 => Just("[]".to_string()),
        1 => Just("\"x\"".to_string()),
        1 => Just("{".to_string()),
        1 => Just("{} []".to_string()),
    ]
    .boxed()
}
