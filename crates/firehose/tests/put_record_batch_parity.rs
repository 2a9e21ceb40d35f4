//! PutRecordBatch has two decoders, the generic one over the request tree and the fast JSON
//! one; both must give the same outcome for every body. Generated bodies mix valid and invalid
//! members, escapes, duplicates, unknown members, wrong types and limits. Whenever the fast
//! decoder answers, the generic path must answer the same request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sluice_aws::testing::{base64_data, body, escaped, json_str, list_of};
use sluice_aws::{codec, Format, Input};
use sluice_firehose::ops::records::PutRecordBatchRequest;

fn generic(body: &[u8]) -> Result<PutRecordBatchRequest, sluice_aws::ApiError> {
    let value = codec::decode(body, Format::Json)?;
    let input = Input::root(&value, Format::Json)?;
    PutRecordBatchRequest::parse(input)
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
    prop_oneof![9 => base64_data(), 1 => Just(json_str(""))].boxed()
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

fn request() -> BoxedStrategy<String> {
    let members = (
        proptest::option::weighted(0.9, name()),
        proptest::option::weighted(0.95, list_of(entry())),
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
    body(members.boxed())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn the_fast_decoder_agrees_with_the_one_parser(body in request()) {
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
