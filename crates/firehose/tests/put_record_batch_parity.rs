//! PutRecordBatch has two decoders, the generic one over the request tree and the fast JSON
//! one; both must give the same outcome for every body. Generated bodies mix valid and invalid
//! members, escapes, duplicates, unknown members, wrong types and limits. Whenever the fast
//! decoder answers, the generic path must answer the same request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sluice_aws::{codec, Format, Input};
use sluice_firehose::ops::records::PutRecordBatchRequest;

fn generic(body: &[u8]) -> Result<PutRecordBatchRequest, sluice_aws::ApiError> {
    let value = codec::decode(body, Format::Json)?;
    let input = Input::root(&value, Format::Json)?;
    PutRecordBatchRequest::parse(input)
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A string written with every character as a `\uXXXX` escape (what serde's borrowed `&str`
/// cannot take, so the fast path must give up or agree).
fn escaped(s: &str) -> String {
    let mut out = String::from("\"");
    for u in s.encode_utf16() {
        out.push_str(&format!("\\u{u:04x}"));
    }
    out.push('"');
    out
}

fn name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just(json_str("clicks")),
        1 => Just(escaped("clicks")),
        1 => Just(json_str("bad name")),
        1 => Just(json_str("a.b-c_d")),
        1 => Just(json_str(&"s".repeat(64))),
        1 => Just(json_str(&"s".repeat(65))),
        1 => Just(json_str("")),
        1 => Just(json_str("é")),
        1 => Just("42".to_string()),
        1 => Just("null".to_string()),
        1 => Just("[\"clicks\"]".to_string()),
    ]
    .boxed()
}

fn data() -> BoxedStrategy<String> {
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
        1 => Just(json_str("")),
        1 => Just("null".to_string()),
        1 => Just("12".to_string()),
        1 => Just("{}".to_string()),
    ]
    .boxed()
}

fn entry() -> BoxedStrategy<String> {
    let object = (
        proptest::option::weighted(0.95, data()),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.05),
    )
        .prop_map(|(d, unknown, dup)| {
            let mut m = Vec::new();
            if let Some(d) = &d {
                m.push(format!("\"Data\":{d}"));
            }
            if unknown {
                m.push("\"Extra\":[1,{\"a\":null}]".to_string());
            }
            if dup {
                m.push(format!(
                    "\"Data\":{}",
                    d.unwrap_or_else(|| json_str("AA=="))
                ));
            }
            format!("{{{}}}", m.join(","))
        });
    prop_oneof![
        20 => object,
        1 => Just("[\"aGVsbG8=\"]".to_string()),
        1 => Just("null".to_string()),
        1 => Just("\"x\"".to_string()),
    ]
    .boxed()
}

fn records() -> BoxedStrategy<String> {
    prop_oneof![
        20 => proptest::collection::vec(entry(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
        1 => entry().prop_map(|e| format!("[{}]", vec![e; 500].join(","))),
        1 => entry().prop_map(|e| format!("[{}]", vec![e; 501].join(","))),
        1 => Just("{}".to_string()),
        1 => Just("null".to_string()),
        1 => Just("\"records\"".to_string()),
    ]
    .boxed()
}

fn body() -> BoxedStrategy<String> {
    let members = (
        proptest::option::weighted(0.9, name()),
        proptest::option::weighted(0.95, records()),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.05),
        proptest::bool::weighted(0.3),
    )
        .prop_map(|(name, records, unknown, dup_name, name_last)| {
            let mut m = Vec::new();
            if let Some(r) = records {
                m.push(format!("\"Records\":{r}"));
            }
            if let Some(n) = &name {
                let member = format!("\"DeliveryStreamName\":{n}");
                if name_last {
                    m.push(member);
                } else {
                    m.insert(0, member);
                }
            }
            if unknown {
                m.push("\"Unknown\":{\"x\":[true]}".to_string());
            }
            if dup_name {
                m.push(format!("\"DeliveryStreamName\":{}", json_str("other")));
            }
            format!("{{ {} }}", m.join(" , "))
        });
    prop_oneof![
        30 => members,
        1 => Just("[]".to_string()),
        1 => Just("\"x\"".to_string()),
        1 => Just("{".to_string()),
        1 => Just("{} []".to_string()),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn the_fast_decoder_agrees_with_the_one_parser(body in body()) {
        if let Some(fast) = PutRecordBatchRequest::decode_json(body.as_bytes()) {
            let slow = generic(body.as_bytes());
            prop_assert_eq!(slow.as_ref(), Ok(&fast), "body: {}", body);
        }
    }
}

/// The fast decoder does take the common case (so the property above is not vacuous), and
/// declines what it must leave to the generic path, limits included.
#[test]
fn the_fast_decoder_takes_plain_bodies_and_declines_the_rest() {
    let plain = r#"{"DeliveryStreamName":"clicks","Records":[{"Data":"aGVsbG8="},{"Data":""}]}"#;
    let fast = PutRecordBatchRequest::decode_json(plain.as_bytes()).expect("plain body");
    assert_eq!(generic(plain.as_bytes()), Ok(fast));

    let b64 = |n: usize| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(vec![7u8; n])
    };
    let batch = |sizes: &[usize]| {
        let records: Vec<String> = sizes
            .iter()
            .map(|&n| format!("{{\"Data\":\"{}\"}}", b64(n)))
            .collect();
        format!(
            "{{\"DeliveryStreamName\":\"clicks\",\"Records\":[{}]}}",
            records.join(",")
        )
    };
    // At the limits: a record of 1,000 KiB, 4 MiB in all.
    for at in [
        batch(&[1_024_000]),
        batch(&[1_024_000, 1_024_000, 1_024_000, 1_024_000, 98_304]),
    ] {
        let fast = PutRecordBatchRequest::decode_json(at.as_bytes()).expect("at the limits");
        assert_eq!(generic(at.as_bytes()), Ok(fast));
    }
    for declined in [
        batch(&[1_024_001]),
        batch(&[1_024_000, 1_024_000, 1_024_000, 1_024_000, 98_305]),
        r#"["clicks"]"#.to_string(),
        r#"{"DeliveryStreamName":"clicks","Records":[["aGVsbG8="]]}"#.to_string(),
        r#"{"DeliveryStreamName":"clicks","Records":[]}"#.to_string(),
        r#"{"DeliveryStreamName":"bad name","Records":[{"Data":""}]}"#.to_string(),
        r#"{"Records":[{"Data":""}]}"#.to_string(),
    ] {
        assert!(
            PutRecordBatchRequest::decode_json(declined.as_bytes()).is_none(),
            "{}",
            &declined[..declined.len().min(120)]
        );
        assert!(generic(declined.as_bytes()).is_err());
    }
}
