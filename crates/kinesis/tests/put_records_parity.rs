//! PutRecords has two decoders, the generic one over the request tree and the fast JSON one;
//! both must give the same outcome for every body. Generated bodies mix valid and invalid
//! members, escapes, duplicates, unknown members, name/ARN mismatches, wrong types and limits.
//! Whenever the fast decoder answers, the generic path must answer the same request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sluice_aws::testing::{base64_data, body, escaped, json_str, list_of};
use sluice_aws::{codec, Format, Input};
use sluice_kinesis::ops::PutRecordsRequest;

const ACCOUNT: &str = "000000000000";

fn generic(body: &[u8]) -> Result<PutRecordsRequest, sluice_aws::ApiError> {
    let value = codec::decode(body, Format::Json)?;
    let input = Input::root(&value, Format::Json)?;
    PutRecordsRequest::parse(input, ACCOUNT)
}

fn stream_name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just(json_str("clicks")),
        1 => Just(escaped("clicks")),
        1 => Just(json_str("other")),
        1 => Just(json_str("bad name")),
        1 => Just(json_str(&"s".repeat(129))),
        1 => Just(json_str(&"s".repeat(128))),
        1 => Just(json_str("")),
        1 => Just("42".to_string()),
        1 => Just("null".to_string()),
        1 => Just("true".to_string()),
        1 => Just("[\"clicks\"]".to_string()),
    ]
    .boxed()
}

fn stream_arn() -> BoxedStrategy<String> {
    prop_oneof![
        Just(json_str(
            "arn:aws:kinesis:us-east-1:000000000000:stream/clicks"
        )),
        Just(json_str(
            "arn:aws:kinesis:us-east-1:000000000000:stream/other"
        )),
        Just(json_str(
            "arn:aws:kinesis:us-east-1:111111111111:stream/clicks"
        )),
        Just(json_str("arn:aws:kinesis:us-east-1:0000:stream/clicks")),
        Just(json_str("not-an-arn")),
        Just("null".to_string()),
        Just("7".to_string()),
    ]
    .boxed()
}

fn partition_key() -> BoxedStrategy<String> {
    prop_oneof![
        6 => "[a-z0-9]{1,8}".prop_map(|s| json_str(&s)),
        1 => Just(json_str("")),
        1 => Just(json_str(&"k".repeat(256))),
        1 => Just(json_str(&"k".repeat(257))),
        1 => Just(json_str(&"é".repeat(256))),
        1 => Just(json_str(&"é".repeat(257))),
        1 => Just(escaped("key")),
        1 => Just(json_str("tab\there")),
        1 => Just("null".to_string()),
        1 => Just("false".to_string()),
    ]
    .boxed()
}

fn hash_key() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(json_str("0"))),
        1 => Just(Some(json_str("340282366920938463463374607431768211455"))),
        1 => Just(Some(json_str("340282366920938463463374607431768211456"))),
        1 => Just(Some(json_str("999999999999999999999999999999999999999"))),
        1 => Just(Some(json_str("01"))),
        1 => Just(Some(json_str("abc"))),
        1 => Just(Some("null".to_string())),
        1 => Just(Some("5".to_string())),
    ]
    .boxed()
}

fn entry() -> BoxedStrategy<String> {
    let object = (
        proptest::option::weighted(0.95, base64_data()),
        proptest::option::weighted(0.95, partition_key()),
        hash_key(),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.05),
    )
        .prop_map(|(d, k, h, unknown, dup)| {
            let mut m = Vec::new();
            if let Some(d) = &d {
                m.push(format!("\"Data\":{d}"));
            }
            if let Some(k) = k {
                m.push(format!("\"PartitionKey\":{k}"));
            }
            if let Some(h) = h {
                m.push(format!("\"ExplicitHashKey\":{h}"));
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
        1 => Just("[\"aGVsbG8=\",\"k\"]".to_string()),
        1 => Just("null".to_string()),
        1 => Just("\"x\"".to_string()),
    ]
    .boxed()
}

fn request() -> BoxedStrategy<String> {
    let members = (
        proptest::option::weighted(0.9, stream_name()),
        proptest::option::weighted(0.15, stream_arn()),
        proptest::option::weighted(0.95, list_of(entry())),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.05),
        proptest::bool::weighted(0.3),
    )
        .prop_map(|(name, arn, records, unknown, dup_name, name_last)| {
            let mut m = Vec::new();
            if let Some(r) = records {
                m.push(format!("\"Records\":{r}"));
            }
            if let Some(n) = &name {
                let member = format!("\"StreamName\":{n}");
                if name_last {
                    m.push(member);
                } else {
                    m.insert(0, member);
                }
            }
            if let Some(a) = arn {
                m.push(format!("\"StreamARN\":{a}"));
            }
            if unknown {
                m.push("\"Unknown\":{\"x\":[true]}".to_string());
            }
            if dup_name {
                m.push(format!("\"StreamName\":{}", json_str("other")));
            }
            format!("{{ {} }}", m.join(" , "))
        });
    body(members.boxed())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn the_fast_decoder_agrees_with_the_one_parser(body in request()) {
        if let Some(fast) = PutRecordsRequest::decode_json(body.as_bytes()) {
            let slow = generic(body.as_bytes());
            prop_assert_eq!(slow.as_ref(), Ok(&fast), "body: {}", body);
        }
    }
}

/// The fast decoder does take the common case (so the property above is not vacuous), and
/// declines what it must leave to the generic path.
#[test]
fn the_fast_decoder_takes_plain_bodies_and_declines_the_rest() {
    let plain = r#"{"StreamName":"clicks","Records":[{"Data":"aGVsbG8=","PartitionKey":"k"},{"Data":"","PartitionKey":"p","ExplicitHashKey":"7"}]}"#;
    let fast = PutRecordsRequest::decode_json(plain.as_bytes()).expect("plain body");
    assert_eq!(fast.records.len(), 2);
    assert_eq!(generic(plain.as_bytes()), Ok(fast));
    for declined in [
        // A name and an ARN that disagree: the generic path refuses it.
        r#"{"StreamName":"a","StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/b","Records":[{"Data":"","PartitionKey":"k"}]}"#,
        r#"{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/b","Records":[{"Data":"","PartitionKey":"k"}]}"#,
        r#"["clicks"]"#,
        r#"{"StreamName":"clicks","Records":[["aGVsbG8=","k"]]}"#,
        r#"{"StreamName":"clicks","Records":[{"Data":"aGVsbG8=","PartitionKey":"k","ExplicitHashKey":"340282366920938463463374607431768211456"}]}"#,
    ] {
        assert!(
            PutRecordsRequest::decode_json(declined.as_bytes()).is_none(),
            "{declined}"
        );
    }
    let mismatch = generic(
        br#"{"StreamName":"a","StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/b","Records":[{"Data":"","PartitionKey":"k"}]}"#,
    )
    .unwrap_err();
    assert_eq!(mismatch.error_type, sluice_aws::ErrorType::InvalidArgument);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    /// The fast decoder's base64 (into a shared buffer) accepts exactly what the generic one
    /// does, with the same bytes.
    #[test]
    fn base64_into_a_shared_buffer_agrees(s in "[A-Za-z0-9+/=*_-]{0,16}", prefix in proptest::collection::vec(any::<u8>(), 0..4)) {
        let mut buf = bytes::BytesMut::from(&prefix[..]);
        let fast = sluice_aws::value::decode_base64_into(&s, &mut buf);
        let slow = sluice_aws::value::decode_base64(&s);
        prop_assert_eq!(fast, slow.is_ok(), "{}", s);
        if let Ok(bytes) = slow {
            prop_assert_eq!(&buf[prefix.len()..], &bytes[..]);
        } else {
            prop_assert_eq!(&buf[..], &prefix[..]);
        }
    }
}
